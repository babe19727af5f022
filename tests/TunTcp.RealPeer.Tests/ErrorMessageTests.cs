using TunTcp.RealPeer.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary>Failures the user can fix print one message that names the fix, exit non-zero, and leave nothing behind.</summary>
public sealed class ErrorMessageTests : IDisposable
{
    private readonly TestNamespace? _ns;
    private readonly string _device = TestNamespace.UniqueDeviceName();
    private readonly List<string> _toolNamespaces = new();

    public ErrorMessageTests()
    {
        if (RootRequirement.IsRoot) _ns = TestNamespace.Create();
    }

    public void Dispose()
    {
        foreach (var name in _toolNamespaces) TestNamespace.DeleteIfExists(name);
        _ns?.Dispose();
    }

    private TestNamespace Ns => _ns!;

    [Fact]
    public void MissingTunDriver_NamesModprobe_AndRemovesTheNamespaceItCreated()
    {
        RootRequirement.SkipUnlessRoot();
        string ns = TestNamespace.UniqueName();
        _toolNamespaces.Add(ns);
        var (exitCode, _, stderr) = ToolProcess.RunToExit(["serve", "--netns", ns, "--tun", _device],
            environment: new Dictionary<string, string> { ["TUNTCP_TUN_PATH"] = "/nonexistent/net/tun" });
        Assert.Equal(1, exitCode);
        Assert.Contains("modprobe tun", stderr);
        Assert.Contains("/nonexistent/net/tun does not exist", stderr);
        Assert.False(TestNamespace.Exists(ns), "a failed set-up must undo what it did");
    }

    [Fact]
    public void DeviceNameInUse_SaysSo()
    {
        RootRequirement.SkipUnlessRoot();
        using var first = ToolProcess.Start(["dump", "--netns", Ns.Name, "--tun", _device]);
        first.WaitForReady();
        var (exitCode, _, stderr) = ToolProcess.RunToExit(["dump", "--netns", Ns.Name, "--tun", _device]);
        Assert.Equal(1, exitCode);
        Assert.Contains($"device name {_device} is in use", stderr);
        Assert.Contains("--tun", stderr);
        Assert.False(first.HasExited);
        Assert.Equal(0, first.Stop());
    }

    [Fact]
    public void NameOfANonTunDevice_SaysSo()
    {
        RootRequirement.SkipUnlessRoot();
        var (exitCode, _, stderr) = ToolProcess.RunToExit(["dump", "--netns", Ns.Name, "--tun", "lo"]);
        Assert.Equal(1, exitCode);
        Assert.Contains("already exists and is not a single-queue TUN device", stderr);
    }

    [Fact]
    public void NotRoot_NamesSetcapAndSudo()
    {
        RootRequirement.SkipUnlessRoot();
        Unprivileged.SkipUnlessNobodyCanRunTheTool();
        // Inside the test namespace, then without privileges: even if the drop failed, nothing
        // could be created outside a namespace this test owns.
        var (exitCode, _, stderr) = ToolProcess.RunToExit(["dump", "--no-netns", "--tun", _device],
            wrapper: ["ip", "netns", "exec", Ns.Name, .. Unprivileged.Wrapper]);
        Assert.Equal(1, exitCode);
        Assert.Contains("sudo setcap cap_net_admin=+ep", stderr);
        Assert.Contains("run as root", stderr);
        Assert.False(Ns.HasDevice(_device));
    }

    [Fact]
    public void NotRoot_WithANamespace_SaysNamespacesNeedRoot()
    {
        RootRequirement.SkipUnlessRoot();
        Unprivileged.SkipUnlessNobodyCanRunTheTool();
        string ns = TestNamespace.UniqueName();
        _toolNamespaces.Add(ns);
        var (exitCode, _, stderr) = ToolProcess.RunToExit(["dump", "--netns", ns, "--tun", _device],
            wrapper: ["ip", "netns", "exec", Ns.Name, .. Unprivileged.Wrapper]);
        Assert.Equal(1, exitCode);
        Assert.Contains($"cannot create network namespace {ns}", stderr);
        Assert.Contains("--no-netns", stderr);
        Assert.False(TestNamespace.Exists(ns));
    }

    [Fact]
    public void BadOption_IsAUsageError_BeforeAnythingIsCreated()
    {
        RootRequirement.SkipUnlessRoot();
        string ns = TestNamespace.UniqueName();
        _toolNamespaces.Add(ns);
        var (exitCode, _, stderr) = ToolProcess.RunToExit(["serve", "--netns", ns, "--tun", _device, "--mtu", "40"]);
        Assert.Equal(2, exitCode);
        Assert.Contains("--mtu: 40 is out of range", stderr);
        Assert.False(TestNamespace.Exists(ns));
    }
}
