using System.Net;
using CsCheck;
using TunTcp.Wire;

namespace TunTcp.Tests.Wire;

/// <summary><see cref="IpAddress"/>: one 16-byte value for either family, checked against System.Net.IPAddress.</summary>
public class IpAddressTests
{
    /// <summary>Sixteen bytes, half of the 16-bit groups zero so that "::" runs of every length occur.</summary>
    private static readonly Gen<byte[]> Addresses =
        Gen.Frequency((3, Gen.UShort), (2, Gen.Const((ushort)0))).Array[8].Select(groups =>
        {
            var b = new byte[16];
            for (int i = 0; i < 8; i++) { b[2 * i] = (byte)(groups[i] >> 8); b[2 * i + 1] = (byte)groups[i]; }
            return b;
        });

    [Fact]
    public void Format_ParsesBackInSystemNet_AndSystemNetsTextParsesToTheSameValue()
    {
        Addresses.Sample(bytes =>
        {
            var ours = IpAddress.ReadV6(bytes);
            var theirs = new IPAddress(bytes);
            if (ours.IsV4) theirs = theirs.MapToIPv4();
            Assert.Equal(theirs, IPAddress.Parse(ours.ToString()));
            Assert.Equal(ours, IpAddress.Parse(theirs.ToString()));
            Assert.Equal(ours, IpAddress.FromIPAddress(theirs));
            Assert.Equal(theirs, ours.ToIPAddress());
            var back = new byte[16];
            ours.WriteV6(back);
            Assert.Equal(bytes, back);
        }, iter: 20000);
    }

    [Theory]
    [InlineData("::", "::")]
    [InlineData("::1", "::1")]
    [InlineData("FD00:7475:006E:0:0:0:0:2", "fd00:7475:6e::2")]
    [InlineData("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1")] // RFC 5952 4.2.3: the first of equal runs
    [InlineData("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1")] // 4.2.2: one zero group is not shortened
    [InlineData("2001:0:0:1:0:0:0:1", "2001:0:0:1::1")] // 4.2.3: the longest run
    [InlineData("::ffff:192.168.0.2", "192.168.0.2")] // an IPv4-mapped address is the IPv4 address
    [InlineData("64:ff9b::192.0.2.33", "64:ff9b::c000:221")]
    [InlineData("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8")]
    public void Parse_AcceptsRfc4291Forms_AndFormatsAsRfc5952(string text, string canonical)
    {
        Assert.True(IpAddress.TryParse(text, out var address));
        Assert.Equal(canonical, address.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData(":")]
    [InlineData(":::")]
    [InlineData("1::2::3")]
    [InlineData("1:2:3:4:5:6:7:8:9")]
    [InlineData("1:2:3:4:5:6:7")]
    [InlineData("1:2:3:4:5:6:7:")]
    [InlineData(":1:2:3:4:5:6:7")]
    [InlineData("1:2:3:4:5:6:7:8::")]
    [InlineData("12345::")]
    [InlineData("::g")]
    [InlineData("fe80::1%eth0")]
    [InlineData("[::1]")]
    [InlineData(" ::1")]
    [InlineData("::1 ")]
    [InlineData("::1/128")]
    [InlineData("::1.2.3")]
    [InlineData("1:2:3:4:5:6:7:1.2.3.4")]
    [InlineData("::256.1.1.1")]
    [InlineData("1.2.3.4::")]
    public void Parse_RejectsAnythingElse(string text)
    {
        Assert.False(IpAddress.TryParse(text, out _));
        Assert.Throws<FormatException>(() => IpAddress.Parse(text));
    }

    [Fact]
    public void Families_AndScopes()
    {
        Assert.True(IpAddress.Parse("192.168.0.2").IsV4);
        Assert.Equal(System.Net.Sockets.AddressFamily.InterNetworkV6, IpAddress.Parse("fd00::2").Family);
        Assert.True(IpAddress.AnyV4.IsAny && IpAddress.AnyV6.IsAny);
        Assert.True(IpAddress.Parse("ff02::1").IsV6Multicast);
        Assert.True(IpAddress.Parse("fe80::1").IsV6LinkLocal);
        Assert.False(IpAddress.Parse("fec0::1").IsV6LinkLocal);
        Assert.True(IpAddress.Parse("::1").IsLoopback && IpAddress.Parse("127.0.0.9").IsLoopback);
        Assert.True(IpAddress.Parse("fd00:7475:6e::2").IsInSubnet(IpAddress.Parse("fd00:7475:6e::"), 64));
        Assert.False(IpAddress.Parse("fd00:7475:6f::2").IsInSubnet(IpAddress.Parse("fd00:7475:6e::"), 64));
        Assert.Equal("[fd00::1]:80", IpAddress.Parse("fd00::1").WithPort(80));
        Assert.Equal("10.0.0.1:80", IpAddress.Parse("10.0.0.1").WithPort(80));
    }
}
