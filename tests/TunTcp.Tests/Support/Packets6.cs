using System.Buffers.Binary;
using TunTcp.Ip;
using TunTcp.Wire;

namespace TunTcp.Tests.Support;

/// <summary>Builds IPv6 packets and fragments of either family for tests, through the wire writers.</summary>
internal static class Packets6
{
    public static readonly IpAddress Host = IpAddress.Parse("fd00:7475:6e::1");
    public static readonly IpAddress Stack = IpAddress.Parse("fd00:7475:6e::2");
    public static readonly IpAddress AllNodes = IpAddress.Parse("ff02::1");

    /// <summary>Options for a dual-stack core with the tool's default addresses.</summary>
    public static NetStackOptions DualStack() => new()
    {
        Address = Packets.Stack.ToIPAddress(),
        Address6 = Stack.ToIPAddress(),
    };

    public static byte[] Ip(IpAddress source, IpAddress destination, byte nextHeader, ReadOnlySpan<byte> payload, byte hopLimit = 64)
    {
        var packet = new byte[Ipv6Header.Length + payload.Length];
        new Ipv6Header(source, destination, nextHeader, payload.Length, hopLimit).Write(packet);
        payload.CopyTo(packet.AsSpan(Ipv6Header.Length));
        return packet;
    }

    public static byte[] Icmp(Icmpv6Type type, byte code, ReadOnlySpan<byte> body, IpAddress? from = null, IpAddress? to = null)
    {
        var source = from ?? Host;
        var destination = to ?? Stack;
        var icmp = new byte[4 + body.Length];
        icmp[0] = (byte)type;
        icmp[1] = code;
        body.CopyTo(icmp.AsSpan(4));
        BinaryPrimitives.WriteUInt16BigEndian(icmp.AsSpan(2), Checksum.ComputeTransport(source, destination, IpProtocol.Icmpv6, icmp));
        return Ip(source, destination, (byte)IpProtocol.Icmpv6, icmp, hopLimit: 255);
    }

    public static byte[] EchoRequest(ushort id, ushort sequence, ReadOnlySpan<byte> data, IpAddress? from = null, IpAddress? to = null)
    {
        var source = from ?? Host;
        var destination = to ?? Stack;
        var icmp = new byte[Icmpv6Message.HeaderLength + data.Length];
        Icmpv6Writer.WriteEcho(icmp, Icmpv6Type.EchoRequest, id, sequence, data, source, destination);
        return Ip(source, destination, (byte)IpProtocol.Icmpv6, icmp);
    }

    public static byte[] Tcp(TcpHeader header, TcpOptions options = default, ReadOnlySpan<byte> payload = default, IpAddress? from = null, IpAddress? to = null)
    {
        var source = from ?? Host;
        var destination = to ?? Stack;
        var segment = new byte[TcpHeader.LengthWith(options) + payload.Length];
        int headerLength = header.Write(segment, options);
        payload.CopyTo(segment.AsSpan(headerLength));
        TcpHeader.WriteChecksum(segment, source, destination);
        return Ip(source, destination, (byte)IpProtocol.Tcp, segment);
    }

    public static byte[] Udp(ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload, IpAddress? from = null, IpAddress? to = null)
    {
        var source = from ?? Host;
        var destination = to ?? Stack;
        var datagram = new byte[UdpHeader.Length + payload.Length];
        new UdpHeader(sourcePort, destinationPort, payload.Length).Write(datagram);
        payload.CopyTo(datagram.AsSpan(UdpHeader.Length));
        UdpHeader.WriteChecksum(datagram, source, destination);
        return Ip(source, destination, (byte)IpProtocol.Udp, datagram);
    }

    /// <summary>Splits an unfragmented IPv6 packet (no extension headers) into fragments of at most <paramref name="chunk"/> payload bytes (a multiple of 8).</summary>
    public static List<byte[]> Fragment(byte[] packet, int chunk, uint identification = 0x1234)
    {
        byte next = packet[6];
        var payload = packet.AsSpan(Ipv6Header.Length);
        var fragments = new List<byte[]>();
        for (int offset = 0; offset < payload.Length; offset += chunk)
        {
            int length = Math.Min(chunk, payload.Length - offset);
            bool more = offset + length < payload.Length;
            var fragment = new byte[Ipv6Header.Length + Ipv6FragmentHeader.Length + length];
            packet.AsSpan(0, Ipv6Header.Length).CopyTo(fragment);
            fragment[6] = Ipv6NextHeader.Fragment;
            BinaryPrimitives.WriteUInt16BigEndian(fragment.AsSpan(4), (ushort)(Ipv6FragmentHeader.Length + length));
            Ipv6FragmentHeader.Write(fragment.AsSpan(Ipv6Header.Length), next, offset, more, identification);
            payload.Slice(offset, length).CopyTo(fragment.AsSpan(Ipv6Header.Length + Ipv6FragmentHeader.Length));
            fragments.Add(fragment);
        }
        return fragments;
    }

    /// <summary>Splits an IPv4 packet (20-byte header) into fragments of at most <paramref name="chunk"/> payload bytes (a multiple of 8).</summary>
    public static List<byte[]> Fragment4(byte[] packet, int chunk, ushort identification = 0x4321)
    {
        var payload = packet.AsSpan(Ipv4Header.Length);
        var fragments = new List<byte[]>();
        for (int offset = 0; offset < payload.Length; offset += chunk)
        {
            int length = Math.Min(chunk, payload.Length - offset);
            fragments.Add(Fragment4At(packet, offset, length, offset + length < payload.Length, identification));
        }
        return fragments;
    }

    /// <summary>One IPv4 fragment of <paramref name="packet"/>'s payload, any offset and length.</summary>
    public static byte[] Fragment4At(byte[] packet, int offset, int length, bool more, ushort identification = 0x4321)
    {
        var fragment = new byte[Ipv4Header.Length + length];
        packet.AsSpan(0, Ipv4Header.Length).CopyTo(fragment);
        BinaryPrimitives.WriteUInt16BigEndian(fragment.AsSpan(2), (ushort)fragment.Length);
        BinaryPrimitives.WriteUInt16BigEndian(fragment.AsSpan(4), identification);
        BinaryPrimitives.WriteUInt16BigEndian(fragment.AsSpan(6), (ushort)((more ? 0x2000 : 0) | offset / 8));
        fragment[10] = 0; fragment[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(fragment.AsSpan(10), Checksum.Compute(fragment.AsSpan(0, Ipv4Header.Length)));
        packet.AsSpan(Ipv4Header.Length + offset, length).CopyTo(fragment.AsSpan(Ipv4Header.Length));
        return fragment;
    }

    /// <summary>Reassembles what the stack sent (IPv4 without DF, or IPv6 with Fragment headers) into one payload, checking every piece fits <paramref name="mtu"/>.</summary>
    public static byte[] Reassemble(IEnumerable<byte[]> fragments, int mtu)
    {
        var whole = new SortedDictionary<int, byte[]>();
        int total = -1;
        foreach (var f in fragments)
        {
            Assert.True(f.Length <= mtu, $"fragment of {f.Length} bytes exceeds MTU {mtu}");
            if ((f[0] >> 4) == 4)
            {
                Assert.True(Ipv4Packet.TryParse(f, out var ip, out _));
                Assert.True(ip.IsHeaderChecksumValid);
                Assert.False(ip.DontFragment);
                whole[ip.FragmentOffset] = ip.Payload.ToArray();
                if (!ip.MoreFragments) total = ip.FragmentOffset + ip.Payload.Length;
            }
            else
            {
                Assert.Equal(Ipv6NextHeader.Fragment, f[6]);
                int offset = BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(Ipv6Header.Length + 2)) & 0xFFF8;
                bool more = (f[Ipv6Header.Length + 3] & 1) != 0;
                var data = f.AsSpan(Ipv6Header.Length + Ipv6FragmentHeader.Length).ToArray();
                whole[offset] = data;
                if (!more) total = offset + data.Length;
            }
        }
        Assert.True(total >= 0, "no last fragment");
        var result = new byte[total];
        int expected = 0;
        foreach (var (offset, data) in whole)
        {
            Assert.Equal(expected, offset);
            data.CopyTo(result, offset);
            expected += data.Length;
        }
        Assert.Equal(total, expected);
        return result;
    }
}
