using System.Buffers.Binary;
using TunTcp.Links;
using TunTcp.Wire;

namespace TunTcp.Tests.Links;

/// <summary>The IPv6 half of the device set-up: the host side's address and the rtnetlink request that gives it.</summary>
public class Ipv6SetupTests
{
    [Theory]
    [InlineData("fd00:7475:6e::1/64", "fd00:7475:6e::1", 64)]
    [InlineData("2001:db8::1/128", "2001:db8::1", 128)]
    public void InterfaceAddress6_Parses(string text, string address, int prefix)
    {
        Assert.True(InterfaceAddress6.TryParse(text, out var value, out var error), error);
        Assert.Equal(IpAddress.Parse(address), value.Value);
        Assert.Equal(prefix, value.PrefixLength);
        Assert.Equal(text, value.ToString());
    }

    [Theory]
    [InlineData(null, "is required")]
    [InlineData("fd00::1", "no prefix length")]
    [InlineData("fd00::1/0", "out of range")]
    [InlineData("fd00::1/-1", "out of range")]
    [InlineData("fd00::1/ 64", "out of range")]
    [InlineData("192.168.0.1/24", "is not an IPv6 address")]
    [InlineData("::/64", "unspecified")]
    [InlineData("::1/128", "loopback")]
    [InlineData("ff02::1/16", "multicast")]
    [InlineData("fe80::1/64", "link-local")]
    [InlineData("fd00::1::2/64", "is not an IPv6 address")]
    public void InterfaceAddress6_RejectsWithAReason(string? text, string expected)
    {
        Assert.False(InterfaceAddress6.TryParse(text, out _, out var error));
        Assert.Contains(expected, error);
    }

    [Fact]
    public void InterfaceAddress6_Contains_OnlyItsPrefix()
    {
        var host = InterfaceAddress6.Parse("fd00:7475:6e::1/64");
        Assert.True(host.Contains(IpAddress.Parse("fd00:7475:6e::2")));
        Assert.True(host.Contains(IpAddress.Parse("fd00:7475:6e:0:ffff::9")));
        Assert.False(host.Contains(IpAddress.Parse("fd00:7475:6f::2")));
        Assert.False(host.Contains(IpAddress.Parse("192.168.0.2")));
    }

    [Fact]
    public void Options_Validate_RefusesIpv6BelowMtu1280_ButNotIpv4Only()
    {
        var dual = new TunInterfaceOptions { Mtu = 1279 };
        Assert.Contains("1280", Assert.Throws<LinkSetupException>(dual.Validate).Message);
        new TunInterfaceOptions { Mtu = 1279, HostAddress6 = null }.Validate();
        Assert.Equal(InterfaceAddress6.Parse("fd00:7475:6e::1/64"), new TunInterfaceOptions().HostAddress6);
    }

    [Theory]
    [InlineData("0.0.0.0", 0, 2)]
    [InlineData("10.203.0.0", 24, 2)]
    [InlineData("::", 0, 10)]
    [InlineData("fd00:cb::", 48, 10)]
    public void NetlinkRouteRequest_IsRtmNewroute_InTheMainTable_OutOfTheDevice(string network, int prefixLength, byte family)
    {
        var address = IpAddress.Parse(network);
        var buffer = new byte[128];
        int length = Netlink.BuildRouteRequest(buffer, index: 9, address, prefixLength, sequence: 4);
        var m = buffer.AsSpan(0, length);
        int addressLength = family == 2 ? 4 : 16;
        Assert.Equal(16 + 12 + (prefixLength > 0 ? 4 + addressLength : 0) + 8, length);
        Assert.Equal(24, BinaryPrimitives.ReadUInt16LittleEndian(m[4..])); // RTM_NEWROUTE
        Assert.Equal(0x1 | 0x4 | 0x200 | 0x400, BinaryPrimitives.ReadUInt16LittleEndian(m[6..]));
        Assert.Equal(family, m[16]);
        Assert.Equal(prefixLength, m[17]);
        Assert.Equal(254, m[20]); // RT_TABLE_MAIN
        Assert.Equal(family == 2 ? 253 : 0, m[22]); // scope link for IPv4 device routes
        Assert.Equal(1, m[23]); // RTN_UNICAST
        int at = 28;
        if (prefixLength > 0)
        {
            Assert.Equal((4 + addressLength, 1), (BinaryPrimitives.ReadUInt16LittleEndian(m[at..]), BinaryPrimitives.ReadUInt16LittleEndian(m[(at + 2)..]))); // RTA_DST
            var expected = new byte[16];
            if (family == 2) BinaryPrimitives.WriteUInt32BigEndian(expected, address.V4.Value);
            else address.WriteV6(expected);
            Assert.Equal(expected.AsSpan(0, addressLength).ToArray(), m.Slice(at + 4, addressLength).ToArray());
            at += 4 + addressLength;
        }
        Assert.Equal((8, 4), (BinaryPrimitives.ReadUInt16LittleEndian(m[at..]), BinaryPrimitives.ReadUInt16LittleEndian(m[(at + 2)..]))); // RTA_OIF
        Assert.Equal(9, BinaryPrimitives.ReadInt32LittleEndian(m[(at + 4)..]));
    }

    [Fact]
    public void NetlinkRequest_IsRtmNewaddr_WithNodadAndBothAddressAttributes()
    {
        var address = IpAddress.Parse("fd00:7475:6e::1");
        var buffer = new byte[128];
        int length = Netlink.BuildAddRequest(buffer, index: 7, address, 64, sequence: 3);
        var m = buffer.AsSpan(0, length);
        Assert.Equal(16 + 8 + 20 + 20 + 8, length);
        Assert.Equal((uint)length, BinaryPrimitives.ReadUInt32LittleEndian(m));
        Assert.Equal(20, BinaryPrimitives.ReadUInt16LittleEndian(m[4..])); // RTM_NEWADDR
        Assert.Equal(0x1 | 0x4 | 0x200 | 0x400, BinaryPrimitives.ReadUInt16LittleEndian(m[6..])); // REQUEST|ACK|EXCL|CREATE
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(m[8..]));
        Assert.Equal(10, m[16]); // AF_INET6
        Assert.Equal(64, m[17]);
        Assert.Equal(0x02, m[18]); // IFA_F_NODAD
        Assert.Equal(7, BinaryPrimitives.ReadInt32LittleEndian(m[20..]));
        var expected = new byte[16];
        address.WriteV6(expected);
        // IFA_LOCAL (2) and IFA_ADDRESS (1), 20 bytes each, then IFA_FLAGS (8) with NODAD.
        Assert.Equal((20, 2), (BinaryPrimitives.ReadUInt16LittleEndian(m[24..]), BinaryPrimitives.ReadUInt16LittleEndian(m[26..])));
        Assert.Equal(expected, m.Slice(28, 16).ToArray());
        Assert.Equal((20, 1), (BinaryPrimitives.ReadUInt16LittleEndian(m[44..]), BinaryPrimitives.ReadUInt16LittleEndian(m[46..])));
        Assert.Equal(expected, m.Slice(48, 16).ToArray());
        Assert.Equal((8, 8), (BinaryPrimitives.ReadUInt16LittleEndian(m[64..]), BinaryPrimitives.ReadUInt16LittleEndian(m[66..])));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(m[68..]));
    }

    [Fact]
    public void NetlinkAck_GivesTheErrno()
    {
        var ack = new byte[36];
        BinaryPrimitives.WriteUInt32LittleEndian(ack, 36);
        BinaryPrimitives.WriteUInt16LittleEndian(ack.AsSpan(4), 2); // NLMSG_ERROR
        Assert.Equal(0, Netlink.ParseAck(ack));
        BinaryPrimitives.WriteInt32LittleEndian(ack.AsSpan(16), -17);
        Assert.Equal(17, Netlink.ParseAck(ack)); // EEXIST
        Assert.Equal(5, Netlink.ParseAck(ack.AsSpan(0, 10))); // truncated: EIO
        BinaryPrimitives.WriteUInt16LittleEndian(ack.AsSpan(4), 3); // NLMSG_DONE, not an ack
        Assert.Equal(5, Netlink.ParseAck(ack));
    }
}
