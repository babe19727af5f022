using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace TunTcp.Wire;

/// <summary>One SACK block (RFC 2018 3): the bytes [Left, Right) were received.</summary>
internal readonly record struct SackBlock(SeqNumber Left, SeqNumber Right)
{
    public override string ToString() => $"{Left.Value}-{Right.Value}";
}

/// <summary>Inline storage for up to four SACK blocks, so options never allocate.</summary>
[InlineArray(TcpOptions.MaxSackBlocks)]
internal struct SackBlockArray
{
    private SackBlock _element;
}

/// <summary>
/// The TCP options TunTcp understands (RFC 9293 3.2, RFC 7323, RFC 2018), parsed from or to be
/// written into a header. Unknown options are skipped by their length when parsing.
/// </summary>
internal struct TcpOptions
{
    public const int MaxLength = 40;
    public const int MaxSackBlocks = 4;

    private const byte KindEnd = 0, KindNop = 1, KindMss = 2, KindWindowScale = 3,
        KindSackPermitted = 4, KindSack = 5, KindTimestamps = 8;

    private SackBlockArray _sackBlocks;

    /// <summary>Maximum segment size (kind 2), only meaningful on a SYN.</summary>
    public ushort? MaxSegmentSize;

    /// <summary>Window scale shift count as received (kind 3); RFC 7323 2.3 clamps values above 14 at use.</summary>
    public byte? WindowScale;

    /// <summary>SACK-permitted (kind 4), only meaningful on a SYN.</summary>
    public bool SackPermitted;

    /// <summary>Timestamps option present (kind 8).</summary>
    public bool HasTimestamps;
    public uint TimestampValue;
    public uint TimestampEcho;

    /// <summary>How many SACK blocks (kind 5) are present.</summary>
    public int SackCount { get; private set; }

    /// <summary>The SACK blocks, in the order they appear on the wire.</summary>
    [UnscopedRef]
    public ReadOnlySpan<SackBlock> SackBlocks => ((ReadOnlySpan<SackBlock>)_sackBlocks)[..SackCount];

    /// <summary>Appends a SACK block; returns false once four are held.</summary>
    public bool AddSackBlock(SackBlock block)
    {
        if (SackCount == MaxSackBlocks) return false;
        _sackBlocks[SackCount++] = block;
        return true;
    }

    public void ClearSackBlocks() => SackCount = 0;

    public void SetTimestamps(uint value, uint echo)
    {
        HasTimestamps = true;
        TimestampValue = value;
        TimestampEcho = echo;
    }

    /// <summary>
    /// Parses the options area of a TCP header. Never throws. Kind 0 ends the list, kind 1 is
    /// padding, every other kind carries a length byte (RFC 9293 3.2) by which unknown kinds are
    /// skipped. A length below 2, a length past the end and a wrong length for a known kind are
    /// errors: such a segment is dropped.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> bytes, out TcpOptions options, out ParseError error)
    {
        options = default;
        int i = 0;
        while (i < bytes.Length)
        {
            byte kind = bytes[i];
            if (kind == KindEnd) break;
            if (kind == KindNop) { i++; continue; }
            if (i + 1 >= bytes.Length) { error = ParseError.OptionPastEnd; return false; }
            int length = bytes[i + 1];
            if (length < 2) { error = ParseError.ZeroLengthOption; return false; }
            if (i + length > bytes.Length) { error = ParseError.OptionPastEnd; return false; }
            var value = bytes.Slice(i + 2, length - 2);
            switch (kind)
            {
                case KindMss:
                    if (length != 4) { error = ParseError.BadOptionLength; return false; }
                    options.MaxSegmentSize = BinaryPrimitives.ReadUInt16BigEndian(value);
                    break;
                case KindWindowScale:
                    if (length != 3) { error = ParseError.BadOptionLength; return false; }
                    options.WindowScale = value[0];
                    break;
                case KindSackPermitted:
                    if (length != 2) { error = ParseError.BadOptionLength; return false; }
                    options.SackPermitted = true;
                    break;
                case KindSack:
                    if ((length - 2) % 8 != 0 || length == 2) { error = ParseError.BadOptionLength; return false; }
                    options.SackCount = 0;
                    for (int b = 0; b + 8 <= value.Length && options.SackCount < MaxSackBlocks; b += 8)
                        options.AddSackBlock(new SackBlock(
                            new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(value[b..])),
                            new SeqNumber(BinaryPrimitives.ReadUInt32BigEndian(value[(b + 4)..]))));
                    break;
                case KindTimestamps:
                    if (length != 10) { error = ParseError.BadOptionLength; return false; }
                    options.SetTimestamps(BinaryPrimitives.ReadUInt32BigEndian(value), BinaryPrimitives.ReadUInt32BigEndian(value[4..]));
                    break;
            }
            i += length;
        }
        error = ParseError.None;
        return true;
    }

    /// <summary>Bytes <see cref="Write"/> will produce, padded to a multiple of 4 and at most 40.</summary>
    public readonly int EncodedLength
    {
        get
        {
            int n = FixedLength() + SackLength(MaxSackBlocksThatFit());
            return (n + 3) & ~3;
        }
    }

    /// <summary>How many of the held SACK blocks fit beside the other options in 40 bytes.</summary>
    public readonly int MaxSackBlocksThatFit()
    {
        int room = MaxLength - FixedLength() - 4; // NOP NOP kind length
        return Math.Clamp(room / 8, 0, SackCount);
    }

    private readonly int FixedLength()
    {
        int n = 0;
        if (MaxSegmentSize.HasValue) n += 4;
        if (SackPermitted || HasTimestamps) n += (SackPermitted ? 2 : 0) + (HasTimestamps ? 10 : 0) + (SackPermitted && HasTimestamps ? 0 : 2);
        if (WindowScale.HasValue) n += 4;
        return n;
    }

    private static int SackLength(int blocks) => blocks == 0 ? 0 : 4 + 8 * blocks;

    /// <summary>
    /// Writes the options in the layout Linux uses (MSS; SACK-permitted with timestamps, or NOP
    /// padding; NOP + window scale; NOP NOP + SACK), padded with zeros (EOL) to a multiple of 4.
    /// SACK blocks that do not fit in 40 bytes are left out, the first ones kept.
    /// </summary>
    /// <returns>Bytes written; equal to <see cref="EncodedLength"/>.</returns>
    public readonly int Write(Span<byte> destination)
    {
        int i = 0;
        if (MaxSegmentSize is ushort mss)
        {
            destination[i++] = KindMss; destination[i++] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(destination[i..], mss); i += 2;
        }
        if (SackPermitted && HasTimestamps)
        {
            destination[i++] = KindSackPermitted; destination[i++] = 2;
            i += WriteTimestamps(destination[i..]);
        }
        else if (HasTimestamps)
        {
            destination[i++] = KindNop; destination[i++] = KindNop;
            i += WriteTimestamps(destination[i..]);
        }
        else if (SackPermitted)
        {
            destination[i++] = KindNop; destination[i++] = KindNop;
            destination[i++] = KindSackPermitted; destination[i++] = 2;
        }
        if (WindowScale is byte shift)
        {
            destination[i++] = KindNop;
            destination[i++] = KindWindowScale; destination[i++] = 3; destination[i++] = shift;
        }
        int blocks = MaxSackBlocksThatFit();
        if (blocks > 0)
        {
            destination[i++] = KindNop; destination[i++] = KindNop;
            destination[i++] = KindSack; destination[i++] = (byte)(2 + 8 * blocks);
            for (int b = 0; b < blocks; b++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(destination[i..], _sackBlocks[b].Left.Value);
                BinaryPrimitives.WriteUInt32BigEndian(destination[(i + 4)..], _sackBlocks[b].Right.Value);
                i += 8;
            }
        }
        while ((i & 3) != 0) destination[i++] = KindEnd;
        return i;
    }

    private readonly int WriteTimestamps(Span<byte> destination)
    {
        destination[0] = KindTimestamps; destination[1] = 10;
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], TimestampValue);
        BinaryPrimitives.WriteUInt32BigEndian(destination[6..], TimestampEcho);
        return 10;
    }

    /// <summary>A short tcpdump-like rendering: "mss 1460,sackOK,TS 1 0,wscale 7,sack 1-2".</summary>
    public readonly override string ToString()
    {
        var parts = new List<string>();
        if (MaxSegmentSize is ushort mss) parts.Add($"mss {mss}");
        if (SackPermitted) parts.Add("sackOK");
        if (HasTimestamps) parts.Add($"TS {TimestampValue} {TimestampEcho}");
        if (WindowScale is byte ws) parts.Add($"wscale {ws}");
        for (int b = 0; b < SackCount; b++) parts.Add($"sack {_sackBlocks[b]}");
        return string.Join(',', parts);
    }
}
