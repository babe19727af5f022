using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace TunTcp.Forwarding;

/// <summary>
/// The SOCKS5 wire format (RFC 1928, RFC 1929): the octet values, the address encoding
/// (ATYP DST.ADDR DST.PORT, RFC 1928 section 5) and the UDP request header (section 7). Writers
/// take a span that is large enough; readers never throw and check every length first.
/// </summary>
internal static class Socks5Wire
{
    /// <summary>RFC 1928 section 3: VER of every SOCKS5 message.</summary>
    public const byte Version = 5;

    /// <summary>RFC 1929 section 2: VER of the username/password sub-negotiation.</summary>
    public const byte AuthVersion = 1;

    // RFC 1928 section 3: METHOD values.
    public const byte MethodNoAuthentication = 0x00, MethodUserPassword = 0x02, MethodNoAcceptable = 0xFF;

    // RFC 1928 section 4: CMD values.
    public const byte CommandConnect = 0x01, CommandUdpAssociate = 0x03;

    // RFC 1928 section 5: ATYP values.
    public const byte AddressIpv4 = 0x01, AddressDomainName = 0x03, AddressIpv6 = 0x04;

    /// <summary>RFC 1928 section 6: REP X'00' succeeded.</summary>
    public const byte ReplySucceeded = 0x00;

    /// <summary>ATYP + 16-octet IPv6 address + port: the longest address this client writes.</summary>
    public const int MaxIpAddressFieldLength = 1 + 16 + 2;

    /// <summary>RFC 1928 section 7: RSV RSV FRAG, then the address.</summary>
    public const int UdpHeaderPrefixLength = 3;

    /// <summary>The longest UDP request header this client writes (an IPv6 destination).</summary>
    public const int MaxUdpHeaderLength = UdpHeaderPrefixLength + MaxIpAddressFieldLength;

    /// <summary>The length of ATYP DST.ADDR DST.PORT for an IP endpoint (an IPv4-mapped IPv6 address is sent as IPv4).</summary>
    public static int AddressFieldLength(IPEndPoint endPoint) => 1 + (IsV4(endPoint.Address) ? 4 : 16) + 2;

    /// <summary>Writes ATYP DST.ADDR DST.PORT (RFC 1928 section 5, ATYP 1 or 4); returns its length.</summary>
    public static int WriteAddress(Span<byte> destination, IPEndPoint endPoint)
    {
        var address = endPoint.Address;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        int length;
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            destination[0] = AddressIpv4;
            if (!address.TryWriteBytes(destination.Slice(1, 4), out _)) throw new ArgumentException("the span is too short", nameof(destination));
            length = 1 + 4;
        }
        else if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            destination[0] = AddressIpv6;
            if (!address.TryWriteBytes(destination.Slice(1, 16), out _)) throw new ArgumentException("the span is too short", nameof(destination));
            length = 1 + 16;
        }
        else
        {
            throw new ArgumentException($"{address} is neither IPv4 nor IPv6", nameof(endPoint));
        }
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(length, 2), checked((ushort)endPoint.Port));
        return length + 2;
    }

    /// <summary>
    /// Writes the RFC 1928 section 7 header RSV(2) FRAG ATYP DST.ADDR DST.PORT for a whole
    /// datagram (FRAG X'00': this client never fragments); returns its length.
    /// </summary>
    public static int WriteUdpHeader(Span<byte> destination, IPEndPoint endPoint)
    {
        destination[0] = 0; // RSV
        destination[1] = 0; // RSV
        destination[2] = 0; // FRAG: a standalone datagram
        return UdpHeaderPrefixLength + WriteAddress(destination[UdpHeaderPrefixLength..], endPoint);
    }

    /// <summary>Why a datagram from the relay was not delivered.</summary>
    public enum UdpHeaderStatus
    {
        Ok,
        /// <summary>Shorter than its header.</summary>
        Truncated,
        /// <summary>FRAG is not X'00': RFC 1928 section 7 lets a client that does not reassemble drop it.</summary>
        Fragment,
        /// <summary>ATYP 3 (a domain name, which has no IPEndPoint) or an unknown ATYP.</summary>
        UnsupportedAddressType,
    }

    /// <summary>
    /// Reads the RFC 1928 section 7 header of a datagram from the relay. On <see cref="UdpHeaderStatus.Ok"/>,
    /// <paramref name="address"/> is the 4 or 16 address octets, and the payload starts at <paramref name="headerLength"/>.
    /// RSV is not checked (reserved fields are ignored on receipt).
    /// </summary>
    public static UdpHeaderStatus TryReadUdpHeader(ReadOnlySpan<byte> datagram, out ReadOnlySpan<byte> address, out ushort port, out int headerLength)
    {
        address = default;
        port = 0;
        headerLength = 0;
        if (datagram.Length < UdpHeaderPrefixLength + 1) return UdpHeaderStatus.Truncated;
        if (datagram[2] != 0) return UdpHeaderStatus.Fragment;
        int addressLength = datagram[3] switch { AddressIpv4 => 4, AddressIpv6 => 16, _ => -1 };
        if (addressLength < 0) return UdpHeaderStatus.UnsupportedAddressType;
        int end = UdpHeaderPrefixLength + 1 + addressLength + 2;
        if (datagram.Length < end) return UdpHeaderStatus.Truncated;
        address = datagram.Slice(UdpHeaderPrefixLength + 1, addressLength);
        port = BinaryPrimitives.ReadUInt16BigEndian(datagram.Slice(end - 2, 2));
        headerLength = end;
        return UdpHeaderStatus.Ok;
    }

    /// <summary>
    /// RFC 1928 section 6 REP to the <see cref="SocketError"/> a direct connect(2) would have
    /// failed with, so a forwarder answers its own client the same way (RST, ICMP unreachable).
    /// </summary>
    public static SocketError ReplyToSocketError(byte reply) => reply switch
    {
        0x02 => SocketError.AccessDenied,              // connection not allowed by ruleset
        0x03 => SocketError.NetworkUnreachable,        // Network unreachable
        0x04 => SocketError.HostUnreachable,           // Host unreachable
        0x05 => SocketError.ConnectionRefused,         // Connection refused
        0x06 => SocketError.TimedOut,                  // TTL expired
        0x07 => SocketError.OperationNotSupported,     // Command not supported
        0x08 => SocketError.AddressFamilyNotSupported, // Address type not supported
        _ => SocketError.SocketError,                  // 0x01 general SOCKS server failure, and unassigned codes
    };

    /// <summary>RFC 1928 section 6's wording for a REP value, for error messages.</summary>
    public static string DescribeReply(byte reply) => reply switch
    {
        0x00 => "succeeded",
        0x01 => "general SOCKS server failure",
        0x02 => "connection not allowed by ruleset",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "unassigned reply code",
    };

    private static bool IsV4(IPAddress address) => address.AddressFamily == AddressFamily.InterNetwork || address.IsIPv4MappedToIPv6;
}
