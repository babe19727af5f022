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
        tcpResetsSent, tcpRetransmissions, tcpConnectionsOpened, tcpConnectionsClosed,
        udpDatagramsReceived, udpDatagramsSent, udpPortUnreachableSent, udpReceiveQueueFull;

    public long IpPacketsReceived => Volatile.Read(ref ipPacketsReceived);
    public long IpPacketsSent => Volatile.Read(ref ipPacketsSent);
    /// <summary>IPv6 packets seen and deliberately ignored (TunTcp speaks IPv4).</summary>
    public long Ipv6Ignored => Volatile.Read(ref ipv6Ignored);
    public long NonIpDropped => Volatile.Read(ref nonIpDropped);
    public long MalformedDropped => Volatile.Read(ref malformedDropped);
    public long BadChecksumDropped => Volatile.Read(ref badChecksumDropped);
    public long NotForUsDropped => Volatile.Read(ref notForUsDropped);
    /// <summary>IPv4 fragments: recognised, counted and dropped (TunTcp does not reassemble).</summary>
    public long FragmentsDropped => Volatile.Read(ref fragmentsDropped);
    public long UnknownProtocolDropped => Volatile.Read(ref unknownProtocolDropped);
    public long IcmpEchoRequests => Volatile.Read(ref icmpEchoRequests);
    public long IcmpOtherIgnored => Volatile.Read(ref icmpOtherIgnored);
    public long IcmpErrorsRateLimited => Volatile.Read(ref icmpErrorsRateLimited);
    public long TcpSegmentsReceived => Volatile.Read(ref tcpSegmentsReceived);
    public long TcpSegmentsSent => Volatile.Read(ref tcpSegmentsSent);
    public long TcpResetsSent => Volatile.Read(ref tcpResetsSent);
    public long TcpRetransmissions => Volatile.Read(ref tcpRetransmissions);
    /// <summary>Connections created: SYNs taken by a listener and active opens.</summary>
    public long TcpConnectionsOpened => Volatile.Read(ref tcpConnectionsOpened);
    /// <summary>Connections forgotten after reaching CLOSED (TIME-WAIT ended or reopened, reset, aborted, timed out).</summary>
    public long TcpConnectionsClosed => Volatile.Read(ref tcpConnectionsClosed);
    public long UdpDatagramsReceived => Volatile.Read(ref udpDatagramsReceived);
    public long UdpDatagramsSent => Volatile.Read(ref udpDatagramsSent);
    public long UdpPortUnreachableSent => Volatile.Read(ref udpPortUnreachableSent);
    public long UdpReceiveQueueFull => Volatile.Read(ref udpReceiveQueueFull);
}
