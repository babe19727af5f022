using TunTcp.RealPeer.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary>Bulk transfers with the Linux kernel over IPv6, both directions, checked by SHA-256.</summary>
public sealed class Ipv6TransferTests
{
    private const long HundredMegabytes = 100L * 1024 * 1024;

    [Fact]
    public void Echo_100MegabytesOverIpv6_BothDirectionsIntact()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create(ipv6: true);
        session.StartServe();
        KernelTransfers.Echo(session, HundredMegabytes);
        session.WaitForServeLog(TimeSpan.FromSeconds(10), $"echo: connection from [{PeerSession.HostAddress6}]:", "closed (normal)");
    }

    [Fact]
    public void Chargen_100MegabytesOverIpv6_ToTheKernel()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create(ipv6: true);
        session.StartServe();
        KernelTransfers.Chargen(session, HundredMegabytes);
    }

    [Fact]
    public void Connect_OverIpv6_UploadsAndDownloads20MegabytesIntact()
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create(ipv6: true);
        KernelTransfers.Connect(session, upload: 20L << 20, download: 20L << 20);
    }
}
