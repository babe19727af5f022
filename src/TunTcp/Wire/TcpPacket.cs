using System.Buffers.Binary;

namespace TunTcp.Wire;

/// <summary>
/// A checked, read-only view of a TCP segment (RFC 9293 3.1): header, options and payload.
/// <see cref="TryParse"/> validates the data offset and the options once; no accessor can fail
/// afterwards. The checksum is verified separately because it needs the IP pseudo-header.
/// </summary>
internal readonly ref struct TcpPacket
{
    public const int MinHeaderLength = 20;

    private const int SourcePortOffset = 0;
    private const int DestinationPortOffset = 2;
    private const int SequenceOffset = 4;
    private const int AcknowledgmentOffset = 8;
    private const int DataOffsetOffset = 12;
    private const int FlagsOffset = 13;
    private const int WindowOffset = 14;
    private const int ChecksumOffset = 16;
    private const int UrgentOffset = 18;

    private readonly ReadOnlySpan<byte> _segment;
    private readonly TcpOptions _options;

    private TcpPacket(ReadOnlySpan<byte> segment, TcpOptions options)
    {
        _segment = segment;
        _options = options;
    }

    /// <summary>Validates <paramref name="segment"/> (the IP payload) as a TCP segment; never throws.</summary>
    public static bool TryParse(ReadOnlySpan<byte> segment, out TcpPacket packet, out ParseError error)
    {
        packet = default;
        if (segment.Length < MinHeaderLength) { error = ParseError.Truncated; return false; }
        if (segment.Length > Ipv4Packet.MaxPacketLength) { error = ParseError.Oversized; return false; }
        int headerLength = (segment[DataOffsetOffset] >> 4) * 4;
        if (headerLength < MinHeaderLength) { error = ParseError.BadDataOffset; return false; }
        if (headerLength > segment.Length) { error = ParseError.DataOffsetPastEnd; return false; }
        if (!TcpOptions.TryParse(segment[MinHeaderLength..headerLength], out var options, out error)) return false;
        packet = new TcpPacket(segment, options);
        return true;
    }

    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_segment[SourcePortOffset..]);
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_segment[DestinationPortOffset..]);
    public SeqNumber SequenceNumber => new(BinaryPrimitives.ReadUInt32BigEndian(_segment[SequenceOffset..]));
    public SeqNumber AcknowledgmentNumber => new(BinaryPrimitives.ReadUInt32BigEndian(_segment[AcknowledgmentOffset..]));
    /// <summary>Data offset in 32-bit words.</summary>
    public int DataOffset => _segment[DataOffsetOffset] >> 4;
    public int HeaderLength => DataOffset * 4;
    /// <summary>The four bits after the data offset: reserved, the lowest formerly NS (RFC 3540, historic).</summary>
    public int ReservedBits => _segment[DataOffsetOffset] & 0x0F;
    public TcpFlags Flags => (TcpFlags)_segment[FlagsOffset];
    public bool Syn => (Flags & TcpFlags.Syn) != 0;
    public bool Ack => (Flags & TcpFlags.Ack) != 0;
    public bool Fin => (Flags & TcpFlags.Fin) != 0;
    public bool Rst => (Flags & TcpFlags.Rst) != 0;
    public bool Psh => (Flags & TcpFlags.Psh) != 0;
    /// <summary>The raw (unscaled) window field.</summary>
    public ushort Window => BinaryPrimitives.ReadUInt16BigEndian(_segment[WindowOffset..]);
    public ushort Checksum => BinaryPrimitives.ReadUInt16BigEndian(_segment[ChecksumOffset..]);
    public ushort UrgentPointer => BinaryPrimitives.ReadUInt16BigEndian(_segment[UrgentOffset..]);
    public ReadOnlySpan<byte> OptionBytes => _segment[MinHeaderLength..HeaderLength];
    public TcpOptions Options => _options;
    public ReadOnlySpan<byte> Payload => _segment[HeaderLength..];
    public ReadOnlySpan<byte> Bytes => _segment;

    /// <summary>RFC 9293 3.1 (RFC 8200 8.1 for IPv6): the checksum over pseudo-header, header and data sums to zero.</summary>
    public bool IsChecksumValid(IpAddress source, IpAddress destination) =>
        Wire.Checksum.ComputeTransport(source, destination, IpProtocol.Tcp, _segment) == 0;

    /// <summary>RFC 9293 3.4 SEG.LEN: payload bytes plus one for SYN and one for FIN.</summary>
    public int SegmentLength => Payload.Length + (Syn ? 1 : 0) + (Fin ? 1 : 0);
}

/// <summary>The fixed fields of a TCP header to be written (RFC 9293 3.1).</summary>
internal readonly record struct TcpHeader(
    ushort SourcePort,
    ushort DestinationPort,
    SeqNumber SequenceNumber,
    SeqNumber AcknowledgmentNumber,
    TcpFlags Flags,
    ushort Window,
    ushort UrgentPointer = 0)
{
    /// <summary>
    /// The ECN codepoint for the IP header that carries this segment (RFC 3168 5: TCP decides
    /// which segments are ECN-capable, IP carries the mark). Not part of the TCP header.
    /// </summary>
    public IpEcn Ecn { get; init; }

    /// <summary>Header length with these options: 20 plus the padded options.</summary>
    public static int LengthWith(in TcpOptions options) => TcpPacket.MinHeaderLength + options.EncodedLength;

    /// <summary>
    /// Writes header and options into <paramref name="destination"/> with a zero checksum; returns
    /// the header length. Call <see cref="WriteChecksum"/> once the payload follows it.
    /// </summary>
    public int Write(Span<byte> destination, in TcpOptions options)
    {
        int optionsLength = options.Write(destination[TcpPacket.MinHeaderLength..]);
        int headerLength = TcpPacket.MinHeaderLength + optionsLength;
        BinaryPrimitives.WriteUInt16BigEndian(destination, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], SequenceNumber.Value);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], AcknowledgmentNumber.Value);
        destination[12] = (byte)((headerLength / 4) << 4);
        destination[13] = (byte)Flags;
        BinaryPrimitives.WriteUInt16BigEndian(destination[14..], Window);
        destination[16] = 0; destination[17] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[18..], UrgentPointer);
        return headerLength;
    }

    /// <summary>Computes and stores the checksum of a complete segment (header, options, payload).</summary>
    public static void WriteChecksum(Span<byte> segment, IpAddress source, IpAddress destination)
    {
        segment[16] = 0; segment[17] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(segment[16..], Checksum.ComputeTransport(source, destination, IpProtocol.Tcp, segment));
    }
}
