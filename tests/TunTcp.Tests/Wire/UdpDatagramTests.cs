using System.Buffers.Binary;
using System.Text;
using CsCheck;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>The UDP view and header writer (RFC 768).</summary>
public class UdpDatagramTests
{
    private static readonly byte[] LinuxDatagram = WireCaptures.LinuxUdp[20..];

    private static UdpDatagram Parse(ReadOnlySpan<byte> bytes)
    {
        Assert.True(UdpDatagram.TryParse(bytes, out var udp, out var error), error.Describe());
        Assert.Equal(ParseError.None, error);
        return udp;
    }

    private static ParseError Reject(ReadOnlySpan<byte> bytes)
    {
        Assert.False(UdpDatagram.TryParse(bytes, out _, out var error));
        Assert.NotEqual(ParseError.None, error);
        Assert.False(string.IsNullOrWhiteSpace(error.Describe()));
        return error;
    }

    private static byte[] WithLength(byte[] datagram, ushort length)
    {
        var copy = (byte[])datagram.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(4), length);
        return copy;
    }

    [Fact]
    public void Udp_LinuxDatagram_EveryFieldReads()
    {
        var udp = Parse(LinuxDatagram);
        Assert.Equal(40000, udp.SourcePort);
        Assert.Equal(9, udp.DestinationPort);
        Assert.Equal(14, udp.Length);
        Assert.Equal(0x9E58, udp.Checksum);
        Assert.Equal("hello\n", Encoding.ASCII.GetString(udp.Payload));
        Assert.Equal(LinuxDatagram, udp.Bytes.ToArray());
        Assert.True(udp.IsChecksumValid(WireGen.Kernel, WireGen.Peer));
    }

    [Fact]
    public void Udp_CorruptedPayload_FailsItsChecksum()
    {
        var datagram = (byte[])LinuxDatagram.Clone();
        datagram[8] ^= 0x20;
        Assert.False(Parse(datagram).IsChecksumValid(WireGen.Kernel, WireGen.Peer));
    }

    [Fact]
    public void Udp_ZeroChecksum_MeansNoneAndIsAccepted()
    {
        // RFC 768: an all-zero checksum field means the sender computed none (allowed over IPv4).
        var datagram = (byte[])LinuxDatagram.Clone();
        datagram[6] = 0; datagram[7] = 0;
        Assert.True(Parse(datagram).IsChecksumValid(WireGen.Kernel, WireGen.Peer));
    }

    [Fact]
    public void Udp_BytesAfterTheLengthField_AreOutsideTheView()
    {
        byte[] padded = [.. LinuxDatagram, 0, 0, 0];
        var udp = Parse(padded);
        Assert.Equal(14, udp.Length);
        Assert.Equal(6, udp.Payload.Length);
        Assert.True(udp.IsChecksumValid(WireGen.Kernel, WireGen.Peer));
    }

    [Fact]
    public void Udp_EmptyPayload_IsAccepted()
    {
        var udp = Parse(WithLength(LinuxDatagram, 8));
        Assert.Equal(8, udp.Length);
        Assert.True(udp.Payload.IsEmpty);
    }

    [Fact]
    public void UdpHeader_Write_ReproducesLinuxDatagram()
    {
        var datagram = new byte[LinuxDatagram.Length];
        Array.Fill(datagram, (byte)0xCC);
        new UdpHeader(40000, 9, 6).Write(datagram);
        "hello\n"u8.CopyTo(datagram.AsSpan(UdpHeader.Length));
        UdpHeader.WriteChecksum(datagram, WireGen.Kernel, WireGen.Peer);
        Assert.Equal(LinuxDatagram, datagram);
    }

    [Fact]
    public void UdpHeader_ComputedZeroChecksum_IsSentAsAllOnes()
    {
        // RFC 768: "If the computed checksum is zero, it is transmitted as all ones", since zero
        // on the wire means "no checksum". Make the sum come out at zero: with a placeholder word
        // of 0 the checksum is c; putting c in the placeholder adds ~checksum, making the sum 0xFFFF.
        var datagram = new byte[UdpHeader.Length + 4];
        new UdpHeader(1234, 5678, 4).Write(datagram);
        datagram[8] = 0x12; datagram[9] = 0x34;
        ushort withPlaceholder = ReferenceChecksum.Transport(WireGen.Kernel.Value, WireGen.Peer.Value, 17, datagram);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(10), withPlaceholder);
        Assert.Equal(0, ReferenceChecksum.Transport(WireGen.Kernel.Value, WireGen.Peer.Value, 17, datagram));

        UdpHeader.WriteChecksum(datagram, WireGen.Kernel, WireGen.Peer);
        var udp = Parse(datagram);
        Assert.Equal(0xFFFF, udp.Checksum);
        Assert.True(udp.IsChecksumValid(WireGen.Kernel, WireGen.Peer));
    }

    [Fact]
    public void UdpHeader_RoundTrip_AnyPortsAndPayloadParseBackUnchanged()
    {
        Gen.Select(Gen.UShort, Gen.UShort, Gen.UInt, Gen.UInt, Gen.Byte.Array[0, 1472])
            .Sample((sourcePort, destinationPort, source, destination, payload) =>
            {
                var datagram = new byte[UdpHeader.Length + payload.Length];
                var header = new UdpHeader(sourcePort, destinationPort, payload.Length);
                header.Write(datagram);
                payload.CopyTo(datagram.AsSpan(UdpHeader.Length));
                UdpHeader.WriteChecksum(datagram, new Ipv4Address(source), new Ipv4Address(destination));

                var udp = Parse(datagram);
                Assert.Equal(header, new UdpHeader(udp.SourcePort, udp.DestinationPort, udp.Payload.Length));
                Assert.Equal(payload, udp.Payload.ToArray());
                Assert.NotEqual(0, udp.Checksum);
                Assert.True(udp.IsChecksumValid(new Ipv4Address(source), new Ipv4Address(destination)));
            }, iter: 3000);
    }

    [Fact]
    public void Udp_ShorterThanItsHeader_IsRejectedAsTruncated()
    {
        Assert.Equal(ParseError.Truncated, Reject([]));
        Assert.Equal(ParseError.Truncated, Reject(LinuxDatagram.AsSpan(0, 7)));
    }

    [Fact]
    public void Udp_LongerThan65535Bytes_IsRejectedAsOversized()
    {
        var datagram = new byte[Ipv4Packet.MaxPacketLength + 1];
        LinuxDatagram.CopyTo(datagram, 0);
        Assert.Equal(ParseError.Oversized, Reject(datagram));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    public void Udp_LengthBelow8_IsRejected(ushort length) =>
        Assert.Equal(ParseError.BadUdpLength, Reject(WithLength(LinuxDatagram, length)));

    [Fact]
    public void Udp_LengthPastEnd_IsRejected()
    {
        Assert.Equal(ParseError.BadUdpLength, Reject(LinuxDatagram.AsSpan(0, 13)));
        Assert.Equal(ParseError.BadUdpLength, Reject(WithLength(LinuxDatagram, 0xFFFF)));
    }

    [Fact]
    public void Udp_AnyBytes_AreParsedOrRejectedWithoutThrowing()
    {
        WireGen.Fuzz([LinuxDatagram, WireCaptures.LinuxPortUnreachable[48..]]).Sample(bytes =>
        {
            if (UdpDatagram.TryParse(bytes, out var udp, out var error))
            {
                Assert.Equal(ParseError.None, error);
                Assert.InRange(udp.Length, UdpDatagram.HeaderLength, bytes.Length);
                Assert.Equal(udp.Length, udp.Bytes.Length);
                Assert.Equal(udp.Length - UdpDatagram.HeaderLength, udp.Payload.Length);
                _ = udp.SourcePort;
                _ = udp.DestinationPort;
                _ = udp.Checksum;
                _ = udp.IsChecksumValid(WireGen.Kernel, WireGen.Peer);
            }
            else
            {
                Assert.NotEqual(ParseError.None, error);
            }
        }, iter: 10000);
    }
}
