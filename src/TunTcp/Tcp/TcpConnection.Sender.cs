using TunTcp.Wire;

namespace TunTcp.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>RFC 6675 "pipe": bytes (and SYN/FIN) believed to be in the network.</summary>
    private int _pipe;
    /// <summary>Records marked lost and not yet retransmitted.</summary>
    private int _lostCount;
    /// <summary>Records marked SACKed (RFC 8985 RACK.segs_sacked).</summary>
    private int _sackedCount;
    /// <summary>End of the current round trip (RFC 9406 windowEnd), for the congestion controller.</summary>
    private SeqNumber _roundEnd;
    private Instant _lastSendAt;
    private bool _ccInitialized;
    /// <summary>Send what the window allows at the next transmit even if SWS avoidance would wait (override timer fired).</summary>
    private bool _forceSend;
    /// <summary>When SND.UNA last advanced (or data was first sent into an empty pipe): user-timeout base.</summary>
    private Instant _progressAt;

    private bool FinAcknowledged => _finSent && _snd.Una == _finSeq + 1;

    private SeqNumber DataEnd => _snd.BufferStart + SendBuffer.Count;

    /// <summary>Nothing is in flight and only our FIN is left to send (it waits for the peer's window).</summary>
    private bool OnlyFinWaits => _sent.Count == 0 && _finQueued && !_finSent;

    private bool CanSendData => State is TcpConnectionState.Established or TcpConnectionState.CloseWait
        or TcpConnectionState.FinWait1 or TcpConnectionState.LastAck or TcpConnectionState.Closing;

    /// <summary>Sends everything that is due now: handshake segments, data, FIN, ACKs.</summary>
    private void Transmit()
    {
        switch (State)
        {
            case TcpConnectionState.Closed:
            case TcpConnectionState.Listen:
                return;
            case TcpConnectionState.SynSent:
                if (_sent.Count == 0) SendSyn(synAck: false);
                return;
            case TcpConnectionState.SynReceived:
                if (_synAckDue) SendSyn(synAck: true);
                else if (_ackNow) SendAck();
                return;
        }
        if (CanSendData) SendQueued();
        if (_ackNow || _timers.DelayedAck <= _now) SendAck();
    }

    /// <summary>Retransmits lost segments, then new data and the FIN, as far as the windows allow.</summary>
    private void SendQueued()
    {
        for (int guard = 0; guard < 1 << 20; guard++)
        {
            int cwndRoom = _loss.CongestionLimit - _pipe;
            if (_lostCount > 0 && _loss.State != RecoveryState.Open && !_loss.HoldLostRetransmissions)
            {
                // RFC 6675 NextSeg (1) and RFC 5681 after an RTO: lost segments first, within cwnd
                // (but the fast retransmit itself goes out regardless, see TakeRetransmitNow).
                bool forced = _loss.TakeRetransmitNow();
                if (cwndRoom < Math.Min(_smss, FirstLostLength()) && !forced) return;
                RetransmitFirstLost();
                continue;
            }

            int unsent = Math.Max(0, DataEnd - _snd.Nxt);
            bool finPending = _finQueued && !_finSent;
            if (unsent == 0)
            {
                if (!finPending) return;
                // Only the FIN remains. It occupies sequence space, which a zero window does not
                // offer (the receiver would drop it): it waits for the window like data (Linux
                // tcp_snd_wnd_test), and with nothing in flight the persist timer probes.
                if (_snd.Wnd - (_snd.Nxt - _snd.Una) <= 0)
                {
                    if (_sent.Count == 0) ArmPersist();
                    return;
                }
                SendNewSegment(0, fin: true);
                continue;
            }

            long peerRoom = _snd.Wnd - (_snd.Nxt - _snd.Una);
            int len = (int)Math.Min(Math.Min(unsent, MaxSendChunk), Math.Max(0, Math.Min(peerRoom, cwndRoom)));
            if (len <= 0)
            {
                // Window-limited. With nothing in flight no ACK will come to reopen it: persist.
                if (peerRoom <= 0 && _sent.Count == 0) ArmPersist();
                return;
            }
            if (len < _smss && !_forceSend)
            {
                bool all = len == unsent;
                if (!all)
                {
                    // RFC 9293 3.8.6.2.1 sender SWS avoidance: send less than a full segment only
                    // if it is all we have, or at least half the largest window the peer offered;
                    // otherwise wait, with the override (persist) timer armed if nothing is in flight.
                    if (len < _snd.MaxWnd / 2)
                    {
                        if (_sent.Count == 0) ArmPersist();
                        return;
                    }
                }
                else if (!NoDelay && _snd.Sml > _snd.Una && _snd.Sml <= _snd.Nxt && !finPending)
                {
                    // RFC 896 / RFC 1122 4.2.3.4 Nagle, with Minshall's refinement as Linux has it
                    // (tcp_nagle_check): no new small segment while an earlier small segment is
                    // unacknowledged. Full-sized segments in flight do not hold back the short
                    // tail of a write, which would otherwise wait for a delayed ACK.
                    return;
                }
            }
            _forceSend = false;
            SendNewSegment(len, fin: finPending && len == unsent);
        }
    }

    /// <summary>Sends <paramref name="length"/> new bytes at SND.NXT (and the FIN if asked) as one segment.</summary>
    private void SendNewSegment(int length, bool fin, bool probe = false)
    {
        // RFC 5681 4.1: after an idle period longer than the RTO, restart from the restart window.
        if (_ccInitialized && _sent.Count == 0 && _now - _lastSendAt > _rtt.Rto)
            _cc.OnIdleRestart(_smss, _settings.InitialWindowSegments, _now);
        var options = DataOptions();
        int segment = SegmentPayloadLimit(options.EncodedLength);
        int limit = probe ? segment : SuperSegmentLimit(segment, options.EncodedLength);
        if (length > limit)
        {
            length = limit;
            fin = false;
        }
        var start = _snd.Nxt;
        int offset = start - _snd.BufferStart;
        bool last = start + length == DataEnd;
        var flags = TcpFlags.Ack;
        if (length > 0 && last) flags |= TcpFlags.Psh; // the last segment of what the application queued
        if (fin) flags |= TcpFlags.Fin;
        var header = new TcpHeader(Tuple.LocalPort, Tuple.RemotePort, start, _rcv.Nxt, flags, WindowField());
        Emit(header, options, offset, length, length > segment ? segment : 0, newData: length > 0 && !probe);
        int seqLength = length + (fin ? 1 : 0);
        var recordFlags = (fin ? SentFlags.Fin : SentFlags.None) | (probe ? SentFlags.Probe : SentFlags.InPipe);
        if (_sent.Count == 0) _progressAt = _now;
        _sent.Add(new SentSegment { Start = start, End = start + seqLength, SentAt = _now, Flags = recordFlags, Transmissions = 1 });
        if (!probe) _pipe += seqLength;
        _snd.Nxt = start + seqLength;
        // Nagle's "small segment" is one shorter than what the current options leave room for
        // (Linux compares with tcp_current_mss); a zero-window probe is not one: it must not hold
        // back the data that follows once the window opens.
        if (length < limit && !probe) _snd.Sml = _snd.Nxt;
        if (fin) _finSent = true;
        BytesSent += length;
        // RFC 6298 5.1: start the timer when sending data and it is not running.
        if (_timers.Rto.IsNever && !probe) _timers.Rto = _now + _rtt.Rto;
        if (_roundEnd == default) _roundEnd = _snd.Nxt;
        _loss.OnDataSent(seqLength);
    }

    /// <summary>Tracks round trips for HyStart++: a round ends when its windowEnd is acknowledged.</summary>
    private bool TakeRoundStart(SeqNumber ack)
    {
        if (ack >= _roundEnd) { _roundEnd = _snd.Nxt; return true; }
        return false;
    }

    /// <summary>Marks a record lost: it leaves the pipe and waits for retransmission.</summary>
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

    private int FirstLostLength()
    {
        for (int i = 0; i < _sent.Count; i++)
            if (_sent[i].Has(SentFlags.Lost)) return _sent[i].Length;
        return 0;
    }

    /// <summary>Retransmits the oldest record marked lost.</summary>
    private void RetransmitFirstLost()
    {
        for (int i = 0; i < _sent.Count; i++)
        {
            if (!_sent[i].Has(SentFlags.Lost)) continue;
            Retransmit(i);
            return;
        }
        _lostCount = 0;
    }

    /// <summary>Sends the record at <paramref name="index"/> again, byte for byte from the send ring.</summary>
    private void Retransmit(int index)
    {
        var options = DataOptions();
        int limit = SegmentPayloadLimit(options.EncodedLength);
        // Options grew since the first transmission (SACK blocks): split so the segment fits the MSS.
        if (_sent[index].DataLength > limit) SplitRecord(index, limit);
        ref var rec = ref _sent[index];
        if (rec.Has(SentFlags.Lost)) { rec.Flags &= ~SentFlags.Lost; _lostCount--; }
        int dataLength = rec.DataLength;
        bool fin = rec.Has(SentFlags.Fin);
        var flags = TcpFlags.Ack | (fin ? TcpFlags.Fin : TcpFlags.None);
        if (dataLength > 0 && rec.Start + dataLength == DataEnd) flags |= TcpFlags.Psh;
        var header = new TcpHeader(Tuple.LocalPort, Tuple.RemotePort, rec.Start, _rcv.Nxt, flags, WindowField());
        Emit(header, options, rec.Start - _snd.BufferStart, dataLength);
        rec.SentAt = _now;
        rec.Transmissions++;
        rec.Flags |= SentFlags.Retransmitted;
        if (!rec.Has(SentFlags.InPipe))
        {
            rec.Flags |= SentFlags.InPipe;
            _pipe += rec.Length;
        }
        bool isHead = rec.Start == _snd.Una;
        Retransmissions++;
        _env.Statistics.SegmentsRetransmitted++;
        _loss.OnRetransmitted(isHead);
        // Linux (tcp_xmit_retransmit_queue): resending the head restarts the timer, so that a
        // repair that RACK found lost again gets a round trip before the timeout.
        if (_timers.Rto.IsNever || (isHead && !_loss.HoldsTimerOnHeadRetransmission)) _timers.Rto = _now + _rtt.Rto;
    }

    /// <summary>
    /// Splits the record at <paramref name="index"/> after <paramref name="dataLength"/> bytes.
    /// Both halves keep its state (lost, in pipe, retransmitted), so the counters stay exact.
    /// </summary>
    private void SplitRecord(int index, int dataLength)
    {
        var head = _sent[index];
        var tail = head;
        tail.Start = head.Start + dataLength;
        tail.Flags &= ~SentFlags.Syn;
        head.End = tail.Start;
        head.Flags &= ~SentFlags.Fin;
        if (tail.Has(SentFlags.Lost)) _lostCount++;
        if (tail.Has(SentFlags.Sacked)) _sackedCount++;
        _sent[index] = head;
        _sent.Insert(index + 1, tail);
    }

    /// <summary>A pure ACK: &lt;SEQ=SND.NXT&gt;&lt;ACK=RCV.NXT&gt;&lt;CTL=ACK&gt;, with timestamps and SACK blocks.</summary>
    private void SendAck()
    {
        var header = new TcpHeader(Tuple.LocalPort, Tuple.RemotePort, _snd.Nxt, _rcv.Nxt, TcpFlags.Ack, WindowField());
        Emit(header, DataOptions(), 0, 0);
    }

    /// <summary>A reset with the given sequence number and no ACK (RFC 9293 3.5.2).</summary>
    private void SendReset(SeqNumber seq)
    {
        var header = new TcpHeader(Tuple.LocalPort, Tuple.RemotePort, seq, default, TcpFlags.Rst, 0);
        _out!.Send(Tuple, header, default, default, default);
        SegmentsSent++;
        _env.Statistics.ResetsSent++;
    }

    /// <summary>Options of a non-SYN segment: timestamps (RFC 7323 3.2), then D-SACK and SACK blocks (RFC 2018 4, RFC 2883 4).</summary>
    private TcpOptions DataOptions()
    {
        var o = new TcpOptions();
        if (_tsOk) o.SetTimestamps(TsNow, _tsRecent);
        if (_sackOk && (_dsack is not null || !_assembler.IsEmpty))
        {
            int max = _tsOk ? 3 : 4;
            if (_dsack is SackBlock d) o.AddSackBlock(d);
            _assembler.WriteSackBlocks(ref o, _rcv.Nxt, max, _pendingFinSeq);
        }
        return o;
    }

    /// <summary>The window field of a non-SYN segment, scaled (RFC 7323 2.3).</summary>
    private ushort WindowField() => (ushort)Math.Min(65535, UpdateAdvertisedWindow() >> _rcv.Shift);

    /// <summary>The most new data one transmission may carry: one segment, or a super-segment with offload.</summary>
    private int MaxSendChunk => _env.SegmentationOffloadBytes > 0 ? SuperSegmentLimit(_smss, _tsOk ? 12 : 0) : _smss;

    /// <summary>With segmentation offload: as many whole segments as fit one IP packet of the offload size.</summary>
    private int SuperSegmentLimit(int segment, int optionBytes)
    {
        int room = _env.SegmentationOffloadBytes - Tuple.IpHeaderLength - TcpPacket.MinHeaderLength - optionBytes;
        return room >= 2 * segment ? room / segment * segment : segment;
    }

    /// <summary>
    /// Puts one segment on the wire; every segment we send carries what an ACK would. With
    /// <paramref name="segmentPayload"/> &gt; 0 it is a super-segment the link cuts into pieces of that size.
    /// With ECN, every segment may echo ECE, and <paramref name="newData"/> (first transmissions of
    /// data only) goes out ECT(0), with CWR when due.
    /// </summary>
    private void Emit(TcpHeader header, in TcpOptions options, int dataOffset, int dataLength, int segmentPayload = 0, bool newData = false)
    {
        ReadOnlySpan<byte> first = default, second = default;
        if (dataLength > 0) SendBuffer.Peek(dataOffset, dataLength, out first, out second);
        if (_ecnOk) header = WithEcn(header, newData);
        if (segmentPayload > 0) _out!.SendSegmented(Tuple, header, options, first, second, segmentPayload);
        else _out!.Send(Tuple, header, options, first, second);
        SegmentsSent++;
        _lastSendAt = _now;
        if ((header.Flags & TcpFlags.Ack) != 0)
        {
            _lastAckSent = header.AcknowledgmentNumber;
            _ackNow = false;
            _bytesSinceAck = 0;
            _timers.DelayedAck = Instant.Never;
            _dsack = null;
        }
    }

    /// <summary>
    /// RFC 9293 3.10.7.4 fifth step for synchronized states, with RFC 5961 5.2. Returns false
    /// when the segment must be dropped.
    /// </summary>
    private bool ProcessAck(in TcpSegment seg)
    {
        var ack = seg.Acknowledgment;
        // RFC 5961 5.2: acceptable only if (SND.UNA - MAX.SND.WND) <= SEG.ACK <= SND.NXT;
        // otherwise (including "acks something not yet sent") an ACK is sent and the segment dropped.
        if (ack > _snd.Nxt || ack < _snd.Una - (int)Math.Min(_snd.MaxWnd, int.MaxValue))
        {
            SendChallengeAck();
            return false;
        }
        long windowBefore = _snd.Wnd;
        long newWindow = (long)seg.Window << _snd.Shift;
        bool duplicateCandidate = ack == _snd.Una && seg.Payload.Length == 0 && !seg.Fin && !seg.Syn
            && _sent.Count > 0 && newWindow == windowBefore;
        int newlySacked = 0;
        bool dsack = false;
        if (seg.Options.SackCount > 0) newlySacked = _loss.OnSackBlocks(seg.Options, ack, out dsack);

        bool advanced = ack > _snd.Una;
        int ackedBytes = advanced ? ack - _snd.Una : 0;
        if (advanced) AcknowledgeUpTo(ack, seg);

        // RFC 9293: if SND.UNA =< SEG.ACK =< SND.NXT, update the send window when the segment is
        // newer (SND.WL1 < SEG.SEQ, or same SEQ and SND.WL2 =< SEG.ACK) - the WL1/WL2 rule
        // that keeps old segments from moving the window back. An old ACK (below SND.UNA, let
        // through by RFC 5961 5.2) never updates it.
        if (ack >= _snd.Una && (_snd.Wl1 < seg.Sequence || (_snd.Wl1 == seg.Sequence && _snd.Wl2 <= ack)))
        {
            _snd.Wnd = newWindow;
            _snd.MaxWnd = Math.Max(_snd.MaxWnd, _snd.Wnd);
            _snd.Wl1 = seg.Sequence;
            _snd.Wl2 = ack;
            if (_snd.Wnd > 0) OnWindowOpened();
        }
        // The peer answered a probe (a probe byte, or the window probe while only the FIN waits):
        // it is alive, its window still closed.
        if (!advanced && ((_sent.Count > 0 && _sent.First.Has(SentFlags.Probe)) || OnlyFinWaits))
            _probesUnanswered = 0;

        _loss.OnAck(advanced, ackedBytes, duplicateCandidate, newlySacked, dsack, seg);

        switch (State)
        {
            case TcpConnectionState.FinWait1:
                if (FinAcknowledged)
                {
                    SetState(TcpConnectionState.FinWait2);
                    // Linux tcp_fin_timeout: a fully closed connection does not wait in FIN-WAIT-2 forever.
                    if (_receiveClosed) _timers.FinWait2 = _now + 2 * _settings.Msl;
                }
                break;
            case TcpConnectionState.Closing:
                if (FinAcknowledged) EnterTimeWait();
                break;
            case TcpConnectionState.LastAck:
                if (FinAcknowledged) { Raise(TcpConnectionEvents.SendCompleted); Terminate(TcpError.None); return false; }
                break;
        }
        return true;
    }

    /// <summary>SND.UNA advances to <paramref name="ack"/>: free acknowledged data, sample the RTT, grow cwnd.</summary>
    private void AcknowledgeUpTo(SeqNumber ack, in TcpSegment seg)
    {
        int ackedBytes = ack - _snd.Una;
        int flightBefore = _pipe;
        Instant newestClean = Instant.Never;
        bool anyRetransmitted = false;
        while (_sent.Count > 0)
        {
            ref var rec = ref _sent.First;
            if (rec.End <= ack)
            {
                if (rec.Has(SentFlags.InPipe)) _pipe -= rec.Length;
                if (rec.Has(SentFlags.Lost)) _lostCount--;
                if (rec.Has(SentFlags.Sacked)) _sackedCount--;
                if (rec.Has(SentFlags.Retransmitted)) anyRetransmitted = true;
                else if (newestClean.IsNever || rec.SentAt > newestClean) newestClean = rec.SentAt;
                _loss.OnRecordDelivered(rec);
                _sent.RemoveFirst();
                continue;
            }
            if (rec.Start < ack)
            {
                int part = ack - rec.Start;
                if (rec.Has(SentFlags.InPipe)) _pipe -= part;
                rec.Start = ack;
                if (rec.Has(SentFlags.Syn)) rec.Flags &= ~SentFlags.Syn;
            }
            break;
        }
        int consume = SeqNumber.Min(ack, DataEnd) - _snd.BufferStart;
        if (consume > 0)
        {
            SendBuffer.Consume(consume);
            _snd.BufferStart += consume;
            Raise(TcpConnectionEvents.Writable);
        }
        _snd.Una = ack;
        _softError = TcpError.None; // the path works again (Linux tcp_ack clears sk_err_soft)
        _scoreboard.AdvanceTo(ack);
        _progressAt = _now;

        // RTT: from the newest never-retransmitted segment this ACK covers (Karn's rule, RFC 6298 3),
        // else from the timestamp echo (RFC 7323 4.1), which is unambiguous even for retransmissions.
        long rttUs = -1;
        if (!newestClean.IsNever) rttUs = (_now - newestClean).Ticks / TimeSpan.TicksPerMicrosecond;
        else if (_tsOk && seg.Options.HasTimestamps && seg.Options.TimestampEcho != 0 && !_cookiePending)
        {
            long ms = unchecked((int)(TsNow - seg.Options.TimestampEcho));
            if (ms >= 0 && ms < 3_600_000) rttUs = ms * 1000;
        }
        _cookiePending = false;
        if (rttUs >= 0) _rtt.AddSample(rttUs);
        if (rttUs >= 0 || !anyRetransmitted) _rtt.ResetBackoff();
        SampleDeliveryRate(ackedBytes);
        _consecutiveRtos = 0;
        _probesUnanswered = 0;
        _persistBackoff = 0;

        if (IsSynchronized && !_ccInitialized) _ccInitialized = true;
        if (_ccInitialized && _loss.State != RecoveryState.FastRecovery)
        {
            bool appLimited = DataEnd - _snd.Nxt <= 0 && flightBefore < _cc.CongestionWindow;
            _cc.OnAck(new AckEvent(ackedBytes, flightBefore, _smss, _now, rttUs, _rtt.HasSample ? _rtt.MinUs : -1, appLimited, TakeRoundStart(ack)));
        }
        if (!_loss.HoldsTimerOnAck(ack)) RearmRetransmissionTimer();
    }

    /// <summary>RFC 6298 5.2 and 5.3: stop the timer when nothing is outstanding, else restart it.</summary>
    private void RearmRetransmissionTimer()
    {
        if (_sent.Count == 0) { _timers.Rto = Instant.Never; return; }
        if (_sent.First.Has(SentFlags.Probe) && _snd.Wnd == 0)
        {
            // Only a zero-window probe is out: the persist timer owns it.
            _timers.Rto = Instant.Never;
            ArmPersist();
            return;
        }
        _timers.Rto = _now + _rtt.Rto;
    }

    /// <summary>The peer's window opened: end persist mode; an outstanding probe becomes ordinary data.</summary>
    private void OnWindowOpened()
    {
        _timers.Persist = Instant.Never;
        _persistBackoff = 0;
        for (int i = 0; i < _sent.Count; i++)
        {
            ref var rec = ref _sent[i];
            if (!rec.Has(SentFlags.Probe)) continue;
            rec.Flags &= ~SentFlags.Probe;
            if (rec.Has(SentFlags.Sacked)) continue; // delivered already: not in the network
            rec.Flags |= SentFlags.InPipe;
            _pipe += rec.Length;
        }
        if (_sent.Count > 0 && _timers.Rto.IsNever) _timers.Rto = _now + _rtt.Rto;
    }

    private void ArmPersist()
    {
        if (!_timers.Persist.IsNever) return;
        long us = Math.Min(_rtt.BaseRtoUs << Math.Min(_persistBackoff, 20), _settings.MaxPersistInterval.Ticks / TimeSpan.TicksPerMicrosecond);
        _timers.Persist = _now + TimeSpan.FromMicroseconds(us);
    }
}
