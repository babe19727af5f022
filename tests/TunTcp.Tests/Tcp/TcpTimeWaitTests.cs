using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>Tests for TIME-WAIT (RFC 9293 3.6 and 3.10.7.4, RFC 6191, RFC 1337).</summary>
public class TcpTimeWaitTests
{
    private const TcpFlags FinAck = TcpFlags.Fin | TcpFlags.Ack;

    /// <summary>We close first: FIN out, ACKed, the peer's FIN in and ACKed. TIME-WAIT since <see cref="TcpHarness.Now"/>.</summary>
    private static TcpHarness TimeWait(TcpSettings? settings = null, TcpOptions? synOptions = null)
    {
        var h = Established(settings, synOptions);
        h.ShutdownSend();
        h.Recv(h.Ours(flags: FinAck));
        h.Send(h.Peer(ack: 1, flags: FinAck));
        // The right edge stays where the FIN's ACK put it; the peer's FIN took one number of it.
        h.OurWindow = (ushort)((h.C.ReceiveBuffer.Capacity - 1) >> h.OurShift);
        h.Recv(h.Ours(seq: 1, ack: 1));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.TimeWait, h.C.State);
        return h;
    }

    // RFC 9293 3.10.7.4 / 3.6: "When the time-wait timeout expires, delete the TCB": 2 MSL after
    // entering TIME-WAIT (MSL 30 s by default: Linux's 60 s TIME-WAIT), silently.
    [Fact]
    public void TimeWait_ExpiresAfterTwoMsl()
    {
        var h = TimeWait();
        h.NothingUntil(h.Now + TimeSpan.FromSeconds(60));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.None, h.C.Error);
        Assert.True(h.Events.HasFlag(TcpConnectionEvents.Closed));
    }

    // Issue item 4: the MSL is configurable.
    [Fact]
    public void TimeWait_MslConfigurable()
    {
        var h = TimeWait(new TcpSettings { Msl = TimeSpan.FromMilliseconds(500) });
        h.NothingUntil(h.Now + TimeSpan.FromSeconds(1));
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
    }

    // RFC 9293 3.10.7.4 eighth, TIME-WAIT: "Remain in the TIME-WAIT state. Restart the 2 MSL
    // time-wait timeout." - a retransmitted FIN (our ACK was lost) is acknowledged again.
    [Fact]
    public void TimeWait_RetransmittedFin_ReackedAndTimerRestarted()
    {
        var h = TimeWait();
        h.After(TimeSpan.FromSeconds(30));
        h.RecvNothing();
        h.Send(h.Peer(seq: 0, ack: 1, flags: FinAck));
        h.Recv(h.Ours(seq: 1, ack: 1));
        h.RecvNothing();
        Assert.Equal(h.Now + TimeSpan.FromSeconds(60), h.C.NextDeadline);
    }

    // RFC 9293 3.10.7.4: other segments in TIME-WAIT are acknowledged (duplicates, data that
    // "should not occur"), the state is kept.
    [Fact]
    public void TimeWait_OtherSegments_Acked()
    {
        var h = TimeWait();
        h.Send(h.Peer(seq: 1, ack: 1, data: Bytes(5)));
        h.Recv(h.Ours(seq: 1, ack: 1));
        Assert.Equal(TcpConnectionState.TimeWait, h.C.State);
        h.Send(h.Peer(seq: 1, ack: 1));
        h.RecvNothing();
    }

    // RFC 9293 3.10.7.4 second (with RFC 5961 3.2): "TIME-WAIT STATE: If the RST bit is set, then
    // enter the CLOSED state, delete the TCB" (Linux with tcp_rfc1337 = 0 does the same).
    [Fact]
    public void TimeWait_RstAtRcvNxt_Closes()
    {
        var h = TimeWait();
        h.Send(new Seg { Flags = TcpFlags.Rst, Seq = h.Irs + 2, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
    }

    // RFC 9293 3.10.5 ABORT in TIME-WAIT: "Respond with 'ok' and delete the TCB" - no reset.
    [Fact]
    public void TimeWait_Abort_NoReset()
    {
        var h = TimeWait();
        h.Abort();
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
    }

    // RFC 6191 2 (and Linux tcp_timewait_state_process): a SYN in TIME-WAIT whose timestamp is
    // newer than TS.Recent may start a new incarnation: TIME-WAIT ends and the SYN goes to the
    // listener, which answers with an ISN beyond the old incarnation's sequence space (RFC 6528).
    [Fact]
    public void TimeWait_SynWithNewerTimestamp_Reopens_Rfc6191()
    {
        var h = TimeWait();
        var old = h.C;
        h.After(TimeSpan.FromSeconds(1));
        h.PeerTsVal += 1000;
        var result = h.Send(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs + 5, Window = 64240, Options = h.LinuxSynOptions() });
        Assert.Equal(TcpSegmentResult.ReopenFromTimeWait, result);
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, old.State);
        Assert.Equal(1, h.Env.Statistics.TimeWaitReopens);

        var oldSndNxt = h.Iss + 2;
        h.Irs = h.Irs + 5;
        var c = h.SendSyn(h.LinuxSynOptions());
        Assert.NotNull(c);
        var synAck = h.Recv();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.True(synAck.Seq > oldSndNxt);
    }

    // RFC 6191 2: with timestamps, an equal TSval and a sequence number above the last one seen
    // also reopens (Linux: not a PAWS reject, and SEG.SEQ > RCV.NXT).
    [Fact]
    public void TimeWait_SynWithEqualTimestampAndHigherSeq_Reopens_Rfc6191()
    {
        var h = TimeWait();
        var result = h.Send(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs + 100, Window = 64240, Options = h.LinuxSynOptions() });
        Assert.Equal(TcpSegmentResult.ReopenFromTimeWait, result);
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
    }

    // RFC 6191 / RFC 7323 5.3: a SYN with an older timestamp is an old duplicate: PAWS drops it
    // and acknowledges; TIME-WAIT goes on.
    [Fact]
    public void TimeWait_SynWithOlderTimestamp_DroppedAndAcked()
    {
        var h = TimeWait();
        var o = h.LinuxSynOptions();
        o.SetTimestamps(h.PeerTsVal - 1, 0);
        var result = h.Send(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs + 100, Window = 64240, Options = o });
        Assert.Equal(TcpSegmentResult.Processed, result);
        h.Recv(h.Ours(seq: 1, ack: 1));
        Assert.Equal(TcpConnectionState.TimeWait, h.C.State);
    }

    // RFC 6191 2 without timestamps (RFC 9293 3.10.7.4 TIME-WAIT): a SYN above RCV.NXT reopens.
    [Fact]
    public void TimeWait_NoTimestamps_SynAboveRcvNxt_Reopens()
    {
        var h = TimeWait(synOptions: LinuxSyn(ts: false));
        var result = h.Send(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs + 1000, Window = 64240, Options = LinuxSyn(ts: false) });
        Assert.Equal(TcpSegmentResult.ReopenFromTimeWait, result);
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
    }

    // A SYN at or below RCV.NXT cannot be a new incarnation: it gets the RFC 5961 4.2 challenge
    // ACK (Linux: an ACK) and TIME-WAIT goes on.
    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public void TimeWait_NoTimestamps_SynNotAboveRcvNxt_ChallengeAck(int seq)
    {
        var h = TimeWait(synOptions: LinuxSyn(ts: false));
        var result = h.Send(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs + 1 + seq, Window = 64240, Options = LinuxSyn(ts: false) });
        Assert.Equal(TcpSegmentResult.Processed, result);
        h.Recv(h.Ours(seq: 1, ack: 1) with { Options = NoOptions });
        Assert.Equal(TcpConnectionState.TimeWait, h.C.State);
        Assert.Equal(1, h.Env.Statistics.ChallengeAcksSent);
    }
}
