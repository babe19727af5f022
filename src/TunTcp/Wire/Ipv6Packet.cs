using System.Buffers.Binary;
using System.Net;

namespace TunTcp.Wire;

/// <summary>
/// A checked view of the IPv6 fixed header (RFC 8200 3). TunTcp does not speak IPv6; the view
/// exists so that such packets are recognised, shown by tracers and ignored deliberately.
/// </summary>
public readonly ref struct Ipv6Packet
{
    public const int HeaderLength = 40;

    private readonly ReadOnlySpan<byte> _packet;

    private Ipv6Packet(ReadOnlySpan<byte> packet) => _packet = packet;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Ipv6Packet packet, out ParseError error)
    {
        packet = default;
        if (buffer.Length < HeaderLength) { error = buffer.Length > 0 && buffer[0] >> 4 != 6 ? ParseError.WrongVersion : ParseError.Truncated; return false; }
        if (buffer[0] >> 4 != 6) { error = ParseError.WrongVersion; return false; }
        int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(buffer[4..]);
        if (HeaderLength + payloadLength > buffer.Length) { error = ParseError.TotalLengthPastEnd; return false; }
        packet = new Ipv6Packet(buffer[..(HeaderLength + payloadLength)]);
        error = ParseError.None;
        return true;
    }

    public int Version => 6;
    public byte TrafficClass => (byte)((BinaryPrimitives.ReadUInt16BigEndian(_packet) >> 4) & 0xFF);
    public int FlowLabel => (int)(BinaryPrimitives.ReadUInt32BigEndian(_packet) & 0xFFFFF);
    public int PayloadLength => BinaryPrimitives.ReadUInt16BigEndian(_packet[4..]);
    /// <summary>The next-header field: an <see cref="IpProtocol"/> number or an extension header.</summary>
    public byte NextHeader => _packet[6];
    public byte HopLimit => _packet[7];
    public ReadOnlySpan<byte> SourceBytes => _packet.Slice(8, 16);
    public ReadOnlySpan<byte> DestinationBytes => _packet.Slice(24, 16);
    public IPAddress Source => new(SourceBytes);
    public IPAddress Destination => new(DestinationBytes);
    public ReadOnlySpan<byte> Payload => _packet[HeaderLength..];
}
