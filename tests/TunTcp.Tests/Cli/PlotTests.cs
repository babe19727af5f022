using Microsoft.Extensions.Logging.Abstractions;
using TunTcp.Cli;
using TunTcp.Cli.Plot;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Cli;

/// <summary>
/// <c>tuntcp plot</c> on synthetic captures written with the wire formatters: which connection
/// is picked, how segments are classified, the ACK and window lines, SACK blocks, RTT samples,
/// the event-trace overlay, the errors, and (with headless Chromium) that the picture shows it.
/// </summary>
public sealed class PlotTests
{
    private static readonly Ipv4Address Client = Packets.Host;
    private static readonly Ipv4Address Server = Packets.Stack;
    private const ushort ClientPort = 40000, ServerPort = 5001;
    private const long Start = 1_700_000_000_000_000;

    /// <summary>A capture built segment by segment: times in milliseconds from <see cref="Start"/>.</summary>
    private sealed class CaptureBuilder
    {
        private readonly MemoryStream _file = new();
        private readonly PcapWriter _writer;
        private readonly bool _ipv6;

        public CaptureBuilder(bool ipv6 = false)
        {
            _writer = new PcapWriter(_file, ownsStream: false);
            _ipv6 = ipv6;
        }

        public CaptureBuilder Segment(double ms, bool fromClient, uint seq, uint ack, TcpFlags flags, ushort window = 1000,
            int payload = 0, TcpOptions options = default, ushort clientPort = ClientPort)
        {
            var header = fromClient
                ? new TcpHeader(clientPort, ServerPort, new SeqNumber(seq), new SeqNumber(ack), flags, window)
                : new TcpHeader(ServerPort, clientPort, new SeqNumber(seq), new SeqNumber(ack), flags, window);
            var packet = _ipv6
                ? Packets6.Tcp(header, options, new byte[payload], fromClient ? Packets6.Host : Packets6.Stack, fromClient ? Packets6.Stack : Packets6.Host)
                : Packets.Tcp(header, options, new byte[payload], fromClient ? Client : Server, fromClient ? Server : Client);
            _writer.Write(packet, Start + (long)(ms * 1000));
            return this;
        }

        public byte[] Bytes()
        {
            _writer.Flush();
            return _file.ToArray();
        }
    }

    private const uint ClientIsn = 1000, ServerIsn = 90_000;

    private static TcpOptions Syn(byte scale)
    {
        var o = new TcpOptions { MaxSegmentSize = 1460, WindowScale = scale, SackPermitted = true };
        return o;
    }

    private static TcpOptions Sack(params (uint Left, uint Right)[] blocks)
    {
        var o = new TcpOptions();
        foreach (var (l, r) in blocks) o.AddSackBlock(new SackBlock(new SeqNumber(l), new SeqNumber(r)));
        return o;
    }

    /// <summary>
    /// The client sends ten 1000-byte segments 10 ms apart; the fourth ([3000, 4000)) is lost, the
    /// server SACKs what follows it, the client retransmits it at 120 ms and the ACK at 140 ms
    /// covers everything. The server's SYN offers shift 5, the client's 7; every ACK comes 20 ms
    /// after the segment it answers.
    /// </summary>
    private static CaptureBuilder LossyTransfer(uint clientIsn = ClientIsn, bool ipv6 = false)
    {
        var c = new CaptureBuilder(ipv6);
        uint d = clientIsn + 1, s = ServerIsn + 1;
        c.Segment(0, true, clientIsn, 0, TcpFlags.Syn, 64240, options: Syn(7));
        c.Segment(5, false, ServerIsn, d, TcpFlags.Syn | TcpFlags.Ack, 65160, options: Syn(5));
        c.Segment(10, true, d, s, TcpFlags.Ack, 502);
        for (int i = 0; i < 10; i++)
        {
            if (i != 3) c.Segment(20 + 10 * i, true, d + (uint)(1000 * i), s, TcpFlags.Ack | TcpFlags.Psh, 502, payload: 1000);
            uint ackTo = i < 3 ? d + (uint)(1000 * (i + 1)) : d + 3000;
            var sack = i > 3 ? Sack((d + 4000, d + (uint)(1000 * (i + 1)))) : default;
            if (i != 3) c.Segment(40 + 10 * i, false, s, ackTo, TcpFlags.Ack, 2000, options: sack);
        }
        c.Segment(120, true, d + 3000, s, TcpFlags.Ack | TcpFlags.Psh, 502, payload: 1000);
        c.Segment(140, false, s, d + 10_000, TcpFlags.Ack, 2000);
        return c;
    }

    private static ConnectionAnalysis Analyze(byte[] capture)
    {
        Assert.True(CaptureSegmentReader.TryRead(capture, out var segments, out var error), error);
        var connections = CaptureConnection.From(segments);
        return ConnectionAnalysis.Of(CaptureConnection.Busiest(connections)!);
    }

    [Fact]
    public void Plot_DataDirection_IsTheOneWithMorePayload_SequenceRelativeToIsn()
    {
        var a = Analyze(LossyTransfer().Bytes());
        Assert.Equal(new TcpEndpoint(Client, ClientPort), a.Sender);
        Assert.Equal(new TcpEndpoint(Server, ServerPort), a.Receiver);
        Assert.Equal(10, a.Data.Count);
        Assert.Equal(0, a.Data[0].Start);
        Assert.Equal(1000, a.Data[0].End);
        Assert.Equal(0.020, a.Data[0].Time, 6);
    }

    [Fact]
    public void Plot_SegmentBelowHighestSent_IsRetransmission()
    {
        var a = Analyze(LossyTransfer().Bytes());
        var retransmission = Assert.Single(a.Data, d => d.Retransmission);
        Assert.Equal((3000L, 4000L), (retransmission.Start, retransmission.End));
        Assert.Equal(0.120, retransmission.Time, 6);
    }

    // RFC 7323 2.3: the receiver's windows are shifted by the scale in its own SYN (5 here), the
    // SYN's own window is not scaled, and nothing is scaled unless both ends offered a shift.
    [Fact]
    public void Plot_WindowLine_IsAckPlusWindowScaledByReceiversShift()
    {
        var a = Analyze(LossyTransfer().Bytes());
        Assert.Equal(5, a.ReceiveWindowShift);
        Assert.Equal(1000, a.Acks[0].Value);
        Assert.Equal(1000 + (2000 << 5), a.WindowEdges[0].Value);
        Assert.Equal(10_000, a.Acks[^1].Value);
        Assert.Equal(10_000, a.BytesAcknowledged);
    }

    // A receiver that closes with unread data resets the connection (RFC 9293 3.6, RFC 1122
    // 4.2.2.13) and Linux's RST carries ACK = RCV.NXT: when the last data arrived just before the
    // close, the reset is the only segment that acknowledges it. The ACK line includes it; the
    // window and SACK lines do not (a reset advertises no window).
    [Fact]
    public void Plot_ResetWithAck_AcknowledgesWhatTheReceiverHad_NoWindowMark()
    {
        var c = new CaptureBuilder();
        uint d = ClientIsn + 1, s = ServerIsn + 1;
        c.Segment(0, true, ClientIsn, 0, TcpFlags.Syn, 64240, options: Syn(7));
        c.Segment(5, false, ServerIsn, d, TcpFlags.Syn | TcpFlags.Ack, 65160, options: Syn(5));
        c.Segment(10, true, d, s, TcpFlags.Ack, 502);
        c.Segment(20, true, d, s, TcpFlags.Ack, 502, payload: 1000);
        c.Segment(21, true, d + 1000, s, TcpFlags.Ack, 502, payload: 1000);
        c.Segment(40, false, s, d + 2000, TcpFlags.Ack, 2000);
        c.Segment(41, true, d + 2000, s, TcpFlags.Ack, 502, payload: 1000);
        c.Segment(60, false, s, d + 3000, TcpFlags.Rst | TcpFlags.Ack, 0);
        var a = Analyze(c.Bytes());
        Assert.Equal(3000, a.BytesAcknowledged);
        Assert.Equal([2000L, 3000L], a.Acks.Select(p => p.Value));
        Assert.Single(a.WindowEdges);
    }

    [Fact]
    public void Plot_NoSynCaptured_WindowsUnscaled_SequenceFromFirstData()
    {
        // The same transfer from its fourth packet on: no handshake, so no shift is known.
        Assert.True(CaptureSegmentReader.TryRead(LossyTransfer().Bytes(), out var all, out _));
        var c = CaptureConnection.From(all.Skip(3).ToList()).Single();
        var a = ConnectionAnalysis.Of(c);
        Assert.Null(a.ReceiveWindowShift);
        Assert.Equal(0, a.Data[0].Start);
        Assert.Equal(1000 + 2000, a.WindowEdges[0].Value);
    }

    [Fact]
    public void Plot_SackBlocks_AreRelativeToTheSendersSequence()
    {
        var a = Analyze(LossyTransfer().Bytes());
        Assert.Equal(6, a.Sacks.Count);
        Assert.Equal((4000L, 5000L), (a.Sacks[0].Left, a.Sacks[0].Right));
        Assert.Equal((4000L, 10_000L), (a.Sacks[^1].Left, a.Sacks[^1].Right));
    }

    // RFC 6298 3 (Karn): no sample from an ACK that covers a retransmitted segment; the others
    // measure data segment to the ACK that covers it, 20 ms here.
    [Fact]
    public void Plot_RttSamples_FromDataToAck_KarnSkipsRetransmitted()
    {
        var a = Analyze(LossyTransfer().Bytes());
        Assert.Equal(3, a.RttMilliseconds.Count);
        Assert.All(a.RttMilliseconds, r => Assert.Equal(20, r.Value, 3));
        Assert.True(a.RttMilliseconds.Max(r => r.Time) < 0.1);
    }

    [Fact]
    public void Plot_SequenceWrap_KeepsCounting()
    {
        var a = Analyze(LossyTransfer(clientIsn: uint.MaxValue - 2500).Bytes());
        Assert.Equal(Enumerable.Range(0, 10).Where(i => i != 3).Select(i => 1000L * i).Append(3000), a.Data.Select(d => d.Start));
        Assert.Equal(10_000, a.BytesAcknowledged);
        Assert.Single(a.Data, d => d.Retransmission);
    }

    [Fact]
    public void Plot_Ipv6Capture_SameAnalysis_EndpointsInBrackets()
    {
        var a = Analyze(LossyTransfer(ipv6: true).Bytes());
        Assert.Equal("[fd00:7475:6e::1]:40000", a.Sender.ToString());
        Assert.Single(a.Data, d => d.Retransmission);
        Assert.Equal(6, a.Sacks.Count);
        Assert.True(TcpTraceReader.TryEndpoint(a.Sender.ToString(), out var parsed));
        Assert.Equal(a.Sender, parsed);
    }

    [Fact]
    public void Plot_ReadsPcapNg_AsServeWritesIt()
    {
        var classic = LossyTransfer().Bytes();
        Assert.True(PcapReader.TryRead(classic, out var records, out _, out _));
        using var file = new MemoryStream();
        using (var writer = new PcapNgWriter(file, "tun0", ownsStream: false))
            foreach (var r in records) writer.Write(r.Packet, r.UnixMicroseconds, CaptureDirection.Inbound);
        var a = Analyze(file.ToArray());
        Assert.Equal(10, a.Data.Count);
        Assert.Single(a.Data, d => d.Retransmission);
    }

    // LINKTYPE_ETHERNET (tcpdump on a veth, say): the IP packet follows the 14-byte Ethernet header.
    [Fact]
    public void Plot_ReadsEthernetFrames()
    {
        Assert.True(PcapReader.TryRead(LossyTransfer().Bytes(), out var records, out _, out _));
        using var file = new MemoryStream();
        var header = new byte[24];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header, PcapWriter.MagicMicroseconds);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(4), 2);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(6), 4);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), 65535);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), 1);
        file.Write(header);
        foreach (var r in records)
        {
            var frame = new byte[14 + r.Packet.Length];
            frame[12] = 0x08; // EtherType IPv4
            r.Packet.CopyTo(frame, 14);
            var record = new byte[16];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)(r.UnixMicroseconds / 1_000_000));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), (uint)(r.UnixMicroseconds % 1_000_000));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(8), (uint)frame.Length);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(12), (uint)frame.Length);
            file.Write(record);
            file.Write(frame);
        }
        var a = Analyze(file.ToArray());
        Assert.Equal(10, a.Data.Count);
        Assert.Equal(10_000, a.BytesAcknowledged);
    }

    [Fact]
    public void Plot_OtherLinkType_IsAnError()
    {
        var capture = LossyTransfer().Bytes();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(capture.AsSpan(20), 147); // LINKTYPE_USER0
        Assert.False(CaptureSegmentReader.TryRead(capture, out _, out var error));
        Assert.Contains("link type 147", error);
    }

    [Fact]
    public void Plot_Connections_NumberedInOrder_DefaultIsTheBusiest()
    {
        var c = LossyTransfer();
        // A second, larger transfer on another client port, after the first.
        uint d = 5001;
        c.Segment(200, true, 5000, 0, TcpFlags.Syn, options: Syn(7), clientPort: 40001);
        for (int i = 0; i < 20; i++) c.Segment(210 + i, true, d + (uint)(1000 * i), ServerIsn + 1, TcpFlags.Ack, payload: 1000, clientPort: 40001);
        Assert.True(CaptureSegmentReader.TryRead(c.Bytes(), out var segments, out _));
        var connections = CaptureConnection.From(segments);
        Assert.Equal(2, connections.Count);
        Assert.Equal((ushort)40000, connections[0].Client.Port);
        Assert.Equal(new TcpEndpoint(Server, ServerPort), connections[0].Server);
        Assert.Equal(2, CaptureConnection.Busiest(connections)!.Number);
        string list = PlotCommand.ListText(connections);
        Assert.Contains("192.168.0.1:40000 -> 192.168.0.2:5001", list);
        Assert.Contains("192.168.0.1:40001 -> 192.168.0.2:5001", list);
    }

    [Fact]
    public void Plot_Html_IsSelfContainedWithEachKindOfMark()
    {
        string html = ConnectionPlot.Render(Analyze(LossyTransfer().Bytes()), null, "test");
        foreach (string mark in new[] { "class=\"data\"", "class=\"retransmission\"", "class=\"ack\"", "class=\"window\"", "class=\"sack\"", "class=\"rtt\"", "class=\"throughput\"" })
            Assert.Contains(mark, html);
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", ""));
        Assert.DoesNotContain("https://", html);
        Assert.DoesNotContain("class=\"cwnd\"", html);
    }

    [Fact]
    public void Plot_TraceFile_RoundTrips_AndAddsCwnd()
    {
        using var dir = new TempDirectory();
        string path = Path.Combine(dir.Path, "trace.jsonl");
        var tuple = new TcpTuple(Server, ServerPort, Client, ClientPort);
        using (var writer = new TcpTraceWriter(new StreamWriter(path), unixOffsetMicroseconds: Start))
        {
            writer.OnChange(new TcpTraceSample(new Instant(30_000), tuple, TcpConnectionState.Established, TcpRecoveryPhase.Open, 14_600, int.MaxValue, TimeSpan.FromMilliseconds(201), TimeSpan.FromMilliseconds(20), 2000, 0, 0));
            writer.OnChange(new TcpTraceSample(new Instant(120_000), tuple, TcpConnectionState.Established, TcpRecoveryPhase.FastRecovery, 7300, 7300, TimeSpan.FromMilliseconds(201), null, 6000, 1, 0));
            // Another connection's record, which plot leaves out.
            writer.OnChange(new TcpTraceSample(new Instant(130_000), tuple with { RemotePort = 1 }, TcpConnectionState.Closed, TcpRecoveryPhase.Open, 1, 1, TimeSpan.Zero, null, 0, 0, 0));
        }
        Assert.True(TcpTraceReader.TryRead(path, out var records, out var error), error);
        Assert.Equal(3, records.Count);
        var mine = TcpTraceReader.For(records, new TcpEndpoint(Client, ClientPort), new TcpEndpoint(Server, ServerPort));
        Assert.Equal(2, mine.Count);
        Assert.Equal(Start + 120_000, mine[1].UnixMicroseconds);
        Assert.Equal((7300, 7300, "FastRecovery"), (mine[1].CongestionWindow, mine[1].SlowStartThreshold, mine[1].Recovery));
        Assert.Null(mine[1].SmoothedRttMicroseconds);
        Assert.Equal(20_000, mine[0].SmoothedRttMicroseconds);
        string html = ConnectionPlot.Render(Analyze(LossyTransfer().Bytes()), mine, "test");
        Assert.Contains("class=\"cwnd\"", html);
        Assert.Contains("class=\"ssthresh\"", html);
        Assert.Contains("class=\"fast-recovery\"", html);
        Assert.Contains("class=\"srtt\"", html);
        Assert.DoesNotContain("class=\"loss-recovery\"", html);
    }

    [Fact]
    public void Plot_Command_WritesHtml_ListsConnections()
    {
        using var dir = new TempDirectory();
        string capture = Path.Combine(dir.Path, "c.pcap"), html = Path.Combine(dir.Path, "c.html");
        File.WriteAllBytes(capture, LossyTransfer().Bytes());
        var (code, output, error) = RunTool("plot", capture, "-o", html);
        Assert.True(code == 0, error);
        Assert.Contains("1 retransmissions", output);
        Assert.Contains("<svg", File.ReadAllText(html));
        (code, output, _) = RunTool("plot", capture, "--list");
        Assert.Equal(0, code);
        Assert.Contains("192.168.0.1:40000 -> 192.168.0.2:5001", output);
    }

    [Theory]
    [InlineData("garbage", null, "is not a pcap or pcapng file")]
    [InlineData("capture", "7", "--conn 7: the capture has 1 connection (1..1; see --list)")]
    [InlineData("missing", null, "cannot read")]
    [InlineData("badtrace", null, "--trace")]
    public void Plot_Command_Failure_SaysWhyAndWritesNothing(string input, string? connection, string message)
    {
        using var dir = new TempDirectory();
        string capture = Path.Combine(dir.Path, "c.pcap"), html = Path.Combine(dir.Path, "c.html"), trace = Path.Combine(dir.Path, "t.jsonl");
        if (input == "garbage") File.WriteAllText(capture, "this is no capture file at all, not even close");
        else if (input != "missing") File.WriteAllBytes(capture, LossyTransfer().Bytes());
        File.WriteAllText(trace, "{\"unix_us\": \"nope\"}\n");
        var args = new List<string> { "plot", capture, "-o", html };
        if (connection is not null) args.AddRange(["--conn", connection]);
        if (input == "badtrace") args.AddRange(["--trace", trace]);
        var (code, _, error) = RunTool([.. args]);
        Assert.Equal(ToolCommandLine.RunFailure, code);
        Assert.Contains(message, error);
        Assert.False(File.Exists(html));
    }

    [Fact]
    public void Plot_Command_WithoutOutput_IsUsageError()
    {
        var (code, _, error) = RunTool("plot", "x.pcap");
        Assert.Equal(ToolCommandLine.UsageError, code);
        Assert.Contains("-o FILE.html", error);
    }

    // The picture itself: Chromium draws the page, and the time-sequence graph's plot area holds
    // pixels of the data colour and of the retransmission colour.
    [Fact]
    public async Task Plot_RenderedByChromium_ShowsDataAndRetransmissionColours()
    {
        using var dir = new TempDirectory();
        string capture = Path.Combine(dir.Path, "c.pcap"), html = Path.Combine(dir.Path, "c.html"), png = Path.Combine(dir.Path, "c.png");
        File.WriteAllBytes(capture, LossyTransfer().Bytes());
        Assert.Equal(0, RunTool("plot", capture, "-o", html).Code);
        await HeadlessChromium.ScreenshotAsync(html, png, 1200, 900, TestContext.Current.CancellationToken);
        var image = PngImage.Decode(await File.ReadAllBytesAsync(png, TestContext.Current.CancellationToken));
        Assert.Equal((1200, 900), (image.Width, image.Height));
        var background = PlotColors.Rgb("#fbfbfb");
        int data = image.CountInPlotRows(PlotColors.Rgb(PlotColors.Data), background);
        int retransmission = image.CountInPlotRows(PlotColors.Rgb(PlotColors.Retransmission), background);
        int ack = image.CountInPlotRows(PlotColors.Rgb(PlotColors.Ack), background);
        int sack = image.CountInPlotRows(PlotColors.Rgb(PlotColors.Sack), background);
        Assert.True(data > 500, $"{data} pixels of the data colour");
        Assert.True(retransmission > 60, $"{retransmission} pixels of the retransmission colour");
        Assert.True(ack > 100, $"{ack} pixels of the ACK colour");
        Assert.True(sack > 50, $"{sack} pixels of the SACK colour");
    }

    private static (int Code, string Output, string Error) RunTool(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = new ToolConsole(output, error, NullLoggerFactory.Instance, TimeProvider.System);
        var line = ToolCommandLine.Build(dump: _ => 0, serve: _ => 0, plot: r => PlotCommand.Run(r, console));
        int code = line.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private sealed class TempDirectory : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("tuntcp-plot-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
