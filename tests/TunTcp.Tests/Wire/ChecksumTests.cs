using CsCheck;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>
/// The vectorised RFC 1071 checksum against <see cref="ReferenceChecksum"/>: every length (so every
/// tail after the vector and 8-byte loops), every misaligned start (the vector loads are
/// unaligned), carry-heavy data, chaining, and the pseudo-header.
/// </summary>
public class ChecksumTests
{
    // The IPv4 header from the Wikipedia "IPv4 header checksum" example: checksum 0xB861.
    private static readonly byte[] WikipediaHeader =
    [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xB8, 0x61,
        0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8, 0x00, 0xC7,
    ];

    [Fact]
    public void Rfc1071_HeaderWithChecksum_SumsToZero() => Assert.Equal(0, Checksum.Compute(WikipediaHeader));

    [Fact]
    public void Rfc1071_HeaderWithZeroedChecksum_GivesTheKnownValue()
    {
        var h = (byte[])WikipediaHeader.Clone();
        h[10] = 0; h[11] = 0;
        Assert.Equal(0xB861, Checksum.Compute(h));
    }

    [Fact]
    public void Rfc1071_EmptyData_ChecksumIsAllOnes() => Assert.Equal(0xFFFF, Checksum.Compute([]));

    [Fact]
    public void Rfc1071_OddLastByte_IsPaddedWithZeroAsTheHighOrderByte()
    {
        // RFC 1071 4.1: an odd byte is the high-order byte of a word whose low byte is zero.
        Assert.Equal(0xFFFF - 0xAB00, Checksum.Compute([0xAB]));
        Assert.Equal(0xFFFF - (0x0102 + 0x0300), Checksum.Compute([0x01, 0x02, 0x03]));
    }

    [Fact]
    public void Compute_RandomDataOfEveryLength0To2000_MatchesReference()
    {
        var random = new Random(1071);
        var data = new byte[2000];
        for (int length = 0; length <= 2000; length++)
        {
            random.NextBytes(data.AsSpan(0, length));
            var span = data.AsSpan(0, length);
            Assert.True(ReferenceChecksum.Compute(span) == Checksum.Compute(span), $"length {length}");
        }
    }

    [Fact]
    public void Compute_AtEveryMisalignedStart_MatchesReference()
    {
        var random = new Random(31);
        var data = new byte[2000 + 32];
        random.NextBytes(data);
        for (int offset = 1; offset <= 31; offset++)
            for (int length = 0; length <= 2000; length++)
            {
                var span = data.AsSpan(offset, length);
                Assert.True(ReferenceChecksum.Compute(span) == Checksum.Compute(span), $"offset {offset} length {length}");
            }
    }

    [Theory]
    [InlineData(65535)]
    [InlineData(65534)]
    [InlineData(65533)]
    [InlineData(32769)]
    [InlineData(9001)]
    public void Compute_LargeRandomBuffers_MatchReference(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        Assert.Equal(ReferenceChecksum.Compute(data), Checksum.Compute(data));
        Assert.Equal(ReferenceChecksum.Compute(data.AsSpan(3)), Checksum.Compute(data.AsSpan(3)));
    }

    [Fact]
    public void Compute_AllOnesOfEveryLength_FoldsEveryCarry()
    {
        // 0xFFFF words make every addition carry; the sum is negative zero, so the checksum of an
        // even run is 0 and of an odd run is ~0xFF00 after the padded word.
        var data = new byte[2000 + 31];
        Array.Fill(data, (byte)0xFF);
        for (int offset = 0; offset < 32; offset += 7)
            for (int length = 0; length <= 2000; length++)
            {
                var span = data.AsSpan(offset, length);
                Assert.True(ReferenceChecksum.Compute(span) == Checksum.Compute(span), $"offset {offset} length {length}");
            }
    }

    [Theory]
    [InlineData(65535)]
    [InlineData(65536)]
    // The vector accumulators spill to 64 bits every 16384 steps of 32 (or 16) bytes: check just
    // below, at and above the spill boundaries, where a lane would overflow if the spill were late.
    [InlineData(16384 * 16 - 1)]
    [InlineData(16384 * 16 + 17)]
    [InlineData(16384 * 32 - 1)]
    [InlineData(16384 * 32)]
    [InlineData(16384 * 32 + 33)]
    [InlineData(16384 * 64 * 2 + 5)]
    public void Compute_LongAllOnesAndMaxWordRuns_MatchReference(int length)
    {
        var ones = new byte[length];
        Array.Fill(ones, (byte)0xFF);
        Assert.Equal(ReferenceChecksum.Compute(ones), Checksum.Compute(ones));

        // 0xFFFE words: the largest word that is not negative zero, so the true sum keeps growing.
        var nearlyOnes = new byte[length];
        for (int i = 0; i < length; i++) nearlyOnes[i] = (byte)(i % 2 == 0 ? 0xFF : 0xFE);
        Assert.Equal(ReferenceChecksum.Compute(nearlyOnes), Checksum.Compute(nearlyOnes));
    }

    [Fact]
    public void Add_ChainedOverAnyEvenSplit_EqualsOneShot()
    {
        var data = new byte[2001];
        new Random(2).NextBytes(data);
        ushort whole = Checksum.Compute(data);
        for (int split = 0; split <= data.Length; split += 2)
        {
            uint partial = Checksum.Add(Checksum.Add(0, data.AsSpan(0, split)), data.AsSpan(split));
            Assert.True(whole == Checksum.Finish(partial), $"split at {split}");
        }
    }

    [Fact]
    public void Add_ChainedOverThreeRandomEvenSplits_EqualsOneShot()
    {
        Gen.Select(Gen.Byte.Array[0, 3000], Gen.Int[0, 1500], Gen.Int[0, 1500])
            .Sample((data, a, b) =>
            {
                int first = Math.Min(a * 2, data.Length & ~1);
                int second = Math.Min(first + b * 2, data.Length & ~1);
                uint partial = Checksum.Add(0, data.AsSpan(0, first));
                partial = Checksum.Add(partial, data.AsSpan(first, second - first));
                partial = Checksum.Add(partial, data.AsSpan(second));
                Assert.Equal(ReferenceChecksum.Compute(data), Checksum.Finish(partial));
            }, iter: 2000);
    }

    [Fact]
    public void Add_ManyLargeChunks_CarriesOutOfThe32BitPartialAreNotLost()
    {
        // 70000 all-ones chunks push the unfolded 32-bit partial sum through 2^32 many times.
        var chunk = new byte[64];
        Array.Fill(chunk, (byte)0xFF);
        uint partial = 0;
        for (int i = 0; i < 70000; i++) partial = Checksum.Add(partial, chunk);
        Assert.Equal(0, Checksum.Finish(partial));
    }

    [Fact]
    public void ComputeTransport_RandomSegments_MatchesReferencePseudoHeader()
    {
        Gen.Select(Gen.UInt, Gen.UInt, Gen.OneOfConst(IpProtocol.Tcp, IpProtocol.Udp), Gen.Byte.Array[0, 2000])
            .Sample((source, destination, protocol, segment) =>
                Assert.Equal(
                    ReferenceChecksum.Transport(source, destination, (byte)protocol, segment),
                    Checksum.ComputeTransport(new Ipv4Address(source), new Ipv4Address(destination), protocol, segment)),
                iter: 3000);
    }

    [Fact]
    public void PseudoHeader_IsTheSumOfItsWords()
    {
        // 192.168.0.1 -> 192.168.0.2, TCP, 40 bytes: c0a8 + 0001 + c0a8 + 0002 + 0006 + 0028.
        uint partial = Checksum.PseudoHeader(WireGen.Kernel, WireGen.Peer, IpProtocol.Tcp, 40);
        Assert.Equal(ReferenceChecksum.Fold(0xC0A8u + 0x0001 + 0xC0A8 + 0x0002 + 0x0006 + 0x0028), ReferenceChecksum.Fold(partial));
    }

    [Fact]
    public void ComputeTransport_LinuxSynWithItsChecksum_SumsToZero()
    {
        var segment = WireCaptures.LinuxSyn.AsSpan(20);
        Assert.Equal(0, Checksum.ComputeTransport(WireGen.Kernel, WireGen.Peer, IpProtocol.Tcp, segment));

        var zeroed = segment.ToArray();
        zeroed[16] = 0; zeroed[17] = 0;
        Assert.Equal(0x0648, Checksum.ComputeTransport(WireGen.Kernel, WireGen.Peer, IpProtocol.Tcp, zeroed));
    }

    [Fact]
    public void ComputeTransport_LinuxUdpWithItsChecksum_SumsToZero() =>
        Assert.Equal(0, Checksum.ComputeTransport(WireGen.Kernel, WireGen.Peer, IpProtocol.Udp, WireCaptures.LinuxUdp.AsSpan(20)));
}
