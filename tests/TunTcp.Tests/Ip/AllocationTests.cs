using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using TunTcp.Apps;
using TunTcp.Ip;
using TunTcp.Links;
using TunTcp.Sockets;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>
/// The data path allocates nothing per packet in steady state. Two stacks on threads,
/// joined by the in-memory link: a socket-API client on a pool thread sends into an inline
/// discard service. The allocation counters of both stack threads are read on those threads.
/// </summary>
public class AllocationTests
{
    private static readonly Ipv4Address A = Ipv4Address.Parse("10.0.0.1"), B = Ipv4Address.Parse("10.0.0.2");

    [Fact]
    public async Task StackThreads_AllocateNothingPerPacket_WhileMovingTenMegabytes()
    {
        var (linkA, linkB) = MemoryLink.CreatePair(mtu: 1500, capacity: 1024);
        using var stackA = new NetStack(linkA, new NetStackOptions { Address = A.ToIPAddress(), Mtu = 1500 });
        using var stackB = new NetStack(linkB, new NetStackOptions { Address = B.ToIPAddress(), Mtu = 1500 });
        stackA.Start();
        stackB.Start();
        await stackB.Invoke((core, _) => new DiscardService(core, 9, NullLogger.Instance));

        var chunk = new byte[64 * 1024];
        Random.Shared.NextBytes(chunk);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await using var connection = await stackA.ConnectTcpAsync(new IPEndPoint(B.ToIPAddress(), 9), timeout.Token);

        async Task Send(long bytes)
        {
            for (long sent = 0; sent < bytes; sent += chunk.Length)
                await connection.SendAsync(chunk, timeout.Token);
            // Wait until everything is acknowledged (the send ring frees bytes only on ACK), so the
            // measured stretch holds whole round trips. Polled off the stack thread: asking the
            // stack would itself cost allocations there.
            while (connection.Engine.SendBuffer.Count > 0)
                await Task.Delay(1, timeout.Token);
        }

        // Warm-up until steady state: JIT tiers settle, and the rings and the in-flight record
        // queue grow (by doubling) to the size this flow needs. A round that allocates nothing
        // on either stack thread ends it; five rounds at most.
        long beforeA = 0, beforeB = 0;
        for (int round = 0; round < 5; round++)
        {
            beforeA = await stackA.Invoke((_, _) => GC.GetAllocatedBytesForCurrentThread());
            beforeB = await stackB.Invoke((_, _) => GC.GetAllocatedBytesForCurrentThread());
            await Send(10 << 20);
            long roundA = await stackA.Invoke((_, _) => GC.GetAllocatedBytesForCurrentThread()) - beforeA;
            long roundB = await stackB.Invoke((_, _) => GC.GetAllocatedBytesForCurrentThread()) - beforeB;
            if (roundA < 1024 && roundB < 1024) break;
        }
        beforeA = await stackA.Invoke((_, _) => GC.GetAllocatedBytesForCurrentThread());
        beforeB = await stackB.Invoke((_, _) => GC.GetAllocatedBytesForCurrentThread());
        long packetsBefore = stackA.LinkStatistics.PacketsSent + stackB.LinkStatistics.PacketsSent;

        const long Moved = 10L << 20;
        await Send(Moved);

        long allocatedA = await stackA.Invoke((_, _) => GC.GetAllocatedBytesForCurrentThread()) - beforeA;
        long allocatedB = await stackB.Invoke((_, _) => GC.GetAllocatedBytesForCurrentThread()) - beforeB;
        long packets = stackA.LinkStatistics.PacketsSent + stackB.LinkStatistics.PacketsSent - packetsBefore;
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"moved 10 MiB in {packets} packets; stack thread allocations: sender {allocatedA} B ({allocatedA / 10.0:F0} B/MiB), receiver {allocatedB} B ({allocatedB / 10.0:F0} B/MiB)");
        // Reading the counters through Invoke costs a few hundred bytes on each thread; per packet
        // there must be nothing: thousands of packets moved, well under one byte each.
        Assert.True(packets > 7000, $"only {packets} packets");
        Assert.True(allocatedA < packets / 4 + 4096, $"sender stack thread allocated {allocatedA} B for {packets} packets");
        Assert.True(allocatedB < packets / 4 + 4096, $"receiver stack thread allocated {allocatedB} B for {packets} packets");
    }
}
