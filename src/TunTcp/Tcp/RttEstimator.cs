namespace TunTcp.Tcp;

/// <summary>
/// Round-trip time estimation and the retransmission timeout of RFC 6298, in microseconds.
/// </summary>
internal sealed class RttEstimator
{
    // RFC 6298 2: clock granularity G; our clock is microseconds, timestamps milliseconds.
    private const long GranularityUs = 1000;

    private readonly long _minRtoUs, _maxRtoUs;
    private long _rtoUs;

    public RttEstimator(TimeSpan initialRto, TimeSpan minRto, TimeSpan maxRto)
    {
        _minRtoUs = ToUs(minRto);
        _maxRtoUs = ToUs(maxRto);
        // RFC 6298 2.1: until a measurement is made, RTO = 1 s (configurable here).
        _rtoUs = Math.Clamp(ToUs(initialRto), _minRtoUs, _maxRtoUs);
    }

    /// <summary>SRTT in microseconds (0 before the first sample).</summary>
    public long SmoothedUs { get; private set; }

    /// <summary>RTTVAR in microseconds.</summary>
    public long VariationUs { get; private set; }

    /// <summary>The smallest sample seen (for RACK and HyStart), or long.MaxValue.</summary>
    public long MinUs { get; private set; } = long.MaxValue;

    /// <summary>The latest sample.</summary>
    public long LatestUs { get; private set; }

    public bool HasSample { get; private set; }

    /// <summary>Times the timer was backed off since the last forward progress (RFC 6298 5.5).</summary>
    public int Backoff { get; private set; }

    /// <summary>The RTO with backoff applied, bounded by the maximum.</summary>
    public TimeSpan Rto => TimeSpan.FromMicroseconds(CurrentRtoUs);

    public long CurrentRtoUs => Math.Min(_maxRtoUs, Backoff >= 30 ? _maxRtoUs : _rtoUs << Backoff);

    /// <summary>The RTO without backoff.</summary>
    public long BaseRtoUs => _rtoUs;

    /// <summary>Folds in one measurement R (RFC 6298 2.2 and 2.3, alpha = 1/8, beta = 1/4).</summary>
    public void AddSample(long rttUs)
    {
        if (rttUs < 0) return;
        if (rttUs == 0) rttUs = 1;
        LatestUs = rttUs;
        MinUs = Math.Min(MinUs, rttUs);
        if (!HasSample)
        {
            // 2.2: SRTT <- R, RTTVAR <- R/2
            SmoothedUs = rttUs;
            VariationUs = rttUs / 2;
            HasSample = true;
        }
        else
        {
            // 2.3: RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|; SRTT <- (1 - alpha) * SRTT + alpha * R'
            VariationUs = (3 * VariationUs + Math.Abs(SmoothedUs - rttUs)) / 4;
            SmoothedUs = (7 * SmoothedUs + rttUs) / 8;
        }
        // RFC 6298 2.3: RTO <- SRTT + max(G, K*RTTVAR), K = 4, bounded by 2.4 and 2.5. Deviation,
        // as Linux (tcp_set_rto): the variance term is at least the minimum RTO, so the timer
        // keeps a full minimum-RTO margin above the RTT. With a plain 200 ms floor, a 100 ms path
        // whose queue adds another 100 ms times out while repairs are still in flight.
        _rtoUs = Math.Clamp(SmoothedUs + Math.Max(GranularityUs, Math.Max(4 * VariationUs, _minRtoUs)), _minRtoUs, _maxRtoUs);
    }

    /// <summary>RFC 6298 5.5: RTO &lt;- RTO * 2 ("back off the timer").</summary>
    public void BackOff() { if (CurrentRtoUs < _maxRtoUs) Backoff++; }

    /// <summary>Forward progress: an ACK for new data ends the backoff.</summary>
    public void ResetBackoff() => Backoff = 0;

    /// <summary>
    /// RFC 6298 5.7: if the SYN or SYN-ACK timer expired and no RTT was measured, RTO is
    /// re-initialised to 3 s when data transmission begins.
    /// </summary>
    public void ReinitializeAfterSynTimeout()
    {
        if (HasSample) return;
        _rtoUs = Math.Clamp(3_000_000, _minRtoUs, _maxRtoUs);
    }

    private static long ToUs(TimeSpan t) => t.Ticks / TimeSpan.TicksPerMicrosecond;
}
