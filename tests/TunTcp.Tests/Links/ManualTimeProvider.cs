namespace TunTcp.Tests.Links;

/// <summary>
/// A clock that says what the test sets, in UTC, so time stamps in output are exact. The
/// monotonic timestamp follows the same setting (in ticks), so code that measures elapsed time
/// with <see cref="TimeProvider.GetTimestamp"/>, as the stack does, is on the test's clock too.
/// </summary>
internal sealed class ManualTimeProvider(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;
    public override DateTimeOffset GetUtcNow() => Now;
    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    public override long GetTimestamp() => Now.UtcTicks;
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <summary>Moves the clock forward by <paramref name="delta"/>.</summary>
    public void Advance(TimeSpan delta) => Now += delta;
}
