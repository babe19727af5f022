using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>
/// Field-by-field equality for <see cref="TcpOptions"/>, which has no equality of its own (and
/// whose inline SACK storage may hold stale blocks beyond <see cref="TcpOptions.SackCount"/>).
/// </summary>
internal static class OptionsAssert
{
    /// <param name="sackBlocks">How many of the expected SACK blocks should be present (those that fit).</param>
    public static void Equal(TcpOptions expected, TcpOptions actual, int? sackBlocks = null)
    {
        Assert.Equal(expected.MaxSegmentSize, actual.MaxSegmentSize);
        Assert.Equal(expected.WindowScale, actual.WindowScale);
        Assert.Equal(expected.SackPermitted, actual.SackPermitted);
        Assert.Equal(expected.HasTimestamps, actual.HasTimestamps);
        if (expected.HasTimestamps)
        {
            Assert.Equal(expected.TimestampValue, actual.TimestampValue);
            Assert.Equal(expected.TimestampEcho, actual.TimestampEcho);
        }
        int blocks = sackBlocks ?? expected.SackCount;
        Assert.Equal(blocks, actual.SackCount);
        Assert.Equal(expected.SackBlocks[..blocks].ToArray(), actual.SackBlocks.ToArray());
    }
}
