using TunTcp.Tcp;

namespace TunTcp.Tests.Simulation;

/// <summary>
/// Two flows, one bottleneck (100 Mbit/s, 20 ms RTT, one-BDP tail-drop queue), on virtual
/// time. The second CUBIC flow starts 5 s after the first; goodput is compared over the second
/// half of a 60 s run. (At 50 ms RTT, CUBIC's slower convergence epochs need longer than this.)
/// </summary>
public class FairnessTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Rtt = TimeSpan.FromMilliseconds(20);
    private const long Path = 100_000_000;

    [Fact]
    public void TwoCubicFlows_ConvergeToAFairShare_Rfc9438()
    {
        var b = new SharedBottleneck(Path, Rtt);
        b.Add(() => new CubicCongestionControl(), TimeSpan.Zero);
        b.Add(() => new CubicCongestionControl(), TimeSpan.FromSeconds(5));
        var x = b.Run(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60));
        double jain = SharedBottleneck.JainIndex(x);
        output.WriteLine($"two CUBIC flows: Jain's index {jain:F3}, {x[0] * 8 / 30e6:F1} and {x[1] * 8 / 30e6:F1} Mbit/s");
        Assert.True(jain >= 0.9, $"Jain's index {jain:F3} (flows {x[0]} and {x[1]} bytes)");
        Assert.All(b.Flows, f => Assert.False(f.Corrupt));
        // Together they still fill the path.
        Assert.True((x[0] + x[1]) * 8 / 30.0 >= 0.9 * Path, $"{(x[0] + x[1]) * 8 / 30e6:F1} Mbit/s together");
    }

    [Fact]
    public void NewRenoAndCubic_CoexistWithoutStarvingEither()
    {
        var b = new SharedBottleneck(Path, Rtt);
        b.Add(() => new NewRenoCongestionControl(), TimeSpan.Zero);
        b.Add(() => new CubicCongestionControl(), TimeSpan.Zero);
        var x = b.Run(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(60));
        double total = x[0] + x[1];
        output.WriteLine($"NewReno {x[0] / total:P1}, CUBIC {x[1] / total:P1} of {total * 8 / 30e6:F1} Mbit/s");
        Assert.True(x[0] >= 0.25 * total, $"NewReno got {x[0] / total:P0}");
        Assert.True(x[1] >= 0.25 * total, $"CUBIC got {x[1] / total:P0}");
        Assert.All(b.Flows, f => Assert.False(f.Corrupt));
    }
}
