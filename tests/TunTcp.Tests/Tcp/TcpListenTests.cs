using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>Tests for the LISTEN state (RFC 9293 3.10.7.2) and the listener's queues.</summary>
public class TcpListenTests
{
    private static TcpOptions SynAckOptions(TcpHarness h, byte ws = 3, uint echo = 5000)
    {
        var o = new TcpOptions { MaxSegmentSize = Mss, WindowScale = ws, SackPermitted = true };
        o.SetTimestamps(h.OurTsVal, echo);
        return o;
    }

    // RFC 9293 3.10.7.2, first: "An incoming RST segment could not be valid ... should be ignored."
    [Theory]
    [InlineData((int)(TcpFlags.Rst))]
    [InlineData((int)(TcpFlags.Rst | TcpFlags.Ack))]
    [InlineData((int)(TcpFlags.Rst | TcpFlags.Syn))]
    public void Listen_Rst_IsIgnored(int flagsValue)
    {
        var flags = (TcpFlags)flagsValue;
        var h = Listening();
        var c = h.SendToListener(new Seg { Flags = flags, Seq = h.Irs, Ack = new SeqNumber(77), Window = 1000 });
        Assert.Null(c);
        h.RecvNothing();
        Assert.Equal(0, h.Listener!.HalfOpenCount);
        Assert.Equal(0, h.Env.Statistics.ResetsSent);
    }

    // RFC 9293 3.10.7.2, second: "Any acknowledgment is bad if it arrives on a connection still in
    // the LISTEN state. An acceptable reset segment should be formed ... <SEQ=SEG.ACK><CTL=RST>".
    [Theory]
    [InlineData((int)(TcpFlags.Ack), 0)]
    [InlineData((int)(TcpFlags.Ack | TcpFlags.Psh), 10)]
    [InlineData((int)(TcpFlags.Syn | TcpFlags.Ack), 0)]
    [InlineData((int)(TcpFlags.Fin | TcpFlags.Ack), 0)]
    public void Listen_Ack_GetsResetWithSeqOfSegAck(int flagsValue, int dataLength)
    {
        var flags = (TcpFlags)flagsValue;
        var h = Listening();
        var c = h.SendToListener(new Seg { Flags = flags, Seq = h.Irs, Ack = new SeqNumber(0xDEADBEEF), Window = 1000, Payload = Bytes(dataLength) });
        Assert.Null(c);
        h.Recv(new Seg { Flags = TcpFlags.Rst, Seq = new SeqNumber(0xDEADBEEF), Ack = default, Window = 0, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(0, h.Listener!.HalfOpenCount);
    }

    // RFC 9293 3.10.7.2, third: a SYN creates a connection in SYN-RECEIVED: IRS = SEG.SEQ,
    // RCV.NXT = SEG.SEQ + 1, and <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> is sent. RFC 7323 2.2: the
    // window of a SYN-ACK is never scaled; the options answer what the SYN offered.
    [Fact]
    public void Listen_Syn_SendsSynAck_EntersSynReceived()
    {
        var h = Listening();
        var c = h.SendSyn(h.LinuxSynOptions());
        Assert.NotNull(c);
        Assert.Equal(TcpConnectionState.SynReceived, c.State);
        h.Recv(new Seg
        {
            Flags = TcpFlags.Syn | TcpFlags.Ack, Seq = h.Env.InitialSequenceNumber(ConnTuple, h.Now), Ack = h.Irs + 1,
            Window = 65535, Options = SynAckOptions(h),
        });
        h.RecvNothing();
        Assert.Equal(1, h.Listener!.HalfOpenCount);
        Assert.Equal(0, h.Listener.PendingAcceptCount);
        Assert.Equal(1, h.Env.Statistics.PassiveOpens);
    }

    // RFC 9293 3.10.7.2, third: "Note that any other incoming control or data (combined with SYN)
    // will be processed in the SYN-RECEIVED state"; the engine, like Linux without TCP Fast
    // Open, does not keep data that rides on a SYN: RCV.NXT is IRS + 1 and the peer resends it.
    [Fact]
    public void Listen_SynWithData_DataNotKept()
    {
        var h = Listening();
        var c = h.SendToListener(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240, Options = h.LinuxSynOptions(), Payload = Bytes(10) });
        Assert.NotNull(c);
        var synAck = h.Recv();
        Assert.Equal(h.Irs + 1, synAck.Ack);
        Assert.Equal(0, c.ReceiveBuffer.Count);
    }

    // RFC 9293 3.10.7.2, fourth: "Any other control or text-bearing segment (not containing SYN)
    // must have an ACK and thus would be discarded by the ACK processing ... drop the segment."
    [Theory]
    [InlineData((int)(TcpFlags.None), 0)]
    [InlineData((int)(TcpFlags.Fin), 0)]
    [InlineData((int)(TcpFlags.Psh), 20)]
    [InlineData((int)(TcpFlags.Urg), 1)]
    public void Listen_SegmentWithoutSynAckOrRst_IsDropped(int flagsValue, int dataLength)
    {
        var flags = (TcpFlags)flagsValue;
        var h = Listening();
        Assert.Null(h.SendToListener(new Seg { Flags = flags, Seq = h.Irs, Window = 1000, Payload = Bytes(dataLength) }));
        h.RecvNothing();
        Assert.Equal(0, h.Listener!.HalfOpenCount);
    }

    // Issue item 6: "A listener has a bounded backlog of half-open connections: excess SYNs cannot
    // grow memory." Without SYN cookies, SYNs beyond TcpSettings.SynBacklog create nothing and are
    // dropped silently (Linux with tcp_syncookies=0 drops too; the peer's SYN retransmission tries
    // again later). With cookies (the default) they are answered statelessly: SynCookieTests.
    [Fact]
    public void Listen_SynBacklogFull_ExcessSynsDroppedSilently()
    {
        var h = Listening(new TcpSettings { SynBacklog = 3, SynCookies = false });
        var made = new List<TcpConnection>();
        for (int i = 0; i < 10; i++)
        {
            var c = h.SendToListener(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs + i * 1000, Window = 64240, Options = h.LinuxSynOptions() }, OtherTuple(i));
            if (c is not null) made.Add(c);
        }
        Assert.Equal(3, made.Count);
        var out3 = h.RecvAll();
        Assert.Equal(3, out3.Count);
        Assert.Equal([OtherTuple(0), OtherTuple(1), OtherTuple(2)], out3.Select(e => e.Tuple));
        Assert.All(out3, e => Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, e.Flags));
        Assert.Equal(3, h.Listener!.HalfOpenCount);
        Assert.Equal(7, h.Env.Statistics.SynBacklogDrops);

        // A half-open connection that dies (here: its SYN-ACK retransmissions run out) frees its slot.
        var first = made[0];
        while (first.State != TcpConnectionState.Closed)
        {
            h.Advance(first.NextDeadline - h.Now);
            foreach (var c in made) c.Poll(h.Now, h);
        }
        h.RecvAll();
        Assert.Equal(0, h.Listener.HalfOpenCount);
        Assert.NotNull(h.SendToListener(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240, Options = h.LinuxSynOptions() }, OtherTuple(20)));
        Assert.Equal(1, h.Listener.HalfOpenCount);
    }

    // The backlog bounds half-open connections only: completing the handshake frees the slot.
    [Fact]
    public void Listen_HandshakeCompletion_FreesSynBacklogSlot_QueuesForAccept()
    {
        var h = Listening(new TcpSettings { SynBacklog = 1, SynCookies = false });
        var observer = new AcceptObserver();
        h.Listener!.Observer = observer;
        h.SendSyn(h.LinuxSynOptions());
        h.Recv();
        Assert.Null(h.SendToListener(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240 }, OtherTuple(1)));
        h.Send(h.Peer());
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        Assert.Equal(0, h.Listener.HalfOpenCount);
        Assert.Equal(1, h.Listener.PendingAcceptCount);
        Assert.Equal(1, observer.Calls);
        Assert.Same(h.Listener, h.C.Listener);
        Assert.True(h.Listener.TryAccept(out var accepted));
        Assert.Same(h.C, accepted);
        Assert.Null(accepted.Listener);
        Assert.False(h.Listener.TryAccept(out _));
        Assert.NotNull(h.SendToListener(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240 }, OtherTuple(1)));
    }

    // Linux (tcp_check_req with a full accept queue): the handshake-completing ACK is dropped and
    // the connection stays in SYN-RECEIVED; its SYN-ACK is retransmitted on the timer, and once the
    // application accepts, the next ACK completes it.
    [Fact]
    public void Listen_AcceptQueueFull_CompletingAckDropped_SynAckRetransmitted()
    {
        var h = Listening(backlog: 1);
        h.SendSyn(h.LinuxSynOptions());
        h.Recv();
        h.Send(h.Peer());
        Assert.Equal(TcpConnectionState.Established, h.C.State);
        var first = h.C;

        var second = h.SendToListener(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240 }, OtherTuple(1))!;
        var synAck = h.Recv();
        Assert.Equal(OtherTuple(1), synAck.Tuple);
        var iss2 = synAck.Seq;
        h.SendTo(second, new Seg { Seq = h.Irs + 1, Ack = iss2 + 1, Window = 64240, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.SynReceived, second.State);
        Assert.Equal(1, h.Env.Statistics.AcceptQueueDrops);

        // RFC 6298 2.1: no RTT sample yet, so the SYN-ACK timer is the initial RTO (1 s).
        h.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(h.Now, second.NextDeadline);
        second.Poll(h.Now, h);
        var again = h.Recv();
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, again.Flags);
        Assert.Equal(iss2, again.Seq);

        Assert.True(h.Listener!.TryAccept(out var a));
        Assert.Same(first, a);
        h.SendTo(second, new Seg { Seq = h.Irs + 1, Ack = iss2 + 1, Window = 64240, Options = NoOptions });
        h.RecvNothing();
        Assert.Equal(TcpConnectionState.Established, second.State);
        Assert.Equal(1, h.Listener.PendingAcceptCount);
    }

    // A closed listener answers nothing; its unaccepted connections go back to the owner to abort.
    [Fact]
    public void Listen_Close_ReturnsUnacceptedConnections_IgnoresLaterSyns()
    {
        var h = Listening();
        h.SendSyn(h.LinuxSynOptions());
        h.Recv();
        h.Send(h.Peer());
        var orphans = h.Listener!.Close();
        Assert.True(h.Listener.IsClosed);
        Assert.Equal([h.C], orphans);
        Assert.Null(h.C.Listener);
        Assert.Equal(0, h.Listener.PendingAcceptCount);
        Assert.Null(h.SendToListener(new Seg { Flags = TcpFlags.Syn, Seq = h.Irs, Window = 64240 }, OtherTuple(1)));
        Assert.Null(h.SendToListener(new Seg { Flags = TcpFlags.Ack, Seq = h.Irs, Window = 64240 }, OtherTuple(1)));
        h.RecvNothing();
    }

    [Fact]
    public void Listen_ConstructorRejectsBadArguments()
    {
        var env = new TcpEnvironment(new SeededRandomSource(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpListenQueue(LocalAddress, 80, 0, new TcpSettings(), env, Mtu));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcpListenQueue(LocalAddress, 80, 1, new TcpSettings { SynBacklog = 0 }, env, Mtu));
        var l = new TcpListenQueue(LocalAddress, 8080, 5, new TcpSettings(), env, Mtu);
        Assert.Equal(LocalAddress, l.LocalAddress);
        Assert.Equal(8080, l.Port);
        Assert.Equal(5, l.Backlog);
    }

    private sealed class AcceptObserver : ITcpListenObserver
    {
        public int Calls;
        public void OnAcceptable(TcpListenQueue listener) => Calls++;
    }
}
