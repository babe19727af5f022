using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>The sender's loss-recovery state (Linux: Open / Recovery / Loss).</summary>
internal enum RecoveryState
{
    /// <summary>No loss being repaired.</summary>
    Open,
    /// <summary>Fast recovery after duplicate ACKs / SACK evidence (RFC 6582, RFC 6675).</summary>
    FastRecovery,
    /// <summary>Repairing after a retransmission timeout: every unSACKed segment counts as lost.</summary>
    Loss,
}

public sealed partial class TcpConnection
{
    private RecoveryState _recovery = RecoveryState.Open;
    /// <summary>RFC 6582 "recover" / RFC 6675 RecoveryPoint: SND.NXT when recovery began.</summary>
    private SeqNumber _recoveryPoint;

    /// <summary>
    /// Updates the scoreboard from the SACK blocks of an ACK (RFC 2018) and marks fully SACKed
    /// records, which leave the pipe. A first block below SEG.ACK, or inside the second block,
    /// is a D-SACK (RFC 2883 4) reporting a duplicate, not new data.
    /// </summary>
    private int ProcessSackBlocks(in TcpOptions options, SeqNumber ack, out bool dsack)
    {
        var blocks = options.SackBlocks;
        dsack = false;
        int first = 0;
        if (blocks.Length > 0 && (blocks[0].Left < ack
            || (blocks.Length > 1 && blocks[0].Left >= blocks[1].Left && blocks[0].Right <= blocks[1].Right)))
        {
            dsack = true;
            first = 1;
        }
        int newly = 0;
        for (int b = first; b < blocks.Length; b++) newly += _scoreboard.Add(blocks[b], SeqNumber.Max(ack, _sndUna), _sndNxt);
        if (newly == 0) return 0;
        for (int i = 0; i < _sent.Count; i++)
        {
            ref var rec = ref _sent[i];
            if (rec.Has(SentFlags.Sacked) || rec.End <= ack) continue;
            if (!_scoreboard.IsSacked(rec.Start) || _scoreboard.NextHole(rec.Start, out _) < rec.End) continue;
            rec.Flags |= SentFlags.Sacked;
            if (rec.Has(SentFlags.InPipe)) { rec.Flags &= ~SentFlags.InPipe; _pipe -= rec.Length; }
            if (rec.Has(SentFlags.Lost)) { rec.Flags &= ~SentFlags.Lost; _lostCount--; }
        }
        return newly;
    }

    /// <summary>After the ACK field of a segment is processed: leave recovery once the recovery point is acknowledged.</summary>
    private void OnAckProcessed(bool advanced, bool duplicateCandidate, int newlySacked, bool dsack, int flightBefore, in TcpSegment seg)
    {
        if (_recovery != RecoveryState.Open && advanced && _sndUna >= _recoveryPoint)
        {
            if (_recovery == RecoveryState.FastRecovery) _cc.OnRecoveryEnd(_smss, _now);
            _recovery = RecoveryState.Open;
        }
    }

    private void OnRecordAcknowledged(in SentSegment record)
    {
    }

    private void OnDataSent()
    {
    }

    private void OnLossProbeTimeout()
    {
        _lossProbeDeadline = Instant.Never;
    }

    /// <summary>
    /// RFC 5681 3.1 / RFC 6298 5.4 after a retransmission timeout: cwnd to one segment, and (as
    /// Linux does) every unSACKed segment is deemed lost, to be resent in order as the window
    /// grows again; SACK information is kept.
    /// </summary>
    private void OnRetransmissionTimeoutRecovery()
    {
        if (_ccInitialized) _cc.OnRetransmissionTimeout(_pipe, _smss, _now);
        if (_sent.Count > 0 && _sent.First.Has(SentFlags.Sacked))
        {
            // RFC 2018 8: SACK is advisory; the receiver may discard (renege on) data it SACKed.
            // The segment at SND.UNA is SACKed yet still unacknowledged after a whole RTO: forget
            // every SACK mark and resend from SND.UNA (Linux tcp_check_sack_reneging).
            _scoreboard.Clear();
            for (int i = 0; i < _sent.Count; i++) _sent[i].Flags &= ~SentFlags.Sacked;
        }
        for (int i = 0; i < _sent.Count; i++)
        {
            ref var rec = ref _sent[i];
            if (rec.Has(SentFlags.Sacked) || rec.Has(SentFlags.Lost) || rec.Has(SentFlags.Probe)) continue;
            rec.Flags |= SentFlags.Lost;
            _lostCount++;
            if (rec.Has(SentFlags.InPipe)) { rec.Flags &= ~SentFlags.InPipe; _pipe -= rec.Length; }
        }
        _recovery = RecoveryState.Loss;
        _recoveryPoint = _sndNxt;
    }
}
