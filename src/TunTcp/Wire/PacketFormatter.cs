using System.Text;

namespace TunTcp.Wire;

/// <summary>
/// Renders one raw IP packet as a single line, for the tracer and <c>tuntcp dump</c>:
/// <c>IPv4 10.0.0.1 -> 10.0.0.2 TCP len 60 40000 -> 80 [S] seq 1 ack 0 win 64240 mss 1460</c>.
/// Every input gives a line: malformed packets say why, non-IP input says what it is.
/// </summary>
public static class PacketFormatter
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
        ParseError error;
        if (ip.IsFragment)
        {
            sb.Append($"{ProtocolName(ip.Protocol)} fragment id {ip.Identification} offset {ip.FragmentOffset}{(ip.MoreFragments ? " +" : "")} len {ip.TotalLength}");
            return;
        }
        switch (ip.Protocol)
        {
            case IpProtocol.Tcp:
                sb.Append($"TCP len {ip.TotalLength} ");
                if (!TcpPacket.TryParse(ip.Payload, out var tcp, out error)) { sb.Append($"malformed ({error.Describe()})"); return; }
                sb.Append($"{tcp.SourcePort} -> {tcp.DestinationPort} [{tcp.Flags.ToText()}] seq {tcp.SequenceNumber.Value} ack {tcp.AcknowledgmentNumber.Value} win {tcp.Window}");
                if (tcp.Payload.Length > 0) sb.Append($" data {tcp.Payload.Length}");
                var options = tcp.Options.ToString();
                if (options.Length > 0) sb.Append(' ').Append(options);
                if (!tcp.IsChecksumValid(ip.Source, ip.Destination)) sb.Append(" BAD-CHECKSUM");
                break;
            case IpProtocol.Udp:
                sb.Append($"UDP len {ip.TotalLength} ");
                if (!UdpDatagram.TryParse(ip.Payload, out var udp, out error)) { sb.Append($"malformed ({error.Describe()})"); return; }
                sb.Append($"{udp.SourcePort} -> {udp.DestinationPort} data {udp.Payload.Length}");
                if (!udp.IsChecksumValid(ip.Source, ip.Destination)) sb.Append(" BAD-CHECKSUM");
                break;
            case IpProtocol.Icmp:
                sb.Append($"ICMP len {ip.TotalLength} ");
                if (!Icmpv4Message.TryParse(ip.Payload, out var icmp, out error)) { sb.Append($"malformed ({error.Describe()})"); return; }
                sb.Append(icmp.Type switch
                {
                    Icmpv4Type.EchoRequest => $"echo request id {icmp.Identifier} seq {icmp.SequenceNumber}",
                    Icmpv4Type.EchoReply => $"echo reply id {icmp.Identifier} seq {icmp.SequenceNumber}",
                    Icmpv4Type.DestinationUnreachable => $"destination unreachable code {icmp.Code}",
                    _ => $"type {(byte)icmp.Type} code {icmp.Code}",
                });
                if (!icmp.IsChecksumValid) sb.Append(" BAD-CHECKSUM");
                break;
            default:
                sb.Append($"protocol {(byte)ip.Protocol} len {ip.TotalLength}");
                break;
        }
    }

    private static void AppendIpv6(StringBuilder sb, ReadOnlySpan<byte> packet)
    {
        if (!Ipv6Packet.TryParse(packet, out var ip, out var error))
        {
            sb.Append($"IPv6 malformed ({error.Describe()}) len {packet.Length}");
            return;
        }
        string next = ip.NextHeader switch { 6 => "TCP", 17 => "UDP", 58 => "ICMPv6", 0 => "hop-by-hop", _ => $"next-header {ip.NextHeader}" };
        sb.Append($"IPv6 {ip.Source} -> {ip.Destination} {next} len {Ipv6Packet.HeaderLength + ip.PayloadLength} (ignored: TunTcp speaks IPv4)");
    }

    private static string ProtocolName(IpProtocol protocol) => protocol switch
    {
        IpProtocol.Tcp => "TCP",
        IpProtocol.Udp => "UDP",
        IpProtocol.Icmp => "ICMP",
        _ => $"protocol {(byte)protocol}",
    };
}
