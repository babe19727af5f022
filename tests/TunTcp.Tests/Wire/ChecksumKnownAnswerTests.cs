using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

public class ChecksumKnownAnswerTests
{
    // The IPv4 header from the Wikipedia "IPv4 header checksum" example: checksum 0xB861.
    private static readonly byte[] Header =
    [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xB8, 0x61,
        0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8, 0x00, 0xC7,
    ];

    [Fact]
    public void Rfc1071_HeaderWithChecksum_SumsToZero() => Assert.Equal(0, Checksum.Compute(Header));

    [Fact]
    public void Rfc1071_HeaderWithZeroedChecksum_GivesTheKnownValue()
    {
        var h = (byte[])Header.Clone();
        h[10] = 0; h[11] = 0;
        Assert.Equal(0xB861, Checksum.Compute(h));
    }
}
