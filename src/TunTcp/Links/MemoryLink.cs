namespace TunTcp.Links;

/// <summary>
/// One end of an in-memory link: what one end sends, the other receives, in order, as long as
/// the bounded queue between them has room; when it is full the packet is dropped and counted
/// on the sender, like a full NIC queue. For tests and simulations: two stacks, or a stack and a
/// test driving the other end.
/// </summary>
/// <remarks>
/// Each direction is a ring of fixed-size slots allocated once (capacity x MTU bytes), so no
/// packet allocates. Each end owns an eventfd that is readable while its queue may hold packets,
/// so <see cref="Wait"/> sleeps in one ppoll(2) on that eventfd and the caller's
/// <see cref="WakeSignal"/>, exactly as a <see cref="TunDevice"/> does with its descriptor.
/// The two ends may be used from two different threads; each end, like every
/// <see cref="ILinkDevice"/>, by one thread at a time.
/// </remarks>
public sealed class MemoryLink : ILinkDevice
{
    private readonly PacketQueue _inbound;
    private readonly PacketQueue _outbound;
    private readonly LinkStatistics _statistics = new();

    private MemoryLink(int mtu, PacketQueue inbound, PacketQueue outbound)
    {
        Mtu = mtu;
        _inbound = inbound;
        _outbound = outbound;
    }

    /// <summary>
    /// Creates two connected ends. Each direction holds up to <paramref name="capacity"/> packets
    /// of up to <paramref name="mtu"/> bytes.
    /// </summary>
    public static (MemoryLink First, MemoryLink Second) CreatePair(int mtu = 1500, int capacity = 256)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(mtu, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        if ((long)mtu * capacity > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(capacity), "mtu x capacity is too large for one buffer");
        var toFirst = new PacketQueue(mtu, capacity);
        PacketQueue toSecond;
        try { toSecond = new PacketQueue(mtu, capacity); }
        catch { toFirst.Dispose(); throw; }
        return (new MemoryLink(mtu, toFirst, toSecond), new MemoryLink(mtu, toSecond, toFirst));
    }

    /// <inheritdoc/>
    public int Mtu { get; }

    /// <inheritdoc/>
    public LinkStatistics Statistics => _statistics;

    /// <summary>Packets waiting to be received at this end.</summary>
    public int PendingCount => _inbound.Count;

    /// <inheritdoc/>
    public int Receive(Span<byte> buffer)
    {
        // A packet longer than the buffer is dropped and the next one tried; bounded by the
        // queue's capacity, since each attempt removes a packet.
        for (int attempt = 0; attempt <= _inbound.Capacity; attempt++)
        {
            int length = _inbound.TryDequeue(buffer);
            if (length == 0) return 0;
            if (length > 0)
            {
                _statistics.CountReceived(length);
                return length;
            }
            _statistics.CountReceiveDrop();
        }
        return 0;
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<byte> packet)
    {
        if (packet.IsEmpty || packet.Length > Mtu || !_outbound.TryEnqueue(packet))
        {
            _statistics.CountSendDrop();
            return;
        }
        _statistics.CountSent(packet.Length);
    }

    /// <inheritdoc/>
    public void Wait(WakeSignal wakeup, TimeSpan timeout)
    {
        // Consume the "maybe packets" signal first, then look: a packet enqueued after this look
        // signals again (the queue was empty), so the poll below cannot miss it.
        _inbound.ConsumeSignal();
        if (_inbound.Count > 0) return;
        Libc.WaitReadable(_inbound.EventFd, wakeup.Fd, timeout);
    }

    /// <summary>Closes this end: its queue drops what is in flight, and later sends to it are dropped.</summary>
    public void Dispose() => _inbound.Dispose();

    /// <summary>
    /// A bounded FIFO of packets in pre-allocated slots, with an eventfd signalled on the
    /// empty-to-non-empty transition. A lock keeps producer and consumer consistent; it is held
    /// for a copy, and the eventfd write happens under it so that Dispose cannot close the
    /// descriptor between the check and the write.
    /// </summary>
    private sealed unsafe class PacketQueue : IDisposable
    {
        private readonly Lock _lock = new();
        private readonly byte[] _slots;
        private readonly int[] _lengths;
        private readonly int _slotSize;
        private int _head, _count;
        private int _eventFd;

        public PacketQueue(int slotSize, int capacity)
        {
            _slotSize = slotSize;
            _slots = GC.AllocateUninitializedArray<byte>(slotSize * capacity, pinned: false);
            _lengths = new int[capacity];
            _eventFd = Libc.EventFd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
            if (_eventFd < 0) throw new IOException($"eventfd failed: {Libc.Describe(Libc.LastErrno)}");
        }

        public int Capacity => _lengths.Length;

        public int EventFd => _eventFd;

        public int Count { get { lock (_lock) return _count; } }

        public bool TryEnqueue(ReadOnlySpan<byte> packet)
        {
            lock (_lock)
            {
                if (_eventFd < 0 || _count == _lengths.Length) return false;
                int slot = (_head + _count) % _lengths.Length;
                packet.CopyTo(_slots.AsSpan(slot * _slotSize, _slotSize));
                _lengths[slot] = packet.Length;
                if (_count++ == 0)
                {
                    ulong one = 1;
                    _ = Libc.Write(_eventFd, &one, 8);
                }
                return true;
            }
        }

        /// <summary>Returns the length copied, 0 if empty, or -1 if the head packet did not fit and was dropped.</summary>
        public int TryDequeue(Span<byte> buffer)
        {
            lock (_lock)
            {
                if (_count == 0) return 0;
                int slot = _head, length = _lengths[slot];
                _head = (_head + 1) % _lengths.Length;
                _count--;
                if (length > buffer.Length) return -1;
                _slots.AsSpan(slot * _slotSize, length).CopyTo(buffer);
                return length;
            }
        }

        public void ConsumeSignal()
        {
            ulong value;
            lock (_lock)
            {
                if (_eventFd >= 0) _ = Libc.Read(_eventFd, &value, 8);
            }
        }

        public void Dispose()
        {
            lock (_lock)
            {
                if (_eventFd >= 0) { _ = Libc.Close(_eventFd); _eventFd = -1; }
                _count = 0;
            }
        }
    }
}
