using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Ip;

public sealed partial class NetStackCore
{
    /// <summary>The instant of the earliest timer of any protocol, or <see cref="Instant.Never"/>.</summary>
    public Instant NextDeadline => Instant.Never;

    /// <summary>Runs due timers and sends whatever connections have queued.</summary>
    public void Poll(Instant now)
    {
    }

    /// <summary>Hands a TCP segment to its connection or listener; false when there is none (closed port).</summary>
    private bool DeliverTcp(in TcpTuple tuple, in TcpSegment segment, Instant now) => false;

    /// <summary>Hands a datagram to its bound socket; false when no socket is bound to the port.</summary>
    private bool DeliverUdp(Ipv4Packet ip, UdpDatagram udp, Instant now) => false;
}
