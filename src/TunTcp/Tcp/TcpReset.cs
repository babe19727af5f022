using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>Reset generation for segments that belong to no connection.</summary>
internal static class TcpReset
{
    /// <summary>
    /// RFC 9293 3.10.7.1 (CLOSED state, and 3.5.2 reset generation group 1): a segment to no
    /// connection gets a reset, unless it is itself a reset ("never a RST in reply to a RST").
    /// If the ACK bit is off: &lt;SEQ=0&gt;&lt;ACK=SEG.SEQ+SEG.LEN&gt;&lt;CTL=RST,ACK&gt;;
    /// otherwise &lt;SEQ=SEG.ACK&gt;&lt;CTL=RST&gt;.
    /// </summary>
    /// <returns>False when no reset may be sent.</returns>
    public static bool TryCreateForClosed(in TcpSegment segment, ushort localPort, ushort remotePort, out TcpHeader reset)
    {
        reset = default;
        if (segment.Rst) return false;
        reset = segment.Ack
            ? new TcpHeader(localPort, remotePort, segment.Acknowledgment, default, TcpFlags.Rst, 0)
            : new TcpHeader(localPort, remotePort, new SeqNumber(0), segment.End, TcpFlags.Rst | TcpFlags.Ack, 0);
        return true;
    }
}
