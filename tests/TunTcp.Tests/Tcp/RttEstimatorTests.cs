using TunTcp.Tcp;

namespace TunTcp.Tests.Tcp;

/// <summary>Unit tests for <see cref="RttEstimator"/> (RFC 6298).</summary>
public class RttEstimatorTests
{
    private static RttEstimator Default() => new(TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(120));

    // RFC 6298 2.1: "Until a round-trip time (RTT) measurement has been made ... RTO <- 1 second".
    [Fact]
    public void BeforeAnySample_RtoIsInitialRto_Rfc6298_2_1()
    {
        var r = Default();
        Assert.False(r.HasSample);
        Assert.Equal(TimeSpan.FromSeconds(1), r.Rto);
        Assert.Equal(0, r.SmoothedUs);
        // The initial value is kept inside the bounds.
        Assert.Equal(TimeSpan.FromSeconds(2), new RttEstimator(TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(2)).Rto);
        Assert.Equal(TimeSpan.FromMilliseconds(300), new RttEstimator(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(2)).Rto);
    }

    // RFC 6298 2.2: first measurement R: SRTT <- R, RTTVAR <- R/2, RTO <- SRTT + max(G, K*RTTVAR).
    [Fact]
    public void FirstSample_Rfc6298_2_2()
    {
        var r = Default();
        r.AddSample(300_000);
        Assert.True(r.HasSample);
        Assert.Equal(300_000, r.SmoothedUs);
        Assert.Equal(150_000, r.VariationUs);
        Assert.Equal(900_000, r.BaseRtoUs);
        Assert.Equal(300_000, r.LatestUs);
        Assert.Equal(300_000, r.MinUs);
    }

    // RFC 6298 2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|, then SRTT <- 7/8 SRTT + 1/8 R'.
    [Fact]
    public void LaterSamples_Rfc6298_2_3()
    {
        var r = Default();
        r.AddSample(300_000);
        r.AddSample(100_000);
        Assert.Equal((3 * 150_000 + 200_000) / 4, r.VariationUs);
        Assert.Equal((7 * 300_000 + 100_000) / 8, r.SmoothedUs);
        Assert.Equal(r.SmoothedUs + 4 * r.VariationUs, r.BaseRtoUs);
        Assert.Equal(100_000, r.MinUs);
        Assert.Equal(100_000, r.LatestUs);
    }

    // RFC 6298 2.4 (minimum, 200 ms here as Linux) and 2.5 (maximum); G is 1 ms (our timestamp
    // clock): with no variation the RTO is SRTT + G before the bounds apply. Deviation, as Linux
    // (tcp_set_rto): the variance term is at least the minimum RTO, so the RTO keeps a whole
    // minimum-RTO margin above SRTT (here 1 ms + 200 ms), not just a 200 ms floor.
    [Fact]
    public void RtoBounds_AndClockGranularity_Rfc6298_2_4_2_5()
    {
        var r = new RttEstimator(TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(120));
        for (int i = 0; i < 200; i++) r.AddSample(10_000);
        Assert.Equal(10_000 + 1000, r.BaseRtoUs);

        var d = Default();
        d.AddSample(1000);
        Assert.Equal(TimeSpan.FromMilliseconds(201), d.Rto);
        d.AddSample(200_000_000);
        Assert.Equal(TimeSpan.FromSeconds(120), d.Rto);
    }

    // A zero measurement counts as the smallest one (1 us); a negative one is ignored.
    [Fact]
    public void ZeroAndNegativeSamples()
    {
        var r = Default();
        r.AddSample(-5);
        Assert.False(r.HasSample);
        r.AddSample(0);
        Assert.Equal(1, r.SmoothedUs);
    }

    // RFC 6298 5.5: "RTO <- RTO * 2 ('back off the timer')", up to the maximum; forward progress
    // resets the backoff.
    [Fact]
    public void BackOff_DoublesUpToMaximum_ResetRestores_Rfc6298_5_5()
    {
        var r = Default();
        r.AddSample(100_000); // SRTT 100 ms, RTTVAR 50 ms: RTO 300 ms
        Assert.Equal(TimeSpan.FromMilliseconds(300), r.Rto);
        var expected = new[] { 600, 1200, 2400, 4800, 9600, 19200, 38400, 76800, 120000, 120000 };
        foreach (var ms in expected)
        {
            r.BackOff();
            Assert.Equal(TimeSpan.FromMilliseconds(ms), r.Rto);
        }
        Assert.Equal(9, r.Backoff);
        r.ResetBackoff();
        Assert.Equal(0, r.Backoff);
        Assert.Equal(TimeSpan.FromMilliseconds(300), r.Rto);
    }

    // RFC 6298 5.7: after a SYN timeout with no RTT sample, RTO is 3 s when data transmission
    // begins; a sample (e.g. from timestamps) makes that unnecessary.
    [Fact]
    public void ReinitializeAfterSynTimeout_Rfc6298_5_7()
    {
        var r = Default();
        r.ReinitializeAfterSynTimeout();
        Assert.Equal(TimeSpan.FromSeconds(3), r.Rto);

        var s = Default();
        s.AddSample(50_000);
        var before = s.Rto;
        s.ReinitializeAfterSynTimeout();
        Assert.Equal(before, s.Rto);
    }
}
