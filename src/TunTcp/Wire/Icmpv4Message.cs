using System.Buffers.Binary;

namespace TunTcp.Wire;

/// <summary>ICMPv4 message types (RFC 792) that TunTcp names.</summary>
internal enum Icmpv4Type : byte
{
    EchoReply = 0,
    DestinationUnreachable = 3,
    Redirect = 5,
    EchoRequest = 8,
    TimeExceeded = 11,
    ParameterProblem = 12,
}

/// <summary>Time-exceeded codes (RFC 792).</summary>
internal enum Icmpv4TimeExceededCode : byte
{
    TtlExceeded = 0,
    FragmentReassembly = 1,
}

/// <summary>Destination-unreachable codes (RFC 792, RFC 1191).</summary>
internal enum Icmpv4UnreachableCode : byte
{
    NetUnreachable = 0,
    HostUnreachable = 1,
    ProtocolUnreachable = 2,
    PortUnreachable = 3,
    FragmentationNeeded = 4,
}

/// <summary>A checked, read-only view of an ICMPv4 message (RFC 792).</summary>
internal readonly ref struct Icmpv4Message
{
    public const int HeaderLength = IcmpLayout.HeaderLength;

    private readonly ReadOnlySpan<byte> _message;

    private Icmpv4Message(ReadOnlySpan<byte> message) => _message = message;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Icmpv4Message message, out ParseError error)
    {
        message = IcmpLayout.Check(buffer, out error) ? new Icmpv4Message(buffer) : default;
        return error == ParseError.None;
    }

    public Icmpv4Type Type => (Icmpv4Type)_message[0];
    public byte Code => _message[1];
    public ushort Checksum => BinaryPrimitives.ReadUInt16BigEndian(_message[2..]);
    /// <summary>Echo identifier (bytes 4-5).</summary>
    public ushort Identifier => BinaryPrimitives.ReadUInt16BigEndian(_message[4..]);
    /// <summary>Echo sequence number (bytes 6-7).</summary>
    public ushort SequenceNumber => BinaryPrimitives.ReadUInt16BigEndian(_message[6..]);
    /// <summary>Bytes 4-7, whose meaning depends on the type (e.g. next-hop MTU for code 4).</summary>
    public uint RestOfHeader => BinaryPrimitives.ReadUInt32BigEndian(_message[4..]);
    /// <summary>Echo data, or the invoking packet's header and first bytes for error messages.</summary>
    public ReadOnlySpan<byte> Data => _message[HeaderLength..];
    public ReadOnlySpan<byte> Bytes => _message;
    public bool IsChecksumValid => Wire.Checksum.Compute(_message) == 0;
}

/// <summary>Writers for the ICMPv4 messages TunTcp sends.</summary>
internal static class Icmpv4Writer
{
    /// <summary>
    /// RFC 1812 4.3.2.3: an ICMP error carries as much of the invoking packet as fits without the
    /// whole datagram exceeding 576 bytes (20 IP + 8 ICMP + 548).
    /// </summary>
    public const int MaxInvokingBytes = 576 - Ipv4Header.Length - Icmpv4Message.HeaderLength;

    /// <summary>Writes an echo request or reply; returns the message length.</summary>
    public static int WriteEcho(Span<byte> destination, Icmpv4Type type, ushort identifier, ushort sequence, ReadOnlySpan<byte> data) =>
        Finish(destination, IcmpLayout.WriteEcho(destination, (byte)type, identifier, sequence, data));

    /// <summary>
    /// Writes a destination-unreachable message quoting <paramref name="invokingPacket"/> (whole IP
    /// packet), truncated to <see cref="MaxInvokingBytes"/>; returns the message length.
    /// </summary>
    public static int WriteDestinationUnreachable(Span<byte> destination, Icmpv4UnreachableCode code, ReadOnlySpan<byte> invokingPacket, ushort nextHopMtu = 0) =>
        WriteError(destination, Icmpv4Type.DestinationUnreachable, (byte)code, nextHopMtu, invokingPacket);

    /// <summary>
    /// Writes an error message (RFC 792: destination unreachable, time exceeded, parameter
    /// problem) with bytes 4-7 set to <paramref name="restOfHeader"/> (next-hop MTU, pointer in
    /// the high byte, or zero), quoting <paramref name="invokingPacket"/> truncated to
    /// <see cref="MaxInvokingBytes"/>; returns the message length.
    /// </summary>
    public static int WriteError(Span<byte> destination, Icmpv4Type type, byte code, uint restOfHeader, ReadOnlySpan<byte> invokingPacket)
        => Finish(destination, IcmpLayout.WriteError(destination, (byte)type, code, restOfHeader, invokingPacket, MaxInvokingBytes));

    private static int Finish(Span<byte> destination, int length) =>
        IcmpLayout.SetChecksum(destination, length, Checksum.Compute(destination[..length]));
}
