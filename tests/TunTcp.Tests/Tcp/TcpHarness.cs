using System.Text;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Tcp;

/// <summary>One segment the engine emitted, copied out.</summary>
internal sealed record Emitted(TcpTuple Tuple, TcpHeader Header, TcpOptions Options, byte[] Payload)
{
    public SeqNumber Seq => Header.SequenceNumber;
    public SeqNumber Ack => Header.AcknowledgmentNumber;
    public TcpFlags Flags => Header.Flags;
    public ushort Window => Header.Window;
    public override string ToString() =>
        $"[{Flags.ToText()}] seq {Seq.Value} ack {Ack.Value} win {Window} len {Payload.Length} {Options}";
}

/// <summary>
/// A segment as a test writes it, in both directions: what the peer sends, and what the engine
/// must emit. Tests start from a template (<see cref="TcpHarness.Peer"/>, <see cref="TcpHarness.Ours"/>)
/// and vary it field by field with <c>with</c>, as smoltcp's tests do with <c>..SEND_TEMPL</c>.
/// </summary>
internal sealed record Seg
{
    public TcpFlags Flags { get; init; } = TcpFlags.Ack;
    public SeqNumber Seq { get; init; }
    public SeqNumber Ack { get; init; }
    public ushort Window { get; init; }
    /// <summary>Null: the harness default (timestamps when negotiated, nothing else).</summary>
    public TcpOptions? Options { get; init; }
    public byte[] Payload { get; init; } = [];

    public override string ToString() =>
        $"[{Flags.ToText()}] seq {Seq.Value} ack {Ack.Value} win {Window} len {Payload.Length} {(Options is { } o ? o.ToString() : "(default options)")}";
}

/// <summary>
/// A scripted peer for one connection, in the style of smoltcp's socket tests: feed a segment
/// at an instant (<see cref="Send(Seg)"/>), then assert exactly which segments came out
/// (<see cref="Recv(Seg)"/>) and that nothing else did (<see cref="RecvNothing"/>). Time is
/// virtual and only moves when the test moves it. Sequence numbers in templates are relative:
/// <see cref="Peer"/> and <see cref="Ours"/> take offsets from the first data byte of each side.
/// </summary>
internal sealed class TcpHarness : ITcpOutput, ITcpConnectionObserver
{
    public static readonly Ipv4Address LocalAddress = Ipv4Address.Parse("192.168.0.2");
    public static readonly Ipv4Address RemoteAddress = Ipv4Address.Parse("192.168.0.1");
    public const ushort LocalPort = 80;
    public const ushort RemotePort = 49152;
    public const int Mtu = 1500;
    /// <summary>The MSS we announce for a 1500-byte MTU (RFC 9293 3.7.1: MTU - 20 - 20).</summary>
    public const int Mss = 1460;
    /// <summary>Payload of a full segment when timestamps take 12 bytes of every header.</summary>
    public const int TsMss = Mss - 12;

    public static readonly TcpTuple ConnTuple = new(LocalAddress, LocalPort, RemoteAddress, RemotePort);
    /// <summary>An empty options area (as opposed to a null <see cref="Seg.Options"/>, which means "the default").</summary>
    public static readonly TcpOptions NoOptions = new();
    public static readonly TimeSpan Microsecond = TimeSpan.FromTicks(TimeSpan.TicksPerMicrosecond);

    /// <summary>
    /// The RTO after the harness's handshakes, whose RTT is zero: SRTT (1 us, the smallest sample)
    /// plus the variance term, which (as in Linux) is at least the 200 ms minimum RTO.
    /// </summary>
    public static readonly TimeSpan Rto0 = TimeSpan.FromMilliseconds(200) + Microsecond;

    /// <summary>
    /// Settings for tests of the retransmission timer (RFC 6298) and RFC 5681 congestion control
    /// in isolation: NewReno, and neither RACK-TLP (RFC 8985: its probe would fire first) nor
    /// F-RTO (RFC 5682: it sends new data after a timeout). Those are loss recovery, tested with it.
    /// </summary>
    public static TcpSettings Classic(TcpSettings? settings = null) => (settings ?? new TcpSettings()) with
    {
        Rack = false,
        Frto = false,
        CongestionControlFactory = static () => new NewRenoCongestionControl(),
    };

    private readonly Queue<Emitted> _out = new();

    public TcpHarness(TcpSettings? settings = null, int challengeAcksPerSecond = 1000, ulong seed = 1, Instant? start = null, TcpMemoryBudget? memory = null)
    {
        // ECN off: these scripts name every flag of every segment; ECN has its own tests (Ip/EcnTests).
        Settings = (settings ?? new TcpSettings()) with { Ecn = false };
        Env = new TcpEnvironment(new SeededRandomSource(seed), challengeAcksPerSecond) { Memory = memory };
        Now = start ?? Instant.FromMilliseconds(1000);
    }

    public TcpSettings Settings { get; }
    public TcpEnvironment Env { get; }
    public TcpConnection? Conn { get; private set; }
    public TcpListenQueue? Listener { get; private set; }
    public Instant Now { get; private set; }

    /// <summary>Our ISS, learned from our SYN or SYN-ACK.</summary>
    public SeqNumber Iss { get; private set; }

    /// <summary>The peer's ISS; chosen by the test.</summary>
    public SeqNumber Irs { get; set; } = new(10_000);

    public TcpConnection C => Conn ?? throw new InvalidOperationException("no connection yet");

    /// <summary>
    /// Timestamps were negotiated: default options on both sides carry them. Learned from the two
    /// SYNs of <see cref="ConnTuple"/> the harness has seen (ours when a test receives it, the
    /// peer's when a test sends it), so a test never sets it by hand.
    /// </summary>
    public bool Timestamps { get; private set; }

    /// <summary>The peer's timestamp clock: the TSval of its next segment.</summary>
    public uint PeerTsVal { get; set; } = 5000;

    /// <summary>The window field the peer puts in its segments by default.</summary>
    public ushort PeerWindow { get; set; } = 64240;

    /// <summary>The window field our segments are expected to carry by default.</summary>
    public ushort OurWindow { get; set; }

    /// <summary>Our receive window shift (0 without window scaling); learned from the SYNs as <see cref="Timestamps"/>.</summary>
    public int OurShift { get; private set; }

    /// <summary>Events the connection reported, accumulated.</summary>
    public TcpConnectionEvents Events { get; set; }

    void ITcpConnectionObserver.OnEvents(TcpConnection connection, TcpConnectionEvents events) => Events |= events;

    void ITcpOutput.Send(in TcpTuple tuple, in TcpHeader header, in TcpOptions options, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued)
    {
        Assert.Equal(tuple.LocalPort, header.SourcePort);
        Assert.Equal(tuple.RemotePort, header.DestinationPort);
        var bytes = new byte[payload.Length + payloadContinued.Length];
        payload.CopyTo(bytes);
        payloadContinued.CopyTo(bytes.AsSpan(payload.Length));
        _out.Enqueue(new Emitted(tuple, header, options, bytes));
    }

    // ---- building connections ----

    public static TcpHarness Listening(TcpSettings? settings = null, int backlog = 8, int challengeAcksPerSecond = 1000, Instant? start = null, int mtu = Mtu, TcpMemoryBudget? memory = null)
    {
        var h = new TcpHarness(settings, challengeAcksPerSecond, start: start, memory: memory);
        h.Listener = new TcpListenQueue(LocalAddress, LocalPort, backlog, h.Settings, h.Env, mtu);
        return h;
    }

    /// <summary>An active open: the connection is in SYN-SENT and its SYN is waiting in the output.</summary>
    public static TcpHarness Connecting(TcpSettings? settings = null, int challengeAcksPerSecond = 1000, Instant? start = null, int mtu = Mtu)
    {
        var h = new TcpHarness(settings, challengeAcksPerSecond, start: start);
        h.Conn = TcpConnection.Connect(ConnTuple, h.Settings, h.Env, mtu, h.Now);
        h.Conn.Observer = h;
        h.Conn.Poll(h.Now, h);
        return h;
    }

    /// <summary>
    /// A connection made by a passive open: SYN in (with the given options, Linux's by default),
    /// SYN-ACK out, ACK in. Nothing else is pending afterwards.
    /// </summary>
    public static TcpHarness Established(TcpSettings? settings = null, TcpOptions? synOptions = null, ushort window = 64240,
        int challengeAcksPerSecond = 1000, Instant? start = null, SeqNumber? irs = null, int mtu = Mtu, TcpMemoryBudget? memory = null)
    {
        var h = Listening(settings, challengeAcksPerSecond: challengeAcksPerSecond, start: start, mtu: mtu, memory: memory);
        if (irs is SeqNumber i) h.Irs = i;
        h.PeerWindow = window;
        var options = synOptions ?? h.LinuxSynOptions();
        h.SendSyn(options, window);
        var synAck = h.Recv();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        h.Send(h.Peer());
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.True(h.Listener!.TryAccept(out _));
        h.OurWindow = h.Win(0);
        h.Events = TcpConnectionEvents.None;
        return h;
    }

    /// <summary>
    /// A connection made by an active open: our SYN out, the peer's SYN-ACK in (Linux's options
    /// by default), our ACK out.
    /// </summary>
    public static TcpHarness EstablishedActive(TcpSettings? settings = null, TcpOptions? synAckOptions = null, ushort window = 64240,
        Instant? start = null, TimeSpan? rtt = null)
    {
        var h = Connecting(settings, start: start);
        var syn = h.Recv();
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        h.PeerWindow = window;
        var options = synAckOptions ?? h.LinuxSynOptions();
        if (options.HasTimestamps) options.SetTimestamps(options.TimestampValue, syn.Options.TimestampValue);
        if (rtt is TimeSpan delay) h.Advance(delay);
        h.Send(new Seg { Flags = TcpFlags.Syn | TcpFlags.Ack, Seq = h.Irs, Ack = h.Iss + 1, Window = window, Options = options });
        var ack = h.Recv();
        Assert.Equal(TcpFlags.Ack, ack.Flags);
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        h.OurWindow = ack.Window;
        h.RecvNothing();
        h.Events = TcpConnectionEvents.None;
        return h;
    }

    private TcpOptions? _ourSyn, _peerSyn;

    /// <summary>
    /// Records a SYN of <see cref="ConnTuple"/> and, once both directions' are known, what they
    /// agreed on (RFC 7323 2.2 / 3.2: both must carry an option). A new SYN from the peer (a new
    /// incarnation) is learned again when our SYN-ACK to it is seen.
    /// </summary>
    private void NoteSyn(bool ours, in TcpOptions options)
    {
        if (ours) _ourSyn = options;
        else _peerSyn = options;
        if (_ourSyn is not TcpOptions our || _peerSyn is not TcpOptions peer) return;
        Timestamps = our.HasTimestamps && peer.HasTimestamps;
        bool ws = our.WindowScale.HasValue && peer.WindowScale.HasValue;
        OurShift = ws ? ShiftFor(Settings.ReceiveBufferSize) : 0;
    }

    /// <summary>RFC 7323 2.3: the smallest shift that lets the whole receive buffer be advertised.</summary>
    public static int ShiftFor(int receiveBuffer)
    {
        int capacity = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)receiveBuffer);
        int shift = 0;
        while (shift < 14 && (capacity >> shift) > 65535) shift++;
        return shift;
    }

    /// <summary>
    /// The window field we advertise when the receive buffer holds <paramref name="unread"/>
    /// bytes and the right edge may move: the free space, scaled (RFC 7323 2.3).
    /// </summary>
    public ushort Win(int unread)
    {
        int capacity = C.ReceiveBuffer.Capacity;
        long free = Math.Min(capacity - unread, 65535L << OurShift);
        return (ushort)(free >> OurShift);
    }

    /// <summary>The options of a Linux SYN: MSS 1460, SACK-permitted, timestamps, window scale 7.</summary>
    public TcpOptions LinuxSynOptions(bool ws = true, bool ts = true, bool sack = true, ushort mss = 1460) =>
        LinuxSyn(ws, ts, sack, mss, PeerTsVal);

    /// <summary>The options of a Linux SYN, with TSval <paramref name="tsVal"/> (the harness's default peer clock).</summary>
    public static TcpOptions LinuxSyn(bool ws = true, bool ts = true, bool sack = true, ushort mss = 1460, uint tsVal = 5000)
    {
        var o = new TcpOptions { MaxSegmentSize = mss, SackPermitted = sack };
        if (ws) o.WindowScale = 7;
        if (ts) o.SetTimestamps(tsVal, 0);
        return o;
    }

    public uint? LastTsVal { get; private set; }

    /// <summary>Our timestamp clock at the current instant: milliseconds plus the per-tuple offset (RFC 7323 5.4).</summary>
    public uint OurTsVal => unchecked((uint)(Now.Microseconds / 1000) + Env.TimestampOffset(ConnTuple));

    // ---- templates ----

    /// <summary>
    /// A segment from the peer: ACK, SEQ = IRS + 1 + <paramref name="seq"/>, ACK = ISS + 1 +
    /// <paramref name="ack"/>, the peer's default window and options.
    /// </summary>
    public Seg Peer(int seq = 0, int ack = 0, TcpFlags flags = TcpFlags.Ack, byte[]? data = null) =>
        new() { Flags = flags, Seq = Irs + 1 + seq, Ack = Iss + 1 + ack, Window = PeerWindow, Payload = data ?? [] };

    /// <summary>
    /// A segment we must emit: ACK, SEQ = ISS + 1 + <paramref name="seq"/>, ACK = IRS + 1 +
    /// <paramref name="ack"/>, <see cref="OurWindow"/> and the default options.
    /// </summary>
    public Seg Ours(int seq = 0, int ack = 0, TcpFlags flags = TcpFlags.Ack, byte[]? data = null) =>
        new() { Flags = flags, Seq = Iss + 1 + seq, Ack = Irs + 1 + ack, Window = OurWindow, Payload = data ?? [] };

    /// <summary>Options a peer puts on a segment: timestamps echoing our last TSval, if negotiated.</summary>
    public TcpOptions EchoOptions()
    {
        var o = new TcpOptions();
        if (Timestamps && LastTsVal is uint ts) o.SetTimestamps(PeerTsVal, ts);
        return o;
    }

    /// <summary>Options we put on a non-SYN segment: timestamps (our clock, echoing the peer's TSval) if negotiated.</summary>
    public TcpOptions OurOptions(params SackBlock[] sack)
    {
        var o = new TcpOptions();
        if (Timestamps) o.SetTimestamps(OurTsVal, PeerTsVal);
        foreach (var b in sack) o.AddSackBlock(b);
        return o;
    }

    /// <summary>A SACK block in the peer's sequence space, relative to IRS + 1.</summary>
    public SackBlock PeerBlock(int left, int right) => new(Irs + 1 + left, Irs + 1 + right);

    /// <summary>A SACK block in our sequence space, relative to ISS + 1.</summary>
    public SackBlock OurBlock(int left, int right) => new(Iss + 1 + left, Iss + 1 + right);

    // ---- feeding ----

    /// <summary>Feeds a SYN with <see cref="Irs"/> to the listener; a new connection becomes <see cref="Conn"/>.</summary>
    public TcpConnection? SendSyn(TcpOptions options, ushort window = 64240)
    {
        var c = SendToListener(new Seg { Flags = TcpFlags.Syn, Seq = Irs, Window = window, Options = options });
        if (c is not null) Conn = c;
        return c;
    }

    /// <summary>Feeds one segment to the listener, as for a 4-tuple no connection matches.</summary>
    public TcpConnection? SendToListener(Seg s, TcpTuple? tuple = null)
    {
        var options = s.Options ?? default;
        if ((s.Flags & TcpFlags.Syn) != 0 && (tuple ?? ConnTuple) == ConnTuple) NoteSyn(ours: false, options);
        var seg = new TcpSegment(s.Seq, s.Ack, s.Flags, s.Window, options, s.Payload);
        var c = Listener!.OnSegment(tuple ?? ConnTuple, seg, Now, this);
        if (c is not null && c.Observer is null) c.Observer = this;
        return c;
    }

    /// <summary>Feeds one segment from the peer to the connection at the current instant.</summary>
    public TcpSegmentResult Send(Seg s) => SendTo(C, s);

    /// <summary>Feeds one segment to <paramref name="connection"/> (for tests that juggle several).</summary>
    public TcpSegmentResult SendTo(TcpConnection connection, Seg s) => SendTo(connection, s, transmit: true);

    /// <summary>
    /// Feeds one segment without letting the connection transmit (as the stack does within one
    /// batch of received packets: what is due goes out once the batch ends, at <see cref="Flush"/>).
    /// </summary>
    public TcpSegmentResult SendInBatch(Seg s) => SendTo(C, s, transmit: false);

    /// <summary>Lets the connection send what became due (the end of a batch).</summary>
    public void Flush() => C.Flush(Now, this);

    private TcpSegmentResult SendTo(TcpConnection connection, Seg s, bool transmit)
    {
        var options = s.Options ?? EchoOptions();
        if ((s.Flags & TcpFlags.Syn) != 0 && connection.Tuple == ConnTuple) NoteSyn(ours: false, options);
        var seg = new TcpSegment(s.Seq, s.Ack, s.Flags, s.Window, options, s.Payload);
        return connection.OnSegment(seg, Now, this, transmit);
    }

    /// <summary>A tuple for another peer port (another connection to the same listener).</summary>
    public static TcpTuple OtherTuple(int n) => ConnTuple with { RemotePort = (ushort)(RemotePort + n) };

    /// <summary>Moves virtual time to <paramref name="instant"/> and polls the connection.</summary>
    public void At(Instant instant)
    {
        Assert.True(instant >= Now, "time only moves forward");
        Now = instant;
        C.Poll(Now, this);
    }

    public void After(TimeSpan delay) => At(Now + delay);

    /// <summary>Moves time without polling (the stack would not wake the connection before its deadline).</summary>
    public void Advance(TimeSpan delay) => Now += delay;

    /// <summary>Polls at the connection's next deadline (which must exist).</summary>
    public Instant AtNextDeadline()
    {
        var d = C.NextDeadline;
        Assert.False(d.IsNever, "no timer is armed");
        At(d);
        return d;
    }

    /// <summary>
    /// "Expect nothing until instant T": the next deadline is exactly <paramref name="t"/>, a
    /// poll just before it emits nothing, and time is then at <paramref name="t"/> (polled).
    /// </summary>
    public void NothingUntil(Instant t)
    {
        Assert.Equal(t, C.NextDeadline);
        At(t - Microsecond);
        RecvNothing();
        At(t);
    }

    // ---- asserting ----

    /// <summary>Exactly one more segment must have come out; returns it.</summary>
    public Emitted Recv()
    {
        Assert.True(_out.Count > 0, "expected a segment, got none");
        var e = _out.Dequeue();
        Learn(e);
        return e;
    }

    /// <summary>The next segment out must equal <paramref name="expected"/> field by field.</summary>
    public Emitted Recv(Seg expected)
    {
        var e = Recv();
        var options = expected.Options ?? OurOptions();
        var problems = new StringBuilder();
        if (e.Tuple != ConnTuple) problems.Append($" tuple: expected {ConnTuple}, got {e.Tuple};");
        void Check<T>(string name, T want, T got)
        {
            if (!EqualityComparer<T>.Default.Equals(want, got)) problems.Append($" {name}: expected {want}, got {got};");
        }
        Check("flags", expected.Flags.ToText(), e.Flags.ToText());
        Check("seq", expected.Seq.Value, e.Seq.Value);
        Check("ack", expected.Ack.Value, e.Ack.Value);
        Check("window", expected.Window, e.Window);
        Check("payload length", expected.Payload.Length, e.Payload.Length);
        if (!expected.Payload.AsSpan().SequenceEqual(e.Payload)) problems.Append(" payload bytes differ;");
        Check("options", Describe(options), Describe(e.Options));
        Check("urgent pointer", (ushort)0, e.Header.UrgentPointer);
        if (problems.Length > 0) Assert.Fail($"segment mismatch:{problems}\n  expected {expected with { Options = options }}\n  got      {e}");
        return e;
    }

    private static string Describe(in TcpOptions o)
    {
        var s = new StringBuilder();
        s.Append($"mss={o.MaxSegmentSize?.ToString() ?? "-"} ws={o.WindowScale?.ToString() ?? "-"} sackOK={o.SackPermitted}");
        s.Append(o.HasTimestamps ? $" ts={o.TimestampValue}/{o.TimestampEcho}" : " ts=-");
        foreach (var b in o.SackBlocks) s.Append($" sack={b}");
        return s.ToString();
    }

    /// <summary>Every segment that came out, in order.</summary>
    public List<Emitted> RecvAll()
    {
        var list = new List<Emitted>();
        while (_out.Count > 0) { var e = _out.Dequeue(); Learn(e); list.Add(e); }
        return list;
    }

    public void RecvNothing()
    {
        if (_out.Count > 0) Assert.Fail($"expected silence, got: {string.Join("; ", _out)}");
    }

    private void Learn(Emitted e)
    {
        if ((e.Flags & TcpFlags.Syn) != 0 && e.Tuple == ConnTuple) { Iss = e.Seq; NoteSyn(ours: true, e.Options); }
        if (e.Options.HasTimestamps && e.Tuple == ConnTuple) LastTsVal = e.Options.TimestampValue;
    }

    // ---- application side ----

    public int Write(ReadOnlySpan<byte> data)
    {
        int n = C.SendBuffer.Write(data);
        C.OnSendBufferWritten(Now, this);
        return n;
    }

    public byte[] ReadAll()
    {
        var buf = new byte[C.ReceiveBuffer.Count];
        C.ReceiveBuffer.Read(buf);
        C.OnReceiveBufferRead(Now, this);
        return buf;
    }

    public byte[] Read(int count)
    {
        var buf = new byte[Math.Min(count, C.ReceiveBuffer.Count)];
        C.ReceiveBuffer.Read(buf);
        C.OnReceiveBufferRead(Now, this);
        return buf;
    }

    public void ShutdownSend() => C.ShutdownSend(Now, this);
    public void Close() => C.Close(Now, this);
    public void Abort() => C.Abort(Now, this);

    /// <summary><paramref name="length"/> bytes counting up from <paramref name="first"/> (mod 256), so offsets are visible in failures.</summary>
    public static byte[] Bytes(int length, int first = 0)
    {
        var b = new byte[length];
        for (int i = 0; i < length; i++) b[i] = (byte)(first + i);
        return b;
    }

    public static TimeSpan Ms(double milliseconds) => TimeSpan.FromMilliseconds(milliseconds);
}
