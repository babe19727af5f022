using System.Buffers.Binary;

namespace TunTcp.Wire;

/// <summary>
/// A checked, read-only view of an IPv4 packet (RFC 791). <see cref="TryParse"/> validates the
/// version, IHL and total length once; after that no accessor can fail. The view is bounded to
/// the total length, so link-layer padding after the packet is ignored.
/// </summary>
internal readonly ref struct Ipv4Packet
{
    public const int MinHeaderLength = 20;
    public const int MaxPacketLength = 65535;

    private const int VersionIhlOffset = 0;
    private const int TosOffset = 1;
    private const int TotalLengthOffset = 2;
    private const int IdentificationOffset = 4;
    private const int FlagsFragmentOffset = 6;
    private const int TtlOffset = 8;
    private const int ProtocolOffset = 9;
    private const int ChecksumOffset = 10;
    private const int SourceOffset = 12;
    private const int DestinationOffset = 16;

    private readonly ReadOnlySpan<byte> _packet;

    private Ipv4Packet(ReadOnlySpan<byte> packet) => _packet = packet;

    /// <summary>Validates <paramref name="buffer"/> as an IPv4 packet; never throws.</summary>
    public static bool TryParse(ReadOnlySpan<byte> buffer, out Ipv4Packet packet, out ParseError error)
    {
        packet = default;
        if (buffer.Length < MinHeaderLength) { error = buffer.Length > 0 && buffer[0] >> 4 != 4 ? ParseError.WrongVersion : ParseError.Truncated; return false; }
        if (buffer.Length > MaxPacketLength) { error = ParseError.Oversized; return false; }
        if (buffer[VersionIhlOffset] >> 4 != 4) { error = ParseError.WrongVersion; return false; }
        int headerLength = (buffer[VersionIhlOffset] & 0x0F) * 4;
        if (headerLength < MinHeaderLength || headerLength > buffer.Length) { error = ParseError.BadHeaderLength; return false; }
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(buffer[TotalLengthOffset..]);
        if (totalLength < headerLength) { error = ParseError.TotalLengthTooShort; return false; }
        if (totalLength > buffer.Length) { error = ParseError.TotalLengthPastEnd; return false; }
        packet = new Ipv4Packet(buffer[..totalLength]);
        error = ParseError.None;
        return true;
    }

    public int Version => 4;
    public int HeaderLength => (_packet[VersionIhlOffset] & 0x0F) * 4;
    /// <summary>The DSCP and ECN bits (the former type-of-service byte).</summary>
    public byte TypeOfService => _packet[TosOffset];
    public int TotalLength => _packet.Length;
    public ushort Identification => BinaryPrimitives.ReadUInt16BigEndian(_packet[IdentificationOffset..]);
    public bool DontFragment => (_packet[FlagsFragmentOffset] & 0x40) != 0;
    public bool MoreFragments => (_packet[FlagsFragmentOffset] & 0x20) != 0;
    /// <summary>Fragment offset in bytes.</summary>
    public int FragmentOffset => (BinaryPrimitives.ReadUInt16BigEndian(_packet[FlagsFragmentOffset..]) & 0x1FFF) * 8;
    /// <summary>True for any fragment (first, middle or last): its payload is not a whole transport segment.</summary>
    public bool IsFragment => MoreFragments || FragmentOffset != 0;
    public byte TimeToLive => _packet[TtlOffset];
    public IpProtocol Protocol => (IpProtocol)_packet[ProtocolOffset];
    public ushort HeaderChecksum => BinaryPrimitives.ReadUInt16BigEndian(_packet[ChecksumOffset..]);
    public Ipv4Address Source => Ipv4Address.Read(_packet[SourceOffset..]);
    public Ipv4Address Destination => Ipv4Address.Read(_packet[DestinationOffset..]);
    public ReadOnlySpan<byte> Header => _packet[..HeaderLength];
    public ReadOnlySpan<byte> Options => _packet[MinHeaderLength..HeaderLength];
    public ReadOnlySpan<byte> Payload => _packet[HeaderLength..];
    /// <summary>The whole packet, bounded to its total length.</summary>
    public ReadOnlySpan<byte> Bytes => _packet;

    /// <summary>RFC 791: the header checksum sums to zero over a correct header.</summary>
    public bool IsHeaderChecksumValid => Checksum.Compute(Header) == 0;
}

/// <summary>The fields TunTcp writes into an IPv4 header (20 bytes, no options).</summary>
internal readonly record struct Ipv4Header(
    Ipv4Address Source,
    Ipv4Address Destination,
    IpProtocol Protocol,
    int PayloadLength,
    byte TimeToLive = 64,
    ushort Identification = 0,
    bool DontFragment = true,
    byte TypeOfService = 0)
{
    public const int Length = Ipv4Packet.MinHeaderLength;

    public int TotalLength => Length + PayloadLength;

    /// <summary>Writes the header with its checksum into the first 20 bytes of <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        var h = destination[..Length];
        h[0] = 0x45;
        h[1] = TypeOfService;
        BinaryPrimitives.WriteUInt16BigEndian(h[2..], checked((ushort)TotalLength));
        BinaryPrimitives.WriteUInt16BigEndian(h[4..], Identification);
        BinaryPrimitives.WriteUInt16BigEndian(h[6..], DontFragment ? (ushort)0x4000 : (ushort)0);
        h[8] = TimeToLive;
        h[9] = (byte)Protocol;
        h[10] = 0; h[11] = 0;
        Source.Write(h[12..]);
        Destination.Write(h[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(h[10..], Checksum.Compute(h));
    }
}
