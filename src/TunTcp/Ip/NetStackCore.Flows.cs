using System.Buffers;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Ip;

/// <remarks>
/// Catch-all mode (<see cref="NetStackOptions.FlowHandler"/>): the stack terminates flows to any
/// address, the way gVisor's netstack does for tun2socks (its "forwarder" for TCP and UDP). A SYN
/// that finds no connection and no listener becomes a <see cref="TcpFlowRequest"/> held in a
/// bounded table until the handler decides; the accepted connection then speaks from the address
/// the peer dialed. Packets the stack sends for such a flow carry that address as their source.
/// </remarks>
internal sealed partial class NetStackCore
{
    private readonly IFlowHandler? _flows;
    private readonly Dictionary<TcpTuple, TcpFlowRequest> _pendingFlows = new();
    /// <summary>The listener connections of accepted flows hang off while they complete their handshake.</summary>
    private TcpListenQueue? _flowListener;
    /// <summary>When the pending-flow table is next swept for requests past their decision timeout.</summary>
    private Instant _nextFlowSweep = Instant.Never;
    private static readonly TimeSpan FlowSweepInterval = TimeSpan.FromSeconds(1);

    /// <summary>True in catch-all mode: packets to any address are taken and offered to the flow handler.</summary>
    public bool IsCatchAll => _flows is not null;

    /// <summary>TCP flows waiting for the handler's decision.</summary>
    public int PendingFlowCount => _pendingFlows.Count;

    /// <summary>A destination the stack takes packets for: its own, or any unicast one in catch-all mode.</summary>
    private bool TakesForeign(in IpAddress destination) =>
        _flows is not null && !destination.IsAny && !destination.IsMulticastOrBroadcast && !destination.IsLoopback;

    /// <summary>A SYN nothing of ours answered: held for the handler (true), or not catch-all mode (false).</summary>
    private bool OfferTcpFlow(in TcpTuple tuple, in TcpSegment segment, in Inbound ip, Instant now)
    {
        if (_flows is null || !segment.Syn || segment.Ack || segment.Rst) return false;
        var stats = Statistics;
        if (_pendingFlows.TryGetValue(tuple, out var waiting))
        {
            // The peer's SYN timer fired before the upstream answered: same flow, same request.
            waiting.SynRetransmissions++;
            stats.flowSynsFolded++;
            return true;
        }
        if (_pendingFlows.Count >= _options.PendingFlowLimit)
        {
            stats.flowTableFull++;
            if (stats.flowTableFull == 1 || stats.flowTableFull % 1000 == 0)
                _log.LogWarning("{Count} TCP flows wait for a decision (the limit): new SYNs are dropped ({Dropped} so far)", _pendingFlows.Count, stats.flowTableFull);
            return true;
        }
        var request = new TcpFlowRequest(tuple, ip.Packet, ip.Payload, segment.CongestionExperienced, now)
        {
            Deadline = now + _options.FlowDecisionTimeout,
        };
        _pendingFlows.Add(tuple, request);
        if (_nextFlowSweep.IsNever) _nextFlowSweep = now + FlowSweepInterval;
        stats.flowsRequested++;
        try
        {
            _flows.OnTcpFlow(request);
        }
        catch (Exception e)
        {
            _log.LogError(e, "The flow handler threw for {Flow}; the SYN is dropped", request);
            if (request.IsPending) CompleteTcpFlow(request, FlowVerdict.Drop, now);
        }
        return true;
    }

    /// <summary>
    /// Carries out the flow handler's decision about <paramref name="request"/> (stack thread only):
    /// <see cref="FlowVerdict.Accept"/> answers the SYN and returns the connection, in SYN-RECEIVED,
    /// which the caller owns like an accepted one; the other verdicts answer as their names say and
    /// return null. A request already decided or expired is ignored (null).
    /// </summary>
    public TcpConnection? CompleteTcpFlow(TcpFlowRequest request, FlowVerdict verdict, Instant now)
    {
        if (!request.IsPending || !_pendingFlows.Remove(request.Tuple, out var held) || held != request) return null;
        request.IsPending = false;
        var stats = Statistics;
        var tuple = request.Tuple;
        if (verdict == FlowVerdict.Accept && _connections.ContainsKey(tuple)) verdict = FlowVerdict.Drop;
        if (!TcpPacket.TryParse(request.Segment, out var tcp, out _)) verdict = FlowVerdict.Drop;
        var syn = TcpSegment.From(tcp, request.CongestionExperienced);
        TcpConnection? connection = null;
        switch (verdict)
        {
            case FlowVerdict.Accept:
                _flowListener ??= new TcpListenQueue(IpAddress.AnyV6, 0, 1, _tcpSettings, _tcpEnv, _options.Mtu) { Detached = true };
                connection = _flowListener.Admit(tuple, syn, now, this);
                Register(connection);
                stats.tcpConnectionsOpened++;
                stats.flowsAccepted++;
                break;
            case FlowVerdict.Refuse:
                stats.flowsRefused++;
                if (TcpReset.TryCreateForClosed(syn, tuple.LocalPort, tuple.RemotePort, out var reset))
                {
                    stats.tcpResetsSent++;
                    Send(tuple, reset, default, default, default);
                }
                break;
            case FlowVerdict.HostUnreachable or FlowVerdict.NetworkUnreachable:
                stats.flowsUnreachable++;
                SendUnreachable(request.Packet, verdict, now);
                break;
            default:
                stats.flowsDropped++;
                break;
        }
        request.Release();
        return connection;
    }

    /// <summary>ICMP host or network unreachable about <paramref name="packet"/>, from the stack as the router that could not deliver it.</summary>
    private bool SendUnreachable(ReadOnlySpan<byte> packet, FlowVerdict verdict, Instant now)
    {
        bool host = verdict == FlowVerdict.HostUnreachable;
        return packet[0] >> 4 == 4
            ? SendIcmpv4Error(packet, Icmpv4Type.DestinationUnreachable,
                (byte)(host ? Icmpv4UnreachableCode.HostUnreachable : Icmpv4UnreachableCode.NetUnreachable), 0, now)
            : SendIcmpv6Error(packet, Icmpv6Type.DestinationUnreachable,
                (byte)(host ? Icmpv6UnreachableCode.AddressUnreachable : Icmpv6UnreachableCode.NoRoute), 0, now);
    }

    /// <summary>
    /// Catch-all mode: tells the application that its datagram <paramref name="application"/>:<paramref name="applicationPort"/>
    /// -> <paramref name="destination"/>:<paramref name="destinationPort"/> (of which <paramref name="payload"/> is
    /// what is known) did not arrive, as the relay's upstream learned from an ICMP error:
    /// <see cref="FlowVerdict.Refuse"/> as port unreachable from the destination,
    /// <see cref="FlowVerdict.HostUnreachable"/> and <see cref="FlowVerdict.NetworkUnreachable"/> from the
    /// stack as the router. The quoted datagram is rebuilt with its checksum. Rate-limited like every
    /// ICMP error; false when nothing was sent. Stack thread only.
    /// </summary>
    internal bool SendUdpError(IpAddress application, ushort applicationPort, IpAddress destination, ushort destinationPort, ReadOnlySpan<byte> payload, FlowVerdict error)
    {
        if (application.IsV4 != destination.IsV4 || error is FlowVerdict.Accept or FlowVerdict.Drop) return false;
        bool v4 = application.IsV4;
        int ipLength = v4 ? Ipv4Header.Length : Ipv6Header.Length;
        int udpLength = UdpHeader.Length + payload.Length;
        var invoking = ArrayPool<byte>.Shared.Rent(ipLength + udpLength);
        try
        {
            var datagram = invoking.AsSpan(ipLength, udpLength);
            new UdpHeader(applicationPort, destinationPort, payload.Length).Write(datagram);
            payload.CopyTo(datagram[UdpHeader.Length..]);
            UdpHeader.WriteChecksum(datagram, application, destination);
            if (v4) new Ipv4Header(application.V4, destination.V4, IpProtocol.Udp, udpLength, DontFragment: false).Write(invoking);
            else new Ipv6Header(application, destination, (byte)IpProtocol.Udp, udpLength).Write(invoking);
            var packet = invoking.AsSpan(0, ipLength + udpLength);
            var now = Now;
            if (error != FlowVerdict.Refuse) return SendUnreachable(packet, error, now);
            bool sent = v4
                ? SendIcmpv4Error(packet, Icmpv4Type.DestinationUnreachable, (byte)Icmpv4UnreachableCode.PortUnreachable, 0, now, fromDestination: true)
                : SendIcmpv6Error(packet, Icmpv6Type.DestinationUnreachable, (byte)Icmpv6UnreachableCode.PortUnreachable, 0, now, fromDestination: true);
            if (sent) Statistics.udpPortUnreachableSent++;
            return sent;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(invoking);
        }
    }

    /// <summary>Drops requests nobody decided about in time (swept once a second, so up to a second late).</summary>
    private void ExpireFlows(Instant now)
    {
        List<TcpFlowRequest>? expired = null;
        foreach (var request in _pendingFlows.Values)
            if (request.Deadline <= now) (expired ??= []).Add(request);
        if (expired is not null)
        {
            foreach (var request in expired)
            {
                _pendingFlows.Remove(request.Tuple);
                request.IsPending = false;
                request.Release();
                Statistics.flowsExpired++;
            }
            _log.LogDebug("{Count} TCP flows expired without a decision", expired.Count);
        }
        _nextFlowSweep = _pendingFlows.Count > 0 ? now + FlowSweepInterval : Instant.Never;
    }

    /// <summary>A UDP datagram no binding took, in catch-all mode: the handler's verdict is carried out (true), or not catch-all mode (false).</summary>
    private bool OfferUdpDatagram(in Inbound ip, in UdpDatagram udp, Instant now)
    {
        if (_flows is null) return false;
        Statistics.udpFlowDatagrams++;
        FlowVerdict verdict;
        try
        {
            verdict = _flows.OnUdpDatagram(new UdpFlowDatagram(ip.Source, udp.SourcePort, ip.Destination, udp.DestinationPort, udp.Payload));
        }
        catch (Exception e)
        {
            _log.LogError(e, "The flow handler threw for a UDP datagram {Source} -> {Destination}; it is dropped",
                ip.Source.WithPort(udp.SourcePort), ip.Destination.WithPort(udp.DestinationPort));
            return true;
        }
        switch (verdict)
        {
            case FlowVerdict.Refuse:
                // From the destination itself, as the host that has nothing on that port would send it.
                bool sent = ip.Source.IsV4
                    ? SendIcmpv4Error(ip.Packet, Icmpv4Type.DestinationUnreachable, (byte)Icmpv4UnreachableCode.PortUnreachable, 0, now, fromDestination: true)
                    : SendIcmpv6Error(ip.Packet, Icmpv6Type.DestinationUnreachable, (byte)Icmpv6UnreachableCode.PortUnreachable, 0, now, fromDestination: true);
                if (sent) Statistics.udpPortUnreachableSent++;
                break;
            case FlowVerdict.HostUnreachable or FlowVerdict.NetworkUnreachable:
                SendUnreachable(ip.Packet, verdict, now);
                break;
        }
        return true;
    }

    /// <summary>An echo request to another address, in catch-all mode: true if the handler relays it.</summary>
    private bool OfferEchoRequest(in IpAddress source, in IpAddress destination, ushort identifier, ushort sequence, ReadOnlySpan<byte> data)
    {
        if (_flows is null) return false;
        bool taken;
        try
        {
            taken = _flows.OnEchoRequest(new EchoFlowRequest(source, destination, identifier, sequence, data));
        }
        catch (Exception e)
        {
            _log.LogError(e, "The flow handler threw for an echo request {Source} -> {Destination}; it is dropped", source, destination);
            return false;
        }
        if (taken) Statistics.echoRequestsRelayed++;
        return taken;
    }

    /// <summary>
    /// Sends an echo reply from <paramref name="source"/> (in catch-all mode, the address that was
    /// pinged) to <paramref name="destination"/> (stack thread only): ICMP for IPv4, ICMPv6 for IPv6.
    /// </summary>
    /// <exception cref="SocketException">AddressNotAvailable: the source is not the stack's and the stack is not in catch-all mode.</exception>
    public void SendEchoReply(IpAddress source, IpAddress destination, ushort identifier, ushort sequenceNumber, ReadOnlySpan<byte> data)
    {
        CheckSendable(source, destination);
        int length;
        if (destination.IsV4)
        {
            length = Icmpv4Writer.WriteEcho(_tx.AsSpan(Ipv4Header.Length), Icmpv4Type.EchoReply, identifier, sequenceNumber, data);
            SendIp(source, destination, IpProtocol.Icmp, length, mayFragment: true);
        }
        else
        {
            length = Icmpv6Writer.WriteEcho(_tx.AsSpan(Ipv6Header.Length), Icmpv6Type.EchoReply, identifier, sequenceNumber, data, source, destination);
            SendIp(source, destination, IpProtocol.Icmpv6, length, mayFragment: true);
        }
        Statistics.echoRepliesRelayed++;
    }

    /// <summary>A source address the stack may send from towards <paramref name="destination"/>: its own, or any in catch-all mode; one family.</summary>
    private void CheckSendable(in IpAddress source, in IpAddress destination)
    {
        if (source.IsV4 != destination.IsV4)
            throw new SocketException((int)SocketError.AddressFamilyNotSupported, $"{source} and {destination} are of different families");
        if (source.IsAny || source.IsMulticastOrBroadcast || (_flows is null && !IsLocalAddress(source)))
            throw new SocketException((int)SocketError.AddressNotAvailable, $"{source} is not an address this stack may send from ({DescribeAddresses()})");
    }
}
