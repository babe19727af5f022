using System.Diagnostics;
using TunTcp.Links;
using TunTcp.RealPeer.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// <see cref="TunDevice"/> and <see cref="TunInterface"/> in this process, against the kernel,
/// in a namespace the test creates (TunInterface enters it on the test thread and leaves again).
/// </summary>
public sealed class TunDeviceTests : IDisposable
{
    private static readonly Ipv4Address Host = Ipv4Address.Parse("10.66.0.1"), Stack = Ipv4Address.Parse("10.66.0.2");
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private readonly TestNamespace? _ns;
    private readonly string _device = TestNamespace.UniqueDeviceName();

    public TunDeviceTests()
    {
        if (RootRequirement.IsRoot) _ns = TestNamespace.Create();
    }

    public void Dispose() => _ns?.Dispose();

    private TestNamespace Ns => _ns!;

    private TunInterface Open(bool packetInformation = false, int mtu = 1500) => TunInterface.Open(new TunInterfaceOptions
    {
        DeviceName = _device,
        HostAddress = new InterfaceAddress(Host, 24),
        HostAddress6 = null, // IPv6 off: only the packets a test sends cross the device
        Mtu = mtu,
        NetworkNamespace = Ns.Name,
        PacketInformation = packetInformation,
    });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SentEchoRequest_IsAnsweredByTheKernel(bool packetInformation)
    {
        RootRequirement.SkipUnlessRoot();
        using var tun = Open(packetInformation);
        Assert.True(tun.CreatedDevice);
        Assert.False(tun.CreatedNamespace);
        Assert.Equal(_device, tun.Device.Name);
        Assert.Equal(packetInformation, tun.Device.PacketInformation);

        tun.Device.Send(EchoRequest(Stack, Host, id: 0x4242, sequence: 7));
        Assert.Equal(1, tun.Device.Statistics.PacketsSent);

        var reply = ReceiveMatching(tun.Device, p => p.Length >= 28 && p[9] == 1 && p[20] == 0, out _);
        Assert.True(Ipv4Packet.TryParse(reply, out var ip, out _));
        Assert.Equal(Host, ip.Source);
        Assert.Equal(Stack, ip.Destination);
        Assert.True(Icmpv4Message.TryParse(ip.Payload, out var icmp, out _));
        Assert.Equal(Icmpv4Type.EchoReply, icmp.Type);
        Assert.Equal(0x4242, icmp.Identifier);
        Assert.Equal(7, icmp.SequenceNumber);
    }

    [Fact]
    public void PacketLongerThanTheBuffer_IsDroppedAndCounted_NeverTruncated()
    {
        RootRequirement.SkipUnlessRoot();
        using var tun = Open();
        using var ping = StartPing("-s", "1000"); // 1028-byte IPv4 packets
        var small = new byte[200];
        var watch = Stopwatch.StartNew();
        using var wake = new WakeSignal();
        while (tun.Device.Statistics.ReceiveDrops == 0 && watch.Elapsed < Bound)
        {
            int n = tun.Device.Receive(small);
            Assert.True(n <= small.Length);
            // Anything shorter that arrives (none expected with IPv6 off) must be whole.
            if (n > 0) Assert.True(Ipv4Packet.TryParse(small.AsSpan(0, n), out _, out _) || (small[0] >> 4) == 6);
            if (n == 0) tun.Device.Wait(wake, TimeSpan.FromMilliseconds(200));
        }
        Assert.True(tun.Device.Statistics.ReceiveDrops > 0, "the long echo request must be counted as a receive drop");

        // The same packets fit a large buffer, whole.
        var packet = ReceiveMatching(tun.Device, p => p.Length == 1028, out _);
        Assert.True(Ipv4Packet.TryParse(packet, out var ip, out _));
        Assert.Equal(1028, ip.TotalLength);
    }

    [Fact]
    public void Send_LongerThanTheMtu_IsDroppedAndCounted()
    {
        RootRequirement.SkipUnlessRoot();
        using var tun = Open(mtu: 576);
        Assert.Equal(576, tun.Device.Mtu);
        tun.Device.Send(EchoRequest(Stack, Host, 1, 1, dataLength: 600));
        Assert.Equal(1, tun.Device.Statistics.SendDrops);
        Assert.Equal(0, tun.Device.Statistics.PacketsSent);
    }

    [Fact]
    public void Wait_WakesOnWakeSignal()
    {
        RootRequirement.SkipUnlessRoot();
        using var tun = Open();
        using var wake = new WakeSignal();
        wake.Signal();
        var watch = Stopwatch.StartNew();
        tun.Device.Wait(wake, Bound);
        Assert.True(watch.Elapsed < Bound / 2);
    }

    [Fact]
    public void Dispose_RemovesTheDevice_AndTheThreadIsBackInItsNamespace()
    {
        RootRequirement.SkipUnlessRoot();
        // setns(2) moves only the calling thread; TunInterface must move it back.
        string? before = new FileInfo("/proc/thread-self/ns/net").LinkTarget;
        var tun = Open();
        Assert.Equal(before, new FileInfo("/proc/thread-self/ns/net").LinkTarget);
        Assert.True(Ns.HasDevice(_device));
        tun.Dispose();
        Assert.False(Ns.HasDevice(_device));
    }

    private ProcessHandle StartPing(params string[] extra) =>
        new(Process.Start(new ProcessStartInfo("ip", ["netns", "exec", Ns.Name, "ping", "-c", "20", "-i", "0.2", "-W", "1", .. extra, Stack.ToString()])
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!);

    /// <summary>Receives until a packet matches (bounded in time), ignoring others.</summary>
    private static byte[] ReceiveMatching(TunDevice device, Func<byte[], bool> match, out int seen)
    {
        var buffer = new byte[65536];
        using var wake = new WakeSignal();
        var watch = Stopwatch.StartNew();
        seen = 0;
        while (watch.Elapsed < Bound)
        {
            int n = device.Receive(buffer);
            if (n == 0) { device.Wait(wake, TimeSpan.FromMilliseconds(200)); continue; }
            seen++;
            var packet = buffer[..n];
            if (match(packet)) return packet;
        }
        Assert.Fail($"no matching packet within {Bound} ({seen} others)");
        return [];
    }

    private static byte[] EchoRequest(Ipv4Address from, Ipv4Address to, ushort id, ushort sequence, int dataLength = 32)
    {
        var icmp = new byte[Icmpv4Message.HeaderLength + dataLength];
        Icmpv4Writer.WriteEcho(icmp, Icmpv4Type.EchoRequest, id, sequence, new byte[dataLength]);
        var packet = new byte[Ipv4Header.Length + icmp.Length];
        new Ipv4Header(from, to, IpProtocol.Icmp, icmp.Length).Write(packet);
        icmp.CopyTo(packet, Ipv4Header.Length);
        return packet;
    }

    /// <summary>A child process killed (only it, by PID) when the test ends.</summary>
    private sealed class ProcessHandle(Process process) : IDisposable
    {
        public void Dispose()
        {
            if (!process.HasExited) process.Kill();
            process.WaitForExit(5000);
            process.Dispose();
        }
    }
}
