namespace TunTcp.Tcp;

/// <summary>
/// CUBIC (RFC 9438) with HyStart++ (RFC 9406) in slow start. Windows are kept in bytes; the
/// cubic function works in segments as the RFC writes it.
/// </summary>
internal sealed class CubicCongestionControl : ICongestionControl
{
    // RFC 9438 4.1 / 5: C = 0.4, beta_cubic = 0.7.
    private const double C = 0.4;
    private const double Beta = 0.7;
    // RFC 9438 4.3: alpha_cubic = 3 (1 - beta) / (1 + beta) for the Reno-friendly estimate.
    private const double AlphaCubic = 3 * (1 - Beta) / (1 + Beta);

    // RFC 9406 4.3 constants.
    private const int MinRttThresholdUs = 4_000, MaxRttThresholdUs = 16_000, MinRttDivisor = 8;
    private const int NRttSample = 8, CssGrowthDivisor = 4, CssRounds = 5;

    private readonly bool _hystart;
    private int _mss = 1460;
    private double _cwnd;        // bytes
    private double _ssthresh = int.MaxValue;
    private double _wMax;        // segments, W_max
    private double _cwndPrior;   // segments, cwnd_prior: cwnd when ssthresh was last set
    /// <summary>RFC 9438 4.8: the first congestion-avoidance stage after a timeout starts with K = 0 and W_max = cwnd.</summary>
    private bool _afterTimeout;
    private double _k;           // seconds
    private Instant _epochStart = Instant.Never;
    private double _wEst;        // segments, Reno-friendly estimate W_est
    private double _cwndAtEpoch; // segments
    private double _savedCwnd, _savedSsthresh, _savedWMax, _savedCwndPrior;
    private bool _savedAfterTimeout;

    // HyStart++ state (RFC 9406 4.2).
    private long _lastRoundMinRttUs = long.MaxValue, _currentRoundMinRttUs = long.MaxValue;
    private int _rttSampleCount;
    private bool _inCss;
    private long _cssBaselineMinRttUs = long.MaxValue;
    private int _cssRoundCount;

    public CubicCongestionControl(bool hystart = true) => _hystart = hystart;

    public string Name => "cubic";
    public int CongestionWindow => (int)Math.Min(int.MaxValue, _cwnd);
    public int SlowStartThreshold => (int)Math.Min(int.MaxValue, _ssthresh);

    public void Initialize(int mss, int initialWindowSegments, Instant now)
    {
        _mss = mss;
        _cwnd = NewRenoCongestionControl.InitialWindow(mss, initialWindowSegments);
    }

    public void OnAck(in AckEvent ack)
    {
        _mss = ack.Mss;
        if (ack.IsAppLimited && _cwnd > ack.BytesInFlight + ack.Mss) return; // RFC 9438 4.9 / RFC 7661
        if (_cwnd < _ssthresh)
        {
            SlowStart(ack);
            return;
        }
        CongestionAvoidance(ack);
    }

    private void SlowStart(in AckEvent ack)
    {
        // RFC 9406 4.3: "An implementation SHOULD use HyStart++ only for the initial slow start
        // (when the ssthresh is at its initial value of arbitrarily high ...) and fall back to using
        // standard slow start for the remainder of the connection lifetime."
        if (!_hystart || _ssthresh < int.MaxValue)
        {
            _cwnd += Math.Min(ack.BytesAcked, ack.Mss);
            return;
        }
        // RFC 9406 4.2: rounds begin when windowEnd is acknowledged.
        if (ack.RoundStarted)
        {
            _lastRoundMinRttUs = _currentRoundMinRttUs;
            _currentRoundMinRttUs = long.MaxValue;
            _rttSampleCount = 0;
            if (_inCss && ++_cssRoundCount >= CssRounds)
            {
                // CSS lasted CSS_ROUNDS rounds: enter congestion avoidance. RFC 9438 4.3's
                // cwnd_prior is cwnd "upon exiting the first slow start".
                _ssthresh = _cwnd;
                _cwndPrior = _cwnd / _mss;
                _inCss = false;
                return;
            }
        }
        if (ack.RttUs >= 0)
        {
            _currentRoundMinRttUs = Math.Min(_currentRoundMinRttUs, ack.RttUs);
            _rttSampleCount++;
        }
        int growth = Math.Min(ack.BytesAcked, ack.Mss);
        if (_inCss)
        {
            _cwnd += growth / (double)CssGrowthDivisor;
            // A lower RTT than the baseline: the increase was spurious; back to slow start.
            if (_rttSampleCount >= NRttSample && _currentRoundMinRttUs < _cssBaselineMinRttUs)
            {
                _inCss = false;
                _cssBaselineMinRttUs = long.MaxValue;
            }
            return;
        }
        _cwnd += growth;
        if (_rttSampleCount >= NRttSample && _lastRoundMinRttUs != long.MaxValue && _currentRoundMinRttUs != long.MaxValue)
        {
            long threshold = Math.Clamp(_lastRoundMinRttUs / MinRttDivisor, MinRttThresholdUs, MaxRttThresholdUs);
            if (_currentRoundMinRttUs >= _lastRoundMinRttUs + threshold)
            {
                // The RTT rose by more than the threshold: the queue is building; enter CSS.
                _inCss = true;
                _cssBaselineMinRttUs = _currentRoundMinRttUs;
                _cssRoundCount = 0;
            }
        }
    }

    private void CongestionAvoidance(in AckEvent ack)
    {
        double cwndSegments = _cwnd / _mss;
        if (_epochStart.IsNever)
        {
            // RFC 9438 4.2: a new epoch begins with the first ACK in congestion avoidance.
            _epochStart = ack.Now;
            _cwndAtEpoch = cwndSegments;
            _wEst = cwndSegments;
            if (_wMax <= cwndSegments || _afterTimeout)
            {
                // RFC 9438 4.8: "During the first congestion avoidance stage after a timeout ... K
                // is set to 0, and W_max is set to the congestion window size at the beginning of
                // the current congestion avoidance stage" (as when cwnd is already above W_max).
                _k = 0;
                _wMax = cwndSegments;
                _afterTimeout = false;
            }
            else
            {
                _k = Math.Cbrt((_wMax - cwndSegments) / C);
            }
        }
        double rtt = ack.MinRttUs > 0 ? ack.MinRttUs / 1e6 : 0.1;
        double t = (ack.Now - _epochStart).TotalSeconds;
        // 4.2: target = W_cubic(t + RTT), bounded to [cwnd, 1.5 cwnd].
        double target = WCubic(t + rtt);
        target = Math.Clamp(target, cwndSegments, 1.5 * cwndSegments);
        double segmentsAcked = ack.BytesAcked / (double)_mss;
        // 4.3: the Reno-friendly region. "Once W_est has grown to reach the cwnd at the time of most
        // recently setting ssthresh -- that is, W_est >= cwnd_prior -- the sender SHOULD set
        // alpha_cubic to 1" so that CUBIC grows at least as fast as Reno's AIMD(1, 0.5). That is
        // cwnd_prior, not W_max, which fast convergence (4.7) puts below it.
        double alpha = _wEst >= _cwndPrior ? 1.0 : AlphaCubic;
        _wEst += alpha * segmentsAcked / cwndSegments;
        double next;
        if (WCubic(t) < _wEst)
            next = _wEst; // 4.3: in the Reno-friendly region cwnd is set to W_est on each ACK
        else
            next = cwndSegments + (target - cwndSegments) * segmentsAcked / cwndSegments; // 4.4, 4.5: (target - cwnd) / cwnd per segment
        _cwnd = Math.Max(_cwnd, next * _mss);
    }

    private double WCubic(double t) => C * Math.Pow(t - _k, 3) + _wMax;

    public void OnCongestionEvent(int bytesInFlight, int mss, Instant now)
    {
        Save();
        _mss = mss;
        double cwndSegments = _cwnd / mss;
        // RFC 9438 4.7 fast convergence.
        _wMax = cwndSegments < _wMax ? cwndSegments * (1 + Beta) / 2 : cwndSegments;
        _cwndPrior = cwndSegments;
        _afterTimeout = false;
        // 4.6: ssthresh = cwnd * beta; cwnd = max(ssthresh, 2 SMSS).
        _ssthresh = Math.Max(_cwnd * Beta, 2.0 * mss);
        _cwnd = _ssthresh;
        _epochStart = Instant.Never;
        _inCss = false;
    }

    public void OnRecoveryEnd(int mss, Instant now)
    {
        _cwnd = Math.Max(Math.Min(_cwnd, _ssthresh), mss);
    }

    public void OnRetransmissionTimeout(int bytesInFlight, int mss, Instant now, bool alreadyReduced)
    {
        Save();
        _mss = mss;
        double cwndSegments = _cwnd / mss;
        // RFC 9438 4.8: as a congestion event, then cwnd = 1 SMSS (loss window) and a new epoch later.
        if (!alreadyReduced)
        {
            _wMax = cwndSegments < _wMax ? cwndSegments * (1 + Beta) / 2 : cwndSegments;
            _cwndPrior = cwndSegments;
            _ssthresh = Math.Max(_cwnd * Beta, 2.0 * mss);
        }
        _afterTimeout = true;
        _cwnd = mss;
        _epochStart = Instant.Never;
        _inCss = false;
        _lastRoundMinRttUs = _currentRoundMinRttUs = long.MaxValue;
    }

    public void OnIdleRestart(int mss, int initialWindowSegments, Instant now)
    {
        _cwnd = Math.Min(_cwnd, NewRenoCongestionControl.InitialWindow(mss, initialWindowSegments));
        // RFC 9438 5.8: the epoch restarts so that the idle time does not inflate W_cubic(t).
        _epochStart = Instant.Never;
    }

    public void Undo()
    {
        if (_savedCwnd == 0) return;
        _cwnd = Math.Max(_cwnd, _savedCwnd);
        _ssthresh = Math.Max(_ssthresh, _savedSsthresh);
        _wMax = _savedWMax;
        _cwndPrior = _savedCwndPrior;
        _afterTimeout = _savedAfterTimeout;
        _epochStart = Instant.Never;
        _savedCwnd = 0;
    }

    private void Save()
    {
        _savedCwnd = _cwnd;
        _savedSsthresh = _ssthresh;
        _savedWMax = _wMax;
        _savedCwndPrior = _cwndPrior;
        _savedAfterTimeout = _afterTimeout;
    }
}
