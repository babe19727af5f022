using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>Told when a listener has a connection ready to accept.</summary>
internal interface ITcpListenObserver
{
    void OnAcceptable(TcpListenQueue listener);
}

/// <summary>
/// A passive open (RFC 9293 3.10.7.2, LISTEN state): it answers SYNs by creating connections in
/// SYN-RECEIVED, holds at most <see cref="TcpSettings.SynBacklog"/> of them (further SYNs are
/// dropped, so a SYN flood cannot grow memory), and queues completed connections, at most
/// <see cref="Backlog"/>, until the application accepts them.
/// </summary>
internal sealed class TcpListenQueue
{
    private readonly TcpSettings _settings;
    private readonly TcpEnvironment _env;
    private readonly int _mtu;
    private readonly Queue<TcpConnection> _accepted = new();
    private int _halfOpen;
    /// <summary>When this listener last answered a SYN with a cookie: only then are stray ACKs checked for one.</summary>
    private Instant _lastCookieAt = Instant.Never;

    public TcpListenQueue(IpAddress localAddress, ushort port, int backlog, TcpSettings settings, TcpEnvironment env, int mtu)
    {
        if (backlog < 1) throw new ArgumentOutOfRangeException(nameof(backlog), "backlog must be at least 1");
        settings.Validate();
        LocalAddress = localAddress;
        Port = port;
        Backlog = backlog;
        _settings = settings;
        _env = env;
        _mtu = mtu;
    }

    /// <summary>
    /// The address listened on: one of the stack's, or a wildcard (<see cref="IpAddress.AnyV4"/>
    /// for every IPv4 address, <see cref="IpAddress.AnyV6"/> for every IPv6 one and, with
    /// dual mode, every IPv4 one too).
    /// </summary>
    public IpAddress LocalAddress { get; }

    public ushort Port { get; }

    /// <summary>An IPv6 wildcard listener that takes IPv4 connections too (IPV6_V6ONLY off).</summary>
    public bool DualMode { get; init; }

    /// <summary>Completed connections that may wait for <see cref="TryAccept"/>.</summary>
    public int Backlog { get; }

    public int HalfOpenCount => _halfOpen;

    public int PendingAcceptCount => _accepted.Count;

    public bool IsClosed { get; private set; }

    public ITcpListenObserver? Observer { get; set; }

    /// <summary>
    /// A segment for the listening port that matches no connection (RFC 9293 3.10.7.2):
    /// RST is ignored; an ACK gets &lt;SEQ=SEG.ACK&gt;&lt;CTL=RST&gt;, unless it returns a valid
    /// SYN cookie of ours; a SYN creates a connection in SYN-RECEIVED (returned, for the owner to
    /// register under its 4-tuple), or, with the half-open queue full, gets a stateless SYN-ACK
    /// with a cookie (RFC 4987 3.6); anything else is dropped. A connection rebuilt from a cookie
    /// is returned in SYN-RECEIVED (<see cref="TcpConnection.FromSynCookie"/>): the owner registers
    /// it and then gives it the same ACK, which completes it.
    /// </summary>
    /// <param name="allowCookie">False for a 4-tuple whose connection has just closed: its late ACKs are no cookies.</param>
    public TcpConnection? OnSegment(TcpTuple tuple, in TcpSegment seg, Instant now, ITcpOutput output, bool allowCookie = true)
    {
        if (IsClosed) return null;
        if (seg.Rst) return null;
        if (seg.Ack && !seg.Syn && allowCookie && CookiesRecentlySent(now))
        {
            if (TcpConnection.FromCookie(tuple, seg, _settings, _env, _mtu, this, now) is { } rebuilt)
            {
                // Linux: with a full accept queue the completing ACK is dropped (the peer repeats it).
                if (_accepted.Count >= Backlog)
                {
                    _env.Statistics.AcceptQueueDrops++;
                    return null;
                }
                // Returned in SYN-RECEIVED: the owner registers it, then hands it this same ACK.
                _env.Statistics.SynCookiesValidated++;
                _halfOpen++;
                return rebuilt;
            }
            _env.Statistics.SynCookiesFailed++;
        }
        if (seg.Ack)
        {
            var reset = new TcpHeader(tuple.LocalPort, tuple.RemotePort, seg.Acknowledgment, default, TcpFlags.Rst, 0);
            output.Send(tuple, reset, default, default, default);
            _env.Statistics.ResetsSent++;
            return null;
        }
        if (!seg.Syn) return null;
        if (_halfOpen >= _settings.SynBacklog)
        {
            if (_settings.SynCookies)
            {
                TcpConnection.SendCookieSynAck(tuple, seg, _settings, _env, _mtu, now, output);
                _env.Statistics.SynCookiesSent++;
                _lastCookieAt = now;
            }
            else
            {
                _env.Statistics.SynBacklogDrops++;
            }
            return null;
        }
        _halfOpen++;
        return TcpConnection.AcceptSyn(tuple, seg, _settings, _env, _mtu, this, now, output);
    }

    /// <summary>
    /// Catch-all mode's listener (not bound to any port): connections leave it as soon as their
    /// handshake completes instead of queueing for <see cref="TryAccept"/>; their owner got them at
    /// <see cref="Admit"/>.
    /// </summary>
    internal bool Detached { get; init; }

    /// <summary>
    /// A SYN the owner already decided to answer (catch-all mode: the flow handler accepted it):
    /// a connection in SYN-RECEIVED, no backlog check (the owner's table of pending flows bounds them).
    /// </summary>
    internal TcpConnection Admit(TcpTuple tuple, in TcpSegment syn, Instant now, ITcpOutput output)
    {
        _halfOpen++;
        return TcpConnection.AcceptSyn(tuple, syn, _settings, _env, _mtu, this, now, output);
    }

    /// <summary>Cookies are looked for only while one this listener sent may still be valid (Linux: tcp_synq_no_recent_overflow).</summary>
    private bool CookiesRecentlySent(Instant now) =>
        !_lastCookieAt.IsNever && now.Microseconds - _lastCookieAt.Microseconds < (long)TcpEnvironment.CookieMaxAge << TcpEnvironment.CookiePeriodShift;

    /// <summary>Linux drops the handshake-completing ACK while the accept queue is full.</summary>
    internal bool CanComplete(TcpConnection connection) => !IsClosed && _accepted.Count < Backlog;

    internal void OnStateChanged(TcpConnection connection, TcpConnectionState old)
    {
        if (old == TcpConnectionState.SynReceived) _halfOpen--;
        if (connection.State == TcpConnectionState.Established && old == TcpConnectionState.SynReceived && Detached)
        {
            connection.Listener = null;
        }
        else if (connection.State == TcpConnectionState.Established && old == TcpConnectionState.SynReceived)
        {
            _accepted.Enqueue(connection);
            Observer?.OnAcceptable(this);
        }
        else if (connection.State != TcpConnectionState.SynReceived)
        {
            // Died before completing the handshake: it was never offered to the application.
            if (old == TcpConnectionState.SynReceived) connection.Listener = null;
        }
    }

    /// <summary>Takes the oldest completed connection; it no longer belongs to the listener.</summary>
    public bool TryAccept(out TcpConnection connection)
    {
        if (_accepted.TryDequeue(out var c))
        {
            c.Listener = null;
            connection = c;
            return true;
        }
        connection = null!;
        return false;
    }

    /// <summary>Stops listening; returns the connections nobody accepted, for the owner to abort.</summary>
    public List<TcpConnection> Close()
    {
        IsClosed = true;
        var orphans = new List<TcpConnection>(_accepted);
        _accepted.Clear();
        foreach (var c in orphans) c.Listener = null;
        return orphans;
    }
}
