using System.Net;
using TunTcp.Ip;

namespace TunTcp.AspNetCore;

/// <summary>
/// An endpoint on a TunTcp stack rather than on the host's sockets: pass it to
/// <c>KestrelServerOptions.Listen</c> and the TunTcp transport binds it, while Kestrel's socket
/// transport keeps serving ordinary <see cref="IPEndPoint"/>s of the same app.
/// </summary>
/// <remarks>
/// <see cref="Stack"/> may be left null when the transport was given a default stack
/// (<see cref="TunTcpTransportOptions.Stack"/>); naming the stack here lets one app serve on
/// several stacks. <see cref="ToString"/> is the plain address and port, so Kestrel's
/// "Now listening on: http://192.168.0.2:80" shows the URL a client on the TUN network uses.
/// </remarks>
public sealed class TunTcpEndPoint : EndPoint
{
    /// <param name="endPoint">
    /// One of the stack's addresses, <see cref="IPAddress.Any"/> (every IPv4 address) or
    /// <see cref="IPAddress.IPv6Any"/> (every address of both families), and a port; port 0 picks a free one.
    /// </param>
    /// <param name="stack">The stack to listen on; null for the transport's default stack.</param>
    public TunTcpEndPoint(IPEndPoint endPoint, NetStack? stack = null)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        IPEndPoint = endPoint;
        Stack = stack;
    }

    /// <summary>Listens on every address of <paramref name="stack"/>, IPv4 and IPv6, at <paramref name="port"/>.</summary>
    public TunTcpEndPoint(NetStack? stack, int port) : this(new IPEndPoint(IPAddress.IPv6Any, port), stack)
    {
    }

    /// <summary>The address and port on the stack.</summary>
    public IPEndPoint IPEndPoint { get; }

    /// <summary>The stack, or null for the transport's default.</summary>
    public NetStack? Stack { get; }

    public override System.Net.Sockets.AddressFamily AddressFamily => IPEndPoint.AddressFamily;

    public override string ToString() => IPEndPoint.ToString();

    public override bool Equals(object? obj) =>
        obj is TunTcpEndPoint other && other.IPEndPoint.Equals(IPEndPoint) && ReferenceEquals(other.Stack, Stack);

    public override int GetHashCode() => HashCode.Combine(IPEndPoint, Stack);
}
