using System.Buffers.Binary;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Ip;

/// <summary>
/// ICMP errors about segments we sent, handed to their connection: unreachables (RFC 1122
/// 4.2.3.9, RFC 5461) and path MTU discovery (RFC 1191, RFC 8201) with a per-destination cache.
/// The quoted segment must name one of our connections (its tuple) and the sequence number must
/// lie in SND.UNA..SND.NXT (RFC 5927 4.1), or the error is ignored: a forged or stale one
/// changes nothing.
/// </summary>
internal sealed partial class NetStackCore
{
    /// <summary>
    /// The least IPv4 path MTU believed: Linux's min_pmtu (552). RFC 1191 allows 68, but a forged
    /// fragmentation-needed with a tiny MTU would make every segment tiny (RFC 5927 7.1).
    /// </summary>
    public const int MinimumPathMtu4 = 552;

    /// <summary>IPv6 links carry at least 1280 bytes (RFC 8200 5); a smaller packet-too-big is taken as 1280 (RFC 8201 4).</summary>
    public const int MinimumPathMtu6 = Ipv6Packet.MinimumMtu;

    private readonly PathMtuCache _pathMtus = new();

    /// <summary>RFC 1191 7: the plateaus to try when a router's fragmentation-needed carries no MTU.</summary>
    private static readonly int[] MtuPlateaus = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

    /// <summary>The path MTU learned for <paramref name="destination"/> (the link MTU when nothing was learned or it expired).</summary>
    public int PathMtuTo(IpAddress destination) => _pathMtus.TryGet(destination, Now, out int mtu) ? mtu : _options.Mtu;

    /// <summary>An ICMPv4 destination unreachable or time exceeded.</summary>
    private void ReceiveIcmpv4Error(in Icmpv4Message icmp, Instant now)
    {
        var quoted = icmp.Data;
        // RFC 792: the invoking datagram's IP header and at least its first 8 bytes: the ports and
        // the sequence number of a TCP segment.
        if (quoted.Length < Ipv4Header.Length || quoted[0] >> 4 != 4) { Statistics.icmpErrorsIgnored++; return; }
        int ihl = (quoted[0] & 0x0F) * 4;
        if (ihl < Ipv4Header.Length || quoted.Length < ihl + 8 || (IpProtocol)quoted[9] != IpProtocol.Tcp) { Statistics.icmpErrorsIgnored++; return; }
        var source = Ipv4Address.Read(quoted[12..]);
        var destination = Ipv4Address.Read(quoted[16..]);
        var segment = quoted[ihl..];
        var tuple = new TcpTuple(source, BinaryPrimitives.ReadUInt16BigEndian(segment), destination, BinaryPrimitives.ReadUInt16BigEndian(segment[2..]));
        var seq = new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(segment[4..]));
        if (icmp.Type == Icmpv4Type.DestinationUnreachable && icmp.Code == (byte)Icmpv4UnreachableCode.FragmentationNeeded)
        {
            // RFC 1191 4: the next-hop MTU is the low 16 bits; 0 from an older router means "guess
            // from the plateau below the datagram's length".
            int mtu = (int)(icmp.RestOfHeader & 0xFFFF);
            if (mtu == 0)
            {
                int length = BinaryPrimitives.ReadUInt16BigEndian(quoted[2..]);
                mtu = 68;
                foreach (int plateau in MtuPlateaus)
                    if (plateau < length) { mtu = plateau; break; }
            }
            DeliverPathMtu(tuple, seq, Math.Max(mtu, MinimumPathMtu4), now);
            return;
        }
        var error = icmp.Type == Icmpv4Type.TimeExceeded ? TcpError.HostUnreachable : icmp.Code switch
        {
            // RFC 1122 3.2.2.1 codes; Linux icmp_err_convert maps them alike.
            0 or 6 or 9 or 11 => TcpError.NetworkUnreachable,
            2 or 3 => TcpError.ConnectionRefused,
            _ => TcpError.HostUnreachable,
        };
        DeliverUnreachable(tuple, seq, error, now);
    }

    /// <summary>An ICMPv6 destination unreachable, packet too big or time exceeded (RFC 4443 3.1-3.3).</summary>
    private void ReceiveIcmpv6Error(in Icmpv6Message icmp, Instant now)
    {
        var quoted = icmp.Data;
        if (quoted.Length < Ipv6Packet.HeaderLength || quoted[0] >> 4 != 6) { Statistics.icmpErrorsIgnored++; return; }
        var chain = Ipv6HeaderChain.Walk(quoted);
        if (chain.Problem != Ipv6ChainProblem.None || chain.HasFragmentHeader || chain.UpperLayer != (byte)IpProtocol.Tcp
            || chain.UpperLayerOffset + 8 > quoted.Length)
        {
            Statistics.icmpErrorsIgnored++;
            return;
        }
        var segment = quoted[chain.UpperLayerOffset..];
        var tuple = new TcpTuple(IpAddress.ReadV6(quoted[8..]), BinaryPrimitives.ReadUInt16BigEndian(segment),
            IpAddress.ReadV6(quoted[24..]), BinaryPrimitives.ReadUInt16BigEndian(segment[2..]));
        var seq = new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(segment[4..]));
        if (icmp.Type == Icmpv6Type.PacketTooBig)
        {
            DeliverPathMtu(tuple, seq, (int)Math.Clamp(icmp.RestOfHeader, (uint)MinimumPathMtu6, (uint)int.MaxValue), now);
            return;
        }
        var error = icmp.Type == Icmpv6Type.TimeExceeded ? TcpError.HostUnreachable : (Icmpv6UnreachableCode)icmp.Code switch
        {
            Icmpv6UnreachableCode.NoRoute => TcpError.NetworkUnreachable,
            Icmpv6UnreachableCode.PortUnreachable => TcpError.ConnectionRefused,
            _ => TcpError.HostUnreachable,
        };
        DeliverUnreachable(tuple, seq, error, now);
    }

    private void DeliverUnreachable(in TcpTuple tuple, SeqNumber seq, TcpError error, Instant now)
    {
        if (!_connections.TryGetValue(tuple, out var entry) || !entry.Connection.OnIcmpUnreachable(error, seq, now, this))
        {
            Statistics.icmpErrorsIgnored++;
            return;
        }
        Statistics.icmpErrorsToConnections++;
        AfterTouch(entry);
    }

    private void DeliverPathMtu(in TcpTuple tuple, SeqNumber seq, int mtu, Instant now)
    {
        // Validated against the connection before it is believed, so the cache never learns from
        // a forged error either.
        if (!_connections.TryGetValue(tuple, out var entry)) { Statistics.icmpErrorsIgnored++; return; }
        int before = entry.Connection.PathMtu;
        if (!entry.Connection.OnPathMtuReduced(Math.Min(mtu, _options.Mtu), seq, now, this))
        {
            Statistics.icmpErrorsIgnored++;
            return;
        }
        Statistics.icmpErrorsToConnections++;
        if (entry.Connection.PathMtu < before)
        {
            Statistics.pathMtuReductions++;
            _pathMtus.Lower(tuple.RemoteAddress, entry.Connection.PathMtu, now);
        }
        AfterTouch(entry);
    }

    /// <summary>A new connection starts from what is known of its path.</summary>
    private void ApplyKnownPathMtu(TcpConnection connection)
    {
        if (_pathMtus.Count > 0 && _pathMtus.TryGet(connection.Tuple.RemoteAddress, Now, out int mtu)) connection.ApplyPathMtu(mtu);
    }
}
