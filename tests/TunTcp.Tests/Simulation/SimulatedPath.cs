using TunTcp.Wire;

namespace TunTcp.Tests.Simulation;

/// <summary>
/// One direction of a simulated link. Packets are serialised at <see cref="BitsPerSecond"/>
/// through a tail-drop bottleneck queue, then delayed by <see cref="OneWayDelay"/> (+ jitter),
/// with seeded faults applied: random or bursty (Gilbert-Elliott) loss, reordering,
/// duplication and corruption.
/// </summary>
public sealed record PathConfig
{
    public TimeSpan OneWayDelay { get; init; } = TimeSpan.FromMilliseconds(1);
    /// <summary>0 = unlimited (no serialisation delay, no queue).</summary>
    public long BitsPerSecond { get; init; }
    /// <summary>Bottleneck queue limit in bytes (tail drop); 0 = unlimited.</summary>
    public int QueueLimitBytes { get; init; }
    /// <summary>
    /// ECN marking (RFC 3168 5, as a RED/CoDel queue configured to mark): an ECN-capable packet
    /// that finds more than this many bytes queued is marked CE instead of waiting for the tail
    /// drop; 0 = no marking. Packets that are not ECN-capable are only ever tail-dropped.
    /// </summary>
    public int MarkThresholdBytes { get; init; }
    /// <summary>Bottleneck queue limit in packets; 0 = unlimited.</summary>
    public int QueueLimitPackets { get; init; }
    /// <summary>Independent loss probability per packet (0..1).</summary>
    public double Loss { get; init; }
    /// <summary>Gilbert-Elliott: P(good -> bad) per packet; 0 disables bursts.</summary>
    public double BurstEnter { get; init; }
    /// <summary>Gilbert-Elliott: P(bad -> good) per packet.</summary>
    public double BurstExit { get; init; } = 0.5;
    /// <summary>Loss probability while in the bad state.</summary>
    public double BurstLoss { get; init; } = 0.5;
    /// <summary>Extra uniform delay in [0, Jitter) per packet (can reorder).</summary>
    public TimeSpan Jitter { get; init; }
    /// <summary>Probability that a packet is held back by <see cref="ReorderDelay"/> (overtaken by later ones).</summary>
    public double Reorder { get; init; }
    public TimeSpan ReorderDelay { get; init; } = TimeSpan.FromMilliseconds(5);
    public double Duplicate { get; init; }
    /// <summary>Probability that one random bit of the packet is flipped.</summary>
    public double Corrupt { get; init; }
    /// <summary>
    /// Start of a one-off delay spike (virtual time since zero): packets that would arrive during
    /// [<see cref="SpikeFrom"/>, <see cref="SpikeFrom"/> + <see cref="SpikeFor"/>) are held and
    /// arrive, in order and none lost, when it ends - a link that stalls (link-layer
    /// retransmissions, a handover) and then delivers its backlog.
    /// </summary>
    public TimeSpan SpikeFrom { get; init; }
    /// <summary>Length of the delay spike; zero (the default) for none.</summary>
    public TimeSpan SpikeFor { get; init; }

    /// <summary>
    /// From <see cref="NarrowFrom"/> on (virtual time since zero), a hop of the path carries at
    /// most this many bytes: larger packets are dropped there and, with <see cref="NarrowSendsIcmp"/>,
    /// answered with ICMP fragmentation needed (RFC 1191) from that router. 0: no narrowing.
    /// </summary>
    public int NarrowTo { get; init; }
    public TimeSpan NarrowFrom { get; init; }
    public bool NarrowSendsIcmp { get; init; } = true;

    public static PathConfig Ideal(TimeSpan delay) => new() { OneWayDelay = delay };
}

/// <summary>Counters of one path.</summary>
public sealed class PathStats
{
    public long Offered, Delivered, Lost, QueueDrops, Reordered, Duplicated, Corrupted, Marked, TooBig;
    /// <summary>Packets that arrived after a packet offered later than them (overtaken: reordering as the receiver sees it).</summary>
    public long ArrivedLate;
    /// <summary>Packets held by the delay spike.</summary>
    public long Spiked;
    public long BytesDelivered;
    public override string ToString() =>
        $"offered {Offered} delivered {Delivered} lost {Lost} queue-drops {QueueDrops} reordered {Reordered} late {ArrivedLate} dup {Duplicated} corrupt {Corrupted}";
}

internal sealed class SimulatedPath
{
    private readonly PathConfig _config;
    private readonly SeededRandomSource _random;
    private Instant _linkFreeAt = Instant.Zero;
    private bool _bad;
    // Packets waiting for (or in) serialisation: their departure instants and sizes, to know the queue occupancy.
    private readonly Queue<(Instant Departure, int Bytes)> _inQueue = new();
    private int _queuedBytes;

    public PathConfig Config => _config;

    public SimulatedPath(PathConfig config, ulong seed)
    {
        _config = config;
        _random = new SeededRandomSource(seed);
    }

    public PathStats Stats { get; } = new();

    /// <summary>Offer index of the newest packet delivered so far (for counting late arrivals).</summary>
    public long HighestDelivered { get; set; } = -1;

    /// <summary>
    /// A packet enters the path at <paramref name="now"/>; yields the copies that will arrive and when.
    /// </summary>
    public void Offer(byte[] packet, Instant now, List<(Instant At, byte[] Packet)> arrivals)
    {
        Stats.Offered++;
        // Drain the bottleneck queue up to now.
        while (_inQueue.Count > 0 && _inQueue.Peek().Departure <= now) _queuedBytes -= _inQueue.Dequeue().Bytes;

        Instant departure = now;
        if (_config.BitsPerSecond > 0)
        {
            if ((_config.QueueLimitBytes > 0 && _queuedBytes + packet.Length > _config.QueueLimitBytes)
                || (_config.QueueLimitPackets > 0 && _inQueue.Count >= _config.QueueLimitPackets))
            {
                Stats.QueueDrops++;
                return;
            }
            if (_config.MarkThresholdBytes > 0 && _queuedBytes > _config.MarkThresholdBytes && TryMarkCe(ref packet)) Stats.Marked++;
            var start = Instant.Max(now, _linkFreeAt);
            var serialisation = TimeSpan.FromTicks(packet.Length * 8L * TimeSpan.TicksPerSecond / _config.BitsPerSecond);
            departure = start + serialisation;
            _linkFreeAt = departure;
            _inQueue.Enqueue((departure, packet.Length));
            _queuedBytes += packet.Length;
        }

        // Loss after the bottleneck (the packet used link capacity, then vanished).
        if (_config.BurstEnter > 0)
        {
            if (_bad) { if (_random.NextDouble() < _config.BurstExit) _bad = false; }
            else if (_random.NextDouble() < _config.BurstEnter) _bad = true;
            if (_bad && _random.NextDouble() < _config.BurstLoss) { Stats.Lost++; return; }
        }
        if (_config.Loss > 0 && _random.NextDouble() < _config.Loss) { Stats.Lost++; return; }

        var arrival = departure + _config.OneWayDelay;
        if (_config.Jitter > TimeSpan.Zero) arrival += TimeSpan.FromTicks((long)(_random.NextDouble() * _config.Jitter.Ticks));
        if (_config.Reorder > 0 && _random.NextDouble() < _config.Reorder) { arrival += _config.ReorderDelay; Stats.Reordered++; }
        if (_config.SpikeFor > TimeSpan.Zero)
        {
            var spikeStart = Instant.Zero + _config.SpikeFrom;
            var spikeEnd = spikeStart + _config.SpikeFor;
            if (arrival >= spikeStart && arrival < spikeEnd) { arrival = spikeEnd; Stats.Spiked++; }
        }

        var copy = packet;
        if (_config.Corrupt > 0 && _random.NextDouble() < _config.Corrupt)
        {
            copy = (byte[])packet.Clone();
            int bit = (int)(_random.NextUInt32() % (uint)(copy.Length * 8));
            copy[bit / 8] ^= (byte)(1 << (bit % 8));
            Stats.Corrupted++;
        }
        arrivals.Add((arrival, copy));
        Stats.Delivered++;
        Stats.BytesDelivered += copy.Length;
        if (_config.Duplicate > 0 && _random.NextDouble() < _config.Duplicate)
        {
            arrivals.Add((arrival + TimeSpan.FromMicroseconds(1 + _random.NextUInt32() % 1000), (byte[])packet.Clone()));
            Stats.Duplicated++;
        }
    }

    /// <summary>Sets CE on an ECT(0)/ECT(1) packet of either family (a copy; the IPv4 header checksum updated).</summary>
    private static bool TryMarkCe(ref byte[] packet)
    {
        if (packet.Length < 2) return false;
        bool v4 = packet[0] >> 4 == 4;
        int ecn = v4 ? packet[1] & 3 : (packet[1] >> 4) & 3;
        if (ecn is 0 or 3) return false;
        var marked = (byte[])packet.Clone();
        if (v4)
        {
            marked[1] |= 3;
            int ihl = (marked[0] & 0xF) * 4;
            marked[10] = 0; marked[11] = 0;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(marked.AsSpan(10), Checksum.Compute(marked.AsSpan(0, ihl)));
        }
        else
        {
            marked[1] |= 0x30;
        }
        packet = marked;
        return true;
    }
}
