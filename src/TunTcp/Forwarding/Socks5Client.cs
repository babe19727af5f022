using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunTcp.Forwarding;

/// <summary>
/// A SOCKS5 client (RFC 1928) with username/password authentication (RFC 1929), for forwarding
/// through an upstream proxy: <see cref="ConnectAsync"/> gives a TCP socket to a destination
/// through the proxy (CONNECT), <see cref="AssociateUdpAsync"/> a UDP relay (UDP ASSOCIATE).
/// </summary>
/// <remarks>
/// <para>
/// Read RFC 1928 sections 3 (method selection), 4-6 (requests and replies) and 7 (UDP), and
/// RFC 1929 section 2. Destinations are always IP addresses (ATYP 1 or 4): the forwarder has
/// them from the packets it forwards, so the proxy never resolves names for us.
/// </para>
/// <para>
/// Every failure is a <see cref="SocketException"/> whose <see cref="SocketException.SocketErrorCode"/>
/// is what a direct connect would have given (REP 5 is ConnectionRefused, REP 4 HostUnreachable,
/// and so on), so a forwarder can answer its own client the same way, and whose message names the
/// proxy. Cancellation throws <see cref="OperationCanceledException"/> and disposes the socket.
/// </para>
/// <para>
/// When <see cref="Socks5Proxy.Host"/> is an IP literal, the sockets are created synchronously,
/// before the returned task first waits, so they belong to the network namespace of the calling
/// thread (see <c>NetworkNamespace.Enter</c>); a host name is resolved first, and the sockets are
/// created where the resolution completes.
/// </para>
/// </remarks>
internal static class Socks5Client
{
    // The longest handshake message: the RFC 1929 request, 1 + 1 + 255 + 1 + 255 octets.
    private const int HandshakeBufferLength = 3 + 2 * Socks5Proxy.MaxCredentialBytes;

    /// <summary>
    /// Connects to <paramref name="destination"/> through the proxy (RFC 1928 CONNECT) and returns the
    /// connected TCP socket, positioned after the proxy's reply: what is sent and received on it is
    /// the destination's stream. The caller owns (and disposes) the socket.
    /// </summary>
    /// <exception cref="SocketException">
    /// The proxy could not be reached (the code of that connect), refused the authentication
    /// (AccessDenied), could not reach the destination (the REP mapped to the matching code), or
    /// broke the protocol (ProtocolNotSupported; ConnectionReset when it closed early).
    /// </exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the socket is disposed.</exception>
    public static async Task<Socket> ConnectAsync(Socks5Proxy proxy, IPEndPoint destination, CancellationToken cancellationToken = default)
    {
        CheckProxy(proxy);
        ArgumentNullException.ThrowIfNull(destination);
        CheckIpEndPoint(destination, nameof(destination));
        cancellationToken.ThrowIfCancellationRequested();

        // An IP literal: the socket is created here, on the caller's thread (and namespace).
        Socket socket = IPAddress.TryParse(proxy.Host, out var literal)
            ? await ConnectToProxyAsync(proxy, NewTcpSocket(literal.AddressFamily), new IPEndPoint(literal, proxy.Port), cancellationToken).ConfigureAwait(false)
            : await ConnectToResolvedProxyAsync(proxy, cancellationToken).ConfigureAwait(false);
        try
        {
            var buffer = new byte[HandshakeBufferLength];
            await NegotiateAsync(socket, proxy, buffer, cancellationToken).ConfigureAwait(false);
            _ = await RequestAsync(socket, proxy, Socks5Wire.CommandConnect, destination, buffer, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a UDP association through the proxy (RFC 1928 section 7, UDP ASSOCIATE): connects
    /// the control TCP connection, binds a local UDP socket of the proxy's family on the address
    /// that connection uses, announces it in the request, and reads the relay's address from the
    /// reply (an unspecified relay address, 0.0.0.0 or ::, means the proxy's own). The association
    /// lasts while the control connection is open; disposing it closes both sockets.
    /// </summary>
    /// <exception cref="SocketException">As for <see cref="ConnectAsync"/>; a proxy without UDP ASSOCIATE answers REP 7 (OperationNotSupported).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; the sockets are disposed.</exception>
    public static async Task<Socks5UdpAssociation> AssociateUdpAsync(Socks5Proxy proxy, CancellationToken cancellationToken = default)
    {
        CheckProxy(proxy);
        cancellationToken.ThrowIfCancellationRequested();

        Socket? udp = null;
        Socket? control = null;
        try
        {
            if (IPAddress.TryParse(proxy.Host, out var literal))
            {
                // Both sockets are created before the first wait, on the caller's thread (and namespace).
                var tcp = NewTcpSocket(literal.AddressFamily);
                udp = new Socket(literal.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                control = await ConnectToProxyAsync(proxy, tcp, new IPEndPoint(literal, proxy.Port), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                control = await ConnectToResolvedProxyAsync(proxy, cancellationToken).ConfigureAwait(false);
                udp = new Socket(control.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            }

            var buffer = new byte[HandshakeBufferLength];
            await NegotiateAsync(control, proxy, buffer, cancellationToken).ConfigureAwait(false);

            // RFC 1928 section 7: DST.ADDR and DST.PORT are where the client will send from. The
            // address the control connection uses is the one the proxy sees us at.
            var proxyEndPoint = (IPEndPoint)control.RemoteEndPoint!;
            udp.Bind(new IPEndPoint(((IPEndPoint)control.LocalEndPoint!).Address, 0));
            var local = (IPEndPoint)udp.LocalEndPoint!;

            var bound = await RequestAsync(control, proxy, Socks5Wire.CommandUdpAssociate, local, buffer, cancellationToken).ConfigureAwait(false);
            var relay = await RelayEndPointAsync(proxy, bound, proxyEndPoint.Address, udp.AddressFamily, cancellationToken).ConfigureAwait(false);

            // A connected UDP socket: the kernel drops datagrams from anyone but the relay.
            udp.Connect(relay);
            var association = new Socks5UdpAssociation(proxy, control, udp, relay);
            control = udp = null; // owned by the association now
            return association;
        }
        finally
        {
            control?.Dispose();
            udp?.Dispose();
        }
    }

    /// <summary>The relay's endpoint from the BND.ADDR and BND.PORT of an ASSOCIATE reply.</summary>
    private static async Task<IPEndPoint> RelayEndPointAsync(Socks5Proxy proxy, BoundAddress bound, IPAddress proxyAddress, AddressFamily family, CancellationToken cancellationToken)
    {
        IPAddress? address = bound.Address;
        if (address is null)
        {
            // ATYP 3: a relay given by name (allowed by RFC 1928 section 6, rare in practice).
            IPAddress[] addresses;
            try
            {
                addresses = await Dns.GetHostAddressesAsync(bound.HostName!, family, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                throw Error(e.SocketErrorCode, $"SOCKS5 proxy {proxy} named its UDP relay '{bound.HostName}', which does not resolve: {e.Message}");
            }
            address = addresses.FirstOrDefault()
                ?? throw Error(SocketError.HostNotFound, $"SOCKS5 proxy {proxy} named its UDP relay '{bound.HostName}', which has no {Family(family)} address");
        }
        if (address.IsIPv4MappedToIPv6 && family == AddressFamily.InterNetwork) address = address.MapToIPv4();
        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any)) address = proxyAddress;
        if (bound.Port == 0)
            throw Error(SocketError.ProtocolNotSupported, $"SOCKS5 proxy {proxy} answered UDP ASSOCIATE with relay port 0");
        if (address.AddressFamily != family)
            throw Error(SocketError.AddressFamilyNotSupported, $"SOCKS5 proxy {proxy} answered UDP ASSOCIATE with an {Family(address.AddressFamily)} relay ({address}) for an {Family(family)} client");
        return new IPEndPoint(address, bound.Port);
    }

    /// <summary>Resolves a proxy host name and connects to its addresses in order until one answers.</summary>
    private static async Task<Socket> ConnectToResolvedProxyAsync(Socks5Proxy proxy, CancellationToken cancellationToken)
    {
        IPAddress[] addresses;
        try
        {
            addresses = await Dns.GetHostAddressesAsync(proxy.Host, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw Error(e.SocketErrorCode, $"cannot resolve SOCKS5 proxy {proxy}: {e.Message}");
        }
        addresses = [.. addresses.Where(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)];
        if (addresses.Length == 0) throw Error(SocketError.HostNotFound, $"cannot resolve SOCKS5 proxy {proxy}: the name has no IPv4 or IPv6 address");
        SocketException? last = null;
        foreach (var address in addresses)
        {
            try
            {
                return await ConnectToProxyAsync(proxy, NewTcpSocket(address.AddressFamily), new IPEndPoint(address, proxy.Port), cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                last = e;
            }
        }
        throw last!;
    }

    /// <summary>Connects <paramref name="socket"/> to the proxy; disposes it on failure, with a message naming the proxy.</summary>
    private static async Task<Socket> ConnectToProxyAsync(Socks5Proxy proxy, Socket socket, IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            string at = proxy.Host == endPoint.Address.ToString() ? "" : $" at {endPoint}";
            throw Error(e.SocketErrorCode, $"cannot connect to SOCKS5 proxy {proxy}{at}: {e.Message}");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>RFC 1928 section 3 method selection, then RFC 1929 authentication if the proxy chose it.</summary>
    private static async Task NegotiateAsync(Socket socket, Socks5Proxy proxy, byte[] buffer, CancellationToken cancellationToken)
    {
        // With credentials, offer both methods (as curl does): a proxy that needs none may skip them.
        buffer[0] = Socks5Wire.Version;
        int length;
        if (proxy.HasCredentials)
        {
            buffer[1] = 2;
            buffer[2] = Socks5Wire.MethodNoAuthentication;
            buffer[3] = Socks5Wire.MethodUserPassword;
            length = 4;
        }
        else
        {
            buffer[1] = 1;
            buffer[2] = Socks5Wire.MethodNoAuthentication;
            length = 3;
        }
        const string Selection = "the method selection (RFC 1928 section 3)";
        await SendAsync(socket, proxy, buffer.AsMemory(0, length), Selection, cancellationToken).ConfigureAwait(false);
        await ReceiveExactlyAsync(socket, proxy, buffer.AsMemory(0, 2), Selection, cancellationToken).ConfigureAwait(false);
        if (buffer[0] != Socks5Wire.Version)
            throw Error(SocketError.ProtocolNotSupported, $"SOCKS5 proxy {proxy} answered {Selection} with version {buffer[0]}, not 5: it does not speak SOCKS5");
        byte method = buffer[1];
        switch (method)
        {
            case Socks5Wire.MethodNoAuthentication:
                return;
            case Socks5Wire.MethodUserPassword when proxy.HasCredentials:
                await AuthenticateAsync(socket, proxy, buffer, cancellationToken).ConfigureAwait(false);
                return;
            case Socks5Wire.MethodNoAcceptable:
                throw Error(SocketError.AccessDenied, proxy.HasCredentials
                    ? $"SOCKS5 proxy {proxy} accepts none of the offered authentication methods (none, username/password; RFC 1928 METHOD X'FF')"
                    : $"SOCKS5 proxy {proxy} requires authentication: it does not accept connections without it (RFC 1928 METHOD X'FF'); give USER:PASS@ in the proxy URL");
            default:
                throw Error(SocketError.ProtocolNotSupported, $"SOCKS5 proxy {proxy} chose authentication method 0x{method:x2}, which was not offered");
        }
    }

    /// <summary>RFC 1929 section 2: VER ULEN UNAME PLEN PASSWD, answered by VER STATUS (X'00' is success).</summary>
    private static async Task AuthenticateAsync(Socket socket, Socks5Proxy proxy, byte[] buffer, CancellationToken cancellationToken)
    {
        int userLength = Encoding.UTF8.GetBytes(proxy.UserName!, buffer.AsSpan(2, Socks5Proxy.MaxCredentialBytes));
        int passwordAt = 2 + userLength + 1;
        int passwordLength = Encoding.UTF8.GetBytes(proxy.Password!, buffer.AsSpan(passwordAt, Socks5Proxy.MaxCredentialBytes));
        buffer[0] = Socks5Wire.AuthVersion;
        buffer[1] = (byte)userLength;
        buffer[2 + userLength] = (byte)passwordLength;
        const string Stage = "the username/password authentication (RFC 1929)";
        try
        {
            await SendAsync(socket, proxy, buffer.AsMemory(0, passwordAt + passwordLength), Stage, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            buffer.AsSpan(0, passwordAt + passwordLength).Clear(); // the password does not outlive the send
        }
        await ReceiveExactlyAsync(socket, proxy, buffer.AsMemory(0, 2), Stage, cancellationToken).ConfigureAwait(false);
        // RFC 1929 says VER X'01'; some servers echo the SOCKS version 5 instead. Both mean the same.
        if (buffer[0] is not (Socks5Wire.AuthVersion or Socks5Wire.Version))
            throw Error(SocketError.ProtocolNotSupported, $"SOCKS5 proxy {proxy} answered {Stage} with version {buffer[0]}, not 1");
        if (buffer[1] != 0)
            throw Error(SocketError.AccessDenied, $"SOCKS5 proxy {proxy} rejected the user name and password (RFC 1929 STATUS {buffer[1]})");
    }

    /// <summary>
    /// RFC 1928 section 4 request VER CMD RSV ATYP DST.ADDR DST.PORT, and the section 6 reply
    /// VER REP RSV ATYP BND.ADDR BND.PORT, read to its last octet (BND.ADDR may be a domain name).
    /// A REP other than X'00' throws at once, as a proxy may close right after it.
    /// </summary>
    private static async Task<BoundAddress> RequestAsync(Socket socket, Socks5Proxy proxy, byte command, IPEndPoint destination, byte[] buffer, CancellationToken cancellationToken)
    {
        string what = command == Socks5Wire.CommandConnect ? $"CONNECT to {destination}" : $"UDP ASSOCIATE from {destination}";
        buffer[0] = Socks5Wire.Version;
        buffer[1] = command;
        buffer[2] = 0; // RSV
        int length = 3 + Socks5Wire.WriteAddress(buffer.AsSpan(3), destination);
        string stage = $"the reply to {what} (RFC 1928 section 6)";
        await SendAsync(socket, proxy, buffer.AsMemory(0, length), $"the {what} request", cancellationToken).ConfigureAwait(false);

        await ReceiveExactlyAsync(socket, proxy, buffer.AsMemory(0, 2), stage, cancellationToken).ConfigureAwait(false);
        if (buffer[0] != Socks5Wire.Version)
            throw Error(SocketError.ProtocolNotSupported, $"SOCKS5 proxy {proxy} answered {what} with version {buffer[0]}, not 5");
        byte reply = buffer[1];
        if (reply != Socks5Wire.ReplySucceeded)
            throw Error(Socks5Wire.ReplyToSocketError(reply), $"SOCKS5 proxy {proxy} failed {what}: {Socks5Wire.DescribeReply(reply)} (REP {reply})");

        await ReceiveExactlyAsync(socket, proxy, buffer.AsMemory(0, 2), stage, cancellationToken).ConfigureAwait(false);
        byte addressType = buffer[1]; // buffer[0] is RSV, ignored on receipt
        switch (addressType)
        {
            case Socks5Wire.AddressIpv4:
            case Socks5Wire.AddressIpv6:
            {
                int addressLength = addressType == Socks5Wire.AddressIpv4 ? 4 : 16;
                await ReceiveExactlyAsync(socket, proxy, buffer.AsMemory(0, addressLength + 2), stage, cancellationToken).ConfigureAwait(false);
                var address = new IPAddress(buffer.AsSpan(0, addressLength));
                return new BoundAddress(address, null, BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(addressLength, 2)));
            }
            case Socks5Wire.AddressDomainName:
            {
                await ReceiveExactlyAsync(socket, proxy, buffer.AsMemory(0, 1), stage, cancellationToken).ConfigureAwait(false);
                int nameLength = buffer[0];
                await ReceiveExactlyAsync(socket, proxy, buffer.AsMemory(0, nameLength + 2), stage, cancellationToken).ConfigureAwait(false);
                string name = Encoding.ASCII.GetString(buffer, 0, nameLength);
                if (nameLength == 0)
                    throw Error(SocketError.ProtocolNotSupported, $"SOCKS5 proxy {proxy} answered {what} with an empty domain name as BND.ADDR");
                return new BoundAddress(null, name, BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(nameLength, 2)));
            }
            default:
                throw Error(SocketError.ProtocolNotSupported, $"SOCKS5 proxy {proxy} answered {what} with unknown address type {addressType} (RFC 1928 ATYP is 1, 3 or 4)");
        }
    }

    private static async Task SendAsync(Socket socket, Socks5Proxy proxy, ReadOnlyMemory<byte> data, string stage, CancellationToken cancellationToken)
    {
        try
        {
            while (!data.IsEmpty)
            {
                int sent = await socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                data = data[sent..];
            }
        }
        catch (SocketException e)
        {
            throw Error(e.SocketErrorCode, $"SOCKS5 proxy {proxy}: sending {stage} failed: {e.Message}");
        }
    }

    private static async Task ReceiveExactlyAsync(Socket socket, Socks5Proxy proxy, Memory<byte> buffer, string stage, CancellationToken cancellationToken)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer[read..], SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                throw Error(e.SocketErrorCode, $"SOCKS5 proxy {proxy}: receiving {stage} failed: {e.Message}");
            }
            if (n == 0)
                throw Error(SocketError.ConnectionReset, read == 0
                    ? $"SOCKS5 proxy {proxy} closed the connection instead of sending {stage}"
                    : $"SOCKS5 proxy {proxy} closed the connection in the middle of {stage}");
            read += n;
        }
    }

    private static Socket NewTcpSocket(AddressFamily family) => new(family, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    private static void CheckProxy(Socks5Proxy proxy)
    {
        ArgumentNullException.ThrowIfNull(proxy);
        if (string.IsNullOrEmpty(proxy.Host)) throw new ArgumentException("the SOCKS5 proxy has no host", nameof(proxy));
        if (proxy.Port is < 1 or > 65535) throw new ArgumentException($"SOCKS5 proxy {proxy}: port {proxy.Port} is out of range (1..65535)", nameof(proxy));
        string? credentials = Socks5Proxy.CheckCredentials(proxy.UserName, proxy.Password);
        if (credentials is not null) throw new ArgumentException($"SOCKS5 proxy {proxy}: {credentials}", nameof(proxy));
    }

    internal static void CheckIpEndPoint(IPEndPoint endPoint, string parameter)
    {
        if (endPoint.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            throw new ArgumentException($"{endPoint} is neither IPv4 nor IPv6", parameter);
    }

    internal static SocketException Error(SocketError error, string message) => new((int)error, message);

    private static string Family(AddressFamily family) => family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";

    /// <summary>BND.ADDR and BND.PORT of a reply: an address, or (ATYP 3) a host name.</summary>
    private readonly record struct BoundAddress(IPAddress? Address, string? HostName, int Port);
}
