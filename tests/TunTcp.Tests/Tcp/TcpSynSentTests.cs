using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>Tests for the SYN-SENT state: active open (RFC 9293 3.10.1, 3.10.7.3).</summary>
public class TcpSynSentTests
{
    private static TcpOptions OurSynOptions(TcpHarness h)
    {
        var o = new TcpOptions { MaxSegmentSize = Mss, WindowScale = 3, SackPermitted = true };
        o.SetTimestamps(h.OurTsVal, 0);
        return o;
    }

    private static Seg OurSyn(TcpHarness h) => new()
    {
        Flags = TcpFlags.Syn, Seq = h.Env.InitialSequenceNumber(ConnTuple, h.C.CreatedAt), Ack = default, Window = 65535, Options = OurSynOptions(h),
    };

    private static Seg SynAck(TcpHarness h, TcpOptions? options = null) => new()
    {
        Flags = TcpFlags.Syn | TcpFlags.Ack, Seq = h.Irs, Ack = h.Iss + 1, Window = 64240, Options = options ?? SynAckOptions(h),
    };

    private static TcpOptions SynAckOptions(TcpHarness h)
    {
        var o = h.LinuxSynOptions();
        o.SetTimestamps(h.PeerTsVal, h.LastTsVal ?? 0);
        return o;
    }

    // RFC 9293 3.10.1 OPEN (active): "A SYN segment of the form <SEQ=ISS><CTL=SYN> is sent ...
    // enter SYN-SENT state." RFC 9293 3.7.1 MSS from the MTU; RFC 7323 2.2 unscaled window.
    [Fact]
    public void SynSent_Connect_SendsSyn()
    {
        var h = Connecting();
        Assert.Equal(TcpConnectionState.SynSent, h.C.State);
        h.Recv(OurSyn(h));
        h.RecvNothing();
        Assert.Equal(1, h.Env.Statistics.ActiveOpens);
    }

    // RFC 9293 3.10.7.3, fourth: a SYN whose ACK acknowledges our SYN: "change the connection state
    // to ESTABLISHED, form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it."
    [Fact]
    public void SynSent_SynAck_EntersEstablished_SendsAck()
    {
        var h = Connecting();
        h.Recv(OurSyn(h));
        h.Advance(Ms(30));
        h.Send(SynAck(h));
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        h.Recv(h.Ours() with { Window = h.Win(0) });
        h.RecvNothing();
        Assert.Equal(TcpConnectionEvents.Established | TcpConnectionEvents.Writable, h.Events);
        Assert.Equal(1, h.Env.Statistics.ConnectionsEstablished);
        // RFC 6298 2.2: the SYN was not retransmitted, so its ACK gives the first RTT sample.
        Assert.Equal(Ms(30), h.C.GetStatistics().SmoothedRtt);
    }

    // RFC 9293 3.10.7.3, first: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the
    // RST bit is set, if so drop the segment and return) <SEQ=SEG.ACK><CTL=RST>".
    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(2)]
    [InlineData(100000)]
    public void SynSent_UnacceptableAck_GetsResetWithSeqOfSegAck_StaysInSynSent(int ackOffset)
    {
        var h = Connecting();
        h.Recv(OurSyn(h));
        var ack = h.Iss + ackOffset;
        h.Send(SynAck(h) with { Ack = ack });
        h.Recv(new Seg { Flags = TcpFlags.Rst, Seq = ack, Ack = default, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynSent, h.C.State);
        // The same with the RST bit: dropped without a reply ("never a RST in reply to a RST").
        h.Send(new Seg { Flags = TcpFlags.Rst | TcpFlags.Ack, Seq = h.Irs, Ack = ack, Window = 0 });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynSent, h.C.State);
    }

    // RFC 9293 3.10.7.3, second: "If the ACK was acceptable, then signal to the user 'error:
    // connection reset', drop the segment, enter CLOSED state" (RFC 5961 3.2: in SYN-SENT a RST is
    // valid when its ACK acknowledges the SYN).
    [Fact]
    public void SynSent_RstWithAcceptableAck_ConnectionRefused()
    {
        var h = Connecting();
        h.Recv(OurSyn(h));
        h.Send(new Seg { Flags = TcpFlags.Rst | TcpFlags.Ack, Seq = default, Ack = h.Iss + 1, Window = 0 });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.ConnectionRefused, h.C.Error);
        Assert.True(h.Events.HasFlag(TcpConnectionEvents.Closed));
        Assert.True(h.C.NextDeadline.IsNever);
        Assert.True(h.C.SendClosed);
    }

    // RFC 9293 3.10.7.3, second: "If the ACK bit is off, drop the segment and return" (a RST
    // without ACK cannot be tied to our SYN).
    [Fact]
    public void SynSent_RstWithoutAck_IsDropped()
    {
        var h = Connecting();
        h.Recv(OurSyn(h));
        h.Send(new Seg { Flags = TcpFlags.Rst, Seq = h.Irs, Ack = default, Window = 0 });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynSent, h.C.State);
    }

    // RFC 9293 3.10.7.3, fifth: "If neither of the SYN or RST bits is set, then drop the segment and return."
    [Theory]
    [InlineData((int)(TcpFlags.Ack))]
    [InlineData((int)(TcpFlags.Ack | TcpFlags.Fin))]
    [InlineData((int)(TcpFlags.None))]
    public void SynSent_NeitherSynNorRst_IsDropped(int flagsValue)
    {
        var flags = (TcpFlags)flagsValue;
        var h = Connecting();
        h.Recv(OurSyn(h));
        h.Send(new Seg { Flags = flags, Seq = h.Irs, Ack = h.Iss + 1, Window = 1000, Payload = Bytes(3) });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynSent, h.C.State);
    }

    // RFC 9293 3.10.7.3, fourth, and 3.5 figure 8 (simultaneous open): a SYN without ACK moves to
    // SYN-RECEIVED and sends <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>. The peer's own SYN-ACK is below
    // RCV.NXT, so it is answered with an ACK (3.10.7.4 first check); the peer's ACK completes it.
    [Fact]
    public void SynSent_SimultaneousOpen_SynReceivedThenEstablished()
    {
        var h = Connecting();
        h.Recv(OurSyn(h));
        h.Advance(Ms(5));
        h.Send(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240, Options = h.LinuxSynOptions() });
        Assert.Equal(TcpConnectionState.SynReceived, h.C.State);
        var synAckOptions = new TcpOptions { MaxSegmentSize = Mss, WindowScale = 3, SackPermitted = true };
        synAckOptions.SetTimestamps(h.OurTsVal, h.PeerTsVal);
        h.Recv(new Seg { Flags = TcpFlags.Syn | TcpFlags.Ack, Seq = h.Iss, Ack = h.Irs + 1, Window = 65535, Options = synAckOptions });
        h.RecvNothing();

        h.Advance(Ms(5));
        h.Send(SynAck(h));
        h.Recv(h.Ours() with { Window = h.Win(0) });
        Assert.Equal(TcpConnectionState.SynReceived, h.C.State);

        h.Send(h.Peer());
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.Null(h.C.Listener);
        // The connection works: data goes out.
        h.OurWindow = h.Win(0);
        h.Write(Bytes(10));
        h.Recv(h.Ours(flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(10)));
    }

    // Simultaneous open, then a RST at RCV.NXT in SYN-RECEIVED: the connection was initiated with an
    // active OPEN, so RFC 9293 3.10.7.4 second check says "connection refused".
    [Fact]
    public void SynSent_SimultaneousOpen_RstInSynReceived_ConnectionRefused()
    {
        var h = Connecting();
        h.Recv();
        h.Send(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240, Options = NoOptions });
        h.Recv();
        h.Send(new Seg { Flags = TcpFlags.Rst, Seq = h.Irs + 1, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.ConnectionRefused, h.C.Error);
    }

    // RFC 6298 5.5 / 5.6 and Linux tcp_syn_retries: the SYN is retransmitted after 1, 2, 4, 8, 16
    // and 32 s (the initial RTO of RFC 6298 2.1, doubled each time); after the sixth retransmission
    // the connection gives up (here at 127 s, as Linux does) and reports a timeout.
    [Fact]
    public void SynSent_SynRetransmittedWithBackoff_ThenTimesOut()
    {
        var h = Connecting();
        var start = h.Now;
        h.Recv(OurSyn(h));
        long elapsed = 0;
        for (int i = 0; i < 6; i++)
        {
            elapsed += 1000L << i;
            h.NothingUntil(start + Ms(elapsed));
            h.Recv(OurSyn(h));
            h.RecvNothing();
        }
        Assert.Equal(6, h.C.Retransmissions);
        h.NothingUntil(start + Ms(elapsed + 64000));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.TimedOut, h.C.Error);
        Assert.Equal(1, h.Env.Statistics.Timeouts);
        Assert.True(h.C.NextDeadline.IsNever);
    }

    // RFC 6298 5.7: "If the timer expires awaiting the ACK of a SYN segment and the TCP
    // implementation is using an RTO less than 3 seconds, the RTO MUST be re-initialized to 3
    // seconds when data transmission begins." (No timestamps: Karn's rule leaves no sample.)
    [Fact]
    public void SynSent_SynRetransmitted_RtoIsThreeSecondsAfterHandshake_Rfc6298_5_7()
    {
        var h = Connecting(new TcpSettings { Timestamps = false });
        h.Recv();
        h.AtNextDeadline();
        h.Recv();
        h.Advance(Ms(100));
        h.Send(SynAck(h, new TcpOptions { MaxSegmentSize = Mss }));
        var ack = h.Recv();
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.Equal(TimeSpan.FromSeconds(3), h.C.GetStatistics().Rto);
        h.OurWindow = ack.Window;
        h.Write(Bytes(100));
        h.Recv(h.Ours(flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(100)));
        h.NothingUntil(h.Now + TimeSpan.FromSeconds(3));
        h.Recv(h.Ours(flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(100)));
    }

    // RFC 9293 3.10.7.3, fourth: "Data or controls that were queued for transmission may be
    // included" / text on the SYN-ACK is processed as in the synchronized states (sixth step on).
    [Fact]
    public void SynSent_SynAckWithDataAndFin_DeliveredAndAcked()
    {
        var h = Connecting();
        h.Recv();
        h.Send(SynAck(h) with { Flags = TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Fin, Payload = Bytes(20) });
        Assert.Equal(TcpConnectionState.CloseWait, h.C.State);
        Assert.True(h.C.PeerFinReceived);
        h.Recv(h.Ours(ack: 21) with { Window = h.Win(20) });
        h.RecvNothing();
        Assert.Equal(Bytes(20), h.ReadAll());
    }

    // RFC 9293 3.10.7.3: after the SYN-ACK, RCV.WND is the window our SYN offered (the peer may
    // send at once: a Linux TFO server sends data in SYN-RECEIVED). Data that arrives in the same
    // batch as the SYN-ACK, before our ACK went out, must meet that window, not a zero one.
    [Fact]
    public void SynSent_DataRightBehindTheSynAck_InTheSameBatch_IsAcceptedIntoTheSynsWindow()
    {
        var h = Connecting();
        h.Recv();
        h.SendInBatch(SynAck(h));
        h.SendInBatch(h.Peer(data: Bytes(100)) with { Flags = TcpFlags.Ack | TcpFlags.Psh });
        h.Flush();
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.Equal(Bytes(100), h.ReadAll());
        Assert.Contains(h.RecvAll(), s => s.Ack == h.Irs + 101);
    }

    // Our ACK of the SYN-ACK was lost and the peer resends its SYN-ACK: in ESTABLISHED it is a SYN
    // below RCV.NXT, answered (RFC 5961 4.2, and Linux) with a challenge ACK carrying
    // <SEQ=SND.NXT><ACK=RCV.NXT> - exactly the ACK the peer is missing.
    [Fact]
    public void SynSent_SynAckRetransmittedAfterEstablished_AckedAgain()
    {
        var h = EstablishedActive();
        h.Advance(Ms(1000));
        var o = h.LinuxSynOptions();
        o.SetTimestamps(h.PeerTsVal, h.LastTsVal!.Value);
        h.Send(new Seg { Flags = TcpFlags.Syn | TcpFlags.Ack, Seq = h.Irs, Ack = h.Iss + 1, Window = 64240, Options = o });
        h.Recv(h.Ours());
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Established, h.C.State);
    }

    // RFC 9293 3.10.4 CLOSE in SYN-SENT: "Delete the TCB and return 'error: closing' responses to
    // any queued SENDs" - no segment; 3.10.5 ABORT in SYN-SENT likewise sends no reset.
    [Fact]
    public void SynSent_CloseOrAbort_DeletesTcbSilently()
    {
        var h = Connecting();
        h.Recv();
        h.Close();
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.None, h.C.Error);

        var h2 = Connecting();
        h2.Recv();
        h2.Abort();
        h2.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h2.C.State);
        Assert.Equal(TcpError.Aborted, h2.C.Error);
    }

    // Data the application queues before the handshake completes goes out right after our ACK of
    // the SYN-ACK (RFC 9293 3.10.7.3: "Data or controls that were queued for transmission may be
    // included"), as one segment since it all fits.
    [Fact]
    public void SynSent_DataQueuedBeforeEstablished_SentAfterHandshake()
    {
        var h = Connecting();
        h.Recv();
        h.Write(Bytes(300));
        h.RecvNothing();
        h.Send(SynAck(h));
        h.OurWindow = h.Win(0);
        h.Recv(h.Ours(flags: TcpFlags.Ack | TcpFlags.Psh, data: Bytes(300)));
        h.RecvNothing();
    }
}
