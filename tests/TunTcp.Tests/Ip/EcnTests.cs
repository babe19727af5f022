using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>
/// Explicit Congestion Notification through the whole core (RFC 3168): negotiation on the
/// handshake (6.1.1), the ECT codepoint on what we send (6.1.2, 6.1.5, 6.1.6), the receiver's ECE
/// echo until CWR (6.1.3), and the sender's one reduction per window (6.1.2).
/// </summary>
public class EcnTests
{
    private readonly RecordingOutput _out = new();
    private NetStackCore _core;
    private Instant _now = Instant.Zero;

    public EcnTests() => _core = new NetStackCore(Packets6.DualStack(), _out);

    private static IpEcn EcnOf(byte[] packet) => CoreTcp.EcnOf(packet);

    private static SentTcp Tcp(byte[] packet) => SentTcp.Parse(packet);

    private static byte[] WithCe(byte[] packet)
    {
        var p = (byte[])packet.Clone();
        if (p[0] >> 4 == 6) { p[1] |= 0x30; return p; }
        p[1] |= 3;
        p[10] = 0; p[11] = 0;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum.Compute(p.AsSpan(0, Ipv4Header.Length)));
        return p;
    }

    private static byte[] FromHost(bool v6, TcpHeader header, TcpOptions options = default, ReadOnlySpan<byte> payload = default) =>
        CoreTcp.FromHost(v6, header, options, payload);

    /// <summary>Our active open answered by a SYN-ACK with <paramref name="synAckEcn"/> flags.</summary>
    private TcpConnection ActiveOpen(bool v6, TcpFlags synAckEcn, out SentTcp syn)
    {
        var c = CoreTcp.ActiveOpen(_core, _out, v6, _now, out var synPacket, synAckEcn, mss: 1400);
        Assert.Equal(IpEcn.NotEct, EcnOf(synPacket)); // RFC 3168 6.1.1: SYNs are not ECN-capable
        syn = SentTcp.Parse(synPacket);
        return c;
    }

    private void Write(TcpConnection c, int bytes) => CoreTcp.Write(_core, c, bytes, _now);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rfc3168_6_1_1_ActiveOpen_EcnSetupSyn_AndEceSynAck_NegotiatesEcn_DataGoesOutEct0(bool v6)
    {
        var c = ActiveOpen(v6, TcpFlags.Ece, out var syn);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ece | TcpFlags.Cwr, syn.Flags);
        Assert.True(c.EcnEnabled);
        Write(c, 3000);
        Assert.NotEmpty(_out.Packets);
        Assert.All(_out.Packets, p => Assert.Equal(IpEcn.Ect0, EcnOf(p)));
        _out.Packets.Clear();
        // A pure ACK (for the host's data) is not ECN-capable (6.1.4 ... 6.1.6: only data is).
        _core.Receive(FromHost(v6, new TcpHeader(5000, syn.SourcePort, new SeqNumber(7001), syn.Seq + 1, TcpFlags.Ack | TcpFlags.Psh, 65535), payload: new byte[10]), _now);
        _now += TimeSpan.FromMilliseconds(100);
        _core.Poll(_now);
        var ack = Assert.Single(_out.Packets, p => Tcp(p).Length == 0);
        Assert.Equal(IpEcn.NotEct, EcnOf(ack));
    }

    [Theory]
    [InlineData((int)(TcpFlags.None))]
    [InlineData((int)(TcpFlags.Ece | TcpFlags.Cwr))] // reflected by a middlebox: not an answer (6.1.1)
    [InlineData((int)(TcpFlags.Cwr))]
    public void Rfc3168_6_1_1_SynAckWithoutEceAlone_LeavesEcnOff(int synAckEcnValue)
    {
        var synAckEcn = (TcpFlags)synAckEcnValue;
        var c = ActiveOpen(false, synAckEcn, out _);
        Assert.False(c.EcnEnabled);
        Write(c, 3000);
        Assert.All(_out.Packets, p => Assert.Equal(IpEcn.NotEct, EcnOf(p)));
    }

    [Theory]
    [InlineData((int)(TcpFlags.Ece | TcpFlags.Cwr), (int)(TcpFlags.Ece))]
    [InlineData((int)(TcpFlags.Ece), (int)(TcpFlags.None))]
    [InlineData((int)(TcpFlags.None), (int)(TcpFlags.None))]
    public void Rfc3168_6_1_1_PassiveOpen_AnswersAnEcnSetupSynWithEceAlone(int synEcnValue, int expectedValue)
    {
        var synEcn = (TcpFlags)synEcnValue;
        var expected = (TcpFlags)expectedValue;
        _core.Listen(IpAddress.AnyV6, 80, 8);
        _core.Receive(Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(1), default, TcpFlags.Syn | synEcn, 64240)), _now);
        var synAck = _out.Single();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack | expected, Tcp(synAck).Flags);
        Assert.Equal(IpEcn.NotEct, EcnOf(synAck));
    }

    [Fact]
    public void EcnOff_InTheSettings_NeitherRequestsNorAccepts()
    {
        _core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress(), Tcp = new TcpSettings { Ecn = false } }, _out);
        var c = ActiveOpen(false, TcpFlags.Ece, out var syn);
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        Assert.False(c.EcnEnabled);
        _core.Listen(IpAddress.AnyV4, 80, 8);
        _core.Receive(Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(1), default, TcpFlags.Syn | TcpFlags.Ece | TcpFlags.Cwr, 64240)), _now);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, Tcp(_out.Single()).Flags);
    }

    [Fact]
    public void RetransmittedSyn_NoLongerRequestsEcn()
    {
        var c = _core.Connect(Packets.Host, 5000, _now);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ece | TcpFlags.Cwr, Tcp(_out.Single()).Flags);
        _out.Packets.Clear();
        _now += TimeSpan.FromSeconds(1.5);
        _core.Poll(_now);
        Assert.Equal(TcpFlags.Syn, Tcp(_out.Single()).Flags);
        // The SYN-ACK to it then carries ECE in vain: ECN stays off.
        var syn = Tcp(_out.Single());
        _out.Packets.Clear();
        _core.Receive(Packets.Tcp(new TcpHeader(5000, syn.SourcePort, new SeqNumber(7000), syn.Seq + 1, TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Ece, 65535)), _now);
        Assert.False(c.EcnEnabled);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rfc3168_6_1_3_CeReceived_IsEchoedWithEceAtOnce_UntilCwr(bool v6)
    {
        var c = ActiveOpen(v6, TcpFlags.Ece, out var syn);
        var seq = new SeqNumber(7001);
        byte[] Data(TcpFlags extra, int n) => FromHost(v6, new TcpHeader(5000, syn.SourcePort, seq, syn.Seq + 1, TcpFlags.Ack | extra, 65535), payload: new byte[n]);

        _core.Receive(WithCe(Data(TcpFlags.None, 100)), _now);
        _core.Poll(_now); // the end of the receive batch, no time passing
        seq += 100;
        var first = Assert.Single(_out.Packets); // at once, not delayed
        Assert.True(Tcp(first).Flags.HasFlag(TcpFlags.Ece));
        Assert.Equal(1, c.CongestionMarksReceived);
        _out.Packets.Clear();

        // Unmarked data still gets ECE until the sender's CWR.
        for (int i = 0; i < 2; i++) { _core.Receive(Data(TcpFlags.None, 1000), _now); seq += 1000; }
        _now += TimeSpan.FromMilliseconds(50);
        _core.Poll(_now);
        Assert.NotEmpty(_out.Packets);
        Assert.All(_out.Packets, p => Assert.True(Tcp(p).Flags.HasFlag(TcpFlags.Ece)));
        _out.Packets.Clear();

        _core.Receive(Data(TcpFlags.Cwr, 1000), _now);
        seq += 1000;
        _core.Receive(Data(TcpFlags.None, 1000), _now);
        _now += TimeSpan.FromMilliseconds(50);
        _core.Poll(_now);
        Assert.NotEmpty(_out.Packets);
        Assert.All(_out.Packets, p => Assert.False(Tcp(p).Flags.HasFlag(TcpFlags.Ece)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rfc3168_6_1_2_Ece_ReducesTheWindowOncePerWindow_AndTheNextNewDataCarriesCwr(bool v6)
    {
        var c = ActiveOpen(v6, TcpFlags.Ece, out var syn);
        Write(c, 8000);
        var sent = _out.Packets.Select(Tcp).ToList();
        _out.Packets.Clear();
        int cwndBefore = c.GetStatistics().CongestionWindow;

        // The first segment is acknowledged with ECE: one reduction.
        var ackSeq = sent[0].Seq + sent[0].Length;
        _core.Receive(FromHost(v6, new TcpHeader(5000, syn.SourcePort, new SeqNumber(7001), ackSeq, TcpFlags.Ack | TcpFlags.Ece, 65535)), _now);
        int cwndAfter = c.GetStatistics().CongestionWindow;
        Assert.True(cwndAfter < cwndBefore, $"cwnd {cwndBefore} -> {cwndAfter}");
        Assert.Equal(1, c.EcnWindowReductions);

        // More ECEs for data of the same window: no further reduction.
        var ackSeq2 = sent[1].Seq + sent[1].Length;
        _core.Receive(FromHost(v6, new TcpHeader(5000, syn.SourcePort, new SeqNumber(7001), ackSeq2, TcpFlags.Ack | TcpFlags.Ece, 65535)), _now);
        Assert.Equal(1, c.EcnWindowReductions);

        // The next new data segment carries CWR, and only that one.
        _out.Packets.Clear();
        Write(c, 3000);
        var fresh = _out.Packets.Select(Tcp).Where(s => s.Length > 0).ToList();
        Assert.NotEmpty(fresh);
        Assert.True(fresh[0].Flags.HasFlag(TcpFlags.Cwr));
        Assert.All(fresh.Skip(1), s => Assert.False(s.Flags.HasFlag(TcpFlags.Cwr)));
        Assert.Equal(0, c.GetStatistics().Retransmissions);
    }

    [Fact]
    public void Rfc3168_6_1_5_Retransmissions_AreNotEcnCapable()
    {
        var c = ActiveOpen(false, TcpFlags.Ece, out _);
        Write(c, 1000);
        Assert.Equal(IpEcn.Ect0, EcnOf(_out.Single()));
        _out.Packets.Clear();
        // No ACK: the timeout resends it, without ECT.
        for (int i = 0; i < 100 && _out.Packets.Count == 0; i++) { _now += TimeSpan.FromMilliseconds(100); _core.Poll(_now); }
        var resent = _out.Packets.Where(p => Tcp(p).Length > 0).ToList();
        Assert.NotEmpty(resent);
        Assert.All(resent, p => Assert.Equal(IpEcn.NotEct, EcnOf(p)));
    }
}
