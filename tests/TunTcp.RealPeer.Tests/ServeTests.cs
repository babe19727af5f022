using System.Text.Json;
using TunTcp.RealPeer.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// <c>tuntcp serve</c> against the Linux kernel: the device it sets up, and the stack answering
/// the kernel's ping and TCP connect, inside a namespace each test creates.
/// </summary>
public sealed class ServeTests : IDisposable
{
    private const string HostAddress = "10.77.0.1", StackAddress = "10.77.0.2";
    private readonly TestNamespace? _ns;
    private readonly string _device = TestNamespace.UniqueDeviceName();

    public ServeTests()
    {
        if (RootRequirement.IsRoot) _ns = TestNamespace.Create();
    }

    public void Dispose() => _ns?.Dispose();

    private TestNamespace Ns => _ns!;

    private ToolProcess StartServe(params string[] extra) => ToolProcess.Start(
        ["serve", "--netns", Ns.Name, "--tun", _device, "--host-addr", $"{HostAddress}/24", "--addr", StackAddress, .. extra]);

    /// <summary>dotnet-counters, installed by scripts/install-tools.sh (which test.sh runs).</summary>
    private static string DotnetCounters =>
        Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "artifacts", "tools", "dotnet-counters");

    // tuntcp stats: the live connection list through the owner-only socket, as text and JSON,
    // and the same report from the HTTP app's /stats.json.
    [Fact]
    public async Task Stats_ListsTheLiveConnections_AsTextAndJson_AndTheHttpAppServesThemToo()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        tool.WaitForReady();
        string socket = $"/run/tuntcp/{Ns.Name}.sock";
        Assert.True(File.Exists(socket), $"no {socket}");
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));
        // A connection that stays open while we look.
        using var client = Ns.Start("python3", "-c", $"import socket,time; s=socket.create_connection(('{StackAddress}', 7)); s.sendall(b'x'*5000); s.recv(10); print('up', flush=True); time.sleep(20)");
        try
        {
            Assert.Equal("up", await client.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken));
            var (code, text, error) = ToolProcess.RunToExit(["stats", "--netns", Ns.Name]);
            Assert.True(code == 0, error);
            Assert.Contains($"{StackAddress}:7", text);
            Assert.Contains("Established", text);
            Assert.Contains("bytes_received:5000", text);
            Assert.Contains("totals:", text);

            var (jsonCode, json, jsonError) = ToolProcess.RunToExit(["stats", "--netns", Ns.Name, "--json"]);
            Assert.True(jsonCode == 0, jsonError);
            using var doc = JsonDocument.Parse(json);
            var connection = Assert.Single(doc.RootElement.GetProperty("Connections").EnumerateArray(), c => c.GetProperty("Local").GetString() == $"{StackAddress}:7");
            Assert.Equal("Established", connection.GetProperty("State").GetString());
            Assert.True(connection.GetProperty("SrttMs").GetDouble() > 0);

            var curl = Ns.Run("curl", "-sS", "-m", "10", $"http://{StackAddress}/stats.json");
            Assert.True(curl.ExitCode == 0, curl.ToString());
            using var web = JsonDocument.Parse(curl.Output);
            Assert.Contains(web.RootElement.GetProperty("Connections").EnumerateArray(), c => c.GetProperty("Local").GetString() == $"{StackAddress}:7");
        }
        finally
        {
            if (!client.HasExited) client.Kill();
        }
        Assert.Equal(0, tool.Stop());
        Assert.False(File.Exists(socket), "the socket outlived the tool");
        var (missing, _, missingError) = ToolProcess.RunToExit(["stats", "--netns", Ns.Name]);
        Assert.Equal(1, missing);
        Assert.Contains("no running tuntcp serve or forward", missingError);
    }

    // The TunTcp meter, seen the way a .NET developer looks at a running process.
    [Fact]
    public void DotnetCounters_ShowsTheTunTcpMeter_OfARunningServe()
    {
        RootRequirement.SkipUnlessRoot();
        Assert.SkipUnless(File.Exists(DotnetCounters), $"dotnet-counters is not installed at {DotnetCounters} (scripts/install-tools.sh)");
        using var tool = StartServe();
        tool.WaitForReady();
        string output = Path.Combine(Path.GetTempPath(), $"{Ns.Name}-counters.json");
        try
        {
            // Pings while it collects: dotnet-counters shows a counter as its change per interval.
            using var ping = Ns.Start("ping", "-c", "20", "-i", "0.2", "-W", "5", StackAddress);
            var collect = Shell.Run(TimeSpan.FromSeconds(60), DotnetCounters, "collect", "-p", tool.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--counters", "TunTcp", "--format", "json", "-o", output, "--duration", "00:00:00:04", "--refresh-interval", "1");
            Assert.True(collect.ExitCode == 0, collect.ToString());
            Assert.True(ping.WaitForExit(30_000), "ping did not finish");
            string json = File.ReadAllText(output);
            foreach (var name in new[] { "tuntcp.link.packets", "tuntcp.link.bytes", "tuntcp.tcp.connections.opened", "tuntcp.tcp.segments", "tuntcp.ip.drops" })
                Assert.Contains(name, json);
            // The link counted the pings: some series of tuntcp.link.packets is not zero.
            using var doc = JsonDocument.Parse(json);
            bool moved = doc.RootElement.GetProperty("Events").EnumerateArray()
                .Any(e => e.GetProperty("name").GetString()!.StartsWith("tuntcp.link.packets", StringComparison.Ordinal) && e.GetProperty("value").GetDouble() > 0);
            Assert.True(moved, json.Length > 2000 ? json[..2000] : json);
        }
        finally
        {
            File.Delete(output);
        }
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void Serve_Ipv4Only_CreatesTheDevice_WithAddressMtuUpAndIpv6Off_AndRemovesItOnSigint()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe("--mtu", "1400", "--ipv4-only");
        tool.WaitForReady();
        Assert.True(tool.WaitForLine("ready", TimeSpan.Zero, stdoutOnly: true), "the ready line goes to stdout");

        Assert.Equal("1400", Ns.ReadFile($"/sys/class/net/{_device}/mtu"));
        int flags = Convert.ToInt32(Ns.ReadFile($"/sys/class/net/{_device}/flags"), 16);
        Assert.True((flags & 0x1) != 0, $"IFF_UP not set in flags 0x{flags:x}");
        Assert.Equal("1", Ns.ReadFile($"/proc/sys/net/ipv6/conf/{_device}/disable_ipv6"));
        Assert.Equal("0", Ns.ReadFile($"/proc/sys/net/ipv6/conf/{_device}/accept_ra"));

        var addr = Ns.Run("ip", "-j", "addr", "show", "dev", _device);
        Assert.Equal(0, addr.ExitCode);
        var addresses = JsonDocument.Parse(addr.Output).RootElement[0].GetProperty("addr_info").EnumerateArray().ToList();
        var inet = Assert.Single(addresses, a => a.GetProperty("family").GetString() == "inet");
        Assert.Equal(HostAddress, inet.GetProperty("local").GetString());
        Assert.Equal(24, inet.GetProperty("prefixlen").GetInt32());
        Assert.DoesNotContain(addresses, a => a.GetProperty("family").GetString() == "inet6");
        // The kernel routes the stack's address to the device through the prefix route.
        Assert.Contains($"dev {_device}", Ns.Run("ip", "route", "get", StackAddress).Output);

        Assert.Equal(0, tool.Stop(ToolProcess.SIGINT));
        Assert.False(Ns.HasDevice(_device), "the device must be gone after SIGINT");
        Assert.True(TestNamespace.Exists(Ns.Name), "a namespace the tool did not create must stay");
        Assert.Contains("Removed TUN device", tool.Stderr);
    }

    [Fact]
    public void KernelPing_GetsReplies()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        tool.WaitForReady();
        var ping = Ns.Run("ping", "-c", "3", "-i", "0.2", "-W", "5", StackAddress);
        Assert.True(ping.ExitCode == 0, ping.ToString());
        Assert.Contains("3 received", ping.Output);
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void KernelConnect_ToAClosedPort_IsRefused()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        tool.WaitForReady();
        // A refused connect (RST) fails at once with ECONNREFUSED; a lost SYN would time out instead.
        var python = Ns.Run("python3", "-c", $$"""
            import socket, sys
            try:
                socket.create_connection(("{{StackAddress}}", 81), timeout=10)
                print("connected")
            except ConnectionRefusedError:
                print("refused")
            except OSError as e:
                print("other", e)
            """);
        Assert.Equal("refused", python.Output.Trim());
        var nc = Ns.Run("nc", "-z", "-w", "5", StackAddress, "82");
        Assert.NotEqual(0, nc.ExitCode);
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void Pcap_DecodesInTshark_WithGoodChecksums_AndNothingMalformed()
    {
        RootRequirement.SkipUnlessRoot();
        string pcap = Path.Combine(Path.GetTempPath(), $"{Ns.Name}.pcap");
        try
        {
            using (var tool = StartServe("--pcap", pcap, "--trace"))
            {
                tool.WaitForReady();
                Assert.Equal(0, Ns.Run("ping", "-c", "2", "-i", "0.2", "-W", "5", StackAddress).ExitCode);
                Ns.Run("nc", "-z", "-w", "5", StackAddress, "80");
                Ns.Run("python3", "-c", $"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'hello', ('{StackAddress}', 9))");
                Assert.True(tool.WaitForLine("UDP", ToolProcess.ReadyTimeout), "the tracer shows the UDP datagram");
                Assert.Equal(0, tool.Stop());
                Assert.Contains("echo reply", tool.Stderr); // --trace lines go to stderr
            }

            // pcapng by default (the format tests are in CaptureFormatTests).
            Assert.True(PcapNgReader.TryRead(File.ReadAllBytes(pcap), out var records, out var interfaces, out var error), error);
            Assert.Equal(PcapWriter.LinkTypeRaw, Assert.Single(interfaces).LinkType);
            // 2 requests + 2 replies, SYN + RST, UDP + ICMP port unreachable: at least 8.
            Assert.True(records.Count >= 8, $"only {records.Count} packets captured");

            var tshark = Shell.Run("tshark", "-r", pcap, "-n",
                "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                "-T", "fields", "-E", "separator=|",
                "-e", "frame.number", "-e", "ip.checksum.status", "-e", "tcp.checksum.status",
                "-e", "udp.checksum.status", "-e", "icmp.checksum.status", "-e", "_ws.malformed", "-e", "_ws.col.Protocol");
            Assert.True(tshark.ExitCode == 0, tshark.ToString());
            var lines = tshark.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(records.Count, lines.Length);
            foreach (var line in lines)
            {
                var f = line.Split('|');
                // Checksum status: 1 = good, 0 = bad, 2 = unverified; empty = no such header. An
                // ICMP error quotes the offending datagram, so a field may list several values.
                static bool AllGood(string field) => field.Split(',').All(s => s is "" or "1");
                Assert.True(f[1].Length > 0 && AllGood(f[1]), $"IP header checksum not good: {line}");
                Assert.True(AllGood(f[2]) && AllGood(f[3]), $"TCP/UDP checksum not good: {line}");
                Assert.True(AllGood(f[4]), $"ICMP checksum not good: {line}");
                Assert.True(f[5] == "", $"malformed packet: {line}");
            }
            Assert.Contains(lines, l => l.EndsWith("|ICMP"));
            Assert.Contains(lines, l => l.EndsWith("|TCP"));
        }
        finally
        {
            File.Delete(pcap);
        }
    }
}
