using System.Buffers.Binary;
using CsCheck;
using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>
/// The dual-stack parts of the core against a hostile host: TCP over IPv6 answering what the
/// stack sent, damaged IPv6 packets (extension headers, fragments, ICMPv6), fragment floods of
/// both families with overlaps and duplicates, and ICMP errors (unreachable, too big) quoting what
/// the stack sent with bent numbers, while time jumps. Nothing may throw; every emitted packet
/// parses with valid checksums and fits the MTU; reassembly stays inside its budget; every
/// connection agrees with itself and never cuts segments for less than the family's minimum MTU.
/// </summary>
public class DualStackHostileInputTests
{
    private static readonly int Iterations = PropertyIterations.Get(60, share: 0.5);
    private const int Budget = 64 * 1024;

    [Fact]
    public void HostileDualStackHost_CannotBreakTheCore()
    {
        long reassembled = 0, icmpApplied = 0, pmtu = 0, v6Connections = 0;
        Gen.ULong.Sample(seed =>
        {
            var s = Drive(seed);
            reassembled += s.DatagramsReassembled;
            icmpApplied += s.IcmpErrorsToConnections;
            pmtu += s.PathMtuReductions;
            v6Connections += s.V6Connections;
        }, iter: Iterations, threads: 1);
        // The generator reaches what it is meant to attack.
        Assert.True(reassembled > 0 && icmpApplied > 0 && pmtu > 0 && v6Connections > 0,
            $"reassembled {reassembled}, ICMP errors applied {icmpApplied}, PMTU reductions {pmtu}, IPv6 connections {v6Connections}");
    }

    private readonly record struct Reached(long DatagramsReassembled, long IcmpErrorsToConnections, long PathMtuReductions, long V6Connections);

    private static Reached Drive(ulong seed)
    {
        long v6Connections = 0;
        var rnd = new SeededRandomSource(seed);
        var output = new RecordingOutput();
        var tcp = new TcpSettings { SynBacklog = 4, ReceiveBufferSize = 8192, SendBufferSize = 16384 };
        var core = new NetStackCore(new NetStackOptions
        {
            Address = Packets.Stack.ToIPAddress(), Address6 = Packets6.Stack.ToIPAddress(), Tcp = tcp,
            FragmentMemoryLimit = Budget, Random = new SeededRandomSource(seed ^ 0x6666),
        }, output);
        var listener = core.Listen(IpAddress.AnyV6, 80, 4);
        core.BindUdp(7);
        var now = Instant.Zero;
        var sent = new List<byte[]>();

        int Next(int max) => max <= 0 ? 0 : (int)(rnd.NextUInt32() % (uint)max);
        bool Chance(double p) => rnd.NextDouble() < p;

        for (int step = 0; step < 500; step++)
        {
            int action = Next(100);
            if (action < 30 && sent.Count > 0)
            {
                // Answer a segment the stack sent, in its family, with numbers bent now and then.
                var packet = sent[Next(sent.Count)];
                bool v6 = packet[0] >> 4 == 6;
                var t = SentTcp.Parse(packet);
                var seq = t.Ack + (Chance(0.2) ? Next(4000) - 2000 : 0);
                var ack = t.Seq + t.Length + ((t.Flags & (TcpFlags.Syn | TcpFlags.Fin)) != 0 ? 1 : 0) - (Chance(0.2) ? Next(3000) : 0);
                var flags = (t.Flags & TcpFlags.Syn) != 0 && (t.Flags & TcpFlags.Ack) == 0 ? TcpFlags.Syn | TcpFlags.Ack
                    : Chance(0.05) ? TcpFlags.Rst : Chance(0.05) ? TcpFlags.Fin | TcpFlags.Ack : TcpFlags.Ack;
                if ((flags & TcpFlags.Syn) != 0) seq = new SeqNumber(rnd.NextUInt32());
                var options = new TcpOptions();
                if ((flags & TcpFlags.Syn) != 0) options.MaxSegmentSize = (ushort)(Chance(0.2) ? Next(2000) : 1440);
                byte[] data = (flags & TcpFlags.Syn) == 0 && Chance(0.4) ? new byte[Next(1400)] : [];
                var header = new TcpHeader(t.DestinationPort, t.SourcePort, seq, ack, flags, 65535);
                core.Receive(v6 ? Packets6.Tcp(header, options, data) : Packets.Tcp(header, options, data), now);
            }
            else if (action < 45)
            {
                // An ICMP error quoting something the stack sent (or garbage), sequence bent now and then.
                byte[] invoking = sent.Count > 0 && Chance(0.8) ? (byte[])sent[Next(sent.Count)].Clone() : RandomBytes(Next(100));
                bool v6 = invoking.Length > 0 ? invoking[0] >> 4 == 6 : Chance(0.5);
                int tcpAt = v6 ? Ipv6Header.Length : Ipv4Header.Length;
                if (Chance(0.3) && invoking.Length >= tcpAt + 8)
                    BinaryPrimitives.WriteUInt32BigEndian(invoking.AsSpan(tcpAt + 4), rnd.NextUInt32());
                if (Chance(0.2) && invoking.Length > 0) invoking = invoking.AsSpan(0, Next(invoking.Length)).ToArray();
                uint mtu = (uint)(Chance(0.5) ? Next(70000) : 500 + Next(1000));
                var message = new byte[1500];
                if (v6)
                {
                    var type = Chance(0.5) ? Icmpv6Type.PacketTooBig : Chance(0.5) ? Icmpv6Type.DestinationUnreachable : Icmpv6Type.TimeExceeded;
                    int n = Icmpv6Writer.WriteError(message, type, (byte)Next(7), mtu, invoking, Packets6.Host, Packets6.Stack);
                    core.Receive(Packets6.Ip(Packets6.Host, Packets6.Stack, (byte)IpProtocol.Icmpv6, message.AsSpan(0, n)), now);
                }
                else
                {
                    var type = Chance(0.8) ? Icmpv4Type.DestinationUnreachable : Icmpv4Type.TimeExceeded;
                    int n = Icmpv4Writer.WriteError(message, type, (byte)(Chance(0.5) ? 4 : Next(16)), mtu & 0xFFFF, invoking);
                    core.Receive(Packets.Ip(Packets.Host, Packets.Stack, IpProtocol.Icmp, message.AsSpan(0, n)), now);
                }
            }
            else if (action < 60)
            {
                // Fragments of either family: pieces of a real datagram, out of order, duplicated,
                // overlapping, with random identifications, or damaged.
                bool v6 = Chance(0.5);
                byte[] whole = Chance(0.5)
                    ? (v6 ? Packets6.Udp(5000, 7, RandomBytes(Next(6000))) : Packets.Udp(5000, 7, RandomBytes(Next(6000))))
                    : (v6 ? Packets6.EchoRequest(1, (ushort)step, RandomBytes(Next(5000))) : Packets.EchoRequest(1, (ushort)step, RandomBytes(Next(5000))));
                int chunk = 8 * (1 + Next(200));
                ushort id = (ushort)Next(8);
                var pieces = v6 ? Packets6.Fragment(whole, chunk, id) : Packets6.Fragment4(whole, chunk, id);
                if (!v6 && Chance(0.3))
                {
                    int payload = whole.Length - Ipv4Header.Length;
                    int at = 8 * Next(Math.Max(1, payload / 8));
                    pieces.Add(Packets6.Fragment4At(whole, at, Math.Min(payload - at, 8 * (1 + Next(100))), more: Chance(0.7), id));
                }
                foreach (var p in pieces.OrderBy(_ => rnd.NextUInt32()))
                {
                    if (Chance(0.1)) p[Next(p.Length)] ^= (byte)(1 + Next(255));
                    if (Chance(0.9)) core.Receive(p, now);
                    if (Chance(0.1)) core.Receive(p, now);
                }
            }
            else if (action < 72)
            {
                // IPv6 with random extension headers, or random bytes after a valid fixed header.
                var payload = RandomBytes(Next(300));
                byte next = Chance(0.6) ? new byte[] { 0, 43, 44, 60, 59, 58, 6, 17 }[Next(8)] : (byte)Next(256);
                var packet = Packets6.Ip(Chance(0.9) ? Packets6.Host : IpAddress.Parse("fe80::1"), Chance(0.8) ? Packets6.Stack : Packets6.AllNodes, next, payload);
                core.Receive(packet, now);
            }
            else if (action < 78)
            {
                while (listener.TryAccept(out var accepted))
                    if (Chance(0.5)) core.Close(accepted, now);
            }
            else if (action < 84)
            {
                bool v6 = Chance(0.5);
                if (core.ConnectionCount < 40) core.Connect(v6 ? Packets6.Host : Packets.Host, (ushort)(5000 + Next(3)), now);
                // A new SYN from the host in either family.
                var syn = new TcpHeader((ushort)(40000 + Next(6)), 80, new SeqNumber(rnd.NextUInt32()), default, TcpFlags.Syn, 64240);
                var o = new TcpOptions { MaxSegmentSize = 1440 };
                core.Receive(Chance(0.5) ? Packets6.Tcp(syn, o) : Packets.Tcp(syn, o), now);
            }
            else if (action < 88)
            {
                foreach (var c in core.Connections.Where(c => c.SendBuffer.Free > 3000).Take(3).ToList())
                {
                    c.SendBuffer.Write(RandomBytes(3000));
                    if (core.FindEntry(c) is { } entry) core.MarkReady(entry, PendingWork.SendBufferWritten);
                }
                core.Poll(now);
            }
            else
            {
                now += TimeSpan.FromMilliseconds(Next(Chance(0.1) ? 70_000 : 400));
                core.Poll(now);
            }

            foreach (var packet in output.Packets)
            {
                Assert.True(packet.Length <= core.Mtu, $"seed {seed}: a {packet.Length}-byte packet exceeds the MTU");
                if (packet[0] >> 4 == 4)
                {
                    Assert.True(Ipv4Packet.TryParse(packet, out var ip, out var error), $"seed {seed}: emitted IPv4 does not parse: {error}");
                    Assert.True(ip.IsHeaderChecksumValid, $"seed {seed}: bad IP checksum");
                    if (ip.IsFragment || ip.Protocol != IpProtocol.Tcp) continue;
                    Assert.True(TcpPacket.TryParse(ip.Payload, out var t, out error), $"seed {seed}: emitted TCP does not parse: {error}");
                    Assert.True(t.IsChecksumValid(ip.Source, ip.Destination), $"seed {seed}: bad TCP checksum");
                }
                else
                {
                    Assert.True(Ipv6Packet.TryParse(packet, out var ip, out var error), $"seed {seed}: emitted IPv6 does not parse: {error}");
                    if (ip.NextHeader == (byte)IpProtocol.Icmpv6)
                    {
                        Assert.True(Icmpv6Message.TryParse(ip.Payload, out var m, out _) && m.IsChecksumValid(ip.Source, ip.Destination), $"seed {seed}: bad ICMPv6");
                        continue;
                    }
                    if (ip.NextHeader != (byte)IpProtocol.Tcp) continue;
                    Assert.True(TcpPacket.TryParse(ip.Payload, out var t, out error), $"seed {seed}: emitted TCP does not parse: {error}");
                    Assert.True(t.IsChecksumValid(ip.Source, ip.Destination), $"seed {seed}: bad TCP/IPv6 checksum");
                }
                if (IsTcp(packet) && (SentTcp.Parse(packet).Flags & TcpFlags.Rst) == 0)
                {
                    sent.Add(packet);
                    if (sent.Count > 32) sent.RemoveAt(0);
                }
            }
            output.Packets.Clear();
            foreach (var c in core.Connections)
            {
                var problem = c.CheckInvariants();
                Assert.True(problem is null, $"seed {seed}: {c.Tuple} in {c.State}: {problem}");
                Assert.InRange(c.PathMtu, c.Tuple.IsV4 ? NetStackCore.MinimumPathMtu4 : NetStackCore.MinimumPathMtu6, core.Mtu);
            }
            Assert.InRange(core.ReassemblyUse.Bytes, 0, Budget);
            v6Connections += core.Connections.Count(c => !c.Tuple.IsV4 && c.State == TcpConnectionState.Established);
        }
        var st = core.Statistics;
        return new Reached(st.DatagramsReassembled, st.IcmpErrorsToConnections, st.PathMtuReductions, v6Connections);

        byte[] RandomBytes(int length)
        {
            var b = new byte[length];
            rnd.Fill(b);
            return b;
        }
    }

    private static bool IsTcp(byte[] packet) =>
        packet[0] >> 4 == 4 ? packet[9] == (byte)IpProtocol.Tcp && (BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(6)) & 0x3FFF) == 0
            : packet[6] == (byte)IpProtocol.Tcp;
}
