using System.Buffers.Binary;
using System.Reflection;
using System.Text;

namespace TunTcp.Wire;

/// <summary>
/// Writes pcapng (draft-ietf-opsawg-pcapng) with one section and one interface of LINKTYPE_RAW
/// (101, as <see cref="PcapWriter"/>): a Section Header Block (4.1) naming TunTcp in shb_userappl,
/// an Interface Description Block (4.2) with the TUN device's name (if_name), optionally a
/// description (if_description), and microsecond timestamps (if_tsresol 6), then one Enhanced
/// Packet Block (4.3) per packet whose epb_flags (4.3.1) say whether it went into the stack or out
/// of it. Written little-endian, as the byte-order magic tells readers.
/// Not thread-safe; the capture decorator serialises calls.
/// </summary>
/// <remarks>
/// Every block is type, total length, body padded to 32 bits, total length again (3.1), so a
/// reader can walk the file both ways. Options are code, length, value padded to 32 bits, and a
/// list of them ends with opt_endofopt (3.5).
/// </remarks>
public sealed class PcapNgWriter : ICaptureWriter
{
    public const uint SectionHeaderBlockType = 0x0A0D_0D0A;
    public const uint InterfaceDescriptionBlockType = 0x0000_0001;
    public const uint EnhancedPacketBlockType = 0x0000_0006;
    public const uint ByteOrderMagic = 0x1A2B_3C4D;

    /// <summary>3.5: opt_endofopt ends every option list.</summary>
    public const ushort OptEndOfOpt = 0;
    /// <summary>4.1.1: the application that wrote the section.</summary>
    public const ushort ShbUserAppl = 4;
    /// <summary>4.2.1: the interface's name as the capturing system knows it.</summary>
    public const ushort IfName = 2;
    /// <summary>4.2.1: a free-text description of the interface.</summary>
    public const ushort IfDescription = 3;
    /// <summary>4.2.1: timestamp resolution; a value of 6 (most significant bit clear) means 10^-6 s.</summary>
    public const ushort IfTsResol = 9;
    /// <summary>4.3.1: the flags word; bits 0-1 are the direction.</summary>
    public const ushort EpbFlags = 2;

    /// <summary>Microseconds, the resolution of <see cref="ICaptureWriter.Write"/>'s timestamps.</summary>
    public const byte MicrosecondResolution = 6;

    // 4.3: type, total length, interface id, timestamp (upper, lower), captured and original length.
    private const int EnhancedPacketHeaderLength = 28;
    // The epb_flags option (4 + 4), opt_endofopt (4) and the trailing total length (4).
    private const int EnhancedPacketTrailerLength = 16;

    private readonly Stream _stream;
    private readonly bool _ownsStream;
    private readonly byte[] _header = new byte[EnhancedPacketHeaderLength];
    private readonly byte[] _trailer = new byte[3 + EnhancedPacketTrailerLength];

    /// <summary>
    /// Starts a capture on <paramref name="stream"/>: writes the Section Header Block and the one
    /// Interface Description Block at once, so a capture with no packets is still a valid file.
    /// </summary>
    /// <param name="interfaceName">if_name, the TUN device's name; null leaves the option out.</param>
    /// <param name="interfaceDescription">if_description; null leaves the option out.</param>
    /// <param name="application">shb_userappl; by default "TunTcp" and the library's version.</param>
    public PcapNgWriter(Stream stream, string? interfaceName, string? interfaceDescription = null, bool ownsStream = true, string? application = null)
    {
        _stream = stream;
        _ownsStream = ownsStream;
        WriteSectionHeader(application ?? DefaultApplication);
        WriteInterfaceDescription(interfaceName, interfaceDescription);
    }

    /// <summary>"TunTcp" and the informational version of this library, as shb_userappl.</summary>
    public static string DefaultApplication { get; } = "TunTcp " + LibraryVersion();

    /// <summary>Creates (or truncates) a capture file.</summary>
    public static PcapNgWriter Create(string path, string? interfaceName, string? interfaceDescription = null) =>
        new(CaptureFile.Create(path), interfaceName, interfaceDescription);

    /// <summary>
    /// Appends one Enhanced Packet Block (4.3) on interface 0 with the time in microseconds since
    /// the Unix epoch (the IDB's if_tsresol) and, unless <see cref="CaptureDirection.Unknown"/>,
    /// the direction in epb_flags (4.3.1).
    /// </summary>
    public void Write(ReadOnlySpan<byte> packet, long unixMicroseconds, CaptureDirection direction)
    {
        var captured = packet[..Math.Min(packet.Length, PcapWriter.SnapLength)];
        int padding = Padding(captured.Length);
        bool flags = direction != CaptureDirection.Unknown;
        int optionsLength = flags ? 12 : 0;
        int total = EnhancedPacketHeaderLength + captured.Length + padding + optionsLength + 4;

        var h = _header.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(h, EnhancedPacketBlockType);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)total);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], 0); // interface id: the one IDB
        ulong timestamp = (ulong)unixMicroseconds;
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], (uint)(timestamp >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], (uint)timestamp);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], (uint)captured.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[24..], (uint)packet.Length);
        _stream.Write(h);
        _stream.Write(captured);

        var t = _trailer.AsSpan(0, padding + optionsLength + 4);
        t[..padding].Clear();
        int i = padding;
        if (flags)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(t[i..], EpbFlags);
            BinaryPrimitives.WriteUInt16LittleEndian(t[(i + 2)..], 4);
            BinaryPrimitives.WriteUInt32LittleEndian(t[(i + 4)..], (uint)direction);
            BinaryPrimitives.WriteUInt32LittleEndian(t[(i + 8)..], OptEndOfOpt); // code 0, length 0
            i += 12;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(t[i..], (uint)total);
        _stream.Write(t);
    }

    public void Flush() => _stream.Flush();

    public void Dispose()
    {
        _stream.Flush();
        if (_ownsStream) _stream.Dispose();
    }

    /// <summary>Bytes that bring <paramref name="length"/> up to a multiple of 4 (3.1, 3.5).</summary>
    internal static int Padding(int length) => -length & 3;

    private void WriteSectionHeader(string application)
    {
        // 4.1: byte-order magic, version 1.0, section length -1 (not given: we write as we go).
        var body = new List<byte>(64);
        Append32(body, ByteOrderMagic);
        Append16(body, 1);
        Append16(body, 0);
        for (int k = 0; k < 8; k++) body.Add(0xFF);
        AppendOption(body, ShbUserAppl, Encoding.UTF8.GetBytes(application));
        AppendOption(body, OptEndOfOpt, []);
        WriteBlock(SectionHeaderBlockType, body);
    }

    private void WriteInterfaceDescription(string? name, string? description)
    {
        // 4.2: link type, reserved, snap length, then options.
        var body = new List<byte>(64);
        Append16(body, PcapWriter.LinkTypeRaw);
        Append16(body, 0);
        Append32(body, PcapWriter.SnapLength);
        if (name is not null) AppendOption(body, IfName, Encoding.UTF8.GetBytes(name));
        if (description is not null) AppendOption(body, IfDescription, Encoding.UTF8.GetBytes(description));
        AppendOption(body, IfTsResol, [MicrosecondResolution]);
        AppendOption(body, OptEndOfOpt, []);
        WriteBlock(InterfaceDescriptionBlockType, body);
    }

    private void WriteBlock(uint type, List<byte> body)
    {
        int total = 12 + body.Count;
        var block = new byte[total];
        BinaryPrimitives.WriteUInt32LittleEndian(block, type);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(4), (uint)total);
        body.CopyTo(block, 8);
        BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(total - 4), (uint)total);
        _stream.Write(block);
    }

    private static void AppendOption(List<byte> body, ushort code, ReadOnlySpan<byte> value)
    {
        // 3.5: the length is 16 bits and counts the value without its padding.
        if (value.Length > ushort.MaxValue)
            throw new ArgumentException($"pcapng option {code} is {value.Length} bytes long; an option holds at most {ushort.MaxValue}");
        Append16(body, code);
        Append16(body, (ushort)value.Length);
        foreach (byte b in value) body.Add(b);
        for (int k = Padding(value.Length); k > 0; k--) body.Add(0);
    }

    private static void Append16(List<byte> body, int value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)value);
        body.AddRange(b);
    }

    private static void Append32(List<byte> body, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        body.AddRange(b);
    }

    private static string LibraryVersion()
    {
        var assembly = typeof(PcapNgWriter).Assembly;
        return assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? assembly.GetName().Version?.ToString()
            ?? "unknown";
    }
}

/// <summary>An interface of a pcapng file (its Interface Description Block, 4.2).</summary>
/// <param name="UnitsPerSecond">Timestamp units per second from if_tsresol (10^6 when absent).</param>
public sealed record PcapNgInterface(int LinkType, int SnapLength, string? Name, string? Description, ulong UnitsPerSecond);

/// <summary>One Enhanced Packet Block read back, its time converted to microseconds.</summary>
public sealed record PcapNgRecord(long UnixMicroseconds, byte[] Packet, int OriginalLength, PcapNgInterface Interface, CaptureDirection Direction);

/// <summary>
/// Reads pcapng files (draft-ietf-opsawg-pcapng): either byte order, several sections, any
/// if_tsresol; Enhanced Packet Blocks become records and every other block type is skipped (3.1
/// lets a reader skip what it does not know by the total length).
/// </summary>
public static class PcapNgReader
{
    /// <summary>Reads every interface and packet; returns false with a reason for a malformed file.</summary>
    public static bool TryRead(ReadOnlySpan<byte> file, out List<PcapNgRecord> records, out List<PcapNgInterface> interfaces, out string? error)
    {
        records = [];
        interfaces = [];
        var section = new List<PcapNgInterface>();
        bool little = true;
        int i = 0;
        while (i < file.Length)
        {
            if (file.Length - i < 12) { error = $"truncated block header at offset {i}"; return false; }
            uint type = Read32(file[i..], little);
            if (type == PcapNgWriter.SectionHeaderBlockType)
            {
                // 4.1: the byte-order magic decides how this section, its own length included, is read.
                if (file.Length - i < 28) { error = $"truncated section header at offset {i}"; return false; }
                uint magic = BinaryPrimitives.ReadUInt32LittleEndian(file[(i + 8)..]);
                if (magic == PcapNgWriter.ByteOrderMagic) little = true;
                else if (magic == BinaryPrimitives.ReverseEndianness(PcapNgWriter.ByteOrderMagic)) little = false;
                else { error = $"bad byte-order magic 0x{magic:X8} at offset {i}"; return false; }
                if (Read16(file[(i + 12)..], little) != 1) { error = $"section version {Read16(file[(i + 12)..], little)} is not 1"; return false; }
                section = [];
            }
            else if (i == 0)
            {
                error = $"first block is type 0x{type:X8}, not a section header";
                return false;
            }
            uint total = Read32(file[(i + 4)..], little);
            if (total < 12 || total % 4 != 0) { error = $"block total length {total} at offset {i} is not a multiple of 4 of at least 12"; return false; }
            if (total > file.Length - i) { error = $"block at offset {i} runs past the end of the file"; return false; }
            var block = file.Slice(i, (int)total);
            if (Read32(block[^4..], little) != total) { error = $"block at offset {i}: the total length at its end differs from the one at its start"; return false; }
            var body = block[8..^4];
            if (type == PcapNgWriter.InterfaceDescriptionBlockType)
            {
                if (ReadInterface(body, little, out error) is not { } idb) return false;
                section.Add(idb);
                interfaces.Add(idb);
            }
            else if (type == PcapNgWriter.EnhancedPacketBlockType)
            {
                if (ReadPacket(body, little, section, out error) is not { } record) return false;
                records.Add(record);
            }
            i += (int)total;
        }
        error = null;
        return true;
    }

    private static PcapNgInterface? ReadInterface(ReadOnlySpan<byte> body, bool little, out string? error)
    {
        if (body.Length < 8) { error = "interface description block shorter than its fixed fields"; return null; }
        string? name = null, description = null;
        ulong unitsPerSecond = 1_000_000;
        foreach (var (code, value) in Options(body[8..], little, out error))
        {
            switch (code)
            {
                case PcapNgWriter.IfName: name = Encoding.UTF8.GetString(value); break;
                case PcapNgWriter.IfDescription: description = Encoding.UTF8.GetString(value); break;
                case PcapNgWriter.IfTsResol when value.Length == 1:
                    // 4.2.1: most significant bit clear, a power of 10; set, a power of 2.
                    int exponent = value[0] & 0x7F;
                    bool binary = (value[0] & 0x80) != 0;
                    if (binary ? exponent > 63 : exponent > 19) { error = $"if_tsresol 0x{value[0]:X2} does not fit 64 bits"; return null; }
                    unitsPerSecond = binary ? 1UL << exponent : (ulong)Math.Pow(10, exponent);
                    break;
            }
        }
        if (error is not null) return null;
        return new PcapNgInterface(Read16(body, little), (int)Read32(body[4..], little), name, description, unitsPerSecond);
    }

    private static PcapNgRecord? ReadPacket(ReadOnlySpan<byte> body, bool little, List<PcapNgInterface> section, out string? error)
    {
        if (body.Length < 20) { error = "enhanced packet block shorter than its fixed fields"; return null; }
        uint id = Read32(body, little);
        if (id >= section.Count) { error = $"enhanced packet block names interface {id}, but the section describes {section.Count}"; return null; }
        var idb = section[(int)id];
        ulong timestamp = (ulong)Read32(body[4..], little) << 32 | Read32(body[8..], little);
        uint captured = Read32(body[12..], little);
        uint original = Read32(body[16..], little);
        // 4.3: the data is padded to 32 bits; both must fit before the options.
        if (captured > body.Length - 20 || captured + PcapNgWriter.Padding((int)captured) > body.Length - 20) { error = $"packet data of {captured} bytes runs past its block"; return null; }
        int padded = (int)captured + PcapNgWriter.Padding((int)captured);
        var direction = CaptureDirection.Unknown;
        foreach (var (code, value) in Options(body[(20 + padded)..], little, out error))
            if (code == PcapNgWriter.EpbFlags && value.Length == 4) direction = (CaptureDirection)(Read32(value, little) & 3);
        if (error is not null) return null;
        long micros = (long)((UInt128)timestamp * 1_000_000 / idb.UnitsPerSecond);
        return new PcapNgRecord(micros, body.Slice(20, (int)captured).ToArray(), (int)Math.Min(original, int.MaxValue), idb, direction);
    }

    /// <summary>The options of a block (3.5) up to opt_endofopt or the end; <paramref name="error"/> set when one runs past the block.</summary>
    private static List<(ushort Code, byte[] Value)> Options(ReadOnlySpan<byte> options, bool little, out string? error)
    {
        var list = new List<(ushort, byte[])>();
        int i = 0;
        while (options.Length - i >= 4)
        {
            ushort code = Read16(options[i..], little);
            int length = Read16(options[(i + 2)..], little);
            if (code == PcapNgWriter.OptEndOfOpt) break;
            i += 4;
            if (length + PcapNgWriter.Padding(length) > options.Length - i) { error = $"option {code} of {length} bytes runs past its block"; return list; }
            list.Add((code, options.Slice(i, length).ToArray()));
            i += length + PcapNgWriter.Padding(length);
        }
        error = null;
        return list;
    }

    private static ushort Read16(ReadOnlySpan<byte> s, bool little) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(s) : BinaryPrimitives.ReadUInt16BigEndian(s);

    private static uint Read32(ReadOnlySpan<byte> s, bool little) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(s) : BinaryPrimitives.ReadUInt32BigEndian(s);
}
