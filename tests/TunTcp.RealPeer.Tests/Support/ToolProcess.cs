using System.Diagnostics;
using System.Runtime.InteropServices;

namespace TunTcp.RealPeer.Tests.Support;

/// <summary>
/// The built <c>tuntcp</c> tool (the TunTcp.Cli apphost copied next to the tests) running as a
/// child process, with its output lines collected as they come. Only this PID is ever signalled;
/// Dispose stops it if a test did not (SIGTERM, then SIGKILL), bounded in time.
/// </summary>
internal sealed class ToolProcess : IDisposable
{
    public const int SIGINT = 2, SIGKILL = 9, SIGTERM = 15;
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly object _lock = new();
    private readonly List<string> _stdout = new(), _stderr = new();

    private ToolProcess(Process process) => _process = process;

    public static string ExecutablePath => Path.Combine(AppContext.BaseDirectory, "TunTcp.Cli");

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Starts <c>tuntcp ARGS</c>, optionally through a wrapper (e.g. ip netns exec, setpriv).</summary>
    public static ToolProcess Start(IEnumerable<string> arguments, IEnumerable<string>? wrapper = null, IDictionary<string, string>? environment = null)
    {
        var prefix = wrapper?.ToList() ?? [];
        var start = new ProcessStartInfo(prefix.Count > 0 ? prefix[0] : ExecutablePath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in prefix.Skip(1)) start.ArgumentList.Add(a);
        if (prefix.Count > 0) start.ArgumentList.Add(ExecutablePath);
        foreach (var a in arguments) start.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var (key, value) in environment) start.Environment[key] = value;
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var tool = new ToolProcess(process);
        process.OutputDataReceived += (_, e) => tool.Add(tool._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => tool.Add(tool._stderr, e.Data);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return tool;
    }

    public string Stdout { get { lock (_lock) return string.Join('\n', _stdout); } }
    public string Stderr { get { lock (_lock) return string.Join('\n', _stderr); } }

    public List<string> StdoutLines { get { lock (_lock) return [.. _stdout]; } }

    /// <summary>Waits (bounded) for a line on stdout or stderr containing <paramref name="text"/>; false if the tool exited or time ran out.</summary>
    public bool WaitForLine(string text, TimeSpan timeout, bool stdoutOnly = false)
    {
        var watch = Stopwatch.StartNew();
        lock (_lock)
        {
            while (true)
            {
                if (_stdout.Any(l => l.Contains(text, StringComparison.Ordinal))) return true;
                if (!stdoutOnly && _stderr.Any(l => l.Contains(text, StringComparison.Ordinal))) return true;
                var left = timeout - watch.Elapsed;
                if (left <= TimeSpan.Zero || _exited) return false;
                Monitor.Wait(_lock, left);
            }
        }
    }

    /// <summary>Waits for the "ready" line; fails the test with the tool's output if it does not come.</summary>
    public void WaitForReady()
    {
        if (!WaitForLine("ready", ReadyTimeout))
            Assert.Fail($"tuntcp did not report ready within {ReadyTimeout.TotalSeconds} s (exited: {HasExited}).\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
    }

    /// <summary>Sends a signal to this process only.</summary>
    public void Signal(int signal)
    {
        if (!_process.HasExited) _ = kill(_process.Id, signal);
    }

    /// <summary>Waits (bounded) for exit and for all output to be collected; false on timeout.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) return false;
        _process.WaitForExit(); // flushes the asynchronous output readers
        return true;
    }

    /// <summary>Sends <paramref name="signal"/> and waits for the exit code, failing the test if it does not exit.</summary>
    public int Stop(int signal = SIGINT)
    {
        Signal(signal);
        if (!WaitForExit(ExitTimeout))
            Assert.Fail($"tuntcp did not exit within {ExitTimeout.TotalSeconds} s of signal {signal}.\nstderr:\n{Stderr}");
        return _process.ExitCode;
    }

    /// <summary>Runs the tool to completion (for commands expected to fail fast).</summary>
    public static (int ExitCode, string Stdout, string Stderr) RunToExit(IEnumerable<string> arguments, IEnumerable<string>? wrapper = null, IDictionary<string, string>? environment = null)
    {
        using var tool = Start(arguments, wrapper, environment);
        if (!tool.WaitForExit(ExitTimeout))
            Assert.Fail($"tuntcp did not exit within {ExitTimeout.TotalSeconds} s.\nstderr:\n{tool.Stderr}");
        return (tool.ExitCode, tool.Stdout, tool.Stderr);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                Signal(SIGTERM);
                if (!_process.WaitForExit(ExitTimeout)) Signal(SIGKILL);
                _process.WaitForExit(ExitTimeout);
            }
        }
        finally
        {
            _process.Dispose();
        }
    }

    private bool _exited;

    private void Add(List<string> lines, string? line)
    {
        lock (_lock)
        {
            if (line is null) _exited = true; // end of stream: the process is gone
            else lines.Add(line);
            Monitor.PulseAll(_lock);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
