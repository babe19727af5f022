using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// Sequence-number (and timestamp) wraparound at 2^32 in the middle of a transfer (RFC 9293 3.4:
/// "all arithmetic dealing with sequence numbers must be performed modulo 2^32"; RFC 7323 5.2).
/// </summary>
public class TcpWraparoundTests
{
    private const TcpFlags PshAck = TcpFlags.Psh | TcpFlags.Ack;
    private static readonly SeqNumber PeerIsn = new(0xFFFF_F800); // the peer's data crosses 0 after 2047 bytes
    private const uint OurIsn = 0xFFFF_F000;                     // ours after 4095 bytes

    /// <summary>The instant at which the RFC 6528 clock gives the harness's tuple ISN <paramref name="iss"/>.</summary>
    private static Instant StartForIss(uint iss)
    {
        uint f = new TcpEnvironment(new SeededRandomSource(1)).InitialSequenceNumber(ConnTuple, Instant.Zero).Value;
        return new Instant(4L * unchecked(iss - f));
    }

    private static TcpHarness NearWrap()
    {
        var h = Established(Classic(), start: StartForIss(OurIsn), irs: PeerIsn);
        Assert.Equal(new SeqNumber(OurIsn), h.Iss);
        return h;
    }

    // RFC 9293 3.4 / 3.10.7.4: acceptability, reassembly, SACK blocks (RFC 2018) and the FIN all
    // work across RCV.NXT wrapping through zero; the bytes come out in order.
    [Fact]
    public void Wraparound_ReceiveAcrossTwoToThe32_OutOfOrderAndFin()
    {
        var h = NearWrap();
        var data = Bytes(4000);
        h.Send(h.Peer(seq: 0, data: data[..1000]));
        h.RecvNothing();
        h.Send(h.Peer(seq: 2000, data: data[2000..3000]));
        var sack = h.PeerBlock(2000, 3000);
        Assert.True(sack.Left.Value > sack.Right.Value, "the block straddles 2^32");
        h.Recv(h.Ours(ack: 1000) with { Window = h.Win(1000), Options = h.OurOptions(sack) });
        h.Send(h.Peer(seq: 1000, data: data[1000..2000]));
        h.Recv(h.Ours(ack: 3000) with { Window = h.Win(3000) });
        Assert.True((h.Irs + 1 + 3000).Value < 2000, "RCV.NXT has wrapped");
        h.Send(h.Peer(seq: 3000, flags: PshAck | TcpFlags.Fin, data: data[3000..]));
        Assert.Equal(TcpConnectionState.CloseWait, h.C.State);
        h.Recv(h.Ours(ack: 4001) with { Window = (262144 - 4001) >> 3 });
        Assert.Equal(data, h.ReadAll());
    }

    // RFC 9293 3.4 / 3.10.7.4 fifth: SND.UNA and SND.NXT wrap through zero while segments are in
    // flight; SACK blocks across the wrap are understood, and after an RTO the one segment that
    // straddles 2^32 is resent byte for byte.
    [Fact]
    public void Wraparound_SendAcrossTwoToThe32_SackAndRetransmission()
    {
        var h = NearWrap();
        var data = Bytes(5 * TsMss);
        h.Write(data);
        var sent = h.RecvAll();
        Assert.Equal(5, sent.Count);
        Assert.True(sent[2].Seq.Value > (sent[2].Seq + TsMss).Value, "the third segment straddles 2^32");

        var o = h.EchoOptions();
        o.AddSackBlock(h.OurBlock(3 * TsMss, 5 * TsMss));
        h.Send(h.Peer(ack: 2 * TsMss) with { Options = o });
        h.RecvNothing();
        Assert.Equal(TsMss, h.C.GetStatistics().BytesInFlight);

        h.AtNextDeadline();
        h.Recv(h.Ours(seq: 2 * TsMss, data: data[(2 * TsMss)..(3 * TsMss)]));
        h.RecvNothing();
        h.Send(h.Peer(ack: 5 * TsMss));
        Assert.Equal(0, h.C.GetStatistics().BytesInFlight);
        Assert.True(h.C.NextDeadline.IsNever);
        Assert.Equal(h.C.SendBuffer.Capacity, h.C.SendBuffer.Free);

        h.Write(Bytes(10));
        h.Recv(h.Ours(seq: 5 * TsMss, flags: PshAck, data: Bytes(10)));
    }

    // RFC 7323 5.2 / 5.3: timestamps compare modulo 2^32 too: TSvals wrapping through zero are
    // newer (accepted and echoed); one from before the wrap is an old duplicate (PAWS).
    [Fact]
    public void Wraparound_PeerTimestampWraps_NewerAcceptedOlderDropped()
    {
        var h = Listening();
        h.PeerTsVal = 0xFFFF_FFF0;
        h.SendSyn(h.LinuxSynOptions());
        h.Recv();
        h.Send(h.Peer());
        h.OurWindow = h.Win(0);

        h.PeerTsVal = 5;
        h.Send(h.Peer(data: Bytes(8)));
        h.At(h.Now + Ms(40));
        h.Recv(h.Ours(ack: 8) with { Window = h.Win(8) });

        var old = new TcpOptions();
        old.SetTimestamps(0xFFFF_FFF8, h.LastTsVal!.Value);
        h.Send(h.Peer(seq: 8, data: Bytes(8)) with { Options = old });
        h.Recv(h.Ours(ack: 8) with { Window = h.Win(8) });
        Assert.Equal(8, h.C.ReceiveBuffer.Count);
        Assert.Equal(1, h.Env.Statistics.PawsDrops);
    }
}
