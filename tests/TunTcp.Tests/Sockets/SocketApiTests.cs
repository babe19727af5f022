using System.Net;
using System.Net.Sockets;
using TunTcp.Ip;
using TunTcp.Links;
using TunTcp.Sockets;
using TunTcp.Tcp;
using TunTcp.Tests.Support;

namespace TunTcp.Tests.SocketApi;

/// <summary>The socket-shaped public API: shutdown, close with linger, async disposal, local ports, the public surface.</summary>
public class SocketApiTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static (NetStack Client, NetStack Server) Pair()
    {
        var (linkA, linkB) = MemoryLink.CreatePair(mtu: 1500, capacity: 1024);
        var client = new NetStack(linkA, new NetStackOptions { Address = Packets.Host.ToIPAddress() });
        var server = new NetStack(linkB, new NetStackOptions { Address = Packets.Stack.ToIPAddress() });
        client.Start();
        server.Start();
        return (client, server);
    }

    private static IPEndPoint Server(int port) => new(Packets.Stack.ToIPAddress(), port);

    /// <summary>Two stacks, a listener on the server's port 80, and one connection to it, both ends.</summary>
    private sealed class Connected : IAsyncDisposable
    {
        public required NetStack Client { get; init; }
        public required NetStack ServerStack { get; init; }
        public required TunTcpListener Listener { get; init; }
        public required TunTcpConnection Accepted { get; init; }
        public required TunTcpConnection Connection { get; init; }

        public static async Task<Connected> OpenAsync(TcpSettings? serverSettings = null)
        {
            var (client, server) = Pair();
            var listener = await server.ListenTcpAsync(new IPEndPoint(IPAddress.Any, 80), settings: serverSettings, cancellationToken: Token);
            var connecting = client.ConnectTcpAsync(Server(80), Token);
            var accepted = await listener.AcceptAsync(Token);
            return new Connected { Client = client, ServerStack = server, Listener = listener, Accepted = accepted, Connection = await connecting };
        }

        public async ValueTask DisposeAsync()
        {
            await Connection.DisposeAsync();
            await Accepted.DisposeAsync();
            await Listener.DisposeAsync();
            await Client.DisposeAsync();
            await ServerStack.DisposeAsync();
        }
    }

    [Fact]
    public async Task ShutdownReceive_MakesReceivesReturnZero_WhileSendingGoesOn()
    {
        await using var c = await Connected.OpenAsync();
        var (accepted, connection) = (c.Accepted, c.Connection);

        connection.Shutdown(SocketShutdown.Receive);
        await accepted.SendAsync("ignored"u8.ToArray(), Token);
        Assert.Equal(0, await connection.ReceiveAsync(new byte[16], Token));
        Assert.Equal(0, connection.Receive(new byte[16]));

        await connection.SendAsync("still sending"u8.ToArray(), Token);
        connection.Shutdown(SocketShutdown.Send);
        Assert.Equal("still sending"u8.ToArray(), await ReadAllAsync(accepted));
        Assert.Throws<ArgumentOutOfRangeException>(() => connection.Shutdown((SocketShutdown)7));
    }

    [Fact]
    public async Task CloseAsync_WithLinger_ReturnsTrueOnceThePeerHasEverything()
    {
        await using var c = await Connected.OpenAsync();
        var (accepted, connection) = (c.Accepted, c.Connection);
        var data = new byte[200_000];
        new Random(3).NextBytes(data);
        var reader = ReadAllAsync(accepted);
        await connection.SendAsync(data, Token);

        Assert.True(await connection.CloseAsync(TimeSpan.FromSeconds(60), Token));
        Assert.Equal(data, await reader);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(50)]
    public async Task CloseAsync_WhenThePeerDoesNotTakeTheData_ResetsAtTheLingerTime(int lingerMs)
    {
        // The server's window is 4 KiB and it never reads: 64 KiB can never all be acknowledged.
        await using var c = await Connected.OpenAsync(new TcpSettings { ReceiveBufferSize = 4096 });
        var (accepted, connection) = (c.Accepted, c.Connection);
        await connection.SendAsync(new byte[64 * 1024], Token);

        Assert.False(await connection.CloseAsync(TimeSpan.FromMilliseconds(lingerMs), Token));
        // The peer learns of it as a reset, once it reads what it had.
        var e = await Assert.ThrowsAsync<SocketException>(async () => { while (await accepted.ReceiveAsync(new byte[4096], Token) > 0) { } });
        Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await connection.CloseAsync(TimeSpan.FromSeconds(-1), Token));
    }

    [Fact]
    public async Task Connect_FromAChosenLocalPort_AndGetStream_IsATunTcpStream()
    {
        var (client, server) = Pair();
        await using var _ = client;
        await using var __ = server;
        await using var listener = await server.ListenTcpAsync(new IPEndPoint(IPAddress.Any, 80), cancellationToken: Token);
        var connecting = client.ConnectTcpAsync(Server(80), settings: null, localPort: 40123, Token);
        await using var accepted = await listener.AcceptAsync(Token);
        await using var connection = await connecting;
        Assert.Equal(40123, connection.LocalEndPoint.Port);
        Assert.Equal(40123, accepted.RemoteEndPoint.Port);
        await using TunTcpStream stream = connection.GetStream();
        Assert.Same(connection, stream.Connection);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.ConnectTcpAsync(Server(80), null, 70000, Token));
    }

    [Fact]
    public async Task DisposeAsync_StopsTheListenerTheUdpSocketAndTheStack()
    {
        var (client, server) = Pair();
        await using var _ = client;
        var listener = await server.ListenTcpAsync(new IPEndPoint(IPAddress.Any, 80), cancellationToken: Token);
        var udp = await server.BindUdpAsync(5353, Token);
        await listener.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await listener.AcceptAsync(Token));
        await udp.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await udp.ReceiveFromAsync(new byte[10], Token));
        // The port is free again.
        await using var again = await server.ListenTcpAsync(new IPEndPoint(IPAddress.Any, 80), cancellationToken: Token);

        await server.DisposeAsync();
        Assert.True(server.Completion.IsCompleted);
        await server.DisposeAsync(); // twice is fine
        await Assert.ThrowsAsync<ObjectDisposedException>(() => server.ListenTcpAsync(new IPEndPoint(IPAddress.Any, 81), cancellationToken: Token));
    }

    [Fact]
    public void PublicSurface_HoldsTheSocketApi_AndNoEngineInternals()
    {
        var exported = typeof(NetStack).Assembly.GetExportedTypes().Select(t => t.Name).ToHashSet();
        foreach (var name in new[] { "NetStack", "NetStackOptions", "TunTcpConnection", "TunTcpListener", "TunTcpStream", "TunUdpSocket", "TcpSettings", "TcpConnectionState", "FlowForwarder" })
            Assert.Contains(name, exported);
        foreach (var name in new[] { "NetStackCore", "TcpConnection", "IpAddress", "TcpPacket", "SackScoreboard", "ByteRing", "TcpState", "TcpStatistics", "Instant" })
            Assert.DoesNotContain(name, exported);
        Assert.All(typeof(NetStack).Assembly.GetExportedTypes(), t => Assert.StartsWith("TunTcp", t.Namespace));
    }

    private static async Task<byte[]> ReadAllAsync(TunTcpConnection connection)
    {
        var got = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await connection.ReceiveAsync(buffer, TestContext.Current.CancellationToken)) > 0) got.Write(buffer, 0, n);
        return got.ToArray();
    }
}
