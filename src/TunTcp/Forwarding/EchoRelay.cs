using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using TunTcp.Ip;
using TunTcp.Wire;

namespace TunTcp.Forwarding;

/// <summary>
/// Ping through the forwarder: echo requests to any address are sent from an ICMP socket of the
/// host and the replies go back to the application from the pinged address. Unprivileged ICMP
/// sockets (<c>SOCK_DGRAM</c>/<c>IPPROTO_ICMP</c>, as ping(8) uses; allowed for the groups in
/// <c>net.ipv4.ping_group_range</c>) come first; where the kernel refuses them, a raw socket
/// (root only). One socket per application address and echo identifier; the kernel gives a
/// datagram socket its own identifier, which replies are mapped back from.
/// </summary>
internal sealed class EchoRelay : IDisposable
{
    private const int MaxFlows = 1024;
    private readonly ForwarderOptions _options;
    private readonly ILogger _log;
    private readonly CancellationToken _stopping;
    private readonly ConcurrentDictionary<(IpAddress App, ushort Id), EchoFlow> _flows = new();
    private NetStack? _stack;
    private bool _warned;
    internal long requests, replies, failures;

    internal EchoRelay(ForwarderOptions options, ILogger log, CancellationToken stopping)
    {
        _options = options;
        _log = log;
        _stopping = stopping;
    }

    public long Requests => Volatile.Read(ref requests);
    public long Replies => Volatile.Read(ref replies);
    /// <summary>Requests that could not be sent (no ICMP socket allowed, send failed).</summary>
    public long Failures => Volatile.Read(ref failures);

    internal void Attach(NetStack stack) => _stack = stack;

    /// <summary>Stack thread: an echo request from the application side.</summary>
    internal bool OnRequest(in EchoFlowRequest r)
    {
        var key = (r.Source, r.Identifier);
        if (!_flows.TryGetValue(key, out var flow))
        {
            if (_flows.Count >= MaxFlows) return false;
            flow = new EchoFlow(r.Source, r.Identifier, _options.Time.GetTimestamp(), CancellationTokenSource.CreateLinkedTokenSource(_stopping));
            _flows[key] = flow;
            _ = RunAsync(_stack!, flow);
        }
        // The ICMP message the socket sends: header and data (the kernel fills in a datagram socket's identifier).
        int length = 8 + r.Data.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        // Type, code, checksum (summed by the kernel for datagram sockets and for ICMPv6; for raw IPv4 before sending), identifier, sequence.
        buffer[0] = r.Destination.IsV4 ? (byte)Icmpv4Type.EchoRequest : (byte)Icmpv6Type.EchoRequest;
        buffer[1] = 0; buffer[2] = 0; buffer[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(4), r.Identifier);
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(6), r.SequenceNumber);
        r.Data.CopyTo(buffer.AsSpan(8));
        if (!flow.Queue.Writer.TryWrite((r.Destination, buffer, length)))
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return false;
        }
        flow.Touch(_options.Time.GetTimestamp());
        Interlocked.Increment(ref requests);
        return true;
    }

    private async Task RunAsync(NetStack stack, EchoFlow flow)
    {
        await Task.Yield(); // off the stack thread
        bool v4 = flow.App.IsV4;
        var token = flow.Token;
        try
        {
            flow.Socket = Open(v4, out flow.Raw);
        }
        catch (SocketException e)
        {
            Interlocked.Increment(ref failures);
            if (!_warned)
            {
                _warned = true;
                string range = File.Exists("/proc/sys/net/ipv4/ping_group_range") ? File.ReadAllText("/proc/sys/net/ipv4/ping_group_range").Trim() : "?";
                _log.LogWarning("ping cannot be relayed: the kernel refuses ICMP sockets ({Error}); allow them for this group with `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"` (now \"{Range}\"), or run as root", e.SocketErrorCode, range);
            }
            Remove(flow);
            return;
        }
        var receiving = ReceiveAsync(stack, flow, token);
        try
        {
            await foreach (var (destination, buffer, length) in flow.Queue.Reader.ReadAllAsync(token).ConfigureAwait(false))
            {
                try
                {
                    if (v4 && flow.Raw)
                    {
                        // A raw socket sends the message as it is: the checksum is ours to fill in.
                        buffer[2] = 0; buffer[3] = 0;
                        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(2), Checksum.Compute(buffer.AsSpan(0, length)));
                    }
                    await flow.Socket.SendToAsync(buffer.AsMemory(0, length), SocketFlags.None, new IPEndPoint(destination.ToIPAddress(), 0), token).ConfigureAwait(false);
                }
                catch (SocketException e)
                {
                    Interlocked.Increment(ref failures);
                    _log.LogDebug("ping {Flow}: send to {Destination} failed: {Error}", flow, destination, e.SocketErrorCode);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
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

    /// <summary>An unprivileged ICMP socket, else a raw one (the kernel refuses the first outside ping_group_range).</summary>
    private static Socket Open(bool v4, out bool raw)
    {
        var family = v4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
        var protocol = v4 ? ProtocolType.Icmp : ProtocolType.IcmpV6;
        Socket socket;
        try
        {
            raw = false;
            socket = new Socket(family, SocketType.Dgram, protocol);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AccessDenied or SocketError.ProtocolNotSupported or SocketError.SocketError)
        {
            raw = true;
            socket = new Socket(family, SocketType.Raw, protocol);
        }
        // Bound, as ReceiveFrom wants; a datagram socket gets its echo identifier here.
        socket.Bind(new IPEndPoint(v4 ? IPAddress.Any : IPAddress.IPv6Any, 0));
        return socket;
    }

    private async Task ReceiveAsync(NetStack stack, EchoFlow flow, CancellationToken token)
    {
        bool v4 = flow.App.IsV4;
        var buffer = new byte[65536];
        var any = new IPEndPoint(v4 ? IPAddress.Any : IPAddress.IPv6Any, 0);
        byte replyType = v4 ? (byte)Icmpv4Type.EchoReply : (byte)Icmpv6Type.EchoReply;
        try
        {
            while (true)
            {
                var result = await flow.Socket!.ReceiveFromAsync(buffer, SocketFlags.None, any, token).ConfigureAwait(false);
                var message = buffer.AsSpan(0, result.ReceivedBytes);
                // A raw IPv4 socket reads the IP header too.
                if (v4 && flow.Raw && message.Length > 0) message = message[Math.Min(message.Length, (message[0] & 0x0F) * 4)..];
                if (message.Length < 8 || message[0] != replyType) continue;
                ushort id = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
                // A raw socket sees every reply: only those with our identifier are this flow's.
                if (flow.Raw && id != flow.Id) continue;
                ushort sequence = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
                var from = IpAddress.FromIPAddress(((IPEndPoint)result.RemoteEndPoint).Address);
                flow.Touch(_options.Time.GetTimestamp());
                Interlocked.Increment(ref replies);
                if (!StackPost.TryPostCopy(stack, message[8..], (from, flow, sequence),
                        static (core, s, data) => core.SendEchoReply(s.from, s.flow.App, s.flow.Id, s.sequence, data)))
                    return;
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        catch (SocketException e)
        {
            _log.LogDebug("ping {Flow}: receive failed: {Error}", flow, e.SocketErrorCode);
        }
        catch (InvalidOperationException e)
        {
            _log.LogWarning("ping {Flow}: receive failed: {Error}", flow, e.Message);
        }
    }

    internal void Sweep(long now)
    {
        foreach (var flow in _flows.Values)
            if (_options.Time.GetElapsedTime(Volatile.Read(ref flow.LastActivity), now) > _options.EchoIdleTimeout) Remove(flow);
    }

    private void Remove(EchoFlow flow)
    {
        _flows.TryRemove(new KeyValuePair<(IpAddress, ushort), EchoFlow>((flow.App, flow.Id), flow));
        flow.Queue.Writer.TryComplete();
        flow.Stop.Cancel();
        flow.Stop.Dispose(); // unlinks it from the forwarder's token; the loops hold flow.Token
        flow.Socket?.Dispose();
        while (flow.Queue.Reader.TryRead(out var item)) ArrayPool<byte>.Shared.Return(item.Buffer);
    }

    public void Dispose()
    {
        foreach (var flow in _flows.Values) Remove(flow);
    }

    private sealed class EchoFlow(IpAddress app, ushort id, long now, CancellationTokenSource stop)
    {
        public IpAddress App { get; } = app;
        public ushort Id { get; } = id;
        public long LastActivity = now;
        public Socket? Socket;
        public bool Raw;
        public CancellationTokenSource Stop { get; } = stop;
        /// <summary>Read once at creation, so it stays usable after <see cref="Stop"/> is disposed.</summary>
        public CancellationToken Token { get; } = stop.Token;
        public Channel<(IpAddress Destination, byte[] Buffer, int Length)> Queue { get; } =
            Channel.CreateBounded<(IpAddress, byte[], int)>(new BoundedChannelOptions(64) { SingleReader = true, SingleWriter = true });

        public void Touch(long now) => Volatile.Write(ref LastActivity, now);

        public override string ToString() => $"{App} id {Id}";
    }
}
