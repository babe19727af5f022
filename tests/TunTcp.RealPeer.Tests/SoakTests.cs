using System.Globalization;
using TunTcp.RealPeer.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// One minute of bench/soak.sh (issue 12 item 5): bulk both ways, hundreds of echo connections,
/// short connections and a RST flood, under loss and delay. Every part keeps moving in every
/// interval, and afterwards the stack is empty again: no connection and no buffer memory left.
/// No figure is asserted as a speed; the soak's own lines are the report.
/// </summary>
public sealed class SoakTests
{
    private static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "bench", "soak.sh"))) return d.FullName;
        throw new InvalidOperationException("bench/soak.sh not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void Soak_OneMinute_EveryPartKeepsMoving_AndTheStackEndsEmpty()
    {
        RootRequirement.SkipUnlessRoot();
        var result = Shell.Run(TimeSpan.FromMinutes(4), "env", "INTERVAL=10", $"TUNTCP_TOOL={ToolProcess.ExecutablePath}", "ECHOERS=100",
            Path.Combine(RepositoryRoot(), "bench", "soak.sh"), "--minutes", "1");
        TestContext.Current.TestOutputHelper?.WriteLine(result.Output);
        Assert.True(result.ExitCode == 0, result.ToString());
        var rows = result.Output.Split('\n')
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length == 10 && double.TryParse(f[0], CultureInfo.InvariantCulture, out _))
            .ToList();
        Assert.True(rows.Count >= 5, result.Output);
        foreach (var f in rows)
        {
            // t, down Mb/s, up Mb/s, echo/s, short/s, errors, RSS, connections, tcp KiB, retransmissions
            Assert.True(double.Parse(f[1], CultureInfo.InvariantCulture) > 0, $"no download in interval {f[0]}: {result.Output}");
            Assert.True(double.Parse(f[2], CultureInfo.InvariantCulture) > 0, $"no upload in interval {f[0]}: {result.Output}");
            Assert.True(double.Parse(f[3], CultureInfo.InvariantCulture) > 0, $"no echo in interval {f[0]}: {result.Output}");
            Assert.True(double.Parse(f[4], CultureInfo.InvariantCulture) > 0, $"no short connection in interval {f[0]}: {result.Output}");
        }
        var end = result.Output.Split('\n').Single(l => l.StartsWith("end:", StringComparison.Ordinal));
        Assert.Contains("connections 0 ", end);
        Assert.Contains("tcp_memory 0 KiB", end);
    }
}
