using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// SACK-based loss recovery of RFC 6675 with loss found by DupThresh (RACK off): IsLost, the
/// pipe, NextSeg, the recovery point; limited transmit under SACK; reneging (RFC 2018 8). The
/// peer offers SACK but no timestamps; NewReno so that windows are exact.
/// </summary>
public class TcpRecoverySackTests
{
    private const int S = Mss;

    private static TcpHarness SackConn(TcpSettings? settings = null) =>
        Established(Classic(settings), synOptions: LinuxSyn(ts: false));

    private static Seg Segment(TcpHarness h, byte[] data, int index)
    {
        int start = index * S, end = Math.Min(data.Length, start + S);
        var flags = end == data.Length ? TcpFlags.Psh | TcpFlags.Ack : TcpFlags.Ack;
        return h.Ours(seq: start, flags: flags, data: data[start..end]);
    }

    /// <summary>An ACK of <paramref name="ack"/> segments with SACK blocks given in segments [left, right).</summary>
    internal static Seg SackAck(TcpHarness h, int ack, params (int Left, int Right)[] blocks)
    {
        var o = h.EchoOptions();
        foreach (var (l, r) in blocks) o.AddSackBlock(h.OurBlock(l * S, r * S));
        return h.Peer(ack: ack * S) with { Options = o };
    }

    private static (TcpHarness H, byte[] Data) TenInFlight(int segments, TcpSettings? settings = null)
    {
        var h = SackConn(settings);
        var data = Bytes(segments * S);
        h.Write(data);
        Assert.Equal(10, h.RecvAll().Count);
        return (h, data);
    }

    // ---- IsLost (RFC 6675 4) ----

    // RFC 6675 4 IsLost: true when "more than (DupThresh - 1) * SMSS bytes with sequence numbers
    // greater than 'SeqNum' have been SACKed"; RFC 6675 5 (2): then recovery starts even before
    // DupThresh duplicate ACKs. One ACK SACKing two segments above the hole is not enough (2 SMSS
    // is not more than 2 SMSS); one SACKing three is, and segment 0 goes out at once.
    [Fact]
    public void Sack_IsLost_MoreThanDupThreshMinusOneSmssSacked_Rfc6675_4()
    {
        var (h, data) = TenInFlight(10);
        h.Send(SackAck(h, 0, (1, 3)));
        h.RecvNothing();
        Assert.Equal(0, h.C.FastRetransmits);
        h.Send(SackAck(h, 0, (1, 4)));
        h.Recv(Segment(h, data, 0));
        h.RecvNothing();
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // RFC 6675 4 IsLost: true when "DupThresh discontiguous SACKed sequences have arrived above
    // 'SeqNum'": three small SACKed segments (300 bytes, far below 2 SMSS) in separate blocks.
    [Fact]
    public void Sack_IsLost_DupThreshDiscontiguousSackedSegments_Rfc6675_4()
    {
        var h = SackConn(new TcpSettings { NoDelay = true });
        var data = Bytes(10 * 100);
        for (int i = 0; i < 10; i++) h.Write(data.AsSpan(i * 100, 100));
        Assert.Equal(10, h.RecvAll().Count);
        var two = h.EchoOptions();
        two.AddSackBlock(h.OurBlock(100, 200));
        two.AddSackBlock(h.OurBlock(300, 400));
        h.Send(h.Peer() with { Options = two });
        h.RecvNothing();
        var three = h.EchoOptions();
        three.AddSackBlock(h.OurBlock(500, 600));
        three.AddSackBlock(h.OurBlock(100, 200));
        three.AddSackBlock(h.OurBlock(300, 400));
        h.Send(h.Peer() with { Options = three });
        h.Recv(h.Ours(seq: 0, data: data[..100])); // no PSH: more data follows it now
        h.RecvNothing();
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // RFC 6675 5 (3): DupThresh duplicate ACKs (ACKs bringing new SACK information) start recovery
    // even when IsLost does not yet hold for the first segment (three small contiguous segments).
    [Fact]
    public void Sack_DupThreshDuplicateAcks_StartRecovery_Rfc6675_5()
    {
        var h = SackConn(new TcpSettings { NoDelay = true });
        var data = Bytes(10 * 100);
        for (int i = 0; i < 10; i++) h.Write(data.AsSpan(i * 100, 100));
        Assert.Equal(10, h.RecvAll().Count);
        for (int i = 1; i <= 2; i++)
        {
            var o = h.EchoOptions();
            o.AddSackBlock(h.OurBlock(100, 100 + i * 100));
            h.Send(h.Peer() with { Options = o });
            h.RecvNothing();
        }
        var third = h.EchoOptions();
        third.AddSackBlock(h.OurBlock(100, 400));
        h.Send(h.Peer() with { Options = third });
        h.Recv(h.Ours(seq: 0, data: data[..100])); // no PSH: more data follows it now
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // ---- recovery (RFC 6675 5) ----

    // RFC 6675 5: segments 0, 2 and 4 of ten are lost. Limited transmit sends one new segment per
    // SACKing ACK (cwnd - pipe); the third SACKing ACK starts recovery (4.1 RecoveryPoint =
    // HighData, 4.2 cwnd = ssthresh = FlightSize / 2 without the limited-transmit segments, 4.3 the
    // first hole resent at once). Then NextSeg (1) resends the other holes as IsLost marks them and
    // the pipe falls below cwnd, (2) new data next; SACKed segments left the pipe and are never
    // resent; the cumulative ACK of the recovery point ends recovery.
    [Fact]
    public void Sack_Recovery_HolesResentAsPipeAllows_SackedNeverResent_EndsAtRecoveryPoint_Rfc6675_5()
    {
        var (h, data) = TenInFlight(20);
        // Limited transmit under SACK (RFC 6675 5 (3) 1.3): one segment per SACKed segment.
        h.Send(SackAck(h, 0, (1, 2)));
        h.Recv(Segment(h, data, 10));
        h.RecvNothing();
        h.Send(SackAck(h, 0, (3, 4), (1, 2)));
        h.Recv(Segment(h, data, 11));
        h.RecvNothing();

        h.Send(SackAck(h, 0, (5, 6), (3, 4), (1, 2)));
        h.Recv(Segment(h, data, 0));
        h.RecvNothing();
        var s = h.C.GetStatistics();
        Assert.Equal(5 * S, s.SlowStartThreshold);
        Assert.Equal(5 * S, s.CongestionWindow);
        // pipe: 2, 4, 6..11 and the retransmitted 0.
        Assert.Equal(9 * S, s.BytesInFlight);

        h.Send(SackAck(h, 0, (5, 7), (3, 4), (1, 2)));  // 2 is now lost: pipe 7
        h.RecvNothing();
        h.Send(SackAck(h, 0, (5, 8), (3, 4), (1, 2)));  // 4 is now lost: pipe 5
        h.RecvNothing();
        h.Send(SackAck(h, 0, (5, 9), (3, 4), (1, 2)));  // pipe 4: resend 2
        h.Recv(Segment(h, data, 2));
        h.RecvNothing();
        h.Send(SackAck(h, 0, (5, 10), (3, 4), (1, 2))); // pipe 4: resend 4
        h.Recv(Segment(h, data, 4));
        h.RecvNothing();
        h.Send(SackAck(h, 0, (5, 11), (3, 4), (1, 2))); // no hole left: new data
        h.Recv(Segment(h, data, 12));
        h.RecvNothing();
        h.Send(SackAck(h, 0, (5, 12), (3, 4), (1, 2)));
        h.Recv(Segment(h, data, 13));
        h.RecvNothing();

        h.Send(SackAck(h, 2, (3, 4), (5, 12)));         // retransmitted 0 arrived
        h.Recv(Segment(h, data, 14));
        h.RecvNothing();
        h.Send(SackAck(h, 4, (5, 12)));                 // retransmitted 2 arrived
        h.Recv(Segment(h, data, 15));
        h.RecvNothing();
        Assert.Equal(3, h.C.Retransmissions);
        Assert.Equal(1, h.C.FastRetransmits);

        // Retransmitted 4 arrived: 12 segments acknowledged, the recovery point. Recovery ends with
        // cwnd = ssthresh and four new segments in flight: one more goes out.
        h.Send(h.Peer(ack: 12 * S));
        h.Recv(Segment(h, data, 16));
        h.RecvNothing();
        Assert.Equal(5 * S, h.C.GetStatistics().CongestionWindow);
        Assert.Equal(3, h.C.Retransmissions);
        // Open again: an ACK for new data grows cwnd (congestion avoidance, byte counting).
        for (int k = 13; k <= 17; k++) { h.Send(h.Peer(ack: k * S)); h.RecvAll(); }
        Assert.Equal(6 * S, h.C.GetStatistics().CongestionWindow);
        Assert.Equal(1, h.C.FastRetransmits);
    }

    // RFC 6298 5.3 restarts the timer only on an ACK of new data; as Linux
    // (tcp_xmit_retransmit_queue), resending the segment at SND.UNA restarts it too, so that the
    // repair gets a full RTO before a timeout (the SACKing ACK itself acknowledged nothing new).
    [Fact]
    public void Sack_FastRetransmitOfHead_RestartsRetransmissionTimer_Linux()
    {
        var (h, data) = TenInFlight(10);
        var t0 = h.Now;
        var rto = h.C.GetStatistics().Rto;
        Assert.Equal(t0 + rto, h.C.NextDeadline);
        h.After(Ms(50));
        h.Send(SackAck(h, 0, (1, 4)));
        h.Recv(Segment(h, data, 0));
        Assert.Equal(h.Now + h.C.GetStatistics().Rto, h.C.NextDeadline);
    }

    // RFC 6675 5 (3) with RFC 5681 3.2 / RFC 3042: under SACK, limited transmit is governed by
    // pipe and cwnd ("If (cwnd - pipe) >= 1 SMSS ... transmit up to 1 SMSS"): each ACK that SACKs
    // one segment lets exactly one new segment out, not two.
    [Fact]
    public void Sack_LimitedTransmit_OneNewSegmentPerSackedSegment_Rfc6675_5()
    {
        var (h, data) = TenInFlight(20);
        h.Send(SackAck(h, 0, (1, 2)));
        h.Recv(Segment(h, data, 10));
        h.RecvNothing();
        h.Send(SackAck(h, 0, (1, 3)));
        h.Recv(Segment(h, data, 11));
        h.RecvNothing();
        Assert.Equal(10 * S, h.C.GetStatistics().CongestionWindow);
    }

    // RFC 6675 5: an ACK that repeats SACK information already known brings no new information: it
    // is not a duplicate ACK and sends nothing.
    [Fact]
    public void Sack_RepeatedSackInformation_NotADuplicateAck_Rfc6675_2()
    {
        var (h, _) = TenInFlight(20);
        h.Send(SackAck(h, 0, (1, 2)));
        Assert.Single(h.RecvAll());
        for (int i = 0; i < 3; i++)
        {
            h.Send(SackAck(h, 0, (1, 2)));
            h.RecvNothing();
        }
        Assert.Equal(0, h.C.FastRetransmits);
    }

    // ---- reneging (RFC 2018 8) ----

    // RFC 2018 8: "the data sender MUST NOT discard data before it is acknowledged by the
    // Acknowledgment Number field ... SACK information is advisory": when the receiver drops
    // out-of-order data it SACKed, the cumulative ACK stops at a SACKed segment. After a timeout
    // with SND.UNA's segment SACKed, the sender forgets every SACK mark (Linux
    // tcp_check_sack_reneging) and resends from SND.UNA in slow start.
    [Fact]
    public void Sack_Reneging_SackedHeadAfterRto_MarksForgottenAndResent_Rfc2018_8()
    {
        var (h, data) = TenInFlight(10);
        h.Send(SackAck(h, 0, (1, 10)));
        h.Recv(Segment(h, data, 0));
        h.RecvNothing();
        // The retransmission arrived; the receiver reneged on 1..9 (no SACK blocks any more).
        h.Send(h.Peer(ack: S));
        h.RecvNothing();
        h.AtNextDeadline();
        Assert.Equal(1, h.C.RetransmissionTimeouts);
        h.Recv(Segment(h, data, 1));
        h.RecvNothing();
        h.Send(h.Peer(ack: 2 * S));
        h.Recv(Segment(h, data, 2));
        h.Recv(Segment(h, data, 3));
        h.RecvNothing();
    }

    // A timeout without reneging keeps the SACK marks: SACKed segments are not resent after an RTO
    // (RFC 6675 5.1: "the data sender SHOULD use the SACK information ... (not) retransmit"
    // SACKed data; Linux tcp_enter_loss keeps them).
    [Fact]
    public void Sack_RtoWithoutReneging_SackedSegmentsNotResent_Rfc6675_5_1()
    {
        var (h, data) = TenInFlight(10);
        // 2, 3 SACKed; not enough for IsLost on 0 or 1.
        h.Send(SackAck(h, 0, (2, 4)));
        h.RecvNothing();
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0));
        h.RecvNothing();
        h.Send(SackAck(h, 1, (2, 4)));
        h.Recv(Segment(h, data, 1));
        h.Recv(Segment(h, data, 4));
        h.RecvNothing();
    }

    // The scoreboard is bounded (SackScoreboard.RangesFor: 64 ranges for a 16 KiB send buffer). A
    // block that would need range 65 is not kept there, but the peer still reported those bytes:
    // the records it covers are marked SACKed and never retransmitted (RFC 6675 5: retransmit
    // only what is not SACKed). 140 one-byte segments, every odd one SACKed: 70 separate ranges.
    [Fact]
    public void Sack_BlocksBeyondScoreboardBound_StillMarkTheirSegments_Rfc6675_5()
    {
        var h = SackConn(new TcpSettings { NoDelay = true, SendBufferSize = 16 * 1024 });
        Assert.Equal(64, SackScoreboard.RangesFor(h.Settings.SendBufferSize));
        for (int i = 0; i < 140; i++) h.Write([(byte)i]);
        Assert.Equal(140, h.RecvAll().Count);
        var resent = new List<int>();
        for (int first = 1; first < 140; first += 8)
        {
            var o = h.EchoOptions();
            for (int b = first; b < first + 8 && b < 140; b += 2) o.AddSackBlock(h.OurBlock(b, b + 1));
            h.Send(h.Peer() with { Options = o });
            foreach (var e in h.RecvAll()) if (e.Payload.Length > 0) resent.Add(e.Seq - (h.Iss + 1));
        }
        for (int step = 0; step < 20 && h.C.RetransmissionTimeouts == 0; step++)
        {
            h.AtNextDeadline();
            foreach (var e in h.RecvAll()) if (e.Payload.Length > 0) resent.Add(e.Seq - (h.Iss + 1));
        }
        Assert.NotEmpty(resent);
        Assert.All(resent, offset => Assert.True(offset % 2 == 0, $"SACKed byte {offset} was retransmitted"));
    }
}
