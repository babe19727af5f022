namespace TunTcp.RealPeer.Tests;

/// <summary>Real-peer tests need root (TUN devices, namespaces); without it they skip with this reason.</summary>
internal static class RootRequirement
{
    public static bool IsRoot => Environment.UserName == "root" || geteuid() == 0;

    public static void SkipUnlessRoot() =>
        Xunit.Assert.SkipUnless(IsRoot, "needs root: creates a network namespace and a TUN device (CI runs as root)");

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();
}
