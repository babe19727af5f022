using CsCheck;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>RFC 9293 3.4 / RFC 1982: sequence numbers compare modulo 2^32.</summary>
public class SeqNumberTests
{
    private static SeqNumber S(uint value) => new(value);

    [Fact]
    public void Comparison_AcrossTheWrapAt2Pow32_TreatsZeroAsAfterMax()
    {
        SeqNumber before = S(0xFFFF_FFF0), after = S(0x0000_0010);
        Assert.True(before < after);
        Assert.True(before <= after);
        Assert.True(after > before);
        Assert.True(after >= before);
        Assert.False(before > after);
        Assert.False(after < before);
        Assert.Equal(0x20, after - before);
        Assert.Equal(-0x20, before - after);
        Assert.True(S(uint.MaxValue) < S(0));
    }

    [Fact]
    public void Comparison_LessThan2Pow31Ahead_IsAfter()
    {
        Assert.True(S(0) < S(0x7FFF_FFFF));
        Assert.Equal(int.MaxValue, S(0x7FFF_FFFF) - S(0));
        Assert.True(S(0x8000_0000) < S(0xFFFF_FFFF));
    }

    [Fact]
    public void Comparison_MoreThan2Pow31Ahead_IsBehind()
    {
        // 0x80000001 is 2^31 + 1 ahead of 0, which in sequence space is 2^31 - 1 behind.
        Assert.True(S(0x8000_0001) < S(0));
        Assert.Equal(-0x7FFF_FFFF, S(0x8000_0001) - S(0));
    }

    [Fact]
    public void Comparison_Exactly2Pow31Apart_IsUndefinedAndBothAreBefore()
    {
        // RFC 1982 3.2 leaves this case undefined. Like Linux's before(), each is "before" the
        // other, so the engine must never compare numbers a half space apart; this pins the
        // behaviour so a change to it is deliberate.
        SeqNumber a = S(0), b = S(0x8000_0000);
        Assert.True(a < b);
        Assert.True(b < a);
        Assert.Equal(int.MinValue, a - b);
        Assert.Equal(int.MinValue, b - a);
    }

    [Fact]
    public void Comparison_AnyDistanceBelow2Pow31_IsOrderedAndAntisymmetric()
    {
        Gen.Select(Gen.UInt, Gen.Int[1, int.MaxValue]).Sample((start, distance) =>
        {
            SeqNumber a = S(start), b = S(start) + distance;
            Assert.True(a < b && a <= b && b > a && b >= a);
            Assert.False(b < a || b <= a || a > b || a >= b);
            Assert.Equal(distance, b - a);
            Assert.Equal(-distance, a - b);
            Assert.True(a != b);
            Assert.Equal(b, SeqNumber.Max(a, b));
            Assert.Equal(a, SeqNumber.Min(a, b));
        }, iter: 10000);
    }

    [Fact]
    public void Arithmetic_WrapsModulo2Pow32()
    {
        Assert.Equal(S(0), S(uint.MaxValue) + 1);
        Assert.Equal(S(4), S(0xFFFF_FFFE) + 6u);
        Assert.Equal(S(0xFFFF_FFFB), S(5) - 10);
        Assert.Equal(S(0xFFFF_FFFF), S(0) + -1);
        Assert.Equal(S(0x7FFF_FFFF), S(0xFFFF_FFFF) + 0x8000_0000u);
        Assert.Equal(S(0x10), S(0xFFFF_FFF0) + 0x20);
    }

    [Fact]
    public void MaxAndMin_AcrossTheWrap_FollowSequenceOrder()
    {
        Assert.Equal(S(0x10), SeqNumber.Max(S(0xFFFF_FFF0), S(0x10)));
        Assert.Equal(S(0xFFFF_FFF0), SeqNumber.Min(S(0x10), S(0xFFFF_FFF0)));
        Assert.Equal(S(7), SeqNumber.Max(S(7), S(7)));
    }

    [Fact]
    public void InRange_AcrossTheWrap_IsHalfOpen()
    {
        SeqNumber start = S(0xFFFF_FFF0), end = S(0x10);
        Assert.True(S(0xFFFF_FFF0).InRange(start, end));
        Assert.True(S(0xFFFF_FFFF).InRange(start, end));
        Assert.True(S(0).InRange(start, end));
        Assert.True(S(0xF).InRange(start, end));
        Assert.False(S(0x10).InRange(start, end));
        Assert.False(S(0xFFFF_FFEF).InRange(start, end));
        Assert.False(S(0x8000_0000).InRange(start, end));
    }

    [Fact]
    public void InRange_EmptyRange_HoldsNothing()
    {
        Assert.False(S(5).InRange(S(5), S(5)));
        Assert.False(S(0).InRange(S(uint.MaxValue) + 1, S(0)));
    }

    [Fact]
    public void InRange_AnyWindowBelow2Pow31_HoldsExactlyItsOffsets()
    {
        Gen.Select(Gen.UInt, Gen.Int[0, int.MaxValue], Gen.Int[-1000, int.MaxValue]).Sample((start, size, offset) =>
        {
            SeqNumber s = S(start), e = s + size, x = s + offset;
            Assert.Equal(offset >= 0 && offset < size, x.InRange(s, e));
        }, iter: 10000);
    }

    [Fact]
    public void Equality_IsByValue()
    {
        Assert.Equal(S(42), new SeqNumber(42));
        Assert.True(S(42) == S(42));
        Assert.False(S(42) != S(42));
        Assert.True(S(42).Equals((object)S(42)));
        Assert.False(S(42).Equals((object)42u));
        Assert.Equal(S(0xFFFF_FFFF).GetHashCode(), S(0xFFFF_FFFF).GetHashCode());
        Assert.Equal("4294967295", S(uint.MaxValue).ToString());
    }
}
