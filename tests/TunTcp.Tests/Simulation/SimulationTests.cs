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
