using System.Diagnostics;
using TunTcp.Links;
using TunTcp.Tests.Support;

namespace TunTcp.Tests.Links;

public class MemoryLinkTests
{
    // Generous bound for "Wait returned because of the event, not the timeout": the timeout
    // passed to Wait is far longer, so returning before it proves the wake-up.
    private static readonly TimeSpan LongTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public void Send_IsReceivedByTheOtherEnd_InBothDirections()
    {
        var (a, b) = MemoryLink.CreatePair(mtu: 1500, capacity: 4);
        using (a) using (b)
        {
            var ping = Packets.EchoRequest(1, 1, "hello"u8);
            var pong = Packets.EchoRequest(2, 2, "world!"u8, from: Packets.Stack, to: Packets.Host);
            a.Send(ping);
            b.Send(pong);
            var buffer = new byte[1500];

            Assert.Equal(ping.Length, b.Receive(buffer));
            Assert.Equal(ping, buffer[..ping.Length]);
            Assert.Equal(pong.Length, a.Receive(buffer));
            Assert.Equal(pong, buffer[..pong.Length]);
            Assert.Equal(0, a.Receive(buffer));
            Assert.Equal(0, b.Receive(buffer));
            Assert.Equal(1, a.Statistics.PacketsSent);
            Assert.Equal(1, a.Statistics.PacketsReceived);
            Assert.Equal(ping.Length, b.Statistics.BytesReceived);
        }
    }

    [Fact]
    public void Packets_ArriveInOrder()
    {
        var (a, b) = MemoryLink.CreatePair(mtu: 100, capacity: 8);
        using (a) using (b)
        {
            for (byte i = 1; i <= 8; i++) a.Send(new byte[] { 0x45, i, i });
            var buffer = new byte[100];
            for (byte i = 1; i <= 8; i++)
            {
                Assert.Equal(3, b.Receive(buffer));
                Assert.Equal(i, buffer[1]);
            }
            Assert.Equal(0, b.Receive(buffer));
        }
    }

    [Fact]
    public void Send_WhenQueueIsFull_DropsAndCounts()
    {
        var (a, b) = MemoryLink.CreatePair(mtu: 100, capacity: 2);
        using (a) using (b)
        {
            for (byte i = 1; i <= 3; i++) a.Send(new byte[] { 0x45, i });
            Assert.Equal(2, a.Statistics.PacketsSent);
            Assert.Equal(1, a.Statistics.SendDrops);
            Assert.Equal(2, b.PendingCount);
            var buffer = new byte[100];
            b.Receive(buffer);
            Assert.Equal(1, buffer[1]);
            a.Send(new byte[] { 0x45, 4 }); // room again
            b.Receive(buffer);
            Assert.Equal(2, buffer[1]);
            b.Receive(buffer);
            Assert.Equal(4, buffer[1]);
        }
    }

    [Fact]
    public void Send_LongerThanMtu_DropsAndCounts()
    {
        var (a, b) = MemoryLink.CreatePair(mtu: 100, capacity: 2);
        using (a) using (b)
        {
            a.Send(new byte[101]);
            Assert.Equal(1, a.Statistics.SendDrops);
            Assert.Equal(0, b.PendingCount);
        }
    }

    [Fact]
    public void Receive_IntoTooSmallBuffer_DropsTheLongPacketNeverTruncates()
    {
        var (a, b) = MemoryLink.CreatePair(mtu: 100, capacity: 4);
        using (a) using (b)
        {
            a.Send(new byte[50]);
            a.Send(new byte[] { 0x45, 7 });
            var small = new byte[10];
            Assert.Equal(2, b.Receive(small));
            Assert.Equal(7, small[1]);
            Assert.Equal(1, b.Statistics.ReceiveDrops);
            Assert.Equal(1, b.Statistics.PacketsReceived);
        }
    }

    [Fact]
    public void Wait_ReturnsAtOnce_WhenAPacketIsWaiting()
    {
        var (a, b) = MemoryLink.CreatePair();
        using (a) using (b)
        using (var wake = new WakeSignal())
        {
            a.Send(new byte[] { 0x45 });
            var watch = Stopwatch.StartNew();
            b.Wait(wake, LongTimeout);
            Assert.True(watch.Elapsed < LongTimeout / 2);
            Assert.Equal(1, b.Receive(new byte[10]));
        }
    }

    [Fact]
    public async Task Wait_WakesWhenThePeerSends()
    {
        var (a, b) = MemoryLink.CreatePair();
        using (a) using (b)
        using (var wake = new WakeSignal())
        {
            var waiting = new ManualResetEventSlim();
            var waiter = Task.Factory.StartNew(() =>
            {
                var watch = Stopwatch.StartNew();
                waiting.Set();
                b.Wait(wake, LongTimeout);
                return watch.Elapsed;
            }, TestContext.Current.CancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            Assert.True(waiting.Wait(LongTimeout, TestContext.Current.CancellationToken));
            a.Send(new byte[] { 0x45, 1 });
            var elapsed = await waiter.WaitAsync(LongTimeout, TestContext.Current.CancellationToken);
            Assert.True(elapsed < LongTimeout / 2, $"Wait returned after {elapsed}");
            Assert.Equal(2, b.Receive(new byte[10]));
        }
    }

    [Fact]
    public async Task Wait_WakesOnWakeSignal()
    {
        var (a, b) = MemoryLink.CreatePair();
        using (a) using (b)
        using (var wake = new WakeSignal())
        {
            var waiting = new ManualResetEventSlim();
            var waiter = Task.Factory.StartNew(() =>
            {
                var watch = Stopwatch.StartNew();
                waiting.Set();
                b.Wait(wake, LongTimeout);
                return watch.Elapsed;
            }, TestContext.Current.CancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            Assert.True(waiting.Wait(LongTimeout, TestContext.Current.CancellationToken));
            wake.Signal();
            var elapsed = await waiter.WaitAsync(LongTimeout, TestContext.Current.CancellationToken);
            Assert.True(elapsed < LongTimeout / 2, $"Wait returned after {elapsed}");
            Assert.Equal(0, b.Receive(new byte[10]));
        }
    }

    [Fact]
    public async Task TwoThreads_ExchangeEveryPacket_InOrder()
    {
        const int count = 20_000;
        var (a, b) = MemoryLink.CreatePair(mtu: 64, capacity: 16);
        using (a) using (b)
        using (var wake = new WakeSignal())
        {
            var receiver = Task.Factory.StartNew(() =>
            {
                var buffer = new byte[64];
                int expected = 0;
                var deadline = Stopwatch.StartNew();
                while (expected < count && deadline.Elapsed < LongTimeout)
                {
                    int n = b.Receive(buffer);
                    if (n == 0) { b.Wait(wake, TimeSpan.FromSeconds(1)); continue; }
                    Assert.Equal(expected, BitConverter.ToInt32(buffer, 0));
                    expected++;
                }
                return expected;
            }, TestContext.Current.CancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            var packet = new byte[8];
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < count && watch.Elapsed < LongTimeout; )
            {
                BitConverter.TryWriteBytes(packet, i);
                long dropsBefore = a.Statistics.SendDrops;
                a.Send(packet);
                if (a.Statistics.SendDrops == dropsBefore) i++;
                else Thread.Yield(); // queue full: let the receiver drain, then resend the same number
            }
            Assert.Equal(count, await receiver.WaitAsync(LongTimeout, TestContext.Current.CancellationToken));
        }
    }

    [Fact]
    public void Send_ToAClosedEnd_IsDropped()
    {
        var (a, b) = MemoryLink.CreatePair();
        b.Dispose();
        a.Send(new byte[] { 0x45 });
        Assert.Equal(1, a.Statistics.SendDrops);
        a.Dispose();
    }

    [Fact]
    public void SteadyState_SendAndReceive_AllocateNothing()
    {
        var (a, b) = MemoryLink.CreatePair(mtu: 1500, capacity: 8);
        using (a) using (b)
        {
            var packet = Packets.EchoRequest(1, 1, new byte[100]);
            var buffer = new byte[1500];
            a.Send(packet); b.Receive(buffer); // warm up
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                a.Send(packet);
                b.Receive(buffer);
            }
            Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
        }
    }
}
