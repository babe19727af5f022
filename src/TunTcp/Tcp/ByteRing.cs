using System.Numerics;

namespace TunTcp.Tcp;

/// <summary>
/// A single-producer single-consumer byte ring with 64-bit running positions. The TCP engine
/// keeps its send and receive buffers in these: for the send buffer the application produces
/// and the stack consumes (on ACK), for the receive buffer the stack produces and the
/// application consumes. Positions only grow, so <c>tail - head</c> is the byte count without
/// a separate flag for full; array lengths are powers of two so an index is a mask.
/// </summary>
/// <remarks>
/// <para>Thread safety: one producer thread and one consumer thread at a time. The producer
/// writes bytes, then publishes the tail with a release store; the consumer reads the tail with
/// an acquire load before touching those bytes, and publishes the head the same way.</para>
/// <para>Memory grows with use: the array starts small (nothing at all until the first write)
/// and doubles up to <see cref="Capacity"/> when the producer needs room. Only the producer
/// grows it: it copies the live bytes (and any written past the tail) into the new array and
/// publishes the array before it publishes a new tail, so a consumer that sees the new tail also
/// sees the new array; a consumer still reading the old array reads bytes that are still there.
/// Idle connections and short exchanges therefore cost little, while a connection that needs a
/// large window gets it.</para>
/// </remarks>
internal sealed class ByteRing
{
    private const int InitialArray = 16 * 1024;

    private byte[]? _buffer;
    private long _head;
    private long _tail;
    /// <summary>Producer only: the furthest position ever written (past the tail for out-of-order data).</summary>
    private long _writtenEnd;

    /// <param name="capacity">Rounded up to a power of two, at least 16 bytes.</param>
    public ByteRing(int capacity)
    {
        if (capacity <= 0 || capacity > (1 << 30)) throw new ArgumentOutOfRangeException(nameof(capacity));
        Capacity = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, capacity));
    }

    /// <summary>The most bytes the ring holds; the receive window and send buffer limit.</summary>
    public int Capacity { get; }

    /// <summary>Bytes written and not yet consumed.</summary>
    public int Count => (int)(Volatile.Read(ref _tail) - Volatile.Read(ref _head));

    public int Free => Capacity - Count;

    /// <summary>The memory budget the array is charged to (null: unlimited).</summary>
    public TcpMemoryBudget? Budget { get; set; }

    /// <summary>Bytes of the array allocated now (0 before the first write).</summary>
    public int ArrayLength => Volatile.Read(ref _buffer)?.Length ?? 0;

    /// <summary>
    /// Free space that can be stored now: <see cref="Free"/>, or under memory pressure only what
    /// the array already has (its first <see cref="TcpMemoryBudget.Allowance"/> bytes if it has none).
    /// </summary>
    public int StorableFree
    {
        get
        {
            int free = Free;
            if (Budget is not { UnderPressure: true }) return free;
            int length = ArrayLength;
            if (length == 0) length = Math.Min(Capacity, TcpMemoryBudget.Allowance);
            return Math.Max(0, Math.Min(free, length - Count));
        }
    }

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
        // Under memory pressure the array may not grow: take what fits in it.
        var buffer = EnsureArray(n);
        if (buffer is null) return 0;
        n = Math.Min(n, (int)(buffer.Length - (_tail - Volatile.Read(ref _head))));
        if (n <= 0) return 0;
        WriteAt(0, data[..n]);
        Commit(n);
        return n;
    }

    /// <summary>
    /// Producer: makes sure <paramref name="bytesPastTail"/> bytes past the tail can be stored
    /// (growing the array if the memory budget allows); false if they cannot.
    /// </summary>
    public bool Reserve(int bytesPastTail)
    {
        if ((uint)bytesPastTail > (uint)Free) return false;
        var buffer = EnsureArray(bytesPastTail);
        return buffer is not null && buffer.Length >= _tail - Volatile.Read(ref _head) + bytesPastTail;
    }

    /// <summary>
    /// Writes <paramref name="data"/> at <paramref name="offset"/> bytes past the tail without
    /// publishing it (out-of-order data waiting for a gap to fill). Caller keeps it within
    /// <see cref="Free"/>; returns false, writing nothing, when the memory budget does not let the
    /// array grow to hold it (<see cref="Reserve"/> first to know).
    /// </summary>
    public bool WriteAt(int offset, ReadOnlySpan<byte> data)
    {
        if ((uint)offset > (uint)Free || data.Length > Free - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), "write past the free space of the ring");
        if (data.IsEmpty) return true;
        var buffer = EnsureArray(offset + data.Length);
        if (buffer is null || buffer.Length < _tail - Volatile.Read(ref _head) + offset + data.Length) return false;
        int mask = buffer.Length - 1;
        int start = (int)((_tail + offset) & mask);
        int first = Math.Min(data.Length, buffer.Length - start);
        data[..first].CopyTo(buffer.AsSpan(start));
        data[first..].CopyTo(buffer);
        _writtenEnd = Math.Max(_writtenEnd, _tail + offset + data.Length);
        return true;
    }

    /// <summary>
    /// Up to <paramref name="maxBytes"/> of free space past the tail as up to two spans, for
    /// writing in place before <see cref="Commit"/> (grows the array as needed).
    /// </summary>
    public void GetWritable(out Span<byte> first, out Span<byte> second, int maxBytes = int.MaxValue)
    {
        int want = Math.Min(Free, maxBytes);
        if (want <= 0) { first = second = default; return; }
        var buffer = EnsureArray(want);
        if (buffer is null) { first = second = default; return; }
        int room = Math.Min(want, buffer.Length - Count);
        int start = (int)(_tail & (buffer.Length - 1));
        int firstLength = Math.Min(room, buffer.Length - start);
        first = buffer.AsSpan(start, firstLength);
        second = buffer.AsSpan(0, room - firstLength);
        _writtenEnd = Math.Max(_writtenEnd, _tail + room);
    }

    /// <summary>Publishes <paramref name="count"/> bytes already written past the tail.</summary>
    public void Commit(int count)
    {
        if ((uint)count > (uint)Free) throw new ArgumentOutOfRangeException(nameof(count));
        Volatile.Write(ref _tail, _tail + count);
    }

    /// <summary>
    /// Producer: an array with room for <paramref name="bytesPastTail"/> bytes past the tail,
    /// doubling (within <see cref="Capacity"/>) and carrying over the live bytes when needed. When
    /// the memory budget refuses the growth, the array as it is (possibly null, possibly too small).
    /// </summary>
    private byte[]? EnsureArray(int bytesPastTail)
    {
        var buffer = _buffer;
        long head = Volatile.Read(ref _head);
        long needed = _tail - head + bytesPastTail;
        if (buffer is not null && buffer.Length >= needed) return buffer;
        long wanted = Math.Max(needed, Math.Min(Capacity, InitialArray));
        int length = (int)Math.Min(Capacity, (long)BitOperations.RoundUpToPowerOf2((ulong)wanted));
        if (Budget is { } budget && !budget.TryGrow(buffer?.Length ?? 0, length))
        {
            // Refused: a ring without an array may still have its first one (the allowance).
            int first = Math.Min(Capacity, InitialArray);
            if (buffer is not null || length <= first || !budget.TryGrow(0, first)) return buffer;
            length = first;
        }
        var bigger = GC.AllocateUninitializedArray<byte>(length);
        if (buffer is not null)
        {
            // Carry over everything from the head to the furthest byte written (out-of-order data
            // past the tail included). The consumer may consume meanwhile; copying bytes it no
            // longer needs is harmless.
            CopyLive(buffer, bigger, head, Math.Max(_tail, _writtenEnd));
        }
        Volatile.Write(ref _buffer, bigger);
        return bigger;
    }

    /// <summary>Copies the positions <paramref name="start"/> to <paramref name="end"/> from one array to another of a different length (each indexed by position mask).</summary>
    private static void CopyLive(byte[] from, byte[] to, long start, long end)
    {
        int fromMask = from.Length - 1, toMask = to.Length - 1;
        for (long p = start; p < end;)
        {
            int i = (int)(p & fromMask), j = (int)(p & toMask);
            int n = (int)Math.Min(end - p, Math.Min(from.Length - i, to.Length - j));
            from.AsSpan(i, n).CopyTo(to.AsSpan(j));
            p += n;
        }
    }

    /// <summary>Producer: forgets the out-of-order bytes written past the tail (they are not published).</summary>
    public void DiscardPastTail() => _writtenEnd = _tail;

    /// <summary>
    /// Producer: moves the live bytes (head to the furthest byte written) into the smallest array
    /// that holds them (none when there are none) and gives the difference back to the budget.
    /// Returns the bytes given back. A consumer reading the old array meanwhile reads bytes that
    /// are still there, as when the array grows.
    /// </summary>
    public int Shrink()
    {
        var buffer = _buffer;
        if (buffer is null) return 0;
        long head = Volatile.Read(ref _head);
        long end = Math.Max(_tail, _writtenEnd);
        long live = end - head;
        int length = live == 0 ? 0 : (int)Math.Min(Capacity, (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(live, Math.Min(Capacity, InitialArray))));
        if (length >= buffer.Length) return 0;
        byte[]? smaller = null;
        if (length > 0)
        {
            smaller = GC.AllocateUninitializedArray<byte>(length);
            CopyLive(buffer, smaller, head, end);
        }
        Volatile.Write(ref _buffer, smaller);
        int released = buffer.Length - length;
        Budget?.Release(released);
        return released;
    }

    /// <summary>Gives the whole array back to the budget (the connection is forgotten; the array stays for a last read).</summary>
    public void ReleaseBudget()
    {
        Budget?.Release(ArrayLength);
        Budget = null;
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
        // Count reads the tail (acquire) before the array is read below, so the array is at
        // least as new as the bytes the tail published.
        if (offset < 0 || count < 0 || (long)offset + count > Count)
            throw new ArgumentOutOfRangeException(nameof(count), "peek past the published data of the ring");
        var buffer = Volatile.Read(ref _buffer)!;
        int start = (int)((Volatile.Read(ref _head) + offset) & (buffer.Length - 1));
        int firstLength = Math.Min(count, buffer.Length - start);
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
