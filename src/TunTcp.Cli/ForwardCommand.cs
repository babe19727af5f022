using System.Diagnostics;
using Microsoft.Extensions.Logging;
using TunTcp.Forwarding;
using TunTcp.Ip;
using TunTcp.Links;
using TunTcp.Wire;

namespace TunTcp.Cli;

/// <summary>
/// <c>tuntcp forward</c> and <c>tuntcp run</c>: the device is set up in the application namespace
/// with routes into it, the stack runs in catch-all mode with a <see cref="FlowForwarder"/>, and
/// the forwarder's upstream sockets live in the namespace the tool itself runs in. <c>run</c>
/// also starts the command in the application namespace and ends with it.
/// </summary>
internal static class ForwardCommand
{
    public static int Run(ToolSettings settings, ToolConsole console)
    {
        var forward = settings.Forward!;
        bool run = forward.Command is not null;
        if (run && !IsEffectiveRoot())
        {
            console.Error.WriteLine($"tuntcp: error: {RootlessProblem()}");
            return ToolCommandLine.RunFailure;
        }
        IUpstream upstream = forward.Upstream == "direct" ? DirectUpstream.Instance : new Socks5Upstream(Socks5Proxy.Parse(forward.Upstream));
        var dnsServers = new List<System.Net.IPEndPoint>();
        if (forward.Dns)
        {
            string conf = File.Exists("/etc/resolv.conf") ? File.ReadAllText("/etc/resolv.conf") : "";
            dnsServers = DnsRelay.ReadResolvConf(conf);
            if (dnsServers.Count == 0)
            {
                console.Error.WriteLine("tuntcp: error: --dns: /etc/resolv.conf names no nameserver to relay queries to");
                return ToolCommandLine.RunFailure;
            }
        }
        var gateways = new List<IpAddress> { settings.StackAddress };
        if (settings.StackAddress6 is { } a6) gateways.Add(a6);
        var options = new ForwarderOptions
        {
            Upstream = upstream,
            DnsAddresses = forward.Dns ? [.. gateways.Select(g => g.ToIPAddress())] : [],
            DnsServers = dnsServers,
            Time = console.Time,
        };
        return DeviceCommand.Run(settings, console, (tun, link, signals) =>
        {
            string ns = tun.Options.NetworkNamespace!;
            var forwarder = new FlowForwarder(options, console.LoggerFactory);
            using var trace = settings.OpenTcpTrace(console.Time);
            using var stack = new NetStack(link, settings.StackOptions(link.Mtu, forwarder, trace), console.Time, console.LoggerFactory);
            forwarder.Attach(stack);
            stack.Start();
            string? resolvConf = forward.Dns ? WriteResolvConf(ns, gateways) : null;
            using var control = ControlSocket.TryOpen(ControlSocket.NameFor(ns, tun.Device.Name), stack, console.LoggerFactory.CreateLogger("tuntcp"));
            try
            {
                string routes = string.Join(", ", forward.Routes.Select(r => $"{r.Network}/{r.PrefixLength}"));
                string dns = forward.Dns ? $"; DNS at {string.Join(" and ", gateways)} relayed to {string.Join(", ", dnsServers)}" : "";
                var ready = $"tuntcp: ready: forwarding namespace {ns} ({routes} via {tun.Device.Name}) to {upstream.Description}{dns}";
                if (run)
                {
                    console.Error.WriteLine(ready);
                    return RunChild(ns, forward.Command!, signals, console);
                }
                console.Out.WriteLine($"{ready}; try `sudo ip netns exec {ns} curl http://ADDRESS/`; stop with Ctrl-C");
                console.Out.Flush();
                int stopped = Task.WaitAny([stack.Completion, Task.Delay(Timeout.Infinite, signals.Token)]);
                if (stopped == 0 && stack.Completion.IsFaulted)
                {
                    console.Error.WriteLine($"tuntcp: error: the stack stopped: {stack.Completion.Exception?.InnerException?.Message}");
                    return ToolCommandLine.RunFailure;
                }
                return 0;
            }
            finally
            {
                forwarder.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
                stack.ShutdownAsync(TimeSpan.FromSeconds(1)).Wait(TimeSpan.FromSeconds(5));
                if (resolvConf is not null) RemoveResolvConf(resolvConf);
            }
        });
    }

    /// <summary>
    /// Runs the command in the namespace through <c>ip netns exec</c>, which also bind-mounts
    /// /etc/netns/NAME/resolv.conf over /etc/resolv.conf for it, as the calling user (sudo's
    /// SUDO_UID/SUDO_GID, through setpriv). Returns its exit code (128 + N when a signal N ended it,
    /// as a shell reports). A Ctrl-C reaches it directly (same process group); the tool then waits
    /// for it, bounded, kills it if it lingers, and exits with 130.
    /// </summary>
    private static int RunChild(string ns, IReadOnlyList<string> command, ShutdownSignals signals, ToolConsole console)
    {
        var start = new ProcessStartInfo("ip") { UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", ns]) start.ArgumentList.Add(a);
        if (Environment.GetEnvironmentVariable("SUDO_UID") is { Length: > 0 } uid && uid != "0"
            && Environment.GetEnvironmentVariable("SUDO_GID") is { Length: > 0 } gid)
        {
            foreach (var a in (string[])["setpriv", $"--reuid={uid}", $"--regid={gid}", "--clear-groups", "--"]) start.ArgumentList.Add(a);
        }
        foreach (var a in command) start.ArgumentList.Add(a);
        Process child;
        try
        {
            child = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            console.Error.WriteLine($"tuntcp: error: cannot start {command[0]}: {e.Message}");
            return ToolCommandLine.RunFailure;
        }
        using (child)
        {
            var exited = child.WaitForExitAsync();
            if (Task.WaitAny([exited, Task.Delay(Timeout.Infinite, signals.Token)]) == 1)
            {
                // Interrupted: the command got the same signal from the terminal; give it a moment.
                if (!child.WaitForExit(TimeSpan.FromSeconds(5)))
                {
                    child.Kill(entireProcessTree: true);
                    child.WaitForExit(TimeSpan.FromSeconds(5));
                }
                return ToolCommandLine.Interrupted;
            }
            child.WaitForExit();
            return child.ExitCode;
        }
    }

    private static bool IsEffectiveRoot() => geteuid() == 0;

    /// <summary>
    /// Why <c>run</c> cannot work without root here, as precisely as the machine tells: rootless
    /// mode needs an unprivileged user namespace (<c>user.max_user_namespaces</c> above 0, and on
    /// Debian kernels <c>kernel.unprivileged_userns_clone=1</c>) and a <c>/dev/net/tun</c> the user
    /// may open; and it is not built yet (the TUN descriptor would be made in the user namespace and
    /// passed back to the tool, as pasta does).
    /// </summary>
    private static string RootlessProblem()
    {
        static string? Read(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        var problems = new List<string>();
        if (Read("/proc/sys/user/max_user_namespaces") == "0")
            problems.Add("user namespaces are off (sysctl user.max_user_namespaces=0)");
        if (Read("/proc/sys/kernel/unprivileged_userns_clone") == "0")
            problems.Add("unprivileged user namespaces are off (sysctl kernel.unprivileged_userns_clone=0)");
        if (File.Exists("/dev/net/tun") && access("/dev/net/tun", 6 /* R_OK | W_OK */) != 0)
            problems.Add("/dev/net/tun is not readable and writable by this user (its mode is usually 0666)");
        string machine = problems.Count == 0 ? "" : $"; besides, on this machine {string.Join(" and ", problems)}";
        return $"run needs root: it creates a network namespace and a TUN device, and rootless mode (a user namespace, as pasta makes) is not built yet{machine}. Run it with sudo: the command itself runs as you (SUDO_UID/SUDO_GID)";
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int access(string path, int mode);

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();

    /// <summary>/etc/netns/NAME/resolv.conf naming the gateway, which <c>ip netns exec</c> shows the namespace's programs as /etc/resolv.conf.</summary>
    private static string WriteResolvConf(string ns, IReadOnlyList<IpAddress> gateways)
    {
        string directory = Path.Combine("/etc/netns", ns);
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, "resolv.conf");
        File.WriteAllText(path, "# written by tuntcp forward --dns; removed when it stops\n" + string.Concat(gateways.Select(g => $"nameserver {g}\n")));
        return path;
    }

    private static void RemoveResolvConf(string path)
    {
        try
        {
            File.Delete(path);
            var directory = Path.GetDirectoryName(path)!;
            if (Directory.Exists(directory) && !Directory.EnumerateFileSystemEntries(directory).Any()) Directory.Delete(directory);
        }
        catch (IOException)
        {
        }
    }
}
