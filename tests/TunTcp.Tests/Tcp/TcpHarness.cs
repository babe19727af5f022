using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Tcp;

/// <summary>One segment the engine emitted, copied out.</summary>
internal sealed record Emitted(TcpHeader Header, TcpOptions Options, byte[] Payload)
{
    public SeqNumber Seq => Header.SequenceNumber;
    public SeqNumber Ack => Header.AcknowledgmentNumber;
    public TcpFlags Flags => Header.Flags;
    public ushort Window => Header.Window;
    public override string ToString() =>
        $"[{Flags.ToText()}] seq {Seq.Value} ack {Ack.Value} win {Window} len {Payload.Length} {Options}";
}

/// <summary>
/// A scripted peer for one connection, in the style of smoltcp's socket tests: feed a segment
/// at an instant (<see cref="Send"/>), then assert exactly which segments came out
/// (<see cref="Recv"/>) and that nothing else did (<see cref="RecvNothing"/>). Time is virtual.
/// Sequence numbers are written relative: <see cref="Iss"/> is ours, <see cref="Irs"/> the peer's.
/// </summary>
internal sealed class TcpHarness : ITcpOutput
{
    public static readonly Ipv4Address LocalAddress = Ipv4Address.Parse("192.168.0.2");
    public static readonly Ipv4Address RemoteAddress = Ipv4Address.Parse("192.168.0.1");
    public const ushort LocalPort = 80;
    public const ushort RemotePort = 49152;
    public const int Mtu = 1500;
    public const int Mss = 1460;

    public static readonly TcpTuple Tuple = new(LocalAddress, LocalPort, RemoteAddress, RemotePort);

    private readonly Queue<Emitted> _out = new();

    public TcpHarness(TcpSettings? settings = null, int challengeAcksPerSecond = 1000, ulong seed = 1)
    {
        Settings = settings ?? new TcpSettings();
        Env = new TcpEnvironment(new SeededRandomSource(seed), challengeAcksPerSecond);
    }

    public TcpSettings Settings { get; }
    public TcpEnvironment Env { get; }
    public TcpConnection? Conn { get; private set; }
    public TcpListenQueue? Listener { get; private set; }
    public Instant Now { get; private set; } = Instant.FromMilliseconds(1000);

    /// <summary>Our ISS, learned from our SYN or SYN-ACK.</summary>
    public SeqNumber Iss { get; private set; }

    /// <summary>The peer's ISS; chosen by the test.</summary>
    public SeqNumber Irs { get; set; } = new(10_000);

    public TcpConnection C => Conn ?? throw new InvalidOperationException("no connection yet");

    void ITcpOutput.Send(in TcpTuple tuple, in TcpHeader header, in TcpOptions options, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued)
    {
        Assert.Equal(Tuple, tuple);
        var bytes = new byte[payload.Length + payloadContinued.Length];
        payload.CopyTo(bytes);
        payloadContinued.CopyTo(bytes.AsSpan(payload.Length));
        _out.Enqueue(new Emitted(header, options, bytes));
    }

    // ---- building connections ----

    public static TcpHarness Listening(TcpSettings? settings = null, int backlog = 8, int challengeAcksPerSecond = 1000)
    {
        var h = new TcpHarness(settings, challengeAcksPerSecond);
        h.Listener = new TcpListenQueue(LocalAddress, LocalPort, backlog, h.Settings, h.Env, Mtu);
        return h;
    }

    public static TcpHarness Connecting(TcpSettings? settings = null, int challengeAcksPerSecond = 1000)
    {
        var h = new TcpHarness(settings, challengeAcksPerSecond);
        h.Conn = TcpConnection.Connect(Tuple, h.Settings, h.Env, Mtu, h.Now);
        h.Conn.Poll(h.Now, h);
        return h;
    }

    /// <summary>A connection made by a passive open: SYN in (with the given options), SYN-ACK out, ACK in.</summary>
    public static TcpHarness Established(TcpSettings? settings = null, TcpOptions? synOptions = null, ushort window = 64240, int challengeAcksPerSecond = 1000)
    {
        var h = Listening(settings, challengeAcksPerSecond: challengeAcksPerSecond);
        h.SendSyn(synOptions ?? SynOptions(), window);
        var synAck = h.Recv();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, synAck.Flags);
        h.Send(TcpFlags.Ack, h.Irs + 1, h.Iss + 1, window, h.EchoOptions());
        h.RecvNothing();
        Assert.Equal(TcpState.Established, h.C.State);
        Assert.True(h.Listener!.TryAccept(out _));
        return h;
    }

    /// <summary>The options of a Linux SYN: MSS 1460, SACK-permitted, timestamps, window scale 7.</summary>
    public static TcpOptions SynOptions(bool ws = true, bool ts = true, bool sack = true, ushort mss = 1460)
    {
        var o = new TcpOptions { MaxSegmentSize = mss, SackPermitted = sack };
        if (ws) o.WindowScale = 7;
        if (ts) o.SetTimestamps(PeerTsVal, 0);
        return o;
    }

    /// <summary>The peer's timestamp clock value (advanced by tests as they like).</summary>
    public static uint PeerTsVal = 5000;

    /// <summary>Options a peer would put on a segment: timestamps echoing our last TSval, if negotiated.</summary>
    public TcpOptions EchoOptions()
    {
        var o = new TcpOptions();
        if (LastTsVal is uint ts) o.SetTimestamps(PeerTsVal, ts);
        return o;
    }

    public uint? LastTsVal { get; private set; }

    // ---- feeding ----

    public void SendSyn(TcpOptions options, ushort window = 64240)
    {
        var seg = new TcpSegment(Irs, default, TcpFlags.Syn, window, options, default);
        var c = Listener!.OnSegment(Tuple, seg, Now, this);
        if (c is not null) Conn = c;
    }

    /// <summary>Feeds one segment from the peer at the current instant.</summary>
    public TcpSegmentResult Send(TcpFlags flags, SeqNumber seq, SeqNumber ack, ushort window = 1000, TcpOptions options = default, ReadOnlySpan<byte> payload = default)
    {
        var seg = new TcpSegment(seq, ack, flags, window, options, payload);
        return C.OnSegment(seg, Now, this);
    }

    /// <summary>Moves virtual time to <paramref name="instant"/> and polls the connection.</summary>
    public void At(Instant instant)
    {
        Assert.True(instant >= Now, "time only moves forward");
        Now = instant;
        C.Poll(Now, this);
    }

    public void After(TimeSpan delay) => At(Now + delay);

    /// <summary>Polls at the connection's next deadline (which must exist).</summary>
    public Instant AtNextDeadline()
    {
        var d = C.NextDeadline;
        Assert.False(d.IsNever, "no timer is armed");
        At(d);
        return d;
    }

    // ---- asserting ----

    /// <summary>Exactly one segment must have come out; returns it.</summary>
    public Emitted Recv()
    {
        Assert.True(_out.Count > 0, "expected a segment, got none");
        var e = _out.Dequeue();
        Learn(e);
        return e;
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
        if ((e.Flags & TcpFlags.Syn) != 0) Iss = e.Seq;
        if (e.Options.HasTimestamps) LastTsVal = e.Options.TimestampValue;
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
}
