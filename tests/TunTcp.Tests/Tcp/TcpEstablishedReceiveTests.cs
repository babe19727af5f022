using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// ESTABLISHED, receive side: RFC 9293 3.10.7.4 first check (acceptability), trimming,
/// out-of-order data, duplicates, the seventh (text) and eighth (FIN) steps.
/// </summary>
public class TcpEstablishedReceiveTests
{
    /// <summary>A 1024-byte receive buffer: no shift of our own, so windows are plain byte counts.</summary>
    // Every unacceptable segment answered (the RFC text; the stack's per-connection rate limit of
    // such ACKs has its own tests in TcpSecurityTests).
    private static TcpHarness Small() => Established(new TcpSettings { ReceiveBufferSize = 1024, OutOfWindowAckInterval = TimeSpan.Zero });

    /// <summary>Fills the 1024-byte receive window and takes the (delayed) ACK that closes it.</summary>
    private static void FillWindow(TcpHarness h, int ourSeq)
    {
        h.Send(h.Peer(data: Bytes(1024)));
        h.At(h.Now + Ms(40));
        h.Recv(h.Ours(seq: ourSeq, ack: 1024) with { Window = 0 });
        h.RecvNothing();
    }

    // RFC 9293 3.10.7.4 seventh: in-order text goes to the user and RCV.NXT advances; 3.8.6.3:
    // the ACK may be delayed (under 0.5 s; 40 ms by default here, like Linux's minimum).
    [Fact]
    public void Established_InOrderData_DeliveredAndAckDelayed_Rfc9293_3_8_6_3()
    {
        var h = Established();
        h.Send(h.Peer(flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(104)));
        Assert.Equal(TcpConnectionEvents.Readable, h.Events);
        Assert.Equal(104, h.C.ReceiveBuffer.Count);
        h.NothingUntil(h.Now + Ms(40));
        h.Recv(h.Ours(ack: 104) with { Window = h.Win(104) });
        h.RecvNothing();
        Assert.Equal(Bytes(104), h.ReadAll());
        Assert.True(h.C.NextDeadline.IsNever);
    }

    // RFC 5681 4.2 / RFC 9293 3.8.6.3: "an ACK SHOULD be generated for at least every second
    // full-sized segment". With timestamps a full-sized segment carries MSS - 12 bytes.
    [Fact]
    public void Established_TwoFullSizedSegments_AckedAtOnce_Rfc5681_4_2()
    {
        var h = Established();
        h.Send(h.Peer(data: Bytes(TsMss)));
        h.RecvNothing();
        h.Send(h.Peer(seq: TsMss, data: Bytes(TsMss, TsMss)));
        h.Recv(h.Ours(ack: 2 * TsMss) with { Window = h.Win(2 * TsMss) });
        h.RecvNothing();
        Assert.True(h.C.NextDeadline.IsNever);
    }

    // Without timestamps a full-sized segment is the whole MSS.
    [Fact]
    public void Established_TwoFullSizedSegmentsWithoutTimestamps_AckedAtOnce()
    {
        var h = Established(synOptions: new TcpOptions { MaxSegmentSize = Mss });
        h.Send(h.Peer(data: Bytes(Mss)));
        h.RecvNothing();
        h.Send(h.Peer(seq: Mss, data: Bytes(Mss)));
        h.Recv(h.Ours(ack: 2 * Mss) with { Window = (ushort)Math.Min(65535, 262144 - 2 * Mss) });
    }

    // ---- RFC 9293 3.10.7.4, the four acceptability cases ----

    // Case 1: SEG.LEN = 0, RCV.WND = 0: acceptable only if SEG.SEQ = RCV.NXT.
    [Fact]
    public void Established_ZeroLengthZeroWindow_AcceptableOnlyAtRcvNxt()
    {
        var h = Small();
        h.Write(Bytes(10));
        h.Recv(h.Ours(flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(10)));
        FillWindow(h, 10);
        h.OurWindow = 0;

        // Not at RCV.NXT: not acceptable; <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, and the ACK field is ignored.
        h.Send(h.Peer(seq: 1025, ack: 10));
        h.Recv(h.Ours(seq: 10, ack: 1024));
        h.Send(h.Peer(seq: 1023, ack: 10));
        h.Recv(h.Ours(seq: 10, ack: 1024));
        Assert.Equal(10, h.C.GetStatistics().BytesInFlight);

        // At RCV.NXT: acceptable; its ACK is processed, nothing is sent.
        h.Send(h.Peer(seq: 1024, ack: 10));
        h.RecvNothing();
        Assert.Equal(0, h.C.GetStatistics().BytesInFlight);
    }

    // Case 2: SEG.LEN = 0, RCV.WND > 0: acceptable if RCV.NXT =< SEG.SEQ < RCV.NXT + RCV.WND.
    [Theory]
    [InlineData(0, true)]
    [InlineData(1, true)]
    [InlineData(1023, true)]
    [InlineData(1024, false)]
    [InlineData(-1, false)]
    [InlineData(-70000, false)]
    public void Established_ZeroLengthOpenWindow_AcceptableInsideWindow(int seqOffset, bool acceptable)
    {
        var h = Small();
        h.OurWindow = 1024;
        h.Write(Bytes(10));
        h.Recv(h.Ours(flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(10)));
        h.Send(h.Peer(seq: seqOffset, ack: 10));
        if (acceptable)
        {
            h.RecvNothing();
            Assert.Equal(0, h.C.GetStatistics().BytesInFlight);
        }
        else
        {
            h.Recv(h.Ours(seq: 10));
            h.RecvNothing();
            Assert.Equal(10, h.C.GetStatistics().BytesInFlight);
            Assert.Equal(1, h.Env.Statistics.UnacceptableSegments);
        }
    }

    // Case 3: SEG.LEN > 0, RCV.WND = 0: not acceptable - but "special allowance should be made to
    // accept valid ACKs, URGs, and RSTs": at RCV.NXT the ACK field is processed, the data dropped
    // and an ACK (still advertising zero) sent.
    [Fact]
    public void Established_DataIntoZeroWindow_NotAccepted_AckFieldProcessed()
    {
        var h = Small();
        h.Write(Bytes(10));
        h.Recv(h.Ours(flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(10)));
        FillWindow(h, 10);
        h.OurWindow = 0;

        h.Send(h.Peer(seq: 1024, ack: 10, data: Bytes(100)));
        h.Recv(h.Ours(seq: 10, ack: 1024));
        h.RecvNothing();
        Assert.Equal(1024, h.C.ReceiveBuffer.Count);
        Assert.Equal(0, h.C.GetStatistics().BytesInFlight);

        // Elsewhere than RCV.NXT it is simply unacceptable; its ACK field is not looked at.
        h.Write(Bytes(5));
        h.Recv(h.Ours(seq: 10, ack: 1024, flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(5)));
        h.Send(h.Peer(seq: 1030, ack: 15, data: Bytes(100)));
        h.Recv(h.Ours(seq: 15, ack: 1024));
        Assert.Equal(5, h.C.GetStatistics().BytesInFlight);
    }

    // Case 4: SEG.LEN > 0, RCV.WND > 0: acceptable if the first or the last byte is in the window.
    [Theory]
    [InlineData(0, 100, true, 100)]     // starts at RCV.NXT
    [InlineData(1000, 100, true, 0)]    // starts inside, runs past the right edge (held out of order)
    [InlineData(-50, 100, true, 50)]    // starts before RCV.NXT, ends inside
    [InlineData(-100, 100, false, 0)]   // ends exactly at RCV.NXT: an old duplicate
    [InlineData(1024, 10, false, 0)]    // starts at the right edge
    // Neither the first nor the last byte in the window: not acceptable by the RFC's test, even
    // though the segment covers the whole window (Linux's tcp_sequence would take it and trim).
    [InlineData(-50, 2000, false, 0)]
    public void Established_DataOpenWindow_AcceptableIfFirstOrLastByteInWindow(int seqOffset, int length, bool acceptable, int delivered)
    {
        var h = Small();
        h.Send(h.Peer(seq: seqOffset, data: Bytes(length, seqOffset)));
        var sent = h.RecvAll();
        Assert.Equal(delivered, h.C.ReceiveBuffer.Count);
        if (acceptable)
        {
            Assert.Equal(0, h.Env.Statistics.UnacceptableSegments);
        }
        else
        {
            Assert.Equal(1, h.Env.Statistics.UnacceptableSegments);
            var ack = Assert.Single(sent);
            Assert.Equal(h.Irs + 1, ack.Ack);
            Assert.Equal(0, h.C.ReceiveBuffer.Count);
        }
    }

    // RFC 9293 3.10.7.4: "segments with higher beginning sequence numbers may be held"; text beyond
    // the right edge is trimmed ("the segment ... should be trimmed"); a FIN beyond it is not seen.
    [Fact]
    public void Established_SegmentPastRightEdge_TrimmedToWindow_FinBeyondIgnored()
    {
        var h = Small();
        h.Send(h.Peer(flags: TcpFlags.Ack | TcpFlags.Fin, data: Bytes(1100)));
        Assert.Equal(1024, h.C.ReceiveBuffer.Count);
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.False(h.C.PeerFinReceived);
        h.At(h.Now + Ms(40));
        h.Recv(h.Ours(ack: 1024) with { Window = 0 });
        Assert.Equal(Bytes(1024), h.Read(1024));
    }

    // RFC 9293 3.10.7.4: "If a segment's contents straddle the boundary between old and new, only
    // the new parts are processed"; RFC 2883 4.1.1 reports the duplicate part in a D-SACK block.
    [Fact]
    public void Established_SegmentOverlappingRcvNxt_OnlyNewBytesDelivered_DsackReported_Rfc2883()
    {
        var h = Established();
        h.Send(h.Peer(data: Bytes(104)));
        h.Send(h.Peer(seq: 56, data: Bytes(104, 56)));
        Assert.Equal(160, h.C.ReceiveBuffer.Count);
        h.At(h.Now + Ms(40));
        h.Recv(h.Ours(ack: 160) with { Window = h.Win(160), Options = h.OurOptions(h.PeerBlock(56, 104)) });
        h.RecvNothing();
        Assert.Equal(Bytes(160), h.Read(160));
    }

    // RFC 9293 3.10.7.4 and RFC 5681 4.2: out-of-order data is kept and acknowledged at once with
    // a duplicate ACK carrying a SACK block (RFC 2018 4); when the hole fills, everything is
    // delivered in order and acknowledged at once.
    [Fact]
    public void Established_OutOfOrderData_KeptReassembledAndAcked_Rfc2018()
    {
        var h = Established();
        h.Send(h.Peer(seq: 104, data: Bytes(96, 104)));
        Assert.Equal(0, h.C.ReceiveBuffer.Count);
        h.Recv(h.Ours() with { Options = h.OurOptions(h.PeerBlock(104, 200)) });
        h.RecvNothing();

        h.Send(h.Peer(seq: 304, data: Bytes(100, 304)));
        h.Recv(h.Ours() with { Options = h.OurOptions(h.PeerBlock(304, 404), h.PeerBlock(104, 200)) });

        h.Send(h.Peer(data: Bytes(104)));
        h.Recv(h.Ours(ack: 200) with { Window = h.Win(200), Options = h.OurOptions(h.PeerBlock(304, 404)) });
        Assert.Equal(Bytes(200), h.Read(1000));
        Assert.Equal(0, h.C.ReceiveBuffer.Count);

        // The last hole: the segment overlaps the held range; all 404 bytes are in order now.
        h.Send(h.Peer(seq: 200, data: Bytes(150, 200)));
        // RFC 9293 3.8.6.2.2: the 200 bytes read freed less than an MSS, so the right edge stays.
        h.Recv(h.Ours(ack: 404) with { Window = (262144 - 404) >> 3 });
        Assert.Equal(Bytes(204, 200), h.Read(1000));
    }

    // RFC 2018 4: the first SACK block reports the most recently received segment; at most three
    // blocks fit beside the timestamps option; RFC 5681 4.2 immediate ACK for every out-of-order segment.
    [Fact]
    public void Established_ManyHoles_SackBlocksMostRecentFirst_AtMostThreeWithTimestamps()
    {
        var h = Established();
        int[] starts = [1000, 3000, 2000, 5000];
        foreach (var s in starts) { h.Send(h.Peer(seq: s, data: Bytes(100, s))); h.Recv(); }
        h.Send(h.Peer(seq: 4000, data: Bytes(100, 4000)));
        h.Recv(h.Ours() with { Options = h.OurOptions(h.PeerBlock(4000, 4100), h.PeerBlock(5000, 5100), h.PeerBlock(2000, 2100)) });
        // A segment extending a held range: that range comes first, grown.
        h.Send(h.Peer(seq: 1100, data: Bytes(50, 1100)));
        h.Recv(h.Ours() with { Options = h.OurOptions(h.PeerBlock(1000, 1150), h.PeerBlock(4000, 4100), h.PeerBlock(5000, 5100)) });
    }

    // Without timestamps four SACK blocks fit (RFC 2018 3: 40 bytes of options).
    [Fact]
    public void Established_ManyHolesWithoutTimestamps_FourSackBlocks()
    {
        var h = Established(synOptions: new TcpOptions { MaxSegmentSize = Mss, SackPermitted = true });
        foreach (var s in new[] { 1000, 2000, 3000, 4000 }) { h.Send(h.Peer(seq: s, data: Bytes(10, s))); h.Recv(); }
        h.Send(h.Peer(seq: 5000, data: Bytes(10, 5000)));
        h.Recv(h.Ours() with
        {
            Window = 65535,
            Options = h.OurOptions(h.PeerBlock(5000, 5010), h.PeerBlock(4000, 4010), h.PeerBlock(3000, 3010), h.PeerBlock(2000, 2010)),
        });
    }

    // RFC 9293 3.10.7.4 first check: an old duplicate (entirely below RCV.NXT) is not acceptable:
    // it is answered with an ACK and dropped; RFC 2883 4.1.1 reports it as a D-SACK block.
    [Fact]
    public void Established_DuplicateSegment_DroppedAndReportedAsDsack_Rfc2883_4_1_1()
    {
        var h = Established();
        h.Send(h.Peer(data: Bytes(104)));
        h.Send(h.Peer(data: Bytes(104)));
        h.Recv(h.Ours(ack: 104) with { Window = h.Win(104), Options = h.OurOptions(h.PeerBlock(0, 104)) });
        h.RecvNothing();
        Assert.Equal(104, h.C.ReceiveBuffer.Count);
        // The D-SACK is reported once only.
        h.Send(h.Peer(seq: 104, data: Bytes(8)));
        h.NothingUntil(h.Now + Ms(40));
        h.Recv(h.Ours(ack: 112) with { Window = h.Win(112) });
    }

    // RFC 2883 4.1.2: a duplicate of out-of-order data: the first block is the D-SACK, the
    // second the SACK block that contains it.
    [Fact]
    public void Established_DuplicateOutOfOrderSegment_DsackThenContainingBlock_Rfc2883_4_1_2()
    {
        var h = Established();
        h.Send(h.Peer(seq: 200, data: Bytes(100, 200)));
        h.Recv();
        h.Send(h.Peer(seq: 200, data: Bytes(100, 200)));
        h.Recv(h.Ours() with { Options = h.OurOptions(h.PeerBlock(200, 300), h.PeerBlock(200, 300)) });
    }

    // No unbounded memory: out-of-order data is held only inside the window (in the ring's free
    // space), and in at most ReceiveAssembler.RangesFor(buffer) separate ranges; a segment that
    // would need one more is dropped (the sender will retransmit it) but still acknowledged.
    [Fact]
    public void Established_OutOfOrderRangesBounded_ExtraRangeDropped()
    {
        var h = Established(new TcpSettings { ReceiveBufferSize = 64 * 1024 });
        int max = ReceiveAssembler.RangesFor(h.Settings.ReceiveBufferSize);
        Assert.Equal(64, max);
        for (int i = 0; i < max; i++)
        {
            h.Send(h.Peer(seq: 100 + i * 20, data: Bytes(10)));
            h.Recv();
        }
        Assert.Equal(0, h.Env.Statistics.OutOfOrderDrops);
        h.Send(h.Peer(seq: 100 + (max + 8) * 20, data: Bytes(10)));
        var ack = h.Recv();
        Assert.Equal(h.Irs + 1, ack.Ack);
        Assert.Equal(h.PeerBlock(100 + (max - 1) * 20, 110 + (max - 1) * 20), ack.Options.SackBlocks[0]);
        Assert.Equal(1, h.Env.Statistics.OutOfOrderDrops);
        // Extending an existing range needs no new one and is kept.
        h.Send(h.Peer(seq: 110, data: Bytes(10)));
        Assert.Equal(h.PeerBlock(100, 130), h.Recv().Options.SackBlocks[0]); // touching ranges merge
        Assert.Equal(1, h.Env.Statistics.OutOfOrderDrops);
    }

    // RFC 9293 3.10.7.4 eighth: "If the FIN bit is set ... advance RCV.NXT over the FIN, and send an
    // acknowledgment for the FIN"; ESTABLISHED enters CLOSE-WAIT; the user is told (end of stream).
    [Fact]
    public void Established_Fin_EntersCloseWait_AckedAtOnce()
    {
        var h = Established();
        h.Send(h.Peer(flags: TcpFlags.Ack | TcpFlags.Fin));
        Assert.Equal(TcpConnectionState.CloseWait, h.C.State);
        Assert.True(h.C.PeerFinReceived);
        Assert.Equal(TcpConnectionEvents.Readable, h.Events);
        h.Recv(h.Ours(ack: 1));
        h.RecvNothing();
    }

    // A FIN riding on the last data segment: data delivered, then the FIN; one ACK for both.
    [Fact]
    public void Established_FinOnData_DataDeliveredThenCloseWait()
    {
        var h = Established();
        h.Send(h.Peer(flags: TcpFlags.Ack | TcpFlags.Psh | TcpFlags.Fin, data: Bytes(104)));
        Assert.Equal(TcpConnectionState.CloseWait, h.C.State);
        h.Recv(h.Ours(ack: 105) with { Window = h.Win(104) });
        h.RecvNothing();
        Assert.Equal(Bytes(104), h.ReadAll());
    }

    // RFC 9293 3.10.7.4 eighth: "If the FIN bit is set, ... process it" only once it is in sequence:
    // a FIN after a hole waits until the hole is filled.
    [Fact]
    public void Established_FinOutOfOrder_ProcessedOnlyWhenGapFills()
    {
        var h = Established();
        h.Send(h.Peer(seq: 104, flags: TcpFlags.Ack | TcpFlags.Fin, data: Bytes(96, 104)));
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.False(h.C.PeerFinReceived);
        // The SACK block takes the waiting FIN in (Linux does the same), so the sender sees
        // its whole last segment arrive.
        h.Recv(h.Ours() with { Options = h.OurOptions(h.PeerBlock(104, 201)) });

        h.Send(h.Peer(data: Bytes(104)));
        Assert.Equal(TcpConnectionState.CloseWait, h.C.State);
        h.Recv(h.Ours(ack: 201) with { Window = (262144 - 201) >> 3 });
        h.RecvNothing();
        Assert.Equal(Bytes(200), h.ReadAll());
    }

    // A bare FIN out of order (beyond a hole) waits too, and is taken when the hole fills.
    [Fact]
    public void Established_BareFinAfterHole_WaitsForData()
    {
        var h = Established();
        h.Send(h.Peer(seq: 104, flags: TcpFlags.Ack | TcpFlags.Fin));
        h.Recv(h.Ours());
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        h.Send(h.Peer(data: Bytes(104)));
        Assert.Equal(TcpConnectionState.CloseWait, h.C.State);
        // The right edge stays where the first ACK put it; the FIN took one more sequence number.
        h.Recv(h.Ours(ack: 105) with { Window = (262144 - 105) >> 3 });
    }

    // A retransmitted FIN (below RCV.NXT after we took it) is a duplicate: ACK, no state change.
    [Fact]
    public void Established_RetransmittedFinInCloseWait_Reacked()
    {
        var h = Established();
        h.Send(h.Peer(flags: TcpFlags.Ack | TcpFlags.Fin));
        h.Recv();
        h.Send(h.Peer(flags: TcpFlags.Ack | TcpFlags.Fin));
        h.Recv(h.Ours(ack: 1));
        Assert.Equal(TcpConnectionState.CloseWait, h.C.State);
    }

    // RFC 9293 3.10.7.4 seventh, CLOSE-WAIT: "This should not occur since a FIN has been received
    // from the remote side. Ignore the segment text." (beyond the FIN: acknowledged, not kept).
    [Fact]
    public void Established_DataAfterFin_Ignored()
    {
        var h = Established();
        h.Send(h.Peer(flags: TcpFlags.Ack | TcpFlags.Fin));
        h.Recv();
        h.Send(h.Peer(seq: 1, data: Bytes(10)));
        h.Recv(h.Ours(ack: 1));
        Assert.Equal(0, h.C.ReceiveBuffer.Count);
    }
}
