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
    /// Listens on <paramref name="endpoint"/>: one of the stack's addresses, <see cref="IPAddress.Any"/>
    /// (every IPv4 address) or <see cref="IPAddress.IPv6Any"/> (every IPv6 address and, with
    /// <paramref name="dualMode"/>, every IPv4 one too, as a <see cref="Socket.DualMode"/> socket);
    /// port 0 picks a free one. Throws <see cref="SocketException"/>: AddressAlreadyInUse when
    /// taken, AddressNotAvailable for an address that is not the stack's, AddressFamilyNotSupported
    /// for a family the stack has no address of.
    /// </summary>
    public static Task<TunTcpListener> ListenTcpAsync(this NetStack stack, IPEndPoint endpoint, int backlog = 128, TcpSettings? settings = null, bool dualMode = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var address = IpAddress.FromIPAddress(endpoint.Address);
        var port = checked((ushort)endpoint.Port);
        return stack.Invoke((core, _) => new TunTcpListener(stack, core.Listen(address, port, backlog, settings, dualMode))).WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Opens a connection from the stack's address of the remote's family and an ephemeral port
    /// (or a chosen local port), and waits for the handshake. Fails with
    /// <see cref="SocketException"/>: ConnectionRefused (the peer reset our SYN), TimedOut (SYN
    /// retries ran out), AddressFamilyNotSupported (no address of that family), AddressNotAvailable
    /// (no ephemeral port free), AddressAlreadyInUse (the local port is taken towards that peer);
    /// cancellation resets the attempt.
    /// </summary>
    public static Task<TunTcpConnection> ConnectTcpAsync(this NetStack stack, IPEndPoint remote, CancellationToken cancellationToken = default) =>
        stack.ConnectTcpAsync(remote, settings: null, localPort: 0, cancellationToken);

    /// <inheritdoc cref="ConnectTcpAsync(NetStack, IPEndPoint, CancellationToken)"/>
    /// <param name="settings">TCP settings of this connection (null: the stack's).</param>
    /// <param name="localPort">The local port (0: an ephemeral one).</param>
    public static async Task<TunTcpConnection> ConnectTcpAsync(this NetStack stack, IPEndPoint remote, TcpSettings? settings, int localPort, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(remote);
        ArgumentOutOfRangeException.ThrowIfNegative(localPort);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(localPort, ushort.MaxValue);
        var address = IpAddress.FromIPAddress(remote.Address);
        var port = checked((ushort)remote.Port);
        var local = checked((ushort)localPort);
        var connection = await stack.Invoke((core, now) =>
        {
            var tcp = core.Connect(address, port, now, settings, local);
            return new TunTcpConnection(stack, tcp, core.FindEntry(tcp));
        }).ConfigureAwait(false);
        await connection.WaitEstablishedAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    /// <summary>Binds a UDP port (0: an ephemeral one) on every address of the stack, both families.</summary>
    public static Task<TunUdpSocket> BindUdpAsync(this NetStack stack, int port, CancellationToken cancellationToken = default) =>
        stack.BindUdpAsync(new IPEndPoint(stack.Core.HasIpv6 ? IPAddress.IPv6Any : IPAddress.Any, port), cancellationToken: cancellationToken);

    /// <summary>
    /// Binds UDP on <paramref name="local"/> (an address of the stack or a wildcard; the IPv6
    /// wildcard with <paramref name="dualMode"/> takes IPv4 datagrams too). Throws
    /// <see cref="SocketException"/> as <see cref="ListenTcpAsync"/> does.
    /// </summary>
    public static Task<TunUdpSocket> BindUdpAsync(this NetStack stack, IPEndPoint local, int receiveQueueLimit = 256, bool dualMode = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(local);
        var address = IpAddress.FromIPAddress(local.Address);
        var port = checked((ushort)local.Port);
        return stack.Invoke((core, _) => new TunUdpSocket(stack, core.BindUdp(address, port, receiveQueueLimit, dualMode))).WaitAsync(cancellationToken);
    }
}
