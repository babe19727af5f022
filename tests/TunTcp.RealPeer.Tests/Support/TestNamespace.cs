namespace TunTcp.RealPeer.Tests.Support;

/// <summary>
/// A network namespace made for one test, named <c>tt-PID-RANDOM</c> so parallel tests and
/// parallel runs never meet, and deleted on Dispose whatever happened. Every TUN device and every
/// packet of a real-peer test stays inside one of these.
/// </summary>
internal sealed class TestNamespace : IDisposable
{
    private TestNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>Creates a namespace with its loopback up.</summary>
    public static TestNamespace Create()
    {
        var ns = new TestNamespace(UniqueName());
        Shell.Check("ip", "netns", "add", ns.Name);
        try
        {
            Shell.Check("ip", "-n", ns.Name, "link", "set", "lo", "up");
        }
        catch
        {
            ns.Dispose();
            throw;
        }
        return ns;
    }

    /// <summary>A fresh namespace name not created yet, for tests where the tool creates it.</summary>
    public static string UniqueName() => $"tt-{Environment.ProcessId}-{Random.Shared.Next(0x100000):x5}";

    /// <summary>A device name unique enough for this run, within IFNAMSIZ.</summary>
    public static string UniqueDeviceName() => $"tt{Random.Shared.Next(0x1000000):x6}";

    public static bool Exists(string name) => File.Exists(Path.Combine("/run/netns", name));

    /// <summary>Deletes a namespace if it exists (for names handed to the tool).</summary>
    public static void DeleteIfExists(string name)
    {
        if (Exists(name)) Shell.Run("ip", "netns", "delete", name);
    }

    public CommandResult Run(string fileName, params string[] arguments) => Shell.InNamespace(Name, fileName, arguments);

    /// <summary>
    /// Starts a program inside the namespace with its standard output and error redirected, for a
    /// peer the test talks to while it runs (a listener, a sniffer). The caller bounds its life.
    /// </summary>
    public System.Diagnostics.Process Start(string fileName, params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", Name, fileName, .. arguments]) start.ArgumentList.Add(a);
        return System.Diagnostics.Process.Start(start)!;
    }

    /// <summary>True if a device of that name exists in this namespace.</summary>
    public bool HasDevice(string device) => Shell.Run("ip", "-n", Name, "link", "show", "dev", device).ExitCode == 0;

    /// <summary>Reads a file as seen inside the namespace (ip netns exec remounts /sys for it).</summary>
    public string ReadFile(string path)
    {
        var result = Run("cat", path);
        if (result.ExitCode != 0) throw new InvalidOperationException($"cannot read {path} in {Name}: {result}");
        return result.Output.Trim();
    }

    public void Dispose() => DeleteIfExists(Name);
}
