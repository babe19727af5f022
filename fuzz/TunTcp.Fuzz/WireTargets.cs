using System.Text;
using TunTcp.Wire;

namespace TunTcp.Fuzz;

/// <summary>
/// The wire parsers and the formatter as fuzz targets. A parser must return false (with a
/// reason) for anything it does not take, never throw (DESIGN.md tier 1); what it takes must be
/// readable through every accessor, since a view promises that no accessor fails after
/// <c>TryParse</c> (STYLE.md: the checked constructor).
/// </summary>
internal static class WireTargets
{
    private static readonly IpAddress Source4 = IpAddress.Parse("192.168.0.1"), Destination4 = IpAddress.Parse("192.168.0.2");
    private static readonly IpAddress Source6 = IpAddress.Parse("fd00::1"), Destination6 = IpAddress.Parse("fd00::2");

    public static void Ipv4(ReadOnlySpan<byte> input)
    {
        if (!Ipv4Packet.TryParse(input, out var ip, out var error)) { Expect(error != ParseError.None, "IPv4 rejected without a reason"); return; }
        Expect(ip.HeaderLength >= Ipv4Packet.MinHeaderLength && ip.HeaderLength <= ip.TotalLength && ip.TotalLength <= input.Length, "IPv4 lengths out of the buffer");
        _ = (ip.TypeOfService, ip.Identification, ip.DontFragment, ip.MoreFragments, ip.FragmentOffset, ip.IsFragment, ip.TimeToLive, ip.Protocol, ip.HeaderChecksum);
        _ = (ip.Source.ToString(), ip.Destination.ToString(), ip.IsHeaderChecksumValid);
        Expect(ip.Header.Length + ip.Payload.Length == ip.TotalLength, "IPv4 header and payload do not add up");
    }

    public static void Ipv6(ReadOnlySpan<byte> input)
    {
        if (!Ipv6Packet.TryParse(input, out var ip, out var error)) { Expect(error != ParseError.None, "IPv6 rejected without a reason"); return; }
        _ = (ip.TrafficClass, ip.FlowLabel, ip.NextHeader, ip.HopLimit, ip.Source.ToString(), ip.Destination.ToString());
        Expect(ip.Payload.Length == ip.PayloadLength && ip.Bytes.Length <= input.Length, "IPv6 payload length out of the buffer");
        var chain = Ipv6HeaderChain.Walk(ip.Bytes);
        if (chain.Problem != Ipv6ChainProblem.None) return;
        Expect(chain.UpperLayerOffset >= Ipv6Packet.HeaderLength && chain.UpperLayerOffset <= ip.Bytes.Length, "IPv6 chain ends outside the packet");
        if (chain.HasFragmentHeader)
            Expect(chain.FragmentHeaderOffset + Ipv6FragmentHeader.Length <= ip.Bytes.Length, "IPv6 fragment header outside the packet");
    }

    public static void Tcp(ReadOnlySpan<byte> input)
    {
        if (!TcpPacket.TryParse(input, out var tcp, out var error)) { Expect(error != ParseError.None, "TCP rejected without a reason"); return; }
        _ = (tcp.SourcePort, tcp.DestinationPort, tcp.SequenceNumber, tcp.AcknowledgmentNumber, tcp.ReservedBits, tcp.Flags, tcp.Window, tcp.Checksum, tcp.UrgentPointer);
        Expect(tcp.HeaderLength >= TcpPacket.MinHeaderLength && tcp.HeaderLength <= input.Length, "TCP header length out of the segment");
        Expect(tcp.OptionBytes.Length + TcpPacket.MinHeaderLength + tcp.Payload.Length == tcp.Bytes.Length, "TCP parts do not add up");
        Expect(tcp.SegmentLength >= tcp.Payload.Length, "TCP segment length below its payload");
        CheckOptions(tcp.Options);
        _ = tcp.IsChecksumValid(Source4, Destination4) | tcp.IsChecksumValid(Source6, Destination6);
    }

    public static void TcpOptionsTarget(ReadOnlySpan<byte> input)
    {
        if (!Wire.TcpOptions.TryParse(input, out var options, out var error)) { Expect(error != ParseError.None, "options rejected without a reason"); return; }
        CheckOptions(options);
        // What was parsed can be written again, and reads back the same.
        if (options.EncodedLength > Wire.TcpOptions.MaxLength) return;
        Span<byte> again = stackalloc byte[Wire.TcpOptions.MaxLength];
        int written = options.Write(again);
        Expect(Wire.TcpOptions.TryParse(again[..written], out var back, out _), "written options do not parse");
        Expect(back.MaxSegmentSize == options.MaxSegmentSize && back.WindowScale == options.WindowScale && back.SackPermitted == options.SackPermitted
            && back.HasTimestamps == options.HasTimestamps && (!back.HasTimestamps || (back.TimestampValue == options.TimestampValue && back.TimestampEcho == options.TimestampEcho))
            && back.SackBlocks.SequenceEqual(options.SackBlocks[..options.MaxSackBlocksThatFit()]), "options do not round-trip");
    }

    private static void CheckOptions(in Wire.TcpOptions options)
    {
        Expect(options.SackCount is >= 0 and <= Wire.TcpOptions.MaxSackBlocks, "more SACK blocks than fit");
        foreach (var block in options.SackBlocks) _ = block.Left.Value ^ block.Right.Value;
    }

    public static void Udp(ReadOnlySpan<byte> input)
    {
        if (!UdpDatagram.TryParse(input, out var udp, out var error)) { Expect(error != ParseError.None, "UDP rejected without a reason"); return; }
        _ = (udp.SourcePort, udp.DestinationPort, udp.Checksum);
        Expect(udp.Length == UdpDatagram.HeaderLength + udp.Payload.Length && udp.Length <= input.Length, "UDP length out of the buffer");
        _ = udp.IsChecksumValid(Source4, Destination4) | udp.IsChecksumValid(Source6, Destination6);
    }

    public static void Icmpv4(ReadOnlySpan<byte> input)
    {
        if (!Icmpv4Message.TryParse(input, out var m, out var error)) { Expect(error != ParseError.None, "ICMP rejected without a reason"); return; }
        _ = (m.Type, m.Code, m.Checksum, m.Identifier, m.SequenceNumber, m.RestOfHeader, m.IsChecksumValid);
        Expect(m.Data.Length + Icmpv4Message.HeaderLength == m.Bytes.Length, "ICMP parts do not add up");
    }

    public static void Icmpv6(ReadOnlySpan<byte> input)
    {
        if (!Icmpv6Message.TryParse(input, out var m, out var error)) { Expect(error != ParseError.None, "ICMPv6 rejected without a reason"); return; }
        _ = (m.Type, m.Code, m.Checksum, m.Identifier, m.SequenceNumber, m.RestOfHeader, m.IsError, m.IsNeighborDiscoveryOrMld, m.IsChecksumValid(Source6, Destination6));
        Expect(m.Data.Length + Icmpv6Message.HeaderLength == m.Bytes.Length, "ICMPv6 parts do not add up");
    }

    public static void Pcap(ReadOnlySpan<byte> input)
    {
        if (!PcapReader.TryRead(input, out var records, out _, out var error)) { Expect(error is not null, "pcap rejected without a reason"); return; }
        foreach (var r in records) Expect(r.Packet.Length <= input.Length, "pcap record larger than the file");
    }

    public static void PcapNg(ReadOnlySpan<byte> input)
    {
        if (!PcapNgReader.TryRead(input, out var records, out var interfaces, out var error)) { Expect(error is not null, "pcapng rejected without a reason"); return; }
        foreach (var r in records)
        {
            Expect(r.Packet.Length <= input.Length, "pcapng record larger than the file");
            Expect(interfaces.Contains(r.Interface), "pcapng record on an interface never described");
        }
    }

    /// <summary>
    /// Address text (one byte per character): what parses prints in a form that parses back to
    /// the same address, and that .NET's own parser reads as the same address too.
    /// </summary>
    public static void IpAddressText(ReadOnlySpan<byte> input)
    {
        string text = Encoding.Latin1.GetString(input);
        if (Ipv4Address.TryParse(text, out var v4))
        {
            string printed = v4.ToString();
            Expect(Ipv4Address.TryParse(printed, out var back) && back == v4, $"IPv4 '{text}' prints as '{printed}', which does not parse back");
            Expect(IpAddress.TryParse(text, out var any) && any.IsV4 && any.V4 == v4, $"'{text}' parses as IPv4 but not as an IP address");
        }
        if (!IpAddress.TryParse(text, out var address)) return;
        string canonical = address.ToString();
        Expect(IpAddress.TryParse(canonical, out var again) && again == address, $"'{text}' prints as '{canonical}', which does not parse back");
        Expect(System.Net.IPAddress.TryParse(canonical, out var system) && IpAddress.FromIPAddress(system) == address, $"'{text}' prints as '{canonical}', which .NET reads otherwise");
    }

    /// <summary>Any bytes give one line (the formatter's contract: malformed input says why).</summary>
    public static void Formatter(ReadOnlySpan<byte> input)
    {
        string line = PacketFormatter.Format(input);
        Expect(line.Length > 0 && line.IndexOf('\n') < 0, "the formatter gave no line, or more than one");
    }

    private static void Expect(bool condition, string message)
    {
        if (!condition) throw new FuzzContractException(message);
    }
}
