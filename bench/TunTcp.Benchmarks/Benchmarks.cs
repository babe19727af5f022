using System.Buffers.Binary;
using System.Net;
using BenchmarkDotNet.Attributes;
using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Benchmarks;

/// <summary>Discards what the stack sends (its ACKs), without allocating.</summary>
internal sealed class NullOutput : IPacketOutput
{
    public long Packets;
    public void Send(ReadOnlySpan<byte> packet) => Packets++;
}

/// <summary>
/// The per-packet cost of the receive path through the whole core: IP parse, demultiplexing,
/// the engine's in-order data path and the batch's ACK, for one 1448-byte segment of an
/// established connection, in either family (the dual-stack core must not make IPv4 dearer).
/// Checksums are trusted, as with the TUN offloads, so the figure is the stack's own work.
/// </summary>
[MemoryDiagnoser]
public class CoreReceiveBenchmarks
{
    private const ushort HostPort = 40000, StackPort = 9;
    private const int Ipv6HeaderLength = 40;
    private NetStackCore _core = null!;
    private TcpConnection _connection = null!;
    private byte[] _segment = null!;
    private byte[] _drain = new byte[64 * 1024];
    private int _tcpOffset;
    private uint _seq;
    private Instant _now;

#if TUNTCP_BASELINE
    // Built against the tree before the dual stack (IPv4 only) for A/B runs: see README, Performance.
    [Params(false)]
    public bool Ipv6 { get; set; }

    private static Ipv4Address Host => Ipv4Address.Parse("192.168.0.1");
    private static Ipv4Address Stack => Ipv4Address.Parse("192.168.0.2");
#else
    [Params(false, true)]
    public bool Ipv6 { get; set; }

    private IpAddress Host => Ipv6 ? IpAddress.Parse("fd00:7475:6e::1") : IpAddress.Parse("192.168.0.1");
    private IpAddress Stack => Ipv6 ? IpAddress.Parse("fd00:7475:6e::2") : IpAddress.Parse("192.168.0.2");
#endif

    private byte[] Packet(TcpHeader header, TcpOptions options, ReadOnlySpan<byte> payload)
    {
        int ipLength = Ipv6 ? Ipv6HeaderLength : Ipv4Header.Length;
        var packet = new byte[ipLength + TcpHeader.LengthWith(options) + payload.Length];
        var segment = packet.AsSpan(ipLength);
        int headerLength = header.Write(segment, options);
        payload.CopyTo(segment[headerLength..]);
        TcpHeader.WriteChecksum(segment, Host, Stack);
#if TUNTCP_BASELINE
        new Ipv4Header(Host, Stack, IpProtocol.Tcp, segment.Length).Write(packet);
#else
        if (Ipv6) new Ipv6Header(Host, Stack, (byte)IpProtocol.Tcp, segment.Length).Write(packet);
        else new Ipv4Header(Host.V4, Stack.V4, IpProtocol.Tcp, segment.Length).Write(packet);
#endif
        return packet;
    }

    [GlobalSetup]
    public void Setup()
    {
        var output = new NullOutput();
#if TUNTCP_BASELINE
        _core = new NetStackCore(new NetStackOptions { Address = Stack, Tcp = new TcpSettings { Timestamps = false } }, new CapturingOutput(this));
        var listener = _core.Listen(Ipv4Address.Any, StackPort, 8);
#else
        _core = new NetStackCore(new NetStackOptions
        {
            Address = IPAddress.Parse("192.168.0.2"), Address6 = IPAddress.Parse("fd00:7475:6e::2"),
            Tcp = new TcpSettings { Timestamps = false, Ecn = false },
        }, new CapturingOutput(this));
        var listener = _core.Listen(IpAddress.AnyV6, StackPort, 8);
#endif
        _now = Instant.FromMilliseconds(1);
        _seq = 1000;
        _core.Receive(Packet(new TcpHeader(HostPort, StackPort, new SeqNumber(_seq), default, TcpFlags.Syn, 65535), new TcpOptions { MaxSegmentSize = 1448, WindowScale = 7, SackPermitted = true }, default), _now);
        _core.Receive(Packet(new TcpHeader(HostPort, StackPort, new SeqNumber(_seq + 1), _synAckSeq + 1, TcpFlags.Ack, 65535), default, default), _now);
        if (!listener.TryAccept(out var accepted)) throw new InvalidOperationException("the handshake did not complete");
        _connection = accepted!;
        _seq += 1;
        _segment = Packet(new TcpHeader(HostPort, StackPort, new SeqNumber(_seq), _synAckSeq + 1, TcpFlags.Ack, 65535), default, new byte[1448]);
        _ack = Packet(new TcpHeader(HostPort, StackPort, new SeqNumber(_seq), _synAckSeq + 1, TcpFlags.Ack, 65535), default, default);
        _acked = _synAckSeq + 1;
        _tcpOffset = Ipv6 ? Ipv6HeaderLength : Ipv4Header.Length;
        _capturing = false;
        _sink = output;
    }

    private SeqNumber _synAckSeq;
    private SeqNumber _acked;
    private byte[] _ack = null!;
    private readonly byte[] _payload = new byte[1448];
    private bool _capturing = true;
    private NullOutput _sink = new();

    /// <summary>Learns our ISS from the SYN-ACK during set-up, then discards.</summary>
    private sealed class CapturingOutput(CoreReceiveBenchmarks owner) : IPacketOutput
    {
        public void Send(ReadOnlySpan<byte> packet)
        {
            if (owner._capturing)
            {
                int at = packet[0] >> 4 == 4 ? Ipv4Header.Length : Ipv6HeaderLength;
                if (TcpPacket.TryParse(packet[at..], out var t, out _) && (t.Flags & TcpFlags.Syn) != 0) owner._synAckSeq = t.SequenceNumber;
                return;
            }
            owner._sink.Send(packet);
        }
    }

    /// <summary>One in-order data segment in, the batch's ACK out, the data read by the application.</summary>
    [Benchmark]
    public int InOrderDataSegment()
    {
        BinaryPrimitives.WriteUInt32BigEndian(_segment.AsSpan(_tcpOffset + 4), _seq);
        _seq += 1448;
        _core.Receive(_segment, _now, checksumTrusted: true);
        _core.Poll(_now);
        return _connection.ReceiveBuffer.Read(_drain);
    }

    /// <summary>
    /// The send path: the application queues one full segment, the engine sends it (records it,
    /// arms the timers, asks loss recovery), and the peer's ACK for it comes back and frees it
    /// (RTT sample, congestion control, loss recovery's view of the ACK: SACK and RACK, as
    /// negotiated with a Linux-like peer).
    /// </summary>
    [Benchmark]
    public int SendAndAcknowledgeSegment()
    {
        _connection.SendBuffer.Write(_payload);
        _connection.OnSendBufferWritten(_now, _core);
        _acked += _payload.Length;
        BinaryPrimitives.WriteUInt32BigEndian(_ack.AsSpan(_tcpOffset + 8), _acked.Value);
        _core.Receive(_ack, _now, checksumTrusted: true);
        _core.Poll(_now);
        return _connection.SendBuffer.Count;
    }
}

/// <summary>The Internet checksum over a full-sized segment, and the parsers of one.</summary>
[MemoryDiagnoser]
public class WireBenchmarks
{
    private readonly byte[] _packet = new byte[1500];

    [GlobalSetup]
    public void Setup()
    {
        new Random(1).NextBytes(_packet);
        var segment = _packet.AsSpan(Ipv4Header.Length);
        new TcpHeader(40000, 80, new SeqNumber(1), new SeqNumber(2), TcpFlags.Ack, 65535).Write(segment, default);
        new Ipv4Header(Ipv4Address.Parse("192.168.0.1"), Ipv4Address.Parse("192.168.0.2"), IpProtocol.Tcp, 1480).Write(_packet);
        TcpHeader.WriteChecksum(segment, Ipv4Address.Parse("192.168.0.1"), Ipv4Address.Parse("192.168.0.2"));
    }

    [Benchmark]
    public ushort Checksum1480() => Checksum.Compute(_packet.AsSpan(Ipv4Header.Length));

    [Benchmark]
    public int ParseIpv4AndTcp()
    {
        if (!Ipv4Packet.TryParse(_packet, out var ip, out _) || !TcpPacket.TryParse(ip.Payload, out var tcp, out _)) return -1;
        return tcp.Payload.Length;
    }

    [Benchmark]
    public bool ParseAndVerifyChecksum()
    {
        Ipv4Packet.TryParse(_packet, out var ip, out _);
        TcpPacket.TryParse(ip.Payload, out var tcp, out _);
        return tcp.IsChecksumValid(ip.Source, ip.Destination);
    }
}

/// <summary>
/// The SACK scoreboard under a lossy flight (RFC 6675: every ACK's blocks merged into the sorted
/// ranges, then the hole walk loss recovery does), and the byte ring's copies (the relay and
/// every socket read and write go through them).
/// </summary>
[MemoryDiagnoser]
public class ScoreboardAndRingBenchmarks
{
    private const int Mss = 1448;
    private readonly SackScoreboard _board = new(SackScoreboard.RangesFor(4 << 20));
    private readonly ByteRing _ring = new(4 << 20);
    private readonly byte[] _chunk = new byte[64 * 1024];
    private readonly byte[] _segment = new byte[Mss];

    /// <summary>
    /// A 2000-segment flight with every tenth segment lost: 1800 ACKs, each SACKing the newest
    /// segment (the block grows or a new one starts after each hole), then the hole walk from
    /// SND.UNA, then SND.UNA passing everything.
    /// </summary>
    [Benchmark(OperationsPerInvoke = 1800)]
    public int SackScoreboardAddPerAck()
    {
        var una = new SeqNumber(1);
        var max = una + 2000 * Mss;
        _board.Clear();
        for (int i = 1; i < 2000; i++)
        {
            if (i % 10 == 0) continue;
            var start = una + i * Mss;
            _board.Add(new SackBlock(start, start + Mss), una, max);
        }
        int holes = 0;
        for (var seq = una; seq < max;)
        {
            var next = _board.NextHole(seq, out int length);
            if (length <= 0) break;
            holes++;
            seq = next + length;
        }
        _board.AdvanceTo(max);
        return holes;
    }

    /// <summary>64 KiB written into the ring and read out again (the application's side of a socket write or read).</summary>
    [Benchmark]
    public int RingWriteRead64K()
    {
        _ring.Write(_chunk);
        return _ring.Read(_chunk);
    }

    /// <summary>One full-sized segment written and read (the engine's side: a segment into the receive ring, and out).</summary>
    [Benchmark]
    public int RingWriteReadSegment()
    {
        _ring.Write(_segment);
        return _ring.Read(_segment);
    }
}

/// <summary>
/// What one idle established connection costs: a passive open through the whole core (SYN in,
/// SYN-ACK out, ACK in), each from a new peer address, into a stack that keeps them all. The
/// allocated bytes per operation are the memory of one connection (engine, rings before they
/// grow, reassembly and SACK tables, timer and demultiplexing entries, amortized table growth).
/// </summary>
[MemoryDiagnoser]
[WarmupCount(1)]
[IterationCount(5)]
[InvocationCount(16384)]
public class ConnectionCostBenchmarks
{
    private const ushort StackPort = 7;
    private readonly byte[] _packet = new byte[60];
    private readonly NullOutput _sink = new();
    private NetStackCore _core = null!;
    private uint _peer;
    private Instant _now = Instant.FromMilliseconds(1000);

    [GlobalSetup]
    public void Setup()
    {
        _core = new NetStackCore(new NetStackOptions { Address = IPAddress.Parse("192.168.0.2"), Tcp = new TcpSettings { SynBacklog = 1 << 20 } }, _sink);
        _core.Listen(IpAddress.AnyV4, StackPort, backlog: 1 << 20, new TcpSettings { SynBacklog = 1 << 20 });
        _peer = 0x0A00_0001;
    }

    [Benchmark]
    public int AcceptOneIdleConnection()
    {
        var peer = new Ipv4Address(_peer++);
        var local = Ipv4Address.Parse("192.168.0.2");
        Send(peer, local, new TcpHeader(40000, StackPort, new SeqNumber(1000), default, TcpFlags.Syn, 64240), new TcpOptions { MaxSegmentSize = 1460 });
        var iss = _core.TcpEnvironment.InitialSequenceNumber(new TcpTuple(local, StackPort, peer, 40000), _now);
        Send(peer, local, new TcpHeader(40000, StackPort, new SeqNumber(1001), iss + 1, TcpFlags.Ack, 64240), default);
        return _core.ConnectionCount;
    }

    private void Send(Ipv4Address from, Ipv4Address to, TcpHeader header, TcpOptions options)
    {
        var segment = _packet.AsSpan(Ipv4Header.Length);
        int length = header.Write(segment, options);
        TcpHeader.WriteChecksum(segment[..length], from, to);
        new Ipv4Header(from, to, IpProtocol.Tcp, length).Write(_packet);
        _core.Receive(_packet.AsSpan(0, Ipv4Header.Length + length), _now, checksumTrusted: true);
        _core.Poll(_now);
    }
}
