namespace TunTcp.Wire;

/// <summary>Why a packet was rejected. Parsing never throws; it returns one of these.</summary>
internal enum ParseError : byte
{
    None,
    /// <summary>The buffer is shorter than the fixed header.</summary>
    Truncated,
    /// <summary>The buffer is longer than any IP packet can be (65535 bytes).</summary>
    Oversized,
    /// <summary>The IP version nibble is not the one the view expects.</summary>
    WrongVersion,
    /// <summary>IPv4 IHL below 5 words or past the end of the buffer.</summary>
    BadHeaderLength,
    /// <summary>IPv4 total length smaller than its own header.</summary>
    TotalLengthTooShort,
    /// <summary>IPv4 total length (or IPv6 payload length) larger than the bytes received.</summary>
    TotalLengthPastEnd,
    /// <summary>TCP data offset below 5 words.</summary>
    BadDataOffset,
    /// <summary>TCP data offset points past the end of the segment.</summary>
    DataOffsetPastEnd,
    /// <summary>A TCP option with length 0 or 1 (would loop forever or overlap its kind byte).</summary>
    ZeroLengthOption,
    /// <summary>A TCP option whose length runs past the end of the options area.</summary>
    OptionPastEnd,
    /// <summary>A known TCP option with the wrong length (e.g. MSS not 4 bytes).</summary>
    BadOptionLength,
    /// <summary>UDP length field below 8 or larger than the datagram.</summary>
    BadUdpLength,
    /// <summary>The checksum does not verify.</summary>
    BadChecksum,
}

/// <summary>Human-readable reasons for <see cref="ParseError"/>, for tracers and logs.</summary>
internal static class ParseErrorText
{
    public static string Describe(this ParseError error) => error switch
    {
        ParseError.None => "ok",
        ParseError.Truncated => "truncated: shorter than the fixed header",
        ParseError.Oversized => "oversized: longer than 65535 bytes",
        ParseError.WrongVersion => "wrong IP version",
        ParseError.BadHeaderLength => "bad IHL: below 5 words or past the end of the buffer",
        ParseError.TotalLengthTooShort => "total length smaller than the header",
        ParseError.TotalLengthPastEnd => "total length past the end of the buffer",
        ParseError.BadDataOffset => "TCP data offset below 5 words",
        ParseError.DataOffsetPastEnd => "TCP data offset past the end of the segment",
        ParseError.ZeroLengthOption => "TCP option with length below 2",
        ParseError.OptionPastEnd => "TCP option runs past the end of the header",
        ParseError.BadOptionLength => "TCP option with the wrong length for its kind",
        ParseError.BadUdpLength => "UDP length below 8 or past the end of the datagram",
        ParseError.BadChecksum => "bad checksum",
        _ => error.ToString(),
    };
}
