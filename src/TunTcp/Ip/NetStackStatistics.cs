namespace TunTcp.Ip;

/// <summary>
/// Counters of the stack core, written by the stack thread, readable from any thread.
/// Every packet that is not delivered is counted under exactly one drop reason.
/// </summary>
public sealed class NetStackStatistics
{
    internal long ipPacketsReceived, ipPacketsSent, ipv6Ignored, nonIpDropped, malformedDropped,
        badChecksumDropped, notForUsDropped, fragmentsDropped, unknownProtocolDropped,
        icmpEchoRequests, icmpOtherIgnored, icmpErrorsRateLimited, tcpSegmentsReceived, tcpSegmentsSent,
        tcpResetsSent, tcpConnectionsOpened, tcpConnectionsClosed,
        udpDatagramsReceived, udpDatagramsSent, udpPortUnreachableSent, udpReceiveQueueFull,
        ipv6PacketsReceived, ipv6HeaderDropped, ipv6NoNextHeader, icmpv6NeighborDiscoveryIgnored,
        icmpErrorsSent, icmpParameterProblemsSent, icmpTimeExceededSent, oversizedNotSent,
        fragmentsReceived, fragmentOverlaps, atomicFragments, datagramsReassembled, reassemblyTimeouts, fragmentsSent;
    internal long icmpErrorsToConnections, icmpErrorsIgnored, pathMtuReductions;
    internal long flowsRequested, flowsAccepted, flowsRefused, flowsUnreachable, flowsDropped, flowsExpired,
        flowSynsFolded, flowTableFull, udpFlowDatagrams, echoRequestsRelayed, echoRepliesRelayed;

    /// <summary>Catch-all mode: new TCP flows handed to the flow handler.</summary>
    public long FlowsRequested => Volatile.Read(ref flowsRequested);
    /// <summary>Of <see cref="FlowsRequested"/>: accepted (handshake completed by the stack), refused (RST), answered unreachable (ICMP), dropped, or expired undecided.</summary>
    public long FlowsAccepted => Volatile.Read(ref flowsAccepted);
    public long FlowsRefused => Volatile.Read(ref flowsRefused);
    public long FlowsUnreachable => Volatile.Read(ref flowsUnreachable);
    public long FlowsDropped => Volatile.Read(ref flowsDropped);
    public long FlowsExpired => Volatile.Read(ref flowsExpired);
    /// <summary>Retransmitted SYNs of a flow that was still waiting for its decision (folded into the request).</summary>
    public long FlowSynsFolded => Volatile.Read(ref flowSynsFolded);
    /// <summary>SYNs of new flows dropped because <see cref="NetStackOptions.PendingFlowLimit"/> requests were waiting.</summary>
    public long FlowTableFull => Volatile.Read(ref flowTableFull);
    /// <summary>UDP datagrams handed to the flow handler.</summary>
    public long UdpFlowDatagrams => Volatile.Read(ref udpFlowDatagrams);
    /// <summary>Echo requests to other addresses taken by the flow handler, and the replies it sent back.</summary>
    public long EchoRequestsRelayed => Volatile.Read(ref echoRequestsRelayed);
    public long EchoRepliesRelayed => Volatile.Read(ref echoRepliesRelayed);

    /// <summary>ICMP errors about our TCP segments that passed validation (RFC 5927) and reached their connection.</summary>
    public long IcmpErrorsToConnections => Volatile.Read(ref icmpErrorsToConnections);
    /// <summary>ICMP errors ignored: quoting no connection of ours, a sequence number outside SND.UNA..SND.NXT, or too little of the segment.</summary>
    public long IcmpErrorsIgnored => Volatile.Read(ref icmpErrorsIgnored);
    /// <summary>Path MTU decreases learned from fragmentation-needed / packet-too-big (RFC 1191, RFC 8201).</summary>
    public long PathMtuReductions => Volatile.Read(ref pathMtuReductions);

    /// <summary>IP packets of either family that parsed as IP.</summary>
    public long IpPacketsReceived => Volatile.Read(ref ipPacketsReceived);
    /// <summary>Of <see cref="IpPacketsReceived"/>, the IPv6 ones.</summary>
    public long Ipv6PacketsReceived => Volatile.Read(ref ipv6PacketsReceived);
    public long IpPacketsSent => Volatile.Read(ref ipPacketsSent);
    /// <summary>IPv6 packets seen and deliberately ignored by a stack without an IPv6 address.</summary>
    public long Ipv6Ignored => Volatile.Read(ref ipv6Ignored);
    public long NonIpDropped => Volatile.Read(ref nonIpDropped);
    public long MalformedDropped => Volatile.Read(ref malformedDropped);
    public long BadChecksumDropped => Volatile.Read(ref badChecksumDropped);
    public long NotForUsDropped => Volatile.Read(ref notForUsDropped);
    /// <summary>Fragments (either family) taken into reassembly.</summary>
    public long FragmentsReceived => Volatile.Read(ref fragmentsReceived);
    /// <summary>Fragments dropped: malformed, duplicates, overlapping (with their whole datagram), over the memory budget.</summary>
    public long FragmentsDropped => Volatile.Read(ref fragmentsDropped);
    /// <summary>Of <see cref="FragmentsDropped"/>, overlaps, each of which dropped its whole datagram (RFC 5722).</summary>
    public long FragmentOverlaps => Volatile.Read(ref fragmentOverlaps);
    /// <summary>IPv6 atomic fragments (offset 0, no more fragments) processed on their own (RFC 6946).</summary>
    public long AtomicFragments => Volatile.Read(ref atomicFragments);
    public long DatagramsReassembled => Volatile.Read(ref datagramsReassembled);
    /// <summary>Datagrams whose fragments did not all arrive before the reassembly timeout.</summary>
    public long ReassemblyTimeouts => Volatile.Read(ref reassemblyTimeouts);
    /// <summary>Fragments the stack sent (datagrams larger than the MTU).</summary>
    public long FragmentsSent => Volatile.Read(ref fragmentsSent);
    /// <summary>IPv6 packets dropped for an extension header TunTcp cannot process (RFC 8200 4: unrecognised option, routing header with segments left).</summary>
    public long Ipv6HeaderDropped => Volatile.Read(ref ipv6HeaderDropped);
    /// <summary>IPv6 packets with nothing after their headers (RFC 8200 4.7), ignored.</summary>
    public long Ipv6NoNextHeader => Volatile.Read(ref ipv6NoNextHeader);
    /// <summary>Neighbour discovery and MLD messages (the kernel's solicitations and listener reports), counted and dropped quietly.</summary>
    public long Icmpv6NeighborDiscoveryIgnored => Volatile.Read(ref icmpv6NeighborDiscoveryIgnored);
    /// <summary>ICMP and ICMPv6 error messages sent (unreachable, time exceeded, parameter problem).</summary>
    public long IcmpErrorsSent => Volatile.Read(ref icmpErrorsSent);
    public long IcmpParameterProblemsSent => Volatile.Read(ref icmpParameterProblemsSent);
    public long IcmpTimeExceededSent => Volatile.Read(ref icmpTimeExceededSent);
    /// <summary>Packets the stack built but could not send: larger than the MTU and not allowed to fragment.</summary>
    public long OversizedNotSent => Volatile.Read(ref oversizedNotSent);
    public long UnknownProtocolDropped => Volatile.Read(ref unknownProtocolDropped);
    public long IcmpEchoRequests => Volatile.Read(ref icmpEchoRequests);
    public long IcmpOtherIgnored => Volatile.Read(ref icmpOtherIgnored);
    public long IcmpErrorsRateLimited => Volatile.Read(ref icmpErrorsRateLimited);
    public long TcpSegmentsReceived => Volatile.Read(ref tcpSegmentsReceived);
    public long TcpSegmentsSent => Volatile.Read(ref tcpSegmentsSent);
    public long TcpResetsSent => Volatile.Read(ref tcpResetsSent);
    /// <summary>Connections created: SYNs taken by a listener and active opens.</summary>
    public long TcpConnectionsOpened => Volatile.Read(ref tcpConnectionsOpened);
    /// <summary>Connections forgotten after reaching CLOSED (TIME-WAIT ended or reopened, reset, aborted, timed out).</summary>
    public long TcpConnectionsClosed => Volatile.Read(ref tcpConnectionsClosed);
    public long UdpDatagramsReceived => Volatile.Read(ref udpDatagramsReceived);
    public long UdpDatagramsSent => Volatile.Read(ref udpDatagramsSent);
    public long UdpPortUnreachableSent => Volatile.Read(ref udpPortUnreachableSent);
    public long UdpReceiveQueueFull => Volatile.Read(ref udpReceiveQueueFull);
}
