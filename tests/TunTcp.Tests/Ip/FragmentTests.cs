using System.Buffers.Binary;
using TunTcp.Ip;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>
/// Fragment reassembly and fragmentation in both families: RFC 791 3.2, RFC 815, RFC 8200 4.5,
/// RFC 5722 (overlaps), RFC 1858 (tiny fragments), RFC 6946 (atomic fragments), the byte budget
/// and the reassembly timeouts with ICMP time exceeded.
/// </summary>
public class FragmentTests
{
    private readonly RecordingOutput _out = new();
    private readonly NetStackCore _core;

    public FragmentTests() => _core = new NetStackCore(Packets6.DualStack(), _out);

    private static byte[] Pattern(int length)
    {
        var data = new byte[length];
        for (int i = 0; i < length; i++) data[i] = (byte)(i * 7 + i / 251);
        return data;
    }

    private void ReceiveAll(IEnumerable<byte[]> packets, Instant now)
    {
        foreach (var p in packets) _core.Receive(p, now);
    }

    /// <summary>The ICMPv4 echo reply the stack sent, reassembled from its fragments.</summary>
    private Icmpv4Message ReassembledEchoReply4(out byte[] icmpBytes)
    {
        icmpBytes = Packets6.Reassemble(_out.Packets, _core.Mtu);
        Assert.True(Icmpv4Message.TryParse(icmpBytes, out var icmp, out _));
        Assert.True(icmp.IsChecksumValid);
        return icmp;
    }

    [Fact]
    public void Rfc791_Ipv4EchoRequest_InReversedFragmentsWithADuplicate_GetsAFragmentedReply()
    {
        var data = Pattern(4972); // ping -s 4972: a 5000-byte datagram
        var fragments = Packets6.Fragment4(Packets.EchoRequest(9, 1, data), 1480);
        Assert.Equal(4, fragments.Count);
        fragments.Reverse();
        fragments.Insert(2, fragments[1]);
        ReceiveAll(fragments, Instant.Zero);

        Assert.Equal(1, _core.Statistics.DatagramsReassembled);
        Assert.Equal(5, _core.Statistics.FragmentsReceived);
        Assert.Equal(1, _core.Statistics.FragmentsDropped); // the duplicate
        Assert.Equal(0, _core.Statistics.FragmentOverlaps);
        Assert.True(_out.Packets.Count > 1);
        var reply = ReassembledEchoReply4(out _);
        Assert.Equal(Icmpv4Type.EchoReply, reply.Type);
        Assert.Equal(9, reply.Identifier);
        Assert.Equal(data, reply.Data.ToArray());
        Assert.Equal((_out.Packets.Count, 0), (_core.Statistics.FragmentsSent, _core.ReassemblyUse.Datagrams));
    }

    [Fact]
    public void Rfc8200_4_5_Ipv6EchoRequest_OutOfOrder_GetsAReplyWithFragmentHeaders()
    {
        var data = Pattern(4992);
        var fragments = Packets6.Fragment(Packets6.EchoRequest(5, 2, data), 1232);
        (fragments[0], fragments[2]) = (fragments[2], fragments[0]);
        ReceiveAll(fragments, Instant.Zero);

        Assert.Equal(1, _core.Statistics.DatagramsReassembled);
        Assert.True(_out.Packets.Count > 1);
        var icmpBytes = Packets6.Reassemble(_out.Packets, _core.Mtu);
        Assert.True(Icmpv6Message.TryParse(icmpBytes, out var icmp, out _));
        Assert.True(icmp.IsChecksumValid(Packets6.Stack, Packets6.Host));
        Assert.Equal(Icmpv6Type.EchoReply, icmp.Type);
        Assert.Equal(data, icmp.Data.ToArray());
        // Every fragment of the reply carries the same identification.
        var ids = _out.Packets.Select(p => BinaryPrimitives.ReadUInt32BigEndian(p.AsSpan(Ipv6Header.Length + 4))).Distinct();
        Assert.Single(ids);
    }

    [Fact]
    public void Rfc5722_OverlappingIpv6Fragments_DropTheWholeDatagram()
    {
        var packet = Packets6.EchoRequest(5, 2, Pattern(3000));
        var fragments = Packets6.Fragment(packet, 1232);
        // A fragment at offset 8 overlapping the first one with other bounds.
        var overlap = Packets6.Fragment(packet, 1232)[0];
        var shifted = new byte[overlap.Length - 8];
        overlap.AsSpan(0, Ipv6Header.Length + Ipv6FragmentHeader.Length).CopyTo(shifted);
        BinaryPrimitives.WriteUInt16BigEndian(shifted.AsSpan(4), (ushort)(shifted.Length - Ipv6Header.Length));
        Ipv6FragmentHeader.Write(shifted.AsSpan(Ipv6Header.Length), (byte)IpProtocol.Icmpv6, 8, true, 0x1234);
        _core.Receive(fragments[0], Instant.Zero);
        _core.Receive(shifted, Instant.Zero);
        _core.Receive(fragments[1], Instant.Zero);
        _core.Receive(fragments[2], Instant.Zero);

        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.FragmentOverlaps);
        Assert.Equal(0, _core.Statistics.DatagramsReassembled);
    }

    [Fact]
    public void OverlappingIpv4Fragments_DropTheWholeDatagram()
    {
        var packet = Packets.EchoRequest(1, 1, Pattern(3000));
        var first = Packets6.Fragment4At(packet, 0, 1480, more: true);
        var overlapping = Packets6.Fragment4At(packet, 1000, 1480, more: true);
        var last = Packets6.Fragment4At(packet, 1480, 3008 - 1480, more: false);
        ReceiveAll([first, overlapping, last], Instant.Zero);

        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.FragmentOverlaps);
    }

    [Fact]
    public void Rfc1858_TcpFragmentAtOffset8_IsDropped()
    {
        _core.Listen(IpAddress.AnyV4, 80, 8);
        var syn = Packets.Tcp(new TcpHeader(40000, 80, new SeqNumber(1), default, TcpFlags.Syn, 1000), payload: new byte[12]);
        var head = Packets6.Fragment4At(syn, 0, 16, more: true);
        var rewrite = Packets6.Fragment4At(syn, 8, 24, more: false);
        ReceiveAll([head, rewrite], Instant.Zero);

        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.FragmentsDropped);
        Assert.Equal(1, _core.ReassemblyUse.Datagrams); // the head waits for a legitimate rest
    }

    [Fact]
    public void Rfc791_FragmentReachingPast65535Bytes_IsDropped()
    {
        var packet = Packets.EchoRequest(1, 1, new byte[100]);
        var deadly = Packets6.Fragment4At(packet, 0, 100, more: false);
        BinaryPrimitives.WriteUInt16BigEndian(deadly.AsSpan(6), (ushort)(65520 / 8));
        deadly[10] = 0; deadly[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(deadly.AsSpan(10), Checksum.Compute(deadly.AsSpan(0, Ipv4Header.Length)));
        _core.Receive(deadly, Instant.Zero);

        Assert.Empty(_out.Packets);
        Assert.Equal(1, _core.Statistics.FragmentsDropped);
        Assert.Equal(0, _core.ReassemblyUse.Datagrams);
    }

    [Fact]
    public void Rfc6946_AtomicFragment_IsProcessedAtOnceOutsideReassembly()
    {
        var atomic = Packets6.Fragment(Packets6.EchoRequest(3, 4, "atomic"u8), 1232);
        Assert.Single(atomic);
        _core.Receive(atomic[0], Instant.Zero);

        Assert.Equal(1, _core.Statistics.AtomicFragments);
        Assert.Equal(0, _core.ReassemblyUse.Datagrams);
        Assert.True(Ipv6Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(Icmpv6Message.TryParse(ip.Payload, out var reply, out _));
        Assert.Equal(Icmpv6Type.EchoReply, reply.Type);
    }

    [Fact]
    public void Rfc792_Ipv4ReassemblyTimeout_SendsTimeExceededOnlyWhenTheFirstFragmentCame()
    {
        var withFirst = Packets6.Fragment4(Packets.EchoRequest(1, 1, Pattern(3000)), 1480, identification: 1);
        var withoutFirst = Packets6.Fragment4(Packets.EchoRequest(1, 2, Pattern(3000)), 1480, identification: 2);
        _core.Receive(withFirst[0], Instant.Zero);
        _core.Receive(withoutFirst[1], Instant.Zero);
        Assert.Equal(2, _core.ReassemblyUse.Datagrams);

        _core.Poll(Instant.FromMilliseconds(29000));
        Assert.Empty(_out.Packets);
        Assert.True(_core.NextDeadline <= Instant.FromMilliseconds(30000));
        _core.Poll(Instant.FromMilliseconds(30000));

        Assert.Equal(2, _core.Statistics.ReassemblyTimeouts);
        Assert.Equal((0, 0), _core.ReassemblyUse);
        Assert.True(Ipv4Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(Icmpv4Message.TryParse(ip.Payload, out var icmp, out _));
        Assert.Equal(Icmpv4Type.TimeExceeded, icmp.Type);
        Assert.Equal((byte)Icmpv4TimeExceededCode.FragmentReassembly, icmp.Code);
        // It quotes the first fragment's header.
        Assert.Equal(withFirst[0].AsSpan(0, Ipv4Header.Length).ToArray(), icmp.Data[..Ipv4Header.Length].ToArray());
    }

    [Fact]
    public void Rfc4443_3_3_Ipv6ReassemblyTimeout_After60Seconds_SendsTimeExceededCode1()
    {
        var fragments = Packets6.Fragment(Packets6.EchoRequest(1, 1, Pattern(3000)), 1232);
        _core.Receive(fragments[0], Instant.Zero);
        _core.Poll(Instant.FromMilliseconds(59000));
        Assert.Empty(_out.Packets);
        _core.Poll(Instant.FromMilliseconds(60000));

        Assert.True(Ipv6Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(Icmpv6Message.TryParse(ip.Payload, out var icmp, out _));
        Assert.True(icmp.IsChecksumValid(ip.Source, ip.Destination));
        Assert.Equal(Icmpv6Type.TimeExceeded, icmp.Type);
        Assert.Equal(1, icmp.Code);
        Assert.Equal(1, _core.Statistics.IcmpTimeExceededSent);
    }

    [Fact]
    public void MemoryBudget_EvictsOldestDatagrams_AndNewOnesStillComplete()
    {
        const int limit = 32 * 1024;
        var core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress(), Address6 = Packets6.Stack.ToIPAddress(), FragmentMemoryLimit = limit }, _out);
        var packets = Enumerable.Range(0, 40).Select(i => Packets6.Fragment4(Packets.EchoRequest(1, (ushort)i, Pattern(2000)), 1480, identification: (ushort)(100 + i))).ToList();
        for (int i = 0; i < packets.Count; i++)
        {
            core.Receive(packets[i][0], Instant.FromMilliseconds(i));
            Assert.InRange(core.ReassemblyUse.Bytes, 0, limit);
        }
        Assert.InRange(core.ReassemblyUse.Datagrams, 1, 39);

        core.Receive(packets[0][1], Instant.FromMilliseconds(50)); // the oldest was evicted: no reply
        Assert.Empty(_out.Packets);
        core.Receive(packets[39][1], Instant.FromMilliseconds(51)); // the newest completes
        Assert.Equal(2, _out.Packets.Count); // its reply, in two fragments
        Assert.Equal(1, core.Statistics.DatagramsReassembled);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Udp8000Bytes_ArrivesWhole_AndGoesBackFragmented(bool v6)
    {
        var binding = _core.BindUdp(7);
        var data = Pattern(8000);
        var fragments = v6
            ? Packets6.Fragment(Packets6.Udp(5000, 7, data), 1232)
            : Packets6.Fragment4(Packets.Udp(5000, 7, data), 1480);
        fragments.Reverse();
        ReceiveAll(fragments, Instant.Zero);
        Assert.True(binding.TryDequeue(out var got));
        Assert.Equal(data, got.Payload.ToArray());

        _core.SendUdp(7, got.Source, got.SourcePort, got.Payload);
        Assert.True(_out.Packets.Count >= 6);
        var datagram = Packets6.Reassemble(_out.Packets, _core.Mtu);
        Assert.True(UdpDatagram.TryParse(datagram, out var udp, out _));
        var (source, destination) = v6 ? (Packets6.Stack, Packets6.Host) : ((IpAddress)Packets.Stack, (IpAddress)Packets.Host);
        Assert.True(udp.IsChecksumValid(source, destination));
        Assert.Equal(data, udp.Payload.ToArray());
    }

    [Fact]
    public void TcpSegments_AreNeverFragmented_TheyGoWithDontFragment()
    {
        var connection = _core.Connect(Packets.Host, 80, Instant.Zero);
        Assert.True(Ipv4Packet.TryParse(_out.Single(), out var ip, out _));
        Assert.True(ip.DontFragment);
        Assert.NotNull(connection);
    }
}
