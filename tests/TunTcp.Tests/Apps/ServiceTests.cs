using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using TunTcp.Apps;
using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Tests.Simulation;

namespace TunTcp.Tests.Apps;

public class ServiceTests
{
    private static SimulatedNetwork Network() =>
        new(PathConfig.Ideal(TimeSpan.FromMilliseconds(1)), PathConfig.Ideal(TimeSpan.FromMilliseconds(1)));

    [Fact]
    public void Rfc864_FirstTwoLines_MatchTheRfcSample()
    {
        var buf = new byte[2 * ChargenPattern.LineLength];
        ChargenPattern.Fill(buf, 0);
        var text = Encoding.ASCII.GetString(buf);
        Assert.Equal("!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n"
                   + "\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghi\r\n", text);
    }

    [Fact]
    public void ChargenFill_AtAnyOffset_EqualsBytewiseDefinition()
    {
        var buf = new byte[20000];
        foreach (long offset in new long[] { 0, 1, 73, 74, 7029, 7030, 123456789 })
        {
            ChargenPattern.Fill(buf, offset);
            for (int i = 0; i < buf.Length; i++) Assert.Equal(ChargenPattern.At(offset + i), buf[i]);
        }
    }

    [Fact]
    public void Rfc862_Echo_ReturnsEveryByteAndEchoesTheFin()
    {
        var net = Network();
        var echo = new EchoService(net.A, 7, NullLogger.Instance);
        var client = net.B.Connect(SimulatedNetwork.AddressA, 7, net.Now);
        var sender = new BulkSender(net.B, client, 300_000, seed: 5);
        var receiver = new PatternReceiver(net.B, client, seed: 5);
        net.AddApp(n => { sender.Step(n.Now); receiver.Step(); });
        Assert.True(net.RunUntil(() => receiver.Eof, TimeSpan.FromSeconds(30)));
        Assert.Equal(300_000, receiver.Received);
        Assert.False(receiver.Corrupt);
        Assert.Equal(1, echo.ConnectionsAccepted);
    }

    [Fact]
    public void Rfc863_Discard_ConsumesEverythingAndClosesAfterThePeer()
    {
        var net = Network();
        new DiscardService(net.A, 9, NullLogger.Instance);
        var client = net.B.Connect(SimulatedNetwork.AddressA, 9, net.Now);
        var sender = new BulkSender(net.B, client, 2_000_000);
        var receiver = new PatternReceiver(net.B, client);
        net.AddApp(n => { sender.Step(n.Now); receiver.Step(); });
        Assert.True(net.RunUntil(() => receiver.Eof, TimeSpan.FromSeconds(30)));
        Assert.Equal(0, receiver.Received);
        Assert.Equal(2_000_000, client.BytesSent);
    }

    [Fact]
    public void Rfc864_Chargen_StreamsThePatternUntilThePeerCloses()
    {
        var net = Network();
        new ChargenService(net.A, 19, NullLogger.Instance);
        var client = net.B.Connect(SimulatedNetwork.AddressA, 19, net.Now);
        long received = 0;
        bool corrupt = false;
        var buf = new byte[65536];
        net.AddApp(n =>
        {
            int r;
            while ((r = client.ReceiveBuffer.Read(buf)) > 0)
            {
                for (int i = 0; i < r; i++) if (buf[i] != ChargenPattern.At(received + i)) corrupt = true;
                received += r;
                n.B.MarkReady(n.B.FindEntry(client)!, PendingWork.ReceiveBufferRead);
            }
        });
        Assert.True(net.RunUntil(() => received >= 1_000_000, TimeSpan.FromSeconds(30)));
        Assert.False(corrupt);
        net.B.Close(client, net.Now);
        Assert.True(net.RunUntil(() => client.State == TcpConnectionState.Closed, TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void Rfc862_UdpEcho_SendsTheDatagramBack()
    {
        var net = Network();
        new UdpEchoService(net.A, 7);
        var binding = net.B.BindUdp(40000);
        net.B.SendUdp(40000, SimulatedNetwork.AddressA, 7, "ping"u8);
        UdpReceived got = default;
        Assert.True(net.RunUntil(() => binding.TryDequeue(out got), TimeSpan.FromSeconds(1)));
        Assert.Equal("ping"u8.ToArray(), got.Payload);
        Assert.Equal((ushort)7, got.SourcePort);
    }
}
