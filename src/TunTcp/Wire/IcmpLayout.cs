using System.Buffers.Binary;

namespace TunTcp.Wire;

/// <summary>
/// The 8-byte message header both ICMP families share (RFC 792; RFC 4443 2.1 keeps its layout):
/// type, code, checksum, then 4 bytes that are the echo identifier and sequence number or an
/// error's parameter. The families differ only in their type numbers and checksum (ICMPv6 adds
/// the pseudo-header), which the callers supply.
/// </summary>
internal static class IcmpLayout
{
    public const int HeaderLength = 8;

    /// <summary>
    /// Whether <paramref name="buffer"/> can be read as a message: every ICMP message TunTcp
    /// reads has the 4 bytes after type, code and checksum; none is larger than an IP packet.
    /// </summary>
    public static bool Check(ReadOnlySpan<byte> buffer, out ParseError error)
    {
        error = buffer.Length < HeaderLength ? ParseError.Truncated
            : buffer.Length > Ipv4Packet.MaxPacketLength ? ParseError.Oversized
            : ParseError.None;
        return error == ParseError.None;
    }

    /// <summary>Writes an echo request or reply without its checksum; returns the message length.</summary>
    public static int WriteEcho(Span<byte> destination, byte type, ushort identifier, ushort sequence, ReadOnlySpan<byte> data)
    {
        destination[0] = type;
        destination[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], identifier);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], sequence);
        data.CopyTo(destination[HeaderLength..]);
        ClearChecksum(destination);
        return HeaderLength + data.Length;
    }

    /// <summary>
    /// Writes an error message without its checksum, quoting at most <paramref name="maxQuoted"/>
    /// bytes of <paramref name="invokingPacket"/>; returns the message length.
    /// </summary>
    public static int WriteError(Span<byte> destination, byte type, byte code, uint parameter, ReadOnlySpan<byte> invokingPacket, int maxQuoted)
    {
        var quoted = invokingPacket[..Math.Min(invokingPacket.Length, maxQuoted)];
        destination[0] = type;
        destination[1] = code;
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], parameter);
        quoted.CopyTo(destination[HeaderLength..]);
        ClearChecksum(destination);
        return HeaderLength + quoted.Length;
    }

    /// <summary>Stores the checksum computed over the message (with its checksum field zero); returns <paramref name="length"/>.</summary>
    public static int SetChecksum(Span<byte> destination, int length, ushort checksum)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], checksum);
        return length;
    }

    private static void ClearChecksum(Span<byte> destination)
    {
        destination[2] = 0;
        destination[3] = 0;
    }
}
