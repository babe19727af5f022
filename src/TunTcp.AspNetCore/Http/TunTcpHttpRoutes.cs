using System.Buffers;
using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using TunTcp.Apps;
using TunTcp.Ip;
using TunTcp.Tcp;

namespace TunTcp.AspNetCore.Http;

/// <summary>
/// The routes of <c>tuntcp serve</c>'s HTTP app, mappable on any ASP.NET Core app so the same
/// routes can be measured on TunTcp and on Kestrel's socket transport:
/// <list type="bullet">
/// <item><c>GET /</c>: an HTML page with the stack's live statistics (connections by state,
/// segments in and out, retransmissions, resets), read on the stack thread.</item>
/// <item><c>GET /bytes/{n}</c>: exactly n bytes (0 to <see cref="MaxPatternBytes"/>, decimal
/// digits only) of the RFC 864 character-generator stream from its start (see
/// <see cref="ChargenPattern"/>: 72 printable ASCII characters and CR LF per line, each line
/// shifted by one), streamed with a Content-Length; anything else is a 400 saying why.</item>
/// <item><c>POST /echo</c>: the request body back, streamed as it arrives, with the request's
/// Content-Length and Content-Type when it has them (Kestrel's request body limit applies,
/// 30,000,000 bytes by default). Because the answer flows while the body arrives, a client
/// must read while it sends once the body outgrows the buffers on the way (about 2 MB): curl
/// and HTTP/2 clients do; HttpClient's HTTP/1.1 sends the whole body first and then waits.</item>
/// <item><c>GET /healthz</c>: <c>ok</c>.</item>
/// </list>
/// Every handler is a plain <see cref="RequestDelegate"/> writing to the response's pipe, so a
/// request allocates little beyond what Kestrel itself does.
/// </summary>
internal static class TunTcpHttpRoutes
{
    /// <summary>The largest n that <c>/bytes/{n}</c> serves: 1 GiB.</summary>
    public const long MaxPatternBytes = 1L << 30;

    // Bytes handed to Kestrel between flushes of /bytes: large enough to keep the connection's
    // send ring busy, small enough that a slow client holds back little.
    private const int PatternFlushBytes = 64 * 1024;

    private static readonly byte[] Ok = "ok\n"u8.ToArray();

    /// <summary>
    /// Maps the routes on <paramref name="endpoints"/>. <paramref name="stack"/> feeds the
    /// statistics page; null (an app on Kestrel's own sockets) shows a page saying so.
    /// </summary>
    public static IEndpointRouteBuilder MapTunTcpHttpRoutes(this IEndpointRouteBuilder endpoints, NetStack? stack)
    {
        endpoints.MapGet("/", context => WriteStatisticsPageAsync(context, stack));
        endpoints.MapGet("/bytes/{n}", WritePatternAsync);
        endpoints.MapPost("/echo", EchoAsync);
        endpoints.MapGet("/healthz", WriteOkAsync);
        endpoints.MapGet("/stats.json", context => WriteStatsJsonAsync(context, stack));
        return endpoints;
    }

    /// <summary>Parses n of <c>/bytes/{n}</c>: decimal digits only, at most <see cref="MaxPatternBytes"/>.</summary>
    public static bool TryParseByteCount(string? text, out long count, out string error)
    {
        count = 0;
        if (string.IsNullOrEmpty(text) || text.Length > 19 || !text.All(char.IsAsciiDigit)
            || !long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out count))
        {
            error = $"n must be a whole number of bytes written in decimal digits, from 0 to {MaxPatternBytes}.";
            return false;
        }
        if (count > MaxPatternBytes)
        {
            error = $"n = {count} is too large: this server sends at most {MaxPatternBytes} bytes (1 GiB) per request.";
            return false;
        }
        error = "";
        return true;
    }

    private static async Task WriteOkAsync(HttpContext context)
    {
        context.Response.ContentType = "text/plain";
        context.Response.ContentLength = Ok.Length;
        await context.Response.BodyWriter.WriteAsync(Ok, context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task WritePatternAsync(HttpContext context)
    {
        var response = context.Response;
        if (!TryParseByteCount(context.Request.RouteValues["n"] as string, out long count, out string error))
        {
            response.StatusCode = StatusCodes.Status400BadRequest;
            response.ContentType = "text/plain; charset=utf-8";
            await response.WriteAsync(error + "\n", context.RequestAborted).ConfigureAwait(false);
            return;
        }

        response.ContentType = "text/plain; charset=us-ascii";
        response.ContentLength = count;
        var writer = response.BodyWriter;
        var aborted = context.RequestAborted;
        long sent = 0;
        int unflushed = 0;
        while (sent < count)
        {
            // Generate straight into Kestrel's buffers: no intermediate array.
            var memory = writer.GetMemory();
            int n = (int)Math.Min(memory.Length, count - sent);
            ChargenPattern.Fill(memory.Span[..n], sent);
            writer.Advance(n);
            sent += n;
            unflushed += n;
            if (unflushed >= PatternFlushBytes || sent == count)
            {
                unflushed = 0;
                var result = await writer.FlushAsync(aborted).ConfigureAwait(false);
                if (result.IsCompleted || result.IsCanceled) return;
            }
        }
    }

    private static async Task EchoAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        if (request.ContentLength is long length) response.ContentLength = length;
        response.ContentType = request.ContentType ?? "application/octet-stream";
        var reader = request.BodyReader;
        var writer = response.BodyWriter;
        var aborted = context.RequestAborted;
        while (true)
        {
            var result = await reader.ReadAsync(aborted).ConfigureAwait(false);
            var buffer = result.Buffer;
            foreach (var segment in buffer) writer.Write(segment.Span);
            reader.AdvanceTo(buffer.End);
            if (!buffer.IsEmpty)
            {
                // Flushing per read keeps the echo streaming: what arrived goes back before more is read.
                var flush = await writer.FlushAsync(aborted).ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled) return;
            }
            if (result.IsCompleted) return;
        }
    }

    /// <summary><c>GET /stats.json</c>: every connection and the totals, as <c>tuntcp stats --json</c> prints them.</summary>
    private static async Task WriteStatsJsonAsync(HttpContext context, NetStack? stack)
    {
        context.Response.Headers.CacheControl = "no-store";
        if (stack is null)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            await context.Response.WriteAsync("{\"error\": \"not served by a TunTcp stack\"}", context.RequestAborted).ConfigureAwait(false);
            return;
        }
        context.Response.ContentType = "application/json; charset=utf-8";
        var report = await StackReport.CaptureAsync(stack).ConfigureAwait(false);
        await context.Response.WriteAsync(report.ToJson(), context.RequestAborted).ConfigureAwait(false);
    }

    private static async Task WriteStatisticsPageAsync(HttpContext context, NetStack? stack)
    {
        var html = stack is null ? RenderNoStackPage()
            : RenderStatisticsPage(await StackSnapshot.CaptureAsync(stack).ConfigureAwait(false), await StackReport.CaptureAsync(stack).ConfigureAwait(false));
        context.Response.ContentType = "text/html; charset=utf-8";
        // Live figures: never cached.
        context.Response.Headers.CacheControl = "no-store";
        await context.Response.WriteAsync(html, context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>The statistics page for <paramref name="s"/> (public for tests and other hosts).</summary>
    public static string RenderStatisticsPage(StackSnapshot s, StackReport? report = null)
    {
        var html = new StringBuilder(4096);
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>TunTcp ")
            .Append(WebUtility.HtmlEncode(s.Address)).Append("</title>\n")
            .Append("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}")
            .Append("td,th{border:1px solid #ccc;padding:.2em .8em;text-align:left}td.n{text-align:right;font-family:monospace}</style>\n")
            .Append("</head><body>\n<h1>TunTcp stack ").Append(WebUtility.HtmlEncode(s.Address)).Append("</h1>\n")
            .Append("<p>A user-space TCP/IP stack serving this page over a TUN device (MTU ").Append(s.Mtu).Append("). ")
            .Append("Routes: <code>GET /bytes/{n}</code>, <code>POST /echo</code>, <code>GET /healthz</code>.</p>\n");

        int total = s.ConnectionsByState.Values.Sum();
        html.Append("<h2>Connections by state</h2>\n<table id=\"states\"><tr><th>state</th><th>count</th></tr>\n");
        foreach (var state in Enum.GetValues<TcpConnectionState>())
        {
            if (state is TcpConnectionState.Closed or TcpConnectionState.Listen) continue; // a live connection is never either
            Row(html, state.ToString(), s.ConnectionsByState.GetValueOrDefault(state));
        }
        Row(html, "total", total);
        Row(html, "listening ports", s.Listeners);
        html.Append("</table>\n<h2>TCP</h2>\n<table id=\"tcp\"><tr><th>counter</th><th>value</th></tr>\n");
        Row(html, "segments in", s.TcpSegmentsReceived);
        Row(html, "segments out", s.TcpSegmentsSent);
        Row(html, "retransmissions", s.TcpRetransmissions);
        Row(html, "retransmission timeouts", s.RetransmissionTimeouts);
        Row(html, "fast retransmits", s.FastRetransmits);
        Row(html, "resets sent", s.TcpResetsSent);
        Row(html, "resets received", s.TcpResetsReceived);
        Row(html, "connections opened", s.TcpConnectionsOpened);
        Row(html, "connections closed", s.TcpConnectionsClosed);
        Row(html, "SYN cookies sent", s.SynCookiesSent);
        Row(html, "connections from SYN cookies", s.SynCookiesValidated);
        Row(html, "SYNs dropped (half-open queue full)", s.SynBacklogDrops);
        html.Append("</table>\n<h2>IP and link</h2>\n<table id=\"ip\"><tr><th>counter</th><th>value</th></tr>\n");
        Row(html, "IP packets in", s.IpPacketsReceived);
        Row(html, "IP packets out", s.IpPacketsSent);
        Row(html, "ICMP echo requests", s.IcmpEchoRequests);
        Row(html, "UDP datagrams in", s.UdpDatagramsReceived);
        Row(html, "UDP datagrams out", s.UdpDatagramsSent);
        Row(html, "link bytes in", s.LinkBytesReceived);
        Row(html, "link bytes out", s.LinkBytesSent);
        Row(html, "link drops", s.LinkDrops);
        html.Append("</table>\n");
        if (report is not null)
        {
            // The same list as `tuntcp stats` (and /stats.json).
            html.Append("<h2>Connections</h2>\n<table id=\"connections\"><tr><th>state</th><th>local</th><th>remote</th><th>srtt ms</th><th>rto ms</th><th>cwnd</th><th>in flight</th><th>bytes sent</th><th>bytes received</th><th>retransmissions</th></tr>\n");
            foreach (var c in report.Connections)
            {
                html.Append("<tr><td>").Append(c.State).Append("</td><td>").Append(WebUtility.HtmlEncode(c.Local)).Append("</td><td>").Append(WebUtility.HtmlEncode(c.Remote))
                    .Append("</td><td class=\"n\">").Append(c.SrttMs.ToString("0.###", CultureInfo.InvariantCulture))
                    .Append("</td><td class=\"n\">").Append(c.RtoMs.ToString("0", CultureInfo.InvariantCulture))
                    .Append("</td><td class=\"n\">").Append(c.Cwnd).Append("</td><td class=\"n\">").Append(c.InFlight)
                    .Append("</td><td class=\"n\">").Append(c.BytesSent).Append("</td><td class=\"n\">").Append(c.BytesReceived)
                    .Append("</td><td class=\"n\">").Append(c.Retransmissions).Append("</td></tr>\n");
            }
            html.Append("</table>\n");
        }
        html.Append("</body></html>\n");
        return html.ToString();

        static void Row(StringBuilder html, string name, long value) =>
            html.Append("<tr><td>").Append(name).Append("</td><td class=\"n\">").Append(value.ToString(CultureInfo.InvariantCulture)).Append("</td></tr>\n");
    }

    private static string RenderNoStackPage() =>
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>TunTcp routes on Kestrel sockets</title></head><body>\n"
        + "<h1>TunTcp routes on Kestrel sockets</h1>\n<p>This app serves the TunTcp HTTP routes over the kernel's TCP, "
        + "for comparison; there is no TunTcp stack and so no statistics.</p>\n</body></html>\n";
}
