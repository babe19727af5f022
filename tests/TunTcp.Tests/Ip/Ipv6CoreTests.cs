using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using TunTcp.Ip;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>IPv6 input and output of the dual-stack core: ICMPv6 (RFC 4443), the extension-header chain (RFC 8200 4), TCP and UDP over IPv6.</summary>
public class Ipv6CoreTests
{
    private readonly RecordingOutput _out = new();
    private readonly NetStackCore _core;

    public Ipv6CoreTests() => _core = new NetStackCore(Packets6.DualStack(), _out);

    private static Icmpv6Message ParseIcmp(byte[] packet, out Ipv6Packet ip)
    {
        Assert.True(Ipv6Packet.TryParse(packet, out ip, out _));
        Assert.Equal((byte)IpProtocol.Icmpv6, ip.NextHeader);
        Assert.True(Icmpv6Message.TryParse(ip.Payload, out var icmp, out _));
        Assert.True(icmp.IsChecksumValid(ip.Source, ip.Destination));
        return icmp;
    }

    [Fact]
    public void Rfc4443_4_2_EchoRequest_GetsReplyWithSameIdSequenceData()
    {
        _core.Receive(Packets6.EchoRequest(0x77, 3, "ping6"u8), Instant.Zero);

        var icmp = ParseIcmp(_out.Single(), out var ip);
        Assert.Equal(Packets6.Stack, ip.Source);
        Assert.Equal(Packets6.Host, ip.Destination);
        Assert.Equal(Icmpv6Type.EchoReply, icmp.Type);
        Assert.Equal(0x77, icmp.Identifier);
        Assert.Equal(3, icmp.SequenceNumber);
        Assert.Equal("ping6"u8.ToArray(), icmp.Data.ToArray());
        Assert.Equal(1, _core.Statistics.Ipv6PacketsReceived);
    }

    [Fact]
    public void Rfc4443_4_2_EchoToAllNodes_IsAnsweredFromOurUnicastAddress()
    {
        _core.Receive(Packets6.EchoRequest(1, 1, "x"u8, to: Packets6.AllNodes), Instant.Zero);
        var icmp = ParseIcmp(_out.Single(), out var ip);
        Assert.Equal(Icmpv6Type.EchoReply, icmp.Type);
        Assert.Equal(Packets6.Stack, ip.Source);
    }

    [Fact]
    public void EchoWithBadChecksum_IsDropped()
    {
        var packet = Packets6.EchoRequest(1, 1, "x"u8);
        packet[^1] ^= 1;
        _core.Receive(packet, Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.BadChecksumDropped);
    }

    [Fact]
    public void PacketToAnotherUnicastAddress_IsNotForUs()
    {
        _core.Receive(Packets6.EchoRequest(1, 1, "x"u8, to: IpAddress.Parse("fd00:7475:6e::3")), Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.NotForUsDropped);
    }

    [Theory]
    [InlineData((int)(Icmpv6Type.RouterSolicitation))]
    [InlineData((int)(Icmpv6Type.NeighborSolicitation))]
    [InlineData((int)(Icmpv6Type.MulticastListenerReportV2))]
    [InlineData((int)(Icmpv6Type.NeighborAdvertisement))]
    public void NeighbourDiscoveryAndMld_AreCountedAndNeverAnswered(int typeValue)
    {
        var type = (Icmpv6Type)typeValue;
        _core.Receive(Packets6.Icmp(type, 0, new byte[20], from: IpAddress.Parse("fe80::1"), to: IpAddress.Parse("ff02::2")), Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.Icmpv6NeighborDiscoveryIgnored);
    }

    [Fact]
    public void Rfc4443_2_4_ErrorMessages_AreNeverAnsweredWithErrors()
    {
        _core.Receive(Packets6.Icmp(Icmpv6Type.DestinationUnreachable, 4, new byte[60]), Instant.Zero);
        _core.Receive(Packets6.Icmp((Icmpv6Type)99, 0, new byte[4]), Instant.Zero); // unknown error type: ignored (2.4 b)
        _core.Receive(Packets6.Icmp((Icmpv6Type)200, 0, new byte[4]), Instant.Zero); // unknown informational: ignored (2.4 b)
        Assert.Empty(_out.Packets);
    }

    [Fact]
    public void Rfc8200_4_UnknownNextHeader_GetsParameterProblemCode1PointingAtIt()
    {
        var sent = Packets6.Ip(Packets6.Host, Packets6.Stack, 253, new byte[16]);
        _core.Receive(sent, Instant.Zero);

        var icmp = ParseIcmp(_out.Single(), out var ip);
        Assert.Equal(Icmpv6Type.ParameterProblem, icmp.Type);
        Assert.Equal((byte)Icmpv6ParameterProblemCode.UnrecognizedNextHeader, icmp.Code);
        Assert.Equal((uint)Ipv6Packet.NextHeaderOffset, icmp.RestOfHeader);
        Assert.Equal(sent, icmp.Data.ToArray());
        Assert.Equal(Packets6.Host, ip.Destination);
    }

    [Fact]
    public void Rfc4443_2_4_e_NoErrorForAPacketToMulticast()
    {
        _core.Receive(Packets6.Ip(Packets6.Host, Packets6.AllNodes, 253, new byte[16]), Instant.Zero);
        Assert.Empty(_out.Packets);
    }

    [Fact]
    public void Rfc8200_4_7_NoNextHeader_IsIgnoredQuietly()
    {
        _core.Receive(Packets6.Ip(Packets6.Host, Packets6.Stack, Ipv6NextHeader.NoNextHeader, new byte[8]), Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.Ipv6NoNextHeader);
    }

    /// <summary>A Destination Options header holding one option of <paramref name="optionType"/>, then ICMPv6 echo.</summary>
    private static byte[] WithDestinationOption(byte optionType, IpAddress? to = null)
    {
        var destination = to ?? Packets6.Stack;
        var echo = new byte[Icmpv6Message.HeaderLength];
        Icmpv6Writer.WriteEcho(echo, Icmpv6Type.EchoRequest, 1, 1, default, Packets6.Host, destination);
        var payload = new byte[8 + echo.Length];
        payload[0] = (byte)IpProtocol.Icmpv6;
        payload[1] = 0; // 8 bytes
        payload[2] = optionType;
        payload[3] = 4; // option data length: fills the header
        echo.CopyTo(payload, 8);
        return Packets6.Ip(Packets6.Host, destination, Ipv6NextHeader.DestinationOptions, payload);
    }

    [Fact]
    public void Rfc8200_4_2_UnknownOption00_IsSkipped()
    {
        _core.Receive(WithDestinationOption(0x1E), Instant.Zero);
        Assert.Equal(Icmpv6Type.EchoReply, ParseIcmp(_out.Single(), out _).Type);
    }

    [Fact]
    public void Rfc8200_4_2_UnknownOption01_DiscardsQuietly()
    {
        _core.Receive(WithDestinationOption(0x5E), Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.Ipv6HeaderDropped);
    }

    [Fact]
    public void Rfc8200_4_2_UnknownOption10_GetsParameterProblemCode2EvenToMulticast()
    {
        _core.Receive(WithDestinationOption(0x9E, Packets6.AllNodes), Instant.Zero);
        var icmp = ParseIcmp(_out.Single(), out _);
        Assert.Equal(Icmpv6Type.ParameterProblem, icmp.Type);
        Assert.Equal((byte)Icmpv6ParameterProblemCode.UnrecognizedOption, icmp.Code);
        Assert.Equal(Ipv6Header.Length + 2u, icmp.RestOfHeader); // the option's type byte
    }

    [Fact]
    public void Rfc8200_4_2_UnknownOption11_GetsParameterProblemOnlyToUnicast()
    {
        _core.Receive(WithDestinationOption(0xDE, Packets6.AllNodes), Instant.Zero);
        Assert.Empty(_out.Packets);
        _core.Receive(WithDestinationOption(0xDE), Instant.Zero);
        Assert.Equal(Icmpv6ParameterProblemCode.UnrecognizedOption, (Icmpv6ParameterProblemCode)ParseIcmp(_out.Single(), out _).Code);
    }

    [Fact]
    public void Rfc8200_4_3_HopByHopNotFirst_IsUnrecognizedNextHeader()
    {
        // Destination Options, then a Hop-by-Hop header: only allowed first.
        var payload = new byte[16];
        payload[0] = Ipv6NextHeader.HopByHop;
        payload[2] = 1; payload[3] = 4; // PadN
        payload[8] = Ipv6NextHeader.NoNextHeader;
        payload[10] = 1; payload[11] = 4;
        _core.Receive(Packets6.Ip(Packets6.Host, Packets6.Stack, Ipv6NextHeader.DestinationOptions, payload), Instant.Zero);
        var icmp = ParseIcmp(_out.Single(), out _);
        Assert.Equal((byte)Icmpv6ParameterProblemCode.UnrecognizedNextHeader, icmp.Code);
        Assert.Equal((uint)Ipv6Header.Length, icmp.RestOfHeader);
    }

    [Fact]
    public void Rfc8200_4_4_RoutingHeaderWithSegmentsLeft_GetsParameterProblemCode0AtRoutingType()
    {
        var payload = new byte[8 + 16];
        payload[0] = Ipv6NextHeader.NoNextHeader;
        payload[1] = 2; // (2+1)*8 = 24 bytes
        payload[2] = 99; // an unknown routing type
        payload[3] = 1; // segments left
        _core.Receive(Packets6.Ip(Packets6.Host, Packets6.Stack, Ipv6NextHeader.Routing, payload), Instant.Zero);
        var icmp = ParseIcmp(_out.Single(), out _);
        Assert.Equal((byte)Icmpv6ParameterProblemCode.ErroneousHeaderField, icmp.Code);
        Assert.Equal(Ipv6Header.Length + 2u, icmp.RestOfHeader);
    }

    [Fact]
    public void TruncatedExtensionHeader_IsDroppedQuietly()
    {
        var payload = new byte[8];
        payload[0] = Ipv6NextHeader.NoNextHeader;
        payload[1] = 5; // claims 48 bytes
        _core.Receive(Packets6.Ip(Packets6.Host, Packets6.Stack, Ipv6NextHeader.DestinationOptions, payload), Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.MalformedDropped);
    }

    [Fact]
    public void V4MappedSource_IsDropped()
    {
        _core.Receive(Packets6.EchoRequest(1, 1, "x"u8, from: IpAddress.Parse("::ffff:192.168.0.1")), Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.MalformedDropped);
    }

    [Fact]
    public void Rfc4443_2_4_f_ErrorsAreRateLimited()
    {
        for (int i = 0; i < 200; i++)
            _core.Receive(Packets6.Ip(Packets6.Host, Packets6.Stack, 253, new byte[8]), Instant.Zero);
        Assert.InRange(_out.Packets.Count, 1, 100);
        Assert.True(_core.Statistics.IcmpErrorsRateLimited > 0);
    }

    [Fact]
    public void TcpSynOverIpv6_ToDualModeListener_GetsSynAckWithIpv6Checksum()
    {
        var listener = _core.Listen(IpAddress.AnyV6, 80, 8);
        var syn = new TcpHeader(40000, 80, new SeqNumber(1000), default, TcpFlags.Syn, 64800);
        _core.Receive(Packets6.Tcp(syn, new TcpOptions { MaxSegmentSize = 1440 }), Instant.Zero);

        Assert.True(Ipv6Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.Equal((byte)IpProtocol.Tcp, ip.NextHeader);
        Assert.True(TcpPacket.TryParse(ip.Payload, out var synAck, out _));
        Assert.True(synAck.IsChecksumValid(ip.Source, ip.Destination));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(1001u, synAck.AcknowledgmentNumber.Value);
        // Our MSS is the MTU less 40 bytes of IPv6 and 20 of TCP.
        Assert.Equal((ushort)(_core.Mtu - 60), synAck.Options.MaxSegmentSize);

        var ack = new TcpHeader(40000, 80, new SeqNumber(1001), synAck.SequenceNumber + 1, TcpFlags.Ack, 64800);
        _core.Receive(Packets6.Tcp(ack), Instant.Zero);
        Assert.True(listener.TryAccept(out var connection));
        Assert.Equal(Packets6.Host, connection!.Tuple.RemoteAddress);
        Assert.False(connection.Tuple.IsV4);
    }

    [Fact]
    public void DualModeListener_AcceptsIpv4ToO_AndV6OnlyListenerRefusesIt()
    {
        _core.Listen(IpAddress.AnyV6, 80, 8);
        _core.Listen(IpAddress.AnyV6, 81, 8, dualMode: false);
        _core.Receive(Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(1), default, TcpFlags.Syn, 1000)), Instant.Zero);
        _core.Receive(Packets.Tcp(new TcpHeader(40000, 81, new SeqNumber(1), default, TcpFlags.Syn, 1000)), Instant.Zero);

        Assert.Equal(2, _out.Packets.Count);
        Assert.True(Ipv4Packet.TryParse(_out.Packets[0], out var a, out _));
        Assert.True(TcpPacket.TryParse(a.Payload, out var synAck, out _));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.True(Ipv4Packet.TryParse(_out.Packets[1], out var b, out _));
        Assert.True(TcpPacket.TryParse(b.Payload, out var rst, out _));
        Assert.True(rst.Flags.HasFlag(TcpFlags.Rst));
    }

    [Fact]
    public void Ipv4OnlyListener_RefusesIpv6Syn()
    {
        _core.Listen(IpAddress.AnyV4, 80, 8);
        _core.Receive(Packets6.Tcp(new TcpHeader(40000, 80, new SeqNumber(1), default, TcpFlags.Syn, 1000)), Instant.Zero);
        Assert.True(Ipv6Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(TcpPacket.TryParse(ip.Payload, out var rst, out _));
        Assert.True(rst.Flags.HasFlag(TcpFlags.Rst));
        Assert.True(rst.IsChecksumValid(ip.Source, ip.Destination));
    }

    [Fact]
    public void Listen_SocketErrorsAsSocketDoes()
    {
        _core.Listen(IpAddress.AnyV6, 80, 8);
        Assert.Equal(SocketError.AddressAlreadyInUse, Assert.Throws<SocketException>(() => _core.Listen(IpAddress.AnyV4, 80, 8)).SocketErrorCode);
        Assert.Equal(SocketError.AddressNotAvailable, Assert.Throws<SocketException>(() => _core.Listen(IpAddress.Parse("fd00::9"), 82, 8)).SocketErrorCode);
        // A v6-only wildcard and a v4 wildcard share a port, as on Linux with IPV6_V6ONLY.
        _core.Listen(IpAddress.AnyV6, 83, 8, dualMode: false);
        _core.Listen(IpAddress.AnyV4, 83, 8);
    }

    [Fact]
    public void Ipv4OnlyStack_RefusesIpv6WithAddressFamilyNotSupported()
    {
        var core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress() }, _out);
        Assert.Equal(SocketError.AddressFamilyNotSupported,
            Assert.Throws<SocketException>(() => core.Connect(Packets6.Host, 80, Instant.Zero)).SocketErrorCode);
        Assert.Equal(SocketError.AddressFamilyNotSupported,
            Assert.Throws<SocketException>(() => core.Listen(Packets6.Stack, 80, 8)).SocketErrorCode);
        // Its IPv6 input is ignored, as before the dual stack.
        core.Receive(Packets6.EchoRequest(1, 1, "x"u8), Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, core.Statistics.Ipv6Ignored);
    }

    [Fact]
    public void Ipv6OnlyStack_Works()
    {
        var core = new NetStackCore(new NetStackOptions { Address6 = IPAddress.Parse("fd00::2") }, _out);
        core.Receive(Packets6.EchoRequest(1, 1, "x"u8, to: IpAddress.Parse("fd00::2")), Instant.Zero);
        Assert.Single(_out.Packets);
        Assert.Equal(SocketError.AddressFamilyNotSupported,
            Assert.Throws<SocketException>(() => core.Connect(Packets.Host, 80, Instant.Zero)).SocketErrorCode);
    }

    [Fact]
    public void Connect_OverIpv6_SendsSynFromOurV6Address()
    {
        var connection = _core.Connect(Packets6.Host, 8080, Instant.Zero);
        Assert.Equal(Packets6.Stack, connection.Tuple.LocalAddress);
        Assert.True(Ipv6Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(TcpPacket.TryParse(ip.Payload, out var syn, out _));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ece | TcpFlags.Cwr, syn.Flags); // an ECN-setup SYN (RFC 3168 6.1.1), ECN being on by default
        Assert.Equal(8080, syn.DestinationPort);
        Assert.InRange(syn.SourcePort, NetStackCore.EphemeralPortFirst, NetStackCore.EphemeralPortLast);
        Assert.True(syn.IsChecksumValid(ip.Source, ip.Destination));
    }

    [Fact]
    public void Udp_OverIpv6_EchoesAndZeroChecksumIsRejected()
    {
        var binding = _core.BindUdp(7);
        Assert.True(binding.DualMode);
        _core.Receive(Packets6.Udp(5000, 7, "hi"u8), Instant.Zero);
        Assert.True(binding.TryDequeue(out var got));
        Assert.Equal(Packets6.Host, got.Source);

        var zero = Packets6.Udp(5000, 7, "hi"u8);
        zero[Ipv6Header.Length + 6] = 0; zero[Ipv6Header.Length + 7] = 0;
        _core.Receive(zero, Instant.Zero);
        Assert.False(binding.TryDequeue(out _));
        Assert.Equal(1, _core.Statistics.BadChecksumDropped);

        _core.SendUdp(7, got.Source, got.SourcePort, got.Payload);
        Assert.True(Ipv6Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(UdpDatagram.TryParse(ip.Payload, out var udp, out _));
        Assert.True(udp.IsChecksumValid(ip.Source, ip.Destination));
        Assert.NotEqual(0, udp.Checksum);
    }

    [Fact]
    public void UdpToClosedPort_GetsPortUnreachableV6()
    {
        var sent = Packets6.Udp(5000, 9, "hi"u8);
        _core.Receive(sent, Instant.Zero);
        var icmp = ParseIcmp(_out.Single(), out _);
        Assert.Equal(Icmpv6Type.DestinationUnreachable, icmp.Type);
        Assert.Equal((byte)Icmpv6UnreachableCode.PortUnreachable, icmp.Code);
        Assert.Equal(sent, icmp.Data.ToArray());
    }

    [Fact]
    public void Rfc4443_3_1_ErrorQuote_IsBoundedToTheMinimumMtu()
    {
        var big = Packets6.Ip(Packets6.Host, Packets6.Stack, 253, new byte[1400]);
        _core.Receive(big, Instant.Zero);
        var packet = _out.Single();
        Assert.Equal(Ipv6Packet.MinimumMtu, packet.Length);
        Assert.Equal(big.AsSpan(0, Icmpv6Writer.MaxInvokingBytes).ToArray(), ParseIcmp(packet, out _).Data.ToArray());
    }

    [Fact]
    public void Options_RejectAnIpv6MtuBelow1280AndAnEmptyAddressSet()
    {
        Assert.ThrowsAny<ArgumentException>(() => new NetStackCore(new NetStackOptions { Address6 = IPAddress.Parse("fd00::2"), Mtu = 1200 }, _out));
        Assert.ThrowsAny<ArgumentException>(() => new NetStackCore(new NetStackOptions(), _out));
        Assert.ThrowsAny<ArgumentException>(() => new NetStackCore(new NetStackOptions { Address6 = IPAddress.Parse("192.168.0.2") }, _out));
    }
}
