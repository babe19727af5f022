using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>Every rejection reason has its own text for the tracer to print.</summary>
public class ParseErrorTests
{
    [Fact]
    public void Describe_EveryReason_IsNonEmptyAndDistinct()
    {
        var reasons = Enum.GetValues<ParseError>().Where(e => e != ParseError.None).ToArray();
        var texts = reasons.Select(e => e.Describe()).ToArray();
        Assert.All(texts, t => Assert.False(string.IsNullOrWhiteSpace(t)));
        Assert.Equal(texts.Length, texts.Distinct().Count());
        // A reason must not fall back to the enum name: that would mean a missing description.
        Assert.All(reasons, e => Assert.NotEqual(e.ToString(), e.Describe()));
    }

    [Fact]
    public void Describe_None_IsOk() => Assert.Equal("ok", ParseError.None.Describe());

    [Fact]
    public void Describe_UnknownValue_FallsBackToTheNumber() => Assert.Equal("200", ((ParseError)200).Describe());
}
