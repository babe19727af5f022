using CsCheck;
using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>
/// Robustness of the whole stack core against a hostile host: whole IPv4 packets, some of them
/// random bytes, most of them TCP segments from a handful of ports that answer what the stack
/// sent (SYN-ACKs, handshake ACKs, data, FINs, RSTs) with perturbed numbers, mixed with garbage
/// flags, SYN floods, ICMP and UDP, while connections are accepted, opened, closed and time
/// jumps. Nothing may throw; every packet the stack emits must parse with valid checksums; every
/// connection's bookkeeping must agree with itself; the half-open and accept queues stay within
/// their bounds.
/// </summary>
public class NetStackCoreHostileInputTests
{
    private static readonly int Iterations = PropertyIterations.Get(100, share: 0.5);

    private const int Backlog = 4;

    [Fact]
    public void HostileHost_CannotBreakTheCore()
    {
        Gen.ULong.Sample(Drive, iter: Iterations, threads: 1);
    }

    private static void Drive(ulong seed)
    {
        var rnd = new SeededRandomSource(seed);
        var output = new RecordingOutput();
        var tcp = new TcpSettings { SynBacklog = Backlog, ReceiveBufferSize = 8192, SendBufferSize = 8192 };
        var core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress(), Tcp = tcp, Random = new SeededRandomSource(seed ^ 0x5EED) }, output);
        var listener = core.Listen(Ipv4Address.Any, 80, Backlog);
        core.BindUdp(7);
        var now = Instant.Zero;
        var recent = new List<(TcpHeader Header, int Length)>();

        int Next(int max) => max <= 0 ? 0 : (int)(rnd.NextUInt32() % (uint)max);
        bool Chance(double p) => rnd.NextDouble() < p;
        ushort HostPort() => (ushort)(40000 + Next(6));

        for (int step = 0; step < 600; step++)
        {
            int action = Next(100);
            if (action < 45 && recent.Count > 0)
            {
                // Answer something the stack sent, with numbers bent now and then.
                var (h, length) = recent[Next(recent.Count)];
                var seq = h.AcknowledgmentNumber + (Chance(0.2) ? Next(4000) - 2000 : 0);
                var ack = h.SequenceNumber + length + ((h.Flags & (TcpFlags.Syn | TcpFlags.Fin)) != 0 ? 1 : 0) - (Chance(0.2) ? Next(3000) : 0);
                TcpFlags flags = (h.Flags & TcpFlags.Syn) != 0 && (h.Flags & TcpFlags.Ack) == 0
                    ? TcpFlags.Syn | TcpFlags.Ack
                    : Chance(0.05) ? TcpFlags.Rst : Chance(0.05) ? TcpFlags.Fin | TcpFlags.Ack : TcpFlags.Ack;
                if ((flags & TcpFlags.Syn) != 0) seq = new SeqNumber(rnd.NextUInt32());
                var options = new TcpOptions();
                if ((flags & TcpFlags.Syn) != 0)
                {
                    options.MaxSegmentSize = (ushort)(Chance(0.1) ? Next(2000) : 1460);
                    if (Chance(0.7)) options.WindowScale = (byte)Next(16);
                    if (Chance(0.7)) options.SackPermitted = true;
                }
                if (Chance(0.6)) options.SetTimestamps((uint)(now.Microseconds / 1000) + (uint)Next(50), rnd.NextUInt32());
                if (Chance(0.2)) options.AddSackBlock(new SackBlock(ack + Next(3000), ack + 3000 + Next(3000)));
                byte[] data = (flags & TcpFlags.Syn) == 0 && Chance(0.4) ? new byte[Next(2000)] : [];
                rnd.Fill(data);
                var header = new TcpHeader(h.DestinationPort, h.SourcePort, seq, ack, flags, (ushort)(Chance(0.1) ? 0 : 65535 - Next(5000)));
                core.Receive(Packets.Tcp(header, options, data), now);
            }
            else if (action < 60)
            {
                // A new SYN (a flood when repeated), to the listener or to a closed port.
                var options = new TcpOptions { MaxSegmentSize = 1460, SackPermitted = Chance(0.5) };
                if (Chance(0.5)) options.SetTimestamps(rnd.NextUInt32(), 0);
                var syn = new TcpHeader(Chance(0.5) ? HostPort() : (ushort)(1024 + Next(60000)), (ushort)(Chance(0.8) ? 80 : Next(65536)),
                    new SeqNumber(rnd.NextUInt32()), default, TcpFlags.Syn, 64240);
                core.Receive(Packets.Tcp(syn, options), now);
            }
            else if (action < 70)
            {
                // Garbage TCP: any flags and numbers, valid checksum.
                var o = new TcpOptions();
                if (Chance(0.5)) o.SetTimestamps(rnd.NextUInt32(), rnd.NextUInt32());
                for (int b = Next(4); b > 0; b--) o.AddSackBlock(new SackBlock(new SeqNumber(rnd.NextUInt32()), new SeqNumber(rnd.NextUInt32())));
                byte[] data = new byte[Chance(0.5) ? 0 : Next(1500)];
                rnd.Fill(data);
                var header = new TcpHeader(HostPort(), Chance(0.7) ? (ushort)80 : (ushort)Next(65536), new SeqNumber(rnd.NextUInt32()),
                    new SeqNumber(rnd.NextUInt32()), (TcpFlags)(rnd.NextUInt32() & 0xFF), (ushort)rnd.NextUInt32());
                core.Receive(Packets.Tcp(header, o, data), now);
            }
            else if (action < 76)
            {
                // Random bytes, or a valid packet with random bytes flipped.
                byte[] packet;
                if (Chance(0.5))
                {
                    packet = new byte[Next(200)];
                    rnd.Fill(packet);
                    if (packet.Length > 0 && Chance(0.7)) packet[0] = 0x45;
                }
                else
                {
                    packet = Chance(0.5) ? Packets.Udp(HostPort(), 7, new byte[Next(100)]) : Packets.EchoRequest((ushort)Next(100), 1, new byte[Next(100)]);
                    for (int f = Next(3); f > 0; f--) packet[Next(packet.Length)] ^= (byte)(1 + Next(255));
                }
                core.Receive(packet, now);
            }
            else if (action < 82)
            {
                while (listener.TryAccept(out var accepted))
                    if (Chance(0.5)) core.Close(accepted, now);
            }
            else if (action < 85)
            {
                if (core.ConnectionCount < 50) core.Connect(Packets.Host, (ushort)(5000 + Next(3)), now);
            }
            else if (action < 88)
            {
                var connections = core.Connections.ToList();
                if (connections.Count > 0)
                {
                    var c = connections[Next(connections.Count)];
                    if (Chance(0.5)) core.Close(c, now); else core.Abort(c, now);
                }
            }
            else
            {
                now += TimeSpan.FromMilliseconds(Next(Chance(0.1) ? 20_000 : 400));
                core.Poll(now);
            }

            foreach (var packet in output.Packets)
            {
                Assert.True(Ipv4Packet.TryParse(packet, out var ip, out var error), $"seed {seed}: emitted packet does not parse: {error}");
                Assert.True(ip.IsHeaderChecksumValid, $"seed {seed}: bad IP checksum");
                if (ip.Protocol != IpProtocol.Tcp) continue;
                Assert.True(TcpPacket.TryParse(ip.Payload, out var t, out error), $"seed {seed}: emitted TCP does not parse: {error}");
                Assert.True(t.IsChecksumValid(ip.Source, ip.Destination), $"seed {seed}: bad TCP checksum");
                if ((t.Flags & TcpFlags.Rst) != 0) continue;
                recent.Add((new TcpHeader(t.SourcePort, t.DestinationPort, t.SequenceNumber, t.AcknowledgmentNumber, t.Flags, t.Window), t.Payload.Length));
                if (recent.Count > 32) recent.RemoveAt(0);
            }
            output.Packets.Clear();
            foreach (var c in core.Connections)
            {
                var problem = c.CheckInvariants();
                Assert.True(problem is null, $"seed {seed}: {c.Tuple} in {c.State}: {problem}");
            }
            Assert.InRange(listener.HalfOpenCount, 0, Backlog);
            Assert.InRange(listener.PendingAcceptCount, 0, Backlog);
        }
    }
}
