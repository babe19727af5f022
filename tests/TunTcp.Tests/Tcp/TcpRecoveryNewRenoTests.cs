using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// Loss recovery without SACK: fast retransmit and fast recovery (RFC 5681 3.2) with NewReno's
/// partial ACKs (RFC 6582), limited transmit (RFC 3042) and the duplicate-ACK definition of
/// RFC 5681 2. Classic settings (NewReno, no RACK, no F-RTO); the peer offers neither SACK nor
/// timestamps, so a full segment carries <see cref="Mss"/> bytes and no options.
/// </summary>
public class TcpRecoveryNewRenoTests
{
    private const int S = Mss;

    private static TcpHarness NewReno(TcpSettings? settings = null, ushort window = 64240, bool windowScale = true) =>
        Established(Classic(settings), synOptions: LinuxSyn(ts: false, sack: false, ws: windowScale), window: window);

    /// <summary>Segment <paramref name="index"/> of <paramref name="data"/> as we must send it (PSH on the last one).</summary>
    private static Seg Segment(TcpHarness h, byte[] data, int index)
    {
        int start = index * S, end = Math.Min(data.Length, start + S);
        var flags = end == data.Length ? TcpFlags.Psh | TcpFlags.Ack : TcpFlags.Ack;
        return h.Ours(seq: start, flags: flags, data: data[start..end]);
    }

    /// <summary>Ten segments in flight (the initial window), <paramref name="segments"/> written.</summary>
    private static (TcpHarness H, byte[] Data) TenInFlight(int segments = 20, TcpSettings? settings = null)
    {
        var h = NewReno(settings);
        var data = Bytes(segments * S);
        h.Write(data);
        var first = h.RecvAll();
        Assert.Equal(10, first.Count);
        return (h, data);
    }

    /// <summary>Feeds <paramref name="count"/> duplicate ACKs of <paramref name="ack"/> (SND.UNA) bytes.</summary>
    private static void DupAcks(TcpHarness h, int count, int ack = 0)
    {
        for (int i = 0; i < count; i++) h.Send(h.Peer(ack: ack));
    }

    // ---- fast retransmit (RFC 5681 3.2 steps 1-3) ----

    // RFC 5681 3.2 step 2/3: "When the third duplicate ACK is received ... The lost segment starting
    // at SND.UNA MUST be retransmitted" - exactly on the third, not before (the first two only
    // release limited-transmit segments, RFC 3042). The retransmission goes out even though pipe
    // exceeds the reduced window: it is the one segment the RFC sends regardless of cwnd.
    [Fact]
    public void NewReno_ThirdDuplicateAck_FastRetransmitsSegmentAtSndUna_Rfc5681_3_2()
    {
        var (h, data) = TenInFlight();
        DupAcks(h, 1);
        h.Recv(Segment(h, data, 10));
        h.RecvNothing();
        DupAcks(h, 1);
        h.Recv(Segment(h, data, 11));
        h.RecvNothing();
        Assert.Equal(0, h.C.FastRetransmits);
        Assert.Equal(0, h.C.Retransmissions);

        DupAcks(h, 1);
        h.Recv(Segment(h, data, 0));
        h.RecvNothing();
        Assert.Equal(1, h.C.FastRetransmits);
        Assert.Equal(1, h.C.Retransmissions);
        Assert.Equal(0, h.C.RetransmissionTimeouts);
    }

    // RFC 5681 3.2 step 2: "ssthresh = max (FlightSize / 2, 2*SMSS)" and "When [RFC3042] is in use,
    // additional data sent in limited transmit MUST NOT be included in this calculation": twelve
    // segments are outstanding, two of them sent by limited transmit, so ssthresh is 5 SMSS, not 6;
    // step 3: cwnd = ssthresh + 3*SMSS while recovering, ssthresh once recovery ends.
    [Fact]
    public void NewReno_FastRetransmit_SsthreshHalfFlightSizeWithoutLimitedTransmit_Rfc5681_3_2()
    {
        var (h, _) = TenInFlight();
        DupAcks(h, 3);
        h.RecvAll();
        Assert.Equal(5 * S, h.C.GetStatistics().SlowStartThreshold);
    }

    // RFC 5681 (4): ssthresh is never below 2*SMSS, whatever the flight size.
    [Fact]
    public void NewReno_FastRetransmit_SsthreshAtLeastTwoSegments_Rfc5681_3_2()
    {
        var h = NewReno(new TcpSettings { NoDelay = true });
        var data = Bytes(4 * 100);
        for (int i = 0; i < 4; i++) h.Write(data.AsSpan(i * 100, 100));
        Assert.Equal(4, h.RecvAll().Count);
        DupAcks(h, 3);
        h.Recv(h.Ours(seq: 0, data: data[..100])); // no PSH: more data follows it now
        Assert.Equal(2 * S, h.C.GetStatistics().SlowStartThreshold);
    }

    // RFC 5681 3.2 step 4: "For each additional duplicate ACK received (after the third), cwnd MUST
    // be incremented by SMSS"; step 5: "When previously unsent data is available and the new value
    // of cwnd and the receiver's advertised window allow, a TCP SHOULD send 1*SMSS bytes of
    // previously unsent data." cwnd = 5 + 3 = 8 SMSS against 12 outstanding: the 5th further
    // duplicate ACK makes it 13 and lets one segment out, and each later one one more.
    [Fact]
    public void NewReno_EachFurtherDuplicateAck_InflatesCwnd_OneNewSegment_Rfc5681_3_2_Step4()
    {
        var (h, data) = TenInFlight();
        DupAcks(h, 3);
        Assert.Equal(3, h.RecvAll().Count);
        for (int i = 0; i < 4; i++)
        {
            DupAcks(h, 1);
            h.RecvNothing();
        }
        for (int k = 12; k < 15; k++)
        {
            DupAcks(h, 1);
            h.Recv(Segment(h, data, k));
            h.RecvNothing();
        }
        Assert.Equal(1, h.C.Retransmissions);
    }

    // RFC 6582 3.2 step 6 (full acknowledgment): the ACK that covers "recover" (SND.NXT when fast
    // retransmit began, here 12 segments) ends recovery, "Set cwnd to ... ssthresh": the inflated
    // window is gone, and with three new segments still in flight two more may go.
    [Fact]
    public void NewReno_FullAck_EndsRecovery_CwndDeflatedToSsthresh_Rfc6582_3_2_Step6()
    {
        var (h, data) = TenInFlight();
        DupAcks(h, 3);
        h.RecvAll();
        DupAcks(h, 7);
        Assert.Equal(3, h.RecvAll().Count); // segments 12, 13, 14
        h.Send(h.Peer(ack: 12 * S));
        var s = h.C.GetStatistics();
        Assert.Equal(5 * S, s.CongestionWindow);
        Assert.Equal(5 * S, s.SlowStartThreshold);
        h.Recv(Segment(h, data, 15));
        h.Recv(Segment(h, data, 16));
        h.RecvNothing();
        // Out of recovery: the next duplicate ACKs start counting afresh, one is no fast retransmit.
        DupAcks(h, 1);
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // RFC 6582 3.2 step 5 (partial acknowledgment): "retransmit the first unacknowledged segment.
    // Deflate the congestion window by the amount of new data acknowledged ... If the partial ACK
    // acknowledges at least one SMSS of new data, then add back SMSS bytes ... Send a new segment
    // if permitted by the new value of cwnd ... For the first partial ACK that arrives during fast
    // recovery, also reset the retransmit timer." Segments 0 and 5 were lost; the ACK of 0..4 makes
    // the window 15 - 5 + 1 = 11 SMSS against 10 outstanding: segment 5 at once, then one new.
    [Fact]
    public void NewReno_PartialAck_RetransmitsNextHoleAtOnce_Deflates_Rfc6582_3_2_Step5()
    {
        var (h, data) = TenInFlight();
        DupAcks(h, 3);          // from segments 1, 2, 3
        h.RecvAll();            // 10, 11 (limited transmit), 0
        DupAcks(h, 7);          // from segments 4, 6..11
        Assert.Equal(3, h.RecvAll().Count); // 12, 13, 14
        h.After(Ms(10));
        h.Send(h.Peer(ack: 5 * S));
        h.Recv(Segment(h, data, 5));
        h.Recv(Segment(h, data, 15));
        h.RecvNothing();
        Assert.Equal(h.Now + h.C.GetStatistics().Rto, h.C.NextDeadline);
        Assert.Equal(2, h.C.Retransmissions);
        Assert.Equal(1, h.C.FastRetransmits);

        // Duplicate ACKs from 12, 13, 14 inflate again, one new segment each.
        for (int k = 16; k < 19; k++)
        {
            DupAcks(h, 1, ack: 5 * S);
            h.Recv(Segment(h, data, k));
        }
        h.RecvNothing();
        // The full ACK ends recovery at ssthresh (5 SMSS) with 4 segments still in flight: one more.
        h.Send(h.Peer(ack: 16 * S));
        Assert.Equal(5 * S, h.C.GetStatistics().CongestionWindow);
        h.Recv(Segment(h, data, 19));
        h.RecvNothing();
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // RFC 6582 4, the Impatient variant (which RFC 6582 recommends): "the retransmit timer is reset
    // only after the first partial ACK", so when many segments of a window were lost the timeout
    // takes over instead of one hole per round trip. Segments 0, 4 and 8 lost: the second partial
    // ACK does not restart the timer, which then fires one RTO after the first partial ACK.
    [Fact]
    public void NewReno_Impatient_LaterPartialAcksDoNotRestartTimer_Rfc6582_4()
    {
        var (h, data) = TenInFlight(segments: 10);
        DupAcks(h, 3);          // from 1, 2, 3
        h.Recv(Segment(h, data, 0));
        DupAcks(h, 4);          // from 5, 6, 7, 9: no new data to send
        h.RecvNothing();

        h.After(Ms(10));
        h.Send(h.Peer(ack: 4 * S));
        h.Recv(Segment(h, data, 4));
        h.RecvNothing();
        var timerAt = h.Now + h.C.GetStatistics().Rto;
        Assert.Equal(timerAt, h.C.NextDeadline);

        h.After(Ms(10));
        h.Send(h.Peer(ack: 8 * S));
        h.Recv(Segment(h, data, 8));
        h.RecvNothing();
        Assert.Equal(timerAt, h.C.NextDeadline);

        h.NothingUntil(timerAt);
        h.Recv(Segment(h, data, 8));
        h.RecvNothing();
        Assert.Equal(1, h.C.RetransmissionTimeouts);
    }

    // RFC 6582 3.2 step 1: "When the third duplicate ACK is received, the TCP sender first checks
    // the value of recover to see if the Cumulative Acknowledgment field covers more than recover
    // ... If not, the TCP does not enter fast retransmit and does not reset ssthresh"; 3.2 step 4:
    // "After a retransmit timeout, record the highest sequence number transmitted in the variable
    // recover". Duplicate ACKs right after a timeout's repair may come from our own needless
    // retransmissions; once an ACK passes recover, three duplicates are a loss again.
    [Fact]
    public void NewReno_DuplicateAcksNotBeyondRecover_NoFastRetransmit_Rfc6582_3_2_Step1()
    {
        var (h, data) = TenInFlight(segments: 30);
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0));
        h.Send(h.Peer(ack: 10 * S));          // everything before the timeout arrived: recover = 10
        Assert.Equal(2, h.RecvAll().Count);   // 10, 11 (cwnd 2 SMSS)
        DupAcks(h, 3, ack: 10 * S);
        h.RecvAll();
        Assert.Equal(0, h.C.FastRetransmits);
        Assert.Equal(1, h.C.Retransmissions);

        h.Send(h.Peer(ack: 11 * S));          // beyond recover
        h.RecvAll();
        DupAcks(h, 3, ack: 11 * S);
        Assert.Equal(h.Ours(seq: 11 * S).Seq, h.RecvAll()[^1].Seq);
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // ---- what counts as a duplicate ACK (RFC 5681 2) ----

    // RFC 5681 2: a duplicate ACK "(b) carries no data ... (e) the advertised window in the incoming
    // acknowledgment equals the advertised window in the last incoming acknowledgment". An ACK
    // that moves the window, or that carries data, is not counted: after two duplicates, a
    // window update and a data segment, only the next true duplicate is the third.
    [Fact]
    public void NewReno_AcksChangingWindowOrCarryingData_NotDuplicates_Rfc5681_2()
    {
        var (h, data) = TenInFlight(segments: 10);
        DupAcks(h, 2);
        h.RecvNothing();
        var window = (ushort)(h.PeerWindow - 1);
        h.Send(h.Peer() with { Window = window });
        h.RecvNothing();
        h.Send(h.Peer(data: Bytes(10)) with { Window = window });
        h.RecvNothing(); // the data is acknowledged later (delayed ACK)
        Assert.Equal(0, h.C.FastRetransmits);

        h.Send(h.Peer(seq: 10) with { Window = window });
        h.Recv(h.Ours(seq: 0, ack: 10, data: data[..S]) with { Window = h.Win(10) });
        h.RecvNothing();
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // RFC 5681 2 (a): a duplicate ACK needs outstanding data; with nothing in flight, three
    // identical ACKs are just ACKs.
    [Fact]
    public void NewReno_NothingOutstanding_IdenticalAcksNotDuplicates_Rfc5681_2()
    {
        var h = NewReno();
        DupAcks(h, 3);
        h.RecvNothing();
        h.Write(Bytes(100));
        h.RecvAll();
        Assert.Equal(0, h.C.FastRetransmits);
    }

    // ---- limited transmit (RFC 3042) ----

    // RFC 3042 2 / RFC 5681 3.2 step 1: "On the first and second duplicate ACKs received at a
    // sender, a TCP SHOULD send a segment of previously unsent data ... provided that the
    // receiver's advertised window allows, the total FlightSize would remain less than or equal to
    // cwnd plus 2*SMSS" and "the TCP sender MUST NOT change cwnd to reflect these two segments".
    [Fact]
    public void LimitedTransmit_FirstAndSecondDuplicateAck_OneNewSegmentEach_CwndUnchanged_Rfc3042()
    {
        var (h, data) = TenInFlight();
        DupAcks(h, 1);
        h.Recv(Segment(h, data, 10));
        h.RecvNothing();
        Assert.Equal(10 * S, h.C.GetStatistics().CongestionWindow);
        DupAcks(h, 1);
        h.Recv(Segment(h, data, 11));
        h.RecvNothing();
        Assert.Equal(10 * S, h.C.GetStatistics().CongestionWindow);
        Assert.Equal(12 * S, h.C.GetStatistics().BytesInFlight);
        Assert.Equal(0, h.C.Retransmissions);
    }

    // RFC 3042 2: only "if the receiver's advertised window allows": a peer window of exactly ten
    // segments, all in flight, lets nothing more out.
    [Fact]
    public void LimitedTransmit_ReceiveWindowFull_NothingSent_Rfc3042()
    {
        var h = NewReno(window: 10 * S, windowScale: false);
        h.Write(Bytes(20 * S));
        Assert.Equal(10, h.RecvAll().Count);
        DupAcks(h, 2);
        h.RecvNothing();
    }

    // RFC 3042 2: limited transmit needs previously unsent data; without any, the first two
    // duplicate ACKs send nothing (and retransmit nothing).
    [Fact]
    public void LimitedTransmit_NoNewData_NothingSent_Rfc3042()
    {
        var (h, _) = TenInFlight(segments: 10);
        DupAcks(h, 2);
        h.RecvNothing();
    }

    // RFC 3042 / RFC 5681 3.2: an ACK for new data ends the duplicate run; its allowance does not
    // carry over (the next duplicates count from one again).
    [Fact]
    public void LimitedTransmit_AllowanceEndsWithNewAck_Rfc3042()
    {
        var (h, data) = TenInFlight(segments: 30);
        DupAcks(h, 2);
        Assert.Equal(2, h.RecvAll().Count);
        h.Send(h.Peer(ack: S));
        // Slow start: cwnd 11 SMSS, and 11 segments still in flight: nothing new.
        h.RecvNothing();
        DupAcks(h, 2, ack: S);
        Assert.Equal(2, h.RecvAll().Count);
        Assert.Equal(0, h.C.FastRetransmits);
        DupAcks(h, 1, ack: S);
        h.Recv(Segment(h, data, 1));
        Assert.Equal(1, h.C.FastRetransmits);
    }
}
