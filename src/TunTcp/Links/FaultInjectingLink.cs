using System.Buffers;

namespace TunTcp.Links;

/// <summary>
/// A decorator that makes a link bad on purpose, per <see cref="FaultProfile"/>, one profile
/// for each direction: packets the inner device delivers to the stack (<c>inbound</c>) and
/// packets the stack sends (<c>outbound</c>) are lost, corrupted, duplicated, delayed with
/// jitter, held back so later ones overtake them, and squeezed through a rate limit with a
/// tail-drop queue. Time comes from a <see cref="TimeProvider"/> (its monotonic timestamp) and
/// every decision from a generator seeded by the caller, so the same seed and the same packets
/// at the same instants give the same faults.
/// </summary>
/// <remarks>
/// <para>
/// Each direction runs one pipeline per packet, in the order a real path would: the rate
/// limiter (serialisation at <see cref="FaultProfile.RateBitsPerSecond"/> behind a queue of
/// <see cref="FaultProfile.RateQueueBytes"/>; a packet that does not fit is tail-dropped), then
/// loss (after the bottleneck: the packet used link capacity, then vanished), then the release
/// instant = departure + <see cref="FaultProfile.Delay"/> + uniform jitter + (sometimes)
/// <see cref="FaultProfile.ReorderDelay"/>, then corruption of one bit of a copy, then
/// duplication (the clean copy is released right after the original).
/// </para>
/// <para>
/// A packet whose release instant has come and that nothing held overtakes goes straight
/// through, without a copy. Others wait in a per-direction queue ordered by release instant
/// (ties in arrival order), in buffers rented from <see cref="ArrayPool{T}.Shared"/>, at most
/// <see cref="MaxHeldPackets"/> per direction; beyond that they are dropped and counted as queue
/// drops, so memory stays bounded whatever the profile.
/// </para>
/// <para>
/// <see cref="Receive"/> first pulls what the inner device has (so each packet's delay counts
/// from when it arrived, not from when the stack got round to it), then returns the earliest
/// held packet that is due. Held outbound packets go to the inner device when due, checked on
/// every <see cref="Receive"/>, <see cref="Send"/> and after <see cref="Wait"/>. <see cref="Wait"/>
/// shortens the caller's timeout to the earliest release instant of either direction, so the
/// stack thread wakes exactly when a held packet is due.
/// </para>
/// <para>
/// Like every <see cref="ILinkDevice"/>, used by one thread; <see cref="Statistics"/> and
/// <see cref="Faults"/> may be read from any. Disposing returns the held buffers to the pool and
/// disposes the inner device.
/// </para>
/// </remarks>
public sealed class FaultInjectingLink : ILinkDevice
{
    /// <summary>The most packets held (delayed, queued, duplicated) per direction; more are dropped and counted.</summary>
    public const int MaxHeldPackets = 4096;

    // Packets pulled from the inner device per Receive call. Bounded so a device that never runs
    // dry (a flooded TUN) cannot keep one call busy forever; what is left makes the inner Wait
    // return at once, so the stack comes straight back for it. Large, because a call that only
    // held or dropped packets returns 0 and costs the stack a loop and a poll.
    private const int ReceiveDrainLimit = 1024;

    private readonly ILinkDevice _inner;
    private readonly TimeProvider _time;
    private readonly long _originTimestamp;
    private readonly Direction _inbound;
    private readonly Direction _outbound;
    // Guards the held queues against Dispose from another thread returning their buffers while
    // the stack thread uses them; uncontended in normal use. Never held while blocking.
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <summary>
    /// Wraps <paramref name="inner"/>. <paramref name="inbound"/> applies to packets the inner
    /// device delivers to the caller of <see cref="Receive"/>, <paramref name="outbound"/> to
    /// packets given to <see cref="Send"/>. Both are validated here.
    /// </summary>
    /// <param name="seed">Seeds every random decision; the same seed and traffic give the same faults.</param>
    /// <param name="time">The clock for delays and the rate limit (its monotonic timestamp); defaults to the system clock.</param>
    public FaultInjectingLink(ILinkDevice inner, FaultProfile inbound, FaultProfile outbound, ulong seed, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(inbound);
        ArgumentNullException.ThrowIfNull(outbound);
        inbound.Validate();
        outbound.Validate();
        _inner = inner;
        _time = time ?? TimeProvider.System;
        _originTimestamp = _time.GetTimestamp();
        Faults = new FaultStatistics();
        // One generator per direction, both drawn from the seed: a direction's decisions then
        // depend only on its own traffic, not on how it interleaves with the other direction.
        var root = new SeededRandomSource(seed);
        _inbound = new Direction(inbound, new SeededRandomSource(root.NextUInt64()), Faults.Inbound);
        _outbound = new Direction(outbound, new SeededRandomSource(root.NextUInt64()), Faults.Outbound);
    }

    /// <summary>The profile applied to packets received from the inner device.</summary>
    public FaultProfile Inbound => _inbound.Profile;

    /// <summary>The profile applied to packets sent to the inner device.</summary>
    public FaultProfile Outbound => _outbound.Profile;

    /// <inheritdoc/>
    public int Mtu => _inner.Mtu;

    /// <summary>The inner device's counters: what really crossed it (lost outbound packets never reach it).</summary>
    public LinkStatistics Statistics => _inner.Statistics;

    /// <summary>What the injector did, per direction.</summary>
    public FaultStatistics Faults { get; }

    /// <inheritdoc/>
    public int Receive(Span<byte> buffer)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long now = Now();
            FlushOutbound(now);
            // The caller's buffer doubles as the read buffer: a packet that goes straight
            // through is then never copied, and one that is held is copied once.
            for (int i = 0; i < ReceiveDrainLimit; i++)
            {
                int length = _inner.Receive(buffer);
                if (length == 0) break;
                var packet = buffer[..length];
                if (!_inbound.Decide(length, now, out var decision)) continue;
                if (decision.Release <= now && !_inbound.HoldsAnyDueBy(decision.Release))
                {
                    // Copy the duplicate before corrupting: the copy is a clean one.
                    if (decision.Duplicate) _inbound.HoldDuplicate(packet, decision.Release, now);
                    if (decision.CorruptBit >= 0) _inbound.Corrupt(packet, decision.CorruptBit);
                    return length;
                }
                _inbound.Hold(packet, decision, now);
                if (decision.Duplicate) _inbound.HoldDuplicate(packet, decision.Release, now);
            }
            return _inbound.TakeDue(now, buffer, _inner.Statistics);
        }
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<byte> packet)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long now = Now();
            FlushOutbound(now);
            if (packet.IsEmpty || packet.Length > _inner.Mtu)
            {
                // The inner device drops and counts it; holding it would only waste a buffer.
                _inner.Send(packet);
                return;
            }
            if (!_outbound.Decide(packet.Length, now, out var decision)) return;
            if (decision.Release <= now && !_outbound.HoldsAnyDueBy(decision.Release))
            {
                if (decision.CorruptBit >= 0) SendCorrupted(packet, decision.CorruptBit);
                else _inner.Send(packet);
                if (decision.Duplicate)
                {
                    _inner.Send(packet);
                    _outbound.Counters.CountDuplicated();
                }
                return;
            }
            _outbound.Hold(packet, decision, now);
            if (decision.Duplicate) _outbound.HoldDuplicate(packet, decision.Release, now);
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Waits on the inner device for at most the time until the earliest held packet (either
    /// direction) is due, or returns at once when a held inbound packet already is. Due outbound
    /// packets are sent before and after waiting.
    /// </remarks>
    public void Wait(WakeSignal wakeup, TimeSpan timeout)
    {
        TimeSpan limit = timeout;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long now = Now();
            FlushOutbound(now);
            long next = Math.Min(_inbound.NextRelease, _outbound.NextRelease);
            if (next != long.MaxValue)
            {
                // After the flush only inbound packets can be due: Receive has one now.
                if (next <= now) return;
                var untilNext = TimeSpan.FromTicks(next - now);
                if (timeout == Timeout.InfiniteTimeSpan || untilNext < timeout) limit = untilNext;
            }
        }
        _inner.Wait(wakeup, limit);
        lock (_lock)
        {
            if (!_disposed) FlushOutbound(Now());
        }
    }

    /// <summary>Returns held buffers to the pool (their packets are lost) and disposes the inner device.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _inbound.Clear();
            _outbound.Clear();
        }
        _inner.Dispose();
    }

    /// <summary>Ticks (100 ns) of the monotonic clock since construction: wall-clock steps must not release or hold packets.</summary>
    private long Now() => _time.GetElapsedTime(_originTimestamp).Ticks;

    private void FlushOutbound(long now)
    {
        while (_outbound.TryTakeDue(now, out var held))
        {
            try { _inner.Send(held.Packet); }
            finally { held.Return(); }
        }
    }

    private void SendCorrupted(ReadOnlySpan<byte> packet, int bit)
    {
        // Never flip a bit in the caller's buffer: the stack may still own it (a retransmission queue).
        var copy = ArrayPool<byte>.Shared.Rent(packet.Length);
        try
        {
            packet.CopyTo(copy);
            _outbound.Corrupt(copy.AsSpan(0, packet.Length), bit);
            _inner.Send(copy.AsSpan(0, packet.Length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    /// <summary>What happens to one packet: when it may leave (100 ns ticks), which bit flips (-1: none), whether it is doubled.</summary>
    private readonly record struct Decision(long Release, int CorruptBit, bool Duplicate, bool Reordered);

    /// <summary>A packet waiting in a pooled buffer.</summary>
    private readonly record struct HeldPacket(byte[] Buffer, int Length)
    {
        public ReadOnlySpan<byte> Packet => Buffer.AsSpan(0, Length);
        public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
    }

    /// <summary>The state of one direction: its profile, generator, rate limiter and held packets.</summary>
    private sealed class Direction(FaultProfile profile, SeededRandomSource random, FaultCounters counters)
    {
        // Ordered by release instant, then by arrival, so ties (and duplicates) keep their order:
        // PriorityQueue alone is not stable.
        private readonly PriorityQueue<HeldPacket, (long Release, long Order)> _held = new();
        private long _order;

        // The rate limiter's link is free at _freeTicks + _freeFraction / rate ticks. Keeping the
        // fraction exactly makes the long-run rate exact even when one packet's serialisation time
        // is not a whole number of ticks (64 bytes at 10 Gbit/s is half a tick).
        private long _freeTicks = long.MinValue;
        private long _freeFraction;

        public FaultProfile Profile => profile;

        public FaultCounters Counters => counters;

        /// <summary>The release instant of the earliest held packet, or <see cref="long.MaxValue"/>.</summary>
        public long NextRelease => _held.TryPeek(out _, out var key) ? key.Release : long.MaxValue;

        /// <summary>True if a held packet would leave no later than <paramref name="release"/> (and so must go first).</summary>
        public bool HoldsAnyDueBy(long release) => _held.TryPeek(out _, out var key) && key.Release <= release;

        /// <summary>Runs the pipeline for a packet of <paramref name="length"/> bytes arriving at <paramref name="now"/>; false if it is dropped (counted).</summary>
        public bool Decide(int length, long now, out Decision decision)
        {
            decision = default;
            long departure = now;
            if (profile.RateBitsPerSecond > 0 && !TrySerialise(length, now, out departure))
            {
                counters.CountQueueDrop();
                return false;
            }
            if (Chance(profile.LossPercent))
            {
                counters.CountLost();
                return false;
            }
            long release = SaturatingAdd(departure, profile.Delay.Ticks);
            if (profile.Jitter > TimeSpan.Zero) release = SaturatingAdd(release, (long)(random.NextDouble() * profile.Jitter.Ticks));
            bool reordered = Chance(profile.ReorderPercent);
            if (reordered) release = SaturatingAdd(release, profile.ReorderDelay.Ticks);
            int corruptBit = Chance(profile.CorruptPercent) ? (int)(random.NextUInt64() % (ulong)(length * 8L)) : -1;
            bool duplicate = Chance(profile.DuplicatePercent);
            decision = new Decision(release, corruptBit, duplicate, reordered);
            return true;
        }

        /// <summary>Holds a copy of <paramref name="packet"/> (corrupted if decided) until its release instant.</summary>
        public void Hold(ReadOnlySpan<byte> packet, in Decision decision, long now)
        {
            if (!TryHold(packet, decision.Release, out var copy)) return;
            if (decision.CorruptBit >= 0) Corrupt(copy, decision.CorruptBit);
            if (decision.Release > now) counters.CountDelayed();
            // A packet held back with no extra time is not overtaken by anything: not reordered.
            if (decision.Reordered && profile.ReorderDelay > TimeSpan.Zero) counters.CountReordered();
        }

        /// <summary>Holds a clean copy released right after the original.</summary>
        public void HoldDuplicate(ReadOnlySpan<byte> packet, long release, long now)
        {
            if (!TryHold(packet, release, out _)) return;
            counters.CountDuplicated();
            if (release > now) counters.CountDelayed();
        }

        public void Corrupt(Span<byte> packet, int bit)
        {
            packet[bit >> 3] ^= (byte)(1 << (bit & 7));
            counters.CountCorrupted();
        }

        /// <summary>Copies the earliest due packet into <paramref name="buffer"/>; 0 if none is due.</summary>
        public int TakeDue(long now, Span<byte> buffer, LinkStatistics statistics)
        {
            while (TryTakeDue(now, out var held))
            {
                try
                {
                    // As the inner devices do: a packet longer than the buffer is dropped, never truncated.
                    if (held.Length > buffer.Length)
                    {
                        statistics.CountReceiveDrop();
                        continue;
                    }
                    held.Packet.CopyTo(buffer);
                    return held.Length;
                }
                finally
                {
                    held.Return();
                }
            }
            return 0;
        }

        /// <summary>Removes the earliest held packet if it is due; the caller returns its buffer.</summary>
        public bool TryTakeDue(long now, out HeldPacket held)
        {
            if (_held.TryPeek(out held, out var key) && key.Release <= now)
            {
                _held.Dequeue();
                counters.SetHeld(_held.Count);
                return true;
            }
            held = default;
            return false;
        }

        /// <summary>Drops every held packet, returning its buffer.</summary>
        public void Clear()
        {
            while (_held.TryDequeue(out var held, out _)) held.Return();
            counters.SetHeld(0);
        }

        private bool TryHold(ReadOnlySpan<byte> packet, long release, out Span<byte> copy)
        {
            if (_held.Count >= MaxHeldPackets)
            {
                counters.CountQueueDrop();
                copy = default;
                return false;
            }
            var buffer = ArrayPool<byte>.Shared.Rent(packet.Length);
            packet.CopyTo(buffer);
            _held.Enqueue(new HeldPacket(buffer, packet.Length), (release, _order++));
            counters.SetHeld(_held.Count);
            copy = buffer.AsSpan(0, packet.Length);
            return true;
        }

        /// <summary>
        /// Puts a packet through the rate limiter: its departure is max(now, link free) + its
        /// serialisation time. False (tail drop) if the bytes ahead of it plus its own would
        /// exceed the queue.
        /// </summary>
        private bool TrySerialise(int length, long now, out long departure)
        {
            departure = now;
            Int128 rate = profile.RateBitsPerSecond;
            if (_freeTicks < now || (_freeTicks == now && _freeFraction == 0))
            {
                // The link went idle: nothing queued, and its clock restarts now.
                _freeTicks = now;
                _freeFraction = 0;
            }
            // The backlog ahead of this packet is what the link still has to send: the time until
            // it is free, at the rate. Rounded up: a byte partly sent still occupies the queue.
            Int128 backlogBits = ((Int128)(_freeTicks - now) * rate + _freeFraction + TimeSpan.TicksPerSecond - 1) / TimeSpan.TicksPerSecond;
            if ((backlogBits + 7) / 8 + length > profile.RateQueueBytes) return false;
            Int128 scaled = (Int128)length * 8 * TimeSpan.TicksPerSecond + _freeFraction;
            _freeTicks += (long)(scaled / rate);
            _freeFraction = (long)(scaled % rate);
            // A packet leaves once its last bit is out: round a partial tick up.
            departure = _freeFraction == 0 ? _freeTicks : _freeTicks + 1;
            return true;
        }

        private bool Chance(double percent) => percent > 0 && random.NextDouble() < percent / 100;

        private static long SaturatingAdd(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
    }
}

/// <summary>What a <see cref="FaultInjectingLink"/> did, per direction.</summary>
public sealed class FaultStatistics
{
    /// <summary>Packets from the inner device to the stack.</summary>
    public FaultCounters Inbound { get; } = new();

    /// <summary>Packets from the stack to the inner device.</summary>
    public FaultCounters Outbound { get; } = new();

    public override string ToString() => $"in: {Inbound}; out: {Outbound}";
}

/// <summary>Fault counters of one direction of a <see cref="FaultInjectingLink"/>. Updated by the stack thread, read by anyone.</summary>
public sealed class FaultCounters
{
    private long _lost, _queueDrops, _corrupted, _duplicated, _reordered, _delayed;
    private int _held;

    /// <summary>Packets dropped by random loss.</summary>
    public long Lost => Volatile.Read(ref _lost);

    /// <summary>Packets dropped because the rate limiter's queue or the held-packet limit was full.</summary>
    public long QueueDrops => Volatile.Read(ref _queueDrops);

    /// <summary>Packets delivered with one bit flipped.</summary>
    public long Corrupted => Volatile.Read(ref _corrupted);

    /// <summary>Extra copies delivered.</summary>
    public long Duplicated => Volatile.Read(ref _duplicated);

    /// <summary>Packets held back by the reorder delay, so later ones could overtake them.</summary>
    public long Reordered => Volatile.Read(ref _reordered);

    /// <summary>Packets (and copies) held past the instant they arrived, by delay, jitter, reordering or the rate limit.</summary>
    public long Delayed => Volatile.Read(ref _delayed);

    /// <summary>Packets held right now.</summary>
    public int Held => Volatile.Read(ref _held);

    internal void CountLost() => _lost++;
    internal void CountQueueDrop() => _queueDrops++;
    internal void CountCorrupted() => _corrupted++;
    internal void CountDuplicated() => _duplicated++;
    internal void CountReordered() => _reordered++;
    internal void CountDelayed() => _delayed++;
    internal void SetHeld(int count) => Volatile.Write(ref _held, count);

    public override string ToString() =>
        $"lost {Lost}, queue drops {QueueDrops}, corrupted {Corrupted}, duplicated {Duplicated}, reordered {Reordered}, delayed {Delayed}, held {Held}";
}
