using System.Globalization;
using System.Text;

namespace TunTcp.Tests.Simulation;

/// <summary>
/// The goodput table of the loss-recovery issue: loss {0, 0.1, 1, 5} % x RTT {1, 20, 100} ms
/// on a 100 Mbit/s path with a one-BDP tail-drop queue, for four sender configurations, on
/// virtual time (exact and reproducible). Each run lasts 30 s (60 s at 100 ms, where Reno needs
/// long to climb back after its slow-start overshoot) and goodput is measured over the second
/// half, i.e. past slow start.
/// </summary>
internal static class GoodputTable
{
    public const long PathBitsPerSecond = 100_000_000;
    public static readonly double[] Losses = [0, 0.001, 0.01, 0.05];
    public static readonly int[] RttsMs = [1, 20, 100];

    public sealed record Cell(double Loss, int RttMs, SenderProfile Profile, GoodputResult Result);

    private static readonly Lazy<IReadOnlyList<Cell>> Computed = new(Compute);

    public static IReadOnlyList<Cell> Cells => Computed.Value;

    private static IReadOnlyList<Cell> Compute()
    {
        var keys = new List<(double Loss, int Rtt, SenderProfile Profile)>();
        foreach (var loss in Losses) foreach (var rtt in RttsMs) foreach (var p in SenderProfile.All) keys.Add((loss, rtt, p));
        var cells = new Cell[keys.Count];
        // Cells are independent simulations; running them in parallel changes no result.
        Parallel.For(0, keys.Count, i =>
        {
            var (loss, rtt, profile) = keys[i];
            var duration = TimeSpan.FromSeconds(rtt >= 100 ? 60 : 30);
            var result = GoodputRun.Run(profile, loss, TimeSpan.FromMilliseconds(rtt), PathBitsPerSecond, duration, duration / 2);
            cells[i] = new Cell(loss, rtt, profile, result);
        });
        return cells;
    }

    /// <summary>ECN rows: no random loss, the same one-BDP queue, marking above a quarter of it (ECN on) or tail drop only (ECN off).</summary>
    public sealed record EcnCell(bool Ecn, int RttMs, SenderProfile Profile, GoodputResult Result);

    private static readonly Lazy<IReadOnlyList<EcnCell>> ComputedEcn = new(() =>
    {
        var keys = new List<(bool Ecn, int Rtt, SenderProfile Profile)>();
        foreach (var ecn in new[] { true, false }) foreach (var rtt in RttsMs) foreach (var p in SenderProfile.All) keys.Add((ecn, rtt, p));
        var cells = new EcnCell[keys.Count];
        Parallel.For(0, keys.Count, i =>
        {
            var (ecn, rtt, profile) = keys[i];
            var duration = TimeSpan.FromSeconds(rtt >= 100 ? 60 : 30);
            var result = GoodputRun.Run(profile, 0, TimeSpan.FromMilliseconds(rtt), PathBitsPerSecond, duration, duration / 2,
                markThresholdBytes: ecn ? bdp => bdp / 4 : null, ecn: ecn);
            cells[i] = new EcnCell(ecn, rtt, profile, result);
        });
        return cells;
    });

    public static IReadOnlyList<EcnCell> EcnCells => ComputedEcn.Value;

    public static EcnCell GetEcn(bool ecn, int rttMs, SenderProfile profile) =>
        EcnCells.Single(c => c.Ecn == ecn && c.RttMs == rttMs && c.Profile == profile);

    public static Cell Get(double loss, int rttMs, SenderProfile profile) =>
        Cells.Single(c => c.Loss == loss && c.RttMs == rttMs && c.Profile == profile);

    /// <summary>The Mathis et al. bound: goodput ~ 1.22 MSS / (RTT sqrt(p)), in Mbit/s (1448-byte segments).</summary>
    public static double MathisMbps(double loss, int rttMs) =>
        loss == 0 ? double.PositiveInfinity : 1.22 * 1448 * 8 / (rttMs / 1000.0 * Math.Sqrt(loss)) / 1e6;

    public static string Render()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("| loss | RTT | Mathis bound Mbit/s |");
        foreach (var p in SenderProfile.All) sb.Append(' ').Append(p.Name).Append(" |");
        sb.Append('\n').Append("|---|---|---|");
        foreach (var _ in SenderProfile.All) sb.Append("---|");
        sb.Append('\n');
        foreach (var loss in Losses)
        foreach (var rtt in RttsMs)
        {
            double mathis = MathisMbps(loss, rtt);
            sb.Append(inv, $"| {loss * 100:0.#} % | {rtt} ms | {(double.IsInfinity(mathis) ? "-" : mathis.ToString("0.0", inv))} |");
            foreach (var p in SenderProfile.All)
            {
                var r = Get(loss, rtt, p).Result;
                string ratio = r.Lost == 0 ? "-" : r.RetransmittedPerLost.ToString("0.00", inv);
                sb.Append(inv, $" {r.GoodputMbps:0.0} / {r.Rtos} / {ratio} |");
            }
            sb.Append('\n');
        }
        sb.Append("\nEach cell: goodput Mbit/s over the second half of the run / retransmission timeouts / retransmitted segments per segment lost on the path.\n");

        sb.Append("\n| queue (no random loss) | RTT |");
        foreach (var p in SenderProfile.All) sb.Append(' ').Append(p.Name).Append(" |");
        sb.Append("\n|---|---|");
        foreach (var _ in SenderProfile.All) sb.Append("---|");
        sb.Append('\n');
        foreach (var ecn in new[] { true, false })
        foreach (var rtt in RttsMs)
        {
            sb.Append(inv, $"| {(ecn ? "ECN, CE above 1/4 BDP" : "tail drop, no ECN")} | {rtt} ms |");
            foreach (var p in SenderProfile.All)
            {
                var r = GetEcn(ecn, rtt, p).Result;
                sb.Append(inv, $" {r.GoodputMbps:0.0} / {r.Rtos} / {r.Retransmitted} / {r.Marked} |");
            }
            sb.Append('\n');
        }
        sb.Append("\nEach cell: goodput Mbit/s over the second half / retransmission timeouts / retransmitted segments / segments marked CE, on the same one-BDP queue; with ECN it marks instead of dropping once a quarter full (RFC 3168).\n");
        return sb.ToString();
    }
}
