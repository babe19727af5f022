using System.Net;
using CsCheck;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>IPv4 addresses held as host-order numbers.</summary>
public class Ipv4AddressTests
{
    [Fact]
    public void Parse_DottedQuad_GivesTheHostOrderValue()
    {
        Assert.Equal(0xC0A8_0001u, Ipv4Address.Parse("192.168.0.1").Value);
        Assert.Equal("192.168.0.1", new Ipv4Address(0xC0A8_0001).ToString());
        Assert.Equal(Ipv4Address.Any, Ipv4Address.Parse("0.0.0.0"));
        Assert.Equal(Ipv4Address.Broadcast, Ipv4Address.Parse("255.255.255.255"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("192.168.0")]
    [InlineData("192.168.0.1.5")]
    [InlineData("3232235521")]
    [InlineData("::1")]
    [InlineData("256.0.0.1")]
    [InlineData("tun0")]
    [InlineData("1234.1.1.1")]
    [InlineData("1.2.3.4.")]
    [InlineData(".1.2.3")]
    [InlineData("1..2.3")]
    [InlineData("1.2.3.-1")]
    [InlineData(" 1.2.3.4")]
    [InlineData("1.2.3.4 ")]
    [InlineData("192.168.0.1/24")]
    [InlineData("１.2.3.4")] // a full-width digit is a digit to char.IsDigit, not to inet_pton
    public void TryParse_NotADottedQuad_IsRejected(string? text)
    {
        Assert.False(Ipv4Address.TryParse(text, out _));
        if (text is not null) Assert.Throws<FormatException>(() => Ipv4Address.Parse(text));
    }

    [Theory]
    [InlineData("010.0.0.1")]       // inet_aton reads 8.0.0.1
    [InlineData("192.168.000.010")] // inet_aton reads 192.168.0.8
    [InlineData("1.2.3.04")]
    [InlineData("00.0.0.0")]
    [InlineData("0x7f.0.0.1")]      // inet_aton reads 127.0.0.1
    public void TryParse_LeadingZeroOrHexOctet_IsRejectedNotReadAsOctalOrHex(string text) =>
        // RFC 6943 3.1.1: such octets are read as octal or hex by some parsers and decimal by
        // others; like inet_pton (and so iproute2) they are refused rather than guessed.
        Assert.False(Ipv4Address.TryParse(text, out _), text);

    [Fact]
    public void TryParse_AnyAddressPrintedInDottedDecimal_ParsesBack()
    {
        Gen.UInt.Sample(value =>
        {
            var text = $"{value >> 24}.{(value >> 16) & 0xFF}.{(value >> 8) & 0xFF}.{value & 0xFF}";
            Assert.True(Ipv4Address.TryParse(text, out var address), text);
            Assert.Equal(value, address.Value);
        }, iter: 5000);
    }

    [Fact]
    public void ReadAndWrite_AreNetworkByteOrder()
    {
        byte[] bytes = [192, 168, 0, 2];
        var address = Ipv4Address.Read(bytes);
        Assert.Equal(WireGen.Peer, address);
        var written = new byte[4];
        address.Write(written);
        Assert.Equal(bytes, written);
    }

    [Fact]
    public void IPAddressConversion_RoundTrips_IncludingMappedAddresses()
    {
        Assert.Equal(IPAddress.Parse("10.1.2.3"), Ipv4Address.Parse("10.1.2.3").ToIPAddress());
        Assert.Equal(Ipv4Address.Parse("10.1.2.3"), Ipv4Address.FromIPAddress(IPAddress.Parse("::ffff:10.1.2.3")));
        Assert.Throws<ArgumentException>(() => Ipv4Address.FromIPAddress(IPAddress.IPv6Loopback));
    }

    [Fact]
    public void TryFormat_MatchesToStringWithoutAllocating()
    {
        Gen.UInt.Sample(value =>
        {
            var address = new Ipv4Address(value);
            Span<char> buffer = stackalloc char[15];
            Assert.True(address.TryFormat(buffer, out int written));
            Assert.Equal(address.ToString(), buffer[..written].ToString());
            Assert.Equal(address, Ipv4Address.Parse(address.ToString()));
        }, iter: 2000);
        Span<char> tooShort = stackalloc char[14];
        Assert.False(new Ipv4Address(0xFFFF_FFFF).TryFormat(tooShort, out _));
    }

    [Fact]
    public void IsInSubnet_ComparesThePrefix()
    {
        var address = Ipv4Address.Parse("192.168.0.200");
        Assert.True(address.IsInSubnet(Ipv4Address.Parse("192.168.0.0"), 24));
        Assert.False(address.IsInSubnet(Ipv4Address.Parse("192.168.1.0"), 24));
        Assert.True(address.IsInSubnet(Ipv4Address.Parse("192.168.0.128"), 25));
        Assert.False(address.IsInSubnet(Ipv4Address.Parse("192.168.0.0"), 25));
        Assert.True(address.IsInSubnet(Ipv4Address.Parse("192.168.0.200"), 32));
        Assert.False(address.IsInSubnet(Ipv4Address.Parse("192.168.0.201"), 32));
        Assert.True(address.IsInSubnet(Ipv4Address.Any, 0));
    }

    [Fact]
    public void IsMulticastOrBroadcast_Covers224Slash4AndLimitedBroadcast()
    {
        Assert.True(Ipv4Address.Parse("224.0.0.1").IsMulticastOrBroadcast);
        Assert.True(Ipv4Address.Parse("239.255.255.255").IsMulticastOrBroadcast);
        Assert.True(Ipv4Address.Broadcast.IsMulticastOrBroadcast);
        Assert.False(Ipv4Address.Parse("223.255.255.255").IsMulticastOrBroadcast);
        Assert.False(Ipv4Address.Parse("240.0.0.1").IsMulticastOrBroadcast);
        Assert.False(WireGen.Peer.IsMulticastOrBroadcast);
        Assert.True(Ipv4Address.Any.IsAny);
    }
}
