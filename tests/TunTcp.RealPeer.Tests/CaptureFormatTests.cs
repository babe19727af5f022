using TunTcp.RealPeer.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// <c>serve --pcap</c> read back by tshark: pcapng by default, with the TUN device's name and
/// each packet's direction (epb_flags, draft-ietf-opsawg-pcapng 4.3.1), and classic pcap with
/// <c>--pcap-format pcap</c>. Traffic stays inside the namespace each test creates.
/// </summary>
public sealed class CaptureFormatTests : IDisposable
{
    private const string HostAddress = "10.78.0.1", StackAddress = "10.78.0.2";
    private const int Pings = 3;
    private readonly TestNamespace? _ns;
    private readonly string _device = TestNamespace.UniqueDeviceName();

    public CaptureFormatTests()
    {
        if (RootRequirement.IsRoot) _ns = TestNamespace.Create();
    }

    public void Dispose() => _ns?.Dispose();

    private TestNamespace Ns => _ns!;

    /// <summary>Runs serve with a capture, pings the stack <see cref="Pings"/> times, stops it.</summary>
    private void CapturePings(string path, params string[] extra)
    {
        using var tool = ToolProcess.Start(
            ["serve", "--netns", Ns.Name, "--tun", _device, "--host-addr", $"{HostAddress}/24", "--addr", StackAddress, "--pcap", path, .. extra]);
        tool.WaitForReady();
        var ping = Ns.Run("ping", "-c", $"{Pings}", "-i", "0.2", "-W", "5", StackAddress);
        Assert.True(ping.ExitCode == 0, ping.ToString());
        Assert.Equal(0, tool.Stop());
    }

    /// <summary>capinfos' "File type" line, e.g. "Wireshark/... - pcapng".</summary>
    private static string FileType(string path)
    {
        var capinfos = Shell.Run("capinfos", "-t", path);
        Assert.True(capinfos.ExitCode == 0, capinfos.ToString());
        return capinfos.Output;
    }

    [Fact]
    public void Pcap_IsPcapNgByDefault_WithTheDeviceName_InboundRequests_AndOutboundReplies()
    {
        RootRequirement.SkipUnlessRoot();
        string path = Path.Combine(Path.GetTempPath(), $"{Ns.Name}.pcapng");
        try
        {
            CapturePings(path);
            Assert.EndsWith("- pcapng", FileType(path).Trim());

            var tshark = Shell.Run("tshark", "-r", path, "-n", "-Y", "icmp", "-T", "fields", "-E", "separator=|",
                "-e", "frame.interface_name", "-e", "frame.packet_flags_direction", "-e", "icmp.type");
            Assert.True(tshark.ExitCode == 0, tshark.ToString());
            var rows = tshark.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('|')).ToList();
            Assert.All(rows, r => Assert.Equal(_device, r[0]));
            // frame.packet_flags_direction is the masked value of bits 0-1: 1 inbound (host to stack), 2 outbound.
            var requests = rows.Where(r => r[2] == "8").ToList();
            var replies = rows.Where(r => r[2] == "0").ToList();
            Assert.True(requests.Count == Pings && replies.Count == Pings, tshark.Output);
            Assert.All(requests, r => Assert.Equal(1, Convert.ToInt32(r[1], 16)));
            Assert.All(replies, r => Assert.Equal(2, Convert.ToInt32(r[1], 16)));

            // Our own reader agrees, and the description names the stack and the namespace.
            Assert.True(PcapNgReader.TryRead(File.ReadAllBytes(path), out var records, out var interfaces, out var error), error);
            var idb = Assert.Single(interfaces);
            Assert.Equal(_device, idb.Name);
            Assert.Contains(StackAddress, idb.Description);
            Assert.Contains(Ns.Name, idb.Description);
            Assert.Contains(records, r => r.Direction == CaptureDirection.Inbound);
            Assert.Contains(records, r => r.Direction == CaptureDirection.Outbound);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void PcapFormatPcap_WritesClassicPcap_ThatTsharkReads()
    {
        RootRequirement.SkipUnlessRoot();
        string path = Path.Combine(Path.GetTempPath(), $"{Ns.Name}.pcap");
        try
        {
            CapturePings(path, "--pcap-format", "pcap");
            Assert.EndsWith("- pcap", FileType(path).Trim());

            var tshark = Shell.Run("tshark", "-r", path, "-n", "-Y", "icmp", "-T", "fields", "-e", "icmp.type");
            Assert.True(tshark.ExitCode == 0, tshark.ToString());
            var types = tshark.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(Pings, types.Count(t => t == "8"));
            Assert.Equal(Pings, types.Count(t => t == "0"));

            Assert.True(PcapReader.TryRead(File.ReadAllBytes(path), out var records, out int linkType, out var error), error);
            Assert.Equal(PcapWriter.LinkTypeRaw, linkType);
            Assert.True(records.Count >= 2 * Pings, $"only {records.Count} packets captured");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
