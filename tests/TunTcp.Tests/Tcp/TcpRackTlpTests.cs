using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// RACK-TLP (RFC 8985): time-based loss detection (6), the reordering window and timer, lost
/// retransmissions, and the tail loss probe (7). Active opens with a 100 ms handshake RTT (SRTT =
/// min_RTT = 100 ms), SACK without timestamps, default settings (RACK, CUBIC).
/// </summary>
public class TcpRackTlpTests
{
    private const int S = Mss;
    private static readonly TimeSpan Rtt = Ms(100);

    private static TcpHarness RackConn(TcpSettings? settings = null, bool windowScale = true, ushort window = 64240) =>
        EstablishedActive(settings ?? new TcpSettings(), synAckOptions: LinuxSyn(ts: false, ws: windowScale), rtt: Rtt, window: window);

    /// <summary>A RTO far above the RTT, so that only RACK and TLP repair what a test drops.</summary>
    private static TcpSettings SlowRto => new() { MinRto = TimeSpan.FromSeconds(1) };

    /// <summary>
    /// The common start: a RACK connection, <paramref name="segments"/> full segments written at
    /// t0, of which the windows let <paramref name="sent"/> out at once.
    /// </summary>
    private static (TcpHarness H, byte[] Data, Instant T0) RackFlight(int segments, int sent, TcpSettings? settings = null,
        bool windowScale = true, ushort window = 64240)
    {
        var h = RackConn(settings, windowScale, window);
        var data = Bytes(segments * S);
        var t0 = h.Now;
        h.Write(data);
        Assert.Equal(sent, h.RecvAll().Count);
        return (h, data, t0);
    }

    private static Seg Segment(TcpHarness h, byte[] data, int index)
    {
        int start = index * S, end = Math.Min(data.Length, start + S);
        var flags = end == data.Length ? TcpFlags.Psh | TcpFlags.Ack : TcpFlags.Ack;
        return h.Ours(seq: start, flags: flags, data: data[start..end]);
    }

    private static Seg SackAck(TcpHarness h, int ack, params (int Left, int Right)[] blocks) =>
        TcpRecoverySackTests.SackAck(h, ack, blocks);

    // ---- RACK loss detection (RFC 8985 6.2) ----

    // RFC 8985 6.2 step 5: a segment is lost when it was sent before the most recently delivered
    // one (RACK.xmit_ts) and "RACK.segment.xmit_ts + RACK.rtt + RACK.reo_wnd - Now() <= 0". Segment
    // 1 (sent 10 ms after segment 0) is SACKed 100 ms after it left: RACK.rtt = 100 ms; one SACKed
    // segment and no reordering seen: reo_wnd = min_RTT / 4 = 25 ms (6.2 step 4). Segment 0 is lost
    // at 0 + 100 + 25 ms; 6.3: the reordering timer fires then, and recovery resends it.
    [Fact]
    public void Rack_SegmentLostOnceOlderThanDeliveredByRttPlusReoWnd_TimerFires_Rfc8985_6_2_6_3()
    {
        var h = RackConn();
        var data = Bytes(2 * S);
        var t0 = h.Now;
        h.Write(data.AsSpan(0, S));
        h.Recv(h.Ours(seq: 0, flags: TcpFlags.Psh | TcpFlags.Ack, data: data[..S]));
        h.After(Ms(10));
        h.Write(data.AsSpan(S, S));
        h.Recv(Segment(h, data, 1));
        h.At(t0 + Ms(110));
        h.Send(SackAck(h, 0, (1, 2)));
        h.RecvNothing();
        h.NothingUntil(t0 + Ms(125));
        h.Recv(h.Ours(seq: 0, data: data[..S]));
        h.RecvNothing();
        Assert.Equal(1, h.C.FastRetransmits);
        Assert.Equal(0, h.C.RetransmissionTimeouts);
    }

    // RFC 8985 6.2 step 4: "If RACK.reordering_seen is FALSE ... Else if RACK.segs_sacked >=
    // DupThresh: return 0": without reordering, two SACKed segments leave a 25 ms window, a third
    // closes it and the loss is marked at once.
    [Fact]
    public void Rack_NoReorderingSeen_DupThreshSegmentsSacked_ReoWndZero_Rfc8985_6_2()
    {
        var (h, data, t0) = RackFlight(10, sent: 10);
        h.At(t0 + Rtt);
        h.Send(SackAck(h, 0, (1, 3)));
        h.RecvNothing();
        Assert.Equal(t0 + Rtt + Ms(25), h.C.NextDeadline);
        h.After(Ms(5));
        h.Send(SackAck(h, 0, (1, 4)));
        h.Recv(h.Ours(seq: 0, data: data[..S]));
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // RFC 8985 6.2 step 3: a segment delivered below RACK.fack that was never retransmitted shows
    // reordering (RACK.reordering_seen); step 4: then reo_wnd = min_RTT / 4 even with many
    // segments SACKed. Segment 2 is SACKed before 1; with all of 1..9 SACKed, segment 0 still
    // waits 25 ms.
    [Fact]
    public void Rack_ReorderingSeenByDeliveryBelowFack_KeepsReoWnd_Rfc8985_6_2()
    {
        var (h, data, t0) = RackFlight(10, sent: 10);
        h.At(t0 + Rtt);
        h.Send(SackAck(h, 0, (2, 3)));
        h.Send(SackAck(h, 0, (1, 3)));
        h.Send(SackAck(h, 0, (1, 10)));
        h.RecvNothing();
        h.NothingUntil(t0 + Rtt + Ms(25));
        Assert.Equal(h.Ours(seq: 0).Seq, h.RecvAll()[0].Seq);
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // RFC 8985 6.2 step 4: a D-SACK shows reordering (or a too early retransmission): the window
    // grows by min_RTT / 4 per round with D-SACK, reo_wnd = reo_wnd_mult * min_RTT / 4 = 50 ms.
    [Fact]
    public void Rack_DsackWidensReoWnd_Rfc8985_6_2_Step4()
    {
        var h = RackConn();
        var data = Bytes(10 * S);
        h.Write(data.AsSpan(0, 2 * S));
        Assert.Equal(2, h.RecvAll().Count);
        h.After(Rtt);
        h.Send(h.Peer(ack: 2 * S));
        h.RecvNothing();
        // A duplicate of segment 0 reached the peer: D-SACK (the first block lies below SEG.ACK).
        h.Send(SackAck(h, 2, (0, 1)));
        h.RecvNothing();

        h.Write(data.AsSpan(2 * S));
        var t1 = h.Now;
        Assert.Equal(8, h.RecvAll().Count);
        h.At(t1 + Rtt);
        h.Send(SackAck(h, 2, (9, 10)));
        h.RecvNothing();
        h.NothingUntil(t1 + Rtt + Ms(50));
        Assert.Equal(h.Ours(seq: 2 * S).Seq, h.RecvAll()[0].Seq);
    }

    // RFC 8985 6.2 step 4: "Grow the reordering window per round that sees DSACK": two D-SACKs
    // while the same flight is outstanding (SND.UNA below RACK.dsack_round) widen it once, to 2
    // min_RTT / 4 = 50 ms, not 75 ms.
    [Fact]
    public void Rack_TwoDsacksInOneRound_ReoWndGrowsOnce_Rfc8985_6_2_Step4()
    {
        var h = RackConn();
        var data = Bytes(10 * S);
        h.Write(data.AsSpan(0, 2 * S));
        Assert.Equal(2, h.RecvAll().Count);
        h.After(Rtt);
        h.Send(h.Peer(ack: 2 * S));
        h.Write(data.AsSpan(2 * S));
        var t1 = h.Now;
        Assert.Equal(8, h.RecvAll().Count);
        h.After(Ms(1));
        h.Send(SackAck(h, 2, (0, 1)));
        h.Send(SackAck(h, 2, (1, 2)));
        h.RecvNothing();
        h.At(t1 + Rtt);
        h.Send(SackAck(h, 2, (9, 10)));
        h.NothingUntil(t1 + Rtt + Ms(50));
        Assert.Equal(h.Ours(seq: 2 * S).Seq, h.RecvAll()[0].Seq);
    }

    // RFC 8985 6.2 step 5 / 6.1: RACK works on transmission times, so a retransmission that is
    // lost again is found like any other segment: the data sent after it is delivered, one RACK.rtt
    // (+ reo_wnd, 0 in recovery without reordering) later it is lost and resent - no timeout.
    [Fact]
    public void Rack_LostRetransmission_DetectedAndResentWithoutRto_Rfc8985_6_2()
    {
        var (h, data, t0) = RackFlight(20, sent: 10);
        h.At(t0 + Rtt);
        h.Send(SackAck(h, 0, (1, 10)));
        var burst = h.RecvAll();
        Assert.Equal(h.Ours(seq: 0).Seq, burst[0].Seq);
        // CUBIC: cwnd = 0.7 * 10 segments; the retransmission and six new segments (10..15).
        Assert.Equal(7, burst.Count);

        h.At(t0 + 2 * Rtt);
        h.Send(SackAck(h, 0, (1, 16)));
        var again = h.RecvAll();
        Assert.Equal(h.Ours(seq: 0).Seq, again[0].Seq);
        Assert.Equal(0, h.C.RetransmissionTimeouts);
        Assert.Equal(2, h.C.Retransmissions);
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // ---- tail loss probe (RFC 8985 7) ----

    // RFC 8985 7.2: with data outstanding and no ACK, the probe timer fires at PTO = 2 * SRTT
    // (RTO pushed out here by a 1 s minimum); 7.3: with no new data to send, "retransmit the
    // highest-sequence segment sent so far"; only one probe is outstanding: afterwards the RTO
    // (re-armed by the probe) takes over.
    [Fact]
    public void Tlp_ProbeAtTwiceSrtt_RetransmitsLastSegment_OnlyOnePerEpisode_Rfc8985_7()
    {
        var (h, data, t0) = RackFlight(2, sent: 2, SlowRto);
        h.NothingUntil(t0 + 2 * Rtt);
        h.Recv(Segment(h, data, 1));
        h.RecvNothing();
        Assert.Equal(1, h.Env.Statistics.TailLossProbes);
        var rto = h.C.GetStatistics().Rto;
        Assert.Equal(TimeSpan.FromMilliseconds(1100), rto);
        h.NothingUntil(h.Now + rto);
        h.Recv(Segment(h, data, 0));
        h.RecvNothing();
        Assert.Equal(1, h.C.RetransmissionTimeouts);
        Assert.Equal(1, h.Env.Statistics.TailLossProbes);
    }

    // RFC 8985 7.2: "If FlightSize is one segment, PTO += WCDelAckT" (200 ms): the peer may be
    // delaying its ACK of a lone segment.
    [Fact]
    public void Tlp_OneSegmentInFlight_PtoAddsWorstCaseDelayedAck_Rfc8985_7_2()
    {
        var h = RackConn(SlowRto);
        var t0 = h.Now;
        h.Write(Bytes(100));
        h.Recv();
        h.NothingUntil(t0 + 2 * Rtt + Ms(200));
        h.Recv(h.Ours(flags: TcpFlags.Psh | TcpFlags.Ack, data: Bytes(100)));
        Assert.Equal(1, h.Env.Statistics.TailLossProbes);
    }

    // RFC 8985 7.2: "If Now() + PTO > TCP_RTO_expire(): PTO = TCP_RTO_expire() - Now()": when the
    // probe would come after the timeout, it comes at the timeout's instant instead, and it is a
    // probe (cwnd kept), not a timeout. Here PTO = 2 * 100 + 200 ms against RTO = 300 ms.
    [Fact]
    public void Tlp_PtoBeyondRto_ProbeFiresAtRtoInstant_Rfc8985_7_2()
    {
        var h = RackConn();
        var t0 = h.Now;
        var cwnd = h.C.GetStatistics().CongestionWindow;
        h.Write(Bytes(100));
        h.Recv();
        Assert.Equal(Ms(300), h.C.GetStatistics().Rto);
        h.NothingUntil(t0 + Ms(300));
        h.Recv(h.Ours(flags: TcpFlags.Psh | TcpFlags.Ack, data: Bytes(100)));
        h.RecvNothing();
        Assert.Equal(1, h.Env.Statistics.TailLossProbes);
        Assert.Equal(0, h.C.RetransmissionTimeouts);
        Assert.Equal(cwnd, h.C.GetStatistics().CongestionWindow);
    }

    // RFC 8985 7.3: "If a previously unsent segment exists AND the receive window allows new data
    // to be sent: Transmit that new segment" - even when cwnd is full.
    [Fact]
    public void Tlp_NewDataAvailable_ProbeSendsNewSegment_Rfc8985_7_3()
    {
        var (h, data, t0) = RackFlight(11, sent: 10, SlowRto);
        h.NothingUntil(t0 + 2 * Rtt);
        h.Recv(Segment(h, data, 10));
        h.RecvNothing();
        Assert.Equal(0, h.C.Retransmissions);
    }

    // RFC 8985 7.3: when the receive window does not allow new data, the probe retransmits the
    // last segment sent.
    [Fact]
    public void Tlp_ReceiveWindowFull_ProbeRetransmitsLastSegment_Rfc8985_7_3()
    {
        var (h, data, t0) = RackFlight(11, sent: 10, SlowRto, windowScale: false, window: 10 * S);
        h.NothingUntil(t0 + 2 * Rtt);
        h.Recv(Segment(h, data, 9));
        h.RecvNothing();
        Assert.Equal(1, h.C.Retransmissions);
    }

    // RFC 8985 7.4.2: a probe that retransmitted the last segment and is acknowledged with later
    // data (ACK > TLP.end_seq) without a D-SACK repaired a real loss: "invoke congestion control to
    // react to the loss event the probe has repaired" (CUBIC: 0.7 cwnd).
    [Fact]
    public void Tlp_ProbeRepairedLoss_CwndReduced_Rfc8985_7_4()
    {
        var h = RackConn(SlowRto);
        var data = Bytes(3 * S);
        var t0 = h.Now;
        h.Write(data.AsSpan(0, 2 * S));
        Assert.Equal(2, h.RecvAll().Count);
        h.At(t0 + Rtt);
        h.Send(h.Peer(ack: S));
        var cwnd = h.C.GetStatistics().CongestionWindow;
        // One segment left: PTO = 2 SRTT + 200 ms.
        h.NothingUntil(t0 + Rtt + 2 * Rtt + Ms(200));
        h.Recv(Segment(h, data[..(2 * S)], 1));
        h.After(Rtt);
        h.Send(h.Peer(ack: 2 * S));
        h.Write(data.AsSpan(2 * S));
        h.Recv();
        h.After(Rtt);
        h.Send(h.Peer(ack: 3 * S));
        Assert.Equal((int)(cwnd * 0.7), h.C.GetStatistics().CongestionWindow);
        Assert.Equal(1, h.Env.Statistics.TailLossProbes);
    }

    // RFC 8985 7.4.1/7.4.2: when the original arrived too (the ACK was only late), the peer reports
    // the probe as a duplicate with a D-SACK, usually in the ACK after the one for the original:
    // "Else if ACK has a DSACK option matching TLP.end_seq: TLP.end_seq = None" - no reduction.
    [Fact]
    public void Tlp_ProbeDsacked_NoCwndReduction_Rfc8985_7_4()
    {
        var h = RackConn(SlowRto);
        var data = Bytes(3 * S);
        var t0 = h.Now;
        h.Write(data.AsSpan(0, 2 * S));
        Assert.Equal(2, h.RecvAll().Count);
        var cwnd = h.C.GetStatistics().CongestionWindow;
        h.NothingUntil(t0 + 2 * Rtt);
        h.Recv(Segment(h, data[..(2 * S)], 1));
        h.After(Ms(10));
        h.Send(h.Peer(ack: 2 * S));
        h.Send(SackAck(h, 2, (1, 2)));
        h.Write(data.AsSpan(2 * S));
        h.Recv();
        h.After(Rtt);
        h.Send(h.Peer(ack: 3 * S));
        Assert.True(h.C.GetStatistics().CongestionWindow >= cwnd);
        Assert.Equal(1, h.Env.Statistics.TailLossProbes);
    }

    // RFC 8985 7.4.2: the D-SACK may also come on the very ACK that covers the probe.
    [Fact]
    public void Tlp_ProbeDsackedOnSameAck_NoCwndReduction_Rfc8985_7_4()
    {
        var (h, data, t0) = RackFlight(2, sent: 2, SlowRto);
        var cwnd = h.C.GetStatistics().CongestionWindow;
        h.NothingUntil(t0 + 2 * Rtt);
        h.Recv(Segment(h, data, 1));
        h.After(Ms(10));
        h.Send(SackAck(h, 2, (1, 2)));
        Assert.True(h.C.GetStatistics().CongestionWindow >= cwnd);
    }

    // RFC 8985 7.4.2: "Else if ACK is a DUPACK without any SACK option: TLP.end_seq = None /*
    // Assume original and probe both delivered */" - the ACK of TLP.end_seq then a duplicate
    // without SACK blocks (a peer that sends no D-SACK): no loss, no reduction later either.
    [Fact]
    public void Tlp_AckThenPureDuplicateAck_BothDelivered_NoCwndReduction_Rfc8985_7_4()
    {
        var h = RackConn(SlowRto);
        var data = Bytes(3 * S);
        var t0 = h.Now;
        h.Write(data.AsSpan(0, 2 * S));
        Assert.Equal(2, h.RecvAll().Count);
        var cwnd = h.C.GetStatistics().CongestionWindow;
        h.NothingUntil(t0 + 2 * Rtt);
        h.Recv(Segment(h, data[..(2 * S)], 1));
        h.After(Ms(10));
        h.Send(h.Peer(ack: 2 * S));
        h.Write(data.AsSpan(2 * S));
        h.Recv();
        h.Send(h.Peer(ack: 2 * S));       // the probe's duplicate, reported without D-SACK
        h.After(Rtt);
        h.Send(h.Peer(ack: 3 * S));
        Assert.True(h.C.GetStatistics().CongestionWindow >= cwnd);
    }

    // RFC 8985 7.2: no probe is scheduled while segments are SACKed ("unless ... RACK.segs_sacked"
    // is not zero): the RACK reordering timer covers that case.
    [Fact]
    public void Tlp_NotArmedWhileSegmentsSacked_Rfc8985_7_2()
    {
        var (h, data, t0) = RackFlight(4, sent: 4, SlowRto);
        h.At(t0 + Rtt);
        h.Send(SackAck(h, 0, (3, 4)));
        // Segments 0..2 are lost at t0 + RTT + 25 ms by RACK; no probe before or instead.
        h.NothingUntil(t0 + Rtt + Ms(25));
        Assert.Equal(0, h.Env.Statistics.TailLossProbes);
        Assert.Equal(1, h.C.FastRetransmits);
    }
}
