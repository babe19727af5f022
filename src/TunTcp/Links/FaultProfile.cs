namespace TunTcp.Links;

/// <summary>
/// The faults a <see cref="FaultInjectingLink"/> applies to one direction of a link, so an
/// application can be tried on a bad network: random loss, delay with jitter, reordering,
/// duplication, corruption and a bandwidth limit. Percentages are 0..100.
/// </summary>
public sealed record FaultProfile
{
    public static readonly FaultProfile None = new();

    /// <summary>Independent drop probability per packet, in percent.</summary>
    public double LossPercent { get; init; }

    /// <summary>Fixed extra delay of every packet.</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>Extra uniform random delay in [0, Jitter) per packet; can reorder packets.</summary>
    public TimeSpan Jitter { get; init; }

    /// <summary>Probability, in percent, that a packet is held back by <see cref="ReorderDelay"/> so later packets overtake it.</summary>
    public double ReorderPercent { get; init; }

    /// <summary>How long a reordered packet is held back (default 5 ms).</summary>
    public TimeSpan ReorderDelay { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Probability, in percent, that a packet is delivered twice.</summary>
    public double DuplicatePercent { get; init; }

    /// <summary>Probability, in percent, that one random bit of a packet is flipped (checksums must catch it).</summary>
    public double CorruptPercent { get; init; }

    /// <summary>Bandwidth limit in bits per second (serialisation delay and a bounded queue); 0 = none.</summary>
    public long RateBitsPerSecond { get; init; }

    /// <summary>Queue limit behind the rate limiter, in bytes; further packets are dropped (tail drop).</summary>
    public int RateQueueBytes { get; init; } = 256 * 1024;

    /// <summary>True when the profile changes nothing.</summary>
    public bool IsEmpty => LossPercent == 0 && Delay == TimeSpan.Zero && Jitter == TimeSpan.Zero && ReorderPercent == 0
        && DuplicatePercent == 0 && CorruptPercent == 0 && RateBitsPerSecond == 0;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the bad field.</summary>
    public void Validate()
    {
        static void Percent(double v, string name)
        {
            if (double.IsNaN(v) || v < 0 || v > 100) throw new ArgumentOutOfRangeException(name, v, $"{name} must be a percentage from 0 to 100");
        }
        Percent(LossPercent, nameof(LossPercent));
        Percent(ReorderPercent, nameof(ReorderPercent));
        Percent(DuplicatePercent, nameof(DuplicatePercent));
        Percent(CorruptPercent, nameof(CorruptPercent));
        if (Delay < TimeSpan.Zero || Jitter < TimeSpan.Zero || ReorderDelay < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(Delay), "delays must not be negative");
        if (RateBitsPerSecond < 0) throw new ArgumentOutOfRangeException(nameof(RateBitsPerSecond), "the rate must not be negative");
        if (RateQueueBytes < 1) throw new ArgumentOutOfRangeException(nameof(RateQueueBytes), "the rate queue must hold at least one byte");
    }
}
