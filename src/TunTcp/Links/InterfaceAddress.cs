using System.Net;
using TunTcp.Wire;

namespace TunTcp.Links;

/// <summary>
/// An IPv4 address with the length of its network prefix, as written <c>192.168.0.1/24</c>:
/// what the host side of a TUN device is given, and from which the kernel derives the route to
/// the stack's address.
/// </summary>
public readonly record struct InterfaceAddress
{
    internal InterfaceAddress(Ipv4Address address, int prefixLength)
    {
        Value = address;
        PrefixLength = prefixLength;
    }

    /// <summary>An IPv4 address (or an IPv4-mapped IPv6 one) and its prefix length.</summary>
    /// <exception cref="ArgumentException">The address is not IPv4.</exception>
    public InterfaceAddress(IPAddress address, int prefixLength)
        : this(address.IsIPv4MappedToIPv6 || address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            ? Ipv4Address.FromIPAddress(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address)
            : throw new ArgumentException($"{address} is not an IPv4 address", nameof(address)), prefixLength)
    {
    }

    internal Ipv4Address Value { get; }

    /// <summary>The address.</summary>
    public IPAddress Address => Value.ToIPAddress();

    /// <summary>The length of the network prefix, 0..32.</summary>
    public int PrefixLength { get; }

    /// <summary>The netmask, e.g. 255.255.255.0 for /24.</summary>
    internal Ipv4Address Netmask => new(PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength));

    /// <summary>The network address: the address with the host bits cleared.</summary>
    internal Ipv4Address Network => new(Value.Value & Netmask.Value);

    /// <summary>The directed broadcast address of the prefix: the host bits all set.</summary>
    internal Ipv4Address DirectedBroadcast => new(Value.Value | ~Netmask.Value);

    /// <summary>True if <paramref name="other"/> lies inside this prefix.</summary>
    internal bool Contains(Ipv4Address other) => other.IsInSubnet(Value, PrefixLength);

    /// <summary>
    /// True if <paramref name="other"/> can be a host on this prefix: inside it, and for prefixes of
    /// /30 and shorter neither the network nor the broadcast address (RFC 1122 3.2.1.3; /31 and /32
    /// have no such reserved addresses, RFC 3021).
    /// </summary>
    internal bool IsUsableHost(Ipv4Address other) =>
        Contains(other) && (PrefixLength >= 31 || (other != Network && other != DirectedBroadcast));

    /// <summary>
    /// Parses <c>a.b.c.d/n</c>. The address must be a unicast address a host may own, the prefix
    /// 1..32, and the address not the network or broadcast address of its own prefix.
    /// </summary>
    public static bool TryParse(string? text, out InterfaceAddress value, out string error)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text)) { error = "an address/prefix such as 192.168.0.1/24 is required"; return false; }
        int slash = text.IndexOf('/');
        if (slash < 0) { error = $"'{text}' has no prefix length; write it as address/prefix, e.g. {text}/24"; return false; }
        string addressText = text[..slash], prefixText = text[(slash + 1)..];
        if (!Ipv4Address.TryParse(addressText, out var address)) { error = $"'{addressText}' is not an IPv4 address (dotted quad such as 192.168.0.1)"; return false; }
        if (!int.TryParse(prefixText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int prefix)
            || prefix < 1 || prefix > 32)
        {
            error = $"prefix length '{prefixText}' is out of range: it must be a number from 1 to 32";
            return false;
        }
        var candidate = new InterfaceAddress(address, prefix);
        if (!IsAssignable(address, out error)) return false;
        if (!candidate.IsUsableHost(address))
        {
            error = $"{address} is the {(address == candidate.Network ? "network" : "broadcast")} address of {candidate.Network}/{prefix}; pick a host address inside it, e.g. {new Ipv4Address(candidate.Network.Value + 1)}/{prefix}";
            return false;
        }
        value = candidate;
        return true;
    }

    /// <summary>Parses like <see cref="TryParse"/>, throwing a <see cref="FormatException"/> that says what is wrong.</summary>
    public static InterfaceAddress Parse(string text) =>
        TryParse(text, out var value, out var error) ? value : throw new FormatException(error);

    /// <summary>
    /// True if <paramref name="address"/> is a unicast address an interface may be given: not
    /// 0.0.0.0/8 ("this network", RFC 1122 3.2.1.3), not loopback 127/8, not multicast or the
    /// limited broadcast address, not reserved 240/4 (RFC 1112 4).
    /// </summary>
    internal static bool IsAssignable(Ipv4Address address, out string error)
    {
        uint first = address.Value >> 24;
        error = first switch
        {
            0 => $"{address} is in 0.0.0.0/8 (\"this network\"), which no interface may use",
            127 => $"{address} is a loopback address; the TUN device needs an address outside 127.0.0.0/8",
            >= 224 and <= 239 => $"{address} is a multicast address; an interface address must be unicast",
            >= 240 => $"{address} is reserved (240.0.0.0/4) or broadcast; an interface address must be unicast",
            _ => "",
        };
        return error.Length == 0;
    }

    public override string ToString() => $"{Value}/{PrefixLength}";
}
