using TunTcp.RealPeer.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// The Linux kernel's TCP and UDP as the peer of <c>tuntcp serve</c> and <c>tuntcp connect</c>
/// over the real TUN device, each test in a namespace of its own. Every byte is checked;
/// nothing is timed except to bound a hang (each peer run is bounded by
/// <see cref="PeerSession.PeerBound"/>, each socket operation by a 30 s timeout).
/// </summary>
[Collection(TransferCollection.Name)]
public sealed class KernelTransferTests
{
    private const long HundredMegabytes = 100L * 1024 * 1024;

    [Fact]
    public void Nc_RoundTripThroughEcho()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        session.StartServe();
        // -N: shut the socket down at stdin EOF, so echo's FIN ends nc; -w bounds a hang.
        var nc = session.Ns.Run("sh", "-c", $"printf 'hello, tuntcp\\nsecond line\\n' | nc -N -w 10 {PeerSession.StackAddress} 7");
        Assert.True(nc.ExitCode == 0, nc.ToString());
        Assert.Equal("hello, tuntcp\nsecond line\n", nc.Output);
        session.WaitForServeLog(TimeSpan.FromSeconds(10), "echo: connection from", "closed (normal)", "26 bytes in, 26 bytes out");
    }

    [Fact]
    public void Discard_Consumes100MegabytesFromTheKernel_ThenClosesNormally()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        session.StartServe();
        KernelTransfers.Discard(session, HundredMegabytes);
    }

    [Fact]
    public void Chargen_Sends100MegabytesOfTheRfc864Pattern_ToTheKernel()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        session.StartServe();
        KernelTransfers.Chargen(session, HundredMegabytes);
    }

    [Fact]
    public void Echo_TwoHundredConcurrentKernelConnections_Each64KilobytesIntact()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        session.StartServe();
        var result = session.RunPeer(KernelTransfers.EchoPort, "echo-many", "--connections", "200", "--bytes", "65536");
        Assert.Equal(200, result.Long("intact"));
        // Every one of them ended in an orderly close on the stack's side too.
        bool allClosed = SpinWait.SpinUntil(
            () => session.Serve!.Stderr.Split('\n').Count(l => l.Contains("echo: connection from") && l.Contains("closed (normal), 65536 bytes in, 65536 bytes out")) == 200,
            TimeSpan.FromSeconds(30));
        Assert.True(allClosed, $"not all 200 echo connections logged a normal close of 65536 bytes each way:\n{session.ToolTail()}");
    }

    [Fact]
    public void HalfClose_KernelFinFirst_EchoStillSendsWhatItHolds_ThenFins()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        session.StartServe();
        // The kernel reads nothing until its FIN is out: all 64 KB come back after it.
        KernelTransfers.Echo(session, 64 * 1024, readAfterShutdown: true);
        // And a larger stream, read while sending, with the FIN after the last byte.
        KernelTransfers.Echo(session, 8L * 1024 * 1024);
    }

    [Fact]
    public void Echo_20Megabytes_BothWaysIntact()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        session.StartServe();
        KernelTransfers.Echo(session, 20L * 1024 * 1024);
    }

    [Fact]
    public void Connect_ToAKernelListener_Moves10MegabytesEachWay()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        KernelTransfers.Connect(session, upload: 10L * 1024 * 1024, download: 10L * 1024 * 1024);
    }

    [Fact]
    public void HalfClose_StackFinFirst_ConnectStillReceivesEverything()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        // connect sends 1 MB, then stdin EOF half-closes; the kernel answers with 5 MB only after
        // it has read the stack's FIN.
        KernelTransfers.Connect(session, upload: 1024 * 1024, download: 5L * 1024 * 1024, stackClosesFirst: true);
    }

    [Fact]
    public void HalfClose_StackFinFirst_WithNothingToSend()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        KernelTransfers.Connect(session, upload: 0, download: 1024 * 1024, stackClosesFirst: true);
    }

    [Fact]
    public void Connect_UploadOverASlowLink_IsAllDeliveredBeforeTheToolExits()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        // The kernel closes its side at once, so the download ends long before the upload has
        // crossed the 1 Mbit/s link (about 5 s for 640 KB, more than the 2 s of grace the stack gives connections when it shuts down): connect must wait for its data and
        // FIN to be acknowledged before it ends, or the stack dies with the data.
        KernelTransfers.Connect(session, upload: 640 * 1024, download: 0, toolOptions: ["--rate", "out:1mbit"]);
    }

    [Fact]
    public void Connect_ToAClosedKernelPort_IsRefused_WithExitCode1()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        var (exitCode, _, stderr) = ToolProcess.RunToExit(["connect", .. session.DeviceArguments, PeerSession.HostAddress, "5999"]);
        Assert.Equal(1, exitCode);
        Assert.Contains("refused", stderr);
    }

    [Fact]
    public void UdpEcho_ReturnsEveryDatagramUnchanged()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        session.StartServe();
        var result = session.RunPeer(7, "udp-echo", "--sizes", "1,64,512,1400,1472,0,1000");
        Assert.Equal(7, result.Long("echoed"));
    }
}

/// <summary>The bulk-transfer tests run one after another: two cores, and each transfer wants one.</summary>
public static class TransferCollection
{
    public const string Name = "kernel transfers";
}
