using TunTcp.Wire;

namespace TunTcp.Tcp;

[Flags]
internal enum SentFlags : byte
{
    None = 0,
    /// <summary>The record is the SYN (it occupies one sequence number, no data).</summary>
    Syn = 1,
    /// <summary>The record ends with the FIN (its last sequence number is the FIN).</summary>
    Fin = 2,
    /// <summary>The peer SACKed the whole record.</summary>
    Sacked = 4,
    /// <summary>Deemed lost and not yet retransmitted (RFC 6675 IsLost, RFC 8985 RACK).</summary>
    Lost = 8,
    /// <summary>Retransmitted at least once: no RTT sample from it without timestamps (Karn).</summary>
    Retransmitted = 16,
    /// <summary>Counted in the pipe (RFC 6675 "pipe": bytes believed to be in the network).</summary>
    InPipe = 32,
    /// <summary>A zero-window probe byte sent past the peer's window (RFC 9293 3.8.6.1).</summary>
    Probe = 64,
}

/// <summary>
/// What the sender remembers of each segment in flight: its sequence range, when it was
/// (re)sent and its SACK/loss state. The bytes themselves stay in the send ring; records only
/// name ranges of it, like Linux's retransmission queue without the copies.
/// </summary>
internal struct SentSegment
{
    public SeqNumber Start;
    public SeqNumber End;
    public Instant SentAt;
    public SentFlags Flags;
    public ushort Transmissions;

    public readonly int Length => End - Start;
    /// <summary>Data bytes of the record (its length without SYN or FIN).</summary>
    public readonly int DataLength => Length - ((Flags & SentFlags.Syn) != 0 ? 1 : 0) - ((Flags & SentFlags.Fin) != 0 ? 1 : 0);
    public readonly bool Has(SentFlags f) => (Flags & f) != 0;
}

/// <summary>A growable ring of <see cref="SentSegment"/>s, oldest first; grows by doubling, never per packet once warm.</summary>
internal sealed class SentSegmentQueue
{
    private SentSegment[] _items = new SentSegment[16];
    private int _head;

    public int Count { get; private set; }

    /// <summary>The record at <paramref name="index"/> (0 = oldest). The ref is valid until the next Add or Insert.</summary>
    public ref SentSegment this[int index] => ref _items[(_head + index) & (_items.Length - 1)];

    public ref SentSegment First => ref this[0];
    public ref SentSegment Last => ref this[Count - 1];

    public void Add(in SentSegment segment)
    {
        if (Count == _items.Length) Grow();
        _items[(_head + Count) & (_items.Length - 1)] = segment;
        Count++;
    }

    /// <summary>Inserts at <paramref name="index"/>, shifting later records back. May reallocate: refs taken before are stale.</summary>
    public void Insert(int index, in SentSegment segment)
    {
        if ((uint)index > (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
        if (Count == _items.Length) Grow();
        for (int i = Count; i > index; i--) this[i] = this[i - 1];
        this[index] = segment;
        Count++;
    }

    /// <summary>Index of the first record ending after <paramref name="seq"/> (records are in sequence order), Count if none.</summary>
    public int FirstEndingAfter(SeqNumber seq)
    {
        int lo = 0, hi = Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (this[mid].End <= seq) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    public void RemoveFirst()
    {
        _head = (_head + 1) & (_items.Length - 1);
        Count--;
    }

    public void Clear()
    {
        _head = 0;
        Count = 0;
    }

    private void Grow()
    {
        var bigger = new SentSegment[_items.Length * 2];
        for (int i = 0; i < Count; i++) bigger[i] = this[i];
        _items = bigger;
        _head = 0;
    }
}
