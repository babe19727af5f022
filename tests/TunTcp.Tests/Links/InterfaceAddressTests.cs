using TunTcp.Links;
using TunTcp.Wire;

namespace TunTcp.Tests.Links;

public class InterfaceAddressTests
{
    [Theory]
    [InlineData("192.168.0.1/24", "192.168.0.1", 24, "255.255.255.0")]
    [InlineData("10.1.2.3/8", "10.1.2.3", 8, "255.0.0.0")]
    [InlineData("10.0.0.1/31", "10.0.0.1", 31, "255.255.255.254")]
    [InlineData("10.0.0.0/31", "10.0.0.0", 31, "255.255.255.254")]
    [InlineData("172.16.5.5/32", "172.16.5.5", 32, "255.255.255.255")]
    public void TryParse_Valid(string text, string address, int prefix, string netmask)
    {
        Assert.True(InterfaceAddress.TryParse(text, out var value, out var error), error);
        Assert.Equal(Ipv4Address.Parse(address), value.Value);
        Assert.Equal(prefix, value.PrefixLength);
        Assert.Equal(Ipv4Address.Parse(netmask), value.Netmask);
        Assert.Equal(text, value.ToString());
    }

    [Theory]
    [InlineData("", "required")]
    [InlineData("192.168.0.1", "no prefix length")]
    [InlineData("192.168.0/24", "not an IPv4 address")]
    [InlineData("192.168.0.256/24", "not an IPv4 address")]
    [InlineData("192.168.0.1/0", "out of range")]
    [InlineData("192.168.0.1/33", "out of range")]
    [InlineData("192.168.0.1/-1", "out of range")]
    [InlineData("192.168.0.1/x", "out of range")]
    [InlineData("192.168.0.0/24", "network address")]
    [InlineData("192.168.0.255/24", "broadcast address")]
    [InlineData("127.0.0.1/8", "loopback")]
    [InlineData("224.0.0.1/24", "multicast")]
    [InlineData("0.1.2.3/24", "this network")]
    [InlineData("255.255.255.255/24", "reserved")]
    public void TryParse_Invalid_SaysWhy(string text, string reason)
    {
        Assert.False(InterfaceAddress.TryParse(text, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Fact]
    public void IsUsableHost_ExcludesNetworkAndBroadcast_ButNotOnSlash31()
    {
        var lan = InterfaceAddress.Parse("192.168.0.1/24");
        Assert.True(lan.IsUsableHost(Ipv4Address.Parse("192.168.0.2")));
        Assert.False(lan.IsUsableHost(Ipv4Address.Parse("192.168.0.0")));
        Assert.False(lan.IsUsableHost(Ipv4Address.Parse("192.168.0.255")));
        Assert.False(lan.IsUsableHost(Ipv4Address.Parse("192.168.1.2")));
        var p2p = InterfaceAddress.Parse("10.0.0.0/31");
        Assert.True(p2p.IsUsableHost(Ipv4Address.Parse("10.0.0.1")));
    }
}

public class TunInterfaceOptionsTests
{
    [Fact]
    public void Defaults_FollowTheTutorial()
    {
        var options = new TunInterfaceOptions();
        Assert.Equal("tun0", options.DeviceName);
        Assert.Equal("192.168.0.1/24", options.HostAddress.ToString());
        Assert.Equal(1500, options.Mtu);
        Assert.Equal("tuntcp", options.NetworkNamespace);
        Assert.False(options.PacketInformation);
        options.Validate();
    }

    [Theory]
    [InlineData("", 1500, "tuntcp", "empty")]
    [InlineData("averyveryverylongname", 1500, "tuntcp", "longer than 15")]
    [InlineData("tun/0", 1500, "tuntcp", "'/'")]
    [InlineData("tun 0", 1500, "tuntcp", "space")]
    [InlineData("tun0", 67, "tuntcp", "MTU 67")]
    [InlineData("tun0", 65536, "tuntcp", "MTU 65536")]
    [InlineData("tun0", 1500, "../etc", "namespace name")]
    [InlineData("tun0", 1500, "a/b", "namespace name")]
    public void Validate_RejectsBadSettings(string device, int mtu, string ns, string reason)
    {
        var options = new TunInterfaceOptions { DeviceName = device, Mtu = mtu, NetworkNamespace = ns };
        var e = Assert.Throws<LinkSetupException>(options.Validate);
        Assert.Contains(reason, e.Message);
    }
}

public class TunDeviceErrorTests
{
    [Fact]
    public void Open_WithoutTheCloneDevice_NamesModprobe()
    {
        // Needs no privileges: the clone device is looked up before anything is created.
        var e = Assert.Throws<LinkSetupException>(() =>
            TunDevice.Open($"tt{Environment.ProcessId % 10000}", clonePath: "/nonexistent/dev/net/tun"));
        Assert.Contains("modprobe tun", e.Message);
        Assert.Contains("/nonexistent/dev/net/tun", e.Message);
        Assert.Equal(2, e.Errno); // ENOENT
    }

    [Fact]
    public void Open_WithABadName_SaysWhy()
    {
        var e = Assert.Throws<LinkSetupException>(() => TunDevice.Open("bad:name"));
        Assert.Contains("':'", e.Message);
    }
}
