using System.Buffers.Binary;
using System.Net;
using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Fuzz;

/// <summary>
/// The whole stack core as a fuzz target: the input is decoded into a script of operations
/// (the format <see cref="NetStackScript"/> writes), each one a packet from the host, a time step
/// or an application call, and after every operation the engine's invariants are checked, as the
/// hostile-input tests check them: every emitted packet parses, has valid checksums and fits the
/// MTU; every connection's bookkeeping agrees with itself (<see cref="TcpConnection.CheckInvariants"/>)
/// and its path MTU stays in range; the listener's queues and the reassembly memory stay within
/// their bounds.
/// <para>
/// Packets are built from the input with valid IP and transport checksums unless the operation
/// says otherwise, and TCP segments can answer a segment the stack sent (ports swapped, sequence
/// and acknowledgment taken from it plus a small signed offset), so that mutated inputs get past
/// checksum and sequence checks into the state machine instead of being dropped at the door.
/// </para>
/// </summary>
internal static class NetStackCoreTarget
{
    public const int MaxOperations = 512;
    public const int Backlog = 4;
    public const int FragmentBudget = 64 * 1024;
    public const ushort ListenPort = 80, UdpPort = 7;

    public static readonly IpAddress Host4 = IpAddress.Parse("192.168.0.1"), Stack4 = IpAddress.Parse("192.168.0.2");
    public static readonly IpAddress Host6 = IpAddress.Parse("fd00::1"), Stack6 = IpAddress.Parse("fd00::2");

    /// <summary>Addresses an IP packet's source or destination may be swapped for (op bit 0x20).</summary>
    private static readonly IpAddress[] OtherAddresses4 =
        [IpAddress.Parse("192.168.0.3"), IpAddress.Parse("255.255.255.255"), IpAddress.Parse("224.0.0.1"), IpAddress.Parse("127.0.0.1"), IpAddress.Parse("0.0.0.0"), Stack4];
    private static readonly IpAddress[] OtherAddresses6 =
        [IpAddress.Parse("fd00::3"), IpAddress.Parse("ff02::1"), IpAddress.Parse("fe80::1"), IpAddress.Parse("::1"), IpAddress.Parse("::"), Stack6];

    public static void Run(ReadOnlySpan<byte> input) => Run(input, observer: null);

    /// <summary>
    /// The same scripts against a core in forwarding mode (<see cref="NetStackOptions.FlowHandler"/>,
    /// as <c>tuntcp forward</c> runs it): packets to any address are flows; TCP flows wait for an
    /// <see cref="AppCall.CompleteFlow"/> with the input's verdict, UDP datagrams and echo requests
    /// get a verdict from their port or identifier.
    /// </summary>
    public static void RunForwarding(ReadOnlySpan<byte> input) => Run(input, observer: null, forwarding: true);

    /// <summary>Runs a script; <paramref name="observer"/> sees every packet in and out (for the seed corpus's captures).</summary>
    public static void Run(ReadOnlySpan<byte> input, Action<ReadOnlySpan<byte>, CaptureDirection>? observer, bool forwarding = false)
    {
        var harness = new Harness(observer, forwarding);
        var reader = new FuzzReader(input);
        for (int n = 0; n < MaxOperations && !reader.AtEnd; n++)
        {
            harness.Step(ref reader);
            harness.Check();
        }
    }

    /// <summary>Operation kinds: the low three bits of an operation's first byte.</summary>
    public enum Op : byte { Raw = 0, Tcp = 1, Udp = 2, Icmp = 3, Ip = 4, Time = 5, App = 6, Poll = 7 }

    /// <summary>Flags in an operation's first byte, above the kind.</summary>
    public const byte V6 = 0x08, Variant = 0x10, OtherAddress = 0x20, BadChecksum = 0x80;

    /// <summary>Application calls: the byte after an <see cref="Op.App"/> operation, modulo their count.</summary>
    public enum AppCall : byte { Accept = 0, Connect = 1, Write = 2, Read = 3, Close = 4, Abort = 5, Shutdown = 6, CompleteFlow = 7 }

    private const int AppCalls = 8;

    /// <summary>Holds TCP flows for the script to decide; answers UDP and echo flows from their numbers.</summary>
    private sealed class ScriptedFlowHandler : IFlowHandler
    {
        public List<TcpFlowRequest> Pending { get; } = [];

        public void OnTcpFlow(TcpFlowRequest request) => Pending.Add(request);

        public FlowVerdict OnUdpDatagram(in UdpFlowDatagram datagram) => (FlowVerdict)(datagram.DestinationPort % 5);

        public bool OnEchoRequest(in EchoFlowRequest request) => request.Identifier % 2 == 0;
    }

    private sealed class Harness : IPacketOutput
    {
        private readonly NetStackCore _core;
        private readonly TcpListenQueue _listener;
        private readonly Action<ReadOnlySpan<byte>, CaptureDirection>? _observer;
        private readonly List<byte[]> _emitted = [];
        private readonly List<SentSegment> _recent = [];
        private readonly List<byte[]> _recentPackets = [];
        private readonly List<TcpConnection> _accepted = [];
        private readonly byte[] _scratch = new byte[128 * 1024];
        private readonly ScriptedFlowHandler? _flows;
        private Instant _now = Instant.Zero;

        public Harness(Action<ReadOnlySpan<byte>, CaptureDirection>? observer, bool forwarding)
        {
            _observer = observer;
            _flows = forwarding ? new ScriptedFlowHandler() : null;
            var tcp = new TcpSettings { SynBacklog = Backlog, ReceiveBufferSize = 8192, SendBufferSize = 16384 };
            _core = new NetStackCore(new NetStackOptions
            {
                Address = Stack4.ToIPAddress(), Address6 = Stack6.ToIPAddress(), Tcp = tcp,
                FragmentMemoryLimit = FragmentBudget, Random = new SeededRandomSource(0x5EED),
                FlowHandler = _flows, PendingFlowLimit = 16, FlowDecisionTimeout = TimeSpan.FromSeconds(20),
            }, this);
            _listener = _core.Listen(IpAddress.AnyV6, ListenPort, Backlog);
            _core.BindUdp(UdpPort);
        }

        public void Send(ReadOnlySpan<byte> packet)
        {
            _observer?.Invoke(packet, CaptureDirection.Outbound);
            _emitted.Add(packet.ToArray());
        }

        public void Step(ref FuzzReader r)
        {
            byte op = r.Byte();
            bool v6 = (op & V6) != 0;
            bool fixChecksums = (op & BadChecksum) == 0;
            switch ((Op)(op & 7))
            {
                case Op.Raw:
                    Deliver(r.Take(r.UInt16() % 2048));
                    break;
                case Op.Tcp:
                    DeliverTcp(ref r, op, v6, fixChecksums);
                    break;
                case Op.Udp:
                {
                    ushort source = (ushort)(40000 + r.Byte() % 4);
                    byte d = r.Byte();
                    ushort destination = d < 200 ? UdpPort : r.UInt16();
                    var payload = r.Take(r.UInt16() % 1500);
                    var (from, to) = Addresses(ref r, op, v6);
                    var datagram = new byte[UdpHeader.Length + payload.Length];
                    new UdpHeader(source, destination, payload.Length).Write(datagram);
                    payload.CopyTo(datagram.AsSpan(UdpHeader.Length));
                    if (fixChecksums) UdpHeader.WriteChecksum(datagram, from, to);
                    DeliverIp(from, to, (byte)IpProtocol.Udp, datagram, fixChecksums);
                    break;
                }
                case Op.Icmp:
                    DeliverIcmp(ref r, op, v6, fixChecksums);
                    break;
                case Op.Ip:
                {
                    // Any protocol or next header with raw bytes after a valid IP header: IPv4
                    // fragments (identification and the flags/offset field from the input), IPv6
                    // extension header chains and fragments.
                    byte protocol = r.Byte();
                    ushort identification = r.UInt16();
                    ushort fragmentField = r.UInt16();
                    var payload = r.Take(r.UInt16() % 2048);
                    var (from, to) = Addresses(ref r, op, v6);
                    DeliverIp(from, to, protocol, payload, fixChecksums, identification, fragmentField);
                    break;
                }
                case Op.Time:
                {
                    int ms = r.UInt16();
                    if ((op & Variant) != 0) ms *= 100;
                    _now += TimeSpan.FromMilliseconds(ms);
                    _core.Poll(_now);
                    break;
                }
                case Op.App:
                    App(ref r);
                    break;
                default:
                    _core.Poll(_now);
                    break;
            }
        }

        private void DeliverTcp(ref FuzzReader r, byte op, bool v6, bool fixChecksums)
        {
            ushort sourcePort, destinationPort;
            SeqNumber seq, ack;
            SentSegment? answered = null;
            if ((op & Variant) != 0 && _recent.Count > 0)
            {
                // An answer to something the stack sent (0: the latest), in its family, numbers bent by the input.
                var s = _recent[_recent.Count - 1 - r.Byte() % _recent.Count];
                answered = s;
                v6 = !s.Source.IsV4;
                sourcePort = s.DestinationPort;
                destinationPort = s.SourcePort;
                seq = s.Ack + (sbyte)r.Byte();
                ack = s.Seq + s.Length + (sbyte)r.Byte();
            }
            else
            {
                sourcePort = (ushort)(40000 + r.Byte() % 4);
                byte d = r.Byte();
                destinationPort = d < 200 ? ListenPort : r.UInt16();
                seq = new SeqNumber(r.UInt32());
                ack = new SeqNumber(r.UInt32());
            }
            byte flags = r.Byte();
            ushort window = r.UInt16();
            var options = r.Take(r.Byte() % (TcpOptions.MaxLength + 1));
            int optionLength = (options.Length + 3) & ~3;
            var payload = r.Take(r.UInt16() % 1500);
            var (from, to) = Addresses(ref r, op, v6);
            // An answer goes back between the addresses of what it answers (in forwarding mode the
            // stack speaks for any address), unless the input bent them.
            if (answered is { } a && (op & OtherAddress) == 0) (from, to) = (a.Destination, a.Source);
            var segment = new byte[TcpPacket.MinHeaderLength + optionLength + payload.Length];
            new TcpHeader(sourcePort, destinationPort, seq, ack, (TcpFlags)flags, window).Write(segment, default);
            segment[12] = (byte)((TcpPacket.MinHeaderLength + optionLength) / 4 << 4);
            options.CopyTo(segment.AsSpan(TcpPacket.MinHeaderLength));
            payload.CopyTo(segment.AsSpan(TcpPacket.MinHeaderLength + optionLength));
            if (fixChecksums) TcpHeader.WriteChecksum(segment, from, to);
            DeliverIp(from, to, (byte)IpProtocol.Tcp, segment, fixChecksums);
        }

        private void DeliverIcmp(ref FuzzReader r, byte op, bool v6, bool fixChecksums)
        {
            byte type = r.Byte(), code = r.Byte();
            uint rest = r.UInt32();
            ReadOnlySpan<byte> body;
            IpAddress? quotedSource = null;
            if ((op & Variant) != 0 && _recentPackets.Count > 0)
            {
                // An error quoting a packet the stack sent (its family), cut where the input says,
                // sent back to the address that packet came from.
                var quoted = _recentPackets[_recentPackets.Count - 1 - r.Byte() % _recentPackets.Count];
                v6 = quoted[0] >> 4 == 6;
                quotedSource = v6 ? IpAddress.ReadV6(quoted.AsSpan(8, 16)) : IpAddress.FromV4(Ipv4Address.Read(quoted.AsSpan(12)));
                body = quoted.AsSpan(0, Math.Min(quoted.Length, r.UInt16() % (quoted.Length + 1)));
            }
            else body = r.Take(r.UInt16() % 1500);
            var (from, to) = Addresses(ref r, op, v6);
            if (quotedSource is { } q && (op & OtherAddress) == 0) to = q;
            var message = new byte[8 + body.Length];
            message[0] = type;
            message[1] = code;
            BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), rest);
            body.CopyTo(message.AsSpan(8));
            if (fixChecksums)
            {
                ushort sum = v6 ? Checksum.ComputeTransport(from, to, IpProtocol.Icmpv6, message) : Checksum.Compute(message);
                BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), sum);
            }
            DeliverIp(from, to, v6 ? (byte)IpProtocol.Icmpv6 : (byte)IpProtocol.Icmp, message, fixChecksums);
        }

        /// <summary>Host to stack, or (op bit 0x20) a source or destination from a few odd ones.</summary>
        private static (IpAddress From, IpAddress To) Addresses(ref FuzzReader r, byte op, bool v6)
        {
            IpAddress from = v6 ? Host6 : Host4, to = v6 ? Stack6 : Stack4;
            if ((op & OtherAddress) == 0) return (from, to);
            byte pick = r.Byte();
            var others = v6 ? OtherAddresses6 : OtherAddresses4;
            var other = others[(pick >> 1) % others.Length];
            return (pick & 1) == 0 ? (other, to) : (from, other);
        }

        private void DeliverIp(IpAddress from, IpAddress to, byte protocol, ReadOnlySpan<byte> payload, bool fixChecksum,
            ushort identification = 0, ushort fragmentField = 0x4000)
        {
            if (from.IsV4)
            {
                int length = Ipv4Header.Length + payload.Length;
                var packet = _scratch.AsSpan(0, length);
                new Ipv4Header(from.V4, to.V4, (IpProtocol)protocol, payload.Length, Identification: identification).Write(packet);
                BinaryPrimitives.WriteUInt16BigEndian(packet[6..], fragmentField);
                packet[10] = 0; packet[11] = 0;
                if (fixChecksum) BinaryPrimitives.WriteUInt16BigEndian(packet[10..], Checksum.Compute(packet[..Ipv4Header.Length]));
                payload.CopyTo(packet[Ipv4Header.Length..]);
                Deliver(packet);
            }
            else
            {
                int length = Ipv6Header.Length + payload.Length;
                var packet = _scratch.AsSpan(0, length);
                new Ipv6Header(from, to, protocol, payload.Length).Write(packet);
                payload.CopyTo(packet[Ipv6Header.Length..]);
                Deliver(packet);
            }
        }

        private void Deliver(ReadOnlySpan<byte> packet)
        {
            _observer?.Invoke(packet, CaptureDirection.Inbound);
            _core.Receive(packet, _now);
        }

        private void App(ref FuzzReader r)
        {
            var call = (AppCall)(r.Byte() % AppCalls);
            switch (call)
            {
                case AppCall.Accept:
                    while (_listener.TryAccept(out var accepted)) _accepted.Add(accepted);
                    return;
                case AppCall.Connect:
                {
                    bool v6 = (r.Byte() & 1) != 0;
                    ushort port = (ushort)(5000 + r.Byte() % 3);
                    if (_core.ConnectionCount < 40) _core.Connect(v6 ? Host6 : Host4, port, _now);
                    return;
                }
                case AppCall.CompleteFlow:
                {
                    byte which = r.Byte(), verdict = r.Byte();
                    if (_flows is null || _flows.Pending.Count == 0) return;
                    var request = _flows.Pending[which % _flows.Pending.Count];
                    _flows.Pending.Remove(request);
                    if (_core.CompleteTcpFlow(request, (FlowVerdict)(verdict % 5), _now) is { } relayed) _accepted.Add(relayed);
                    return;
                }
            }
            var connections = _core.Connections.ToList();
            byte pick = r.Byte();
            if (connections.Count == 0) return;
            var c = connections[pick % connections.Count];
            switch (call)
            {
                case AppCall.Write:
                {
                    int n = Math.Min(r.UInt16() % 40000, c.SendBuffer.Free);
                    var data = _scratch.AsSpan(0, n);
                    for (int i = 0; i < data.Length; i++) data[i] = (byte)i;
                    c.SendBuffer.Write(data);
                    if (_core.FindEntry(c) is { } entry) _core.MarkReady(entry, PendingWork.SendBufferWritten);
                    _core.Poll(_now);
                    break;
                }
                case AppCall.Read:
                {
                    c.ReceiveBuffer.Read(_scratch.AsSpan(0, Math.Min(r.UInt16(), _scratch.Length)));
                    if (_core.FindEntry(c) is { } entry) _core.MarkReady(entry, PendingWork.ReceiveBufferRead);
                    _core.Poll(_now);
                    break;
                }
                case AppCall.Close: _core.Close(c, _now); break;
                case AppCall.Abort: _core.Abort(c, _now); break;
                default: _core.ShutdownSend(c, _now); break;
            }
        }

        /// <summary>The invariants, after every operation; a violation is a <see cref="FuzzContractException"/>.</summary>
        public void Check()
        {
            foreach (var packet in _emitted) CheckEmitted(packet);
            _emitted.Clear();
            foreach (var c in _core.Connections)
            {
                var problem = c.CheckInvariants();
                if (problem is not null) Fail($"{c.Tuple} in {c.State}: {problem}");
                int minimum = c.Tuple.IsV4 ? NetStackCore.MinimumPathMtu4 : NetStackCore.MinimumPathMtu6;
                if (c.PathMtu < minimum || c.PathMtu > _core.Mtu) Fail($"{c.Tuple}: path MTU {c.PathMtu} out of [{minimum}, {_core.Mtu}]");
            }
            if (_listener.HalfOpenCount is < 0 or > Backlog) Fail($"half-open count {_listener.HalfOpenCount} out of [0, {Backlog}]");
            if (_listener.PendingAcceptCount is < 0 or > Backlog) Fail($"accept queue {_listener.PendingAcceptCount} out of [0, {Backlog}]");
            var reassembly = _core.ReassemblyUse;
            if (reassembly.Bytes is < 0 or > FragmentBudget) Fail($"reassembly holds {reassembly.Bytes} bytes, budget {FragmentBudget}");
        }

        private void CheckEmitted(byte[] packet)
        {
            if (packet.Length > _core.Mtu) Fail($"a {packet.Length}-byte packet exceeds the MTU");
            IpAddress source, destination;
            ReadOnlySpan<byte> transport;
            byte protocol;
            if (packet.Length > 0 && packet[0] >> 4 == 4)
            {
                if (!Ipv4Packet.TryParse(packet, out var ip, out var error)) { Fail($"emitted IPv4 does not parse: {error}"); return; }
                if (!ip.IsHeaderChecksumValid) Fail("emitted IPv4 with a bad header checksum");
                if (ip.IsFragment) return;
                (source, destination, protocol) = (ip.Source, ip.Destination, (byte)ip.Protocol);
                transport = ip.Payload;
            }
            else
            {
                if (!Ipv6Packet.TryParse(packet, out var ip, out var error)) { Fail($"emitted packet is neither IPv4 nor IPv6: {error}"); return; }
                (source, destination, protocol) = (ip.Source, ip.Destination, ip.NextHeader);
                transport = ip.Payload;
            }
            switch ((IpProtocol)protocol)
            {
                case IpProtocol.Tcp:
                {
                    if (!TcpPacket.TryParse(transport, out var t, out var error)) { Fail($"emitted TCP does not parse: {error}"); return; }
                    if (!t.IsChecksumValid(source, destination)) Fail("emitted TCP with a bad checksum");
                    if (t.Rst) break;
                    Remember(_recent, new SentSegment(source, destination, t.SourcePort, t.DestinationPort, t.SequenceNumber, t.AcknowledgmentNumber,
                        t.SegmentLength));
                    break;
                }
                case IpProtocol.Udp:
                {
                    if (!UdpDatagram.TryParse(transport, out var u, out var error)) { Fail($"emitted UDP does not parse: {error}"); return; }
                    if (!u.IsChecksumValid(source, destination)) Fail("emitted UDP with a bad checksum");
                    break;
                }
                case IpProtocol.Icmpv6:
                {
                    if (!Icmpv6Message.TryParse(transport, out var m, out var error)) { Fail($"emitted ICMPv6 does not parse: {error}"); return; }
                    if (!m.IsChecksumValid(source, destination)) Fail("emitted ICMPv6 with a bad checksum");
                    break;
                }
                case IpProtocol.Icmp:
                {
                    if (!Icmpv4Message.TryParse(transport, out var m, out var error)) { Fail($"emitted ICMP does not parse: {error}"); return; }
                    if (!m.IsChecksumValid) Fail("emitted ICMP with a bad checksum");
                    break;
                }
            }
            Remember(_recentPackets, packet);
        }

        private static void Remember<T>(List<T> list, T item)
        {
            list.Add(item);
            if (list.Count > 16) list.RemoveAt(0);
        }

        private static void Fail(string message) => throw new FuzzContractException(message);
    }

    private readonly record struct SentSegment(IpAddress Source, IpAddress Destination, ushort SourcePort, ushort DestinationPort, SeqNumber Seq, SeqNumber Ack, int Length);
}

/// <summary>Reads the fuzzer's bytes front to back; past the end every read gives zeros (and <see cref="Take"/> nothing).</summary>
internal ref struct FuzzReader(ReadOnlySpan<byte> input)
{
    private readonly ReadOnlySpan<byte> _input = input;
    private int _position;

    public readonly bool AtEnd => _position >= _input.Length;

    public byte Byte() => _position < _input.Length ? _input[_position++] : (byte)0;

    public ushort UInt16() => (ushort)(Byte() << 8 | Byte());

    public uint UInt32() => (uint)UInt16() << 16 | UInt16();

    public ReadOnlySpan<byte> Take(int count)
    {
        int n = Math.Min(count, _input.Length - _position);
        var taken = _input.Slice(_position, Math.Max(n, 0));
        _position += taken.Length;
        return taken;
    }
}
