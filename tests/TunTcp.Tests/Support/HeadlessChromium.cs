using System.Diagnostics;

namespace TunTcp.Tests.Support;

/// <summary>
/// Renders an HTML file to a PNG with headless Chromium (Debian package chromium, installed by
/// scripts/install-deps.sh test). Chromium runs in a network namespace of its own (unshare: an
/// anonymous namespace with only a loopback that is down, gone when chromium exits), so a page,
/// or Chromium's own background fetches, cannot reach any network.
/// </summary>
internal static class HeadlessChromium
{
    public static string? Find() =>
        new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium" }.FirstOrDefault(File.Exists);

    public static async Task ScreenshotAsync(string htmlPath, string pngPath, int width, int height, CancellationToken cancellationToken)
    {
        string chromium = Find() ?? throw new InvalidOperationException(
            "chromium is not installed; scripts/install-deps.sh test installs it (Debian package chromium), and test.sh runs that first");
        var profile = Directory.CreateTempSubdirectory("tuntcp-chromium-");
        try
        {
            var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            if (!IsRoot()) { start.ArgumentList.Add("--user"); start.ArgumentList.Add("--map-root-user"); }
            foreach (string a in new[]
            {
                "--net", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
                "--no-first-run", "--no-default-browser-check", "--force-device-scale-factor=1",
                $"--user-data-dir={profile.FullName}", $"--screenshot={pngPath}", $"--window-size={width},{height}",
                new Uri(Path.GetFullPath(htmlPath)).AbsoluteUri,
            })
                start.ArgumentList.Add(a);
            start.Environment["HOME"] = profile.FullName;
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(90));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException("chromium did not finish the screenshot within 90 s");
            }
            string output = await stdout + await stderr;
            if (process.ExitCode != 0 || !File.Exists(pngPath))
                throw new InvalidOperationException($"chromium exited with {process.ExitCode} and {(File.Exists(pngPath) ? "" : "no ")}screenshot: {output}");
        }
        finally
        {
            profile.Delete(recursive: true);
        }
    }

    private static bool IsRoot() => Environment.IsPrivilegedProcess;
}
