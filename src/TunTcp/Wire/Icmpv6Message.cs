using System.Buffers.Binary;

namespace TunTcp.Wire;

/// <summary>ICMPv6 message types (RFC 4443, RFC 4861 neighbour discovery, RFC 2710/3810 MLD).</summary>
internal enum Icmpv6Type : byte
{
    DestinationUnreachable = 1,
    PacketTooBig = 2,
    TimeExceeded = 3,
    ParameterProblem = 4,
    EchoRequest = 128,
    EchoReply = 129,
    MulticastListenerQuery = 130,
    MulticastListenerReport = 131,
    MulticastListenerDone = 132,
    RouterSolicitation = 133,
    RouterAdvertisement = 134,
    NeighborSolicitation = 135,
    NeighborAdvertisement = 136,
    Redirect = 137,
    MulticastListenerReportV2 = 143,
}

/// <summary>RFC 4443 3.1 destination-unreachable codes.</summary>
internal enum Icmpv6UnreachableCode : byte
{
    NoRoute = 0,
    AdministrativelyProhibited = 1,
    BeyondScope = 2,
    AddressUnreachable = 3,
    PortUnreachable = 4,
}

/// <summary>RFC 4443 3.4 parameter-problem codes (3: RFC 7112, first fragment without the whole header chain).</summary>
internal enum Icmpv6ParameterProblemCode : byte
{
    ErroneousHeaderField = 0,
    UnrecognizedNextHeader = 1,
    UnrecognizedOption = 2,
    IncompleteHeaderChain = 3,
}

/// <summary>A checked, read-only view of an ICMPv6 message (RFC 4443 2.1).</summary>
internal readonly ref struct Icmpv6Message
{
    public const int HeaderLength = IcmpLayout.HeaderLength;

    private readonly ReadOnlySpan<byte> _message;

    private Icmpv6Message(ReadOnlySpan<byte> message) => _message = message;

    public static bool TryParse(ReadOnlySpan<byte> buffer, out Icmpv6Message message, out ParseError error)
    {
        message = IcmpLayout.Check(buffer, out error) ? new Icmpv6Message(buffer) : default;
        return error == ParseError.None;
    }

    public Icmpv6Type Type => (Icmpv6Type)_message[0];
    public byte Code => _message[1];
    public ushort Checksum => BinaryPrimitives.ReadUInt16BigEndian(_message[2..]);
    public ushort Identifier => BinaryPrimitives.ReadUInt16BigEndian(_message[4..]);
    public ushort SequenceNumber => BinaryPrimitives.ReadUInt16BigEndian(_message[6..]);
    /// <summary>Bytes 4-7: the MTU of Packet Too Big, the pointer of Parameter Problem.</summary>
    public uint RestOfHeader => BinaryPrimitives.ReadUInt32BigEndian(_message[4..]);
    /// <summary>Echo data, or as much of the invoking packet as fitted for error messages.</summary>
    public ReadOnlySpan<byte> Data => _message[HeaderLength..];
    public ReadOnlySpan<byte> Bytes => _message;

    /// <summary>RFC 4443 2.4 (c): types 0-127 are errors, 128-255 informational.</summary>
    public bool IsError => (byte)Type < 128;

    /// <summary>Neighbour discovery (RFC 4861 4) and multicast listener (RFC 2710, RFC 3810) messages.</summary>
    public bool IsNeighborDiscoveryOrMld => Type is >= Icmpv6Type.MulticastListenerQuery and <= Icmpv6Type.Redirect or Icmpv6Type.MulticastListenerReportV2;

    /// <summary>RFC 4443 2.3: the checksum covers the IPv6 pseudo-header and the message.</summary>
    public bool IsChecksumValid(IpAddress source, IpAddress destination) =>
        Wire.Checksum.ComputeTransport(source, destination, IpProtocol.Icmpv6, _message) == 0;
}

/// <summary>Writers for the ICMPv6 messages TunTcp sends (without the IPv6 header).</summary>
internal static class Icmpv6Writer
{
    /// <summary>
    /// RFC 4443 2.4 (c): an error carries as much of the invoking packet as fits without the error
    /// packet exceeding the minimum IPv6 MTU (1280 = 40 IPv6 + 8 ICMPv6 + 1232).
    /// </summary>
    public const int MaxInvokingBytes = Ipv6Packet.MinimumMtu - Ipv6Packet.HeaderLength - Icmpv6Message.HeaderLength;

    /// <summary>Writes an echo request or reply; returns the message length. The checksum needs the addresses.</summary>
    public static int WriteEcho(Span<byte> destination, Icmpv6Type type, ushort identifier, ushort sequence, ReadOnlySpan<byte> data, IpAddress source, IpAddress target) =>
        Finish(destination, IcmpLayout.WriteEcho(destination, (byte)type, identifier, sequence, data), source, target);

    /// <summary>
    /// Writes an error message of <paramref name="type"/> and <paramref name="code"/> with the
    /// 32-bit <paramref name="parameter"/> (unused, MTU or pointer) quoting
    /// <paramref name="invokingPacket"/>, truncated to <see cref="MaxInvokingBytes"/>.
    /// </summary>
    public static int WriteError(Span<byte> destination, Icmpv6Type type, byte code, uint parameter, ReadOnlySpan<byte> invokingPacket, IpAddress source, IpAddress target) =>
        Finish(destination, IcmpLayout.WriteError(destination, (byte)type, code, parameter, invokingPacket, MaxInvokingBytes), source, target);

    private static int Finish(Span<byte> destination, int length, IpAddress source, IpAddress target) =>
        IcmpLayout.SetChecksum(destination, length, Checksum.ComputeTransport(source, target, IpProtocol.Icmpv6, destination[..length]));
}
