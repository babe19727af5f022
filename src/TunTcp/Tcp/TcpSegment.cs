using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>
/// An arriving segment as the engine sees it: header fields, parsed options and payload.
/// Built from a checked <see cref="TcpPacket"/> by the stack, or field by field by tests.
/// </summary>
internal readonly ref struct TcpSegment
{
    public TcpSegment(SeqNumber sequence, SeqNumber acknowledgment, TcpFlags flags, ushort window, scoped in TcpOptions options, ReadOnlySpan<byte> payload)
    {
        Sequence = sequence;
        Acknowledgment = acknowledgment;
        Flags = flags;
        Window = window;
        Options = options;
        Payload = payload;
    }

    public static TcpSegment From(in TcpPacket packet, bool congestionExperienced = false) =>
        new(packet.SequenceNumber, packet.AcknowledgmentNumber, packet.Flags, packet.Window, packet.Options, packet.Payload)
        {
            CongestionExperienced = congestionExperienced,
        };

    /// <summary>The IP header carrying it was marked CE, "congestion experienced" (RFC 3168 5).</summary>
    public bool CongestionExperienced { get; init; }

    /// <summary>SEG.SEQ.</summary>
    public SeqNumber Sequence { get; }
    /// <summary>SEG.ACK.</summary>
    public SeqNumber Acknowledgment { get; }
    public TcpFlags Flags { get; }
    /// <summary>SEG.WND as carried (unscaled).</summary>
    public ushort Window { get; }
    public TcpOptions Options { get; }
    public ReadOnlySpan<byte> Payload { get; }

    public bool Syn => (Flags & TcpFlags.Syn) != 0;
    public bool Ack => (Flags & TcpFlags.Ack) != 0;
    public bool Fin => (Flags & TcpFlags.Fin) != 0;
    public bool Rst => (Flags & TcpFlags.Rst) != 0;

    /// <summary>SEG.LEN (RFC 9293 3.4): data plus one for SYN and one for FIN.</summary>
    public int Length => Payload.Length + (Syn ? 1 : 0) + (Fin ? 1 : 0);

    /// <summary>The sequence number just past this segment.</summary>
    public SeqNumber End => Sequence + Length;
}
