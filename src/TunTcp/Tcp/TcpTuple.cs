using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>The 4-tuple that names a TCP connection, seen from our side; both addresses are of one family.</summary>
internal readonly record struct TcpTuple(IpAddress LocalAddress, ushort LocalPort, IpAddress RemoteAddress, ushort RemotePort)
{
    /// <summary>True for a connection over IPv4.</summary>
    public bool IsV4 => RemoteAddress.IsV4;

    /// <summary>Bytes of the IP header our segments carry: 20 for IPv4 (no options), 40 for IPv6 (no extension headers).</summary>
    public int IpHeaderLength => IsV4 ? Ipv4Header.Length : Ipv6Packet.HeaderLength;

    public bool Equals(TcpTuple other) =>
        LocalPort == other.LocalPort && RemotePort == other.RemotePort
        && RemoteAddress == other.RemoteAddress && LocalAddress == other.LocalAddress;

    public override int GetHashCode() =>
        HashCode.Combine(RemoteAddress.Low ^ RemoteAddress.High, LocalAddress.Low ^ LocalAddress.High, LocalPort | (RemotePort << 16));

    public override string ToString() =>
        $"{LocalAddress.WithPort(LocalPort)} <-> {RemoteAddress.WithPort(RemotePort)}";
}
