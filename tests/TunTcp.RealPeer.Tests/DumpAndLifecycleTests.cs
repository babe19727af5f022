using TunTcp.RealPeer.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary><c>tuntcp dump</c>, attaching to persistent devices, and clean-up on signals.</summary>
public sealed class DumpAndLifecycleTests : IDisposable
{
    private readonly TestNamespace? _ns;
    private readonly string _device = TestNamespace.UniqueDeviceName();
    private readonly List<string> _toolNamespaces = new();

    public DumpAndLifecycleTests()
    {
        if (RootRequirement.IsRoot) _ns = TestNamespace.Create();
    }

    public void Dispose()
    {
        // Whatever a test or the tool left behind goes, on every exit path.
        foreach (var name in _toolNamespaces) TestNamespace.DeleteIfExists(name);
        _ns?.Dispose();
    }

    private TestNamespace Ns => _ns!;

    // The shell convention: a command ended by Ctrl-C (SIGINT) exits with 128 + 2.
    [Fact]
    public async Task Connect_InterruptedByCtrlC_ExitsWith130()
    {
        RootRequirement.SkipUnlessRoot();
        using var listener = Ns.Start("nc", "-l", "5995");
        try
        {
            Assert.True(await Shell.EventuallyAsync(() => Ns.Run("ss", "-ltn", "sport = :5995").Output.Contains("5995"), TimeSpan.FromSeconds(10)));
            using var tool = ToolProcess.Start(["connect", "--netns", Ns.Name, "--tun", _device, "192.168.0.1", "5995"]);
            Assert.True(tool.WaitForLine("connected", ToolProcess.ReadyTimeout), $"no connection:\n{tool.Stderr}");
            Assert.Equal(130, tool.Stop(ToolProcess.SIGINT));
        }
        finally
        {
            if (!listener.HasExited) listener.Kill();
            listener.WaitForExit(5000);
        }
    }

    [Fact]
    public void Dump_ShowsThePacketsOfAPing()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = ToolProcess.Start(["dump", "--netns", Ns.Name, "--tun", _device]);
        tool.WaitForReady();
        // dump answers nothing, so the ping itself fails; its request is what we look for.
        Ns.Run("ping", "-c", "1", "-W", "1", "192.168.0.2");
        Assert.True(tool.WaitForLine("echo request", ToolProcess.ReadyTimeout, stdoutOnly: true), $"no echo request line:\n{tool.Stdout}");
        var line = tool.StdoutLines.First(l => l.Contains("echo request"));
        // time, IP version, source -> destination, protocol, length, ICMP type
        Assert.Matches(@"^\d\d:\d\d:\d\d\.\d{6} IPv4 192\.168\.0\.1 -> 192\.168\.0\.2 ICMP len 84 echo request id \d+ seq 1$", line);
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void Dump_ShowsTcpPortsFlagsAndSequenceNumbers_AndWritesThePcap()
    {
        RootRequirement.SkipUnlessRoot();
        string pcap = Path.Combine(Path.GetTempPath(), $"{Ns.Name}-dump.pcap");
        try
        {
            using var tool = ToolProcess.Start(["dump", "--netns", Ns.Name, "--tun", _device, "--pcap", pcap]);
            tool.WaitForReady();
            Ns.Run("nc", "-z", "-w", "1", "192.168.0.2", "8080");
            Assert.True(tool.WaitForLine("-> 8080 [S]", ToolProcess.ReadyTimeout, stdoutOnly: true), $"no SYN line:\n{tool.Stdout}");
            Assert.Matches(@"TCP len \d+ \d+ -> 8080 \[S\] seq \d+ ack 0 win \d+", tool.Stdout);
            Assert.Equal(0, tool.Stop());
            Assert.True(Wire.PcapNgReader.TryRead(File.ReadAllBytes(pcap), out var records, out _, out var error), error);
            Assert.NotEmpty(records);
            // dump only receives: everything it captured came from the host.
            Assert.All(records, r => Assert.Equal(Wire.CaptureDirection.Inbound, r.Direction));
        }
        finally
        {
            File.Delete(pcap);
        }
    }

    [Fact]
    public void Dump_InPacketInformationMode_ShowsThePackets()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = ToolProcess.Start(["dump", "--netns", Ns.Name, "--tun", _device, "--packet-info"]);
        tool.WaitForReady();
        Ns.Run("ping", "-c", "1", "-W", "1", "192.168.0.2");
        Assert.True(tool.WaitForLine("echo request", ToolProcess.ReadyTimeout, stdoutOnly: true), $"no echo request line:\n{tool.Stdout}");
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void PersistentDevice_IsAttachedTo_AndItsConfigurationLeftAlone()
    {
        RootRequirement.SkipUnlessRoot();
        Assert.Equal(0, Ns.Run("ip", "tuntap", "add", "dev", _device, "mode", "tun").ExitCode);
        // Not below 1280: the kernel drops IPv6 (and its sysctls) from links under the IPv6 minimum MTU.
        Assert.Equal(0, Ns.Run("ip", "link", "set", "dev", _device, "mtu", "1300").ExitCode);
        string ipv6Before = Ns.ReadFile($"/proc/sys/net/ipv6/conf/{_device}/disable_ipv6");

        using (var tool = ToolProcess.Start(["dump", "--netns", Ns.Name, "--tun", _device]))
        {
            tool.WaitForReady();
            Assert.Contains($"Attached to TUN device {_device}", tool.Stderr);
            Assert.Contains("is down", tool.Stderr); // it says what looks wrong, and changes nothing
            AssertUntouched();
            Assert.Equal(0, tool.Stop());
        }

        Assert.True(Ns.HasDevice(_device), "a persistent device must survive the tool");
        AssertUntouched();

        void AssertUntouched()
        {
            Assert.Equal("1300", Ns.ReadFile($"/sys/class/net/{_device}/mtu"));
            int flags = Convert.ToInt32(Ns.ReadFile($"/sys/class/net/{_device}/flags"), 16);
            Assert.True((flags & 0x1) == 0, "the tool must not bring an attached device up");
            Assert.DoesNotContain("inet ", Ns.Run("ip", "addr", "show", "dev", _device).Output);
            Assert.Equal(ipv6Before, Ns.ReadFile($"/proc/sys/net/ipv6/conf/{_device}/disable_ipv6"));
        }
    }

    [Fact]
    public void PersistentDevice_ConfiguredByItsOwner_CarriesTraffic()
    {
        RootRequirement.SkipUnlessRoot();
        Assert.Equal(0, Ns.Run("ip", "tuntap", "add", "dev", _device, "mode", "tun").ExitCode);
        Assert.Equal(0, Ns.Run("ip", "addr", "add", "10.88.0.1/24", "dev", _device).ExitCode);
        Assert.Equal(0, Ns.Run("ip", "link", "set", "dev", _device, "up").ExitCode);

        using var tool = ToolProcess.Start(["serve", "--netns", Ns.Name, "--tun", _device, "--host-addr", "10.88.0.1/24", "--addr", "10.88.0.2"]);
        tool.WaitForReady();
        var ping = Ns.Run("ping", "-c", "2", "-i", "0.2", "-W", "5", "10.88.0.2");
        Assert.True(ping.ExitCode == 0, ping.ToString());
        Assert.Equal(0, tool.Stop());
        Assert.True(Ns.HasDevice(_device));
        Assert.Contains("inet 10.88.0.1/24", Ns.Run("ip", "addr", "show", "dev", _device).Output);
    }

    [Fact]
    public void PersistentDevice_OwnedByAnUnprivilegedUser_IsServedWithoutRoot()
    {
        RootRequirement.SkipUnlessRoot();
        Unprivileged.SkipUnlessNobodyCanRunTheTool();
        Assert.Equal(0, Ns.Run("ip", "tuntap", "add", "dev", _device, "mode", "tun", "user", "nobody").ExitCode);
        Assert.Equal(0, Ns.Run("ip", "addr", "add", "10.89.0.1/24", "dev", _device).ExitCode);
        Assert.Equal(0, Ns.Run("ip", "link", "set", "dev", _device, "up").ExitCode);
        // A private clone device node, mode 0666 as on most systems, so the system's own
        // /dev/net/tun (which may be 0600) is neither needed nor changed.
        string dir = Directory.CreateTempSubdirectory("tuntcp-clone-").FullName;
        try
        {
            Assert.Equal(0, Shell.Run("chmod", "0755", dir).ExitCode);
            string clone = Path.Combine(dir, "tun");
            Assert.Equal(0, Shell.Run("mknod", "-m", "0666", clone, "c", "10", "200").ExitCode);

            using var tool = ToolProcess.Start(["serve", "--no-netns", "--tun", _device, "--host-addr", "10.89.0.1/24", "--addr", "10.89.0.2"],
                wrapper: ["ip", "netns", "exec", Ns.Name, .. Unprivileged.Wrapper],
                environment: new Dictionary<string, string> { ["TUNTCP_TUN_PATH"] = clone });
            tool.WaitForReady();
            Assert.Contains("attached", tool.Stdout);
            var ping = Ns.Run("ping", "-c", "2", "-i", "0.2", "-W", "5", "10.89.0.2");
            Assert.True(ping.ExitCode == 0, ping.ToString());
            Assert.Equal(0, tool.Stop());
            Assert.Contains($"Detached from TUN device {_device}", tool.Stderr);
            Assert.True(Ns.HasDevice(_device));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(ToolProcess.SIGINT)]
    [InlineData(ToolProcess.SIGTERM)]
    public void Signal_RemovesTheDeviceAndTheNamespaceTheToolCreated(int signal)
    {
        RootRequirement.SkipUnlessRoot();
        string ns = TestNamespace.UniqueName();
        _toolNamespaces.Add(ns);
        using var tool = ToolProcess.Start(["serve", "--netns", ns, "--tun", _device]);
        tool.WaitForReady();
        Assert.True(TestNamespace.Exists(ns), "the tool creates a missing namespace");
        Assert.Equal(0, Shell.Run("ip", "-n", ns, "link", "show", "dev", _device).ExitCode);
        // A namespace the tool creates gets its loopback up.
        Assert.Contains("UP", Shell.Run("ip", "-n", ns, "link", "show", "dev", "lo").Output);

        Assert.Equal(0, tool.Stop(signal));
        Assert.False(TestNamespace.Exists(ns), $"namespace {ns} must be deleted after signal {signal}");
        Assert.Contains($"Deleted network namespace {ns}", tool.Stderr);
        Assert.Contains(signal == ToolProcess.SIGINT ? "SIGINT" : "SIGTERM", tool.Stderr);
    }
}
