using System.Collections.Concurrent;
using TunTcp.Wire;

namespace TunTcp.Ip;

/// <summary>A datagram waiting in a UDP binding's receive queue.</summary>
public readonly record struct UdpReceived(Ipv4Address Source, ushort SourcePort, byte[] Payload);

/// <summary>
/// A bound UDP port of the stack core. The stack thread enqueues arriving datagrams (up to a
/// count limit, beyond which they are dropped and counted, as a full socket buffer does); the
/// application dequeues them from any one thread.
/// </summary>
public sealed class UdpBinding
{
    private readonly NetStackCore _core;
    private readonly ConcurrentQueue<UdpReceived> _queue = new();
    private readonly int _limit;
    private int _count;

    internal UdpBinding(NetStackCore core, ushort port, int limit)
    {
        _core = core;
        Port = port;
        _limit = Math.Max(1, limit);
    }

    public ushort Port { get; }

    public bool IsClosed { get; private set; }

    /// <summary>Called on the stack thread after a datagram was queued.</summary>
    public Action? Received { get; set; }

    /// <summary>Datagrams dropped because the queue was full.</summary>
    public long Dropped { get; private set; }

    internal bool Enqueue(Ipv4Address source, ushort sourcePort, ReadOnlySpan<byte> payload)
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
