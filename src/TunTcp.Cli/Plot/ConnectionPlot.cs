using System.Globalization;
using System.Net;
using System.Text;

namespace TunTcp.Cli.Plot;

/// <summary>The colours of the graphs, one per kind of mark (tests look for these pixels).</summary>
internal static class PlotColors
{
    public const string Data = "#1f4fd0";
    public const string Retransmission = "#e01010";
    public const string Ack = "#10a040";
    public const string Window = "#c89600";
    public const string Sack = "#a040c0";
    public const string Throughput = "#008c9c";
    public const string Rtt = "#7a4a00";
    public const string InFlight = "#5a5a5a";
    public const string CongestionWindow = "#ff6a00";
    public const string SlowStartThreshold = "#9a9a9a";
    public const string SmoothedRtt = "#d0408a";
    public const string FastRecoveryBand = "#ffe6c4";
    public const string LossBand = "#ffd0d0";

    /// <summary>The red, green and blue of a colour above.</summary>
    public static (byte R, byte G, byte B) Rgb(string color) =>
        (Convert.ToByte(color[1..3], 16), Convert.ToByte(color[3..5], 16), Convert.ToByte(color[5..7], 16));
}

/// <summary>
/// Renders a <see cref="ConnectionAnalysis"/> as one self-contained HTML page with inline SVG
/// (no scripts, no fonts or anything else fetched): the time-sequence graph in the style of
/// Stevens and tcptrace (data segments as vertical bars from seq to seq + len, retransmissions in
/// red, the ACK line, the receive window's right edge, SACK blocks), then throughput, RTT, and the
/// outstanding bytes with cwnd and ssthresh from the stack's event trace when one is given. All
/// graphs share the time axis.
/// </summary>
internal static class ConnectionPlot
{
    private const int Width = 1100;
    private const int Left = 90, Right = 20, Top = 34, Bottom = 42;
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <param name="from">Start of the time shown, seconds from the connection's first segment (default 0).</param>
    /// <param name="to">End of the time shown (default the connection's last segment).</param>
    public static string Render(ConnectionAnalysis a, IReadOnlyList<TcpTraceRecord>? trace, string title, double? from = null, double? to = null)
    {
        var html = new StringBuilder(64 * 1024 + a.Data.Count * 48);
        string Encode(string s) => WebUtility.HtmlEncode(s);
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        html.Append(C, $"<title>{Encode(title)}</title>");
        html.Append("<style>body{font-family:sans-serif;margin:12px;background:#fff;color:#222}h1{font-size:17px;margin:0 0 4px}")
            .Append("p{margin:2px 0 6px;font-size:13px}.key span{display:inline-block;margin-right:14px;font-size:12px}")
            .Append(".key i{display:inline-block;width:14px;height:4px;margin-right:4px;vertical-align:middle}svg{display:block;margin-bottom:6px}</style></head><body>\n");
        html.Append(C, $"<h1>{Encode(title)}</h1>\n<p>{Encode(Summary(a, trace))}</p>\n");
        html.Append("<p class=\"key\">");
        foreach (var (color, name) in new[] { (PlotColors.Data, "data segment (seq .. seq+len)"), (PlotColors.Retransmission, "retransmission"),
            (PlotColors.Ack, "ACK"), (PlotColors.Window, "receive window edge (ACK + window)"), (PlotColors.Sack, "SACK block") })
            html.Append(C, $"<span><i style=\"background:{color}\"></i>{Encode(name)}</span>");
        html.Append("</p>\n");

        double t0 = Math.Max(0, from ?? 0);
        var w = new TimeWindow(t0, Math.Max(to ?? a.Duration, t0 + 0.001));
        TimeSequence(html, a, w);
        Throughput(html, a, w);
        Rtt(html, a, trace, w);
        Flight(html, a, trace, w);
        html.Append("</body></html>\n");
        return html.ToString();
    }

    private static string Summary(ConnectionAnalysis a, IReadOnlyList<TcpTraceRecord>? trace)
    {
        var s = new StringBuilder();
        int data = a.Data.Count;
        s.Append(C, $"Data from {a.Sender} to {a.Receiver}: {FormatBytes(a.BytesAcknowledged)}B acknowledged in {a.Duration:0.###} s, ");
        s.Append(C, $"{data} data segments, {a.Retransmissions} retransmitted ({(data == 0 ? 0 : 100.0 * a.Retransmissions / data):0.#}%), {a.Sacks.Count} SACK blocks. ");
        s.Append(a.ReceiveWindowShift is { } shift ? $"Window scale {shift}. " : "Handshake not captured: windows unscaled. ");
        if (a.RttMilliseconds.Count > 0)
        {
            var sorted = a.RttMilliseconds.Select(r => r.Value).Order().ToList();
            s.Append(C, $"RTT at the capture point: {sorted.Count} samples, min {sorted[0]:0.##} ms, median {sorted[sorted.Count / 2]:0.##} ms, max {sorted[^1]:0.##} ms. ");
        }
        if (trace is not null) s.Append(C, $"Event trace: {trace.Count} records for this connection.");
        return s.ToString();
    }

    private static void TimeSequence(StringBuilder html, ConnectionAnalysis a, TimeWindow w)
    {
        var shown = a.Data.Where(d => w.Contains(d.Time)).ToList();
        var acks = a.Acks.Where(p => w.Contains(p.Time)).Select(p => p.Value).ToList();
        double bottom = shown.Select(d => (double)d.Start).Concat(acks).DefaultIfEmpty(0).Min();
        double top = shown.Select(d => (double)d.End).Concat(acks).DefaultIfEmpty(1).Max();
        // The window edge usually runs far above the data; show it up to a quarter more.
        double windowTop = a.WindowEdges.Where(p => w.Contains(p.Time)).Select(p => p.Value).DefaultIfEmpty(0).Max();
        double span = Math.Max(top - bottom, 1);
        double y1 = Math.Max(top, Math.Min(windowTop, top + span * 0.25)) + span * 0.02;
        double y0 = w.From == 0 ? Math.Min(0, bottom) : bottom - span * 0.02;
        var p = new Panel(html, "time-sequence", 560, w, y0, y1, "time (s)", "relative sequence number (bytes)", "Time-sequence graph");

        var data = new StringBuilder();
        var retransmitted = new StringBuilder();
        foreach (var d in a.Data)
        {
            double x = p.X(d.Time), yStart = p.Y(d.Start), yEnd = Math.Min(p.Y(d.End), yStart - 2);
            (d.Retransmission ? retransmitted : data).Append(C, $"M{x:0.#},{yStart:0.#}V{yEnd:0.#}M{x - 3:0.#},{yEnd:0.#}h6");
        }
        var ackLine = StepPath(p, a.Acks);
        var window = StepPath(p, a.WindowEdges);
        var sacks = new StringBuilder();
        foreach (var s in a.Sacks)
        {
            double yl = p.Y(s.Left), yr = Math.Min(p.Y(s.Right), yl - 2);
            sacks.Append(C, $"M{p.X(s.Time) + 4:0.#},{yl:0.#}V{yr:0.#}");
        }
        p.Path("window", window, PlotColors.Window, 1.5);
        p.Path("ack", ackLine, PlotColors.Ack, 1.5);
        p.Path("sack", sacks.ToString(), PlotColors.Sack, 2);
        p.Path("data", data.ToString(), PlotColors.Data, 2);
        p.Path("retransmission", retransmitted.ToString(), PlotColors.Retransmission, 3);
        p.End();
    }

    private static void Throughput(StringBuilder html, ConnectionAnalysis a, TimeWindow w)
    {
        double max = Math.Max(1, a.ThroughputBitsPerSecond.Where(t => w.Contains(t.Time)).Select(t => t.Value).DefaultIfEmpty(1).Max());
        var p = new Panel(html, "throughput", 200, w, 0, max * 1.1, "time (s)", "goodput (bit/s)", $"Throughput: newly acknowledged bytes per {a.Duration / ConnectionAnalysis.ThroughputIntervals * 1000:0.#} ms");
        p.Path("throughput", LinePath(p, a.ThroughputBitsPerSecond), PlotColors.Throughput, 2);
        p.End();
    }

    private static void Rtt(StringBuilder html, ConnectionAnalysis a, IReadOnlyList<TcpTraceRecord>? trace, TimeWindow w)
    {
        var srtt = new List<TimePoint>();
        foreach (var r in trace ?? [])
            if (r.SmoothedRttMicroseconds is { } us) srtt.Add(new TimePoint((r.UnixMicroseconds - a.StartUnixMicroseconds) / 1e6, us / 1000.0));
        double max = a.RttMilliseconds.Concat(srtt).Where(r => w.Contains(r.Time)).Select(r => r.Value).DefaultIfEmpty(1).Max();
        string title = "RTT: data segment to the ACK that covers it, at the capture point (Karn: none through a retransmission)"
            + (trace is null ? "" : "; the stack's SRTT");
        var p = new Panel(html, "rtt", 200, w, 0, Math.Max(0.1, max) * 1.1, "time (s)", "RTT (ms)", title);
        var dots = new StringBuilder();
        foreach (var r in a.RttMilliseconds) dots.Append(C, $"M{p.X(r.Time):0.#},{p.Y(r.Value):0.#}h0.1");
        p.Path("rtt", dots.ToString(), PlotColors.Rtt, 4, roundCaps: true);
        if (trace is not null) p.Path("srtt", StepPath(p, srtt), PlotColors.SmoothedRtt, 2);
        p.End();
        if (trace is not null)
            html.Append(C, $"<p class=\"key\"><span><i style=\"background:{PlotColors.Rtt}\"></i>RTT sample (capture)</span><span><i style=\"background:{PlotColors.SmoothedRtt}\"></i>SRTT (stack)</span></p>\n");
    }

    private static void Flight(StringBuilder html, ConnectionAnalysis a, IReadOnlyList<TcpTraceRecord>? trace, TimeWindow w)
    {
        var cwnd = new List<TimePoint>();
        var ssthresh = new List<TimePoint>();
        foreach (var r in trace ?? [])
        {
            double t = (r.UnixMicroseconds - a.StartUnixMicroseconds) / 1e6;
            // cwnd is 0 until the handshake completes (the controller starts then).
            if (r.CongestionWindow > 0) cwnd.Add(new TimePoint(t, r.CongestionWindow));
            // Before the first loss ssthresh is "infinite" (RFC 5681 3.1): not drawn.
            if (r.SlowStartThreshold < int.MaxValue / 2) ssthresh.Add(new TimePoint(t, r.SlowStartThreshold));
        }
        double max = new[] { a.BytesInFlight, cwnd, ssthresh }.SelectMany(l => l).Where(p => w.Contains(p.Time)).Select(p => p.Value).DefaultIfEmpty(1).Max();
        string title = trace is null ? "Outstanding bytes: highest sequence sent minus the ACK, from the capture (add --trace FILE for cwnd and ssthresh)"
            : "Outstanding bytes (highest sequence sent minus the ACK, from the capture), cwnd and ssthresh (from the stack's event trace)";
        var p = new Panel(html, "window", 220, w, 0, Math.Max(max, 1) * 1.1, "time (s)", "bytes", title);
        RecoveryBands(p, a, trace ?? []);
        p.Path("inflight", StepPath(p, a.BytesInFlight), PlotColors.InFlight, 1);
        if (trace is not null)
        {
            p.Path("ssthresh", StepPath(p, ssthresh), PlotColors.SlowStartThreshold, 2, dashed: true);
            p.Path("cwnd", StepPath(p, cwnd), PlotColors.CongestionWindow, 2);
        }
        p.End();
        if (trace is not null)
            html.Append(C, $"<p class=\"key\"><span><i style=\"background:{PlotColors.InFlight}\"></i>outstanding (capture)</span><span><i style=\"background:{PlotColors.CongestionWindow}\"></i>cwnd (stack)</span><span><i style=\"background:{PlotColors.SlowStartThreshold}\"></i>ssthresh (stack)</span>"
                + $"<span><i style=\"background:{PlotColors.FastRecoveryBand};height:10px\"></i>fast recovery</span><span><i style=\"background:{PlotColors.LossBand};height:10px\"></i>loss recovery after a timeout</span>"
                + $"<span><i style=\"background:{PlotColors.Retransmission};height:10px;width:4px\"></i>retransmission timeout</span></p>\n");
    }

    /// <summary>
    /// The stack's loss-recovery phases as shaded bands behind the lines (fast recovery, RFC 6675 /
    /// RFC 8985; recovery after a timeout), and each retransmission timeout as a red tick on top.
    /// </summary>
    private static void RecoveryBands(Panel p, ConnectionAnalysis a, IReadOnlyList<TcpTraceRecord> trace)
    {
        var fast = new StringBuilder();
        var loss = new StringBuilder();
        var timeouts = new StringBuilder();
        string phase = "Open";
        double since = 0;
        long rtos = 0;
        foreach (var r in trace.Append(null))
        {
            double t = r is null ? Math.Max(p.XMax, a.Duration) : (r.UnixMicroseconds - a.StartUnixMicroseconds) / 1e6;
            if (r is null || r.Recovery != phase)
            {
                if (phase != "Open") (phase == "Loss" ? loss : fast).Append(C, $"M{p.X(since):0.#},{p.Top}H{p.X(t):0.#}V{p.BottomY}H{p.X(since):0.#}Z");
                phase = r?.Recovery ?? "Open";
                since = t;
            }
            if (r is not null && r.RetransmissionTimeouts > rtos)
            {
                timeouts.Append(C, $"M{p.X(t):0.#},{p.Top}v12");
                rtos = r.RetransmissionTimeouts;
            }
        }
        p.Fill("fast-recovery", fast.ToString(), PlotColors.FastRecoveryBand);
        p.Fill("loss-recovery", loss.ToString(), PlotColors.LossBand);
        p.Path("rto", timeouts.ToString(), PlotColors.Retransmission, 3);
    }

    /// <summary>A line that holds each value until the next point (ACK, window, cwnd).</summary>
    private static string StepPath(Panel p, IReadOnlyList<TimePoint> points)
    {
        var s = new StringBuilder(points.Count * 16);
        for (int i = 0; i < points.Count; i++)
        {
            double x = p.X(points[i].Time), y = p.Y(points[i].Value);
            if (i == 0) s.Append(C, $"M{x:0.#},{y:0.#}"); else s.Append(C, $"H{x:0.#}V{y:0.#}");
        }
        if (points.Count > 0) s.Append(C, $"H{p.X(Math.Max(p.XMax, points[^1].Time)):0.#}");
        return s.ToString();
    }

    private static string LinePath(Panel p, IReadOnlyList<TimePoint> points)
    {
        var s = new StringBuilder(points.Count * 16);
        for (int i = 0; i < points.Count; i++)
            s.Append(C, $"{(i == 0 ? 'M' : 'L')}{p.X(points[i].Time):0.#},{p.Y(points[i].Value):0.#}");
        return s.ToString();
    }

    /// <summary>1 234 567 as "1.23 M": SI prefixes, three significant digits.</summary>
    public static string FormatBytes(double value)
    {
        double abs = Math.Abs(value);
        return abs switch
        {
            >= 1e9 => (value / 1e9).ToString("0.##", C) + " G",
            >= 1e6 => (value / 1e6).ToString("0.##", C) + " M",
            >= 1e3 => (value / 1e3).ToString("0.##", C) + " k",
            _ => value.ToString("0.##", C) + " ",
        };
    }

    /// <summary>Tick values for [lo, hi]: steps of 1, 2 or 5 times a power of ten, about <paramref name="count"/> of them.</summary>
    public static List<double> Ticks(double lo, double hi, int count)
    {
        double raw = (hi - lo) / Math.Max(1, count);
        if (raw <= 0 || double.IsNaN(raw)) return [lo];
        double magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1.0, 2, 5, 10 }.Select(m => m * magnitude).First(s => s >= raw);
        var ticks = new List<double>();
        for (double v = Math.Ceiling(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.Add(Math.Round(v / step) * step);
        return ticks;
    }

    /// <summary>The time shown, seconds from the connection's first segment.</summary>
    private readonly record struct TimeWindow(double From, double To)
    {
        public bool Contains(double t) => t >= From && t <= To;
    }

    /// <summary>One graph: an SVG with its frame, grid, tick labels and a clip for the marks.</summary>
    private sealed class Panel
    {
        private readonly StringBuilder _html;
        private readonly int _height;
        private readonly double _x0, _x1, _y0, _y1;

        public double XMax => _x1;

        public Panel(StringBuilder html, string id, int height, TimeWindow w, double y0, double y1, string xLabel, string yLabel, string title)
        {
            (_html, _height, _x0, _x1, _y0, _y1) = (html, height, w.From, w.To, y0, y1);
            double x0 = w.From, x1 = w.To;
            int plotW = Width - Left - Right, plotH = height - Top - Bottom;
            html.Append(C, $"<svg id=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{height}\" viewBox=\"0 0 {Width} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n");
            html.Append(C, $"<clipPath id=\"{id}-clip\"><rect x=\"{Left}\" y=\"{Top}\" width=\"{plotW}\" height=\"{plotH}\"/></clipPath>\n");
            html.Append(C, $"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotW}\" height=\"{plotH}\" fill=\"#fbfbfb\" stroke=\"#444\" shape-rendering=\"crispEdges\"/>\n");
            html.Append(C, $"<text x=\"{Left}\" y=\"{Top - 10}\" font-size=\"13\" font-weight=\"bold\">{WebUtility.HtmlEncode(title)}</text>\n");
            var grid = new StringBuilder();
            foreach (double t in Ticks(x0, x1, 10))
            {
                double x = X(t);
                grid.Append(C, $"M{x:0.#},{Top}V{Top + plotH}");
                html.Append(C, $"<text x=\"{x:0.#}\" y=\"{Top + plotH + 15}\" text-anchor=\"middle\">{t.ToString("0.###", C)}</text>\n");
            }
            foreach (double v in Ticks(y0, y1, 6))
            {
                double y = Y(v);
                grid.Append(C, $"M{Left},{y:0.#}H{Left + plotW}");
                html.Append(C, $"<text x=\"{Left - 6}\" y=\"{y + 4:0.#}\" text-anchor=\"end\">{WebUtility.HtmlEncode(FormatBytes(v).TrimEnd())}</text>\n");
            }
            html.Append(C, $"<path d=\"{grid}\" stroke=\"#e2e2e2\" stroke-width=\"1\" fill=\"none\" shape-rendering=\"crispEdges\"/>\n");
            html.Append(C, $"<text x=\"{Left + plotW / 2}\" y=\"{height - 6}\" text-anchor=\"middle\">{WebUtility.HtmlEncode(xLabel)}</text>\n");
            html.Append(C, $"<text transform=\"translate(14,{Top + plotH / 2}) rotate(-90)\" text-anchor=\"middle\">{WebUtility.HtmlEncode(yLabel)}</text>\n");
            html.Append(C, $"<g clip-path=\"url(#{id}-clip)\">\n");
        }

        /// <summary>The top and bottom of the plot area in pixels.</summary>
        public int Top => ConnectionPlot.Top;
        public int BottomY => _height - Bottom;

        /// <summary>A filled shape (bands), drawn where it is called: call it before the lines it must stay behind.</summary>
        public void Fill(string cssClass, string d, string color)
        {
            if (d.Length > 0) _html.Append(C, $"<path class=\"{cssClass}\" d=\"{d}\" fill=\"{color}\" stroke=\"none\" shape-rendering=\"crispEdges\"/>\n");
        }

        public double X(double t) => Left + (t - _x0) / (_x1 - _x0) * (Width - Left - Right);

        public double Y(double v) => _height - Bottom - (v - _y0) / (_y1 - _y0) * (_height - Top - Bottom);

        public void Path(string cssClass, string d, string color, double width, bool dashed = false, bool roundCaps = false)
        {
            if (d.Length == 0) return;
            string extra = (dashed ? " stroke-dasharray=\"6 4\"" : "") + (roundCaps ? " stroke-linecap=\"round\"" : " shape-rendering=\"crispEdges\"");
            _html.Append(C, $"<path class=\"{cssClass}\" d=\"{d}\" stroke=\"{color}\" stroke-width=\"{width}\" fill=\"none\"{extra}/>\n");
        }

        public void End() => _html.Append("</g></svg>\n");
    }
}
