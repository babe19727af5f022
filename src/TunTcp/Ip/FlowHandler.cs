using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Ip;

/// <summary>What the stack does with a flow its <see cref="IFlowHandler"/> was asked about.</summary>
internal enum FlowVerdict
{
    /// <summary>
    /// The stack terminates the flow: for TCP it completes the handshake from the address the peer
    /// dialed (which it then owns as if it were its own); for UDP and ICMP the handler took the message.
    /// </summary>
    Accept,
    /// <summary>As a host with nothing on that port: a RST for TCP (RFC 9293 3.10.7.1), ICMP port unreachable for UDP.</summary>
    Refuse,
    /// <summary>ICMP host unreachable (IPv4 code 1, IPv6 code 3 address unreachable), as a router that cannot reach the host.</summary>
    HostUnreachable,
    /// <summary>ICMP network unreachable (IPv4 code 0, IPv6 code 0 no route), as a router without a route.</summary>
    NetworkUnreachable,
    /// <summary>Nothing is sent; the peer's own timers decide (a firewall's DROP).</summary>
    Drop,
}

/// <summary>
/// Catch-all mode (<see cref="NetStackOptions.FlowHandler"/>): the stack asks this about every flow
/// that enters the device and that nothing of its own answers, to any destination of either family:
/// TCP SYNs with no connection and no listener, UDP datagrams with no binding, ICMP echo requests to
/// an address that is not the stack's. This is what a forwarder (tun2socks, pasta) implements.
/// Every method runs on the stack thread and must return quickly; slow work (an upstream connect)
/// runs elsewhere and reports back through <see cref="NetStackCore.CompleteTcpFlow"/>.
/// </summary>
internal interface IFlowHandler
{
    /// <summary>
    /// A new TCP flow. The stack holds the SYN (its retransmissions are folded into the same
    /// request) until the handler calls <see cref="NetStackCore.CompleteTcpFlow"/>, now or later
    /// (after connecting upstream, so that a refused or unreachable upstream becomes a RST or an
    /// ICMP error towards the peer, as a direct connection would show). A request nobody decides
    /// about within <see cref="NetStackOptions.FlowDecisionTimeout"/> is dropped.
    /// </summary>
    void OnTcpFlow(TcpFlowRequest request);

    /// <summary>
    /// A UDP datagram no binding takes. The payload is only valid during the call: copy what you
    /// keep. <see cref="FlowVerdict.Accept"/> means the handler took it; the others are answered as
    /// their names say.
    /// </summary>
    FlowVerdict OnUdpDatagram(in UdpFlowDatagram datagram);

    /// <summary>
    /// An ICMP or ICMPv6 echo request to an address that is not the stack's (the stack answers its
    /// own). The data is only valid during the call. Return true when the handler relays it (it
    /// answers later with <see cref="NetStackCore.SendEchoReply"/>), false to drop it.
    /// </summary>
    bool OnEchoRequest(in EchoFlowRequest request);
}

/// <summary>A TCP SYN held for a decision of the <see cref="IFlowHandler"/>.</summary>
internal sealed class TcpFlowRequest
{
    internal TcpFlowRequest(in TcpTuple tuple, ReadOnlySpan<byte> packet, ReadOnlySpan<byte> segment, bool congestionExperienced, Instant arrived)
    {
        Tuple = tuple;
        Packet = packet.ToArray();
        Segment = segment.ToArray();
        CongestionExperienced = congestionExperienced;
        Arrived = arrived;
    }

    /// <summary>The flow seen from the stack: local = where the peer connects to, remote = the peer.</summary>
    public TcpTuple Tuple { get; }

    /// <summary>The address and port the peer dialed.</summary>
    public IpAddress Destination => Tuple.LocalAddress;
    public ushort DestinationPort => Tuple.LocalPort;

    /// <summary>The peer (the program whose traffic enters the device).</summary>
    public IpAddress Source => Tuple.RemoteAddress;
    public ushort SourcePort => Tuple.RemotePort;

    /// <summary>When the first SYN arrived.</summary>
    public Instant Arrived { get; }

    /// <summary>How many retransmissions of the SYN arrived while the request waited.</summary>
    public int SynRetransmissions { get; internal set; }

    /// <summary>True until it is decided or expires.</summary>
    public bool IsPending { get; internal set; } = true;

    /// <summary>Whatever the handler wants to keep with the request.</summary>
    public object? State { get; set; }

    /// <summary>The whole IP packet of the SYN, quoted by an ICMP error.</summary>
    internal byte[] Packet { get; private set; }

    /// <summary>The SYN's TCP header and payload, parsed again when the flow is accepted.</summary>
    internal byte[] Segment { get; private set; }

    /// <summary>Once decided: the copies are not needed any more (the handler may hold the request for long).</summary>
    internal void Release() => Packet = Segment = [];

    internal bool CongestionExperienced { get; set; }

    internal Instant Deadline;

    public override string ToString() => $"{Source.WithPort(SourcePort)} -> {Destination.WithPort(DestinationPort)}";
}

/// <summary>A UDP datagram for the <see cref="IFlowHandler"/>; its payload lives only during the call.</summary>
internal readonly ref struct UdpFlowDatagram(IpAddress source, ushort sourcePort, IpAddress destination, ushort destinationPort, ReadOnlySpan<byte> payload)
{
    public IpAddress Source { get; } = source;
    public ushort SourcePort { get; } = sourcePort;
    public IpAddress Destination { get; } = destination;
    public ushort DestinationPort { get; } = destinationPort;
    public ReadOnlySpan<byte> Payload { get; } = payload;
}

/// <summary>An ICMP (IPv4) or ICMPv6 echo request for the <see cref="IFlowHandler"/>; its data lives only during the call.</summary>
internal readonly ref struct EchoFlowRequest(IpAddress source, IpAddress destination, ushort identifier, ushort sequenceNumber, ReadOnlySpan<byte> data)
{
    public IpAddress Source { get; } = source;
    public IpAddress Destination { get; } = destination;
    public ushort Identifier { get; } = identifier;
    public ushort SequenceNumber { get; } = sequenceNumber;
    public ReadOnlySpan<byte> Data { get; } = data;
}
