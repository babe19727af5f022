namespace TunTcp.Wire;

/// <summary>IP protocol numbers (IANA "Assigned Internet Protocol Numbers") that TunTcp knows.</summary>
internal enum IpProtocol : byte
{
    Icmp = 1,
    Tcp = 6,
    Udp = 17,
    Icmpv6 = 58,
}
