using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// Security: RFC 5961 (blind reset, SYN and data injection, the challenge-ACK rate limit), RFC
/// 6528 initial sequence numbers, and resets for closed ports (RFC 9293 3.10.7.1).
/// </summary>
public class TcpSecurityTests
{
    private static Seg Rst(TcpHarness h, int seq, TcpFlags extra = TcpFlags.None) =>
        new() { Flags = TcpFlags.Rst | extra, Seq = h.Irs + 1 + seq, Ack = h.Iss + 1, Window = 0, Options = NoOptions };

    // ---- RFC 5961 3: blind reset ----

    // RFC 5961 3.2: "If the RST bit is set and the sequence number exactly matches the next expected
    // sequence number (RCV.NXT), then TCP MUST reset the connection."
    [Fact]
    public void Established_RstAtRcvNxt_Resets_Rfc5961_3_2()
    {
        var h = Established();
        h.Send(Rst(h, 0));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.ConnectionReset, h.C.Error);
    }

    // RFC 5961 3.2: "If the RST bit is set and the sequence number does not exactly match the next
    // expected sequence value, yet is within the current receive window, TCP MUST send an
    // acknowledgment (challenge ACK): <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>" and drop the segment.
    [Theory]
    [InlineData(1, (int)(TcpFlags.None))]
    [InlineData(1000, (int)(TcpFlags.Ack))]
    [InlineData(65534, (int)(TcpFlags.None))] // the last number of the window the SYN-ACK advertised
    public void Established_RstNotAtRcvNxt_GetsChallengeAck_Rfc5961_3_2(int offset, int extraValue)
    {
        var extra = (TcpFlags)extraValue;
        var h = Established();
        h.Send(Rst(h, offset, extra));
        h.Recv(h.Ours());
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.Equal(1, h.Env.Statistics.ChallengeAcksSent);
    }

    // RFC 5961 3.2: "If the RST bit is set and the sequence number is outside the current receive
    // window, silently drop the segment" - never a RST (or anything) in reply to a RST.
    [Theory]
    [InlineData(-1)]
    [InlineData(65535)]
    [InlineData(int.MinValue / 2)]
    public void Established_RstOutsideWindow_SilentlyDropped_Rfc5961_3_2(int offset)
    {
        var h = Established();
        h.Send(Rst(h, offset));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Established, h.C.State);
    }

    // The same in the other synchronized states that still receive.
    [Fact]
    public void FinWait2AndCloseWait_RstNotAtRcvNxt_GetChallengeAck_Rfc5961_3_2()
    {
        var h = Established();
        h.ShutdownSend();
        h.Recv();
        h.Send(h.Peer(ack: 1));
        Assert.Equal(TcpConnectionState.FinWait2, h.C.State);
        h.Send(Rst(h, 5));
        h.Recv(h.Ours(seq: 1));
        Assert.Equal(TcpConnectionState.FinWait2, h.C.State);

        var c = Established();
        c.Send(c.Peer(flags: TcpFlags.Ack | TcpFlags.Fin));
        c.Recv();
        c.Send(Rst(c, 5));
        c.Recv(c.Ours(ack: 1));
        Assert.Equal(TcpConnectionState.CloseWait, c.C.State);
    }

    // ---- RFC 5961 4: blind SYN ----

    // RFC 5961 4.2: "If the SYN bit is set, irrespective of the sequence number, TCP MUST send an
    // ACK (also referred to as challenge ACK) to the remote peer ... After sending the
    // acknowledgment, TCP MUST drop the unacceptable segment and stop processing further."
    [Theory]
    [InlineData(0, (int)(TcpFlags.Syn))]
    [InlineData(500, (int)(TcpFlags.Syn))]
    [InlineData(-1000, (int)(TcpFlags.Syn))]
    [InlineData(10_000_000, (int)(TcpFlags.Syn))]
    [InlineData(0, (int)(TcpFlags.Syn | TcpFlags.Ack))]
    public void Established_Syn_GetsChallengeAck_Rfc5961_4_2(int offset, int flagsValue)
    {
        var flags = (TcpFlags)flagsValue;
        var h = Established();
        h.Send(h.Peer(seq: offset, flags: flags, data: Bytes(5)) with { Options = h.LinuxSynOptions() });
        h.Recv(h.Ours());
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.Equal(0, h.C.ReceiveBuffer.Count);
        Assert.Equal(1, h.Env.Statistics.ChallengeAcksSent);
    }

    // ---- RFC 5961 5: blind data injection ----

    // RFC 5961 5.2: the ACK value is acceptable only if (SND.UNA - MAX.SND.WND) =< SEG.ACK =<
    // SND.NXT; otherwise "send an ACK" (a challenge ACK) and drop the segment - its data is not
    // delivered. MAX.SND.WND here is the 64240 the peer offered (no window scaling).
    [Theory]
    [InlineData(101, false)]          // acknowledges something not yet sent
    [InlineData(-64240, true)]        // the oldest acceptable
    [InlineData(-64241, false)]       // older than MAX.SND.WND
    [InlineData(int.MinValue / 2, false)]
    public void Established_AckOutsideAcceptableRange_ChallengeAckAndDrop_Rfc5961_5_2(int ackOffset, bool acceptable)
    {
        var h = Established(synOptions: LinuxSyn(ws: false));
        h.Write(Bytes(100));
        h.Recv();
        h.Send(h.Peer(ack: ackOffset, data: Bytes(8)));
        if (acceptable)
        {
            Assert.Equal(8, h.C.ReceiveBuffer.Count);
            h.RecvNothing();
            Assert.Equal(0, h.Env.Statistics.ChallengeAcksSent);
        }
        else
        {
            Assert.Equal(0, h.C.ReceiveBuffer.Count);
            h.Recv(h.Ours(seq: 100));
            Assert.Equal(1, h.Env.Statistics.ChallengeAcksSent);
        }
    }

    // ---- RFC 5961 7: the rate limit ----

    // RFC 5961 7: "An implementation SHOULD include an ACK throttling mechanism"; the budget is
    // per second across the stack (Linux tcp_challenge_ack_limit). Beyond it challenge ACKs are
    // suppressed; the next second has a fresh budget.
    [Fact]
    public void ChallengeAcks_RateLimitedPerSecond_Rfc5961_7()
    {
        var h = Established(challengeAcksPerSecond: 1);
        var second = Instant.FromMilliseconds(h.Now.TotalMilliseconds / 1000 * 1000);
        h.Send(Rst(h, 10));
        h.Recv(h.Ours());
        h.Send(Rst(h, 11));
        h.Send(h.Peer(seq: 100, flags: TcpFlags.Syn));
        h.Send(h.Peer(ack: 5000, data: Bytes(5)));
        h.RecvNothing();
        Assert.Equal(1, h.Env.Statistics.ChallengeAcksSent);
        Assert.Equal(3, h.Env.Statistics.ChallengeAcksSuppressed);

        h.At(second + TimeSpan.FromSeconds(1));
        h.Send(Rst(h, 10));
        h.Recv(h.Ours());
    }

    // Linux since CVE-2016-5696: each second's budget is random in [limit/2, 3*limit/2), so an
    // off-path attacker cannot learn from counting challenge ACKs whether its spoofed RSTs hit.
    [Fact]
    public void ChallengeAcks_BudgetRandomizedEachSecond_NoSideChannel()
    {
        var env = new TcpEnvironment(new SeededRandomSource(3), challengeAcksPerSecond: 100);
        var budgets = new HashSet<int>();
        for (int s = 0; s < 20; s++)
        {
            var at = Instant.FromMilliseconds(1000L * s + 500);
            int n = 0;
            while (env.TryTakeChallengeAck(at)) n++;
            Assert.InRange(n, 50, 149);
            budgets.Add(n);
        }
        Assert.True(budgets.Count > 10, "the budget must vary from second to second");
        Assert.False(new TcpEnvironment(new SeededRandomSource(3), challengeAcksPerSecond: 0).TryTakeChallengeAck(Instant.Zero));
    }

    // RFC 5961 7: the limit is system-wide (one budget for all connections of a stack), so that a
    // blind attacker cannot multiply it by opening connections.
    [Fact]
    public void ChallengeAcks_RateLimitSharedAcrossConnections_Rfc5961_7()
    {
        var h = Established(challengeAcksPerSecond: 1);
        var other = h.SendToListener(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240, Options = NoOptions }, OtherTuple(1))!;
        var synAck = h.Recv();
        h.SendTo(other, new Seg { Seq = h.Irs + 1, Ack = synAck.Seq + 1, Window = 64240, Options = NoOptions });
        Assert.Equal(TcpConnectionState.Established, other.State);

        h.Send(Rst(h, 10));
        Assert.Single(h.RecvAll());
        h.SendTo(other, new Seg { Flags = TcpFlags.Rst, Seq = h.Irs + 11, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(1, h.Env.Statistics.ChallengeAcksSuppressed);
    }

    // ---- RFC 6528: initial sequence numbers ----

    // RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey): M ticks every
    // 4 microseconds, so a tuple's ISN advances with the clock.
    [Fact]
    public void Isn_AdvancesWithFourMicrosecondClock_Rfc6528_3()
    {
        var random = new SeededRandomSource(7);
        var env = new TcpEnvironment(random);
        Assert.Same(random, env.Random);
        var t0 = Instant.FromMilliseconds(5000);
        var isn0 = env.InitialSequenceNumber(ConnTuple, t0);
        Assert.Equal(isn0 + 250, env.InitialSequenceNumber(ConnTuple, t0 + TimeSpan.FromMilliseconds(1)));
        Assert.Equal(isn0 + 1, env.InitialSequenceNumber(ConnTuple, t0 + TimeSpan.FromMicroseconds(4)));
        Assert.Equal(isn0, env.InitialSequenceNumber(ConnTuple, t0 + TimeSpan.FromMicroseconds(3)));
    }

    // RFC 6528 3: F is a keyed hash of the 4-tuple: other tuples (any field) and other keys give
    // unrelated ISNs; the key is random per stack (seeded here, so reproducible).
    [Fact]
    public void Isn_KeyedHashOfFourTuple_Rfc6528_3()
    {
        var t = Instant.FromMilliseconds(5000);
        var env = new TcpEnvironment(new SeededRandomSource(7));
        var same = new TcpEnvironment(new SeededRandomSource(7));
        var otherKey = new TcpEnvironment(new SeededRandomSource(8));
        var isn = env.InitialSequenceNumber(ConnTuple, t);
        Assert.Equal(isn, same.InitialSequenceNumber(ConnTuple, t));
        Assert.NotEqual(isn, otherKey.InitialSequenceNumber(ConnTuple, t));
        TcpTuple[] variants =
        [
            ConnTuple with { LocalPort = 81 },
            ConnTuple with { RemotePort = RemotePort + 1 },
            ConnTuple with { LocalAddress = Ipv4Address.Parse("192.168.0.3") },
            ConnTuple with { RemoteAddress = Ipv4Address.Parse("192.168.0.9") },
        ];
        var isns = variants.Select(v => env.InitialSequenceNumber(v, t).Value).Append(isn.Value).ToHashSet();
        Assert.Equal(5, isns.Count);
        // RFC 7323 5.4 / 7.1: the timestamp offset is per tuple too, and differs from the ISN's hash.
        Assert.NotEqual(env.TimestampOffset(ConnTuple), env.TimestampOffset(variants[0]));
    }

    // The connection takes its ISS from the environment at the instant it is created.
    [Fact]
    public void Isn_ActiveOpenUsesEnvironmentIsn()
    {
        var h = Connecting();
        Assert.Equal(h.Env.InitialSequenceNumber(ConnTuple, h.Now), h.Recv().Seq);
    }

    // ---- resets for closed ports (RFC 9293 3.10.7.1) ----

    // RFC 9293 3.10.7.1: "If the ACK bit is off, sequence number zero is used,
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>" (SEG.LEN counting SYN and FIN).
    [Theory]
    [InlineData((int)(TcpFlags.Syn), 0, 1)]
    [InlineData((int)(TcpFlags.None), 10, 10)]
    [InlineData((int)(TcpFlags.Fin | TcpFlags.Psh), 10, 11)]
    [InlineData((int)(TcpFlags.Syn | TcpFlags.Fin), 3, 5)]
    public void ClosedPort_SegmentWithoutAck_GetsRstAckOfSeqPlusLen_Rfc9293_3_10_7_1(int flagsValue, int dataLength, int segLen)
    {
        var flags = (TcpFlags)flagsValue;
        var seq = new SeqNumber(0xFFFF_FFFE);
        var seg = new TcpSegment(seq, new SeqNumber(99), flags, 1000, NoOptions, Bytes(dataLength));
        Assert.True(TcpReset.TryCreateForClosed(seg, LocalPort, RemotePort, out var rst));
        Assert.Equal(new TcpHeader(LocalPort, RemotePort, new SeqNumber(0), seq + segLen, TcpFlags.Rst | TcpFlags.Ack, 0), rst);
    }

    // RFC 9293 3.10.7.1: "If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>".
    [Fact]
    public void ClosedPort_SegmentWithAck_GetsRstWithSeqOfSegAck()
    {
        var seg = new TcpSegment(new SeqNumber(5), new SeqNumber(123456), TcpFlags.Ack | TcpFlags.Psh, 1000, NoOptions, Bytes(10));
        Assert.True(TcpReset.TryCreateForClosed(seg, LocalPort, RemotePort, out var rst));
        Assert.Equal(new TcpHeader(LocalPort, RemotePort, new SeqNumber(123456), default, TcpFlags.Rst, 0), rst);
    }

    // RFC 9293 3.10.7.1: "An incoming segment containing a RST is discarded" - never a RST for a RST.
    [Theory]
    [InlineData((int)(TcpFlags.Rst))]
    [InlineData((int)(TcpFlags.Rst | TcpFlags.Ack))]
    public void ClosedPort_Rst_NoReply(int flagsValue)
    {
        var flags = (TcpFlags)flagsValue;
        var seg = new TcpSegment(new SeqNumber(5), new SeqNumber(6), flags, 0, NoOptions, default);
        Assert.False(TcpReset.TryCreateForClosed(seg, LocalPort, RemotePort, out _));
    }

    // Linux (tcp_oow_rate_limited, tcp_invalid_ratelimit = 500 ms): unacceptable segments without
    // data are answered at most once per OutOfWindowAckInterval per connection, so that two ends
    // that disagree about the sequence space cannot ping-pong ACKs; one with data is always
    // answered (its sender needs the duplicate ACK).
    [Fact]
    public void Established_OutOfWindowPureAcks_AnsweredAtMostOncePerInterval()
    {
        var h = Established();
        var stray = h.Peer(seq: 1_000_000);
        h.Send(stray);
        h.Recv(h.Ours());
        h.Send(stray);
        h.Send(stray);
        h.RecvNothing();
        Assert.Equal(2, h.Env.Statistics.OutOfWindowAcksSuppressed);
        h.Send(h.Peer(seq: 1_000_000, data: Bytes(10)));
        h.Recv(h.Ours());
        h.Advance(TimeSpan.FromMilliseconds(500));
        h.Send(stray);
        h.Recv(h.Ours());
        h.RecvNothing();
    }

    [Fact]
    public void Established_OutOfWindowAckLimitOff_EveryOneAnswered()
    {
        var h = Established(new TcpSettings { OutOfWindowAckInterval = TimeSpan.Zero });
        for (int i = 0; i < 3; i++)
        {
            h.Send(h.Peer(seq: 1_000_000));
            h.Recv(h.Ours());
        }
    }
}
