using TunTcp.Wire;

namespace TunTcp.Links;

/// <summary>
/// A decorator that writes every packet passing through, in both directions, to a pcap file
/// (LINKTYPE_RAW, see <see cref="PcapWriter"/>) stamped with wall-clock time from a
/// <see cref="TimeProvider"/>, so tshark and Wireshark show exactly what the stack saw and sent.
/// Packets the stack sends are captured even if the inner device then drops them, as tcpdump
/// sees a packet before the NIC queue.
/// </summary>
/// <remarks>
/// The file is flushed when the link goes idle (in <see cref="Wait"/>, if anything was written
/// since the last flush), so a capture can be read while the tool runs, and on
/// <see cref="Dispose"/>. Disposing also disposes the inner device and the writer.
/// </remarks>
public sealed class PcapCaptureLink : ILinkDevice
{
    private readonly ILinkDevice _inner;
    private readonly PcapWriter _writer;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private bool _dirty, _disposed;

    public PcapCaptureLink(ILinkDevice inner, PcapWriter writer, TimeProvider? time = null)
    {
        _inner = inner;
        _writer = writer;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Captures <paramref name="inner"/> to a new (or truncated) file at <paramref name="path"/>.</summary>
    public static PcapCaptureLink Create(ILinkDevice inner, string path, TimeProvider? time = null)
    {
        PcapWriter writer;
        try
        {
            writer = PcapWriter.Create(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new LinkSetupException($"cannot create capture file {path}: {e.Message}", 0, e);
        }
        return new PcapCaptureLink(inner, writer, time);
    }

    /// <inheritdoc/>
    public int Mtu => _inner.Mtu;

    /// <inheritdoc/>
    public LinkStatistics Statistics => _inner.Statistics;

    /// <inheritdoc/>
    public int Receive(Span<byte> buffer)
    {
        int length = _inner.Receive(buffer);
        if (length > 0) Capture(buffer[..length]);
        return length;
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<byte> packet)
    {
        Capture(packet);
        _inner.Send(packet);
    }

    /// <inheritdoc/>
    public void Wait(WakeSignal wakeup, TimeSpan timeout)
    {
        lock (_lock)
        {
            if (_dirty && !_disposed)
            {
                _writer.Flush();
                _dirty = false;
            }
        }
        _inner.Wait(wakeup, timeout);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _writer.Dispose();
        }
        _inner.Dispose();
    }

    private void Capture(ReadOnlySpan<byte> packet)
    {
        var now = _time.GetUtcNow();
        long unixMicroseconds = (now.UtcTicks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond;
        lock (_lock)
        {
            if (_disposed) return;
            _writer.Write(packet, unixMicroseconds);
            _dirty = true;
        }
    }
}
