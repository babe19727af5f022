using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Ip;

/// <summary>The stack core's record of one connection: the engine plus the owner's bookkeeping.</summary>
internal sealed class ConnectionEntry
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
internal enum PendingWork
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

internal sealed partial class NetStackCore
{
    /// <summary>IANA dynamic port range (RFC 6335 6) for ephemeral local ports.</summary>
    public const int EphemeralPortFirst = EphemeralPorts.First, EphemeralPortLast = EphemeralPorts.Last;

    private readonly Dictionary<TcpTuple, ConnectionEntry> _connections = new();
    private readonly PortTable<TcpListenQueue> _listeners = new();
    private readonly PriorityQueue<ConnectionEntry, long> _timers = new();
    private readonly PortTable<UdpBinding> _udp = new();

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
    public Dictionary<TcpConnectionState, int> CountConnectionsByState()
    {
        var counts = new Dictionary<TcpConnectionState, int>();
        foreach (var e in _connections.Values)
            counts[e.Connection.State] = counts.GetValueOrDefault(e.Connection.State) + 1;
        return counts;
    }

    /// <summary>The <c>tuntcp.stack</c> tag of this core's metrics (set by its <see cref="NetStack"/>).</summary>
    internal int MetricsId { get; set; }

    /// <summary>Half-open connections and completed ones waiting for accept, over every listener (stack thread only).</summary>
    public (int HalfOpen, int Accept) ListenQueueDepths()
    {
        int halfOpen = 0, accept = 0;
        foreach (var listener in _listeners.Values)
        {
            halfOpen += listener.HalfOpenCount;
            accept += listener.PendingAcceptCount;
        }
        return (halfOpen, accept);
    }

    /// <summary>Every live connection (stack thread only).</summary>
    public IEnumerable<TcpConnection> Connections => _connections.Values.Select(e => e.Connection);

    /// <summary>The instant of the earliest timer of any connection or datagram in reassembly, or <see cref="Instant.Never"/>.</summary>
    public Instant NextDeadline
    {
        get
        {
            if (_flush.Count > 0) return Now; // a receive batch still owes its answers
            var fragments = Instant.Min(Instant.Min(_reassembler.NextDeadline, _nextFlowSweep), NextReclaim);
            while (_timers.TryPeek(out var e, out long at))
            {
                if (!e.Removed && e.Scheduled.Microseconds == at) return Instant.Min(new Instant(at), fragments);
                _timers.Dequeue(); // stale: rescheduled or removed since
            }
            return fragments;
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
            if ((work & PendingWork.ReceiveBufferRead) != 0 && c.State != TcpConnectionState.Closed) c.OnReceiveBufferRead(now, this);
            if ((work & PendingWork.Abort) != 0 && c.State != TcpConnectionState.Closed) c.Abort(now, this);
            if ((work & PendingWork.Close) != 0 && c.State != TcpConnectionState.Closed) c.Close(now, this);
            if ((work & PendingWork.ShutdownSend) != 0 && c.State != TcpConnectionState.Closed) c.ShutdownSend(now, this);
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
        if (_reassembler.NextDeadline <= now) ExpireFragments(now);
        if (_nextFlowSweep <= now) ExpireFlows(now);
        if (NextReclaim <= now) ReclaimMemory(now);
    }

    private static readonly TimeSpan ReclaimInterval = TimeSpan.FromMilliseconds(100);
    private Instant _lastReclaim = Instant.FromMilliseconds(0);

    /// <summary>While the memory budget is under pressure, every <see cref="ReclaimInterval"/>; otherwise never.</summary>
    private Instant NextReclaim => _tcpEnv.Memory is { UnderPressure: true } ? _lastReclaim + ReclaimInterval : Instant.Never;

    /// <summary>
    /// Under memory pressure: every connection gives back what its receive ring holds beyond its
    /// data; at the limit, out-of-order data goes first (Linux tcp_prune_ofo_queue, sk_mem_reclaim).
    /// </summary>
    private void ReclaimMemory(Instant now)
    {
        _lastReclaim = now;
        bool prune = _tcpEnv.Memory!.OverLimit;
        foreach (var entry in _connections.Values)
        {
            if (entry.Connection.ReclaimMemory(prune) > 0 && !_tcpEnv.Memory.UnderPressure) break;
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
        if (connection.State == TcpConnectionState.Closed) return;
        action(connection, now, this);
        if (FindEntry(connection) is { } entry) AfterTouch(entry);
    }

    /// <summary>After any call into a connection: reschedule its timer, or forget it once CLOSED.</summary>
    private void AfterTouch(ConnectionEntry entry)
    {
        var c = entry.Connection;
        if (c.State == TcpConnectionState.Closed)
        {
            if (!entry.Removed)
            {
                entry.Removed = true;
                _connections.Remove(c.Tuple);
                c.ReleaseMemory();
                if (c.Error == TcpError.None) RememberClosed(c.Tuple);
                // The one place a connection is forgotten, so opened = closed + live always holds.
                Statistics.tcpConnectionsClosed++;
                TunTcpMetrics.RecordClosed(c, Now, MetricsId);
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
        ApplyKnownPathMtu(connection);
        _connections.Add(connection.Tuple, entry);
        AfterTouch(entry);
    }

    // ---- TCP ----

    private void ReceiveTcp(in Inbound ip, Instant now)
    {
        if (!TcpPacket.TryParse(ip.Payload, out var tcp, out var error))
        {
            Statistics.malformedDropped++;
            _log.LogDebug("dropped TCP segment: {Reason}", error.Describe());
            return;
        }
        if (!_checksumTrusted && !tcp.IsChecksumValid(ip.Source, ip.Destination)) { Statistics.badChecksumDropped++; return; }
        Statistics.tcpSegmentsReceived++;
        var tuple = new TcpTuple(ip.Destination, tcp.DestinationPort, ip.Source, tcp.SourcePort);
        // RFC 3168 5: the ECN field, the low bits of the IPv4 TOS byte or of the IPv6 traffic class.
        int ecn = ip.Packet[0] >> 4 == 4 ? ip.Packet[1] & 3 : (ip.Packet[1] >> 4) & 3;
        var segment = TcpSegment.From(tcp, congestionExperienced: ecn == (int)IpEcn.Ce);
        if (DeliverTcp(tuple, segment, now)) return;
        if (OfferTcpFlow(tuple, segment, ip, now)) return;
        if (TcpReset.TryCreateForClosed(segment, tuple.LocalPort, tuple.RemotePort, out var reset))
        {
            Statistics.tcpResetsSent++;
            Send(tuple, reset, default, default, default);
        }
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
        // In catch-all mode a wildcard listener still serves only the stack's own addresses.
        if (_flows is not null && !IsLocalAddress(tuple.LocalAddress)) return false;
        var listener = _listeners.Find(tuple.LocalAddress, tuple.LocalPort);
        if (listener is null) return false;
        bool recentlyClosed = WasRecentlyClosed(tuple, segment.Syn, now);
        var created = listener.OnSegment(tuple, segment, now, this, allowCookie: !recentlyClosed);
        if (created is not null)
        {
            Register(created);
            Statistics.tcpConnectionsOpened++;
            // Rebuilt from a SYN cookie: the ACK that carried the cookie completes the handshake.
            if (created.FromSynCookie && created.State == TcpConnectionState.SynReceived) return DeliverTcp(tuple, segment, now);
        }
        return true;
    }

    // 4-tuples whose connection ended in an orderly close, for as long as the peer's TIME-WAIT
    // may still answer (Linux: 60 s). A late duplicate ACK from it (it answers a FIN we
    // retransmitted after the first ACK had already closed us) decodes as a valid SYN cookie, as
    // both FINs moved SEG.SEQ and SEG.ACK by one; without this it would rebuild a connection that
    // nothing ever ends. Bounded: the oldest go first. A SYN on the tuple (a new incarnation)
    // clears its entry.
    private static readonly TimeSpan RecentlyClosedLifetime = TimeSpan.FromSeconds(60);
    private const int RecentlyClosedLimit = 65_536;
    private readonly Dictionary<TcpTuple, Instant> _recentlyClosed = [];
    private readonly Queue<(TcpTuple Tuple, Instant Until)> _recentlyClosedOrder = new();

    private void RememberClosed(in TcpTuple tuple)
    {
        var until = Now + RecentlyClosedLifetime;
        while (_recentlyClosedOrder.TryPeek(out var oldest) && (oldest.Until <= Now || _recentlyClosedOrder.Count >= RecentlyClosedLimit))
        {
            _recentlyClosedOrder.Dequeue();
            // Only if this is still the entry's own deadline (the tuple may have closed again since).
            if (_recentlyClosed.TryGetValue(oldest.Tuple, out var at) && at == oldest.Until) _recentlyClosed.Remove(oldest.Tuple);
        }
        _recentlyClosed[tuple] = until;
        _recentlyClosedOrder.Enqueue((tuple, until));
    }

    private bool WasRecentlyClosed(in TcpTuple tuple, bool syn, Instant now)
    {
        if (_recentlyClosed.Count == 0 || !_recentlyClosed.TryGetValue(tuple, out var until)) return false;
        if (syn || until <= now)
        {
            _recentlyClosed.Remove(tuple);
            return false;
        }
        _tcpEnv.Statistics.CookieAcksAfterClose++;
        return true;
    }

    /// <summary>
    /// Checks that <paramref name="address"/> is one of ours or a wildcard that this stack can
    /// serve, the way bind(2) does.
    /// </summary>
    /// <exception cref="SocketException">
    /// AddressNotAvailable (not one of the stack's addresses, EADDRNOTAVAIL) or
    /// AddressFamilyNotSupported (the stack has no address of that family).
    /// </exception>
    private void CheckBindable(IpAddress address, bool dualMode)
    {
        if (address.IsAny)
        {
            bool served = address.IsV4 ? HasIpv4 : HasIpv6 || (dualMode && HasIpv4);
            if (!served) throw new SocketException((int)SocketError.AddressFamilyNotSupported,
                $"this stack has no {(address.IsV4 ? "IPv4" : "IPv6")} address");
            return;
        }
        if (address.IsV4 ? !HasIpv4 : !HasIpv6)
            throw new SocketException((int)SocketError.AddressFamilyNotSupported,
                $"this stack has no {(address.IsV4 ? "IPv4" : "IPv6")} address");
        if (!IsLocalAddress(address))
            throw new SocketException((int)SocketError.AddressNotAvailable,
                $"{address} is not an address of this stack ({DescribeAddresses()})");
    }

    /// <summary>The stack's addresses, for messages: "192.168.0.2, fd00:7475:6e::2".</summary>
    public string DescribeAddresses() =>
        string.Join(", ", new[] { HasIpv4 ? _address4.ToString() : null, HasIpv6 ? _address6.ToString() : null }.Where(a => a is not null));

    /// <summary>
    /// Starts listening (stack thread only) on one of the stack's addresses or a wildcard; the IPv6
    /// wildcard with <paramref name="dualMode"/> takes IPv4 connections too (as a dual-mode socket).
    /// Port 0 picks a free ephemeral port.
    /// </summary>
    /// <exception cref="SocketException">AddressAlreadyInUse, AddressNotAvailable, AddressFamilyNotSupported.</exception>
    public TcpListenQueue Listen(IpAddress address, ushort port, int backlog, TcpSettings? settings = null, bool dualMode = true)
    {
        dualMode &= address == IpAddress.AnyV6;
        CheckBindable(address, dualMode);
        if (port == 0) port = EphemeralPorts.Find(_tcpEnv.Random, _listeners, static (l, p) => l.IsPortFree(p));
        if (_listeners.Conflicts(address, port, dualMode))
            throw new SocketException((int)SocketError.AddressAlreadyInUse, $"TCP port {port} is already in use");
        var listener = new TcpListenQueue(address, port, backlog, settings ?? _tcpSettings, _tcpEnv, _options.Mtu) { DualMode = dualMode };
        _listeners.Add(address, port, dualMode, listener);
        return listener;
    }

    /// <summary>Stops a listener; connections it had completed but nobody accepted are reset.</summary>
    public void StopListening(TcpListenQueue listener, Instant now)
    {
        if (!_listeners.Remove(listener.LocalAddress, listener.Port, listener)) return;
        foreach (var orphan in listener.Close())
        {
            orphan.Abort(now, this);
            if (_connections.TryGetValue(orphan.Tuple, out var e)) AfterTouch(e);
        }
    }

    /// <summary>
    /// Active open to <paramref name="remote"/>:<paramref name="remotePort"/> from the stack's
    /// address of that family and an ephemeral port, or <paramref name="localPort"/> (stack thread only).
    /// </summary>
    /// <exception cref="SocketException">
    /// AddressFamilyNotSupported (no address of the remote's family), AddressAlreadyInUse (the chosen
    /// local port is taken towards that remote), AddressNotAvailable (no ephemeral port is free).
    /// </exception>
    public TcpConnection Connect(IpAddress remote, ushort remotePort, Instant now, TcpSettings? settings = null, ushort localPort = 0)
    {
        if (remotePort == 0) throw new ArgumentOutOfRangeException(nameof(remotePort), "port 0 cannot be connected to");
        if (remote.IsAny || remote.IsMulticastOrBroadcast)
            throw new SocketException((int)SocketError.AddressNotAvailable, $"{remote} is not a unicast address");
        var local = SourceFor(remote);
        TcpTuple tuple;
        if (localPort != 0)
        {
            tuple = new TcpTuple(local, localPort, remote, remotePort);
            if (_connections.ContainsKey(tuple))
                throw new SocketException((int)SocketError.AddressAlreadyInUse, $"{tuple} is already in use");
        }
        else
        {
            var port = EphemeralPorts.Find(_tcpEnv.Random, (this, local, remote, remotePort),
                static (s, p) => !s.Item1._connections.ContainsKey(new TcpTuple(s.local, p, s.remote, s.remotePort)) && s.Item1._listeners.Find(s.local, p) is null);
            tuple = new TcpTuple(local, port, remote, remotePort);
        }
        var connection = TcpConnection.Connect(tuple, settings ?? _tcpSettings, _tcpEnv, _options.Mtu, now);
        Register(connection);
        Statistics.tcpConnectionsOpened++;
        connection.Poll(now, this);
        AfterTouch(_connections[tuple]);
        return connection;
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
        _reassembler.Clear();
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

    private void ReceiveUdp(in Inbound ip, Instant now)
    {
        if (!UdpDatagram.TryParse(ip.Payload, out var udp, out _)) { Statistics.malformedDropped++; return; }
        if (!_checksumTrusted && !udp.IsChecksumValid(ip.Source, ip.Destination)) { Statistics.badChecksumDropped++; return; }
        Statistics.udpDatagramsReceived++;
        if ((_flows is null || IsLocalAddress(ip.Destination)) && _udp.Find(ip.Destination, udp.DestinationPort) is { } binding)
        {
            if (!binding.Enqueue(ip.Source, udp.SourcePort, udp.Payload)) Statistics.udpReceiveQueueFull++;
            return;
        }
        if (OfferUdpDatagram(ip, udp, now)) return;
        // RFC 1122 4.1.3.1 / RFC 4443 3.1: a datagram to a port with no listener gets ICMP port unreachable.
        bool sent = ip.Source.IsV4
            ? SendIcmpv4Error(ip.Packet, Icmpv4Type.DestinationUnreachable, (byte)Icmpv4UnreachableCode.PortUnreachable, 0, now)
            : SendIcmpv6Error(ip.Packet, Icmpv6Type.DestinationUnreachable, (byte)Icmpv6UnreachableCode.PortUnreachable, 0, now);
        if (sent) Statistics.udpPortUnreachableSent++;
    }

    /// <summary>Binds a UDP port (0: an ephemeral one) on every address of the stack, both families. Stack thread only.</summary>
    /// <exception cref="SocketException">AddressAlreadyInUse, AddressNotAvailable (no ephemeral port free).</exception>
    public UdpBinding BindUdp(ushort port, int receiveQueueLimit = 256) => BindUdp(HasIpv6 ? IpAddress.AnyV6 : IpAddress.AnyV4, port, receiveQueueLimit);

    /// <summary>
    /// Binds a UDP port (0: an ephemeral one) on one of the stack's addresses or a wildcard; the
    /// IPv6 wildcard with <paramref name="dualMode"/> takes IPv4 datagrams too. Stack thread only.
    /// </summary>
    /// <exception cref="SocketException">AddressAlreadyInUse, AddressNotAvailable (also: no ephemeral port free), AddressFamilyNotSupported.</exception>
    public UdpBinding BindUdp(IpAddress address, ushort port, int receiveQueueLimit = 256, bool dualMode = true)
    {
        dualMode &= address == IpAddress.AnyV6;
        CheckBindable(address, dualMode);
        if (port == 0) port = EphemeralPorts.Find(_tcpEnv.Random, _udp, static (u, p) => u.IsPortFree(p));
        if (_udp.Conflicts(address, port, dualMode))
            throw new SocketException((int)SocketError.AddressAlreadyInUse, $"UDP port {port} is already in use");
        var binding = new UdpBinding(this, address, port, receiveQueueLimit, dualMode);
        _udp.Add(address, port, dualMode, binding);
        return binding;
    }

    internal void UnbindUdp(UdpBinding binding) => _udp.Remove(binding.LocalAddress, binding.Port, binding);

    /// <summary>Largest UDP payload the stack sends to <paramref name="destination"/>'s family: what the 16-bit length fields allow, fragmented as needed.</summary>
    public static int MaxUdpPayload(IpAddress destination) =>
        destination.IsV4 ? Ipv4Packet.MaxPacketLength - Ipv4Header.Length - UdpHeader.Length : Ipv4Packet.MaxPacketLength - UdpHeader.Length;

    /// <summary>
    /// Sends one UDP datagram from <paramref name="sourcePort"/> (stack thread only); one larger
    /// than the MTU goes out in fragments.
    /// </summary>
    /// <exception cref="SocketException">MessageSize (larger than a datagram can be), AddressFamilyNotSupported.</exception>
    public void SendUdp(ushort sourcePort, IpAddress destination, ushort destinationPort, ReadOnlySpan<byte> payload) =>
        SendUdp(SourceFor(destination), sourcePort, destination, destinationPort, payload);

    /// <summary>
    /// Sends one UDP datagram from <paramref name="source"/> (the stack's address of that family or,
    /// in catch-all mode, any: the address a relayed flow's peer sent to). Stack thread only.
    /// </summary>
    /// <exception cref="SocketException">MessageSize, AddressFamilyNotSupported, AddressNotAvailable (a source the stack may not use).</exception>
    public void SendUdp(IpAddress source, ushort sourcePort, IpAddress destination, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        CheckSendable(source, destination);
        int max = MaxUdpPayload(destination);
        if (payload.Length > max)
            throw new SocketException((int)SocketError.MessageSize, $"a datagram of {payload.Length} bytes is larger than {max}");
        var datagram = _tx.AsSpan(TransportOffset(destination), UdpHeader.Length + payload.Length);
        new UdpHeader(sourcePort, destinationPort, payload.Length).Write(datagram);
        payload.CopyTo(datagram[UdpHeader.Length..]);
        UdpHeader.WriteChecksum(datagram, source, destination);
        Statistics.udpDatagramsSent++;
        SendIp(source, destination, IpProtocol.Udp, datagram.Length, mayFragment: true);
    }
}
