using System.Globalization;
using System.Text;

namespace TunTcp.Cli.Plot;

/// <summary>What <c>tuntcp plot</c> asks for.</summary>
/// <param name="Connection">The connection's number in <c>--list</c>; null: the one with the most payload.</param>
/// <param name="Output">The HTML file to write; null only with <paramref name="List"/>.</param>
/// <param name="TracePath">The stack's event trace (<c>serve --tcp-trace</c>) to take cwnd and ssthresh from.</param>
/// <param name="From">Start of the time shown, in seconds from the connection's first segment; null: 0.</param>
/// <param name="To">End of the time shown; null: the connection's last segment.</param>
internal sealed record PlotRequest(string CapturePath, int? Connection, string? Output, bool List, string? TracePath, double? From = null, double? To = null);

/// <summary>
/// <c>tuntcp plot FILE.pcap [--conn N] -o FILE.html</c>: pictures of one connection of a capture
/// (see <see cref="ConnectionPlot"/>); <c>--list</c> lists the capture's connections instead.
/// Every failure (unreadable capture, no such connection, bad trace) is one message on stderr and
/// exit code 1, and nothing is written.
/// </summary>
internal static class PlotCommand
{
    public static int Run(PlotRequest request, ToolConsole console)
    {
        int Fail(string message)
        {
            console.Error.WriteLine($"tuntcp: error: {message}");
            return ToolCommandLine.RunFailure;
        }

        byte[] file;
        try
        {
            file = File.ReadAllBytes(request.CapturePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail($"cannot read '{request.CapturePath}': {e.Message}");
        }
        if (!CaptureSegmentReader.TryRead(file, out var segments, out var error)) return Fail($"'{request.CapturePath}' is {error}");
        var connections = CaptureConnection.From(segments);
        if (request.List)
        {
            console.Out.Write(ListText(connections));
            return 0;
        }
        if (connections.Count == 0) return Fail($"'{request.CapturePath}' holds no TCP segments");
        CaptureConnection connection;
        if (request.Connection is { } n)
        {
            if (n < 1 || n > connections.Count)
                return Fail($"--conn {n}: the capture has {connections.Count} connection{(connections.Count == 1 ? "" : "s")} (1..{connections.Count}; see --list)");
            connection = connections[n - 1];
        }
        else
        {
            connection = CaptureConnection.Busiest(connections)!;
        }

        List<TcpTraceRecord>? trace = null;
        if (request.TracePath is { } tracePath)
        {
            List<TcpTraceRecord> all;
            try
            {
                if (!TcpTraceReader.TryRead(tracePath, out all, out var traceError)) return Fail($"--trace '{tracePath}': {traceError}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Fail($"--trace: cannot read '{tracePath}': {e.Message}");
            }
            trace = TcpTraceReader.For(all, connection.Client, connection.Server);
            if (trace.Count == 0) console.Error.WriteLine($"tuntcp: warning: --trace '{tracePath}' has no records of {connection.Client} <-> {connection.Server}");
        }

        var analysis = ConnectionAnalysis.Of(connection);
        string title = $"Connection {connection.Number} of {connections.Count}: {connection.Client} -> {connection.Server} ({Path.GetFileName(request.CapturePath)})";
        string html = ConnectionPlot.Render(analysis, trace, title, request.From, request.To);
        try
        {
            File.WriteAllText(request.Output!, html, new UTF8Encoding(false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail($"cannot write '{request.Output}': {e.Message}");
        }
        console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"tuntcp: wrote {request.Output}: connection {connection.Number}, {analysis.Data.Count} data segments, {analysis.Retransmissions} retransmissions, {analysis.RttMilliseconds.Count} RTT samples{(trace is null ? "" : $", {trace.Count} trace records")}"));
        return 0;
    }

    /// <summary>One line per connection: number, client -> server, packets, payload bytes each way, duration.</summary>
    public static string ListText(IReadOnlyList<CaptureConnection> connections)
    {
        var text = new StringBuilder();
        text.AppendLine("  #  client -> server                                      packets  bytes c->s  bytes s->c  seconds");
        foreach (var c in connections)
        {
            long toServer = c.Segments.Where(s => s.Source == c.Client).Sum(s => (long)s.PayloadLength);
            long toClient = c.PayloadBytes - toServer;
            double seconds = (c.Segments[^1].UnixMicroseconds - c.Segments[0].UnixMicroseconds) / 1e6;
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"{c.Number,3}  {$"{c.Client} -> {c.Server}",-52} {c.Segments.Count,7}  {toServer,10}  {toClient,10}  {seconds,7:0.###}"));
        }
        if (connections.Count == 0) text.AppendLine("(no TCP connections)");
        return text.ToString();
    }
}
