using System.Net;
using System.Net.Sockets;
using TunTcp.Forwarding;
using TunTcp.Wire;

namespace TunTcp.Tests.Forwarding;

/// <summary>The DNS relay of <c>forward --dns</c>: resolv.conf(5) reading and the choice of resolver.</summary>
public class DnsRelayTests
{
    [Fact]
    public void ResolvConf_NameserverLinesOnly_ZonesDropped_GarbageSkipped()
    {
        var servers = DnsRelay.ReadResolvConf("""
            # comment
            search example.org
            nameserver 10.0.0.53
            nameserver   fe80::1%eth0
            nameserver not-an-address
            nameserver
            options edns0
            nameserver 2001:db8::53
            """);
        Assert.Equal([new IPEndPoint(IPAddress.Parse("10.0.0.53"), 53), new IPEndPoint(IPAddress.Parse("fe80::1"), 53), new IPEndPoint(IPAddress.Parse("2001:db8::53"), 53)], servers);
        Assert.Empty(DnsRelay.ReadResolvConf(""));
    }

    [Fact]
    public void Relay_AnswersOnlyForTheGatewayAddresses_PreferringTheQuerysFamily()
    {
        var gateway4 = IpAddress.Parse("192.168.0.2");
        var gateway6 = IpAddress.Parse("fd00:7475:6e::2");
        var v4 = new IPEndPoint(IPAddress.Parse("10.0.0.53"), 53);
        var v6 = new IPEndPoint(IPAddress.Parse("2001:db8::53"), 53);
        var relay = new DnsRelay([gateway4, gateway6], [v4, v6]);
        Assert.True(relay.Enabled);
        Assert.Equal(v4, relay.ServerFor(gateway4));
        Assert.Equal(v6, relay.ServerFor(gateway6));
        Assert.Null(relay.ServerFor(IpAddress.Parse("192.168.0.3")));

        // Only an IPv4 resolver: an IPv6 flow reaches it through a mapped address from its IPv6 socket.
        var only4 = new DnsRelay([gateway4, gateway6], [v4]);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("::ffff:10.0.0.53"), 53), only4.ServerFor(gateway6, AddressFamily.InterNetworkV6));
        Assert.True(only4.IsServer(new IPEndPoint(IPAddress.Parse("::ffff:10.0.0.53"), 53)));
        Assert.False(only4.IsServer(new IPEndPoint(IPAddress.Parse("10.0.0.53"), 5353)));

        Assert.False(new DnsRelay([], [v4]).Enabled);
        Assert.Null(new DnsRelay([], [v4]).ServerFor(gateway4));
    }
}
