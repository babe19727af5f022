using TunTcp.Ip;

namespace TunTcp.Cli;

/// <summary>
/// <c>tuntcp serve</c>: sets the device up and runs the TunTcp stack on it at the stack address,
/// so the host can ping it and reach its TCP ports (closed ports answer with RST). Prints a line
/// containing <c>ready</c> on stdout once the device is configured and the stack thread runs.
/// </summary>
internal static class ServeCommand
{
    public static int Run(ToolSettings settings, ToolConsole console) =>
        DeviceCommand.Run(settings, console, (tun, link, signals) =>
        {
            var options = new NetStackOptions { Address = settings.StackAddress, Mtu = link.Mtu };
            using var stack = new NetStack(link, options, console.Time, console.LoggerFactory);
            stack.Start();
            string ns = tun.Options.NetworkNamespace is { } name ? $"sudo ip netns exec {name} " : "";
            console.Out.WriteLine($"tuntcp: ready: serving {settings.StackAddress} on {tun.Describe()}; try `{ns}ping {settings.StackAddress}`; stop with Ctrl-C");
            // The stack thread does the work; this thread only waits for a signal or for the
            // stack thread to die.
            int stopped = Task.WaitAny([stack.Completion, Task.Delay(Timeout.Infinite, signals.Token)]);
            if (stopped == 0 && stack.Completion.IsFaulted)
            {
                console.Error.WriteLine($"tuntcp: error: the stack stopped: {stack.Completion.Exception?.InnerException?.Message}");
                return ToolCommandLine.RunFailure;
            }
            return 0;
        });
}
