using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>Tests for the SYN-RECEIVED state of a passive open (RFC 9293 3.10.7.4 in SYN-RECEIVED).</summary>
public class TcpSynReceivedTests
{
    /// <summary>A listener that has answered a Linux SYN; the SYN-ACK has been taken.</summary>
    private static (TcpHarness H, Emitted SynAck) SynReceived(TcpSettings? settings = null)
    {
        var h = Listening(settings);
        h.SendSyn(h.LinuxSynOptions());
        var synAck = h.Recv();
        h.OurWindow = 65535 >> 3; // the right edge the SYN-ACK advertised, now scaled
        return (h, synAck);
    }

    private static Seg AsSeg(Emitted e) => new() { Flags = e.Flags, Seq = e.Seq, Ack = e.Ack, Window = e.Window, Options = e.Options, Payload = e.Payload };

    // Issue item 1 and Linux (tcp_check_req): "A retransmitted SYN in SYN-RECEIVED gets the same
    // SYN-ACK" - the same ISS, ACK, window and options; only TSval follows the clock.
    [Fact]
    public void SynReceived_RetransmittedSyn_GetsSameSynAck()
    {
        var (h, synAck) = SynReceived();
        h.Advance(Ms(300));
        h.Send(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240, Options = h.LinuxSynOptions() });
        var options = synAck.Options;
        options.SetTimestamps(h.OurTsVal, h.PeerTsVal);
        h.Recv(AsSeg(synAck) with { Options = options });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynReceived, h.C.State);
        Assert.Equal(1, h.Listener!.HalfOpenCount);
    }

    // RFC 9293 3.10.7.4 fifth: "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state and
    // continue processing with the variables below set to: SND.WND <- SEG.WND, SND.WL1 <- SEG.SEQ,
    // SND.WL2 <- SEG.ACK" (the window now scaled, RFC 7323 2.2).
    [Fact]
    public void SynReceived_AckOfSynAck_EntersEstablished()
    {
        var (h, _) = SynReceived();
        h.Send(h.Peer() with { Window = 1000 });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.Equal(1000 << 7, h.C.GetStatistics().PeerWindow);
        Assert.Equal(TcpConnectionEvents.Established | TcpConnectionEvents.Writable, h.Events & (TcpConnectionEvents.Established | TcpConnectionEvents.Writable));
        Assert.Equal(0, h.Listener!.HalfOpenCount);
        Assert.Equal(1, h.Listener.PendingAcceptCount);
    }

    // RFC 7323 5.3 PAWS applies from the SYN on (TS.Recent is the SYN's TSval; Linux checks it in
    // tcp_check_req): a handshake ACK with an older TSval is an old duplicate - dropped, answered
    // with an ACK, the connection stays half-open; a current one completes the handshake.
    [Fact]
    public void SynReceived_AckWithOlderTsVal_DroppedByPaws_Rfc7323_5_3()
    {
        var (h, _) = SynReceived();
        var old = new TcpOptions();
        old.SetTimestamps(h.PeerTsVal - 1000, h.LastTsVal!.Value);
        h.Send(h.Peer() with { Options = old });
        h.Recv(h.Ours() with { Window = h.Win(0) });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynReceived, h.C.State);
        Assert.Equal(1, h.Env.Statistics.PawsDrops);
        h.Send(h.Peer());
        Assert.Equal(TcpConnectionState.Established, h.C.State);
    }

    // RFC 9293 3.10.7.4 fifth, SYN-RECEIVED: "If the segment acknowledgment is not acceptable,
    // form a reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(2)]
    [InlineData(70000)]
    public void SynReceived_UnacceptableAck_GetsResetWithSeqOfSegAck(int ackOffset)
    {
        var (h, _) = SynReceived();
        var ack = h.Iss + ackOffset;
        h.Send(h.Peer() with { Ack = ack });
        h.Recv(new Seg { Flags = TcpFlags.Rst, Seq = ack, Ack = default, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynReceived, h.C.State);
    }

    // RFC 9293 3.10.7.4 second, SYN-RECEIVED: "If this connection was initiated with a passive
    // OPEN (i.e., came from the LISTEN state), then return this connection to LISTEN state" - the
    // half-open connection vanishes, its backlog slot is free, nothing is sent.
    [Fact]
    public void SynReceived_RstAtRcvNxt_ReturnsToListen()
    {
        var (h, _) = SynReceived();
        h.Send(new Seg { Flags = TcpFlags.Rst, Seq = h.Irs + 1, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.None, h.C.Error);
        Assert.Null(h.C.Listener);
        Assert.Equal(0, h.Listener!.HalfOpenCount);
        Assert.Equal(0, h.Listener.PendingAcceptCount);
    }

    // RFC 5961 3.2: "In all states except SYN-SENT, all reset (RST) packets are validated by
    // checking their SEQ-fields": in the window but not exactly RCV.NXT gets a challenge ACK
    // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and is dropped.
    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(65534)]
    public void SynReceived_RstInWindowNotAtRcvNxt_GetsChallengeAck_Rfc5961_3_2(int offset)
    {
        var (h, _) = SynReceived();
        h.Send(new Seg { Flags = TcpFlags.Rst, Seq = h.Irs + 1 + offset, Window = 0 });
        h.Recv(h.Ours() with { Window = h.Win(0) });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynReceived, h.C.State);
        Assert.Equal(1, h.Env.Statistics.ChallengeAcksSent);
    }

    // RFC 5961 3.2 / RFC 9293 3.10.7.4 first check: a RST outside the window is dropped silently.
    [Theory]
    [InlineData(-1)]
    [InlineData(65535 + 10)]
    public void SynReceived_RstOutsideWindow_DroppedSilently(int offset)
    {
        var (h, _) = SynReceived();
        h.Send(new Seg { Flags = TcpFlags.Rst, Seq = h.Irs + 1 + offset, Window = 0 });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynReceived, h.C.State);
    }

    // RFC 9293 3.10.7.4 fourth, SYN-RECEIVED: "If the connection was initiated with a passive
    // OPEN, then return this connection to the LISTEN state and return" (a new SYN in the window,
    // not the retransmitted one).
    [Fact]
    public void SynReceived_NewSynInWindow_ReturnsToListen()
    {
        var (h, _) = SynReceived();
        h.Send(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs + 10, Window = 64240, Options = h.LinuxSynOptions() });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(0, h.Listener!.HalfOpenCount);
    }

    // RFC 9293 3.10.7.4 first: "If a segment's contents straddle the boundary between old and new,
    // only the new parts are processed" - a segment outside the window is answered with
    // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and dropped, also in SYN-RECEIVED.
    [Theory]
    [InlineData(-100, 0)]
    [InlineData(70000, 0)]
    [InlineData(70000, 10)]
    public void SynReceived_SegmentOutsideWindow_GetsAck(int offset, int dataLength)
    {
        var (h, _) = SynReceived();
        h.Send(h.Peer(seq: offset, data: Bytes(dataLength)));
        h.Recv(h.Ours() with { Window = h.Win(0) });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynReceived, h.C.State);
    }

    // RFC 9293 3.10.7.4 fifth: "if the ACK bit is off, drop the segment and return".
    [Fact]
    public void SynReceived_SegmentWithoutAck_Dropped()
    {
        var (h, _) = SynReceived();
        h.Send(h.Peer(flags: TcpFlags.Psh, data: Bytes(10)));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynReceived, h.C.State);
        Assert.Equal(0, h.C.ReceiveBuffer.Count);
    }

    // RFC 9293 3.10.7.4: the completing ACK may carry data; it is processed in ESTABLISHED (seventh step).
    [Fact]
    public void SynReceived_AckWithData_EstablishedAndDelivered()
    {
        var (h, _) = SynReceived();
        h.Send(h.Peer(flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(100)));
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.Equal(100, h.C.ReceiveBuffer.Count);
        // One segment: the ACK is delayed (RFC 9293 3.8.6.3), 40 ms by default.
        h.NothingUntil(h.Now + Ms(40));
        h.Recv(h.Ours(ack: 100) with { Window = h.Win(100) });
    }

    // RFC 9293 3.10.7.4 eighth: a FIN on the completing ACK: "SYN-RECEIVED STATE, ESTABLISHED STATE:
    // Enter the CLOSE-WAIT state", and the FIN is acknowledged at once.
    [Fact]
    public void SynReceived_AckWithFin_EntersCloseWait()
    {
        var (h, _) = SynReceived();
        h.Send(h.Peer(flags: TcpFlags.Ack | TcpFlags.Fin));
        Assert.Equal(TcpConnectionState.CloseWait, h.C.State);
        h.Recv(h.Ours(ack: 1) with { Window = h.Win(0) });
        h.RecvNothing();
    }

    // RFC 6298 5.5 and Linux tcp_synack_retries: the SYN-ACK is retransmitted with exponential
    // backoff; when the retries run out the half-open connection dies and frees its slot.
    [Fact]
    public void SynReceived_SynAckRetransmittedWithBackoff_ThenGivesUp()
    {
        var (h, synAck) = SynReceived(new TcpSettings { MaxSynRetransmissions = 3 });
        var start = h.Now;
        long elapsed = 0;
        for (int i = 0; i < 3; i++)
        {
            elapsed += 1000L << i;
            h.NothingUntil(start + Ms(elapsed));
            var options = synAck.Options;
            options.SetTimestamps(h.OurTsVal, h.PeerTsVal);
            h.Recv(AsSeg(synAck) with { Options = options });
        }
        h.NothingUntil(start + Ms(elapsed + 8000));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.TimedOut, h.C.Error);
        Assert.Equal(0, h.Listener!.HalfOpenCount);
    }

    // RFC 9293 3.10.4 CLOSE in SYN-RECEIVED: "If no SENDs have been issued and there is no pending
    // data to send, then form a FIN segment and send it ... otherwise, queue for processing after
    // entering ESTABLISHED state." The engine always takes the second branch: the FIN waits
    // until the handshake completes, and then goes out at once (FIN-WAIT-1).
    [Fact]
    public void SynReceived_Close_FinSentOnceEstablished()
    {
        var (h, _) = SynReceived();
        h.Close();
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynReceived, h.C.State);
        h.Send(h.Peer());
        Assert.Equal(TcpConnectionState.FinWait1, h.C.State);
        h.Recv(h.Ours(flags: TcpFlags.Ack | TcpFlags.Fin) with { Window = h.Win(0) });
        h.RecvNothing();
        h.Send(h.Peer(ack: 1));
        Assert.Equal(TcpConnectionState.FinWait2, h.C.State);
    }

    // Simultaneous open (RFC 9293 3.5 figure 8) with a CLOSE in SYN-RECEIVED: if the SYN-ACK is lost,
    // it is retransmitted as a SYN-ACK (not as data), and the FIN follows the handshake.
    [Fact]
    public void SynReceived_ActiveOpenClose_SynAckStillRetransmitted()
    {
        var h = Connecting();
        h.Recv();
        h.Send(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240, Options = NoOptions });
        var synAck = h.Recv();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        h.Close();
        h.RecvNothing();
        h.AtNextDeadline();
        var again = h.Recv();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, again.Flags);
        Assert.Equal(h.Iss, again.Seq);
        h.Send(new Seg { Seq = h.Irs + 1, Ack = h.Iss + 1, Window = 64240, Options = NoOptions });
        Assert.Equal(TcpConnectionState.FinWait1, h.C.State);
        var fin = h.Recv();
        Assert.Equal(TcpFlags.Ack | TcpFlags.Fin, fin.Flags);
        Assert.Equal(h.Iss + 1, fin.Seq);
    }

    // RFC 9293 3.10.5 ABORT in SYN-RECEIVED: "Send a reset segment: <SEQ=SND.NXT><CTL=RST>".
    [Fact]
    public void SynReceived_Abort_SendsResetAtSndNxt()
    {
        var (h, _) = SynReceived();
        h.Abort();
        h.Recv(new Seg { Flags = TcpFlags.Rst, Seq = h.Iss + 1, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(0, h.Listener!.HalfOpenCount);
    }
}
