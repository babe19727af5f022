using System.Diagnostics;
using System.Text.Json;
using TunTcp.RealPeer.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// <c>tuntcp serve</c> dual-stack (the default) against the Linux kernel: the IPv6 set-up of the
/// device, ping -6, TCP and HTTP over IPv6, UDP and ICMP echo larger than the MTU in both
/// families (fragmented both ways), IPv6 in the capture, and <c>connect</c> to an IPv6 listener.
/// </summary>
public sealed class DualStackTests : IDisposable
{
    // A unique-local prefix per test class, inside the namespace each test creates.
    private const string HostAddress = "10.78.0.1", StackAddress = "10.78.0.2";
    private const string HostAddress6 = "fd00:7475:78::1", StackAddress6 = "fd00:7475:78::2";
    private readonly TestNamespace? _ns;
    private readonly string _device = TestNamespace.UniqueDeviceName();

    public DualStackTests()
    {
        if (RootRequirement.IsRoot) _ns = TestNamespace.Create();
    }

    public void Dispose() => _ns?.Dispose();

    private TestNamespace Ns => _ns!;

    private string[] DeviceArguments =>
        ["--netns", Ns.Name, "--tun", _device, "--host-addr", $"{HostAddress}/24", "--addr", StackAddress, "--host-addr6", $"{HostAddress6}/64", "--addr6", StackAddress6];

    private ToolProcess StartServe(params string[] extra) => ToolProcess.Start(["serve", .. DeviceArguments, .. extra]);

    [Fact]
    public void Serve_GivesTheHostSideItsIpv6Address_WithoutDadRouterSolicitationsOrRouterAdvertisements()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        tool.WaitForReady();
        Assert.Contains(StackAddress6, tool.Stdout);

        string conf = $"/proc/sys/net/ipv6/conf/{_device}";
        Assert.Equal("0", Ns.ReadFile($"{conf}/disable_ipv6"));
        Assert.Equal("0", Ns.ReadFile($"{conf}/accept_ra"));
        Assert.Equal("0", Ns.ReadFile($"{conf}/router_solicitations"));
        Assert.Equal("0", Ns.ReadFile($"{conf}/accept_dad"));

        var addr = Ns.Run("ip", "-j", "addr", "show", "dev", _device);
        Assert.Equal(0, addr.ExitCode);
        var addresses = JsonDocument.Parse(addr.Output).RootElement[0].GetProperty("addr_info").EnumerateArray().ToList();
        var global = Assert.Single(addresses, a => a.GetProperty("family").GetString() == "inet6" && a.GetProperty("scope").GetString() == "global");
        Assert.Equal(HostAddress6, global.GetProperty("local").GetString());
        Assert.Equal(64, global.GetProperty("prefixlen").GetInt32());
        Assert.True(global.TryGetProperty("nodad", out var nodad) && nodad.GetBoolean(), $"no nodad flag: {global}");
        Assert.Contains($"dev {_device}", Ns.Run("ip", "-6", "route", "get", StackAddress6).Output);
        Assert.Equal(0, tool.Stop());
        Assert.False(Ns.HasDevice(_device));
    }

    [Fact]
    public void KernelPing6_GetsReplies()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        tool.WaitForReady();
        var ping = Ns.Run("ping", "-6", "-c", "3", "-i", "0.2", "-W", "5", StackAddress6);
        Assert.True(ping.ExitCode == 0, ping.ToString());
        Assert.Contains("3 received", ping.Output);
        Assert.Equal(0, tool.Stop());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Ping5000Bytes_IsReassembled_AndAnsweredInFragments(bool v6)
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        tool.WaitForReady();
        var ping = Ns.Run("ping", v6 ? "-6" : "-4", "-c", "3", "-i", "0.2", "-W", "5", "-s", "5000", v6 ? StackAddress6 : StackAddress);
        Assert.True(ping.ExitCode == 0, ping.ToString());
        Assert.Contains("3 received", ping.Output);
        Assert.Contains("5008 bytes from", ping.Output); // 5000 data + the 8-byte ICMP header, whole
        Assert.Equal(0, tool.Stop());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Udp8000Bytes_ToUdpEcho_ComesBackWhole(bool v6)
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        tool.WaitForReady();
        var python = Ns.Run("python3", "-c", $$"""
            import socket
            s = socket.socket(socket.{{(v6 ? "AF_INET6" : "AF_INET")}}, socket.SOCK_DGRAM)
            s.settimeout(10)
            data = bytes((i * 7) & 0xFF for i in range(8000))
            s.sendto(data, ("{{(v6 ? StackAddress6 : StackAddress)}}", 7))
            got, _ = s.recvfrom(65535)
            print("same" if got == data else f"differs: {len(got)} bytes")
            """);
        Assert.True(python.ExitCode == 0, python.ToString());
        Assert.Equal("same", python.Output.Trim());
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void Nc6_ToTheEchoService_GetsItsBytesBack_AndCurl6_GetsThePage()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        tool.WaitForReady();
        var nc = Ns.Run("sh", "-c", $"printf 'hello six\\n' | nc -6 -q 2 -w 5 {StackAddress6} 7");
        Assert.True(nc.ExitCode == 0, nc.ToString());
        Assert.Equal("hello six", nc.Output.Trim());
        Assert.True(tool.WaitForLine($"connection from [{HostAddress6}]:", ToolProcess.ReadyTimeout), tool.Stderr);

        var curl = Ns.Run("curl", "-sS", "-g", "-m", "20", "-o", "/dev/null", "-w", "%{http_code}", $"http://[{StackAddress6}]/");
        Assert.True(curl.ExitCode == 0, curl.ToString());
        Assert.Equal("200", curl.Output);
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void Pcap_WithIpv6_DecodesInTshark_WithGoodChecksums_AndNothingMalformed()
    {
        RootRequirement.SkipUnlessRoot();
        string pcap = Path.Combine(Path.GetTempPath(), $"{Ns.Name}-6.pcap");
        try
        {
            using (var tool = StartServe("--pcap", pcap, "--trace"))
            {
                tool.WaitForReady();
                Assert.Equal(0, Ns.Run("ping", "-6", "-c", "2", "-i", "0.2", "-W", "5", "-s", "3000", StackAddress6).ExitCode);
                Ns.Run("nc", "-6", "-z", "-w", "5", StackAddress6, "80");
                Ns.Run("nc", "-6", "-z", "-w", "5", StackAddress6, "81");
                Ns.Run("python3", "-c", $"import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b'hello', ('{StackAddress6}', 9))");
                Assert.True(tool.WaitForLine("UDP len", ToolProcess.ReadyTimeout), "the tracer shows the UDP datagram");
                Assert.Equal(0, tool.Stop());
                Assert.Contains("ICMPv6 fragment", tool.Stderr); // the tracer names IPv6 fragments
                Assert.Contains("destination unreachable code 4", tool.Stderr); // port unreachable for UDP 9
            }

            var tshark = Shell.Run("tshark", "-r", pcap, "-n", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
                "-T", "fields", "-E", "separator=|",
                "-e", "frame.number", "-e", "ipv6.src", "-e", "tcp.checksum.status", "-e", "udp.checksum.status",
                "-e", "icmpv6.checksum.status", "-e", "_ws.malformed", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info");
            Assert.True(tshark.ExitCode == 0, tshark.ToString());
            var lines = tshark.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            static bool AllGood(string field) => field.Split(',').All(s => s is "" or "1");
            foreach (var line in lines)
            {
                var f = line.Split('|');
                Assert.True(AllGood(f[2]) && AllGood(f[3]), $"TCP/UDP checksum not good: {line}");
                Assert.True(AllGood(f[4]), $"ICMPv6 checksum not good: {line}");
                Assert.True(f[5] == "", $"malformed packet: {line}");
            }
            Assert.Contains(lines, l => l.Contains($"|{StackAddress6}|") && l.Contains("Echo (ping) reply"));
            Assert.Contains(lines, l => l.Contains($"|{StackAddress6}|") && l.Contains("|TCP|"));
        }
        finally
        {
            File.Delete(pcap);
        }
    }

    [Fact]
    public void Connect_ToAnIpv6KernelListener_CopiesItsData()
    {
        RootRequirement.SkipUnlessRoot();
        // The listener ends by itself: one connection, or 20 s.
        using var listener = Ns.Start("python3", "-u", "-c", """
            import socket
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::", 5998)); s.listen(1); s.settimeout(20)
            print("listening", flush=True)
            c, peer = s.accept()
            c.sendall(b"over six\n"); c.shutdown(socket.SHUT_WR)
            print("peer", peer[0], flush=True)
            c.settimeout(10)
            while c.recv(4096): pass
            """);
        try
        {
            Assert.Equal("listening", listener.StandardOutput.ReadLine());
            var (exitCode, stdout, stderr) = ToolProcess.RunToExit(["connect", .. DeviceArguments, HostAddress6, "5998"]);
            Assert.True(exitCode == 0, $"exit {exitCode}: {stderr}");
            Assert.Equal("over six", stdout.Trim());
            Assert.Equal($"peer {StackAddress6}", listener.StandardOutput.ReadLine());
        }
        finally
        {
            if (!listener.WaitForExit(20_000)) listener.Kill();
        }
    }

    /// <summary>
    /// Path MTU discovery against a path the kernel side makes narrow: nftables drops every packet
    /// from the stack longer than 1200 bytes (1300 for IPv6) (a link with a smaller MTU that sends no ICMP of its
    /// own), and a sniffer on the device answers each such packet with fragmentation needed or
    /// packet too big, as the router before that link would. A 2 MB download over HTTP finishes
    /// only if the stack lowers its segments and re-cuts what was in flight.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void IcmpTooBig_FromTheKernelSide_ShrinksOurSegments_AndTheDownloadCompletes(bool v6)
    {
        RootRequirement.SkipUnlessRoot();
        int pathMtu = v6 ? 1300 : 1200; // IPv6 paths carry at least 1280 (RFC 8200 5)
        using var tool = StartServe("--no-offload");
        tool.WaitForReady();
        string rules = $$"""
            table inet tuntcp_test_pmtu {
              chain pre {
                type filter hook prerouting priority -300; policy accept;
                iifname "{{_device}}" meta length > {{pathMtu}} counter drop
              }
            }
            """;
        string file = Path.Combine(Path.GetTempPath(), $"{Ns.Name}-pmtu.nft");
        File.WriteAllText(file, rules);
        try { Assert.Equal(0, Ns.Run("nft", "-f", file).ExitCode); }
        finally { File.Delete(file); }

        // Packet taps see a packet before the prerouting hook drops it: the sniffer answers every
        // oversized packet from the stack (a bounded number, for a bounded time).
        using var process = Ns.Start("python3", "-u", "-c", """
            import socket, struct, sys, time
            dev, stack, v6, mtu = sys.argv[1], sys.argv[2], sys.argv[3] == "6", int(sys.argv[4])
            tap = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(3))
            tap.bind((dev, 0)); tap.settimeout(0.5)
            raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) if v6 else socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            def checksum(b):
                if len(b) % 2: b += b"\0"
                s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xFFFF); s += s >> 16
                return ~s & 0xFFFF
            print("sniffing", flush=True)
            sent, deadline = 0, time.time() + 60
            while time.time() < deadline and sent < 200:
                try: pkt, addr = tap.recvfrom(70000)
                except socket.timeout: continue
                if addr[2] == socket.PACKET_OUTGOING or len(pkt) <= mtu or pkt[0] >> 4 != (6 if v6 else 4): continue
                if v6:
                    raw.sendto(struct.pack("!BBHI", 2, 0, 0, mtu) + pkt[:1232 - 48], (stack, 0))
                else:
                    body = struct.pack("!HH", 0, mtu) + pkt[:548]
                    raw.sendto(struct.pack("!BBH", 3, 4, checksum(struct.pack("!BBH", 3, 4, 0) + body)) + body, (stack, 0))
                sent += 1
                if sent == 1: print("first", len(pkt), flush=True)
            print("sent", sent, flush=True)
            """, _device, v6 ? StackAddress6 : StackAddress, v6 ? "6" : "4", pathMtu.ToString());
        try
        {
            Assert.Equal("sniffing", process.StandardOutput.ReadLine());
            string url = v6 ? $"http://[{StackAddress6}]/bytes/2000000" : $"http://{StackAddress}/bytes/2000000";
            var curl = Ns.Run("curl", "-sS", "-g", "-m", "40", "-o", "/dev/null", "-w", "%{size_download}", url);
            Assert.True(curl.ExitCode == 0, $"{curl}\n--- tuntcp stderr ---\n{tool.Stderr}");
            Assert.Equal("2000000", curl.Output);
            Assert.StartsWith("first", process.StandardOutput.ReadLine());
        }
        finally
        {
            if (!process.HasExited) process.Kill();
            process.WaitForExit(5000);
        }
        Assert.Equal(0, tool.Stop());
    }

    /// <summary>
    /// RFC 3168 with the Linux kernel: our ECN-setup SYN gets an ECE SYN-ACK (Linux's default
    /// tcp_ecn=2 accepts ECN when asked), and our data then goes out ECT(0), as tshark decodes it.
    /// </summary>
    [Fact]
    public void Connect_NegotiatesEcnWithTheKernel_AndSendsDataEct0()
    {
        RootRequirement.SkipUnlessRoot();
        string pcap = Path.Combine(Path.GetTempPath(), $"{Ns.Name}-ecn.pcap");
        string input = Path.Combine(Path.GetTempPath(), $"{Ns.Name}-ecn.in");
        File.WriteAllBytes(input, new byte[20000]);
        using var listener = Ns.Start("python3", "-u", "-c", """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", 5997)); s.listen(1); s.settimeout(20)
            print("listening", flush=True)
            c, _ = s.accept(); c.settimeout(10)
            n = 0
            while True:
                d = c.recv(65536)
                if not d: break
                n += len(d)
            print("received", n, flush=True)
            """);
        try
        {
            Assert.Equal("listening", listener.StandardOutput.ReadLine());
            var (exitCode, _, stderr) = ToolProcess.RunToExit(["connect", .. DeviceArguments, "--pcap", pcap, HostAddress, "5997"],
                wrapper: ["sh", "-c", "exec \"$0\" \"$@\" <\"$TT_STDIN\""], environment: new Dictionary<string, string> { ["TT_STDIN"] = input });
            Assert.True(exitCode == 0, $"exit {exitCode}: {stderr}");
            Assert.Equal("received 20000", listener.StandardOutput.ReadLine());

            var tshark = Shell.Run("tshark", "-r", pcap, "-n", "-Y", "tcp", "-T", "fields", "-E", "separator=|",
                "-e", "ip.src", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack", "-e", "tcp.flags.ece", "-e", "tcp.flags.cwr", "-e", "ip.dsfield.ecn", "-e", "tcp.len");
            Assert.True(tshark.ExitCode == 0, tshark.ToString());
            var rows = tshark.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('|')).ToList();
            static bool On(string f) => f is "1" or "True";
            Assert.Contains(rows, r => r[0] == StackAddress && On(r[1]) && !On(r[2]) && On(r[3]) && On(r[4]) && r[5] == "0"); // our SYN
            Assert.Contains(rows, r => r[0] == HostAddress && On(r[1]) && On(r[2]) && On(r[3]) && !On(r[4]));               // the kernel's SYN-ACK
            var data = rows.Where(r => r[0] == StackAddress && int.TryParse(r[6], out int n) && n > 0).ToList();
            Assert.NotEmpty(data);
            Assert.All(data, r => Assert.Equal("2", r[5])); // ECT(0)
        }
        finally
        {
            if (!listener.WaitForExit(20_000)) listener.Kill();
            File.Delete(pcap);
            File.Delete(input);
        }
    }
}
