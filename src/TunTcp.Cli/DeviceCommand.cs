using Microsoft.Extensions.Logging;
using TunTcp.Links;

namespace TunTcp.Cli;

/// <summary>What a command gets to write to and log with.</summary>
internal sealed record ToolConsole(TextWriter Out, TextWriter Error, ILoggerFactory LoggerFactory, TimeProvider Time);

/// <summary>
/// The lifecycle every device command shares: register the shutdown signals, set the interface
/// up, wrap it in the requested decorators, run the command's body until a signal, then remove
/// everything in reverse order, on every exit path.
/// </summary>
internal static class DeviceCommand
{
    /// <summary>
    /// Runs <paramref name="body"/> on the set-up link. Set-up failures print their message (which
    /// names the fix) and return <see cref="ToolCommandLine.RunFailure"/>.
    /// </summary>
    /// <paramref name="open"/>, when given, sets the interface up in place of <see cref="TunInterface.Open"/>
    /// (the rootless <c>run</c> takes over a device its helper made).
    public static int Run(ToolSettings settings, ToolConsole console, Func<TunInterface, ILinkDevice, ShutdownSignals, int> body, Func<TunInterface>? open = null)
    {
        var logger = console.LoggerFactory.CreateLogger("tuntcp");
        // Signals first: a Ctrl-C during set-up must still lead to clean-up, not a dead process
        // that leaves a namespace behind.
        using var signals = new ShutdownSignals();
        TunInterface? tun = null;
        ILinkDevice? link = null;
        try
        {
            tun = open is not null ? open() : TunInterface.Open(settings.Interface, console.LoggerFactory.CreateLogger<TunInterface>());
            link = LinkDecorators.Wrap(tun.Device, settings, console.Error, console.Time);
            if (signals.Token.IsCancellationRequested) return 0;
            int exitCode = body(tun, link, signals);
            var stats = link.Statistics;
            logger.LogInformation("Stopping ({Reason}); link {Statistics}", signals.Received?.ToString() ?? "done", stats);
            return exitCode;
        }
        catch (LinkSetupException e)
        {
            console.Error.WriteLine($"tuntcp: error: {e.Message}{(e.DeviceNameTaken ? " (--tun NAME picks another)" : "")}");
            return ToolCommandLine.RunFailure;
        }
        finally
        {
            // Reverse order: the decorators (flushing the capture) and the device, then what the
            // interface created around it.
            link?.Dispose();
            tun?.Dispose();
        }
    }
}
