using System.Diagnostics;
using System.IO.Compression;
using System.Text.RegularExpressions;

namespace TunTcp.Tests.Cli;

/// <summary>
/// The NuGet packages test.sh makes with <c>dotnet pack</c> (into artifacts/packages): the
/// libraries carry their README, license and XML docs, and the tool installs from the local folder
/// with <c>dotnet tool install --add-source</c> and runs. Skipped when the packages were not made
/// (a plain <c>dotnet test</c>).
/// </summary>
public class PackageTests
{
    private static readonly string Root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", ".."));
    private static string Packages => Path.Combine(Root, "artifacts", "packages");

    private static string Version() =>
        Regex.Match(File.ReadAllText(Path.Combine(Root, "Directory.Build.props")), "<VersionPrefix>([^<]+)</VersionPrefix>").Groups[1].Value;

    private static string Package(string id)
    {
        string path = Path.Combine(Packages, $"{id}.{Version()}.nupkg");
        Assert.SkipUnless(File.Exists(path), $"{path} was not made (test.sh runs dotnet pack first)");
        return path;
    }

    [Theory]
    [InlineData("TunTcp")]
    [InlineData("TunTcp.AspNetCore")]
    [InlineData("TunTcp.Hosting")]
    public void LibraryPackage_CarriesReadmeLicenseDocsAndMetadata(string id)
    {
        using var zip = ZipFile.OpenRead(Package(id));
        var names = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Contains("README.md", names);
        Assert.Contains("LICENSE", names);
        Assert.Contains($"lib/net10.0/{id}.dll", names);
        Assert.Contains($"lib/net10.0/{id}.xml", names);
        using var reader = new StreamReader(zip.GetEntry($"{id}.nuspec")!.Open());
        string nuspec = reader.ReadToEnd();
        Assert.Contains("<license type=\"expression\">MIT</license>", nuspec);
        Assert.Contains("<readme>README.md</readme>", nuspec);
        Assert.Contains($"<version>{Version()}</version>", nuspec);
        Assert.Contains("<description>", nuspec);
    }

    [Fact]
    public void ToolPackage_InstallsFromTheLocalFolder_AndRunsTuntcpVersion()
    {
        Package("TunTcp.Cli");
        string work = Directory.CreateTempSubdirectory("tuntcp-tool-").FullName;
        try
        {
            // A private package cache: an older TunTcp.Cli of the same version cached elsewhere must not stand in.
            var install = Run("dotnet", ["tool", "install", "TunTcp.Cli", "--add-source", Packages, "--version", Version(), "--tool-path", Path.Combine(work, "bin")],
                new() { ["NUGET_PACKAGES"] = Path.Combine(work, "nuget") });
            Assert.True(install.Code == 0, install.Output);
            var version = Run(Path.Combine(work, "bin", "tuntcp"), ["--version"], new());
            Assert.True(version.Code == 0, version.Output);
            Assert.StartsWith(Version(), version.Output.Trim());
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static (int Code, string Output) Run(string file, string[] arguments, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        foreach (var (key, value) in environment) start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var error = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            return (-1, "timed out");
        }
        process.WaitForExit();
        return (process.ExitCode, output.Result + error.Result);
    }
}
