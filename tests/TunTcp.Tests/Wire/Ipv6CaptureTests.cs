using System.Net;
using CsCheck;
using TunTcp.Ip;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Wire;

/// <summary>Literal IPv6 packets the Linux kernel sent (tests/TunTcp.Tests/Wire/capture-literals.py), read by the wire layer and the core.</summary>
public class Ipv6CaptureTests
{
    private static readonly IpAddress Kernel = IpAddress.Parse("fd00::1"), Stack = IpAddress.Parse("fd00::2");

    [Fact]
    public void LinuxIpv6Syn_EveryFieldReads_AndItsChecksumUsesTheIpv6PseudoHeader()
    {
        Assert.True(Ipv6Packet.TryParse(WireCaptures.LinuxIpv6Syn, out var ip, out _));
        Assert.Equal((Kernel, Stack), (ip.Source, ip.Destination));
        var chain = Ipv6HeaderChain.Walk(ip.Bytes);
        Assert.Equal((byte)IpProtocol.Tcp, chain.UpperLayer);
        Assert.Equal(Ipv6Header.Length, chain.UpperLayerOffset);
        Assert.True(TcpPacket.TryParse(ip.Payload, out var tcp, out _));
        Assert.Equal(TcpFlags.Syn, tcp.Flags);
        Assert.Equal(80, tcp.DestinationPort);
        Assert.Equal((ushort)1440, tcp.Options.MaxSegmentSize); // 1500 - 40 - 20
        Assert.True(tcp.Options.SackPermitted && tcp.Options.HasTimestamps);
        Assert.True(tcp.IsChecksumValid(ip.Source, ip.Destination));
        Assert.False(tcp.IsChecksumValid(IpAddress.Parse("fd00::9"), ip.Destination));
        Assert.StartsWith("IPv6 fd00::1 -> fd00::2 TCP len 80 ", PacketFormatter.Format(WireCaptures.LinuxIpv6Syn));
    }

    [Fact]
    public void LinuxIpv6Udp_ChecksumIsValid_AndTheCoreDeliversIt()
    {
        Assert.True(Ipv6Packet.TryParse(WireCaptures.LinuxIpv6Udp, out var ip, out _));
        Assert.True(UdpDatagram.TryParse(ip.Payload, out var udp, out _));
        Assert.True(udp.IsChecksumValid(ip.Source, ip.Destination));
        Assert.Equal("hello\n"u8.ToArray(), udp.Payload.ToArray());

        var output = new RecordingOutput();
        var core = new NetStackCore(new NetStackOptions { Address6 = IPAddress.Parse("fd00::2") }, output);
        var binding = core.BindUdp(9);
        core.Receive(WireCaptures.LinuxIpv6Udp, Instant.Zero);
        Assert.True(binding.TryDequeue(out var got));
        Assert.Equal(Kernel, got.Source);
        Assert.Equal(40000, got.SourcePort);
    }

    [Fact]
    public void LinuxIpv6Fragments_HaveTheFragmentHeader_AndReassembleIntoAnEchoTheCoreAnswers()
    {
        foreach (var (f, more) in new[] { (WireCaptures.LinuxIpv6FirstFragment, true), (WireCaptures.LinuxIpv6LastFragment, false) })
        {
            Assert.True(Ipv6Packet.TryParse(f, out var ip, out _));
            var chain = Ipv6HeaderChain.Walk(ip.Bytes);
            Assert.True(chain.HasFragmentHeader);
            Assert.Equal(Ipv6Header.Length, chain.FragmentHeaderOffset);
            Assert.Equal(more, (f[Ipv6Header.Length + 3] & 1) != 0);
            Assert.Contains("ICMPv6 fragment id ", PacketFormatter.Format(f));
        }

        var output = new RecordingOutput();
        var core = new NetStackCore(new NetStackOptions { Address6 = IPAddress.Parse("fd00::2") }, output);
        core.Receive(WireCaptures.LinuxIpv6LastFragment, Instant.Zero); // out of order, as it may arrive
        core.Receive(WireCaptures.LinuxIpv6FirstFragment, Instant.Zero);
        Assert.Equal(1, core.Statistics.DatagramsReassembled);
        var reply = Packets6.Reassemble(output.Packets, core.Mtu);
        Assert.True(Icmpv6Message.TryParse(reply, out var icmp, out _));
        Assert.Equal(Icmpv6Type.EchoReply, icmp.Type);
        Assert.True(icmp.IsChecksumValid(Stack, Kernel));
        Assert.Equal(1500, icmp.Data.Length); // ping -s 1500
    }

    [Fact]
    public void HeaderChainWalk_OfAnyDamagedIpv6Packet_NeverThrows_AndStaysInBounds()
    {
        byte[][] seeds = [WireCaptures.LinuxIpv6EchoRequest, WireCaptures.LinuxIpv6Syn, WireCaptures.LinuxIpv6Udp, WireCaptures.LinuxIpv6FirstFragment];
        Gen.Frequency((3, WireGen.Damaged(seeds)), (1, WireGen.AnyBytes)).Sample(bytes =>
        {
            if (!Ipv6Packet.TryParse(bytes, out var ip, out _)) return;
            var chain = Ipv6HeaderChain.Walk(ip.Bytes);
            if (chain.Problem != Ipv6ChainProblem.None) return;
            Assert.InRange(chain.UpperLayerOffset, Ipv6Header.Length, ip.Bytes.Length);
            Assert.InRange(chain.NextHeaderFieldOffset, 0, chain.UpperLayerOffset - 1);
            if (chain.HasFragmentHeader) Assert.InRange(chain.FragmentHeaderOffset, Ipv6Header.Length, ip.Bytes.Length - Ipv6FragmentHeader.Length);
        }, iter: 20000);
    }
}
