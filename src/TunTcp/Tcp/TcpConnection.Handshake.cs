using TunTcp.Wire;

namespace TunTcp.Tcp;

internal sealed partial class TcpConnection
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
        var c = new TcpConnection(tuple, settings, env, mtu, now) { Listener = listener, State = TcpConnectionState.SynReceived };
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

    // ---- SYN cookies (RFC 4987 3.6) ----

    /// <summary>The low TSval bits that carry a cookie's options (Linux TSMASK): window scale (4 bits, 0xF none), SACK, ECN.</summary>
    private const uint CookieTsMask = 0x3F, CookieNoWindowScale = 0xF, CookieSack = 0x10, CookieEcn = 0x20;

    /// <summary>Set on a SYN-ACK that carries a cookie: the TSval's low bits, replaced by the options.</summary>
    private uint? _cookieTsBits;

    /// <summary>A connection rebuilt from a cookie whose completing ACK has not been processed yet (its TSecr is not a clock reading).</summary>
    private bool _cookiePending;

    /// <summary>True for a connection made from a SYN cookie.</summary>
    public bool FromSynCookie { get; private set; }

    /// <summary>
    /// Answers <paramref name="syn"/> with a SYN-ACK that keeps no state (RFC 4987 3.6): its ISN is
    /// the cookie (the tuple, the peer's ISN, the time and the MSS index, keyed), and with
    /// timestamps the TSval's low 6 bits carry the window scale, SACK and ECN the SYN asked for.
    /// Without timestamps there is nowhere to keep those: the SYN-ACK offers only the MSS (no
    /// window scaling, SACK or ECN), as Linux's cookies do. The SYN-ACK is the one a connection
    /// would send (built by a connection that is then dropped).
    /// </summary>
    internal static void SendCookieSynAck(TcpTuple tuple, in TcpSegment syn, TcpSettings settings, TcpEnvironment env, int mtu, Instant now, ITcpOutput output)
    {
        var c = new TcpConnection(tuple, settings, env, mtu, now) { State = TcpConnectionState.SynReceived };
        c._now = now;
        c._out = output;
        c.NegotiateOptions(syn.Options);
        c.NegotiateEcnPassive(syn.Flags);
        if (!c._tsOk) { c._wsOk = false; c._sackOk = false; c._ecnOk = false; }
        var table = tuple.IsV4 ? TcpEnvironment.CookieMss4 : TcpEnvironment.CookieMss6;
        int index = 0;
        while (index + 1 < table.Length && table[index + 1] <= c._peerMss) index++;
        c.UseIss(env.EncodeCookie(tuple, syn.Sequence, index, now));
        if (c._tsOk)
            c._cookieTsBits = (c._wsOk ? (uint)c._snd.Shift : CookieNoWindowScale) | (c._sackOk ? CookieSack : 0) | (c._ecnOk ? CookieEcn : 0);
        c._rcv.Irs = syn.Sequence;
        c._rcv.Nxt = syn.Sequence + 1;
        c._rcv.AdvertisedEdge = c._rcv.Nxt;
        c._synAckDue = true;
        c.Transmit();
        c._pendingEvents = TcpConnectionEvents.None;
    }

    /// <summary>
    /// Rebuilds the connection a valid cookie stands for, from the ACK that returns it (SEG.ACK - 1
    /// is our ISN, SEG.SEQ - 1 the peer's): in SYN-RECEIVED, as if the SYN had arrived with the
    /// options the cookie kept and our SYN-ACK had been sent, so the ACK then completes it like
    /// any other. Null when the cookie is not valid (forged, expired, for another tuple), or when
    /// the ACK's TSecr carries no cookie options we could have sent.
    /// </summary>
    internal static TcpConnection? FromCookie(TcpTuple tuple, in TcpSegment ack, TcpSettings settings, TcpEnvironment env, int mtu, TcpListenQueue listener, Instant now)
    {
        var iss = ack.Acknowledgment - 1;
        var irs = ack.Sequence - 1;
        if (!env.TryDecodeCookie(tuple, irs, iss, now, out int index)) return null;
        var table = tuple.IsV4 ? TcpEnvironment.CookieMss4 : TcpEnvironment.CookieMss6;
        var options = new TcpOptions { MaxSegmentSize = table[index] };
        var synFlags = TcpFlags.Syn;
        if (settings.Timestamps && ack.Options.HasTimestamps)
        {
            // The echo must be a TSval we could have sent: not from the future, not older than a cookie lives.
            uint tsNow = unchecked((uint)(now.Microseconds / 1000) + env.TimestampOffset(tuple));
            long age = unchecked((int)(tsNow - (ack.Options.TimestampEcho & ~CookieTsMask)));
            if (age < 0 || age > (TcpEnvironment.CookieMaxAge << TcpEnvironment.CookiePeriodShift) / 1000) return null;
            uint bits = ack.Options.TimestampEcho & CookieTsMask;
            uint ws = bits & CookieNoWindowScale;
            if (ws != CookieNoWindowScale)
            {
                if (ws > 14) return null;
                options.WindowScale = (byte)ws;
            }
            options.SackPermitted = (bits & CookieSack) != 0;
            if ((bits & CookieEcn) != 0) synFlags |= TcpFlags.Ece | TcpFlags.Cwr;
            // The SYN's own TSval is gone; the ACK's stands in for TS.Recent.
            options.SetTimestamps(ack.Options.TimestampValue, 0);
        }
        var c = new TcpConnection(tuple, settings, env, mtu, now) { Listener = listener, State = TcpConnectionState.SynReceived };
        env.Statistics.PassiveOpens++;
        c._now = now;
        c.FromSynCookie = true;
        c._cookiePending = true;
        c.NegotiateOptions(options);
        c.NegotiateEcnPassive(synFlags);
        c.UseIss(iss);
        c._rcv.Irs = irs;
        c._rcv.Nxt = ack.Sequence;
        c._rcv.AdvertisedEdge = c._rcv.Nxt + (int)Math.Min(65535, c.ReceiveBuffer.Free);
        c._snd.Wnd = ack.Window;
        c._snd.MaxWnd = c._snd.Wnd;
        c._snd.Wl1 = irs;
        // Our SYN-ACK went out (from the cookie path), once, at a time nobody recorded: no RTT sample from it.
        c._sent.Add(new SentSegment { Start = iss, End = iss + 1, SentAt = now, Flags = SentFlags.Syn | SentFlags.InPipe | SentFlags.Retransmitted, Transmissions = 1 });
        c._pipe += 1;
        c._snd.Nxt = iss + 1;
        c._synTransmissions = 1;
        c._timers.Rto = now + c._rtt.Rto;
        return c;
    }

    /// <summary>Takes <paramref name="iss"/> as the initial sequence number (a cookie) instead of the generated one.</summary>
    private void UseIss(SeqNumber iss)
    {
        _snd.Iss = iss;
        _snd.Una = iss;
        _snd.Nxt = iss;
        _snd.Sml = iss;
        _snd.BufferStart = iss + 1;
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
        // The window our SYN offered holds from their ISN + 1 on: data right behind the SYN-ACK
        // (before our ACK goes out with a window of its own) is inside it.
        _rcv.AdvertisedEdge = _rcv.Nxt + _synWindow;
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
        SetState(TcpConnectionState.SynReceived);
        _synAckDue = true;
    }

    /// <summary>The handshake completed (either side).</summary>
    private void EnterEstablished()
    {
        SetState(TcpConnectionState.Established);
        if (_synRetransmitted) _rtt.ReinitializeAfterSynTimeout();
        _rtt.ResetBackoff();
        _cc.Initialize(_smss, _settings.InitialWindowSegments, _now);
        // From here on the controller is told of ACKs and timeouts (RFC 5681 3.1: an RTO before
        // the first ACK of data must still cut cwnd to one segment, also after an active open).
        _ccInitialized = true;
        _lastSendAt = _now;
        // A CLOSE in SYN-RECEIVED was queued until now (RFC 9293 3.10.4).
        if (_finQueued) SetState(TcpConnectionState.FinWait1);
    }

    /// <summary>Builds the options of our SYN or SYN-ACK.</summary>
    /// <summary>
    /// A cookie SYN-ACK's TSval: the clock with the option bits in its low 6 bits, stepped back by
    /// 64 when that would put it ahead of the clock (Linux: cookie_init_timestamp). The peer keeps
    /// it as TS.Recent, and the connection rebuilt from the cookie sends TsNow from then on: a
    /// TSval ahead of that would make the peer's PAWS check drop our first segments (RFC 7323 5.3).
    /// </summary>
    private static uint CookieTsval(uint now, uint bits)
    {
        uint tsval = (now & ~CookieTsMask) | bits;
        return unchecked((int)(tsval - now)) > 0 ? unchecked(tsval - (CookieTsMask + 1)) : tsval;
    }

    private TcpOptions SynOptions(bool synAck)
    {
        var o = new TcpOptions { MaxSegmentSize = OwnMss };
        // In a SYN we offer what is enabled; in a SYN-ACK only what the SYN offered (negotiated flags).
        bool ws = synAck ? _wsOk : _settings.WindowScaling;
        bool ts = synAck ? _tsOk : _settings.Timestamps;
        bool sack = synAck ? _sackOk : _settings.Sack;
        if (ws) o.WindowScale = (byte)_offeredRcvShift;
        if (ts) o.SetTimestamps(_cookieTsBits is uint bits ? CookieTsval(TsNow, bits) : TsNow, synAck ? _tsRecent : 0);
        o.SackPermitted = sack;
        return o;
    }

    /// <summary>The (unscaled) window our last SYN offered: RCV.WND once the SYN-ACK names the sequence space.</summary>
    private ushort _synWindow;

    /// <summary>Sends (or resends) our SYN or SYN-ACK; it occupies ISS.</summary>
    private void SendSyn(bool synAck)
    {
        var options = SynOptions(synAck);
        // RFC 7323 2.2: the window in a SYN or SYN-ACK is never scaled.
        ushort window = (ushort)Math.Min(65535, ReceiveBuffer.Free);
        if (synAck) _rcv.AdvertisedEdge = SeqNumber.Max(_rcv.AdvertisedEdge, _rcv.Nxt + window);
        else _synWindow = window;
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
