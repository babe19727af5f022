using System.Buffers.Binary;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Simulation;

/// <summary>The IP layer on the simulated network: a path MTU that drops in the middle of a transfer, and fragments on a bad path.</summary>
public class IpLayerSimulationTests
{
    [Fact]
    public void Rfc1191_PathMtuDropsMidTransfer_TheTransferCompletesWithoutATimeout()
    {
        var forward = new PathConfig
        {
            OneWayDelay = TimeSpan.FromMilliseconds(10), BitsPerSecond = 100_000_000, QueueLimitBytes = 250_000,
            NarrowTo = 1000, NarrowFrom = TimeSpan.FromMilliseconds(600),
        };
        var net = new SimulatedNetwork(forward, PathConfig.Ideal(TimeSpan.FromMilliseconds(10)), seed: 5);
        var t = new TransferScenario(net, 20_000_000);
        Assert.True(t.Run(TimeSpan.FromSeconds(120)), $"not done: received {t.Receiver.Received}, {net.StatsAToB}");
        Assert.False(t.Receiver.Corrupt);
        Assert.Equal(20_000_000, t.Receiver.Received);
        var server = t.Server!;
        Assert.Equal(1000, server.PathMtu);
        Assert.Equal(1000, net.A.PathMtuTo(SimulatedNetwork.AddressB));
        Assert.True(net.StatsAToB.TooBig > 0);
        // The segments in flight were re-cut and resent at once, not after a timeout.
        Assert.Equal(0, server.GetStatistics().RetransmissionTimeouts);
        Assert.Equal(1, net.A.Statistics.PathMtuReductions);
    }

    [Fact]
    public void Fragments_OnAPathThatReordersDuplicatesAndLoses_ArriveWholeOrNotAtAll_AndLeaveNothingBehind()
    {
        var bad = new PathConfig
        {
            OneWayDelay = TimeSpan.FromMilliseconds(5), Jitter = TimeSpan.FromMilliseconds(3),
            Reorder = 0.2, Duplicate = 0.1, Loss = 0.01,
        };
        var net = new SimulatedNetwork(PathConfig.Ideal(TimeSpan.FromMilliseconds(5)), bad, seed: 11);
        var sink = net.A.BindUdp(7);
        net.B.BindUdp(9000);
        const int count = 300;
        byte[] Datagram(int i)
        {
            var d = new byte[8000];
            for (int k = 0; k < d.Length; k++) d[k] = (byte)(i * 31 + k * 7);
            BinaryPrimitives.WriteInt32BigEndian(d, i);
            return d;
        }
        for (int i = 0; i < count; i++)
        {
            net.B.SendUdp(9000, SimulatedNetwork.AddressA, 7, Datagram(i));
            net.RunFor(TimeSpan.FromMilliseconds(2));
        }
        net.RunFor(TimeSpan.FromSeconds(40)); // past the 30 s reassembly timeout
        var seen = new HashSet<int>();
        while (sink.TryDequeue(out var got))
        {
            int i = BinaryPrimitives.ReadInt32BigEndian(got.Payload);
            Assert.InRange(i, 0, count - 1);
            Assert.Equal(Datagram(i), got.Payload);
            seen.Add(i);
        }
        // Six fragments each at 1 % loss: about 94 % arrive whole.
        Assert.InRange(seen.Count, count * 85 / 100, count);
        Assert.True(net.A.Statistics.FragmentsDropped > 0, "duplicates were dropped");
        Assert.Equal((0, 0), net.A.ReassemblyUse);
        Assert.True(net.A.Statistics.ReassemblyTimeouts > 0, "datagrams with a lost fragment timed out");
    }
}
