using CsCheck;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>The TCP segment view and header writer (RFC 9293 3.1) against real Linux segments.</summary>
public class TcpPacketTests
{
    private static readonly byte[] SynSegment = WireCaptures.LinuxSyn[20..];
    private static readonly byte[] SynAckSegment = WireCaptures.LinuxSynAck[20..];
    private static readonly byte[] RstAckSegment = WireCaptures.LinuxRstAck[20..];

    private static TcpPacket Parse(ReadOnlySpan<byte> segment)
    {
        Assert.True(TcpPacket.TryParse(segment, out var tcp, out var error), error.Describe());
        Assert.Equal(ParseError.None, error);
        return tcp;
    }

    private static ParseError Reject(ReadOnlySpan<byte> segment)
    {
        Assert.False(TcpPacket.TryParse(segment, out _, out var error));
        Assert.NotEqual(ParseError.None, error);
        Assert.False(string.IsNullOrWhiteSpace(error.Describe()));
        return error;
    }

    private static byte[] WithByte(byte[] segment, int index, byte value)
    {
        var copy = (byte[])segment.Clone();
        copy[index] = value;
        return copy;
    }

    [Fact]
    public void Tcp_LinuxSyn_EveryFieldReads()
    {
        var tcp = Parse(SynSegment);
        Assert.Equal(59428, tcp.SourcePort);
        Assert.Equal(80, tcp.DestinationPort);
        Assert.Equal(new SeqNumber(0xC8E1_4B55), tcp.SequenceNumber);
        Assert.Equal(new SeqNumber(0), tcp.AcknowledgmentNumber);
        Assert.Equal(10, tcp.DataOffset);
        Assert.Equal(40, tcp.HeaderLength);
        Assert.Equal(0, tcp.ReservedBits);
        Assert.Equal(TcpFlags.Syn, tcp.Flags);
        Assert.True(tcp.Syn);
        Assert.False(tcp.Ack || tcp.Fin || tcp.Rst || tcp.Psh);
        Assert.Equal(64240, tcp.Window);
        Assert.Equal(0x0648, tcp.Checksum);
        Assert.Equal(0, tcp.UrgentPointer);
        Assert.Equal(SynSegment[20..40], tcp.OptionBytes.ToArray());
        Assert.True(tcp.Payload.IsEmpty);
        Assert.Equal(SynSegment, tcp.Bytes.ToArray());
        Assert.Equal(1, tcp.SegmentLength); // RFC 9293 3.4: the SYN occupies one sequence number

        var options = tcp.Options;
        Assert.Equal((ushort)1460, options.MaxSegmentSize);
        Assert.True(options.SackPermitted);
        Assert.True(options.HasTimestamps);
        Assert.Equal(0xA54A_237Au, options.TimestampValue);
        Assert.Equal(0u, options.TimestampEcho);
        Assert.Equal((byte)10, options.WindowScale);
        Assert.Equal(0, options.SackCount);

        Assert.True(tcp.IsChecksumValid(WireGen.Kernel, WireGen.Peer));
        Assert.False(tcp.IsChecksumValid(WireGen.Kernel, Ipv4Address.Parse("192.168.0.3")));
    }

    [Fact]
    public void Tcp_LinuxSynAck_EveryFieldReads()
    {
        var tcp = Parse(SynAckSegment);
        Assert.Equal(8080, tcp.SourcePort);
        Assert.Equal(40001, tcp.DestinationPort);
        Assert.Equal(new SeqNumber(0xD489_6AF8), tcp.SequenceNumber);
        Assert.Equal(new SeqNumber(0x0102_0305), tcp.AcknowledgmentNumber); // our ISN + 1
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, tcp.Flags);
        Assert.True(tcp.Syn && tcp.Ack);
        Assert.Equal(65160, tcp.Window);
        Assert.Equal(0xEF7A, tcp.Checksum);
        Assert.Equal(1000u, tcp.Options.TimestampEcho); // echoes the injected SYN's TS val
        Assert.Equal(0x57DA_7D78u, tcp.Options.TimestampValue);
        Assert.Equal((ushort)1460, tcp.Options.MaxSegmentSize);
        Assert.Equal((byte)10, tcp.Options.WindowScale);
        Assert.True(tcp.Options.SackPermitted);
        Assert.True(tcp.IsChecksumValid(WireGen.Kernel, WireGen.Peer));
    }

    [Fact]
    public void Tcp_LinuxRstAck_HasNoOptions()
    {
        var tcp = Parse(RstAckSegment);
        Assert.Equal(81, tcp.SourcePort);
        Assert.Equal(40002, tcp.DestinationPort);
        Assert.Equal(new SeqNumber(0), tcp.SequenceNumber);
        Assert.Equal(new SeqNumber(0x0A0B_0C0E), tcp.AcknowledgmentNumber);
        Assert.Equal(5, tcp.DataOffset);
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, tcp.Flags);
        Assert.True(tcp.Rst);
        Assert.Equal(0, tcp.Window);
        Assert.True(tcp.OptionBytes.IsEmpty);
        Assert.Null(tcp.Options.MaxSegmentSize);
        Assert.Null(tcp.Options.WindowScale);
        Assert.False(tcp.Options.SackPermitted || tcp.Options.HasTimestamps);
        Assert.Equal(0, tcp.SegmentLength);
        Assert.True(tcp.IsChecksumValid(WireGen.Kernel, WireGen.Peer));
    }

    [Fact]
    public void Tcp_EveryControlBitAndReservedBit_IsReadFromItsPosition()
    {
        var tcp = Parse(WithByte(WithByte(RstAckSegment, 13, 0xFF), 12, 0x5F));
        Assert.Equal((TcpFlags)0xFF, tcp.Flags);
        Assert.True(tcp.Syn && tcp.Ack && tcp.Fin && tcp.Rst && tcp.Psh);
        Assert.Equal(TcpFlags.Urg | TcpFlags.Ece | TcpFlags.Cwr, tcp.Flags & (TcpFlags.Urg | TcpFlags.Ece | TcpFlags.Cwr));
        Assert.Equal(0xF, tcp.ReservedBits);
        Assert.Equal(5, tcp.DataOffset);
        Assert.Equal(2, tcp.SegmentLength); // SYN and FIN both count
    }

    [Fact]
    public void Tcp_SegmentLength_CountsPayloadAndFin()
    {
        var segment = new byte[20 + 5];
        int headerLength = new TcpHeader(1, 2, new SeqNumber(1), new SeqNumber(2), TcpFlags.Fin | TcpFlags.Ack, 100).Write(segment, default);
        Assert.Equal(20, headerLength);
        var tcp = Parse(segment);
        Assert.Equal(5, tcp.Payload.Length);
        Assert.Equal(6, tcp.SegmentLength);
    }

    [Fact]
    public void Tcp_TrailingBytes_ArePayload()
    {
        // The TCP view is not bounded by a length field of its own: the IP total length bounds it.
        byte[] segment = [.. RstAckSegment, 1, 2, 3];
        Assert.Equal([1, 2, 3], Parse(segment).Payload.ToArray());
    }

    // Writer.

    [Fact]
    public void TcpHeader_Write_ReproducesLinuxSyn()
    {
        var options = new TcpOptions { MaxSegmentSize = 1460, SackPermitted = true, WindowScale = 10 };
        options.SetTimestamps(0xA54A_237A, 0);
        var header = new TcpHeader(59428, 80, new SeqNumber(0xC8E1_4B55), new SeqNumber(0), TcpFlags.Syn, 64240);
        AssertWrites(header, options, SynSegment);
    }

    [Fact]
    public void TcpHeader_Write_ReproducesLinuxSynAck()
    {
        var options = new TcpOptions { MaxSegmentSize = 1460, SackPermitted = true, WindowScale = 10 };
        options.SetTimestamps(0x57DA_7D78, 1000);
        var header = new TcpHeader(8080, 40001, new SeqNumber(0xD489_6AF8), new SeqNumber(0x0102_0305), TcpFlags.Syn | TcpFlags.Ack, 65160);
        AssertWrites(header, options, SynAckSegment);
    }

    [Fact]
    public void TcpHeader_Write_ReproducesLinuxRstAck()
    {
        var header = new TcpHeader(81, 40002, new SeqNumber(0), new SeqNumber(0x0A0B_0C0E), TcpFlags.Rst | TcpFlags.Ack, 0);
        AssertWrites(header, default, RstAckSegment);
    }

    private static void AssertWrites(TcpHeader header, TcpOptions options, byte[] expected)
    {
        // Over stale bytes: reserved bits, checksum and padding must all be written, not assumed zero.
        var buffer = new byte[expected.Length];
        Array.Fill(buffer, (byte)0xCC);
        Assert.Equal(TcpHeader.LengthWith(options), header.Write(buffer, options));
        TcpHeader.WriteChecksum(buffer, WireGen.Kernel, WireGen.Peer);
        Assert.Equal(expected, buffer);
    }

    [Fact]
    public void TcpHeader_RoundTrip_AnyFieldsOptionsAndPayloadParseBackUnchanged()
    {
        Gen.Select(
                Gen.Select(Gen.UShort, Gen.UShort, Gen.UInt, Gen.UInt, Gen.Byte, Gen.UShort, Gen.UShort),
                WireGen.Options,
                Gen.Byte.Array[0, 100])
            .Sample((fields, options, payload) =>
            {
                var (sourcePort, destinationPort, seq, ack, flags, window, urgent) = fields;
                var header = new TcpHeader(sourcePort, destinationPort, new SeqNumber(seq), new SeqNumber(ack), (TcpFlags)flags, window, urgent);
                int headerLength = TcpHeader.LengthWith(options);
                var segment = new byte[headerLength + payload.Length];
                Array.Fill(segment, (byte)0x77);
                Assert.Equal(headerLength, header.Write(segment, options));
                payload.CopyTo(segment.AsSpan(headerLength));
                TcpHeader.WriteChecksum(segment, WireGen.Kernel, WireGen.Peer);

                var tcp = Parse(segment);
                var parsed = new TcpHeader(tcp.SourcePort, tcp.DestinationPort, tcp.SequenceNumber, tcp.AcknowledgmentNumber, tcp.Flags, tcp.Window, tcp.UrgentPointer);
                Assert.Equal(header, parsed);
                Assert.Equal(headerLength, tcp.HeaderLength);
                Assert.Equal(0, tcp.ReservedBits);
                Assert.Equal(payload, tcp.Payload.ToArray());
                OptionsAssert.Equal(options, tcp.Options, options.MaxSackBlocksThatFit());
                Assert.True(tcp.IsChecksumValid(WireGen.Kernel, WireGen.Peer));

                var zeroed = (byte[])segment.Clone();
                zeroed[16] = 0; zeroed[17] = 0;
                Assert.Equal(ReferenceChecksum.Transport(WireGen.Kernel.Value, WireGen.Peer.Value, 6, zeroed), tcp.Checksum);
            }, iter: 3000);
    }

    // Rejections.

    [Fact]
    public void Tcp_ShorterThanTheFixedHeader_IsRejectedAsTruncated()
    {
        Assert.Equal(ParseError.Truncated, Reject([]));
        Assert.Equal(ParseError.Truncated, Reject(RstAckSegment.AsSpan(0, 19)));
    }

    [Fact]
    public void Tcp_LongerThan65535Bytes_IsRejectedAsOversized()
    {
        var segment = new byte[Ipv4Packet.MaxPacketLength + 1];
        RstAckSegment.CopyTo(segment, 0);
        Assert.Equal(ParseError.Oversized, Reject(segment));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public void Tcp_DataOffsetBelow5_IsRejected(int dataOffset) =>
        Assert.Equal(ParseError.BadDataOffset, Reject(WithByte(RstAckSegment, 12, (byte)(dataOffset << 4))));

    [Fact]
    public void Tcp_DataOffsetPastEnd_IsRejected()
    {
        Assert.Equal(ParseError.DataOffsetPastEnd, Reject(SynSegment.AsSpan(0, 39)));
        Assert.Equal(ParseError.DataOffsetPastEnd, Reject(WithByte(RstAckSegment, 12, 0x60)));
        Assert.Equal(ParseError.DataOffsetPastEnd, Reject(WithByte(SynSegment, 12, 0xF0)));
    }

    [Fact]
    public void Tcp_MalformedOption_RejectsTheSegmentWithTheOptionsReason()
    {
        Assert.Equal(ParseError.BadOptionLength, Reject(WithByte(SynSegment, 21, 5)));  // MSS length 5
        Assert.Equal(ParseError.ZeroLengthOption, Reject(WithByte(SynSegment, 21, 0))); // MSS length 0
        Assert.Equal(ParseError.OptionPastEnd, Reject(WithByte(SynSegment, 21, 30)));   // runs past byte 40
    }

    // Properties.

    [Fact]
    public void Tcp_AnyBytes_AreParsedOrRejectedWithoutThrowing()
    {
        WireGen.Fuzz(WireGen.TcpSegments).Sample(segment =>
        {
            if (TcpPacket.TryParse(segment, out var tcp, out var error))
            {
                Assert.Equal(ParseError.None, error);
                AssertConsistent(tcp, segment.Length);
            }
            else
            {
                Assert.NotEqual(ParseError.None, error);
                Assert.False(string.IsNullOrEmpty(error.Describe()));
            }
        }, iter: 20000);
    }

    /// <summary>Reads every accessor of an accepted segment and checks that they agree.</summary>
    internal static void AssertConsistent(TcpPacket tcp, int segmentLength)
    {
        Assert.InRange(tcp.DataOffset, 5, 15);
        Assert.Equal(tcp.DataOffset * 4, tcp.HeaderLength);
        Assert.InRange(tcp.HeaderLength, 20, segmentLength);
        Assert.Equal(segmentLength, tcp.Bytes.Length);
        Assert.Equal(tcp.HeaderLength - 20, tcp.OptionBytes.Length);
        Assert.Equal(segmentLength - tcp.HeaderLength, tcp.Payload.Length);
        Assert.Equal(tcp.Payload.Length + (tcp.Syn ? 1 : 0) + (tcp.Fin ? 1 : 0), tcp.SegmentLength);
        Assert.InRange(tcp.ReservedBits, 0, 15);
        _ = tcp.SourcePort;
        _ = tcp.DestinationPort;
        _ = tcp.SequenceNumber;
        _ = tcp.AcknowledgmentNumber;
        _ = tcp.Flags.ToText();
        _ = tcp.Ack || tcp.Rst || tcp.Psh;
        _ = tcp.Window;
        _ = tcp.Checksum;
        _ = tcp.UrgentPointer;
        _ = tcp.IsChecksumValid(WireGen.Kernel, WireGen.Peer);
        var options = tcp.Options;
        Assert.InRange(options.SackCount, 0, TcpOptions.MaxSackBlocks);
        Assert.Equal(options.SackCount, options.SackBlocks.Length);
        _ = options.ToString();
    }
}
