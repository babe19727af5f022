using TunTcp.Wire;

namespace TunTcp.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>
    /// Recovery without SACK, NewReno (RFC 5681 3.2, RFC 6582): three duplicate ACKs start fast
    /// retransmit (not before an ACK has passed the last episode's "recover"); cwnd is inflated per
    /// duplicate ACK and deflated on partial ACKs, each of which retransmits the next hole, with
    /// the Impatient timer of RFC 6582 4; limited transmit (RFC 3042) sends new data on the first
    /// two duplicate ACKs.
    /// </summary>
    private sealed class NewRenoRecovery(TcpConnection connection) : LossRecovery(connection)
    {
        /// <summary>
        /// RFC 6582 3.2 step 1: since the last recovery no ACK has gone beyond "recover", so
        /// duplicate ACKs may come from our own needless retransmissions (a timeout's go-back-N
        /// resends data the receiver holds) and must not start another fast retransmit. As Linux
        /// (tcp_try_undo_recovery: "Hold old state until something *above* high_seq is ACKed. For
        /// Reno it is MUST to prevent false fast retransmits"), an ACK of exactly SND.NXT at the
        /// start of recovery does not yet count: the duplicates' ACKs carry just that.
        /// </summary>
        private bool _recoverNotPassed;
        /// <summary>NewReno's inflated window during fast recovery (RFC 6582 3.2).</summary>
        private int _window;
        /// <summary>RFC 3042: segments that may be sent past cwnd on the first two duplicate ACKs.</summary>
        private int _limitedTransmit;
        private bool _partialAckSeen;

        public override int CongestionLimit =>
            (State == RecoveryState.FastRecovery ? _window : _c._cc.CongestionWindow) + _limitedTransmit * _c._smss;

        /// <summary>
        /// Linux (tcp_xmit_retransmit_queue) restarts the timer when the head is resent; NewReno in
        /// fast recovery keeps the Impatient timer of RFC 6582 4 instead.
        /// </summary>
        public override bool HoldsTimerOnHeadRetransmission => State == RecoveryState.FastRecovery;

        /// <summary>
        /// RFC 6582 4 (the Impatient variant): in fast recovery only the first partial ACK restarts
        /// the timer, so that when many segments of a window were lost a timeout takes over instead
        /// of repairing one hole per round trip.
        /// </summary>
        public override bool HoldsTimerOnAck(SeqNumber ack) =>
            State == RecoveryState.FastRecovery && _partialAckSeen && ack < _recoveryPoint;

        protected override bool IsDuplicate(bool duplicateCandidate, int newlySacked) => duplicateCandidate;

        protected override void Drive(bool advanced, int ackedBytes, bool duplicate)
        {
            var c = _c;
            if (advanced) _limitedTransmit = 0;
            if (_recoverNotPassed && c._snd.Una > _recoveryPoint) _recoverNotPassed = false;
            int threshold = c._settings.DuplicateAckThreshold;
            switch (State)
            {
                case RecoveryState.Open:
                    // RFC 6582 3.2 step 1: on the third duplicate ACK, "check to see if the Cumulative
                    // Acknowledgment field covers more than recover ... If not, the TCP does not enter
                    // fast retransmit and does not reset ssthresh."
                    if (_dupAcks >= threshold && !_recoverNotPassed) EnterFastRecovery();
                    // RFC 3042: one new segment for each of the first two duplicate ACKs.
                    else if (duplicate && _dupAcks < threshold && c._sent.Count > 0) _limitedTransmit = _dupAcks;
                    break;
                case RecoveryState.FastRecovery:
                    if (duplicate) _window += c._smss; // RFC 6582 3.2 step 4: inflate
                    else if (advanced && c._snd.Una < _recoveryPoint)
                    {
                        // RFC 6582 3.2 step 5: partial ACK - retransmit the next hole, deflate by the
                        // new data acknowledged, add back one SMSS; reset the timer on the first one.
                        _window = Math.Max(c._smss, _window - ackedBytes + (ackedBytes >= c._smss ? c._smss : 0));
                        c.MarkFirstUnackedLost();
                        _retransmitNow = true;
                        if (!_partialAckSeen) { _partialAckSeen = true; c._timers.Rto = c._now + c._rtt.Rto; }
                    }
                    break;
            }
        }

        protected override void OnFastRecoveryEntered()
        {
            _partialAckSeen = false;
            _limitedTransmit = 0;
            // RFC 6582 3.2 step 3: cwnd = ssthresh + 3*SMSS (the segments that left the network).
            _window = _c._cc.CongestionWindow + _c._settings.DuplicateAckThreshold * _c._smss;
        }

        protected override void OnEpisodeEnded() => _recoverNotPassed = _c._snd.Una <= _recoveryPoint;

        protected override void OnTimeout() => _limitedTransmit = 0;

        /// <summary>
        /// RFC 5682 3a: "set the congestion window to no more than 3 * MSS, and continue with the
        /// slow-start algorithm retransmitting unacknowledged segments": cwnd is 2 SMSS here, filled
        /// by the two new segments. The duplicate ACK shows one of them has left the network (with
        /// SACK it has left the pipe already), so one retransmission goes.
        /// </summary>
        protected override void OnFrtoDuplicateAfterNewData() => _retransmitNow = true;
    }
}
