using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Tcp;

public class TcpSmokeTests
{
    [Fact]
    public void PassiveOpen_DataBothWays_OrderlyCloseByPeer()
    {
        var h = TcpHarness.Established();
        h.Send(TcpFlags.Ack | TcpFlags.Psh, h.Irs + 1, h.Iss + 1, 1000, h.EchoOptions(), "hello"u8);
        Assert.Equal("hello"u8.ToArray(), h.ReadAll());
        // Reading opened the window well past the 64 KiB of the SYN-ACK: a window update goes out.
        var update = h.Recv();
        Assert.Equal(TcpFlags.Ack, update.Flags);
        Assert.Equal(h.Irs + 6, update.Ack);
        Assert.Equal(256 * 1024 >> 3, update.Window);
        h.Write("world"u8);
        var data = h.Recv();
        Assert.Equal("world"u8.ToArray(), data.Payload);
        Assert.Equal(h.Irs + 6, data.Ack);
        h.RecvNothing();
        h.Send(TcpFlags.Ack | TcpFlags.Fin, h.Irs + 6, h.Iss + 6, 1000, h.EchoOptions());
        var ack = h.Recv();
        Assert.Equal(h.Irs + 7, ack.Ack);
        Assert.Equal(TcpState.CloseWait, h.C.State);
        h.C.Close(h.Now, (ITcpOutput)h);
        var fin = h.Recv();
        Assert.Equal(TcpFlags.Fin | TcpFlags.Ack, fin.Flags);
        Assert.Equal(TcpState.LastAck, h.C.State);
        h.Send(TcpFlags.Ack, h.Irs + 7, h.Iss + 7, 1000, h.EchoOptions());
        Assert.Equal(TcpState.Closed, h.C.State);
    }

    [Fact]
    public void ActiveOpen_SynAck_Established()
    {
        var h = TcpHarness.Connecting();
        var syn = h.Recv();
        Assert.Equal(TcpFlags.Syn, syn.Flags);
        Assert.Equal((ushort)1460, syn.Options.MaxSegmentSize);
        var o = TcpHarness.SynOptions();
        o.SetTimestamps(TcpHarness.PeerTsVal, syn.Options.TimestampValue);
        h.Send(TcpFlags.Syn | TcpFlags.Ack, h.Irs, h.Iss + 1, 65535, o);
        var ack = h.Recv();
        Assert.Equal(TcpFlags.Ack, ack.Flags);
        Assert.Equal(h.Irs + 1, ack.Ack);
        Assert.Equal(TcpState.Established, h.C.State);
    }

    [Fact]
    public void Rto_RetransmitsWithBackoff()
    {
        var h = TcpHarness.Established();
        h.Write(new byte[100]);
        var first = h.Recv();
        var t1 = h.AtNextDeadline();
        var re = h.Recv();
        Assert.Equal(first.Seq, re.Seq);
        Assert.Equal(100, re.Payload.Length);
        var t2 = h.AtNextDeadline();
        h.Recv();
        Assert.True(t2 - t1 > (t1 - h.C.CreatedAt) / 100);
    }
}
