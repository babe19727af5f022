using TunTcp.Ip;
using TunTcp.Wire;

namespace TunTcp.Tests.Support;

/// <summary>Builds whole IPv4 packets for tests, through the wire writers.</summary>
internal static class Packets
{
    public static readonly Ipv4Address Host = Ipv4Address.Parse("192.168.0.1");
    public static readonly Ipv4Address Stack = Ipv4Address.Parse("192.168.0.2");

    public static byte[] Ip(Ipv4Address source, Ipv4Address destination, IpProtocol protocol, ReadOnlySpan<byte> payload)
    {
        var packet = new byte[Ipv4Header.Length + payload.Length];
        new Ipv4Header(source, destination, protocol, payload.Length).Write(packet);
        payload.CopyTo(packet.AsSpan(Ipv4Header.Length));
        return packet;
    }

    public static byte[] EchoRequest(ushort id, ushort sequence, ReadOnlySpan<byte> data, Ipv4Address? from = null, Ipv4Address? to = null)
    {
        var icmp = new byte[Icmpv4Message.HeaderLength + data.Length];
        Icmpv4Writer.WriteEcho(icmp, Icmpv4Type.EchoRequest, id, sequence, data);
        return Ip(from ?? Host, to ?? Stack, IpProtocol.Icmp, icmp);
    }

    public static byte[] Tcp(TcpHeader header, TcpOptions options = default, ReadOnlySpan<byte> payload = default,
        Ipv4Address? from = null, Ipv4Address? to = null)
    {
        var source = from ?? Host;
        var destination = to ?? Stack;
        var segment = new byte[TcpHeader.LengthWith(options) + payload.Length];
        int headerLength = header.Write(segment, options);
        payload.CopyTo(segment.AsSpan(headerLength));
        TcpHeader.WriteChecksum(segment, source, destination);
        return Ip(source, destination, IpProtocol.Tcp, segment);
    }

    public static byte[] Udp(ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload, Ipv4Address? from = null, Ipv4Address? to = null)
    {
        var source = from ?? Host;
        var destination = to ?? Stack;
        var datagram = new byte[UdpHeader.Length + payload.Length];
        new UdpHeader(sourcePort, destinationPort, payload.Length).Write(datagram);
        payload.CopyTo(datagram.AsSpan(UdpHeader.Length));
        UdpHeader.WriteChecksum(datagram, source, destination);
        return Ip(source, destination, IpProtocol.Udp, datagram);
    }
}

/// <summary>An <see cref="IPacketOutput"/> that keeps copies of everything sent.</summary>
internal sealed class RecordingOutput : IPacketOutput
{
    public List<byte[]> Packets { get; } = new();
    public void Send(ReadOnlySpan<byte> packet) => Packets.Add(packet.ToArray());
    public byte[] Single() => Assert.Single(Packets);
}
