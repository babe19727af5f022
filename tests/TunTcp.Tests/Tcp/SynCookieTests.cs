using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// SYN cookies (RFC 4987 3.6, the encoding Linux uses): once a listener's half-open queue is full,
/// SYNs are answered without state, the ISN encoding the tuple, the peer's ISN, the time and the
/// MSS, and, with timestamps, the TSval's low 6 bits the window scale, SACK and ECN; the ACK that
/// returns a valid cookie rebuilds the connection, which then behaves like any other.
/// </summary>
public class SynCookieTests
{
    private const ushort Port = 80;
    private readonly RecordingOutput _out = new();
    private readonly NetStackCore _core;
    private readonly TcpListenQueue _listener;
    private Instant _now = Instant.FromMilliseconds(10_000);

    public SynCookieTests() : this(cookies: true) { }

    private SynCookieTests(bool cookies)
    {
        _core = new NetStackCore(new NetStackOptions
        {
            Address = Packets.Stack.ToIPAddress(),
            Tcp = new TcpSettings { SynBacklog = 1, SynCookies = cookies },
            Random = new SeededRandomSource(7),
        }, _out);
        _listener = _core.Listen(IpAddress.AnyV4, Port, backlog: 8);
        // The one half-open slot is taken by a first SYN that stays half-open.
        _core.Receive(Syn(30000, 1), _now);
        _out.Packets.Clear();
    }

    private TcpStatistics Stats => _core.TcpEnvironment.Statistics;

    private static TcpOptions LinuxSyn(ushort mss = 1460, byte? ws = 7, bool ts = true, bool sack = true)
    {
        var o = new TcpOptions { MaxSegmentSize = mss, WindowScale = ws, SackPermitted = sack };
        if (ts) o.SetTimestamps(123_456, 0);
        return o;
    }

    private static byte[] Syn(ushort port, uint isn, TcpOptions? options = null, TcpFlags extra = TcpFlags.None) =>
        Packets.Tcp(new TcpHeader(port, Port, new SeqNumber(isn), default, TcpFlags.Syn | extra, 64240), options ?? LinuxSyn());

    private static byte[] Ack(ushort port, uint seq, SeqNumber ack, ushort window, uint? tsEcho, ReadOnlySpan<byte> payload = default)
    {
        var o = new TcpOptions();
        if (tsEcho is uint echo) o.SetTimestamps(123_500, echo);
        return Packets.Tcp(new TcpHeader(port, Port, new SeqNumber(seq), ack, TcpFlags.Ack | (payload.IsEmpty ? 0 : TcpFlags.Psh), window), o, payload);
    }

    /// <summary>The SYN-ACK (or any segment) we sent: header and options.</summary>
    private static (SentTcp Sent, TcpOptions Options, ushort Window) Parse(byte[] packet)
    {
        Assert.True(TcpPacket.TryParse(packet.AsSpan(Ipv4Header.Length), out var tcp, out _));
        return (SentTcp.Parse(packet), tcp.Options, tcp.Window);
    }

    [Fact]
    public void Rfc4987_CookieRoundTrip_ForEachMss_FailsForAnotherTupleIsnOrAfterTwoTicks()
    {
        var env = _core.TcpEnvironment;
        var tuple = new TcpTuple(Packets.Stack, Port, Packets.Host, 40000);
        for (int index = 0; index < TcpEnvironment.CookieMss4.Length; index++)
        {
            var cookie = env.EncodeCookie(tuple, new SeqNumber(5000), index, _now);
            Assert.True(env.TryDecodeCookie(tuple, new SeqNumber(5000), cookie, _now, out int decoded));
            Assert.Equal(index, decoded);
            // Still valid one tick later, not two.
            Assert.True(env.TryDecodeCookie(tuple, new SeqNumber(5000), cookie, _now + TimeSpan.FromSeconds(67), out _));
            Assert.False(env.TryDecodeCookie(tuple, new SeqNumber(5000), cookie, _now + TimeSpan.FromSeconds(2 * 68), out _));
            Assert.False(env.TryDecodeCookie(tuple with { RemotePort = 40001 }, new SeqNumber(5000), cookie, _now, out _));
        }
        // A blind attacker's guesses: a random ACK passes with probability 2/256 * 4/2^24.
        var random = new SeededRandomSource(99);
        int accepted = 0;
        for (int i = 0; i < 10_000; i++)
            if (env.TryDecodeCookie(tuple, new SeqNumber(5000), new SeqNumber(random.NextUInt32()), _now, out _)) accepted++;
        Assert.Equal(0, accepted);
    }

    [Fact]
    public void HalfOpenQueueFull_SynGetsStatelessSynAck_WithTheOptionsInTheTsval()
    {
        _core.Receive(Syn(40000, 5000), _now);

        var (synAck, options, window) = Parse(_out.Single());
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        Assert.Equal(new SeqNumber(5001), synAck.Ack);
        Assert.Equal(1, _core.ConnectionCount); // no state for it
        Assert.Equal(1, Stats.SynCookiesSent);
        Assert.Equal((ushort)1460, options.MaxSegmentSize);
        Assert.NotNull(options.WindowScale);
        Assert.True(options.SackPermitted);
        Assert.True(options.HasTimestamps);
        Assert.Equal(123_456u, options.TimestampEcho);
        // Low 6 bits: the peer's window scale 7, SACK (0x10); no ECN was asked for.
        Assert.Equal(7u | 0x10, options.TimestampValue & 0x3F);
        Assert.True(window > 0);
    }

    [Fact]
    public void ValidCookieAck_RebuildsTheConnection_WithTheEncodedOptions_AndItsData()
    {
        _core.Receive(Syn(40000, 5000, LinuxSyn(mss: 1400)), _now);
        var (synAck, options, _) = Parse(_out.Single());
        _out.Packets.Clear();

        _now += TimeSpan.FromMilliseconds(5);
        _core.Receive(Ack(40000, 5001, synAck.Seq + 1, window: 1000, tsEcho: options.TimestampValue, "hello"u8), _now);
        _core.Poll(_now);

        Assert.Equal(1, Stats.SynCookiesValidated);
        Assert.Equal(2, _core.ConnectionCount);
        Assert.True(_listener.TryAccept(out var c));
        Assert.True(c.FromSynCookie);
        Assert.Equal(TcpConnectionState.Established, c.State);
        var stats = c.GetStatistics();
        Assert.True(stats.WindowScaling && stats.Timestamps && stats.Sack);
        Assert.Equal(1000 << 7, stats.PeerWindow); // the peer's window, scaled by its encoded shift
        Assert.Equal(1300 - 12, stats.Mss); // the cookie's MSS (1400 rounds down to 1300), minus the timestamp option
        var read = new byte[8];
        Assert.Equal("hello"u8.ToArray(), read.AsSpan(0, c.ReceiveBuffer.Read(read)).ToArray());
        _core.Poll(_now + TimeSpan.FromMilliseconds(250)); // the delayed ACK
        Assert.Contains(_out.Packets, p => SentTcp.Parse(p).Ack == new SeqNumber(5006));

        // And it sends like any other connection.
        _out.Packets.Clear();
        CoreTcp.Write(_core, c, 100, _now);
        Assert.Contains(_out.Packets, p => SentTcp.Parse(p).Length == 100);
    }

    [Fact]
    public void Rfc7323_TheCookieTsval_IsNeverAheadOfTheClock_SoTheFirstDataPassesThePeersPaws()
    {
        // RFC 7323 5.3/5.5: the peer drops a segment whose TSval is older than the last it took
        // (PAWS). Writing the option bits into the low 6 bits of TSval must not move it ahead of
        // our clock (Linux's cookie_init_timestamp steps back by 64 when it would); otherwise the
        // rebuilt connection's first data carries a smaller TSval than the SYN-ACK, the peer drops
        // it, and the reply waits for a retransmission timeout (measured: 1 s per connection).
        // Try many clock phases within the 64 ms the bits span.
        for (int i = 0; i < 64; i++)
        {
            _out.Packets.Clear();
            ushort port = (ushort)(41000 + i);
            _core.Receive(Syn(port, 5000), _now);
            var (synAck, options, _) = Parse(_out.Single());
            _out.Packets.Clear();
            _core.Receive(Ack(port, 5001, synAck.Seq + 1, window: 1000, tsEcho: options.TimestampValue, "hello"u8), _now);
            _core.Poll(_now);
            Assert.True(_listener.TryAccept(out var c));
            CoreTcp.Write(_core, c, 10, _now);
            var data = _out.Packets.Select(Parse).Single(p => p.Sent.Length == 10);
            Assert.True(unchecked((int)(data.Options.TimestampValue - options.TimestampValue)) >= 0,
                $"phase {i}: SYN-ACK TSval {options.TimestampValue}, first data TSval {data.Options.TimestampValue}");
            _now += TimeSpan.FromMilliseconds(1);
        }
    }

    [Fact]
    public void WithoutTimestamps_TheSynAckOffersOnlyTheMss_AndTheConnectionHasNoScalingOrSack()
    {
        _core.Receive(Syn(40000, 5000, LinuxSyn(ts: false), TcpFlags.Ece | TcpFlags.Cwr), _now);
        var (synAck, options, _) = Parse(_out.Single());
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags); // no ECE: ECN cannot be kept without timestamps
        Assert.Null(options.WindowScale);
        Assert.False(options.SackPermitted);
        Assert.False(options.HasTimestamps);
        _out.Packets.Clear();

        _core.Receive(Ack(40000, 5001, synAck.Seq + 1, window: 1000, tsEcho: null), _now);
        Assert.True(_listener.TryAccept(out var c));
        var stats = c.GetStatistics();
        Assert.False(stats.WindowScaling || stats.Timestamps || stats.Sack);
        Assert.Equal(1000, stats.PeerWindow);
        Assert.Equal(1460, stats.Mss);
    }

    [Fact]
    public void EcnAskedForWithTimestamps_IsKeptInTheCookie()
    {
        _core.Receive(Syn(40000, 5000, null, TcpFlags.Ece | TcpFlags.Cwr), _now);
        var (synAck, options, _) = Parse(_out.Single());
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Ece, synAck.Flags);
        Assert.Equal(0x20u, options.TimestampValue & 0x20);
        _out.Packets.Clear();
        _core.Receive(Ack(40000, 5001, synAck.Seq + 1, window: 1000, tsEcho: options.TimestampValue), _now);
        Assert.True(_listener.TryAccept(out var c));
        Assert.True(c.EcnEnabled);
    }

    [Fact]
    public void ForgedAck_GetsRst_AndMakesNothing()
    {
        _core.Receive(Syn(40000, 5000), _now);
        var (synAck, options, _) = Parse(_out.Single());
        _out.Packets.Clear();

        _core.Receive(Ack(40000, 5001, synAck.Seq + 2, window: 1000, tsEcho: options.TimestampValue), _now);
        var rst = SentTcp.Parse(_out.Single());
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(1, Stats.SynCookiesFailed);
        Assert.Equal(1, _core.ConnectionCount);
        Assert.False(_listener.TryAccept(out _));
    }

    [Fact]
    public void CookieReplayedFromAnotherPort_OrAfterItExpired_GetsRst()
    {
        _core.Receive(Syn(40000, 5000), _now);
        var (synAck, options, _) = Parse(_out.Single());
        _out.Packets.Clear();

        _core.Receive(Ack(40001, 5001, synAck.Seq + 1, window: 1000, tsEcho: options.TimestampValue), _now);
        Assert.Equal(TcpFlags.Rst, SentTcp.Parse(_out.Single()).Flags);
        _out.Packets.Clear();

        // Two cookie ticks (2 x 67 s) later the cookie is dead; a fresh SYN keeps the check armed.
        _now += TimeSpan.FromSeconds(100);
        _core.Receive(Syn(40002, 9000), _now);
        _out.Packets.Clear();
        _now += TimeSpan.FromSeconds(40);
        _core.Receive(Ack(40000, 5001, synAck.Seq + 1, window: 1000, tsEcho: options.TimestampValue), _now);
        Assert.Equal(TcpFlags.Rst, SentTcp.Parse(_out.Single()).Flags);
        Assert.Equal(2, Stats.SynCookiesFailed);
        Assert.Equal(0, Stats.SynCookiesValidated);
    }

    [Fact]
    public void AckEchoingATsvalFromTheFuture_IsNotAccepted()
    {
        _core.Receive(Syn(40000, 5000), _now);
        var (synAck, options, _) = Parse(_out.Single());
        _out.Packets.Clear();
        uint forged = options.TimestampValue + 3_600_000; // an hour ahead of our clock
        _core.Receive(Ack(40000, 5001, synAck.Seq + 1, window: 1000, tsEcho: forged), _now);
        Assert.Equal(TcpFlags.Rst, SentTcp.Parse(_out.Single()).Flags);
        Assert.Equal(1, Stats.SynCookiesFailed);
    }

    [Fact]
    public void StrayAck_WhenNoCookieWasSent_IsAPlainRst()
    {
        _core.Receive(Ack(40000, 5001, new SeqNumber(77), window: 1000, tsEcho: null), _now);
        Assert.Equal(TcpFlags.Rst, SentTcp.Parse(_out.Single()).Flags);
        Assert.Equal(0, Stats.SynCookiesFailed);
    }

    [Fact]
    public void WithCookiesOff_TheExcessSynIsDropped()
    {
        var t = new SynCookieTests(cookies: false);
        t._core.Receive(Syn(40000, 5000), t._now);
        Assert.Empty(t._out.Packets);
        Assert.Equal(1, t.Stats.SynBacklogDrops);
        Assert.Equal(0, t.Stats.SynCookiesSent);
    }

    // Found at scale (bench/scale.sh, 60,000 connections closed at once): after a passive close
    // ends in CLOSED, a late duplicate of the peer's last ACK (from its TIME-WAIT, answering a FIN
    // we retransmitted) decodes as a valid cookie, because both FINs add one to SEG.SEQ and SEG.ACK
    // and the cookie check uses only their difference. It must not rebuild a connection (one with
    // no timer, which nothing would ever end): it gets the plain RST of a stray ACK. A new SYN on
    // the same 4-tuple is a new incarnation and may use a cookie again.
    [Fact]
    public void LateAckAfterAPassiveClose_DoesNotRebuildAConnectionFromTheCookie()
    {
        var noTs = LinuxSyn(ts: false);
        _core.Receive(Syn(40000, 5000, noTs), _now);
        var synAck = SentTcp.Parse(_out.Single());
        _out.Packets.Clear();
        _core.Receive(Ack(40000, 5001, synAck.Seq + 1, window: 1000, tsEcho: null), _now);
        Assert.True(_listener.TryAccept(out var c));
        Assert.Equal(TcpConnectionState.Established, c.State);

        // The peer closes, we close: FIN in, FIN out (LAST-ACK), the peer's ACK: CLOSED, forgotten.
        _core.Receive(Packets.Tcp(new TcpHeader(40000, Port, new SeqNumber(5001), synAck.Seq + 1, TcpFlags.Fin | TcpFlags.Ack, 1000)), _now);
        _core.Close(c, _now);
        _core.Poll(_now);
        Assert.Equal(TcpConnectionState.LastAck, c.State);
        var lastAck = Ack(40000, 5002, synAck.Seq + 2, window: 1000, tsEcho: null);
        _core.Receive(lastAck, _now);
        Assert.Equal(TcpConnectionState.Closed, c.State);
        Assert.Equal(1, _core.ConnectionCount); // the constructor's half-open one
        _out.Packets.Clear();

        // The late duplicate: a plain RST, no connection.
        _now += TimeSpan.FromMilliseconds(300);
        _core.Receive(lastAck, _now);
        Assert.Equal(1, _core.ConnectionCount);
        Assert.Equal(1, Stats.SynCookiesValidated);
        var rst = SentTcp.Parse(_out.Single());
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(synAck.Seq + 2, rst.Seq);
        _out.Packets.Clear();

        // A new incarnation of the tuple still connects through a cookie.
        _now += TimeSpan.FromSeconds(1);
        _core.Receive(Syn(40000, 90_000, noTs), _now);
        var synAck2 = SentTcp.Parse(_out.Single());
        _core.Receive(Ack(40000, 90_001, synAck2.Seq + 1, window: 1000, tsEcho: null), _now);
        Assert.Equal(2, Stats.SynCookiesValidated);
        Assert.True(_listener.TryAccept(out var again));
        Assert.Equal(TcpConnectionState.Established, again.State);
    }
}
