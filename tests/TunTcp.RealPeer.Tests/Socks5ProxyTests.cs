using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using TunTcp.Forwarding;
using TunTcp.Links;
using TunTcp.RealPeer.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// <see cref="Socks5Client"/> against real SOCKS5 servers from Debian: microsocks (CONNECT, with
/// and without RFC 1929 authentication; it has no UDP ASSOCIATE) and Dante's danted (CONNECT and
/// UDP ASSOCIATE). Everything runs inside a namespace made for the test, on its loopback: the
/// proxies and the echo servers are started in it, and the client's sockets are created in it by a
/// thread that enters it with setns(2) (<see cref="NetworkNamespace.Enter"/>).
/// </summary>
/// <remarks>
/// What the servers answer (observed with microsocks 1.0.3 and Dante 1.4.2, asserted here): a
/// closed port is REP 5 from both, a destination without a route REP 3, an "unreachable" route
/// REP 4 (microsocks); microsocks answers UDP ASSOCIATE with REP 7 and a wrong password with RFC
/// 1929 STATUS 2.
/// </remarks>
public sealed class Socks5ProxyTests : IDisposable
{
    private const int ProxyPort = 1080, AuthProxyPort = 1081, DantePort = 1090, EchoPort = 7000, UdpEchoPort = 7001, ClosedPort = 9;
    private const string User = "tuntcp", Password = "s3cr3t pass";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly TestNamespace? _ns;
    private readonly List<Peer> _peers = [];
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"tuntcp-socks5-{Guid.NewGuid():n}");
    private readonly CancellationTokenSource _timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

    public Socks5ProxyTests()
    {
        _timeout.CancelAfter(Timeout);
        if (RootRequirement.IsRoot) _ns = TestNamespace.Create();
    }

    public void Dispose()
    {
        try
        {
            foreach (var peer in _peers) peer.Dispose();
        }
        finally
        {
            _ns?.Dispose();
            if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
            _timeout.Dispose();
        }
    }

    private TestNamespace Ns => _ns!;

    private CancellationToken Ct => _timeout.Token;

    private static Socks5Proxy Microsocks => new("127.0.0.1", ProxyPort);

    private static Socks5Proxy AuthMicrosocks => new("127.0.0.1", AuthProxyPort, User, Password);

    private static Socks5Proxy Dante => new("127.0.0.1", DantePort);

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task Connect_ThroughMicrosocks_EchoesBytes(string echoAddress)
    {
        RootRequirement.SkipUnlessRoot();
        await StartMicrosocksAsync();
        await StartTcpEchoAsync();
        using var socket = await InNamespace(() => Socks5Client.ConnectAsync(Microsocks, new IPEndPoint(IPAddress.Parse(echoAddress), EchoPort), Ct));
        await AssertEchoesAsync(socket, 256 * 1024);
    }

    [Fact]
    public async Task Connect_ThroughMicrosocks_WithUserAndPassword_EchoesBytes()
    {
        RootRequirement.SkipUnlessRoot();
        await StartMicrosocksAsync(authenticated: true);
        await StartTcpEchoAsync();
        using var socket = await InNamespace(() => Socks5Client.ConnectAsync(AuthMicrosocks, new IPEndPoint(IPAddress.Loopback, EchoPort), Ct));
        await AssertEchoesAsync(socket, 64 * 1024);
    }

    [Fact]
    public async Task Connect_WrongPassword_IsAccessDenied()
    {
        RootRequirement.SkipUnlessRoot();
        await StartMicrosocksAsync(authenticated: true);
        var e = await FailsAsync(() => Socks5Client.ConnectAsync(AuthMicrosocks with { Password = "wrong" }, new IPEndPoint(IPAddress.Loopback, EchoPort), Ct));
        Assert.Equal(SocketError.AccessDenied, e.SocketErrorCode);
        Assert.Contains("rejected the user name and password (RFC 1929 STATUS 2)", e.Message); // microsocks answers STATUS 2
    }

    [Fact]
    public async Task Connect_WithoutCredentials_ToAProxyThatWantsThem_IsAccessDenied()
    {
        RootRequirement.SkipUnlessRoot();
        await StartMicrosocksAsync(authenticated: true);
        var e = await FailsAsync(() => Socks5Client.ConnectAsync(AuthMicrosocks with { UserName = null, Password = null }, new IPEndPoint(IPAddress.Loopback, EchoPort), Ct));
        Assert.Equal(SocketError.AccessDenied, e.SocketErrorCode);
        Assert.Contains("requires authentication", e.Message);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task Connect_ToAClosedPort_IsConnectionRefused(string address)
    {
        RootRequirement.SkipUnlessRoot();
        await StartMicrosocksAsync();
        var e = await FailsAsync(() => Socks5Client.ConnectAsync(Microsocks, new IPEndPoint(IPAddress.Parse(address), ClosedPort), Ct));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
        Assert.Contains("(REP 5)", e.Message);
    }

    [Fact]
    public async Task Connect_WithoutARoute_IsNetworkUnreachable()
    {
        RootRequirement.SkipUnlessRoot();
        await StartMicrosocksAsync();
        // The namespace has no route but loopback's: connect(2) fails with ENETUNREACH at once, no packet leaves.
        var e = await FailsAsync(() => Socks5Client.ConnectAsync(Microsocks, new IPEndPoint(IPAddress.Parse("10.99.0.1"), 80), Ct));
        Assert.Equal(SocketError.NetworkUnreachable, e.SocketErrorCode);
        Assert.Contains("(REP 3)", e.Message);
    }

    [Fact]
    public async Task Connect_ToAnUnreachableRoute_IsHostUnreachable()
    {
        RootRequirement.SkipUnlessRoot();
        // An "unreachable" route makes connect(2) fail with EHOSTUNREACH (no packet leaves).
        var route = Ns.Run("ip", "route", "add", "unreachable", "10.98.0.0/16");
        Assert.True(route.ExitCode == 0, route.ToString());
        await StartMicrosocksAsync();
        var e = await FailsAsync(() => Socks5Client.ConnectAsync(Microsocks, new IPEndPoint(IPAddress.Parse("10.98.0.1"), 80), Ct));
        Assert.Equal(SocketError.HostUnreachable, e.SocketErrorCode);
        Assert.Contains("(REP 4)", e.Message);
    }

    [Fact]
    public async Task Associate_ThroughMicrosocks_IsNotSupported()
    {
        RootRequirement.SkipUnlessRoot();
        await StartMicrosocksAsync();
        var e = await FailsAsync(() => Socks5Client.AssociateUdpAsync(Microsocks, Ct));
        Assert.Equal(SocketError.OperationNotSupported, e.SocketErrorCode);
        Assert.Contains("command not supported (REP 7)", e.Message);
    }

    [Fact]
    public async Task Connect_ThroughDante_EchoesBytes_AndAClosedPortIsConnectionRefused()
    {
        RootRequirement.SkipUnlessRoot();
        await StartDanteAsync();
        await StartTcpEchoAsync();
        using (var socket = await InNamespace(() => Socks5Client.ConnectAsync(Dante, new IPEndPoint(IPAddress.Loopback, EchoPort), Ct)))
            await AssertEchoesAsync(socket, 64 * 1024);
        var e = await FailsAsync(() => Socks5Client.ConnectAsync(Dante, new IPEndPoint(IPAddress.Loopback, ClosedPort), Ct));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }

    [Fact]
    public async Task Associate_ThroughDante_EchoesDatagrams_AndEndsWhenTheProxyGoes()
    {
        RootRequirement.SkipUnlessRoot();
        var dante = await StartDanteAsync();
        await StartUdpEchoAsync();
        await using var association = await InNamespace(() => Socks5Client.AssociateUdpAsync(Dante, Ct));
        Assert.Equal(IPAddress.Loopback, association.RelayEndPoint.Address);
        Assert.NotEqual(DantePort, association.RelayEndPoint.Port);

        var echo = new IPEndPoint(IPAddress.Loopback, UdpEchoPort);
        var buffer = new byte[65536];
        foreach (int size in (int[])[1, 512, 1400, 8000, 0])
        {
            var payload = RandomNumberGenerator.GetBytes(size);
            await association.SendToAsync(payload, echo, Ct);
            var (length, from) = await association.ReceiveFromAsync(buffer, Ct);
            Assert.Equal(echo, from);
            Assert.Equal(Convert.ToHexString(payload), Convert.ToHexString(buffer, 0, length));
        }
        Assert.Equal(0, association.DroppedDatagrams);

        // RFC 1928 section 7: the association ends with its TCP connection; Dante's exit closes it.
        Assert.False(association.Closed.IsCompleted);
        dante.Stop();
        await association.Closed.WaitAsync(Ct);
        var e = await Assert.ThrowsAsync<SocketException>(() => association.ReceiveFromAsync(buffer, Ct).AsTask());
        Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
    }

    // ---- helpers ----

    /// <summary>
    /// Starts <paramref name="start"/> on a thread that stands in the test's namespace, so the
    /// sockets it creates before its first wait (all of them, for an IP-literal proxy) belong there.
    /// </summary>
    private async Task<T> InNamespace<T>(Func<Task<T>> start)
    {
        Task<T>? task = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using (NetworkNamespace.Enter(Ns.Name)) task = start();
            }
            catch (Exception e)
            {
                error = e;
            }
        }) { IsBackground = true, Name = "socks5 test in " + Ns.Name };
        thread.Start();
        Assert.True(thread.Join(Timeout), "the thread in the namespace did not finish");
        if (error is not null) ExceptionDispatchInfo.Throw(error);
        return await task!.WaitAsync(Ct);
    }

    private async Task<SocketException> FailsAsync<T>(Func<Task<T>> start) where T : IDisposable
    {
        try
        {
            using var unexpected = await InNamespace(start);
        }
        catch (SocketException e)
        {
            return e;
        }
        Assert.Fail("the proxy accepted what it should have refused");
        return null!;
    }

    /// <summary>
    /// Sends <paramref name="size"/> random bytes and reads them back. The sending side is not
    /// half-closed: microsocks ends both directions as soon as one side reaches end of stream,
    /// which would drop what the echo still has in flight.
    /// </summary>
    private async Task AssertEchoesAsync(Socket socket, int size)
    {
        var data = RandomNumberGenerator.GetBytes(size);
        var send = Task.Run(async () => await socket.SendAsync(data, SocketFlags.None, Ct), Ct);
        var received = new byte[size];
        int read = 0;
        while (read < size)
        {
            int n = await socket.ReceiveAsync(received.AsMemory(read), SocketFlags.None, Ct);
            Assert.True(n > 0, $"the connection closed after {read} of {size} echoed bytes");
            read += n;
        }
        Assert.Equal(size, await send);
        Assert.True(data.AsSpan().SequenceEqual(received), "the echo differs from what was sent");
    }

    private Task StartMicrosocksAsync(bool authenticated = false) => authenticated
        ? StartPeerAsync("tcp", AuthProxyPort, "microsocks", "-i", "127.0.0.1", "-p", $"{AuthProxyPort}", "-u", User, "-P", Password)
        : StartPeerAsync("tcp", ProxyPort, "microsocks", "-i", "127.0.0.1", "-p", $"{ProxyPort}");

    /// <summary>A TCP echo server on 127.0.0.1 and ::1 (socat, one child per connection).</summary>
    private async Task StartTcpEchoAsync()
    {
        await StartPeerAsync("tcp", EchoPort, "socat", $"TCP4-LISTEN:{EchoPort},bind=127.0.0.1,reuseaddr,fork", "PIPE");
        await StartPeerAsync("tcp", EchoPort, listeners: 2, "socat", [$"TCP6-LISTEN:{EchoPort},bind=[::1],reuseaddr,fork", "PIPE"]);
    }

    /// <summary>A UDP echo server on 127.0.0.1 that ends by itself after 30 s without a datagram.</summary>
    private Task StartUdpEchoAsync() => StartPeerAsync("udp", UdpEchoPort, "python3", "-u", "-c", $$"""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", {{UdpEchoPort}})); s.settimeout(30)
        while True:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)
        """);

    /// <summary>Dante with no authentication, inside and outside on 127.0.0.1, CONNECT and UDP allowed, logging to a file.</summary>
    private Task<Peer> StartDanteAsync()
    {
        Directory.CreateDirectory(_directory);
        string config = Path.Combine(_directory, "danted.conf");
        File.WriteAllText(config, $$"""
            logoutput: {{Path.Combine(_directory, "danted.log")}}
            internal: 127.0.0.1 port = {{DantePort}}
            external: 127.0.0.1
            socksmethod: none
            clientmethod: none
            user.privileged: root
            user.unprivileged: nobody
            client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
            socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect udpassociate udpreply }
            """);
        return StartPeerAsync("tcp", DantePort, "danted", "-f", config, "-p", Path.Combine(_directory, "danted.pid"));
    }

    /// <summary>Starts a program in the namespace and waits (bounded) until one socket listens on the port.</summary>
    private Task<Peer> StartPeerAsync(string protocol, int port, string fileName, params string[] arguments) =>
        StartPeerAsync(protocol, port, 1, fileName, arguments);

    /// <summary>Starts a program in the namespace and waits (bounded) until <paramref name="listeners"/> sockets listen on the port.</summary>
    private async Task<Peer> StartPeerAsync(string protocol, int port, int listeners, string fileName, string[] arguments)
    {
        var peer = new Peer(Ns.Start(fileName, arguments), fileName);
        _peers.Add(peer);
        string flags = protocol == "tcp" ? "-Hltn" : "-Hlun";
        bool ready = await Shell.EventuallyAsync(
            () => peer.HasExited || Ns.Run("ss", flags, $"sport = :{port}").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length >= listeners,
            Timeout);
        if (!ready || peer.HasExited)
            Assert.Fail($"{fileName} did not listen on {protocol} port {port} in {Ns.Name} (exited: {peer.HasExited}):\n{peer.Output}");
        return peer;
    }

    /// <summary>
    /// A program the test started. Stopping it signals its own PID and the PIDs of the children it
    /// forked (Dante's session processes, socat's per-connection children), read from /proc before
    /// the first signal: SIGTERM, then SIGKILL for any still there, each wait bounded.
    /// </summary>
    private sealed class Peer : IDisposable
    {
        private const int SIGTERM = 15, SIGKILL = 9;
        private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(10);
        private readonly Process _process;
        private readonly StringBuilder _output = new();

        public Peer(Process process, string name)
        {
            _process = process;
            Name = name;
            // Drained as it comes, so a chatty peer never blocks on a full pipe.
            process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
            process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public string Name { get; }

        public bool HasExited => _process.HasExited;

        public string Output { get { lock (_output) return _output.ToString(); } }

        public void Stop()
        {
            var children = _process.HasExited ? [] : Descendants(_process.Id);
            if (!_process.HasExited)
            {
                _ = kill(_process.Id, SIGTERM);
                if (!_process.WaitForExit(ExitTimeout))
                {
                    _process.Kill();
                    _process.WaitForExit(ExitTimeout);
                }
            }
            // The children, by the PIDs read above (still ours: reparented to init, not reused in these seconds).
            var alive = children.Where(pid => IsAlive(pid)).ToList();
            foreach (int pid in alive) _ = kill(pid, SIGTERM);
            var watch = Stopwatch.StartNew();
            while (alive.Any(IsAlive) && watch.Elapsed < ExitTimeout) Thread.Sleep(20);
            foreach (int pid in alive.Where(IsAlive)) _ = kill(pid, SIGKILL);
        }

        private static List<int> Descendants(int pid)
        {
            var found = new List<int>();
            try
            {
                foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
                    foreach (var child in File.ReadAllText(Path.Combine(task, "children")).Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    {
                        int childPid = int.Parse(child, System.Globalization.CultureInfo.InvariantCulture);
                        found.Add(childPid);
                        found.AddRange(Descendants(childPid));
                    }
            }
            catch (IOException) { } // it exited meanwhile
            catch (UnauthorizedAccessException) { }
            return found;
        }

        private static bool IsAlive(int pid)
        {
            try
            {
                return !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal); // a zombie is gone already
            }
            catch (IOException)
            {
                return false;
            }
        }

        public void Dispose()
        {
            try
            {
                Stop();
            }
            finally
            {
                _process.Dispose();
            }
        }

        [DllImport("libc", SetLastError = true)]
        private static extern int kill(int pid, int signal);
    }
}
