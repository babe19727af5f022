using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>The sender's loss-recovery state (Linux: Open / Recovery / Loss).</summary>
internal enum RecoveryState
{
    /// <summary>No loss being repaired.</summary>
    Open,
    /// <summary>Fast recovery after duplicate ACKs, SACK or RACK evidence (RFC 6582, RFC 6675, RFC 8985).</summary>
    FastRecovery,
    /// <summary>Repairing after a retransmission timeout: every unSACKed segment counts as lost.</summary>
    Loss,
}

/// <summary>
/// Loss detection and recovery of the sender:
/// <list type="bullet">
/// <item>without SACK, NewReno (RFC 5681 3.2, RFC 6582): three duplicate ACKs start fast
/// retransmit (not before an ACK has passed the last episode's "recover"); cwnd is inflated per
/// duplicate ACK and deflated on partial ACKs, each of which retransmits the next hole; limited
/// transmit (RFC 3042) sends new data on the first two duplicate ACKs;</item>
/// <item>with SACK, the scoreboard recovery of RFC 6675 (pipe, IsLost, NextSeg), with losses found
/// either by DupThresh or, by default, by RACK (RFC 8985), which also arms the tail loss probe;
/// limited transmit is then simply cwnd - pipe;</item>
/// <item>the retransmission that starts an episode (and NewReno's on a partial ACK) goes out
/// whatever cwnd and pipe say; ssthresh comes from FlightSize without limited-transmit data;</item>
/// <item>after a timeout, every unSACKed segment is lost (as in Linux), F-RTO (RFC 5682) tells a
/// spurious timeout by new data being acknowledged, and timestamps (Eifel, RFC 3522) and D-SACK
/// (RFC 3708, also after the episode has ended) tell a spurious fast retransmit; both are undone
/// (RFC 4015): cwnd and ssthresh come back, and segments no longer deemed lost go back in the
/// pipe.</item>
/// </list>
/// </summary>
public sealed partial class TcpConnection
{
    private RecoveryState _recovery = RecoveryState.Open;
    /// <summary>RFC 6582 "recover" / RFC 6675 RecoveryPoint: SND.NXT when recovery began.</summary>
    private SeqNumber _recoveryPoint;
    /// <summary>
    /// RFC 6582 3.2 step 1 (without SACK): since the last recovery no ACK has gone beyond
    /// "recover", so duplicate ACKs may come from our own needless retransmissions (a timeout's
    /// go-back-N resends data the receiver holds) and must not start another fast retransmit.
    /// As Linux (tcp_try_undo_recovery: "Hold old state until something *above* high_seq is
    /// ACKed. For Reno it is MUST to prevent false fast retransmits"), an ACK of exactly SND.NXT
    /// at the start of recovery does not yet count: the duplicates' ACKs carry just that.
    /// </summary>
    private bool _recoverNotPassed;
    /// <summary>Duplicate ACKs in a row (RFC 5681 definition; with SACK, ACKs bringing new SACK information).</summary>
    private int _dupAcks;
    /// <summary>NewReno's inflated window during fast recovery without SACK (RFC 6582 3.2).</summary>
    private int _newRenoWindow;
    /// <summary>RFC 3042: segments that may be sent past cwnd on the first two duplicate ACKs (without SACK).</summary>
    private int _limitedTransmit;
    /// <summary>New data sent on duplicate ACKs since SND.UNA last advanced (RFC 5681 3.2 step 2 leaves it out of FlightSize).</summary>
    private int _limitedTransmitBytes;
    private bool _partialAckSeen;
    /// <summary>
    /// The next retransmission of a lost segment goes out whatever cwnd and pipe say: the fast
    /// retransmit on entering recovery (RFC 5681 3.2 step 3, RFC 6675 5 (4.3)) and NewReno's
    /// retransmission on a partial ACK (RFC 6582 3.2 step 5).
    /// </summary>
    private bool _retransmitNow;
    /// <summary>Records marked SACKed (RFC 8985 RACK.segs_sacked).</summary>
    private int _sackedCount;

    // ---- undo (RFC 3522 Eifel, RFC 3708 D-SACK, RFC 4015 response) ----
    /// <summary>Retransmissions in this recovery episode not yet shown spurious by D-SACK.</summary>
    private int _undoRetransmissions;
    /// <summary>The episode may still be undone (no retransmission shown necessary).</summary>
    private bool _undoPossible;
    /// <summary>Our TSval when the episode's first retransmission went out (Eifel: an echo older than it means the original arrived).</summary>
    private uint _undoTsVal;
    private bool _undoTsValid;
    /// <summary>The episode's first retransmission is still to come (it fixes, or rules out, RetransmitTS).</summary>
    private bool _undoTsPending;
    /// <summary>SND.UNA when the episode began (Linux undo_marker): D-SACKs below it are for earlier episodes.</summary>
    private SeqNumber _undoMarker;

    // ---- F-RTO (RFC 5682) ----
    /// <summary>0: off; 1: RTO just fired, first segment resent; 2: new data sent after the first ACK.</summary>
    private int _frtoStage;

    // ---- RACK (RFC 8985 6) ----
    private Instant _rackXmitTs = Instant.Never;
    private SeqNumber _rackEndSeq;
    private long _rackRttUs;
    private bool _rackReorderingSeen;
    private int _rackReoWndMult = 1;
    /// <summary>RFC 8985 6.2 step 4: recoveries left before reo_wnd_mult falls back to 1.</summary>
    private int _rackReoWndPersist = 16;
    /// <summary>RFC 8985 6.2 step 4 RACK.dsack_round: SND.NXT when reo_wnd_mult last grew; one growth per round trip.</summary>
    private SeqNumber? _rackDsackRound;
    /// <summary>Highest sequence number SACKed or acknowledged (RACK.fack).</summary>
    private SeqNumber _rackFack;

    // ---- TLP (RFC 8985 7) ----
    private SeqNumber? _tlpEndSeq;
    private bool _tlpIsRetransmission;
    private int _tlpDsackWaiting;

    // ---- rounds (RFC 9406 windowEnd) ----
    private SeqNumber _roundEnd;

    private bool RackEnabled => _sackOk && _settings.Rack;

    /// <summary>
    /// The window the sender may fill: cwnd, NewReno's inflated window in recovery, plus limited
    /// transmit without SACK. With SACK, limited transmit needs no allowance: RFC 6675 5 (3) sends
    /// new data while cwnd - pipe >= 1 SMSS, and SACKed segments have already left the pipe.
    /// </summary>
    private int CongestionLimit =>
        (_recovery == RecoveryState.FastRecovery && !_sackOk ? _newRenoWindow : _cc.CongestionWindow) + (_sackOk ? 0 : _limitedTransmit * _smss);

    /// <summary>
    /// RFC 5681 3.2 step 2 FlightSize for ssthresh: data sent and not cumulatively acknowledged
    /// (RFC 6675 5 (4.2) likewise), "additional data sent in limited transmit MUST NOT be included".
    /// </summary>
    private int FlightSizeForLossResponse => Math.Max(0, (_sndNxt - _sndUna) - _limitedTransmitBytes);

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
            OnDsack(blocks[0]);
        }
        int newly = 0;
        var floor = SeqNumber.Max(ack, _sndUna);
        for (int b = first; b < blocks.Length; b++)
        {
            var block = blocks[b];
            if (block.Right <= block.Left || block.Right <= floor || block.Left >= _sndNxt) continue;
            int added = _scoreboard.Add(block, floor, _sndNxt);
            newly += added;
            // The records inside the scoreboard range that now holds the block (it may have joined
            // neighbours); a block the full scoreboard refused still SACKs the records it covers.
            // A block already on the scoreboard was applied when it arrived: nothing new to mark.
            var left = SeqNumber.Max(block.Left, floor);
            if (_scoreboard.TryGetRangeContaining(left, out var range))
            {
                if (added > 0) MarkSackedRecords(range, countBytes: false);
            }
            else
            {
                newly += MarkSackedRecords(new SackBlock(left, SeqNumber.Min(block.Right, _sndNxt)), countBytes: true);
            }
        }
        return newly;
    }

    /// <summary>
    /// Marks the records lying wholly inside <paramref name="range"/> as SACKed; they leave the
    /// pipe. Records are in sequence order, so this is a binary search and a walk over the range.
    /// Returns the bytes newly marked when <paramref name="countBytes"/> (the scoreboard did not count them).
    /// </summary>
    private int MarkSackedRecords(SackBlock range, bool countBytes)
    {
        int marked = 0;
        for (int i = _sent.FirstEndingAfter(range.Left); i < _sent.Count; i++)
        {
            ref var rec = ref _sent[i];
            if (rec.Start >= range.Right) break;
            if (rec.Has(SentFlags.Sacked) || rec.Start < range.Left) continue;
            // A record ending in our FIN counts as SACKed once its data is: SACK blocks carry data,
            // and a receiver may leave the FIN out of them (RFC 2018 does not mention it).
            var sackedUpTo = rec.Has(SentFlags.Fin) ? rec.End - 1 : rec.End;
            if (sackedUpTo > range.Right) continue;
            rec.Flags |= SentFlags.Sacked;
            _sackedCount++;
            if (countBytes) marked += rec.Length;
            if (rec.Has(SentFlags.InPipe)) { rec.Flags &= ~SentFlags.InPipe; _pipe -= rec.Length; }
            if (rec.Has(SentFlags.Lost)) { rec.Flags &= ~SentFlags.Lost; _lostCount--; }
            OnRecordDelivered(rec);
        }
        return marked;
    }

    /// <summary>RFC 3708 / RFC 8985 6.2 step 4: a D-SACK tells a retransmission (or the original) was needless.</summary>
    private void OnDsack(SackBlock block)
    {
        // A duplicate means the network reorders (or we retransmitted too early): widen RACK's
        // window, by min_RTT / 4 per round trip that sees a D-SACK (RFC 8985 6.2 step 4).
        if (_rackDsackRound is SeqNumber round && _sndUna >= round) _rackDsackRound = null;
        if (_rackDsackRound is null)
        {
            _rackDsackRound = _sndNxt;
            _rackReoWndMult++;
            _rackReoWndPersist = 16;
        }
        _rackReorderingSeen = true;
        // RFC 3708 3: count the episode's retransmissions reported as duplicates (Linux
        // tcp_check_dsack: only D-SACKs above the episode's undo marker; here also not above its
        // recovery point, so that a duplicate of later data cannot complete the count).
        if (_undoPossible && _undoRetransmissions > 0 && block.Right > _undoMarker && block.Right <= _recoveryPoint) _undoRetransmissions--;
        if (_tlpEndSeq is SeqNumber tlp && _tlpIsRetransmission && block.Right >= tlp) _tlpDsackWaiting++;
    }

    /// <summary>RFC 8985 6.2 step 2: a segment was delivered (cumulatively ACKed or SACKed).</summary>
    private void OnRecordDelivered(in SentSegment rec)
    {
        if (rec.End > _rackFack) _rackFack = rec.End;
        else if (!rec.Has(SentFlags.Retransmitted)) _rackReorderingSeen = true; // delivered below what was already delivered
        long rttUs = (_now - rec.SentAt).Ticks / TimeSpan.TicksPerMicrosecond;
        // An ACK for a retransmitted segment faster than min_RTT was for the original: not a sample.
        if (rec.Has(SentFlags.Retransmitted) && _rtt.HasSample && rttUs < _rtt.MinUs) return;
        if (_rackXmitTs.IsNever || rec.SentAt > _rackXmitTs || (rec.SentAt == _rackXmitTs && rec.End > _rackEndSeq))
        {
            _rackXmitTs = rec.SentAt;
            _rackEndSeq = rec.End;
            _rackRttUs = rttUs;
        }
    }

    /// <summary>
    /// After the ACK field of a segment is processed: count duplicate ACKs, detect losses (RACK
    /// or RFC 6675), enter, drive and leave recovery, detect spurious retransmissions.
    /// </summary>
    private void OnAckProcessed(bool advanced, int ackedBytes, bool duplicateCandidate, int newlySacked, bool dsack, in TcpSegment seg)
    {
        if (!_ccInitialized) return;
        bool duplicate = !advanced && (_sackOk ? newlySacked > 0 : duplicateCandidate);
        if (advanced) { _dupAcks = 0; _limitedTransmit = 0; _limitedTransmitBytes = 0; }
        else if (duplicate) _dupAcks++;
        if (_recoverNotPassed && _sndUna > _recoveryPoint) _recoverNotPassed = false;

        // Spurious-retransmission detection first, so that an undone episode sends no more repairs.
        if (advanced) DetectSpuriousRetransmission(seg);
        // A D-SACK reports a duplicate, which is no sign of loss (Linux fails F-RTO on newly SACKed
        // data or a duplicate ACK only).
        if (_recovery == RecoveryState.Loss && _frtoStage > 0) { FrtoOnAck(advanced, newlySacked > 0); }
        // RFC 3708 3 (Linux tcp_try_undo_dsack): the last D-SACK of an episode that has already
        // ended, with every retransmission of it reported as a duplicate: undo it now.
        if (dsack && _recovery == RecoveryState.Open && _undoPossible && _undoRetransmissions == 0) Undo();

        switch (_recovery)
        {
            case RecoveryState.Open:
                // RFC 6582 3.2 step 1: on the third duplicate ACK, "check to see if the Cumulative
                // Acknowledgment field covers more than recover ... If not, the TCP does not enter
                // fast retransmit and does not reset ssthresh."
                if (DetectLosses(advanced) || (!_sackOk && _dupAcks >= _settings.DuplicateAckThreshold && !_recoverNotPassed))
                {
                    EnterFastRecovery();
                }
                else if (duplicate && _dupAcks < _settings.DuplicateAckThreshold && _sent.Count > 0)
                {
                    // RFC 3042: one new segment for each of the first two duplicate ACKs.
                    _limitedTransmit = _dupAcks;
                }
                break;
            case RecoveryState.FastRecovery:
                if (!_sackOk)
                {
                    if (duplicate) _newRenoWindow += _smss; // RFC 6582 3.2 step 4: inflate
                    else if (advanced && _sndUna < _recoveryPoint)
                    {
                        // RFC 6582 3.2 step 5: partial ACK - retransmit the next hole, deflate by the
                        // new data acknowledged, add back one SMSS; reset the timer on the first one.
                        _newRenoWindow = Math.Max(_smss, _newRenoWindow - ackedBytes + (ackedBytes >= _smss ? _smss : 0));
                        MarkFirstUnackedLost();
                        _retransmitNow = true;
                        if (!_partialAckSeen) { _partialAckSeen = true; _timers.Rto = _now + _rtt.Rto; }
                    }
                }
                else DetectLosses(advanced);
                break;
            case RecoveryState.Loss:
                if (_sackOk) DetectLosses(advanced);
                break;
        }

        if (_recovery != RecoveryState.Open && advanced && _sndUna >= _recoveryPoint) ExitRecovery();
        CheckTailLossProbe(advanced, seg);
        ArmLossTimers();
    }

    /// <summary>
    /// Marks lost what the evidence says is lost: RACK's time-based rule (RFC 8985 6.2 step 5)
    /// or, without RACK, RFC 6675 IsLost (DupThresh SACKed segments, or more than
    /// (DupThresh - 1) * SMSS SACKed bytes, above a segment). Returns whether any was marked.
    /// </summary>
    private bool DetectLosses(bool advanced)
    {
        if (!_sackOk) return false;
        // Nothing SACKed and nothing in recovery: in-order delivery, no loss to find.
        if (_scoreboard.IsEmpty && _recovery == RecoveryState.Open && (_rackXmitTs.IsNever || !RackEnabled)) return false;
        bool marked = false;
        if (RackEnabled)
        {
            if (_rackXmitTs.IsNever) return false;
            long reoWndUs = RackReorderWindowUs();
            for (int i = 0; i < _sent.Count; i++)
            {
                ref var rec = ref _sent[i];
                if (rec.Has(SentFlags.Sacked) || rec.Has(SentFlags.Lost) || rec.Has(SentFlags.Probe)) continue;
                bool sentBefore = rec.SentAt < _rackXmitTs || (rec.SentAt == _rackXmitTs && rec.End <= _rackEndSeq);
                if (!sentBefore)
                {
                    // Original transmissions are in sequence order; past RACK.xmit_ts nothing older follows.
                    if (!rec.Has(SentFlags.Retransmitted)) break;
                    continue;
                }
                long remaining = (rec.SentAt - _now).Ticks / TimeSpan.TicksPerMicrosecond + _rackRttUs + reoWndUs;
                if (remaining <= 0) { MarkLost(ref rec); marked = true; }
            }
        }
        else
        {
            int threshold = (_settings.DuplicateAckThreshold - 1) * _smss;
            for (int i = 0; i < _sent.Count; i++)
            {
                ref var rec = ref _sent[i];
                if (rec.Has(SentFlags.Sacked) || rec.Has(SentFlags.Lost) || rec.Has(SentFlags.Retransmitted) || rec.Has(SentFlags.Probe)) continue;
                if (_scoreboard.SackedBytesAbove(rec.End) > threshold || _scoreboard.RangesAbove(rec.End) >= _settings.DuplicateAckThreshold)
                {
                    MarkLost(ref rec);
                    marked = true;
                }
                else break; // IsLost only holds further down if it holds here
            }
            if (!marked && _recovery == RecoveryState.Open && _dupAcks >= _settings.DuplicateAckThreshold && _sent.Count > 0
                && !_sent.First.Has(SentFlags.Sacked) && !_sent.First.Has(SentFlags.Lost))
            {
                // RFC 6675 5: DupThresh duplicate ACKs start recovery and retransmit the first segment.
                MarkLost(ref _sent.First);
                marked = true;
            }
        }
        return marked;
    }

    /// <summary>RFC 8985 6.2 step 4: RACK.reo_wnd.</summary>
    private long RackReorderWindowUs()
    {
        // "If RACK.reordering_seen is FALSE: If in Fast or RTO recovery: return 0; Else if
        // RACK.segs_sacked >= DupThresh: return 0" - without reordering, DupThresh applies at once.
        if (!_rackReorderingSeen && (_recovery != RecoveryState.Open || _sackedCount >= _settings.DuplicateAckThreshold)) return 0;
        long min = _rtt.HasSample ? _rtt.MinUs : 0;
        long wnd = _rackReoWndMult * min / 4;
        return _rtt.HasSample ? Math.Min(wnd, _rtt.SmoothedUs) : wnd;
    }

    private void MarkLost(ref SentSegment rec)
    {
        if (rec.Has(SentFlags.Lost)) return;
        rec.Flags |= SentFlags.Lost;
        _lostCount++;
        if (rec.Has(SentFlags.InPipe)) { rec.Flags &= ~SentFlags.InPipe; _pipe -= rec.Length; }
    }

    private void MarkFirstUnackedLost()
    {
        if (_sent.Count == 0) return;
        ref var first = ref _sent.First;
        if (!first.Has(SentFlags.Sacked)) MarkLost(ref first);
    }

    /// <summary>RFC 6675 5 / RFC 6582 3.2 step 2: start fast recovery.</summary>
    private void EnterFastRecovery()
    {
        _recovery = RecoveryState.FastRecovery;
        _recoveryPoint = _sndNxt;
        FastRetransmits++;
        _env.Statistics.FastRetransmits++;
        _cc.OnCongestionEvent(FlightSizeForLossResponse, _smss, _now);
        BeginUndoEpisode();
        _partialAckSeen = false;
        _limitedTransmit = 0;
        _limitedTransmitBytes = 0;
        MarkFirstUnackedLost();
        // RFC 5681 3.2 step 3 / RFC 6675 5 (4.3): the first lost segment goes out now, even
        // though pipe is above the reduced cwnd (it usually is: half the window is still in flight).
        _retransmitNow = true;
        // RFC 6582 3.2 step 3: cwnd = ssthresh + 3*SMSS (the segments that left the network).
        _newRenoWindow = _cc.CongestionWindow + _settings.DuplicateAckThreshold * _smss;
    }

    private void ExitRecovery()
    {
        // RFC 3708: every retransmission of the episode was D-SACKed: nothing was lost. For a
        // timeout (undoable only with F-RTO on) this is Linux's tcp_try_undo_loss: a stall that
        // delivers everything at once ends the episode with one ACK that covers "recover", which
        // tells F-RTO nothing, while its D-SACK shows the resent segment was a duplicate.
        if (_undoPossible && _undoRetransmissions == 0 && !_undoTsPending && _settings.UndoSpuriousRetransmissions)
        {
            Undo();
            return;
        }
        if (_recovery == RecoveryState.FastRecovery) _cc.OnRecoveryEnd(_smss, _now);
        // RFC 3708 3: the D-SACK for the last retransmission usually comes after the ACK that
        // ends recovery (the late original fills the hole first): keep counting them.
        bool awaitDsack = _undoPossible && _sackOk;
        _recovery = RecoveryState.Open;
        _frtoStage = 0;
        _retransmitNow = false;
        _undoPossible = awaitDsack;
        _recoverNotPassed = !_sackOk && _sndUna <= _recoveryPoint;
        _dupAcks = 0;
        // RFC 8985 6.2 step 4: after 16 recoveries without D-SACK, reo_wnd_mult returns to 1.
        if (--_rackReoWndPersist <= 0) _rackReoWndMult = 1;
        // Segments sent after the recovery point and already found lost (RACK marks by time) are
        // a new loss in a new window: they start a new episode at once rather than waiting for
        // the timeout, which is all the Open state would do for them.
        if (_lostCount > 0) EnterFastRecovery();
    }

    private void BeginUndoEpisode()
    {
        _undoPossible = _settings.UndoSpuriousRetransmissions;
        _undoRetransmissions = 0;
        _undoTsValid = false;
        _undoTsPending = true;
        _undoMarker = _sndUna;
    }

    /// <summary>
    /// Called for every retransmission. RFC 3522 3.2 (2): "When retransmitting the oldest
    /// outstanding segment, store the timestamp value of the retransmit in RetransmitTS": the
    /// episode's first retransmission fixes it if it is of SND.UNA's segment; an echo older than
    /// it then shows the original arrived. If the first one is of a later segment, an ACK for
    /// older data would echo an older TSval without telling anything: no Eifel in that episode.
    /// </summary>
    private void OnRetransmitted(bool oldestOutstanding)
    {
        if (_recovery == RecoveryState.Open) return;
        _undoRetransmissions++;
        if (!_undoTsPending) return;
        _undoTsPending = false;
        if (oldestOutstanding) { _undoTsVal = TsNow; _undoTsValid = true; }
    }

    /// <summary>
    /// RFC 3522 (Eifel detection): if the ACK that first acknowledges retransmitted data echoes a
    /// TSval older than the retransmission, the original got through and the retransmission was
    /// spurious; RFC 4015 response: undo.
    /// </summary>
    private void DetectSpuriousRetransmission(in TcpSegment seg)
    {
        if (!_undoPossible || !_undoTsValid || !_tsOk || !seg.Options.HasTimestamps || _recovery == RecoveryState.Open) return;
        uint echo = seg.Options.TimestampEcho;
        if (echo != 0 && unchecked((int)(echo - _undoTsVal)) < 0)
        {
            Undo();
        }
        else
        {
            _undoTsValid = false; // the first ACK after the retransmission did not show it spurious
            _undoPossible = _undoRetransmissions > 0 && _settings.UndoSpuriousRetransmissions; // D-SACK may still
        }
    }

    /// <summary>RFC 4015 / RFC 5682: restore cwnd and ssthresh, forget the loss marks, leave recovery.</summary>
    private void Undo()
    {
        _cc.Undo();
        for (int i = 0; i < _sent.Count; i++)
        {
            ref var rec = ref _sent[i];
            if (!rec.Has(SentFlags.Lost)) continue;
            rec.Flags = (rec.Flags & ~SentFlags.Lost) | SentFlags.InPipe;
            _lostCount--;
            _pipe += rec.Length;
        }
        _recovery = RecoveryState.Open;
        _frtoStage = 0;
        _retransmitNow = false;
        _undoPossible = false;
        _dupAcks = 0;
        SpuriousRetransmissionsUndone++;
        _env.Statistics.SpuriousRetransmissionsUndone++;
    }

    /// <summary>Episodes undone as spurious on this connection.</summary>
    public long SpuriousRetransmissionsUndone { get; private set; }

    /// <summary>
    /// RFC 5682 2 (F-RTO) on the ACKs after a timeout: if the first ACK advances SND.UNA, new data
    /// goes out instead of retransmissions; if the second ACK also acknowledges new data, the
    /// timeout was spurious. A duplicate ACK at either step means real loss: go on as usual.
    /// </summary>
    private void FrtoOnAck(bool advanced, bool sackInfo)
    {
        if (!advanced || sackInfo)
        {
            // Real loss: conventional recovery retransmits the lost segments (2a, 3a).
            bool newDataOut = _frtoStage == 2;
            _frtoStage = 0;
            // RFC 5682 3a: "set the congestion window to no more than 3 * MSS, and continue with
            // the slow-start algorithm retransmitting unacknowledged segments": cwnd is 2 SMSS
            // here, filled by the two new segments. The duplicate ACK shows one of them has left
            // the network (with SACK it has left the pipe already), so one retransmission goes.
            if (newDataOut && !advanced && !_sackOk) _retransmitNow = true;
            return;
        }
        if (_frtoStage == 1)
        {
            if (_sndUna >= _recoveryPoint) { _frtoStage = 0; return; } // everything acknowledged: nothing to tell
            // RFC 5682 2b: "If the TCP sender is not able to transmit any previously unsent data
            // ... refrain from entering step 3 ... continue with slow-start retransmissions".
            long peerRoom = _sndWnd - (_sndNxt - _sndUna);
            if (DataEnd - _sndNxt <= 0 || peerRoom <= 0) { _frtoStage = 0; return; }
            _frtoStage = 2; // send new data; judge at the next ACK
            return;
        }
        // Stage 2: an ACK for data never retransmitted after the timeout: spurious.
        Undo();
    }

    private void OnRetransmissionTimeoutRecovery()
    {
        bool wasOpen = _recovery == RecoveryState.Open;
        if (_ccInitialized) _cc.OnRetransmissionTimeout(_pipe, _smss, _now, alreadyReduced: !wasOpen);
        if (_sent.Count > 0 && _sent.First.Has(SentFlags.Sacked))
        {
            // RFC 2018 8: SACK is advisory; the receiver may discard (renege on) data it SACKed.
            // The segment at SND.UNA is SACKed yet still unacknowledged after a whole RTO: forget
            // every SACK mark and resend from SND.UNA (Linux tcp_check_sack_reneging).
            _scoreboard.Clear();
            for (int i = 0; i < _sent.Count; i++) _sent[i].Flags &= ~SentFlags.Sacked;
            _sackedCount = 0;
        }
        // F-RTO only for the first timeout of an episode whose first segment was not resent before.
        bool frto = _settings.Frto && wasOpen && _sent.Count > 0 && !_sent.First.Has(SentFlags.Retransmitted) && _ccInitialized;
        for (int i = 0; i < _sent.Count; i++)
        {
            ref var rec = ref _sent[i];
            if (rec.Has(SentFlags.Sacked) || rec.Has(SentFlags.Probe)) continue;
            MarkLost(ref rec);
        }
        _recovery = RecoveryState.Loss;
        _recoveryPoint = _sndNxt;
        _dupAcks = 0;
        _limitedTransmit = 0;
        _limitedTransmitBytes = 0;
        _retransmitNow = false;
        _tlpEndSeq = null;
        _timers.LossProbe = Instant.Never;
        _frtoStage = frto ? 1 : 0;
        BeginUndoEpisode();
        _undoPossible = frto; // only F-RTO may undo a timeout
    }

    /// <summary>
    /// RFC 5682 steps 1 and 2: during F-RTO only the segment at SND.UNA is resent (step 1); after
    /// the first ACK new data goes out instead of retransmissions (step 2) until the next ACK decides.
    /// </summary>
    private bool HoldLostRetransmissions => _recovery == RecoveryState.Loss && _frtoStage > 0
        && (_frtoStage == 2 || _sent.Count == 0 || !_sent.First.Has(SentFlags.Lost));

    // ---- tail loss probe (RFC 8985 7) ----

    private void OnDataSent(int length)
    {
        if (_recovery == RecoveryState.Open && _dupAcks > 0) _limitedTransmitBytes += length;
        if (_roundEnd == default) _roundEnd = _sndNxt;
        // RFC 8985 7.2: (re)start the probe timer after sending new data.
        if (_recovery == RecoveryState.Open && _tlpEndSeq is null) ArmLossTimers();
    }

    /// <summary>Tracks round trips for HyStart++: a round ends when its windowEnd is acknowledged.</summary>
    private bool TakeRoundStart(SeqNumber ack)
    {
        if (ack >= _roundEnd) { _roundEnd = _sndNxt; return true; }
        return false;
    }

    /// <summary>
    /// RFC 8985 7.2: arm the probe timeout while data is outstanding in the Open state with nothing
    /// SACKed ("unless it is already in fast recovery, RTO recovery, or segments have been SACKed");
    /// otherwise RACK's reordering timer (6.3) covers the outstanding data.
    /// </summary>
    private void ArmLossTimers()
    {
        _timers.LossProbe = Instant.Never;
        if (!RackEnabled || _sent.Count == 0 || !IsSynchronized) return;
        if (_recovery != RecoveryState.Open || !_scoreboard.IsEmpty)
        {
            ArmRackReorderTimer();
            // RFC 8985 7.2: outside recovery, with nothing for the reordering timer to time
            // (no segment older than the newest delivered one is outstanding), the tail loss
            // probe is what repairs a loss at the tail; without it only the RTO would.
            if (_recovery != RecoveryState.Open || !_timers.LossProbe.IsNever) return;
        }
        if (_tlpEndSeq is not null || _sent.First.Has(SentFlags.Probe)) return;
        long pto = _rtt.HasSample ? 2 * _rtt.SmoothedUs : 1_000_000;
        // One segment in flight: the peer may be delaying its ACK (RFC 8985 7.2 WCDelAckT = 200 ms).
        if (_sent.Count == 1) pto += 200_000;
        pto = Math.Max(pto, 2_000);
        var deadline = _now + TimeSpan.FromMicroseconds(pto);
        // RFC 8985 7.2: "If Now() + PTO > TCP_RTO_expire(): PTO = TCP_RTO_expire() - Now()" - the
        // probe then goes at the timeout's instant instead of the timeout (RunTimers runs it first).
        if (!_timers.Rto.IsNever && deadline > _timers.Rto) deadline = _timers.Rto;
        _timers.LossProbe = deadline;
    }

    /// <summary>RFC 8985 6.3: when segments are not yet lost only for lack of time, wake when they would be.</summary>
    private void ArmRackReorderTimer()
    {
        if (_rackXmitTs.IsNever || (_scoreboard.IsEmpty && _recovery == RecoveryState.Open)) return;
        long reoWndUs = RackReorderWindowUs();
        Instant earliest = Instant.Never;
        for (int i = 0; i < _sent.Count; i++)
        {
            ref var rec = ref _sent[i];
            if (rec.Has(SentFlags.Sacked) || rec.Has(SentFlags.Lost) || rec.Has(SentFlags.Probe)) continue;
            bool sentBefore = rec.SentAt < _rackXmitTs || (rec.SentAt == _rackXmitTs && rec.End <= _rackEndSeq);
            if (!sentBefore) { if (!rec.Has(SentFlags.Retransmitted)) break; continue; }
            var at = rec.SentAt + TimeSpan.FromMicroseconds(_rackRttUs + reoWndUs);
            if (at < earliest) earliest = at;
        }
        if (!earliest.IsNever && (_timers.LossProbe.IsNever || earliest < _timers.LossProbe)) _timers.LossProbe = earliest;
    }

    /// <summary>The loss-probe deadline fired: either RACK's reordering timer or the TLP timer.</summary>
    private void OnLossProbeTimeout()
    {
        _timers.LossProbe = Instant.Never;
        if (_sent.Count == 0 || !IsSynchronized) return;
        if (_recovery != RecoveryState.Open || !_scoreboard.IsEmpty)
        {
            // RACK reordering timer (RFC 8985 6.3): re-run detection now that time has passed.
            if (DetectLosses(advanced: false) && _recovery == RecoveryState.Open) EnterFastRecovery();
            ArmLossTimers();
            return;
        }
        if (_tlpEndSeq is not null) return;
        // RFC 8985 7.3: send one new segment if the windows allow, else retransmit the last one.
        int unsent = Math.Max(0, DataEnd - _sndNxt);
        long peerRoom = _sndWnd - (_sndNxt - _sndUna);
        if (unsent > 0 && peerRoom > 0)
        {
            _tlpIsRetransmission = false;
            SendNewSegment((int)Math.Min(Math.Min(unsent, _smss), peerRoom), fin: _finQueued && !_finSent && unsent <= _smss && unsent <= peerRoom);
        }
        else
        {
            _tlpIsRetransmission = true;
            if (_sent.Last.Has(SentFlags.Sacked)) return;
            Retransmit(_sent.Count - 1);
        }
        _tlpEndSeq = _sndNxt;
        _tlpDsackWaiting = 0;
        _timers.LossProbe = Instant.Never; // one probe per episode: sending it must not arm another
        _env.Statistics.TailLossProbes++;
        // RFC 8985 7.3: the RTO is re-armed after the probe.
        _timers.Rto = _now + _rtt.Rto;
    }

    /// <summary>
    /// RFC 8985 7.4.2 (Linux tcp_process_tlp_ack): the end of a probe episode. A probe of new data,
    /// or a retransmission the peer reports as a duplicate (D-SACK), shows no loss; an ACK beyond
    /// TLP.end_seq without such a D-SACK shows the probe repaired a real loss, which calls for a
    /// congestion response. An ACK of exactly TLP.end_seq may be for the original, the probe's
    /// D-SACK following in the next ACK: wait. A pure duplicate ACK without SACK option (a peer
    /// without D-SACK) means both copies arrived.
    /// </summary>
    private void CheckTailLossProbe(bool advanced, in TcpSegment seg)
    {
        if (_tlpEndSeq is not SeqNumber end || _sndUna < end) return;
        if (!_tlpIsRetransmission || _tlpDsackWaiting > 0)
        {
            _tlpEndSeq = null;
            return;
        }
        if (_sndUna > end)
        {
            _tlpEndSeq = null;
            if (_recovery == RecoveryState.Open)
            {
                _cc.OnCongestionEvent(FlightSizeForLossResponse, _smss, _now);
                _cc.OnRecoveryEnd(_smss, _now);
                _undoPossible = false; // a later D-SACK is no reason to undo this response
            }
            return;
        }
        if (!advanced && seg.Acknowledgment == _sndUna && seg.Options.SackCount == 0 && seg.Payload.Length == 0) _tlpEndSeq = null;
    }
}
