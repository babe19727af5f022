using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace TunTcp.Wire;

/// <summary>An IPv4 address held as a 32-bit number in host order (no allocation, cheap to hash).</summary>
internal readonly record struct Ipv4Address(uint Value)
{
    public static readonly Ipv4Address Any = new(0);
    public static readonly Ipv4Address Broadcast = new(0xFFFF_FFFF);

    public static Ipv4Address Read(ReadOnlySpan<byte> fourBytes) => new(BinaryPrimitives.ReadUInt32BigEndian(fourBytes));

    public void Write(Span<byte> fourBytes) => BinaryPrimitives.WriteUInt32BigEndian(fourBytes, Value);

    public bool IsAny => Value == 0;

    /// <summary>True for 224.0.0.0/4 (multicast) and the limited broadcast address.</summary>
    public bool IsMulticastOrBroadcast => (Value >> 28) == 0xE || Value == 0xFFFF_FFFF;

    public bool IsInSubnet(Ipv4Address network, int prefixLength)
    {
        uint mask = prefixLength == 0 ? 0 : uint.MaxValue << (32 - prefixLength);
        return (Value & mask) == (network.Value & mask);
    }

    public static Ipv4Address FromIPAddress(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
            else throw new ArgumentException($"'{address}' is not an IPv4 address.", nameof(address));
        }
        Span<byte> b = stackalloc byte[4];
        address.TryWriteBytes(b, out _);
        return Read(b);
    }

    public IPAddress ToIPAddress()
    {
        Span<byte> b = stackalloc byte[4];
        Write(b);
        return new IPAddress(b);
    }

    /// <summary>
    /// Parses strict dotted decimal: four decimal octets of 1-3 digits, no leading zeros, as
    /// POSIX inet_pton (and so iproute2) accepts. RFC 6943 3.1.1: the looser inet_aton forms that
    /// <see cref="IPAddress.TryParse(string?, out IPAddress?)"/> takes would read "010" as octal 8
    /// and "0x7f" as hex, so the address we serve on could differ from the one given to <c>ip</c>.
    /// </summary>
    public static bool TryParse(string? text, out Ipv4Address address)
    {
        address = default;
        return text is not null && TryParse(text.AsSpan(), out address);
    }

    /// <inheritdoc cref="TryParse(string?, out Ipv4Address)"/>
    public static bool TryParse(ReadOnlySpan<char> text, out Ipv4Address address)
    {
        address = default;
        uint value = 0;
        int i = 0;
        for (int part = 0; part < 4; part++)
        {
            if (part > 0)
            {
                if (i >= text.Length || text[i] != '.') return false;
                i++;
            }
            int start = i, octet = 0;
            while (i < text.Length && i - start < 3 && char.IsAsciiDigit(text[i])) octet = octet * 10 + (text[i++] - '0');
            int digits = i - start;
            if (digits == 0 || octet > 255 || (digits > 1 && text[start] == '0')) return false;
            value = (value << 8) | (uint)octet;
        }
        if (i != text.Length) return false;
        address = new Ipv4Address(value);
        return true;
    }

    public static Ipv4Address Parse(string text) =>
        TryParse(text, out var a) ? a : throw new FormatException($"'{text}' is not a dotted-quad IPv4 address.");

    public override string ToString() =>
        $"{Value >> 24}.{(Value >> 16) & 0xFF}.{(Value >> 8) & 0xFF}.{Value & 0xFF}";

    /// <summary>Formats without allocating, for tracers.</summary>
    public bool TryFormat(Span<char> destination, out int written) =>
        destination.TryWrite(System.Globalization.CultureInfo.InvariantCulture,
            $"{Value >> 24}.{(Value >> 16) & 0xFF}.{(Value >> 8) & 0xFF}.{Value & 0xFF}", out written);
}
