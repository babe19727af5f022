namespace TunTcp.RealPeer.Tests.Support;

/// <summary>Running the tool as user nobody, with every capability dropped (setpriv(1)).</summary>
internal static class Unprivileged
{
    /// <summary>A wrapper command that runs what follows as nobody/nogroup with no capabilities.</summary>
    public static readonly string[] Wrapper =
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"];

    /// <summary>Skips the test when nobody cannot run the tool here (e.g. it lies under a private home).</summary>
    public static void SkipUnlessNobodyCanRunTheTool()
    {
        var probe = Shell.Run(Wrapper[0], [.. Wrapper.Skip(1), ToolProcess.ExecutablePath, "--version"]);
        Assert.SkipUnless(probe.ExitCode == 0, $"user nobody cannot run {ToolProcess.ExecutablePath} here ({probe.Error.Trim()})");
    }
}
