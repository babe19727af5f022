using System.Net;
using System.Net.Sockets;
using TunTcp.Ip;
using TunTcp.Wire;

namespace TunTcp.Sockets;

/// <summary>
/// A bound UDP port on a TunTcp stack: <see cref="SendToAsync"/> and
/// <see cref="ReceiveFromAsync"/> like <see cref="Socket"/>'s, either family. Datagrams larger
/// than the MTU go out in fragments; arriving fragments are reassembled.
/// </summary>
public sealed class TunUdpSocket : IDisposable, IAsyncDisposable
{
    private readonly NetStack _stack;
    private readonly UdpBinding _binding;
    private readonly AsyncSignal _received = new();
    private volatile bool _disposed;

    internal TunUdpSocket(NetStack stack, UdpBinding binding)
    {
        _stack = stack;
        _binding = binding;
        LocalEndPoint = new IPEndPoint(binding.LocalAddress.ToIPAddress(), binding.Port);
        binding.Received = _received.Set;
    }

    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Largest payload one IPv4 datagram can carry (the 16-bit lengths allow it; sent in fragments past the MTU).</summary>
    public int MaxDatagramSize => NetStackCore.MaxUdpPayload(IpAddress.AnyV4);

    /// <summary>
    /// Sends one datagram; completes once it is handed to the stack thread. Fails with
    /// MessageSize for a datagram larger than its family allows and AddressFamilyNotSupported for
    /// a family the stack has no address of.
    /// </summary>
    public ValueTask<int> SendToAsync(ReadOnlyMemory<byte> datagram, IPEndPoint remote, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var destination = IpAddress.FromIPAddress(remote.Address);
        if (datagram.Length > NetStackCore.MaxUdpPayload(destination))
            return ValueTask.FromException<int>(new SocketException((int)SocketError.MessageSize));
        if (!_binding.CanSendTo(destination) || !(destination.IsV4 ? _stack.Core.HasIpv4 : _stack.Core.HasIpv6))
            return ValueTask.FromException<int>(new SocketException((int)SocketError.AddressFamilyNotSupported));
        var port = checked((ushort)remote.Port);
        var copy = datagram.ToArray();
        _stack.Post((core, _) => core.SendUdp(_binding.Port, destination, port, copy));
        return new ValueTask<int>(copy.Length);
    }

    /// <summary>Receives one datagram into <paramref name="buffer"/> (truncated if it is too small, as with Socket).</summary>
    public async ValueTask<SocketReceiveFromResult> ReceiveFromAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_binding.TryDequeue(out var d))
            {
                int n = Math.Min(buffer.Length, d.Payload.Length);
                d.Payload.AsSpan(0, n).CopyTo(buffer.Span);
                return new SocketReceiveFromResult { ReceivedBytes = n, RemoteEndPoint = new IPEndPoint(d.Source.ToIPAddress(), d.SourcePort) };
            }
            await _received.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _received.Set();
        try { _stack.Post((_, _) => _binding.Close()); }
        catch (ObjectDisposedException) { }
    }

    /// <summary>Closes the socket, like <see cref="Dispose"/> (it never waits).</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
