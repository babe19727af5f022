using System.Numerics;

namespace TunTcp.Tcp;

/// <summary>
/// A single-producer single-consumer byte ring with 64-bit running positions. The TCP engine
/// keeps its send and receive buffers in these: for the send buffer the application produces
/// and the stack consumes (on ACK), for the receive buffer the stack produces and the
/// application consumes. Positions only grow, so <c>tail - head</c> is the byte count without
/// a separate flag for full; the capacity is a power of two so an index is a mask.
/// </summary>
/// <remarks>
/// Thread safety: one producer thread and one consumer thread at a time. The producer writes
/// bytes, then publishes the tail with a release store; the consumer reads the tail with an
/// acquire load before touching those bytes, and publishes the head the same way. The array
/// is allocated by the producer on first write, so idle or half-open connections cost no
/// buffer memory.
/// </remarks>
public sealed class ByteRing
{
    private byte[]? _buffer;
    private readonly int _mask;
    private long _head;
    private long _tail;

    /// <param name="capacity">Rounded up to a power of two, at least 16 bytes.</param>
    public ByteRing(int capacity)
    {
        if (capacity <= 0 || capacity > (1 << 30)) throw new ArgumentOutOfRangeException(nameof(capacity));
        Capacity = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, capacity));
        _mask = Capacity - 1;
    }

    public int Capacity { get; }

    /// <summary>Bytes written and not yet consumed.</summary>
    public int Count => (int)(Volatile.Read(ref _tail) - Volatile.Read(ref _head));

    public int Free => Capacity - Count;

    public bool IsEmpty => Count == 0;

    /// <summary>Running count of bytes ever consumed (the head position).</summary>
    public long HeadPosition => Volatile.Read(ref _head);

    /// <summary>Running count of bytes ever written (the tail position).</summary>
    public long TailPosition => Volatile.Read(ref _tail);

    // ---- producer side ----

    /// <summary>Copies as much of <paramref name="data"/> as fits and publishes it; returns the bytes taken.</summary>
    public int Write(ReadOnlySpan<byte> data)
    {
        int n = Math.Min(data.Length, Free);
        if (n == 0) return 0;
        WriteAt(0, data[..n]);
        Commit(n);
        return n;
    }

    /// <summary>
    /// Writes <paramref name="data"/> at <paramref name="offset"/> bytes past the tail without
    /// publishing it (out-of-order data waiting for a gap to fill). Caller keeps it within <see cref="Free"/>.
    /// </summary>
    public void WriteAt(int offset, ReadOnlySpan<byte> data)
    {
        if ((uint)offset > (uint)Free || data.Length > Free - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), "write past the free space of the ring");
        var buffer = _buffer ??= GC.AllocateUninitializedArray<byte>(Capacity);
        int start = (int)((_tail + offset) & _mask);
        int first = Math.Min(data.Length, Capacity - start);
        data[..first].CopyTo(buffer.AsSpan(start));
        data[first..].CopyTo(buffer);
    }

    /// <summary>The free space past the tail as up to two spans, for writing in place before <see cref="Commit"/>.</summary>
    public void GetWritable(out Span<byte> first, out Span<byte> second)
    {
        int free = Free;
        if (free == 0) { first = second = default; return; }
        var buffer = _buffer ??= GC.AllocateUninitializedArray<byte>(Capacity);
        int start = (int)(_tail & _mask);
        int firstLength = Math.Min(free, Capacity - start);
        first = buffer.AsSpan(start, firstLength);
        second = buffer.AsSpan(0, free - firstLength);
    }

    /// <summary>Publishes <paramref name="count"/> bytes already written past the tail.</summary>
    public void Commit(int count)
    {
        if ((uint)count > (uint)Free) throw new ArgumentOutOfRangeException(nameof(count));
        Volatile.Write(ref _tail, _tail + count);
    }

    // ---- consumer side ----

    /// <summary>Copies up to <paramref name="destination"/>.Length bytes out and consumes them.</summary>
    public int Read(Span<byte> destination)
    {
        int n = Math.Min(destination.Length, Count);
        if (n == 0) return 0;
        Peek(0, n, out var first, out var second);
        first.CopyTo(destination);
        second.CopyTo(destination[first.Length..]);
        Consume(n);
        return n;
    }

    /// <summary>A view of <paramref name="count"/> published bytes starting <paramref name="offset"/> past the head.</summary>
    public void Peek(int offset, int count, out ReadOnlySpan<byte> first, out ReadOnlySpan<byte> second)
    {
        if (count == 0) { first = second = default; return; }
        if (offset < 0 || count < 0 || (long)offset + count > Count)
            throw new ArgumentOutOfRangeException(nameof(count), "peek past the published data of the ring");
        var buffer = _buffer!;
        int start = (int)((Volatile.Read(ref _head) + offset) & _mask);
        int firstLength = Math.Min(count, Capacity - start);
        first = buffer.AsSpan(start, firstLength);
        second = buffer.AsSpan(0, count - firstLength);
    }

    /// <summary>Releases <paramref name="count"/> bytes at the head.</summary>
    public void Consume(int count)
    {
        if ((uint)count > (uint)Count) throw new ArgumentOutOfRangeException(nameof(count));
        Volatile.Write(ref _head, _head + count);
    }
}
