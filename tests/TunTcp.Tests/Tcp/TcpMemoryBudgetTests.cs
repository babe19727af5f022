using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// The stack-wide buffer budget (Linux tcp_mem): rings grow freely below 3/4 of the limit; under
/// pressure they stop growing and the window offered shrinks to what is allocated; at the limit
/// out-of-order data is pruned first and segments that do not fit are dropped unacknowledged;
/// nothing already acknowledged is ever lost.
/// </summary>
public class TcpMemoryBudgetTests
{
    private const int Allowance = TcpMemoryBudget.Allowance;

    private static byte[] Data(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Charges <paramref name="bytes"/> to the budget the way other connections' first arrays would.</summary>
    private static void ChargeOthers(TcpMemoryBudget budget, long bytes)
    {
        for (long n = 0; n < bytes; n += Allowance) Assert.True(budget.TryGrow(0, Allowance));
    }

    [Fact]
    public void Budget_AllowanceAlways_GrowthBelowPressureOnly_PressureLeftBelowHalf()
    {
        var budget = new TcpMemoryBudget(256 * 1024); // pressure at 192 KiB, low at 128 KiB
        Assert.True(budget.TryGrow(Allowance, 128 * 1024)); // a ring doubling: 112 KiB more
        Assert.False(budget.UnderPressure);
        Assert.False(budget.TryGrow(128 * 1024, 256 * 1024)); // would pass the pressure mark
        Assert.Equal(1, budget.GrowthDenied);
        ChargeOthers(budget, 96 * 1024); // first arrays are always allowed, even past the mark
        Assert.True(budget.UnderPressure);
        Assert.Equal(1, budget.PressureEntered);
        Assert.False(budget.TryGrow(Allowance, 2 * Allowance)); // under pressure nothing grows
        budget.Release(64 * 1024);
        Assert.True(budget.UnderPressure); // hysteresis: still above half the limit
        budget.Release(48 * 1024);
        Assert.False(budget.UnderPressure);
        Assert.True(budget.TryGrow(Allowance, 2 * Allowance));
    }

    [Fact]
    public void SendRing_UnderPressure_TakesOnlyWhatItsArrayHolds_AndGrowsAgainAfter()
    {
        var budget = new TcpMemoryBudget(128 * 1024);
        ChargeOthers(budget, 96 * 1024);
        Assert.True(budget.UnderPressure);
        var ring = new ByteRing(256 * 1024) { Budget = budget };
        Assert.Equal(Allowance, ring.Write(Data(100_000, 1))); // the first array, no more
        Assert.Equal(0, ring.Write(Data(10, 2)));
        Assert.Equal(Allowance, ring.StorableFree + ring.Count);
        ring.Consume(Allowance);
        budget.Release(96 * 1024);
        Assert.False(budget.UnderPressure);
        Assert.Equal(60_000, ring.Write(Data(60_000, 3)));
        Assert.Equal(65_536, ring.ArrayLength);
        Assert.Equal(65_536, budget.Allocated);
        Assert.Equal(65_536 - 60_000, ring.Write(Data(100_000, 4))); // growing to 128 KiB would pass the pressure mark: what the array holds
        ring.ReleaseBudget();
        Assert.Equal(0, budget.Allocated);
    }

    [Fact]
    public void BelowPressure_TheReceiveRingGrowsWithTheWindow()
    {
        var budget = new TcpMemoryBudget(64L << 20);
        var h = TcpHarness.Established(memory: budget);
        for (int i = 0; i < 40; i++) h.Send(h.Peer(seq: i * 1000, data: Data(1000, i)));
        Assert.Equal(40_000, h.C.ReceiveBuffer.Count);
        Assert.Equal(65536, h.C.ReceiveBuffer.ArrayLength);
        Assert.Equal(0, h.Env.Statistics.MemoryDrops);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UnderPressure_TheWindowOfferedStopsGrowing_AtTheArrayAlreadyAllocated(bool pressure)
    {
        var budget = new TcpMemoryBudget(1 << 20);
        var h = TcpHarness.Established(memory: budget);
        var firstEdge = h.Irs + 1 + (int)((long)h.OurWindow << h.OurShift);
        if (pressure) ChargeOthers(budget, 768 * 1024);
        Assert.Equal(pressure, budget.UnderPressure);
        // 100 KB arrive and are read as they come: the window reopens after each read.
        SeqNumber edge = firstEdge;
        for (int i = 0; i < 100; i++)
        {
            h.Send(h.Peer(seq: i * 1000, data: Data(1000, i)));
            h.C.ReceiveBuffer.Consume(h.C.ReceiveBuffer.Count);
            h.C.OnReceiveBufferRead(h.Now, h);
            foreach (var s in h.RecvAll()) edge = s.Ack + (int)((long)s.Window << h.OurShift);
        }
        Assert.Equal(100_000, h.C.BytesReceived);
        if (pressure)
        {
            // The edge moved on only within the 16 KiB array: RCV.NXT + at most 16 KiB.
            Assert.True(edge - (h.Irs + 1 + 100_000) <= Allowance, $"edge {edge - (h.Irs + 1 + 100_000)} past RCV.NXT");
            Assert.Equal(Allowance, h.C.ReceiveBuffer.ArrayLength);
        }
        else
        {
            Assert.True(edge - (h.Irs + 1 + 100_000) > 128 * 1024, $"edge {edge - (h.Irs + 1 + 100_000)} past RCV.NXT"); // the whole 256 KiB buffer on offer
        }
        Assert.Equal(0, h.Env.Statistics.MemoryDrops);
    }

    [Fact]
    public void UnderPressure_ASegmentPastTheArray_IsDroppedUnacknowledged_AndAcceptedOnceRead()
    {
        var budget = new TcpMemoryBudget(128 * 1024);
        var h = TcpHarness.Established(memory: budget);
        h.Send(h.Peer(data: Data(1000, 0))); // the first array (16 KiB) exists
        ChargeOthers(budget, 96 * 1024);
        h.RecvAll();
        // The peer fills the window it was offered before the pressure: 20 KB, past the array.
        for (int i = 1; i < 20; i++) h.Send(h.Peer(seq: i * 1000, data: Data(1000, i)));
        Assert.Equal(16_000, h.C.ReceiveBuffer.Count); // 16 segments fit in 16384 bytes
        Assert.True(h.Env.Statistics.MemoryDrops >= 3);
        var last = h.RecvAll().Last();
        Assert.Equal(h.Irs + 1 + 16_000, last.Ack); // nothing past what is stored is acknowledged

        // What was acknowledged is all there, intact.
        var read = new byte[16_000];
        Assert.Equal(16_000, h.C.ReceiveBuffer.Read(read));
        for (int i = 0; i < 16; i++) Assert.Equal(Data(1000, i), read[(i * 1000)..((i + 1) * 1000)]);
        // The space read is room again: the retransmission is taken.
        h.Send(h.Peer(seq: 16_000, data: Data(1000, 16)));
        Assert.Equal(1000, h.C.ReceiveBuffer.Count);
    }

    [Fact]
    public void AtTheLimit_OutOfOrderDataIsPrunedFirst_ThenTheRingIsCutToItsData()
    {
        var budget = new TcpMemoryBudget(256 * 1024);
        var h = TcpHarness.Established(memory: budget);
        h.Send(h.Peer(data: Data(1000, 0)));
        h.Send(h.Peer(seq: 30_000, data: Data(1000, 30))); // out of order: the array grows to 32 KiB
        var dupAck = h.RecvAll().Last();
        Assert.Equal(h.Irs + 1 + 1000, dupAck.Ack);
        Assert.Single(dupAck.Options.SackBlocks.ToArray());
        Assert.Equal(32 * 1024, h.C.ReceiveBuffer.ArrayLength);
        long before = budget.Allocated;

        ChargeOthers(budget, 256 * 1024 - before); // at the limit
        Assert.True(budget.OverLimit);
        int released = h.C.ReclaimMemory(prune: true);
        Assert.Equal(16 * 1024, released); // 32 KiB -> 16 KiB: the 1000 in-order bytes stay
        Assert.Equal(1000, h.Env.Statistics.OutOfOrderPrunedBytes);
        Assert.Equal(before - released, budget.Allocated - (256 * 1024 - before));

        // The in-order data is intact; the pruned bytes are no longer SACKed, and a new
        // out-of-order segment is not kept while the budget is at its limit.
        var read = new byte[1000];
        Assert.Equal(1000, h.C.ReceiveBuffer.Read(read));
        Assert.Equal(Data(1000, 0), read);
        // Below the limit again: a new out-of-order segment is kept (in the array there is), and
        // only it is SACKed, not the pruned one.
        h.Send(h.Peer(seq: 5000, data: Data(1000, 5)));
        var ack = h.RecvAll().Last();
        Assert.Equal(h.Irs + 1 + 1000, ack.Ack);
        Assert.Equal([h.PeerBlock(5000, 6000)], ack.Options.SackBlocks.ToArray());
        // At the limit, none is kept.
        ChargeOthers(budget, released);
        Assert.True(budget.OverLimit);
        long drops = h.Env.Statistics.MemoryDrops;
        h.Send(h.Peer(seq: 7000, data: Data(1000, 7)));
        Assert.Equal(drops + 1, h.Env.Statistics.MemoryDrops);
        Assert.Equal([h.PeerBlock(5000, 6000)], h.RecvAll().Last().Options.SackBlocks.ToArray());
        // The sender fills the gap (in-order data is taken at the limit) and resends the rest.
        for (int i = 1; i < 5; i++) h.Send(h.Peer(seq: i * 1000, data: Data(1000, i)));
        Assert.Equal(5000, h.C.ReceiveBuffer.Count); // 1000..5000 and the 5000..6000 held
        Assert.Equal(h.Irs + 1 + 6000, h.RecvAll().Last().Ack);
    }

    [Fact]
    public void TheStack_GivesAConnectionsRingsBack_WhenItIsForgotten_AndReportsTheBudget()
    {
        var output = new RecordingOutput();
        var core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress(), TcpMemoryLimit = 1 << 20 }, output);
        var now = Instant.FromMilliseconds(1000);
        var c = CoreTcp.ActiveOpen(core, output, v6: false, now, out _);
        CoreTcp.Write(core, c, 3000, now);
        Assert.Equal(Allowance, core.TcpEnvironment.Memory!.Allocated);
        Assert.Equal(Allowance, StackReport.Capture(core, now).Totals["tcp_memory"]);
        core.Abort(c, now);
        Assert.Equal(0, core.ConnectionCount);
        Assert.Equal(0, core.TcpEnvironment.Memory.Allocated);
    }

    [Fact]
    public void TheStack_UnderPressure_CutsIdleReceiveRingsBack_OnItsOwnTimer()
    {
        var output = new RecordingOutput();
        var core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress(), TcpMemoryLimit = 1 << 20 }, output);
        var now = Instant.FromMilliseconds(1000);
        var c = CoreTcp.ActiveOpen(core, output, v6: false, now, out var syn);
        var s = SentTcp.Parse(syn);
        core.Poll(now); // our ACK of the SYN-ACK goes out, with the window the data arrives in
        // 40 KB arrive (the ring grows to 64 KiB) and the application reads them all.
        for (int i = 0; i < 40; i++)
        {
            var h = new TcpHeader(5000, s.SourcePort, new SeqNumber(7001 + (uint)(i * 1000)), s.Seq + 1, TcpFlags.Ack | TcpFlags.Psh, 65535);
            core.Receive(CoreTcp.FromHost(false, h, default, Data(1000, i)), now);
        }
        core.Poll(now);
        Assert.Equal(40_000, c.BytesReceived);
        Assert.Equal(65536, c.ReceiveBuffer.ArrayLength);
        c.ReceiveBuffer.Consume(40_000);
        var memory = core.TcpEnvironment.Memory!;
        ChargeOthers(memory, 768 * 1024);
        Assert.True(memory.UnderPressure);
        Assert.True(core.NextDeadline <= now + TimeSpan.FromMilliseconds(100)); // the reclaim timer runs while under pressure
        core.Poll(now + TimeSpan.FromMilliseconds(100));
        Assert.Equal(0, c.ReceiveBuffer.ArrayLength); // nothing left to hold: no array at all
        Assert.Equal(65536, core.TcpEnvironment.Statistics.MemoryReclaimedBytes);
        Assert.Equal(768 * 1024, memory.Allocated); // only the others' arrays are left
    }
}
