using System.Diagnostics;
using System.Text.Json;

namespace TunTcp.RealPeer.Tests.Support;

/// <summary>
/// A kernel-side peer: <c>peers/tcp_peer.py SUBCOMMAND</c> (or any command) running inside a
/// test's namespace through <c>ip netns exec</c>, which execs it, so the PID is the peer's own.
/// Its output lines are collected as they come; the script ends with a <c>RESULT {json}</c> line.
/// Dispose kills this PID only, if it is still running.
/// </summary>
internal sealed class KernelPeer : IDisposable
{
    private readonly Process _process;
    private readonly object _lock = new();
    private readonly List<string> _lines = new();
    private bool _outputDone, _errorDone;

    private KernelPeer(Process process, string description)
    {
        _process = process;
        Description = description;
    }

    /// <summary>The peer script, copied next to the test assembly.</summary>
    public static string ScriptPath => Path.Combine(AppContext.BaseDirectory, "peers", "tcp_peer.py");

    public string Description { get; }

    public string Output { get { lock (_lock) return string.Join('\n', _lines); } }

    /// <summary>Starts <c>python3 tcp_peer.py ARGS</c> in <paramref name="ns"/>.</summary>
    public static KernelPeer StartScript(TestNamespace ns, params string[] arguments) =>
        Start(ns, ["python3", "-u", ScriptPath, .. arguments]);

    /// <summary>Starts any command in <paramref name="ns"/>.</summary>
    public static KernelPeer Start(TestNamespace ns, params string[] command)
    {
        var start = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])["netns", "exec", ns.Name, .. command]) start.ArgumentList.Add(a);
        var process = new Process { StartInfo = start };
        var peer = new KernelPeer(process, string.Join(' ', command.Select(c => c == ScriptPath ? "tcp_peer.py" : c)));
        process.OutputDataReceived += (_, e) => peer.Add(e.Data, stdout: true);
        process.ErrorDataReceived += (_, e) => peer.Add(e.Data, stdout: false);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return peer;
    }

    /// <summary>Waits (bounded) for an output line containing <paramref name="text"/>; fails the test if it does not come.</summary>
    public void WaitForLine(string text, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        lock (_lock)
        {
            while (!_lines.Any(l => l.Contains(text, StringComparison.Ordinal)))
            {
                var left = timeout - watch.Elapsed;
                if (left <= TimeSpan.Zero || (_outputDone && _errorDone))
                    Assert.Fail($"{Description}: no line containing '{text}' within {timeout.TotalSeconds} s.\n{string.Join('\n', _lines)}");
                Monitor.Wait(_lock, left);
            }
        }
    }

    /// <summary>
    /// Waits (bounded) for the peer to finish and returns its parsed RESULT line; fails the test,
    /// with the peer's whole output, when it does not finish or prints no result.
    /// </summary>
    public PeerResult WaitForResult(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Kill();
            Assert.Fail($"{Description}: still running after {timeout.TotalSeconds} s; killed.\n{Output}");
        }
        _process.WaitForExit(); // drains the asynchronous readers
        var line = _lines.LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        if (line is null) Assert.Fail($"{Description}: exit {_process.ExitCode} without a RESULT line.\n{Output}");
        return new PeerResult(JsonDocument.Parse(line["RESULT ".Length..]).RootElement.Clone(), _process.ExitCode, Output, Description);
    }

    /// <summary>Waits (bounded) for a plain command to finish; returns its exit code.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Kill();
            Assert.Fail($"{Description}: still running after {timeout.TotalSeconds} s; killed.\n{Output}");
        }
        _process.WaitForExit();
        return _process.ExitCode;
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited) _process.Kill();
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Add(string? line, bool stdout)
    {
        lock (_lock)
        {
            if (line is null)
            {
                if (stdout) _outputDone = true; else _errorDone = true;
            }
            else
            {
                _lines.Add(line);
            }
            Monitor.PulseAll(_lock);
        }
    }
}

/// <summary>The RESULT of a peer script run, with its whole output for failure messages.</summary>
internal sealed record PeerResult(JsonElement Json, int ExitCode, string Output, string Description)
{
    public bool Ok => Json.TryGetProperty("ok", out var ok) && ok.GetBoolean();

    public long Long(string name) => Json.GetProperty(name).GetInt64();

    public string? String(string name) => Json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public bool Bool(string name) => Json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

    /// <summary>Fails the test with the peer's output unless it reported ok.</summary>
    public PeerResult AssertOk()
    {
        Assert.True(Ok && ExitCode == 0, $"{Description} failed (exit {ExitCode}):\n{Output}");
        return this;
    }

    public override string ToString() => $"{Description}: exit {ExitCode}\n{Output}";
}
