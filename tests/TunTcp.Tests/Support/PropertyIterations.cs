namespace TunTcp.Tests.Support;

/// <summary>
/// How many cases the seeded property tests run: their CI default, or, for a longer local run,
/// TUNTCP_SIM_ITERATIONS scaled by each test's share of it.
/// </summary>
internal static class PropertyIterations
{
    private static readonly int? Requested =
        int.TryParse(Environment.GetEnvironmentVariable("TUNTCP_SIM_ITERATIONS"), out var n) && n > 0 ? n : null;

    /// <param name="ciDefault">Cases when the variable is not set.</param>
    /// <param name="share">Fraction of the requested count this test runs (at least 50 cases).</param>
    public static int Get(int ciDefault, double share = 1.0) =>
        Requested is int r ? Math.Max(50, (int)(r * share)) : ciDefault;
}
