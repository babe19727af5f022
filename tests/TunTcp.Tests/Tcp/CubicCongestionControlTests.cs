using TunTcp.Tcp;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// Unit tests for <see cref="CubicCongestionControl"/>: CUBIC (RFC 9438) and HyStart++ (RFC 9406),
/// driven directly with chosen ACK events and instants. Windows are compared in segments against
/// the RFC formulas computed here.
/// </summary>
public class CubicCongestionControlTests
{
    private const int M = 1448;
    private const double C = 0.4, Beta = 0.7;
    private static readonly double AlphaCubic = 3 * (1 - Beta) / (1 + Beta);
    private const long RttUs = 100_000;
    private const double Rtt = 0.1;
    private static readonly Instant T0 = Instant.FromMilliseconds(1000);

    private static AckEvent Ack(Instant now, double segments, double inFlightSegments, bool appLimited = false, long rttUs = -1, bool round = false) =>
        new((int)Math.Round(segments * M), (int)Math.Round(inFlightSegments * M), M, now, rttUs, RttUs, appLimited, round);

    private static double Segments(ICongestionControl cc) => cc.CongestionWindow / (double)M;

    /// <summary>Grows cwnd in slow start (one SMSS per ACK) to <paramref name="segments"/>.</summary>
    private static void SlowStartTo(CubicCongestionControl cc, int segments, Instant now)
    {
        while (cc.CongestionWindow < segments * M) cc.OnAck(Ack(now, 1, Segments(cc)));
        Assert.Equal(segments * M, cc.CongestionWindow);
    }

    /// <summary>A controller (no HyStart++) that saw a loss at cwnd = <paramref name="wMax"/> segments.</summary>
    private static CubicCongestionControl AfterLossAt(int wMax)
    {
        var cc = new CubicCongestionControl(hystart: false);
        cc.Initialize(M, 10, T0);
        SlowStartTo(cc, wMax, T0);
        cc.OnCongestionEvent(cc.CongestionWindow, M, T0);
        return cc;
    }

    /// <summary>Starts the congestion-avoidance epoch at <paramref name="now"/> with an ACK that grows nothing.</summary>
    private static void StartEpoch(CubicCongestionControl cc, Instant now) => cc.OnAck(Ack(now, 0, Segments(cc)));

    /// <summary>One ACK for a whole window: per RFC 9438 4.4/4.5, cwnd += (target - cwnd) / cwnd per segment, so cwnd becomes target.</summary>
    private static void AckWholeWindow(CubicCongestionControl cc, Instant now) => cc.OnAck(Ack(now, Segments(cc), Segments(cc)));

    private static double WCubic(double t, double wMax, double k) => C * Math.Pow(t - k, 3) + wMax;

    private static void AssertSegments(double expected, ICongestionControl cc, double tolerance = 2.0 / M) =>
        Assert.InRange(Segments(cc), expected - tolerance, expected + tolerance);

    // ---- multiplicative decrease (RFC 9438 4.6) ----

    // RFC 9438 4.6: "ssthresh = cwnd * beta_cubic; cwnd = max(ssthresh, 2)" with beta_cubic = 0.7.
    [Fact]
    public void Cubic_Loss_MultiplicativeDecreaseToSevenTenths_Rfc9438_4_6()
    {
        var cc = AfterLossAt(100);
        Assert.Equal(70 * M, cc.CongestionWindow);
        Assert.Equal(70 * M, cc.SlowStartThreshold);
        Assert.False(((ICongestionControl)cc).InSlowStart);
        Assert.Equal("cubic", cc.Name);
    }

    // RFC 9438 4.6: cwnd never below 2 segments after a loss.
    [Fact]
    public void Cubic_Loss_AtLeastTwoSegments_Rfc9438_4_6()
    {
        var cc = new CubicCongestionControl(hystart: false);
        cc.Initialize(M, 2, T0);
        cc.OnCongestionEvent(2 * M, M, T0);
        Assert.Equal(2 * M, cc.CongestionWindow);
    }

    // ---- the cubic window (RFC 9438 4.2) ----

    // RFC 9438 4.2: W_cubic(t) = C (t - K)^3 + W_max, K = cbrt((W_max - cwnd_epoch) / C) (Figure 2;
    // with cwnd_epoch = beta W_max that is cbrt(W_max (1 - beta) / C)); the target for the next RTT
    // is W_cubic(t + RTT). One ACK for the whole window moves cwnd to the target: concave below K,
    // W_max at K, convex beyond.
    [Theory]
    [InlineData(1.0)]
    [InlineData(2.5)]
    [InlineData(4.0)]
    [InlineData(5.0)]
    [InlineData(6.0)]
    public void Cubic_WindowFollowsCubicFunction_Rfc9438_4_2(double t)
    {
        var cc = AfterLossAt(100);
        double k = Math.Cbrt(100 * (1 - Beta) / C);
        StartEpoch(cc, T0);
        Assert.Equal(70 * M, cc.CongestionWindow);
        AckWholeWindow(cc, T0 + TimeSpan.FromSeconds(t));
        AssertSegments(WCubic(t + Rtt, 100, k), cc);
    }

    // RFC 9438 4.2: at t = K - RTT the target is W_cubic(K) = W_max exactly.
    [Fact]
    public void Cubic_AtK_WindowReachesWmax_Rfc9438_4_2()
    {
        var cc = AfterLossAt(100);
        double k = Math.Cbrt(75);
        StartEpoch(cc, T0);
        AckWholeWindow(cc, T0 + TimeSpan.FromSeconds(k - Rtt));
        AssertSegments(100, cc);
    }

    // RFC 9438 4.2: "target = 1.5 * cwnd" when W_cubic(t + RTT) is larger: cwnd grows at most by
    // half per RTT, however far the cubic function has run.
    [Fact]
    public void Cubic_TargetClampedToOneAndAHalfCwnd_Rfc9438_4_2()
    {
        var cc = AfterLossAt(100);
        StartEpoch(cc, T0);
        AckWholeWindow(cc, T0 + TimeSpan.FromSeconds(20));
        AssertSegments(105, cc);
        AckWholeWindow(cc, T0 + TimeSpan.FromSeconds(20));
        AssertSegments(157.5, cc);
    }

    // RFC 9438 4.4/4.5: per ACK, cwnd grows by (target - cwnd) / cwnd per segment acknowledged.
    [Fact]
    public void Cubic_PerAckGrowth_TargetMinusCwndOverCwnd_Rfc9438_4_4()
    {
        var cc = AfterLossAt(100);
        double k = Math.Cbrt(75);
        StartEpoch(cc, T0);
        cc.OnAck(Ack(T0 + TimeSpan.FromSeconds(2), 1, 70));
        double target = WCubic(2 + Rtt, 100, k);
        AssertSegments(70 + (target - 70) / 70, cc);
    }

    // ---- fast convergence (RFC 9438 4.7) ----

    // RFC 9438 4.7: a loss below the previous W_max means other flows took bandwidth: "W_max =
    // cwnd * (1 + beta_cubic) / 2" so that the window stays away from the old plateau. At the new
    // K the window reaches that reduced W_max (0.85 cwnd at the loss), not cwnd.
    [Fact]
    public void Cubic_FastConvergence_WmaxReducedBelowPreviousOne_Rfc9438_4_7()
    {
        var cc = AfterLossAt(100);
        StartEpoch(cc, T0);
        AckWholeWindow(cc, T0 + TimeSpan.FromSeconds(1)); // about 87.9 segments, below W_max = 100
        double atLoss = Segments(cc);
        var t1 = T0 + TimeSpan.FromSeconds(2);
        cc.OnCongestionEvent(cc.CongestionWindow, M, t1);
        AssertSegments(atLoss * Beta, cc);
        double wMax = atLoss * (1 + Beta) / 2;
        double k = Math.Cbrt((wMax - atLoss * Beta) / C);
        StartEpoch(cc, t1);
        AckWholeWindow(cc, t1 + TimeSpan.FromSeconds(k - Rtt));
        AssertSegments(wMax, cc, 4.0 / M);
    }

    // RFC 9438 4.7: a loss at or above W_max keeps W_max = cwnd: the window climbs back to it.
    [Fact]
    public void Cubic_LossAboveWmax_NoFastConvergence_Rfc9438_4_7()
    {
        var cc = AfterLossAt(100);
        StartEpoch(cc, T0);
        AckWholeWindow(cc, T0 + TimeSpan.FromSeconds(20)); // 105 segments
        var t1 = T0 + TimeSpan.FromSeconds(21);
        cc.OnCongestionEvent(cc.CongestionWindow, M, t1);
        double k = Math.Cbrt(105 * (1 - Beta) / C);
        StartEpoch(cc, t1);
        AckWholeWindow(cc, t1 + TimeSpan.FromSeconds(k - Rtt));
        AssertSegments(105, cc, 4.0 / M);
    }

    // ---- the Reno-friendly region (RFC 9438 4.3) ----

    /// <summary>
    /// RFC 9438 4.3 by the letter: W_est += alpha * segments_acked / cwnd with alpha = alpha_cubic
    /// until W_est reaches cwnd_prior, then 1; while W_cubic(t) &lt; W_est, cwnd = W_est.
    /// </summary>
    private static void AssertRenoFriendlyGrowth(CubicCongestionControl cc, double cwndPrior, double until)
    {
        double w = Segments(cc), cwnd = w;
        bool sawCubicAlpha = false, sawOne = false;
        while (w < until)
        {
            double alpha = w >= cwndPrior ? 1.0 : AlphaCubic;
            if (alpha == 1.0) sawOne = true; else sawCubicAlpha = true;
            w += alpha * 1 / cwnd;
            cwnd = Math.Max(cwnd, w);
            cc.OnAck(Ack(T0, 1, cwnd));
            AssertSegments(cwnd, cc, 4.0 / M);
        }
        Assert.True(sawCubicAlpha && sawOne);
    }

    // RFC 9438 4.3: right after the reduction the cubic curve is flat and Reno would grow faster:
    // cwnd follows W_est, growing by alpha_cubic = 3 (1 - beta) / (1 + beta) segments per window;
    // once W_est reaches cwnd_prior (here W_max, 10 segments) alpha becomes 1, Reno's own rate.
    [Fact]
    public void Cubic_RenoFriendlyRegion_AlphaCubicThenOne_Rfc9438_4_3()
    {
        var cc = AfterLossAt(10);
        StartEpoch(cc, T0);
        AssertRenoFriendlyGrowth(cc, cwndPrior: 10, until: 11);
    }

    // RFC 9438 4.3: "Once W_est has grown to reach the cwnd at the time of most recently setting
    // ssthresh -- that is, W_est >= cwnd_prior -- the sender SHOULD set alpha_cubic to 1": that is
    // cwnd_prior, not W_max, which fast convergence puts lower (0.85 cwnd_prior).
    [Fact]
    public void Cubic_RenoFriendlyRegion_AlphaSwitchesAtCwndPriorNotReducedWmax_Rfc9438_4_3()
    {
        var cc = AfterLossAt(20);
        cc.OnCongestionEvent(cc.CongestionWindow, M, T0); // at 14 < W_max 20: W_max = 11.9, cwnd_prior = 14
        AssertSegments(9.8, cc);
        StartEpoch(cc, T0);
        AssertRenoFriendlyGrowth(cc, cwndPrior: 14, until: 14.5);
    }

    // ---- timeout (RFC 9438 4.8) ----

    // RFC 9438 4.8: a timeout sets cwnd to one segment (RFC 5681) and ssthresh = beta cwnd; slow
    // start climbs back to ssthresh; "During the first congestion avoidance stage after a timeout,
    // CUBIC increases its congestion window size using Figure 1 ... K is set to 0, and W_max is set
    // to the congestion window size at the beginning of the current congestion avoidance stage".
    [Fact]
    public void Cubic_Timeout_OneSegment_ThenCubicFromCurrentWindowWithKZero_Rfc9438_4_8()
    {
        var cc = new CubicCongestionControl(hystart: false);
        cc.Initialize(M, 10, T0);
        SlowStartTo(cc, 100, T0);
        cc.OnRetransmissionTimeout(cc.CongestionWindow, M, T0, alreadyReduced: false);
        Assert.Equal(M, cc.CongestionWindow);
        Assert.Equal(70 * M, cc.SlowStartThreshold);
        while (cc.CongestionWindow < cc.SlowStartThreshold) cc.OnAck(Ack(T0, 1, Segments(cc)));
        Assert.Equal(70 * M, cc.CongestionWindow);
        StartEpoch(cc, T0);
        AckWholeWindow(cc, T0 + TimeSpan.FromSeconds(2));
        AssertSegments(WCubic(2 + Rtt, 70, 0), cc);
    }

    // RFC 9438 4.8 with 4.6/4.7: a loss after the timeout behaves: 0.7 cwnd, at least 2 segments.
    [Fact]
    public void Cubic_LossAfterTimeout_MultiplicativeDecrease_Rfc9438_4_8()
    {
        var cc = new CubicCongestionControl(hystart: false);
        cc.Initialize(M, 10, T0);
        SlowStartTo(cc, 100, T0);
        cc.OnRetransmissionTimeout(cc.CongestionWindow, M, T0, alreadyReduced: false);
        for (int i = 0; i < 19; i++) cc.OnAck(Ack(T0, 1, Segments(cc)));
        Assert.Equal(20 * M, cc.CongestionWindow);
        cc.OnCongestionEvent(cc.CongestionWindow, M, T0);
        Assert.Equal(14 * M, cc.CongestionWindow);
        Assert.Equal(14 * M, cc.SlowStartThreshold);
        // A timeout during recovery (already reduced) keeps ssthresh.
        cc.OnRetransmissionTimeout(cc.CongestionWindow, M, T0, alreadyReduced: true);
        Assert.Equal(M, cc.CongestionWindow);
        Assert.Equal(14 * M, cc.SlowStartThreshold);
    }

    // ---- undo (RFC 4015 / RFC 5682) ----

    // The congestion event was spurious: cwnd and ssthresh return to what they were before.
    [Fact]
    public void Cubic_Undo_RestoresCwndAndSsthresh_Rfc4015()
    {
        var cc = AfterLossAt(100);
        cc.Undo();
        Assert.Equal(100 * M, cc.CongestionWindow);
        Assert.Equal(int.MaxValue, cc.SlowStartThreshold);
        // A second Undo (nothing saved) changes nothing.
        cc.Undo();
        Assert.Equal(100 * M, cc.CongestionWindow);

        var rto = new CubicCongestionControl(hystart: false);
        rto.Initialize(M, 10, T0);
        SlowStartTo(rto, 40, T0);
        rto.OnRetransmissionTimeout(rto.CongestionWindow, M, T0, alreadyReduced: false);
        rto.Undo();
        Assert.Equal(40 * M, rto.CongestionWindow);
        Assert.Equal(int.MaxValue, rto.SlowStartThreshold);
    }

    // RFC 4015 with RFC 9438 4.7: an undone congestion event leaves no trace in W_max either. A
    // loss below W_max (fast convergence, W_max 100 -> 0.85 cwnd) that is undone restores W_max =
    // 100, so the next real loss at the same cwnd converges again (0.85 cwnd) instead of taking
    // the undone event's W_max as the plateau to climb back to.
    [Fact]
    public void Cubic_Undo_RestoresWmax_NextLossConvergesFromIt_Rfc4015_Rfc9438_4_7()
    {
        var cc = AfterLossAt(100);
        StartEpoch(cc, T0);
        AckWholeWindow(cc, T0 + TimeSpan.FromSeconds(1)); // about 87.9 segments
        double atLoss = Segments(cc);
        var t1 = T0 + TimeSpan.FromSeconds(2);
        cc.OnCongestionEvent(cc.CongestionWindow, M, t1); // spurious: W_max would become 0.85 * 87.9
        cc.Undo();
        AssertSegments(atLoss, cc);
        cc.OnCongestionEvent(cc.CongestionWindow, M, t1); // real this time
        double wMax = atLoss * (1 + Beta) / 2;
        double k = Math.Cbrt((wMax - atLoss * Beta) / C);
        StartEpoch(cc, t1);
        AckWholeWindow(cc, t1 + TimeSpan.FromSeconds(k - Rtt));
        AssertSegments(wMax, cc, 4.0 / M);
    }

    // ---- application-limited (RFC 9438 4.9 / RFC 7661) ----

    // RFC 9438 4.9 (and RFC 7661): cwnd does not grow while the sender does not use it.
    [Fact]
    public void Cubic_AppLimitedAcks_DoNotGrowCwnd_Rfc9438_4_9()
    {
        var cc = new CubicCongestionControl();
        cc.Initialize(M, 10, T0);
        cc.OnAck(Ack(T0, 1, 2, appLimited: true));
        Assert.Equal(10 * M, cc.CongestionWindow);

        var ca = AfterLossAt(100);
        StartEpoch(ca, T0);
        ca.OnAck(Ack(T0 + TimeSpan.FromSeconds(2), 10, 20, appLimited: true));
        Assert.Equal(70 * M, ca.CongestionWindow);
        // A window that is in use grows even when the application has no more queued.
        ca.OnAck(Ack(T0 + TimeSpan.FromSeconds(2), 1, 70, appLimited: true));
        Assert.True(ca.CongestionWindow > 70 * M);
    }

    // ---- HyStart++ (RFC 9406) ----

    private static CubicCongestionControl HyStart()
    {
        var cc = new CubicCongestionControl();
        cc.Initialize(M, 10, T0);
        return cc;
    }

    /// <summary>One round of <paramref name="acks"/> ACKs of one segment each, all with RTT sample <paramref name="rttUs"/>.</summary>
    private static void Round(CubicCongestionControl cc, long rttUs, int acks = 8)
    {
        for (int i = 0; i < acks; i++) cc.OnAck(Ack(T0, 1, Segments(cc), rttUs: rttUs, round: i == 0));
    }

    // RFC 9406 4.2: in slow start cwnd grows by min(N, L * SMSS) per ACK (L = 1 here, RFC 5681);
    // at the end of a round with at least N_RTT_SAMPLE (8) samples, if currentRoundMinRTT >=
    // lastRoundMinRTT + RttThresh, with RttThresh = clamp(lastRoundMinRTT / 8, 4 ms, 16 ms), slow
    // start exits into Conservative Slow Start, where growth is divided by CSS_GROWTH_DIVISOR (4).
    [Theory]
    [InlineData(100_000, 112_400, false)] // threshold 12.5 ms
    [InlineData(100_000, 112_500, true)]
    [InlineData(20_000, 23_900, false)]   // 2.5 ms clamped up to 4 ms
    [InlineData(20_000, 24_000, true)]
    [InlineData(200_000, 215_900, false)] // 25 ms clamped down to 16 ms
    [InlineData(200_000, 216_000, true)]
    public void HyStart_RttThreshold_ClampedLastRoundMinRttOverEight_EntersCss_Rfc9406_4_2(long lastRtt, long currentRtt, bool css)
    {
        var cc = HyStart();
        Round(cc, lastRtt);
        Assert.Equal(18 * M, cc.CongestionWindow);
        Round(cc, currentRtt);
        Assert.Equal(26 * M, cc.CongestionWindow); // the 8th sample decides, after its own growth
        cc.OnAck(Ack(T0, 1, 26, rttUs: currentRtt));
        Assert.Equal(css ? 26 * M + M / 4 : 27 * M, cc.CongestionWindow);
        Assert.True(((ICongestionControl)cc).InSlowStart);
    }

    // RFC 9406 4.2: fewer than N_RTT_SAMPLE samples in a round decide nothing.
    [Fact]
    public void HyStart_FewerThanEightSamples_NoDecision_Rfc9406_4_2()
    {
        var cc = HyStart();
        Round(cc, 100_000);
        Round(cc, 150_000, acks: 7);
        cc.OnAck(Ack(T0, 1, Segments(cc), rttUs: -1));
        Assert.Equal(26 * M, cc.CongestionWindow);
    }

    // RFC 9406 4.2: in CSS, "if (currentRoundMinRTT < cssBaselineMinRtt) ... resume slow start"
    // - the RTT increase was spurious.
    [Fact]
    public void HyStart_CssRttBelowBaseline_ResumesSlowStart_Rfc9406_4_2()
    {
        var cc = HyStart();
        Round(cc, 100_000);
        Round(cc, 120_000);                 // CSS, baseline 120 ms
        int before = cc.CongestionWindow;
        Round(cc, 119_000);                 // 8 samples below the baseline; growth /4 until then
        Assert.Equal(before + 8 * (M / 4.0), cc.CongestionWindow, 1.0);
        int resumed = cc.CongestionWindow;
        cc.OnAck(Ack(T0, 1, Segments(cc), rttUs: 119_000));
        Assert.Equal(resumed + M, cc.CongestionWindow);
    }

    // RFC 9406 4.2: "If CSS_ROUNDS rounds are complete, enter congestion avoidance by setting the
    // ssthresh to the current cwnd"; the round in which CSS began counts toward the limit.
    [Fact]
    public void HyStart_FiveCssRounds_EnterCongestionAvoidance_Rfc9406_4_2()
    {
        var cc = HyStart();
        Round(cc, 100_000);
        Round(cc, 120_000);                 // CSS entered in this round (1)
        for (int r = 2; r <= 5; r++)
        {
            Round(cc, 120_000);
            Assert.True(((ICongestionControl)cc).InSlowStart, $"round {r}");
        }
        int cwnd = cc.CongestionWindow;
        cc.OnAck(Ack(T0, 1, Segments(cc), rttUs: 120_000, round: true)); // round 5 complete
        Assert.Equal(cwnd, cc.SlowStartThreshold);
        Assert.False(((ICongestionControl)cc).InSlowStart);
    }

    // RFC 9406 4.3: "An implementation SHOULD use HyStart++ only for the initial slow start (when
    // the ssthresh is at its initial value of arbitrarily high per [RFC5681]) and fall back to using
    // standard slow start for the remainder of the connection lifetime": after a timeout, a rising
    // RTT does not slow slow start down.
    [Fact]
    public void HyStart_OnlyInInitialSlowStart_AfterTimeoutStandardSlowStart_Rfc9406_4_3()
    {
        var cc = HyStart();
        SlowStartTo(cc, 100, T0);
        cc.OnRetransmissionTimeout(cc.CongestionWindow, M, T0, alreadyReduced: false);
        Round(cc, 100_000);
        Round(cc, 150_000);
        Round(cc, 200_000);
        Assert.Equal(25 * M, cc.CongestionWindow);
    }

    // RFC 9406 4.2: a round's minimum RTT is the minimum of its samples (one low sample is enough
    // to show no queue is building).
    [Fact]
    public void HyStart_RoundMinimum_OneLowSampleKeepsSlowStart_Rfc9406_4_2()
    {
        var cc = HyStart();
        Round(cc, 100_000);
        for (int i = 0; i < 8; i++) cc.OnAck(Ack(T0, 1, Segments(cc), rttUs: i == 3 ? 101_000 : 150_000, round: i == 0));
        cc.OnAck(Ack(T0, 1, Segments(cc), rttUs: 150_000));
        Assert.Equal(27 * M, cc.CongestionWindow);
    }
}
