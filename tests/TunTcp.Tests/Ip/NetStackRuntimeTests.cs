using TunTcp.Ip;
using TunTcp.Links;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>The stack thread survives application faults, and a stopped stack says so instead of dropping work.</summary>
public class NetStackRuntimeTests
{
    private static NetStack Started(out MemoryLink peer)
    {
        var (link, other) = MemoryLink.CreatePair(mtu: 1500, capacity: 64);
        peer = other;
        var stack = new NetStack(link, new NetStackOptions { Address = Packets.Stack.ToIPAddress() });
        stack.Start();
        return stack;
    }

    [Fact]
    public async Task APostedCommandThatThrows_IsLogged_AndTheStackGoesOn()
    {
        using var stack = Started(out _);
        stack.Post((_, _) => throw new InvalidOperationException("the application's bug"));
        int answer = await stack.Invoke((core, _) => 42).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal(42, answer);
        Assert.False(stack.Completion.IsCompleted);
    }

    [Fact]
    public async Task AnInvokedCommandThatThrows_FailsOnlyItsOwnTask()
    {
        using var stack = Started(out _);
        var failed = stack.Invoke<int>((_, _) => throw new InvalidOperationException("boom"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => failed.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Equal(7, await stack.Invoke((_, _) => 7).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task PostAndInvoke_AfterDispose_FailVisibly()
    {
        var stack = Started(out _);
        stack.Dispose();
        Assert.Throws<ObjectDisposedException>(() => stack.Post((_, _) => { }));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => stack.Invoke((_, _) => 1));
    }

    [Fact]
    public void WakeSignal_AfterDispose_WritesNothing()
    {
        var wake = new WakeSignal();
        wake.Dispose();
        wake.Signal(); // must not write to the closed (possibly reused) descriptor
        Assert.Equal(-1, wake.Fd);
    }

    private sealed class ThrowingObserver : ITcpConnectionObserver
    {
        public int Calls;
        public void OnEvents(TcpConnection connection, TcpConnectionEvents events)
        {
            Calls++;
            throw new InvalidOperationException("observer bug");
        }
    }

    [Fact]
    public void AnObserverThatThrows_DoesNotBreakTheCore_AndIsCounted()
    {
        var output = new RecordingOutput();
        var core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress() }, output);
        var faults = new List<Exception>();
        core.TcpEnvironment.ObserverFailed += (_, e) => faults.Add(e);
        var listener = core.Listen(IpAddress.AnyV4, 80, 8);
        var observer = new ThrowingObserver();
        core.Receive(Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(1), default, TcpFlags.Syn, 64240)), Instant.Zero);
        Assert.True(TcpPacket.TryParse(output.Packets[^1].AsSpan(Ipv4Header.Length), out var synAck, out _));
        core.Receive(Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(2), synAck.SequenceNumber + 1, TcpFlags.Ack, 64240)), Instant.Zero);
        Assert.True(listener.TryAccept(out var c));
        c!.Observer = observer;
        core.Receive(Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(2), synAck.SequenceNumber + 1, TcpFlags.Ack | TcpFlags.Psh, 64240), payload: "data"u8), Instant.Zero);
        core.Poll(Instant.Zero);

        Assert.True(observer.Calls > 0);
        Assert.NotEmpty(faults);
        Assert.Equal(observer.Calls, core.TcpEnvironment.Statistics.ObserverFaults);
        Assert.Equal(4, c.ReceiveBuffer.Count);
        Assert.Equal(TcpConnectionState.Established, c.State);
    }

    [Fact]
    public async Task ConnectFailures_AreSocketExceptions_AsListenFailuresAre()
    {
        using var stack = Started(out _);
        var v6 = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() =>
            Sockets.NetStackSockets.ConnectTcpAsync(stack, new System.Net.IPEndPoint(System.Net.IPAddress.Parse("fd00::1"), 80), TestContext.Current.CancellationToken));
        Assert.Equal(System.Net.Sockets.SocketError.AddressFamilyNotSupported, v6.SocketErrorCode);
        var multicast = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() =>
            Sockets.NetStackSockets.ConnectTcpAsync(stack, new System.Net.IPEndPoint(System.Net.IPAddress.Parse("224.0.0.1"), 80), TestContext.Current.CancellationToken));
        Assert.Equal(System.Net.Sockets.SocketError.AddressNotAvailable, multicast.SocketErrorCode);
        var listen = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() =>
            Sockets.NetStackSockets.ListenTcpAsync(stack, new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Any, 80), dualMode: false, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(System.Net.Sockets.SocketError.AddressFamilyNotSupported, listen.SocketErrorCode);
    }

    [Fact]
    public async Task SynchronousSendAndReceive_MoveMoreThanTheBuffers_AndFailClearlyOnTheStackThread()
    {
        var (linkA, linkB) = MemoryLink.CreatePair(mtu: 1500, capacity: 1024);
        using var client = new NetStack(linkA, new NetStackOptions { Address = Packets.Host.ToIPAddress() });
        using var server = new NetStack(linkB, new NetStackOptions { Address = Packets.Stack.ToIPAddress() });
        client.Start();
        server.Start();
        await server.Invoke((core, _) => new TunTcp.Apps.EchoService(core, 7, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance));
        await using var connection = await Sockets.NetStackSockets.ConnectTcpAsync(client,
            new System.Net.IPEndPoint(Packets.Stack.ToIPAddress(), 7), TestContext.Current.CancellationToken);

        // On the stack thread, a receive that would have to wait fails at once instead of deadlocking.
        var onStack = await client.Invoke((_, _) =>
        {
            try { connection.Receive(new byte[10]); return "returned"; }
            catch (InvalidOperationException) { return "refused"; }
        }).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal("refused", onStack);

        var data = new byte[3 * connection.SendBufferSize / 2];
        new Random(5).NextBytes(data);
        var sender = Task.Run(() => connection.Send(data), TestContext.Current.CancellationToken); // must block for room
        var received = new byte[data.Length];
        int got = 0;
        var reader = Task.Run(() =>
        {
            while (got < received.Length)
            {
                int n = connection.Receive(received.AsSpan(got));
                if (n == 0) break;
                got += n;
            }
        }, TestContext.Current.CancellationToken);
        Assert.Equal(data.Length, await sender.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken));
        await reader.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        Assert.Equal(data, received);
    }
}
