using System.Security.Cryptography;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using TunTcp.Apps;
using TunTcp.AspNetCore.Http;
using TunTcp.Ip;

namespace TunTcp.Cli;

/// <summary>
/// <c>tuntcp serve</c>: sets the device up and runs the TunTcp stack on it at the stack address,
/// with the built-in services (echo, discard, chargen, UDP echo) running on the stack thread;
/// closed ports answer with RST. Prints a line containing <c>ready</c> on stdout once the
/// device is configured and the stack thread runs.
/// </summary>
internal static class ServeCommand
{
    public static int Run(ToolSettings settings, ToolConsole console) =>
        DeviceCommand.Run(settings, console, (tun, link, signals) =>
        {
            // Declared before the stack, so disposed (flushed) after the stack has stopped.
            using var trace = settings.OpenTcpTrace(console.Time);
            var options = settings.StackOptions(link.Mtu, eventTrace: trace);
            using var stack = new NetStack(link, options, console.Time, console.LoggerFactory);
            stack.Start();
            var services = StartServices(stack, settings.Services, console.LoggerFactory);
            TunTcpHttpApp? http = null;
            var s = settings.Services;
            if (s.Http is not null || s.Https is not null)
            {
                try
                {
                    http = TunTcpHttpApp.StartAsync(stack, new TunTcpHttpAppOptions
                    {
                        HttpPort = s.Http,
                        HttpsPort = s.Https,
                        PfxPath = s.PfxPath,
                        PfxPassword = s.PfxPassword,
                        LoggerFactory = console.LoggerFactory,
                    }).GetAwaiter().GetResult();
                }
                catch (CryptographicException e)
                {
                    console.Error.WriteLine($"tuntcp: error: cannot load the HTTPS certificate {s.PfxPath}: {e.Message} (wrong password in --pfx-password-file or TUNTCP_PFX_PASSWORD?)");
                    return ToolCommandLine.RunFailure;
                }
                catch (AddressInUseException e)
                {
                    console.Error.WriteLine($"tuntcp: error: the HTTP app cannot listen: {e.Message}");
                    return ToolCommandLine.RunFailure;
                }
                if (s.Http is ushort hp) services += $", http {hp}";
                if (s.Https is ushort sp) services += $", https {sp}";
            }
            string ns = tun.Options.NetworkNamespace is { } name ? $"sudo ip netns exec {name} " : "";
            string addresses = settings.StackAddress6 is { } v6 ? $"{settings.StackAddress} and {v6}" : settings.StackAddress.ToString();
            string ping6 = settings.StackAddress6 is { } a6 ? $" or `{ns}ping {a6}`" : "";
            using var control = ControlSocket.TryOpen(ControlSocket.NameFor(tun.Options.NetworkNamespace, tun.Device.Name), stack,
                console.LoggerFactory.CreateLogger("tuntcp"));
            console.Out.WriteLine($"tuntcp: ready: serving {addresses} on {tun.Describe()} ({services}); try `{ns}ping {settings.StackAddress}`{ping6}; stop with Ctrl-C");
            console.Out.Flush();
            // The stack thread does the work; this thread only waits for a signal or for the
            // stack thread to die.
            int stopped = Task.WaitAny([stack.Completion, Task.Delay(Timeout.Infinite, signals.Token)]);
            if (stopped == 0 && stack.Completion.IsFaulted)
            {
                console.Error.WriteLine($"tuntcp: error: the stack stopped: {stack.Completion.Exception?.InnerException?.Message}");
                return ToolCommandLine.RunFailure;
            }
            // Orderly: stop the web app, FIN every connection, give them a moment, then reset the rest.
            http?.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
            stack.ShutdownAsync(TimeSpan.FromSeconds(2)).Wait(TimeSpan.FromSeconds(5));
            return 0;
        });

    /// <summary>Starts the services on the stack thread; returns a description for the ready line.</summary>
    private static string StartServices(NetStack stack, ServiceOptions services, ILoggerFactory loggers) =>
        stack.Invoke((core, now) =>
        {
            var started = new List<string>();
            var log = loggers.CreateLogger("tuntcp.services");
            if (services.Echo is ushort echo) { new EchoService(core, echo, log); started.Add($"echo {echo}"); }
            if (services.Discard is ushort discard) { new DiscardService(core, discard, log); started.Add($"discard {discard}"); }
            if (services.Chargen is ushort chargen) { new ChargenService(core, chargen, log); started.Add($"chargen {chargen}"); }
            if (services.UdpEcho is ushort udp) { new UdpEchoService(core, udp); started.Add($"udp echo {udp}"); }
            return started.Count == 0 ? "no services" : string.Join(", ", started);
        }).GetAwaiter().GetResult();
}
