using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// Options: MSS (RFC 9293 3.7.1), window scaling (RFC 7323 2), timestamps with RTT measurement
/// and PAWS (RFC 7323 3-5), SACK (RFC 2018) - each negotiated and declined; unknown and
/// malformed options.
/// </summary>
public class TcpOptionTests
{
    private const TcpFlags PshAck = TcpFlags.Psh | TcpFlags.Ack;

    private static TcpOptions SynAck(ushort mss = Mss, byte? ws = null, bool sack = false, uint? tsVal = null, uint tsEcr = 0)
    {
        var o = new TcpOptions { MaxSegmentSize = mss, WindowScale = ws, SackPermitted = sack };
        if (tsVal is uint v) o.SetTimestamps(v, tsEcr);
        return o;
    }

    // ---- MSS ----

    // RFC 9293 3.7.1: the MSS we announce is what fits our MTU: MTU - 20 (IPv4) - 20 (TCP).
    [Theory]
    [InlineData(1500, 1460)]
    [InlineData(1280, 1240)]
    [InlineData(576, 536)]
    [InlineData(9000, 8960)]
    public void Options_MssAnnouncedFromMtu(int mtu, int mss)
    {
        var h = Connecting(mtu: mtu);
        Assert.Equal((ushort)mss, h.Recv().Options.MaxSegmentSize);
        var l = Listening(mtu: mtu);
        l.SendSyn(l.LinuxSynOptions());
        Assert.Equal((ushort)mss, l.Recv().Options.MaxSegmentSize);
    }

    // RFC 9293 3.7.1: "Eff.snd.MSS = min(SendMSS+20, MMS_S) - TCPhdrsize - IPoptionsize", the TCP
    // header counting the options carried (12 bytes of timestamps): the peer's MSS is honoured.
    [Fact]
    public void Options_PeerMssHonoured()
    {
        var h = Established(synOptions: LinuxSyn(mss: 536));
        h.Write(Bytes(1200));
        h.Recv(h.Ours(seq: 0, data: Bytes(524)));
        h.Recv(h.Ours(seq: 524, data: Bytes(524, 524)));
        h.Recv(h.Ours(seq: 1048, flags: PshAck, data: Bytes(152, 1048)));
        Assert.Equal(524, h.C.GetStatistics().Mss);
    }

    // RFC 9293 3.7.1: "If an MSS Option is not received at connection setup, TCP implementations
    // MUST assume a default send MSS of 536 (576 - 40) for IPv4."
    [Fact]
    public void Options_NoMssOption_Assumes536()
    {
        var h = Established(synOptions: NoOptions);
        h.Write(Bytes(600));
        h.Recv(h.Ours(seq: 0, data: Bytes(536)));
        h.Recv(h.Ours(seq: 536, flags: PshAck, data: Bytes(64, 536)));
    }

    // A peer MSS above our own MTU is bounded by the MTU (MMS_S).
    [Fact]
    public void Options_PeerMssAboveOurMtu_BoundedByMtu()
    {
        var h = Established(synOptions: LinuxSyn(mss: 8960));
        Assert.Equal(TsMss, h.C.GetStatistics().Mss);
    }

    // ---- window scaling ----

    // RFC 7323 2.2/2.3: both SYNs carry the option, so both directions scale: the peer's window
    // field is shifted by its shift (7), ours by the shift we offered (3 for 256 KiB); RFC 7323 2.2:
    // the windows of the SYNs themselves are not scaled.
    [Fact]
    public void Options_WindowScaleNegotiated_BothDirectionsScaled_Rfc7323_2()
    {
        var h = Listening();
        h.SendSyn(h.LinuxSynOptions(), window: 1000);
        var synAck = h.Recv();
        Assert.Equal((byte)3, synAck.Options.WindowScale);
        Assert.Equal(65535, synAck.Window);
        Assert.Equal(1000, h.C.GetStatistics().PeerWindow);
        h.Send(h.Peer() with { Window = 1000 });
        Assert.Equal(1000 << 7, h.C.GetStatistics().PeerWindow);
        Assert.True(h.C.GetStatistics().WindowScaling);
    }

    // RFC 7323 2.2: "If a Window Scale option is received in a SYN ... but no Window Scale option is
    // sent in the SYN,ACK, then window scaling is not used": a SYN without it gets a SYN-ACK
    // without it, and no window is scaled.
    [Fact]
    public void Options_SynWithoutWindowScale_SynAckWithout_NoScaling()
    {
        var h = Listening();
        h.SendSyn(LinuxSyn(ws: false));
        var synAck = h.Recv();
        Assert.Null(synAck.Options.WindowScale);
        h.Send(h.Peer() with { Window = 1000 });
        Assert.Equal(1000, h.C.GetStatistics().PeerWindow);
        Assert.False(h.C.GetStatistics().WindowScaling);
        h.Send(h.Peer(data: Bytes(100)));
        h.At(h.Now + Ms(40));
        // Unscaled; the right edge of the SYN-ACK's 65535 stays (receiver SWS: it could move by 100 only).
        h.Recv(h.Ours(ack: 100) with { Window = 65535 - 100 });
    }

    // Active open: we offer window scaling; a SYN-ACK without it means no scaling either way.
    [Fact]
    public void Options_SynAckWithoutWindowScale_NoScaling()
    {
        var h = EstablishedActive(synAckOptions: LinuxSyn(ws: false));
        Assert.Equal(65535, h.OurWindow);
        Assert.False(h.C.GetStatistics().WindowScaling);
        h.Send(h.Peer() with { Window = 3000 });
        Assert.Equal(3000, h.C.GetStatistics().PeerWindow);
    }

    // Window scaling switched off: not offered, not accepted.
    [Fact]
    public void Options_WindowScalingDisabled_NotOffered()
    {
        var settings = new TcpSettings { WindowScaling = false };
        var c = Connecting(settings);
        Assert.Null(c.Recv().Options.WindowScale);
        var h = Listening(settings);
        h.SendSyn(h.LinuxSynOptions());
        Assert.Null(h.Recv().Options.WindowScale);
    }

    // RFC 7323 2.3: "If a Window Scale option is received with a shift.cnt value larger than 14,
    // the TCP SHOULD log the error but MUST use 14 instead of the specified value."
    [Fact]
    public void Options_WindowScaleAbove14_Uses14_Rfc7323_2_3()
    {
        var o = LinuxSyn();
        o.WindowScale = 15;
        var h = Established(synOptions: o);
        h.Send(h.Peer() with { Window = 2 });
        Assert.Equal(2 << 14, h.C.GetStatistics().PeerWindow);
    }

    // RFC 7323 2.2: the option "MUST only be sent in a SYN"; one on another segment is ignored.
    [Fact]
    public void Options_WindowScaleOnNonSyn_Ignored()
    {
        var h = Established();
        var o = h.EchoOptions();
        o.WindowScale = 0;
        o.MaxSegmentSize = 100;
        h.Send(h.Peer() with { Window = 100, Options = o });
        Assert.Equal(100 << 7, h.C.GetStatistics().PeerWindow);
        h.Write(Bytes(TsMss));
        Assert.Equal(TsMss, h.Recv().Payload.Length);
    }

    // ---- timestamps ----

    // RFC 7323 3.2: timestamps are used only if both SYNs carry them; then every segment carries
    // TSopt with TSval from our clock and TSecr = TS.Recent.
    [Fact]
    public void Options_TimestampsNegotiated_EverySegmentCarriesThem()
    {
        var h = Established();
        Assert.True(h.C.GetStatistics().Timestamps);
        h.Advance(Ms(123));
        h.Write(Bytes(10));
        var e = h.Recv(h.Ours(flags: PshAck, data: Bytes(10)));
        Assert.Equal(h.OurTsVal, e.Options.TimestampValue);
        Assert.Equal(h.PeerTsVal, e.Options.TimestampEcho);
    }

    // RFC 7323 3.2: "If a TSopt is received in a <SYN> ... but not ... in the <SYN,ACK>" / a SYN
    // without it: no timestamps on any segment.
    [Fact]
    public void Options_SynWithoutTimestamps_NoneUsed()
    {
        var h = Listening();
        h.SendSyn(LinuxSyn(ts: false));
        Assert.False(h.Recv().Options.HasTimestamps);
        h.Send(h.Peer());
        Assert.False(h.C.GetStatistics().Timestamps);
        h.OurWindow = h.Win(0);
        h.Write(Bytes(10));
        h.Recv(h.Ours(flags: PshAck, data: Bytes(10)) with { Options = NoOptions });
        Assert.Equal(Mss, h.C.GetStatistics().Mss);
    }

    [Fact]
    public void Options_TimestampsDisabled_NotOfferedNorEchoed()
    {
        var settings = new TcpSettings { Timestamps = false };
        Assert.False(Connecting(settings).Recv().Options.HasTimestamps);
        var h = Listening(settings);
        h.SendSyn(h.LinuxSynOptions());
        Assert.False(h.Recv().Options.HasTimestamps);
    }

    // Active open: we offer timestamps; a SYN-ACK without them means none are used.
    [Fact]
    public void Options_SynAckWithoutTimestamps_NoneUsed()
    {
        var h = EstablishedActive(synAckOptions: LinuxSyn(ts: false));
        Assert.False(h.Timestamps);
        h.Write(Bytes(10));
        h.Recv(h.Ours(flags: PshAck, data: Bytes(10)) with { Options = NoOptions });
    }

    // RFC 7323 4.3: TS.Recent is updated only from a segment that covers Last.ACK.sent (SEG.SEQ =<
    // Last.ACK.sent): an out-of-order segment's TSval is not echoed, the one that fills the hole is.
    [Fact]
    public void Options_TsRecentUpdatedOnlyFromSegmentCoveringLastAckSent_Rfc7323_4_3()
    {
        var h = Established();
        h.PeerTsVal = 6000;
        h.Send(h.Peer(data: Bytes(100)));
        h.PeerTsVal = 7000;
        h.Send(h.Peer(seq: 200, data: Bytes(100, 200)));
        var dup = h.Recv();
        Assert.Equal(6000u, dup.Options.TimestampEcho);
        Assert.Equal(h.Irs + 101, dup.Ack);
        h.PeerTsVal = 8000;
        h.Send(h.Peer(seq: 100, data: Bytes(100, 100)));
        var ack = h.Recv();
        Assert.Equal(h.Irs + 301, ack.Ack);
        Assert.Equal(8000u, ack.Options.TimestampEcho);
    }

    // RFC 7323 4.1 / RFC 6298 3: the timestamp echo gives an RTT sample even for a retransmitted
    // segment (no retransmission ambiguity), where Karn's rule forbids a sample without it.
    [Theory]
    [InlineData(true, 6250)]   // SRTT = 7/8 * 1 us + 1/8 * 50 ms
    [InlineData(false, 1)]     // no sample: SRTT stays at the handshake's (~0, clamped to 1 us)
    public void Options_TimestampEcho_MeasuresRttOfRetransmission_Rfc7323_4_1(bool timestamps, int srttUs)
    {
        var h = Established(synOptions: LinuxSyn(ts: timestamps));
        Assert.Equal(TimeSpan.FromMicroseconds(1), h.C.GetStatistics().SmoothedRtt);
        h.Write(Bytes(100));
        h.Recv();
        h.AtNextDeadline();
        h.Recv();
        h.Advance(Ms(50));
        h.Send(h.Peer(ack: 100));
        Assert.Equal(TimeSpan.FromMicroseconds(srttUs), h.C.GetStatistics().SmoothedRtt);
    }

    // RFC 7323 5.3 PAWS, R1/R2: a segment whose TSval is older than TS.Recent is an old duplicate:
    // "Send an acknowledgment in reply ... and drop the segment".
    [Theory]
    [InlineData(4999u)]
    [InlineData(5000u + 0x8000_0001u)] // "older" modulo 2^32
    public void Options_Paws_OlderTsVal_DroppedAndAcked_Rfc7323_5_3(uint tsVal)
    {
        var h = Established();
        var o = new TcpOptions();
        o.SetTimestamps(tsVal, h.LastTsVal!.Value);
        h.Send(h.Peer(data: Bytes(100)) with { Options = o });
        h.Recv(h.Ours());
        h.RecvNothing();
        Assert.Equal(0, h.C.ReceiveBuffer.Count);
        Assert.Equal(1, h.Env.Statistics.PawsDrops);
    }

    // PAWS protects against old data, not against reordered ACKs. As Linux (tcp_disordered_ack),
    // a duplicate pure ACK - at RCV.NXT, acknowledging SND.UNA, leaving the window as it is -
    // whose TSval trails TS.Recent by at most the RTO is processed, not dropped: reordering made
    // it late, and its SACK blocks are news to the sender (here they take two segments out of
    // the pipe). Older than the RTO, or carrying data, it is still an old duplicate (R2).
    [Fact]
    public void Options_Paws_DisorderedDuplicateAck_ProcessedNotDropped()
    {
        var h = Established(Classic());
        const int S = TsMss;
        h.Write(Bytes(3 * S));
        Assert.Equal(3, h.RecvAll().Count);
        TcpOptions Ack(uint tsVal, int segment)
        {
            var o = new TcpOptions();
            o.SetTimestamps(tsVal, h.LastTsVal!.Value);
            o.AddSackBlock(h.OurBlock(segment * S, (segment + 1) * S));
            return o;
        }
        h.Send(h.Peer() with { Options = Ack(5010, 1) });
        h.Send(h.Peer() with { Options = Ack(5005, 2) });
        h.RecvNothing();
        Assert.Equal(0, h.Env.Statistics.PawsDrops);
        Assert.Equal(S, h.C.GetStatistics().BytesInFlight);

        // Further behind TS.Recent than the RTO (just over 200 ms here): an old duplicate, dropped and ACKed.
        Assert.InRange(h.C.GetStatistics().Rto, TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(201));
        h.Send(h.Peer() with { Options = Ack(5010 - 201, 2) });
        h.PeerTsVal = 5010;
        h.Recv(h.Ours(seq: 3 * S));
        Assert.Equal(1, h.Env.Statistics.PawsDrops);
    }

    // RFC 7323 5.3 R1: "... and if the RST bit is not set" - PAWS does not apply to a RST.
    [Fact]
    public void Options_Paws_DoesNotApplyToRst()
    {
        var h = Established();
        var o = new TcpOptions();
        o.SetTimestamps(1, 0);
        h.Send(new Seg { Flags = TcpFlags.Rst, Seq = h.Irs + 1, Window = 0, Options = o });
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
    }

    // RFC 7323 5.5: TS.Recent not refreshed for more than 24 days is invalid; PAWS then lets the
    // segment through and TS.Recent takes its TSval.
    [Fact]
    public void Options_Paws_TsRecentOlderThan24Days_NotUsed_Rfc7323_5_5()
    {
        var h = Established();
        h.Advance(TimeSpan.FromDays(25));
        h.PeerTsVal = 10;
        h.Send(h.Peer(data: Bytes(100)));
        Assert.Equal(100, h.C.ReceiveBuffer.Count);
        h.At(h.Now + Ms(40));
        Assert.Equal(10u, h.Recv().Options.TimestampEcho);
    }

    // ---- SACK ----

    // RFC 2018 2: SACK-permitted is sent in the SYN-ACK only when the SYN carried it; without it no
    // SACK blocks are sent for out-of-order data.
    [Fact]
    public void Options_SynWithoutSackPermitted_NoSackBlocks_Rfc2018_2()
    {
        var h = Listening();
        h.SendSyn(LinuxSyn(sack: false));
        Assert.False(h.Recv().Options.SackPermitted);
        h.Send(h.Peer());
        Assert.False(h.C.GetStatistics().Sack);
        h.OurWindow = h.Win(0);
        h.Send(h.Peer(seq: 100, data: Bytes(10)));
        h.Recv(h.Ours());
        h.Send(h.Peer(data: Bytes(10)));
        h.Recv(h.Ours(ack: 10) with { Window = h.Win(10) });
        // D-SACK is off as well.
        h.Send(h.Peer(data: Bytes(10)));
        h.Recv(h.Ours(ack: 10) with { Window = h.Win(10) });
    }

    [Fact]
    public void Options_SackDisabled_NotOffered()
    {
        var settings = new TcpSettings { Sack = false };
        Assert.False(Connecting(settings).Recv().Options.SackPermitted);
        var h = Listening(settings);
        h.SendSyn(h.LinuxSynOptions());
        Assert.False(h.Recv().Options.SackPermitted);
    }

    // RFC 7323 / RFC 2018 / RFC 9293: a SYN with no options at all gets a SYN-ACK with only our
    // MSS: no window scale, no timestamps, no SACK-permitted (issue item 3).
    [Fact]
    public void Options_SynWithoutOptions_SynAckWithOnlyMss()
    {
        var h = Listening();
        h.SendSyn(NoOptions);
        h.Recv(new Seg
        {
            Flags = TcpFlags.Syn | TcpFlags.Ack, Seq = h.Env.InitialSequenceNumber(ConnTuple, h.Now), Ack = h.Irs + 1,
            Window = 65535, Options = SynAck(),
        });
    }

    // RFC 2018 / RFC 6675: SACK blocks the peer reports mark our segments as received; after a
    // retransmission timeout only the unSACKed segments are resent (Linux tcp_timeout_mark_lost
    // keeps SACK information).
    [Fact]
    public void Options_PeerSackBlocks_SackedSegmentsNotRetransmittedAfterRto()
    {
        var h = Established(Classic());
        h.Write(Bytes(4 * TsMss));
        Assert.Equal(4, h.RecvAll().Count);
        var o = h.EchoOptions();
        o.AddSackBlock(h.OurBlock(TsMss, 2 * TsMss));
        o.AddSackBlock(h.OurBlock(3 * TsMss, 4 * TsMss));
        h.Send(h.Peer() with { Options = o });
        h.RecvNothing();
        Assert.Equal(2 * TsMss, h.C.GetStatistics().BytesInFlight);

        h.AtNextDeadline();
        h.Recv(h.Ours(seq: 0, data: Bytes(TsMss)));
        h.RecvNothing();
        h.Send(h.Peer(ack: TsMss) with { Options = o });
        h.Recv(h.Ours(seq: 2 * TsMss, data: Bytes(TsMss, 2 * TsMss)));
        h.RecvNothing();
        h.Send(h.Peer(ack: 4 * TsMss));
        Assert.Equal(0, h.C.GetStatistics().BytesInFlight);
        Assert.True(h.C.NextDeadline.IsNever);
    }

    // RFC 2018 8: "the data receiver is permitted to later discard data which have been reported
    // in a SACK option" - when the segment at SND.UNA was SACKed yet is still unacknowledged at the
    // RTO, the SACK information is dropped and sending restarts at SND.UNA (Linux
    // tcp_check_sack_reneging).
    [Fact]
    public void Options_SackRenegedAtSndUna_ResentAfterRto_Rfc2018_8()
    {
        var h = Established(Classic());
        h.Write(Bytes(3 * TsMss));
        h.RecvAll();
        var o = h.EchoOptions();
        o.AddSackBlock(h.OurBlock(0, TsMss));
        h.Send(h.Peer() with { Options = o });
        Assert.Equal(2 * TsMss, h.C.GetStatistics().BytesInFlight);
        h.AtNextDeadline();
        h.Recv(h.Ours(seq: 0, data: Bytes(TsMss)));
        h.RecvNothing();
    }

    // RFC 2883 4: a first SACK block below SEG.ACK (or inside the second block) is a D-SACK: it
    // reports a duplicate and SACKs nothing new; blocks outside SND.UNA..SND.NXT are ignored.
    [Fact]
    public void Options_PeerDsackAndBogusBlocks_DoNotMarkAnythingSacked()
    {
        var h = Established();
        h.Write(Bytes(3 * TsMss));
        h.RecvAll();
        var o = h.EchoOptions();
        o.AddSackBlock(h.OurBlock(0, 100));                      // D-SACK: below SEG.ACK
        o.AddSackBlock(h.OurBlock(10 * TsMss, 11 * TsMss));      // never sent
        o.AddSackBlock(h.OurBlock(2 * TsMss, TsMss));            // inverted
        h.Send(h.Peer(ack: 100) with { Options = o });
        Assert.Equal(3 * TsMss - 100, h.C.GetStatistics().BytesInFlight);
        var d = h.EchoOptions();
        d.AddSackBlock(h.OurBlock(2 * TsMss + 10, 2 * TsMss + 20)); // D-SACK: inside the next block
        d.AddSackBlock(h.OurBlock(2 * TsMss, 3 * TsMss));
        h.Send(h.Peer(ack: 100) with { Options = d });
        Assert.Equal(2 * TsMss - 100, h.C.GetStatistics().BytesInFlight);
    }

    // ---- unknown and malformed options ----

    /// <summary>A raw segment from the peer with the given option bytes (a multiple of 4).</summary>
    private static byte[] Raw(TcpHarness h, byte[] options, byte[] payload, int seq = 0)
    {
        var header = new TcpHeader(RemotePort, LocalPort, h.Irs + 1 + seq, h.Iss + 1, TcpFlags.Ack, 1000);
        var bytes = new byte[TcpPacket.MinHeaderLength + options.Length + payload.Length];
        header.Write(bytes, NoOptions);
        bytes[12] = (byte)((TcpPacket.MinHeaderLength + options.Length) / 4 << 4);
        options.CopyTo(bytes, TcpPacket.MinHeaderLength);
        payload.CopyTo(bytes, TcpPacket.MinHeaderLength + options.Length);
        return bytes;
    }

    // RFC 9293 3.2: "a TCP implementation MUST be able to receive a TCP Option in any segment" and
    // unknown kinds are skipped by their length (MUST-6/MUST-7); the known options after them count.
    [Fact]
    public void Options_UnknownOptionSkipped_SegmentProcessed()
    {
        var h = Established();
        var ts = h.EchoOptions();
        byte[] options =
        [
            30, 4, 0xAB, 0xCD,                       // MPTCP-like kind 30, unknown here
            1, 1, 8, 10,                             // NOP NOP timestamps
            (byte)(ts.TimestampValue >> 24), (byte)(ts.TimestampValue >> 16), (byte)(ts.TimestampValue >> 8), (byte)ts.TimestampValue,
            (byte)(ts.TimestampEcho >> 24), (byte)(ts.TimestampEcho >> 16), (byte)(ts.TimestampEcho >> 8), (byte)ts.TimestampEcho,
            99, 2, 0, 0,                             // another unknown, then end of list
        ];
        var raw = Raw(h, options, Bytes(10));
        Assert.True(TcpPacket.TryParse(raw, out var packet, out var error), error.ToString());
        h.C.OnSegment(TcpSegment.From(packet), h.Now, h);
        Assert.Equal(10, h.C.ReceiveBuffer.Count);
        Assert.Equal(0, h.Env.Statistics.PawsDrops);
    }

    // RFC 9293 3.2 / MUST-7: a malformed option (bad length) makes the segment invalid: the parser
    // rejects it without an exception, and the engine never sees it.
    [Theory]
    [InlineData(new byte[] { 2, 3, 5, 0 }, (int)(ParseError.BadOptionLength))]          // MSS with length 3
    [InlineData(new byte[] { 8, 10, 0, 0 }, (int)(ParseError.OptionPastEnd))]           // timestamps cut short
    [InlineData(new byte[] { 30, 1, 0, 0 }, (int)(ParseError.ZeroLengthOption))]        // length below 2
    [InlineData(new byte[] { 1, 1, 1, 30 }, (int)(ParseError.OptionPastEnd))]           // kind without length byte
    [InlineData(new byte[] { 5, 6, 0, 0, 0, 0, 0, 0 }, (int)(ParseError.BadOptionLength))] // SACK not 2 + 8n
    public void Options_MalformedOption_SegmentRejectedWithoutException(byte[] options, int expectedValue)
    {
        var expected = (ParseError)expectedValue;
        var h = Established();
        var raw = Raw(h, options, Bytes(10));
        Assert.False(TcpPacket.TryParse(raw, out _, out var error));
        Assert.Equal(expected, error);
        h.RecvNothing();
        Assert.Equal(0, h.C.ReceiveBuffer.Count);
    }
}
