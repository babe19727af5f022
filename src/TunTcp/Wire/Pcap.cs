using System.Buffers.Binary;

namespace TunTcp.Wire;

/// <summary>
/// Writes the classic libpcap file format with LINKTYPE_RAW (101): each record is one IP
/// packet with no link header, which tshark and Wireshark decode as IPv4 or IPv6 by version.
/// The format has no place for a packet's direction or the interface's name; <see cref="PcapNgWriter"/>
/// keeps both. Not thread-safe; the capture decorator serialises calls.
/// </summary>
public sealed class PcapWriter : ICaptureWriter
{
    public const uint MagicMicroseconds = 0xA1B2C3D4;
    public const int LinkTypeRaw = 101;
    public const int SnapLength = 65535;
    private const int GlobalHeaderLength = 24;
    private const int RecordHeaderLength = 16;

    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly byte[] _recordHeader = new byte[RecordHeaderLength];

    public PcapWriter(Stream stream, bool ownsStream = true)
    {
        _stream = stream;
        _ownsStream = ownsStream;
        Span<byte> h = stackalloc byte[GlobalHeaderLength];
        BinaryPrimitives.WriteUInt32LittleEndian(h, MagicMicroseconds);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 4);
        BinaryPrimitives.WriteInt32LittleEndian(h[8..], 0);   // thiszone
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], 0); // sigfigs
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], SnapLength);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], LinkTypeRaw);
        _stream.Write(h);
    }

    /// <summary>Creates (or truncates) a capture file.</summary>
    public static PcapWriter Create(string path) => new(CaptureFile.Create(path));

    /// <summary>Appends one packet with its capture time in microseconds since the Unix epoch.</summary>
    public void Write(ReadOnlySpan<byte> packet, long unixMicroseconds)
    {
        var captured = packet[..Math.Min(packet.Length, SnapLength)];
        BinaryPrimitives.WriteUInt32LittleEndian(_recordHeader, (uint)(unixMicroseconds / 1_000_000));
        BinaryPrimitives.WriteUInt32LittleEndian(_recordHeader.AsSpan(4), (uint)(unixMicroseconds % 1_000_000));
        BinaryPrimitives.WriteUInt32LittleEndian(_recordHeader.AsSpan(8), (uint)captured.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(_recordHeader.AsSpan(12), (uint)packet.Length);
        _stream.Write(_recordHeader);
        _stream.Write(captured);
    }

    /// <summary>Classic pcap records carry no direction, so <paramref name="direction"/> is dropped.</summary>
    void ICaptureWriter.Write(ReadOnlySpan<byte> packet, long unixMicroseconds, CaptureDirection direction) => Write(packet, unixMicroseconds);

    public void Flush() => _stream.Flush();

    public void Dispose()
    {
        _stream.Flush();
        if (_ownsStream) _stream.Dispose();
    }
}

/// <summary>One record read back from a pcap file.</summary>
public readonly record struct PcapRecord(long UnixMicroseconds, byte[] Packet, int OriginalLength);

/// <summary>Reads classic pcap files (either byte order, microsecond or nanosecond magic).</summary>
public static class PcapReader
{
    /// <summary>Reads every record; returns false with a reason for a malformed file.</summary>
    public static bool TryRead(ReadOnlySpan<byte> file, out List<PcapRecord> records, out int linkType, out string? error)
    {
        records = new List<PcapRecord>();
        linkType = 0;
        if (file.Length < 24) { error = "shorter than the pcap global header"; return false; }
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(file);
        bool little, nanos;
        switch (magic)
        {
            case 0xA1B2C3D4: little = true; nanos = false; break;
            case 0xA1B23C4D: little = true; nanos = true; break;
            case 0xD4C3B2A1: little = false; nanos = false; break;
            case 0x4D3CB2A1: little = false; nanos = true; break;
            default: error = $"unknown magic 0x{magic:X8}"; return false;
        }
        uint Read32(ReadOnlySpan<byte> s) => little ? BinaryPrimitives.ReadUInt32LittleEndian(s) : BinaryPrimitives.ReadUInt32BigEndian(s);
        linkType = (int)Read32(file[20..]);
        int i = 24;
        while (i < file.Length)
        {
            if (file.Length - i < 16) { error = "truncated record header"; return false; }
            long seconds = Read32(file[i..]);
            long fraction = Read32(file[(i + 4)..]);
            int captured = (int)Math.Min(Read32(file[(i + 8)..]), int.MaxValue);
            int original = (int)Math.Min(Read32(file[(i + 12)..]), int.MaxValue);
            i += 16;
            if (captured > file.Length - i) { error = "truncated record data"; return false; }
            records.Add(new PcapRecord(seconds * 1_000_000 + (nanos ? fraction / 1000 : fraction), file.Slice(i, captured).ToArray(), original));
            i += captured;
        }
        error = null;
        return true;
    }
}
