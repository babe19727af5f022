using System.Net;
using TunTcp.Wire;

namespace TunTcp.Forwarding;

/// <summary>Settings of a <see cref="FlowForwarder"/>.</summary>
public sealed class ForwarderOptions
{
    /// <summary>Where relayed flows go.</summary>
    public IUpstream Upstream { get; init; } = DirectUpstream.Instance;

    /// <summary>Relayed TCP connections at once; a SYN beyond it is refused (RST) and logged.</summary>
    public int MaxConnections { get; init; } = 10_000;

    /// <summary>How long an upstream connect may take; past it the application's SYN is dropped, so its own connect times out as it would towards a silent host.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>A relayed TCP connection with no byte in either direction for this long is reset both ways.</summary>
    public TimeSpan TcpIdleTimeout { get; init; } = TimeSpan.FromHours(2);

    /// <summary>UDP flows (application address and port) in the NAT table at once; datagrams of further new flows are dropped.</summary>
    public int MaxUdpFlows { get; init; } = 4096;

    /// <summary>RFC 4787 REQ-5: a UDP mapping lives at least 2 minutes after its last datagram.</summary>
    public TimeSpan UdpIdleTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>RFC 4787 REQ-5 allows shorter timeouts for DNS (port 53): 30 s.</summary>
    public TimeSpan DnsIdleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an echo (ping) mapping lives after its last request or reply.</summary>
    public TimeSpan EchoIdleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Datagrams that may wait for one UDP flow's upstream; more are dropped.</summary>
    public int UdpQueueLimit { get; init; } = 256;

    /// <summary>
    /// The resolver the application side is given (normally the stack's own addresses): DNS
    /// queries to it, UDP or TCP port 53, go to <see cref="DnsServers"/>. Empty: no DNS relay.
    /// </summary>
    public IReadOnlyList<IPAddress> DnsAddresses { get; init; } = [];

    /// <summary>The real resolvers DNS queries are relayed to (the first one of the query's family, else the first).</summary>
    public IReadOnlyList<IPEndPoint> DnsServers { get; init; } = [];

    /// <summary>Bytes each direction of a TCP relay copies at a time.</summary>
    public int RelayBufferSize { get; init; } = 128 * 1024;

    /// <summary>How often idle TCP relays, UDP flows and echo mappings are looked for.</summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromSeconds(1);

    public TimeProvider Time { get; init; } = TimeProvider.System;
}
