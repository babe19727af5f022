using TunTcp.Wire;

namespace TunTcp.Tcp;

public sealed partial class TcpConnection
{
    private int _synTransmissions;
    private bool _synRetransmitted;
    /// <summary>SYN-RECEIVED must (re)send its SYN-ACK on the next transmit.</summary>
    private bool _synAckDue;

    /// <summary>
    /// Passive open (RFC 9293 3.10.7.2, LISTEN state, third check): a SYN arrived for a
    /// listener. The new connection is in SYN-RECEIVED with IRS = SEG.SEQ, RCV.NXT = SEG.SEQ + 1,
    /// and sends &lt;SEQ=ISS&gt;&lt;ACK=RCV.NXT&gt;&lt;CTL=SYN,ACK&gt;.
    /// </summary>
    /// <remarks>Data on the SYN is not kept (Linux does the same without TCP Fast Open); the peer resends it.</remarks>
    internal static TcpConnection AcceptSyn(TcpTuple tuple, in TcpSegment syn, TcpSettings settings, TcpEnvironment env, int mtu, TcpListenQueue listener, Instant now, ITcpOutput output)
    {
        var c = new TcpConnection(tuple, settings, env, mtu, now) { Listener = listener, State = TcpState.SynReceived };
        env.Statistics.PassiveOpens++;
        c._now = now;
        c._out = output;
        c.SegmentsReceived++;
        c.NegotiateOptions(syn.Options);
        c.NegotiateEcnPassive(syn.Flags);
        c._rcv.Irs = syn.Sequence;
        c._rcv.Nxt = syn.Sequence + 1;
        c._rcv.AdvertisedEdge = c._rcv.Nxt;
        // RFC 7323 2.2: the window field of a SYN is never scaled.
        c._snd.Wnd = syn.Window;
        c._snd.MaxWnd = c._snd.Wnd;
        c._snd.Wl1 = syn.Sequence;
        c._synAckDue = true;
        try
        {
            c.Transmit();
        }
        finally
        {
            c.Finish();
        }
        return c;
    }

    /// <summary>
    /// Reads the options of the peer's SYN (or SYN-ACK) and settles what this connection uses.
    /// RFC 7323 2.2/3.2 and RFC 2018 2: window scaling, timestamps and SACK are used only when
    /// both SYNs carry them; for a passive open our SYN-ACK offers only what the SYN offered.
    /// </summary>
    private void NegotiateOptions(in TcpOptions options)
    {
        if (options.MaxSegmentSize is ushort mss && mss > 0) _peerMss = mss;
        _wsOk = _settings.WindowScaling && options.WindowScale.HasValue;
        // RFC 7323 2.3: a shift above 14 is used as 14 (and should be logged).
        _snd.Shift = _wsOk ? Math.Min((int)options.WindowScale!.Value, 14) : 0;
        _rcv.Shift = _wsOk ? _offeredRcvShift : 0;
        _tsOk = _settings.Timestamps && options.HasTimestamps;
        if (_tsOk)
        {
            _tsRecent = options.TimestampValue;
            _tsRecentAt = _now;
        }
        _sackOk = _settings.Sack && options.SackPermitted;
        // The recovery made for what we offer is replaced only if the peer did not agree.
        if (_sackOk != _loss is SackRecovery) _loss = CreateLossRecovery(this, _sackOk);
        _smss = SegmentPayloadLimit(_tsOk ? 12 : 0);
    }

    /// <summary>
    /// RFC 9293 3.7.1: Eff.snd.MSS = min(SendMSS + 20, MMS_S) - TCPhdrsize - IPoptionsize, where
    /// TCPhdrsize counts the options actually carried. MMS_S is the path MTU minus the IP header.
    /// </summary>
    private int SegmentPayloadLimit(int optionBytes) =>
        Math.Max(1, Math.Min(_peerMss + TcpPacket.MinHeaderLength, PathMtu - Tuple.IpHeaderLength) - TcpPacket.MinHeaderLength - optionBytes);

    /// <summary>The MSS we announce: our MTU minus the IPv4 and TCP headers.</summary>
    private ushort OwnMss => (ushort)Math.Min(65535, _mtu - Tuple.IpHeaderLength - TcpPacket.MinHeaderLength);

    /// <summary>RFC 9293 3.10.7.3: a segment arrives in SYN-SENT.</summary>
    private void ProcessSynSent(in TcpSegment seg)
    {
        bool ackAcceptable = false;
        // First, check the ACK bit.
        if (seg.Ack)
        {
            // If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST bit is set) and drop.
            if (seg.Acknowledgment <= _snd.Iss || seg.Acknowledgment > _snd.Nxt)
            {
                if (!seg.Rst) SendReset(seg.Acknowledgment);
                return;
            }
            ackAcceptable = _snd.Una < seg.Acknowledgment && seg.Acknowledgment <= _snd.Nxt;
        }
        // Second, check the RST bit: with an acceptable ACK the connection is refused; without an ACK, drop.
        if (seg.Rst)
        {
            if (ackAcceptable)
            {
                _env.Statistics.ResetsReceived++;
                Terminate(TcpError.ConnectionRefused);
            }
            return;
        }
        // Fourth, check the SYN bit.
        if (!seg.Syn) return;
        NegotiateOptions(seg.Options);
        if (seg.Ack) NegotiateEcnActive(seg.Flags);
        _rcv.Irs = seg.Sequence;
        _rcv.Nxt = seg.Sequence + 1;
        _rcv.AdvertisedEdge = _rcv.Nxt;
        _snd.Wnd = seg.Window; // unscaled in a SYN (RFC 7323 2.2)
        _snd.MaxWnd = _snd.Wnd;
        _snd.Wl1 = seg.Sequence;
        _snd.Wl2 = seg.Acknowledgment;
        if (seg.Ack)
        {
            AcknowledgeUpTo(seg.Acknowledgment, in seg);
        }
        if (_snd.Una > _snd.Iss)
        {
            // Our SYN has been ACKed: ESTABLISHED, and acknowledge their SYN.
            EnterEstablished();
            _ackNow = true;
            // Data or FIN riding on the SYN-ACK is processed as in the synchronized states.
            if (seg.Payload.Length > 0 || seg.Fin) ProcessText(seg.Sequence + 1, seg.Payload, seg.Fin);
            return;
        }
        // Simultaneous open: SYN-RECEIVED, send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
        SetState(TcpState.SynReceived);
        _synAckDue = true;
    }

    /// <summary>The handshake completed (either side).</summary>
    private void EnterEstablished()
    {
        SetState(TcpState.Established);
        if (_synRetransmitted) _rtt.ReinitializeAfterSynTimeout();
        _rtt.ResetBackoff();
        _cc.Initialize(_smss, _settings.InitialWindowSegments, _now);
        // From here on the controller is told of ACKs and timeouts (RFC 5681 3.1: an RTO before
        // the first ACK of data must still cut cwnd to one segment, also after an active open).
        _ccInitialized = true;
        _lastSendAt = _now;
        // A CLOSE in SYN-RECEIVED was queued until now (RFC 9293 3.10.4).
        if (_finQueued) SetState(TcpState.FinWait1);
    }

    /// <summary>Builds the options of our SYN or SYN-ACK.</summary>
    private TcpOptions SynOptions(bool synAck)
    {
        var o = new TcpOptions { MaxSegmentSize = OwnMss };
        // In a SYN we offer what is enabled; in a SYN-ACK only what the SYN offered (negotiated flags).
        bool ws = synAck ? _wsOk : _settings.WindowScaling;
        bool ts = synAck ? _tsOk : _settings.Timestamps;
        bool sack = synAck ? _sackOk : _settings.Sack;
        if (ws) o.WindowScale = (byte)_offeredRcvShift;
        if (ts) o.SetTimestamps(TsNow, synAck ? _tsRecent : 0);
        o.SackPermitted = sack;
        return o;
    }

    /// <summary>Sends (or resends) our SYN or SYN-ACK; it occupies ISS.</summary>
    private void SendSyn(bool synAck)
    {
        var options = SynOptions(synAck);
        // RFC 7323 2.2: the window in a SYN or SYN-ACK is never scaled.
        ushort window = (ushort)Math.Min(65535, ReceiveBuffer.Free);
        if (synAck) _rcv.AdvertisedEdge = SeqNumber.Max(_rcv.AdvertisedEdge, _rcv.Nxt + window);
        var flags = (synAck ? TcpFlags.Syn | TcpFlags.Ack : TcpFlags.Syn) | EcnSynFlags(synAck);
        var header = new TcpHeader(Tuple.LocalPort, Tuple.RemotePort, _snd.Iss, synAck ? _rcv.Nxt : default, flags, window);
        Emit(header, options, 0, 0);
        if (_sent.Count == 0)
        {
            _sent.Add(new SentSegment { Start = _snd.Iss, End = _snd.Iss + 1, SentAt = _now, Flags = SentFlags.Syn | SentFlags.InPipe, Transmissions = 1 });
            _pipe += 1;
            _snd.Nxt = _snd.Iss + 1;
        }
        else
        {
            ref var rec = ref _sent.First;
            rec.SentAt = _now;
            rec.Transmissions++;
            rec.Flags |= SentFlags.Retransmitted;
        }
        _synTransmissions++;
        if (_synTransmissions > 1) { _synRetransmitted = true; Retransmissions++; _env.Statistics.SegmentsRetransmitted++; }
        _timers.Rto = _now + _rtt.Rto;
        _synAckDue = false;
    }
}
