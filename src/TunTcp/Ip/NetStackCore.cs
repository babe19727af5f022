using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Ip;

/// <summary>
/// The sans-IO heart of the stack: it is handed each arriving IP packet and the current
/// instant, demultiplexes it, and emits replies through an <see cref="IPacketOutput"/>. It
/// never reads a clock, never blocks and owns no thread; <see cref="NetStack"/> runs it on the
/// stack thread, a simulator runs it on virtual time.
/// </summary>
/// <remarks>
/// Dual-stack: an IPv4 address, an IPv6 address, or both. This file holds the IP layer common to
/// both families (arrival, sending, fragmentation, the ICMP error budget) and IPv4's input;
/// <c>.Ipv6</c> holds IPv6's input (extension headers, ICMPv6); <c>.Transport</c> the
/// family-neutral TCP and UDP demultiplexing above them.
/// </remarks>
internal sealed partial class NetStackCore : ITcpOutput
{
    private readonly NetStackOptions _options;
    private readonly IPacketOutput _output;
    private readonly ILogger _log;
    /// <summary>Transmit buffer: room for an IP header, then the transport message at <see cref="TransportOffset"/>.</summary>
    private readonly byte[] _tx;
    /// <summary>Where a fragment cut from <see cref="_tx"/> is built.</summary>
    private readonly byte[] _fragment;
    /// <summary>Where an IPv6 datagram is rebuilt without its Fragment header before it is processed.</summary>
    private readonly byte[] _rx;
    private readonly TcpEnvironment _tcpEnv;
    private readonly TcpSettings _tcpSettings;
    private readonly FragmentReassembler _reassembler;
    private readonly IpAddress _address4, _address6;
    private ushort _ipIdentification;
    private bool _checksumTrusted;
    /// <summary>The output takes partial checksums (CHECKSUM_PARTIAL) for TCP.</summary>
    private readonly bool _checksumOffload;

    // ICMP error token bucket, both families (RFC 1812 4.3.2.8 and RFC 4443 2.4 (f) ask for a limit).
    private double _icmpTokens;
    private Instant _icmpTokensAt;

    /// <param name="segmentationOffload">Largest IP packet the output cuts into segments itself (0: none).</param>
    public NetStackCore(NetStackOptions options, IPacketOutput output, ILogger? logger = null, int segmentationOffload = 0)
    {
        if (options.Mtu < 68 || options.Mtu > Ipv4Packet.MaxPacketLength)
            throw new ArgumentOutOfRangeException(nameof(options), $"MTU {options.Mtu} is outside 68..65535.");
        if (options.Address is null && options.Address6 is null)
            throw new ArgumentException("The stack needs an IPv4 address, an IPv6 address or both.", nameof(options));
        HasIpv4 = options.Address is not null;
        HasIpv6 = options.Address6 is not null;
        _address4 = HasIpv4 ? IpAddress.FromIPAddress(options.Address!) : IpAddress.AnyV4;
        _address6 = HasIpv6 ? IpAddress.FromIPAddress(options.Address6!) : IpAddress.AnyV6;
        if (HasIpv4 && (!_address4.IsV4 || _address4.IsAny || _address4.IsMulticastOrBroadcast))
            throw new ArgumentException($"The IPv4 address must be an IPv4 unicast address, not {options.Address}.", nameof(options));
        if (HasIpv6 && (_address6.IsV4 || _address6.IsAny || _address6.IsV6Multicast))
            throw new ArgumentException($"The IPv6 address must be an IPv6 unicast address, not {options.Address6}.", nameof(options));
        if (HasIpv6 && options.Mtu < Ipv6Packet.MinimumMtu)
            throw new ArgumentOutOfRangeException(nameof(options), $"IPv6 needs an MTU of at least {Ipv6Packet.MinimumMtu} (RFC 8200 5); it is {options.Mtu}.");
        _options = options;
        _flows = options.FlowHandler;
        if (_flows is not null && options.PendingFlowLimit < 1)
            throw new ArgumentOutOfRangeException(nameof(options), "PendingFlowLimit must be at least 1.");
        _output = output;
        _log = logger ?? NullLogger.Instance;
        _tx = new byte[Ipv6Packet.HeaderLength + Ipv4Packet.MaxPacketLength];
        _fragment = new byte[options.Mtu];
        _rx = new byte[Ipv6Packet.HeaderLength + Ipv4Packet.MaxPacketLength];
        _icmpTokens = options.IcmpErrorBurst;
        options.Tcp.Validate();
        _tcpSettings = options.Tcp;
        _tcpEnv = new TcpEnvironment(options.Random, options.ChallengeAcksPerSecond)
        {
            SegmentationOffloadBytes = segmentationOffload,
            Memory = new TcpMemoryBudget(options.TcpMemoryLimit ?? NetStackOptions.DefaultTcpMemoryLimit()),
        };
        _tcpEnv.ObserverFailed = (c, e) => _log.LogError(e, "An observer of {Connection} threw; the stack goes on", c.Tuple);
        _checksumOffload = segmentationOffload > 0;
        _reassembler = new FragmentReassembler(options.FragmentMemoryLimit, options.FragmentTimeout, options.FragmentTimeout6);
    }

    public bool HasIpv4 { get; }
    public bool HasIpv6 { get; }

    /// <summary>The stack's IPv4 address (<see cref="IpAddress.AnyV4"/> when it has none).</summary>
    public IpAddress Address4 => _address4;

    /// <summary>The stack's IPv6 address (<see cref="IpAddress.AnyV6"/> when it has none).</summary>
    public IpAddress Address6 => _address6;

    public int Mtu => _options.Mtu;
    public NetStackStatistics Statistics { get; } = new();

    /// <summary>Datagrams waiting for fragments and the bytes they hold.</summary>
    public (int Datagrams, int Bytes) ReassemblyUse => (_reassembler.DatagramCount, _reassembler.MemoryInUse);

    /// <summary>True for one of the stack's own unicast addresses.</summary>
    public bool IsLocalAddress(IpAddress address) =>
        address.IsV4 ? HasIpv4 && address == _address4 : HasIpv6 && address == _address6;

    /// <summary>The stack's address of <paramref name="remote"/>'s family, the source of what it sends there.</summary>
    /// <exception cref="SocketException">AddressFamilyNotSupported: the stack has no address of that family.</exception>
    public IpAddress SourceFor(IpAddress remote)
    {
        if (remote.IsV4 ? HasIpv4 : HasIpv6) return remote.IsV4 ? _address4 : _address6;
        throw new SocketException((int)SocketError.AddressFamilyNotSupported,
            $"this stack has no {(remote.IsV4 ? "IPv4" : "IPv6")} address to reach {remote} from");
    }

    /// <summary>Processes one arriving packet (any bytes: malformed input is counted and dropped).</summary>
    /// <param name="checksumTrusted">
    /// The link vouches for the transport checksum (verified, or left partial by a local sender
    /// with offload): it is not checked again. IP header checksums are always checked.
    /// </param>
    public void Receive(ReadOnlySpan<byte> packet, Instant now, bool checksumTrusted = false)
    {
        _checksumTrusted = checksumTrusted;
        Now = now;
        int version = packet.IsEmpty ? 0 : packet[0] >> 4;
        if (version == 4) ReceiveIpv4(packet, now);
        else if (version == 6 && (HasIpv6 || _flows is not null)) ReceiveIpv6(packet, now);
        else if (version == 6) Statistics.ipv6Ignored++;
        else Statistics.nonIpDropped++;
    }

    /// <summary>A datagram that reached a transport: where from and to, and the bytes to quote in an ICMP error about it.</summary>
    private readonly ref struct Inbound(IpAddress source, IpAddress destination, ReadOnlySpan<byte> packet, ReadOnlySpan<byte> payload)
    {
        public readonly IpAddress Source = source;
        public readonly IpAddress Destination = destination;
        /// <summary>The whole IP packet (reassembled, if it came in fragments).</summary>
        public readonly ReadOnlySpan<byte> Packet = packet;
        /// <summary>The transport message.</summary>
        public readonly ReadOnlySpan<byte> Payload = payload;
    }

    // ---- IPv4 input ----

    private void ReceiveIpv4(ReadOnlySpan<byte> packet, Instant now)
    {
        var stats = Statistics;
        if (!Ipv4Packet.TryParse(packet, out var ip, out var error))
        {
            stats.malformedDropped++;
            _log.LogDebug("dropped IPv4 packet: {Reason}", error.Describe());
            return;
        }
        stats.ipPacketsReceived++;
        if (!ip.IsHeaderChecksumValid) { stats.badChecksumDropped++; return; }
        if ((!HasIpv4 || ip.Destination.Value != _address4.V4.Value) && !TakesForeign(ip.Destination)) { stats.notForUsDropped++; return; }
        if (ip.IsFragment) { ReceiveIpv4Fragment(ip, now); return; }
        DeliverIpv4(ip, now);
    }

    private void DeliverIpv4(Ipv4Packet ip, Instant now)
    {
        var inbound = new Inbound(ip.Source, ip.Destination, ip.Bytes, ip.Payload);
        switch (ip.Protocol)
        {
            case IpProtocol.Icmp: ReceiveIcmp(ip, now); break;
            case IpProtocol.Tcp: ReceiveTcp(inbound, now); break;
            case IpProtocol.Udp: ReceiveUdp(inbound, now); break;
            default:
                Statistics.unknownProtocolDropped++;
                if (!IsLocalAddress(ip.Destination)) break; // catch-all mode relays TCP, UDP and echo only
                // RFC 1122 3.2.2.1: a host SHOULD send protocol unreachable for a protocol it lacks.
                SendIcmpv4Error(ip.Bytes, Icmpv4Type.DestinationUnreachable, (byte)Icmpv4UnreachableCode.ProtocolUnreachable, 0, now);
                break;
        }
    }

    /// <summary>
    /// RFC 791 3.2 and RFC 815: a fragment is held until its datagram is whole, then the datagram
    /// is processed as if it had arrived in one piece.
    /// </summary>
    private void ReceiveIpv4Fragment(Ipv4Packet ip, Instant now)
    {
        var stats = Statistics;
        stats.fragmentsReceived++;
        int offset = ip.FragmentOffset;
        var data = ip.Payload;
        // RFC 791: every fragment but the last carries a multiple of 8 bytes; no datagram is longer
        // than 65535 bytes (a fragment reaching past that is the "ping of death").
        if (data.IsEmpty || (ip.MoreFragments && data.Length % 8 != 0) || ip.HeaderLength + offset + data.Length > Ipv4Packet.MaxPacketLength)
        {
            stats.fragmentsDropped++;
            return;
        }
        // RFC 1858 3.4: a TCP fragment at offset 8 can only serve to overwrite the flags of the
        // header the first fragment carried ("tiny fragment" attack): drop it.
        if (ip.Protocol == IpProtocol.Tcp && offset == 8) { stats.fragmentsDropped++; return; }
        var key = new FragmentKey(ip.Source, ip.Destination, ip.Identification, (byte)ip.Protocol);
        var outcome = _reassembler.Add(key, v6: false, offset, ip.MoreFragments, data, ip.Header, now);
        if (outcome == FragmentOutcome.Held) return;
        if (outcome != FragmentOutcome.Complete) { CountFragmentDrop(outcome); return; }
        stats.datagramsReassembled++;
        // The first fragment's header now heads the whole datagram: fix its length and fragment
        // fields and checksum, so the datagram reads (and is quoted in ICMP) as one packet.
        var whole = _reassembler.Assembled;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(whole[2..], (ushort)whole.Length);
        whole[6] = (byte)(whole[6] & 0x40); whole[7] = 0;
        whole[10] = 0; whole[11] = 0;
        int ihl = (whole[0] & 0x0F) * 4;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(whole[10..], Checksum.Compute(whole[..ihl]));
        if (Ipv4Packet.TryParse(whole, out var datagram, out _)) DeliverIpv4(datagram, now);
    }

    private void CountFragmentDrop(FragmentOutcome outcome)
    {
        var stats = Statistics;
        stats.fragmentsDropped++;
        if (outcome == FragmentOutcome.Overlap) stats.fragmentOverlaps++;
    }

    private void ReceiveIcmp(Ipv4Packet ip, Instant now)
    {
        if (!Icmpv4Message.TryParse(ip.Payload, out var icmp, out _)) { Statistics.malformedDropped++; return; }
        if (!icmp.IsChecksumValid) { Statistics.badChecksumDropped++; return; }
        if (icmp.Type is Icmpv4Type.DestinationUnreachable or Icmpv4Type.TimeExceeded) { ReceiveIcmpv4Error(icmp, now); return; }
        if (icmp.Type != Icmpv4Type.EchoRequest || icmp.Code != 0) { Statistics.icmpOtherIgnored++; return; }
        if (!IsLocalAddress(ip.Destination))
        {
            if (!OfferEchoRequest(ip.Source, ip.Destination, icmp.Identifier, icmp.SequenceNumber, icmp.Data)) Statistics.notForUsDropped++;
            return;
        }
        Statistics.icmpEchoRequests++;
        // RFC 1122 3.2.2.6: the reply carries the request's identifier, sequence number and data.
        int length = Icmpv4Writer.WriteEcho(_tx.AsSpan(TransportOffset(ip.Source)), Icmpv4Type.EchoReply, icmp.Identifier, icmp.SequenceNumber, icmp.Data);
        SendIp(ip.Destination, ip.Source, IpProtocol.Icmp, length, mayFragment: true);
    }

    /// <summary>
    /// Sends an ICMPv4 error about <paramref name="invoking"/> (a whole IPv4 packet). RFC 1122
    /// 3.2.2: never about a datagram from a broadcast, multicast or unspecified source, never about
    /// an ICMP error. Rate limited. Returns whether it was sent. It comes from the stack's address
    /// (the router, in catch-all mode), or with <paramref name="fromDestination"/> from the address
    /// the invoking packet was sent to (the host itself, in catch-all mode).
    /// </summary>
    private bool SendIcmpv4Error(ReadOnlySpan<byte> invoking, Icmpv4Type type, byte code, uint restOfHeader, Instant now, bool fromDestination = false)
    {
        var source = Ipv4Address.Read(invoking[12..]);
        IpAddress from = fromDestination || !HasIpv4 ? Ipv4Address.Read(invoking[16..]) : _address4;
        if (source.IsMulticastOrBroadcast || source.IsAny) return false;
        int ihl = (invoking[0] & 0x0F) * 4;
        if ((IpProtocol)invoking[9] == IpProtocol.Icmp && Icmpv4Message.TryParse(invoking[ihl..], out var icmp, out _)
            && icmp.Type is not (Icmpv4Type.EchoRequest or Icmpv4Type.EchoReply))
            return false;
        if (!TakeIcmpToken(now)) { Statistics.icmpErrorsRateLimited++; return false; }
        int length = Icmpv4Writer.WriteError(_tx.AsSpan(Ipv4Header.Length), type, code, restOfHeader, invoking);
        Statistics.icmpErrorsSent++;
        SendIp(from, source, IpProtocol.Icmp, length);
        return true;
    }

    private bool TakeIcmpToken(Instant now)
    {
        double elapsed = (now - _icmpTokensAt).TotalSeconds;
        _icmpTokensAt = now;
        if (elapsed > 0) _icmpTokens = Math.Min(_options.IcmpErrorBurst, _icmpTokens + elapsed * _options.IcmpErrorsPerSecond);
        if (_icmpTokens < 1) return false;
        _icmpTokens -= 1;
        return true;
    }

    /// <summary>Datagrams whose fragments did not all arrive in time: dropped, and reported if their first fragment had come (RFC 792, RFC 4443 3.3).</summary>
    private void ExpireFragments(Instant now)
    {
        while (_reassembler.TryExpire(now, out bool v6, out _, out var firstFragment))
        {
            Statistics.reassemblyTimeouts++;
            if (firstFragment.IsEmpty) continue;
            if (!v6)
            {
                if (SendIcmpv4Error(firstFragment, Icmpv4Type.TimeExceeded, (byte)Icmpv4TimeExceededCode.FragmentReassembly, 0, now))
                    Statistics.icmpTimeExceededSent++;
            }
            else if (SendIcmpv6Error(firstFragment, Icmpv6Type.TimeExceeded, 1, 0, now))
            {
                Statistics.icmpTimeExceededSent++;
            }
        }
    }

    // ---- sending ----

    /// <summary>Where the transport message goes in <see cref="_tx"/> for a packet to <paramref name="destination"/>.</summary>
    private static int TransportOffset(IpAddress destination) => destination.IsV4 ? Ipv4Header.Length : Ipv6Header.Length;

    /// <summary>Builds a TCP segment in the transmit buffer and sends it (the engine's output).</summary>
    public void Send(in TcpTuple tuple, in TcpHeader header, in TcpOptions options, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued)
    {
        if (_checksumOffload)
        {
            // The link completes checksums: never sum the payload here.
            SendSegmented(tuple, header, options, payload, payloadContinued, 0);
            return;
        }
        var segment = _tx.AsSpan(TransportOffset(tuple.RemoteAddress));
        int headerLength = header.Write(segment, options);
        payload.CopyTo(segment[headerLength..]);
        payloadContinued.CopyTo(segment[(headerLength + payload.Length)..]);
        int length = headerLength + payload.Length + payloadContinued.Length;
        TcpHeader.WriteChecksum(segment[..length], tuple.LocalAddress, tuple.RemoteAddress);
        Statistics.tcpSegmentsSent++;
        SendIp(tuple.LocalAddress, tuple.RemoteAddress, IpProtocol.Tcp, length, ecn: header.Ecn);
    }

    /// <summary>
    /// A TCP segment (a super-segment when <paramref name="segmentPayload"/> &gt; 0) for a link
    /// with offloads: the checksum field gets the pseudo-header sum only (CHECKSUM_PARTIAL, as
    /// Linux's TCP leaves it); the kernel completes it for every segment it cuts, or skips it
    /// altogether for local delivery.
    /// </summary>
    public void SendSegmented(in TcpTuple tuple, in TcpHeader header, in TcpOptions options, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued, int segmentPayload)
    {
        // Headers only: the payload goes from the send ring straight to the link (writev), since
        // with a partial checksum nothing here needs to read it.
        int ipLength = TransportOffset(tuple.RemoteAddress);
        var segment = _tx.AsSpan(ipLength);
        int headerLength = header.Write(segment, options);
        int length = headerLength + payload.Length + payloadContinued.Length;
        ushort partial = (ushort)~Checksum.Finish(Checksum.PseudoHeader(tuple.LocalAddress, tuple.RemoteAddress, IpProtocol.Tcp, length));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(segment[16..], partial);
        Statistics.tcpSegmentsSent++;
        WriteIpHeader(tuple.LocalAddress, tuple.RemoteAddress, IpProtocol.Tcp, length, dontFragment: true, header.Ecn);
        _output.SendSegmented(_tx.AsSpan(0, ipLength + headerLength), payload, payloadContinued, segmentPayload);
    }

    /// <summary>
    /// Puts the IP header for the <paramref name="payloadLength"/> bytes already at
    /// <see cref="TransportOffset"/> in front of them and sends the packet; with
    /// <paramref name="mayFragment"/> a packet larger than the MTU goes out in fragments (RFC 791
    /// 3.2; RFC 8200 4.5 with a Fragment header), else it is too large and dropped. The source is
    /// one of the stack's addresses, or, for a flow it terminates in catch-all mode, the address
    /// the peer sent to.
    /// </summary>
    private void SendIp(in IpAddress source, in IpAddress destination, IpProtocol protocol, int payloadLength, bool mayFragment = false, IpEcn ecn = IpEcn.NotEct)
    {
        int headerLength = TransportOffset(destination);
        if (headerLength + payloadLength > _options.Mtu)
        {
            if (!mayFragment) { Statistics.oversizedNotSent++; return; }
            if (destination.IsV4) SendFragmentsV4(source, destination, protocol, payloadLength);
            else SendFragmentsV6(source, destination, protocol, payloadLength);
            return;
        }
        WriteIpHeader(source, destination, protocol, payloadLength, dontFragment: true, ecn);
        Statistics.ipPacketsSent++;
        _output.Send(_tx.AsSpan(0, headerLength + payloadLength));
    }

    private void WriteIpHeader(in IpAddress source, in IpAddress destination, IpProtocol protocol, int payloadLength, bool dontFragment, IpEcn ecn = IpEcn.NotEct)
    {
        if (destination.IsV4)
        {
            new Ipv4Header(source.V4, destination.V4, protocol, payloadLength,
                TimeToLive: _options.TimeToLive, Identification: _ipIdentification++, DontFragment: dontFragment, TypeOfService: (byte)ecn).Write(_tx);
        }
        else
        {
            new Ipv6Header(source, destination, (byte)protocol, payloadLength, HopLimit: _options.TimeToLive, TrafficClass: (byte)ecn).Write(_tx);
        }
    }

    /// <summary>RFC 791 3.2: cuts the datagram at <see cref="_tx"/>[20..] into fragments of a multiple of 8 bytes, DF clear.</summary>
    private void SendFragmentsV4(in IpAddress source, in IpAddress destination, IpProtocol protocol, int payloadLength)
    {
        int chunk = (_options.Mtu - Ipv4Header.Length) & ~7;
        ushort id = _ipIdentification++;
        var payload = _tx.AsSpan(Ipv4Header.Length, payloadLength);
        for (int offset = 0; offset < payloadLength; offset += chunk)
        {
            int length = Math.Min(chunk, payloadLength - offset);
            bool more = offset + length < payloadLength;
            var header = new Ipv4Header(source.V4, destination.V4, protocol, length,
                TimeToLive: _options.TimeToLive, Identification: id, DontFragment: false);
            header.Write(_fragment);
            // Flags and offset: MF, and the offset in 8-byte units (RFC 791 3.1).
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(_fragment.AsSpan(6), (ushort)((more ? 0x2000 : 0) | offset / 8));
            _fragment[10] = 0; _fragment[11] = 0;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(_fragment.AsSpan(10), Checksum.Compute(_fragment.AsSpan(0, Ipv4Header.Length)));
            payload.Slice(offset, length).CopyTo(_fragment.AsSpan(Ipv4Header.Length));
            Statistics.ipPacketsSent++;
            Statistics.fragmentsSent++;
            _output.Send(_fragment.AsSpan(0, Ipv4Header.Length + length));
        }
    }

    /// <summary>
    /// RFC 8200 4.5: cuts the datagram at <see cref="_tx"/>[40..] into fragments, each the IPv6
    /// header, a Fragment header and a multiple of 8 bytes; the identification is random (RFC 7739).
    /// </summary>
    private void SendFragmentsV6(in IpAddress source, in IpAddress destination, IpProtocol protocol, int payloadLength)
    {
        int chunk = (_options.Mtu - Ipv6Header.Length - Ipv6FragmentHeader.Length) & ~7;
        uint id = _tcpEnv.Random.NextUInt32();
        var payload = _tx.AsSpan(Ipv6Header.Length, payloadLength);
        for (int offset = 0; offset < payloadLength; offset += chunk)
        {
            int length = Math.Min(chunk, payloadLength - offset);
            bool more = offset + length < payloadLength;
            new Ipv6Header(source, destination, Ipv6NextHeader.Fragment, Ipv6FragmentHeader.Length + length, HopLimit: _options.TimeToLive).Write(_fragment);
            Ipv6FragmentHeader.Write(_fragment.AsSpan(Ipv6Header.Length), (byte)protocol, offset, more, id);
            payload.Slice(offset, length).CopyTo(_fragment.AsSpan(Ipv6Header.Length + Ipv6FragmentHeader.Length));
            Statistics.ipPacketsSent++;
            Statistics.fragmentsSent++;
            _output.Send(_fragment.AsSpan(0, Ipv6Header.Length + Ipv6FragmentHeader.Length + length));
        }
    }
}
