using System.Text;
using CsCheck;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>ICMPv4 (RFC 792): echo request and reply, destination unreachable, and the writers.</summary>
public class Icmpv4MessageTests
{
    private static Icmpv4Message Parse(ReadOnlySpan<byte> bytes)
    {
        Assert.True(Icmpv4Message.TryParse(bytes, out var message, out var error), error.Describe());
        Assert.Equal(ParseError.None, error);
        return message;
    }

    private static ParseError Reject(ReadOnlySpan<byte> bytes)
    {
        Assert.False(Icmpv4Message.TryParse(bytes, out _, out var error));
        Assert.NotEqual(ParseError.None, error);
        Assert.False(string.IsNullOrWhiteSpace(error.Describe()));
        return error;
    }

    [Fact]
    public void Icmp_LinuxEchoRequest_EveryFieldReads()
    {
        var bytes = WireCaptures.LinuxEchoRequest[20..];
        var icmp = Parse(bytes);
        Assert.Equal(Icmpv4Type.EchoRequest, icmp.Type);
        Assert.Equal(0, icmp.Code);
        Assert.Equal(0x5775, icmp.Checksum);
        Assert.Equal(0x14CE, icmp.Identifier);
        Assert.Equal(1, icmp.SequenceNumber);
        Assert.Equal(0x14CE_0001u, icmp.RestOfHeader);
        Assert.Equal(56, icmp.Data.Length);
        Assert.Equal(bytes[8..], icmp.Data.ToArray());
        Assert.Equal(bytes, icmp.Bytes.ToArray());
        Assert.True(icmp.IsChecksumValid);
    }

    [Fact]
    public void Icmp_LinuxEchoReply_EveryFieldReads()
    {
        var icmp = Parse(WireCaptures.LinuxEchoReply.AsSpan(20));
        Assert.Equal(Icmpv4Type.EchoReply, icmp.Type);
        Assert.Equal(0, icmp.Code);
        Assert.Equal(0x4242, icmp.Identifier);
        Assert.Equal(7, icmp.SequenceNumber);
        Assert.Equal("abcdefgh", Encoding.ASCII.GetString(icmp.Data));
        Assert.True(icmp.IsChecksumValid);
    }

    [Fact]
    public void Icmp_LinuxPortUnreachable_QuotesTheInvokingDatagram()
    {
        var icmp = Parse(WireCaptures.LinuxPortUnreachable.AsSpan(20));
        Assert.Equal(Icmpv4Type.DestinationUnreachable, icmp.Type);
        Assert.Equal((byte)Icmpv4UnreachableCode.PortUnreachable, icmp.Code);
        Assert.Equal(0u, icmp.RestOfHeader);
        Assert.True(icmp.IsChecksumValid);

        // RFC 792: the data is the invoking packet's IP header and (at least) its first 8 bytes.
        Assert.True(Ipv4Packet.TryParse(icmp.Data, out var quoted, out _));
        Assert.Equal(WireGen.Peer, quoted.Source);
        Assert.Equal(IpProtocol.Udp, quoted.Protocol);
        Assert.True(UdpDatagram.TryParse(quoted.Payload, out var udp, out _));
        Assert.Equal(5555, udp.SourcePort);
        Assert.Equal(9, udp.DestinationPort);
    }

    [Fact]
    public void Icmp_CorruptedMessage_FailsItsChecksum()
    {
        var bytes = WireCaptures.LinuxEchoRequest[20..];
        bytes[^1] ^= 1;
        Assert.False(Parse(bytes).IsChecksumValid);
    }

    [Fact]
    public void Icmp_UnnamedType_IsStillParsed()
    {
        var icmp = Parse([13, 0, 0xF2, 0xFF, 0, 0, 0, 0]); // timestamp request
        Assert.Equal((Icmpv4Type)13, icmp.Type);
        Assert.True(icmp.IsChecksumValid);
    }

    [Fact]
    public void Icmpv4Writer_WriteEcho_ReproducesLinuxEchoRequest()
    {
        var expected = WireCaptures.LinuxEchoRequest[20..];
        var buffer = Dirty(expected.Length);
        int length = Icmpv4Writer.WriteEcho(buffer, Icmpv4Type.EchoRequest, 0x14CE, 1, expected.AsSpan(8));
        Assert.Equal(expected.Length, length);
        Assert.Equal(expected, buffer);
    }

    [Fact]
    public void Icmpv4Writer_WriteEcho_ReproducesLinuxEchoReply()
    {
        var expected = WireCaptures.LinuxEchoReply[20..];
        var buffer = Dirty(expected.Length);
        int length = Icmpv4Writer.WriteEcho(buffer, Icmpv4Type.EchoReply, 0x4242, 7, "abcdefgh"u8);
        Assert.Equal(expected.Length, length);
        Assert.Equal(expected, buffer);
    }

    [Fact]
    public void Icmpv4Writer_WriteDestinationUnreachable_ReproducesLinuxPortUnreachable()
    {
        var expected = WireCaptures.LinuxPortUnreachable[20..];
        var buffer = Dirty(expected.Length);
        int length = Icmpv4Writer.WriteDestinationUnreachable(buffer, Icmpv4UnreachableCode.PortUnreachable, expected.AsSpan(8));
        Assert.Equal(expected.Length, length);
        Assert.Equal(expected, buffer);
    }

    [Fact]
    public void Icmpv4Writer_FragmentationNeeded_CarriesTheNextHopMtu()
    {
        // RFC 1191 4: the next-hop MTU goes in the low-order 16 bits of the second word.
        var buffer = new byte[200];
        int length = Icmpv4Writer.WriteDestinationUnreachable(buffer, Icmpv4UnreachableCode.FragmentationNeeded, WireCaptures.LinuxSyn, 1280);
        var icmp = Parse(buffer.AsSpan(0, length));
        Assert.Equal((byte)4, icmp.Code);
        Assert.Equal(1280u, icmp.RestOfHeader);
        Assert.Equal(WireCaptures.LinuxSyn, icmp.Data.ToArray());
        Assert.True(icmp.IsChecksumValid);
    }

    [Fact]
    public void Icmpv4Writer_LongInvokingPacket_IsQuotedUpTo576ByteDatagram()
    {
        // RFC 1812 4.3.2.3: quote as much as fits in a 576-byte datagram: 576 - 20 - 8 = 548.
        Assert.Equal(548, Icmpv4Writer.MaxInvokingBytes);
        var invoking = new byte[1500];
        new Random(1812).NextBytes(invoking);
        var buffer = new byte[1600];
        int length = Icmpv4Writer.WriteDestinationUnreachable(buffer, Icmpv4UnreachableCode.HostUnreachable, invoking);
        Assert.Equal(8 + 548, length);
        var icmp = Parse(buffer.AsSpan(0, length));
        Assert.Equal(invoking[..548], icmp.Data.ToArray());
        Assert.True(icmp.IsChecksumValid);
    }

    [Fact]
    public void Icmpv4Writer_EchoRoundTrip_AnyFieldsParseBackUnchanged()
    {
        Gen.Select(Gen.Bool, Gen.UShort, Gen.UShort, Gen.Byte.Array[0, 1472]).Sample((request, id, seq, data) =>
        {
            var type = request ? Icmpv4Type.EchoRequest : Icmpv4Type.EchoReply;
            var buffer = Dirty(Icmpv4Message.HeaderLength + data.Length);
            Assert.Equal(buffer.Length, Icmpv4Writer.WriteEcho(buffer, type, id, seq, data));
            var icmp = Parse(buffer);
            Assert.Equal(type, icmp.Type);
            Assert.Equal(0, icmp.Code);
            Assert.Equal(id, icmp.Identifier);
            Assert.Equal(seq, icmp.SequenceNumber);
            Assert.Equal(data, icmp.Data.ToArray());
            Assert.True(icmp.IsChecksumValid);
            Assert.Equal(ReferenceChecksum.Compute([.. buffer[..2], 0, 0, .. buffer[4..]]), icmp.Checksum);
        }, iter: 2000);
    }

    private static byte[] Dirty(int length)
    {
        var buffer = new byte[length];
        Array.Fill(buffer, (byte)0xDD);
        return buffer;
    }

    [Fact]
    public void Icmp_ShorterThanItsHeader_IsRejectedAsTruncated()
    {
        Assert.Equal(ParseError.Truncated, Reject([]));
        Assert.Equal(ParseError.Truncated, Reject(WireCaptures.LinuxEchoReply.AsSpan(20, 7)));
    }

    [Fact]
    public void Icmp_LongerThan65535Bytes_IsRejectedAsOversized() =>
        Assert.Equal(ParseError.Oversized, Reject(new byte[Ipv4Packet.MaxPacketLength + 1]));

    [Fact]
    public void Icmp_AnyBytes_AreParsedOrRejectedWithoutThrowing()
    {
        WireGen.Fuzz([WireCaptures.LinuxEchoRequest[20..], WireCaptures.LinuxPortUnreachable[20..]]).Sample(bytes =>
        {
            if (Icmpv4Message.TryParse(bytes, out var icmp, out var error))
            {
                Assert.Equal(ParseError.None, error);
                Assert.Equal(bytes.Length, icmp.Bytes.Length);
                Assert.Equal(bytes.Length - Icmpv4Message.HeaderLength, icmp.Data.Length);
                _ = icmp.Type;
                _ = icmp.Code;
                _ = icmp.Checksum;
                Assert.Equal(((uint)icmp.Identifier << 16) | icmp.SequenceNumber, icmp.RestOfHeader);
                _ = icmp.IsChecksumValid;
            }
            else
            {
                Assert.NotEqual(ParseError.None, error);
            }
        }, iter: 10000);
    }
}
