using System.Buffers.Binary;
using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>
/// pcapng (draft-ietf-opsawg-pcapng) as <see cref="PcapNgWriter"/> writes it: the exact bytes of
/// each block, the total length repeated at every block's end (3.1), and a round trip through
/// <see cref="PcapNgReader"/>.
/// </summary>
public class PcapNgTests
{
    private const int ShbLength = 48; // with shb_userappl "TunTcp 1.0"
    private const int IdbLength = 40; // with if_name "tun0" and if_tsresol

    private static byte[] Capture(Action<PcapNgWriter> write, string? name = "tun0", string? description = null)
    {
        var stream = new MemoryStream();
        using (var writer = new PcapNgWriter(stream, name, description, ownsStream: false, application: "TunTcp 1.0")) write(writer);
        return stream.ToArray();
    }

    [Fact]
    public void SectionHeaderBlock_IsLittleEndianVersion1_0_UnknownLength_WithTheApplication()
    {
        Assert.Equal(
            [
                0x0A, 0x0D, 0x0D, 0x0A, // 4.1: block type
                0x30, 0x00, 0x00, 0x00, // block total length 48
                0x4D, 0x3C, 0x2B, 0x1A, // byte-order magic 0x1A2B3C4D, written little-endian
                0x01, 0x00, 0x00, 0x00, // version 1.0
                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // section length -1: not given
                0x04, 0x00, 0x0A, 0x00, // shb_userappl, 10 bytes
                0x54, 0x75, 0x6E, 0x54, 0x63, 0x70, 0x20, 0x31, 0x2E, 0x30, 0x00, 0x00, // "TunTcp 1.0" + 2 padding
                0x00, 0x00, 0x00, 0x00, // opt_endofopt
                0x30, 0x00, 0x00, 0x00, // block total length again
            ],
            Capture(_ => { })[..ShbLength]);
    }

    [Fact]
    public void InterfaceDescriptionBlock_IsLinkTypeRaw_WithTheDeviceName_AndMicrosecondResolution()
    {
        Assert.Equal(
            [
                0x01, 0x00, 0x00, 0x00, // 4.2: block type
                0x28, 0x00, 0x00, 0x00, // block total length 40
                0x65, 0x00, 0x00, 0x00, // LINKTYPE_RAW (101), reserved
                0xFF, 0xFF, 0x00, 0x00, // snaplen 65535
                0x02, 0x00, 0x04, 0x00, 0x74, 0x75, 0x6E, 0x30, // if_name "tun0"
                0x09, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, // if_tsresol 6: microseconds, + 3 padding
                0x00, 0x00, 0x00, 0x00, // opt_endofopt
                0x28, 0x00, 0x00, 0x00, // block total length again
            ],
            Capture(_ => { })[ShbLength..]);
    }

    [Fact]
    public void InterfaceDescriptionBlock_WithADescription_AddsIfDescription_Padded()
    {
        var idb = Capture(_ => { }, name: "tt1", description: "stack")[ShbLength..];
        Assert.Equal(
            [
                0x01, 0x00, 0x00, 0x00, 0x34, 0x00, 0x00, 0x00, // 52 bytes
                0x65, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00,
                0x02, 0x00, 0x03, 0x00, 0x74, 0x74, 0x31, 0x00, // if_name "tt1" + 1 padding
                0x03, 0x00, 0x05, 0x00, 0x73, 0x74, 0x61, 0x63, 0x6B, 0x00, 0x00, 0x00, // if_description "stack" + 3 padding
                0x09, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00,
                0x34, 0x00, 0x00, 0x00,
            ],
            idb);
    }

    [Fact]
    public void InterfaceDescriptionBlock_WithoutAName_HasOnlyTheResolution()
    {
        var idb = Capture(_ => { }, name: null)[ShbLength..];
        Assert.Equal(32, idb.Length);
        Assert.Equal([0x09, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00], idb[16..24]);
    }

    [Fact]
    public void EnhancedPacketBlock_Inbound_HasTimeLengthsPaddingAndFlags()
    {
        var file = Capture(w => w.Write([0x45, 0xAA, 0xBB], 1_700_000_000_123_456, CaptureDirection.Inbound));
        Assert.Equal(
            [
                0x06, 0x00, 0x00, 0x00, // 4.3: block type
                0x30, 0x00, 0x00, 0x00, // block total length 48
                0x00, 0x00, 0x00, 0x00, // interface 0
                0x24, 0x0A, 0x06, 0x00, // timestamp upper 32 bits: 1700000000123456 us = 0x00060A24_18202240
                0x40, 0x22, 0x20, 0x18, // timestamp lower 32 bits
                0x03, 0x00, 0x00, 0x00, // captured length 3
                0x03, 0x00, 0x00, 0x00, // original length 3
                0x45, 0xAA, 0xBB, 0x00, // the packet + 1 padding
                0x02, 0x00, 0x04, 0x00, // epb_flags, 4 bytes
                0x01, 0x00, 0x00, 0x00, // 4.3.1: direction 01, inbound
                0x00, 0x00, 0x00, 0x00, // opt_endofopt
                0x30, 0x00, 0x00, 0x00, // block total length again
            ],
            file[(ShbLength + IdbLength)..]);
    }

    [Fact]
    public void EnhancedPacketBlock_Outbound_SetsDirection10_AndAlignedDataHasNoPadding()
    {
        var epb = Capture(w => w.Write(WireCaptures.LinuxRstAck, 1, CaptureDirection.Outbound))[(ShbLength + IdbLength)..];
        Assert.Equal(28 + 40 + 12 + 4, epb.Length);
        Assert.Equal(WireCaptures.LinuxRstAck, epb[28..68]);
        Assert.Equal([0x02, 0x00, 0x04, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x54, 0x00, 0x00, 0x00], epb[68..]);
    }

    [Fact]
    public void EnhancedPacketBlock_UnknownDirection_HasNoOptions()
    {
        var epb = Capture(w => w.Write([0x45], 0, CaptureDirection.Unknown))[(ShbLength + IdbLength)..];
        Assert.Equal(28 + 4 + 4, epb.Length);
        Assert.Equal([0x45, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00], epb[28..]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(57)]
    public void EveryBlock_EndsWithItsTotalLength_AndIsAMultipleOf4(int packetLength)
    {
        var file = Capture(w =>
        {
            w.Write(new byte[packetLength], 0, CaptureDirection.Inbound);
            w.Write(new byte[packetLength + 1], 0, CaptureDirection.Outbound);
        });
        int blocks = 0;
        for (int i = 0; i < file.Length; blocks++)
        {
            int total = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(i + 4));
            Assert.Equal(0, total % 4);
            Assert.Equal((uint)total, BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(i + total - 4)));
            i += total;
            Assert.True(i <= file.Length);
        }
        Assert.Equal(4, blocks);
    }

    [Fact]
    public void WriteThenRead_GivesBackEveryPacketTimeDirectionAndTheInterface()
    {
        var directions = new[] { CaptureDirection.Inbound, CaptureDirection.Outbound, CaptureDirection.Unknown };
        var file = Capture(w =>
        {
            for (int i = 0; i < WireGen.Captures.Length; i++)
                w.Write(WireGen.Captures[i], 1_700_000_000_000_000L + 1_000_001L * i, directions[i % 3]);
        }, name: "tuntcp7", description: "TunTcp stack 10.0.0.2");
        Assert.True(PcapNgReader.TryRead(file, out var records, out var interfaces, out string? error), error);
        var idb = Assert.Single(interfaces);
        Assert.Equal(new PcapNgInterface(PcapWriter.LinkTypeRaw, PcapWriter.SnapLength, "tuntcp7", "TunTcp stack 10.0.0.2", 1_000_000), idb);
        Assert.Equal(WireGen.Captures.Length, records.Count);
        for (int i = 0; i < records.Count; i++)
        {
            Assert.Equal(1_700_000_000_000_000L + 1_000_001L * i, records[i].UnixMicroseconds);
            Assert.Equal(WireGen.Captures[i], records[i].Packet);
            Assert.Equal(WireGen.Captures[i].Length, records[i].OriginalLength);
            Assert.Equal(directions[i % 3], records[i].Direction);
            Assert.Same(idb, records[i].Interface);
        }
    }

    [Fact]
    public void PacketLongerThanSnapLength_IsCutButKeepsItsOriginalLength()
    {
        var big = new byte[70000];
        new Random(7).NextBytes(big);
        var file = Capture(w => w.Write(big, 0, CaptureDirection.Outbound));
        Assert.True(PcapNgReader.TryRead(file, out var records, out _, out var error), error);
        var record = Assert.Single(records);
        Assert.Equal(big[..PcapWriter.SnapLength], record.Packet);
        Assert.Equal(70000, record.OriginalLength);
        Assert.Equal(CaptureDirection.Outbound, record.Direction);
    }

    [Fact]
    public void DefaultApplication_NamesTunTcpAndItsVersion()
    {
        Assert.StartsWith("TunTcp ", PcapNgWriter.DefaultApplication);
        Assert.True(PcapNgWriter.DefaultApplication.Length > "TunTcp ".Length);
        var stream = new MemoryStream();
        new PcapNgWriter(stream, "tun0", ownsStream: false).Dispose();
        Assert.True(PcapNgReader.TryRead(stream.ToArray(), out _, out _, out var error), error);
        Assert.Contains(System.Text.Encoding.UTF8.GetBytes(PcapNgWriter.DefaultApplication), Windows(stream.ToArray(), PcapNgWriter.DefaultApplication.Length));

        static IEnumerable<byte[]> Windows(byte[] bytes, int length)
        {
            for (int i = 0; i + length <= bytes.Length; i++) yield return bytes[i..(i + length)];
        }
    }

    [Fact]
    public void OwnsStream_DisposesIt()
    {
        var owned = new MemoryStream();
        new PcapNgWriter(owned, "tun0").Dispose();
        Assert.False(owned.CanWrite);

        var borrowed = new MemoryStream();
        new PcapNgWriter(borrowed, "tun0", ownsStream: false).Dispose();
        Assert.True(borrowed.CanWrite);
    }

    [Fact]
    public void CaptureFile_Create_WritesEitherFormat()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tuntcp-wire-{Guid.NewGuid():N}.cap");
        try
        {
            using (var writer = CaptureFile.Create(path, CaptureFormat.PcapNg, "tun9")) writer.Write(WireCaptures.LinuxSyn, 42, CaptureDirection.Inbound);
            Assert.True(PcapNgReader.TryRead(File.ReadAllBytes(path), out var records, out var interfaces, out var error), error);
            Assert.Equal("tun9", Assert.Single(interfaces).Name);
            Assert.Equal(WireCaptures.LinuxSyn, Assert.Single(records).Packet);

            using (var writer = CaptureFile.Create(path, CaptureFormat.Pcap, "tun9")) writer.Write(WireCaptures.LinuxSyn, 42, CaptureDirection.Inbound);
            Assert.True(PcapReader.TryRead(File.ReadAllBytes(path), out var pcap, out _, out error), error);
            Assert.Equal(WireCaptures.LinuxSyn, Assert.Single(pcap).Packet);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Reader_BigEndianSection_WithNanosecondResolution_IsRead()
    {
        byte[] file =
        [
            0x0A, 0x0D, 0x0D, 0x0A, 0x00, 0x00, 0x00, 0x1C, 0x1A, 0x2B, 0x3C, 0x4D, 0x00, 0x01, 0x00, 0x00,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x1C,
            // IDB: LINKTYPE_RAW, snaplen 0, if_tsresol 9 (nanoseconds), opt_endofopt
            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x20, 0x00, 0x65, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x09, 0x00, 0x01, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20,
            // EPB: 2_000_003_999 ns, 2 of 5 bytes, epb_flags outbound
            0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x77, 0x35, 0xA3, 0x9F, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x05, 0xAB, 0xCD, 0x00, 0x00,
            0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x2C,
        ];
        Assert.True(PcapNgReader.TryRead(file, out var records, out var interfaces, out var error), error);
        Assert.Equal(1_000_000_000UL, Assert.Single(interfaces).UnitsPerSecond);
        var record = Assert.Single(records);
        Assert.Equal(2_000_003, record.UnixMicroseconds);
        Assert.Equal([0xAB, 0xCD], record.Packet);
        Assert.Equal(5, record.OriginalLength);
        Assert.Equal(CaptureDirection.Outbound, record.Direction);
    }

    [Fact]
    public void Reader_MalformedFiles_AreRejectedWithAReason()
    {
        var good = Capture(w => w.Write(WireCaptures.LinuxUdp, 1, CaptureDirection.Inbound));
        Assert.True(PcapNgReader.TryRead(good, out _, out _, out _));
        AssertRejected(good[..8], "truncated block header");
        AssertRejected(good[ShbLength..], "not a section header");
        var badMagic = (byte[])good.Clone();
        badMagic[8] = 0;
        AssertRejected(badMagic, "byte-order magic");
        AssertRejected(good[..^1], "past the end");
        var badTrailer = (byte[])good.Clone();
        badTrailer[^4]++;
        AssertRejected(badTrailer, "total length at its end");
        var badInterface = (byte[])good.Clone();
        badInterface[ShbLength + IdbLength + 8] = 1;
        AssertRejected(badInterface, "interface 1");

        static void AssertRejected(byte[] file, string reason)
        {
            Assert.False(PcapNgReader.TryRead(file, out _, out _, out string? error));
            Assert.Contains(reason, error);
        }
    }
}
