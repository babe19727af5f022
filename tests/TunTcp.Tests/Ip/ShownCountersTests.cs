using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>
/// Every counter the HTTP app's statistics page shows (read by its StackSnapshot from the core
/// and the TCP environment) moves when what it counts happens: a counter that never moves is a
/// lie on the page.
/// </summary>
public class ShownCountersTests
{
    [Fact]
    public void EveryCounterOnTheStatisticsPage_Moves()
    {
        var output = new RecordingOutput();
        var core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress() }, output);
        var now = Instant.Zero;
        var s = core.Statistics;
        var tcp = core.TcpEnvironment.Statistics;

        core.Receive(Packets.EchoRequest(1, 1, "x"u8), now);
        core.BindUdp(7);
        core.Receive(Packets.Udp(5000, 7, "u"u8), now);
        core.SendUdp(7, Packets.Host, 5000, "u"u8);
        core.Receive(Packets.Tcp(new TcpHeader(40000, 81, new SeqNumber(1), default, TcpFlags.Syn, 1000)), now); // closed: RST

        // An active open without SACK; three duplicate ACKs start a fast retransmit.
        var c = core.Connect(Packets.Host, 5000, now);
        Assert.True(TcpPacket.TryParse(output.Packets[^1].AsSpan(Ipv4Header.Length), out var syn, out _));
        var iss = syn.SequenceNumber;
        ushort port = syn.SourcePort;
        core.Receive(Packets.Tcp(new TcpHeader(5000, port, new SeqNumber(100), iss + 1, TcpFlags.Syn | TcpFlags.Ack, 65535), new TcpOptions { MaxSegmentSize = 1000 }), now);
        c.SendBuffer.Write(new byte[6000]);
        core.MarkReady(core.FindEntry(c)!, PendingWork.SendBufferWritten);
        core.Poll(now);
        for (int i = 0; i < 3; i++)
            core.Receive(Packets.Tcp(new TcpHeader(5000, port, new SeqNumber(101), iss + 1, TcpFlags.Ack, 65535)), now);
        core.Poll(now);
        // Then silence: a retransmission timeout.
        for (int i = 0; i < 100 && tcp.RetransmissionTimeouts == 0; i++) { now += TimeSpan.FromMilliseconds(200); core.Poll(now); }
        // And the peer resets it.
        core.Receive(Packets.Tcp(new TcpHeader(5000, port, new SeqNumber(101), default, TcpFlags.Rst, 0)), now);
        core.Poll(now);

        // A listener with one half-open slot: the second SYN gets a cookie, its ACK makes a
        // connection; with cookies off the second SYN is dropped.
        core.Listen(IpAddress.AnyV4, 82, 8, new TcpSettings { SynBacklog = 1 });
        core.Listen(IpAddress.AnyV4, 83, 8, new TcpSettings { SynBacklog = 1, SynCookies = false });
        foreach (ushort listenPort in new ushort[] { 82, 83 })
            for (ushort p = 41000; p < 41002; p++)
                core.Receive(Packets.Tcp(new TcpHeader(p, listenPort, new SeqNumber(7), default, TcpFlags.Syn, 1000), new TcpOptions { MaxSegmentSize = 1460 }), now);
        var cookieSynAck = output.Packets.Where(p => p[9] == (byte)IpProtocol.Tcp).Select(SentTcp.Parse).Last(t => t.SourcePort == 82 && t.DestinationPort == 41001);
        core.Receive(Packets.Tcp(new TcpHeader(41001, 82, new SeqNumber(8), cookieSynAck.Seq + 1, TcpFlags.Ack, 1000)), now);

        var shown = new (string Name, long Value)[]
        {
            ("SYN cookies sent", tcp.SynCookiesSent), ("connections from SYN cookies", tcp.SynCookiesValidated), ("SYNs dropped", tcp.SynBacklogDrops),
            ("segments in", s.TcpSegmentsReceived), ("segments out", s.TcpSegmentsSent),
            ("retransmissions", tcp.SegmentsRetransmitted), ("timeouts", tcp.RetransmissionTimeouts), ("fast retransmits", tcp.FastRetransmits),
            ("resets sent", s.TcpResetsSent), ("resets received", tcp.ResetsReceived),
            ("connections opened", s.TcpConnectionsOpened), ("connections closed", s.TcpConnectionsClosed),
            ("IP packets in", s.IpPacketsReceived), ("IP packets out", s.IpPacketsSent), ("echo requests", s.IcmpEchoRequests),
            ("UDP in", s.UdpDatagramsReceived), ("UDP out", s.UdpDatagramsSent),
        };
        foreach (var (name, value) in shown) Assert.True(value > 0, $"{name} did not move");
    }
}
