using System.Buffers.Binary;
using CsCheck;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>The IPv4 view (RFC 791) and header writer against real Linux packets.</summary>
public class Ipv4PacketTests
{
    private static Ipv4Packet Parse(ReadOnlySpan<byte> bytes)
    {
        Assert.True(Ipv4Packet.TryParse(bytes, out var packet, out var error), error.Describe());
        Assert.Equal(ParseError.None, error);
        return packet;
    }

    private static ParseError Reject(ReadOnlySpan<byte> bytes)
    {
        Assert.False(Ipv4Packet.TryParse(bytes, out _, out var error));
        Assert.NotEqual(ParseError.None, error);
        Assert.False(string.IsNullOrWhiteSpace(error.Describe()));
        return error;
    }

    private static byte[] WithByte(byte[] packet, int index, byte value)
    {
        var copy = (byte[])packet.Clone();
        copy[index] = value;
        return copy;
    }

    private static byte[] WithTotalLength(byte[] packet, ushort totalLength)
    {
        var copy = (byte[])packet.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(2), totalLength);
        return copy;
    }

    [Fact]
    public void Ipv4_LinuxEchoRequest_EveryFieldReads()
    {
        var bytes = WireCaptures.LinuxEchoRequest;
        var ip = Parse(bytes);
        Assert.Equal(4, ip.Version);
        Assert.Equal(20, ip.HeaderLength);
        Assert.Equal(0, ip.TypeOfService);
        Assert.Equal(84, ip.TotalLength);
        Assert.Equal(0x8F30, ip.Identification);
        Assert.True(ip.DontFragment);
        Assert.False(ip.MoreFragments);
        Assert.Equal(0, ip.FragmentOffset);
        Assert.False(ip.IsFragment);
        Assert.Equal(64, ip.TimeToLive);
        Assert.Equal(IpProtocol.Icmp, ip.Protocol);
        Assert.Equal(0x2A25, ip.HeaderChecksum);
        Assert.Equal(WireGen.Kernel, ip.Source);
        Assert.Equal(WireGen.Peer, ip.Destination);
        Assert.Equal(bytes[..20], ip.Header.ToArray());
        Assert.True(ip.Options.IsEmpty);
        Assert.Equal(bytes[20..], ip.Payload.ToArray());
        Assert.Equal(bytes, ip.Bytes.ToArray());
        Assert.True(ip.IsHeaderChecksumValid);
    }

    [Fact]
    public void Ipv4_WithRecordRouteOption_PayloadStartsAfterTheOptions()
    {
        // IHL 15: a NOP and the 39-byte record-route option (type 7, pointer 8, first hop
        // 192.168.0.1) fill 40 option bytes; the ICMP echo request starts at byte 60.
        var bytes = WireCaptures.LinuxEchoRequestWithRecordRoute;
        var ip = Parse(bytes);
        Assert.Equal(60, ip.HeaderLength);
        Assert.Equal(76, ip.TotalLength);
        Assert.Equal(bytes[20..60], ip.Options.ToArray());
        Assert.Equal([0x01, 0x07, 0x27, 0x08, 0xC0, 0xA8, 0x00, 0x01], ip.Options[..8].ToArray());
        Assert.Equal(bytes[..60], ip.Header.ToArray());
        Assert.Equal(16, ip.Payload.Length);
        Assert.Equal((byte)Icmpv4Type.EchoRequest, ip.Payload[0]);
        Assert.Equal(bytes[60..], ip.Payload.ToArray());
        Assert.True(ip.IsHeaderChecksumValid);
    }

    [Fact]
    public void Ipv4_WithRouterAlertOption_Ihl6PayloadStartsAtByte24()
    {
        // Hand-made (checksums from the reference): the Linux UDP datagram behind a 4-byte router
        // alert option (RFC 2113: type 148, length 4, value 0), so IHL is 6.
        byte[] bytes =
        [
            0x46, 0x00, 0x00, 0x26, 0x12, 0x34, 0x40, 0x00, 0x01, 0x11, 0x51, 0x3B, 0xC0, 0xA8, 0x00, 0x01,
            0xC0, 0xA8, 0x00, 0x02, 0x94, 0x04, 0x00, 0x00, 0x9C, 0x40, 0x00, 0x09, 0x00, 0x0E, 0x9E, 0x58,
            0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x0A,
        ];
        var ip = Parse(bytes);
        Assert.Equal(24, ip.HeaderLength);
        Assert.Equal([0x94, 0x04, 0x00, 0x00], ip.Options.ToArray());
        Assert.Equal(WireCaptures.LinuxUdp[20..], ip.Payload.ToArray());
        Assert.Equal(1, ip.TimeToLive);
        Assert.True(ip.IsHeaderChecksumValid);
        Assert.True(UdpDatagram.TryParse(ip.Payload, out var udp, out _));
        Assert.True(udp.IsChecksumValid(ip.Source, ip.Destination));
    }

    [Fact]
    public void Ipv4_FirstFragment_IsRecognisedByMoreFragments()
    {
        var ip = Parse(WireCaptures.LinuxFirstFragment);
        Assert.True(ip.MoreFragments);
        Assert.False(ip.DontFragment);
        Assert.Equal(0, ip.FragmentOffset);
        Assert.True(ip.IsFragment);
        Assert.Equal(0x8FD3, ip.Identification);
        Assert.Equal(48, ip.Payload.Length);
        Assert.True(ip.IsHeaderChecksumValid);
    }

    [Fact]
    public void Ipv4_LastFragment_IsRecognisedByItsOffset()
    {
        // Fragment offset field 6 (in 8-byte units) = byte 48 of the original ICMP message.
        var ip = Parse(WireCaptures.LinuxLastFragment);
        Assert.False(ip.MoreFragments);
        Assert.Equal(48, ip.FragmentOffset);
        Assert.True(ip.IsFragment);
        Assert.Equal(0x8FD3, ip.Identification);
        Assert.Equal(24, ip.Payload.Length);
        Assert.True(ip.IsHeaderChecksumValid);
    }

    [Fact]
    public void Ipv4_MiddleFragment_HasBothMoreFragmentsAndAnOffset()
    {
        // The last fragment with MF set (header checksum 0x49A4 from the reference), as the middle
        // fragment of a larger datagram would look.
        var bytes = WithByte(WithByte(WithByte(WireCaptures.LinuxLastFragment, 6, 0x20), 10, 0x49), 11, 0xA4);
        var ip = Parse(bytes);
        Assert.True(ip.MoreFragments);
        Assert.Equal(48, ip.FragmentOffset);
        Assert.True(ip.IsFragment);
        Assert.True(ip.IsHeaderChecksumValid);
    }

    [Fact]
    public void Ipv4_LargestFragmentOffset_IsReadInBytes()
    {
        // 13 bits of 8-byte units: 0x1FFF * 8 = 65528. The reserved flag bit (0x8000) is not MF.
        var packet = WithByte(WithByte(WireCaptures.LinuxEchoRequest, 6, 0x9F), 7, 0xFF);
        var ip = Parse(packet);
        Assert.Equal(65528, ip.FragmentOffset);
        Assert.False(ip.DontFragment);
        Assert.False(ip.MoreFragments);
        Assert.True(ip.IsFragment);
    }

    [Fact]
    public void Ipv4_TrailingLinkPadding_IsOutsideTheView()
    {
        byte[] padded = [.. WireCaptures.LinuxUdp, 0, 0, 0, 0, 0, 0];
        var ip = Parse(padded);
        Assert.Equal(34, ip.TotalLength);
        Assert.Equal(34, ip.Bytes.Length);
        Assert.Equal(WireCaptures.LinuxUdp[20..], ip.Payload.ToArray());
    }

    [Fact]
    public void Ipv4_CorruptedHeader_FailsItsChecksum()
    {
        var ip = Parse(WithByte(WireCaptures.LinuxSyn, 8, 63));
        Assert.False(ip.IsHeaderChecksumValid);
    }

    [Fact]
    public void Ipv4_LargestPossiblePacket_IsAccepted()
    {
        var packet = new byte[Ipv4Packet.MaxPacketLength];
        new Ipv4Header(WireGen.Kernel, WireGen.Peer, IpProtocol.Udp, Ipv4Packet.MaxPacketLength - 20).Write(packet);
        var ip = Parse(packet);
        Assert.Equal(65535, ip.TotalLength);
        Assert.Equal(65515, ip.Payload.Length);
    }

    // Rejections: one per ParseError reason an IPv4 packet can have.

    [Fact]
    public void Ipv4_Empty_IsRejectedAsTruncated() => Assert.Equal(ParseError.Truncated, Reject([]));

    [Fact]
    public void Ipv4_ShorterThanTheFixedHeader_IsRejectedAsTruncated() =>
        Assert.Equal(ParseError.Truncated, Reject(WireCaptures.LinuxEchoRequest.AsSpan(0, 19)));

    [Fact]
    public void Ipv4_ShortAndNotVersion4_IsRejectedAsWrongVersion() =>
        // Short garbage that does not even claim IPv4 is reported by its version, which says more.
        Assert.Equal(ParseError.WrongVersion, Reject([0x60, 0x00, 0x00]));

    [Fact]
    public void Ipv4_LongerThan65535Bytes_IsRejectedAsOversized()
    {
        var packet = new byte[Ipv4Packet.MaxPacketLength + 1];
        new Ipv4Header(WireGen.Kernel, WireGen.Peer, IpProtocol.Udp, 100).Write(packet);
        Assert.Equal(ParseError.Oversized, Reject(packet));
    }

    [Theory]
    [InlineData(0x00)]
    [InlineData(0x35)]
    [InlineData(0x55)]
    [InlineData(0x65)]
    [InlineData(0xF5)]
    public void Ipv4_VersionOtherThan4_IsRejected(byte versionIhl) =>
        Assert.Equal(ParseError.WrongVersion, Reject(WithByte(WireCaptures.LinuxEchoRequest, 0, versionIhl)));

    [Fact]
    public void Ipv4_Ipv6Packet_IsRejectedAsWrongVersion() =>
        Assert.Equal(ParseError.WrongVersion, Reject(WireCaptures.LinuxIpv6EchoRequest));

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public void Ipv4_IhlBelow5_IsRejected(int ihl) =>
        Assert.Equal(ParseError.BadHeaderLength, Reject(WithByte(WireCaptures.LinuxEchoRequest, 0, (byte)(0x40 | ihl))));

    [Fact]
    public void Ipv4_IhlPastEndOfBuffer_IsRejected()
    {
        // A bare 20-byte header claiming IHL 6 (24 bytes).
        var header = WithByte(WithTotalLength(WireCaptures.LinuxRstAck[..20], 20), 0, 0x46);
        Assert.Equal(ParseError.BadHeaderLength, Reject(header));
    }

    [Fact]
    public void Ipv4_TotalLengthBelowIhl_IsRejected()
    {
        // The record-route packet has a 60-byte header; a total length of 40 cannot hold it.
        Assert.Equal(ParseError.TotalLengthTooShort, Reject(WithTotalLength(WireCaptures.LinuxEchoRequestWithRecordRoute, 40)));
        Assert.Equal(ParseError.TotalLengthTooShort, Reject(WithTotalLength(WireCaptures.LinuxEchoRequest, 0)));
        Assert.Equal(ParseError.TotalLengthTooShort, Reject(WithTotalLength(WireCaptures.LinuxEchoRequest, 19)));
    }

    [Fact]
    public void Ipv4_TotalLengthPastEndOfBuffer_IsRejected()
    {
        Assert.Equal(ParseError.TotalLengthPastEnd, Reject(WireCaptures.LinuxEchoRequest.AsSpan(0, 83)));
        Assert.Equal(ParseError.TotalLengthPastEnd, Reject(WithTotalLength(WireCaptures.LinuxEchoRequest, 85)));
    }

    // Writer.

    [Fact]
    public void Ipv4Header_Write_ReproducesLinuxSynHeader()
    {
        var header = new Ipv4Header(WireGen.Kernel, WireGen.Peer, IpProtocol.Tcp, PayloadLength: 40, TimeToLive: 64,
            Identification: 0x3449, DontFragment: true);
        AssertWrites(header, WireCaptures.LinuxSyn[..20]);
    }

    [Fact]
    public void Ipv4Header_Write_ReproducesLinuxEchoReplyHeaderWithoutDontFragment()
    {
        var header = new Ipv4Header(WireGen.Kernel, WireGen.Peer, IpProtocol.Icmp, PayloadLength: 16,
            Identification: 0x8FF1, DontFragment: false);
        AssertWrites(header, WireCaptures.LinuxEchoReply[..20]);
    }

    [Fact]
    public void Ipv4Header_Write_ReproducesLinuxIcmpErrorHeaderWithTypeOfService()
    {
        // Linux sends ICMP errors with TOS 0xC0 (precedence "internetwork control").
        var header = new Ipv4Header(WireGen.Kernel, WireGen.Peer, IpProtocol.Icmp, PayloadLength: 40,
            Identification: 0x8FF2, DontFragment: false, TypeOfService: 0xC0);
        AssertWrites(header, WireCaptures.LinuxPortUnreachable[..20]);
    }

    private static void AssertWrites(Ipv4Header header, byte[] expected)
    {
        // Written over stale bytes, so a checksum computed over a dirty checksum field would show.
        var buffer = new byte[Ipv4Header.Length];
        Array.Fill(buffer, (byte)0xA5);
        header.Write(buffer);
        Assert.Equal(expected, buffer);
    }

    [Fact]
    public void Ipv4Header_PayloadTooLargeForTotalLength_Throws() =>
        Assert.Throws<OverflowException>(() =>
            new Ipv4Header(WireGen.Kernel, WireGen.Peer, IpProtocol.Tcp, 65516).Write(new byte[20]));

    [Fact]
    public void Ipv4Header_RoundTrip_AnyFieldsParseBackUnchanged()
    {
        Gen.Select(Gen.UInt, Gen.UInt, Gen.Byte, Gen.Int[0, 1500], Gen.Byte, Gen.UShort, Gen.Bool, Gen.Byte)
            .Sample((source, destination, protocol, payloadLength, ttl, id, dontFragment, tos) =>
            {
                var header = new Ipv4Header(new Ipv4Address(source), new Ipv4Address(destination), (IpProtocol)protocol,
                    payloadLength, ttl, id, dontFragment, tos);
                var packet = new byte[header.TotalLength];
                Array.Fill(packet, (byte)0x5A);
                header.Write(packet);

                var ip = Parse(packet);
                var parsed = new Ipv4Header(ip.Source, ip.Destination, ip.Protocol, ip.Payload.Length, ip.TimeToLive,
                    ip.Identification, ip.DontFragment, ip.TypeOfService);
                Assert.Equal(header, parsed);
                Assert.Equal(20, ip.HeaderLength);
                Assert.False(ip.IsFragment);
                Assert.True(ip.IsHeaderChecksumValid);
                Assert.Equal(ReferenceChecksum.Compute([.. packet[..10], 0, 0, .. packet[12..20]]), ip.HeaderChecksum);
            }, iter: 3000);
    }

    // Properties: nothing throws, and what is accepted is self-consistent.

    [Fact]
    public void Ipv4_AnyBytes_AreParsedOrRejectedWithoutThrowing()
    {
        WireGen.Fuzz(WireGen.Captures).Sample(bytes =>
        {
            if (Ipv4Packet.TryParse(bytes, out var ip, out var error))
            {
                Assert.Equal(ParseError.None, error);
                AssertConsistent(ip, bytes.Length);
            }
            else
            {
                Assert.NotEqual(ParseError.None, error);
                Assert.False(string.IsNullOrEmpty(error.Describe()));
            }
        }, iter: 20000);
    }

    /// <summary>Reads every accessor of an accepted packet and checks that they agree.</summary>
    internal static void AssertConsistent(Ipv4Packet ip, int bufferLength)
    {
        Assert.Equal(4, ip.Version);
        Assert.InRange(ip.HeaderLength, Ipv4Packet.MinHeaderLength, 60);
        Assert.Equal(0, ip.HeaderLength % 4);
        Assert.InRange(ip.TotalLength, ip.HeaderLength, Math.Min(bufferLength, Ipv4Packet.MaxPacketLength));
        Assert.Equal(ip.TotalLength, ip.Bytes.Length);
        Assert.Equal(ip.HeaderLength, ip.Header.Length);
        Assert.Equal(ip.HeaderLength - 20, ip.Options.Length);
        Assert.Equal(ip.TotalLength - ip.HeaderLength, ip.Payload.Length);
        Assert.Equal(0, ip.FragmentOffset % 8);
        Assert.InRange(ip.FragmentOffset, 0, 65528);
        Assert.Equal(ip.MoreFragments || ip.FragmentOffset != 0, ip.IsFragment);
        _ = ip.TypeOfService;
        _ = ip.Identification;
        _ = ip.DontFragment;
        _ = ip.TimeToLive;
        _ = ip.Protocol;
        _ = ip.HeaderChecksum;
        _ = ip.IsHeaderChecksumValid;
        Assert.False(string.IsNullOrEmpty(ip.Source.ToString()));
        Assert.False(string.IsNullOrEmpty(ip.Destination.ToString()));
    }
}
