using System.Text;

namespace TunTcp.Wire;

/// <summary>
/// Renders one raw IP packet as a single line, for the tracer and <c>tuntcp dump</c>:
/// <c>IPv4 10.0.0.1 -> 10.0.0.2 TCP len 60 40000 -> 80 [S] seq 1 ack 0 win 64240 mss 1460</c>,
/// IPv6 likewise with its extension headers named.
/// Every input gives a line: malformed packets say why, non-IP input says what it is.
/// </summary>
internal static class PacketFormatter
{
    public static string Format(ReadOnlySpan<byte> packet)
    {
        var sb = new StringBuilder(128);
        Append(sb, packet);
        return sb.ToString();
    }

    public static void Append(StringBuilder sb, ReadOnlySpan<byte> packet)
    {
        if (packet.IsEmpty) { sb.Append("empty packet"); return; }
        int version = packet[0] >> 4;
        if (version == 4) AppendIpv4(sb, packet);
        else if (version == 6) AppendIpv6(sb, packet);
        else sb.Append($"non-IP packet (version nibble {version}) len {packet.Length}");
    }

    private static void AppendIpv4(StringBuilder sb, ReadOnlySpan<byte> packet)
    {
        if (!Ipv4Packet.TryParse(packet, out var ip, out var error))
        {
            sb.Append($"IPv4 malformed ({error.Describe()}) len {packet.Length}");
            return;
        }
        sb.Append($"IPv4 {ip.Source} -> {ip.Destination} ");
        AppendIpv4Payload(sb, ip);
        // RFC 791 3.1: the header checksum covers the header only, so it is flagged whatever the
        // payload is: a fragment or a malformed segment can have a bad header too.
        if (!ip.IsHeaderChecksumValid) sb.Append(" BAD-IP-CHECKSUM");
    }

    private static void AppendIpv4Payload(StringBuilder sb, Ipv4Packet ip)
    {
        if (ip.IsFragment)
        {
            sb.Append($"{ProtocolName((byte)ip.Protocol)} fragment id {ip.Identification} offset {ip.FragmentOffset}{(ip.MoreFragments ? " +" : "")} len {ip.TotalLength}");
            return;
        }
        AppendTransport(sb, (byte)ip.Protocol, ip.Payload, ip.Source, ip.Destination, ip.TotalLength);
    }

    /// <summary>
    /// IPv6 in full: each extension header by name (RFC 8200 4), a Fragment header as IPv4's
    /// fragments are shown (its payload is not decoded), then the upper layer as for IPv4.
    /// </summary>
    private static void AppendIpv6(StringBuilder sb, ReadOnlySpan<byte> packet)
    {
        if (!Ipv6Packet.TryParse(packet, out var ip, out var error))
        {
            sb.Append($"IPv6 malformed ({error.Describe()}) len {packet.Length}");
            return;
        }
        var bytes = ip.Bytes;
        int total = bytes.Length;
        sb.Append($"IPv6 {ip.Source} -> {ip.Destination} ");
        byte next = ip.NextHeader;
        int offset = Ipv6Packet.HeaderLength;
        for (int count = 0; ; count++)
        {
            string? name = next switch
            {
                Ipv6NextHeader.HopByHop => "hop-by-hop",
                Ipv6NextHeader.Routing => "routing",
                Ipv6NextHeader.DestinationOptions => "dest-opts",
                _ => null,
            };
            if (name is null || count > Ipv6HeaderChain.MaxHeaders) break;
            if (offset + 2 > total || offset + (bytes[offset + 1] + 1) * 8 > total)
            {
                sb.Append($"{name} malformed (truncated) len {total}");
                return;
            }
            sb.Append(name).Append(' ');
            next = bytes[offset];
            offset += (bytes[offset + 1] + 1) * 8;
        }
        if (next == Ipv6NextHeader.Fragment)
        {
            if (offset + Ipv6FragmentHeader.Length > total) { sb.Append($"fragment malformed (truncated) len {total}"); return; }
            var fragment = bytes[offset..];
            int fragmentOffset = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(fragment[2..]) & 0xFFF8;
            bool more = (fragment[3] & 1) != 0;
            uint id = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(fragment[4..]);
            sb.Append($"{ProtocolName(fragment[0])} fragment id {id} offset {fragmentOffset}{(more ? " +" : "")} len {total}");
            return;
        }
        if (next == Ipv6NextHeader.NoNextHeader) { sb.Append($"no-next-header len {total}"); return; }
        AppendTransport(sb, next, bytes[offset..], ip.Source, ip.Destination, total);
    }

    private static void AppendTransport(StringBuilder sb, byte protocol, ReadOnlySpan<byte> payload, IpAddress source, IpAddress destination, int totalLength)
    {
        ParseError error;
        switch (protocol)
        {
            case (byte)IpProtocol.Tcp:
                sb.Append($"TCP len {totalLength} ");
                if (!TcpPacket.TryParse(payload, out var tcp, out error)) { sb.Append($"malformed ({error.Describe()})"); return; }
                sb.Append($"{tcp.SourcePort} -> {tcp.DestinationPort} [{tcp.Flags.ToText()}] seq {tcp.SequenceNumber.Value} ack {tcp.AcknowledgmentNumber.Value} win {tcp.Window}");
                if (tcp.Payload.Length > 0) sb.Append($" data {tcp.Payload.Length}");
                var options = tcp.Options.ToString();
                if (options.Length > 0) sb.Append(' ').Append(options);
                if (!tcp.IsChecksumValid(source, destination)) sb.Append(" BAD-CHECKSUM");
                break;
            case (byte)IpProtocol.Udp:
                sb.Append($"UDP len {totalLength} ");
                if (!UdpDatagram.TryParse(payload, out var udp, out error)) { sb.Append($"malformed ({error.Describe()})"); return; }
                sb.Append($"{udp.SourcePort} -> {udp.DestinationPort} data {udp.Payload.Length}");
                if (!udp.IsChecksumValid(source, destination)) sb.Append(" BAD-CHECKSUM");
                break;
            case (byte)IpProtocol.Icmp when source.IsV4:
                sb.Append($"ICMP len {totalLength} ");
                if (!Icmpv4Message.TryParse(payload, out var icmp, out error)) { sb.Append($"malformed ({error.Describe()})"); return; }
                sb.Append(icmp.Type switch
                {
                    Icmpv4Type.EchoRequest => $"echo request id {icmp.Identifier} seq {icmp.SequenceNumber}",
                    Icmpv4Type.EchoReply => $"echo reply id {icmp.Identifier} seq {icmp.SequenceNumber}",
                    Icmpv4Type.DestinationUnreachable => $"destination unreachable code {icmp.Code}",
                    Icmpv4Type.TimeExceeded => $"time exceeded code {icmp.Code}",
                    _ => $"type {(byte)icmp.Type} code {icmp.Code}",
                });
                if (!icmp.IsChecksumValid) sb.Append(" BAD-CHECKSUM");
                break;
            case (byte)IpProtocol.Icmpv6 when source.IsV6:
                sb.Append($"ICMPv6 len {totalLength} ");
                if (!Icmpv6Message.TryParse(payload, out var icmp6, out error)) { sb.Append($"malformed ({error.Describe()})"); return; }
                sb.Append(icmp6.Type switch
                {
                    Icmpv6Type.EchoRequest => $"echo request id {icmp6.Identifier} seq {icmp6.SequenceNumber}",
                    Icmpv6Type.EchoReply => $"echo reply id {icmp6.Identifier} seq {icmp6.SequenceNumber}",
                    Icmpv6Type.DestinationUnreachable => $"destination unreachable code {icmp6.Code}",
                    Icmpv6Type.PacketTooBig => $"packet too big mtu {icmp6.RestOfHeader}",
                    Icmpv6Type.TimeExceeded => $"time exceeded code {icmp6.Code}",
                    Icmpv6Type.ParameterProblem => $"parameter problem code {icmp6.Code} pointer {icmp6.RestOfHeader}",
                    Icmpv6Type.MulticastListenerReport or Icmpv6Type.MulticastListenerReportV2 => "multicast listener report",
                    Icmpv6Type.RouterSolicitation => "router solicitation",
                    Icmpv6Type.NeighborSolicitation => "neighbor solicitation",
                    Icmpv6Type.NeighborAdvertisement => "neighbor advertisement",
                    _ => $"type {(byte)icmp6.Type} code {icmp6.Code}",
                });
                if (!icmp6.IsChecksumValid(source, destination)) sb.Append(" BAD-CHECKSUM");
                break;
            default:
                sb.Append($"{ProtocolName(protocol)} len {totalLength}");
                break;
        }
    }

    private static string ProtocolName(byte protocol) => protocol switch
    {
        (byte)IpProtocol.Tcp => "TCP",
        (byte)IpProtocol.Udp => "UDP",
        (byte)IpProtocol.Icmp => "ICMP",
        (byte)IpProtocol.Icmpv6 => "ICMPv6",
        _ => $"protocol {protocol}",
    };
}
