using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// Timers, all driven by the instants the test passes in: retransmission (RFC 6298), persist
/// (RFC 9293 3.8.6.1), delayed ACK (RFC 9293 3.8.6.3), keepalive (RFC 1122 4.2.3.6).
/// </summary>
public class TcpTimerTests
{
    private const TcpFlags PshAck = TcpFlags.Psh | TcpFlags.Ack;

    // ---- retransmission timeout ----

    // RFC 6298 5.4-5.6: on expiry retransmit the earliest unacknowledged segment, double the RTO
    // ("back off the timer"), bounded by the maximum (120 s, Linux's TCP_RTO_MAX; RFC 6298 2.5
    // asks for at least 60 s); after MaxRetransmissions (Linux tcp_retries2 = 15) give up and
    // report the timeout. The RTO starts at about 200 ms here (Rto0: the minimum, as Linux).
    [Fact]
    public void Rto_BackoffSequence_ThenGivesUp_Rfc6298_5()
    {
        var h = Established(Classic());
        h.Write(Bytes(100));
        var start = h.Now;
        h.Recv(h.Ours(flags: PshAck, data: Bytes(100)));
        var elapsed = TimeSpan.Zero;
        var max = TimeSpan.FromSeconds(120);
        for (int k = 0; k < 15; k++)
        {
            elapsed += k < 10 ? Rto0 * (1 << k) : max;
            h.NothingUntil(start + elapsed);
            h.Recv(h.Ours(flags: PshAck, data: Bytes(100)));
            h.RecvNothing();
        }
        Assert.Equal(15, h.C.Retransmissions);
        Assert.Equal(15, h.C.RetransmissionTimeouts);
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        h.NothingUntil(start + elapsed + max);
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.TimedOut, h.C.Error);
        Assert.True(h.Events.HasFlag(TcpConnectionEvents.Closed));
    }

    // Issue item 4: maximum RTO and the retransmission count are configurable.
    [Fact]
    public void Rto_MaxRtoAndRetryCountConfigurable()
    {
        var h = Established(Classic(new TcpSettings { MaxRto = TimeSpan.FromSeconds(1), MaxRetransmissions = 5 }));
        h.Write(Bytes(10));
        var start = h.Now;
        h.Recv();
        var second = TimeSpan.FromSeconds(1);
        TimeSpan[] intervals = [Rto0, 2 * Rto0, 4 * Rto0, second, second];
        var elapsed = TimeSpan.Zero;
        foreach (var i in intervals)
        {
            elapsed += i;
            h.NothingUntil(start + elapsed);
            h.Recv(h.Ours(flags: PshAck, data: Bytes(10)));
        }
        h.NothingUntil(start + elapsed + second);
        Assert.Equal(TcpError.TimedOut, h.C.Error);
    }

    // Issue item 4: the minimum RTO is configurable (RFC 6298 2.4 says 1 s; Linux uses 200 ms).
    [Fact]
    public void Rto_MinRtoConfigurable()
    {
        var h = Established(Classic(new TcpSettings { MinRto = Ms(50) }));
        h.Write(Bytes(10));
        h.Recv();
        h.NothingUntil(h.Now + Ms(50) + Microsecond);
        h.Recv(h.Ours(flags: PshAck, data: Bytes(10)));
    }

    // RFC 9293 3.8.3 / RFC 5482 user timeout: give up when data stays unacknowledged this long,
    // whatever the retransmission count.
    [Fact]
    public void Rto_UserTimeout_GivesUpEarly()
    {
        var h = Established(Classic(new TcpSettings { UserTimeout = TimeSpan.FromSeconds(1) }));
        h.Write(Bytes(10));
        var start = h.Now;
        h.Recv();
        h.NothingUntil(start + Rto0);
        h.Recv();
        h.NothingUntil(start + 3 * Rto0);
        h.Recv();
        h.NothingUntil(start + 7 * Rto0);
        h.RecvNothing();
        Assert.Equal(TcpError.TimedOut, h.C.Error);
    }

    // RFC 6298 2.2, 2.3 and 2.4: the first sample R gives SRTT = R, RTTVAR = R/2, RTO = SRTT +
    // max(G, 4 RTTVAR); later ones SRTT = 7/8 SRTT + 1/8 R', RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'|.
    // (4 RTTVAR is at least 200 ms in both steps here, so Linux's minimum margin does not show.)
    [Fact]
    public void Rto_ComputedFromRttSamples_Rfc6298_2()
    {
        var h = EstablishedActive(Classic(), rtt: Ms(100));
        var s = h.C.GetStatistics();
        Assert.Equal(Ms(100), s.SmoothedRtt);
        Assert.Equal(Ms(50), s.RttVariation);
        Assert.Equal(Ms(300), s.Rto);

        h.Write(Bytes(10));
        h.Recv();
        h.Advance(Ms(200));
        h.Send(h.Peer(ack: 10));
        s = h.C.GetStatistics();
        Assert.Equal(TimeSpan.FromMicroseconds(112_500), s.SmoothedRtt);
        Assert.Equal(TimeSpan.FromMicroseconds(62_500), s.RttVariation);
        Assert.Equal(TimeSpan.FromMicroseconds(362_500), s.Rto);

        h.Write(Bytes(10, 10));
        h.Recv();
        h.NothingUntil(h.Now + TimeSpan.FromMicroseconds(362_500));
        h.Recv(h.Ours(seq: 10, flags: PshAck, data: Bytes(10, 10)));
    }

    // RFC 6298 3 (Karn): no RTT sample from a retransmitted segment (without timestamps), and the
    // backed-off RTO is kept for the next segment until an ACK for a segment that was not
    // retransmitted arrives (RFC 6298 5.5 with Karn's algorithm).
    [Fact]
    public void Rto_KarnsRule_NoSampleFromRetransmission_BackoffKept()
    {
        var h = Established(Classic(), synOptions: LinuxSyn(ts: false));
        h.Write(Bytes(10));
        h.Recv();
        h.AtNextDeadline();
        h.Recv();
        h.Advance(Ms(30));
        h.Send(h.Peer(ack: 10));
        Assert.Equal(TimeSpan.FromMicroseconds(1), h.C.GetStatistics().SmoothedRtt);
        Assert.Equal(2 * Rto0, h.C.GetStatistics().Rto);

        h.Write(Bytes(10, 10));
        h.Recv();
        Assert.Equal(h.Now + 2 * Rto0, h.C.NextDeadline);
        h.Advance(Ms(30));
        h.Send(h.Peer(ack: 20));
        // A clean sample: SRTT = 7/8 * 1 us + 1/8 * 30 ms, and the backoff is gone.
        var s = h.C.GetStatistics();
        Assert.Equal(TimeSpan.FromMicroseconds(3750), s.SmoothedRtt);
        Assert.Equal(s.SmoothedRtt + Ms(200), s.Rto);
    }

    // RFC 6298 5.3: "When an ACK is received that acknowledges new data, restart the retransmission
    // timer so that it will expire after RTO seconds"; 5.2: stop it when all data is acknowledged.
    [Fact]
    public void Rto_RestartedByAckOfNewData_StoppedWhenAllAcked_Rfc6298_5_2_5_3()
    {
        var h = Established(Classic(new TcpSettings { NoDelay = true }));
        var start = h.Now;
        h.Write(Bytes(10));
        h.Recv();
        h.After(Ms(100));
        h.Write(Bytes(10, 10));
        h.Recv();
        Assert.Equal(start + Rto0, h.C.NextDeadline);
        h.After(Ms(50));
        h.Send(h.Peer(ack: 10));
        Assert.Equal(h.Now + h.C.GetStatistics().Rto, h.C.NextDeadline);
        h.Send(h.Peer(ack: 20));
        Assert.True(h.C.NextDeadline.IsNever);
    }

    // RFC 5681 3.1: after a retransmission timeout cwnd = LW = 1 SMSS: of ten segments in flight
    // only the first is resent; each ACK then lets slow start send more. Also after an active open.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rto_CongestionWindowCollapsesToOneSegment_Rfc5681_3_1(bool activeOpen)
    {
        var h = activeOpen ? EstablishedActive(Classic()) : Established(Classic());
        h.Write(Bytes(10 * TsMss));
        Assert.Equal(10, h.RecvAll().Count);
        h.AtNextDeadline();
        h.Recv(h.Ours(seq: 0, data: Bytes(TsMss)));
        h.RecvNothing();
        Assert.Equal(TsMss, h.C.GetStatistics().CongestionWindow);
        Assert.Equal(5 * TsMss, h.C.GetStatistics().SlowStartThreshold);
        h.Send(h.Peer(ack: TsMss));
        var next = h.RecvAll();
        Assert.Equal(2, next.Count);
        Assert.Equal(h.Iss + 1 + TsMss, next[0].Seq);
    }

    // RFC 9293 3.7.1: a segment with more options carries less data. A lost segment resent while
    // we report SACK blocks no longer fits one MSS: it goes as two segments, both at once when
    // cwnd (one SMSS after the RTO, RFC 5681 3.1) allows - the second part must not wait for
    // another timeout.
    [Fact]
    public void Rto_RetransmissionSplitBySackOption_BothPartsSent()
    {
        var h = Established(Classic(), synOptions: LinuxSyn(ts: false));
        var data = Bytes(2 * Mss);
        h.Write(data);
        Assert.Equal(2, h.RecvAll().Count);
        h.Send(h.Peer(seq: 100, data: Bytes(10)));
        var sack = new TcpOptions();
        sack.AddSackBlock(h.PeerBlock(100, 110));
        h.Recv(h.Ours(seq: 2 * Mss) with { Options = sack });

        h.AtNextDeadline();
        h.Recv(h.Ours(seq: 0, data: data[..(Mss - 12)]) with { Options = sack });
        h.Recv(h.Ours(seq: Mss - 12, data: data[(Mss - 12)..Mss]) with { Options = sack });
        h.RecvNothing();

        h.Send(h.Peer(ack: Mss));
        h.Recv(h.Ours(seq: Mss, data: data[Mss..(2 * Mss - 12)]) with { Options = sack });
        h.Recv(h.Ours(seq: 2 * Mss - 12, flags: PshAck, data: data[(2 * Mss - 12)..]) with { Options = sack });
        h.RecvNothing();
    }

    // The same split when the retransmission queue is exactly full (16 records), so that inserting
    // the second part grows it: the resent part must still count as retransmitted and in flight
    // (Karn's rule, RFC 6298 3; cwnd, RFC 5681 3.1).
    [Fact]
    public void Rto_RetransmissionSplitWhileQueueGrows_StateKept()
    {
        var h = Established(Classic(), synOptions: LinuxSyn(ts: false));
        var data = Bytes(40 * Mss);
        h.Write(data);
        Assert.Equal(10, h.RecvAll().Count);
        for (int k = 1; k <= 6; k++)
        {
            h.Send(h.Peer(ack: k * Mss));
            Assert.Equal(2, h.RecvAll().Count);
        }
        Assert.Equal(16 * Mss, h.C.GetStatistics().BytesInFlight);
        h.Send(h.Peer(seq: 100, ack: 6 * Mss, data: Bytes(10)));
        h.Recv();
        var srtt = h.C.GetStatistics().SmoothedRtt;

        h.AtNextDeadline();
        var sack = new TcpOptions();
        sack.AddSackBlock(h.PeerBlock(100, 110));
        h.Recv(h.Ours(seq: 6 * Mss, data: data[(6 * Mss)..(7 * Mss - 12)]) with { Options = sack });
        h.Recv(h.Ours(seq: 7 * Mss - 12, data: data[(7 * Mss - 12)..(7 * Mss)]) with { Options = sack });
        h.RecvNothing();
        Assert.Equal(Mss, h.C.GetStatistics().BytesInFlight);

        h.Advance(Ms(50));
        h.Send(h.Peer(ack: 7 * Mss));
        Assert.Equal(srtt, h.C.GetStatistics().SmoothedRtt);
    }

    // ---- persist timer ----

    // RFC 9293 3.8.6.1 / RFC 1122 4.2.2.17: with a zero window and data to send, probe with one
    // byte after an RTO, then back off exponentially (bounded by MaxPersistInterval); a zero window
    // is never overrun by more than that byte. When the window opens the rest follows.
    [Fact]
    public void Persist_ZeroWindowProbeSequence_WithBackoff_Rfc9293_3_8_6_1()
    {
        var h = Established(new TcpSettings { MaxPersistInterval = TimeSpan.FromSeconds(1) });
        h.Send(h.Peer() with { Window = 0 });
        h.Write(Bytes(100));
        h.RecvNothing();
        var t = h.Now;
        foreach (var interval in new[] { Rto0, 2 * Rto0, 4 * Rto0, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1) })
        {
            t += interval;
            h.NothingUntil(t);
            h.Recv(h.Ours(data: Bytes(1)));
            h.RecvNothing();
            h.Send(h.Peer() with { Window = 0 });
            h.RecvNothing();
        }
        Assert.Equal(5, h.Env.Statistics.ZeroWindowProbes);
        Assert.Equal(TcpConnectionState.Established, h.C.State);

        h.Send(h.Peer() with { Window = 100 });
        h.Recv(h.Ours(seq: 1, flags: PshAck, data: Bytes(99, 1)));
        h.RecvNothing();
    }

    // A probe byte the peer takes (its window had room for it) is acknowledged like data; the
    // next probe carries the next byte.
    [Fact]
    public void Persist_ProbeByteAccepted_NextProbeCarriesNextByte()
    {
        var h = Established();
        h.Send(h.Peer() with { Window = 0 });
        h.Write(Bytes(100));
        h.AtNextDeadline();
        h.Recv(h.Ours(data: Bytes(1)));
        h.Send(h.Peer(ack: 1) with { Window = 0 });
        h.RecvNothing();
        h.AtNextDeadline();
        h.Recv(h.Ours(seq: 1, data: Bytes(1, 1)));
    }

    // Probing goes on as long as the peer answers; it gives up only after as many unanswered
    // probes as data retransmissions (Linux tcp_probe_timer), reporting a timeout.
    [Fact]
    public void Persist_UnansweredProbes_GiveUp()
    {
        var h = Established(new TcpSettings { MaxRetransmissions = 3 });
        h.Send(h.Peer() with { Window = 0 });
        h.Write(Bytes(100));
        for (int i = 0; i < 3; i++)
        {
            h.AtNextDeadline();
            h.Recv(h.Ours(data: Bytes(1)));
        }
        h.AtNextDeadline();
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.TimedOut, h.C.Error);
    }

    [Fact]
    public void Persist_AnsweredProbes_NeverGiveUp()
    {
        var h = Established(new TcpSettings { MaxRetransmissions = 3 });
        h.Send(h.Peer() with { Window = 0 });
        h.Write(Bytes(100));
        for (int i = 0; i < 20; i++)
        {
            h.AtNextDeadline();
            h.Recv(h.Ours(data: Bytes(1)));
            h.Send(h.Peer() with { Window = 0 });
        }
        Assert.Equal(TcpConnectionState.Established, h.C.State);
    }

    // Hostile or odd peer (found by TcpHostileInputTests): it SACKs the probe byte but keeps the
    // window at zero. The byte is not resent - the peer holds it - the persist timer asks for the
    // window with a segment it must acknowledge (SEQ = SND.UNA - 1, as a keepalive probe); and
    // when the window opens, the SACKed probe does not count as in flight again.
    [Fact]
    public void Persist_ProbeSackedButWindowZero_AskedWithAckProbe_NotResent()
    {
        var h = Established();
        h.Send(h.Peer() with { Window = 0 });
        h.Write(Bytes(100));
        h.AtNextDeadline();
        h.Recv(h.Ours(data: Bytes(1)));
        var o = h.EchoOptions();
        o.AddSackBlock(h.OurBlock(0, 1));
        h.Send(h.Peer() with { Window = 0, Options = o });
        h.RecvNothing();
        h.AtNextDeadline();
        h.Recv(h.Ours(seq: -1));
        h.RecvNothing();
        Assert.Null(h.C.CheckInvariants());

        h.Send(h.Peer() with { Window = 200 });
        h.Recv(h.Ours(seq: 1, flags: PshAck, data: Bytes(99, 1)));
        h.RecvNothing();
        Assert.Null(h.C.CheckInvariants());
        Assert.Equal(99, h.C.GetStatistics().BytesInFlight);
    }

    // A FIN occupies sequence space, and a receiver with a zero window accepts no segment that
    // needs some (RFC 9293 3.10.7.4: only ACKs, URGs and RSTs). So the FIN waits for the window
    // like data (Linux tcp_snd_wnd_test), and meanwhile the persist timer asks for the window
    // with SEQ = SND.UNA - 1 (Linux tcp_write_wakeup). Answered probes go on without limit (a
    // slow reader is not a dead peer); the FIN goes out once the window opens.
    [Fact]
    public void Persist_FinWaitsForTheWindow_ProbedMeanwhile_Rfc9293_3_8_6_1()
    {
        var h = Established(new TcpSettings { MaxRetransmissions = 3 });
        h.Send(h.Peer() with { Window = 0 });
        h.C.ShutdownSend(h.Now, h);
        Assert.Equal(TcpConnectionState.FinWait1, h.C.State);
        h.RecvNothing();
        for (int i = 0; i < 6; i++)
        {
            h.AtNextDeadline();
            h.Recv(h.Ours(seq: -1));
            h.RecvNothing();
            h.Send(h.Peer() with { Window = 0 });
            h.RecvNothing();
        }
        Assert.Equal(TcpConnectionState.FinWait1, h.C.State);
        Assert.Equal(0, h.C.RetransmissionTimeouts);
        h.Send(h.Peer() with { Window = 100 });
        h.Recv(h.Ours(flags: TcpFlags.Fin | TcpFlags.Ack));
        h.Send(h.Peer(ack: 1));
        Assert.Equal(TcpConnectionState.FinWait2, h.C.State);
    }

    // ---- delayed ACK ----

    // Issue item 4: the ACK delay is configurable, up to under 500 ms (RFC 9293 3.8.6.3).
    [Fact]
    public void DelayedAck_TimeoutConfigurable()
    {
        var h = Established(new TcpSettings { DelayedAckTimeout = Ms(200) });
        h.Send(h.Peer(data: Bytes(8)));
        h.NothingUntil(h.Now + Ms(200));
        h.Recv(h.Ours(ack: 8) with { Window = h.Win(8) });
    }

    // A zero delay acknowledges every segment at once.
    [Fact]
    public void DelayedAck_Zero_AcksEverySegment()
    {
        var h = Established(new TcpSettings { DelayedAckTimeout = TimeSpan.Zero });
        h.Send(h.Peer(data: Bytes(8)));
        h.Recv(h.Ours(ack: 8) with { Window = h.Win(8) });
        h.Send(h.Peer(seq: 8, data: Bytes(8)));
        h.Recv(h.Ours(ack: 16) with { Window = h.Win(16) });
    }

    // RFC 9293 3.8.6.3: "the delay MUST be less than 0.5 seconds" - larger settings are refused.
    [Fact]
    public void DelayedAck_HalfSecondOrMore_Refused()
    {
        var settings = new TcpSettings { DelayedAckTimeout = Ms(500) };
        Assert.Throws<ArgumentOutOfRangeException>(() => Connecting(settings));
    }

    // The pending ACK rides on data we send before the timer: no separate ACK afterwards.
    [Fact]
    public void DelayedAck_PiggybackedOnData()
    {
        var h = Established();
        h.Send(h.Peer(data: Bytes(8)));
        h.After(Ms(10));
        h.Write(Bytes(5));
        var sentAt = h.Now;
        h.Recv(h.Ours(ack: 8, flags: PshAck, data: Bytes(5)) with { Window = h.Win(8) });
        Assert.Equal(sentAt + Rto0, h.C.NextDeadline); // only the retransmission timer is left
        h.At(h.Now + Ms(40));
        h.RecvNothing();
    }

    // ---- keepalive ----

    // RFC 1122 4.2.3.6: keepalives are off by default: an idle connection has no timer at all.
    [Fact]
    public void Keepalive_OffByDefault()
    {
        var h = Established();
        Assert.True(h.C.NextDeadline.IsNever);
        h.After(TimeSpan.FromHours(10));
        h.RecvNothing();
    }

    // RFC 1122 4.2.3.6: when enabled, after the idle interval (two hours by default) send a probe
    // the peer must answer - as Linux, <SEQ=SND.UNA-1><ACK=RCV.NXT> with no data; an answer resets
    // the idle clock.
    [Fact]
    public void Keepalive_ProbeAfterIdle_AnswerResetsTimer_Rfc1122_4_2_3_6()
    {
        var h = Established(new TcpSettings { Keepalive = true });
        var idleSince = h.Now;
        h.NothingUntil(idleSince + TimeSpan.FromHours(2));
        h.Recv(h.Ours(seq: -1));
        h.RecvNothing();
        h.After(Ms(30));
        h.Send(h.Peer());
        Assert.Equal(h.Now + TimeSpan.FromHours(2), h.C.NextDeadline);
        Assert.Equal(1, h.Env.Statistics.KeepaliveProbes);
    }

    // Unanswered probes are repeated every KeepaliveInterval (75 s); after KeepaliveProbes (9) the
    // connection is declared dead and the timeout reported (Linux's defaults).
    [Fact]
    public void Keepalive_UnansweredProbes_ConnectionDeclaredDead()
    {
        var h = Established(new TcpSettings { Keepalive = true });
        var t = h.Now + TimeSpan.FromHours(2);
        for (int i = 0; i < 9; i++)
        {
            h.NothingUntil(t);
            h.Recv(h.Ours(seq: -1));
            t += TimeSpan.FromSeconds(75);
        }
        h.NothingUntil(t);
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.TimedOut, h.C.Error);
    }

    // Keepalive can be switched on per connection; it runs only while nothing is outstanding.
    [Fact]
    public void Keepalive_EnabledPerConnection_PausedWhileDataOutstanding()
    {
        var h = Established();
        h.C.KeepaliveEnabled = true;
        h.After(TimeSpan.FromSeconds(1));
        Assert.Equal(h.Now - TimeSpan.FromSeconds(1) + TimeSpan.FromHours(2), h.C.NextDeadline);
        h.Write(Bytes(10));
        h.Recv();
        Assert.Equal(h.Now + Rto0, h.C.NextDeadline);
        h.Send(h.Peer(ack: 10));
        Assert.Equal(h.Now + TimeSpan.FromHours(2), h.C.NextDeadline);
    }
}
