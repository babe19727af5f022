using System.Diagnostics;

namespace TunTcp.Links;

/// <summary>
/// Named network namespaces as iproute2 keeps them: a namespace "NAME" is the bind mount
/// <c>/run/netns/NAME</c> (ip-netns(8)). Creating and deleting go through the <c>ip</c> binary,
/// which sets up that mount exactly as the rest of the system expects; entering is setns(2).
/// </summary>
public static class NetworkNamespace
{
    /// <summary>Where iproute2 keeps named namespaces (NETNS_RUN_DIR; /var/run links to /run).</summary>
    public const string RunDirectory = "/run/netns";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// True if <paramref name="name"/> is usable as a namespace name: 1..64 characters of
    /// letters, digits, '-', '_' and '.', not starting with '.' (it becomes a file name under
    /// <see cref="RunDirectory"/>, so '/' and ".." must never reach it).
    /// </summary>
    public static bool IsValidName(string? name, out string error)
    {
        error = "";
        if (string.IsNullOrEmpty(name)) error = "the namespace name is empty";
        else if (name.Length > 64) error = $"namespace name '{name}' is longer than 64 characters";
        else if (name[0] == '.' || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            error = $"namespace name '{name}' may only contain letters, digits, '-', '_' and '.', and must not start with '.'";
        return error.Length == 0;
    }

    /// <summary>The bind-mount path of a named namespace.</summary>
    public static string PathOf(string name) => Path.Combine(RunDirectory, name);

    /// <summary>True if the named namespace exists.</summary>
    public static bool Exists(string name) => File.Exists(PathOf(name));

    /// <summary>Creates the named namespace with <c>ip netns add</c>.</summary>
    /// <exception cref="LinkSetupException">It could not be created; the message names the fix.</exception>
    public static void Create(string name)
    {
        if (!IsValidName(name, out var error)) throw new LinkSetupException(error);
        var (exitCode, output) = RunIp("netns", "add", name);
        if (exitCode == 0) return;
        string hint = Privileges.IsRoot ? "" : " " + Privileges.NamespaceHint;
        throw new LinkSetupException($"cannot create network namespace {name}: `ip netns add {name}` failed: {output.Trim()}.{hint}");
    }

    /// <summary>Deletes the named namespace with <c>ip netns delete</c>; returns ip's complaint, or null on success.</summary>
    public static string? Delete(string name)
    {
        if (!IsValidName(name, out var error)) return error;
        try
        {
            var (exitCode, output) = RunIp("netns", "delete", name);
            return exitCode == 0 ? null : output.Trim();
        }
        catch (LinkSetupException e)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// Moves the calling thread into the named namespace with setns(2) and returns a scope that
    /// moves it back when disposed. setns changes only the calling thread (a Linux thread is a
    /// task with its own nsproxy), so everything that must happen inside (opening the TUN clone
    /// device, creating sockets, writing /proc/sys/net) has to run on this thread, synchronously,
    /// before the scope is disposed. Descriptors opened inside keep their namespace afterwards.
    /// </summary>
    /// <exception cref="LinkSetupException">The namespace cannot be entered; the message names the fix.</exception>
    public static IDisposable Enter(string name)
    {
        if (!IsValidName(name, out var error)) throw new LinkSetupException(error);
        // The thread's own namespace, to return to: /proc/thread-self, not /proc/self, because
        // another thread of this process may stand in a different namespace.
        int original = Libc.Open("/proc/thread-self/ns/net", Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (original < 0)
        {
            int errno = Libc.LastErrno;
            throw new LinkSetupException($"cannot open /proc/thread-self/ns/net to remember the current namespace: {Libc.Describe(errno)} (is /proc mounted?)", errno);
        }
        int target = Libc.Open(PathOf(name), Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (target < 0)
        {
            int errno = Libc.LastErrno;
            _ = Libc.Close(original);
            throw new LinkSetupException(errno == Libc.ENOENT
                ? $"network namespace {name} does not exist ({PathOf(name)} is missing)"
                : $"cannot open network namespace {name}: {Libc.Describe(errno)}. {Privileges.NamespaceHint}", errno);
        }
        try
        {
            if (Libc.SetNs(target, Libc.CLONE_NEWNET) != 0)
            {
                int errno = Libc.LastErrno;
                _ = Libc.Close(original);
                throw new LinkSetupException(errno is Libc.EPERM or Libc.EACCES
                    ? $"cannot enter network namespace {name}: {Libc.Describe(errno)}. {Privileges.NamespaceHint}"
                    : $"cannot enter network namespace {name}: {Libc.Describe(errno)}", errno);
            }
        }
        finally
        {
            _ = Libc.Close(target);
        }
        return new ThreadNamespaceScope(original, Environment.CurrentManagedThreadId);
    }

    private static (int ExitCode, string Output) RunIp(params string[] arguments)
    {
        var start = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new LinkSetupException("could not start `ip`");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new LinkSetupException(
                $"the `ip` command (iproute2) is needed to manage network namespaces but could not be started ({e.Message}). Install it (`sudo apt-get install iproute2`) or run with --no-netns.", 0, e);
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(CommandTimeout))
            {
                process.Kill();
                throw new LinkSetupException($"`ip {string.Join(' ', arguments)}` did not finish within {CommandTimeout.TotalSeconds} s");
            }
            return (process.ExitCode, stderr.Result + stdout.Result);
        }
    }

    /// <summary>Returns the thread that entered a namespace to the one it came from.</summary>
    private sealed class ThreadNamespaceScope(int originalFd, int threadId) : IDisposable
    {
        private int _originalFd = originalFd;

        public void Dispose()
        {
            if (_originalFd < 0) return;
            if (Environment.CurrentManagedThreadId != threadId)
                throw new InvalidOperationException("a namespace scope must be left on the thread that entered it (setns(2) is per thread)");
            int result = Libc.SetNs(_originalFd, Libc.CLONE_NEWNET);
            int errno = result == 0 ? 0 : Libc.LastErrno;
            _ = Libc.Close(_originalFd);
            _originalFd = -1;
            if (result != 0)
                throw new InvalidOperationException($"cannot return the thread to its original network namespace: {Libc.Describe(errno)}");
        }
    }
}
