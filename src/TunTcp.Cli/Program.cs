using Microsoft.Extensions.Logging;

namespace TunTcp.Cli;

internal static class Program
{
    public static int Main(string[] args)
    {
        // --log-level / -q, else TUNTCP_LOG_LEVEL, else Information.
        var level = ToolCommandLine.LogLevelFrom(args,
            ToolCommandLine.TryParseLogLevel(Environment.GetEnvironmentVariable("TUNTCP_LOG_LEVEL"), out var chosen) ? chosen : LogLevel.Information);
        var console = new ToolConsole(Console.Out, Console.Error, ToolLoggerProvider.CreateFactory(Console.Error, level), TimeProvider.System);
        try
        {
            if (args.Length > 0 && args[0] == RootlessRun.HelperVerb) return RootlessRun.HelperMain(args, console);
            var commandLine = ToolCommandLine.Build(
                dump: settings => DumpCommand.Run(settings, console),
                serve: settings => ServeCommand.Run(settings, console),
                connect: settings => ConnectCommand.Run(settings, console, Console.OpenStandardInput(), Console.OpenStandardOutput()),
                forward: settings => ForwardCommand.Run(settings, console),
                stats: request => StatsCommand.Run(request, console),
                plot: request => Plot.PlotCommand.Run(request, console));
            return commandLine.Run(args, console.Out, console.Error);
        }
        catch (Exception e)
        {
            console.Error.WriteLine($"tuntcp: error: unexpected failure: {e}");
            return ToolCommandLine.RunFailure;
        }
        finally
        {
            console.LoggerFactory.Dispose();
        }
    }
}
