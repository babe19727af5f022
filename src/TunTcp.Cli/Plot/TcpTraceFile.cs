using System.Globalization;
using System.Text;
using System.Text.Json;
using TunTcp.Tcp;

namespace TunTcp.Cli.Plot;

/// <summary>
/// Writes <see cref="ITcpEventTrace"/> samples as JSON lines (<c>serve --tcp-trace FILE</c>), one
/// object per change: <c>unix_us</c> (wall clock, comparable with a capture's timestamps),
/// <c>t_us</c> (the stack's clock), <c>local</c>, <c>remote</c>, <c>state</c>, <c>recovery</c>,
/// <c>cwnd</c>, <c>ssthresh</c>, <c>rto_us</c>, <c>srtt_us</c> (null before a sample),
/// <c>pipe</c>, <c>retransmissions</c>, <c>rtos</c>.
/// </summary>
internal sealed class TcpTraceWriter : ITcpEventTrace, IDisposable
{
    private readonly TextWriter _writer;
    private readonly long _unixOffsetMicroseconds;
    private readonly StringBuilder _line = new(256);
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <param name="unixOffsetMicroseconds">Added to the stack's instants to give Unix time.</param>
    public TcpTraceWriter(TextWriter writer, long unixOffsetMicroseconds)
    {
        _writer = writer;
        _unixOffsetMicroseconds = unixOffsetMicroseconds;
    }

    /// <summary>A writer to a new file, its clock offset taken from <paramref name="time"/> (the stack's clock source).</summary>
    public static TcpTraceWriter Create(string path, TimeProvider time)
    {
        long stackNow = (long)(time.GetTimestamp() * (1_000_000.0 / time.TimestampFrequency));
        long unixNow = (time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / TimeSpan.TicksPerMicrosecond;
        return new TcpTraceWriter(new StreamWriter(path, append: false, new UTF8Encoding(false), bufferSize: 64 * 1024), unixNow - stackNow);
    }

    public void OnChange(in TcpTraceSample sample)
    {
        lock (_lock)
        {
            if (_disposed) return;
            var c = CultureInfo.InvariantCulture;
            var l = _line.Clear();
            l.Append(c, $"{{\"unix_us\":{sample.Time.Microseconds + _unixOffsetMicroseconds},\"t_us\":{sample.Time.Microseconds}");
            l.Append(c, $",\"local\":\"{new TcpEndpoint(sample.Tuple.LocalAddress, sample.Tuple.LocalPort)}\",\"remote\":\"{new TcpEndpoint(sample.Tuple.RemoteAddress, sample.Tuple.RemotePort)}\"");
            l.Append(c, $",\"state\":\"{sample.State}\",\"recovery\":\"{sample.Recovery}\",\"cwnd\":{sample.CongestionWindow},\"ssthresh\":{sample.SlowStartThreshold}");
            l.Append(c, $",\"rto_us\":{(long)sample.Rto.TotalMicroseconds},\"srtt_us\":");
            if (sample.SmoothedRtt is { } srtt) l.Append(c, $"{(long)srtt.TotalMicroseconds}"); else l.Append("null");
            l.Append(c, $",\"pipe\":{sample.BytesInFlight},\"retransmissions\":{sample.Retransmissions},\"rtos\":{sample.RetransmissionTimeouts}}}");
            _writer.WriteLine(l);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _writer.Dispose();
        }
    }
}

/// <summary>One line of a trace file, as <c>plot</c> reads it back.</summary>
internal sealed record TcpTraceRecord(long UnixMicroseconds, TcpEndpoint Local, TcpEndpoint Remote, string State, string Recovery,
    int CongestionWindow, int SlowStartThreshold, long RtoMicroseconds, long? SmoothedRttMicroseconds, int BytesInFlight,
    long RetransmissionTimeouts);

/// <summary>Reads a <see cref="TcpTraceWriter"/> file.</summary>
internal static class TcpTraceReader
{
    public static bool TryRead(string path, out List<TcpTraceRecord> records, out string? error)
    {
        records = [];
        int number = 0;
        foreach (string line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var r = doc.RootElement;
                if (!TryEndpoint(r.GetProperty("local").GetString(), out var local) || !TryEndpoint(r.GetProperty("remote").GetString(), out var remote))
                    throw new FormatException("bad local or remote endpoint");
                var srtt = r.GetProperty("srtt_us");
                records.Add(new TcpTraceRecord(r.GetProperty("unix_us").GetInt64(), local, remote,
                    r.GetProperty("state").GetString() ?? "", r.GetProperty("recovery").GetString() ?? "",
                    r.GetProperty("cwnd").GetInt32(), r.GetProperty("ssthresh").GetInt32(), r.GetProperty("rto_us").GetInt64(),
                    srtt.ValueKind == JsonValueKind.Null ? null : srtt.GetInt64(), r.GetProperty("pipe").GetInt32(),
                    r.GetProperty("rtos").GetInt64()));
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                error = $"line {number} is not a TunTcp trace record: {e.Message}";
                return false;
            }
        }
        error = null;
        return true;
    }

    /// <summary>"a.b.c.d:port" or "[v6]:port".</summary>
    public static bool TryEndpoint(string? text, out TcpEndpoint endpoint)
    {
        endpoint = default;
        if (text is null) return false;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ushort port)) return false;
        var address = text.AsSpan(0, colon);
        if (address.StartsWith("[") && address.EndsWith("]")) address = address[1..^1];
        if (!Wire.IpAddress.TryParse(address, out var ip)) return false;
        endpoint = new TcpEndpoint(ip, port);
        return true;
    }

    /// <summary>The records of one connection (either end may be the local one).</summary>
    public static List<TcpTraceRecord> For(IEnumerable<TcpTraceRecord> records, TcpEndpoint a, TcpEndpoint b) =>
        records.Where(r => (r.Local == a && r.Remote == b) || (r.Local == b && r.Remote == a)).ToList();
}
