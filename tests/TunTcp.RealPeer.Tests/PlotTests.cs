using TunTcp.Cli.Plot;
using TunTcp.RealPeer.Tests.Support;
using TunTcp.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// <c>tuntcp plot</c> on a real capture: chargen sends to the kernel through serve's own fault
/// injector (2 % of the stack's packets lost, 10 ms delay each way, both between the stack and
/// the capture), serve writes the capture
/// (<c>--pcap</c>) and its event trace (<c>--tcp-trace</c>); plot draws the connection, and
/// headless Chromium's picture of it must show data segments and retransmissions. Traffic stays
/// in the session's namespace; Chromium runs in a namespace of its own with no network.
/// </summary>
[Collection(TransferCollection.Name)]
public sealed class PlotTests
{
    private const long Size = 3L * 1024 * 1024;

    [Fact]
    public async Task Plot_LossyChargenCapture_ShowsRetransmissionsRttAndCwnd()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        string dir = Directory.CreateTempSubdirectory($"{session.Ns.Name}-plot-").FullName;
        try
        {
            string pcap = Path.Combine(dir, "lossy.pcapng"), trace = Path.Combine(dir, "lossy.jsonl");
            string html = Path.Combine(dir, "lossy.html"), png = Path.Combine(dir, "lossy.png");
            session.StartServe("--pcap", pcap, "--tcp-trace", trace, "--loss", "out:2", "--delay", "10", "--seed", "7");
            KernelTransfers.Chargen(session, Size);
            // The capture and the trace are complete once serve has exited.
            Assert.Equal(0, session.Serve!.Stop());

            var (code, output, error) = ToolProcess.RunToExit(["plot", pcap, "--trace", trace, "-o", html]);
            Assert.True(code == 0, error);
            Assert.Contains("wrote", output);

            // What the picture was drawn from.
            Assert.True(CaptureSegmentReader.TryRead(await File.ReadAllBytesAsync(pcap, TestContext.Current.CancellationToken), out var segments, out var readError), readError);
            var connection = CaptureConnection.Busiest(CaptureConnection.From(segments))!;
            Assert.Equal(19, connection.Server.Port);
            var a = ConnectionAnalysis.Of(connection);
            Assert.Equal(19, a.Sender.Port);
            Assert.True(a.BytesAcknowledged >= Size, $"{a.BytesAcknowledged} bytes acknowledged");
            Assert.True(a.Retransmissions > 0, "a 2 % loss must cause retransmissions");
            Assert.NotEmpty(a.Sacks);
            Assert.NotNull(a.ReceiveWindowShift);
            // The capture is taken at the device, outside the injector: there the RTT is the
            // kernel's turnaround; the stack's SRTT includes the 2 x 10 ms the injector adds.
            Assert.NotEmpty(a.RttMilliseconds);
            Assert.True(TcpTraceReader.TryRead(trace, out var records, out var traceError), traceError);
            var mine = TcpTraceReader.For(records, connection.Client, connection.Server);
            Assert.Contains(mine, r => r.SmoothedRttMicroseconds >= 19_000);
            Assert.Contains(mine, r => r.State == "Established");
            Assert.Contains(mine, r => r.Recovery != "Open");
            Assert.Contains(mine, r => r.SlowStartThreshold < int.MaxValue / 2);
            string page = await File.ReadAllTextAsync(html, TestContext.Current.CancellationToken);
            Assert.Contains("class=\"cwnd\"", page);
            Assert.Contains("class=\"srtt\"", page);

            await HeadlessChromium.ScreenshotAsync(html, png, 1200, 900, TestContext.Current.CancellationToken);
            var image = PngImage.Decode(await File.ReadAllBytesAsync(png, TestContext.Current.CancellationToken));
            var background = PlotColors.Rgb("#fbfbfb");
            int data = image.CountInPlotRows(PlotColors.Rgb(PlotColors.Data), background);
            int retransmission = image.CountInPlotRows(PlotColors.Rgb(PlotColors.Retransmission), background);
            Assert.True(data > 1000, $"{data} pixels of the data colour");
            Assert.True(retransmission > 20, $"{retransmission} pixels of the retransmission colour");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
