using TunTcp.Tcp;

namespace TunTcp.Tests.Tcp;

/// <summary>Unit tests for <see cref="ByteRing"/>, the send and receive buffers of a connection.</summary>
public class ByteRingTests
{
    [Theory]
    [InlineData(1, 16)]
    [InlineData(16, 16)]
    [InlineData(17, 32)]
    [InlineData(1000, 1024)]
    [InlineData(1 << 30, 1 << 30)]
    public void Capacity_RoundedUpToPowerOfTwo(int requested, int capacity)
    {
        var r = new ByteRing(requested);
        Assert.Equal(capacity, r.Capacity);
        Assert.Equal(capacity, r.Free);
        Assert.True(r.IsEmpty);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData((1 << 30) + 1)]
    public void Capacity_OutOfRange_Throws(int requested) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new ByteRing(requested));

    [Fact]
    public void WriteRead_Fifo_PartialWhenFull()
    {
        var r = new ByteRing(16);
        Assert.Equal(10, r.Write(TcpHarness.Bytes(10)));
        Assert.Equal(6, r.Write(TcpHarness.Bytes(10, 10)));
        Assert.Equal(0, r.Write(TcpHarness.Bytes(1)));
        Assert.Equal(16, r.Count);
        Assert.Equal(0, r.Free);
        var buf = new byte[20];
        Assert.Equal(16, r.Read(buf));
        Assert.Equal(TcpHarness.Bytes(16), buf[..16]);
        Assert.Equal(0, r.Read(buf));
        Assert.Equal(16, r.HeadPosition);
        Assert.Equal(16, r.TailPosition);
    }

    // Data that wraps past the end of the array comes back as two spans, in order.
    [Fact]
    public void Wraparound_PeekGivesTwoSpans()
    {
        var r = new ByteRing(16);
        r.Write(TcpHarness.Bytes(12));
        r.Consume(10);
        r.Write(TcpHarness.Bytes(10, 100));
        Assert.Equal(12, r.Count);
        r.Peek(2, 10, out var first, out var second);
        Assert.Equal(4, first.Length);
        Assert.Equal(6, second.Length);
        Assert.Equal(TcpHarness.Bytes(10, 100), first.ToArray().Concat(second.ToArray()).ToArray());
        r.Peek(0, 0, out first, out second);
        Assert.True(first.IsEmpty && second.IsEmpty);
        var buf = new byte[12];
        r.Read(buf);
        Assert.Equal(new byte[] { 10, 11 }.Concat(TcpHarness.Bytes(10, 100)).ToArray(), buf);
    }

    // Out-of-order data is placed past the tail without being published; Commit publishes it.
    [Fact]
    public void WriteAtThenCommit_PublishesInOrder()
    {
        var r = new ByteRing(32);
        r.WriteAt(5, TcpHarness.Bytes(5, 5));
        Assert.Equal(0, r.Count);
        r.WriteAt(0, TcpHarness.Bytes(5));
        r.Commit(10);
        var buf = new byte[10];
        r.Read(buf);
        Assert.Equal(TcpHarness.Bytes(10), buf);
    }

    [Fact]
    public void GetWritable_SpansCoverFreeSpace()
    {
        var r = new ByteRing(16);
        r.Write(TcpHarness.Bytes(10));
        r.Consume(6);
        r.GetWritable(out var first, out var second);
        Assert.Equal(6, first.Length);
        Assert.Equal(6, second.Length);
        first.Fill(1);
        second.Fill(2);
        r.Commit(12);
        Assert.Equal(0, r.Free);
        r.GetWritable(out first, out second);
        Assert.True(first.IsEmpty && second.IsEmpty);
    }

    [Fact]
    public void Misuse_Throws()
    {
        var r = new ByteRing(16);
        r.Write(TcpHarness.Bytes(4));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.WriteAt(13, TcpHarness.Bytes(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.WriteAt(-1, TcpHarness.Bytes(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.Commit(13));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.Consume(5));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.Peek(2, 3, out _, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.Peek(-1, 1, out _, out _));
    }
}
