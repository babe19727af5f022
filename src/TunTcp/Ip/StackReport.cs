using System.Text.Json;
using System.Text.Json.Serialization;
using TunTcp.Tcp;

namespace TunTcp.Ip;

/// <summary>One connection in a <see cref="StackReport"/>, the fields <c>ss -tin</c> shows.</summary>
public sealed record ConnectionReport(
    string State, string Local, string Remote, double SrttMs, double RttVarMs, double RtoMs,
    int Cwnd, int Ssthresh, int InFlight, int Mss, int PeerWindow, int AdvertisedWindow,
    long BytesSent, long BytesReceived, long SegmentsSent, long SegmentsReceived,
    long Retransmissions, long Timeouts, long FastRetransmits, string CongestionControl,
    bool WindowScaling, bool Timestamps, bool Sack, bool Ecn, bool FromSynCookie,
    double AgeSeconds, double? NextTimerMs,
    double MinRttMs = 0, long DeliveryRateBitsPerSecond = 0, bool ReorderingSeen = false, long DsacksReceived = 0);

/// <summary>
/// A stack's live state for <c>tuntcp stats</c> and the HTTP app's <c>/stats.json</c>: every
/// connection with its RTT estimator, congestion state and counters, and the stack's totals.
/// Taken on the stack thread (<see cref="CaptureAsync"/>), so it is consistent.
/// </summary>
public sealed record StackReport(
    string Addresses, int Mtu, IReadOnlyList<ConnectionReport> Connections, IReadOnlyDictionary<string, long> Totals)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public static Task<StackReport> CaptureAsync(NetStack stack)
    {
        var link = stack.LinkStatistics;
        return stack.Invoke((core, now) => Capture(core, now, link));
    }

    /// <summary>Stack thread only.</summary>
    internal static StackReport Capture(NetStackCore core, Instant now, Links.LinkStatistics? link = null)
    {
        var connections = new List<ConnectionReport>();
        foreach (var c in core.Connections)
        {
            var s = c.GetStatistics();
            var deadline = c.NextDeadline;
            connections.Add(new ConnectionReport(
                s.State.ToString(), c.Tuple.LocalAddress.WithPort(c.Tuple.LocalPort), c.Tuple.RemoteAddress.WithPort(c.Tuple.RemotePort),
                s.SmoothedRtt.TotalMilliseconds, s.RttVariation.TotalMilliseconds, s.Rto.TotalMilliseconds,
                s.CongestionWindow, s.SlowStartThreshold, s.BytesInFlight, s.Mss, s.PeerWindow, s.AdvertisedWindow,
                s.BytesSent, s.BytesReceived, s.SegmentsSent, s.SegmentsReceived,
                s.Retransmissions, s.RetransmissionTimeouts, s.FastRetransmits, s.CongestionControl,
                s.WindowScaling, s.Timestamps, s.Sack, c.EcnEnabled, c.FromSynCookie,
                (now - c.CreatedAt).TotalSeconds, deadline.IsNever ? null : Math.Max(0, (deadline - now).TotalMilliseconds),
                s.MinRtt.TotalMilliseconds, s.DeliveryRateBitsPerSecond, s.ReorderingSeen, s.DsacksReceived));
        }
        var st = core.Statistics;
        var tcp = core.TcpEnvironment.Statistics;
        var (halfOpen, accept) = core.ListenQueueDepths();
        var totals = new Dictionary<string, long>
        {
            ["connections"] = core.ConnectionCount,
            ["listeners"] = core.ListenerCount,
            ["half_open"] = halfOpen,
            ["accept_queue"] = accept,
            ["connections_opened"] = st.TcpConnectionsOpened,
            ["connections_closed"] = st.TcpConnectionsClosed,
            ["segments_in"] = st.TcpSegmentsReceived,
            ["segments_out"] = st.TcpSegmentsSent,
            ["retransmissions"] = tcp.SegmentsRetransmitted,
            ["retransmission_timeouts"] = tcp.RetransmissionTimeouts,
            ["fast_retransmits"] = tcp.FastRetransmits,
            ["tail_loss_probes"] = tcp.TailLossProbes,
            ["resets_sent"] = st.TcpResetsSent + tcp.ResetsSent,
            ["resets_received"] = tcp.ResetsReceived,
            ["syn_cookies_sent"] = tcp.SynCookiesSent,
            ["syn_cookies_validated"] = tcp.SynCookiesValidated,
            ["ip_packets_in"] = st.IpPacketsReceived,
            ["ip_packets_out"] = st.IpPacketsSent,
            ["dropped_malformed"] = st.MalformedDropped,
            ["dropped_bad_checksum"] = st.BadChecksumDropped,
            ["dropped_not_for_us"] = st.NotForUsDropped,
            ["udp_in"] = st.UdpDatagramsReceived,
            ["udp_out"] = st.UdpDatagramsSent,
            ["flows_pending"] = core.PendingFlowCount,
            ["tcp_memory"] = core.TcpEnvironment.Memory?.Allocated ?? 0,
            ["tcp_memory_pressure"] = core.TcpEnvironment.Memory?.PressureEntered ?? 0,
            ["tcp_memory_drops"] = tcp.MemoryDrops,
            ["out_of_order_pruned_bytes"] = tcp.OutOfOrderPrunedBytes,
            ["flows_requested"] = st.FlowsRequested,
        };
        if (link is not null)
        {
            totals["link_bytes_in"] = link.BytesReceived;
            totals["link_bytes_out"] = link.BytesSent;
            totals["link_drops"] = link.ReceiveDrops + link.SendDrops;
        }
        return new StackReport(core.DescribeAddresses(), core.Mtu, connections, totals);
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static StackReport? FromJson(string json) => JsonSerializer.Deserialize<StackReport>(json, Json);

    /// <summary>The table <c>tuntcp stats</c> prints: one line per connection, like <c>ss -tin</c>, then the totals.</summary>
    public string ToText()
    {
        var sb = new System.Text.StringBuilder();
        sb.Append($"stack {Addresses}, MTU {Mtu}, {Connections.Count} connection(s)\n");
        sb.Append($"{"State",-12} {"Local",-28} {"Remote",-28}\n");
        foreach (var c in Connections)
        {
            sb.Append($"{c.State,-12} {c.Local,-28} {c.Remote,-28}\n");
            sb.Append($"    {c.CongestionControl} rtt:{c.SrttMs:0.###}/{c.RttVarMs:0.###} minrtt:{c.MinRttMs:0.###} rto:{c.RtoMs:0} mss:{c.Mss} cwnd:{c.Cwnd} ssthresh:{c.Ssthresh} ");
            sb.Append($"inflight:{c.InFlight} wnd:{c.PeerWindow} rcv_wnd:{c.AdvertisedWindow} bytes_sent:{c.BytesSent} bytes_received:{c.BytesReceived} ");
            sb.Append($"segs_out:{c.SegmentsSent} segs_in:{c.SegmentsReceived} retrans:{c.Retransmissions} rto_count:{c.Timeouts} fast:{c.FastRetransmits}");
            if (c.WindowScaling) sb.Append(" wscale");
            if (c.Timestamps) sb.Append(" ts");
            if (c.Sack) sb.Append(" sack");
            if (c.Ecn) sb.Append(" ecn");
            if (c.FromSynCookie) sb.Append(" syncookie");
            if (c.DeliveryRateBitsPerSecond > 0) sb.Append($" delivery_rate:{FormatRate(c.DeliveryRateBitsPerSecond)}");
            if (c.ReorderingSeen) sb.Append(" reordering");
            if (c.DsacksReceived > 0) sb.Append($" dsacks:{c.DsacksReceived}");
            sb.Append($" age:{c.AgeSeconds:0.#}s");
            if (c.NextTimerMs is double t) sb.Append($" timer:{t:0}ms");
            sb.Append('\n');
        }
        sb.Append("totals:");
        foreach (var (key, value) in Totals) sb.Append($" {key}={value}");
        return sb.Append('\n').ToString();
    }

    private static string FormatRate(long bitsPerSecond) => bitsPerSecond switch
    {
        >= 1_000_000_000 => $"{bitsPerSecond / 1e9:0.##}Gbps",
        >= 1_000_000 => $"{bitsPerSecond / 1e6:0.##}Mbps",
        >= 1_000 => $"{bitsPerSecond / 1e3:0.##}Kbps",
        _ => $"{bitsPerSecond}bps",
    };
}
