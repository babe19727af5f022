using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using TunTcp.Links;

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

/// <summary>Told (off the stack thread) of an ICMP error a UDP upstream received about a datagram it sent to <paramref name="destination"/>.</summary>
internal delegate void UdpUpstreamErrorHandler(IPEndPoint destination, SocketError error, ReadOnlySpan<byte> payload);

/// <summary>A UDP upstream that hears the ICMP errors about what it sent (host sockets; a SOCKS5 relay does not).</summary>
internal interface IUdpUpstreamErrors
{
    UdpUpstreamErrorHandler? ErrorReceived { get; set; }
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

    /// <summary>
    /// A plain UDP socket; unconnected, so it takes datagrams from any remote. With IP_RECVERR (and
    /// IPV6_RECVERR) on, the ICMP errors the host receives about the datagrams it sent are queued on
    /// the socket with the destination they were about; <see cref="ErrorReceived"/> gets each one, so
    /// the forwarder can tell the application (an unconnected socket would otherwise hear nothing).
    /// </summary>
    private sealed class SocketUdpUpstream : IUdpUpstream, IUdpUpstreamErrors
    {
        private readonly Socket _socket;
        private readonly IPEndPoint _any;
        private byte[]? _errorPayload;

        public SocketUdpUpstream(Socket socket)
        {
            _socket = socket;
            _any = new(socket.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
            Span<byte> on = [1, 0, 0, 0];
            try
            {
                socket.SetRawSocketOption(Libc.SOL_IP, Libc.IP_RECVERR, on);
                if (socket.AddressFamily == AddressFamily.InterNetworkV6) socket.SetRawSocketOption(Libc.SOL_IPV6, Libc.IPV6_RECVERR, on);
            }
            catch (SocketException)
            {
                // Without it the errors stay unreported, as before; the relay itself works.
            }
        }

        public UdpUpstreamErrorHandler? ErrorReceived { get; set; }

        public async ValueTask SendToAsync(ReadOnlyMemory<byte> payload, IPEndPoint destination, CancellationToken cancellationToken) =>
            await _socket.SendToAsync(payload, SocketFlags.None, destination, cancellationToken).ConfigureAwait(false);

        public async ValueTask<(int Length, IPEndPoint From)> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            while (true)
            {
                try
                {
                    var result = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, _any, cancellationToken).ConfigureAwait(false);
                    return (result.ReceivedBytes, (IPEndPoint)result.RemoteEndPoint);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused
                    or SocketError.HostUnreachable or SocketError.NetworkUnreachable)
                {
                    // An ICMP error about an earlier datagram: nothing to deliver; report what the
                    // error queue says about it, then go on.
                    DrainErrorQueue();
                }
            }
        }

        /// <summary>Reads the socket's error queue (recvmsg with MSG_ERRQUEUE, ip(7)) until it is empty; at most 64 entries per call.</summary>
        private unsafe void DrainErrorQueue()
        {
            bool added = false;
            try
            {
                _socket.SafeHandle.DangerousAddRef(ref added);
                int fd = (int)_socket.SafeHandle.DangerousGetHandle();
                var payload = _errorPayload ??= new byte[2048];
                byte* name = stackalloc byte[28]; // sockaddr_in6, the largest
                byte* control = stackalloc byte[256];
                for (int i = 0; i < 64; i++)
                {
                    nint length;
                    fixed (byte* data = payload)
                    {
                        var iov = new Libc.IoVec { Base = data, Length = (nuint)payload.Length };
                        var message = new Libc.MsgHdr { Name = name, NameLength = 28, Iov = &iov, IovLength = 1, Control = control, ControlLength = 256 };
                        length = Libc.RecvMsg(fd, &message, Libc.MSG_ERRQUEUE | Libc.MSG_DONTWAIT);
                        if (length < 0) return;
                        if (IcmpErrorQueue.ParseError(new ReadOnlySpan<byte>(control, (int)message.ControlLength), new ReadOnlySpan<byte>(name, (int)message.NameLength)) is { } error)
                            ErrorReceived?.Invoke(error.Destination, error.Error, payload.AsSpan(0, (int)Math.Min(length, payload.Length)));
                    }
                }
            }
            catch (ObjectDisposedException)
            {
            }
            finally
            {
                if (added) _socket.SafeHandle.DangerousRelease();
            }
        }

        public void Dispose() => _socket.Dispose();
    }
}

/// <summary>What a UDP socket's error queue holds (recvmsg with MSG_ERRQUEUE, ip(7), ipv6(7)).</summary>
internal static class IcmpErrorQueue
{
    /// <summary>
    /// The ICMP error in a control message (<c>struct sock_extended_err</c> of IP_RECVERR or
    /// IPV6_RECVERR, from ICMP, not a local error) and the destination it was about (the message's
    /// name); null for anything else.
    /// </summary>
    internal static (IPEndPoint Destination, SocketError Error)? ParseError(ReadOnlySpan<byte> control, ReadOnlySpan<byte> name)
    {
        const int headerLength = 16; // struct cmsghdr: size_t len, int level, int type (64-bit)
        for (int at = 0; at + headerLength <= control.Length;)
        {
            int length = (int)BinaryPrimitives.ReadUInt64LittleEndian(control[at..]);
            if (length < headerLength || at + length > control.Length) return null;
            int level = BinaryPrimitives.ReadInt32LittleEndian(control[(at + 8)..]);
            int type = BinaryPrimitives.ReadInt32LittleEndian(control[(at + 12)..]);
            var data = control[(at + headerLength)..(at + length)];
            if (((level == Libc.SOL_IP && type == Libc.IP_RECVERR) || (level == Libc.SOL_IPV6 && type == Libc.IPV6_RECVERR)) && data.Length >= 16
                && data[4] is Libc.SO_EE_ORIGIN_ICMP or Libc.SO_EE_ORIGIN_ICMP6)
            {
                var error = BinaryPrimitives.ReadInt32LittleEndian(data) switch
                {
                    111 => SocketError.ConnectionRefused,   // ECONNREFUSED: port unreachable
                    113 => SocketError.HostUnreachable,     // EHOSTUNREACH: host unreachable, administratively prohibited
                    101 => SocketError.NetworkUnreachable,  // ENETUNREACH
                    _ => SocketError.Success,
                };
                if (error == SocketError.Success || ReadEndPoint(name) is not { } destination) return null;
                return (destination, error);
            }
            at += (length + 7) & ~7; // CMSG_ALIGN
        }
        return null;
    }

    private static IPEndPoint? ReadEndPoint(ReadOnlySpan<byte> name)
    {
        if (name.Length < 8) return null;
        int port = BinaryPrimitives.ReadUInt16BigEndian(name[2..]);
        return BinaryPrimitives.ReadUInt16LittleEndian(name) switch
        {
            Libc.AF_INET => new IPEndPoint(new IPAddress(name.Slice(4, 4)), port),
            Libc.AF_INET6 when name.Length >= 24 => new IPEndPoint(new IPAddress(name.Slice(8, 16)), port),
            _ => null,
        };
    }
}
