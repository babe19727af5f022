using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// The closing states: FIN-WAIT-1, FIN-WAIT-2, CLOSING, CLOSE-WAIT, LAST-ACK (RFC 9293 3.6,
/// 3.10.4 CLOSE, 3.10.7.4), half-close, and resets in and out of each.
/// </summary>
public class TcpClosingTests
{
    private const TcpFlags FinAck = TcpFlags.Fin | TcpFlags.Ack;

    /// <summary>
    /// Our window once the peer's FIN is in, when our FIN went first: the right edge our FIN
    /// advertised stays (RFC 7323 2.4), and the peer's FIN took one sequence number of it.
    /// </summary>
    private const ushort WindowAfterPeerFin = (262144 - 1) >> 3;

    /// <summary>ESTABLISHED, then our FIN out (FIN-WAIT-1).</summary>
    private static TcpHarness FinWait1(bool fullClose = false, TcpSettings? settings = null)
    {
        var h = Established(settings);
        if (fullClose) h.Close(); else h.ShutdownSend();
        h.Recv(h.Ours(flags: FinAck));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.FinWait1, h.C.State);
        return h;
    }

    /// <summary>FIN-WAIT-1, then the peer's ACK of our FIN (FIN-WAIT-2).</summary>
    private static TcpHarness FinWait2(bool fullClose = false)
    {
        var h = FinWait1(fullClose);
        h.Send(h.Peer(ack: 1));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.FinWait2, h.C.State);
        return h;
    }

    /// <summary>ESTABLISHED, then the peer's FIN in (CLOSE-WAIT).</summary>
    private static TcpHarness CloseWait()
    {
        var h = Established();
        h.Send(h.Peer(flags: FinAck));
        h.Recv(h.Ours(ack: 1));
        Assert.Equal(TcpConnectionState.CloseWait, h.C.State);
        return h;
    }

    /// <summary>CLOSE-WAIT, then our FIN out (LAST-ACK).</summary>
    private static TcpHarness LastAck()
    {
        var h = CloseWait();
        h.Close();
        h.Recv(h.Ours(ack: 1, flags: FinAck));
        Assert.Equal(TcpConnectionState.LastAck, h.C.State);
        return h;
    }

    /// <summary>FIN-WAIT-1, then the peer's FIN without the ACK of ours (CLOSING).</summary>
    private static TcpHarness Closing()
    {
        var h = FinWait1();
        h.Send(h.Peer(flags: FinAck));
        h.Recv(h.Ours(seq: 1, ack: 1) with { Window = WindowAfterPeerFin });
        Assert.Equal(TcpConnectionState.Closing, h.C.State);
        return h;
    }

    // RFC 9293 3.10.4 CLOSE in ESTABLISHED: "Queue this until all preceding SENDs have been
    // segmentized, then form a FIN segment and send it. In any case, enter FIN-WAIT-1 state."
    [Fact]
    public void Established_Close_SendsFin_EntersFinWait1()
    {
        var h = FinWait1();
        Assert.True(h.C.SendClosed);
        Assert.Equal(h.Now + Rto0, h.C.NextDeadline); // the FIN is under the retransmission timer
    }

    // RFC 9293 3.10.7.4 fifth, FIN-WAIT-1: "if the FIN segment is now acknowledged, then enter
    // FIN-WAIT-2 and continue processing"; the retransmission timer stops.
    [Fact]
    public void FinWait1_AckOfFin_EntersFinWait2()
    {
        var h = FinWait2();
        Assert.True(h.C.NextDeadline.IsNever);
    }

    // RFC 6298 5.4: our FIN is retransmitted like data when it is not acknowledged (the timer
    // alone: Classic settings, no tail loss probe).
    [Fact]
    public void FinWait1_FinNotAcked_RetransmittedOnRto()
    {
        var h = FinWait1(settings: Classic());
        h.NothingUntil(h.Now + Rto0);
        h.Recv(h.Ours(flags: FinAck));
        h.NothingUntil(h.Now + 2 * Rto0);
        h.Recv(h.Ours(flags: FinAck));
    }

    // RFC 8985 7: with RACK-TLP (the default) the lone FIN is probed first, at the timeout's
    // instant (PTO = 2 SRTT + 200 ms is clamped to the RTO, 7.2), which re-arms the timer; the
    // timeout proper follows one RTO later and backs off from there.
    [Fact]
    public void FinWait1_FinNotAcked_ProbedThenRetransmittedOnRto_Rfc8985_7()
    {
        var h = FinWait1();
        h.NothingUntil(h.Now + Rto0);
        h.Recv(h.Ours(flags: FinAck));
        Assert.Equal(1, h.Env.Statistics.TailLossProbes);
        h.NothingUntil(h.Now + Rto0);
        h.Recv(h.Ours(flags: FinAck));
        Assert.Equal(1, h.C.RetransmissionTimeouts);
        h.NothingUntil(h.Now + 2 * Rto0);
        h.Recv(h.Ours(flags: FinAck));
        Assert.Equal(1, h.Env.Statistics.TailLossProbes);
    }

    // Issue item 1, half-close: "our side stops sending and keeps receiving" - in FIN-WAIT-1 and
    // FIN-WAIT-2 the peer's data is delivered (RFC 9293 3.10.7.4 seventh step) and acknowledged.
    [Fact]
    public void FinWait2_HalfClose_PeerDataStillDelivered()
    {
        var h = FinWait2();
        h.Send(h.Peer(ack: 1, data: Bytes(TsMss)));
        h.Send(h.Peer(seq: TsMss, ack: 1, data: Bytes(TsMss, TsMss)));
        h.Recv(h.Ours(seq: 1, ack: 2 * TsMss) with { Window = h.Win(2 * TsMss) });
        Assert.Equal(Bytes(2 * TsMss), h.ReadAll());
        Assert.Equal(TcpConnectionState.FinWait2, h.C.State);
        // Without a full close there is no FIN-WAIT-2 timeout: the peer may keep sending.
        Assert.True(h.C.NextDeadline.IsNever);
    }

    // Half-close keeps the receive side whole: a window the application reopens is advertised
    // (issue item 5) in FIN-WAIT-2 as in ESTABLISHED.
    [Fact]
    public void FinWait2_HalfClose_WindowUpdateAfterRead()
    {
        var h = Established(new TcpSettings { ReceiveBufferSize = 1024 }, synOptions: LinuxSyn(ws: false));
        h.ShutdownSend();
        h.Recv(h.Ours(flags: FinAck) with { Window = 1024 });
        h.Send(h.Peer(ack: 1, data: Bytes(1024)));
        Assert.Equal(TcpConnectionState.FinWait2, h.C.State);
        h.At(h.Now + Ms(40));
        h.Recv(h.Ours(seq: 1, ack: 1024) with { Window = 0 });
        h.ReadAll();
        h.Recv(h.Ours(seq: 1, ack: 1024) with { Window = 1024 });
    }

    [Fact]
    public void FinWait1_HalfClose_PeerDataStillDelivered()
    {
        var h = FinWait1();
        h.Send(h.Peer(data: Bytes(100)));
        Assert.Equal(100, h.C.ReceiveBuffer.Count);
        h.Send(h.Peer(seq: 100, ack: 1, data: Bytes(100, 100)));
        Assert.Equal(TcpConnectionState.FinWait2, h.C.State);
        Assert.Equal(Bytes(200), h.Read(200));
    }

    // RFC 9293 3.10.7.4 eighth, FIN-WAIT-2: "Enter the TIME-WAIT state. Start the time-wait timer,
    // turn off the other timers"; the FIN is acknowledged.
    [Fact]
    public void FinWait2_Fin_EntersTimeWait_Acked()
    {
        var h = FinWait2();
        h.Send(h.Peer(ack: 1, flags: FinAck));
        h.Recv(h.Ours(seq: 1, ack: 1) with { Window = WindowAfterPeerFin });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.TimeWait, h.C.State);
        Assert.Equal(h.Now + TimeSpan.FromSeconds(60), h.C.NextDeadline);
    }

    // RFC 9293 3.10.7.4 eighth, FIN-WAIT-1: "If our FIN has been ACKed (perhaps in this segment),
    // then enter TIME-WAIT, start the time-wait timer, turn off the other timers".
    [Fact]
    public void FinWait1_FinWithAckOfOurFin_EntersTimeWait()
    {
        var h = FinWait1();
        h.Send(h.Peer(ack: 1, flags: FinAck));
        h.Recv(h.Ours(seq: 1, ack: 1) with { Window = WindowAfterPeerFin });
        Assert.Equal(TcpConnectionState.TimeWait, h.C.State);
    }

    // RFC 9293 3.10.7.4 eighth, FIN-WAIT-1: "otherwise, enter the CLOSING state" - simultaneous
    // close (3.6 figure 13); the ACK of our FIN then moves CLOSING to TIME-WAIT.
    [Fact]
    public void FinWait1_FinWithoutAckOfOurFin_SimultaneousClose_ClosingThenTimeWait()
    {
        var h = Closing();
        h.Send(h.Peer(seq: 1, ack: 1));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.TimeWait, h.C.State);
        Assert.Equal(h.Now + TimeSpan.FromSeconds(60), h.C.NextDeadline);
    }

    // RFC 9293 3.10.7.4 fifth, CLOSING: "if the ACK acknowledges our FIN, then enter the TIME-WAIT
    // state; otherwise, ignore the segment" - and our FIN is retransmitted while it is not.
    [Fact]
    public void Closing_FinRetransmittedUntilAcked()
    {
        var h = Closing();
        h.Send(h.Peer(seq: 1, ack: 0));
        Assert.Equal(TcpConnectionState.Closing, h.C.State);
        h.RecvNothing();
        h.AtNextDeadline();
        h.Recv(h.Ours(ack: 1, flags: FinAck) with { Window = WindowAfterPeerFin });
    }

    // RFC 9293 3.10.4 CLOSE in CLOSE-WAIT: "Queue this request until all preceding SENDs have been
    // segmentized; then send a FIN segment, enter LAST-ACK state" - the peer's half-close still
    // lets us send first.
    [Fact]
    public void CloseWait_SendStillWorks_ThenCloseSendsFinAfterData_LastAck()
    {
        var h = CloseWait();
        h.Write(Bytes(100));
        h.Recv(h.Ours(ack: 1, flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(100)));
        h.Close();
        h.Recv(h.Ours(seq: 100, ack: 1, flags: FinAck));
        Assert.Equal(TcpConnectionState.LastAck, h.C.State);
    }

    // RFC 9293 3.10.7.4 fifth, LAST-ACK: "The only thing that can arrive in this state is an
    // acknowledgment of our FIN. If our FIN is now acknowledged, delete the TCB, enter the CLOSED
    // state, and return."
    [Fact]
    public void LastAck_AckOfFin_Closed()
    {
        var h = LastAck();
        h.Send(h.Peer(seq: 1, ack: 0));
        Assert.Equal(TcpConnectionState.LastAck, h.C.State);
        h.Send(h.Peer(seq: 1, ack: 1));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.None, h.C.Error);
        Assert.True(h.Events.HasFlag(TcpConnectionEvents.Closed));
        Assert.True(h.C.NextDeadline.IsNever);
        Assert.Equal(1, h.Env.Statistics.ConnectionsClosed);
    }

    [Fact]
    public void LastAck_FinRetransmittedOnRto()
    {
        var h = LastAck();
        h.NothingUntil(h.Now + Rto0);
        h.Recv(h.Ours(ack: 1, flags: FinAck));
    }

    // RFC 9293 3.10.4: CLOSE when already closing: "error: connection closing" - nothing more is sent.
    [Fact]
    public void FinWait1_CloseAgain_NothingMore()
    {
        var h = FinWait1();
        h.Close();
        h.ShutdownSend();
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.FinWait1, h.C.State);
    }

    // RFC 1122 4.2.2.13 / RFC 2525 2.17: "If such a host issues a CLOSE call while received data
    // is still pending in TCP, or if new data is received after CLOSE is called, its TCP SHOULD
    // send a RST to show that data was lost."
    [Fact]
    public void Established_CloseWithUnreadData_SendsReset_Rfc1122_4_2_2_13()
    {
        var h = Established();
        h.Send(h.Peer(data: Bytes(10)));
        h.Close();
        h.Recv(new Seg { Flags = TcpFlags.Rst, Seq = h.Iss + 1, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.Aborted, h.C.Error);
    }

    [Fact]
    public void FinWait2_DataAfterFullClose_SendsReset_Rfc1122_4_2_2_13()
    {
        var h = FinWait2(fullClose: true);
        h.Send(h.Peer(ack: 1, data: Bytes(10)));
        h.Recv(new Seg { Flags = TcpFlags.Rst, Seq = h.Iss + 2, Window = 0, Options = NoOptions });
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
    }

    // Linux tcp_fin_timeout: a connection the application fully closed does not wait in
    // FIN-WAIT-2 forever for a peer that never sends its FIN (here 2 MSL = 60 s).
    [Fact]
    public void FinWait2_AfterFullClose_TimesOut()
    {
        var h = FinWait2(fullClose: true);
        h.NothingUntil(h.Now + TimeSpan.FromSeconds(60));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
    }

    // RFC 9293 3.10.7.4 second (with RFC 5961 3.2: SEG.SEQ = RCV.NXT): ESTABLISHED, FIN-WAIT-1,
    // FIN-WAIT-2, CLOSE-WAIT: "any outstanding RECEIVEs and SEND should receive 'reset' responses
    // ... enter the CLOSED state"; CLOSING, LAST-ACK, TIME-WAIT: "enter the CLOSED state".
    [Theory]
    [InlineData("Established", TcpError.ConnectionReset)]
    [InlineData("FinWait1", TcpError.ConnectionReset)]
    [InlineData("FinWait2", TcpError.ConnectionReset)]
    [InlineData("CloseWait", TcpError.ConnectionReset)]
    [InlineData("Closing", TcpError.None)]
    [InlineData("LastAck", TcpError.None)]
    public void AnySynchronizedState_RstAtRcvNxt_Closes(string state, TcpError error)
    {
        var h = InState(state);
        int rcvNxt = state is "CloseWait" or "Closing" or "LastAck" ? 1 : 0;
        h.Send(new Seg { Flags = TcpFlags.Rst, Seq = h.Irs + 1 + rcvNxt, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(error, h.C.Error);
        Assert.Equal(1, h.Env.Statistics.ResetsReceived);
    }

    // RFC 9293 3.10.5 ABORT: SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT: "Send a
    // reset segment: <SEQ=SND.NXT><CTL=RST>"; CLOSING, LAST-ACK, TIME-WAIT: "Respond with 'ok'
    // and delete the TCB, enter CLOSED state" - no reset (Linux tcp_need_reset agrees).
    [Theory]
    [InlineData("Established", 0)]
    [InlineData("FinWait1", 1)]
    [InlineData("FinWait2", 1)]
    [InlineData("CloseWait", 0)]
    [InlineData("Closing", -1)]
    [InlineData("LastAck", -1)]
    public void AnySynchronizedState_Abort_ResetOnlyWhereTheRfcSays(string state, int resetSeq)
    {
        var h = InState(state);
        h.Abort();
        if (resetSeq >= 0) h.Recv(new Seg { Flags = TcpFlags.Rst, Seq = h.Iss + 1 + resetSeq, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
    }

    private static TcpHarness InState(string state) => state switch
    {
        "Established" => Established(),
        "FinWait1" => FinWait1(),
        "FinWait2" => FinWait2(),
        "CloseWait" => CloseWait(),
        "Closing" => Closing(),
        "LastAck" => LastAck(),
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };
}
