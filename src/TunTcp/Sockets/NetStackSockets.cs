using System.Net;
using System.Net.Sockets;
using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Sockets;

/// <summary>The socket API of a running <see cref="NetStack"/>.</summary>
public static class NetStackSockets
{
    /// <summary>
    /// Listens on <paramref name="endpoint"/> (the stack's address or <see cref="IPAddress.Any"/>;
    /// port 0 picks a free one). Throws <see cref="SocketException"/> (AddressAlreadyInUse) when taken.
    /// </summary>
    public static async Task<TunTcpListener> ListenTcpAsync(this NetStack stack, IPEndPoint endpoint, int backlog = 128, TcpSettings? settings = null)
    {
        var address = ToIpv4(endpoint.Address);
        var port = checked((ushort)endpoint.Port);
        try
        {
            return await stack.Invoke((core, _) => new TunTcpListener(stack, core.Listen(address, port, backlog, settings))).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            throw new SocketException((int)SocketError.AddressAlreadyInUse);
        }
    }

    /// <summary>Synchronous <see cref="ListenTcpAsync"/>.</summary>
    public static TunTcpListener ListenTcp(this NetStack stack, IPEndPoint endpoint, int backlog = 128, TcpSettings? settings = null) =>
        stack.ListenTcpAsync(endpoint, backlog, settings).GetAwaiter().GetResult();

    /// <summary>
    /// Opens a connection from an ephemeral port and waits for the handshake. Fails with
    /// <see cref="SocketException"/> ConnectionRefused (the peer reset our SYN) or TimedOut (SYN
    /// retries ran out); cancellation resets the attempt.
    /// </summary>
    public static async Task<TunTcpConnection> ConnectTcpAsync(this NetStack stack, IPEndPoint remote, CancellationToken cancellationToken = default, TcpSettings? settings = null)
    {
        var address = ToIpv4(remote.Address);
        var port = checked((ushort)remote.Port);
        var connection = await stack.Invoke((core, now) =>
        {
            var tcp = core.Connect(address, port, now, settings);
            return new TunTcpConnection(stack, tcp, core.FindEntry(tcp));
        }).ConfigureAwait(false);
        await connection.WaitEstablishedAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    /// <summary>Binds a UDP port (0: an ephemeral one).</summary>
    public static async Task<TunUdpSocket> BindUdpAsync(this NetStack stack, int port, int receiveQueueLimit = 256)
    {
        try
        {
            return await stack.Invoke((core, _) => new TunUdpSocket(stack, core.BindUdp(checked((ushort)port), receiveQueueLimit))).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            throw new SocketException((int)SocketError.AddressAlreadyInUse);
        }
    }

    private static Ipv4Address ToIpv4(IPAddress address)
    {
        if (address.Equals(IPAddress.Any)) return Ipv4Address.Any;
        if (address.AddressFamily != AddressFamily.InterNetwork && !address.IsIPv4MappedToIPv6)
            throw new ArgumentException($"TunTcp speaks IPv4 only; '{address}' is not an IPv4 address.", nameof(address));
        return Ipv4Address.FromIPAddress(address);
    }
}
