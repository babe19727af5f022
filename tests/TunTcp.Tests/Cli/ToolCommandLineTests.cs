using System.Net;
using Microsoft.Extensions.Logging;
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
        Assert.Equal(CaptureFormat.PcapNg, settings.PcapFormat);
        Assert.False(settings.Trace);
    }

    [Fact]
    public void TcpTrace_IsAStackOption_OffByDefault()
    {
        Assert.Null(Build().ParseSettings("serve").TcpTracePath);
        Assert.Equal("t.jsonl", Build().ParseSettings("serve", "--tcp-trace", "t.jsonl").TcpTracePath);
        Assert.Equal("t.jsonl", Build().ParseSettings("connect", "--tcp-trace", "t.jsonl", "192.168.0.1", "80").TcpTracePath);
        Assert.NotEmpty(Build().Validate("dump", "--tcp-trace", "t.jsonl"));
        Assert.Contains(Build().Validate("serve", "--tcp-trace", "/nonexistent-tuntcp-dir/t.jsonl"), e => e.Contains("--tcp-trace: the directory '/nonexistent-tuntcp-dir' does not exist"));
    }

    [Theory]
    [InlineData(new[] { "plot", "c.pcap", "--from", "-1", "-o", "x.html" }, "--from: -1 s is before the connection's start")]
    [InlineData(new[] { "plot", "c.pcap", "--from", "2", "--to", "1", "-o", "x.html" }, "--to 1 must be after --from 2")]
    [InlineData(new[] { "plot", "c.pcap" }, "-o FILE.html")]
    public void Plot_BadArguments_AreUsageErrors(string[] args, string message) =>
        Assert.Contains(Build().Validate(args), e => e.Contains(message));

    [Fact]
    public void Plot_ListNeedsNoOutput() => Assert.Empty(Build().Validate("plot", "c.pcap", "--list"));

    [Fact]
    public void PcapFormat_IsPcapNgByDefault_AndPcapWhenAsked()
    {
        Assert.Equal(CaptureFormat.PcapNg, Build().ParseSettings("serve", "--pcap", "x").PcapFormat);
        Assert.Equal(CaptureFormat.PcapNg, Build().ParseSettings("serve", "--pcap", "x", "--pcap-format", "pcapng").PcapFormat);
        var classic = Build().ParseSettings("dump", "--pcap", "x", "--pcap-format", "pcap");
        Assert.Equal(CaptureFormat.Pcap, classic.PcapFormat);
        Assert.Equal("x", classic.PcapPath);
    }

    [Theory]
    [InlineData("pcap-ng")]
    [InlineData("PCAPNG")]
    [InlineData("erf")]
    public void PcapFormat_OtherValues_AreAnErrorNamingTheAllowedOnes(string format)
    {
        var error = Assert.Single(Build().Validate("serve", "--pcap", "x", "--pcap-format", format));
        Assert.Equal($"--pcap-format: '{format}' is not one of pcapng, pcap", error);
    }

    [Fact]
    public void PcapFormat_WithoutPcap_IsAnError()
    {
        var error = Assert.Single(Build().Validate("serve", "--pcap-format", "pcap"));
        Assert.Contains("add --pcap FILE", error);
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
    public void DualStack_IsTheDefault_AndIpv4OnlySwitchesIpv6Off()
    {
        var dual = Build().ParseSettings("serve");
        Assert.Equal(IpAddress.Parse("fd00:7475:6e::2"), dual.StackAddress6);
        Assert.Equal("fd00:7475:6e::1/64", dual.Interface.HostAddress6.ToString());
        Assert.Equal(System.Net.IPAddress.Parse("fd00:7475:6e::2"), dual.StackOptions(1500).Address6);

        var custom = Build().ParseSettings("serve", "--addr6", "2001:db8:7::2", "--host-addr6", "2001:db8:7::1/64");
        Assert.Equal(IpAddress.Parse("2001:db8:7::2"), custom.StackAddress6);
        Assert.Equal(IpAddress.Parse("2001:db8:7::1"), custom.Interface.HostAddress6!.Value.Value);

        var v4 = Build().ParseSettings("serve", "--ipv4-only", "--mtu", "576");
        Assert.Null(v4.StackAddress6);
        Assert.Null(v4.Interface.HostAddress6);
        Assert.Null(v4.StackOptions(576).Address6);
    }

    [Fact]
    public void Connect_TakesAnIpv6Host_ButNotWithIpv4Only()
    {
        var settings = Build().ParseSettings("connect", "fd00:7475:6e::1", "8080");
        Assert.Equal(System.Net.IPAddress.Parse("fd00:7475:6e::1"), settings.Target!.Address);
        Assert.Contains(Build().Validate("connect", "--ipv4-only", "fd00:7475:6e::1", "8080"), e => e.Contains("is an IPv6 address, but --ipv4-only"));
        Assert.Contains(Build().Validate("connect", "nowhere", "8080"), e => e.Contains("is not an IPv4 or IPv6 address"));
    }

    [Fact]
    public void Ecn_IsOnUnlessNoEcn()
    {
        Assert.True(Build().ParseSettings("serve").Tcp.Ecn);
        Assert.False(Build().ParseSettings("serve", "--no-ecn").Tcp.Ecn);
        Assert.False(Build().ParseSettings("connect", "--no-ecn", "192.168.0.1", "80").Tcp.Ecn);
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
    [InlineData("--addr6 10.0.0.2", "--addr6: '10.0.0.2' is not an IPv6 address")]
    [InlineData("--addr6 fd00::g", "is not an IPv6 address")]
    [InlineData("--addr6 ::1", "loopback")]
    [InlineData("--addr6 ff02::1", "multicast")]
    [InlineData("--addr6 fe80::2", "link-local")]
    [InlineData("--host-addr6 fd00:7475:6e::1", "no prefix length")]
    [InlineData("--host-addr6 fd00:7475:6e::1/129", "out of range")]
    [InlineData("--host-addr6 10.0.0.1/24", "is not an IPv6 address")]
    [InlineData("--addr6 fd00:7475:6e::1", "same as the host side's address")]
    [InlineData("--addr6 fd00:1::2", "outside the host side's prefix")]
    [InlineData("--mtu 1279", "below 1280")]
    [InlineData("--ipv4-only --addr6 fd00:7475:6e::3", "--addr6 and --ipv4-only contradict")]
    [InlineData("--ipv4-only --host-addr6 fd00:7475:6e::1/64", "--host-addr6 and --ipv4-only contradict")]
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
        Assert.Empty(Build().Validate("dump", "--mtu", "68", "--ipv4-only"));
        Assert.Empty(Build().Validate("serve", "--mtu", "1280"));
        Assert.Empty(Build().Validate("serve", "--addr6", "2001:db8:7::2", "--host-addr6", "2001:db8:7::1/64"));
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
        foreach (var option in new[] { "--tun", "--addr", "--host-addr", "--addr6", "--host-addr6", "--ipv4-only", "--mtu", "--netns", "--no-netns", "--pcap", "--pcap-format", "--trace", "--packet-info" })
            Assert.Contains(option, output.ToString());
    }

    [Fact]
    public void Forward_RoutesBothDefaultRoutes_DirectUpstream_NoDns_ByDefault()
    {
        var settings = Build().ParseSettings("forward", "--netns", "apps");
        Assert.Equal("apps", settings.Interface.NetworkNamespace);
        Assert.Equal([(IPAddress.Any, 0), (IPAddress.IPv6Any, 0)], settings.Interface.Routes);
        Assert.Equal("direct", settings.Forward!.Upstream);
        Assert.False(settings.Forward.Dns);
        Assert.Null(settings.Forward.Command);

        var v4 = Build().ParseSettings("forward", "--ipv4-only");
        Assert.Equal([(IPAddress.Any, 0)], v4.Interface.Routes);
    }

    [Fact]
    public void Forward_Routes_AreNormalised_AndUpstreamAndDnsAreRead()
    {
        var settings = Build().ParseSettings("forward", "--route", "10.203.0.77/24", "--route", "fd00:cb::1/48", "--dns",
            "--upstream", "socks5://user:secret@127.0.0.1:1080");
        Assert.Equal([(IPAddress.Parse("10.203.0.0"), 24), (IPAddress.Parse("fd00:cb::"), 48)], settings.Interface.Routes);
        Assert.True(settings.Forward!.Dns);
        Assert.Equal("socks5://user:secret@127.0.0.1:1080", settings.Forward.Upstream);
    }

    [Theory]
    [InlineData("forward --route 10.0.0.0", "is not a prefix such as")]
    [InlineData("forward --route 10.0.0.0/33", "prefix length 33 is more than 32")]
    [InlineData("forward --route 224.0.0.0/4", "multicast, broadcast or loopback")]
    [InlineData("forward --ipv4-only --route fd00::/8", "is IPv6, but --ipv4-only")]
    [InlineData("forward --upstream http://proxy:3128", "--upstream:")]
    [InlineData("forward --upstream socks5://127.0.0.1", "--upstream:")]
    [InlineData("forward --no-netns", "never takes over the current one")]
    public void Forward_BadInput_IsAParseErrorThatSaysWhy(string arguments, string expected) =>
        Assert.Contains(Build().Validate(arguments.Split(' ')), e => e.Contains(expected));

    [Fact]
    public void Run_TakesTheCommandAfterTheDoubleDash_AndAFreshNamespaceUnlessGiven()
    {
        var settings = Build().ParseSettings("run", "--delay", "50", "--", "curl", "-s", "--max-time", "5", "http://10.203.0.2/");
        Assert.Equal(["curl", "-s", "--max-time", "5", "http://10.203.0.2/"], settings.Forward!.Command);
        Assert.StartsWith("tuntcp-run-", settings.Interface.NetworkNamespace);
        Assert.False(settings.Faults.IsEmpty);
        Assert.Equal("mine", Build().ParseSettings("run", "--netns", "mine", "--", "true").Interface.NetworkNamespace);
        Assert.NotEmpty(Build().Validate("run"));
    }

    [Theory]
    [InlineData(new[] { "serve" }, LogLevel.Information)]
    [InlineData(new[] { "serve", "-q" }, LogLevel.Warning)]
    [InlineData(new[] { "--quiet", "serve" }, LogLevel.Warning)]
    [InlineData(new[] { "serve", "--log-level", "debug" }, LogLevel.Debug)]
    [InlineData(new[] { "serve", "--log-level=Error" }, LogLevel.Error)]
    [InlineData(new[] { "run", "--", "sh", "-q" }, LogLevel.Information)] // the command's own arguments are not ours
    public void LogLevel_IsReadFromTheArguments(string[] args, LogLevel expected) =>
        Assert.Equal(expected, ToolCommandLine.LogLevelFrom(args, LogLevel.Information));

    [Fact]
    public void LogLevelAndQuiet_AreAcceptedByEveryCommand_AndABadLevelSaysWhich()
    {
        Assert.Empty(Build().Validate("serve", "--log-level", "warning", "-q"));
        Assert.Empty(Build().Validate("forward", "--log-level", "info"));
        Assert.Contains(Build().Validate("serve", "--log-level", "loud"), e => e.Contains("'loud' is not one of trace, debug"));
    }

    [Fact]
    public void ShortAliases_MeanTheirLongOptions()
    {
        var settings = Build().ParseSettings("serve", "-n", "ns1", "-m", "9000", "-w", "/tmp/x.pcap", "-4");
        Assert.Equal("ns1", settings.Interface.NetworkNamespace);
        Assert.Equal(9000, settings.Interface.Mtu);
        Assert.Equal("/tmp/x.pcap", settings.PcapPath);
        Assert.Null(settings.StackAddress6);
        Assert.Equal("socks5://127.0.0.1:1080", Build().ParseSettings("forward", "-u", "socks5://127.0.0.1:1080").Forward!.Upstream);
    }

    [Fact]
    public void PfxPassword_OnTheCommandLineIsRefused_AFileOrTheEnvironmentIsRead()
    {
        Assert.Contains(Build().Validate("serve", "--https", "443", "--pfx-password", "secret"), e => e.Contains("visible to every user"));
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "s3cret\nignored\n");
            Assert.Equal("s3cret", Build().ParseSettings("serve", "--https", "443", "--pfx-password-file", file).Services.PfxPassword);
            Assert.Contains(Build().Validate("serve", "--pfx-password-file", file + ".missing"), e => e.Contains("does not exist"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void ResponseFile_SuppliesArguments()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "--netns fromfile\n--mtu 4000\n");
            var settings = Build().ParseSettings("serve", "@" + file);
            Assert.Equal("fromfile", settings.Interface.NetworkNamespace);
            Assert.Equal(4000, settings.Interface.Mtu);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
