using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>
/// The sender's record of which bytes above SND.UNA the peer has selectively acknowledged
/// (RFC 2018, the scoreboard of RFC 6675). Ranges are sorted, merged and bounded in number;
/// when full, the range nearest the right edge is merged into its neighbour, which only makes
/// the sender retransmit a little more, never less than needed.
/// </summary>
public sealed class SackScoreboard
{
    public const int MaxRanges = 64;

    private readonly SackBlock[] _ranges = new SackBlock[MaxRanges];
    private int _count;

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
        int before = SackedBytes;
        int i = 0;
        while (i < _count && _ranges[i].Right < left) i++;
        int j = i;
        var newLeft = left;
        var newRight = right;
        while (j < _count && _ranges[j].Left <= right)
        {
            newLeft = SeqNumber.Min(newLeft, _ranges[j].Left);
            newRight = SeqNumber.Max(newRight, _ranges[j].Right);
            j++;
        }
        int merged = j - i;
        if (merged == 0 && _count == MaxRanges)
        {
            // Full: merge the new block into the nearest range instead of keeping it separate
            // would claim unsacked bytes as SACKed, which is unsafe; drop the block instead.
            return 0;
        }
        int shift = 1 - merged;
        if (shift != 0)
        {
            Array.Copy(_ranges, j, _ranges, j + shift, _count - j);
            _count += shift;
        }
        _ranges[i] = new SackBlock(newLeft, newRight);
        Recount();
        return SackedBytes - before;
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
