using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace TunTcp.Wire;

/// <summary>
/// An IP address of either family in 16 bytes, held as two 64-bit halves in network order: no
/// allocation, cheap to compare and hash, the key of tuples, listeners and bindings everywhere.
/// IPv4 addresses are held in their IPv4-mapped form (RFC 4291 2.5.5.2, <c>::ffff:a.b.c.d</c>),
/// as <see cref="Socket.DualMode"/> sockets see them, so an IPv4 address and its mapped form are
/// one and the same value; an IPv6 packet that carries a mapped address is never valid (RFC 4291
/// 2.5.5.2 keeps them off the wire) and the stack drops it.
/// </summary>
internal readonly struct IpAddress : IEquatable<IpAddress>, ISpanFormattable
{
    private const ulong MappedPrefix = 0x0000_FFFF_0000_0000;

    /// <summary>Bytes 0-7 and 8-15 of the 16-byte form, each read big-endian.</summary>
    private readonly ulong _high, _low;

    public IpAddress(ulong high, ulong low)
    {
        _high = high;
        _low = low;
    }

    /// <summary>0.0.0.0, the IPv4 wildcard.</summary>
    public static readonly IpAddress AnyV4 = FromV4(Ipv4Address.Any);

    /// <summary>::, the IPv6 wildcard (RFC 4291 2.5.2 unspecified address).</summary>
    public static readonly IpAddress AnyV6 = default;

    public static IpAddress FromV4(Ipv4Address address) => new(0, MappedPrefix | address.Value);

    public static implicit operator IpAddress(Ipv4Address address) => FromV4(address);

    /// <summary>Reads the 16 bytes of an IPv6 address (as in an IPv6 header).</summary>
    public static IpAddress ReadV6(ReadOnlySpan<byte> sixteenBytes) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(sixteenBytes), BinaryPrimitives.ReadUInt64BigEndian(sixteenBytes[8..]));

    /// <summary>Writes the 16-byte form (IPv4 as mapped), as in an IPv6 header or a hash input.</summary>
    public void WriteV6(Span<byte> sixteenBytes)
    {
        BinaryPrimitives.WriteUInt64BigEndian(sixteenBytes, _high);
        BinaryPrimitives.WriteUInt64BigEndian(sixteenBytes[8..], _low);
    }

    public ulong High => _high;
    public ulong Low => _low;

    public bool IsV4 => _high == 0 && (_low & 0xFFFF_FFFF_0000_0000) == MappedPrefix;

    public bool IsV6 => !IsV4;

    public AddressFamily Family => IsV4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;

    /// <summary>The IPv4 address; only meaningful when <see cref="IsV4"/>.</summary>
    public Ipv4Address V4 => new((uint)_low);

    /// <summary>The wildcard of either family.</summary>
    public bool IsAny => this == AnyV4 || this == AnyV6;

    /// <summary>The wildcard of this address's family.</summary>
    public IpAddress AnyOfFamily => IsV4 ? AnyV4 : AnyV6;

    /// <summary>IPv4 224.0.0.0/4 and 255.255.255.255; IPv6 ff00::/8 (RFC 4291 2.7).</summary>
    public bool IsMulticastOrBroadcast => IsV4 ? V4.IsMulticastOrBroadcast : (_high >> 56) == 0xFF;

    /// <summary>IPv6 multicast (ff00::/8).</summary>
    public bool IsV6Multicast => !IsV4 && (_high >> 56) == 0xFF;

    /// <summary>IPv6 link-local unicast, fe80::/10 (RFC 4291 2.5.6).</summary>
    public bool IsV6LinkLocal => !IsV4 && (_high >> 54) == (0xFE80UL >> 6);

    /// <summary>127.0.0.0/8 or ::1.</summary>
    public bool IsLoopback => IsV4 ? (V4.Value >> 24) == 127 : _high == 0 && _low == 1;

    /// <summary>
    /// True when the first <paramref name="prefixLength"/> bits equal those of
    /// <paramref name="network"/> and both are of one family (an IPv4 prefix counts IPv4 bits).
    /// </summary>
    public bool IsInSubnet(IpAddress network, int prefixLength)
    {
        if (IsV4 != network.IsV4) return false;
        if (IsV4) return V4.IsInSubnet(network.V4, prefixLength);
        if (prefixLength <= 0) return true;
        if (prefixLength >= 128) return this == network;
        if (prefixLength <= 64) return ((_high ^ network._high) & (ulong.MaxValue << (64 - prefixLength))) == 0;
        return _high == network._high && ((_low ^ network._low) & (ulong.MaxValue << (128 - prefixLength))) == 0;
    }

    /// <summary>From a <see cref="System.Net.IPAddress"/>; a scope ID is not kept (TunTcp has one link).</summary>
    public static IpAddress FromIPAddress(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(b, out _);
            return FromV4(Ipv4Address.Read(b));
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
            throw new ArgumentException($"'{address}' is neither an IPv4 nor an IPv6 address.", nameof(address));
        address.TryWriteBytes(b, out _);
        return ReadV6(b);
    }

    /// <summary>To a <see cref="System.Net.IPAddress"/> of the address's own family (IPv4 unmapped).</summary>
    public IPAddress ToIPAddress()
    {
        if (IsV4) return V4.ToIPAddress();
        Span<byte> b = stackalloc byte[16];
        WriteV6(b);
        return new IPAddress(b);
    }

    /// <summary>
    /// Parses strictly: an IPv4 address in the dotted decimal form of
    /// <see cref="Ipv4Address.TryParse(string?, out Ipv4Address)"/>, or an IPv6 address in the text forms of RFC 4291 2.2
    /// (hex groups of 1-4 digits, one <c>::</c>, an optional trailing dotted quad). No zone or
    /// scope (<c>%eth0</c>), brackets, prefix or surrounding space.
    /// </summary>
    public static bool TryParse(string? text, out IpAddress address)
    {
        address = default;
        return text is not null && TryParse(text.AsSpan(), out address);
    }

    public static bool TryParse(ReadOnlySpan<char> text, out IpAddress address)
    {
        address = default;
        if (text.IndexOf(':') < 0)
        {
            if (!Ipv4Address.TryParse(text, out var v4)) return false;
            address = FromV4(v4);
            return true;
        }
        return TryParseV6(text, out address);
    }

    public static IpAddress Parse(string text) =>
        TryParse(text, out var a) ? a : throw new FormatException($"'{text}' is not an IPv4 or IPv6 address.");

    private static bool TryParseV6(ReadOnlySpan<char> text, out IpAddress address)
    {
        address = default;
        Span<ushort> groups = stackalloc ushort[8];
        int count = 0, gap = -1, i = 0;
        if (text.StartsWith("::"))
        {
            gap = 0;
            i = 2;
            if (i == text.Length) { address = default; return true; }
        }
        else if (text.Length > 0 && text[0] == ':') return false;
        while (i < text.Length)
        {
            if (count == 8) return false;
            int start = i;
            int value = 0;
            while (i < text.Length && i - start < 5 && char.IsAsciiHexDigit(text[i]))
                value = value * 16 + HexValue(text[i++]);
            int digits = i - start;
            if (i < text.Length && text[i] == '.')
            {
                // A trailing dotted quad holds the last 32 bits (RFC 4291 2.2 form 3).
                if (count > 6 || !Ipv4Address.TryParse(text[start..], out var tail)) return false;
                groups[count++] = (ushort)(tail.Value >> 16);
                groups[count++] = (ushort)tail.Value;
                i = text.Length;
                break;
            }
            if (digits == 0 || digits > 4) return false;
            groups[count++] = (ushort)value;
            if (i == text.Length) break;
            if (text[i] != ':') return false;
            i++;
            if (i < text.Length && text[i] == ':')
            {
                if (gap >= 0) return false; // only one "::"
                gap = count;
                i++;
                if (i == text.Length) break;
            }
            else if (i == text.Length) return false; // a trailing single ':'
        }
        if (gap < 0 && count != 8) return false;
        if (gap >= 0 && count > 7) return false; // "::" stands for at least one group
        Span<ushort> full = stackalloc ushort[8];
        if (gap < 0) groups.CopyTo(full);
        else
        {
            full.Clear();
            groups[..gap].CopyTo(full);
            groups[gap..count].CopyTo(full[(8 - (count - gap))..]);
        }
        ulong high = 0, low = 0;
        for (int g = 0; g < 4; g++) high = high << 16 | full[g];
        for (int g = 4; g < 8; g++) low = low << 16 | full[g];
        address = new IpAddress(high, low);
        return true;
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    public bool Equals(IpAddress other) => _high == other._high && _low == other._low;

    public override bool Equals(object? obj) => obj is IpAddress other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(_high, _low);

    public static bool operator ==(IpAddress left, IpAddress right) => left.Equals(right);

    public static bool operator !=(IpAddress left, IpAddress right) => !left.Equals(right);

    /// <summary>The address with a port, as URLs and <see cref="System.Net.IPEndPoint"/> write it: <c>192.168.0.1:80</c>, <c>[fd00::1]:80</c>.</summary>
    public string WithPort(int port) => IsV4 ? $"{this}:{port}" : $"[{this}]:{port}";

    /// <summary>IPv4 in dotted decimal; IPv6 in the canonical form of RFC 5952.</summary>
    public override string ToString()
    {
        Span<char> buffer = stackalloc char[45];
        TryFormat(buffer, out int written);
        return new string(buffer[..written]);
    }

    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format = default, IFormatProvider? provider = null)
    {
        if (IsV4) return V4.TryFormat(destination, out charsWritten);
        Span<ushort> g = stackalloc ushort[8];
        for (int i = 0; i < 4; i++) g[i] = (ushort)(_high >> (48 - 16 * i));
        for (int i = 0; i < 4; i++) g[4 + i] = (ushort)(_low >> (48 - 16 * i));
        // RFC 5952 4.2: "::" replaces the longest run of two or more zero groups, the first on a tie.
        int bestStart = -1, bestLength = 1;
        for (int i = 0; i < 8;)
        {
            if (g[i] != 0) { i++; continue; }
            int start = i;
            while (i < 8 && g[i] == 0) i++;
            if (i - start > bestLength) { bestStart = start; bestLength = i - start; }
        }
        charsWritten = 0;
        int pos = 0;
        for (int i = 0; i < 8; i++)
        {
            if (i == bestStart)
            {
                if (!Put(destination, ref pos, "::")) return false;
                i += bestLength - 1;
                continue;
            }
            if (i > 0 && i != bestStart + bestLength && !Put(destination, ref pos, ":")) return false;
            // RFC 5952 4.1 and 4.3: no leading zeros, lower case.
            if (!g[i].TryFormat(destination[pos..], out int n, "x", CultureInfo.InvariantCulture)) return false;
            pos += n;
        }
        charsWritten = pos;
        return true;
    }

    private static bool Put(Span<char> destination, ref int pos, string text)
    {
        if (!text.AsSpan().TryCopyTo(destination[pos..])) return false;
        pos += text.Length;
        return true;
    }
}
