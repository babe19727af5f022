using System.Buffers.Binary;
using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>
/// What all connections of one stack share: the secret behind initial sequence numbers, the
/// random source, the system-wide challenge-ACK budget and the engine's counters.
/// </summary>
internal sealed class TcpEnvironment
{
    private readonly SipKey _secret;
    private long _challengeWindowStart = long.MinValue;
    private int _challengeAcksInWindow;
    private long _challengeBudget;

    /// <summary>Told of every exception a connection's observer threw (the stack logs it and goes on).</summary>
    public Action<TcpConnection, Exception>? ObserverFailed { get; set; }

    /// <param name="random">Source of the ISN secret, ports and offsets; seed it in tests.</param>
    /// <param name="challengeAcksPerSecond">RFC 5961 7: system-wide limit of challenge ACKs per second (Linux: 1000), randomized per second around it.</param>
    public TcpEnvironment(IRandomSource random, int challengeAcksPerSecond = 1000)
    {
        Random = random;
        Span<byte> secret = stackalloc byte[16];
        random.Fill(secret);
        _secret = SipKey.FromBytes(secret);
        ChallengeAcksPerSecond = challengeAcksPerSecond;
    }

    public IRandomSource Random { get; }

    public int ChallengeAcksPerSecond { get; }

    public TcpStatistics Statistics { get; } = new();

    /// <summary>The budget every connection's rings are charged to (null: unlimited).</summary>
    public TcpMemoryBudget? Memory { get; init; }

    /// <summary>
    /// Largest IP packet the link cuts into segments itself (TSO/GSO), 0 when it does not. With
    /// it, new data goes out in super-segments of whole MSS-sized segments; retransmissions stay
    /// single segments.
    /// </summary>
    public int SegmentationOffloadBytes { get; set; }

    /// <summary>
    /// RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M is
    /// a timer that ticks every 4 microseconds and F is a keyed hash (SipHash-2-4, as Linux's) of the
    /// connection's 4-tuple. The ISN of a new incarnation thus grows with time per tuple, while
    /// an off-path attacker cannot guess it.
    /// </summary>
    public SeqNumber InitialSequenceNumber(in TcpTuple tuple, Instant now)
    {
        uint m = unchecked((uint)(now.Microseconds / 4));
        return new SeqNumber(unchecked(m + KeyedHash(tuple, 0)));
    }

    /// <summary>
    /// A per-connection offset added to our timestamp clock (RFC 7323 5.4 / 7.1), so TSval does
    /// not reveal the host's uptime or link connections to one another.
    /// </summary>
    public uint TimestampOffset(in TcpTuple tuple) => KeyedHash(tuple, 1);

    // ---- SYN cookies (RFC 4987 3.6; the encoding Linux uses, net/ipv4/syncookies.c) ----

    /// <summary>The cookie clock: one tick per 2^26 us (about 67 s), as Linux's per-minute counter.</summary>
    internal const int CookiePeriodShift = 26;

    /// <summary>A cookie is valid during the tick it was made in and the next one (Linux: MAX_SYNCOOKIE_AGE 2).</summary>
    internal const int CookieMaxAge = 2;

    /// <summary>The MSS values a cookie can carry (2 bits), per family, as Linux's msstab (IPv6: the IPv6 MTUs minus 60).</summary>
    internal static readonly ushort[] CookieMss4 = [536, 1300, 1440, 1460], CookieMss6 = [1220, 1420, 1440, 8940];

    private readonly SipKey[] _cookieKeys = new SipKey[3];
    private readonly long[] _cookieKeyTicks = [-1, -1, -1];

    /// <summary>
    /// The initial sequence number of a stateless SYN-ACK (RFC 4987 3.6): ISN = H1(tuple) + the
    /// peer's ISN + (tick &lt;&lt; 24) + ((H2(tuple, tick) + MSS index) mod 2^24). H1 is keyed with
    /// the stack's secret, H2 with a key of its own tick, derived from the secret, so the key that
    /// makes a cookie changes every tick (a rotating secret) and only the last two are accepted.
    /// </summary>
    internal SeqNumber EncodeCookie(in TcpTuple tuple, SeqNumber clientIsn, int mssIndex, Instant now)
    {
        long tick = now.Microseconds >> CookiePeriodShift;
        uint value = unchecked(KeyedHash(tuple, 2) + clientIsn.Value + ((uint)tick << 24)
            + ((KeyedHash(tuple, 3, CookieKey(tick)) + (uint)mssIndex) & 0x00FF_FFFF));
        return new SeqNumber(value);
    }

    /// <summary>
    /// Checks the cookie an ACK returns (its ACK minus one) against the tuple and the peer's ISN (its
    /// SEQ minus one): made by us within <see cref="CookieMaxAge"/> ticks, with a valid MSS index.
    /// </summary>
    internal bool TryDecodeCookie(in TcpTuple tuple, SeqNumber clientIsn, SeqNumber cookie, Instant now, out int mssIndex)
    {
        mssIndex = 0;
        long tick = now.Microseconds >> CookiePeriodShift;
        uint rest = unchecked(cookie.Value - KeyedHash(tuple, 2) - clientIsn.Value);
        long age = (tick - (rest >> 24)) & 0xFF;
        if (age >= CookieMaxAge || tick - age < 0) return false;
        uint index = unchecked(rest - KeyedHash(tuple, 3, CookieKey(tick - age))) & 0x00FF_FFFF;
        if (index >= CookieMss4.Length) return false;
        mssIndex = (int)index;
        return true;
    }

    /// <summary>The key of one cookie tick: two PRF outputs of the secret on ("syncookie", tick, half), cached for the ticks in use.</summary>
    private SipKey CookieKey(long tick)
    {
        int slot = (int)(tick % _cookieKeys.Length);
        if (_cookieKeyTicks[slot] != tick)
        {
            Span<byte> input = stackalloc byte[18];
            "syncookie"u8.CopyTo(input);
            BinaryPrimitives.WriteInt64BigEndian(input[9..], tick);
            input[17] = 0;
            ulong k0 = SipHash.Hash(_secret, input);
            input[17] = 1;
            _cookieKeys[slot] = new SipKey(k0, SipHash.Hash(_secret, input));
            _cookieKeyTicks[slot] = tick;
        }
        return _cookieKeys[slot];
    }

    private uint KeyedHash(in TcpTuple tuple, byte purpose) => KeyedHash(tuple, purpose, _secret);

    private static uint KeyedHash(in TcpTuple tuple, byte purpose, SipKey key)
    {
        // IPv4: the 12 bytes of the two addresses and ports; IPv6: the 36 bytes of their full form.
        Span<byte> input = stackalloc byte[37];
        int length;
        if (tuple.IsV4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(input, tuple.LocalAddress.V4.Value);
            BinaryPrimitives.WriteUInt16BigEndian(input[4..], tuple.LocalPort);
            BinaryPrimitives.WriteUInt32BigEndian(input[6..], tuple.RemoteAddress.V4.Value);
            BinaryPrimitives.WriteUInt16BigEndian(input[10..], tuple.RemotePort);
            length = 12;
        }
        else
        {
            tuple.LocalAddress.WriteV6(input);
            BinaryPrimitives.WriteUInt16BigEndian(input[16..], tuple.LocalPort);
            tuple.RemoteAddress.WriteV6(input[18..]);
            BinaryPrimitives.WriteUInt16BigEndian(input[34..], tuple.RemotePort);
            length = 36;
        }
        input[length] = purpose;
        return (uint)SipHash.Hash(key, input[..(length + 1)]);
    }

    /// <summary>
    /// RFC 5961 7: challenge ACKs are limited per second across the whole stack, so that a
    /// blind attacker cannot make us flood. A fixed budget would itself be a side channel
    /// (CVE-2016-5696: an off-path attacker counts the challenge ACKs left on its own connection
    /// to learn whether its spoofed segments hit another connection's window), so, as Linux does
    /// since then, each second's budget is random in [limit/2, limit/2 + limit).
    /// </summary>
    public bool TryTakeChallengeAck(Instant now)
    {
        long second = now.Microseconds / 1_000_000;
        if (second != _challengeWindowStart)
        {
            _challengeWindowStart = second;
            _challengeAcksInWindow = 0;
            long limit = Math.Max(0, ChallengeAcksPerSecond);
            _challengeBudget = limit == 0 ? 0 : (limit + 1) / 2 + (long)(Random.NextUInt32() % (ulong)limit);
        }
        if (_challengeAcksInWindow >= _challengeBudget)
        {
            Statistics.ChallengeAcksSuppressed++;
            return false;
        }
        _challengeAcksInWindow++;
        Statistics.ChallengeAcksSent++;
        return true;
    }
}

/// <summary>Counters of the TCP engine of one stack (written by the stack thread).</summary>
internal sealed class TcpStatistics
{
    public long ActiveOpens;
    public long PassiveOpens;
    public long ConnectionsEstablished;
    public long ConnectionsClosed;
    public long ResetsReceived;
    public long ResetsSent;
    public long SegmentsRetransmitted;
    public long RetransmissionTimeouts;
    public long FastRetransmits;
    public long SynBacklogDrops;
    /// <summary>SYN-ACKs sent statelessly with a SYN cookie because a listener's half-open queue was full (RFC 4987 3.6).</summary>
    public long SynCookiesSent;
    /// <summary>ACKs whose cookie was valid: connections made from a cookie.</summary>
    public long SynCookiesValidated;
    /// <summary>ACKs to a listener that had sent cookies recently, whose cookie was not valid (forged, expired or replayed to another tuple); answered with RST.</summary>
    public long SynCookiesFailed;
    public long AcceptQueueDrops;
    public long ChallengeAcksSent;
    public long ChallengeAcksSuppressed;
    public long PawsDrops;
    /// <summary>ACKs not sent in reply to unacceptable segments without data (per-connection rate limit).</summary>
    public long OutOfWindowAcksSuppressed;
    public long UnacceptableSegments;
    public long OutOfOrderSegments;
    public long OutOfOrderDrops;
    /// <summary>Segments dropped unacknowledged because the memory budget let no ring grow to hold them.</summary>
    public long MemoryDrops;
    /// <summary>ACKs to a listener on a 4-tuple that had just closed in order, not taken as SYN cookies (answered with RST).</summary>
    public long CookieAcksAfterClose;
    /// <summary>Out-of-order bytes given up (reneged) at the memory limit.</summary>
    public long OutOfOrderPrunedBytes;
    /// <summary>Ring bytes given back to the memory budget by shrinking idle rings.</summary>
    public long MemoryReclaimedBytes;
    public long ZeroWindowProbes;
    public long KeepaliveProbes;
    public long TimeWaitReopens;
    public long Timeouts;
    public long SpuriousRetransmissionsUndone;
    public long TailLossProbes;
    /// <summary>Exceptions thrown by connection observers (application code), caught and logged.</summary>
    public long ObserverFaults;
}
