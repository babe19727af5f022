using TunTcp.Ip;

namespace TunTcp.Cli;

/// <summary><c>tuntcp stats</c>: the live connection list of a running stack, from its statistics socket.</summary>
internal static class StatsCommand
{
    public static int Run(StatsRequest request, ToolConsole console)
    {
        using var signals = new ShutdownSignals();
        while (true)
        {
            string json;
            try
            {
                json = ControlSocket.Request(request.Name);
            }
            catch (IOException e)
            {
                console.Error.WriteLine($"tuntcp: error: {e.Message}");
                return ToolCommandLine.RunFailure;
            }
            if (request.Json) console.Out.WriteLine(json);
            else if (StackReport.FromJson(json) is { } report) console.Out.Write(report.ToText());
            else
            {
                console.Error.WriteLine($"tuntcp: error: the stack answered something that is not a report: {json}");
                return ToolCommandLine.RunFailure;
            }
            console.Out.Flush();
            if (!request.Watch) return 0;
            if (signals.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(1))) return 0;
            console.Out.WriteLine();
        }
    }
}
