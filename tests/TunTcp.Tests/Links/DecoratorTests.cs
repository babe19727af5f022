using System.Text;
using Microsoft.Extensions.Logging;
using TunTcp.Links;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Links;

public class PcapCaptureLinkTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    [Fact]
    public void BothDirections_AreWritten_WithTheClockTime_AndReadBack()
    {
        var (inner, peer) = MemoryLink.CreatePair();
        var clock = new ManualTimeProvider(T0);
        var file = new MemoryStream();
        var toStack = Packets.EchoRequest(9, 1, "abc"u8);
        var fromStack = Packets.EchoRequest(9, 2, "defg"u8, from: Packets.Stack, to: Packets.Host);
        using (peer)
        using (var capture = new PcapCaptureLink(inner, new PcapWriter(file, ownsStream: false), clock))
        {
            peer.Send(toStack);
            var buffer = new byte[1500];
            Assert.Equal(toStack.Length, capture.Receive(buffer));
            clock.Now = T0.AddTicks(1_234_567 * TimeSpan.TicksPerMicrosecond); // +1.234567 s
            capture.Send(fromStack);
            Assert.Equal(0, capture.Receive(buffer)); // nothing waiting: nothing written
            Assert.Equal(fromStack.Length, peer.Receive(buffer));
        }

        Assert.True(PcapReader.TryRead(file.ToArray(), out var records, out int linkType, out var error), error);
        Assert.Equal(PcapWriter.LinkTypeRaw, linkType);
        Assert.Equal(2, records.Count);
        long t0 = T0.ToUnixTimeMilliseconds() * 1000;
        Assert.Equal(t0, records[0].UnixMicroseconds);
        Assert.Equal(toStack, records[0].Packet);
        Assert.Equal(t0 + 1_234_567, records[1].UnixMicroseconds);
        Assert.Equal(fromStack, records[1].Packet);
        Assert.Equal(fromStack.Length, records[1].OriginalLength);
    }

    [Fact]
    public void PcapNg_RecordsReceivedPacketsAsInbound_AndSentOnesAsOutbound_OnTheNamedInterface()
    {
        var (inner, peer) = MemoryLink.CreatePair();
        var clock = new ManualTimeProvider(T0);
        var file = new MemoryStream();
        var toStack = Packets.EchoRequest(9, 1, "abc"u8);
        var fromStack = Packets.EchoRequest(9, 2, "defg"u8, from: Packets.Stack, to: Packets.Host);
        using (peer)
        using (var capture = new PcapCaptureLink(inner, new PcapNgWriter(file, "tun5", ownsStream: false), clock))
        {
            peer.Send(toStack);
            var buffer = new byte[1500];
            Assert.Equal(toStack.Length, capture.Receive(buffer));
            clock.Now = T0.AddTicks(7 * TimeSpan.TicksPerMicrosecond);
            capture.Send(fromStack);
        }

        Assert.True(PcapNgReader.TryRead(file.ToArray(), out var records, out var interfaces, out var error), error);
        Assert.Equal("tun5", Assert.Single(interfaces).Name);
        Assert.Equal(2, records.Count);
        long t0 = T0.ToUnixTimeMilliseconds() * 1000;
        Assert.Equal((t0, CaptureDirection.Inbound), (records[0].UnixMicroseconds, records[0].Direction));
        Assert.Equal(toStack, records[0].Packet);
        Assert.Equal((t0 + 7, CaptureDirection.Outbound), (records[1].UnixMicroseconds, records[1].Direction));
        Assert.Equal(fromStack, records[1].Packet);
    }

    [Fact]
    public void Create_WritesPcapNgByDefault_AndClassicPcapWhenAsked()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tuntcp-capture-{Environment.ProcessId}-{Guid.NewGuid():N}.cap");
        try
        {
            foreach (var format in new[] { CaptureFormat.PcapNg, CaptureFormat.Pcap })
            {
                var (inner, peer) = MemoryLink.CreatePair();
                using (peer)
                using (var capture = format == CaptureFormat.PcapNg
                    ? PcapCaptureLink.Create(inner, path, new ManualTimeProvider(T0), interfaceName: "tun6")
                    : PcapCaptureLink.Create(inner, path, new ManualTimeProvider(T0), CaptureFormat.Pcap, "tun6"))
                {
                    capture.Send(Packets.EchoRequest(1, 1, "x"u8));
                }
                var bytes = File.ReadAllBytes(path);
                if (format == CaptureFormat.PcapNg)
                {
                    Assert.True(PcapNgReader.TryRead(bytes, out var records, out var interfaces, out var error), error);
                    Assert.Equal("tun6", Assert.Single(interfaces).Name);
                    Assert.Equal(CaptureDirection.Outbound, Assert.Single(records).Direction);
                }
                else
                {
                    Assert.True(PcapReader.TryRead(bytes, out var records, out _, out var error), error);
                    Assert.Single(records);
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Wait_FlushesWhatWasCaptured_SoTheFileIsReadableWhileRunning()
    {
        var (inner, peer) = MemoryLink.CreatePair();
        string path = Path.Combine(Path.GetTempPath(), $"tuntcp-capture-{Environment.ProcessId}-{Guid.NewGuid():N}.pcap");
        try
        {
            using (peer)
            using (var capture = PcapCaptureLink.Create(inner, path, new ManualTimeProvider(T0)))
            using (var wake = new WakeSignal())
            {
                capture.Send(Packets.EchoRequest(1, 1, "x"u8));
                wake.Signal();
                capture.Wait(wake, TimeSpan.Zero);
                byte[] bytes;
                using (var reader = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
                {
                    bytes = new byte[reader.Length];
                    reader.ReadExactly(bytes);
                }
                Assert.True(PcapNgReader.TryRead(bytes, out var records, out _, out var error), error);
                Assert.Single(records);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Create_InAMissingDirectory_SaysWhichFile()
    {
        var (inner, peer) = MemoryLink.CreatePair();
        using (inner) using (peer)
        {
            var e = Assert.Throws<LinkSetupException>(() => PcapCaptureLink.Create(inner, "/nonexistent-dir-for-tuntcp-tests/x.pcap"));
            Assert.Contains("/nonexistent-dir-for-tuntcp-tests/x.pcap", e.Message);
        }
    }
}

public class TracingLinkTests
{
    private static readonly DateTimeOffset T0 = new DateTimeOffset(2026, 1, 2, 13, 4, 5, TimeSpan.Zero).AddTicks(1234560);

    [Fact]
    public void OneLinePerPacket_WithTimeDirectionAndDescription()
    {
        var (inner, peer) = MemoryLink.CreatePair();
        var output = new StringWriter();
        var toStack = Packets.EchoRequest(7, 1, "abc"u8);
        var fromStack = Packets.Tcp(new TcpHeader(80, 40000, new SeqNumber(1000), new SeqNumber(2001), TcpFlags.Rst | TcpFlags.Ack, 0),
            from: Packets.Stack, to: Packets.Host);
        using (peer)
        using (var tracer = new TracingLink(inner, output, new ManualTimeProvider(T0)))
        {
            peer.Send(toStack);
            var buffer = new byte[1500];
            tracer.Receive(buffer);
            tracer.Receive(buffer); // nothing: no line
            tracer.Send(fromStack);
        }

        var lines = output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal("13:04:05.123456 in  " + PacketFormatter.Format(toStack), lines[0]);
        Assert.Equal("13:04:05.123456 out " + PacketFormatter.Format(fromStack), lines[1]);
        Assert.Contains("ICMP", lines[0]);
        Assert.Contains("echo request id 7 seq 1", lines[0]);
        Assert.Contains("80 -> 40000 [", lines[1]);
    }

    [Fact]
    public void NonIpInput_StillGetsALine()
    {
        var (inner, peer) = MemoryLink.CreatePair();
        var output = new StringWriter();
        using (peer)
        using (var tracer = new TracingLink(inner, output, new ManualTimeProvider(T0)))
        {
            peer.Send(new byte[] { 0x00, 0x01, 0x02 });
            tracer.Receive(new byte[100]);
        }
        Assert.Contains("non-IP packet", output.ToString());
    }

    [Fact]
    public void ToALogger_OneEntryPerPacket()
    {
        var (inner, peer) = MemoryLink.CreatePair();
        var logger = new ListLogger();
        using (peer)
        using (var tracer = new TracingLink(inner, logger, new ManualTimeProvider(T0)))
        {
            tracer.Send(Packets.EchoRequest(1, 2, "x"u8, from: Packets.Stack, to: Packets.Host));
        }
        var entry = Assert.Single(logger.Lines);
        Assert.StartsWith("13:04:05.123456 out IPv4 192.168.0.2 -> 192.168.0.1 ICMP", entry);
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Lines { get; } = new();
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Add(formatter(state, exception));
    }
}
