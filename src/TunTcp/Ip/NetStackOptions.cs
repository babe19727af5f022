using System.Net;
using TunTcp.Tcp;

namespace TunTcp.Ip;

/// <summary>Settings of one stack instance.</summary>
public sealed record NetStackOptions
{
    /// <summary>
    /// The stack's own IPv4 address (the tutorial's 192.168.0.2), or null for a stack without
    /// IPv4. At least one of <see cref="Address"/> and <see cref="Address6"/> is needed.
    /// </summary>
    public IPAddress? Address { get; init; }

    /// <summary>The stack's own IPv6 address (the tool's fd00:7475:6e::2), or null for a stack without IPv6.</summary>
    public IPAddress? Address6 { get; init; }

    /// <summary>Largest IP packet the stack sends; normally the link's MTU (at least 1280 with IPv6, RFC 8200 5).</summary>
    public int Mtu { get; init; } = 1500;

    /// <summary>TTL (IPv4) and hop limit (IPv6) of packets the stack originates (Linux default 64).</summary>
    public byte TimeToLive { get; init; } = 64;

    /// <summary>
    /// Bytes that datagrams in reassembly may hold in all, like Linux's ipfrag_high_thresh (4 MiB):
    /// past it the oldest datagram is dropped first.
    /// </summary>
    public int FragmentMemoryLimit { get; init; } = 4 << 20;

    /// <summary>How long an IPv4 datagram may wait for its missing fragments (RFC 791 suggests 15 s; Linux ipfrag_time 30 s).</summary>
    public TimeSpan FragmentTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an IPv6 datagram may wait for its missing fragments (RFC 8200 4.5: 60 s).</summary>
    public TimeSpan FragmentTimeout6 { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// ICMP error messages per second the stack may send (token bucket), like Linux's
    /// icmp_ratelimit; echo replies and TCP resets are not limited.
    /// </summary>
    public int IcmpErrorsPerSecond { get; init; } = 1000;

    /// <summary>Burst allowance of the ICMP error token bucket (Linux: icmp_msgs_burst = 50).</summary>
    public int IcmpErrorBurst { get; init; } = 50;

    /// <summary>Defaults for every TCP connection of the stack (per-connection overrides use <c>with</c>).</summary>
    public TcpSettings Tcp { get; init; } = new();

    /// <summary>
    /// The most bytes all connections' send and receive buffers may hold together, like Linux's
    /// <c>tcp_mem</c> maximum (null: an eighth of the memory the process may use, at least 64 MiB).
    /// From 3/4 of it the buffers stop growing and the windows offered shrink to what is already
    /// allocated; at the limit out-of-order data is pruned and idle buffers are cut back. Every
    /// connection keeps its first 16 KiB per direction regardless, so each can make progress.
    /// </summary>
    public long? TcpMemoryLimit { get; init; }

    internal static long DefaultTcpMemoryLimit() => Math.Max(64L << 20, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 8);

    /// <summary>Randomness for ISNs, ports and timestamp offsets; seed it for reproducible runs.</summary>
    internal IRandomSource Random { get; init; } = SystemRandomSource.Instance;

    /// <summary>RFC 5961 7: challenge ACKs per second across the stack (Linux: 1000).</summary>
    public int ChallengeAcksPerSecond { get; init; } = 1000;

    /// <summary>
    /// How long the stack thread keeps polling the link after its last activity before it goes
    /// to sleep: trades a little CPU for request/response latency (a sleeping thread takes tens
    /// of microseconds to wake on a VM). Zero sleeps at once.
    /// </summary>
    public TimeSpan SpinBeforeSleep { get; init; } = TimeSpan.FromMicroseconds(200);

    /// <summary>How many packets the stack thread reads per batch before running timers and writes.</summary>
    public int ReceiveBatch { get; init; } = 64;

    /// <summary>
    /// Catch-all mode: when set, the stack takes packets to any destination, not only its own
    /// addresses, and asks this handler about every flow nothing of its own answers (see
    /// <see cref="IFlowHandler"/>). Null (the default): packets to other addresses are dropped.
    /// </summary>
    internal IFlowHandler? FlowHandler { get; init; }

    /// <summary>TCP SYNs that may wait for the flow handler's decision at once; further new flows are dropped (their SYNs are retried by the peer).</summary>
    public int PendingFlowLimit { get; init; } = 4096;

    /// <summary>How long a SYN waits for the flow handler's decision before it is dropped (the peer's connect then times out or retries).</summary>
    public TimeSpan FlowDecisionTimeout { get; init; } = TimeSpan.FromSeconds(75);
}
