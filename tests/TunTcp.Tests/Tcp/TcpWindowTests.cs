using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// Window management in ESTABLISHED: Nagle (RFC 896, RFC 1122 4.2.3.4), sender and receiver
/// silly-window avoidance (RFC 9293 3.8.6.2), window updates after the application reads.
/// </summary>
public class TcpWindowTests
{
    private const TcpFlags PshAck = TcpFlags.Psh | TcpFlags.Ack;

    // RFC 896 / RFC 1122 4.2.3.4 Nagle, in the variant Linux uses (Minshall: hold a small segment
    // only while an earlier small segment is unacknowledged): the first small write goes at once,
    // the second waits for the ACK of the first.
    [Fact]
    public void Established_Nagle_SecondSmallWriteWaitsForAck_Rfc896()
    {
        var h = Established();
        h.Write(Bytes(10));
        h.Recv(h.Ours(flags: PshAck, data: Bytes(10)));
        h.Write(Bytes(10, 10));
        h.RecvNothing();
        h.Write(Bytes(10, 20));
        h.RecvNothing();
        h.Send(h.Peer(ack: 10));
        h.Recv(h.Ours(seq: 10, flags: PshAck, data: Bytes(20, 10)));
        h.RecvNothing();
    }

    // Nagle never holds full-sized segments, and (Minshall, as Linux) not the short tail of a
    // write when no earlier small segment is outstanding.
    [Fact]
    public void Established_Nagle_FullSegmentsAndTailSentTogether()
    {
        var h = Established();
        h.Write(Bytes(2 * TsMss + 10));
        h.Recv(h.Ours(seq: 0, data: Bytes(TsMss)));
        h.Recv(h.Ours(seq: TsMss, data: Bytes(TsMss, TsMss)));
        h.Recv(h.Ours(seq: 2 * TsMss, flags: PshAck, data: Bytes(10, 2 * TsMss)));
        // Now a small segment is outstanding: the next small write waits.
        h.Write(Bytes(5));
        h.RecvNothing();
        h.Send(h.Peer(ack: TsMss));
        h.RecvNothing();
        h.Send(h.Peer(ack: 2 * TsMss + 10));
        h.Recv(h.Ours(seq: 2 * TsMss + 10, flags: PshAck, data: Bytes(5)));
    }

    // Issue item 5: Nagle "can be switched off per connection" (TCP_NODELAY).
    [Fact]
    public void Established_NoDelay_SmallWritesSentAtOnce()
    {
        var h = Established();
        h.C.NoDelay = true;
        h.Write(Bytes(10));
        h.Recv(h.Ours(flags: PshAck, data: Bytes(10)));
        h.Write(Bytes(10, 10));
        h.Recv(h.Ours(seq: 10, flags: PshAck, data: Bytes(10, 10)));
        h.RecvNothing();
    }

    // The FIN is never held by Nagle (Linux tcp_nagle_test); data Nagle held goes with it as one
    // segment: FIN piggybacked on the last data (issue item 5).
    [Fact]
    public void Established_Nagle_HeldDataLeavesWithFin()
    {
        var h = Established();
        h.Write(Bytes(10));
        h.Recv();
        h.Write(Bytes(10, 10));
        h.RecvNothing();
        h.ShutdownSend();
        h.Recv(h.Ours(seq: 10, flags: PshAck | TcpFlags.Fin, data: Bytes(10, 10)));
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.FinWait1, h.C.State);
    }

    // Issue item 5: "FIN piggybacked on the last data": data queued and the close requested
    // before anything went out leave as one segment.
    [Fact]
    public void Established_CloseAfterWrite_FinRidesOnLastDataSegment()
    {
        var h = Established();
        h.C.SendBuffer.Write(Bytes(TsMss + 100));
        h.ShutdownSend();
        h.Recv(h.Ours(seq: 0, data: Bytes(TsMss)));
        h.Recv(h.Ours(seq: TsMss, flags: PshAck | TcpFlags.Fin, data: Bytes(100, TsMss)));
        h.RecvNothing();
    }

    // RFC 9293 3.8.6.2.1 sender SWS avoidance: with more data queued than the usable window,
    // send only if a full segment fits or at least half the largest window the peer ever offered
    // (Fs = 1/2); otherwise wait - until the override timeout, then send what fits (4).
    [Fact]
    public void Established_SenderSws_SmallWindowWaitsForOverrideTimeout_Rfc9293_3_8_6_2_1()
    {
        var h = Established(Classic(), synOptions: LinuxSyn(ws: false), window: 10 * TsMss);
        h.Write(Bytes(12 * TsMss));
        Assert.Equal(10, h.RecvAll().Count);
        h.Send(h.Peer(ack: 10 * TsMss) with { Window = 1000 });
        h.RecvNothing();
        // The override timer runs for one RTO.
        h.NothingUntil(h.Now + Rto0);
        h.Recv(h.Ours(seq: 10 * TsMss, data: Bytes(1000, 10 * TsMss)));
        h.RecvNothing();
        // A larger window: a full segment, then the tail, which is all that is left.
        h.Send(h.Peer(ack: 10 * TsMss + 1000) with { Window = 5 * TsMss + 100 });
        h.Recv(h.Ours(seq: 10 * TsMss + 1000, data: Bytes(TsMss, 10 * TsMss + 1000)));
        h.Recv(h.Ours(seq: 11 * TsMss + 1000, flags: PshAck, data: Bytes(TsMss - 1000, 11 * TsMss + 1000)));
        h.RecvNothing();
    }

    // RFC 9293 3.8.6.2.1: a small segment is fine when it is all the data there is (with Nagle's
    // permission): the window does not hold back the last bytes.
    [Fact]
    public void Established_SenderSws_AllQueuedDataFits_SentAtOnce()
    {
        var h = Established(synOptions: LinuxSyn(ws: false), window: 300);
        h.Write(Bytes(200));
        h.Recv(h.Ours(flags: PshAck, data: Bytes(200)));
    }

    // RFC 9293 3.8.6.2.2 receiver SWS avoidance: the right edge moves only when the window can grow
    // by min(RCV.BUFF / 2, MSS); smaller openings leave the advertised window where it was.
    [Fact]
    public void Established_ReceiverSws_EdgeMovesOnlyByAtLeastAnMss_Rfc9293_3_8_6_2_2()
    {
        var h = Established(new TcpSettings { ReceiveBufferSize = 4096 }, synOptions: LinuxSyn(ws: false));
        h.Send(h.Peer(seq: 0, data: Bytes(1000)));
        h.Send(h.Peer(seq: 1000, data: Bytes(1000)));
        h.Recv(h.Ours(ack: 2000) with { Window = 2096 });
        h.Send(h.Peer(seq: 2000, data: Bytes(1000)));
        h.At(h.Now + Ms(40));
        h.Recv(h.Ours(ack: 3000) with { Window = 1096 });

        // Reading 500 bytes frees less than an MSS: no update, and the next ACK keeps the old edge.
        h.Read(500);
        h.RecvNothing();
        h.Send(h.Peer(seq: 3000, data: Bytes(100)));
        h.At(h.Now + Ms(40));
        h.Recv(h.Ours(ack: 3100) with { Window = 996 });

        // Reading 2000 more opens it by well over an MSS: a window update goes out at once.
        h.Read(2000);
        h.Recv(h.Ours(ack: 3100) with { Window = 4096 - 600 });
        h.RecvNothing();
    }

    // Issue item 5: "a window update when the application frees receive space after a small or
    // zero window" - once the opening is worth it (receiver SWS), at once, not at the next segment.
    [Fact]
    public void Established_ZeroWindowThenRead_WindowUpdateSent()
    {
        var h = Established(new TcpSettings { ReceiveBufferSize = 1024 }, synOptions: LinuxSyn(ws: false));
        h.Send(h.Peer(data: Bytes(1024)));
        h.At(h.Now + Ms(40));
        h.Recv(h.Ours(ack: 1024) with { Window = 0 });
        h.Read(100);
        h.RecvNothing();
        h.Read(1000);
        h.Recv(h.Ours(ack: 1024) with { Window = 1024 });
        h.RecvNothing();
    }

    // RFC 7323 2.4 / RFC 9293 3.8.6.2.2: the window is never shrunk - data that arrives without the
    // application reading makes the window smaller, but the right edge never moves left.
    [Fact]
    public void Established_AdvertisedRightEdgeNeverMovesLeft()
    {
        var h = Established(new TcpSettings { ReceiveBufferSize = 8192 }, synOptions: LinuxSyn(ws: false));
        int received = 0;
        for (int i = 0; i < 8; i++)
        {
            h.Send(h.Peer(seq: received, data: Bytes(1000)));
            received += 1000;
            h.At(h.Now + Ms(40));
            foreach (var e in h.RecvAll())
                Assert.Equal(h.Irs + 1 + 8192, e.Ack + e.Window);
        }
    }

    // RFC 7323 2.4: with a scale factor the window field rounds down, so a later ACK can appear
    // to retract the right edge by less than 2^S; "the receiver MUST honor, as in window, any
    // segment that would have been in window for any ACK sent by the receiver".
    [Fact]
    public void Established_ScaledWindowRetraction_DataUpToEarlierEdgeAccepted_Rfc7323_2_4()
    {
        var h = Established();
        h.Send(h.Peer(data: Bytes(2)));
        h.At(h.Now + Ms(40));
        var first = h.Recv(h.Ours(ack: 2) with { Window = (262144 - 8) >> 3 });
        Assert.Equal(h.Irs + 1 + 262138, first.Ack + (first.Window << 3));

        // Three more bytes: the edge stays (receiver SWS), and 262138 - 5 is not a multiple of 8,
        // so this ACK shows an edge 5 bytes to the left.
        h.Send(h.Peer(seq: 2, data: Bytes(3, 2)));
        h.At(h.Now + Ms(40));
        var second = h.Recv(h.Ours(ack: 5) with { Window = (262138 - 5) >> 3 });
        Assert.Equal(h.Irs + 1 + 262133, second.Ack + (second.Window << 3));

        // Data between the two edges was in window for the first ACK: it is kept (out of order).
        h.Send(h.Peer(seq: 262134, data: Bytes(4)));
        h.Recv(h.Ours(ack: 5) with { Window = (262138 - 5) >> 3, Options = h.OurOptions(h.PeerBlock(262134, 262138)) });
        Assert.Equal(0, h.Env.Statistics.UnacceptableSegments);
    }

    // RFC 7323 2.3: with window scaling our window field is the window shifted right by
    // Rcv.Wind.Shift; the shift fits the whole buffer (256 KiB: shift 3).
    [Fact]
    public void Established_WindowFieldScaledByOurShift_Rfc7323_2_3()
    {
        var h = Established();
        h.Send(h.Peer(data: Bytes(800)));
        h.At(h.Now + Ms(40));
        h.Recv(h.Ours(ack: 800) with { Window = (262144 - 800) >> 3 });
        Assert.Equal(262144 - 800, h.C.GetStatistics().AdvertisedWindow);
    }
}
