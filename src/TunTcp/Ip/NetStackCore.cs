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
public sealed partial class NetStackCore : ITcpOutput
{
    private readonly NetStackOptions _options;
    private readonly IPacketOutput _output;
    private readonly ILogger _log;
    private readonly byte[] _tx;
    private readonly TcpEnvironment _tcpEnv;
    private readonly TcpSettings _tcpSettings;
    private ushort _ipIdentification;
    private bool _checksumTrusted;
    /// <summary>The output takes partial checksums (CHECKSUM_PARTIAL) for TCP.</summary>
    private readonly bool _checksumOffload;

    // ICMP error token bucket (RFC 1812 4.3.2.8 asks routers to rate-limit ICMP errors; hosts do too).
    private double _icmpTokens;
    private Instant _icmpTokensAt;

    /// <param name="segmentationOffload">Largest IP packet the output cuts into segments itself (0: none).</param>
    public NetStackCore(NetStackOptions options, IPacketOutput output, ILogger? logger = null, int segmentationOffload = 0)
    {
        if (options.Mtu < 68 || options.Mtu > Ipv4Packet.MaxPacketLength)
            throw new ArgumentOutOfRangeException(nameof(options), $"MTU {options.Mtu} is outside 68..65535.");
        _options = options;
        _output = output;
        _log = logger ?? NullLogger.Instance;
        _tx = new byte[Ipv4Packet.MaxPacketLength];
        _icmpTokens = options.IcmpErrorBurst;
        options.Tcp.Validate();
        _tcpSettings = options.Tcp;
        _tcpEnv = new TcpEnvironment(options.Random, options.ChallengeAcksPerSecond) { SegmentationOffloadBytes = segmentationOffload };
        _checksumOffload = segmentationOffload > 0;
    }

    public Ipv4Address Address => _options.Address;
    public int Mtu => _options.Mtu;
    public NetStackStatistics Statistics { get; } = new();

    /// <summary>Processes one arriving packet (any bytes: malformed input is counted and dropped).</summary>
    /// <param name="checksumTrusted">
    /// The link vouches for the transport checksum (verified, or left partial by a local sender
    /// with offload): it is not checked again. IP header checksums are always checked.
    /// </param>
    public void Receive(ReadOnlySpan<byte> packet, Instant now, bool checksumTrusted = false)
    {
        _checksumTrusted = checksumTrusted;
        Now = now;
        var stats = Statistics;
        if (packet.IsEmpty || (packet[0] >> 4) is not (4 or 6)) { stats.nonIpDropped++; return; }
        if (packet[0] >> 4 == 6) { stats.ipv6Ignored++; return; }
        if (!Ipv4Packet.TryParse(packet, out var ip, out var error))
        {
            stats.malformedDropped++;
            _log.LogDebug("dropped IPv4 packet: {Reason}", error.Describe());
            return;
        }
        stats.ipPacketsReceived++;
        if (!ip.IsHeaderChecksumValid) { stats.badChecksumDropped++; return; }
        if (ip.Destination != _options.Address) { stats.notForUsDropped++; return; }
        // RFC 791 fragments carry part of a transport segment; TunTcp does not reassemble, so a
        // fragment must never be parsed as if it were a whole TCP/UDP/ICMP message.
        if (ip.IsFragment) { stats.fragmentsDropped++; return; }

        switch (ip.Protocol)
        {
            case IpProtocol.Icmp: ReceiveIcmp(ip, now); break;
            case IpProtocol.Tcp: ReceiveTcp(ip, now); break;
            case IpProtocol.Udp: ReceiveUdp(ip, now); break;
            default:
                stats.unknownProtocolDropped++;
                // RFC 1122 3.2.2.1: a host SHOULD send protocol unreachable for a protocol it lacks.
                SendUnreachable(ip, Icmpv4UnreachableCode.ProtocolUnreachable, now);
                break;
        }
    }

    private void ReceiveIcmp(Ipv4Packet ip, Instant now)
    {
        if (!Icmpv4Message.TryParse(ip.Payload, out var icmp, out _)) { Statistics.malformedDropped++; return; }
        if (!icmp.IsChecksumValid) { Statistics.badChecksumDropped++; return; }
        if (icmp.Type != Icmpv4Type.EchoRequest || icmp.Code != 0) { Statistics.icmpOtherIgnored++; return; }
        Statistics.icmpEchoRequests++;
        // RFC 1122 3.2.2.6: the reply carries the request's identifier, sequence number and data.
        int length = Icmpv4Writer.WriteEcho(_tx.AsSpan(Ipv4Header.Length), Icmpv4Type.EchoReply, icmp.Identifier, icmp.SequenceNumber, icmp.Data);
        SendIp(ip.Source, IpProtocol.Icmp, length);
    }

    private void ReceiveUdp(Ipv4Packet ip, Instant now)
    {
        if (!UdpDatagram.TryParse(ip.Payload, out var udp, out _)) { Statistics.malformedDropped++; return; }
        if (!_checksumTrusted && !udp.IsChecksumValid(ip.Source, ip.Destination)) { Statistics.badChecksumDropped++; return; }
        Statistics.udpDatagramsReceived++;
        if (DeliverUdp(ip, udp, now)) return;
        // RFC 1122 4.1.3.1: a datagram to a port with no listener gets ICMP port unreachable.
        if (SendUnreachable(ip, Icmpv4UnreachableCode.PortUnreachable, now)) Statistics.udpPortUnreachableSent++;
    }

    private void ReceiveTcp(Ipv4Packet ip, Instant now)
    {
        if (!TcpPacket.TryParse(ip.Payload, out var tcp, out var error))
        {
            Statistics.malformedDropped++;
            _log.LogDebug("dropped TCP segment: {Reason}", error.Describe());
            return;
        }
        if (!_checksumTrusted && !tcp.IsChecksumValid(ip.Source, ip.Destination)) { Statistics.badChecksumDropped++; return; }
        Statistics.tcpSegmentsReceived++;
        var tuple = new TcpTuple(ip.Destination, tcp.DestinationPort, ip.Source, tcp.SourcePort);
        var segment = TcpSegment.From(tcp);
        if (DeliverTcp(tuple, segment, now)) return;
        if (TcpReset.TryCreateForClosed(segment, tuple.LocalPort, tuple.RemotePort, out var reset))
        {
            Statistics.tcpResetsSent++;
            Send(tuple, reset, default, default, default);
        }
    }

    /// <summary>
    /// Sends ICMP destination unreachable quoting <paramref name="ip"/>. RFC 1122 3.2.2: never
    /// about a broadcast/multicast datagram, never about an ICMP error. Rate limited.
    /// </summary>
    private bool SendUnreachable(Ipv4Packet ip, Icmpv4UnreachableCode code, Instant now)
    {
        if (ip.Source.IsMulticastOrBroadcast || ip.Source.IsAny) return false;
        if (ip.Protocol == IpProtocol.Icmp && Icmpv4Message.TryParse(ip.Payload, out var icmp, out _)
            && icmp.Type is not (Icmpv4Type.EchoRequest or Icmpv4Type.EchoReply))
            return false;
        if (!TakeIcmpToken(now)) { Statistics.icmpErrorsRateLimited++; return false; }
        int length = Icmpv4Writer.WriteDestinationUnreachable(_tx.AsSpan(Ipv4Header.Length), code, ip.Bytes);
        SendIp(ip.Source, IpProtocol.Icmp, length);
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

    /// <summary>Builds a TCP segment in the transmit buffer and sends it (the engine's output).</summary>
    public void Send(in TcpTuple tuple, in TcpHeader header, in TcpOptions options, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued)
    {
        if (_checksumOffload)
        {
            // The link completes checksums: never sum the payload here.
            SendSegmented(tuple, header, options, payload, payloadContinued, 0);
            return;
        }
        var segment = _tx.AsSpan(Ipv4Header.Length);
        int headerLength = header.Write(segment, options);
        payload.CopyTo(segment[headerLength..]);
        payloadContinued.CopyTo(segment[(headerLength + payload.Length)..]);
        int length = headerLength + payload.Length + payloadContinued.Length;
        TcpHeader.WriteChecksum(segment[..length], tuple.LocalAddress, tuple.RemoteAddress);
        Statistics.tcpSegmentsSent++;
        SendIp(tuple.RemoteAddress, IpProtocol.Tcp, length);
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
        var segment = _tx.AsSpan(Ipv4Header.Length);
        int headerLength = header.Write(segment, options);
        int length = headerLength + payload.Length + payloadContinued.Length;
        ushort partial = (ushort)~Checksum.Finish(Checksum.PseudoHeader(tuple.LocalAddress, tuple.RemoteAddress, IpProtocol.Tcp, length));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(segment[16..], partial);
        Statistics.tcpSegmentsSent++;
        var ip = new Ipv4Header(_options.Address, tuple.RemoteAddress, IpProtocol.Tcp, length,
            TimeToLive: _options.TimeToLive, Identification: _ipIdentification++);
        ip.Write(_tx);
        Statistics.ipPacketsSent++;
        _output.SendSegmented(_tx.AsSpan(0, Ipv4Header.Length + headerLength), payload, payloadContinued, segmentPayload);
    }

    /// <summary>Prepends the IPv4 header to the <paramref name="payloadLength"/> bytes already at offset 20 and sends.</summary>
    private void SendIp(Ipv4Address destination, IpProtocol protocol, int payloadLength)
    {
        var header = new Ipv4Header(_options.Address, destination, protocol, payloadLength,
            TimeToLive: _options.TimeToLive, Identification: _ipIdentification++);
        header.Write(_tx);
        Statistics.ipPacketsSent++;
        _output.Send(_tx.AsSpan(0, header.TotalLength));
    }
}
