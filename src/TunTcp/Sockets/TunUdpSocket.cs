using System.Net;
using System.Net.Sockets;
using TunTcp.Ip;
using TunTcp.Wire;

namespace TunTcp.Sockets;

/// <summary>
/// A bound UDP port on a TunTcp stack: <see cref="SendToAsync"/> and
/// <see cref="ReceiveFromAsync"/> like <see cref="Socket"/>'s. Datagrams larger than the MTU
/// allows are refused (TunTcp does not fragment).
/// </summary>
public sealed class TunUdpSocket : IDisposable
{
    private readonly NetStack _stack;
    private readonly UdpBinding _binding;
    private readonly AsyncSignal _received = new();
    private volatile bool _disposed;

    internal TunUdpSocket(NetStack stack, UdpBinding binding)
    {
        _stack = stack;
        _binding = binding;
        LocalEndPoint = new IPEndPoint(stack.Options.Address.ToIPAddress(), binding.Port);
        binding.Received = _received.Set;
    }

    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Largest payload one datagram can carry.</summary>
    public int MaxDatagramSize => _stack.Options.Mtu - Ipv4Header.Length - UdpHeader.Length;

    /// <summary>Sends one datagram; completes once it is handed to the stack thread.</summary>
    public ValueTask<int> SendToAsync(ReadOnlyMemory<byte> datagram, IPEndPoint remote, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (datagram.Length > MaxDatagramSize)
            return ValueTask.FromException<int>(new SocketException((int)SocketError.MessageSize));
        var destination = Ipv4Address.FromIPAddress(remote.Address);
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
}
