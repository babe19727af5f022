namespace TunTcp.Tcp;

/// <summary>One acknowledgement as the congestion controller sees it.</summary>
/// <param name="BytesAcked">Bytes newly cumulatively acknowledged (or SACKed during recovery).</param>
/// <param name="BytesInFlight">Bytes outstanding before this ACK.</param>
/// <param name="Mss">Sender maximum segment size (SMSS).</param>
/// <param name="Now">The current instant.</param>
/// <param name="RttUs">RTT sample carried by this ACK in microseconds, or -1.</param>
/// <param name="MinRttUs">Smallest RTT seen on the connection, or -1.</param>
/// <param name="IsAppLimited">The sender had less data than the window allowed.</param>
/// <param name="RoundStarted">This ACK ended a round trip (it acknowledged what was in flight when the previous round began; RFC 9406 windowEnd).</param>
internal readonly record struct AckEvent(int BytesAcked, int BytesInFlight, int Mss, Instant Now, long RttUs, long MinRttUs, bool IsAppLimited, bool RoundStarted = false);

/// <summary>
/// The congestion controller the sender consults (RFC 5681 and successors). The sender owns
/// loss detection and recovery; the controller owns cwnd and ssthresh and how they react.
/// </summary>
internal interface ICongestionControl
{
    /// <summary>A short name ("newreno", "cubic") for statistics and options.</summary>
    string Name { get; }

    /// <summary>cwnd in bytes.</summary>
    int CongestionWindow { get; }

    /// <summary>ssthresh in bytes (int.MaxValue until the first congestion event).</summary>
    int SlowStartThreshold { get; }

    bool InSlowStart => CongestionWindow < SlowStartThreshold;

    /// <summary>The handshake completed: set the initial window (RFC 5681 3.1, RFC 6928).</summary>
    void Initialize(int mss, int initialWindowSegments, Instant now);

    /// <summary>Cumulative ACK of new data outside recovery: grow the window.</summary>
    void OnAck(in AckEvent ack);

    /// <summary>
    /// Loss detected by duplicate ACKs, SACK or RACK (entering fast recovery): RFC 5681 3.2
    /// step 2 sets ssthresh; cwnd follows the controller's own reduction.
    /// </summary>
    void OnCongestionEvent(int bytesInFlight, int mss, Instant now);

    /// <summary>Fast recovery ended (the recovery point was acknowledged).</summary>
    void OnRecoveryEnd(int mss, Instant now);

    /// <summary>
    /// RFC 5681 3.1: the retransmission timer expired; cwnd drops to the loss window. When
    /// <paramref name="alreadyReduced"/> (the timeout hit a recovery episode whose congestion
    /// response was already taken), ssthresh is kept, as Linux does (tcp_enter_loss).
    /// </summary>
    void OnRetransmissionTimeout(int bytesInFlight, int mss, Instant now, bool alreadyReduced);

    /// <summary>RFC 5681 4.1: the connection was idle longer than an RTO; restart window.</summary>
    void OnIdleRestart(int mss, int initialWindowSegments, Instant now);

    /// <summary>
    /// The last congestion event was spurious (F-RTO, D-SACK, Eifel): restore the state saved
    /// before it (RFC 5682, RFC 3522, RFC 4015).
    /// </summary>
    void Undo();
}

/// <summary>
/// Slow start and congestion avoidance of RFC 5681, with appropriate byte counting (RFC 3465)
/// for congestion avoidance; the NewReno reduction of RFC 6582 on loss.
/// </summary>
internal sealed class NewRenoCongestionControl : ICongestionControl
{
    private int _cwnd;
    private int _ssthresh = int.MaxValue;
    private int _bytesAckedInAvoidance;
    private int _savedCwnd, _savedSsthresh;

    public string Name => "newreno";
    public int CongestionWindow => _cwnd;
    public int SlowStartThreshold => _ssthresh;

    public void Initialize(int mss, int initialWindowSegments, Instant now)
    {
        _cwnd = InitialWindow(mss, initialWindowSegments);
    }

    /// <summary>RFC 6928 2: IW = min(10*MSS, max(2*MSS, 14600)) for 10 segments; RFC 5681 3.1 otherwise.</summary>
    internal static int InitialWindow(int mss, int segments) =>
        segments >= 10 ? Math.Min(segments * mss, Math.Max(2 * mss, 14600)) : segments * mss;

    public void OnAck(in AckEvent ack)
    {
        if (ack.IsAppLimited && _cwnd > ack.BytesInFlight + ack.Mss) return; // RFC 7661: don't grow an unused window
        if (_cwnd < _ssthresh)
        {
            // RFC 5681 3.1 (3.2 with RFC 3465 L=1): cwnd += min(N, SMSS).
            _cwnd += Math.Min(ack.BytesAcked, ack.Mss);
        }
        else
        {
            // RFC 5681 3.1 congestion avoidance with byte counting: one SMSS per cwnd acknowledged.
            _bytesAckedInAvoidance += ack.BytesAcked;
            if (_bytesAckedInAvoidance >= _cwnd)
            {
                _bytesAckedInAvoidance -= _cwnd;
                _cwnd += ack.Mss;
            }
        }
    }

    public void OnCongestionEvent(int bytesInFlight, int mss, Instant now)
    {
        Save();
        // RFC 5681 (4): ssthresh = max(FlightSize / 2, 2*SMSS); RFC 6582: cwnd = ssthresh on exit.
        _ssthresh = Math.Max(bytesInFlight / 2, 2 * mss);
        _cwnd = _ssthresh;
        _bytesAckedInAvoidance = 0;
    }

    public void OnRecoveryEnd(int mss, Instant now)
    {
        // RFC 6582 3.2 step 3: deflate to ssthresh (here cwnd already equals it unless grown).
        _cwnd = Math.Max(Math.Min(_cwnd, _ssthresh), mss);
    }

    public void OnRetransmissionTimeout(int bytesInFlight, int mss, Instant now, bool alreadyReduced)
    {
        Save();
        // RFC 5681 (4) and 3.1: ssthresh = max(FlightSize/2, 2*SMSS); cwnd = LW = 1 SMSS.
        if (!alreadyReduced) _ssthresh = Math.Max(bytesInFlight / 2, 2 * mss);
        _cwnd = mss;
        _bytesAckedInAvoidance = 0;
    }

    public void OnIdleRestart(int mss, int initialWindowSegments, Instant now)
    {
        // RFC 5681 4.1: cwnd = min(RW, cwnd) with RW = IW.
        _cwnd = Math.Min(_cwnd, InitialWindow(mss, initialWindowSegments));
    }

    public void Undo()
    {
        if (_savedCwnd == 0) return;
        _cwnd = Math.Max(_cwnd, _savedCwnd);
        _ssthresh = Math.Max(_ssthresh, _savedSsthresh);
        _savedCwnd = 0;
    }

    private void Save()
    {
        _savedCwnd = _cwnd;
        _savedSsthresh = _ssthresh;
    }
}
