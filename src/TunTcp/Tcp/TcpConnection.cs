using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>What changed on a connection, for the socket layer to wake its waiters.</summary>
[Flags]
internal enum TcpConnectionEvents
{
    None = 0,
    /// <summary>Data arrived in the receive buffer, or the peer's FIN (end of stream).</summary>
    Readable = 1,
    /// <summary>Space was freed in the send buffer.</summary>
    Writable = 2,
    /// <summary>The handshake completed.</summary>
    Established = 4,
    /// <summary>The connection reached CLOSED (see <see cref="TcpConnection.Error"/>).</summary>
    Closed = 8,
    /// <summary>
    /// The peer acknowledged our FIN, and with it every byte sent before it: the connection
    /// entered FIN-WAIT-2 or TIME-WAIT, or left LAST-ACK for CLOSED.
    /// </summary>
    SendCompleted = 16,
}

/// <summary>Receives a connection's events on the stack thread.</summary>
internal interface ITcpConnectionObserver
{
    void OnEvents(TcpConnection connection, TcpConnectionEvents events);
}

/// <summary>
/// One TCP connection: the transmission control block of RFC 9293 and the engine that drives
/// it. Sans-IO: it is given each arriving segment and the current instant
/// (<see cref="OnSegment"/>), woken at <see cref="NextDeadline"/> (<see cref="Poll"/>), and it
/// emits segments through an <see cref="ITcpOutput"/>. It never reads a clock, blocks or
/// allocates per segment. Only the stack thread may call its methods; the application talks
/// to it through <see cref="SendBuffer"/> and <see cref="ReceiveBuffer"/>.
/// </summary>
/// <remarks>
/// Read first: RFC 9293 (3.3 variables, 3.10 event processing), RFC 7323 (window scale,
/// timestamps, PAWS), RFC 2018/2883 (SACK, D-SACK), RFC 6298 (RTO), RFC 5681 (congestion
/// control), RFC 5961 (blind attacks), RFC 6528 (ISN). Its state, by role (split like gVisor's
/// TCP, whose sender, receiver and lossRecovery are separate types):
/// <list type="bullet">
/// <item>the TCB (this file): the send and receive sequence spaces (<see cref="SendSequence"/>,
/// <see cref="ReceiveSequence"/>), the negotiated options, closing flags and the user calls;</item>
/// <item>the opening states, SYN-SENT and SYN-RECEIVED (<c>.Handshake</c>);</item>
/// <item>segment arrival in synchronized states: acceptability, RST, SYN, PAWS (<c>.Input</c>);</item>
/// <item>the receiver (<c>.Receiver</c>): the receive ring, the out-of-order
/// <see cref="ReceiveAssembler"/>, delayed ACKs and D-SACK, the advertised window;</item>
/// <item>the sender (<c>.Sender</c>): the send ring, the <see cref="SentSegmentQueue"/> of
/// records with pipe / lost / SACKed counters, the <see cref="SackScoreboard"/>, Nagle and SWS
/// avoidance, the <see cref="RttEstimator"/> and the <see cref="ICongestionControl"/>;</item>
/// <item>loss recovery behind <see cref="ILossRecovery"/> (<c>.Recovery</c>: the shared episode,
/// undo and F-RTO; <c>.NewReno</c> without SACK; <c>.Sack</c>: RFC 6675 with RACK-TLP);</item>
/// <item>the timers, one <see cref="TcpTimerSet"/> (<c>.Timers</c>): retransmission, loss probe,
/// persist, delayed ACK, keepalive, FIN-WAIT-2, TIME-WAIT;</item>
/// <item>ECN (<c>.Ecn</c>) and ICMP errors and the path MTU (<c>.Icmp</c>).</item>
/// </list>
/// </remarks>
internal sealed partial class TcpConnection
{
    private readonly TcpSettings _settings;
    private readonly TcpEnvironment _env;
    private readonly ICongestionControl _cc;
    private readonly RttEstimator _rtt;
    private readonly SentSegmentQueue _sent = new();
    private readonly SackScoreboard _scoreboard;
    private readonly ReceiveAssembler _assembler;
    private readonly int _mtu;

    /// <summary>The send sequence space (RFC 9293 3.3.1): SND.UNA, SND.NXT, SND.WND and what goes with them.</summary>
    private SendSequence _snd;
    /// <summary>The receive sequence space (RFC 9293 3.3.1): RCV.NXT and the advertised edge.</summary>
    private ReceiveSequence _rcv;

    // ---- options (RFC 7323, RFC 2018) ----
    /// <summary>Shift we offer in our SYN (used only if the peer offers too).</summary>
    private readonly int _offeredRcvShift;
    /// <summary>MSS the peer announced (536 if it sent none, RFC 9293 3.7.1).</summary>
    private int _peerMss = 536;
    /// <summary>Payload bytes of a full segment we send (SMSS), after the timestamp option.</summary>
    private int _smss;
    private bool _wsOk, _tsOk, _sackOk;
    /// <summary>TS.Recent (RFC 7323 4.3): the peer's TSval to echo.</summary>
    private uint _tsRecent;
    private Instant _tsRecentAt;
    /// <summary>Last.ACK.sent (RFC 7323 4.3): RCV.NXT carried by our latest ACK.</summary>
    private SeqNumber _lastAckSent;
    private readonly uint _tsOffset;

    // ---- closing ----
    /// <summary>The application will send no more (CLOSE/shutdown); a FIN follows the queued data.</summary>
    private bool _finQueued;
    private bool _finSent;
    /// <summary>Sequence number of our FIN, valid once <see cref="_finQueued"/>.</summary>
    private SeqNumber _finSeq;
    /// <summary>The application will read no more: new data gets a reset (RFC 1122 4.2.2.13).</summary>
    private bool _receiveClosed;
    /// <summary>Sequence number of an out-of-order FIN waiting for the gap before it to fill.</summary>
    private SeqNumber? _pendingFinSeq;

    private TcpConnectionEvents _pendingEvents;
    private ITcpOutput? _out;
    private Instant _now;

    private TcpConnection(TcpTuple tuple, TcpSettings settings, TcpEnvironment env, int mtu, Instant now)
    {
        settings.Validate();
        Tuple = tuple;
        _settings = settings;
        _env = env;
        _mtu = mtu;
        _cc = settings.CreateCongestionControl();
        _rtt = new RttEstimator(settings.InitialRto, settings.MinRto, settings.MaxRto);
        SendBuffer = new ByteRing(settings.SendBufferSize) { Budget = env.Memory };
        ReceiveBuffer = new ByteRing(settings.ReceiveBufferSize) { Budget = env.Memory };
        _assembler = new ReceiveAssembler(ReceiveAssembler.RangesFor(settings.ReceiveBufferSize));
        _scoreboard = new SackScoreboard(SackScoreboard.RangesFor(settings.SendBufferSize));
        _loss = CreateLossRecovery(this, settings.Sack);
        NoDelay = settings.NoDelay;
        KeepaliveEnabled = settings.Keepalive;
        _snd.Iss = env.InitialSequenceNumber(tuple, now);
        _tsOffset = env.TimestampOffset(tuple);
        // RFC 7323 2.3: the smallest shift that lets the whole buffer be advertised, at most 14.
        int shift = 0;
        while (shift < 14 && (ReceiveBuffer.Capacity >> shift) > 65535) shift++;
        _offeredRcvShift = shift;
        _snd.Una = _snd.Iss;
        _snd.Nxt = _snd.Iss;
        _snd.Sml = _snd.Iss;
        _snd.BufferStart = _snd.Iss + 1;
        _smss = SegmentPayloadLimit(0);
        CreatedAt = now;
        _lastReceivedAt = now;
    }

    /// <summary>Starts an active open (RFC 9293 3.10.1 OPEN, active): SYN-SENT, the SYN goes out on <see cref="Poll"/>.</summary>
    public static TcpConnection Connect(TcpTuple tuple, TcpSettings settings, TcpEnvironment env, int mtu, Instant now)
    {
        var c = new TcpConnection(tuple, settings, env, mtu, now) { State = TcpConnectionState.SynSent };
        env.Statistics.ActiveOpens++;
        return c;
    }

    public TcpTuple Tuple { get; }

    public TcpConnectionState State { get; private set; } = TcpConnectionState.Closed;

    /// <summary>Why the connection failed, or <see cref="TcpError.None"/>.</summary>
    public TcpError Error { get; private set; }

    /// <summary>The listener that created this connection (passive open), until it is accepted or dies.</summary>
    public TcpListenQueue? Listener { get; internal set; }

    public ITcpConnectionObserver? Observer { get; set; }

    /// <summary>Application data waiting to be sent or acknowledged. The application produces, the stack consumes.</summary>
    public ByteRing SendBuffer { get; }

    /// <summary>Data received in order. The stack produces, the application consumes.</summary>
    public ByteRing ReceiveBuffer { get; }

    /// <summary>Nagle's algorithm (RFC 896) is off when true.</summary>
    public bool NoDelay { get; set; }

    /// <summary>RFC 1122 4.2.3.6 keepalives; takes effect at the next received segment or poll.</summary>
    public bool KeepaliveEnabled { get; set; }

    public Instant CreatedAt { get; }

    /// <summary>SRTT (RFC 6298), or null before the first RTT sample.</summary>
    public TimeSpan? SmoothedRtt => _rtt.HasSample ? TimeSpan.FromMicroseconds(_rtt.SmoothedUs) : null;

    /// <summary>The peer's FIN has been received: after the buffered data, the stream ends.</summary>
    public bool PeerFinReceived { get; private set; }

    /// <summary>True once the application may no longer send (FIN queued, reset or closed).</summary>
    public bool SendClosed => _finQueued || State == TcpConnectionState.Closed;

    /// <summary>The congestion controller's name.</summary>
    public string CongestionControlName => _cc.Name;

    public bool IsSynchronized => State is TcpConnectionState.Established or TcpConnectionState.FinWait1 or TcpConnectionState.FinWait2
        or TcpConnectionState.CloseWait or TcpConnectionState.Closing or TcpConnectionState.LastAck or TcpConnectionState.TimeWait;

    /// <summary>The sender state last given to <see cref="TcpSettings.EventTrace"/>; null before the first.</summary>
    private TcpTraceSample? _lastTraced;

    private void TraceIfChanged(ITcpEventTrace trace)
    {
        var sample = new TcpTraceSample(_now, Tuple, State, _loss.State switch
            {
                RecoveryState.FastRecovery => TcpRecoveryPhase.FastRecovery,
                RecoveryState.Loss => TcpRecoveryPhase.Loss,
                _ => TcpRecoveryPhase.Open,
            },
            _cc.CongestionWindow, _cc.SlowStartThreshold, _rtt.Rto, SmoothedRtt, _pipe,
            Retransmissions, RetransmissionTimeouts);
        if (_lastTraced is { } last && last.SameStateAs(sample)) return;
        _lastTraced = sample;
        trace.OnChange(sample);
    }

    /// <summary>A snapshot of live statistics.</summary>
    public TcpConnectionStatistics GetStatistics() => new(
        State, Error, TimeSpan.FromMicroseconds(_rtt.SmoothedUs), TimeSpan.FromMicroseconds(_rtt.VariationUs),
        _rtt.Rto, _cc.CongestionWindow, _cc.SlowStartThreshold, (int)Math.Min(_snd.Wnd, int.MaxValue),
        _rcv.AdvertisedEdge - _rcv.Nxt, _pipe, _smss, BytesSent, BytesReceived, SegmentsSent, SegmentsReceived,
        Retransmissions, RetransmissionTimeouts, FastRetransmits, _cc.Name, _wsOk, _tsOk, _sackOk,
        _rtt.HasSample ? TimeSpan.FromMicroseconds(_rtt.MinUs) : TimeSpan.Zero, _deliveryRateBps, _loss.ReorderingSeen, DsacksReceived);

    /// <summary>The congestion window, bytes.</summary>
    public int CongestionWindow => _cc.CongestionWindow;

    /// <summary>D-SACK blocks received (RFC 2883): the peer got something twice.</summary>
    public long DsacksReceived { get; private set; }

    // Delivery rate (what `ss -i` calls delivery_rate): bytes newly acknowledged over the last
    // interval of at least one smoothed RTT (1 ms at least), in bits per second.
    private long _delivered, _rateMarkDelivered, _deliveryRateBps;
    private Instant _rateMarkAt = Instant.Never;

    private void SampleDeliveryRate(int ackedBytes)
    {
        _delivered += ackedBytes;
        if (_rateMarkAt.IsNever)
        {
            _rateMarkAt = _now;
            _rateMarkDelivered = _delivered;
            return;
        }
        long elapsedUs = (_now - _rateMarkAt).Ticks / TimeSpan.TicksPerMicrosecond;
        if (elapsedUs < Math.Max(_rtt.HasSample ? _rtt.SmoothedUs : 0, 1000)) return;
        _deliveryRateBps = (_delivered - _rateMarkDelivered) * 8_000_000 / elapsedUs;
        _rateMarkAt = _now;
        _rateMarkDelivered = _delivered;
    }

    public long BytesSent { get; private set; }
    public long BytesReceived { get; private set; }
    public long SegmentsSent { get; private set; }
    public long SegmentsReceived { get; private set; }
    public long Retransmissions { get; private set; }
    public long RetransmissionTimeouts { get; private set; }
    public long FastRetransmits { get; private set; }

    /// <summary>Recovery episodes undone as spurious on this connection (RFC 3522, RFC 3708, RFC 5682).</summary>
    public long SpuriousRetransmissionsUndone { get; private set; }

    // ---- user calls (RFC 9293 3.10.2-3.10.5), on the stack thread ----

    /// <summary>
    /// The application queued data in <see cref="SendBuffer"/>: send what the windows allow.
    /// </summary>
    public void OnSendBufferWritten(Instant now, ITcpOutput output) => Run(now, output, static c => { });

    /// <summary>
    /// The application consumed from <see cref="ReceiveBuffer"/>: advertise a larger window if
    /// it grew enough to be worth an update (receiver SWS avoidance, RFC 9293 3.8.6.2.2).
    /// </summary>
    public void OnReceiveBufferRead(Instant now, ITcpOutput output) => Run(now, output, static c => c.MaybeSendWindowUpdate());

    /// <summary>
    /// Half-close (RFC 9293 3.10.4 CLOSE): no more data from us; a FIN follows what is queued.
    /// We keep receiving until the peer closes too.
    /// </summary>
    public void ShutdownSend(Instant now, ITcpOutput output) => Run(now, output, static c => c.QueueFin());

    /// <summary>
    /// Full close: no more sending and no more reading. RFC 1122 4.2.2.13: if unread data is
    /// pending, or data arrives later, the peer gets a reset to show that data was lost.
    /// </summary>
    public void Close(Instant now, ITcpOutput output) => Run(now, output, static c =>
    {
        c._receiveClosed = true;
        if (c.ReceiveBuffer.Count > 0 && c.IsSynchronizedOrSynReceived) { c.AbortWithReset(TcpError.Aborted); return; }
        c.QueueFin();
    });

    /// <summary>
    /// Checks the sender's and receiver's bookkeeping against itself (for tests that feed hostile
    /// or random input): SND.UNA &lt;= SND.NXT; the sent records are contiguous from SND.UNA to
    /// SND.NXT; the pipe, lost and SACKed counters equal what the records say; the receive ring and
    /// the out-of-order ranges stay within their bounds. Returns the first violation, or null.
    /// </summary>
    internal string? CheckInvariants()
    {
        if (_snd.Nxt < _snd.Una) return $"SND.NXT {_snd.Nxt} < SND.UNA {_snd.Una}";
        int pipe = 0, lost = 0, sacked = 0;
        for (int i = 0; i < _sent.Count; i++)
        {
            var rec = _sent[i];
            if (rec.End <= rec.Start) return $"empty record {rec.Start}-{rec.End}";
            if (i == 0 && rec.Start != _snd.Una) return $"first record starts at {rec.Start}, SND.UNA is {_snd.Una}";
            if (i > 0 && _sent[i - 1].End != rec.Start) return $"records not contiguous at {rec.Start}";
            if (rec.Has(SentFlags.InPipe)) pipe += rec.Length;
            if (rec.Has(SentFlags.Lost)) lost++;
            if (rec.Has(SentFlags.Sacked)) sacked++;
            if (rec.Has(SentFlags.Sacked) && (rec.Has(SentFlags.Lost) || rec.Has(SentFlags.InPipe))) return $"record {rec.Start} SACKed and {rec.Flags}";
        }
        if (_sent.Count > 0 && _sent.Last.End != _snd.Nxt) return $"last record ends at {_sent.Last.End}, SND.NXT is {_snd.Nxt}";
        if (pipe != _pipe) return $"pipe {_pipe}, records say {pipe}";
        if (lost != _lostCount) return $"lost count {_lostCount}, records say {lost}";
        if (sacked != _sackedCount) return $"SACKed count {_sackedCount}, records say {sacked}";
        if (ReceiveBuffer.Count > ReceiveBuffer.Capacity) return "receive ring over capacity";
        if (_assembler.RangeCount > _assembler.MaxRanges) return "too many out-of-order ranges";
        if (_scoreboard.Count > _scoreboard.MaxRanges) return "too many scoreboard ranges";
        return null;
    }

    /// <summary>RFC 9293 3.10.5 ABORT: a reset for synchronized states, then CLOSED.</summary>
    public void Abort(Instant now, ITcpOutput output) => Run(now, output, static c => c.AbortWithReset(TcpError.Aborted));

    /// <summary>Handles an arriving segment (RFC 9293 3.10.7), then sends whatever became due.</summary>
    /// <param name="transmit">
    /// False to process input only and leave sending (ACKs, data freed by the ACK) to a later
    /// <see cref="Flush"/>: the stack handles a whole batch of received packets first, so that a
    /// burst of segments gets one cumulative ACK at the end of the batch instead of one per two
    /// segments. The ACK is not delayed in time, only sent after the rest of the batch.
    /// </param>
    public TcpSegmentResult OnSegment(in TcpSegment segment, Instant now, ITcpOutput output, bool transmit = true)
    {
        _now = now;
        _out = output;
        var result = TcpSegmentResult.Processed;
        try
        {
            SegmentsReceived++;
            _lastReceivedAt = now;
            _keepaliveProbesSent = 0;
            switch (State)
            {
                case TcpConnectionState.SynSent: ProcessSynSent(segment); break;
                case TcpConnectionState.Closed: break;
                default: result = ProcessSynchronized(segment); break;
            }
            if (State != TcpConnectionState.Closed && transmit) Transmit();
        }
        finally
        {
            Finish();
        }
        return result;
    }

    /// <summary>Sends what became due since input was processed with <c>transmit: false</c>.</summary>
    public void Flush(Instant now, ITcpOutput output) => Run(now, output, static c => { });

    /// <summary>Runs due timers and sends what is due.</summary>
    public void Poll(Instant now, ITcpOutput output) => Run(now, output, static c => c.RunTimers());

    private void Run(Instant now, ITcpOutput output, Action<TcpConnection> action)
    {
        _now = now;
        _out = output;
        try
        {
            action(this);
            if (State != TcpConnectionState.Closed) Transmit();
        }
        finally
        {
            Finish();
        }
    }

    private void Finish()
    {
        _out = null;
        UpdateKeepaliveDeadline();
        if (_settings.EventTrace is { } trace) TraceIfChanged(trace);
        var events = _pendingEvents;
        _pendingEvents = TcpConnectionEvents.None;
        if (events == TcpConnectionEvents.None || Observer is not { } observer) return;
        // An application's observer that throws must not take the stack (and every other
        // connection) down with it: the engine's state is already complete here, so the fault is
        // reported and the stack goes on.
        try { observer.OnEvents(this, events); }
        catch (Exception e)
        {
            _env.Statistics.ObserverFaults++;
            _env.ObserverFailed?.Invoke(this, e);
        }
    }

    private bool IsSynchronizedOrSynReceived => State == TcpConnectionState.SynReceived || IsSynchronized;

    private void QueueFin()
    {
        switch (State)
        {
            case TcpConnectionState.SynSent:
                // RFC 9293 3.10.4: CLOSE in SYN-SENT deletes the TCB.
                Terminate(TcpError.None);
                return;
            case TcpConnectionState.SynReceived:
                // RFC 9293 3.10.4: "queue for processing after entering ESTABLISHED state". The
                // state stays SYN-RECEIVED so that the SYN-ACK is still retransmitted as a SYN-ACK;
                // EnterEstablished moves on to FIN-WAIT-1 and the FIN goes out then.
                SetFinQueued();
                return;
            case TcpConnectionState.Established:
                // RFC 9293 3.10.4: queue the FIN after the data; enter FIN-WAIT-1.
                SetFinQueued();
                SetState(TcpConnectionState.FinWait1);
                return;
            case TcpConnectionState.CloseWait:
                SetFinQueued();
                SetState(TcpConnectionState.LastAck);
                return;
            default:
                return; // already closing: RFC says "error: connection closing"; nothing to do
        }
    }

    private void SetFinQueued()
    {
        if (_finQueued) return;
        _finQueued = true;
        _finSeq = _snd.BufferStart + SendBuffer.Count;
    }

    private void AbortWithReset(TcpError error)
    {
        // RFC 9293 3.10.5: SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT send
        // <SEQ=SND.NXT><CTL=RST>; CLOSING, LAST-ACK and TIME-WAIT just delete the TCB (the peer
        // has closed already; Linux tcp_need_reset agrees).
        if (State is TcpConnectionState.SynReceived or TcpConnectionState.Established or TcpConnectionState.FinWait1 or TcpConnectionState.FinWait2 or TcpConnectionState.CloseWait)
            SendReset(_snd.Nxt);
        Terminate(error);
    }

    /// <summary>Enters CLOSED: no more segments, timers off, the owner removes the connection.</summary>
    private void Terminate(TcpError error)
    {
        if (State == TcpConnectionState.Closed) return;
        // RFC 5461 / RFC 1122 4.2.3.9: a timeout after a soft ICMP error reports that error (Linux
        // sk_err_soft), which says more than "timed out".
        if (Error == TcpError.None) Error = error == TcpError.TimedOut && _softError != TcpError.None ? _softError : error;
        bool wasSynchronized = IsSynchronized;
        SetState(TcpConnectionState.Closed);
        if (wasSynchronized) _env.Statistics.ConnectionsClosed++;
        if (error == TcpError.TimedOut) _env.Statistics.Timeouts++;
        _sent.Clear();
        _scoreboard.Clear();
        _pipe = 0;
        _sackedCount = 0;
        _lostCount = 0;
        _timers.ClearAll();
        _pendingEvents |= TcpConnectionEvents.Closed | TcpConnectionEvents.Readable | TcpConnectionEvents.Writable;
    }

    private void SetState(TcpConnectionState state)
    {
        if (State == state) return;
        var old = State;
        State = state;
        if (state == TcpConnectionState.Established && old is TcpConnectionState.SynSent or TcpConnectionState.SynReceived)
        {
            _env.Statistics.ConnectionsEstablished++;
            _pendingEvents |= TcpConnectionEvents.Established | TcpConnectionEvents.Writable;
        }
        // RFC 9293 3.10.7.4: FIN-WAIT-2 and TIME-WAIT are reached only once our FIN is acknowledged.
        if (state is TcpConnectionState.FinWait2 or TcpConnectionState.TimeWait && old is not (TcpConnectionState.FinWait2 or TcpConnectionState.TimeWait))
            _pendingEvents |= TcpConnectionEvents.SendCompleted;
        Listener?.OnStateChanged(this, old);
    }

    private void Raise(TcpConnectionEvents events) => _pendingEvents |= events;

    /// <summary>Our timestamp clock: milliseconds plus a per-connection offset (RFC 7323 5.4).</summary>
    private uint TsNow => unchecked((uint)(_now.Microseconds / 1000) + _tsOffset);

    public override string ToString() => $"{Tuple} {State}";
}

/// <summary>What the owner must do after <see cref="TcpConnection.OnSegment"/>.</summary>
internal enum TcpSegmentResult
{
    Processed,
    /// <summary>
    /// A SYN arrived in TIME-WAIT that may open a new incarnation (RFC 9293 3.10.7.4, RFC 6191):
    /// the connection has closed itself; hand the SYN to the listener.
    /// </summary>
    ReopenFromTimeWait,
}

/// <summary>A snapshot of one connection's state and counters.</summary>
public readonly record struct TcpConnectionStatistics(
    TcpConnectionState State, TcpError Error, TimeSpan SmoothedRtt, TimeSpan RttVariation, TimeSpan Rto,
    int CongestionWindow, int SlowStartThreshold, int PeerWindow, int AdvertisedWindow, int BytesInFlight, int Mss,
    long BytesSent, long BytesReceived, long SegmentsSent, long SegmentsReceived,
    long Retransmissions, long RetransmissionTimeouts, long FastRetransmits, string CongestionControl,
    bool WindowScaling, bool Timestamps, bool Sack,
    TimeSpan MinRtt = default, long DeliveryRateBitsPerSecond = 0, bool ReorderingSeen = false, long DsacksReceived = 0);
