using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// <see cref="TcpConnectionEvents.SendCompleted"/>: raised once the peer has acknowledged our FIN
/// (and so every byte before it), never earlier, and not at all when the connection ends first.
/// An application that ends its process after closing (tuntcp connect) waits for it.
/// </summary>
public class SendCompletedTests
{
    private sealed class EventLog : ITcpConnectionObserver
    {
        public List<TcpConnectionEvents> Events { get; } = new();
        public TcpConnectionEvents All => Events.Aggregate(TcpConnectionEvents.None, (a, e) => a | e);
        public void OnEvents(TcpConnection connection, TcpConnectionEvents events) => Events.Add(events);
    }

    [Fact]
    public void Rfc9293_FinWait1_AckOfDataOnly_IsNotCompletion_AckOfFin_EntersFinWait2AndCompletes()
    {
        var h = TcpHarness.Established();
        var log = new EventLog();
        h.C.Observer = log;
        h.Write("hello"u8);
        h.C.ShutdownSend(h.Now, h);
        var sent = h.RecvAll();
        Assert.Contains(sent, s => (s.Flags & TcpFlags.Fin) != 0);
        Assert.Equal(TcpConnectionState.FinWait1, h.C.State);

        h.Send(h.Peer(ack: 5)); // the data, not the FIN
        Assert.Equal(TcpConnectionState.FinWait1, h.C.State);
        Assert.False(log.All.HasFlag(TcpConnectionEvents.SendCompleted));

        h.Send(h.Peer(ack: 6)); // the FIN
        Assert.Equal(TcpConnectionState.FinWait2, h.C.State);
        Assert.Equal(TcpConnectionEvents.SendCompleted, log.Events[^1] & TcpConnectionEvents.SendCompleted);
    }

    [Fact]
    public void Rfc9293_FinWait1_PeerFinAckingOurs_EntersTimeWaitAndCompletes()
    {
        var h = TcpHarness.Established();
        var log = new EventLog();
        h.C.Observer = log;
        h.C.ShutdownSend(h.Now, h);
        h.Recv();
        h.Send(h.Peer(ack: 1, flags: TcpFlags.Fin | TcpFlags.Ack));
        Assert.Equal(TcpConnectionState.TimeWait, h.C.State);
        Assert.True(log.All.HasFlag(TcpConnectionEvents.SendCompleted));
    }

    [Fact]
    public void Rfc9293_LastAck_AckOfFin_CompletesTogetherWithClosed()
    {
        var h = TcpHarness.Established();
        var log = new EventLog();
        h.C.Observer = log;
        h.Send(h.Peer(flags: TcpFlags.Fin | TcpFlags.Ack));
        h.RecvAll();
        h.C.ShutdownSend(h.Now, h);
        h.Recv();
        Assert.Equal(TcpConnectionState.LastAck, h.C.State);
        Assert.False(log.All.HasFlag(TcpConnectionEvents.SendCompleted));
        h.Send(h.Peer(seq: 1, ack: 1));
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpConnectionEvents.SendCompleted | TcpConnectionEvents.Closed,
            log.Events[^1] & (TcpConnectionEvents.SendCompleted | TcpConnectionEvents.Closed));
    }

    [Fact]
    public void Rfc9293_LastAck_Reset_ClosesWithoutCompletion()
    {
        var h = TcpHarness.Established();
        var log = new EventLog();
        h.C.Observer = log;
        h.Send(h.Peer(flags: TcpFlags.Fin | TcpFlags.Ack));
        h.RecvAll();
        h.Write("unacknowledged"u8);
        h.C.ShutdownSend(h.Now, h);
        h.RecvAll();
        // RFC 9293 3.10.7.4: a RST in LAST-ACK closes without an error; our data was never acknowledged.
        h.Send(h.Peer(seq: 1, flags: TcpFlags.Rst) with { Ack = default, Window = 0 });
        Assert.Equal(TcpConnectionState.Closed, h.C.State);
        Assert.Equal(TcpError.None, h.C.Error);
        Assert.False(log.All.HasFlag(TcpConnectionEvents.SendCompleted));
        Assert.True(log.All.HasFlag(TcpConnectionEvents.Closed));
    }
}
