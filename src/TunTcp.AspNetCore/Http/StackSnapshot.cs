using TunTcp.Ip;
using TunTcp.Links;
using TunTcp.Tcp;

namespace TunTcp.AspNetCore.Http;

/// <summary>
/// A consistent copy of a stack's counters, taken on the stack thread (the only thread that
/// may walk its connection table), for the statistics page.
/// </summary>
internal sealed record StackSnapshot(
    string Address,
    int Mtu,
    IReadOnlyDictionary<TcpConnectionState, int> ConnectionsByState,
    int Listeners,
    long TcpSegmentsReceived,
    long TcpSegmentsSent,
    long TcpRetransmissions,
    long RetransmissionTimeouts,
    long FastRetransmits,
    long TcpResetsSent,
    long TcpResetsReceived,
    long TcpConnectionsOpened,
    long TcpConnectionsClosed,
    long IpPacketsReceived,
    long IpPacketsSent,
    long IcmpEchoRequests,
    long UdpDatagramsReceived,
    long UdpDatagramsSent,
    long LinkBytesReceived,
    long LinkBytesSent,
    long LinkDrops)
{
    /// <summary>SYN-ACKs sent with a SYN cookie (a listener's half-open queue was full).</summary>
    public long SynCookiesSent { get; init; }

    /// <summary>Connections made from a returned SYN cookie.</summary>
    public long SynCookiesValidated { get; init; }

    /// <summary>SYNs dropped with the half-open queue full (SYN cookies off).</summary>
    public long SynBacklogDrops { get; init; }

    /// <summary>Reads the counters of <paramref name="stack"/> on its stack thread.</summary>
    public static Task<StackSnapshot> CaptureAsync(NetStack stack)
    {
        LinkStatistics link = stack.LinkStatistics;
        return stack.Invoke((core, _) =>
        {
            var s = core.Statistics;
            var tcp = core.TcpEnvironment.Statistics;
            // Resets sent: the core's (closed ports) and the engine's (aborts, answers to stray segments).
            return new StackSnapshot(
                core.DescribeAddresses(), core.Mtu, core.CountConnectionsByState(), core.ListenerCount,
                s.TcpSegmentsReceived, s.TcpSegmentsSent, tcp.SegmentsRetransmitted, tcp.RetransmissionTimeouts, tcp.FastRetransmits,
                s.TcpResetsSent + tcp.ResetsSent, tcp.ResetsReceived, s.TcpConnectionsOpened, s.TcpConnectionsClosed,
                s.IpPacketsReceived, s.IpPacketsSent, s.IcmpEchoRequests, s.UdpDatagramsReceived, s.UdpDatagramsSent,
                link.BytesReceived, link.BytesSent, link.ReceiveDrops + link.SendDrops)
            {
                SynCookiesSent = tcp.SynCookiesSent,
                SynCookiesValidated = tcp.SynCookiesValidated,
                SynBacklogDrops = tcp.SynBacklogDrops,
            };
        });
    }
}
