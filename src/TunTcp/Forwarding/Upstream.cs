using System.Net;
using System.Net.Sockets;

namespace TunTcp.Forwarding;

/// <summary>
/// Where a <see cref="FlowForwarder"/> sends the flows it terminates: real sockets of the host
/// (<see cref="DirectUpstream"/>) or a proxy (<see cref="Socks5Upstream"/>).
/// </summary>
public interface IUpstream
{
    /// <summary>A short description for logs and the ready line, without secrets ("direct", "socks5://127.0.0.1:1080").</summary>
    string Description { get; }

    /// <summary>
    /// Connects to <paramref name="destination"/> and returns the connected socket. Fails with the
    /// <see cref="SocketException"/> a direct connect would give (ConnectionRefused, HostUnreachable,
    /// NetworkUnreachable, TimedOut), which the forwarder turns into a RST or an ICMP error.
    /// </summary>
    Task<Socket> ConnectAsync(IPEndPoint destination, CancellationToken cancellationToken);

    /// <summary>Opens a UDP endpoint for one flow (one application-side address and port) of <paramref name="family"/>.</summary>
    Task<IUdpUpstream> OpenUdpAsync(AddressFamily family, CancellationToken cancellationToken);
}

/// <summary>One UDP flow's upstream end: datagrams to and from any remote (endpoint-independent mapping, RFC 4787 REQ-1).</summary>
public interface IUdpUpstream : IDisposable
{
    ValueTask SendToAsync(ReadOnlyMemory<byte> payload, IPEndPoint destination, CancellationToken cancellationToken);

    ValueTask<(int Length, IPEndPoint From)> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken);
}

/// <summary>
/// Host sockets in the network namespace the process runs in: every relayed connection is an
/// ordinary outgoing connection of this process (as pasta and slirp4netns do).
/// </summary>
public sealed class DirectUpstream : IUpstream
{
    public static readonly DirectUpstream Instance = new();

    public string Description => "direct";

    public async Task<Socket> ConnectAsync(IPEndPoint destination, CancellationToken cancellationToken)
    {
        var socket = new Socket(destination.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(destination, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public Task<IUdpUpstream> OpenUdpAsync(AddressFamily family, CancellationToken cancellationToken)
    {
        var socket = new Socket(family, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            // IPv6 flows may be relayed to an IPv4 resolver (the DNS relay), through mapped addresses.
            if (family == AddressFamily.InterNetworkV6) socket.DualMode = true;
            socket.Bind(new IPEndPoint(family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return Task.FromResult<IUdpUpstream>(new SocketUdpUpstream(socket));
    }

    /// <summary>A plain UDP socket; unconnected, so it takes datagrams from any remote.</summary>
    private sealed class SocketUdpUpstream(Socket socket) : IUdpUpstream
    {
        private readonly IPEndPoint _any = new(socket.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);

        public async ValueTask SendToAsync(ReadOnlyMemory<byte> payload, IPEndPoint destination, CancellationToken cancellationToken) =>
            await socket.SendToAsync(payload, SocketFlags.None, destination, cancellationToken).ConfigureAwait(false);

        public async ValueTask<(int Length, IPEndPoint From)> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            while (true)
            {
                try
                {
                    var result = await socket.ReceiveFromAsync(buffer, SocketFlags.None, _any, cancellationToken).ConfigureAwait(false);
                    return (result.ReceivedBytes, (IPEndPoint)result.RemoteEndPoint);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused)
                {
                    // An ICMP port unreachable about an earlier datagram: nothing to deliver, go on.
                }
            }
        }

        public void Dispose() => socket.Dispose();
    }
}
