using TunTcp.Tcp;

namespace TunTcp.Tests.Tcp;

/// <summary>Unit tests for <see cref="NewRenoCongestionControl"/> (RFC 5681, RFC 6928, RFC 6582).</summary>
public class NewRenoCongestionControlTests
{
    private const int Mss = 1448;

    private static AckEvent Ack(int acked, int inFlight, bool appLimited = false) =>
        new(acked, inFlight, Mss, Instant.Zero, -1, -1, appLimited);

    private static NewRenoCongestionControl Started()
    {
        var cc = new NewRenoCongestionControl();
        cc.Initialize(Mss, 10, Instant.Zero);
        return cc;
    }

    // RFC 6928 2: IW = min(10*MSS, max(2*MSS, 14600)); fewer segments: RFC 5681 3.1 style IW.
    [Theory]
    [InlineData(1460, 10, 14600)]
    [InlineData(1448, 10, 14480)]
    [InlineData(536, 10, 5360)]
    [InlineData(9000, 10, 18000)]
    [InlineData(1460, 4, 5840)]
    public void InitialWindow_Rfc6928(int mss, int segments, int expected)
    {
        var cc = new NewRenoCongestionControl();
        cc.Initialize(mss, segments, Instant.Zero);
        Assert.Equal(expected, cc.CongestionWindow);
        Assert.Equal(int.MaxValue, cc.SlowStartThreshold);
        Assert.True(((ICongestionControl)cc).InSlowStart);
        Assert.Equal("newreno", cc.Name);
    }

    // RFC 5681 3.1 (with RFC 3465 L = 1): in slow start "cwnd += min (N, SMSS)" per ACK.
    [Fact]
    public void SlowStart_GrowsByMinOfAckedAndSmss_Rfc5681_3_1()
    {
        var cc = Started();
        cc.OnAck(Ack(500, 14480));
        Assert.Equal(14480 + 500, cc.CongestionWindow);
        cc.OnAck(Ack(3 * Mss, 14480));
        Assert.Equal(14480 + 500 + Mss, cc.CongestionWindow);
    }

    // RFC 5681 3.1 congestion avoidance: about one SMSS per RTT - with byte counting, exactly one
    // SMSS once a full cwnd has been acknowledged.
    [Fact]
    public void CongestionAvoidance_OneSmssPerCwndAcked_Rfc5681_3_1()
    {
        var cc = Started();
        cc.OnRetransmissionTimeout(8 * Mss, Mss, Instant.Zero, alreadyReduced: false); // ssthresh 4 MSS, cwnd 1 MSS
        Assert.Equal(4 * Mss, cc.SlowStartThreshold);
        for (int i = 0; i < 3; i++) cc.OnAck(Ack(Mss, cc.CongestionWindow));
        Assert.Equal(4 * Mss, cc.CongestionWindow);
        Assert.False(((ICongestionControl)cc).InSlowStart);
        for (int i = 0; i < 3; i++) cc.OnAck(Ack(Mss, cc.CongestionWindow));
        Assert.Equal(4 * Mss, cc.CongestionWindow);
        cc.OnAck(Ack(Mss, cc.CongestionWindow));
        Assert.Equal(5 * Mss, cc.CongestionWindow);
    }

    // RFC 7661: an application-limited sender does not grow a window it does not use.
    [Fact]
    public void AppLimited_NoGrowth()
    {
        var cc = Started();
        cc.OnAck(Ack(Mss, 2 * Mss, appLimited: true));
        Assert.Equal(14480, cc.CongestionWindow);
        cc.OnAck(Ack(Mss, 14480 - Mss, appLimited: true)); // using (almost) all of it: grows
        Assert.Equal(14480 + Mss, cc.CongestionWindow);
    }

    // RFC 5681 3.2 step 2 / RFC 6582: on loss ssthresh = max(FlightSize / 2, 2*SMSS), cwnd = ssthresh;
    // at the end of recovery cwnd is at most ssthresh (and at least one SMSS).
    [Fact]
    public void CongestionEvent_HalvesToSsthresh_RecoveryEndDeflates()
    {
        var cc = Started();
        cc.OnCongestionEvent(10 * Mss, Mss, Instant.Zero);
        Assert.Equal(5 * Mss, cc.SlowStartThreshold);
        Assert.Equal(5 * Mss, cc.CongestionWindow);
        cc.OnCongestionEvent(Mss, Mss, Instant.Zero);
        Assert.Equal(2 * Mss, cc.SlowStartThreshold);
        cc.OnRecoveryEnd(Mss, Instant.Zero);
        Assert.Equal(2 * Mss, cc.CongestionWindow);
    }

    // RFC 5681 3.1: after a retransmission timeout cwnd = LW = 1 SMSS; ssthresh = max(FlightSize/2, 2*SMSS).
    [Fact]
    public void RetransmissionTimeout_LossWindowOneSegment_Rfc5681_3_1()
    {
        var cc = Started();
        cc.OnRetransmissionTimeout(3 * Mss, Mss, Instant.Zero, alreadyReduced: false);
        Assert.Equal(Mss, cc.CongestionWindow);
        Assert.Equal(2 * Mss, cc.SlowStartThreshold);
    }

    // RFC 5681 4.1: after an idle period cwnd = min(RW, cwnd) with RW = IW.
    [Fact]
    public void IdleRestart_Rfc5681_4_1()
    {
        var cc = Started();
        for (int i = 0; i < 20; i++) cc.OnAck(Ack(Mss, cc.CongestionWindow));
        Assert.True(cc.CongestionWindow > 14480);
        cc.OnIdleRestart(Mss, 10, Instant.Zero);
        Assert.Equal(14480, cc.CongestionWindow);
        cc.OnRetransmissionTimeout(2 * Mss, Mss, Instant.Zero, alreadyReduced: false);
        cc.OnIdleRestart(Mss, 10, Instant.Zero);
        Assert.Equal(Mss, cc.CongestionWindow);
    }

    // A spurious congestion event is undone (RFC 5682, RFC 3522): the state saved before it comes back, once.
    [Fact]
    public void Undo_RestoresSavedWindowOnce()
    {
        var cc = Started();
        cc.Undo();
        Assert.Equal(14480, cc.CongestionWindow);
        cc.OnRetransmissionTimeout(10 * Mss, Mss, Instant.Zero, alreadyReduced: false);
        cc.Undo();
        Assert.Equal(14480, cc.CongestionWindow);
        Assert.Equal(int.MaxValue, cc.SlowStartThreshold);
        cc.OnCongestionEvent(2 * Mss, Mss, Instant.Zero);
        cc.OnAck(Ack(Mss, Mss));
        var after = cc.CongestionWindow;
        cc.Undo();
        cc.Undo();
        Assert.Equal(Math.Max(after, 14480), cc.CongestionWindow);
    }
}
