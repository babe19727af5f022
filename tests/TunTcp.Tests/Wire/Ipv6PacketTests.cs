using System.Net;
using CsCheck;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>The IPv6 fixed header (RFC 8200 3): recognised so it can be shown and ignored.</summary>
public class Ipv6PacketTests
{
    private static Ipv6Packet Parse(ReadOnlySpan<byte> bytes)
    {
        Assert.True(Ipv6Packet.TryParse(bytes, out var packet, out var error), error.Describe());
        Assert.Equal(ParseError.None, error);
        return packet;
    }

    private static ParseError Reject(ReadOnlySpan<byte> bytes)
    {
        Assert.False(Ipv6Packet.TryParse(bytes, out _, out var error));
        Assert.NotEqual(ParseError.None, error);
        Assert.False(string.IsNullOrWhiteSpace(error.Describe()));
        return error;
    }

    [Fact]
    public void Ipv6_LinuxEchoRequest_EveryFieldReads()
    {
        var bytes = WireCaptures.LinuxIpv6EchoRequest;
        var ip = Parse(bytes);
        Assert.Equal(6, ip.Version);
        Assert.Equal(0, ip.TrafficClass);
        Assert.Equal(0x07CA5, ip.FlowLabel);
        Assert.Equal(16, ip.PayloadLength);
        Assert.Equal((byte)IpProtocol.Icmpv6, ip.NextHeader);
        Assert.Equal(64, ip.HopLimit);
        Assert.Equal(bytes[8..24], ip.SourceBytes.ToArray());
        Assert.Equal(bytes[24..40], ip.DestinationBytes.ToArray());
        Assert.Equal(IpAddress.Parse("fd00::1"), ip.Source);
        Assert.Equal(IpAddress.Parse("fd00::2"), ip.Destination);
        Assert.Equal(bytes[40..], ip.Payload.ToArray());
        Assert.Equal(128, ip.Payload[0]); // ICMPv6 echo request (RFC 4443 4.1)
    }

    [Fact]
    public void Ipv6_TrafficClassAndFlowLabel_StraddleByteBoundaries()
    {
        // version 6 | traffic class 0xAB | flow label 0xCDEF1
        var bytes = (byte[])WireCaptures.LinuxIpv6EchoRequest.Clone();
        bytes[0] = 0x6A; bytes[1] = 0xBC; bytes[2] = 0xDE; bytes[3] = 0xF1;
        var ip = Parse(bytes);
        Assert.Equal(0xAB, ip.TrafficClass);
        Assert.Equal(0xCDEF1, ip.FlowLabel);
    }

    [Fact]
    public void Ipv6_TrailingBytes_AreOutsideThePayload()
    {
        byte[] padded = [.. WireCaptures.LinuxIpv6EchoRequest, 0xEE, 0xEE];
        var ip = Parse(padded);
        Assert.Equal(16, ip.Payload.Length);
    }

    [Fact]
    public void Ipv6_ShorterThanTheFixedHeader_IsRejectedAsTruncated()
    {
        Assert.Equal(ParseError.Truncated, Reject([]));
        Assert.Equal(ParseError.Truncated, Reject(WireCaptures.LinuxIpv6EchoRequest.AsSpan(0, 39)));
    }

    [Fact]
    public void Ipv6_Ipv4Packet_IsRejectedAsWrongVersion()
    {
        Assert.Equal(ParseError.WrongVersion, Reject(WireCaptures.LinuxEchoRequest));
        Assert.Equal(ParseError.WrongVersion, Reject([0x45, 0x00]));
    }

    [Fact]
    public void Ipv6_PayloadLengthPastEnd_IsRejected() =>
        Assert.Equal(ParseError.TotalLengthPastEnd, Reject(WireCaptures.LinuxIpv6EchoRequest.AsSpan(0, 55)));

    [Fact]
    public void Ipv6_AnyBytes_AreParsedOrRejectedWithoutThrowing()
    {
        byte[][] seeds = [WireCaptures.LinuxIpv6EchoRequest];
        Gen.Frequency((1, WireGen.AnyBytes), (3, WireGen.Damaged(seeds))).Sample(bytes =>
        {
            if (Ipv6Packet.TryParse(bytes, out var ip, out var error))
            {
                Assert.Equal(ParseError.None, error);
                Assert.Equal(6, ip.Version);
                Assert.Equal(ip.PayloadLength, ip.Payload.Length);
                Assert.InRange(Ipv6Packet.HeaderLength + ip.PayloadLength, 40, bytes.Length);
                Assert.InRange(ip.FlowLabel, 0, 0xFFFFF);
                _ = ip.TrafficClass;
                _ = ip.NextHeader;
                _ = ip.HopLimit;
                Assert.Equal(16, ip.SourceBytes.Length);
                Assert.Equal(16, ip.DestinationBytes.Length);
                Assert.NotNull(ip.Source.ToString());
                Assert.NotNull(ip.Destination.ToString());
            }
            else
            {
                Assert.NotEqual(ParseError.None, error);
            }
        }, iter: 10000);
    }
}
