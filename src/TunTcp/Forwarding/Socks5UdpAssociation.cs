using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace TunTcp.Forwarding;

/// <summary>
/// A UDP association through a SOCKS5 proxy (RFC 1928 section 7), made by
/// <see cref="Socks5Client.AssociateUdpAsync"/>: datagrams to any destination go to the proxy's
/// relay with the section 7 header in front, and datagrams from the relay come back with the
/// header taken off. Like a <see cref="Socket"/>, one sender and one receiver may work at the same
/// time (each direction reuses one buffer, so a datagram costs no allocation).
/// </summary>
/// <remarks>
/// RFC 1928 section 7: "A UDP association terminates when the TCP connection that the UDP
/// ASSOCIATE request arrived on terminates." The control connection is held open for the
/// association's life and watched; when the proxy closes it, <see cref="Closed"/> completes and
/// sends and receives fail with ConnectionReset. Disposing closes both connections.
/// </remarks>
internal sealed class Socks5UdpAssociation : IAsyncDisposable, IDisposable
{
    /// <summary>The largest payload <see cref="SendToAsync"/> takes: a 64 KiB UDP datagram less the IPv4 and UDP headers.</summary>
    public const int MaxPayloadLength = 65535 - 20 - 8 - Socks5Wire.MaxUdpHeaderLength;

    private readonly Socket _control;
    private readonly Socket _udp;
    private readonly byte[] _sendBuffer = new byte[Socks5Wire.MaxUdpHeaderLength + MaxPayloadLength];
    private readonly byte[] _receiveBuffer = new byte[65536];
    private readonly Task _closed;
    private volatile bool _disposed;
    private volatile bool _endedByProxy;
    private long _dropped;

    // The last sender seen, so a stream of datagrams from one destination reuses one IPEndPoint.
    private readonly byte[] _lastFromAddress = new byte[16];
    private IPEndPoint? _lastFrom;

    internal Socks5UdpAssociation(Socks5Proxy proxy, Socket control, Socket udp, IPEndPoint relay)
    {
        Proxy = proxy;
        _control = control;
        _udp = udp;
        RelayEndPoint = relay;
        LocalEndPoint = (IPEndPoint)udp.LocalEndPoint!;
        _closed = WatchControlConnectionAsync();
    }

    /// <summary>The proxy this association goes through.</summary>
    public Socks5Proxy Proxy { get; }

    /// <summary>The relay's UDP endpoint (BND.ADDR and BND.PORT of the ASSOCIATE reply; the proxy's address if BND.ADDR was unspecified).</summary>
    public IPEndPoint RelayEndPoint { get; }

    /// <summary>The local UDP endpoint datagrams leave from (announced to the proxy in the ASSOCIATE request).</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Completes when the association has ended: the proxy closed the control connection, or this was disposed.</summary>
    public Task Closed => _closed;

    /// <summary>Datagrams from the relay dropped because they were fragments (FRAG not 0), truncated or of an unsupported address type.</summary>
    public long DroppedDatagrams => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Sends <paramref name="payload"/> to <paramref name="destination"/> through the relay, as one
    /// datagram with the RFC 1928 section 7 header (FRAG X'00': never fragmented).
    /// </summary>
    /// <exception cref="SocketException">MessageSize if the payload is longer than <see cref="MaxPayloadLength"/>; ConnectionReset once the proxy has ended the association.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SendToAsync(ReadOnlyMemory<byte> payload, IPEndPoint destination, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(destination);
        Socks5Client.CheckIpEndPoint(destination, nameof(destination));
        if (payload.Length > MaxPayloadLength)
            throw Socks5Client.Error(SocketError.MessageSize, $"a {payload.Length}-byte datagram is longer than the {MaxPayloadLength} bytes one SOCKS5 UDP datagram can carry");
        if (_endedByProxy) throw Ended();
        int headerLength = Socks5Wire.WriteUdpHeader(_sendBuffer, destination);
        payload.Span.CopyTo(_sendBuffer.AsSpan(headerLength));
        try
        {
            await _udp.SendAsync(_sendBuffer.AsMemory(0, headerLength + payload.Length), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (_endedByProxy && e is SocketException or ObjectDisposedException)
        {
            throw Ended();
        }
    }

    /// <summary>
    /// Receives the next datagram from the relay into <paramref name="buffer"/> (truncated if it
    /// is too small, as recv(2) does) and returns its length and the sender it came from (the
    /// DST.ADDR and DST.PORT of its header). Fragments (FRAG not X'00', which RFC 1928 section 7
    /// lets a client drop), malformed datagrams and datagrams with a domain-name address are
    /// dropped and counted in <see cref="DroppedDatagrams"/>; datagrams from anyone but the relay
    /// never arrive (the UDP socket is connected to it). The returned endpoint may be the same
    /// instance as the previous call's when the sender is the same: do not change it.
    /// </summary>
    /// <exception cref="SocketException">ConnectionReset once the proxy has ended the association.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<(int Length, IPEndPoint From)> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_endedByProxy) throw Ended();
            int received;
            try
            {
                received = await _udp.ReceiveAsync(_receiveBuffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused && !_endedByProxy)
            {
                // An ICMP port unreachable for an earlier datagram, reported on the connected socket.
                continue;
            }
            catch (Exception e) when (_endedByProxy && e is SocketException or ObjectDisposedException)
            {
                throw Ended();
            }
            if (TryDeliver(received, buffer.Span, out int length, out var from)) return (length, from);
            Interlocked.Increment(ref _dropped);
        }
    }

    private bool TryDeliver(int received, Span<byte> destination, out int length, out IPEndPoint from)
    {
        length = 0;
        from = null!;
        var datagram = _receiveBuffer.AsSpan(0, received);
        if (Socks5Wire.TryReadUdpHeader(datagram, out var address, out ushort port, out int headerLength) != Socks5Wire.UdpHeaderStatus.Ok)
            return false;
        length = Math.Min(received - headerLength, destination.Length);
        datagram.Slice(headerLength, length).CopyTo(destination);
        from = Sender(address, port);
        return true;
    }

    /// <summary>The sender's endpoint, reusing the last one when it is the same address and port.</summary>
    private IPEndPoint Sender(ReadOnlySpan<byte> address, ushort port)
    {
        var last = _lastFrom;
        if (last is not null && last.Port == port
            && (address.Length == 4) == (last.AddressFamily == AddressFamily.InterNetwork)
            && address.SequenceEqual(_lastFromAddress.AsSpan(0, address.Length)))
            return last;
        address.CopyTo(_lastFromAddress);
        return _lastFrom = new IPEndPoint(new IPAddress(address), port);
    }

    private SocketException Ended() =>
        Socks5Client.Error(SocketError.ConnectionReset, $"SOCKS5 proxy {Proxy} ended the UDP association: it closed the control connection (RFC 1928 section 7)");

    /// <summary>Waits for the control connection to end (the proxy sends nothing on it after the reply), then ends the association.</summary>
    private async Task WatchControlConnectionAsync()
    {
        var probe = new byte[16];
        try
        {
            // Anything the proxy sends after its reply has no meaning in RFC 1928; it is read and ignored.
            while (await _control.ReceiveAsync(probe, SocketFlags.None).ConfigureAwait(false) > 0) { }
        }
        catch (SocketException) { }
        catch (ObjectDisposedException) { }
        if (!_disposed)
        {
            _endedByProxy = true;
            _udp.Dispose(); // wakes a pending receive, which then reports the end
        }
        // Closed here, once no receive is pending on it: closing a socket with a pending receive
        // makes .NET abort it with a RST, and the proxy should see an orderly FIN.
        _control.Dispose();
    }

    /// <summary>Closes the control connection (which ends the association at the proxy) and the UDP socket.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            // FIN to the proxy; it also ends the watcher's receive, and the watcher then closes the socket.
            _control.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            _control.Dispose();
        }
        _udp.Dispose();
    }

    /// <inheritdoc cref="Dispose"/>
    public async ValueTask DisposeAsync()
    {
        Dispose();
        await _closed.ConfigureAwait(false);
    }
}
