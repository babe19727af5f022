using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>
/// Bookkeeping for out-of-order data held in the receive ring past RCV.NXT (RFC 9293 3.10.7.4
/// "segments with higher beginning sequence numbers may be held for later processing"). It
/// records which byte ranges, as offsets from RCV.NXT, are present; the bytes themselves sit in
/// the ring's free space, so the memory is bounded by the receive window. The number of
/// separate ranges is bounded too (<see cref="MaxRanges"/>, from the buffer size): a segment that
/// would need one more is dropped (the sender retransmits it), so a hostile peer cannot grow it.
/// </summary>
internal sealed class ReceiveAssembler
{
    /// <summary>The fewest ranges any assembler holds.</summary>
    public const int MinRanges = 32;

    /// <summary>
    /// Range bound for a receive buffer of <paramref name="bufferSize"/> bytes: one range per KiB,
    /// so that a window of full-sized segments with every other one lost (a tail-drop queue
    /// overflowing in slow start) is held whole, as Linux's memory-bounded out-of-order queue
    /// holds it. The bookkeeping costs 12 bytes per range, about 1 % of the buffer at most. At
    /// most 16384 (a 16 MiB buffer): inserting a range moves the ones after it, so the bound also
    /// caps what a hostile peer's one-byte islands can cost per segment.
    /// </summary>
    public static int RangesFor(int bufferSize) => Math.Clamp(bufferSize / 1024, MinRanges, 1 << 14);

    // Sorted, non-overlapping, non-adjacent [Start, End) offsets from RCV.NXT. The arrays grow
    // by doubling up to MaxRanges when needed (never in loss-free steady state), never shrink.
    private (int Start, int End)[] _ranges;
    private int _count;

    // RFC 2018 4: the first SACK block names the most recently received range; keep recency order.
    private int[] _recentStarts;
    private int _recentCount;

    public ReceiveAssembler(int maxRanges = MinRanges)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRanges, 1);
        MaxRanges = maxRanges;
        int initial = Math.Min(maxRanges, MinRanges);
        _ranges = new (int, int)[initial];
        _recentStarts = new int[initial];
    }

    /// <summary>Most separate ranges held (Linux's out-of-order queue is bounded in memory, not count).</summary>
    public int MaxRanges { get; }

    public int RangeCount => _count;

    public bool IsEmpty => _count == 0;

    /// <summary>Bytes held past the gap.</summary>
    public int BytesHeld
    {
        get
        {
            int n = 0;
            for (int i = 0; i < _count; i++) n += _ranges[i].End - _ranges[i].Start;
            return n;
        }
    }

    /// <summary>The end offset of the furthest range held, 0 when empty.</summary>
    public int HighestEnd => _count == 0 ? 0 : _ranges[_count - 1].End;

    public (int Start, int End) this[int index] => _ranges[index];

    /// <summary>
    /// Records [start, end) (offsets from RCV.NXT, start &gt; 0). Returns false, changing
    /// nothing, when it would need more than <see cref="MaxRanges"/> ranges.
    /// </summary>
    /// <param name="duplicateBytes">Bytes of the range that were already held (for D-SACK).</param>
    public bool Add(int start, int end, out int duplicateBytes)
    {
        duplicateBytes = 0;
        if (end <= start) return true;
        // Find the first range that ends at or after start (could merge).
        int lo = 0, hi = _count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_ranges[mid].End < start) lo = mid + 1; else hi = mid;
        }
        int i = lo;
        // Ranges i..j-1 overlap or touch [start, end).
        int j = i;
        int newStart = start, newEnd = end;
        while (j < _count && _ranges[j].Start <= end)
        {
            int overlapStart = Math.Max(start, _ranges[j].Start), overlapEnd = Math.Min(end, _ranges[j].End);
            if (overlapEnd > overlapStart) duplicateBytes += overlapEnd - overlapStart;
            newStart = Math.Min(newStart, _ranges[j].Start);
            newEnd = Math.Max(newEnd, _ranges[j].End);
            j++;
        }
        int merged = j - i;
        if (merged == 0 && _count == MaxRanges) return false;
        if (merged == 0 && _count == _ranges.Length) Grow();
        for (int k = i; k < j; k++) ForgetRecent(_ranges[k].Start);
        // Replace ranges i..j-1 with the one merged range.
        int shift = 1 - merged;
        if (shift != 0)
        {
            Array.Copy(_ranges, j, _ranges, j + shift, _count - j);
            _count += shift;
        }
        _ranges[i] = (newStart, newEnd);
        MarkRecent(newStart);
        return true;
    }

    /// <summary>
    /// In-order data moved RCV.NXT by <paramref name="advance"/> bytes. A held range that now
    /// starts at or before RCV.NXT joins the in-order data: returns how many bytes past
    /// <paramref name="advance"/> it adds. The remaining ranges are rebased onto the final
    /// RCV.NXT (old + advance + returned value).
    /// </summary>
    public int Advance(int advance)
    {
        int extra = 0;
        // Ranges are sorted and never adjacent, so at most one range can join.
        for (int i = 0; i < _count; i++)
        {
            int s = _ranges[i].Start - advance, e = _ranges[i].End - advance;
            if (s > 0) break;
            if (e > extra) extra = e;
        }
        int total = advance + extra;
        int drop = 0;
        for (int i = 0; i < _count; i++)
        {
            if (_ranges[i].End <= total)
            {
                ForgetRecent(_ranges[i].Start);
                drop++;
                continue;
            }
            _ranges[i - drop] = (_ranges[i].Start - total, _ranges[i].End - total);
        }
        _count -= drop;
        for (int r = 0; r < _recentCount; r++) _recentStarts[r] -= total;
        return extra;
    }

    public void Clear()
    {
        _count = 0;
        _recentCount = 0;
    }

    /// <summary>
    /// Fills SACK blocks (RFC 2018 4): the most recently changed range first, then the others in
    /// recency order, as sequence numbers relative to <paramref name="rcvNxt"/>. A range that
    /// ends where an out-of-order FIN sits (<paramref name="pendingFin"/>) takes the FIN in, as
    /// Linux's receiver does, so the sender learns that its last segment arrived.
    /// </summary>
    public void WriteSackBlocks(ref TcpOptions options, SeqNumber rcvNxt, int maxBlocks, SeqNumber? pendingFin = null)
    {
        for (int r = 0; r < _recentCount && options.SackCount < maxBlocks; r++)
        {
            int start = _recentStarts[r];
            // Ranges are sorted by start: binary search for the one the recency entry names.
            int lo = 0, hi = _count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_ranges[mid].Start < start) lo = mid + 1; else hi = mid;
            }
            if (lo == _count || _ranges[lo].Start != start) continue;
            var right = rcvNxt + _ranges[lo].End;
            if (pendingFin is SeqNumber fin && fin == right) right += 1;
            options.AddSackBlock(new SackBlock(rcvNxt + start, right));
        }
    }

    private void Grow()
    {
        int size = (int)Math.Min(MaxRanges, 2L * _ranges.Length);
        Array.Resize(ref _ranges, size);
        Array.Resize(ref _recentStarts, size);
    }

    private void MarkRecent(int start)
    {
        ForgetRecent(start);
        if (_recentCount == _recentStarts.Length) _recentCount--;
        Array.Copy(_recentStarts, 0, _recentStarts, 1, _recentCount);
        _recentStarts[0] = start;
        _recentCount++;
    }

    private void ForgetRecent(int start)
    {
        for (int r = 0; r < _recentCount; r++)
        {
            if (_recentStarts[r] != start) continue;
            Array.Copy(_recentStarts, r + 1, _recentStarts, r, _recentCount - r - 1);
            _recentCount--;
            return;
        }
    }
}
