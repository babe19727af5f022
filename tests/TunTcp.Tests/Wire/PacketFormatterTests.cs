using System.Text;
using CsCheck;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>The one-line rendering used by the tracer and <c>tuntcp dump</c>.</summary>
public class PacketFormatterTests
{
    private const string Route = "IPv4 192.168.0.1 -> 192.168.0.2 ";

    private static byte[] WithByte(byte[] packet, int index, byte value)
    {
        var copy = (byte[])packet.Clone();
        copy[index] = value;
        return copy;
    }

    [Fact]
    public void Format_LinuxSyn_ShowsPortsFlagsNumbersAndOptions() =>
        Assert.Equal(Route + "TCP len 60 59428 -> 80 [S] seq 3370208085 ack 0 win 64240 mss 1460,sackOK,TS 2773099386 0,wscale 10",
            PacketFormatter.Format(WireCaptures.LinuxSyn));

    [Fact]
    public void Format_LinuxSynAck_ShowsAckFlagAsDot() =>
        Assert.Equal(Route + "TCP len 60 8080 -> 40001 [S.] seq 3565775608 ack 16909061 win 65160 mss 1460,sackOK,TS 1473936760 1000,wscale 10",
            PacketFormatter.Format(WireCaptures.LinuxSynAck));

    [Fact]
    public void Format_LinuxRstAck_HasNoOptions() =>
        Assert.Equal(Route + "TCP len 40 81 -> 40002 [R.] seq 0 ack 168496142 win 0",
            PacketFormatter.Format(WireCaptures.LinuxRstAck));

    [Fact]
    public void Format_TcpWithData_ShowsTheDataLength()
    {
        var packet = new byte[20 + 20 + 5];
        new Ipv4Header(WireGen.Kernel, WireGen.Peer, IpProtocol.Tcp, 25).Write(packet);
        new TcpHeader(7, 40000, new SeqNumber(100), new SeqNumber(200), TcpFlags.Psh | TcpFlags.Ack, 512).Write(packet.AsSpan(20), default);
        "hello"u8.CopyTo(packet.AsSpan(40));
        TcpHeader.WriteChecksum(packet.AsSpan(20), WireGen.Kernel, WireGen.Peer);
        Assert.Equal(Route + "TCP len 45 7 -> 40000 [P.] seq 100 ack 200 win 512 data 5", PacketFormatter.Format(packet));
    }

    [Fact]
    public void Format_LinuxEchoRequest_ShowsIdAndSequence() =>
        Assert.Equal(Route + "ICMP len 84 echo request id 5326 seq 1", PacketFormatter.Format(WireCaptures.LinuxEchoRequest));

    [Fact]
    public void Format_LinuxEchoReply_ShowsIdAndSequence() =>
        Assert.Equal(Route + "ICMP len 36 echo reply id 16962 seq 7", PacketFormatter.Format(WireCaptures.LinuxEchoReply));

    [Fact]
    public void Format_PacketWithIpOptions_ShowsThePayloadAfterThem() =>
        Assert.Equal(Route + "ICMP len 76 echo request id 5328 seq 1", PacketFormatter.Format(WireCaptures.LinuxEchoRequestWithRecordRoute));

    [Fact]
    public void Format_LinuxPortUnreachable_ShowsTheCode() =>
        Assert.Equal(Route + "ICMP len 60 destination unreachable code 3", PacketFormatter.Format(WireCaptures.LinuxPortUnreachable));

    [Fact]
    public void Format_LinuxUdp_ShowsPortsAndDataLength() =>
        Assert.Equal(Route + "UDP len 34 40000 -> 9 data 6", PacketFormatter.Format(WireCaptures.LinuxUdp));

    [Fact]
    public void Format_LinuxIpv6EchoRequest_IsShownInFull() =>
        Assert.Equal("IPv6 fd00::1 -> fd00::2 ICMPv6 len 56 echo request id 5324 seq 1",
            PacketFormatter.Format(WireCaptures.LinuxIpv6EchoRequest));

    [Fact]
    public void Format_Ipv6Tcp_ChecksTheIpv6PseudoHeader()
    {
        var syn = Support.Packets6.Tcp(new TcpHeader(40000, 80, new SeqNumber(7), default, TcpFlags.Syn, 64800), new TcpOptions { MaxSegmentSize = 1440 });
        Assert.Equal("IPv6 fd00:7475:6e::1 -> fd00:7475:6e::2 TCP len 64 40000 -> 80 [S] seq 7 ack 0 win 64800 mss 1440", PacketFormatter.Format(syn));
        syn[^1] ^= 1;
        Assert.EndsWith(" BAD-CHECKSUM", PacketFormatter.Format(syn));
    }

    [Fact]
    public void Format_Ipv6ExtensionHeadersAndFragments_AreNamed()
    {
        var udp = Support.Packets6.Udp(5000, 7, new byte[3000]);
        var fragments = Support.Packets6.Fragment(udp, 1232, identification: 99);
        Assert.Equal("IPv6 fd00:7475:6e::1 -> fd00:7475:6e::2 UDP fragment id 99 offset 1232 + len 1280", PacketFormatter.Format(fragments[1]));

        // Hop-by-Hop with a PadN option, then ICMPv6.
        var icmp = Support.Packets6.EchoRequest(1, 2, "x"u8);
        var withHop = new byte[icmp.Length + 8];
        icmp.AsSpan(0, 40).CopyTo(withHop);
        withHop[6] = Ipv6NextHeader.HopByHop;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(withHop.AsSpan(4), (ushort)(icmp.Length - 40 + 8));
        withHop[40] = (byte)IpProtocol.Icmpv6; withHop[41] = 0; withHop[42] = 1; withHop[43] = 4;
        icmp.AsSpan(40).CopyTo(withHop.AsSpan(48));
        Assert.Equal("IPv6 fd00:7475:6e::1 -> fd00:7475:6e::2 hop-by-hop ICMPv6 len 57 echo request id 1 seq 2", PacketFormatter.Format(withHop));

        withHop[5] += 100; // payload length past the buffer
        Assert.StartsWith("IPv6 malformed", PacketFormatter.Format(withHop));
    }

    [Fact]
    public void Format_Fragments_AreShownAsFragmentsNotParsedAsSegments()
    {
        // The first fragment holds what looks like a whole ICMP header; it must not be decoded as one.
        Assert.Equal(Route + "ICMP fragment id 36819 offset 0 + len 68", PacketFormatter.Format(WireCaptures.LinuxFirstFragment));
        Assert.Equal(Route + "ICMP fragment id 36819 offset 48 len 44", PacketFormatter.Format(WireCaptures.LinuxLastFragment));
    }

    [Fact]
    public void Format_UnknownProtocol_ShowsItsNumber()
    {
        var packet = new byte[24];
        new Ipv4Header(WireGen.Kernel, WireGen.Peer, (IpProtocol)47, 4).Write(packet);
        Assert.Equal(Route + "protocol 47 len 24", PacketFormatter.Format(packet));
    }

    [Fact]
    public void Format_MalformedIpv4_SaysWhy() =>
        Assert.Equal("IPv4 malformed (total length past the end of the buffer) len 83",
            PacketFormatter.Format(WireCaptures.LinuxEchoRequest.AsSpan(0, 83)));

    [Fact]
    public void Format_MalformedTcp_SaysWhy() =>
        Assert.Equal(Route + "TCP len 60 malformed (TCP data offset below 5 words)",
            PacketFormatter.Format(WithByte(WireCaptures.LinuxSyn, 32, 0x40)));

    [Fact]
    public void Format_MalformedTcpOption_SaysWhy() =>
        Assert.Equal(Route + "TCP len 60 malformed (TCP option with the wrong length for its kind)",
            PacketFormatter.Format(WithByte(WireCaptures.LinuxSyn, 41, 5)));

    [Fact]
    public void Format_MalformedUdp_SaysWhy() =>
        Assert.Equal(Route + "UDP len 34 malformed (UDP length below 8 or past the end of the datagram)",
            PacketFormatter.Format(WithByte(WireCaptures.LinuxUdp, 25, 15)));

    [Fact]
    public void Format_TruncatedIcmp_SaysWhy()
    {
        var packet = new byte[24];
        new Ipv4Header(WireGen.Kernel, WireGen.Peer, IpProtocol.Icmp, 4).Write(packet);
        Assert.Equal(Route + "ICMP len 24 malformed (truncated: shorter than the fixed header)", PacketFormatter.Format(packet));
    }

    [Fact]
    public void Format_BadTransportChecksums_AreFlagged()
    {
        // The window (TCP), a payload byte (UDP) and the sequence number (ICMP) are covered only
        // by the transport checksum, so the IP header stays valid.
        Assert.EndsWith("win 64241 mss 1460,sackOK,TS 2773099386 0,wscale 10 BAD-CHECKSUM",
            PacketFormatter.Format(WithByte(WireCaptures.LinuxSyn, 35, 0xF1)));
        Assert.Equal(Route + "UDP len 34 40000 -> 9 data 6 BAD-CHECKSUM",
            PacketFormatter.Format(WithByte(WireCaptures.LinuxUdp, 33, 0x0B)));
        Assert.Equal(Route + "ICMP len 84 echo request id 5326 seq 2 BAD-CHECKSUM",
            PacketFormatter.Format(WithByte(WireCaptures.LinuxEchoRequest, 27, 2)));
    }

    [Fact]
    public void Format_BadIpHeaderChecksum_IsFlagged()
    {
        // TTL is in the IP header checksum but not in the TCP pseudo-header.
        Assert.Equal(Route + "TCP len 40 81 -> 40002 [R.] seq 0 ack 168496142 win 0 BAD-IP-CHECKSUM",
            PacketFormatter.Format(WithByte(WireCaptures.LinuxRstAck, 8, 1)));
    }

    [Fact]
    public void Format_FragmentWithBadIpHeaderChecksum_IsFlagged() =>
        Assert.Equal(Route + "ICMP fragment id 36819 offset 48 len 44 BAD-IP-CHECKSUM",
            PacketFormatter.Format(WithByte(WireCaptures.LinuxLastFragment, 8, 1)));

    [Fact]
    public void Format_MalformedTransportWithBadIpHeaderChecksum_IsFlagged() =>
        Assert.Equal(Route + "TCP len 60 malformed (TCP data offset below 5 words) BAD-IP-CHECKSUM",
            PacketFormatter.Format(WithByte(WithByte(WireCaptures.LinuxSyn, 32, 0x40), 8, 1)));

    [Fact]
    public void Format_EmptyInput_SaysSo() => Assert.Equal("empty packet", PacketFormatter.Format([]));

    [Fact]
    public void Format_NonIpInput_ShowsItsVersionNibble() =>
        Assert.Equal("non-IP packet (version nibble 0) len 3", PacketFormatter.Format([0x00, 0x01, 0x02]));

    [Fact]
    public void Append_AddsToTheExistingLine()
    {
        var sb = new StringBuilder("rx ");
        PacketFormatter.Append(sb, WireCaptures.LinuxUdp);
        Assert.Equal("rx " + Route + "UDP len 34 40000 -> 9 data 6", sb.ToString());
    }

    [Fact]
    public void Format_AnyBytes_GiveOneNonEmptyLineWithoutThrowing()
    {
        WireGen.Fuzz(WireGen.Captures).Sample(bytes =>
        {
            string line = PacketFormatter.Format(bytes);
            Assert.False(string.IsNullOrWhiteSpace(line));
            Assert.DoesNotContain('\n', line);
            Assert.True(
                line.StartsWith("IPv4 ", StringComparison.Ordinal) || line.StartsWith("IPv6 ", StringComparison.Ordinal)
                || line.StartsWith("non-IP packet", StringComparison.Ordinal) || line == "empty packet",
                line);
        }, iter: 10000);
    }
}
