using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TunTcp.Ip;
using TunTcp.Sockets;
using TunTcp.Wire;

namespace TunTcp.Forwarding;

/// <summary>
/// The forwarder of <c>tuntcp forward</c> and <c>tuntcp run</c> (the job of tun2socks and pasta):
/// a <see cref="IFlowHandler"/> that relays every flow entering the device to an
/// <see cref="IUpstream"/>. A TCP flow's handshake is completed only once the upstream connection
/// is up, so the application sees a refused or unreachable upstream as a RST or an ICMP error,
/// exactly as it would see the real host; then bytes are copied both ways with backpressure (each
/// side is read only as fast as the other takes the bytes: a slow upstream closes our window
/// towards the application, a slow application stops our reads of the upstream socket),
/// half-closes and resets are carried across, and idle relays are reset. UDP goes through
/// <see cref="UdpNat"/>, ping through <see cref="EchoRelay"/>.
/// </summary>
/// <remarks>
/// Copies per byte, application to upstream: the TUN read into the stack's packet buffer (the
/// kernel's copy), into the connection's receive ring (the engine), into the relay's buffer
/// (<see cref="TunTcpConnection.ReceiveAsync"/>), into the socket (the kernel's send copy): two
/// copies in user space, and the same two the other way (socket to relay buffer, relay buffer to
/// send ring; the send ring goes to the device by writev without another). The stack thread only
/// moves bytes between rings and the device; it allocates nothing per packet for a relayed flow.
/// </remarks>
public sealed class FlowForwarder : IFlowHandler, IAsyncDisposable
{
    private readonly ForwarderOptions _options;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<TcpRelay, byte> _relays = new();
    private readonly CancellationTokenSource _stopping = new();
    private NetStack? _stack;
    private Task? _sweeper;
    private int _active;
    private long _limitWarnedAt = long.MinValue;

    public FlowForwarder(ForwarderOptions options, ILoggerFactory? loggerFactory = null)
    {
        _options = options;
        var loggers = loggerFactory ?? NullLoggerFactory.Instance;
        _log = loggers.CreateLogger("tuntcp.forward");
        Udp = new UdpNat(options, loggers.CreateLogger("tuntcp.forward.udp"), _stopping.Token);
        Echo = new EchoRelay(options, loggers.CreateLogger("tuntcp.forward.ping"), _stopping.Token);
    }

    internal UdpNat Udp { get; }

    internal EchoRelay Echo { get; }

    public ForwarderStatistics Statistics { get; } = new();

    /// <summary>Relayed TCP connections now (connecting upstream or copying).</summary>
    public int ActiveConnections => Volatile.Read(ref _active);

    /// <summary>
    /// Binds the forwarder to the stack whose <see cref="NetStackOptions.FlowHandler"/> it is, before
    /// <see cref="NetStack.Start"/>; starts the sweep for idle flows.
    /// </summary>
    public void Attach(NetStack stack)
    {
        if (_stack is not null) throw new InvalidOperationException("The forwarder is attached to a stack already.");
        _stack = stack;
        Udp.Attach(stack);
        Echo.Attach(stack);
        _sweeper = SweepAsync(_stopping.Token);
    }

    // ---- TCP ----

    void IFlowHandler.OnTcpFlow(TcpFlowRequest request)
    {
        var stack = _stack;
        if (stack is null || _stopping.IsCancellationRequested) { Complete(request, FlowVerdict.Refuse); return; }
        Interlocked.Increment(ref Statistics.tcpFlows);
        var destination = Translate(request.Destination, request.DestinationPort);
        if (destination is null)
        {
            // The gateway itself, and not its DNS port: nothing serves there.
            Interlocked.Increment(ref Statistics.tcpRefused);
            Complete(request, FlowVerdict.Refuse);
            return;
        }
        if (Interlocked.Increment(ref _active) > _options.MaxConnections)
        {
            Interlocked.Decrement(ref _active);
            Interlocked.Increment(ref Statistics.tcpOverLimit);
            long now = Environment.TickCount64;
            if (now - _limitWarnedAt > 10_000)
            {
                _limitWarnedAt = now;
                _log.LogWarning("Connection limit reached: {Limit} TCP connections are relayed; new ones are refused ({Refused} so far)", _options.MaxConnections, Statistics.TcpOverLimit);
            }
            Complete(request, FlowVerdict.Refuse);
            return;
        }
        _ = OpenAsync(stack, request, destination);
    }

    /// <summary>Stack thread: carries out a verdict at once.</summary>
    private void Complete(TcpFlowRequest request, FlowVerdict verdict)
    {
        if (_stack is { } stack) stack.Core.CompleteTcpFlow(request, verdict, stack.Core.Now);
    }

    /// <summary>The upstream destination of a flow to <paramref name="address"/>:<paramref name="port"/>: the DNS relay's resolver for the gateway's port 53, null for anything else at the gateway.</summary>
    private IPEndPoint? Translate(IpAddress address, ushort port)
    {
        if (_stack is { } stack && stack.Core.IsLocalAddress(address))
            return port == 53 && Udp.Dns.ServerFor(address) is { } server ? server : null;
        return new IPEndPoint(address.ToIPAddress(), port);
    }

    private async Task OpenAsync(NetStack stack, TcpFlowRequest request, IPEndPoint destination)
    {
        await Task.Yield(); // off the stack thread before anything else
        string flow = request.ToString();
        long started = _options.Time.GetTimestamp();
        Socket? upstream;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            timeout.CancelAfter(_options.ConnectTimeout);
            upstream = await _options.Upstream.ConnectAsync(destination, timeout.Token).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // The upstream accepted and reset before the connect was seen to complete (a server
            // that resets at once): for the application that is a connection that opens and is
            // reset, not a refusal.
            upstream = null;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            Interlocked.Decrement(ref _active);
            var (verdict, what) = e switch
            {
                SocketException { SocketErrorCode: SocketError.ConnectionRefused } => (FlowVerdict.Refuse, "refused"),
                SocketException { SocketErrorCode: SocketError.HostUnreachable } => (FlowVerdict.HostUnreachable, "host unreachable"),
                SocketException { SocketErrorCode: SocketError.NetworkUnreachable } => (FlowVerdict.NetworkUnreachable, "network unreachable"),
                SocketException { SocketErrorCode: SocketError.TimedOut } or OperationCanceledException => (FlowVerdict.Drop, "timed out"),
                SocketException { SocketErrorCode: SocketError.AccessDenied } => (FlowVerdict.Refuse, "not allowed by the proxy"),
                _ => (FlowVerdict.Refuse, e.Message),
            };
            if (verdict == FlowVerdict.Refuse) Interlocked.Increment(ref Statistics.tcpRefused);
            else if (verdict == FlowVerdict.Drop) Interlocked.Increment(ref Statistics.tcpTimedOut);
            else Interlocked.Increment(ref Statistics.tcpUnreachable);
            _log.LogInformation("tcp {Flow}: upstream {Destination} {What}", flow, destination, what);
            Post(stack, (core, now) => core.CompleteTcpFlow(request, verdict, now));
            return;
        }
        TunTcpConnection? app;
        try
        {
            app = await stack.Invoke((core, now) =>
                core.CompleteTcpFlow(request, FlowVerdict.Accept, now) is { } tcp ? new TunTcpConnection(stack, tcp, core.FindEntry(tcp)) : null).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            app = null;
        }
        if (app is null)
        {
            // The request expired while the upstream connected (or the stack stopped).
            Interlocked.Decrement(ref _active);
            upstream?.Dispose();
            return;
        }
        // The application's ACK completes its connect: only then is anything carried across, so
        // an upstream that resets at once is a reset of an established connection for the
        // application too (ECONNRESET on its first read), as it would be without us.
        try
        {
            using var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            handshake.CancelAfter(_options.ConnectTimeout);
            await app.WaitEstablishedAsync(handshake.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            Interlocked.Decrement(ref _active);
            if (upstream is not null)
            {
                upstream.LingerState = new LingerOption(true, 0);
                upstream.Dispose();
            }
            app.Dispose();
            _log.LogInformation("tcp {Flow}: the application never completed the handshake", flow);
            return;
        }
        if (upstream is null)
        {
            Interlocked.Decrement(ref _active);
            app.Abort();
            _log.LogInformation("tcp {Flow}: reset by upstream {Destination} as it opened", flow, destination);
            return;
        }
        Interlocked.Increment(ref Statistics.tcpAccepted);
        var relay = new TcpRelay(flow, app, upstream, _options.Time.GetTimestamp());
        _relays.TryAdd(relay, 0);
        try
        {
            await RelayAsync(relay).ConfigureAwait(false);
        }
        finally
        {
            _relays.TryRemove(relay, out _);
            Interlocked.Decrement(ref _active);
            double seconds = _options.Time.GetElapsedTime(started).TotalSeconds;
            _log.LogInformation("tcp {Flow}: closed after {Seconds:0.###} s, {Up} bytes up, {Down} bytes down ({Reason})",
                flow, seconds, relay.BytesUp, relay.BytesDown, relay.Reason ?? "closed both ways");
        }
    }

    private static void Post(NetStack stack, Action<NetStackCore, Instant> action)
    {
        try { stack.Post(action); }
        catch (ObjectDisposedException) { }
    }

    private async Task RelayAsync(TcpRelay relay)
    {
        var up = CopyAppToUpstreamAsync(relay);
        var down = CopyUpstreamToAppAsync(relay);
        await Task.WhenAll(up, down).ConfigureAwait(false);
        Statistics.AddBytes(relay.BytesUp, relay.BytesDown);
        // Both FINs are queued (or a reset went out): closing lets the stack finish the exchange.
        relay.App.Dispose();
        relay.Upstream.Dispose();
    }

    /// <summary>Application to upstream: a FIN from the application half-closes the upstream socket.</summary>
    private Task CopyAppToUpstreamAsync(TcpRelay relay) => CopyAsync(relay, toUpstream: true,
        receive: (buffer, token) => relay.App.ReceiveAsync(buffer, token),
        send: (data, token) => relay.Upstream.SendAsync(data, SocketFlags.None, token),
        endOfStream: () =>
        {
            try { relay.Upstream.Shutdown(SocketShutdown.Send); }
            catch (SocketException) { }
        });

    /// <summary>Upstream to application: the upstream's FIN becomes ours.</summary>
    private Task CopyUpstreamToAppAsync(TcpRelay relay) => CopyAsync(relay, toUpstream: false,
        receive: (buffer, token) => relay.Upstream.ReceiveAsync(buffer, SocketFlags.None, token),
        send: (data, token) => relay.App.SendAsync(data, token),
        endOfStream: relay.App.ShutdownSend);

    /// <summary>
    /// One direction of a relay: read, then write all of it before reading again (the
    /// backpressure); end of stream is passed on as a half-close; a failure of either side ends
    /// the relay with a reset of the other one.
    /// </summary>
    private async Task CopyAsync(TcpRelay relay, bool toUpstream,
        Func<Memory<byte>, CancellationToken, ValueTask<int>> receive, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask<int>> send, Action endOfStream)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(_options.RelayBufferSize);
        var token = relay.Stop.Token;
        string from = toUpstream ? "the application" : "upstream";
        try
        {
            while (true)
            {
                int n;
                try
                {
                    n = await receive(buffer, token).ConfigureAwait(false);
                }
                catch (SocketException e)
                {
                    relay.End($"reset by {from} ({e.SocketErrorCode})", resetApp: !toUpstream, resetUpstream: toUpstream);
                    return;
                }
                if (n == 0)
                {
                    endOfStream();
                    return;
                }
                relay.Touch(_options.Time.GetTimestamp());
                try
                {
                    await send(buffer.AsMemory(0, n), token).ConfigureAwait(false);
                }
                catch (SocketException e)
                {
                    relay.End(toUpstream ? $"upstream failed ({e.SocketErrorCode})" : $"the application's connection failed ({e.SocketErrorCode})",
                        resetApp: toUpstream, resetUpstream: !toUpstream);
                    return;
                }
                if (toUpstream) relay.BytesUp += n;
                else relay.BytesDown += n;
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Resets idle relays, expires idle UDP and echo mappings.</summary>
    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.SweepInterval, _options.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                long now = _options.Time.GetTimestamp();
                foreach (var relay in _relays.Keys)
                {
                    if (_options.Time.GetElapsedTime(relay.LastActivity, now) > _options.TcpIdleTimeout)
                    {
                        Interlocked.Increment(ref Statistics.tcpIdleReset);
                        relay.End($"idle for {_options.TcpIdleTimeout.TotalSeconds:0} s", resetApp: true, resetUpstream: true);
                    }
                }
                Udp.Sweep(now);
                Echo.Sweep(now);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    // ---- UDP and ping ----

    FlowVerdict IFlowHandler.OnUdpDatagram(in UdpFlowDatagram datagram) =>
        _stack is null || _stopping.IsCancellationRequested ? FlowVerdict.Drop : Udp.OnDatagram(datagram);

    bool IFlowHandler.OnEchoRequest(in EchoFlowRequest request) =>
        _stack is not null && !_stopping.IsCancellationRequested && Echo.OnRequest(request);

    /// <summary>Resets every relayed connection and closes every upstream socket.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        foreach (var relay in _relays.Keys) relay.End("the forwarder stopped", resetApp: true, resetUpstream: true);
        _stopping.Cancel();
        if (_sweeper is not null) await _sweeper.ConfigureAwait(false);
        Udp.Dispose();
        Echo.Dispose();
    }

    /// <summary>One relayed TCP connection: the application's side on the stack and the upstream socket.</summary>
    private sealed class TcpRelay(string flow, TunTcpConnection app, Socket upstream, long started)
    {
        private int _ended;

        public string Flow { get; } = flow;
        public TunTcpConnection App { get; } = app;
        public Socket Upstream { get; } = upstream;
        /// <summary>Cancelled when the relay ends (never disposed: End may race with the copy loops' last use).</summary>
        public CancellationTokenSource Stop { get; } = new();
        public long LastActivity = started;
        public long BytesUp, BytesDown;
        public string? Reason { get; private set; }

        public void Touch(long now) => Volatile.Write(ref LastActivity, now);

        /// <summary>Ends the relay once, carrying a reset to either side (RST to the application, RST upstream by a zero linger close).</summary>
        public void End(string reason, bool resetApp, bool resetUpstream)
        {
            if (Interlocked.Exchange(ref _ended, 1) != 0) return;
            Reason = reason;
            if (resetApp) App.Abort();
            if (resetUpstream)
            {
                try
                {
                    Upstream.LingerState = new LingerOption(true, 0);
                    Upstream.Close();
                }
                catch (ObjectDisposedException) { }
                catch (SocketException) { }
            }
            Stop.Cancel();
        }

        public override string ToString() => Flow;
    }
}

/// <summary>Counters of a <see cref="FlowForwarder"/>.</summary>
public sealed class ForwarderStatistics
{
    internal long tcpFlows, tcpAccepted, tcpRefused, tcpUnreachable, tcpTimedOut, tcpOverLimit, tcpIdleReset, bytesUp, bytesDown;

    /// <summary>TCP flows the stack offered.</summary>
    public long TcpFlows => Volatile.Read(ref tcpFlows);
    /// <summary>Of those: relayed (upstream connected), refused (RST), unreachable (ICMP), timed out (dropped), refused for the connection limit.</summary>
    public long TcpAccepted => Volatile.Read(ref tcpAccepted);
    public long TcpRefused => Volatile.Read(ref tcpRefused);
    public long TcpUnreachable => Volatile.Read(ref tcpUnreachable);
    public long TcpTimedOut => Volatile.Read(ref tcpTimedOut);
    public long TcpOverLimit => Volatile.Read(ref tcpOverLimit);
    /// <summary>Relays reset for idleness.</summary>
    public long TcpIdleReset => Volatile.Read(ref tcpIdleReset);
    /// <summary>Bytes of finished TCP relays, application to upstream and back.</summary>
    public long BytesUp => Volatile.Read(ref bytesUp);
    public long BytesDown => Volatile.Read(ref bytesDown);

    internal void AddBytes(long up, long down)
    {
        Interlocked.Add(ref bytesUp, up);
        Interlocked.Add(ref bytesDown, down);
    }
}
