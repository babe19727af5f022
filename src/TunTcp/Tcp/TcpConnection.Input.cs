using TunTcp.Wire;

namespace TunTcp.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>RFC 7323 5.5: TS.Recent older than 24 days is no longer used for PAWS.</summary>
    private static readonly TimeSpan PawsIdleLimit = TimeSpan.FromDays(24);

    /// <summary>
    /// RFC 9293 3.10.7.4: a segment arrives in SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1,
    /// FIN-WAIT-2, CLOSE-WAIT, CLOSING, LAST-ACK or TIME-WAIT.
    /// </summary>
    private TcpSegmentResult ProcessSynchronized(in TcpSegment seg)
    {
        // As Linux (tcp_check_req): a retransmitted SYN in SYN-RECEIVED gets the same SYN-ACK again.
        if (State == TcpConnectionState.SynReceived && seg.Syn && !seg.Ack && !seg.Rst && seg.Sequence == _rcv.Irs)
        {
            _synAckDue = true;
            return TcpSegmentResult.Processed;
        }

        // RFC 9293 3.10.7.4 (fourth, TIME-WAIT) and RFC 6191 2: a SYN in TIME-WAIT may start a new
        // incarnation if its TSval is newer than TS.Recent, or, with an equal TSval or without
        // timestamps, its sequence number is beyond RCV.NXT; never if PAWS would reject it.
        // (This is Linux's tcp_timewait_state_process rule.) The old incarnation ends and the
        // listener takes the SYN.
        if (State == TcpConnectionState.TimeWait && seg.Syn && !seg.Ack && !seg.Rst)
        {
            bool hasTs = _tsOk && seg.Options.HasTimestamps;
            int tsAge = hasTs ? unchecked((int)(seg.Options.TimestampValue - _tsRecent)) : 0;
            bool newer = tsAge >= 0 && (tsAge > 0 || seg.Sequence > _rcv.Nxt);
            if (newer)
            {
                _env.Statistics.TimeWaitReopens++;
                Terminate(TcpError.None);
                return TcpSegmentResult.ReopenFromTimeWait;
            }
        }

        // RFC 7323 5.3 PAWS, done before the sequence check (R1-R3).
        if (_tsOk && !seg.Rst && seg.Options.HasTimestamps
            && unchecked((int)(seg.Options.TimestampValue - _tsRecent)) < 0
            && _now - _tsRecentAt < PawsIdleLimit
            && !IsDisorderedAck(seg))
        {
            // R2: an old duplicate; send an acknowledgement and drop it.
            _env.Statistics.PawsDrops++;
            if (OutOfWindowAckAllowed(seg)) _ackNow = true;
            return TcpSegmentResult.Processed;
        }

        // First: check the sequence number (the four acceptability cases).
        int rcvWnd = Math.Max(0, _rcv.AdvertisedEdge - _rcv.Nxt);
        bool acceptable = IsAcceptable(seg, rcvWnd);
        // RFC 9293: with a zero window "special allowance should be made to accept valid ACKs,
        // URGs, and RSTs": a segment at exactly RCV.NXT still has its control fields processed,
        // its data dropped.
        bool controlOnly = !acceptable && rcvWnd == 0 && seg.Sequence == _rcv.Nxt;
        if (!acceptable && !controlOnly)
        {
            if (seg.Rst) return TcpSegmentResult.Processed;
            _env.Statistics.UnacceptableSegments++;
            // RFC 5961 4.2: "If the SYN bit is set, irrespective of the sequence number, TCP MUST
            // send an ACK (also referred to as challenge ACK)" - under the section 7 rate limit.
            if (seg.Syn)
            {
                SendChallengeAck();
                return TcpSegmentResult.Processed;
            }
            // RFC 2883 4.1.1: an entirely duplicate data segment is reported in a D-SACK block.
            if (_sackOk && seg.Payload.Length > 0 && seg.End <= _rcv.Nxt)
                SetDsack(seg.Sequence, seg.Sequence + seg.Payload.Length);
            // RFC 9293 (TIME-WAIT, eighth step): a retransmitted FIN restarts the 2 MSL timeout.
            if (State == TcpConnectionState.TimeWait && seg.Fin) _timers.TimeWait = _now + 2 * _settings.Msl;
            // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, then drop.
            if (OutOfWindowAckAllowed(seg)) _ackNow = true;
            return TcpSegmentResult.Processed;
        }

        // RFC 7323 4.3: update TS.Recent from a segment that covers Last.ACK.sent; 5.5: a TS.Recent
        // idle for 24 days is invalid, and then any TSval replaces it (Linux tcp_replace_ts_recent).
        if (_tsOk && seg.Options.HasTimestamps && seg.Sequence <= _lastAckSent
            && (unchecked((int)(seg.Options.TimestampValue - _tsRecent)) >= 0 || _now - _tsRecentAt >= PawsIdleLimit))
        {
            _tsRecent = seg.Options.TimestampValue;
            _tsRecentAt = _now;
        }

        // Second: check the RST bit (RFC 5961 3.2).
        if (seg.Rst)
        {
            ProcessReset(seg);
            return TcpSegmentResult.Processed;
        }

        // Fourth: check the SYN bit (RFC 5961 4.2 / RFC 9293).
        if (seg.Syn)
        {
            if (State == TcpConnectionState.SynReceived && Listener is not null)
            {
                // RFC 9293: "If the connection was initiated with a passive OPEN, then return this
                // connection to the LISTEN state and return" - the half-open connection goes away.
                Terminate(TcpError.None);
                return TcpSegmentResult.Processed;
            }
            // Any SYN in a synchronized state: challenge ACK, drop.
            SendChallengeAck();
            return TcpSegmentResult.Processed;
        }

        // Fifth: check the ACK field. Without ACK, drop.
        if (!seg.Ack) return TcpSegmentResult.Processed;
        if (State == TcpConnectionState.SynReceived)
        {
            if (!(_snd.Una < seg.Acknowledgment && seg.Acknowledgment <= _snd.Nxt))
            {
                // <SEQ=SEG.ACK><CTL=RST>
                SendReset(seg.Acknowledgment);
                return TcpSegmentResult.Processed;
            }
            // Linux: with a full accept queue the completing ACK is dropped; the SYN-ACK is retransmitted.
            if (Listener is not null && !Listener.CanComplete(this))
            {
                _env.Statistics.AcceptQueueDrops++;
                return TcpSegmentResult.Processed;
            }
            EnterEstablished();
            // SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ, SND.WL2 <- SEG.ACK (scaled from now on).
            _snd.Wnd = (long)seg.Window << _snd.Shift;
            _snd.MaxWnd = Math.Max(_snd.MaxWnd, _snd.Wnd);
            _snd.Wl1 = seg.Sequence;
            _snd.Wl2 = seg.Acknowledgment;
        }
        OnEcnReceived(seg);
        if (!ProcessAck(seg)) return TcpSegmentResult.Processed;
        OnEcnEcho(seg);
        if (State == TcpConnectionState.Closed) return TcpSegmentResult.Processed;

        // Sixth: the URG bit is ignored; urgent data is delivered in line (RFC 6093).
        // Seventh and eighth: segment text and FIN.
        if (controlOnly)
        {
            if (seg.Payload.Length > 0 || seg.Fin) _ackNow = true; // zero window: data dropped, re-ACK
            return TcpSegmentResult.Processed;
        }
        ProcessTextInWindow(seg);
        return TcpSegmentResult.Processed;
    }

    /// <summary>RFC 9293 3.10.7.4, first check: the four cases of segment acceptability.</summary>
    private bool IsAcceptable(in TcpSegment seg, int rcvWnd)
    {
        int len = seg.Length;
        var windowEnd = _rcv.Nxt + rcvWnd;
        if (len == 0)
        {
            if (rcvWnd == 0) return seg.Sequence == _rcv.Nxt;
            return _rcv.Nxt <= seg.Sequence && seg.Sequence < windowEnd;
        }
        if (rcvWnd == 0) return false;
        var last = seg.Sequence + (len - 1);
        return (_rcv.Nxt <= seg.Sequence && seg.Sequence < windowEnd)
            || (_rcv.Nxt <= last && last < windowEnd);
    }

    /// <summary>RFC 9293 3.10.7.4 second check, with RFC 5961 3.2.</summary>
    private void ProcessReset(in TcpSegment seg)
    {
        if (seg.Sequence != _rcv.Nxt)
        {
            // RFC 5961 3.2: in the window but not exactly RCV.NXT: challenge ACK, drop.
            SendChallengeAck();
            return;
        }
        _env.Statistics.ResetsReceived++;
        switch (State)
        {
            case TcpConnectionState.SynReceived:
                // Passive open: return to LISTEN (the half-open connection vanishes quietly).
                // Active open (simultaneous): "connection refused".
                Terminate(Listener is not null ? TcpError.None : TcpError.ConnectionRefused);
                break;
            case TcpConnectionState.Established:
            case TcpConnectionState.FinWait1:
            case TcpConnectionState.FinWait2:
            case TcpConnectionState.CloseWait:
                Terminate(TcpError.ConnectionReset);
                break;
            default:
                // CLOSING, LAST-ACK, TIME-WAIT: enter CLOSED, delete the TCB.
                Terminate(TcpError.None);
                break;
        }
    }

    /// <summary>RFC 5961 (3.2, 4.2, 5.2) challenge ACK, under the stack-wide rate limit of section 7.</summary>
    private void SendChallengeAck()
    {
        if (_env.TryTakeChallengeAck(_now)) _ackNow = true;
    }

    /// <summary>
    /// The text of an acceptable segment: trimmed to the window, duplicates reported as D-SACK,
    /// then delivered (seventh step) and its FIN processed (eighth step).
    /// </summary>
    private void ProcessTextInWindow(in TcpSegment seg)
    {
        var start = seg.Sequence;
        var payload = seg.Payload;
        bool fin = seg.Fin;

        // Trim the left edge: bytes below RCV.NXT are duplicates (RFC 2883 4.1.1: D-SACK them).
        int dup = _rcv.Nxt - start;
        if (dup > 0)
        {
            int dupData = Math.Min(dup, payload.Length);
            if (_sackOk && dupData > 0) SetDsack(start, start + dupData);
            var finSeq = start + payload.Length;
            payload = payload[dupData..];
            if (fin && finSeq < _rcv.Nxt) fin = false; // that FIN was processed already
            start = _rcv.Nxt;
        }
        // Trim the right edge to the advertised window; a FIN beyond it is not accepted.
        int room = _rcv.AdvertisedEdge - start;
        if (payload.Length > room)
        {
            payload = payload[..Math.Max(0, room)];
            fin = false;
        }
        if (payload.Length == 0 && !fin)
        {
            // A pure ACK (or a fully duplicate segment): nothing to deliver.
            if (dup > 0) _ackNow = true;
            return;
        }
        ProcessText(start, payload, fin);
    }

    /// <summary>
    /// Linux's exception to PAWS (tcp_disordered_ack): a duplicate pure ACK - at RCV.NXT,
    /// acknowledging SND.UNA, leaving the window as it is - whose TSval trails TS.Recent by at
    /// most the RTO was made late by reordering, not by an earlier incarnation or a wrapped
    /// sequence space, which is what PAWS guards against. Dropping it would lose its SACK blocks.
    /// </summary>
    private bool IsDisorderedAck(in TcpSegment seg)
    {
        if (!seg.Ack || seg.Syn || seg.Fin || seg.Payload.Length > 0) return false;
        if (seg.Sequence != _rcv.Nxt || seg.Acknowledgment != _snd.Una) return false;
        if (((long)seg.Window << _snd.Shift) != _snd.Wnd) return false;
        uint behind = unchecked(_tsRecent - seg.Options.TimestampValue);
        return behind <= _rtt.Rto.TotalMilliseconds;
    }

    private Instant _lastOutOfWindowAck = Instant.Never;

    /// <summary>
    /// Linux tcp_oow_rate_limited: an unacceptable segment with data or a FIN is always answered
    /// (its sender needs the duplicate ACK or D-SACK); one without is answered at most once per
    /// <see cref="TcpSettings.OutOfWindowAckInterval"/>, so that two ends that disagree about
    /// the sequence space cannot ping-pong ACKs.
    /// </summary>
    private bool OutOfWindowAckAllowed(in TcpSegment seg)
    {
        if (seg.Payload.Length > 0 || seg.Fin) return true;
        var interval = _settings.OutOfWindowAckInterval;
        if (interval <= TimeSpan.Zero) return true;
        if (!_lastOutOfWindowAck.IsNever && _now - _lastOutOfWindowAck < interval)
        {
            _env.Statistics.OutOfWindowAcksSuppressed++;
            return false;
        }
        _lastOutOfWindowAck = _now;
        return true;
    }
}
