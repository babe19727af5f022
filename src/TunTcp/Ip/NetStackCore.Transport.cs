using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Ip;

/// <summary>The stack core's record of one connection: the engine plus the owner's bookkeeping.</summary>
public sealed class ConnectionEntry
{
    internal ConnectionEntry(TcpConnection connection) => Connection = connection;

    public TcpConnection Connection { get; }

    /// <summary>The deadline of this entry's live timer-heap item, or never.</summary>
    internal Instant Scheduled = Instant.Never;

    internal bool Removed;

    /// <summary>Queued for a flush at the end of the current receive batch.</summary>
    internal bool FlushPending;

    /// <summary>Work the application asked for (<see cref="PendingWork"/> bits), set from any thread.</summary>
    internal int Pending;
}

/// <summary>Application-side work on a connection that the stack thread must pick up.</summary>
[Flags]
public enum PendingWork
{
    None = 0,
    SendBufferWritten = 1,
    ReceiveBufferRead = 2,
    /// <summary>Half-close after the queued data (deferred so observers never re-enter the engine).</summary>
    ShutdownSend = 4,
    /// <summary>Full close.</summary>
    Close = 8,
    /// <summary>Reset.</summary>
    Abort = 16,
}

public sealed partial class NetStackCore
{
    /// <summary>IANA dynamic port range (RFC 6335 6) for ephemeral local ports.</summary>
    public const int EphemeralPortFirst = 49152, EphemeralPortLast = 65535;

    private readonly Dictionary<TcpTuple, ConnectionEntry> _connections = new();
    private readonly Dictionary<(Ipv4Address Address, ushort Port), TcpListenQueue> _listeners = new();
    private readonly PriorityQueue<ConnectionEntry, long> _timers = new();
    private readonly Dictionary<ushort, UdpBinding> _udp = new();

    /// <summary>Connections that received segments in the current batch and have not sent yet.</summary>
    private readonly List<ConnectionEntry> _flush = new();

    /// <summary>Connections whose application side has work (written/read), drained by the stack thread.</summary>
    private readonly System.Collections.Concurrent.ConcurrentQueue<ConnectionEntry> _ready = new();

    /// <summary>Called (from any thread) when <see cref="MarkReady"/> queued work; the runtime wakes the stack thread.</summary>
    public Action? ReadyCallback { get; set; }

    public TcpEnvironment TcpEnvironment => _tcpEnv;
    public TcpSettings TcpSettings => _tcpSettings;
    public int ConnectionCount => _connections.Count;
    public int ListenerCount => _listeners.Count;

    /// <summary>Connections by state, for statistics pages.</summary>
    public Dictionary<TcpState, int> CountConnectionsByState()
    {
        var counts = new Dictionary<TcpState, int>();
        foreach (var e in _connections.Values)
            counts[e.Connection.State] = counts.GetValueOrDefault(e.Connection.State) + 1;
        return counts;
    }

    /// <summary>Every live connection (stack thread only).</summary>
    public IEnumerable<TcpConnection> Connections => _connections.Values.Select(e => e.Connection);

    /// <summary>The instant of the earliest timer of any connection, or <see cref="Instant.Never"/>.</summary>
    public Instant NextDeadline
    {
        get
        {
            if (_flush.Count > 0) return Now; // a receive batch still owes its answers

            while (_timers.TryPeek(out var e, out long at))
            {
                if (!e.Removed && e.Scheduled.Microseconds == at) return new Instant(at);
                _timers.Dequeue(); // stale: rescheduled or removed since
            }
            return Instant.Never;
        }
    }

    /// <summary>The instant of the latest <see cref="Receive"/> or <see cref="Poll"/> (for handlers on the stack thread).</summary>
    public Instant Now { get; private set; }

    /// <summary>Runs application work and due timers, sending whatever became due.</summary>
    public void Poll(Instant now)
    {
        Now = now;
        // End of a receive batch: each connection that got segments answers once.
        for (int i = 0; i < _flush.Count; i++)
        {
            var e = _flush[i];
            e.FlushPending = false;
            if (e.Removed) continue;
            e.Connection.Flush(now, this);
            AfterTouch(e);
        }
        _flush.Clear();
        while (_ready.TryDequeue(out var entry))
        {
            var work = (PendingWork)Interlocked.Exchange(ref entry.Pending, 0);
            if (entry.Removed) continue;
            var c = entry.Connection;
            if ((work & PendingWork.SendBufferWritten) != 0) c.OnSendBufferWritten(now, this);
            if ((work & PendingWork.ReceiveBufferRead) != 0 && c.State != TcpState.Closed) c.OnReceiveBufferRead(now, this);
            if ((work & PendingWork.Abort) != 0 && c.State != TcpState.Closed) c.Abort(now, this);
            if ((work & PendingWork.Close) != 0 && c.State != TcpState.Closed) c.Close(now, this);
            if ((work & PendingWork.ShutdownSend) != 0 && c.State != TcpState.Closed) c.ShutdownSend(now, this);
            AfterTouch(entry);
        }
        while (_timers.TryPeek(out var e, out long at) && at <= now.Microseconds)
        {
            _timers.Dequeue();
            if (e.Removed || e.Scheduled.Microseconds != at) continue;
            e.Scheduled = Instant.Never;
            e.Connection.Poll(now, this);
            AfterTouch(e);
        }
    }

    /// <summary>Asks the stack thread to process application work on a connection. Safe from any thread.</summary>
    public void MarkReady(ConnectionEntry entry, PendingWork work)
    {
        if (Interlocked.Or(ref entry.Pending, (int)work) != 0) return; // already queued
        _ready.Enqueue(entry);
        ReadyCallback?.Invoke();
    }

    /// <summary>Half-closes a connection (stack thread only): a FIN after its queued data.</summary>
    public void ShutdownSend(TcpConnection connection, Instant now) => Touch(connection, now, static (c, n, o) => c.ShutdownSend(n, o));

    /// <summary>Closes a connection fully (stack thread only); a reset if unread data is pending.</summary>
    public void Close(TcpConnection connection, Instant now) => Touch(connection, now, static (c, n, o) => c.Close(n, o));

    /// <summary>Resets a connection (stack thread only).</summary>
    public void Abort(TcpConnection connection, Instant now) => Touch(connection, now, static (c, n, o) => c.Abort(n, o));

    private void Touch(TcpConnection connection, Instant now, Action<TcpConnection, Instant, ITcpOutput> action)
    {
        if (connection.State == TcpState.Closed) return;
        action(connection, now, this);
        if (FindEntry(connection) is { } entry) AfterTouch(entry);
    }

    /// <summary>After any call into a connection: reschedule its timer, or forget it once CLOSED.</summary>
    private void AfterTouch(ConnectionEntry entry)
    {
        var c = entry.Connection;
        if (c.State == TcpState.Closed)
        {
            if (!entry.Removed)
            {
                entry.Removed = true;
                _connections.Remove(c.Tuple);
            }
            return;
        }
        var deadline = c.NextDeadline;
        if (deadline.IsNever || deadline >= entry.Scheduled && !entry.Scheduled.IsNever) return;
        entry.Scheduled = deadline;
        _timers.Enqueue(entry, deadline.Microseconds);
    }

    /// <summary>The entry of a live connection (stack thread only), for <see cref="MarkReady"/>.</summary>
    public ConnectionEntry? FindEntry(TcpConnection connection) =>
        _connections.TryGetValue(connection.Tuple, out var e) && e.Connection == connection ? e : null;

    private void Register(TcpConnection connection)
    {
        var entry = new ConnectionEntry(connection);
        _connections.Add(connection.Tuple, entry);
        AfterTouch(entry);
    }

    /// <summary>Hands a TCP segment to its connection or listener; false when there is none (closed port).</summary>
    private bool DeliverTcp(in TcpTuple tuple, in TcpSegment segment, Instant now)
    {
        if (_connections.TryGetValue(tuple, out var entry))
        {
            var result = entry.Connection.OnSegment(segment, now, this, transmit: false);
            if (!entry.FlushPending) { entry.FlushPending = true; _flush.Add(entry); }
            AfterTouch(entry);
            if (result != TcpSegmentResult.ReopenFromTimeWait) return true;
        }
        var listener = FindListener(tuple.LocalAddress, tuple.LocalPort);
        if (listener is null) return false;
        var created = listener.OnSegment(tuple, segment, now, this);
        if (created is not null)
        {
            Register(created);
            Statistics.tcpConnectionsOpened++;
        }
        return true;
    }

    private TcpListenQueue? FindListener(Ipv4Address address, ushort port) =>
        _listeners.GetValueOrDefault((address, port)) ?? _listeners.GetValueOrDefault((Ipv4Address.Any, port));

    /// <summary>Starts listening (stack thread only).</summary>
    /// <exception cref="InvalidOperationException">The address and port are taken.</exception>
    public TcpListenQueue Listen(Ipv4Address address, ushort port, int backlog, TcpSettings? settings = null)
    {
        if (!address.IsAny && address != _options.Address)
            throw new ArgumentException($"{address} is not this stack's address ({_options.Address}).", nameof(address));
        if (port == 0) port = AllocateListenPort();
        if (_listeners.ContainsKey((address, port)) || _listeners.ContainsKey((Ipv4Address.Any, port))
            || (address.IsAny && _listeners.ContainsKey((_options.Address, port))))
            throw new InvalidOperationException($"TCP port {port} is already in use.");
        var listener = new TcpListenQueue(address, port, backlog, settings ?? _tcpSettings, _tcpEnv, _options.Mtu);
        _listeners.Add((address, port), listener);
        return listener;
    }

    /// <summary>Stops a listener; connections it had completed but nobody accepted are reset.</summary>
    public void StopListening(TcpListenQueue listener, Instant now)
    {
        if (!_listeners.Remove((listener.LocalAddress, listener.Port))) return;
        foreach (var orphan in listener.Close())
        {
            orphan.Abort(now, this);
            if (_connections.TryGetValue(orphan.Tuple, out var e)) AfterTouch(e);
        }
    }

    /// <summary>Active open to <paramref name="remote"/>:<paramref name="remotePort"/> from an ephemeral port (stack thread only).</summary>
    public TcpConnection Connect(Ipv4Address remote, ushort remotePort, Instant now, TcpSettings? settings = null, ushort localPort = 0)
    {
        if (remotePort == 0) throw new ArgumentOutOfRangeException(nameof(remotePort), "port 0 cannot be connected to");
        TcpTuple tuple;
        if (localPort != 0)
        {
            tuple = new TcpTuple(_options.Address, localPort, remote, remotePort);
            if (_connections.ContainsKey(tuple)) throw new InvalidOperationException($"{tuple} is already in use.");
        }
        else tuple = AllocateEphemeral(remote, remotePort);
        var connection = TcpConnection.Connect(tuple, settings ?? _tcpSettings, _tcpEnv, _options.Mtu, now);
        Register(connection);
        Statistics.tcpConnectionsOpened++;
        connection.Poll(now, this);
        AfterTouch(_connections[tuple]);
        return connection;
    }

    private TcpTuple AllocateEphemeral(Ipv4Address remote, ushort remotePort)
    {
        // RFC 6056 3.3.1 (Algorithm 1): start at a random port in the range and search upward.
        const int count = EphemeralPortLast - EphemeralPortFirst + 1;
        int start = (int)(_tcpEnv.Random.NextUInt32() % count);
        for (int i = 0; i < count; i++)
        {
            var port = (ushort)(EphemeralPortFirst + (start + i) % count);
            var tuple = new TcpTuple(_options.Address, port, remote, remotePort);
            if (!_connections.ContainsKey(tuple) && FindListener(_options.Address, port) is null) return tuple;
        }
        throw new InvalidOperationException("No ephemeral port is free for this destination.");
    }

    private ushort AllocateListenPort()
    {
        const int count = EphemeralPortLast - EphemeralPortFirst + 1;
        int start = (int)(_tcpEnv.Random.NextUInt32() % count);
        for (int i = 0; i < count; i++)
        {
            var port = (ushort)(EphemeralPortFirst + (start + i) % count);
            if (FindListener(_options.Address, port) is null) return port;
        }
        throw new InvalidOperationException("No free port to listen on.");
    }

    /// <summary>Resets every connection and stops every listener (abortive shutdown; stack thread only).</summary>
    public void AbortAll(Instant now)
    {
        foreach (var listener in _listeners.Values.ToList()) StopListening(listener, now);
        foreach (var entry in _connections.Values.ToList())
        {
            entry.Connection.Abort(now, this);
            AfterTouch(entry);
        }
    }

    /// <summary>Starts an orderly close (FIN) of every connection and stops every listener (stack thread only).</summary>
    public void CloseAll(Instant now)
    {
        foreach (var listener in _listeners.Values.ToList()) StopListening(listener, now);
        foreach (var entry in _connections.Values.ToList())
        {
            entry.Connection.Close(now, this);
            AfterTouch(entry);
        }
    }

    // ---- UDP ----

    /// <summary>Binds a UDP port (0: an ephemeral one). Stack thread only.</summary>
    public UdpBinding BindUdp(ushort port, int receiveQueueLimit = 256)
    {
        if (port == 0)
        {
            const int count = EphemeralPortLast - EphemeralPortFirst + 1;
            int start = (int)(_tcpEnv.Random.NextUInt32() % count);
            for (int i = 0; i < count && port == 0; i++)
            {
                var p = (ushort)(EphemeralPortFirst + (start + i) % count);
                if (!_udp.ContainsKey(p)) port = p;
            }
            if (port == 0) throw new InvalidOperationException("No free UDP port.");
        }
        if (_udp.ContainsKey(port)) throw new InvalidOperationException($"UDP port {port} is already in use.");
        var binding = new UdpBinding(this, port, receiveQueueLimit);
        _udp.Add(port, binding);
        return binding;
    }

    internal void UnbindUdp(UdpBinding binding) => _udp.Remove(binding.Port);

    /// <summary>Hands a datagram to its bound socket; false when no socket is bound to the port.</summary>
    private bool DeliverUdp(Ipv4Packet ip, UdpDatagram udp, Instant now)
    {
        if (!_udp.TryGetValue(udp.DestinationPort, out var binding)) return false;
        if (!binding.Enqueue(ip.Source, udp.SourcePort, udp.Payload)) Statistics.udpReceiveQueueFull++;
        return true;
    }

    /// <summary>Sends one UDP datagram from <paramref name="sourcePort"/> (stack thread only).</summary>
    public void SendUdp(ushort sourcePort, Ipv4Address destination, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        int max = _options.Mtu - Ipv4Header.Length - UdpHeader.Length;
        if (payload.Length > max)
            throw new ArgumentException($"A datagram of {payload.Length} bytes does not fit the MTU (at most {max}; TunTcp does not fragment).", nameof(payload));
        var datagram = _tx.AsSpan(Ipv4Header.Length, UdpHeader.Length + payload.Length);
        new UdpHeader(sourcePort, destinationPort, payload.Length).Write(datagram);
        payload.CopyTo(datagram[UdpHeader.Length..]);
        UdpHeader.WriteChecksum(datagram, _options.Address, destination);
        Statistics.udpDatagramsSent++;
        SendIp(destination, IpProtocol.Udp, datagram.Length);
    }
}
