namespace TunTcp.Links;

/// <summary>The wording of the "you lack a privilege" fixes, shared by every set-up step.</summary>
internal static class Privileges
{
    /// <summary>True when running with effective user id 0.</summary>
    public static bool IsRoot => Libc.GetEffectiveUserId() == 0;

    /// <summary>
    /// The path to give <c>setcap</c>: the running executable with symlinks resolved, since
    /// setcap(8) refuses symlinks (run.sh starts the tool through the <c>tuntcp</c> link).
    /// </summary>
    public static string ExecutablePath
    {
        get
        {
            string? path = Environment.ProcessPath;
            if (path is null) return "<path to the tuntcp binary>";
            try { return File.ResolveLinkTarget(path, returnFinalTarget: true)?.FullName ?? path; }
            catch (IOException) { return path; }
        }
    }

    /// <summary>How to get CAP_NET_ADMIN, which creating and configuring a device needs (netdevice(7)).</summary>
    public static string NetAdminHint =>
        $"Creating and configuring a TUN device needs CAP_NET_ADMIN: run as root (sudo), or grant the capability once with `sudo setcap cap_net_admin=+ep {ExecutablePath}`"
        + " and run without a namespace (--no-netns); or let an administrator create a persistent device once"
        + " (`sudo ip tuntap add dev tun0 mode tun user $USER`, then address and link up) and attach to it with --no-netns.";

    /// <summary>How to get the rights that creating or entering a network namespace needs.</summary>
    public static string NamespaceHint =>
        "Creating or entering a network namespace needs root (CAP_SYS_ADMIN, setns(2)): run as root (sudo), or run in the current namespace with --no-netns.";
}
