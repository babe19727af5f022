using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Tcp;

/// <summary>Unit tests for <see cref="SackScoreboard"/>, the sender's record of SACKed data (RFC 2018, RFC 6675).</summary>
public class SackScoreboardTests
{
    private static readonly SeqNumber Una = new(0xFFFF_FC00); // sequence numbers wrap inside these tests

    private static SackBlock B(int left, int right) => new(Una + left, Una + right);

    private static SackBlock[] Ranges(SackScoreboard s) => Enumerable.Range(0, s.Count).Select(i => s[i]).ToArray();

    [Fact]
    public void Add_MergesAndCountsNewlySackedBytes()
    {
        var s = new SackScoreboard();
        var max = Una + 5000;
        Assert.Equal(100, s.Add(B(1000, 1100), Una, max));
        Assert.Equal(100, s.Add(B(1200, 1300), Una, max));
        Assert.Equal(0, s.Add(B(1000, 1100), Una, max));      // reported again: nothing new
        Assert.Equal(100, s.Add(B(1050, 1200), Una, max));    // fills the gap between them
        Assert.Equal([B(1000, 1300)], Ranges(s));
        Assert.Equal(300, s.SackedBytes);
        Assert.Equal(Una + 1300, s.HighestSacked);
        s.Clear();
        Assert.True(s.IsEmpty);
        Assert.Equal(default, s.HighestSacked);
    }

    // RFC 2018 does not let a receiver SACK what was never sent or is already cumulatively
    // acknowledged: blocks are clipped to (SND.UNA, SND.MAX]; inverted or empty ones are ignored.
    [Fact]
    public void Add_ClipsToSendWindow_IgnoresBogusBlocks()
    {
        var s = new SackScoreboard();
        var max = Una + 2000;
        Assert.Equal(100, s.Add(B(-50, 100), Una, max));
        Assert.Equal(100, s.Add(B(1900, 2500), Una, max));
        Assert.Equal(0, s.Add(B(3000, 4000), Una, max));
        Assert.Equal(0, s.Add(B(500, 400), Una, max));
        Assert.Equal(0, s.Add(B(-500, -100), Una, max));
        Assert.Equal([B(0, 100), B(1900, 2000)], Ranges(s));
    }

    [Fact]
    public void Queries_IsSackedNextHoleAndCounts()
    {
        var s = new SackScoreboard();
        var max = Una + 10000;
        s.Add(B(100, 200), Una, max);
        s.Add(B(300, 400), Una, max);
        Assert.False(s.IsSacked(Una + 99));
        Assert.True(s.IsSacked(Una + 100));
        Assert.True(s.IsSacked(Una + 199));
        Assert.False(s.IsSacked(Una + 200));
        Assert.False(s.IsSacked(Una + 500));

        Assert.Equal(Una, s.NextHole(Una, out int len));
        Assert.Equal(100, len);
        Assert.Equal(Una + 200, s.NextHole(Una + 150, out len));
        Assert.Equal(100, len);
        Assert.Equal(Una + 400, s.NextHole(Una + 300, out len));
        Assert.Equal(int.MaxValue, len);

        Assert.Equal(150, s.SackedBytesAbove(Una + 150));
        Assert.Equal(200, s.SackedBytesAbove(Una));
        Assert.Equal(0, s.SackedBytesAbove(Una + 400));
        Assert.Equal(2, s.RangesAbove(Una));
        Assert.Equal(1, s.RangesAbove(Una + 150));
        Assert.Equal(1, s.RangesAbove(Una + 300)); // a range starting right at seq is above it
        Assert.Equal(0, s.RangesAbove(Una + 301));
    }

    // SND.UNA advancing drops what it covers and clips a range it cuts.
    [Fact]
    public void AdvanceTo_DropsAndClips()
    {
        var s = new SackScoreboard();
        var max = Una + 10000;
        s.Add(B(100, 200), Una, max);
        s.Add(B(300, 400), Una, max);
        s.AdvanceTo(Una + 350);
        Assert.Equal([B(350, 400)], Ranges(s));
        Assert.Equal(50, s.SackedBytes);
        s.AdvanceTo(Una + 400);
        Assert.True(s.IsEmpty);
    }

    // Bounded memory: at most MaxRanges ranges; a block needing one more is dropped (SACKing
    // less than reported is safe - it only costs a retransmission), while merging ones still count.
    [Fact]
    public void Add_BoundedRangeCount()
    {
        var s = new SackScoreboard();
        var max = Una + 100_000;
        for (int i = 0; i < s.MaxRanges; i++) Assert.Equal(5, s.Add(B(10 + 10 * i, 15 + 10 * i), Una, max));
        Assert.Equal(0, s.Add(B(5000, 5100), Una, max));
        Assert.Equal(s.MaxRanges, s.Count);
        Assert.Equal(5, s.Add(B(15, 20), Una, max));
        Assert.Equal(s.MaxRanges - 1, s.Count);
    }

    // The bound scales with the send buffer; storage grows by doubling as ranges appear. The
    // range holding a sequence number is found by binary search.
    [Fact]
    public void Add_GrowsUpToItsBound_AndFindsTheRangeContaining()
    {
        Assert.Equal(SackScoreboard.MinRanges, SackScoreboard.RangesFor(16 * 1024));
        Assert.Equal(4096, SackScoreboard.RangesFor(4 << 20));
        var s = new SackScoreboard(1000);
        var max = Una + 100_000;
        for (int i = 999; i >= 0; i -= 2) Assert.Equal(5, s.Add(B(10 + 10 * i, 15 + 10 * i), Una, max));
        for (int i = 0; i < 1000; i += 2) Assert.Equal(5, s.Add(B(10 + 10 * i, 15 + 10 * i), Una, max));
        Assert.Equal(1000, s.Count);
        Assert.Equal(5000, s.SackedBytes);
        Assert.Equal(0, s.Add(B(20_000, 20_001), Una, max));
        Assert.True(s.TryGetRangeContaining(Una + 5012, out var r));
        Assert.Equal(B(5010, 5015), r);
        Assert.False(s.TryGetRangeContaining(Una + 5015, out _));
        Assert.False(s.TryGetRangeContaining(Una + 9, out _));
        // Joining two ranges keeps the byte count exact.
        Assert.Equal(5, s.Add(B(5015, 5020), Una, max));
        Assert.Equal(999, s.Count);
        Assert.Equal(5005, s.SackedBytes);
    }

    // Model check (seeded): random blocks and SND.UNA advances against a set of SACKed offsets.
    [Theory]
    [InlineData(11ul)]
    [InlineData(12ul)]
    public void Model_RandomBlocks_AgreeWithByteSet(ulong seed)
    {
        var rnd = new SeededRandomSource(seed);
        var s = new SackScoreboard();
        var una = Una;
        var max = una + 3000;
        var sacked = new HashSet<uint>();
        for (int step = 0; step < 600; step++)
        {
            if (rnd.NextDouble() < 0.8)
            {
                int left = (int)(rnd.NextUInt32() % 3200) - 100;
                int right = left + (int)(rnd.NextUInt32() % 60) - 5;
                var block = new SackBlock(una + left, una + right);
                int l = Math.Max(left, 0), r = Math.Min(right, max - una);
                var wouldAdd = Enumerable.Range(l, Math.Max(0, r - l)).Select(o => (una + o).Value).Where(v => !sacked.Contains(v)).ToList();
                bool touches = Enumerable.Range(l - 1, Math.Max(0, r - l) + 2).Any(o => sacked.Contains((una + o).Value));
                bool full = s.Count == s.MaxRanges;
                int added = s.Add(block, una, max);
                if (right <= left || r <= l || (full && !touches)) Assert.Equal(0, added);
                else
                {
                    Assert.Equal(wouldAdd.Count, added);
                    foreach (var v in wouldAdd) sacked.Add(v);
                }
            }
            else
            {
                int by = (int)(rnd.NextUInt32() % 200);
                una += by;
                max += by;
                s.AdvanceTo(una);
                sacked.RemoveWhere(v => new SeqNumber(v) < una);
            }
            Assert.Equal(sacked.Count, s.SackedBytes);
            for (int o = -1; o < 3001; o += 13) Assert.Equal(sacked.Contains((una + o).Value), s.IsSacked(una + o));
        }
    }
}
