using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Simulation;

/// <summary>
/// Several bulk flows from A to B through the same simulated bottleneck, each with its own
/// congestion controller and start time; per-flow goodput over a measurement window.
/// </summary>
internal sealed class SharedBottleneck
{
    private readonly SimulatedNetwork _net;
    private readonly TcpListenQueue _listener;
    private readonly List<Flow> _flows = new();

    public sealed class Flow
    {
        public required Func<ICongestionControl> Controller { get; init; }
        public required TimeSpan Start { get; init; }
        internal TcpConnection? Client;
        internal BulkSender? Sender;
        internal PatternReceiver? Receiver;
        public long Received => Receiver?.Received ?? 0;
        public bool Corrupt => Receiver?.Corrupt ?? false;
    }

    public SharedBottleneck(long bitsPerSecond, TimeSpan rtt, ulong seed = 1)
    {
        int bdp = (int)(bitsPerSecond / 8 * rtt.TotalSeconds);
        var forward = new PathConfig { OneWayDelay = rtt / 2, BitsPerSecond = bitsPerSecond, QueueLimitBytes = bdp };
        var reverse = new PathConfig { OneWayDelay = rtt / 2 };
        var tcp = new TcpSettings { SendBufferSize = 4 * bdp, ReceiveBufferSize = 4 * bdp };
        _net = new SimulatedNetwork(forward, reverse, seed, tcp, tcp);
        _listener = _net.B.Listen(Ipv4Address.Any, 6000, 16);
        _net.AddApp(Step);
    }

    public IReadOnlyList<Flow> Flows => _flows;

    public Flow Add(Func<ICongestionControl> controller, TimeSpan start)
    {
        var f = new Flow { Controller = controller, Start = start };
        _flows.Add(f);
        return f;
    }

    private readonly Instant _origin = Instant.FromMilliseconds(1);

    private void Step(SimulatedNetwork n)
    {
        foreach (var f in _flows)
        {
            if (f.Client is null && n.Now - _origin >= f.Start)
            {
                var settings = n.A.TcpSettings with { CongestionControlFactory = f.Controller };
                f.Client = n.A.Connect(SimulatedNetwork.AddressB, 6000, n.Now, settings);
                f.Sender = new BulkSender(n.A, f.Client, long.MaxValue, seed: _flows.IndexOf(f), closeWhenDone: false);
            }
            f.Sender?.Step(n.Now);
        }
        while (_listener.TryAccept(out var accepted))
        {
            var flow = _flows.First(f => f.Client is not null && f.Client.Tuple.LocalPort == accepted.Tuple.RemotePort);
            flow.Receiver = new PatternReceiver(n.B, accepted, seed: _flows.IndexOf(flow));
        }
        foreach (var f in _flows) f.Receiver?.Step();
    }

    /// <summary>Runs to <paramref name="end"/> and returns each flow's bytes received after <paramref name="measureFrom"/>.</summary>
    public long[] Run(TimeSpan measureFrom, TimeSpan end)
    {
        _net.RunFor(measureFrom);
        var before = _flows.Select(f => f.Received).ToArray();
        _net.RunFor(end - measureFrom);
        return _flows.Select((f, i) => f.Received - before[i]).ToArray();
    }

    /// <summary>Jain's fairness index: (sum x)^2 / (n sum x^2); 1 is perfectly fair.</summary>
    public static double JainIndex(IReadOnlyList<long> x)
    {
        double sum = x.Sum(v => (double)v), squares = x.Sum(v => (double)v * v);
        return squares == 0 ? 0 : sum * sum / (x.Count * squares);
    }
}
