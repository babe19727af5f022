using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Simulation;

/// <summary>
/// Two TunTcp stack cores joined by a simulated path, on virtual time. Nothing reads a clock,
/// nothing sleeps, nothing depends on threads: the same seed gives the same packet trace on
/// any machine. Applications are callbacks run between events on the same (test) thread.
/// </summary>
internal sealed class SimulatedNetwork
{
    public static readonly Ipv4Address AddressA = Ipv4Address.Parse("10.0.0.1");
    public static readonly Ipv4Address AddressB = Ipv4Address.Parse("10.0.0.2");

    private readonly PriorityQueue<Delivery, (long At, long Order)> _events = new();
    private readonly List<(Instant At, byte[] Packet)> _arrivals = new();
    private readonly List<Action<SimulatedNetwork>> _apps = new();
    private long _order;
    private PcapWriter? _pcap;

    private sealed record Delivery(NetStackCore Target, byte[] Packet, SimulatedPath? Path, long OfferIndex);

    /// <summary>The router on the path that sends ICMP errors when the path narrows.</summary>
    public static readonly Ipv4Address Router = Ipv4Address.Parse("10.0.0.254");

    public SimulatedNetwork(PathConfig aToB, PathConfig bToA, ulong seed = 1, TcpSettings? tcpA = null, TcpSettings? tcpB = null, int mtu = 1500)
    {
        PathAToB = new SimulatedPath(aToB, seed * 7919 + 1);
        PathBToA = new SimulatedPath(bToA, seed * 7919 + 2);
        A = new NetStackCore(new NetStackOptions { Address = AddressA.ToIPAddress(), Mtu = mtu, Tcp = tcpA ?? new TcpSettings(), Random = new SeededRandomSource(seed * 31 + 1) },
            new PathOutput(this, PathAToB, () => B!, () => A!));
        B = new NetStackCore(new NetStackOptions { Address = AddressB.ToIPAddress(), Mtu = mtu, Tcp = tcpB ?? new TcpSettings(), Random = new SeededRandomSource(seed * 31 + 2) },
            new PathOutput(this, PathBToA, () => A, () => B!));
    }

    public NetStackCore A { get; }
    public NetStackCore B { get; }
    internal SimulatedPath PathAToB { get; }
    internal SimulatedPath PathBToA { get; }
    public PathStats StatsAToB => PathAToB.Stats;
    public PathStats StatsBToA => PathBToA.Stats;
    public Instant Now { get; private set; } = Instant.FromMilliseconds(1);
    public long PacketsCarried { get; private set; }

    /// <summary>Writes every packet offered to either path, with virtual timestamps.</summary>
    public void CaptureTo(Stream stream) => _pcap = new PcapWriter(stream, ownsStream: false);

    /// <summary>Registers an application step, run after every event.</summary>
    public void AddApp(Action<SimulatedNetwork> step) => _apps.Add(step);

    /// <summary>Runs until <paramref name="done"/> holds or virtual time passes <paramref name="limit"/>; returns whether done.</summary>
    public bool RunUntil(Func<bool> done, TimeSpan limit)
    {
        var end = Now + limit;
        RunApps();
        while (!done())
        {
            var next = NextEventTime();
            if (next.IsNever || next > end) { Now = end; return done(); }
            if (next > Now) Now = next;
            Step();
        }
        return true;
    }

    /// <summary>Advances virtual time by <paramref name="duration"/>, processing everything on the way.</summary>
    public void RunFor(TimeSpan duration) => RunUntil(() => false, duration);

    private Instant NextEventTime()
    {
        var t = Instant.Min(A.NextDeadline, B.NextDeadline);
        if (_events.TryPeek(out _, out var key)) t = Instant.Min(t, new Instant(key.At));
        return t;
    }

    private void Step()
    {
        while (_events.TryPeek(out var d, out var key) && key.At <= Now.Microseconds)
        {
            _events.Dequeue();
            PacketsCarried++;
            if (d.Path is null) { } // an ICMP error from the router: no path statistics
            else if (d.OfferIndex < d.Path.HighestDelivered) d.Path.Stats.ArrivedLate++;
            else d.Path.HighestDelivered = d.OfferIndex;
            d.Target.Receive(d.Packet, Now);
        }
        A.Poll(Now);
        B.Poll(Now);
        RunApps();
        A.Poll(Now);
        B.Poll(Now);
    }

    private void RunApps()
    {
        foreach (var app in _apps) app(this);
    }

    private void Offer(SimulatedPath path, NetStackCore target, NetStackCore source, ReadOnlySpan<byte> packet)
    {
        var copy = packet.ToArray();
        _pcap?.Write(copy, Now.Microseconds);
        var config = path.Config;
        if (config.NarrowTo > 0 && Now >= Instant.Zero + config.NarrowFrom && copy.Length > config.NarrowTo)
        {
            path.Stats.TooBig++;
            if (!config.NarrowSendsIcmp || copy[0] >> 4 != 4) return;
            // RFC 1191 4: fragmentation needed, with the next-hop MTU, back to the sender (half-way: half the one-way delay).
            var message = new byte[Icmpv4Writer.MaxInvokingBytes + Icmpv4Message.HeaderLength];
            int n = Icmpv4Writer.WriteError(message, Icmpv4Type.DestinationUnreachable, (byte)Icmpv4UnreachableCode.FragmentationNeeded, (uint)config.NarrowTo, copy);
            var icmp = new byte[Ipv4Header.Length + n];
            new Ipv4Header(Router, Ipv4Address.Read(copy.AsSpan(12)), IpProtocol.Icmp, n).Write(icmp);
            message.AsSpan(0, n).CopyTo(icmp.AsSpan(Ipv4Header.Length));
            _events.Enqueue(new Delivery(source, icmp, null, 0), ((Now + config.OneWayDelay / 2).Microseconds, _order++));
            return;
        }
        _arrivals.Clear();
        long index = path.Stats.Offered;
        path.Offer(copy, Now, _arrivals);
        foreach (var (at, p) in _arrivals) _events.Enqueue(new Delivery(target, p, path, index), (at.Microseconds, _order++));
    }

    private sealed class PathOutput(SimulatedNetwork network, SimulatedPath path, Func<NetStackCore> target, Func<NetStackCore> source) : IPacketOutput
    {
        public void Send(ReadOnlySpan<byte> packet) => network.Offer(path, target(), source(), packet);
    }
}
