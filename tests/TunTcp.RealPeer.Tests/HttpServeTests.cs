using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using TunTcp.RealPeer.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// Load tests share two cores with everything else; they run alone, after the parallel tests,
/// so a figure they print is not another test's noise.
/// </summary>
[CollectionDefinition(nameof(HttpLoadCollection), DisableParallelization = true)]
public sealed class HttpLoadCollection;

/// <summary>
/// <c>tuntcp serve</c>'s HTTP app (ASP.NET Core on the stack through the Kestrel transport)
/// against kernel-side clients: curl, wrk, nc and Python sockets, each test in a namespace of its
/// own. Every command is bounded in time; the tool must exit cleanly afterwards.
/// </summary>
[Collection(nameof(HttpLoadCollection))]
public sealed class HttpServeTests : IDisposable
{
    private const string HostAddress = "10.78.0.1", StackAddress = "10.78.0.2";
    private static readonly TimeSpan TransferTimeout = TimeSpan.FromSeconds(90);

    private readonly TestNamespace? _ns;
    private readonly string _device = TestNamespace.UniqueDeviceName();
    private readonly string _files;

    public HttpServeTests()
    {
        if (RootRequirement.IsRoot) _ns = TestNamespace.Create();
        _files = Path.Combine(Path.GetTempPath(), $"{_ns?.Name ?? "tt-unused"}-http");
    }

    public void Dispose()
    {
        if (Directory.Exists(_files)) Directory.Delete(_files, recursive: true);
        _ns?.Dispose();
    }

    private TestNamespace Ns => _ns!;

    private ToolProcess StartServe(params string[] extra)
    {
        var tool = ToolProcess.Start(
            ["serve", "--netns", Ns.Name, "--tun", _device, "--host-addr", $"{HostAddress}/24", "--addr", StackAddress, .. extra]);
        tool.WaitForReady();
        return tool;
    }

    private string TempFile(string name)
    {
        Directory.CreateDirectory(_files);
        return Path.Combine(_files, name);
    }

    /// <summary>Runs a client inside the namespace, bounded by <paramref name="timeout"/>.</summary>
    private CommandResult Client(TimeSpan timeout, string fileName, params string[] arguments) =>
        Shell.Run(timeout, "ip", ["netns", "exec", Ns.Name, fileName, .. arguments]);

    private static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);

    [Fact]
    public void GetRoot_Returns200_WithTheStatisticsTables()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        string page = TempFile("page.html");
        var curl = Client(TransferTimeout, "curl", "-sS", "-m", "30", "-o", page, "-w", "%{http_code} %{content_type}", $"http://{StackAddress}/");
        Assert.True(curl.ExitCode == 0, curl.ToString());
        Assert.Equal("200 text/html; charset=utf-8", curl.Output);

        string html = File.ReadAllText(page);
        Assert.Contains("<h2>Connections by state</h2>", html);
        Assert.Contains("<table id=\"states\">", html);
        Assert.Contains("<table id=\"tcp\">", html);
        // The page is rendered while curl's own connection is the only one: ESTABLISHED, 1 of 1.
        Assert.Equal(1, PageValue(html, "Established"));
        Assert.Equal(0, PageValue(html, "TimeWait"));
        Assert.Equal(1, PageValue(html, "total"));
        Assert.Equal(1, PageValue(html, "connections opened"));
        Assert.True(PageValue(html, "segments in") >= 3, "the handshake and the request came in");
        Assert.True(PageValue(html, "listening ports") >= 1);
        Assert.Equal(0, tool.Stop());
    }

    // RFC 4987 3.6: a SYN flood from random sources fills the echo listener's half-open queue
    // (256); the SYN-ACKs to the spoofed sources go into the namespace's kernel, which has no
    // route for them and drops them. Legitimate clients still connect, through SYN cookies, and
    // the statistics page counts them.
    [Fact]
    public void SynFloodFromRandomSources_LegitimateClientsStillConnect_ThroughSynCookies()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        // A bounded flood: 3000 SYNs, one every 100 us, from random IPv4 sources.
        var flood = Client(TimeSpan.FromSeconds(60), "hping3", "-q", "-S", "-p", "7", "--rand-source", "-i", "u100", "-c", "3000", StackAddress);
        Assert.True(flood.ExitCode is 0 or 1, flood.ToString()); // hping3 exits 1 when nothing answered it
        var echo = Client(TransferTimeout, "python3", "-c", $$"""
            import socket
            ok = 0
            for i in range(20):
                s = socket.create_connection(("{{StackAddress}}", 7), timeout=10)
                s.sendall(b"hello %d" % i)
                ok += s.recv(64) == b"hello %d" % i
                s.close()
            print(ok)
            """);
        Assert.True(echo.ExitCode == 0, echo.ToString());
        Assert.Equal("20", echo.Output.Trim());
        string page = TempFile("flood.html");
        var curl = Client(TransferTimeout, "curl", "-sS", "-m", "30", "-o", page, $"http://{StackAddress}/");
        Assert.True(curl.ExitCode == 0, curl.ToString());
        string html = File.ReadAllText(page);
        Report($"SYN flood: {PageValue(html, "SYN cookies sent")} SYN cookies sent, {PageValue(html, "connections from SYN cookies")} connections from cookies, {PageValue(html, "SynReceived")} half-open");
        Assert.True(PageValue(html, "SYN cookies sent") > 0, "no SYN cookie was sent: the flood did not fill the half-open queue");
        Assert.True(PageValue(html, "connections from SYN cookies") >= 20, "the legitimate connections did not come from cookies");
        Assert.True(PageValue(html, "SynReceived") <= 256 + 1, "the half-open queue outgrew its bound");
        Assert.Equal(0, tool.Stop());
    }

    // RFC 5961 3 and 4: a blind attacker floods an established connection's exact 4-tuple with
    // RSTs, SYNs and ACKs at random sequence numbers (hping3 picks a new one per packet). RSTs and
    // SYNs that are not exactly at RCV.NXT get (rate-limited) challenge ACKs, out-of-window ACKs are
    // dropped: the connection survives every flood and still echoes. Then random garbage
    // (well-formed IPv4 headers, random transport bytes) changes nothing either.
    [Fact]
    public async Task RstSynAckAndGarbageFloods_AtAnEstablishedConnection_DoNotKillIt()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        string script = TempFile("survivor.py");
        string port = TempFile("survivor.port");
        string go = TempFile("survivor.go");
        File.WriteAllText(script, $$"""
            import os, socket, time
            s = socket.create_connection(("{{StackAddress}}", 7), timeout=10)
            s.sendall(b"before")
            assert s.recv(64) == b"before"
            open("{{port}}", "w").write(str(s.getsockname()[1]))
            for _ in range(600):                      # up to 60 s for the floods to end
                if os.path.exists("{{go}}"): break
                time.sleep(0.1)
            s.sendall(b"after")
            print(s.recv(64).decode())
            """);
        using var survivor = Ns.Start("python3", script);
        try
        {
            Assert.True(await Shell.EventuallyAsync(() => File.Exists(port) && File.ReadAllText(port).Length > 0, TimeSpan.FromSeconds(20)), "the survivor did not connect");
            string sport = File.ReadAllText(port).Trim();
            foreach (var flag in new[] { "-R", "-S", "-A" })
            {
                // From the survivor's own address and port, to its peer: only the sequence numbers are wrong.
                var flood = Client(TimeSpan.FromSeconds(60), "hping3", "-q", flag, "-a", HostAddress, "-s", sport, "-k", "-p", "7", "-i", "u200", "-c", "2000", StackAddress);
                Assert.True(flood.ExitCode is 0 or 1, flood.ToString());
            }
            var garbage = Client(TimeSpan.FromSeconds(60), "python3", "-c", $$"""
                import os, random, socket, struct
                random.seed(5)
                s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
                for i in range(3000):
                    proto = random.choice([6, 17, 1, 250])
                    body = os.urandom(random.randint(0, 120))
                    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), i, 0, 64, proto, 0,
                                         socket.inet_aton("{{HostAddress}}"), socket.inet_aton("{{StackAddress}}"))
                    s.sendto(header + body, ("{{StackAddress}}", 0))
                """);
            Assert.True(garbage.ExitCode == 0, garbage.ToString());
            File.WriteAllText(go, "");
            Assert.True(survivor.WaitForExit(30_000), "the survivor did not finish");
            Assert.Equal("after", (await survivor.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken)).Trim());
            Assert.Equal(0, survivor.ExitCode);
        }
        finally
        {
            if (!survivor.HasExited) survivor.Kill();
        }
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void GetBytes_TenMillion_IsExactlyTheDocumentedChargenPattern()
    {
        RootRequirement.SkipUnlessRoot();
        const long n = 10_000_000;
        using var tool = StartServe();
        string body = TempFile("bytes");
        var curl = Client(TransferTimeout, "curl", "-sS", "-m", "60", "-o", body, "-w", "%{http_code} %{size_download} %{time_total}", $"http://{StackAddress}/bytes/{n}");
        Assert.True(curl.ExitCode == 0, curl.ToString());
        var fields = curl.Output.Split(' ');
        Assert.Equal($"200 {n}", $"{fields[0]} {fields[1]}");
        Report($"GET /bytes/{n}: {Seconds(fields[2]):F3} s, {n * 8 / Seconds(fields[2]) / 1e6:F0} Mbit/s");
        Assert.Equal(n, new FileInfo(body).Length);
        Assert.Equal(ExpectedPatternSha256(n), Sha256OfFile(body));
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void PostEcho_TenMegabytes_ComesBackIdentical()
    {
        RootRequirement.SkipUnlessRoot();
        const int n = 10_000_000;
        using var tool = StartServe();
        string request = TempFile("request"), response = TempFile("response");
        var body = new byte[n];
        new Random(864).NextBytes(body); // seeded: a failure can be replayed byte for byte
        File.WriteAllBytes(request, body);

        // --data-binary @file: curl reads the answer while it still sends, which /echo needs
        // once the body outgrows the buffers on the way.
        var curl = Client(TransferTimeout, "curl", "-sS", "-m", "60", "--data-binary", $"@{request}",
            "-H", "Content-Type: application/octet-stream", "-o", response,
            "-w", "%{http_code} %{size_upload} %{size_download} %{time_total}", $"http://{StackAddress}/echo");
        Assert.True(curl.ExitCode == 0, curl.ToString());
        var fields = curl.Output.Split(' ');
        Assert.Equal($"200 {n} {n}", string.Join(' ', fields[..3]));
        Report($"POST /echo of {n} bytes: {Seconds(fields[3]):F3} s");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), Sha256OfFile(response));
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void KeepAlive_HundredRequests_ShareOneConnection()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        string page = TempFile("page.html");
        // One curl, 100 URLs (a glob) and then the statistics page: curl keeps the connection
        // alive between them; -w reports per request whether it had to connect.
        var curl = Client(TransferTimeout, "curl", "-sS", "-m", "60", "-w", "%{http_code} %{num_connects} %{local_port}\n",
            "-o", "/dev/null", $"http://{StackAddress}/healthz?i=[1-100]",
            "-o", page, $"http://{StackAddress}/");
        Assert.True(curl.ExitCode == 0, curl.ToString());
        var lines = curl.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).ToList();
        Assert.Equal(101, lines.Count);
        Assert.All(lines, l => Assert.Equal("200", l[0]));
        Assert.Equal(1, lines.Sum(l => int.Parse(l[1], CultureInfo.InvariantCulture)));
        Assert.Single(lines.Select(l => l[2]).Distinct());

        // The stack's side agrees: one connection was ever opened, and it served the page.
        string html = File.ReadAllText(page);
        Assert.Equal(1, PageValue(html, "connections opened"));
        Assert.Equal(1, PageValue(html, "Established"));
        Assert.Equal(0, tool.Stop());
    }

    /// <summary>
    /// Each connection: connect, GET with Connection: close, read to the server's FIN, close. The
    /// server closes first, so the stack keeps every connection in TIME-WAIT. With the port range
    /// narrowed to 100 ports, the kernel reuses each port about 40 times (it picks even ports for
    /// connect) and every SYN lands on a TIME-WAIT connection, which RFC 9293 3.10.7.4 and RFC 6191
    /// let a newer SYN reopen. A refused reopen would cost the client a SYN retransmission (1 s),
    /// which the namespace's TcpExtTCPSynRetrans counter shows.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData("50000 50099")]
    public void ShortConnections_TwoThousandInARow_AllSucceed(string? portRange)
    {
        RootRequirement.SkipUnlessRoot();
        const int count = 2000, boundSeconds = 120;
        if (portRange is not null)
        {
            var sysctl = Ns.Run("sysctl", "-w", $"net.ipv4.ip_local_port_range={portRange}");
            Assert.True(sysctl.ExitCode == 0, sysctl.ToString());
        }
        using var tool = StartServe();
        var python = Client(TimeSpan.FromSeconds(boundSeconds + 30), "python3", "-c", $$"""
            import json, socket, time
            start = time.monotonic(); ok = 0; failures = []; ports = set(); slowest = 0.0; slowest_at = -1
            request = b"GET /healthz HTTP/1.1\r\nHost: tuntcp\r\nConnection: close\r\n\r\n"
            for i in range({{count}}):
                if time.monotonic() - start > {{boundSeconds}}:
                    failures.append((i, "time bound reached")); break
                t = time.monotonic()
                try:
                    with socket.create_connection(("{{StackAddress}}", 80), timeout=10) as s:
                        ports.add(s.getsockname()[1])
                        s.sendall(request)
                        data = b""
                        while chunk := s.recv(4096):
                            data += chunk
                    if data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nok\n"): ok += 1
                    else: failures.append((i, data[:200].decode("latin-1")))
                except OSError as e:
                    failures.append((i, repr(e)))
                if time.monotonic() - t > slowest: slowest, slowest_at = time.monotonic() - t, i
            print(json.dumps({"ok": ok, "failures": failures[:10], "failed": len(failures), "ports": len(ports),
                              "seconds": time.monotonic() - start, "slowest": slowest, "slowest_at": slowest_at}))
            """);
        Assert.True(python.ExitCode == 0, python.ToString());
        var result = JsonDocument.Parse(python.Output).RootElement;
        double seconds = result.GetProperty("seconds").GetDouble();
        int ports = result.GetProperty("ports").GetInt32();
        Report($"{count} sequential connections ({(portRange is null ? "default port range" : $"ports {portRange}")}): "
            + $"{seconds:F2} s, {ports} distinct client ports, slowest {result.GetProperty("slowest").GetDouble() * 1000:F1} ms (connection #{result.GetProperty("slowest_at").GetInt32()})");
        Assert.True(result.GetProperty("failed").GetInt32() == 0, $"failures: {result.GetProperty("failures")}");
        Assert.Equal(count, result.GetProperty("ok").GetInt32());

        // Every SYN was taken at once: none had to be retransmitted by the kernel.
        Assert.Equal(0, KernelCounter("TcpExtTCPSynRetrans"));

        string page = TempFile("page.html");
        var curl = Client(TransferTimeout, "curl", "-sS", "-m", "30", "-o", page, $"http://{StackAddress}/");
        Assert.True(curl.ExitCode == 0, curl.ToString());
        string html = File.ReadAllText(page);
        long opened = PageValue(html, "connections opened"), closed = PageValue(html, "connections closed"), live = PageValue(html, "total");
        Report($"stack: opened {opened}, closed {closed}, live {live} (TIME-WAIT {PageValue(html, "TimeWait")}), resets sent {PageValue(html, "resets sent")}");
        Assert.Equal(count + 1, opened);
        Assert.Equal(opened, closed + live);
        Assert.Equal(0, PageValue(html, "resets sent"));
        if (portRange is not null)
        {
            // Each client port's newest connection may still be in TIME-WAIT; the older ones were reopened.
            Assert.True(ports <= 100, $"{ports} client ports used in a range of 100");
            Assert.True(PageValue(html, "TimeWait") <= ports);
        }
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void Wrk_32ConnectionsFor5Seconds_HasNoSocketErrors_AndOnly2xx()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        var wrk = Client(TimeSpan.FromSeconds(60), "wrk", "-t2", "-c32", "-d5s", $"http://{StackAddress}/healthz");
        Assert.True(wrk.ExitCode == 0, wrk.ToString());
        Report(wrk.Output.Trim());
        // wrk prints these lines only when there are such errors or responses.
        Assert.DoesNotContain("Socket errors", wrk.Output);
        Assert.DoesNotContain("Non-2xx or 3xx responses", wrk.Output);
        var requests = Regex.Match(wrk.Output, @"(\d+) requests in ([\d.]+)s");
        Assert.True(requests.Success, wrk.Output);
        Assert.True(long.Parse(requests.Groups[1].Value, CultureInfo.InvariantCulture) > 0, wrk.Output);
        Assert.Matches(@"Requests/sec:\s+[\d.]+", wrk.Output);
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void Https_CurlInsecure_GetsHealthzAndBytes_OverTheSelfSignedCertificate()
    {
        RootRequirement.SkipUnlessRoot();
        const long n = 1_000_000;
        using var tool = StartServe("--https", "443");
        var healthz = Client(TransferTimeout, "curl", "-sSk", "-m", "30", "-w", "%{http_code} %{scheme} %{ssl_verify_result}", $"https://{StackAddress}/healthz");
        Assert.True(healthz.ExitCode == 0, healthz.ToString());
        // Verification fails with OpenSSL's 18, "self-signed certificate" (-k goes on anyway): TLS
        // really ran, with the certificate serve made at start.
        Assert.Equal("ok\n200 HTTPS 18", healthz.Output);

        string body = TempFile("bytes");
        var bytes = Client(TransferTimeout, "curl", "-sSk", "-m", "60", "-o", body, "-w", "%{http_code} %{size_download}", $"https://{StackAddress}/bytes/{n}");
        Assert.True(bytes.ExitCode == 0, bytes.ToString());
        Assert.Equal($"200 {n}", bytes.Output);
        Assert.Equal(ExpectedPatternSha256(n), Sha256OfFile(body));

        // Without -k the self-signed certificate is refused: curl's exit 60 (peer certificate).
        var strict = Client(TransferTimeout, "curl", "-sS", "-m", "30", "-o", "/dev/null", $"https://{StackAddress}/healthz");
        Assert.Equal(60, strict.ExitCode);
        Assert.Equal(0, tool.Stop());
    }

    [Fact]
    public void HandTypedRequest_OverNc_Gets200()
    {
        RootRequirement.SkipUnlessRoot();
        using var tool = StartServe();
        var nc = Client(TimeSpan.FromSeconds(30), "bash", "-c",
            $@"printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | nc -w 5 {StackAddress} 80");
        Assert.True(nc.ExitCode == 0, nc.ToString());
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", nc.Output);
        Assert.Contains("\r\nContent-Length: 3\r\n", nc.Output);
        Assert.EndsWith("\r\n\r\nok\n", nc.Output);
        Assert.Equal(0, tool.Stop());
    }

    private static double Seconds(string curlTime) => double.Parse(curlTime, CultureInfo.InvariantCulture);

    /// <summary>A number from the statistics page: the cell after the row's name.</summary>
    private static long PageValue(string html, string row)
    {
        var m = Regex.Match(html, $@"<tr><td>{Regex.Escape(row)}</td><td class=""n"">(\d+)</td></tr>");
        Assert.True(m.Success, $"no row '{row}' on the statistics page:\n{html}");
        return long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>A counter of the namespace's kernel TCP (nstat: absolute, zeros too, history untouched).</summary>
    private long KernelCounter(string name)
    {
        var nstat = Ns.Run("nstat", "-asz", name);
        Assert.True(nstat.ExitCode == 0, nstat.ToString());
        var m = Regex.Match(nstat.Output, $@"^{name}\s+(\d+)", RegexOptions.Multiline);
        Assert.True(m.Success, nstat.Output);
        return long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static string Sha256OfFile(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }

    /// <summary>
    /// SHA-256 of the first <paramref name="n"/> bytes of /bytes, from the definition documented on
    /// TunTcpHttpRoutes (RFC 864): line L (from 0) holds 72 characters, column c being printable
    /// ASCII 0x20 + (L + c + 1) mod 95 (so line 0 starts with '!'), then CR LF. Written out here
    /// rather than calling the server's generator, so a bug there cannot hide.
    /// </summary>
    private static string ExpectedPatternSha256(long n)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var line = new byte[74];
        long left = n;
        for (long l = 0; left > 0; l++)
        {
            for (int c = 0; c < 72; c++) line[c] = (byte)(0x20 + (l + c + 1) % 95);
            line[72] = (byte)'\r';
            line[73] = (byte)'\n';
            int take = (int)Math.Min(left, line.Length);
            hash.AppendData(line, 0, take);
            left -= take;
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
