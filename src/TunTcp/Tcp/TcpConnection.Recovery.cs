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
/// Loss detection and recovery of one connection's sender, as gVisor's <c>lossRecovery</c>: the
/// sender tells it what happened (an ACK and its SACK blocks, a segment sent or resent, a timer),
/// and it decides which records are lost, what the congestion response is and how much the
/// sender may have in flight. Two implementations, chosen by what the handshake negotiated:
/// NewReno without SACK (RFC 5681, RFC 6582, RFC 3042) and the SACK scoreboard with RACK-TLP
/// (RFC 6675, RFC 8985). Both share the episode's frame: entering and leaving recovery, F-RTO
/// (RFC 5682) and the undo of spurious retransmissions (RFC 3522, RFC 3708, RFC 4015).
/// </summary>
internal interface ILossRecovery
{
    RecoveryState State { get; }

    /// <summary>RACK saw a segment delivered out of order (RFC 8985 6.2 step 2; SACK only).</summary>
    bool ReorderingSeen { get; }

    /// <summary>
    /// The window the sender may fill: cwnd, NewReno's inflated window in recovery, plus limited
    /// transmit without SACK. With SACK, limited transmit needs no allowance: RFC 6675 5 (3) sends
    /// new data while cwnd - pipe >= 1 SMSS, and SACKed segments have already left the pipe.
    /// </summary>
    int CongestionLimit { get; }

    /// <summary>
    /// RFC 5681 3.2 step 2 FlightSize for ssthresh: data sent and not cumulatively acknowledged
    /// (RFC 6675 5 (4.2) likewise), "additional data sent in limited transmit MUST NOT be included".
    /// </summary>
    int FlightSizeForLossResponse { get; }

    /// <summary>
    /// RFC 5682 steps 1 and 2: during F-RTO only the segment at SND.UNA is resent (step 1); after
    /// the first ACK new data goes out instead of retransmissions (step 2) until the next ACK decides.
    /// </summary>
    bool HoldLostRetransmissions { get; }

    /// <summary>
    /// Whether the next retransmission of a lost segment may go out whatever cwnd and pipe say
    /// (the episode's first, and NewReno's on a partial ACK); clears the allowance.
    /// </summary>
    bool TakeRetransmitNow();

    /// <summary>Applies the SACK blocks of an ACK; returns the bytes newly SACKed and whether the first block was a D-SACK.</summary>
    int OnSackBlocks(in TcpOptions options, SeqNumber ack, out bool dsack);

    /// <summary>A record was delivered: cumulatively acknowledged or SACKed.</summary>
    void OnRecordDelivered(in SentSegment record);

    /// <summary>After the ACK field of a segment is processed: count duplicates, find losses, enter, drive and leave recovery.</summary>
    void OnAck(bool advanced, int ackedBytes, bool duplicateCandidate, int newlySacked, bool dsack, in TcpSegment segment);

    /// <summary>New data (or a FIN) of <paramref name="length"/> sequence numbers was sent.</summary>
    void OnDataSent(int length);

    /// <summary>A record was sent again; <paramref name="oldestOutstanding"/> if it is the one at SND.UNA.</summary>
    void OnRetransmitted(bool oldestOutstanding);

    /// <summary>The retransmission timer fired with data outstanding (RFC 6298 5.4): the Loss state.</summary>
    void OnRetransmissionTimeout();

    /// <summary>The loss-probe deadline fired (RACK's reordering timer or the tail loss probe).</summary>
    void OnLossProbeTimeout();

    /// <summary>The path MTU fell and records that no longer fit were marked lost: resend them without a congestion response.</summary>
    void OnSegmentsResized();

    /// <summary>Resending the head restarts the retransmission timer, unless this says the timer is held (RFC 6582 4).</summary>
    bool HoldsTimerOnHeadRetransmission { get; }

    /// <summary>An ACK of new data restarts the timer, unless this says it is held (RFC 6582 4, Impatient).</summary>
    bool HoldsTimerOnAck(SeqNumber ack);
}

internal sealed partial class TcpConnection
{
    /// <summary>Loss recovery: NewReno, or SACK with RACK-TLP once the handshake agreed on SACK.</summary>
    private ILossRecovery _loss;

    private static ILossRecovery CreateLossRecovery(TcpConnection connection, bool sack) =>
        sack ? new SackRecovery(connection) : new NewRenoRecovery(connection);

    /// <summary>
    /// The frame both recoveries share:
    /// <list type="bullet">
    /// <item>the retransmission that starts an episode (and NewReno's on a partial ACK) goes out
    /// whatever cwnd and pipe say; ssthresh comes from FlightSize without limited-transmit data;</item>
    /// <item>after a timeout, every unSACKed segment is lost (as in Linux), F-RTO (RFC 5682) tells a
    /// spurious timeout by new data being acknowledged, and timestamps (Eifel, RFC 3522) and D-SACK
    /// (RFC 3708, also after the episode has ended) tell a spurious fast retransmit; both are undone
    /// (RFC 4015): cwnd and ssthresh come back, and segments no longer deemed lost go back in the
    /// pipe.</item>
    /// </list>
    /// The implementations add how losses are found and how the window behaves in recovery.
    /// </summary>
    private abstract class LossRecovery : ILossRecovery
    {
        protected readonly TcpConnection _c;

        protected LossRecovery(TcpConnection connection) => _c = connection;

        public RecoveryState State { get; protected set; } = RecoveryState.Open;

        /// <summary>RFC 6582 "recover" / RFC 6675 RecoveryPoint: SND.NXT when recovery began.</summary>
        protected SeqNumber _recoveryPoint;
        /// <summary>Duplicate ACKs in a row (RFC 5681 definition; with SACK, ACKs bringing new SACK information).</summary>
        protected int _dupAcks;
        /// <summary>New data sent on duplicate ACKs since SND.UNA last advanced (RFC 5681 3.2 step 2 leaves it out of FlightSize).</summary>
        private int _limitedTransmitBytes;
        /// <summary>
        /// The next retransmission of a lost segment goes out whatever cwnd and pipe say: the fast
        /// retransmit on entering recovery (RFC 5681 3.2 step 3, RFC 6675 5 (4.3)) and NewReno's
        /// retransmission on a partial ACK (RFC 6582 3.2 step 5).
        /// </summary>
        protected bool _retransmitNow;

        // ---- undo (RFC 3522 Eifel, RFC 3708 D-SACK, RFC 4015 response) ----
        /// <summary>Retransmissions in this recovery episode not yet shown spurious by D-SACK.</summary>
        protected int _undoRetransmissions;
        /// <summary>The episode may still be undone (no retransmission shown necessary).</summary>
        protected bool _undoPossible;
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

        public abstract int CongestionLimit { get; }

        public int FlightSizeForLossResponse => Math.Max(0, (_c._snd.Nxt - _c._snd.Una) - _limitedTransmitBytes);

        public bool HoldLostRetransmissions => State == RecoveryState.Loss && _frtoStage > 0
            && (_frtoStage == 2 || _c._sent.Count == 0 || !_c._sent.First.Has(SentFlags.Lost));

        public virtual bool HoldsTimerOnHeadRetransmission => false;

        public virtual bool HoldsTimerOnAck(SeqNumber ack) => false;

        public bool TakeRetransmitNow()
        {
            bool now = _retransmitNow;
            _retransmitNow = false;
            return now;
        }

        public virtual int OnSackBlocks(in TcpOptions options, SeqNumber ack, out bool dsack)
        {
            dsack = false;
            return 0;
        }

        public virtual void OnRecordDelivered(in SentSegment record) { }

        public virtual void OnLossProbeTimeout() => _c._timers.LossProbe = Instant.Never;

        /// <summary>Whether an ACK that did not advance SND.UNA counts as a duplicate.</summary>
        protected abstract bool IsDuplicate(bool duplicateCandidate, int newlySacked);

        /// <summary>The recovery's own step for an ACK: find losses, enter recovery, drive the window in it.</summary>
        protected abstract void Drive(bool advanced, int ackedBytes, bool duplicate);

        /// <summary>After the episode's bookkeeping for an ACK (SACK: the probe's end, the loss timers).</summary>
        protected virtual void AfterAck(bool advanced, in TcpSegment segment) { }

        /// <summary>Fast recovery began (NewReno: its inflated window).</summary>
        protected virtual void OnFastRecoveryEntered() { }

        /// <summary>An episode ended without being undone.</summary>
        protected virtual void OnEpisodeEnded() { }

        /// <summary>A timeout, before every record is marked lost (SACK: reneging, the probe ends).</summary>
        protected virtual void OnTimeout() { }

        /// <summary>F-RTO found real loss on a duplicate ACK after it had sent new data.</summary>
        protected virtual void OnFrtoDuplicateAfterNewData() { }

        /// <summary>D-SACKs may still come after the episode has ended and undo it then (SACK only).</summary>
        protected virtual bool AwaitsLateDsack => false;

        /// <summary>RACK saw a segment delivered out of order (RFC 8985 6.2 step 2; SACK only).</summary>
        public virtual bool ReorderingSeen => false;

        public void OnAck(bool advanced, int ackedBytes, bool duplicateCandidate, int newlySacked, bool dsack, in TcpSegment segment)
        {
            if (!_c._ccInitialized) return;
            bool duplicate = !advanced && IsDuplicate(duplicateCandidate, newlySacked);
            if (advanced) { _dupAcks = 0; _limitedTransmitBytes = 0; }
            else if (duplicate) _dupAcks++;

            // Spurious-retransmission detection first, so that an undone episode sends no more repairs.
            if (advanced) DetectSpuriousRetransmission(segment);
            // A D-SACK reports a duplicate, which is no sign of loss (Linux fails F-RTO on newly SACKed
            // data or a duplicate ACK only).
            if (State == RecoveryState.Loss && _frtoStage > 0) FrtoOnAck(advanced, newlySacked > 0);
            // RFC 3708 3 (Linux tcp_try_undo_dsack): the last D-SACK of an episode that has already
            // ended, with every retransmission of it reported as a duplicate: undo it now.
            if (dsack && State == RecoveryState.Open && _undoPossible && _undoRetransmissions == 0) Undo();

            Drive(advanced, ackedBytes, duplicate);

            if (State != RecoveryState.Open && advanced && _c._snd.Una >= _recoveryPoint) ExitRecovery();
            AfterAck(advanced, segment);
        }

        public void OnDataSent(int length)
        {
            if (State == RecoveryState.Open && _dupAcks > 0) _limitedTransmitBytes += length;
            AfterDataSent();
        }

        /// <summary>New data went out (SACK: the tail loss probe is armed).</summary>
        protected virtual void AfterDataSent() { }

        /// <summary>RFC 6675 5 / RFC 6582 3.2 step 2: start fast recovery.</summary>
        protected void EnterFastRecovery()
        {
            var c = _c;
            State = RecoveryState.FastRecovery;
            _recoveryPoint = c._snd.Nxt;
            c.FastRetransmits++;
            c._env.Statistics.FastRetransmits++;
            c._cc.OnCongestionEvent(FlightSizeForLossResponse, c._smss, c._now);
            BeginUndoEpisode();
            _limitedTransmitBytes = 0;
            c.MarkFirstUnackedLost();
            // RFC 5681 3.2 step 3 / RFC 6675 5 (4.3): the first lost segment goes out now, even
            // though pipe is above the reduced cwnd (it usually is: half the window is still in flight).
            _retransmitNow = true;
            OnFastRecoveryEntered();
        }

        private void ExitRecovery()
        {
            var c = _c;
            // RFC 3708: every retransmission of the episode was D-SACKed: nothing was lost. For a
            // timeout (undoable only with F-RTO on) this is Linux's tcp_try_undo_loss: a stall that
            // delivers everything at once ends the episode with one ACK that covers "recover", which
            // tells F-RTO nothing, while its D-SACK shows the resent segment was a duplicate.
            if (_undoPossible && _undoRetransmissions == 0 && !_undoTsPending && c._settings.UndoSpuriousRetransmissions)
            {
                Undo();
                return;
            }
            if (State == RecoveryState.FastRecovery) c._cc.OnRecoveryEnd(c._smss, c._now);
            // RFC 3708 3: the D-SACK for the last retransmission usually comes after the ACK that
            // ends recovery (the late original fills the hole first): keep counting them.
            bool awaitDsack = _undoPossible && AwaitsLateDsack;
            State = RecoveryState.Open;
            _frtoStage = 0;
            _retransmitNow = false;
            _undoPossible = awaitDsack;
            _dupAcks = 0;
            OnEpisodeEnded();
            // Segments sent after the recovery point and already found lost (RACK marks by time) are
            // a new loss in a new window: they start a new episode at once rather than waiting for
            // the timeout, which is all the Open state would do for them.
            if (c._lostCount > 0) EnterFastRecovery();
        }

        private void BeginUndoEpisode()
        {
            _undoPossible = _c._settings.UndoSpuriousRetransmissions;
            _undoRetransmissions = 0;
            _undoTsValid = false;
            _undoTsPending = true;
            _undoMarker = _c._snd.Una;
        }

        /// <summary>
        /// RFC 3708 3: a D-SACK for <paramref name="block"/> shows one of the episode's
        /// retransmissions was a duplicate (Linux tcp_check_dsack: only D-SACKs above the episode's
        /// undo marker; here also not above its recovery point, so that a duplicate of later data
        /// cannot complete the count).
        /// </summary>
        protected void CountDuplicateRetransmission(SackBlock block)
        {
            if (_undoPossible && _undoRetransmissions > 0 && block.Right > _undoMarker && block.Right <= _recoveryPoint) _undoRetransmissions--;
        }

        /// <summary>
        /// Called for every retransmission. RFC 3522 3.2 (2): "When retransmitting the oldest
        /// outstanding segment, store the timestamp value of the retransmit in RetransmitTS": the
        /// episode's first retransmission fixes it if it is of SND.UNA's segment; an echo older than
        /// it then shows the original arrived. If the first one is of a later segment, an ACK for
        /// older data would echo an older TSval without telling anything: no Eifel in that episode.
        /// </summary>
        public void OnRetransmitted(bool oldestOutstanding)
        {
            if (State == RecoveryState.Open) return;
            _undoRetransmissions++;
            if (!_undoTsPending) return;
            _undoTsPending = false;
            if (oldestOutstanding) { _undoTsVal = _c.TsNow; _undoTsValid = true; }
        }

        /// <summary>
        /// RFC 3522 (Eifel detection): if the ACK that first acknowledges retransmitted data echoes a
        /// TSval older than the retransmission, the original got through and the retransmission was
        /// spurious; RFC 4015 response: undo.
        /// </summary>
        private void DetectSpuriousRetransmission(in TcpSegment seg)
        {
            if (!_undoPossible || !_undoTsValid || !_c._tsOk || !seg.Options.HasTimestamps || State == RecoveryState.Open) return;
            uint echo = seg.Options.TimestampEcho;
            if (echo != 0 && unchecked((int)(echo - _undoTsVal)) < 0)
            {
                Undo();
            }
            else
            {
                _undoTsValid = false; // the first ACK after the retransmission did not show it spurious
                _undoPossible = _undoRetransmissions > 0 && _c._settings.UndoSpuriousRetransmissions; // D-SACK may still
            }
        }

        /// <summary>RFC 4015 / RFC 5682: restore cwnd and ssthresh, forget the loss marks, leave recovery.</summary>
        private void Undo()
        {
            var c = _c;
            c._cc.Undo();
            for (int i = 0; i < c._sent.Count; i++)
            {
                ref var rec = ref c._sent[i];
                if (!rec.Has(SentFlags.Lost)) continue;
                rec.Flags = (rec.Flags & ~SentFlags.Lost) | SentFlags.InPipe;
                c._lostCount--;
                c._pipe += rec.Length;
            }
            State = RecoveryState.Open;
            _frtoStage = 0;
            _retransmitNow = false;
            _undoPossible = false;
            _dupAcks = 0;
            c.SpuriousRetransmissionsUndone++;
            c._env.Statistics.SpuriousRetransmissionsUndone++;
        }

        /// <summary>A congestion response that a later D-SACK must not undo (the tail loss probe's).</summary>
        protected void ForbidUndo() => _undoPossible = false;

        /// <summary>
        /// RFC 5682 2 (F-RTO) on the ACKs after a timeout: if the first ACK advances SND.UNA, new data
        /// goes out instead of retransmissions; if the second ACK also acknowledges new data, the
        /// timeout was spurious. A duplicate ACK at either step means real loss: go on as usual.
        /// </summary>
        private void FrtoOnAck(bool advanced, bool sackInfo)
        {
            var c = _c;
            if (!advanced || sackInfo)
            {
                // Real loss: conventional recovery retransmits the lost segments (2a, 3a).
                bool newDataOut = _frtoStage == 2;
                _frtoStage = 0;
                if (newDataOut && !advanced) OnFrtoDuplicateAfterNewData();
                return;
            }
            if (_frtoStage == 1)
            {
                if (c._snd.Una >= _recoveryPoint) { _frtoStage = 0; return; } // everything acknowledged: nothing to tell
                // RFC 5682 2b: "If the TCP sender is not able to transmit any previously unsent data
                // ... refrain from entering step 3 ... continue with slow-start retransmissions".
                long peerRoom = c._snd.Wnd - (c._snd.Nxt - c._snd.Una);
                if (c.DataEnd - c._snd.Nxt <= 0 || peerRoom <= 0) { _frtoStage = 0; return; }
                _frtoStage = 2; // send new data; judge at the next ACK
                return;
            }
            // Stage 2: an ACK for data never retransmitted after the timeout: spurious.
            Undo();
        }

        public void OnRetransmissionTimeout()
        {
            var c = _c;
            bool wasOpen = State == RecoveryState.Open;
            if (c._ccInitialized) c._cc.OnRetransmissionTimeout(c._pipe, c._smss, c._now, alreadyReduced: !wasOpen);
            OnTimeout();
            // F-RTO only for the first timeout of an episode whose first segment was not resent before.
            bool frto = c._settings.Frto && wasOpen && c._sent.Count > 0 && !c._sent.First.Has(SentFlags.Retransmitted) && c._ccInitialized;
            for (int i = 0; i < c._sent.Count; i++)
            {
                ref var rec = ref c._sent[i];
                if (rec.Has(SentFlags.Sacked) || rec.Has(SentFlags.Probe)) continue;
                c.MarkLost(ref rec);
            }
            State = RecoveryState.Loss;
            _recoveryPoint = c._snd.Nxt;
            _dupAcks = 0;
            _limitedTransmitBytes = 0;
            _retransmitNow = false;
            _frtoStage = frto ? 1 : 0;
            BeginUndoEpisode();
            _undoPossible = frto; // only F-RTO may undo a timeout
        }

        public void OnSegmentsResized()
        {
            if (State != RecoveryState.Open) return;
            State = RecoveryState.Loss;
            _recoveryPoint = _c._snd.Nxt;
            _dupAcks = 0;
            _frtoStage = 0;
            BeginUndoEpisode();
            _undoPossible = false;
        }
    }
}
