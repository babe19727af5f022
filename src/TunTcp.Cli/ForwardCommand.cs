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
        // Without root, run makes its namespace inside a user namespace (RootlessRun), as pasta does.
        bool rootless = run && !Privileges.IsRoot;
        if (rootless && forward.NamespaceChosen)
        {
            console.Error.WriteLine("tuntcp: error: without root, run makes a namespace of its own inside a user namespace; --netns and --no-netns need root (sudo)");
            return ToolCommandLine.RunFailure;
        }
        if (rootless && RootlessRun.Problem() is { } problem)
        {
            console.Error.WriteLine($"tuntcp: error: {problem}");
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
        var gateways = Gateways(settings);
        var options = new ForwarderOptions
        {
            Upstream = upstream,
            DnsAddresses = forward.Dns ? [.. gateways.Select(g => g.ToIPAddress())] : [],
            DnsServers = dnsServers,
            Time = console.Time,
        };
        RootlessRun? helper = null;
        try
        {
            return DeviceCommand.Run(settings, console, (tun, link, signals) => Forward(settings, console, tun, link, signals, options, dnsServers, gateways, helper),
                rootless ? () =>
                {
                    (helper, var tun) = RootlessRun.Start(settings, console.LoggerFactory);
                    return tun;
                } : null);
        }
        finally
        {
            helper?.Dispose();
        }
    }

    private static int Forward(ToolSettings settings, ToolConsole console, TunInterface tun, ILinkDevice link, ShutdownSignals signals,
        ForwarderOptions options, List<System.Net.IPEndPoint> dnsServers, List<IpAddress> gateways, RootlessRun? helper)
    {
        var forward = settings.Forward!;
        bool run = forward.Command is not null;
        // The namespace's name (in the rootless case the label of the one the helper made).
        string ns = settings.Interface.NetworkNamespace!;
        var forwarder = new FlowForwarder(options, console.LoggerFactory);
        using var trace = settings.OpenTcpTrace(console.Time);
        using var stack = new NetStack(link, settings.StackOptions(link.Mtu, forwarder, trace), console.Time, console.LoggerFactory);
        forwarder.Attach(stack);
        stack.Start();
        // Rootless, the helper bind-mounted the namespace's resolv.conf itself.
        string? resolvConf = forward.Dns && helper is null ? WriteResolvConf(ns, gateways) : null;
        using var control = ControlSocket.TryOpen(ControlSocket.NameFor(ns, tun.Device.Name), stack, console.LoggerFactory.CreateLogger("tuntcp"));
        try
        {
            string routes = string.Join(", ", forward.Routes.Select(r => $"{r.Network}/{r.PrefixLength}"));
            string dns = forward.Dns ? $"; DNS at {string.Join(" and ", gateways)} relayed to {string.Join(", ", dnsServers)}" : "";
            var ready = $"tuntcp: ready: forwarding namespace {ns} ({routes} via {tun.Device.Name}) to {options.Upstream.Description}{dns}";
            if (run)
            {
                console.Error.WriteLine(ready);
                if (helper is not null)
                {
                    helper.Go();
                    return WaitForChild(helper.Helper, signals);
                }
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
        using (child) return WaitForChild(child, signals);
    }

    /// <summary>
    /// Waits for the command (or the rootless helper, which exits with the command's code). A
    /// Ctrl-C reaches it directly; then it gets a moment and is killed if it lingers.
    /// </summary>
    private static int WaitForChild(Process child, ShutdownSignals signals)
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

    /// <summary>/etc/netns/NAME/resolv.conf naming the gateway, which <c>ip netns exec</c> shows the namespace's programs as /etc/resolv.conf.</summary>
    private static string WriteResolvConf(string ns, IReadOnlyList<IpAddress> gateways)
    {
        string directory = Path.Combine("/etc/netns", ns);
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, "resolv.conf");
        File.WriteAllText(path, ResolvConf(gateways, "removed when it stops"));
        return path;
    }

    /// <summary>The stack's addresses, the namespace's gateways (and, with --dns, its resolvers).</summary>
    internal static List<IpAddress> Gateways(ToolSettings settings) =>
        settings.StackAddress6 is { } a6 ? [settings.StackAddress, a6] : [settings.StackAddress];

    /// <summary>A resolv.conf naming the gateways as the namespace's nameservers.</summary>
    internal static string ResolvConf(IReadOnlyList<IpAddress> gateways, string lifetime) =>
        $"# written by tuntcp --dns; {lifetime}\n" + string.Concat(gateways.Select(g => $"nameserver {g}\n"));

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
