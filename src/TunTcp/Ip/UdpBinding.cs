using System.Collections.Concurrent;
using TunTcp.Wire;

namespace TunTcp.Ip;

/// <summary>A datagram waiting in a UDP binding's receive queue.</summary>
internal readonly record struct UdpReceived(IpAddress Source, ushort SourcePort, byte[] Payload);

/// <summary>
/// A bound UDP port of the stack core. The stack thread enqueues arriving datagrams (up to a
/// count limit, beyond which they are dropped and counted, as a full socket buffer does); the
/// application dequeues them from any one thread.
/// </summary>
internal sealed class UdpBinding
{
    private readonly NetStackCore _core;
    private readonly ConcurrentQueue<UdpReceived> _queue = new();
    private readonly int _limit;
    private int _count;

    internal UdpBinding(NetStackCore core, IpAddress localAddress, ushort port, int limit, bool dualMode)
    {
        _core = core;
        LocalAddress = localAddress;
        DualMode = dualMode;
        Port = port;
        _limit = Math.Max(1, limit);
    }

    /// <summary>The address bound: one of the stack's, or a wildcard.</summary>
    public IpAddress LocalAddress { get; }

    public ushort Port { get; }

    /// <summary>Bound to the IPv6 wildcard and taking IPv4 too (IPV6_V6ONLY off).</summary>
    public bool DualMode { get; }

    /// <summary>Whether this binding's family (or dual mode) covers <paramref name="destination"/>, as a socket's does.</summary>
    public bool CanSendTo(IpAddress destination) =>
        LocalAddress.IsV4 ? destination.IsV4 : destination.IsV6 || (DualMode && destination.IsV4);

    public bool IsClosed { get; private set; }

    /// <summary>Called on the stack thread after a datagram was queued.</summary>
    public Action? Received { get; set; }

    /// <summary>Datagrams dropped because the queue was full.</summary>
    public long Dropped { get; private set; }

    internal bool Enqueue(IpAddress source, ushort sourcePort, ReadOnlySpan<byte> payload)
    {
        if (Volatile.Read(ref _count) >= _limit) { Dropped++; return false; }
        _queue.Enqueue(new UdpReceived(source, sourcePort, payload.ToArray()));
        Interlocked.Increment(ref _count);
        Received?.Invoke();
        return true;
    }

    /// <summary>Takes the oldest datagram, if any (application thread).</summary>
    public bool TryDequeue(out UdpReceived datagram)
    {
        if (!_queue.TryDequeue(out datagram)) return false;
        Interlocked.Decrement(ref _count);
        return true;
    }

    /// <summary>Unbinds the port (stack thread only).</summary>
    public void Close()
    {
        if (IsClosed) return;
        IsClosed = true;
        _core.UnbindUdp(this);
    }
}
