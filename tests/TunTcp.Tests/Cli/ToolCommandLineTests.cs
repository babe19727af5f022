using TunTcp.Cli;
using TunTcp.Wire;

namespace TunTcp.Tests.Cli;

public class ToolCommandLineTests
{
    private static ToolCommandLine Build() => ToolCommandLine.Build(dump: _ => 0, serve: _ => 0);

    [Fact]
    public void Defaults_FollowTheTutorial()
    {
        var settings = Build().ParseSettings("serve");
        Assert.Equal("tun0", settings.Interface.DeviceName);
        Assert.Equal("192.168.0.1/24", settings.Interface.HostAddress.ToString());
        Assert.Equal(1500, settings.Interface.Mtu);
        Assert.Equal("tuntcp", settings.Interface.NetworkNamespace);
        Assert.False(settings.Interface.PacketInformation);
        Assert.Equal(Ipv4Address.Parse("192.168.0.2"), settings.StackAddress);
        Assert.Null(settings.PcapPath);
        Assert.False(settings.Trace);
    }

    [Fact]
    public void EveryOption_IsRead()
    {
        var settings = Build().ParseSettings("dump", "--tun", "tt7", "--addr", "10.9.0.5", "--host-addr", "10.9.0.1/16",
            "--mtu", "9000", "--netns", "lab", "--pcap", "out.pcap", "--trace", "--packet-info");
        Assert.Equal("tt7", settings.Interface.DeviceName);
        Assert.Equal("10.9.0.1/16", settings.Interface.HostAddress.ToString());
        Assert.Equal(9000, settings.Interface.Mtu);
        Assert.Equal("lab", settings.Interface.NetworkNamespace);
        Assert.True(settings.Interface.PacketInformation);
        Assert.Equal(Ipv4Address.Parse("10.9.0.5"), settings.StackAddress);
        Assert.Equal("out.pcap", settings.PcapPath);
        Assert.True(settings.Trace);
    }

    [Fact]
    public void NoNetns_MeansTheCurrentNamespace()
    {
        Assert.Null(Build().ParseSettings("serve", "--no-netns").Interface.NetworkNamespace);
    }

    [Theory]
    [InlineData("--addr 1.2.3", "--addr: '1.2.3' is not an IPv4 address")]
    [InlineData("--addr 192.168.0.300", "is not an IPv4 address")]
    [InlineData("--addr 127.0.0.2", "loopback")]
    [InlineData("--host-addr 192.168.0.1", "no prefix length")]
    [InlineData("--host-addr 192.168.0.1/33", "out of range")]
    [InlineData("--host-addr 192.168.0.1/0", "out of range")]
    [InlineData("--host-addr 192.168.0.0/24", "network address")]
    [InlineData("--mtu 67", "--mtu: 67 is out of range")]
    [InlineData("--mtu 65536", "--mtu: 65536 is out of range")]
    [InlineData("--mtu big", "big")]
    [InlineData("--addr 192.168.0.1", "same as the host side's address")]
    [InlineData("--addr 10.0.0.2", "outside the host side's prefix")]
    [InlineData("--addr 192.168.0.255", "network or broadcast address")]
    [InlineData("--host-addr 10.0.0.1/24", "outside the host side's prefix")]
    [InlineData("--host-addr 10.0.0.1/24 --addr 10.0.0.1", "same as the host side's address")]
    [InlineData("--tun this-name-is-too-long", "--tun: device name 'this-name-is-too-long' is longer than 15 bytes")]
    [InlineData("--netns a/b", "--netns: namespace name")]
    [InlineData("--netns lab --no-netns", "contradict")]
    [InlineData("--bogus", "--bogus")]
    public void BadInput_IsAParseErrorThatSaysWhy(string arguments, string expected)
    {
        foreach (var command in new[] { "serve", "dump" })
        {
            var errors = Build().Validate([command, .. arguments.Split(' ')]);
            Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void AMalformedOption_IsReported_EvenWhenOptionsAlsoContradictEachOther()
    {
        var errors = Build().Validate("serve", "--mtu", "5", "--addr", "192.168.0.1");
        Assert.Contains(errors, e => e.Contains("--mtu: 5 is out of range"));
    }

    [Fact]
    public void EveryMalformedOption_IsReported()
    {
        var errors = Build().Validate("serve", "--mtu", "5", "--addr", "1.2.3", "--host-addr", "10.0.0.1/40", "--tun", "a:b");
        Assert.Contains(errors, e => e.StartsWith("--mtu:"));
        Assert.Contains(errors, e => e.StartsWith("--addr:"));
        Assert.Contains(errors, e => e.StartsWith("--host-addr:"));
        Assert.Contains(errors, e => e.StartsWith("--tun:"));
    }

    [Fact]
    public void ValidInput_HasNoErrors()
    {
        Assert.Empty(Build().Validate("serve", "--host-addr", "10.0.0.1/24", "--addr", "10.0.0.2"));
        Assert.Empty(Build().Validate("dump", "--mtu", "68"));
        Assert.Empty(Build().Validate("dump", "--mtu", "65535"));
        Assert.Empty(Build().Validate("serve", "--host-addr", "10.0.0.0/31", "--addr", "10.0.0.1"));
    }

    [Fact]
    public void Run_WithBadInput_ReturnsTheUsageExitCode_AndPointsToHelp()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exitCode = Build().Run(["serve", "--mtu", "10"], output, error);
        Assert.Equal(ToolCommandLine.UsageError, exitCode);
        Assert.Contains("tuntcp: error: --mtu: 10 is out of range", error.ToString());
        Assert.Contains("tuntcp serve --help", error.ToString());
    }

    [Fact]
    public void Run_WithoutACommand_IsAUsageError()
    {
        var error = new StringWriter();
        Assert.Equal(ToolCommandLine.UsageError, Build().Run([], new StringWriter(), error));
    }

    [Fact]
    public void Help_NamesTheToolTuntcp_AndListsTheCommands()
    {
        var output = new StringWriter();
        Assert.Equal(0, Build().Run(["--help"], output, new StringWriter()));
        var text = output.ToString();
        Assert.Contains("tuntcp [command] [options]", text);
        Assert.Contains("dump", text);
        Assert.Contains("serve", text);
    }

    [Fact]
    public void SubcommandHelp_ListsEveryOption()
    {
        var output = new StringWriter();
        Assert.Equal(0, Build().Run(["serve", "--help"], output, new StringWriter()));
        foreach (var option in new[] { "--tun", "--addr", "--host-addr", "--mtu", "--netns", "--no-netns", "--pcap", "--trace", "--packet-info" })
            Assert.Contains(option, output.ToString());
    }
}
