namespace TunTcp.RealPeer.Tests.Support;

/// <summary>
/// One real-peer scene: a namespace made for the test, a device name unique to it, the kernel
/// on the host side (<see cref="HostAddress"/>) and the stack at <see cref="StackAddress"/>.
/// Runs <c>tuntcp serve</c> or <c>tuntcp connect</c> there and kernel peers beside it; Dispose
/// stops the tool (this PID only) and deletes the namespace, whatever happened.
/// </summary>
internal sealed class PeerSession : IDisposable
{
    public const string HostAddress = "10.77.0.1", StackAddress = "10.77.0.2";
    public const string HostAddress6 = "fd00:7475:77::1", StackAddress6 = "fd00:7475:77::2";

    private readonly bool _ipv6;

    /// <summary>How long any single peer run may take before it counts as a hang.</summary>
    public static readonly TimeSpan PeerBound = TimeSpan.FromSeconds(150);

    private readonly List<IDisposable> _owned = new();

    private PeerSession(TestNamespace ns, bool ipv6)
    {
        Ns = ns;
        _ipv6 = ipv6;
    }

    public TestNamespace Ns { get; }

    public string Device { get; } = TestNamespace.UniqueDeviceName();

    /// <summary>The running <c>tuntcp serve</c>, once <see cref="StartServe"/> was called.</summary>
    public ToolProcess? Serve { get; private set; }

    /// <summary>The tool started last (serve or connect), whose stderr failure messages show.</summary>
    public ToolProcess? Tool { get; private set; }

    /// <summary>A scene whose peers talk to the stack over IPv4, or over IPv6 with <paramref name="ipv6"/>.</summary>
    public static PeerSession Create(bool ipv6 = false) => new(TestNamespace.Create(), ipv6);

    /// <summary>The stack's address the peers use: IPv4, or IPv6 for an IPv6 scene.</summary>
    public string StackTarget => _ipv6 ? StackAddress6 : StackAddress;

    /// <summary>The host side's address <c>connect</c> connects to.</summary>
    public string HostTarget => _ipv6 ? HostAddress6 : HostAddress;

    /// <summary>The options that put the tool on this session's device and addresses.</summary>
    public string[] DeviceArguments => ["--netns", Ns.Name, "--tun", Device, "--host-addr", $"{HostAddress}/24", "--addr", StackAddress,
        "--host-addr6", $"{HostAddress6}/64", "--addr6", StackAddress6];

    /// <summary>Starts <c>tuntcp serve</c> with the default services plus <paramref name="extra"/> and waits for ready.</summary>
    public ToolProcess StartServe(params string[] extra)
    {
        Tool = Serve = Own(ToolProcess.Start(["serve", .. DeviceArguments, .. extra]));
        Serve.WaitForReady();
        return Serve;
    }

    /// <summary>
    /// Starts <c>tuntcp connect HOST PORT</c> with stdin read from <paramref name="stdinPath"/> and
    /// stdout written to <paramref name="stdoutPath"/> (a shell redirects, then execs the tool, so
    /// the PID stays the tool's).
    /// </summary>
    public ToolProcess StartConnect(int port, string stdinPath, string stdoutPath, params string[] extra) =>
        Tool = Own(ToolProcess.Start(
            ["connect", .. DeviceArguments, .. extra, HostTarget, port.ToString()],
            wrapper: ["sh", "-c", "exec \"$0\" \"$@\" <\"$TT_STDIN\" >\"$TT_STDOUT\""],
            environment: new Dictionary<string, string> { ["TT_STDIN"] = stdinPath, ["TT_STDOUT"] = stdoutPath }));

    /// <summary>Starts the peer script against the stack's address.</summary>
    public KernelPeer StartPeer(int port, string command, params string[] arguments) =>
        Own(KernelPeer.StartScript(Ns, ["--host", StackTarget, "--port", port.ToString(), .. TimeoutArguments, command, .. arguments]));

    /// <summary>Runs the peer script to completion and requires it to report ok.</summary>
    public PeerResult RunPeer(int port, string command, params string[] arguments)
    {
        using var peer = KernelPeer.StartScript(Ns, ["--host", StackTarget, "--port", port.ToString(), .. TimeoutArguments, command, .. arguments]);
        var result = peer.WaitForResult(PeerBound);
        Assert.True(result.Ok && result.ExitCode == 0, $"{result}\n--- tuntcp stderr (last lines) ---\n{ToolTail()}");
        return result;
    }

    /// <summary>
    /// Drops <paramref name="percent"/>% of the packets at random in both directions with nftables
    /// in this namespace: on the input hook for packets arriving from the device (stack to
    /// kernel) and on the output hook for packets the kernel sends to it (kernel to stack).
    /// </summary>
    /// <remarks>
    /// Drops on the input hook are real losses of the stack's segments. A drop on the output hook
    /// is reported back to the kernel's TCP as a local send failure (-EPERM), so for the kernel's
    /// data it delays rather than loses: the segment stays queued and goes out later, in order (a
    /// capture of 20 MB with 2% dropped there shows no hole and no retransmission). The output
    /// hook also sees GSO bundles of several segments, not single segments. Pure ACKs dropped there
    /// are lost for good. The stack's own injector (<c>--loss in:N</c>) makes true losses of the
    /// kernel's data.
    /// </remarks>
    public void DropAtRandom(int percent)
    {
        string rules = $$"""
            table inet tuntcp_test_loss {
              chain input {
                type filter hook input priority 0; policy accept;
                iifname "{{Device}}" numgen random mod 100 < {{percent}} counter drop
              }
              chain output {
                type filter hook output priority 0; policy accept;
                oifname "{{Device}}" numgen random mod 100 < {{percent}} counter drop
              }
            }
            """;
        string file = Path.Combine(Path.GetTempPath(), $"{Ns.Name}.nft");
        File.WriteAllText(file, rules);
        try
        {
            var result = Ns.Run("nft", "-f", file);
            Assert.True(result.ExitCode == 0, $"nft -f failed: {result}");
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Packets the nftables rules dropped so far, as (to the stack, from the stack).</summary>
    public (long ToStack, long FromStack) DroppedByNft()
    {
        var list = Ns.Run("nft", "list", "table", "inet", "tuntcp_test_loss");
        Assert.True(list.ExitCode == 0, list.ToString());
        long Count(string hook)
        {
            var m = System.Text.RegularExpressions.Regex.Match(list.Output, $@"chain {hook} \{{[^}}]*counter packets (\d+)");
            return m.Success ? long.Parse(m.Groups[1].Value) : -1;
        }
        return (Count("output"), Count("input"));
    }

    /// <summary>Waits (bounded) for the serve log to show a line containing every one of <paramref name="parts"/>.</summary>
    public string WaitForServeLog(TimeSpan timeout, params string[] parts)
    {
        var serve = Serve ?? throw new InvalidOperationException("serve is not running");
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var line = serve.Stderr.Split('\n').FirstOrDefault(l => parts.All(p => l.Contains(p, StringComparison.Ordinal)));
            if (line is not null) return line;
            if (DateTime.UtcNow > deadline || serve.HasExited)
                Assert.Fail($"no serve log line with [{string.Join("] [", parts)}] within {timeout.TotalSeconds} s.\n{ToolTail()}");
            Thread.Sleep(25); // polling, bounded by the deadline above
        }
    }

    /// <summary>The last lines the tool wrote on stderr, for failure messages.</summary>
    public string ToolTail(int lines = 40) =>
        Tool is null ? "" : string.Join('\n', Tool.Stderr.Split('\n').TakeLast(lines));

    private static string[] TimeoutArguments => ["--timeout", "30", "--deadline", ((int)PeerBound.TotalSeconds - 10).ToString()];

    private T Own<T>(T disposable) where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    public void Dispose()
    {
        try
        {
            for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        }
        finally
        {
            Ns.Dispose();
        }
    }
}
