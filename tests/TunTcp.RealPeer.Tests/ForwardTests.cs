using System.Diagnostics;
using System.Security.Cryptography;
using TunTcp.RealPeer.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// The "world" of the forward tests: a namespace the test made, with servers on addresses of its
/// own (10.203.0.2 and fd00:cb::2), in which the tool runs (<c>ip netns exec WORLD tuntcp
/// forward --netns APP</c>), so its upstream sockets reach nothing but this namespace.
/// </summary>
public sealed class ForwardWorld : IDisposable
{
    public const string Server4 = "10.203.0.2", Server6 = "fd00:cb::2";
    private readonly List<Process> _servers = [];

    public ForwardWorld()
    {
        if (!RootRequirement.IsRoot) return;
        Ns = TestNamespace.Create();
        try
        {
            // This kernel has no dummy interfaces: the servers' addresses go on the world's loopback
            // (host routes, so nothing else of their prefixes is local).
            Shell.Check("ip", "-n", Ns.Name, "addr", "add", $"{Server4}/32", "dev", "lo");
            Shell.Check("ip", "-n", Ns.Name, "-6", "addr", "add", $"{Server6}/128", "dev", "lo", "nodad");
            Directory = System.IO.Directory.CreateTempSubdirectory("tuntcp-world-").FullName;
            BigFile = Path.Combine(Directory, "big.bin");
            File.WriteAllBytes(BigFile, RandomNumberGenerator.GetBytes(10 << 20));
            File.WriteAllText(Path.Combine(Directory, "small.txt"), "hello from the world namespace\n");
            BigHash = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(BigFile)));
            MediumFile = Path.Combine(Directory, "medium.bin");
            File.WriteAllBytes(MediumFile, RandomNumberGenerator.GetBytes(1 << 20));
            MediumHash = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(MediumFile)));

            var servers = Ns.Start("python3", Path.Combine(AppContext.BaseDirectory, "peers", "world_servers.py"), "1800");
            _servers.Add(servers);
            var line = servers.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
            if (line != "ready") throw new InvalidOperationException($"world servers did not start: {line} {servers.StandardError.ReadToEnd()}");
            Drain(servers);
            _servers.Add(Drain(Ns.Start("python3", "-m", "http.server", "8080", "--bind", "::", "--directory", Directory)));
            // DNS for the world (dnsmasq, answering example.test itself and nothing else), and the
            // world's resolv.conf naming it, which the tool reads through ip netns exec's bind mount.
            _servers.Add(Drain(Ns.Start("dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--bind-interfaces", $"--listen-address={Server4}",
                "--address=/example.test/10.203.0.2", "--port=53", "--user=root", "--pid-file=")));
            System.IO.Directory.CreateDirectory(ResolvConfDirectory);
            File.WriteAllText(Path.Combine(ResolvConfDirectory, "resolv.conf"), $"nameserver {Server4}\n");
            if (!Shell.EventuallyAsync(() => Ns.Run("curl", "-s", "-o", "/dev/null", "-m", "2", $"http://{Server4}:8080/small.txt").ExitCode == 0, TimeSpan.FromSeconds(20)).GetAwaiter().GetResult())
                throw new InvalidOperationException("the world's HTTP server did not come up");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    internal TestNamespace? Ns { get; }
    public string Directory { get; } = "";
    public string BigFile { get; } = "";
    public string BigHash { get; } = "";
    public string MediumFile { get; } = "";
    public string MediumHash { get; } = "";

    /// <summary>Reads a server's output as it comes, so a full pipe never stops it (http.server logs every request).</summary>
    private static Process Drain(Process process)
    {
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        return process;
    }

    private string ResolvConfDirectory => Path.Combine("/etc/netns", Ns!.Name);

    public void Dispose()
    {
        foreach (var server in _servers)
        {
            try
            {
                if (!server.HasExited) server.Kill(entireProcessTree: true);
                server.WaitForExit(5000);
            }
            catch (InvalidOperationException) { }
            server.Dispose();
        }
        if (Ns is not null)
        {
            if (System.IO.Directory.Exists(ResolvConfDirectory)) System.IO.Directory.Delete(ResolvConfDirectory, recursive: true);
            Ns.Dispose();
        }
        if (Directory.Length > 0 && System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, recursive: true);
    }
}

[CollectionDefinition(nameof(ForwardCollection))]
public sealed class ForwardCollection : ICollectionFixture<ForwardWorld>;

/// <summary>
/// <c>tuntcp forward</c> and <c>tuntcp run</c> against real programs: every flow of the
/// application namespace goes through TunTcp to the world's servers.
/// </summary>
/// <remarks>
/// The application namespace of a <c>forward</c> test is made by the test: one the tool created
/// under <c>ip netns exec WORLD</c> would be bound in that command's private mount namespace only,
/// where the test's own <c>ip netns exec APP</c> could not see it. <c>run</c> creates its own (its
/// command starts inside the tool's mount namespace).
/// </remarks>
[Collection(nameof(ForwardCollection))]
public sealed class ForwardTests : IDisposable
{
    private readonly ForwardWorld world;
    private readonly TestNamespace? _appNs;
    private readonly string _app;
    private readonly string _device = TestNamespace.UniqueDeviceName();

    public ForwardTests(ForwardWorld world)
    {
        this.world = world;
        _appNs = RootRequirement.IsRoot ? TestNamespace.Create() : null;
        _app = _appNs?.Name ?? TestNamespace.UniqueName();
    }

    public void Dispose()
    {
        _appNs?.Dispose();
        TestNamespace.DeleteIfExists(_runNs);
        var conf = Path.Combine("/etc/netns", _app);
        if (Directory.Exists(conf)) Directory.Delete(conf, recursive: true);
    }

    /// <summary>A namespace name for <c>run</c>, which creates and deletes it itself.</summary>
    private readonly string _runNs = TestNamespace.UniqueName();

    private static string Client => Path.Combine(AppContext.BaseDirectory, "peers", "forward_client.py");

    private ToolProcess StartForward(params string[] extra)
    {
        var tool = ToolProcess.Start(["forward", "--netns", _app, "--tun", _device, .. extra], wrapper: ["ip", "netns", "exec", world.Ns!.Name]);
        tool.WaitForReady();
        return tool;
    }

    private CommandResult InApp(string fileName, params string[] arguments) => Shell.Run(TimeSpan.FromSeconds(90), "ip", ["netns", "exec", _app, fileName, .. arguments]);

    private string ClientSays(params string[] arguments)
    {
        var result = InApp("python3", [Client, .. arguments]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Output.Trim();
    }

    [Theory]
    [InlineData(ForwardWorld.Server4)]
    [InlineData("[" + ForwardWorld.Server6 + "]")]
    public void Curl10MegabytesThroughTheForwarder_ArrivesWhole(string host)
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartForward();
        var file = Path.Combine(world.Directory, $"download-{Guid.NewGuid():n}");
        try
        {
            var curl = InApp("curl", "-sS", "-g", "-m", "60", "-o", file, $"http://{host}:8080/big.bin");
            Assert.True(curl.ExitCode == 0, curl.ToString());
            Assert.Equal(world.BigHash, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file))));
        }
        finally
        {
            File.Delete(file);
        }
        Assert.Equal(0, tool.Stop());
        Assert.Contains("bytes down", tool.Stderr); // the per-connection line
        Assert.False(_appNs!.HasDevice(_device), "the device outlived the tool");
    }

    [Fact]
    public void Upload10Megabytes_ThenHalfClose_TheSinkSeesEveryByte()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartForward();
        Assert.Equal(world.BigHash, ClientSays("upload", ForwardWorld.Server4, "7008", world.BigFile));
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void HalfClose_EchoGoesOnAfterTheApplicationsFin()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartForward();
        Assert.Equal("echoed 100000", ClientSays("halfclose", ForwardWorld.Server4, "7007"));
        Assert.Equal("echoed 100000", ClientSays("halfclose", ForwardWorld.Server6, "7007"));
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void RefusedPort_IsEconnrefused_UnroutableAddress_IsEnetunreach_UpstreamReset_IsEconnreset()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartForward();
        Assert.Equal("ECONNREFUSED", ClientSays("connect", ForwardWorld.Server4, "1"));
        Assert.Equal("ECONNREFUSED", ClientSays("connect", ForwardWorld.Server6, "1"));
        // The world has no route to 10.204.0.0/16: its connect fails at once, and so does the application's.
        Assert.Equal("ENETUNREACH", ClientSays("connect", "10.204.0.9", "80"));
        Assert.Equal("ECONNRESET", ClientSays("reset", ForwardWorld.Server4, "7010"));
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void FiveHundredConcurrentEchoConnections_AllRoundTrip()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartForward();
        Assert.Equal("many 500/500", ClientSays("many", ForwardWorld.Server4, "7007", "500"));
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void UdpEcho_AndPing_GoThroughTheNat_BothFamilies()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartForward();
        Assert.Equal("udp 20/20", ClientSays("udp", ForwardWorld.Server4, "7009", "20"));
        Assert.Equal("udp 20/20", ClientSays("udp", ForwardWorld.Server6, "7009", "20"));
        var ping = InApp("ping", "-c", "3", "-i", "0.2", "-W", "5", ForwardWorld.Server4);
        Assert.True(ping.ExitCode == 0 && ping.Output.Contains("3 received"), ping.ToString());
        var ping6 = InApp("ping", "-6", "-c", "3", "-i", "0.2", "-W", "5", ForwardWorld.Server6);
        Assert.True(ping6.ExitCode == 0 && ping6.Output.Contains("3 received"), ping6.ToString());
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void UdpToAClosedPort_TheApplicationGetsConnectionRefused_AsOnADirectPath_BothFamilies()
    {
        // The world answers the relay's datagram with ICMP port unreachable; the upstream socket
        // reads it from its error queue (IP_RECVERR) and the stack passes it on, so the
        // application's connected socket fails with ECONNREFUSED instead of waiting forever.
        RootRequirement.SkipUnlessRoot();
        using var tool = StartForward();
        Assert.Equal("ECONNREFUSED", ClientSays("udperror", ForwardWorld.Server4, "7999"));
        Assert.Equal("ECONNREFUSED", ClientSays("udperror", ForwardWorld.Server6, "7999"));
        Assert.Equal("udp 3/3", ClientSays("udp", ForwardWorld.Server4, "7009", "3")); // and UDP relaying goes on
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void Dns_TheNamespaceResolvesThroughTheGateway()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartForward("--dns");
        var conf = InApp("cat", "/etc/resolv.conf");
        Assert.Contains("nameserver 192.168.0.2", conf.Output);
        Assert.Equal(ForwardWorld.Server4, ClientSays("resolve", "example.test"));
        Assert.Equal(0, tool.Stop());
        Assert.False(Directory.Exists(Path.Combine("/etc/netns", _app)), "resolv.conf outlived the tool");
    }

    [Fact]
    public void Route_OnlyThatPrefixGoesThroughTheDevice()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartForward("--route", "10.203.0.0/24");
        Assert.Equal("connected", ClientSays("connect", ForwardWorld.Server4, "7007"));
        var route = InApp("ip", "route", "get", "10.204.0.9");
        Assert.NotEqual(0, route.ExitCode); // no default route: not routed at all
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void Run_RunsTheCommandInTheNamespace_ExitsWithItsCode_AndRemovesEverything()
    {
        RootRequirement.SkipUnlessRoot();
        var (code, stdout, stderr) = ToolProcess.RunToExit(["run", "--netns", _runNs, "--tun", _device, "--", "curl", "-sS", "-m", "20", $"http://{ForwardWorld.Server4}:8080/small.txt"],
            wrapper: ["ip", "netns", "exec", world.Ns!.Name]);
        Assert.True(code == 0, stderr);
        Assert.Equal("hello from the world namespace", stdout.Trim());
        Assert.False(TestNamespace.Exists(_runNs));

        (code, _, stderr) = ToolProcess.RunToExit(["run", "--netns", _runNs, "--tun", _device, "--", "sh", "-c", "exit 7"], wrapper: ["ip", "netns", "exec", world.Ns!.Name]);
        Assert.True(code == 7, stderr);
        Assert.False(TestNamespace.Exists(_runNs));

        (code, _, stderr) = ToolProcess.RunToExit(["run", "--netns", _runNs, "--tun", _device, "--", "/nonexistent/program"], wrapper: ["ip", "netns", "exec", world.Ns!.Name]);
        Assert.NotEqual(0, code);
        Assert.False(TestNamespace.Exists(_runNs));
    }

    [Fact]
    public void Run_RunsTheCommandAsTheSudoCaller()
    {
        RootRequirement.SkipUnlessRoot();
        var (code, stdout, stderr) = ToolProcess.RunToExit(["run", "--netns", _runNs, "--tun", _device, "--", "id", "-u"],
            wrapper: ["ip", "netns", "exec", world.Ns!.Name], environment: new Dictionary<string, string> { ["SUDO_UID"] = "65534", ["SUDO_GID"] = "65534" });
        Assert.True(code == 0, stderr);
        Assert.Equal("65534", stdout.Trim());
    }

    /// <summary>
    /// What runs the tool as nobody inside the world namespace, with <c>/dev/net/tun</c> replaced
    /// (in a private mount namespace) by a node of <paramref name="mode"/>: this machine's own
    /// node is 0600, most distributions' 0666.
    /// </summary>
    private string[] AsNobodyWithTun(string mode) =>
        ["ip", "netns", "exec", world.Ns!.Name, "unshare", "--mount", "--propagation", "private", "sh", "-c",
         $"d=$(mktemp -d) && mknod -m {mode} \"$d/tun\" c 10 200 && mount --bind \"$d/tun\" /dev/net/tun && rm -rf \"$d\" && cd / && exec setpriv --reuid=nobody --regid=nogroup --clear-groups \"$@\"", "sh"];

    [Fact]
    public void Run_WithoutRoot_ATunDeviceItMayNotOpen_SaysWhatIsMissing()
    {
        RootRequirement.SkipUnlessRoot();
        Unprivileged.SkipUnlessNobodyCanRunTheTool();
        var (code, _, stderr) = ToolProcess.RunToExit(["run", "--", "true"], wrapper: AsNobodyWithTun("0600"));
        Assert.True(code == 1, stderr);
        Assert.Contains("/dev/net/tun is not readable and writable", stderr);
        Assert.Contains("sudo", stderr);

        (code, _, stderr) = ToolProcess.RunToExit(["run", "--netns", _runNs, "--", "true"], wrapper: AsNobodyWithTun("0666"));
        Assert.True(code == 1, stderr);
        Assert.Contains("--netns and --no-netns need root", stderr);
    }

    // Rootless run, as pasta: a user namespace of its own, the device made inside and passed out,
    // the command as the caller (nobody here), its traffic relayed by the tool's own sockets in the
    // world namespace, its exit code passed on, nothing left behind.
    [Fact]
    public void Run_WithoutRoot_UserNamespace_RelaysTheCommandsTraffic_AsTheCaller()
    {
        RootRequirement.SkipUnlessRoot();
        Unprivileged.SkipUnlessNobodyCanRunTheTool();
        // The tool relays ping with unprivileged ICMP sockets in the world namespace, as nobody.
        world.Ns!.Run("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647");
        var (code, stdout, stderr) = ToolProcess.RunToExit(["run", "--dns", "--",
            "sh", "-c", $"id -u; grep -c 192.168.0.2 /etc/resolv.conf; ping -c1 -W5 -q {ForwardWorld.Server4} >/dev/null && echo pinged; curl -sS -m 20 http://{ForwardWorld.Server4}:8080/small.txt; curl -sS -m 20 -g 'http://[{ForwardWorld.Server6}]:8080/small.txt'; exit 5"],
            wrapper: AsNobodyWithTun("0666"));
        Assert.True(code == 5, $"exit {code}\n{stdout}\n{stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(["65534", "1", "pinged", "hello from the world namespace", "hello from the world namespace"], lines);
        Assert.Contains("ready: forwarding namespace", stderr);
        Assert.Contains("Removed TUN device", stderr);
        // The private /etc/resolv.conf was the command's only.
        Assert.DoesNotContain("written by tuntcp", File.ReadAllText("/etc/resolv.conf"));
    }

    [Fact]
    public void Run_WithFaultInjection_StillCompletesTheTransfer()
    {
        RootRequirement.SkipUnlessRoot();
        var (code, stdout, stderr) = ToolProcess.RunToExit(["run", "--netns", _runNs, "--tun", _device, "--delay", "20", "--loss", "2", "--",
            "python3", Client, "upload", ForwardWorld.Server4, "7008", world.MediumFile], wrapper: ["ip", "netns", "exec", world.Ns!.Name]);
        Assert.True(code == 0, stderr);
        Assert.Equal(world.MediumHash, stdout.Trim());
    }

    [Fact]
    public async Task Socks5Upstream_TcpThroughMicrosocks_UdpThroughDante()
    {
        RootRequirement.SkipUnlessRoot();
        var ns = world.Ns!;
        // Debian's microsocks (CONNECT only) on the world's loopback.
        using (var microsocks = ns.Start("microsocks", "-i", "127.0.0.1", "-p", "1080"))
        {
            try
            {
                Assert.True(await Shell.EventuallyAsync(() => ns.Run("ss", "-ltn", "sport = :1080").Output.Contains("1080"), TimeSpan.FromSeconds(10)));
                using var tool = StartForward("--upstream", "socks5://127.0.0.1:1080");
                Assert.Contains("socks5://127.0.0.1:1080", tool.Stdout);
                var file = Path.Combine(world.Directory, $"socks-{Guid.NewGuid():n}");
                try
                {
                    var curl = InApp("curl", "-sS", "-m", "60", "-o", file, $"http://{ForwardWorld.Server4}:8080/big.bin");
                    Assert.True(curl.ExitCode == 0, curl.ToString());
                    Assert.Equal(world.BigHash, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file))));
                }
                finally
                {
                    File.Delete(file);
                }
                // The proxy's "connection refused" (REP 5) is a RST for the application.
                Assert.Equal("ECONNREFUSED", ClientSays("connect", ForwardWorld.Server4, "1"));
                Assert.Equal(0, tool.Stop());
            }
            finally
            {
                if (!microsocks.HasExited) microsocks.Kill(entireProcessTree: true);
                microsocks.WaitForExit(5000);
            }
        }
        // Dante (danted) for UDP ASSOCIATE, which microsocks lacks. Its external address is the
        // server's: Dante connects its relay socket to the target, and the echo's answer must come
        // from the address it was sent to (the world's servers sit on its loopback).
        string config = Path.Combine(world.Directory, $"danted-{Guid.NewGuid():n}.conf");
        File.WriteAllText(config, $$"""
            logoutput: {{config}}.log
            internal: 127.0.0.1 port = 1090
            external: {{ForwardWorld.Server4}}
            socksmethod: none
            clientmethod: none
            user.privileged: root
            user.unprivileged: nobody
            client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
            socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect udpassociate }
            socks pass { from: 0.0.0.0/0 to: 127.0.0.0/8 command: udpreply }
            """);
        using var dante = ns.Start("danted", "-f", config, "-p", config + ".pid");
        try
        {
            Assert.True(await Shell.EventuallyAsync(() => ns.Run("ss", "-ltn", "sport = :1090").Output.Contains("1090"), TimeSpan.FromSeconds(10)));
            using var tool = StartForward("--upstream", "socks5://127.0.0.1:1090");
            Assert.Equal("udp 20/20", ClientSays("udp", ForwardWorld.Server4, "7009", "20"));
            Assert.Equal("echoed 100000", ClientSays("halfclose", ForwardWorld.Server4, "7007"));
            Assert.Equal(0, tool.Stop());
        }
        finally
        {
            if (!dante.HasExited) dante.Kill(entireProcessTree: true);
            dante.WaitForExit(5000);
        }
    }

    [Fact]
    public async Task Iperf3_BothDirections()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartForward();
        using var server = world.Ns!.Start("iperf3", "-s", "-1", "-B", ForwardWorld.Server4, "-p", "5201");
        try
        {
            Assert.True(await Shell.EventuallyAsync(() => world.Ns.Run("ss", "-ltn", "sport = :5201").Output.Contains("5201"), TimeSpan.FromSeconds(10)));
            var up = InApp("iperf3", "-c", ForwardWorld.Server4, "-p", "5201", "-t", "2", "-f", "m");
            Assert.True(up.ExitCode == 0, up.ToString());
            Assert.Contains("receiver", up.Output);
        }
        finally
        {
            if (!server.HasExited) server.Kill();
            server.WaitForExit(5000);
        }
        using var server2 = world.Ns.Start("iperf3", "-s", "-1", "-B", ForwardWorld.Server4, "-p", "5202");
        try
        {
            Assert.True(await Shell.EventuallyAsync(() => world.Ns.Run("ss", "-ltn", "sport = :5202").Output.Contains("5202"), TimeSpan.FromSeconds(10)));
            var down = InApp("iperf3", "-c", ForwardWorld.Server4, "-p", "5202", "-t", "2", "-R", "-f", "m");
            Assert.True(down.ExitCode == 0, down.ToString());
            Assert.Contains("receiver", down.Output);
        }
        finally
        {
            if (!server2.HasExited) server2.Kill();
            server2.WaitForExit(5000);
        }
        Assert.Equal(0, tool.Stop());
    }
}
