using System.Buffers.Binary;

namespace TunTcp.Wire;

/// <summary>A checked, read-only view of a UDP datagram (RFC 768), bounded to its length field.</summary>
internal readonly ref struct UdpDatagram
{
    public const int HeaderLength = 8;

    private readonly ReadOnlySpan<byte> _datagram;

    private UdpDatagram(ReadOnlySpan<byte> datagram) => _datagram = datagram;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out UdpDatagram datagram, out ParseError error)
    {
        datagram = default;
        if (buffer.Length < HeaderLength) { error = ParseError.Truncated; return false; }
        if (buffer.Length > Ipv4Packet.MaxPacketLength) { error = ParseError.Oversized; return false; }
        int length = BinaryPrimitives.ReadUInt16BigEndian(buffer[4..]);
        if (length < HeaderLength || length > buffer.Length) { error = ParseError.BadUdpLength; return false; }
        datagram = new UdpDatagram(buffer[..length]);
        error = ParseError.None;
        return true;
    }

    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_datagram);
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_datagram[2..]);
    public int Length => _datagram.Length;
    public ushort Checksum => BinaryPrimitives.ReadUInt16BigEndian(_datagram[6..]);
    public ReadOnlySpan<byte> Payload => _datagram[HeaderLength..];
    public ReadOnlySpan<byte> Bytes => _datagram;

    /// <summary>
    /// RFC 768: a zero checksum means the sender computed none, which is accepted over IPv4.
    /// RFC 8200 8.1: over IPv6 the checksum is mandatory and a zero one is discarded.
    /// </summary>
    public bool IsChecksumValid(IpAddress source, IpAddress destination) =>
        Checksum == 0 ? source.IsV4 : Wire.Checksum.ComputeTransport(source, destination, IpProtocol.Udp, _datagram) == 0;
}

/// <summary>The fields of a UDP header to be written.</summary>
internal readonly record struct UdpHeader(ushort SourcePort, ushort DestinationPort, int PayloadLength)
{
    public const int Length = UdpDatagram.HeaderLength;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], DestinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], checked((ushort)(Length + PayloadLength)));
        destination[6] = 0; destination[7] = 0;
    }

    /// <summary>Stores the checksum of a complete datagram; a computed zero is sent as 0xFFFF (RFC 768, RFC 8200 8.1).</summary>
    public static void WriteChecksum(Span<byte> datagram, IpAddress source, IpAddress destination)
    {
        datagram[6] = 0; datagram[7] = 0;
        ushort sum = Checksum.ComputeTransport(source, destination, IpProtocol.Udp, datagram);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[6..], sum == 0 ? (ushort)0xFFFF : sum);
    }
}
