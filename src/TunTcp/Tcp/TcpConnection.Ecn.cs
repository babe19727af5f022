using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>
/// Explicit Congestion Notification (RFC 3168 6.1). Negotiated on the handshake: our SYN carries
/// ECE and CWR, the peer's SYN-ACK answers with ECE alone; a peer's SYN with both gets a SYN-ACK
/// with ECE. A SYN is retransmitted without the request (as Linux, in case a middlebox drops
/// ECN-setup SYNs). Once on: new data segments go out ECT(0), never retransmissions, pure ACKs or
/// window probes (6.1.5, 6.1.6); a CE mark received makes every ACK carry ECE until the peer's
/// CWR (6.1.3); an ECE received reduces the congestion window as a loss would, at most once per
/// window of data and not during loss recovery, and the next new data segment carries CWR (6.1.2).
/// </summary>
internal sealed partial class TcpConnection
{
    private bool _ecnOk;
    /// <summary>A CE mark arrived and the peer has not yet said CWR: our ACKs carry ECE.</summary>
    private bool _eceEcho;
    /// <summary>The window was reduced for an ECE: the next new data segment carries CWR.</summary>
    private bool _cwrPending;
    /// <summary>No further ECE reaction until SND.UNA passes this (one reduction per window).</summary>
    private SeqNumber? _ecnRecoverPoint;

    /// <summary>ECN was negotiated on this connection.</summary>
    public bool EcnEnabled => _ecnOk;

    /// <summary>Segments that arrived marked CE.</summary>
    public long CongestionMarksReceived { get; private set; }

    /// <summary>Window reductions made for ECE (congestion signalled without a loss).</summary>
    public long EcnWindowReductions { get; private set; }

    /// <summary>The ECN flags of our SYN or SYN-ACK.</summary>
    private TcpFlags EcnSynFlags(bool synAck) =>
        synAck ? (_ecnOk ? TcpFlags.Ece : TcpFlags.None)
            : (_settings.Ecn && _synTransmissions == 0 ? TcpFlags.Ece | TcpFlags.Cwr : TcpFlags.None);

    /// <summary>RFC 3168 6.1.1: a SYN with ECE and CWR is an ECN-setup SYN.</summary>
    private void NegotiateEcnPassive(TcpFlags synFlags) =>
        _ecnOk = _settings.Ecn && (synFlags & (TcpFlags.Ece | TcpFlags.Cwr)) == (TcpFlags.Ece | TcpFlags.Cwr);

    /// <summary>RFC 3168 6.1.1: an ECN-setup SYN-ACK has ECE without CWR (both set is a reflecting middlebox).</summary>
    private void NegotiateEcnActive(TcpFlags synAckFlags) =>
        _ecnOk = _settings.Ecn && _synTransmissions == 1 && (synAckFlags & (TcpFlags.Ece | TcpFlags.Cwr)) == TcpFlags.Ece;

    /// <summary>The receiver's part, for an acceptable segment in a synchronized state (before its text).</summary>
    private void OnEcnReceived(in TcpSegment seg)
    {
        if (!_ecnOk) return;
        // RFC 3168 6.1.3: CWR ends the echo; a CE on the same segment starts it again.
        if ((seg.Flags & TcpFlags.Cwr) != 0) _eceEcho = false;
        if (seg.CongestionExperienced)
        {
            CongestionMarksReceived++;
            // Linux acknowledges at once when the echo starts, so the sender hears it a delayed ACK sooner.
            if (!_eceEcho) _ackNow = true;
            _eceEcho = true;
        }
    }

    /// <summary>The sender's part, after the ACK of <paramref name="seg"/> was processed.</summary>
    private void OnEcnEcho(in TcpSegment seg)
    {
        if (!_ecnOk || (seg.Flags & TcpFlags.Ece) == 0 || !seg.Ack || !_ccInitialized) return;
        if (_loss.State != RecoveryState.Open || (_ecnRecoverPoint is SeqNumber point && _snd.Una < point)) return;
        // One reduction, as for a loss, but nothing to repair: the recovery ends as it starts.
        _cc.OnCongestionEvent(_loss.FlightSizeForLossResponse, _smss, _now);
        _cc.OnRecoveryEnd(_smss, _now);
        _ecnRecoverPoint = _snd.Nxt;
        _cwrPending = true;
        EcnWindowReductions++;
    }

    /// <summary>The flags and codepoint ECN adds to a segment we emit.</summary>
    private TcpHeader WithEcn(in TcpHeader header, bool newData)
    {
        if (!_ecnOk || (header.Flags & TcpFlags.Syn) != 0) return header;
        var flags = header.Flags;
        if (_eceEcho && (flags & TcpFlags.Ack) != 0) flags |= TcpFlags.Ece;
        if (!newData) return flags == header.Flags ? header : header with { Flags = flags };
        if (_cwrPending) { flags |= TcpFlags.Cwr; _cwrPending = false; }
        return header with { Flags = flags, Ecn = IpEcn.Ect0 };
    }
}
