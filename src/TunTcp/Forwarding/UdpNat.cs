using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using TunTcp.Ip;
using TunTcp.Wire;

namespace TunTcp.Forwarding;

/// <summary>
/// UDP through the forwarder, as a NAT does it: one upstream socket per application-side address
/// and port, used for every destination (endpoint-independent mapping, RFC 4787 REQ-1) and taking
/// answers from any remote; a mapping lives until it has been idle for
/// <see cref="ForwarderOptions.UdpIdleTimeout"/> (REQ-5: at least 2 minutes), or
/// <see cref="ForwarderOptions.DnsIdleTimeout"/> if it only ever carried DNS. The table holds at
/// most <see cref="ForwarderOptions.MaxUdpFlows"/> mappings. The stack thread only copies a
/// datagram into a pooled buffer and queues it; the flow's own task sends it.
/// </summary>
internal sealed class UdpNat : IDisposable
{
    private readonly ForwarderOptions _options;
    private readonly ILogger _log;
    private readonly CancellationToken _stopping;
    private readonly ConcurrentDictionary<(IpAddress Address, ushort Port), UdpFlow> _flows = new();
    private NetStack? _stack;
    private long _fullWarnedAt = long.MinValue;
    internal long datagramsUp, datagramsDown, queueDrops, tableFull, flowsOpened, flowsExpired, icmpErrorsRelayed;

    internal UdpNat(ForwarderOptions options, ILogger log, CancellationToken stopping)
    {
        _options = options;
        _log = log;
        _stopping = stopping;
        Dns = new DnsRelay([.. options.DnsAddresses.Select(IpAddress.FromIPAddress)], options.DnsServers);
    }

    /// <summary>Where DNS queries to the gateway go.</summary>
    public DnsRelay Dns { get; }

    /// <summary>Mappings now.</summary>
    public int FlowCount => _flows.Count;

    public long DatagramsUp => Volatile.Read(ref datagramsUp);
    public long DatagramsDown => Volatile.Read(ref datagramsDown);
    /// <summary>Datagrams dropped because their flow's queue was full, or the table was.</summary>
    public long QueueDrops => Volatile.Read(ref queueDrops);
    public long TableFull => Volatile.Read(ref tableFull);
    public long FlowsOpened => Volatile.Read(ref flowsOpened);
    public long FlowsExpired => Volatile.Read(ref flowsExpired);
    /// <summary>ICMP errors the upstream sockets received about relayed datagrams, passed on to the application.</summary>
    public long IcmpErrorsRelayed => Volatile.Read(ref icmpErrorsRelayed);

    internal void Attach(NetStack stack) => _stack = stack;

    /// <summary>Stack thread: a datagram from the application side.</summary>
    internal FlowVerdict OnDatagram(in UdpFlowDatagram d)
    {
        var stack = _stack!;
        bool dns = false;
        if (stack.Core.IsLocalAddress(d.Destination))
        {
            // The gateway itself: only its DNS port is served.
            if (d.DestinationPort != 53 || Dns.ServerFor(d.Destination) is null) return FlowVerdict.Refuse;
            dns = true;
        }
        var key = (d.Source, d.SourcePort);
        if (!_flows.TryGetValue(key, out var flow))
        {
            if (_flows.Count >= _options.MaxUdpFlows)
            {
                Interlocked.Increment(ref tableFull);
                long now = Environment.TickCount64;
                if (now - _fullWarnedAt > 10_000)
                {
                    _fullWarnedAt = now;
                    _log.LogWarning("UDP table full: {Limit} mappings; datagrams of new flows are dropped ({Dropped} so far)", _options.MaxUdpFlows, TableFull);
                }
                return FlowVerdict.Drop;
            }
            flow = new UdpFlow(d.Source, d.SourcePort, d.DestinationPort == 53, _options.UdpQueueLimit, _options.Time.GetTimestamp(), CancellationTokenSource.CreateLinkedTokenSource(_stopping));
            _flows[key] = flow;
            Interlocked.Increment(ref flowsOpened);
            _ = RunAsync(stack, flow);
        }
        if (d.DestinationPort != 53) flow.OnlyDns = false;
        if (dns) flow.DnsGateway = d.Destination;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, d.Payload.Length));
        d.Payload.CopyTo(buffer);
        if (!flow.Queue.Writer.TryWrite(new Outgoing(d.Destination, d.DestinationPort, dns, buffer, d.Payload.Length)))
        {
            ArrayPool<byte>.Shared.Return(buffer);
            Interlocked.Increment(ref queueDrops);
            return FlowVerdict.Accept;
        }
        flow.Touch(_options.Time.GetTimestamp());
        Interlocked.Increment(ref datagramsUp);
        return FlowVerdict.Accept;
    }

    private async Task RunAsync(NetStack stack, UdpFlow flow)
    {
        await Task.Yield(); // off the stack thread
        var family = flow.AppAddress.IsV4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
        var token = flow.Token;
        try
        {
            flow.Upstream = await _options.Upstream.OpenUdpAsync(family, token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _log.LogWarning("udp {Flow}: no upstream ({Error}); its datagrams are dropped", flow, e.Message);
            Remove(flow);
            return;
        }
        if (flow.Upstream is IUdpUpstreamErrors errors)
            errors.ErrorReceived = (destination, error, payload) => RelayError(stack, flow, destination, error, payload);
        var receiving = ReceiveAsync(stack, flow, token);
        try
        {
            await foreach (var item in flow.Queue.Reader.ReadAllAsync(token).ConfigureAwait(false))
            {
                try
                {
                    var to = item.Dns ? Dns.ServerFor(item.Destination, family) : new IPEndPoint(item.Destination.ToIPAddress(), item.Port);
                    if (to is not null) await flow.Upstream.SendToAsync(item.Buffer.AsMemory(0, item.Length), to, token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or ArgumentException or IOException)
                {
                    _log.LogDebug("udp {Flow}: send to {Destination} failed: {Error}", flow, item.Destination.WithPort(item.Port), e.Message);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(item.Buffer);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        await receiving.ConfigureAwait(false);
    }

    private async Task ReceiveAsync(NetStack stack, UdpFlow flow, CancellationToken token)
    {
        var buffer = new byte[65536];
        try
        {
            while (true)
            {
                var (length, from) = await flow.Upstream!.ReceiveFromAsync(buffer, token).ConfigureAwait(false);
                flow.Touch(_options.Time.GetTimestamp());
                var (source, sourcePort) = AsTheApplicationSeesIt(flow, from);
                if (source.IsV4 != flow.AppAddress.IsV4) continue;
                Interlocked.Increment(ref datagramsDown);
                if (!StackPost.TryPostCopy(stack, buffer.AsSpan(0, length), (source, sourcePort, flow),
                        static (core, s, data) => core.SendUdp(s.source, s.sourcePort, s.flow.AppAddress, s.flow.AppPort, data)))
                    return;
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        catch (Exception e) when (e is SocketException or IOException or InvalidOperationException)
        {
            _log.LogDebug("udp {Flow}: receive failed: {Error}", flow, e.Message);
        }
    }

    /// <summary>
    /// An upstream remote as the application knows it: IPv4-mapped addresses unmapped, and the
    /// resolver a relayed DNS query went to replaced by the gateway the application asked.
    /// </summary>
    private (IpAddress Address, ushort Port) AsTheApplicationSeesIt(UdpFlow flow, IPEndPoint remote)
    {
        if (flow.DnsGateway is { } gateway && Dns.IsServer(remote)) return (gateway, 53);
        return (IpAddress.FromIPAddress(remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address), (ushort)remote.Port);
    }

    /// <summary>
    /// An ICMP error the flow's upstream socket got about a datagram it sent for the application:
    /// the application gets the same error about its own datagram (to the address it sent to: the
    /// gateway for a relayed DNS query), so a connected socket there sees ECONNREFUSED or
    /// EHOSTUNREACH as on a direct path.
    /// </summary>
    private void RelayError(NetStack stack, UdpFlow flow, IPEndPoint about, SocketError error, ReadOnlySpan<byte> payload)
    {
        var (destination, port) = AsTheApplicationSeesIt(flow, about);
        if (destination.IsV4 != flow.AppAddress.IsV4) return;
        var verdict = error switch
        {
            SocketError.ConnectionRefused => FlowVerdict.Refuse,
            SocketError.HostUnreachable => FlowVerdict.HostUnreachable,
            _ => FlowVerdict.NetworkUnreachable,
        };
        _log.LogDebug("udp {Flow}: {Error} from upstream about {Destination}, passed on", flow, error, destination.WithPort(port));
        Interlocked.Increment(ref icmpErrorsRelayed);
        StackPost.TryPostCopy(stack, payload, (destination, port, flow, verdict),
            static (core, s, data) => core.SendUdpError(s.flow.AppAddress, s.flow.AppPort, s.destination, s.port, data, s.verdict));
    }

    /// <summary>Expires idle mappings (called by the forwarder's sweep).</summary>
    internal void Sweep(long now)
    {
        foreach (var flow in _flows.Values)
        {
            var idle = flow.OnlyDns ? _options.DnsIdleTimeout : _options.UdpIdleTimeout;
            if (_options.Time.GetElapsedTime(Volatile.Read(ref flow.LastActivity), now) <= idle) continue;
            Interlocked.Increment(ref flowsExpired);
            _log.LogDebug("udp {Flow}: mapping expired after {Seconds:0} s idle", flow, idle.TotalSeconds);
            Remove(flow);
        }
    }

    private void Remove(UdpFlow flow)
    {
        _flows.TryRemove(new KeyValuePair<(IpAddress, ushort), UdpFlow>((flow.AppAddress, flow.AppPort), flow));
        flow.Queue.Writer.TryComplete();
        flow.Stop.Cancel();
        flow.Stop.Dispose(); // unlinks it from the forwarder's token; the loops hold flow.Token
        flow.Upstream?.Dispose();
        while (flow.Queue.Reader.TryRead(out var item)) ArrayPool<byte>.Shared.Return(item.Buffer);
    }

    public void Dispose()
    {
        foreach (var flow in _flows.Values) Remove(flow);
    }

    private readonly record struct Outgoing(IpAddress Destination, ushort Port, bool Dns, byte[] Buffer, int Length);

    private sealed class UdpFlow(IpAddress address, ushort port, bool onlyDns, int queueLimit, long now, CancellationTokenSource stop)
    {
        public IpAddress AppAddress { get; } = address;
        public ushort AppPort { get; } = port;
        public volatile bool OnlyDns = onlyDns;
        /// <summary>The gateway address the application sent DNS queries to, for the answers' source.</summary>
        public IpAddress? DnsGateway;
        public long LastActivity = now;
        public IUdpUpstream? Upstream;
        public CancellationTokenSource Stop { get; } = stop;
        /// <summary>Read once at creation, so it stays usable after <see cref="Stop"/> is disposed.</summary>
        public CancellationToken Token { get; } = stop.Token;
        public Channel<Outgoing> Queue { get; } = Channel.CreateBounded<Outgoing>(new BoundedChannelOptions(queueLimit)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full: the datagram is dropped
        });

        public void Touch(long now) => Volatile.Write(ref LastActivity, now);

        public override string ToString() => AppAddress.WithPort(AppPort).ToString();
    }
}

/// <summary>
/// The DNS relay of <c>--dns</c>: the application side is given the gateway (the stack's own
/// addresses) as its resolver, and queries to its port 53 go to the host's real resolvers.
/// </summary>
internal sealed class DnsRelay(IReadOnlyList<IpAddress> addresses, IReadOnlyList<IPEndPoint> servers)
{
    public bool Enabled => addresses.Count > 0 && servers.Count > 0;

    /// <summary>The resolver for a query sent to <paramref name="gateway"/> (one of the DNS addresses), or null.</summary>
    public IPEndPoint? ServerFor(IpAddress gateway) => Enabled && addresses.Contains(gateway) ? Pick(gateway.IsV4) : null;

    /// <summary>The resolver as a UDP socket of <paramref name="family"/> reaches it (IPv4 resolvers through IPv4-mapped addresses from an IPv6 socket).</summary>
    internal IPEndPoint? ServerFor(IpAddress gateway, AddressFamily family)
    {
        var server = ServerFor(gateway);
        if (server is null) return null;
        if (family == AddressFamily.InterNetworkV6 && server.AddressFamily == AddressFamily.InterNetwork)
            return new IPEndPoint(server.Address.MapToIPv6(), server.Port);
        return family == server.AddressFamily ? server : null;
    }

    internal bool IsServer(IPEndPoint from)
    {
        var address = from.Address.IsIPv4MappedToIPv6 ? from.Address.MapToIPv4() : from.Address;
        foreach (var s in servers)
            if (s.Port == from.Port && s.Address.Equals(address)) return true;
        return false;
    }

    private IPEndPoint Pick(bool v4)
    {
        foreach (var s in servers)
            if (s.AddressFamily == (v4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6)) return s;
        return servers[0];
    }

    /// <summary>The nameservers of a resolv.conf (resolv.conf(5)), port 53; an unparsable line is skipped.</summary>
    public static List<IPEndPoint> ReadResolvConf(string text)
    {
        var servers = new List<IPEndPoint>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (!line.StartsWith("nameserver", StringComparison.Ordinal)) continue;
            var parts = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2) continue;
            var text2 = parts[1];
            int zone = text2.IndexOf('%');
            if (IPAddress.TryParse(zone >= 0 ? text2[..zone] : text2, out var address)) servers.Add(new IPEndPoint(address, 53));
        }
        return servers;
    }
}
