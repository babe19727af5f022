namespace TunTcp.Wire;

/// <summary>The ECN field: the low two bits of the IPv4 TOS byte and of the IPv6 traffic class (RFC 3168 5).</summary>
internal enum IpEcn : byte
{
    NotEct = 0,
    Ect1 = 1,
    Ect0 = 2,
    /// <summary>Congestion experienced: set by a router instead of dropping an ECN-capable packet.</summary>
    Ce = 3,
}
