namespace TunTcp.Wire;

/// <summary>
/// A 32-bit TCP sequence number with modulo-2^32 arithmetic and comparison (RFC 9293 3.4):
/// <c>a &lt; b</c> means b is ahead of a by less than 2^31. Every sequence-number comparison in
/// TunTcp goes through this type; there is no raw <c>uint</c> arithmetic on sequence numbers.
/// </summary>
internal readonly struct SeqNumber : IEquatable<SeqNumber>
{
    public SeqNumber(uint value) => Value = value;

    /// <summary>The raw 32-bit value as carried on the wire.</summary>
    public uint Value { get; }

    public static SeqNumber operator +(SeqNumber a, int n) => new(unchecked(a.Value + (uint)n));
    public static SeqNumber operator +(SeqNumber a, uint n) => new(unchecked(a.Value + n));
    public static SeqNumber operator -(SeqNumber a, int n) => new(unchecked(a.Value - (uint)n));

    /// <summary>Signed distance <c>a - b</c>, valid when the two are within 2^31 of each other.</summary>
    public static int operator -(SeqNumber a, SeqNumber b) => unchecked((int)(a.Value - b.Value));

    public static bool operator <(SeqNumber a, SeqNumber b) => (a - b) < 0;
    public static bool operator >(SeqNumber a, SeqNumber b) => (a - b) > 0;
    public static bool operator <=(SeqNumber a, SeqNumber b) => (a - b) <= 0;
    public static bool operator >=(SeqNumber a, SeqNumber b) => (a - b) >= 0;
    public static bool operator ==(SeqNumber a, SeqNumber b) => a.Value == b.Value;
    public static bool operator !=(SeqNumber a, SeqNumber b) => a.Value != b.Value;

    public static SeqNumber Max(SeqNumber a, SeqNumber b) => a >= b ? a : b;
    public static SeqNumber Min(SeqNumber a, SeqNumber b) => a <= b ? a : b;

    /// <summary><c>start &lt;= this &lt; end</c> in sequence space.</summary>
    public bool InRange(SeqNumber start, SeqNumber end) => this >= start && this < end;

    public bool Equals(SeqNumber other) => Value == other.Value;
    public override bool Equals(object? obj) => obj is SeqNumber s && s.Value == Value;
    public override int GetHashCode() => (int)Value;
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
