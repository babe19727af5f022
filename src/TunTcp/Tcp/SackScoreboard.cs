using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>
/// The sender's record of which bytes above SND.UNA the peer has selectively acknowledged
/// (RFC 2018, the scoreboard of RFC 6675). Ranges are sorted, merged and bounded in number
/// (<see cref="MaxRanges"/>, from the send buffer's size like the receiver's bound); when full, a
/// block that needs a range of its own is not kept, which only makes the sender's loss estimate
/// more cautious (the connection still marks the records the block covers as SACKed).
/// </summary>
internal sealed class SackScoreboard
{
    /// <summary>The fewest ranges any scoreboard holds.</summary>
    public const int MinRanges = 64;

    /// <summary>Range bound for a send buffer of <paramref name="bufferSize"/> bytes (one per KiB, as the receiver's).</summary>
    public static int RangesFor(int bufferSize) => Math.Max(MinRanges, ReceiveAssembler.RangesFor(bufferSize));

    // Grows by doubling up to MaxRanges when needed (never without loss), never shrinks.
    private SackBlock[] _ranges;
    private int _count;

    public SackScoreboard(int maxRanges = MinRanges)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRanges, 1);
        MaxRanges = maxRanges;
        _ranges = new SackBlock[Math.Min(maxRanges, MinRanges)];
    }

    public int MaxRanges { get; }

    public int Count => _count;
    public bool IsEmpty => _count == 0;
    public SackBlock this[int index] => _ranges[index];

    /// <summary>Total bytes SACKed.</summary>
    public int SackedBytes { get; private set; }

    /// <summary>The highest SACKed sequence number + 1 (RFC 6675 HighACK side), or default when empty.</summary>
    public SeqNumber HighestSacked => _count == 0 ? default : _ranges[_count - 1].Right;

    public void Clear()
    {
        _count = 0;
        SackedBytes = 0;
    }

    /// <summary>
    /// Adds a block the peer reported; blocks outside (sndUna, sndMax] or inverted are ignored
    /// (RFC 2018 does not let a receiver SACK what was never sent). Returns the bytes newly SACKed.
    /// </summary>
    public int Add(SackBlock block, SeqNumber sndUna, SeqNumber sndMax)
    {
        var left = SeqNumber.Max(block.Left, sndUna);
        var right = SeqNumber.Min(block.Right, sndMax);
        if (right <= left || block.Right <= block.Left) return 0;
        int i = FirstEndingAtOrAfter(left);
        int j = i;
        var newLeft = left;
        var newRight = right;
        int mergedBytes = 0;
        while (j < _count && _ranges[j].Left <= right)
        {
            newLeft = SeqNumber.Min(newLeft, _ranges[j].Left);
            newRight = SeqNumber.Max(newRight, _ranges[j].Right);
            mergedBytes += _ranges[j].Right - _ranges[j].Left;
            j++;
        }
        int merged = j - i;
        if (merged == 0 && _count == MaxRanges)
        {
            // Full: merge the new block into the nearest range instead of keeping it separate
            // would claim unsacked bytes as SACKed, which is unsafe; drop the block instead.
            return 0;
        }
        if (merged == 0 && _count == _ranges.Length) Array.Resize(ref _ranges, (int)Math.Min(MaxRanges, 2L * _ranges.Length));
        int shift = 1 - merged;
        if (shift != 0)
        {
            Array.Copy(_ranges, j, _ranges, j + shift, _count - j);
            _count += shift;
        }
        _ranges[i] = new SackBlock(newLeft, newRight);
        int added = (newRight - newLeft) - mergedBytes;
        SackedBytes += added;
        return added;
    }

    /// <summary>The range that contains <paramref name="seq"/>, if any.</summary>
    public bool TryGetRangeContaining(SeqNumber seq, out SackBlock range)
    {
        int i = FirstEndingAtOrAfter(seq);
        if (i < _count && _ranges[i].Left <= seq && seq < _ranges[i].Right)
        {
            range = _ranges[i];
            return true;
        }
        range = default;
        return false;
    }

    /// <summary>Index of the first range whose right edge is at or after <paramref name="seq"/> (binary search).</summary>
    private int FirstEndingAtOrAfter(SeqNumber seq)
    {
        int lo = 0, hi = _count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_ranges[mid].Right < seq) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>SND.UNA advanced: forget everything below it.</summary>
    public void AdvanceTo(SeqNumber sndUna)
    {
        int drop = 0;
        for (int i = 0; i < _count; i++)
        {
            if (_ranges[i].Right <= sndUna) { drop++; continue; }
            var r = _ranges[i];
            if (r.Left < sndUna) r = new SackBlock(sndUna, r.Right);
            _ranges[i - drop] = r;
        }
        _count -= drop;
        Recount();
    }

    /// <summary>True when <paramref name="seq"/> lies in a SACKed range.</summary>
    public bool IsSacked(SeqNumber seq)
    {
        for (int i = 0; i < _count; i++)
        {
            if (seq < _ranges[i].Left) return false;
            if (seq < _ranges[i].Right) return true;
        }
        return false;
    }

    /// <summary>
    /// The first byte at or after <paramref name="seq"/> that is not SACKed, and how many
    /// unSACKed bytes follow it before the next SACKed range (int.MaxValue if none).
    /// </summary>
    public SeqNumber NextHole(SeqNumber seq, out int holeLength)
    {
        for (int i = 0; i < _count; i++)
        {
            if (seq < _ranges[i].Left) { holeLength = _ranges[i].Left - seq; return seq; }
            if (seq < _ranges[i].Right) seq = _ranges[i].Right;
        }
        holeLength = int.MaxValue;
        return seq;
    }

    /// <summary>SACKed bytes at or above <paramref name="seq"/> (RFC 6675 IsLost input).</summary>
    public int SackedBytesAbove(SeqNumber seq)
    {
        int n = 0;
        for (int i = _count - 1; i >= 0; i--)
        {
            if (_ranges[i].Right <= seq) break;
            n += _ranges[i].Right - SeqNumber.Max(_ranges[i].Left, seq);
        }
        return n;
    }

    /// <summary>
    /// SACKed ranges (discontiguous blocks) starting at or after <paramref name="seq"/>: with
    /// <paramref name="seq"/> the end of a segment, those above it (RFC 6675 4 IsLost counts the
    /// "discontiguous SACKed sequences ... above" the segment, a range right after it included).
    /// </summary>
    public int RangesAbove(SeqNumber seq)
    {
        int n = 0;
        for (int i = _count - 1; i >= 0 && _ranges[i].Left >= seq; i--) n++;
        return n;
    }

    private void Recount()
    {
        int n = 0;
        for (int i = 0; i < _count; i++) n += _ranges[i].Right - _ranges[i].Left;
        SackedBytes = n;
    }
}
