using System.Net;
using TunTcp.Wire;

namespace TunTcp.Links;

/// <summary>
/// An IPv6 address with its prefix length, as written <c>fd00:7475:6e::1/64</c>: what the host
/// side of a dual-stack TUN device is given; the kernel routes the prefix to the device.
/// </summary>
public readonly record struct InterfaceAddress6
{
    internal InterfaceAddress6(IpAddress address, int prefixLength)
    {
        Value = address;
        PrefixLength = prefixLength;
    }

    /// <summary>An IPv6 address and its prefix length.</summary>
    /// <exception cref="ArgumentException">The address is not IPv6.</exception>
    public InterfaceAddress6(IPAddress address, int prefixLength)
        : this(address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && !address.IsIPv4MappedToIPv6
            ? IpAddress.FromIPAddress(address)
            : throw new ArgumentException($"{address} is not an IPv6 address", nameof(address)), prefixLength)
    {
    }

    internal IpAddress Value { get; }

    /// <summary>The address.</summary>
    public IPAddress Address => Value.ToIPAddress();

    /// <summary>The length of the network prefix, 0..128.</summary>
    public int PrefixLength { get; }

    /// <summary>True if <paramref name="other"/> (an IPv6 address) lies inside this prefix.</summary>
    internal bool Contains(IpAddress other) => other.IsV6 && other.IsInSubnet(Value, PrefixLength);

    /// <summary>
    /// Parses <c>address/prefix</c>: an IPv6 unicast address an interface may be given and a prefix
    /// of 1..128.
    /// </summary>
    public static bool TryParse(string? text, out InterfaceAddress6 value, out string error)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text)) { error = "an address/prefix such as fd00:7475:6e::1/64 is required"; return false; }
        int slash = text.IndexOf('/');
        if (slash < 0) { error = $"'{text}' has no prefix length; write it as address/prefix, e.g. {text}/64"; return false; }
        string addressText = text[..slash], prefixText = text[(slash + 1)..];
        if (!IpAddress.TryParse(addressText, out var address) || address.IsV4)
        {
            error = $"'{addressText}' is not an IPv6 address (such as fd00:7475:6e::1)";
            return false;
        }
        if (!int.TryParse(prefixText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int prefix)
            || prefix < 1 || prefix > 128)
        {
            error = $"prefix length '{prefixText}' is out of range: it must be a number from 1 to 128";
            return false;
        }
        if (!IsAssignable(address, out error)) return false;
        value = new InterfaceAddress6(address, prefix);
        return true;
    }

    /// <summary>Parses like <see cref="TryParse"/>, throwing a <see cref="FormatException"/> that says what is wrong.</summary>
    public static InterfaceAddress6 Parse(string text) =>
        TryParse(text, out var value, out var error) ? value : throw new FormatException(error);

    /// <summary>
    /// True if <paramref name="address"/> is an IPv6 unicast address the tool may give either side
    /// of the device (RFC 4291 2.4): not unspecified, loopback, multicast, IPv4-mapped or
    /// link-local (the kernel makes its own link-local address; the stack answers on a global or
    /// unique-local one).
    /// </summary>
    internal static bool IsAssignable(IpAddress address, out string error)
    {
        error = address.IsV4 ? $"{address} is an IPv4 address; an IPv6 address is needed here"
            : address == IpAddress.AnyV6 ? ":: is the unspecified address, which no interface may use"
            : address.IsLoopback ? "::1 is the loopback address; the TUN device needs an address of its own"
            : address.IsV6Multicast ? $"{address} is a multicast address; an interface address must be unicast"
            : address.IsV6LinkLocal ? $"{address} is link-local (fe80::/10); use a unique-local address such as fd00:7475:6e::2"
            : "";
        return error.Length == 0;
    }

    public override string ToString() => $"{Value}/{PrefixLength}";
}
