using System.Buffers.Binary;
using TunTcp.Wire;

namespace TunTcp.Ip;

internal sealed partial class NetStackCore
{
    /// <summary>ff02::1, the link-local all-nodes group every IPv6 node is in (RFC 4291 2.7.1).</summary>
    private static readonly IpAddress AllNodes = new(0xFF02_0000_0000_0000, 1);

    /// <summary>
    /// The solicited-node group of our address, ff02::1:ffXX:XXXX (RFC 4291 2.7.1), which every
    /// node joins for each of its addresses: the kernel's neighbour solicitations go there.
    /// </summary>
    private bool IsOurSolicitedNode(IpAddress group) =>
        group.High == 0xFF02_0000_0000_0000 && (group.Low >> 24) == 0x1_FF && (group.Low & 0xFF_FFFF) == (_address6.Low & 0xFF_FFFF);

    private void ReceiveIpv6(ReadOnlySpan<byte> packet, Instant now)
    {
        var stats = Statistics;
        if (!Ipv6Packet.TryParse(packet, out var ip, out var error))
        {
            stats.malformedDropped++;
            return;
        }
        stats.ipPacketsReceived++;
        stats.ipv6PacketsReceived++;
        var source = ip.Source;
        var destination = ip.Destination;
        // RFC 4291 2.5.5.2: IPv4-mapped addresses never appear in IPv6 packets (and here they
        // would pass for IPv4 ones); 2.7: a multicast address is never a source.
        if (source.IsV4 || destination.IsV4 || source.IsV6Multicast) { stats.malformedDropped++; return; }
        bool multicast = destination.IsV6Multicast;
        if (!multicast && (!HasIpv6 || destination != _address6) && !TakesForeign(destination)) { stats.notForUsDropped++; return; }
        if (multicast && !HasIpv6) { stats.notForUsDropped++; return; }

        var chain = Ipv6HeaderChain.Walk(ip.Bytes);
        if (chain.Problem != Ipv6ChainProblem.None) { RejectChain(ip.Bytes, chain, multicast, now); return; }
        if (chain.HasFragmentHeader) { ReceiveIpv6Fragment(ip.Bytes, chain, multicast, now); return; }
        DeliverIpv6(ip.Bytes, chain, multicast, now);
    }

    /// <summary>RFC 8200 4 and 4.2-4.4: what to do about a header the walk could not get past.</summary>
    private void RejectChain(ReadOnlySpan<byte> packet, in Ipv6HeaderChain chain, bool multicast, Instant now)
    {
        var stats = Statistics;
        switch (chain.Problem)
        {
            case Ipv6ChainProblem.UnrecognizedNextHeader:
                stats.unknownProtocolDropped++;
                if (!multicast) SendParameterProblem(packet, Icmpv6ParameterProblemCode.UnrecognizedNextHeader, chain.ProblemPointer, now);
                break;
            case Ipv6ChainProblem.UnrecognizedOptionDiscard:
                stats.ipv6HeaderDropped++;
                break;
            case Ipv6ChainProblem.UnrecognizedOptionReport:
                // RFC 8200 4.2: "regardless of whether or not the packet's Destination Address was a multicast address".
                stats.ipv6HeaderDropped++;
                SendParameterProblem(packet, Icmpv6ParameterProblemCode.UnrecognizedOption, chain.ProblemPointer, now, toMulticastToo: true);
                break;
            case Ipv6ChainProblem.UnrecognizedOptionReportUnicast:
                stats.ipv6HeaderDropped++;
                if (!multicast) SendParameterProblem(packet, Icmpv6ParameterProblemCode.UnrecognizedOption, chain.ProblemPointer, now);
                break;
            case Ipv6ChainProblem.RoutingSegmentsLeft:
                stats.ipv6HeaderDropped++;
                if (!multicast) SendParameterProblem(packet, Icmpv6ParameterProblemCode.ErroneousHeaderField, chain.ProblemPointer, now);
                break;
            default:
                stats.malformedDropped++;
                break;
        }
    }

    /// <summary>The header chain ended at an upper-layer header (or none): hand the message to its protocol.</summary>
    private void DeliverIpv6(ReadOnlySpan<byte> packet, in Ipv6HeaderChain chain, bool multicast, Instant now)
    {
        var stats = Statistics;
        var source = IpAddress.ReadV6(packet[8..]);
        var destination = IpAddress.ReadV6(packet[24..]);
        var payload = packet[chain.UpperLayerOffset..];
        switch (chain.UpperLayer)
        {
            case (byte)IpProtocol.Icmpv6:
                ReceiveIcmpv6(packet, source, destination, payload, multicast, now);
                break;
            case (byte)IpProtocol.Tcp:
                // TCP is unicast only (RFC 9293 3.10.7.2: a SYN to a multicast address is ignored).
                if (multicast) { stats.notForUsDropped++; return; }
                ReceiveTcp(new Inbound(source, destination, packet, payload), now);
                break;
            case (byte)IpProtocol.Udp:
                // TunTcp joins no multicast group that UDP could be sent to.
                if (multicast) { stats.notForUsDropped++; return; }
                ReceiveUdp(new Inbound(source, destination, packet, payload), now);
                break;
            case Ipv6NextHeader.NoNextHeader:
                // RFC 8200 4.7: nothing follows; the packet is ignored.
                stats.ipv6NoNextHeader++;
                break;
            default:
                // RFC 8200 4: an unrecognised Next Header value; Code 1 pointing at that value.
                stats.unknownProtocolDropped++;
                if (!multicast && IsLocalAddress(destination)) SendParameterProblem(packet, Icmpv6ParameterProblemCode.UnrecognizedNextHeader, chain.NextHeaderFieldOffset, now);
                break;
        }
    }

    /// <summary>RFC 8200 4.5: a fragment; held until its datagram is whole, then processed as one packet.</summary>
    private void ReceiveIpv6Fragment(ReadOnlySpan<byte> packet, in Ipv6HeaderChain chain, bool multicast, Instant now)
    {
        var stats = Statistics;
        stats.fragmentsReceived++;
        int fh = chain.FragmentHeaderOffset;
        byte nextHeader = packet[fh];
        int field = BinaryPrimitives.ReadUInt16BigEndian(packet[(fh + 2)..]);
        int offset = field & 0xFFF8;
        bool more = (field & 1) != 0;
        uint id = BinaryPrimitives.ReadUInt32BigEndian(packet[(fh + 4)..]);
        var data = packet[(fh + Ipv6FragmentHeader.Length)..];

        if (offset == 0 && !more)
        {
            // RFC 6946 4: an atomic fragment is processed on its own, never mixed with a
            // datagram in reassembly that shares its identification.
            stats.atomicFragments++;
            int length = RemoveFragmentHeader(packet, chain, _rx);
            var alone = _rx.AsSpan(0, length);
            DeliverReassembledIpv6(alone, now);
            return;
        }
        // RFC 8200 4.5: a fragment other than the last whose length is not a multiple of 8 gets
        // Parameter Problem code 0 pointing at the Payload Length field.
        if (more && data.Length % 8 != 0)
        {
            stats.fragmentsDropped++;
            if (!multicast) SendParameterProblem(packet, Icmpv6ParameterProblemCode.ErroneousHeaderField, Ipv6Packet.PayloadLengthOffset, now);
            return;
        }
        // ... and one that would make the reassembled payload longer than 65535 bytes gets it
        // pointing at the Fragment Offset field.
        if (fh - Ipv6Header.Length + offset + data.Length > FragmentReassembler.MaxDatagramPayload)
        {
            stats.fragmentsDropped++;
            if (!multicast) SendParameterProblem(packet, Icmpv6ParameterProblemCode.ErroneousHeaderField, fh + 2, now);
            return;
        }
        if (data.IsEmpty) { stats.fragmentsDropped++; return; }
        if (offset == 0 && !HoldsWholeHeaderChain(packet, fh, nextHeader))
        {
            // RFC 8200 4.5 and RFC 7112 5: a first fragment must carry every header up to and
            // including the upper-layer header; otherwise Parameter Problem code 3.
            stats.fragmentsDropped++;
            if (!multicast) SendParameterProblem(packet, Icmpv6ParameterProblemCode.IncompleteHeaderChain, 0, now);
            return;
        }
        if (multicast) { stats.fragmentsDropped++; stats.notForUsDropped++; return; }

        var key = new FragmentKey(IpAddress.ReadV6(packet[8..]), IpAddress.ReadV6(packet[24..]), id, 0);
        // Kept from the first fragment: its unfragmentable part and Fragment header, which is also
        // what ICMP time exceeded quotes.
        var outcome = _reassembler.Add(key, v6: true, offset, more, data, packet[..(fh + Ipv6FragmentHeader.Length)], now);
        if (outcome == FragmentOutcome.Held) return;
        if (outcome != FragmentOutcome.Complete) { CountFragmentDrop(outcome); return; }
        stats.datagramsReassembled++;
        var whole = _reassembler.Assembled;
        var first = Ipv6HeaderChain.Walk(whole);
        if (!first.HasFragmentHeader) { stats.malformedDropped++; return; }
        int wholeLength = RemoveFragmentHeader(whole, first, _rx);
        DeliverReassembledIpv6(_rx.AsSpan(0, wholeLength), now);
    }

    /// <summary>
    /// Copies <paramref name="packet"/> without its Fragment header into <paramref name="destination"/>:
    /// the header before it takes over the Fragment header's Next Header, the payload length shrinks.
    /// </summary>
    private static int RemoveFragmentHeader(ReadOnlySpan<byte> packet, in Ipv6HeaderChain chain, Span<byte> destination)
    {
        int fh = chain.FragmentHeaderOffset;
        packet[..fh].CopyTo(destination);
        var rest = packet[(fh + Ipv6FragmentHeader.Length)..];
        rest.CopyTo(destination[fh..]);
        destination[chain.NextHeaderFieldOffset] = packet[fh];
        int length = fh + rest.Length;
        BinaryPrimitives.WriteUInt16BigEndian(destination[Ipv6Packet.PayloadLengthOffset..], (ushort)(length - Ipv6Header.Length));
        return length;
    }

    private void DeliverReassembledIpv6(ReadOnlySpan<byte> packet, Instant now)
    {
        var chain = Ipv6HeaderChain.Walk(packet);
        if (chain.Problem != Ipv6ChainProblem.None) { RejectChain(packet, chain, multicast: false, now); return; }
        // A second Fragment header inside a reassembled datagram (nested fragmentation) is not
        // something any sender does; drop it rather than reassemble twice.
        if (chain.HasFragmentHeader) { Statistics.fragmentsDropped++; return; }
        DeliverIpv6(packet, chain, multicast: false, now);
    }

    /// <summary>RFC 7112: the first fragment holds every extension header after the Fragment header and the upper-layer header's fixed part.</summary>
    private static bool HoldsWholeHeaderChain(ReadOnlySpan<byte> packet, int fragmentHeader, byte nextHeader)
    {
        var rest = Ipv6HeaderChain.Walk(packet, fragmentHeader + Ipv6FragmentHeader.Length, nextHeader, fragmentHeader);
        if (rest.Problem == Ipv6ChainProblem.Truncated) return false;
        if (rest.Problem != Ipv6ChainProblem.None || rest.HasFragmentHeader) return true; // reported when the datagram is whole
        int need = rest.UpperLayer switch
        {
            (byte)IpProtocol.Tcp => TcpPacket.MinHeaderLength,
            (byte)IpProtocol.Udp => UdpDatagram.HeaderLength,
            (byte)IpProtocol.Icmpv6 => 4,
            _ => 0,
        };
        return rest.UpperLayerOffset + need <= packet.Length;
    }

    private void ReceiveIcmpv6(ReadOnlySpan<byte> packet, IpAddress source, IpAddress destination, ReadOnlySpan<byte> payload, bool multicast, Instant now)
    {
        var stats = Statistics;
        if (!Icmpv6Message.TryParse(payload, out var icmp, out _)) { stats.malformedDropped++; return; }
        if (!_checksumTrusted && !icmp.IsChecksumValid(source, destination)) { stats.badChecksumDropped++; return; }
        if (icmp.IsNeighborDiscoveryOrMld)
        {
            // Neighbour discovery and MLD have no use on a layer-3 TUN link: the kernel's router
            // and neighbour solicitations and listener reports are counted and dropped, quietly
            // (RFC 4443 2.4 (e): never an error about an informational message like these).
            stats.icmpv6NeighborDiscoveryIgnored++;
            return;
        }
        if (icmp.Type == Icmpv6Type.EchoRequest && icmp.Code == 0)
        {
            // RFC 4443 4.1-4.2: reply with the identifier, sequence number and data; a request to
            // a multicast group we are in is answered from our unicast address.
            if (multicast && destination != AllNodes && !IsOurSolicitedNode(destination)) { stats.notForUsDropped++; return; }
            if (source.IsAny) { stats.notForUsDropped++; return; }
            if (!multicast && destination != _address6 || !HasIpv6)
            {
                if (!OfferEchoRequest(source, destination, icmp.Identifier, icmp.SequenceNumber, icmp.Data)) stats.notForUsDropped++;
                return;
            }
            stats.icmpEchoRequests++;
            int length = Icmpv6Writer.WriteEcho(_tx.AsSpan(Ipv6Header.Length), Icmpv6Type.EchoReply, icmp.Identifier, icmp.SequenceNumber, icmp.Data, multicast ? _address6 : destination, source);
            SendIp(multicast ? _address6 : destination, source, IpProtocol.Icmpv6, length, mayFragment: true);
            return;
        }
        if (icmp.Type is Icmpv6Type.DestinationUnreachable or Icmpv6Type.PacketTooBig or Icmpv6Type.TimeExceeded)
        {
            ReceiveIcmpv6Error(icmp, now);
            return;
        }
        stats.icmpOtherIgnored++;
    }

    private void SendParameterProblem(ReadOnlySpan<byte> invoking, Icmpv6ParameterProblemCode code, int pointer, Instant now, bool toMulticastToo = false)
    {
        if (SendIcmpv6Error(invoking, Icmpv6Type.ParameterProblem, (byte)code, (uint)pointer, now, toMulticastToo))
            Statistics.icmpParameterProblemsSent++;
    }

    /// <summary>
    /// Sends an ICMPv6 error about <paramref name="invoking"/> (a whole IPv6 packet). RFC 4443
    /// 2.4 (e): never about an ICMPv6 error or a redirect, never about a packet to a multicast
    /// address (unless <paramref name="toMulticastToo"/>: Packet Too Big, or Parameter Problem code
    /// 2 for an option of type 10xxxxxx), never to a source that names no single node. Rate
    /// limited (2.4 (f)). Returns whether it was sent.
    /// </summary>
    private bool SendIcmpv6Error(ReadOnlySpan<byte> invoking, Icmpv6Type type, byte code, uint parameter, Instant now, bool toMulticastToo = false, bool fromDestination = false)
    {
        var source = IpAddress.ReadV6(invoking[8..]);
        var destination = IpAddress.ReadV6(invoking[24..]);
        var from = fromDestination || !HasIpv6 ? destination : _address6;
        if (source.IsAny || source.IsV6Multicast || source.IsV4) return false;
        if (destination.IsV6Multicast && !toMulticastToo) return false;
        var chain = Ipv6HeaderChain.Walk(invoking);
        if (chain.Problem == Ipv6ChainProblem.None && !chain.HasFragmentHeader && chain.UpperLayer == (byte)IpProtocol.Icmpv6
            && chain.UpperLayerOffset < invoking.Length
            && (invoking[chain.UpperLayerOffset] < 128 || invoking[chain.UpperLayerOffset] == (byte)Icmpv6Type.Redirect))
            return false;
        if (!TakeIcmpToken(now)) { Statistics.icmpErrorsRateLimited++; return false; }
        int length = Icmpv6Writer.WriteError(_tx.AsSpan(Ipv6Header.Length), type, code, parameter, invoking, from, source);
        Statistics.icmpErrorsSent++;
        SendIp(from, source, IpProtocol.Icmpv6, length);
        return true;
    }
}
