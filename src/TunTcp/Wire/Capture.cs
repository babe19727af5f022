namespace TunTcp.Wire;

/// <summary>
/// Which way a captured packet crossed the device, with the values of the direction bits (0-1)
/// of pcapng's epb_flags (draft-ietf-opsawg-pcapng 4.3.1), so a value can be written as is.
/// </summary>
public enum CaptureDirection
{
    /// <summary>Direction not recorded (00).</summary>
    Unknown = 0,

    /// <summary>From the host (the kernel side of the device) into the stack (01).</summary>
    Inbound = 1,

    /// <summary>From the stack to the host (10).</summary>
    Outbound = 2,
}

/// <summary>The file format a capture is written in.</summary>
public enum CaptureFormat
{
    /// <summary>pcapng (<see cref="PcapNgWriter"/>): the interface's name and each packet's direction go with the packets.</summary>
    PcapNg,

    /// <summary>Classic libpcap (<see cref="PcapWriter"/>): packets and times only.</summary>
    Pcap,
}

/// <summary>
/// A capture file writer, as the capture decorator drives it: one call per packet, a flush when
/// the link goes idle. Implementations are not thread-safe; the caller serialises calls.
/// </summary>
public interface ICaptureWriter : IDisposable
{
    /// <summary>
    /// Appends one packet with its capture time in microseconds since the Unix epoch and the way it
    /// went. Packets longer than the snap length are cut; the record keeps their original length.
    /// </summary>
    void Write(ReadOnlySpan<byte> packet, long unixMicroseconds, CaptureDirection direction);

    /// <summary>Pushes what was written so far to the underlying stream.</summary>
    void Flush();
}

/// <summary>What the capture writers share: opening the file.</summary>
internal static class CaptureFile
{
    /// <summary>Creates (or truncates) <paramref name="path"/> for writing, readable by others while it is written.</summary>
    public static FileStream Create(string path) =>
        new(path, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16);

    /// <summary>Creates (or truncates) <paramref name="path"/> and starts a capture in <paramref name="format"/>.</summary>
    /// <param name="interfaceName">pcapng's if_name (the TUN device); ignored by classic pcap, which has no place for it.</param>
    /// <param name="interfaceDescription">pcapng's if_description; ignored by classic pcap.</param>
    public static ICaptureWriter Create(string path, CaptureFormat format, string? interfaceName = null, string? interfaceDescription = null)
    {
        var stream = Create(path);
        try
        {
            return format switch
            {
                CaptureFormat.PcapNg => new PcapNgWriter(stream, interfaceName, interfaceDescription),
                CaptureFormat.Pcap => new PcapWriter(stream),
                _ => throw new ArgumentOutOfRangeException(nameof(format), format, "not a capture format"),
            };
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }
}
