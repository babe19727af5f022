using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TunTcp.AspNetCore.Tests.Support;
using TunTcp.Sockets;

namespace TunTcp.AspNetCore.Tests;

/// <summary>
/// The transport as Kestrel drives it: bind, accept, the duplex pipe, and each way a connection
/// ends (peer FIN, peer RST, our abort, our graceful completion), plus backpressure both ways.
/// </summary>
public sealed class TransportTests : IAsyncLifetime
{
    private StackPair _net = null!;
    private IConnectionListener _listener = null!;
    private int _port;

    public ValueTask InitializeAsync()
    {
        _net = StackPair.Start();
        return BindAsync();

        async ValueTask BindAsync()
        {
            _listener = await CreateFactory().BindAsync(new TunTcpEndPoint(_net.Server, 0)).Within();
            _port = ((TunTcpEndPoint)_listener.EndPoint).IPEndPoint.Port;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _listener.DisposeAsync();
        await _net.DisposeAsync();
    }

    private TunTcpTransportFactory CreateFactory(Action<TunTcpTransportOptions>? configure = null)
    {
        var options = new TunTcpTransportOptions { Stack = _net.Server };
        configure?.Invoke(options);
        return new TunTcpTransportFactory(Options.Create(options), NullLoggerFactory.Instance, []);
    }

    private async Task<(TunTcpConnection Client, ConnectionContext Server)> ConnectAsync(IConnectionListener? listener = null, int? port = null)
    {
        listener ??= _listener;
        var accept = listener.AcceptAsync().AsTask();
        var client = await _net.ConnectAsync(port ?? _port).Within();
        var server = await accept.Within();
        Assert.NotNull(server);
        return (client, server);
    }

    [Fact]
    public void CanBind_OnlyTunTcpEndPoints()
    {
        var factory = CreateFactory();
        Assert.True(factory.CanBind(new TunTcpEndPoint(_net.Server, 80)));
        Assert.False(factory.CanBind(new IPEndPoint(IPAddress.Loopback, 80)));
        Assert.False(factory.CanBind(new UnixDomainSocketEndPoint("/tmp/x.sock")));
    }

    [Fact]
    public async Task Bind_PortZero_ReportsThePortTheStackChose()
    {
        Assert.InRange(_port, 1, 65535);
        var connection = await ConnectAsync();
        connection.Client.Dispose();
    }

    [Fact]
    public async Task Bind_PortInUse_ThrowsAddressInUseException()
    {
        await Assert.ThrowsAsync<AddressInUseException>(() => CreateFactory().BindAsync(new TunTcpEndPoint(_net.Server, _port)).AsTask()).Within();
    }

    [Fact]
    public async Task Accept_AfterUnbind_ReturnsNull()
    {
        var pending = _listener.AcceptAsync().AsTask();
        Assert.False(pending.IsCompleted);
        await _listener.UnbindAsync().Within();
        Assert.Null(await pending.Within());
        Assert.Null(await _listener.AcceptAsync().Within());
        // The port is free again: connecting is refused by the stack's RST.
        var refused = await Assert.ThrowsAsync<SocketException>(() => _net.ConnectAsync(_port)).Within();
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task Features_DescribeTheConnection()
    {
        var (client, server) = await ConnectAsync();
        Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
        Assert.Equal(client.RemoteEndPoint, server.LocalEndPoint);
        var endpoints = server.Features.Get<IConnectionEndPointFeature>();
        Assert.NotNull(endpoints);
        Assert.Equal(server.RemoteEndPoint, endpoints.RemoteEndPoint);
        Assert.Equal(server.ConnectionId, server.Features.Get<IConnectionIdFeature>()?.ConnectionId);
        Assert.Equal(13, server.ConnectionId.Length);
        Assert.Same(server.Transport, server.Features.Get<IConnectionTransportFeature>()?.Transport);
        Assert.NotNull(server.Features.Get<IMemoryPoolFeature>()?.MemoryPool);
        server.Items["k"] = "v";
        Assert.Equal("v", server.Features.Get<IConnectionItemsFeature>()?.Items["k"]);
        Assert.Equal(server.ConnectionClosed, server.Features.Get<IConnectionLifetimeFeature>()?.ConnectionClosed);
        var tcp = server.Features.Get<ITunTcpConnectionFeature>()?.Connection;
        Assert.NotNull(tcp);
        Assert.Equal(client.LocalEndPoint, tcp.RemoteEndPoint);

        // Features added by others (Kestrel's TLS middleware does) live beside the transport's own.
        var marker = new object();
        server.Features.Set(marker);
        Assert.Same(marker, server.Features.Get<object>());
        Assert.Contains(server.Features, kv => kv.Key == typeof(object));
        server.Features.Set<IConnectionIdFeature>(null);
        Assert.Null(server.Features.Get<IConnectionIdFeature>());

        client.Dispose();
        await server.DisposeAsync().Within();
    }

    [Fact]
    public async Task Data_FlowsBothWays()
    {
        var (client, server) = await ConnectAsync();
        await client.SendAsync("hello"u8.ToArray()).Within();
        var read = await server.Transport.Input.ReadAtLeastAsync(5).Within();
        Assert.Equal("hello"u8.ToArray(), read.Buffer.ToArray());
        server.Transport.Input.AdvanceTo(read.Buffer.End);

        await server.Transport.Output.WriteAsync("world"u8.ToArray()).Within();
        var buffer = new byte[5];
        Assert.Equal(5, await ReceiveExactlyAsync(client, buffer));
        Assert.Equal("world"u8.ToArray(), buffer);

        client.Dispose();
        await server.DisposeAsync().Within();
    }

    [Fact]
    public async Task PeerFin_CompletesInputAfterTheData_AndFiresConnectionClosed()
    {
        var (client, server) = await ConnectAsync();
        var closed = WhenCancelled(server.ConnectionClosed);
        await client.SendAsync("last words"u8.ToArray()).Within();
        client.ShutdownSend();

        Assert.Equal("last words"u8.ToArray(), await ReadToEndAsync(server.Transport.Input));
        await closed.Within();

        // Half-close: the server may still answer before completing its output.
        await server.Transport.Output.WriteAsync("bye"u8.ToArray()).Within();
        var buffer = new byte[3];
        Assert.Equal(3, await ReceiveExactlyAsync(client, buffer));
        await server.DisposeAsync().Within();
        Assert.Equal(0, await client.ReceiveAsync(new byte[1]).Within());
        client.Dispose();
    }

    [Fact]
    public async Task PeerReset_SurfacesAsConnectionResetException_AndFiresConnectionClosed()
    {
        var (client, server) = await ConnectAsync();
        var closed = WhenCancelled(server.ConnectionClosed);
        client.Abort();

        await Assert.ThrowsAsync<ConnectionResetException>(async () =>
        {
            while (true)
            {
                var result = await server.Transport.Input.ReadAsync();
                server.Transport.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted) return;
            }
        }).Within();
        await closed.Within();
        await server.DisposeAsync().Within();
        client.Dispose();
    }

    [Fact]
    public async Task Abort_SendsRst_ThatTheClientSeesAsAReset()
    {
        var (client, server) = await ConnectAsync();
        var closed = WhenCancelled(server.ConnectionClosed);
        server.Abort(new ConnectionAbortedException("test abort"));

        var reset = await Assert.ThrowsAsync<SocketException>(async () => await client.ReceiveAsync(new byte[16])).Within();
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
        // Kestrel reading after its own abort sees the abort, not a reset from the peer.
        await Assert.ThrowsAsync<ConnectionAbortedException>(async () => await server.Transport.Input.ReadAsync()).Within();
        await closed.Within();
        await server.DisposeAsync().Within();
        client.Dispose();
    }

    [Fact]
    public async Task AbortWithoutReason_ClosesGracefully()
    {
        // Kestrel's HTTP/1.x closes this way after the peer closed: a FIN, not a reset.
        var (client, server) = await ConnectAsync();
        server.Abort(null!);
        Assert.Equal(0, await client.ReceiveAsync(new byte[16]).Within());
        await server.DisposeAsync().Within();
        client.Dispose();
    }

    [Fact]
    public async Task CompletedOutput_SendsEverythingThenFin()
    {
        var (client, server) = await ConnectAsync();
        var payload = Pattern(300_000, seed: 3);
        await server.Transport.Output.WriteAsync(payload).Within();
        server.Transport.Output.Complete();

        var received = await ReceiveToEndAsync(client);
        Assert.Equal(payload, received);
        // The connection is shut down: ConnectionClosed fires even though the client never closed.
        await WhenCancelled(server.ConnectionClosed).Within();
        await server.DisposeAsync().Within();
        client.Dispose();
    }

    [Fact]
    public async Task DisposeAsync_CompletesBothPipes_AndClosesTheConnection()
    {
        var (client, server) = await ConnectAsync();
        var input = server.Transport.Input;
        var output = server.Transport.Output;
        await server.DisposeAsync().Within();

        Assert.Throws<InvalidOperationException>(() => input.TryRead(out _));
        Assert.Throws<InvalidOperationException>(() => output.GetMemory());
        Assert.Equal(0, await client.ReceiveAsync(new byte[16]).Within());
        Assert.True(server.ConnectionClosed.IsCancellationRequested || await Bounded.UntilAsync(() => server.ConnectionClosed.IsCancellationRequested));
        client.Dispose();
    }

    [Fact]
    public async Task SlowServerReader_BackpressureStopsTheClient_WithinTheLimits()
    {
        const int maxRead = 256 * 1024;
        await using var listener = await CreateFactory(o => o.MaxReadBufferSize = maxRead).BindAsync(new TunTcpEndPoint(_net.Server, 0)).Within();
        var (client, server) = await ConnectAsync(listener, ((TunTcpEndPoint)listener.EndPoint).IPEndPoint.Port);
        var serverTcp = server.Features.Get<ITunTcpConnectionFeature>()!.Connection;

        // The client offers far more than every buffer on the way holds; nobody reads on the server.
        const int total = 32 * 1024 * 1024;
        long queued = 0;
        var sender = Task.Run(async () =>
        {
            var chunk = Pattern(16 * 1024, seed: 1);
            while (queued < total)
            {
                await client.SendAsync(chunk);
                Interlocked.Add(ref queued, chunk.Length);
            }
        });

        // Steady state: the server's receive ring is full (its window closed) and the client's send ring is full.
        Assert.True(await Bounded.UntilAsync(() =>
            serverTcp.Available == serverTcp.ReceiveBufferSize && client.Engine.SendBuffer.Free == 0 && !sender.IsCompleted));
        long held = Interlocked.Read(ref queued);
        // Client send ring + server receive ring + the pipe's limit (the receive loop may take up to
        // 64 KB past it before its flush notices) + one chunk in flight.
        long bound = client.SendBufferSize + serverTcp.ReceiveBufferSize + maxRead + 64 * 1024 + 16 * 1024;
        Assert.InRange(held, maxRead, bound);
        Assert.False(sender.IsCompleted);

        // Reading again releases the flow, and every byte arrives.
        long read = 0;
        var input = server.Transport.Input;
        while (read < total)
        {
            var result = await input.ReadAsync().Within();
            read += result.Buffer.Length;
            input.AdvanceTo(result.Buffer.End);
        }
        Assert.Equal(total, read);
        await sender.Within();
        client.Dispose();
        await server.DisposeAsync().Within();
    }

    [Fact]
    public async Task SlowClientReader_BackpressureStopsKestrelsFlushes_WithinTheLimits()
    {
        const int maxWrite = 64 * 1024;
        await using var listener = await CreateFactory(o => o.MaxWriteBufferSize = maxWrite).BindAsync(new TunTcpEndPoint(_net.Server, 0)).Within();
        var (client, server) = await ConnectAsync(listener, ((TunTcpEndPoint)listener.EndPoint).IPEndPoint.Port);
        var serverTcp = server.Features.Get<ITunTcpConnectionFeature>()!.Connection;

        const int total = 32 * 1024 * 1024;
        long written = 0;
        bool flushPending = false;
        var writer = Task.Run(async () =>
        {
            var output = server.Transport.Output;
            var chunk = Pattern(16 * 1024, seed: 2);
            while (written < total)
            {
                chunk.CopyTo(output.GetSpan(chunk.Length));
                output.Advance(chunk.Length);
                Interlocked.Add(ref written, chunk.Length);
                var flush = output.FlushAsync();
                Volatile.Write(ref flushPending, !flush.IsCompleted);
                await flush;
                Volatile.Write(ref flushPending, false);
            }
            output.Complete();
        });

        // Steady state: the client's receive ring is full, the server's send ring is full, and a flush waits.
        Assert.True(await Bounded.UntilAsync(() =>
            client.Available == client.ReceiveBufferSize && serverTcp.Engine.SendBuffer.Free == 0 && Volatile.Read(ref flushPending)));
        long held = Interlocked.Read(ref written);
        long bound = client.ReceiveBufferSize + serverTcp.SendBufferSize + maxWrite + 16 * 1024;
        Assert.InRange(held, client.ReceiveBufferSize, bound);
        Assert.False(writer.IsCompleted);

        var received = await ReceiveToEndAsync(client, verifySeed: 2, chunkLength: 16 * 1024);
        Assert.Equal(total, received.Length);
        await writer.Within();
        client.Dispose();
        await server.DisposeAsync().Within();
    }

    // ---- helpers ----

    private static Task WhenCancelled(CancellationToken token)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(() => tcs.TrySetResult());
        return tcs.Task;
    }

    private static async Task<byte[]> ReadToEndAsync(PipeReader input)
    {
        var all = new ArrayBufferWriter<byte>();
        while (true)
        {
            var result = await input.ReadAsync().Within();
            foreach (var segment in result.Buffer) all.Write(segment.Span);
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted) return all.WrittenSpan.ToArray();
        }
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private static async Task<int> ReceiveExactlyAsync(TunTcpConnection connection, byte[] buffer)
    {
        int got = 0;
        while (got < buffer.Length)
        {
            int n = await connection.ReceiveAsync(buffer.AsMemory(got)).Within();
            if (n == 0) break;
            got += n;
        }
        return got;
    }

    /// <summary>Reads until EOF; with <paramref name="verifySeed"/>, checks each chunk repeats <see cref="Pattern"/>.</summary>
    private static async Task<byte[]> ReceiveToEndAsync(TunTcpConnection connection, int? verifySeed = null, int chunkLength = 0)
    {
        var all = new ArrayBufferWriter<byte>();
        var expected = verifySeed is int seed ? Pattern(chunkLength, seed) : null;
        var buffer = new byte[64 * 1024];
        long total = 0;
        while (true)
        {
            int n = await connection.ReceiveAsync(buffer).Within();
            if (n == 0) break;
            if (expected is not null)
            {
                for (int i = 0; i < n; i++)
                    if (buffer[i] != expected[(total + i) % chunkLength]) Assert.Fail($"byte {total + i} differs");
            }
            else
            {
                all.Write(buffer.AsSpan(0, n));
            }
            total += n;
        }
        return expected is null ? all.WrittenSpan.ToArray() : new byte[total];
    }
}
