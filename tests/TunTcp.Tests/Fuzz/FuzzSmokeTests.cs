using System.Diagnostics;
using System.Text.RegularExpressions;
using TunTcp.Fuzz;

namespace TunTcp.Tests.Fuzz;

/// <summary>
/// A short, bounded run of every fuzz target (fuzz/TunTcp.Fuzz): in-process over its seed corpus
/// and a fixed number of seeded mutations of it, and, where AFL++ is installed (test.sh installs
/// it as root), a real afl-fuzz run of a fixed number of executions per target through
/// <c>scripts/fuzz.sh</c>, which must save no crash. The long runs are scripts/fuzz.sh's, by hand.
/// </summary>
public partial class FuzzSmokeTests
{
    private const int Mutations = 2000;
    private const int AflExecutionsPerTarget = 10_000;

    public static TheoryData<string> Targets => [.. FuzzTargets.All.Keys];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Target_SurvivesItsSeedsAndSeededMutations(string target)
    {
        var run = FuzzTargets.All[target];
        var seeds = Directory.GetFiles(Path.Combine(RepositoryRoot, "fuzz", "corpus", target)).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();
        Assert.NotEmpty(seeds);
        foreach (var seed in seeds) Survives(run, target, seed);
        var rnd = new Random(StableHash(target));
        for (int i = 0; i < Mutations; i++) Survives(run, target, Mutate(seeds, rnd));
    }

    [Fact]
    public async Task EveryTarget_RunsUnderAflWithoutCrashes()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() && OnPath("afl-fuzz"), "afl-fuzz is not installed (test.sh installs afl++ when run as root)");
        string work = Directory.CreateTempSubdirectory("tuntcp-fuzz-smoke.").FullName;
        try
        {
            var start = new ProcessStartInfo("bash", [Path.Combine(RepositoryRoot, "scripts", "fuzz.sh"), "all", "60"])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = RepositoryRoot,
            };
            start.Environment["FUZZ_EXECS"] = AflExecutionsPerTarget.ToString(System.Globalization.CultureInfo.InvariantCulture);
            start.Environment["FUZZ_WORK"] = work;
            start.Environment["FUZZ_CRASHES"] = Path.Combine(work, "crashes");
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            bound.CancelAfter(TimeSpan.FromMinutes(10));
            try { await process.WaitForExitAsync(bound.Token); }
            catch (OperationCanceledException) { process.Kill(entireProcessTree: true); throw; }
            string output = await stdout, errors = await stderr;
            var lines = SummaryLine().Matches(output).ToList();
            Assert.True(process.ExitCode == 0, $"fuzz.sh exited {process.ExitCode}\n{output}\n{errors}");
            Assert.Equal(FuzzTargets.All.Keys.Order(StringComparer.Ordinal), lines.Select(m => m.Groups["target"].Value).Order(StringComparer.Ordinal));
            foreach (var m in lines)
            {
                Assert.True(m.Groups["crashes"].Value == "0", m.Value);
                Assert.True(long.Parse(m.Groups["execs"].Value, System.Globalization.CultureInfo.InvariantCulture) > 0, m.Value);
            }
        }
        finally { Directory.Delete(work, recursive: true); }
    }

    [GeneratedRegex(@"^fuzz (?<target>\S+): .*?, (?<execs>\d+) execs, .*crashes (?<crashes>\d+),", RegexOptions.Multiline)]
    private static partial Regex SummaryLine();

    private static void Survives(FuzzTarget run, string target, byte[] input)
    {
        try { run(input); }
        catch (Exception e)
        {
            Assert.Fail($"fuzz target {target} threw on input {Convert.ToHexString(input)}:\n{e}");
        }
    }

    /// <summary>One of AFL's havoc mutations, or a few stacked: bit flips, bytes set, interesting values, inserts, deletes, splices.</summary>
    private static byte[] Mutate(List<byte[]> seeds, Random rnd)
    {
        var b = new List<byte>(seeds[rnd.Next(seeds.Count)]);
        for (int n = 1 + rnd.Next(4); n > 0; n--)
        {
            int at = b.Count == 0 ? 0 : rnd.Next(b.Count);
            switch (rnd.Next(7))
            {
                case 0 when b.Count > 0: b[at] ^= (byte)(1 << rnd.Next(8)); break;
                case 1 when b.Count > 0: b[at] = (byte)rnd.Next(256); break;
                case 2 when b.Count > 0: b[at] = new byte[] { 0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x40 }[rnd.Next(7)]; break;
                case 3: b.InsertRange(at, Enumerable.Range(0, 1 + rnd.Next(16)).Select(_ => (byte)rnd.Next(256))); break;
                case 4 when b.Count > 0: b.RemoveRange(at, Math.Min(b.Count - at, 1 + rnd.Next(16))); break;
                case 5: b.RemoveRange(at, b.Count - at); break;
                default:
                {
                    var other = seeds[rnd.Next(seeds.Count)];
                    int from = other.Length == 0 ? 0 : rnd.Next(other.Length);
                    b.InsertRange(at, other.Skip(from).Take(1 + rnd.Next(64)));
                    break;
                }
            }
        }
        return [.. b];
    }

    private static int StableHash(string s)
    {
        int h = 17;
        foreach (char c in s) h = h * 31 + c;
        return h;
    }

    private static bool OnPath(string command) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, command)));

    internal static string RepositoryRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "TunTcp.slnx"))) return dir.FullName;
        throw new InvalidOperationException("the repository root (TunTcp.slnx) is not above " + AppContext.BaseDirectory);
    }
}
