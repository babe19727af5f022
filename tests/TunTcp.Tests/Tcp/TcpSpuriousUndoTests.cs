using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// Spurious retransmissions and their undo: F-RTO for timeouts (RFC 5682), Eifel detection with
/// timestamps (RFC 3522) and D-SACK (RFC 3708) for fast retransmits, and the response that
/// restores the congestion state (RFC 4015). NewReno so that the windows are exact.
/// </summary>
public class TcpSpuriousUndoTests
{
    private const TcpFlags PshAck = TcpFlags.Psh | TcpFlags.Ack;

    private static Seg Segment(TcpHarness h, byte[] data, int index, int mss)
    {
        int start = index * mss, end = Math.Min(data.Length, start + mss);
        var flags = end == data.Length ? PshAck : TcpFlags.Ack;
        return h.Ours(seq: start, flags: flags, data: data[start..end]);
    }

    // ---- F-RTO (RFC 5682), without SACK or timestamps ----

    private const int S = Mss;

    private static (TcpHarness H, byte[] Data) FrtoTenInFlight(int segments = 20)
    {
        var h = Established(Classic() with { Frto = true }, synOptions: LinuxSyn(ts: false, sack: false));
        var data = Bytes(segments * S);
        h.Write(data);
        Assert.Equal(10, h.RecvAll().Count);
        return (h, data);
    }

    // RFC 5682 2: (1) on the timeout only the first unacknowledged segment is resent; (2) the first
    // ACK after it advances the window without covering "recover": "transmit up to two new
    // (previously unsent) segments"; (3b) the second ACK also acknowledges data that was not
    // retransmitted: "declare the timeout spurious". RFC 4015 / Linux: cwnd and ssthresh come back
    // and no go-back-N follows: the next segments are new data.
    [Fact]
    public void Frto_TwoAcksOfNeverRetransmittedData_TimeoutSpurious_Undone_Rfc5682_2()
    {
        var (h, data) = FrtoTenInFlight();
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, S));
        h.RecvNothing();
        Assert.Equal(S, h.C.GetStatistics().CongestionWindow);
        Assert.Equal(5 * S, h.C.GetStatistics().SlowStartThreshold);

        h.After(Ms(10));
        h.Send(h.Peer(ack: 2 * S));
        h.Recv(Segment(h, data, 10, S));
        h.Recv(Segment(h, data, 11, S));
        h.RecvNothing();

        h.Send(h.Peer(ack: 4 * S));
        var s = h.C.GetStatistics();
        Assert.Equal(10 * S, s.CongestionWindow);
        Assert.Equal(int.MaxValue, s.SlowStartThreshold);
        Assert.Equal(1, h.Env.Statistics.SpuriousRetransmissionsUndone);
        // No go-back-N: 4..11 are in flight (8 segments of the restored 10), two new ones follow.
        h.Recv(Segment(h, data, 12, S));
        h.Recv(Segment(h, data, 13, S));
        h.RecvNothing();
        Assert.Equal(1, h.C.Retransmissions);
    }

    // RFC 5682 2a: "If the acknowledgment is a duplicate ACK ... revert to the conventional RTO
    // recovery and continue by retransmitting unacknowledged data in slow start": after the
    // duplicate, the ACK of the resent segment lets segments 1 and 2 be resent, not new data.
    [Fact]
    public void Frto_DuplicateAckAtFirstStep_ConventionalRecovery_Rfc5682_2a()
    {
        var (h, data) = FrtoTenInFlight();
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, S));
        h.Send(h.Peer());
        h.RecvNothing();
        h.Send(h.Peer(ack: S));
        h.Recv(Segment(h, data, 1, S));
        h.Recv(Segment(h, data, 2, S));
        h.RecvNothing();
        Assert.Equal(0, h.Env.Statistics.SpuriousRetransmissionsUndone);
    }

    // RFC 5682 3a: a duplicate ACK after the new segments went out means the loss was real: "set
    // the congestion window to no more than 3 * MSS, and continue with the slow-start algorithm
    // retransmitting unacknowledged segments"; the timeout is not undone. The duplicate ACK shows a
    // segment (the first new one) has left the network, so one retransmission may go.
    [Fact]
    public void Frto_DuplicateAckAtSecondStep_ConventionalRecovery_NotUndone_Rfc5682_3a()
    {
        var (h, data) = FrtoTenInFlight();
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, S));
        h.Send(h.Peer(ack: S));
        h.Recv(Segment(h, data, 10, S));
        h.Recv(Segment(h, data, 11, S));
        h.RecvNothing();
        h.Send(h.Peer(ack: S));
        h.Recv(Segment(h, data, 1, S));
        h.RecvNothing();
        Assert.True(h.C.GetStatistics().CongestionWindow <= 3 * S);
        h.Send(h.Peer(ack: 2 * S));
        h.Recv(Segment(h, data, 2, S));
        Assert.Equal(0, h.Env.Statistics.SpuriousRetransmissionsUndone);
        Assert.Equal(5 * S, h.C.GetStatistics().SlowStartThreshold);
    }

    // RFC 5682 2b: "If the TCP sender is not able to transmit any previously unsent data ... the
    // recommended action is to refrain from entering step 3 of this algorithm. Rather, continue with
    // slow-start retransmissions following the conventional RTO recovery algorithm" - otherwise
    // nothing would be sent and the connection would wait for another timeout.
    [Fact]
    public void Frto_NoNewDataToSend_ConventionalRecoveryAtOnce_Rfc5682_2b()
    {
        var (h, data) = FrtoTenInFlight(segments: 10);
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, S));
        h.Send(h.Peer(ack: S));
        h.Recv(Segment(h, data, 1, S));
        h.Recv(Segment(h, data, 2, S));
        h.RecvNothing();
        Assert.Equal(1, h.C.RetransmissionTimeouts);
    }

    // RFC 5682 2a: an ACK that covers "recover" (everything sent before the timeout) tells nothing
    // about spuriousness: no undo, recovery simply ends.
    [Fact]
    public void Frto_FirstAckCoversRecover_NoUndo_Rfc5682_2a()
    {
        var (h, data) = FrtoTenInFlight(segments: 12);
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, S));
        h.Send(h.Peer(ack: 10 * S));
        Assert.Equal(0, h.Env.Statistics.SpuriousRetransmissionsUndone);
        Assert.Equal(5 * S, h.C.GetStatistics().SlowStartThreshold);
        h.Recv(Segment(h, data, 10, S));
        h.Recv(Segment(h, data, 11, S));
        h.RecvNothing();
    }

    // RFC 5682 2 step 1: F-RTO runs once per episode: a second timeout in a row (the resent
    // segment lost too) uses conventional recovery.
    [Fact]
    public void Frto_SecondTimeoutInARow_Conventional_Rfc5682_2()
    {
        var (h, data) = FrtoTenInFlight();
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, S));
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, S));
        h.RecvNothing();
        h.Send(h.Peer(ack: S));
        h.Recv(Segment(h, data, 1, S));
        h.Recv(Segment(h, data, 2, S));
        h.RecvNothing();
        Assert.Equal(0, h.Env.Statistics.SpuriousRetransmissionsUndone);
    }

    // RFC 5682 with SACK (as Linux): a D-SACK reports a duplicate, no loss: on the first ACK after
    // the timeout it does not stop F-RTO, which sends new data (step 2b), not retransmissions.
    [Fact]
    public void Frto_DsackOnFirstAck_NotTakenForLoss_Rfc5682_2b()
    {
        var h = Established(Classic() with { Frto = true }, synOptions: LinuxSyn(ts: false));
        var data = Bytes(20 * S);
        h.Write(data);
        Assert.Equal(10, h.RecvAll().Count);
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, S));
        h.After(Ms(10));
        h.Send(TcpRecoverySackTests.SackAck(h, 2, (0, 1)));
        h.Recv(Segment(h, data, 10, S));
        h.Recv(Segment(h, data, 11, S));
        h.RecvNothing();
        h.Send(h.Peer(ack: 4 * S));
        Assert.Equal(1, h.Env.Statistics.SpuriousRetransmissionsUndone);
        Assert.Equal(10 * S, h.C.GetStatistics().CongestionWindow);
    }

    // RFC 3708 (Linux tcp_try_undo_loss): a timeout whose only retransmission the peer reports as a
    // duplicate was spurious, also when one ACK covers everything sent before it (so that F-RTO
    // itself can tell nothing, RFC 5682 2a): undone, with F-RTO on (the engine undoes timeouts only
    // then); with it off, not.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Dsack_TimeoutsOnlyRetransmissionDsacked_Undone_Rfc3708(bool frto)
    {
        var h = Established(Classic() with { Frto = frto }, synOptions: LinuxSyn(ts: false));
        var data = Bytes(10 * S);
        h.Write(data);
        Assert.Equal(10, h.RecvAll().Count);
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, S));
        h.After(Ms(10));
        h.Send(TcpRecoverySackTests.SackAck(h, 10, (0, 1)));
        var s = h.C.GetStatistics();
        Assert.Equal(frto ? 1 : 0, h.Env.Statistics.SpuriousRetransmissionsUndone);
        Assert.Equal(frto ? 10 * S : 2 * S, s.CongestionWindow); // off: slow start from one segment
        Assert.Equal(frto ? int.MaxValue : 5 * S, s.SlowStartThreshold);
    }

    // Without F-RTO a timeout is never undone: go-back-N in slow start.
    [Fact]
    public void Frto_Disabled_TimeoutNotUndone_GoBackN()
    {
        var h = Established(Classic(), synOptions: LinuxSyn(ts: false, sack: false));
        var data = Bytes(20 * S);
        h.Write(data);
        h.RecvAll();
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, S));
        h.Send(h.Peer(ack: 2 * S));
        h.Recv(Segment(h, data, 2, S));
        h.Recv(Segment(h, data, 3, S));
        h.Send(h.Peer(ack: 4 * S));
        h.RecvAll();
        Assert.Equal(0, h.Env.Statistics.SpuriousRetransmissionsUndone);
        Assert.Equal(5 * S, h.C.GetStatistics().SlowStartThreshold);
    }

    // ---- Eifel detection (RFC 3522) with timestamps, fast retransmit ----

    private const int T = TsMss;

    // RFC 3522 2: "If the value of the Timestamp Echo Reply field of the acceptable ACK's Timestamps
    // option is smaller than the value of RetransmitTS, then ... SpuriousRecovery = TRUE": the
    // original of the fast-retransmitted segment arrived (it was only reordered), and the ACK echoes
    // the original's TSval. RFC 4015: cwnd and ssthresh are restored.
    [Fact]
    public void Eifel_AckEchoesOriginalTsVal_FastRetransmitUndone_Rfc3522_Rfc4015()
    {
        var h = Established(Classic(), synOptions: LinuxSyn(sack: false));
        var data = Bytes(10 * T);
        h.Write(data);
        Assert.Equal(10, h.RecvAll().Count);
        uint originalTsVal = h.LastTsVal!.Value;
        h.After(Ms(5));
        for (int i = 0; i < 3; i++) h.Send(h.Peer());
        h.Recv(Segment(h, data, 0, T));
        Assert.Equal(5 * T, h.C.GetStatistics().SlowStartThreshold);

        var echo = new TcpOptions();
        echo.SetTimestamps(h.PeerTsVal, originalTsVal);
        h.After(Ms(5));
        h.Send(h.Peer(ack: 10 * T) with { Options = echo });
        var s = h.C.GetStatistics();
        Assert.Equal(10 * T, s.CongestionWindow);
        Assert.Equal(int.MaxValue, s.SlowStartThreshold);
        Assert.Equal(1, h.Env.Statistics.SpuriousRetransmissionsUndone);
    }

    // RFC 3522: an ACK that echoes the retransmission's TSval shows the retransmission was needed:
    // no undo; recovery ends with cwnd = ssthresh.
    [Fact]
    public void Eifel_AckEchoesRetransmissionTsVal_NotUndone_Rfc3522()
    {
        var h = Established(Classic(), synOptions: LinuxSyn(sack: false));
        var data = Bytes(10 * T);
        h.Write(data);
        h.RecvAll();
        h.After(Ms(5));
        for (int i = 0; i < 3; i++) h.Send(h.Peer());
        h.Recv(Segment(h, data, 0, T));
        h.After(Ms(5));
        h.Send(h.Peer(ack: 10 * T));
        Assert.Equal(5 * T, h.C.GetStatistics().CongestionWindow);
        Assert.Equal(0, h.Env.Statistics.SpuriousRetransmissionsUndone);
    }

    // RFC 3522 with RFC 5682's setting: a timeout is undone by Eifel only when F-RTO is on (the
    // engine allows undoing a timeout only then); the ACK echoing the original's TSval does it at
    // the first ACK.
    [Fact]
    public void Eifel_SpuriousTimeout_UndoneAtFirstAck_Rfc3522()
    {
        var h = Established(Classic() with { Frto = true }, synOptions: LinuxSyn(sack: false));
        var data = Bytes(20 * T);
        h.Write(data);
        h.RecvAll();
        uint originalTsVal = h.LastTsVal!.Value;
        h.AtNextDeadline();
        h.Recv(Segment(h, data, 0, T));
        var echo = new TcpOptions();
        echo.SetTimestamps(h.PeerTsVal, originalTsVal);
        h.After(Ms(5));
        h.Send(h.Peer(ack: 2 * T) with { Options = echo });
        Assert.Equal(1, h.Env.Statistics.SpuriousRetransmissionsUndone);
        Assert.Equal(int.MaxValue, h.C.GetStatistics().SlowStartThreshold);
    }

    // ---- D-SACK (RFC 3708) ----

    private static (TcpHarness H, byte[] Data) DsackTenInFlight()
    {
        var h = Established(Classic(), synOptions: LinuxSyn(ts: false));
        var data = Bytes(10 * S);
        h.Write(data);
        Assert.Equal(10, h.RecvAll().Count);
        return (h, data);
    }

    // RFC 3708 3 / RFC 4015: the fast retransmit was needless when the receiver reports it as a
    // duplicate. Usually the D-SACK comes after the cumulative ACK that ended recovery (the late
    // original fills the hole first, then the retransmission arrives as a duplicate): the episode
    // is still undone then (Linux tcp_try_undo_dsack). cwnd and ssthresh come back.
    [Fact]
    public void Dsack_EveryRetransmissionDsackedAfterRecoveryEnd_EpisodeUndone_Rfc3708()
    {
        var (h, data) = DsackTenInFlight();
        h.Send(TcpRecoverySackTests.SackAck(h, 0, (1, 4)));
        h.Recv(Segment(h, data, 0, S));
        Assert.Equal(5 * S, h.C.GetStatistics().CongestionWindow);
        h.Send(h.Peer(ack: 10 * S));
        Assert.Equal(5 * S, h.C.GetStatistics().CongestionWindow);
        h.Send(TcpRecoverySackTests.SackAck(h, 10, (0, 1)));
        var s = h.C.GetStatistics();
        Assert.Equal(10 * S, s.CongestionWindow);
        Assert.Equal(int.MaxValue, s.SlowStartThreshold);
        Assert.Equal(1, h.Env.Statistics.SpuriousRetransmissionsUndone);
    }

    // RFC 3708 3: the D-SACK may also arrive while recovery goes on (data below the recovery point
    // still in flight): at the end of the episode, with every retransmission D-SACKed, undo.
    [Fact]
    public void Dsack_EveryRetransmissionDsackedBeforeRecoveryEnd_UndoneAtEnd_Rfc3708()
    {
        var (h, data) = DsackTenInFlight();
        h.Send(TcpRecoverySackTests.SackAck(h, 0, (1, 9)));
        h.Recv(Segment(h, data, 0, S));
        h.Send(h.Peer(ack: 9 * S));                               // the late original of 0
        h.Send(TcpRecoverySackTests.SackAck(h, 9, (0, 1)));        // its retransmission, a duplicate
        Assert.Equal(0, h.Env.Statistics.SpuriousRetransmissionsUndone);
        h.Send(h.Peer(ack: 10 * S));                              // segment 9: the recovery point
        Assert.Equal(10 * S, h.C.GetStatistics().CongestionWindow);
        Assert.Equal(1, h.Env.Statistics.SpuriousRetransmissionsUndone);
    }

    // RFC 3708 3: only when every retransmission of the episode is D-SACKed: segment 5 was really
    // lost (its retransmission filled the hole), so one D-SACK (for 0) is not enough.
    [Fact]
    public void Dsack_NotEveryRetransmissionDsacked_NotUndone_Rfc3708()
    {
        var (h, data) = DsackTenInFlight();
        h.Send(TcpRecoverySackTests.SackAck(h, 0, (1, 5), (6, 10)));
        var resent = h.RecvAll();
        Assert.Equal(2, resent.Count);
        h.Send(TcpRecoverySackTests.SackAck(h, 5, (6, 10)));      // the late original of 0
        h.Send(TcpRecoverySackTests.SackAck(h, 5, (0, 1), (6, 10)));
        h.Send(h.Peer(ack: 10 * S));                              // retransmitted 5 filled the hole
        Assert.Equal(0, h.Env.Statistics.SpuriousRetransmissionsUndone);
        Assert.Equal(5 * S, h.C.GetStatistics().CongestionWindow);
    }

    // RFC 3708 / Linux: a D-SACK for data that was never retransmitted (a duplicate made by the
    // network) undoes nothing.
    [Fact]
    public void Dsack_ForNeverRetransmittedData_NoUndo_Rfc3708()
    {
        var (h, data) = DsackTenInFlight();
        h.Send(h.Peer(ack: 10 * S));
        h.Send(TcpRecoverySackTests.SackAck(h, 10, (3, 4)));
        Assert.Equal(0, h.Env.Statistics.SpuriousRetransmissionsUndone);
    }

    // Undo off: neither D-SACK nor timestamps undo anything.
    [Fact]
    public void Dsack_UndoDisabled_NotUndone()
    {
        var h = Established(Classic() with { UndoSpuriousRetransmissions = false }, synOptions: LinuxSyn(ts: false));
        var data = Bytes(10 * S);
        h.Write(data);
        h.RecvAll();
        h.Send(TcpRecoverySackTests.SackAck(h, 0, (1, 4)));
        h.Recv(Segment(h, data, 0, S));
        h.Send(h.Peer(ack: 10 * S));
        h.Send(TcpRecoverySackTests.SackAck(h, 10, (0, 1)));
        Assert.Equal(0, h.Env.Statistics.SpuriousRetransmissionsUndone);
        Assert.Equal(5 * S, h.C.GetStatistics().CongestionWindow);
    }
}
