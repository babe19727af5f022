using System.Buffers.Binary;
using TunTcp.Wire;

namespace TunTcp.Cli.Plot;

/// <summary>One end of a TCP connection.</summary>
internal readonly record struct TcpEndpoint(IpAddress Address, ushort Port)
{
    public override string ToString() => Address.IsV4 ? $"{Address}:{Port}" : $"[{Address}]:{Port}";
}

/// <summary>The TCP header fields of one captured segment that the plot needs, copied out of the packet.</summary>
/// <param name="UnixMicroseconds">The capture's timestamp.</param>
/// <param name="WindowScale">The SYN's window-scale shift (RFC 7323 2.2), when it offers one.</param>
/// <param name="Sack">The SACK blocks (RFC 2018 3), empty when none.</param>
/// <param name="TsEcr">The timestamp echo (RFC 7323 3), when the segment carries timestamps.</param>
internal sealed record CapturedSegment(
    long UnixMicroseconds, TcpEndpoint Source, TcpEndpoint Destination, uint Seq, uint Ack, TcpFlags Flags,
    ushort Window, int PayloadLength, byte? WindowScale, SackBlock[] Sack, uint? TsVal, uint? TsEcr)
{
    public bool Syn => (Flags & TcpFlags.Syn) != 0;
    public bool HasAck => (Flags & TcpFlags.Ack) != 0;
    public bool Fin => (Flags & TcpFlags.Fin) != 0;
    public bool Rst => (Flags & TcpFlags.Rst) != 0;
}

/// <summary>
/// Reads the TCP segments out of a capture file: classic pcap or pcapng (told apart by their
/// first block), with raw IP (LINKTYPE_RAW, as TunTcp writes), LINKTYPE_IPV4/IPV6 or Ethernet
/// framing. Packets that are not TCP, fragments, and malformed packets are skipped; a file that is
/// not a capture, or one of another link type only, is an error.
/// </summary>
internal static class CaptureSegmentReader
{
    private const int LinkTypeEthernet = 1;
    private const int LinkTypeRaw = 101;
    private const int LinkTypeIpv4 = 228;
    private const int LinkTypeIpv6 = 229;

    public static bool TryRead(ReadOnlySpan<byte> file, out List<CapturedSegment> segments, out string? error)
    {
        segments = [];
        var frames = new List<(long Time, byte[] Packet, int LinkType)>();
        if (file.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(file) == PcapNgWriter.SectionHeaderBlockType)
        {
            if (!PcapNgReader.TryRead(file, out var records, out _, out var ngError)) { error = $"not a readable pcapng file: {ngError}"; return false; }
            foreach (var r in records) frames.Add((r.UnixMicroseconds, r.Packet, r.Interface.LinkType));
        }
        else
        {
            if (!PcapReader.TryRead(file, out var records, out int linkType, out var pcapError)) { error = $"not a pcap or pcapng file: {pcapError}"; return false; }
            foreach (var r in records) frames.Add((r.UnixMicroseconds, r.Packet, linkType));
        }
        int unknownLinkType = -1;
        foreach (var (time, packet, linkType) in frames)
        {
            if (IpOffset(packet, linkType) is not { } offset) { unknownLinkType = linkType; continue; }
            if (offset <= packet.Length && TryParseTcp(packet.AsSpan(offset), time) is { } segment) segments.Add(segment);
        }
        if (frames.Count > 0 && segments.Count == 0 && unknownLinkType >= 0)
        {
            error = $"link type {unknownLinkType} is not one plot reads (raw IP, IPv4, IPv6, Ethernet)";
            return false;
        }
        error = null;
        return true;
    }

    /// <summary>Where the IP packet starts in a frame of this link type; null for a link type we do not read.</summary>
    private static int? IpOffset(byte[] frame, int linkType)
    {
        switch (linkType)
        {
            case LinkTypeRaw or LinkTypeIpv4 or LinkTypeIpv6: return 0;
            case LinkTypeEthernet:
                // IEEE 802.3: destination, source, then the EtherType (one 802.1Q tag allowed).
                int offset = 12;
                if (frame.Length >= offset + 2 && BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(offset)) == 0x8100) offset += 4;
                return offset + 2;
            default: return null;
        }
    }

    private static CapturedSegment? TryParseTcp(ReadOnlySpan<byte> packet, long time)
    {
        if (packet.IsEmpty) return null;
        IpAddress source, destination;
        ReadOnlySpan<byte> payload;
        switch (packet[0] >> 4)
        {
            case 4:
                if (!Ipv4Packet.TryParse(packet, out var v4, out _) || v4.IsFragment || v4.Protocol != IpProtocol.Tcp) return null;
                source = v4.Source; destination = v4.Destination; payload = v4.Payload;
                break;
            case 6:
                // Extension headers are not walked: a TCP segment behind one is skipped.
                if (!Ipv6Packet.TryParse(packet, out var v6, out _) || v6.NextHeader != (byte)IpProtocol.Tcp) return null;
                source = v6.Source; destination = v6.Destination; payload = v6.Payload;
                break;
            default: return null;
        }
        if (!TcpPacket.TryParse(payload, out var tcp, out _)) return null;
        var options = tcp.Options;
        return new CapturedSegment(time, new TcpEndpoint(source, tcp.SourcePort), new TcpEndpoint(destination, tcp.DestinationPort),
            tcp.SequenceNumber.Value, tcp.AcknowledgmentNumber.Value, tcp.Flags, tcp.Window, tcp.Payload.Length,
            options.WindowScale, options.SackBlocks.ToArray(),
            options.HasTimestamps ? options.TimestampValue : null, options.HasTimestamps ? options.TimestampEcho : null);
    }
}
