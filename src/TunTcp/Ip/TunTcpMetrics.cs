using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using TunTcp.Tcp;

namespace TunTcp.Ip;

/// <summary>
/// The <c>TunTcp</c> meter (System.Diagnostics.Metrics), as <c>System.Net.Sockets</c> and Kestrel
/// publish theirs: <c>dotnet-counters monitor --counters TunTcp</c> shows it, and an OpenTelemetry
/// <c>MeterProvider</c> with <c>AddMeter("TunTcp")</c> exports it. Every running
/// <see cref="NetStack"/> reports, tagged <c>tuntcp.stack</c> (its number in the process) so that
/// several stacks in one process stay apart.
/// </summary>
/// <remarks>
/// Counters are observable: they read the counters the stack keeps anyway, only when a listener
/// collects, so the hot path pays nothing. Values that need the connection table (connections by
/// state, half-open and accept-queue depth) are read on the stack thread, waiting at most
/// 100 ms. The two histograms are recorded when a connection is forgotten, on the stack thread,
/// and cost a flag check when nobody listens. Names follow the OpenTelemetry conventions' style
/// (dotted, units in UCUM: <c>{connection}</c>, <c>{segment}</c>, <c>By</c>, <c>s</c>); there is
/// no semantic convention for a TCP stack's own counters.
/// </remarks>
public static class TunTcpMetrics
{
    public const string MeterName = "TunTcp";

    private static readonly ConcurrentDictionary<NetStack, byte> Stacks = new();
    private static int s_nextId;

    internal static readonly Meter Meter = new(MeterName, typeof(TunTcpMetrics).Assembly.GetName().Version?.ToString());

    /// <summary>How long connections lived, from creation to being forgotten (after TIME-WAIT or a reset).</summary>
    internal static readonly Histogram<double> ConnectionDuration = Meter.CreateHistogram<double>(
        "tuntcp.tcp.connection.duration", "s", "Lifetime of TCP connections, creation to close",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 3600] });

    /// <summary>The smoothed RTT of each connection when it closed (only connections that measured one).</summary>
    internal static readonly Histogram<double> ConnectionRtt = Meter.CreateHistogram<double>(
        "tuntcp.tcp.rtt", "s", "Smoothed round-trip time of TCP connections at close",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1] });

    static TunTcpMetrics()
    {
        Counter("tuntcp.tcp.connections.opened", "{connection}", "TCP connections opened (both directions)", s => s.Statistics.TcpConnectionsOpened);
        Counter("tuntcp.tcp.connections.closed", "{connection}", "TCP connections forgotten after closing", s => s.Statistics.TcpConnectionsClosed);
        Meter.CreateObservableUpDownCounter("tuntcp.tcp.connections.active", ActiveByState, "{connection}", "TCP connections by state (tcp.state)");
        Counter("tuntcp.tcp.segments", "{segment}", "TCP segments (direction)",
            (s => s.Statistics.TcpSegmentsReceived, "direction", "receive"), (s => s.Statistics.TcpSegmentsSent, "direction", "transmit"));
        Counter("tuntcp.tcp.retransmissions", "{segment}", "TCP retransmissions and their causes (kind: total, rto, fast, tlp, spurious_undone)",
            (s => s.Core.TcpEnvironment.Statistics.SegmentsRetransmitted, "kind", "total"),
            (s => s.Core.TcpEnvironment.Statistics.RetransmissionTimeouts, "kind", "rto"),
            (s => s.Core.TcpEnvironment.Statistics.FastRetransmits, "kind", "fast"),
            (s => s.Core.TcpEnvironment.Statistics.TailLossProbes, "kind", "tlp"),
            (s => s.Core.TcpEnvironment.Statistics.SpuriousRetransmissionsUndone, "kind", "spurious_undone"));
        Counter("tuntcp.tcp.resets", "{segment}", "TCP resets (direction)",
            (s => s.Statistics.TcpResetsSent + s.Core.TcpEnvironment.Statistics.ResetsSent, "direction", "transmit"),
            (s => s.Core.TcpEnvironment.Statistics.ResetsReceived, "direction", "receive"));
        Counter("tuntcp.tcp.syn_cookies", "{segment}", "SYN cookies (result: sent, validated, failed)",
            (s => s.Core.TcpEnvironment.Statistics.SynCookiesSent, "result", "sent"),
            (s => s.Core.TcpEnvironment.Statistics.SynCookiesValidated, "result", "validated"),
            (s => s.Core.TcpEnvironment.Statistics.SynCookiesFailed, "result", "failed"));
        Counter("tuntcp.ip.drops", "{packet}", "Packets dropped by the IP layer and TCP (cause)",
            (s => s.Statistics.MalformedDropped, "cause", "malformed"),
            (s => s.Statistics.BadChecksumDropped, "cause", "bad_checksum"),
            (s => s.Statistics.NotForUsDropped, "cause", "not_for_us"),
            (s => s.Statistics.UnknownProtocolDropped, "cause", "unknown_protocol"),
            (s => s.Statistics.FragmentsDropped, "cause", "fragment"),
            (s => s.Core.TcpEnvironment.Statistics.SynBacklogDrops, "cause", "syn_backlog_full"),
            (s => s.Core.TcpEnvironment.Statistics.AcceptQueueDrops, "cause", "accept_queue_full"),
            (s => s.Core.TcpEnvironment.Statistics.PawsDrops, "cause", "paws"),
            (s => s.Core.TcpEnvironment.Statistics.OutOfOrderDrops, "cause", "out_of_order"));
        Counter("tuntcp.udp.datagrams", "{datagram}", "UDP datagrams (direction)",
            (s => s.Statistics.UdpDatagramsReceived, "direction", "receive"), (s => s.Statistics.UdpDatagramsSent, "direction", "transmit"));
        Counter("tuntcp.link.packets", "{packet}", "Packets through the link (direction)",
            (s => s.LinkStatistics.PacketsReceived, "direction", "receive"), (s => s.LinkStatistics.PacketsSent, "direction", "transmit"));
        Counter("tuntcp.link.bytes", "By", "Bytes through the link (direction)",
            (s => s.LinkStatistics.BytesReceived, "direction", "receive"), (s => s.LinkStatistics.BytesSent, "direction", "transmit"));
        Counter("tuntcp.link.drops", "{packet}", "Packets the link lost (direction)",
            (s => s.LinkStatistics.ReceiveDrops, "direction", "receive"), (s => s.LinkStatistics.SendDrops, "direction", "transmit"));
        Meter.CreateObservableUpDownCounter("tuntcp.tcp.listen.queue", ListenQueues, "{connection}", "Connections waiting in listeners (queue: half_open, accept)");
        Meter.CreateObservableUpDownCounter("tuntcp.flows.pending", () => Each(s => (long)s.Core.PendingFlowCount), "{flow}", "Catch-all mode: TCP flows waiting for the flow handler's decision");
    }

    /// <summary>A stack starts reporting (called when its thread starts).</summary>
    internal static int Register(NetStack stack)
    {
        Stacks[stack] = 0;
        return Interlocked.Increment(ref s_nextId);
    }

    internal static void Unregister(NetStack stack) => Stacks.TryRemove(stack, out _);

    /// <summary>The histograms, when a connection is forgotten (stack thread).</summary>
    internal static void RecordClosed(TcpConnection connection, Instant now, int stackId)
    {
        if (ConnectionDuration.Enabled)
            ConnectionDuration.Record((now - connection.CreatedAt).TotalSeconds, new KeyValuePair<string, object?>("tuntcp.stack", stackId));
        if (ConnectionRtt.Enabled && connection.SmoothedRtt is { } rtt)
            ConnectionRtt.Record(rtt.TotalSeconds, new KeyValuePair<string, object?>("tuntcp.stack", stackId));
    }

    /// <summary>An observable counter: one series per stack and tag value, each read from the stack's own counters.</summary>
    private static void Counter(string name, string unit, string description, params (Func<NetStack, long> Read, string Key, string Value)[] series)
    {
        Meter.CreateObservableCounter(name, () =>
        {
            var measurements = new List<Measurement<long>>();
            foreach (var stack in Stacks.Keys)
                foreach (var (read, key, value) in series)
                    measurements.Add(new Measurement<long>(read(stack), Tag(stack), new(key, value)));
            return measurements;
        }, unit, description);
    }

    private static void Counter(string name, string unit, string description, Func<NetStack, long> read) =>
        Meter.CreateObservableCounter(name, () => Each(read), unit, description);

    private static KeyValuePair<string, object?> Tag(NetStack stack) => new("tuntcp.stack", stack.MetricsId);

    private static IEnumerable<Measurement<long>> Each(Func<NetStack, long> read) =>
        Stacks.Keys.Select(s => new Measurement<long>(read(s), Tag(s))).ToList();

    private static IEnumerable<Measurement<long>> ActiveByState()
    {
        var measurements = new List<Measurement<long>>();
        foreach (var stack in Stacks.Keys)
        {
            if (!TryOnStackThread(stack, core => core.CountConnectionsByState(), out var counts)) continue;
            foreach (var state in Enum.GetValues<TcpConnectionState>())
                if (state != TcpConnectionState.Listen)
                    measurements.Add(new Measurement<long>(counts!.GetValueOrDefault(state), Tag(stack), new("tcp.state", state.ToString())));
        }
        return measurements;
    }

    private static IEnumerable<Measurement<long>> ListenQueues()
    {
        var measurements = new List<Measurement<long>>();
        foreach (var stack in Stacks.Keys)
        {
            if (!TryOnStackThread(stack, core => core.ListenQueueDepths(), out var depths)) continue;
            measurements.Add(new Measurement<long>(depths.HalfOpen, Tag(stack), new("queue", "half_open")));
            measurements.Add(new Measurement<long>(depths.Accept, Tag(stack), new("queue", "accept")));
        }
        return measurements;
    }

    /// <summary>Reads something only the stack thread may read, waiting at most 100 ms (a busy or stopped stack is skipped).</summary>
    private static bool TryOnStackThread<T>(NetStack stack, Func<NetStackCore, T> read, out T result)
    {
        result = default!;
        try
        {
            var task = stack.Invoke((core, _) => read(core));
            if (!task.Wait(TimeSpan.FromMilliseconds(100))) return false;
            result = task.Result;
            return true;
        }
        catch (AggregateException)
        {
            return false;
        }
    }
}
