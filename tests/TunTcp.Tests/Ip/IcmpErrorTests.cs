using System.Buffers.Binary;
using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>
/// ICMP errors reaching connections: RFC 5927 4.1 validation, hard errors in SYN-SENT and soft
/// errors after (RFC 1122 4.2.3.9, RFC 5461), path MTU discovery (RFC 1191, RFC 8201) with the
/// segments in flight re-cut, and the per-destination cache.
/// </summary>
public class IcmpErrorTests
{
    private readonly RecordingOutput _out = new();
    private readonly NetStackCore _core;
    private Instant _now = Instant.Zero;

    public IcmpErrorTests() => _core = new NetStackCore(Packets6.DualStack(), _out);

    private static IpAddress Host(bool v6) => v6 ? Packets6.Host : Packets.Host;

    /// <summary>An ICMP error from the host (as a router on the path would send it) quoting <paramref name="invoking"/>.</summary>
    private static byte[] IcmpError(byte[] invoking, bool v6, byte type, byte code, uint rest = 0)
    {
        var message = new byte[1500];
        if (!v6)
        {
            int n = Icmpv4Writer.WriteError(message, (Icmpv4Type)type, code, rest, invoking);
            return Packets.Ip(Packets.Host, Packets.Stack, IpProtocol.Icmp, message.AsSpan(0, n));
        }
        int m = Icmpv6Writer.WriteError(message, (Icmpv6Type)type, code, rest, invoking, Packets6.Host, Packets6.Stack);
        return Packets6.Ip(Packets6.Host, Packets6.Stack, (byte)IpProtocol.Icmpv6, message.AsSpan(0, m));
    }

    private static (byte Type, byte Code) Unreachable(bool v6, string kind) => (v6, kind) switch
    {
        (false, "net") => (3, 0),
        (false, "host") => (3, 1),
        (false, "port") => (3, 3),
        (true, "net") => (1, 0),
        (true, "host") => (1, 3),
        (true, "port") => (1, 4),
        _ => throw new ArgumentException(kind),
    };

    private TcpConnection Established(bool v6, out byte[] syn) => CoreTcp.ActiveOpen(_core, _out, v6, _now, out syn);

    private void Write(TcpConnection c, int bytes) => CoreTcp.Write(_core, c, bytes, _now);

    private static List<(SeqNumber Seq, int Length)> SentSegments(List<byte[]> packets) =>
        packets.Select(p => { var t = SentTcp.Parse(p); return (t.Seq, t.Length); }).ToList();

    [Theory]
    [InlineData(false, "port", TcpError.ConnectionRefused)]
    [InlineData(false, "host", TcpError.HostUnreachable)]
    [InlineData(false, "net", TcpError.NetworkUnreachable)]
    [InlineData(true, "port", TcpError.ConnectionRefused)]
    [InlineData(true, "host", TcpError.HostUnreachable)]
    [InlineData(true, "net", TcpError.NetworkUnreachable)]
    public void Rfc5461_UnreachableForOurSyn_FailsTheConnect(bool v6, string kind, TcpError expected)
    {
        var c = _core.Connect(Host(v6), 5000, _now);
        var syn = _out.Single();
        var (type, code) = Unreachable(v6, kind);
        _core.Receive(IcmpError(syn, v6, type, code), _now);

        Assert.Equal(TcpConnectionState.Closed, c.State);
        Assert.Equal(expected, c.Error);
        Assert.Equal(1, _core.Statistics.IcmpErrorsToConnections);
        Assert.Equal(0, _core.ConnectionCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rfc5927_ForgedErrors_WrongSequenceOrTuple_ChangeNothing(bool v6)
    {
        var c = _core.Connect(Host(v6), 5000, _now);
        var syn = _out.Single();
        int tcpAt = v6 ? Ipv6Header.Length : Ipv4Header.Length;
        var (type, code) = Unreachable(v6, "port");

        var wrongSeq = (byte[])syn.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(wrongSeq.AsSpan(tcpAt + 4), BinaryPrimitives.ReadUInt32BigEndian(syn.AsSpan(tcpAt + 4)) + 1000);
        _core.Receive(IcmpError(wrongSeq, v6, type, code), _now);
        var wrongPort = (byte[])syn.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(wrongPort.AsSpan(tcpAt), (ushort)(c.Tuple.LocalPort ^ 1));
        _core.Receive(IcmpError(wrongPort, v6, type, code), _now);
        var truncated = IcmpError(syn.AsSpan(0, tcpAt + 4).ToArray(), v6, type, code);
        _core.Receive(truncated, _now);

        Assert.Equal(TcpConnectionState.SynSent, c.State);
        Assert.Equal(3, _core.Statistics.IcmpErrorsIgnored);
        Assert.Equal(0, _core.Statistics.IcmpErrorsToConnections);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Rfc1122_4_2_3_9_UnreachableWhenEstablished_IsSoft_AndReportedOnlyOnTimeout(bool v6)
    {
        var c = Established(v6, out _);
        Write(c, 1000);
        var data = Assert.Single(_out.Packets);
        _out.Packets.Clear();
        var (type, code) = Unreachable(v6, "host");
        _core.Receive(IcmpError(data, v6, type, code), _now);

        Assert.Equal(TcpConnectionState.Established, c.State);
        Assert.Equal(TcpError.HostUnreachable, c.SoftError);
        // No ACK ever comes: retransmissions run out and the connection reports the soft error.
        for (int i = 0; i < 100_000 && c.State != TcpConnectionState.Closed; i++)
        {
            _now = Instant.Min(_core.NextDeadline, _now + TimeSpan.FromSeconds(30));
            _core.Poll(_now);
        }
        Assert.Equal(TcpConnectionState.Closed, c.State);
        Assert.Equal(TcpError.HostUnreachable, c.Error);
    }

    [Fact]
    public void SoftError_IsForgotten_WhenNewDataIsAcknowledged()
    {
        var c = Established(false, out _);
        Write(c, 1000);
        var data = SentTcp.Parse(_out.Packets[0]);
        _core.Receive(IcmpError(_out.Packets[0], false, 3, 1), _now);
        Assert.Equal(TcpError.HostUnreachable, c.SoftError);
        var ack = new TcpHeader(5000, c.Tuple.LocalPort, new SeqNumber(7001), data.Seq + 1000, TcpFlags.Ack, 65535);
        _core.Receive(Packets.Tcp(ack), _now);
        Assert.Equal(TcpError.None, c.SoftError);
    }

    [Theory]
    [InlineData(false, 1000, 1000)]
    [InlineData(false, 200, NetStackCore.MinimumPathMtu4)]
    [InlineData(true, 1400, 1400)]
    [InlineData(true, 600, 1280)]
    public void Rfc1191_Rfc8201_TooBig_LowersTheMss_AndReCutsWhatIsInFlightAtOnce(bool v6, int reported, int expectedMtu)
    {
        var c = Established(v6, out _);
        Write(c, 6000);
        var before = SentSegments(_out.Packets);
        Assert.All(before, s => Assert.True(s.Length <= 1460));
        Assert.Contains(before, s => s.Length > expectedMtu - 60);
        var first = _out.Packets[0];
        _out.Packets.Clear();

        var error = v6 ? IcmpError(first, true, 2, 0, (uint)reported) : IcmpError(first, false, 3, 4, (uint)reported);
        _core.Receive(error, _now);

        int ipHeader = v6 ? 40 : 20;
        Assert.Equal(expectedMtu, c.PathMtu);
        Assert.Equal(expectedMtu, _core.PathMtuTo(Host(v6)));
        Assert.Equal(1, _core.Statistics.PathMtuReductions);
        var resent = SentSegments(_out.Packets);
        Assert.NotEmpty(resent);
        Assert.All(_out.Packets, p => Assert.True(p.Length <= expectedMtu, $"a {p.Length}-byte packet after the path MTU fell to {expectedMtu}"));
        // The re-cut retransmissions start at SND.UNA and cover every segment in flight that no
        // longer fits (a small last one that still fits is left alone, as Linux does).
        int limit = expectedMtu - ipHeader - 20;
        Assert.Equal(before[0].Seq, resent[0].Seq);
        Assert.Equal(before.Where(s => s.Length > limit).Sum(s => s.Length), resent.Sum(s => s.Length));
        Assert.All(resent, s => Assert.True(s.Length <= limit));
        Assert.Equal(TcpConnectionState.Established, c.State);
    }

    [Fact]
    public void PathMtu_IsRemembered_ForNewConnectionsToThatDestination_UntilItExpires()
    {
        var c = Established(false, out _);
        Write(c, 3000);
        _core.Receive(IcmpError(_out.Packets[0], false, 3, 4, 1200), _now);
        Assert.Equal(1200, _core.PathMtuTo(Packets.Host));

        _out.Packets.Clear();
        var second = Established(false, out _);
        Assert.Equal(1200, second.PathMtu);
        Write(second, 3000);
        Assert.All(_out.Packets, p => Assert.True(p.Length <= 1200));

        _now += TimeSpan.FromMinutes(11);
        _core.Poll(_now);
        Assert.Equal(_core.Mtu, _core.PathMtuTo(Packets.Host));
        Assert.Equal(1200, c.PathMtu); // a live connection keeps what it learned
    }

    [Fact]
    public void TooBig_QuotingAnAcknowledgedOrForgedSegment_IsIgnored_AndNotCached()
    {
        var c = Established(false, out _);
        Write(c, 1000);
        var data = _out.Packets[0];
        var seg = SentTcp.Parse(data);
        var ack = new TcpHeader(5000, c.Tuple.LocalPort, new SeqNumber(7001), seg.Seq + 1000, TcpFlags.Ack, 65535);
        _core.Receive(Packets.Tcp(ack), _now);

        _core.Receive(IcmpError(data, false, 3, 4, 800), _now); // stale: already acknowledged
        Assert.Equal(_core.Mtu, c.PathMtu);
        Assert.Equal(_core.Mtu, _core.PathMtuTo(Packets.Host));
        Assert.Equal(1, _core.Statistics.IcmpErrorsIgnored);
    }

    [Fact]
    public void FragmentationNeeded_WithoutAnMtu_UsesTheRfc1191Plateau()
    {
        var c = Established(false, out _);
        Write(c, 3000);
        // The first data packet is 1500 bytes: the plateau below it is 1492.
        _core.Receive(IcmpError(_out.Packets[0], false, 3, 4, 0), _now);
        Assert.Equal(1492, c.PathMtu);
    }
}
