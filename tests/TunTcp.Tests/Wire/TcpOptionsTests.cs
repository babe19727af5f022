using CsCheck;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>
/// TCP options (RFC 9293 3.2, RFC 7323 MSS/window scale/timestamps, RFC 2018 SACK): parsing of
/// every kind, skipping of unknown kinds by length, and the Linux-layout writer.
/// </summary>
public class TcpOptionsTests
{
    private static TcpOptions Parse(params byte[] bytes)
    {
        Assert.True(TcpOptions.TryParse(bytes, out var options, out var error), error.Describe());
        Assert.Equal(ParseError.None, error);
        return options;
    }

    private static ParseError Reject(params byte[] bytes)
    {
        Assert.False(TcpOptions.TryParse(bytes, out _, out var error));
        Assert.NotEqual(ParseError.None, error);
        Assert.False(string.IsNullOrWhiteSpace(error.Describe()));
        return error;
    }

    private static byte[] Write(TcpOptions options)
    {
        var buffer = new byte[TcpOptions.MaxLength + 8];
        Array.Fill(buffer, (byte)0xEE);
        int length = options.Write(buffer);
        Assert.Equal(options.EncodedLength, length);
        Assert.True(buffer.AsSpan(length).IndexOfAnyExcept((byte)0xEE) < 0, "wrote past its length");
        return buffer[..length];
    }

    private static SackBlock Block(uint left, uint right) => new(new SeqNumber(left), new SeqNumber(right));

    // The options of the Linux SYN capture: mss 1460, sackOK, TS val 2773099386 ecr 0, nop, wscale 10.
    private static readonly byte[] LinuxSynOptions = WireCaptures.LinuxSyn[40..60];

    [Fact]
    public void Options_LinuxSynLayout_EveryOptionReads()
    {
        var options = Parse(LinuxSynOptions);
        Assert.Equal((ushort)1460, options.MaxSegmentSize);
        Assert.True(options.SackPermitted);
        Assert.True(options.HasTimestamps);
        Assert.Equal(2773099386u, options.TimestampValue);
        Assert.Equal(0u, options.TimestampEcho);
        Assert.Equal((byte)10, options.WindowScale);
        Assert.Equal(0, options.SackCount);
        Assert.Equal("mss 1460,sackOK,TS 2773099386 0,wscale 10", options.ToString());
    }

    [Fact]
    public void Options_Write_UsesTheLinuxSynLayout()
    {
        var options = new TcpOptions { MaxSegmentSize = 1460, SackPermitted = true, WindowScale = 7 };
        options.SetTimestamps(0x0102_0304, 0);
        Assert.Equal(
            [
                0x02, 0x04, 0x05, 0xB4,                         // MSS 1460
                0x04, 0x02,                                     // SACK permitted
                0x08, 0x0A, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, // TS val ecr
                0x01, 0x03, 0x03, 0x07,                         // NOP, window scale 7
            ],
            Write(options));
    }

    [Fact]
    public void Options_Write_ReproducesTheLinuxSynCapture()
    {
        var options = new TcpOptions { MaxSegmentSize = 1460, SackPermitted = true, WindowScale = 10 };
        options.SetTimestamps(2773099386, 0);
        Assert.Equal(LinuxSynOptions, Write(options));
    }

    [Fact]
    public void Options_None_WriteNothing()
    {
        Assert.Empty(Write(default));
        Assert.Equal(0, default(TcpOptions).EncodedLength);
        Assert.Equal(20, TcpHeader.LengthWith(default));
        Assert.Equal("", default(TcpOptions).ToString());
    }

    [Fact]
    public void Options_EachAlone_WritesItsLinuxEncoding()
    {
        Assert.Equal([0x02, 0x04, 0x05, 0xDC], Write(new TcpOptions { MaxSegmentSize = 1500 }));
        Assert.Equal([0x01, 0x03, 0x03, 0x0E], Write(new TcpOptions { WindowScale = 14 }));
        Assert.Equal([0x01, 0x01, 0x04, 0x02], Write(new TcpOptions { SackPermitted = true }));

        var timestamps = new TcpOptions();
        timestamps.SetTimestamps(1, 2);
        Assert.Equal([0x01, 0x01, 0x08, 0x0A, 0, 0, 0, 1, 0, 0, 0, 2], Write(timestamps));

        var sack = new TcpOptions();
        sack.AddSackBlock(Block(0x10, 0x20));
        Assert.Equal([0x01, 0x01, 0x05, 0x0A, 0, 0, 0, 0x10, 0, 0, 0, 0x20], Write(sack));
    }

    [Fact]
    public void Options_SackWithTimestamps_KeepsTheFirstThreeBlocksThatFit()
    {
        // RFC 2018 3: with timestamps (12 bytes) only 3 SACK blocks fit in the 40 option bytes.
        var options = new TcpOptions();
        options.SetTimestamps(7, 8);
        for (uint i = 1; i <= 4; i++) Assert.True(options.AddSackBlock(Block(i * 100, i * 100 + 10)));
        Assert.Equal(3, options.MaxSackBlocksThatFit());

        var bytes = Write(options);
        Assert.Equal(
            [
                0x01, 0x01, 0x08, 0x0A, 0, 0, 0, 7, 0, 0, 0, 8,
                0x01, 0x01, 0x05, 0x1A,
                0, 0, 0, 100, 0, 0, 0, 110,
                0, 0, 0, 200, 0, 0, 0, 210,
                0, 0, 1, 44, 0, 0, 1, 54,
            ],
            bytes);
        OptionsAssert.Equal(options, Parse(bytes), sackBlocks: 3);
    }

    [Fact]
    public void Options_FourSackBlocksAlone_FillThirtySixBytes()
    {
        var options = new TcpOptions();
        for (uint i = 0; i < 4; i++) options.AddSackBlock(Block(0xFFFF_FFF0 + i, i));
        Assert.Equal(4, options.MaxSackBlocksThatFit());
        var bytes = Write(options);
        Assert.Equal(36, bytes.Length);
        Assert.Equal([0x01, 0x01, 0x05, 0x22], bytes[..4]);
        OptionsAssert.Equal(options, Parse(bytes));
        Assert.Equal("sack 4294967280-0,sack 4294967281-1,sack 4294967282-2,sack 4294967283-3", Parse(bytes).ToString());
    }

    [Fact]
    public void Options_AddSackBlock_HoldsAtMostFour()
    {
        var options = new TcpOptions();
        for (uint i = 0; i < 4; i++) Assert.True(options.AddSackBlock(Block(i, i + 1)));
        Assert.False(options.AddSackBlock(Block(9, 10)));
        Assert.Equal(4, options.SackCount);
        Assert.Equal(Block(3, 4), options.SackBlocks[3]);
        options.ClearSackBlocks();
        Assert.Equal(0, options.SackCount);
        Assert.True(options.SackBlocks.IsEmpty);
    }

    public static TheoryData<bool, bool, bool, bool, int> EveryCombination()
    {
        var data = new TheoryData<bool, bool, bool, bool, int>();
        foreach (bool mss in new[] { false, true })
            foreach (bool scale in new[] { false, true })
                foreach (bool sackPermitted in new[] { false, true })
                    foreach (bool timestamps in new[] { false, true })
                        for (int blocks = 0; blocks <= TcpOptions.MaxSackBlocks; blocks++)
                            data.Add(mss, scale, sackPermitted, timestamps, blocks);
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryCombination))]
    public void Options_EveryCombination_RoundTripsWithinFortyBytes(bool mss, bool scale, bool sackPermitted, bool timestamps, int blocks)
    {
        var options = new TcpOptions
        {
            MaxSegmentSize = mss ? (ushort)536 : null,
            WindowScale = scale ? (byte)14 : null,
            SackPermitted = sackPermitted,
        };
        if (timestamps) options.SetTimestamps(0xDEAD_BEEF, 0xFEED_F00D);
        for (int i = 0; i < blocks; i++) options.AddSackBlock(Block((uint)(1000 * i), (uint)(1000 * i + 500)));

        var bytes = Write(options);
        Assert.Equal(0, bytes.Length % 4);
        Assert.InRange(bytes.Length, 0, TcpOptions.MaxLength);
        int fixedLength = (mss ? 4 : 0) + (scale ? 4 : 0) + (timestamps ? 12 : sackPermitted ? 4 : 0);
        int expectedBlocks = Math.Min(blocks, (TcpOptions.MaxLength - fixedLength - 4) / 8);
        Assert.Equal(expectedBlocks, options.MaxSackBlocksThatFit());
        Assert.Equal(fixedLength + (expectedBlocks > 0 ? 4 + 8 * expectedBlocks : 0), bytes.Length);
        OptionsAssert.Equal(options, Parse(bytes), expectedBlocks);
    }

    [Fact]
    public void Options_AnyOptionSet_RoundTripsThroughWriteAndParse()
    {
        WireGen.Options.Sample(options =>
        {
            var bytes = Write(options);
            Assert.Equal(0, bytes.Length % 4);
            Assert.InRange(bytes.Length, 0, TcpOptions.MaxLength);
            OptionsAssert.Equal(options, Parse(bytes), options.MaxSackBlocksThatFit());
        }, iter: 5000);
    }

    // Parsing rules: padding, unknown kinds, end of list.

    [Fact]
    public void Options_PaddedWithEolToFourBytes_Parse()
    {
        // MSS and a window scale without a leading NOP, padded with EOL to a multiple of 4.
        var options = Parse(0x02, 0x04, 0x05, 0xB4, 0x03, 0x03, 0x07, 0x00);
        Assert.Equal((ushort)1460, options.MaxSegmentSize);
        Assert.Equal((byte)7, options.WindowScale);
    }

    [Fact]
    public void Options_OnlyNops_AreEmpty()
    {
        var options = Parse(Enumerable.Repeat((byte)0x01, 40).ToArray());
        Assert.Equal("", options.ToString());
    }

    [Fact]
    public void Options_UnknownKindsAreSkippedByLength_AndLaterOptionsStillRead()
    {
        // Kind 30 (MPTCP, RFC 8684) length 6, kind 254 (experimental, RFC 6994) length 4 and
        // kind 19 (MD5 signature, RFC 2385) length 18 carry bytes that look like options.
        var options = Parse(
            30, 6, 0x02, 0x04, 0xFF, 0xFF,
            254, 4, 0x03, 0x03,
            0x02, 0x04, 0x05, 0xB4,
            19, 18, 0x08, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0x01, 0x03, 0x03, 0x02);
        Assert.Equal((ushort)1460, options.MaxSegmentSize);
        Assert.Equal((byte)2, options.WindowScale);
        Assert.False(options.HasTimestamps);
    }

    [Fact]
    public void Options_UnknownKindWithBareLength_IsSkipped()
    {
        // Length 2 is a valid empty option of any kind.
        var options = Parse(254, 2, 0x04, 0x02);
        Assert.True(options.SackPermitted);
    }

    [Fact]
    public void Options_EndOfList_StopsParsing()
    {
        // RFC 9293 3.2: kind 0 ends the list; what follows is padding, even if it looks malformed.
        var options = Parse(0x00, 0x02, 0x04, 0x05, 0xB4);
        Assert.Null(options.MaxSegmentSize);
        options = Parse(0x01, 0x03, 0x03, 0x05, 0x00, 0x1E, 0x00, 0x08);
        Assert.Equal((byte)5, options.WindowScale);
    }

    [Fact]
    public void Options_Empty_Parse() => Assert.Equal(0, Parse().SackCount);

    [Fact]
    public void Options_WindowScaleAbove14_IsKeptAsReceived()
    {
        // RFC 7323 2.3: the receiver clamps at use and logs; the parser reports the raw value.
        Assert.Equal((byte)255, Parse(0x03, 0x03, 0xFF, 0x00).WindowScale);
    }

    // Rejections.

    [Theory]
    [InlineData(new byte[] { 30, 0 })]
    [InlineData(new byte[] { 0x02, 0x00, 0x05, 0xB4 })]
    [InlineData(new byte[] { 0x01, 0x01, 254, 0x00 })]
    public void Options_ZeroLength_IsRejected(byte[] bytes) =>
        // A length of 0 would never advance: a parser that accepted it would loop forever.
        Assert.Equal(ParseError.ZeroLengthOption, Reject(bytes));

    [Theory]
    [InlineData(new byte[] { 30, 1 })]
    [InlineData(new byte[] { 0x08, 0x01, 0, 0 })]
    public void Options_LengthOne_IsRejected(byte[] bytes) =>
        // A length must cover its own kind and length bytes.
        Assert.Equal(ParseError.ZeroLengthOption, Reject(bytes));

    [Theory]
    [InlineData(new byte[] { 0x01, 0x01, 0x01, 0x02 })]          // kind with no room for its length byte
    [InlineData(new byte[] { 0x08, 0x0A, 0, 0, 0, 0, 0, 0 })]    // timestamps cut short
    [InlineData(new byte[] { 30, 10, 1, 2, 3, 4, 5, 6 })]        // unknown kind runs past the end
    [InlineData(new byte[] { 0x05, 0x12, 0, 0, 0, 0, 0, 0, 0, 0 })] // two SACK blocks claimed, one present
    public void Options_PastEnd_IsRejected(byte[] bytes) => Assert.Equal(ParseError.OptionPastEnd, Reject(bytes));

    [Theory]
    [InlineData(new byte[] { 0x02, 0x03, 0x05, 0x00 })]                     // MSS length 3
    [InlineData(new byte[] { 0x02, 0x06, 0x05, 0xB4, 0x00, 0x00 })]         // MSS length 6
    [InlineData(new byte[] { 0x03, 0x02, 0x01, 0x01 })]                     // window scale length 2
    [InlineData(new byte[] { 0x03, 0x04, 0x07, 0x00 })]                     // window scale length 4
    [InlineData(new byte[] { 0x04, 0x03, 0x00, 0x00 })]                     // SACK-permitted length 3
    [InlineData(new byte[] { 0x08, 0x08, 0, 0, 0, 0, 0, 0 })]               // timestamps length 8
    [InlineData(new byte[] { 0x08, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]   // timestamps length 12
    [InlineData(new byte[] { 0x05, 0x02, 0x01, 0x01 })]                     // SACK with no block
    [InlineData(new byte[] { 0x05, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0x01 })] // SACK not a multiple of 8
    public void Options_KnownKindWithWrongLength_IsRejected(byte[] bytes) =>
        Assert.Equal(ParseError.BadOptionLength, Reject(bytes));

    // Properties.

    [Fact]
    public void Options_AnyBytes_AreParsedOrRejectedWithoutThrowing()
    {
        // Option areas are at most 40 bytes in a header, but TryParse takes any span.
        var nearlyValid = Gen.Select(Gen.OneOfConst<byte>(0, 1, 2, 3, 4, 5, 8, 30, 254), Gen.Byte[0, 12]).Array[0, 12]
            .Select(pairs => pairs.SelectMany(p => new[] { p.Item1, p.Item2 }).ToArray());
        Gen.Frequency((1, Gen.Byte.Array[0, 60]), (3, nearlyValid)).Sample(bytes =>
        {
            if (TcpOptions.TryParse(bytes, out var options, out var error))
            {
                Assert.Equal(ParseError.None, error);
                Assert.InRange(options.SackCount, 0, TcpOptions.MaxSackBlocks);
                Assert.Equal(options.SackCount, options.SackBlocks.Length);
                _ = options.ToString();
                _ = options.EncodedLength;
                Assert.InRange(Write(options).Length, 0, TcpOptions.MaxLength);
            }
            else
            {
                Assert.NotEqual(ParseError.None, error);
            }
        }, iter: 20000);
    }
}
