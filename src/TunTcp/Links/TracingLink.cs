using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using TunTcp.Wire;

namespace TunTcp.Links;

/// <summary>
/// A decorator that describes every packet passing through in one line: local time, direction
/// (<c>in</c> = received from the device, <c>out</c> = sent to it) and
/// <see cref="PacketFormatter.Format"/>, e.g.
/// <c>12:00:01.123456 in  IPv4 192.168.0.1 -> 192.168.0.2 ICMP len 84 echo request id 7 seq 1</c>.
/// Lines go to a <see cref="TextWriter"/> or, at Information level, to an <see cref="ILogger"/>.
/// A debugging aid: it allocates a string per packet. Disposing disposes the inner device.
/// </summary>
internal sealed partial class TracingLink : ILinkDevice
{
    private readonly ILinkDevice _inner;
    private readonly TextWriter? _writer;
    private readonly ILogger? _logger;
    private readonly TimeProvider _time;
    private readonly StringBuilder _line = new(160);
    private readonly Lock _lock = new();

    /// <summary>Traces to <paramref name="writer"/>, one line per packet.</summary>
    public TracingLink(ILinkDevice inner, TextWriter writer, TimeProvider? time = null)
    {
        _inner = inner;
        _writer = writer;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Traces to <paramref name="logger"/> at Information level, one entry per packet.</summary>
    public TracingLink(ILinkDevice inner, ILogger logger, TimeProvider? time = null)
    {
        _inner = inner;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    /// <inheritdoc/>
    public int Mtu => _inner.Mtu;

    /// <inheritdoc/>
    public LinkStatistics Statistics => _inner.Statistics;

    /// <inheritdoc/>
    public int Receive(Span<byte> buffer)
    {
        int length = _inner.Receive(buffer);
        if (length > 0) Trace("in ", buffer[..length]);
        return length;
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<byte> packet)
    {
        Trace("out", packet);
        _inner.Send(packet);
    }

    /// <inheritdoc/>
    public void Wait(WakeSignal wakeup, TimeSpan timeout) => _inner.Wait(wakeup, timeout);

    public void Dispose() => _inner.Dispose();

    /// <summary>Formats one trace line (without a newline); public so other tools print the same format.</summary>
    public static void AppendLine(StringBuilder sb, DateTimeOffset localTime, string direction, ReadOnlySpan<byte> packet)
    {
        sb.Append(localTime.ToString("HH:mm:ss.ffffff", CultureInfo.InvariantCulture)).Append(' ').Append(direction).Append(' ');
        PacketFormatter.Append(sb, packet);
    }

    private void Trace(string direction, ReadOnlySpan<byte> packet)
    {
        if (_logger is not null && !_logger.IsEnabled(LogLevel.Information)) return;
        string line;
        lock (_lock)
        {
            _line.Clear();
            AppendLine(_line, _time.GetLocalNow(), direction, packet);
            line = _line.ToString();
        }
        if (_writer is not null) _writer.WriteLine(line);
        else LogPacket(_logger!, line);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Line}")]
    private static partial void LogPacket(ILogger logger, string line);
}
