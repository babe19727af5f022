using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using TunTcp.Links;

namespace TunTcp.Cli;

/// <summary>
/// <c>tuntcp run</c> without root, the way pasta does it: the tool stays in its own network
/// namespace (its upstream sockets are the user's ordinary sockets) and starts a helper, itself,
/// under <c>unshare --user --map-root-user --net --mount</c>. The helper is root only inside the
/// new user namespace: it sets the TUN device up there (addresses, routes, IPv6 settings, the same
/// code as the root path), passes the descriptor back over a Unix socket (SCM_RIGHTS), bind-mounts
/// the DNS relay's resolv.conf over /etc/resolv.conf in its private mount namespace when
/// <c>--dns</c>, waits for the tool's "go" (the stack is running), and runs the command in a
/// nested user namespace that maps the caller's own uid and gid (so <c>id</c> shows them, and the
/// command has no capabilities). The helper exits with the command's exit code; when the tool's
/// end of the socket closes, the helper ends the command.
/// </summary>
/// <remarks>
/// A helper process is needed because unshare(2) of a user namespace requires a single-threaded
/// process, which a .NET process never is; the helper is a fresh process that unshare(1) started
/// inside the namespaces.
/// </remarks>
internal sealed class RootlessRun : IDisposable
{
    /// <summary>The hidden first argument that makes the tool the helper.</summary>
    public const string HelperVerb = "__rootless-helper";

    private static readonly TimeSpan SetUpBound = TimeSpan.FromSeconds(30);

    private readonly string _directory;
    private readonly Socket _listener;
    private readonly Process _helper;
    private Socket? _connection;

    private RootlessRun(string directory, Socket listener, Process helper)
    {
        _directory = directory;
        _listener = listener;
        _helper = helper;
    }

    /// <summary>The helper (the command's parent inside the namespaces); it exits with the command's code.</summary>
    public Process Helper => _helper;

    /// <summary>
    /// What keeps a user namespace from working here, as precisely as the machine tells; null when
    /// nothing visible does (unshare may still fail, and then says why).
    /// </summary>
    public static string? Problem()
    {
        static string? Read(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        var problems = new List<string>();
        if (Read("/proc/sys/user/max_user_namespaces") == "0")
            problems.Add("user namespaces are off (sysctl user.max_user_namespaces=0; an administrator can raise it)");
        if (Read("/proc/sys/kernel/unprivileged_userns_clone") == "0")
            problems.Add("unprivileged user namespaces are off (sysctl kernel.unprivileged_userns_clone=0; an administrator can set it to 1)");
        if (Read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1")
            problems.Add("AppArmor restricts unprivileged user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns=1)");
        if (!File.Exists("/dev/net/tun"))
            problems.Add("there is no /dev/net/tun (the tun module is not loaded)");
        else if (access("/dev/net/tun", 6 /* R_OK | W_OK */) != 0)
            problems.Add("/dev/net/tun is not readable and writable by this user (its usual mode is 0666: `sudo chmod 0666 /dev/net/tun`)");
        if (FindInPath("unshare") is null)
            problems.Add("unshare(1) from util-linux is not installed");
        return problems.Count == 0 ? null
            : $"run without root needs an unprivileged user namespace and a TUN device it may open, and {string.Join("; ", problems)}. Or run it with sudo (the command still runs as you, SUDO_UID/SUDO_GID)";
    }

    /// <summary>
    /// Starts the helper in new user, network and mount namespaces and takes over the TUN device it
    /// set up as <paramref name="settings"/> say.
    /// </summary>
    /// <exception cref="LinkSetupException">The helper could not set up; the message says why.</exception>
    public static (RootlessRun Run, TunInterface Interface) Start(ToolSettings settings, ILoggerFactory loggers)
    {
        var directory = Directory.CreateTempSubdirectory("tuntcp-run-").FullName;  // mode 0700
        string socketPath = Path.Combine(directory, "helper.sock");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        Process? helper = null;
        RootlessRun? run = null;
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            listener.Listen(1);
            var start = new ProcessStartInfo("unshare") { UseShellExecute = false };
            foreach (var a in (string[])["--user", "--map-root-user", "--net", "--mount", "--"]) start.ArgumentList.Add(a);
            foreach (var a in SelfCommand()) start.ArgumentList.Add(a);
            start.ArgumentList.Add(HelperVerb);
            start.ArgumentList.Add(socketPath);
            start.ArgumentList.Add("--");
            foreach (var a in Environment.GetCommandLineArgs().Skip(1)) start.ArgumentList.Add(a);
            try
            {
                helper = Process.Start(start)!;
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new LinkSetupException($"cannot start unshare(1) for the user namespace: {e.Message}");
            }
            run = new RootlessRun(directory, listener, helper);

            var accepted = listener.AcceptAsync();
            int first = Task.WaitAny([accepted, helper.WaitForExitAsync()], SetUpBound);
            if (first != 0)
            {
                string why = first == 1 ? $"exited with code {helper.ExitCode}" : $"did not answer within {SetUpBound.TotalSeconds:0} s";
                throw new LinkSetupException($"the user namespace helper {why} before it set up the device (unshare's or its own message is above)"
                    + (Problem() is { } problem ? $"; {problem}" : ""));
            }
            run._connection = accepted.Result;
            run._connection.ReceiveTimeout = (int)SetUpBound.TotalMilliseconds;

            Span<byte> buffer = stackalloc byte[4096];
            int length = DescriptorPassing.Receive(run._connection, buffer, out int fd);
            string reply = Encoding.UTF8.GetString(buffer[..length]).TrimEnd('\n');
            if (reply.StartsWith("error: ", StringComparison.Ordinal))
            {
                if (fd >= 0) _ = Libc.Close(fd);
                throw new LinkSetupException(reply["error: ".Length..]);
            }
            if (fd < 0 || !reply.StartsWith("ok ", StringComparison.Ordinal) || !int.TryParse(reply.AsSpan(3), out int mtu))
            {
                if (fd >= 0) _ = Libc.Close(fd);
                throw new LinkSetupException($"the user namespace helper answered '{reply}' without a device");
            }
            var device = TunDevice.FromDescriptor(fd, mtu, loggers.CreateLogger<TunDevice>());
            var tun = TunInterface.Adopt(settings.Interface with { NetworkNamespace = null }, device, loggers.CreateLogger<TunInterface>());
            return (run, tun);
        }
        catch
        {
            if (run is not null) run.Dispose();
            else
            {
                listener.Dispose();
                try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
            }
            throw;
        }
    }

    /// <summary>Tells the helper that the stack is running: it starts the command.</summary>
    public void Go() => _connection!.Send("go\n"u8);

    /// <summary>
    /// Closes the socket (a helper still running ends its command and exits), waits for the
    /// helper, bounded, kills it if it lingers, and removes the socket's directory.
    /// </summary>
    public void Dispose()
    {
        _connection?.Dispose();
        _listener.Dispose();
        if (!_helper.WaitForExit(TimeSpan.FromSeconds(5)))
        {
            try { _helper.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            _helper.WaitForExit(TimeSpan.FromSeconds(5));
        }
        _helper.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }

    /// <summary>How to start this program again: the apphost, or <c>dotnet tuntcp.dll</c>.</summary>
    private static string[] SelfCommand()
    {
        string path = Environment.ProcessPath ?? throw new LinkSetupException("cannot tell where the tool's executable is, to start its user namespace helper");
        return Path.GetFileNameWithoutExtension(path) == "dotnet"
            ? [path, typeof(RootlessRun).Assembly.Location]
            : [path];
    }

    private static string? FindInPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    // ---- the helper, inside the user, network and mount namespaces ----

    /// <summary>
    /// The helper's main: <c>__rootless-helper SOCKET -- ARGS</c>, ARGS being the tool's own
    /// <c>run</c> command line, parsed again here for the device settings and the command.
    /// </summary>
    public static int HelperMain(string[] args, ToolConsole console)
    {
        if (args.Length < 3 || args[2] != "--")
        {
            console.Error.WriteLine($"tuntcp: error: {HelperVerb} is started by `tuntcp run` without root, not by hand");
            return ToolCommandLine.UsageError;
        }
        // Terminal signals reach the command directly (same process group); the tool decides
        // when the helper ends, by closing the socket.
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => c.Cancel = true);
        using var quit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, c => c.Cancel = true);
        string socketPath = args[1];
        return ToolCommandLine.Build(
            dump: _ => ToolCommandLine.RunFailure,
            serve: _ => ToolCommandLine.RunFailure,
            forward: settings => RunHelper(settings, socketPath, console)).Run(args[3..], console.Out, console.Error);
    }

    private static int RunHelper(ToolSettings settings, string socketPath, ToolConsole console)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        var command = settings.Forward?.Command;
        if (command is null or { Count: 0 })
        {
            socket.Send("error: no command to run\n"u8);
            return ToolCommandLine.RunFailure;
        }
        TunInterface tun;
        try
        {
            // A fresh namespace has only lo, and it is down.
            using (var control = NetDeviceControl.Open()) control.BringUp("lo");
            tun = TunInterface.Open(settings.Interface with { NetworkNamespace = null }, console.LoggerFactory.CreateLogger<TunInterface>());
            if (settings.Forward!.Dns) BindResolvConf(settings, Path.GetDirectoryName(socketPath)!);
            // A new network namespace lets no group open ICMP echo sockets ("1 0"); the command
            // runs unprivileged, so let the caller's group (gid 0 here, the only one mapped: the
            // kernel refuses a range with unmapped ids) open them, and ping works.
            try { File.WriteAllText("/proc/sys/net/ipv4/ping_group_range", "0 0"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                console.LoggerFactory.CreateLogger("tuntcp").LogWarning("ping will not work in the namespace: cannot write net.ipv4.ping_group_range: {Problem}", e.Message);
            }
        }
        catch (LinkSetupException e)
        {
            socket.Send(Encoding.UTF8.GetBytes($"error: {e.Message}\n"));
            return ToolCommandLine.RunFailure;
        }
        DescriptorPassing.Send(socket, tun.Device.FileDescriptor, Encoding.UTF8.GetBytes($"ok {tun.Device.Mtu}\n"));
        // The tool holds the device now; this copy is closed without removing anything.
        tun.Device.Dispose();

        Span<byte> buffer = stackalloc byte[16];
        int length;
        try
        {
            length = socket.Receive(buffer);
        }
        catch (SocketException)
        {
            length = 0;
        }
        if (length == 0 || !buffer[..length].SequenceEqual("go\n"u8)) return ToolCommandLine.RunFailure;

        var (uid, gid) = (OuterId("/proc/self/uid_map"), OuterId("/proc/self/gid_map"));
        var start = new ProcessStartInfo("unshare") { UseShellExecute = false };
        foreach (var a in (string[])["--user", $"--map-user={uid}", $"--map-group={gid}", "--"]) start.ArgumentList.Add(a);
        foreach (var a in command) start.ArgumentList.Add(a);
        using var child = Process.Start(start)!;
        // The tool's end closing (it stopped or was killed) ends the command.
        var watcher = new Thread(() =>
        {
            try
            {
                var rest = new byte[16];
                while (socket.Receive(rest) > 0) { }
            }
            catch (SocketException) { }
            catch (ObjectDisposedException) { return; }
            try { if (!child.HasExited) child.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        }) { IsBackground = true, Name = "tuntcp tool watch" };
        watcher.Start();
        child.WaitForExit();
        return child.ExitCode;
    }

    /// <summary>The id outside that uid 0 here maps to: the caller's own (the single line <c>0 OUTER 1</c> unshare -r writes).</summary>
    private static string OuterId(string map)
    {
        var fields = File.ReadAllText(map).Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 2 && fields[0] == "0" ? fields[1] : throw new LinkSetupException($"{map} does not map 0: not in a user namespace made by unshare -r");
    }

    /// <summary>The DNS relay's resolv.conf bind-mounted over /etc/resolv.conf, in this mount namespace only.</summary>
    private static unsafe void BindResolvConf(ToolSettings settings, string directory)
    {
        string path = Path.Combine(directory, "resolv.conf");
        File.WriteAllText(path, ForwardCommand.ResolvConf(ForwardCommand.Gateways(settings), "visible only inside its namespace"));
        if (Libc.Mount(path, "/etc/resolv.conf", null, Libc.MS_BIND, null) != 0)
            throw new LinkSetupException($"cannot bind-mount the DNS relay's resolv.conf over /etc/resolv.conf: {Libc.Describe(Libc.LastErrno)}");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int access(string path, int mode);
}
