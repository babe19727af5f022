using TunTcp.Wire;

namespace TunTcp.Links;

/// <summary>
/// A decorator that writes every packet passing through, in both directions, to a capture file
/// (pcapng by default, see <see cref="PcapNgWriter"/>, or classic pcap, see <see cref="PcapWriter"/>;
/// LINKTYPE_RAW either way) stamped with wall-clock time from a <see cref="TimeProvider"/>, so
/// tshark and Wireshark show exactly what the stack saw and sent. Received packets are
/// <see cref="CaptureDirection.Inbound"/> (host to stack), sent ones <see cref="CaptureDirection.Outbound"/>;
/// pcapng records that in each packet's epb_flags.
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
    private readonly ICaptureWriter _writer;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private bool _dirty, _disposed;

    public PcapCaptureLink(ILinkDevice inner, ICaptureWriter writer, TimeProvider? time = null)
    {
        _inner = inner;
        _writer = writer;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Captures <paramref name="inner"/> to a new (or truncated) file at <paramref name="path"/>.</summary>
    /// <param name="interfaceName">pcapng's if_name, the device's name (classic pcap has no place for it).</param>
    /// <param name="interfaceDescription">pcapng's if_description.</param>
    public static PcapCaptureLink Create(ILinkDevice inner, string path, TimeProvider? time = null,
        CaptureFormat format = CaptureFormat.PcapNg, string? interfaceName = null, string? interfaceDescription = null)
    {
        ICaptureWriter writer;
        try
        {
            writer = CaptureFile.Create(path, format, interfaceName, interfaceDescription);
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
        if (length > 0) Capture(buffer[..length], CaptureDirection.Inbound);
        return length;
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<byte> packet)
    {
        Capture(packet, CaptureDirection.Outbound);
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

    private void Capture(ReadOnlySpan<byte> packet, CaptureDirection direction)
    {
        var now = _time.GetUtcNow();
        long unixMicroseconds = (now.UtcTicks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond;
        lock (_lock)
        {
            if (_disposed) return;
            _writer.Write(packet, unixMicroseconds, direction);
            _dirty = true;
        }
    }
}
