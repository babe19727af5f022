using CsCheck;
using TunTcp.Wire;

namespace TunTcp.Tests.Wire;

/// <summary>
/// CsCheck generators shared by the wire tests. Uniformly random bytes are almost always
/// rejected at the first check (version nibble, length), so the generators also start from real
/// packets and damage them: that reaches every later check and every accessor.
/// </summary>
internal static class WireGen
{
    public static readonly Ipv4Address Kernel = Ipv4Address.Parse("192.168.0.1");
    public static readonly Ipv4Address Peer = Ipv4Address.Parse("192.168.0.2");

    public static readonly byte[][] Captures =
    [
        WireCaptures.LinuxEchoRequest, WireCaptures.LinuxEchoRequestWithRecordRoute,
        WireCaptures.LinuxFirstFragment, WireCaptures.LinuxLastFragment, WireCaptures.LinuxSyn,
        WireCaptures.LinuxUdp, WireCaptures.LinuxEchoReply, WireCaptures.LinuxPortUnreachable,
        WireCaptures.LinuxSynAck, WireCaptures.LinuxRstAck, WireCaptures.LinuxIpv6EchoRequest,
        WireCaptures.LinuxIpv6Syn, WireCaptures.LinuxIpv6Udp, WireCaptures.LinuxIpv6FirstFragment, WireCaptures.LinuxIpv6LastFragment,
    ];

    /// <summary>The TCP segments (IP payloads) of the TCP captures.</summary>
    public static readonly byte[][] TcpSegments =
    [
        WireCaptures.LinuxSyn[20..], WireCaptures.LinuxSynAck[20..], WireCaptures.LinuxRstAck[20..],
    ];

    /// <summary>Uniformly random bytes, 0 to 2000 of them.</summary>
    public static readonly Gen<byte[]> AnyBytes = Gen.Byte.Array[0, 2000];

    /// <summary>
    /// A copy of one of <paramref name="seeds"/> with up to six bytes overwritten, then maybe cut
    /// short and maybe followed by extra bytes.
    /// </summary>
    public static Gen<byte[]> Damaged(byte[][] seeds) =>
        Gen.Select(
            Gen.Int[0, seeds.Length - 1],
            Gen.Select(Gen.Int[0, int.MaxValue], Gen.Byte).Array[0, 6],
            Gen.Int[0, 3],
            Gen.Int[0, int.MaxValue],
            Gen.Byte.Array[0, 12],
            (seed, edits, shape, cut, extra) =>
            {
                var bytes = (byte[])seeds[seed].Clone();
                foreach (var (index, value) in edits) bytes[index % bytes.Length] = value;
                // shape 0: as is; 1: cut short; 2: extra bytes after; 3: both.
                if ((shape & 1) != 0) bytes = bytes[..(cut % (bytes.Length + 1))];
                if ((shape & 2) != 0) bytes = [.. bytes, .. extra];
                return bytes;
            });

    /// <summary>Random bytes whose first byte claims IPv4 (version 4, any IHL), so parsing goes past the version check.</summary>
    public static readonly Gen<byte[]> Ipv4Looking =
        Gen.Select(Gen.Byte[0x40, 0x4F], Gen.Byte.Array[0, 120], (first, rest) => (byte[])[first, .. rest]);

    /// <summary>Every input the never-throws properties feed to a parser.</summary>
    public static Gen<byte[]> Fuzz(byte[][] seeds) =>
        Gen.Frequency((1, AnyBytes), (1, Ipv4Looking), (3, Damaged(seeds)));

    /// <summary>Any set of the options TunTcp writes, with 0 to 4 SACK blocks.</summary>
    public static readonly Gen<TcpOptions> Options =
        Gen.Select(
            Gen.Select(Gen.Bool, Gen.UShort, Gen.Bool, Gen.Byte, Gen.Bool, Gen.Bool, Gen.UInt, Gen.UInt),
            Gen.Int[0, TcpOptions.MaxSackBlocks],
            Gen.UInt.Array[2 * TcpOptions.MaxSackBlocks],
            (f, sackCount, edges) =>
            {
                var (hasMss, mss, hasScale, scale, sackPermitted, hasTimestamps, tsValue, tsEcho) = f;
                var options = new TcpOptions
                {
                    MaxSegmentSize = hasMss ? mss : null,
                    WindowScale = hasScale ? scale : null,
                    SackPermitted = sackPermitted,
                };
                if (hasTimestamps) options.SetTimestamps(tsValue, tsEcho);
                for (int i = 0; i < sackCount; i++)
                    options.AddSackBlock(new SackBlock(new SeqNumber(edges[2 * i]), new SeqNumber(edges[2 * i + 1])));
                return options;
            });
}
