using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// Unit tests for <see cref="ReceiveAssembler"/>: the out-of-order bookkeeping behind RFC 9293
/// 3.10.7.4 ("segments with higher beginning sequence numbers may be held") and the SACK blocks
/// of RFC 2018 4.
/// </summary>
public class ReceiveAssemblerTests
{
    private static (int, int)[] Ranges(ReceiveAssembler a) => Enumerable.Range(0, a.RangeCount).Select(i => a[i]).ToArray();

    [Fact]
    public void Add_KeepsSortedDisjointRanges_MergesOverlappingAndTouching()
    {
        var a = new ReceiveAssembler();
        Assert.True(a.IsEmpty);
        Assert.True(a.Add(100, 200, out int d)); Assert.Equal(0, d);
        Assert.True(a.Add(300, 400, out d)); Assert.Equal(0, d);
        Assert.True(a.Add(10, 20, out d)); Assert.Equal(0, d);
        Assert.Equal([(10, 20), (100, 200), (300, 400)], Ranges(a));
        Assert.True(a.Add(200, 300, out d)); Assert.Equal(0, d);      // touches both neighbours
        Assert.Equal([(10, 20), (100, 400)], Ranges(a));
        Assert.True(a.Add(15, 120, out d)); Assert.Equal(5 + 20, d);  // overlaps both: 5 + 20 duplicate bytes
        Assert.Equal([(10, 400)], Ranges(a));
        Assert.Equal(390, a.BytesHeld);
        Assert.Equal(400, a.HighestEnd);
        Assert.True(a.Add(5, 5, out d));                               // empty: nothing
        Assert.Equal(1, a.RangeCount);
        a.Clear();
        Assert.True(a.IsEmpty);
        Assert.Equal(0, a.HighestEnd);
    }

    // No unbounded memory: at most MaxRanges separate ranges; a segment needing one more is refused
    // (and changes nothing), while one that extends or joins existing ranges is still taken.
    [Fact]
    public void Add_BoundedRangeCount()
    {
        var a = new ReceiveAssembler();
        for (int i = 0; i < a.MaxRanges; i++) Assert.True(a.Add(10 + 10 * i, 15 + 10 * i, out _));
        var before = Ranges(a);
        Assert.False(a.Add(1000, 1001, out _));
        Assert.False(a.Add(1, 2, out _));
        Assert.Equal(before, Ranges(a));
        Assert.True(a.Add(15, 20, out _));
        Assert.Equal(a.MaxRanges - 1, a.RangeCount);
        Assert.True(a.Add(1000, 1001, out _));
    }

    // The bound scales with the buffer (RangesFor); storage grows by doubling as ranges appear, so
    // a large bound costs nothing until out-of-order data needs it.
    [Fact]
    public void Add_GrowsUpToItsBound_InAnyOrder()
    {
        Assert.Equal(ReceiveAssembler.MinRanges, ReceiveAssembler.RangesFor(1024));
        Assert.Equal(4096, ReceiveAssembler.RangesFor(4 << 20));
        Assert.Equal(16384, ReceiveAssembler.RangesFor(1 << 30));
        var a = new ReceiveAssembler(1000);
        for (int i = 999; i >= 0; i -= 2) Assert.True(a.Add(10 + 10 * i, 15 + 10 * i, out _));
        for (int i = 0; i < 1000; i += 2) Assert.True(a.Add(10 + 10 * i, 15 + 10 * i, out _));
        Assert.Equal(1000, a.RangeCount);
        for (int i = 0; i < 1000; i++) Assert.Equal((10 + 10 * i, 15 + 10 * i), a[i]);
        Assert.False(a.Add(20_000, 20_001, out _));
        // In-order data up to the first range joins it; the rest are rebased.
        Assert.Equal(5, a.Advance(10));
        Assert.Equal(999, a.RangeCount);
        Assert.Equal((5, 10), a[0]);
    }

    // The in-order segment [0, 100) reaches a held range [100, 200): 100 more bytes are contiguous,
    // and the range after it is rebased on the new RCV.NXT (200 further on).
    [Fact]
    public void Advance_RangeAtNewEdgeJoins_RestRebasedOnFinalRcvNxt()
    {
        var a = new ReceiveAssembler();
        a.Add(100, 200, out _);
        a.Add(300, 400, out _);
        Assert.Equal(100, a.Advance(100));
        Assert.Equal([(100, 200)], Ranges(a));
    }

    // The in-order segment [0, 130) covers a held range entirely and another partly: the part past
    // 130 (20 bytes) joins; the far range is rebased by 150.
    [Fact]
    public void Advance_CoveredAndStraddlingRanges()
    {
        var a = new ReceiveAssembler();
        a.Add(50, 80, out _);
        a.Add(120, 150, out _);
        a.Add(400, 500, out _);
        Assert.Equal(20, a.Advance(130));
        Assert.Equal([(250, 350)], Ranges(a));
    }

    [Fact]
    public void Advance_NoRangeAtEdge_ReturnsZero_Rebases()
    {
        var a = new ReceiveAssembler();
        a.Add(300, 400, out _);
        Assert.Equal(0, a.Advance(100));
        Assert.Equal([(200, 300)], Ranges(a));
        Assert.Equal(0, a.Advance(50));
        Assert.Equal([(150, 250)], Ranges(a));
    }

    // RFC 2018 4: "The first SACK block ... MUST specify the contiguous block of data containing
    // the segment which triggered this ACK"; the others repeat the most recently reported ones.
    [Fact]
    public void WriteSackBlocks_MostRecentlyChangedFirst()
    {
        var a = new ReceiveAssembler();
        var rcvNxt = new SeqNumber(0xFFFF_FF00);
        a.Add(100, 110, out _);
        a.Add(300, 310, out _);
        a.Add(200, 210, out _);
        a.Add(110, 120, out _); // extends the first range: it becomes the most recent
        var o = new TcpOptions();
        a.WriteSackBlocks(ref o, rcvNxt, 3);
        Assert.Equal([new SackBlock(rcvNxt + 100, rcvNxt + 120), new SackBlock(rcvNxt + 200, rcvNxt + 210), new SackBlock(rcvNxt + 300, rcvNxt + 310)], o.SackBlocks.ToArray());

        var two = new TcpOptions();
        a.WriteSackBlocks(ref two, rcvNxt, 2);
        Assert.Equal(2, two.SackCount);

        // After RCV.NXT moves, the blocks follow it, and the recency order is kept.
        a.Advance(100);
        var after = new TcpOptions();
        a.WriteSackBlocks(ref after, rcvNxt + 120, 4);
        Assert.Equal([new SackBlock(rcvNxt + 200, rcvNxt + 210), new SackBlock(rcvNxt + 300, rcvNxt + 310)], after.SackBlocks.ToArray());
    }

    // Model check (seeded, reproducible): random adds and in-order advances against a plain set
    // of held byte offsets; ranges, duplicate counts, refusals and joined byte counts must agree.
    [Theory]
    [InlineData(1ul)]
    [InlineData(2ul)]
    [InlineData(3ul)]
    public void Model_RandomAddsAndAdvances_AgreeWithByteSet(ulong seed)
    {
        var rnd = new SeededRandomSource(seed);
        var a = new ReceiveAssembler();
        var held = new SortedSet<int>();
        for (int step = 0; step < 1000; step++)
        {
            if (rnd.NextDouble() < 0.75)
            {
                int start = 1 + (int)(rnd.NextUInt32() % 400);
                int end = start + 1 + (int)(rnd.NextUInt32() % 30);
                bool touches = held.GetViewBetween(start - 1, end).Count > 0;
                bool refuse = !touches && ModelRuns(held).Count == a.MaxRanges;
                int dup = held.GetViewBetween(start, end - 1).Count;
                bool ok = a.Add(start, end, out int d);
                Assert.Equal(!refuse, ok);
                if (ok)
                {
                    Assert.Equal(dup, d);
                    for (int i = start; i < end; i++) held.Add(i);
                }
            }
            else
            {
                int n = 1 + (int)(rnd.NextUInt32() % 60);
                int extra = 0;
                while (held.Contains(n + extra)) extra++;
                Assert.Equal(extra, a.Advance(n));
                int shift = n + extra;
                var rebased = held.Where(x => x >= shift).Select(x => x - shift).ToList();
                held = new SortedSet<int>(rebased);
            }
            Assert.Equal(ModelRuns(held), Ranges(a).ToList());
        }
    }

    private static List<(int, int)> ModelRuns(SortedSet<int> held)
    {
        var runs = new List<(int, int)>();
        foreach (var x in held)
        {
            if (runs.Count > 0 && runs[^1].Item2 == x) runs[^1] = (runs[^1].Item1, x + 1);
            else runs.Add((x, x + 1));
        }
        return runs;
    }
}
