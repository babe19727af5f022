namespace TunTcp.Tcp;

/// <summary>
/// Tunables of the TCP engine. A stack holds defaults; each connection takes a copy (use
/// <c>with</c> to override per connection). Defaults follow the RFCs, and Linux where they
/// leave a choice.
/// </summary>
public sealed record TcpSettings
{
    /// <summary>Send buffer (bytes the application may queue unacknowledged).</summary>
    public int SendBufferSize { get; init; } = 256 * 1024;

    /// <summary>Receive buffer: bounds the advertised window and the out-of-order data held.</summary>
    public int ReceiveBufferSize { get; init; } = 256 * 1024;

    /// <summary>Offer window scaling (RFC 7323 2).</summary>
    public bool WindowScaling { get; init; } = true;

    /// <summary>Offer timestamps (RFC 7323 3): RTT measurement and PAWS.</summary>
    public bool Timestamps { get; init; } = true;

    /// <summary>Offer SACK (RFC 2018).</summary>
    public bool Sack { get; init; } = true;

    /// <summary>
    /// Explicit Congestion Notification (RFC 3168): requested on our SYNs and accepted on a peer's.
    /// Once negotiated, new data goes out ECT(0) and a CE mark reduces the window as a loss would,
    /// without the loss. On by default (Linux's tcp_ecn=1 requests it too).
    /// </summary>
    public bool Ecn { get; init; } = true;

    /// <summary>Disable Nagle's algorithm (RFC 896), like TCP_NODELAY.</summary>
    public bool NoDelay { get; init; }

    /// <summary>
    /// Longest an ACK may be delayed (RFC 9293 3.8.6.3: under 0.5 s; Linux's minimum is 40 ms).
    /// Zero acknowledges every segment at once.
    /// </summary>
    public TimeSpan DelayedAckTimeout { get; init; } = TimeSpan.FromMilliseconds(40);

    /// <summary>RFC 6298 2.1: RTO before any RTT sample.</summary>
    public TimeSpan InitialRto { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>RFC 6298 2.4 asks for 1 s; Linux and most stacks use 200 ms.</summary>
    public TimeSpan MinRto { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>RFC 6298 2.5: an upper bound of at least 60 s; Linux uses 120 s.</summary>
    public TimeSpan MaxRto { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Consecutive retransmission timeouts of data before giving up (Linux tcp_retries2 = 15).</summary>
    public int MaxRetransmissions { get; init; } = 15;

    /// <summary>SYN or SYN-ACK retransmissions before giving up (Linux tcp_syn_retries = 6).</summary>
    public int MaxSynRetransmissions { get; init; } = 6;

    /// <summary>
    /// RFC 9293 3.8.3 / RFC 5482 user timeout: give up when data stays unacknowledged this long,
    /// whatever the retransmission count. Null: only <see cref="MaxRetransmissions"/> applies.
    /// </summary>
    public TimeSpan? UserTimeout { get; init; }

    /// <summary>Maximum segment lifetime; TIME-WAIT lasts 2 MSL (Linux: 60 s TIME-WAIT).</summary>
    public TimeSpan Msl { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>RFC 1122 4.2.3.6: keepalives are off unless asked for.</summary>
    public bool Keepalive { get; init; }

    /// <summary>Idle time before the first keepalive probe (RFC 1122: no less than two hours by default).</summary>
    public TimeSpan KeepaliveIdle { get; init; } = TimeSpan.FromHours(2);

    /// <summary>Time between unanswered keepalive probes (Linux: 75 s).</summary>
    public TimeSpan KeepaliveInterval { get; init; } = TimeSpan.FromSeconds(75);

    /// <summary>Unanswered keepalive probes before the connection is declared dead (Linux: 9).</summary>
    public int KeepaliveProbes { get; init; } = 9;

    /// <summary>RFC 6928 initial window, in segments.</summary>
    public int InitialWindowSegments { get; init; } = 10;

    /// <summary>The congestion control of each new connection (default CUBIC with HyStart++).</summary>
    public TcpCongestionControl CongestionControl { get; init; } = TcpCongestionControl.Cubic;

    /// <summary>Overrides <see cref="CongestionControl"/> with a controller of the engine's own (tests, simulations).</summary>
    internal Func<ICongestionControl>? CongestionControlFactory { get; init; }

    internal ICongestionControl CreateCongestionControl() =>
        CongestionControlFactory?.Invoke() ?? CongestionControl switch
        {
            TcpCongestionControl.NewReno => new NewRenoCongestionControl(),
            _ => new CubicCongestionControl(),
        };

    /// <summary>RACK-TLP loss detection (RFC 8985) when SACK is negotiated; off: duplicate-ACK threshold (RFC 6675).</summary>
    public bool Rack { get; init; } = true;

    /// <summary>F-RTO detection of spurious retransmission timeouts (RFC 5682).</summary>
    public bool Frto { get; init; } = true;

    /// <summary>Undo a spurious fast retransmit found by timestamps or D-SACK (RFC 3522, RFC 3708, RFC 4015).</summary>
    public bool UndoSpuriousRetransmissions { get; init; } = true;

    /// <summary>RFC 5681 / RFC 6675 DupThresh.</summary>
    public int DuplicateAckThreshold { get; init; } = 3;

    /// <summary>Half-open (SYN-RECEIVED) connections a listener holds; further SYNs get SYN cookies, or are dropped without them.</summary>
    public int SynBacklog { get; init; } = 256;

    /// <summary>
    /// SYN cookies (RFC 4987 3.6, as Linux's tcp_syncookies=1): once a listener's half-open queue
    /// is full, SYNs are answered statelessly, with the connection's state encoded in the ISN (and,
    /// with timestamps, the window scale, SACK and ECN in the TSval) and rebuilt from the ACK.
    /// </summary>
    public bool SynCookies { get; init; } = true;

    /// <summary>
    /// At most one ACK per this interval answers unacceptable segments that carry no data or FIN
    /// (out of window, or dropped by PAWS), as Linux's tcp_invalid_ratelimit (500 ms): two ends
    /// that disagree about the sequence space cannot ping-pong ACKs. Zero answers every one.
    /// </summary>
    public TimeSpan OutOfWindowAckInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Persist (zero-window probe) interval cap; probes back off up to it.</summary>
    public TimeSpan MaxPersistInterval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Receives every connection's sender state (cwnd, ssthresh, RTO, SRTT, state) when it
    /// changes; null (the default) records nothing.
    /// </summary>
    internal ITcpEventTrace? EventTrace { get; init; }

    internal void Validate()
    {
        if (SendBufferSize < 1024 || ReceiveBufferSize < 1024) throw new ArgumentOutOfRangeException(nameof(SendBufferSize), "buffers must hold at least 1024 bytes");
        if (SendBufferSize > 1 << 30 || ReceiveBufferSize > 1 << 30) throw new ArgumentOutOfRangeException(nameof(SendBufferSize), "buffers are limited to 1 GiB");
        if (MinRto <= TimeSpan.Zero || MaxRto < MinRto || InitialRto <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MinRto), "need 0 < MinRto <= MaxRto and InitialRto > 0");
        if (DelayedAckTimeout < TimeSpan.Zero || DelayedAckTimeout >= TimeSpan.FromMilliseconds(500)) throw new ArgumentOutOfRangeException(nameof(DelayedAckTimeout), "RFC 9293 3.8.6.3: the delay must be under 0.5 s");
        if (MaxRetransmissions < 1 || MaxSynRetransmissions < 0) throw new ArgumentOutOfRangeException(nameof(MaxRetransmissions));
        if (SynBacklog < 1) throw new ArgumentOutOfRangeException(nameof(SynBacklog));
        if (OutOfWindowAckInterval < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(OutOfWindowAckInterval), "must not be negative");
        if (InitialWindowSegments < 1) throw new ArgumentOutOfRangeException(nameof(InitialWindowSegments));
    }
}

/// <summary>The congestion control algorithms a connection can use.</summary>
public enum TcpCongestionControl
{
    /// <summary>CUBIC (RFC 9438) with HyStart++ (RFC 9406) slow start.</summary>
    Cubic,

    /// <summary>NewReno (RFC 5681, RFC 6582).</summary>
    NewReno,
}
