using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Simulation;

/// <summary>The TCP configuration of one goodput-table column.</summary>
internal sealed record SenderProfile(string Name, bool Sack, bool Rack, Func<ICongestionControl> Controller)
{
    public static readonly SenderProfile NewRenoNoSack = new("NewReno", false, false, static () => new NewRenoCongestionControl());
    public static readonly SenderProfile NewRenoSack = new("NewReno+SACK", true, false, static () => new NewRenoCongestionControl());
    public static readonly SenderProfile CubicSack = new("CUBIC+SACK", true, false, static () => new CubicCongestionControl());
    public static readonly SenderProfile CubicSackRack = new("CUBIC+SACK+RACK-TLP", true, true, static () => new CubicCongestionControl());
    public static readonly SenderProfile[] All = [NewRenoNoSack, NewRenoSack, CubicSack, CubicSackRack];

    public TcpSettings Settings(int buffer) => new()
    {
        Sack = Sack,
        Rack = Rack,
        CongestionControlFactory = Controller,
        SendBufferSize = buffer,
        ReceiveBufferSize = buffer,
    };
}

/// <summary>Result of one timed bulk transfer on the simulator.</summary>
public readonly record struct GoodputResult(double GoodputMbps, long Rtos, long Retransmitted, long Lost, long BytesDelivered, bool Intact, long Marked = 0, long EcnReductions = 0)
{
    public double RetransmittedPerLost => Lost == 0 ? (Retransmitted == 0 ? 0 : double.PositiveInfinity) : (double)Retransmitted / Lost;
}

/// <summary>
/// A sender with an endless supply of data for a fixed virtual duration over one bottleneck
/// path; goodput is measured over the part after <c>warmup</c> (past slow start).
/// </summary>
internal static class GoodputRun
{
    /// <param name="markThresholdBytes">ECN marking above this queue occupancy (0: tail drop only).</param>
    /// <param name="ecn">Whether the two ends negotiate ECN.</param>
    public static GoodputResult Run(SenderProfile profile, double loss, TimeSpan rtt, long bitsPerSecond, TimeSpan duration, TimeSpan warmup, ulong seed = 1,
        Func<int, int>? markThresholdBytes = null, bool ecn = true)
    {
        var oneWay = rtt / 2;
        // One bandwidth-delay product of queue at the bottleneck.
        int bdpBytes = (int)Math.Max(3000, bitsPerSecond / 8 * rtt.TotalSeconds);
        var forward = new PathConfig { OneWayDelay = oneWay, BitsPerSecond = bitsPerSecond, QueueLimitBytes = bdpBytes, Loss = loss, MarkThresholdBytes = markThresholdBytes?.Invoke(bdpBytes) ?? 0 };
        var reverse = new PathConfig { OneWayDelay = oneWay };
        // Buffers large enough that the window never limits before the path does (BDP + queue, doubled).
        int buffer = (int)Math.Min(1 << 26, Math.Max(1 << 18, 4L * bdpBytes));
        var tcp = profile.Settings(buffer) with { Ecn = ecn };
        var net = new SimulatedNetwork(forward, reverse, seed, tcp, tcp);
        var listener = net.B.Listen(Ipv4Address.Any, 5001, 4);
        var client = net.A.Connect(SimulatedNetwork.AddressB, 5001, net.Now);
        var sender = new BulkSender(net.A, client, long.MaxValue, seed: 9, closeWhenDone: false);
        TcpConnection? server = null;
        PatternReceiver? receiver = null;
        net.AddApp(n =>
        {
            if (server is null && listener.TryAccept(out var s)) { server = s; receiver = new PatternReceiver(n.B, s, seed: 9); }
            sender.Step(n.Now);
            receiver?.Step();
        });
        var start = net.Now;
        net.RunFor(warmup);
        long atWarmup = receiver?.Received ?? 0;
        net.RunFor(duration - warmup);
        long delivered = (receiver?.Received ?? 0) - atWarmup;
        double mbps = delivered * 8 / (duration - warmup).TotalSeconds / 1e6;
        var stats = client.GetStatistics();
        long lost = net.StatsAToB.Lost + net.StatsAToB.QueueDrops;
        return new GoodputResult(mbps, stats.RetransmissionTimeouts, stats.Retransmissions, lost, delivered, receiver is { Corrupt: false },
            net.StatsAToB.Marked, client.EcnWindowReductions);
    }
}
