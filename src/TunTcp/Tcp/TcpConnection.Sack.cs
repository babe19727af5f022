using TunTcp.Wire;

namespace TunTcp.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>
    /// Recovery with SACK: the scoreboard recovery of RFC 6675 (pipe, IsLost, NextSeg), with
    /// losses found either by DupThresh or, by default, by RACK (RFC 8985 6), which also arms the
    /// tail loss probe (RFC 8985 7); limited transmit is then simply cwnd - pipe. D-SACKs (RFC
    /// 2883) widen RACK's reordering window and count the episode's needless retransmissions
    /// (RFC 3708), also after the episode has ended.
    /// </summary>
    private sealed class SackRecovery(TcpConnection connection) : LossRecovery(connection)
    {
        private readonly bool _rack = connection._settings.Rack;

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

        public override int CongestionLimit => _c._cc.CongestionWindow;

        protected override bool IsDuplicate(bool duplicateCandidate, int newlySacked) => newlySacked > 0;

        protected override bool AwaitsLateDsack => true;

        public override bool ReorderingSeen => _rackReorderingSeen;

        /// <summary>
        /// Updates the scoreboard from the SACK blocks of an ACK (RFC 2018) and marks fully SACKed
        /// records, which leave the pipe. A first block below SEG.ACK, or inside the second block,
        /// is a D-SACK (RFC 2883 4) reporting a duplicate, not new data.
        /// </summary>
        public override int OnSackBlocks(in TcpOptions options, SeqNumber ack, out bool dsack)
        {
            var c = _c;
            var blocks = options.SackBlocks;
            dsack = false;
            int first = 0;
            if (blocks.Length > 0 && (blocks[0].Left < ack
                || (blocks.Length > 1 && blocks[0].Left >= blocks[1].Left && blocks[0].Right <= blocks[1].Right)))
            {
                dsack = true;
                first = 1;
                c.DsacksReceived++;
                OnDsack(blocks[0]);
            }
            int newly = 0;
            var floor = SeqNumber.Max(ack, c._snd.Una);
            for (int b = first; b < blocks.Length; b++)
            {
                var block = blocks[b];
                if (block.Right <= block.Left || block.Right <= floor || block.Left >= c._snd.Nxt) continue;
                int added = c._scoreboard.Add(block, floor, c._snd.Nxt);
                newly += added;
                // The records inside the scoreboard range that now holds the block (it may have joined
                // neighbours); a block the full scoreboard refused still SACKs the records it covers.
                // A block already on the scoreboard was applied when it arrived: nothing new to mark.
                var left = SeqNumber.Max(block.Left, floor);
                if (c._scoreboard.TryGetRangeContaining(left, out var range))
                {
                    if (added > 0) MarkSackedRecords(range, countBytes: false);
                }
                else
                {
                    newly += MarkSackedRecords(new SackBlock(left, SeqNumber.Min(block.Right, c._snd.Nxt)), countBytes: true);
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
            var c = _c;
            int marked = 0;
            for (int i = c._sent.FirstEndingAfter(range.Left); i < c._sent.Count; i++)
            {
                ref var rec = ref c._sent[i];
                if (rec.Start >= range.Right) break;
                if (rec.Has(SentFlags.Sacked) || rec.Start < range.Left) continue;
                // A record ending in our FIN counts as SACKed once its data is: SACK blocks carry data,
                // and a receiver may leave the FIN out of them (RFC 2018 does not mention it).
                var sackedUpTo = rec.Has(SentFlags.Fin) ? rec.End - 1 : rec.End;
                if (sackedUpTo > range.Right) continue;
                rec.Flags |= SentFlags.Sacked;
                c._sackedCount++;
                if (countBytes) marked += rec.Length;
                if (rec.Has(SentFlags.InPipe)) { rec.Flags &= ~SentFlags.InPipe; c._pipe -= rec.Length; }
                if (rec.Has(SentFlags.Lost)) { rec.Flags &= ~SentFlags.Lost; c._lostCount--; }
                OnRecordDelivered(rec);
            }
            return marked;
        }

        /// <summary>RFC 3708 / RFC 8985 6.2 step 4: a D-SACK tells a retransmission (or the original) was needless.</summary>
        private void OnDsack(SackBlock block)
        {
            var c = _c;
            // A duplicate means the network reorders (or we retransmitted too early): widen RACK's
            // window, by min_RTT / 4 per round trip that sees a D-SACK (RFC 8985 6.2 step 4).
            if (_rackDsackRound is SeqNumber round && c._snd.Una >= round) _rackDsackRound = null;
            if (_rackDsackRound is null)
            {
                _rackDsackRound = c._snd.Nxt;
                _rackReoWndMult++;
                _rackReoWndPersist = 16;
            }
            _rackReorderingSeen = true;
            CountDuplicateRetransmission(block);
            if (_tlpEndSeq is SeqNumber tlp && _tlpIsRetransmission && block.Right >= tlp) _tlpDsackWaiting++;
        }

        /// <summary>RFC 8985 6.2 step 2: a segment was delivered (cumulatively ACKed or SACKed).</summary>
        public override void OnRecordDelivered(in SentSegment rec)
        {
            var c = _c;
            if (rec.End > _rackFack) _rackFack = rec.End;
            else if (!rec.Has(SentFlags.Retransmitted)) _rackReorderingSeen = true; // delivered below what was already delivered
            long rttUs = (c._now - rec.SentAt).Ticks / TimeSpan.TicksPerMicrosecond;
            // An ACK for a retransmitted segment faster than min_RTT was for the original: not a sample.
            if (rec.Has(SentFlags.Retransmitted) && c._rtt.HasSample && rttUs < c._rtt.MinUs) return;
            if (_rackXmitTs.IsNever || rec.SentAt > _rackXmitTs || (rec.SentAt == _rackXmitTs && rec.End > _rackEndSeq))
            {
                _rackXmitTs = rec.SentAt;
                _rackEndSeq = rec.End;
                _rackRttUs = rttUs;
            }
        }

        protected override void Drive(bool advanced, int ackedBytes, bool duplicate)
        {
            if (State == RecoveryState.Open)
            {
                if (DetectLosses()) EnterFastRecovery();
            }
            else DetectLosses();
        }

        protected override void AfterAck(bool advanced, in TcpSegment segment)
        {
            CheckTailLossProbe(advanced, segment);
            ArmLossTimers();
        }

        /// <summary>RFC 8985 6.2 step 4: after 16 recoveries without D-SACK, reo_wnd_mult returns to 1.</summary>
        protected override void OnEpisodeEnded()
        {
            if (--_rackReoWndPersist <= 0) _rackReoWndMult = 1;
        }

        protected override void OnTimeout()
        {
            var c = _c;
            if (c._sent.Count > 0 && c._sent.First.Has(SentFlags.Sacked))
            {
                // RFC 2018 8: SACK is advisory; the receiver may discard (renege on) data it SACKed.
                // The segment at SND.UNA is SACKed yet still unacknowledged after a whole RTO: forget
                // every SACK mark and resend from SND.UNA (Linux tcp_check_sack_reneging).
                c._scoreboard.Clear();
                for (int i = 0; i < c._sent.Count; i++) c._sent[i].Flags &= ~SentFlags.Sacked;
                c._sackedCount = 0;
            }
            _tlpEndSeq = null;
            c._timers.LossProbe = Instant.Never;
        }

        /// <summary>
        /// Marks lost what the evidence says is lost: RACK's time-based rule (RFC 8985 6.2 step 5)
        /// or, without RACK, RFC 6675 IsLost (DupThresh SACKed segments, or more than
        /// (DupThresh - 1) * SMSS SACKed bytes, above a segment). Returns whether any was marked.
        /// </summary>
        private bool DetectLosses()
        {
            var c = _c;
            var sent = c._sent;
            // Nothing SACKed and nothing in recovery: in-order delivery, no loss to find.
            if (c._scoreboard.IsEmpty && State == RecoveryState.Open && (_rackXmitTs.IsNever || !_rack)) return false;
            bool marked = false;
            if (_rack)
            {
                if (_rackXmitTs.IsNever) return false;
                long reoWndUs = RackReorderWindowUs();
                for (int i = 0; i < sent.Count; i++)
                {
                    ref var rec = ref sent[i];
                    if (rec.Has(SentFlags.Sacked) || rec.Has(SentFlags.Lost) || rec.Has(SentFlags.Probe)) continue;
                    bool sentBefore = rec.SentAt < _rackXmitTs || (rec.SentAt == _rackXmitTs && rec.End <= _rackEndSeq);
                    if (!sentBefore)
                    {
                        // Original transmissions are in sequence order; past RACK.xmit_ts nothing older follows.
                        if (!rec.Has(SentFlags.Retransmitted)) break;
                        continue;
                    }
                    long remaining = (rec.SentAt - c._now).Ticks / TimeSpan.TicksPerMicrosecond + _rackRttUs + reoWndUs;
                    if (remaining <= 0) { c.MarkLost(ref rec); marked = true; }
                }
            }
            else
            {
                int threshold = (c._settings.DuplicateAckThreshold - 1) * c._smss;
                for (int i = 0; i < sent.Count; i++)
                {
                    ref var rec = ref sent[i];
                    if (rec.Has(SentFlags.Sacked) || rec.Has(SentFlags.Lost) || rec.Has(SentFlags.Retransmitted) || rec.Has(SentFlags.Probe)) continue;
                    if (c._scoreboard.SackedBytesAbove(rec.End) > threshold || c._scoreboard.RangesAbove(rec.End) >= c._settings.DuplicateAckThreshold)
                    {
                        c.MarkLost(ref rec);
                        marked = true;
                    }
                    else break; // IsLost only holds further down if it holds here
                }
                if (!marked && State == RecoveryState.Open && _dupAcks >= c._settings.DuplicateAckThreshold && sent.Count > 0
                    && !sent.First.Has(SentFlags.Sacked) && !sent.First.Has(SentFlags.Lost))
                {
                    // RFC 6675 5: DupThresh duplicate ACKs start recovery and retransmit the first segment.
                    c.MarkLost(ref sent.First);
                    marked = true;
                }
            }
            return marked;
        }

        /// <summary>RFC 8985 6.2 step 4: RACK.reo_wnd.</summary>
        private long RackReorderWindowUs()
        {
            var rtt = _c._rtt;
            // "If RACK.reordering_seen is FALSE: If in Fast or RTO recovery: return 0; Else if
            // RACK.segs_sacked >= DupThresh: return 0" - without reordering, DupThresh applies at once.
            if (!_rackReorderingSeen && (State != RecoveryState.Open || _c._sackedCount >= _c._settings.DuplicateAckThreshold)) return 0;
            long min = rtt.HasSample ? rtt.MinUs : 0;
            long wnd = _rackReoWndMult * min / 4;
            return rtt.HasSample ? Math.Min(wnd, rtt.SmoothedUs) : wnd;
        }

        // ---- tail loss probe (RFC 8985 7) ----

        /// <summary>RFC 8985 7.2: (re)start the probe timer after sending new data.</summary>
        protected override void AfterDataSent()
        {
            if (State == RecoveryState.Open && _tlpEndSeq is null) ArmLossTimers();
        }

        /// <summary>
        /// RFC 8985 7.2: arm the probe timeout while data is outstanding in the Open state with nothing
        /// SACKed ("unless it is already in fast recovery, RTO recovery, or segments have been SACKed");
        /// otherwise RACK's reordering timer (6.3) covers the outstanding data.
        /// </summary>
        private void ArmLossTimers()
        {
            var c = _c;
            ref var timers = ref c._timers;
            timers.LossProbe = Instant.Never;
            if (!_rack || c._sent.Count == 0 || !c.IsSynchronized) return;
            if (State != RecoveryState.Open || !c._scoreboard.IsEmpty)
            {
                ArmRackReorderTimer();
                // RFC 8985 7.2: outside recovery, with nothing for the reordering timer to time
                // (no segment older than the newest delivered one is outstanding), the tail loss
                // probe is what repairs a loss at the tail; without it only the RTO would.
                if (State != RecoveryState.Open || !timers.LossProbe.IsNever) return;
            }
            if (_tlpEndSeq is not null || c._sent.First.Has(SentFlags.Probe)) return;
            long pto = c._rtt.HasSample ? 2 * c._rtt.SmoothedUs : 1_000_000;
            // One segment in flight: the peer may be delaying its ACK (RFC 8985 7.2 WCDelAckT = 200 ms).
            if (c._sent.Count == 1) pto += 200_000;
            pto = Math.Max(pto, 2_000);
            var deadline = c._now + TimeSpan.FromMicroseconds(pto);
            // RFC 8985 7.2: "If Now() + PTO > TCP_RTO_expire(): PTO = TCP_RTO_expire() - Now()" - the
            // probe then goes at the timeout's instant instead of the timeout (RunTimers runs it first).
            if (!timers.Rto.IsNever && deadline > timers.Rto) deadline = timers.Rto;
            timers.LossProbe = deadline;
        }

        /// <summary>RFC 8985 6.3: when segments are not yet lost only for lack of time, wake when they would be.</summary>
        private void ArmRackReorderTimer()
        {
            var c = _c;
            if (_rackXmitTs.IsNever || (c._scoreboard.IsEmpty && State == RecoveryState.Open)) return;
            long reoWndUs = RackReorderWindowUs();
            Instant earliest = Instant.Never;
            for (int i = 0; i < c._sent.Count; i++)
            {
                ref var rec = ref c._sent[i];
                if (rec.Has(SentFlags.Sacked) || rec.Has(SentFlags.Lost) || rec.Has(SentFlags.Probe)) continue;
                bool sentBefore = rec.SentAt < _rackXmitTs || (rec.SentAt == _rackXmitTs && rec.End <= _rackEndSeq);
                if (!sentBefore) { if (!rec.Has(SentFlags.Retransmitted)) break; continue; }
                var at = rec.SentAt + TimeSpan.FromMicroseconds(_rackRttUs + reoWndUs);
                if (at < earliest) earliest = at;
            }
            ref var timers = ref c._timers;
            if (!earliest.IsNever && (timers.LossProbe.IsNever || earliest < timers.LossProbe)) timers.LossProbe = earliest;
        }

        /// <summary>The loss-probe deadline fired: either RACK's reordering timer or the TLP timer.</summary>
        public override void OnLossProbeTimeout()
        {
            var c = _c;
            c._timers.LossProbe = Instant.Never;
            if (c._sent.Count == 0 || !c.IsSynchronized) return;
            if (State != RecoveryState.Open || !c._scoreboard.IsEmpty)
            {
                // RACK reordering timer (RFC 8985 6.3): re-run detection now that time has passed.
                if (DetectLosses() && State == RecoveryState.Open) EnterFastRecovery();
                ArmLossTimers();
                return;
            }
            if (_tlpEndSeq is not null) return;
            // RFC 8985 7.3: send one new segment if the windows allow, else retransmit the last one.
            int unsent = Math.Max(0, c.DataEnd - c._snd.Nxt);
            long peerRoom = c._snd.Wnd - (c._snd.Nxt - c._snd.Una);
            if (unsent > 0 && peerRoom > 0)
            {
                _tlpIsRetransmission = false;
                c.SendNewSegment((int)Math.Min(Math.Min(unsent, c._smss), peerRoom), fin: c._finQueued && !c._finSent && unsent <= c._smss && unsent <= peerRoom);
            }
            else
            {
                _tlpIsRetransmission = true;
                if (c._sent.Last.Has(SentFlags.Sacked)) return;
                c.Retransmit(c._sent.Count - 1);
            }
            _tlpEndSeq = c._snd.Nxt;
            _tlpDsackWaiting = 0;
            c._timers.LossProbe = Instant.Never; // one probe per episode: sending it must not arm another
            c._env.Statistics.TailLossProbes++;
            // RFC 8985 7.3: the RTO is re-armed after the probe.
            c._timers.Rto = c._now + c._rtt.Rto;
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
            var c = _c;
            if (_tlpEndSeq is not SeqNumber end || c._snd.Una < end) return;
            if (!_tlpIsRetransmission || _tlpDsackWaiting > 0)
            {
                _tlpEndSeq = null;
                return;
            }
            if (c._snd.Una > end)
            {
                _tlpEndSeq = null;
                if (State == RecoveryState.Open)
                {
                    c._cc.OnCongestionEvent(FlightSizeForLossResponse, c._smss, c._now);
                    c._cc.OnRecoveryEnd(c._smss, c._now);
                    ForbidUndo(); // a later D-SACK is no reason to undo this response
                }
                return;
            }
            if (!advanced && seg.Acknowledgment == c._snd.Una && seg.Options.SackCount == 0 && seg.Payload.Length == 0) _tlpEndSeq = null;
        }
    }
}
