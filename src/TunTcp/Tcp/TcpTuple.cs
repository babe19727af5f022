using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>The 4-tuple that names a TCP connection, seen from our side.</summary>
public readonly record struct TcpTuple(Ipv4Address LocalAddress, ushort LocalPort, Ipv4Address RemoteAddress, ushort RemotePort)
{
    public override string ToString() => $"{LocalAddress}:{LocalPort} <-> {RemoteAddress}:{RemotePort}";
}
