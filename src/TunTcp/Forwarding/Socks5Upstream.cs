using System.Net;
using System.Net.Sockets;

namespace TunTcp.Forwarding;

/// <summary>
/// Relays through a SOCKS5 proxy: TCP with CONNECT (RFC 1928 4), UDP with UDP ASSOCIATE (RFC 1928
/// 7, one association per flow), username/password authentication (RFC 1929) when the proxy URL
/// carries credentials. A proxy's reply code becomes the error a direct connect would give, so
/// the application still sees a refused port as a RST.
/// </summary>
public sealed class Socks5Upstream(Socks5Proxy proxy) : IUpstream
{
    public Socks5Proxy Proxy { get; } = proxy;

    public string Description => Proxy.ToString();

    public Task<Socket> ConnectAsync(IPEndPoint destination, CancellationToken cancellationToken) =>
        Socks5Client.ConnectAsync(Proxy, destination, cancellationToken);

    public async Task<IUdpUpstream> OpenUdpAsync(AddressFamily family, CancellationToken cancellationToken) =>
        new Association(await Socks5Client.AssociateUdpAsync(Proxy, cancellationToken).ConfigureAwait(false));

    private sealed class Association(Socks5UdpAssociation association) : IUdpUpstream
    {
        public ValueTask SendToAsync(ReadOnlyMemory<byte> payload, IPEndPoint destination, CancellationToken cancellationToken) =>
            association.SendToAsync(payload, destination, cancellationToken);

        public ValueTask<(int Length, IPEndPoint From)> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
            association.ReceiveFromAsync(buffer, cancellationToken);

        public void Dispose() => association.Dispose();
    }
}
