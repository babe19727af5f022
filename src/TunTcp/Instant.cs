namespace TunTcp;

/// <summary>
/// A point on a monotonic clock, in microseconds from an arbitrary origin. Nothing in the
/// protocol core reads a clock: the caller passes the current instant in, tests choose it.
/// </summary>
internal readonly record struct Instant(long Microseconds) : IComparable<Instant>
{
    /// <summary>The origin.</summary>
    public static readonly Instant Zero = new(0);

    /// <summary>A deadline that never comes; adding to it stays <see cref="Never"/>.</summary>
    public static readonly Instant Never = new(long.MaxValue);

    public static Instant FromMilliseconds(long milliseconds) => new(milliseconds * 1000);

    public long TotalMilliseconds => Microseconds / 1000;

    public bool IsNever => Microseconds == long.MaxValue;

    public static Instant operator +(Instant a, TimeSpan d)
    {
        if (a.IsNever) return Never;
        long us = d.Ticks / TimeSpan.TicksPerMicrosecond;
        long sum = a.Microseconds + us;
        // Saturate instead of wrapping: a huge timeout means "never", not "in the past".
        if (us > 0 && sum < a.Microseconds) return Never;
        return new Instant(sum);
    }

    public static Instant operator -(Instant a, TimeSpan d) => a + (-d);

    public static TimeSpan operator -(Instant a, Instant b) =>
        TimeSpan.FromTicks((a.Microseconds - b.Microseconds) * TimeSpan.TicksPerMicrosecond);

    public static bool operator <(Instant a, Instant b) => a.Microseconds < b.Microseconds;
    public static bool operator >(Instant a, Instant b) => a.Microseconds > b.Microseconds;
    public static bool operator <=(Instant a, Instant b) => a.Microseconds <= b.Microseconds;
    public static bool operator >=(Instant a, Instant b) => a.Microseconds >= b.Microseconds;

    public static Instant Min(Instant a, Instant b) => a.Microseconds <= b.Microseconds ? a : b;
    public static Instant Max(Instant a, Instant b) => a.Microseconds >= b.Microseconds ? a : b;

    public int CompareTo(Instant other) => Microseconds.CompareTo(other.Microseconds);

    public override string ToString() => IsNever ? "never" : $"{Microseconds / 1000}.{Microseconds % 1000:D3}ms";
}
