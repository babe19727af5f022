using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// ESTABLISHED, send side: segmentation, PSH, the ACK field (RFC 9293 3.10.7.4 fifth step with
/// the SND.WL1/SND.WL2 window-update rule), slow start and the congestion-control hook (RFC 5681).
/// </summary>
public class TcpEstablishedSendTests
{
    private const TcpFlags PshAck = TcpFlags.Psh | TcpFlags.Ack;

    // RFC 9293 3.9.1 SEND and 3.8.6.2.1 / RFC 1122 4.2.2.2: data the application writes goes out
    // at once when the windows allow; the last segment of a write carries PSH.
    [Fact]
    public void Established_Write_SentAtOnceWithPsh()
    {
        var h = Established();
        Assert.Equal(100, h.Write(Bytes(100)));
        h.Recv(h.Ours(flags: PshAck, data: Bytes(100)));
        h.RecvNothing();
        Assert.Equal(100, h.C.GetStatistics().BytesInFlight);
        Assert.Equal(100, h.C.BytesSent);
    }

    // RFC 9293 3.7.1: segments carry at most Eff.snd.MSS bytes (here 1460 - 12 for timestamps);
    // only the last segment of the write has PSH (issue item 5).
    [Fact]
    public void Established_LargeWrite_SegmentedAtEffectiveMss_PshOnLastOnly()
    {
        var h = Established();
        var data = Bytes(3000);
        h.Write(data);
        h.Recv(h.Ours(seq: 0, data: data[..TsMss]));
        h.Recv(h.Ours(seq: TsMss, data: data[TsMss..(2 * TsMss)]));
        h.Recv(h.Ours(seq: 2 * TsMss, flags: PshAck, data: data[(2 * TsMss)..]));
        h.RecvNothing();
    }

    // RFC 9293 3.7.1: "the TCP header size ... includes options": while we report SACK blocks
    // (RFC 2018 4, every segment carries them) a full segment holds 12 bytes less; such segments
    // are still full-sized, so Nagle does not hold the short tail (Linux: tcp_current_mss).
    [Fact]
    public void Established_DataWhileReportingSack_SegmentsShrinkToFit_Rfc9293_3_7_1()
    {
        var h = Established();
        h.Send(h.Peer(seq: 100, data: Bytes(10)));
        var sack = h.OurOptions(h.PeerBlock(100, 110));
        h.Recv(h.Ours() with { Options = sack });
        var data = Bytes(2 * TsMss);
        h.Write(data);
        int full = TsMss - 12;
        h.Recv(h.Ours(seq: 0, data: data[..full]) with { Options = sack });
        h.Recv(h.Ours(seq: full, data: data[full..(2 * full)]) with { Options = sack });
        h.Recv(h.Ours(seq: 2 * full, flags: PshAck, data: data[(2 * full)..]) with { Options = sack });
        h.RecvNothing();
    }

    // RFC 5681 3.1 / RFC 6928: the initial window is min(10*SMSS, max(2*SMSS, 14600)) = 10
    // segments here; in slow start each ACK grows cwnd by min(N, SMSS), so an ACK for two
    // segments lets 1 + 2 more go.
    [Fact]
    public void Established_InitialWindowTenSegments_SlowStartGrowsBySmssPerAck_Rfc5681_3_1()
    {
        var h = Established();
        h.Write(Bytes(30 * TsMss));
        var first = h.RecvAll();
        Assert.Equal(10, first.Count);
        Assert.Equal(10 * TsMss, h.C.GetStatistics().CongestionWindow);
        Assert.All(first, (e, i) => Assert.Equal(h.Iss + 1 + i * TsMss, e.Seq));

        h.Send(h.Peer(ack: 2 * TsMss));
        var more = h.RecvAll();
        Assert.Equal(3, more.Count);
        Assert.Equal(h.Iss + 1 + 10 * TsMss, more[0].Seq);
        Assert.Equal(11 * TsMss, h.C.GetStatistics().CongestionWindow);
        Assert.Equal(11 * TsMss, h.C.GetStatistics().BytesInFlight);
    }

    // RFC 5681 3.1: once cwnd reaches ssthresh, congestion avoidance grows it by about one SMSS per
    // RTT (here with byte counting, RFC 3465): a full window of ACKs adds exactly one SMSS.
    [Fact]
    public void Established_CongestionAvoidance_OneSmssPerWindowAcked()
    {
        var cc = new NewRenoCongestionControl();
        var h = Established(Classic() with { CongestionControlFactory = () => cc });
        h.Write(Bytes(200 * TsMss));
        h.RecvAll();
        // Force ssthresh down by a timeout, then recover to congestion avoidance.
        h.AtNextDeadline();
        h.RecvAll();
        int ssthresh = cc.SlowStartThreshold;
        Assert.Equal(5 * TsMss, ssthresh);
        Assert.Equal(TsMss, cc.CongestionWindow);
        int acked = 0;
        while (cc.CongestionWindow < ssthresh)
        {
            acked += TsMss;
            h.Send(h.Peer(ack: acked));
            h.RecvAll();
        }
        int cwnd = cc.CongestionWindow;
        Assert.Equal(ssthresh, cwnd);
        for (int i = 0; i < cwnd / TsMss; i++)
        {
            acked += TsMss;
            h.Send(h.Peer(ack: acked));
            h.RecvAll();
        }
        Assert.Equal(cwnd + TsMss, cc.CongestionWindow);
    }

    // Issue item 7: the sender consults an ICongestionControl: with a fixed two-segment window it
    // never has more than two segments in flight.
    [Fact]
    public void Established_CongestionControlHook_SenderRespectsCwnd()
    {
        var fixedCc = new FixedWindow(2 * TsMss);
        var h = Established(Classic() with { CongestionControlFactory = () => fixedCc });
        Assert.Equal("fixed", h.C.CongestionControlName);
        Assert.Equal(1, fixedCc.Initialized);
        h.Write(Bytes(10 * TsMss));
        Assert.Equal(2, h.RecvAll().Count);
        h.Send(h.Peer(ack: TsMss));
        Assert.Single(h.RecvAll());
        Assert.Equal(2, fixedCc.Acks);
        Assert.Equal(TsMss, fixedCc.LastAck.BytesAcked);
        Assert.Equal(2 * TsMss, fixedCc.LastAck.BytesInFlight);
        Assert.Equal(TsMss, fixedCc.LastAck.Mss);
        // RFC 5681 3.1: a retransmission timeout is reported to the controller.
        h.AtNextDeadline();
        Assert.Equal(1, fixedCc.Timeouts);
    }

    // RFC 9293 3.10.7.4 fifth: "If SND.UNA < SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK. Any
    // segments on the retransmission queue that are thereby entirely acknowledged are removed"
    // - the send buffer frees that space and the application is told it may write.
    [Fact]
    public void Established_AckAdvancesSndUna_FreesSendBuffer()
    {
        var h = Established(new TcpSettings { SendBufferSize = 4096 });
        Assert.Equal(4096, h.Write(Bytes(5000)));
        h.RecvAll();
        Assert.Equal(0, h.C.SendBuffer.Free);
        h.Events = TcpConnectionEvents.None;
        h.Send(h.Peer(ack: 1000));
        Assert.Equal(1000, h.C.SendBuffer.Free);
        Assert.Equal(TcpConnectionEvents.Writable, h.Events);
        Assert.Equal(3096, h.C.GetStatistics().BytesInFlight);
        h.Send(h.Peer(ack: 4096));
        Assert.Equal(4096, h.C.SendBuffer.Free);
        Assert.True(h.C.NextDeadline.IsNever);
    }

    // RFC 9293 3.10.7.4 fifth: "If the ACK is a duplicate (SEG.ACK < SND.UNA), it can be ignored"
    // (within MAX.SND.WND of SND.UNA, RFC 5961 5.2) - no reply, no change.
    [Fact]
    public void Established_OldAck_Ignored()
    {
        var h = Established();
        h.Write(Bytes(200));
        h.Recv();
        h.Send(h.Peer(ack: 150));
        h.Send(h.Peer(ack: 100));
        h.RecvNothing();
        Assert.Equal(50, h.C.GetStatistics().BytesInFlight);
    }

    // RFC 9293 3.10.7.4 fifth: "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated.
    // If (SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)), set SND.WND <- SEG.WND,
    // set SND.WL1 <- SEG.SEQ, and set SND.WL2 <- SEG.ACK" - an older segment (reordered) must not
    // move the window back.
    [Fact]
    public void Established_WindowUpdate_OlderSegmentDoesNotChangeWindow_Wl1Rule()
    {
        var h = Established();
        h.Send(h.Peer(seq: 100, data: Bytes(100)) with { Window = 500 });
        h.Recv();
        Assert.Equal(500 << 7, h.C.GetStatistics().PeerWindow);
        h.Send(h.Peer(seq: 0, data: Bytes(100)) with { Window = 300 });
        h.Recv();
        Assert.Equal(500 << 7, h.C.GetStatistics().PeerWindow);
        // The same SEG.SEQ with SEG.ACK >= SND.WL2 updates it (window shrinking as the peer says).
        h.Send(h.Peer(seq: 200) with { Window = 400 });
        Assert.Equal(400 << 7, h.C.GetStatistics().PeerWindow);
        h.Send(h.Peer(seq: 200) with { Window = 450 });
        Assert.Equal(450 << 7, h.C.GetStatistics().PeerWindow);
    }

    // RFC 9293 3.10.7.4 fifth: the window is updated only "If SND.UNA =< SEG.ACK =< SND.NXT": an
    // old ACK (below SND.UNA, still inside RFC 5961's MAX.SND.WND allowance) never sets it,
    // however new its SEG.SEQ.
    [Fact]
    public void Established_WindowUpdate_OldAckDoesNotChangeWindow()
    {
        var h = Established();
        h.Write(Bytes(100));
        h.Recv();
        h.Send(h.Peer(ack: 100, data: Bytes(10)) with { Window = 500 });
        Assert.Equal(500 << 7, h.C.GetStatistics().PeerWindow);
        h.Send(h.Peer(seq: 10, ack: 50, data: Bytes(10, 10)) with { Window = 0 });
        Assert.Equal(500 << 7, h.C.GetStatistics().PeerWindow);
        // The segment itself is fine: its text is processed.
        Assert.Equal(20, h.C.ReceiveBuffer.Count);
    }

    // RFC 9293 3.8.6 / 3.10.7.4: the sender never sends beyond SND.UNA + SND.WND (the peer's window,
    // scaled by its shift, RFC 7323 2.3).
    [Fact]
    public void Established_PeerWindowLimitsSending()
    {
        var h = Established(synOptions: LinuxSyn(ws: false), window: 2 * TsMss);
        h.Write(Bytes(5 * TsMss));
        h.Recv(h.Ours(seq: 0, data: Bytes(TsMss)));
        h.Recv(h.Ours(seq: TsMss, data: Bytes(TsMss, TsMss)));
        h.RecvNothing();
        h.Send(h.Peer(ack: TsMss));
        h.Recv(h.Ours(seq: 2 * TsMss, data: Bytes(TsMss, 2 * TsMss)));
        h.RecvNothing();
        h.Send(h.Peer(ack: 3 * TsMss) with { Window = 5 * TsMss });
        h.Recv(h.Ours(seq: 3 * TsMss, data: Bytes(TsMss, 3 * TsMss)));
        h.Recv(h.Ours(seq: 4 * TsMss, flags: PshAck, data: Bytes(TsMss, 4 * TsMss)));
        h.RecvNothing();
    }

    // RFC 9293 3.10.5 ABORT in ESTABLISHED: "Send a reset segment: <SEQ=SND.NXT><CTL=RST>", flush
    // the queues, enter CLOSED.
    [Fact]
    public void Established_Abort_SendsResetAtSndNxt()
    {
        var h = Established();
        h.Write(Bytes(10));
        h.Recv();
        h.Abort();
        h.Recv(new Seg { Flags = TcpFlags.Rst, Seq = h.Iss + 11, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.Aborted, h.C.Error);
        Assert.True(h.Events.HasFlag(TcpConnectionEvents.Closed));
        // A closed connection ignores everything.
        h.Send(h.Peer(data: Bytes(5)));
        h.At(h.Now + TimeSpan.FromSeconds(10));
        h.RecvNothing();
    }

    // The engine's statistics snapshot reflects what was negotiated and sent.
    [Fact]
    public void Established_Statistics_Snapshot()
    {
        var h = Established();
        h.Write(Bytes(100));
        h.Recv();
        h.Send(h.Peer(ack: 100, data: Bytes(10)));
        var s = h.C.GetStatistics();
        Assert.Equal(TcpConnectionState.Established, s.State);
        Assert.Equal(TcpError.None, s.Error);
        Assert.True(s.WindowScaling);
        Assert.True(s.Timestamps);
        Assert.True(s.Sack);
        Assert.Equal(TsMss, s.Mss);
        Assert.Equal("cubic", s.CongestionControl); // the default controller
        Assert.Equal(100, s.BytesSent);
        Assert.Equal(10, s.BytesReceived);
        Assert.Equal(0, s.BytesInFlight);
        Assert.Equal(Rto0, s.Rto);
        Assert.Equal(3, h.C.SegmentsReceived);
        Assert.Equal(2, h.C.SegmentsSent);
        Assert.Contains("Established", h.C.ToString());
    }

    /// <summary>A congestion controller with a fixed window, counting what the sender reports.</summary>
    private sealed class FixedWindow(int window) : ICongestionControl
    {
        public int Initialized, Acks, Timeouts;
        public AckEvent LastAck;
        public string Name => "fixed";
        public int CongestionWindow => window;
        public int SlowStartThreshold => int.MaxValue;
        public void Initialize(int mss, int initialWindowSegments, Instant now) => Initialized++;
        public void OnAck(in AckEvent ack) { Acks++; LastAck = ack; }
        public void OnCongestionEvent(int bytesInFlight, int mss, Instant now) { }
        public void OnRecoveryEnd(int mss, Instant now) { }
        public void OnRetransmissionTimeout(int bytesInFlight, int mss, Instant now, bool alreadyReduced) => Timeouts++;
        public void OnIdleRestart(int mss, int initialWindowSegments, Instant now) { }
        public void Undo() { }
    }
}
