using System.Buffers.Binary;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>The classic libpcap format with LINKTYPE_RAW, as tshark and Wireshark read it.</summary>
public class PcapTests
{
    private static byte[] Capture(Action<PcapWriter> write)
    {
        var stream = new MemoryStream();
        using (var writer = new PcapWriter(stream, ownsStream: false)) write(writer);
        return stream.ToArray();
    }

    [Fact]
    public void PcapWriter_GlobalHeader_IsLittleEndianMicrosecondsLinkTypeRaw()
    {
        Assert.Equal(
            [
                0xD4, 0xC3, 0xB2, 0xA1, // magic 0xA1B2C3D4: microsecond timestamps, written little-endian
                0x02, 0x00, 0x04, 0x00, // version 2.4
                0x00, 0x00, 0x00, 0x00, // thiszone
                0x00, 0x00, 0x00, 0x00, // sigfigs
                0xFF, 0xFF, 0x00, 0x00, // snaplen 65535
                0x65, 0x00, 0x00, 0x00, // LINKTYPE_RAW (101): IPv4 or IPv6 by version nibble
            ],
            Capture(_ => { }));
    }

    [Fact]
    public void PcapWriter_Record_HasSecondsMicrosecondsAndBothLengths()
    {
        var file = Capture(w => w.Write(WireCaptures.LinuxRstAck, 1_700_000_000_123_456));
        Assert.Equal(24 + 16 + 40, file.Length);
        Assert.Equal(
            [
                0x00, 0xF1, 0x53, 0x65, // 1700000000 s
                0x40, 0xE2, 0x01, 0x00, // 123456 us
                0x28, 0x00, 0x00, 0x00, // captured length 40
                0x28, 0x00, 0x00, 0x00, // original length 40
            ],
            file[24..40]);
        Assert.Equal(WireCaptures.LinuxRstAck, file[40..]);
    }

    [Fact]
    public void Pcap_WriteThenRead_GivesBackEveryPacketAndTime()
    {
        var file = Capture(w =>
        {
            for (int i = 0; i < WireGen.Captures.Length; i++) w.Write(WireGen.Captures[i], 1_000_000L * i + i);
        });
        Assert.True(PcapReader.TryRead(file, out var records, out int linkType, out string? error), error);
        Assert.Null(error);
        Assert.Equal(PcapWriter.LinkTypeRaw, linkType);
        Assert.Equal(WireGen.Captures.Length, records.Count);
        for (int i = 0; i < records.Count; i++)
        {
            Assert.Equal(1_000_000L * i + i, records[i].UnixMicroseconds);
            Assert.Equal(WireGen.Captures[i], records[i].Packet);
            Assert.Equal(WireGen.Captures[i].Length, records[i].OriginalLength);
        }
    }

    [Fact]
    public void PcapWriter_PacketLongerThanSnapLength_IsCutButKeepsItsOriginalLength()
    {
        var big = new byte[70000];
        new Random(7).NextBytes(big);
        var file = Capture(w => w.Write(big, 0));
        Assert.True(PcapReader.TryRead(file, out var records, out _, out _));
        var record = Assert.Single(records);
        Assert.Equal(big[..PcapWriter.SnapLength], record.Packet);
        Assert.Equal(70000, record.OriginalLength);
    }

    [Fact]
    public void PcapWriter_OwnsStream_DisposesIt()
    {
        var owned = new MemoryStream();
        new PcapWriter(owned).Dispose();
        Assert.False(owned.CanWrite);

        var borrowed = new MemoryStream();
        new PcapWriter(borrowed, ownsStream: false).Dispose();
        Assert.True(borrowed.CanWrite);
    }

    [Fact]
    public void PcapWriter_Create_WritesAFileThatReadsBack()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tuntcp-wire-{Guid.NewGuid():N}.pcap");
        try
        {
            using (var writer = PcapWriter.Create(path)) writer.Write(WireCaptures.LinuxSyn, 42);
            Assert.True(PcapReader.TryRead(File.ReadAllBytes(path), out var records, out _, out _));
            Assert.Equal(WireCaptures.LinuxSyn, Assert.Single(records).Packet);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void PcapReader_BigEndianFile_IsRead()
    {
        byte[] file =
        [
            0xA1, 0xB2, 0xC3, 0xD4, 0x00, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0,
            0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x65,
            0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x05,
            0xAB, 0xCD,
        ];
        Assert.True(PcapReader.TryRead(file, out var records, out int linkType, out _));
        Assert.Equal(101, linkType);
        var record = Assert.Single(records);
        Assert.Equal(2_000_003, record.UnixMicroseconds);
        Assert.Equal([0xAB, 0xCD], record.Packet);
        Assert.Equal(5, record.OriginalLength);
    }

    [Fact]
    public void PcapReader_NanosecondFile_ConvertsToMicroseconds()
    {
        var file = Capture(w => w.Write([0x45], 0));
        BinaryPrimitives.WriteUInt32LittleEndian(file, 0xA1B2_3C4D);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(24 + 4), 999_999_999);
        Assert.True(PcapReader.TryRead(file, out var records, out _, out _));
        Assert.Equal(999_999, Assert.Single(records).UnixMicroseconds);
    }

    [Fact]
    public void PcapReader_MalformedFiles_AreRejectedWithAReason()
    {
        var good = Capture(w => w.Write(WireCaptures.LinuxUdp, 1));
        AssertRejected(good[..23], "global header");
        var badMagic = (byte[])good.Clone();
        badMagic[0] = 0;
        AssertRejected(badMagic, "magic");
        AssertRejected(good[..(24 + 15)], "record header");
        AssertRejected(good[..^1], "record data");

        static void AssertRejected(byte[] file, string reason)
        {
            Assert.False(PcapReader.TryRead(file, out _, out _, out string? error));
            Assert.Contains(reason, error);
        }
    }

    [Fact]
    public void PcapReader_HeaderOnlyFile_HasNoRecords()
    {
        Assert.True(PcapReader.TryRead(Capture(_ => { }), out var records, out _, out _));
        Assert.Empty(records);
    }
}
