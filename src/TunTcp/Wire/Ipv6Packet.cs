using System.Buffers.Binary;

namespace TunTcp.Wire;

/// <summary>
/// A checked, read-only view of an IPv6 packet's fixed header (RFC 8200 3). <see cref="TryParse"/>
/// validates the version and payload length once; the view is bounded to 40 + payload length,
/// so link-layer padding is ignored. Extension headers are walked by <see cref="Ipv6HeaderChain"/>.
/// </summary>
internal readonly ref struct Ipv6Packet
{
    public const int HeaderLength = 40;
    /// <summary>RFC 8200 5: every link an IPv6 packet crosses has an MTU of at least 1280.</summary>
    public const int MinimumMtu = 1280;

    /// <summary>Offsets of the fields a Parameter Problem may point at (RFC 4443 3.4).</summary>
    public const int PayloadLengthOffset = 4, NextHeaderOffset = 6;

    private readonly ReadOnlySpan<byte> _packet;

    private Ipv6Packet(ReadOnlySpan<byte> packet) => _packet = packet;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Ipv6Packet packet, out ParseError error)
    {
        packet = default;
        if (buffer.Length < HeaderLength) { error = buffer.Length > 0 && buffer[0] >> 4 != 6 ? ParseError.WrongVersion : ParseError.Truncated; return false; }
        if (buffer[0] >> 4 != 6) { error = ParseError.WrongVersion; return false; }
        int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(buffer[4..]);
        // A zero payload length with a Jumbo Payload option is a jumbogram (RFC 2675), which no
        // link TunTcp runs on carries: its Hop-by-Hop header then lies past the 40 bytes the view
        // holds, and the chain walk drops it as truncated.
        if (HeaderLength + payloadLength > buffer.Length) { error = ParseError.TotalLengthPastEnd; return false; }
        packet = new Ipv6Packet(buffer[..(HeaderLength + payloadLength)]);
        error = ParseError.None;
        return true;
    }

    public int Version => 6;
    /// <summary>The traffic class: DSCP and the ECN field (RFC 3168 5).</summary>
    public byte TrafficClass => (byte)((BinaryPrimitives.ReadUInt16BigEndian(_packet) >> 4) & 0xFF);
    public int FlowLabel => (int)(BinaryPrimitives.ReadUInt32BigEndian(_packet) & 0xFFFFF);
    public int PayloadLength => BinaryPrimitives.ReadUInt16BigEndian(_packet[4..]);
    /// <summary>The next-header field: an <see cref="IpProtocol"/> number or an extension header.</summary>
    public byte NextHeader => _packet[NextHeaderOffset];
    public byte HopLimit => _packet[7];
    public ReadOnlySpan<byte> SourceBytes => _packet.Slice(8, 16);
    public ReadOnlySpan<byte> DestinationBytes => _packet.Slice(24, 16);
    public IpAddress Source => IpAddress.ReadV6(SourceBytes);
    public IpAddress Destination => IpAddress.ReadV6(DestinationBytes);
    /// <summary>Everything after the fixed header: extension headers, then the upper-layer message.</summary>
    public ReadOnlySpan<byte> Payload => _packet[HeaderLength..];
    /// <summary>The whole packet, bounded to its payload length.</summary>
    public ReadOnlySpan<byte> Bytes => _packet;
}

/// <summary>The fields TunTcp writes into an IPv6 fixed header (no extension headers of its own but Fragment).</summary>
internal readonly record struct Ipv6Header(
    IpAddress Source,
    IpAddress Destination,
    byte NextHeader,
    int PayloadLength,
    byte HopLimit = 64,
    byte TrafficClass = 0,
    int FlowLabel = 0)
{
    public const int Length = Ipv6Packet.HeaderLength;

    public int TotalLength => Length + PayloadLength;

    public void Write(Span<byte> destination)
    {
        var h = destination[..Length];
        BinaryPrimitives.WriteUInt32BigEndian(h, 6u << 28 | (uint)TrafficClass << 20 | (uint)(FlowLabel & 0xFFFFF));
        BinaryPrimitives.WriteUInt16BigEndian(h[4..], checked((ushort)PayloadLength));
        h[6] = NextHeader;
        h[7] = HopLimit;
        Source.WriteV6(h[8..]);
        Destination.WriteV6(h[24..]);
    }
}

/// <summary>IPv6 extension header numbers (RFC 8200 4) and the no-next-header value.</summary>
internal static class Ipv6NextHeader
{
    public const byte HopByHop = 0, Routing = 43, Fragment = 44, DestinationOptions = 60, NoNextHeader = 59;
    /// <summary>Encapsulating Security Payload and Authentication Header (RFC 4303, RFC 4302): not spoken.</summary>
    public const byte Esp = 50, AuthenticationHeader = 51;
}

/// <summary>The IPv6 Fragment header (RFC 8200 4.5): 8 bytes.</summary>
internal static class Ipv6FragmentHeader
{
    public const int Length = 8;

    public static void Write(Span<byte> destination, byte nextHeader, int fragmentOffset, bool moreFragments, uint identification)
    {
        destination[0] = nextHeader;
        destination[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)(fragmentOffset | (moreFragments ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], identification);
    }
}

/// <summary>What walking an IPv6 header chain found wrong; each maps to one action of RFC 8200 4.</summary>
internal enum Ipv6ChainProblem : byte
{
    None,
    /// <summary>A header runs past the end of the packet: dropped silently (as Linux).</summary>
    Truncated,
    /// <summary>RFC 8200 4: an unrecognised Next Header value: Parameter Problem code 1.</summary>
    UnrecognizedNextHeader,
    /// <summary>RFC 8200 4.2: an unrecognised option whose type says "skip over": never reported.</summary>
    UnrecognizedOptionDiscard,
    /// <summary>RFC 8200 4.2: an unrecognised option of type 10xxxxxx: Parameter Problem code 2, even to multicast.</summary>
    UnrecognizedOptionReport,
    /// <summary>RFC 8200 4.2: an unrecognised option of type 11xxxxxx: Parameter Problem code 2 unless to multicast.</summary>
    UnrecognizedOptionReportUnicast,
    /// <summary>RFC 8200 4.4: a Routing header with segments left: Parameter Problem code 0 at its type.</summary>
    RoutingSegmentsLeft,
    /// <summary>An option's length runs past its header: dropped silently (Linux ip6_parse_tlv).</summary>
    BadOptionLength,
    /// <summary>More extension headers than any sane sender uses: dropped.</summary>
    TooManyHeaders,
}

/// <summary>
/// The result of walking an IPv6 packet's extension headers (RFC 8200 4.1) up to the
/// upper-layer header, or up to a Fragment header, whose fragmentable part is only walked after
/// reassembly (4.5). Offsets count from the start of the packet.
/// </summary>
internal readonly record struct Ipv6HeaderChain(
    byte UpperLayer,
    int UpperLayerOffset,
    int NextHeaderFieldOffset,
    int FragmentHeaderOffset,
    Ipv6ChainProblem Problem,
    int ProblemPointer)
{
    /// <summary>Extension headers beyond this count get the packet dropped (Linux limits options per header to 8).</summary>
    public const int MaxHeaders = 16;

    public bool HasFragmentHeader => FragmentHeaderOffset >= 0;

    /// <summary>
    /// Walks the chain of <paramref name="packet"/> (a whole IPv6 packet, bounded to its payload
    /// length). With <paramref name="startOffset"/> and <paramref name="firstNextHeader"/> the
    /// walk starts after a Fragment header of a first fragment (to check, per RFC 8200 4.5 and RFC
    /// 7112, that it holds the whole chain). Never throws.
    /// </summary>
    public static Ipv6HeaderChain Walk(ReadOnlySpan<byte> packet, int startOffset = Ipv6Packet.HeaderLength, int firstNextHeader = -1, int firstNextHeaderField = Ipv6Packet.NextHeaderOffset)
    {
        int offset = startOffset;
        int field = firstNextHeaderField;
        byte next = firstNextHeader >= 0 ? (byte)firstNextHeader : packet[Ipv6Packet.NextHeaderOffset];
        for (int count = 0; ; count++)
        {
            if (count > MaxHeaders) return Fail(next, offset, field, Ipv6ChainProblem.TooManyHeaders, 0);
            switch (next)
            {
                case Ipv6NextHeader.HopByHop:
                    // RFC 8200 4.1: Hop-by-Hop Options only immediately after the IPv6 header;
                    // anywhere else the value is not recognised (as Linux, Code 1 at that field).
                    if (offset != Ipv6Packet.HeaderLength || field != Ipv6Packet.NextHeaderOffset)
                        return Fail(next, offset, field, Ipv6ChainProblem.UnrecognizedNextHeader, field);
                    goto case Ipv6NextHeader.DestinationOptions;
                case Ipv6NextHeader.DestinationOptions:
                {
                    if (!HeaderLength(packet, offset, out int length)) return Fail(next, offset, field, Ipv6ChainProblem.Truncated, 0);
                    var (problem, pointer) = CheckOptions(packet, offset, length);
                    if (problem != Ipv6ChainProblem.None) return Fail(next, offset, field, problem, pointer);
                    field = offset;
                    next = packet[offset];
                    offset += length;
                    break;
                }
                case Ipv6NextHeader.Routing:
                {
                    if (!HeaderLength(packet, offset, out int length)) return Fail(next, offset, field, Ipv6ChainProblem.Truncated, 0);
                    // RFC 8200 4.4: TunTcp recognises no routing type, so a header with segments
                    // left is answered with Parameter Problem code 0 pointing at the type; with none
                    // left it is ignored and the next header processed.
                    if (packet[offset + 3] != 0) return Fail(next, offset, field, Ipv6ChainProblem.RoutingSegmentsLeft, offset + 2);
                    field = offset;
                    next = packet[offset];
                    offset += length;
                    break;
                }
                case Ipv6NextHeader.Fragment:
                    if (offset + Ipv6FragmentHeader.Length > packet.Length) return Fail(next, offset, field, Ipv6ChainProblem.Truncated, 0);
                    return new Ipv6HeaderChain(next, offset, field, offset, Ipv6ChainProblem.None, 0);
                default:
                    // An upper-layer header (or No Next Header, or one TunTcp does not speak: the
                    // caller decides, since only it knows which protocols it has).
                    return new Ipv6HeaderChain(next, offset, field, -1, Ipv6ChainProblem.None, 0);
            }
        }
    }

    private static Ipv6HeaderChain Fail(byte next, int offset, int field, Ipv6ChainProblem problem, int pointer) =>
        new(next, offset, field, -1, problem, pointer);

    /// <summary>Hop-by-Hop, Destination Options and Routing headers: (Hdr Ext Len + 1) * 8 bytes.</summary>
    private static bool HeaderLength(ReadOnlySpan<byte> packet, int offset, out int length)
    {
        length = 0;
        if (offset + 2 > packet.Length) return false;
        length = (packet[offset + 1] + 1) * 8;
        return offset + length <= packet.Length;
    }

    /// <summary>RFC 8200 4.2: the TLV-encoded options of a Hop-by-Hop or Destination Options header.</summary>
    private static (Ipv6ChainProblem Problem, int Pointer) CheckOptions(ReadOnlySpan<byte> packet, int offset, int length)
    {
        int end = offset + length;
        int i = offset + 2;
        while (i < end)
        {
            byte type = packet[i];
            if (type == 0) { i++; continue; } // Pad1
            if (i + 2 > end) return (Ipv6ChainProblem.BadOptionLength, 0);
            int optionEnd = i + 2 + packet[i + 1];
            if (optionEnd > end) return (Ipv6ChainProblem.BadOptionLength, 0);
            // PadN (1) and Router Alert (5, RFC 2711; MLD carries it) are understood; any other
            // type's two high-order bits say what to do with an option we do not recognise.
            if (type is not (1 or 5))
            {
                switch (type >> 6)
                {
                    case 0: break; // skip over this option
                    case 1: return (Ipv6ChainProblem.UnrecognizedOptionDiscard, i);
                    case 2: return (Ipv6ChainProblem.UnrecognizedOptionReport, i);
                    default: return (Ipv6ChainProblem.UnrecognizedOptionReportUnicast, i);
                }
            }
            i = optionEnd;
        }
        return (Ipv6ChainProblem.None, 0);
    }
}
