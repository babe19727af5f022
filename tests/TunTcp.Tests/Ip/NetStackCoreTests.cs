using TunTcp.Ip;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

public class NetStackCoreTests
{
    private readonly RecordingOutput _out = new();
    private readonly NetStackCore _core;

    public NetStackCoreTests() => _core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress() }, _out);

    [Fact]
    public void Rfc1122_EchoRequest_GetsReplyWithSameIdSequenceAndData()
    {
        _core.Receive(Packets.EchoRequest(0x1234, 7, "hello"u8), Instant.Zero);

        Assert.True(Ipv4Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(ip.IsHeaderChecksumValid);
        Assert.Equal(Packets.Stack, ip.Source);
        Assert.Equal(Packets.Host, ip.Destination);
        Assert.True(Icmpv4Message.TryParse(ip.Payload, out var icmp, out _));
        Assert.True(icmp.IsChecksumValid);
        Assert.Equal(Icmpv4Type.EchoReply, icmp.Type);
        Assert.Equal(0x1234, icmp.Identifier);
        Assert.Equal(7, icmp.SequenceNumber);
        Assert.Equal("hello"u8.ToArray(), icmp.Data.ToArray());
    }

    [Fact]
    public void EchoRequest_ToAnotherAddress_IsDroppedAndCounted()
    {
        _core.Receive(Packets.EchoRequest(1, 1, default, to: Ipv4Address.Parse("192.168.0.3")), Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.NotForUsDropped);
    }

    [Fact]
    public void Rfc9293_SynToClosedPort_GetsRstAckOfSegSeqPlusLen()
    {
        var syn = new TcpHeader(40000, 80, new SeqNumber(1000), default, TcpFlags.Syn, 64240);
        _core.Receive(Packets.Tcp(syn), Instant.Zero);

        Assert.True(Ipv4Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(TcpPacket.TryParse(ip.Payload, out var rst, out _));
        Assert.True(rst.IsChecksumValid(ip.Source, ip.Destination));
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(0u, rst.SequenceNumber.Value);
        Assert.Equal(1001u, rst.AcknowledgmentNumber.Value);
        Assert.Equal(80, rst.SourcePort);
        Assert.Equal(40000, rst.DestinationPort);
    }

    [Fact]
    public void Rfc9293_AckToClosedPort_GetsRstWithSeqOfSegAck()
    {
        var ack = new TcpHeader(40000, 80, new SeqNumber(1000), new SeqNumber(555), TcpFlags.Ack, 100);
        _core.Receive(Packets.Tcp(ack, payload: "xyz"u8), Instant.Zero);

        Assert.True(Ipv4Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(TcpPacket.TryParse(ip.Payload, out var rst, out _));
        Assert.Equal(TcpFlags.Rst, rst.Flags);
        Assert.Equal(555u, rst.SequenceNumber.Value);
    }

    [Fact]
    public void Rfc9293_RstToClosedPort_IsNeverAnsweredWithRst()
    {
        var rst = new TcpHeader(40000, 80, new SeqNumber(1000), default, TcpFlags.Rst, 0);
        _core.Receive(Packets.Tcp(rst), Instant.Zero);
        Assert.Empty(_out.Packets);
    }

    [Fact]
    public void TcpWithBadChecksum_IsDroppedSilently()
    {
        var packet = Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(1), default, TcpFlags.Syn, 1));
        packet[^1] ^= 0xFF; // corrupt the checksum field's neighbour: the urgent pointer
        _core.Receive(packet, Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.BadChecksumDropped);
    }

    [Fact]
    public void Rfc1122_UdpToClosedPort_GetsPortUnreachableQuotingTheDatagram()
    {
        var datagram = Packets.Udp(5000, 53, "q"u8);
        _core.Receive(datagram, Instant.Zero);

        Assert.True(Ipv4Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(Icmpv4Message.TryParse(ip.Payload, out var icmp, out _));
        Assert.True(icmp.IsChecksumValid);
        Assert.Equal(Icmpv4Type.DestinationUnreachable, icmp.Type);
        Assert.Equal((byte)Icmpv4UnreachableCode.PortUnreachable, icmp.Code);
        Assert.Equal(datagram, icmp.Data.ToArray());
    }

    [Fact]
    public void Rfc791_Fragment_IsCountedNotParsedAsWhole()
    {
        var packet = Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(1), default, TcpFlags.Syn, 1));
        packet[6] = 0x20; // More Fragments
        packet[10] = 0; packet[11] = 0;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(10), Checksum.Compute(packet.AsSpan(0, 20)));
        _core.Receive(packet, Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.FragmentsDropped);
    }

    [Fact]
    public void IcmpErrors_AreRateLimitedByTokenBucket()
    {
        var core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress(), IcmpErrorBurst = 3, IcmpErrorsPerSecond = 1 }, _out);
        for (int i = 0; i < 5; i++) core.Receive(Packets.Udp(5000, 53, "q"u8), Instant.Zero);
        Assert.Equal(3, _out.Packets.Count);
        core.Receive(Packets.Udp(5000, 53, "q"u8), Instant.FromMilliseconds(1000));
        Assert.Equal(4, _out.Packets.Count);
        Assert.Equal(2, core.Statistics.IcmpErrorsRateLimited);
    }

    [Fact]
    public void Ipv6AndGarbage_AreCountedAndIgnored()
    {
        var ipv6 = new byte[40];
        ipv6[0] = 0x60;
        _core.Receive(ipv6, Instant.Zero);
        _core.Receive(new byte[] { 0x00, 0x01 }, Instant.Zero);
        _core.Receive(new byte[] { 0x45, 0x00 }, Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.Ipv6Ignored);
        Assert.Equal(1, _core.Statistics.NonIpDropped);
        Assert.Equal(1, _core.Statistics.MalformedDropped);
    }

    [Fact]
    public void ConnectionCounters_CountTheOpenAndTheClose_OfAResetSynReceived()
    {
        _core.Listen(Ipv4Address.Any, 80, 4);
        _core.Receive(Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(1000), default, TcpFlags.Syn, 64240)), Instant.Zero);
        Assert.Equal(1, _core.ConnectionCount);
        // RFC 9293 3.10.7.4 / RFC 5961 3.2: a RST at exactly RCV.NXT ends the SYN-RECEIVED connection.
        _core.Receive(Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(1001), default, TcpFlags.Rst, 0)), Instant.Zero);

        Assert.Equal(0, _core.ConnectionCount);
        Assert.Equal(1, _core.Statistics.TcpConnectionsOpened);
        Assert.Equal(1, _core.Statistics.TcpConnectionsClosed);
    }
}
