using TunTcp.Tcp;

namespace TunTcp.Tests.Simulation;

public class SimulationTests
{
    [Fact]
    public void IdealPath_OneMegabyte_ArrivesIntactAndBothEndsClose()
    {
        var net = new SimulatedNetwork(PathConfig.Ideal(TimeSpan.FromMilliseconds(5)), PathConfig.Ideal(TimeSpan.FromMilliseconds(5)));
        var t = new TransferScenario(net, 1_000_000);
        Assert.True(t.Run(TimeSpan.FromSeconds(60)), $"not done: client {t.Client.State} server {t.Server?.State} received {t.Receiver.Received}");
        Assert.Equal(1_000_000, t.Receiver.Received);
        Assert.False(t.Receiver.Corrupt);
        Assert.Equal(TcpError.None, t.Client.Error);
    }

    [Fact]
    public void LossyPath_TwoPercent_ArrivesIntact()
    {
        var path = new PathConfig { OneWayDelay = TimeSpan.FromMilliseconds(10), Loss = 0.02, BitsPerSecond = 100_000_000, QueueLimitPackets = 200 };
        var net = new SimulatedNetwork(path, path, seed: 3);
        var t = new TransferScenario(net, 2_000_000);
        Assert.True(t.Run(TimeSpan.FromSeconds(600)), $"not done: client {t.Client.State} server {t.Server?.State} received {t.Receiver.Received} {net.StatsAToB} server {t.Server?.GetStatistics()} next {t.Server?.NextDeadline} client {t.Client.GetStatistics()} now {net.Now}");
        Assert.False(t.Receiver.Corrupt);
        Assert.Equal(2_000_000, t.Receiver.Received);
    }
}

/// <summary>The statistics behind <c>tuntcp stats</c>: min RTT, delivery rate, reordering.</summary>
public class ConnectionStatisticsTests
{
    [Fact]
    public void MidTransfer_MinRttIsThePathsRoundTrip_AndDeliveryRateItsBottleneck()
    {
        // 10 Mbit/s with 20 ms of round trip: the sender's delivery rate settles at the bottleneck.
        var path = new PathConfig { OneWayDelay = TimeSpan.FromMilliseconds(10), BitsPerSecond = 10_000_000, QueueLimitPackets = 100 };
        var net = new SimulatedNetwork(path, PathConfig.Ideal(TimeSpan.FromMilliseconds(10)));
        var t = new TransferScenario(net, 4_000_000);
        Assert.True(net.RunUntil(() => t.Receiver.Received > 2_000_000, TimeSpan.FromSeconds(60)));

        var s = t.Server!.GetStatistics(); // the sender (A: the listening side)
        Assert.InRange(s.MinRtt.TotalMilliseconds, 20, 22); // 20 ms of propagation plus one segment's serialisation
        Assert.InRange(s.DeliveryRateBitsPerSecond, 8_000_000, 10_100_000);
        Assert.True(s.SmoothedRtt >= s.MinRtt);
        Assert.False(s.ReorderingSeen);
        Assert.Equal(0, s.DsacksReceived);
    }
}
