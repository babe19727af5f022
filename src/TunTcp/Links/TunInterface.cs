using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TunTcp.Wire;

namespace TunTcp.Links;

/// <summary>What <see cref="TunInterface.Open"/> sets up. The defaults follow the classic tutorial.</summary>
public sealed record TunInterfaceOptions
{
    public const string DefaultDeviceName = "tun0";
    public const string DefaultNamespace = "tuntcp";
    public const int DefaultMtu = 1500;

    /// <summary>The smallest MTU an IPv4 link may have (RFC 791: every module must forward 68 octets).</summary>
    public const int MinimumMtu = 68;

    /// <summary>The largest IPv4 packet (the 16-bit total length field); also the TUN driver's limit.</summary>
    public const int MaximumMtu = 65535;

    /// <summary>192.168.0.1/24: the host side of the tutorial's tun0.</summary>
    public static readonly InterfaceAddress DefaultHostAddress = new(new Ipv4Address(0xC0A8_0001), 24);

    /// <summary>fd00:7475:6e::1/64: the host side's IPv6 address (a unique-local prefix, RFC 4193; "tun" in hex).</summary>
    public static readonly InterfaceAddress6 DefaultHostAddress6 = new(IpAddress.Parse("fd00:7475:6e::1"), 64);

    /// <summary>The smallest MTU of an IPv6 link (RFC 8200 5).</summary>
    public const int MinimumMtu6 = 1280;

    /// <summary>Device name, 1..15 bytes (default <c>tun0</c>).</summary>
    public string DeviceName { get; init; } = DefaultDeviceName;

    /// <summary>The address and prefix the host (kernel) side of the device gets.</summary>
    public InterfaceAddress HostAddress { get; init; } = DefaultHostAddress;

    /// <summary>
    /// The host side's IPv6 address and prefix; null keeps IPv6 off on the device (the tutorial's
    /// IPv4-only set-up). With it, IPv6 is switched on only as far as needed: the address without
    /// duplicate address detection, no router advertisements accepted, no router solicitations.
    /// </summary>
    public InterfaceAddress6? HostAddress6 { get; init; } = DefaultHostAddress6;

    /// <summary>The device MTU, <see cref="MinimumMtu"/>..<see cref="MaximumMtu"/> (at least <see cref="MinimumMtu6"/> with IPv6).</summary>
    public int Mtu { get; init; } = DefaultMtu;

    /// <summary>
    /// The named network namespace to set the device up in, created if missing; null for the
    /// calling thread's current namespace.
    /// </summary>
    public string? NetworkNamespace { get; init; } = DefaultNamespace;

    /// <summary>Packet-information mode: a 4-byte flags/protocol prefix per packet (no IFF_NO_PI).</summary>
    public bool PacketInformation { get; init; }

    /// <summary>
    /// Open the device with IFF_VNET_HDR and TSO/checksum offloads (<see cref="ISegmentationOffload"/>).
    /// Only for a stack that reads the device directly: packets then carry partial checksums and
    /// can be 64 KiB long, which capture or fault decorators in between would not expect.
    /// </summary>
    public bool Offloads { get; init; }

    /// <summary>
    /// Prefixes routed out of the device besides the host side's own (for <c>forward</c>: the
    /// default routes 0.0.0.0/0 and ::/0, or the chosen prefixes); added once it is up.
    /// </summary>
    public IReadOnlyList<(IPAddress Network, int PrefixLength)> Routes { get; init; } = [];

    /// <summary>The TUN clone device; tests point it at a missing path to exercise the error.</summary>
    public string ClonePath { get; init; } = TunDevice.DefaultClonePath;

    /// <summary>Throws a <see cref="LinkSetupException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (!NetDeviceControl.IsValidName(DeviceName, out var error)) throw new LinkSetupException(error);
        if (Mtu is < MinimumMtu or > MaximumMtu)
            throw new LinkSetupException($"MTU {Mtu} is out of range: it must be from {MinimumMtu} to {MaximumMtu}");
        if (HostAddress6 is { } v6)
        {
            if (Mtu < MinimumMtu6)
                throw new LinkSetupException($"MTU {Mtu} is below {MinimumMtu6}, the least an IPv6 link must carry (RFC 8200 5); raise the MTU or set the device up IPv4-only");
            if (v6.PrefixLength is < 1 or > 128)
                throw new LinkSetupException($"prefix length {v6.PrefixLength} is out of range: it must be from 1 to 128");
            if (!InterfaceAddress6.IsAssignable(v6.Value, out error)) throw new LinkSetupException(error);
        }
        if (HostAddress.PrefixLength is < 1 or > 32)
            throw new LinkSetupException($"prefix length {HostAddress.PrefixLength} is out of range: it must be from 1 to 32");
        if (!InterfaceAddress.IsAssignable(HostAddress.Value, out error)) throw new LinkSetupException(error);
        if (!HostAddress.IsUsableHost(HostAddress.Value))
            throw new LinkSetupException($"{HostAddress.Address} is the network or broadcast address of {HostAddress.Network}/{HostAddress.PrefixLength}; pick a host address inside it");
        if (NetworkNamespace is not null && !Links.NetworkNamespace.IsValidName(NetworkNamespace, out error))
            throw new LinkSetupException(error);
    }
}

/// <summary>
/// A TUN device set up the way the tutorial does it by hand, without running <c>ip</c> for the
/// device: optionally inside a named network namespace (created if missing, with <c>lo</c> up),
/// the device created (or a persistent one attached to), router advertisements off, MTU set,
/// the host side's IPv4 address given and its IPv6 address too (rtnetlink, no duplicate address
/// detection), or IPv6 off when it has none, link up. <see cref="Dispose"/> removes what it
/// created, in reverse order, and leaves alone what already existed.
/// </summary>
/// <remarks>
/// Set-up runs synchronously on the calling thread because setns(2) moves only that thread into
/// the namespace; the thread is moved back before <see cref="Open"/> returns. The TUN descriptor
/// keeps its namespace and may then be used from any thread.
/// </remarks>
public sealed class TunInterface : IDisposable
{
    private readonly ILogger _logger;
    private bool _disposed;

    private TunInterface(TunInterfaceOptions options, TunDevice device, bool createdNamespace, ILogger logger)
    {
        Options = options;
        Device = device;
        CreatedNamespace = createdNamespace;
        _logger = logger;
    }

    /// <summary>The settings this interface was opened with.</summary>
    public TunInterfaceOptions Options { get; }

    /// <summary>The open device; hand it (or a decorator around it) to the stack.</summary>
    public TunDevice Device { get; }

    /// <summary>True if the device was created here (and is configured and removed by us); false if attached.</summary>
    public bool CreatedDevice => Device.Created;

    /// <summary>True if the network namespace was created here (and is deleted on <see cref="Dispose"/>).</summary>
    public bool CreatedNamespace { get; }

    /// <summary>
    /// Sets up the device as <paramref name="options"/> says.
    /// </summary>
    /// <exception cref="LinkSetupException">A step failed; everything done so far has been undone and the message names the fix.</exception>
    public static TunInterface Open(TunInterfaceOptions options, ILogger? logger = null)
    {
        logger ??= NullLogger.Instance;
        options.Validate();
        string? ns = options.NetworkNamespace;
        bool createdNamespace = false;
        TunDevice? device = null;
        try
        {
            if (ns is not null && !NetworkNamespace.Exists(ns))
            {
                NetworkNamespace.Create(ns);
                createdNamespace = true;
                logger.LogInformation("Created network namespace {Namespace}", ns);
            }
            using (ns is null ? null : NetworkNamespace.Enter(ns))
            {
                // A fresh namespace has only lo, and it is down; bring it up so programs in the
                // namespace can talk to themselves as they expect.
                if (createdNamespace)
                {
                    using var control = NetDeviceControl.Open();
                    control.BringUp("lo");
                }
                device = TunDevice.Open(options.DeviceName, options.PacketInformation, options.ClonePath, logger, options.Offloads);
                if (device.Created) Configure(device, options, logger);
                else ReportAttached(device, logger);
            }
            logger.LogInformation("{Action} TUN device {Device}{Where}: {Summary}",
                device.Created ? "Created" : "Attached to", device.Name, ns is null ? "" : $" in network namespace {ns}",
                device.Created ? $"host side {options.HostAddress}{(options.HostAddress6 is { } h6 ? $" and {h6}" : "")}, MTU {device.Mtu}, up{(options.HostAddress6 is null ? ", IPv6 off" : "")}" : $"MTU {device.Mtu}, configuration left as it was");
            return new TunInterface(options, device, createdNamespace, logger);
        }
        catch
        {
            device?.Dispose();
            if (createdNamespace && NetworkNamespace.Delete(ns!) is { } problem)
                logger.LogWarning("Could not delete network namespace {Namespace} after a failed set-up: {Problem}", ns, problem);
            throw;
        }
    }

    /// <summary>
    /// An interface around a device another process set up as <paramref name="options"/> says, in
    /// a namespace of its own (the rootless <c>run</c>'s helper, inside its user namespace):
    /// disposing closes the descriptor; the namespace goes away with the processes in it.
    /// </summary>
    internal static TunInterface Adopt(TunInterfaceOptions options, TunDevice device, ILogger? logger = null) =>
        new(options, device, createdNamespace: false, logger ?? NullLogger.Instance);

    /// <summary>One line saying what was set up, for status output.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(Device.Name).Append(Device.Created ? " (created" : " (attached");
        if (Device.Created) sb.Append(", host side ").Append(Options.HostAddress);
        if (Device.Created && Options.HostAddress6 is { } v6) sb.Append(" and ").Append(v6);
        sb.Append(", MTU ").Append(Device.Mtu);
        if (Device.PacketInformation) sb.Append(", packet info");
        sb.Append(Options.NetworkNamespace is null ? ", current namespace" : $", network namespace {Options.NetworkNamespace}{(CreatedNamespace ? " (created)" : "")}");
        return sb.Append(')').ToString();
    }

    /// <summary>
    /// Removes what <see cref="Open"/> created, in reverse order: the device (closing the
    /// descriptor deletes a non-persistent TUN device, and with it its address, route and IPv6
    /// settings), then the namespace. An attached device and a namespace that already existed
    /// stay as they were. Never throws.
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        bool created = Device.Created && !Device.Persistent;
        Device.Dispose();
        _logger.LogInformation(created ? "Removed TUN device {Device}" : "Detached from TUN device {Device}", Device.Name);
        if (CreatedNamespace)
        {
            string ns = Options.NetworkNamespace!;
            if (NetworkNamespace.Delete(ns) is { } problem)
                _logger.LogWarning("Could not delete network namespace {Namespace}: {Problem}. Delete it with `sudo ip netns delete {Namespace}`", ns, problem, ns);
            else
                _logger.LogInformation("Deleted network namespace {Namespace}", ns);
        }
    }

    private static void Configure(TunDevice device, TunInterfaceOptions options, ILogger logger)
    {
        // Before the link comes up, or the kernel starts IPv6 on it at once with its defaults:
        // router solicitations (RFC 4861 6.3.7), duplicate address detection (RFC 4862 5.4) and
        // router advertisements taken. IPv4-only: IPv6 off altogether, as the tutorial does.
        WriteIpv6Setting(device.Name, "accept_ra", "0", logger);
        if (options.HostAddress6 is null)
        {
            WriteIpv6Setting(device.Name, "disable_ipv6", "1", logger);
        }
        else
        {
            if (!Directory.Exists("/proc/sys/net/ipv6"))
                throw new LinkSetupException("this kernel has no IPv6; set the device up IPv4-only");
            WriteIpv6Setting(device.Name, "router_solicitations", "0", logger);
            WriteIpv6Setting(device.Name, "accept_dad", "0", logger);
            WriteIpv6Setting(device.Name, "disable_ipv6", "0", logger);
        }
        using var control = NetDeviceControl.Open();
        control.SetMtu(device.Name, options.Mtu);
        device.Mtu = options.Mtu;
        control.SetAddress(device.Name, options.HostAddress);
        if (options.HostAddress6 is { } v6)
            Netlink.AddIpv6Address(control.GetIndex(device.Name), device.Name, v6.Value, v6.PrefixLength);
        control.BringUp(device.Name);
        foreach (var (route, prefixLength) in options.Routes)
        {
            var network = IpAddress.FromIPAddress(route);
            if (!network.IsV4 && options.HostAddress6 is null)
                throw new LinkSetupException($"cannot route {network}/{prefixLength} through {device.Name}: IPv6 is off on it");
            Netlink.AddRoute(control.GetIndex(device.Name), device.Name, network, prefixLength);
        }
    }

    private static void ReportAttached(TunDevice device, ILogger logger)
    {
        // An attached device belongs to whoever created it: report what looks wrong, change nothing.
        using var control = NetDeviceControl.Open();
        if ((control.GetFlags(device.Name) & NetDeviceControl.IffUp) == 0)
            logger.LogWarning("TUN device {Device} is down; the kernel will not route to it until it is up: `sudo ip link set {Device} up`", device.Name, device.Name);
        if (device.PacketInformation)
            logger.LogInformation("Attached to {Device} in packet-information mode", device.Name);
    }

    /// <summary>
    /// Writes /proc/sys/net/ipv6/conf/DEV/SETTING (ip-sysctl.rst). Resolved in the calling
    /// thread's namespace: /proc/sys/net follows <c>current->nsproxy->net_ns</c> at lookup time.
    /// A kernel without IPv6 has no such directory; then there is nothing to switch off.
    /// </summary>
    private static unsafe void WriteIpv6Setting(string device, string setting, string value, ILogger logger)
    {
        string path = $"/proc/sys/net/ipv6/conf/{device}/{setting}";
        int fd = Libc.Open(path, 1 /* O_WRONLY */ | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Libc.LastErrno;
            if (errno == Libc.ENOENT && !Directory.Exists("/proc/sys/net/ipv6"))
            {
                logger.LogDebug("This kernel has no IPv6; nothing to switch off on {Device}", device);
                return;
            }
            throw new LinkSetupException(errno is Libc.EACCES or Libc.EPERM
                ? $"cannot write {path}: {Libc.Describe(errno)}. {Privileges.NetAdminHint}"
                : $"cannot write {path}: {Libc.Describe(errno)}", errno);
        }
        try
        {
            Span<byte> bytes = stackalloc byte[8];
            int length = Encoding.ASCII.GetBytes(value, bytes);
            fixed (byte* p = bytes)
            {
                if (Libc.Write(fd, p, (nuint)length) < 0)
                {
                    int errno = Libc.LastErrno;
                    throw new LinkSetupException($"cannot write {value} to {path}: {Libc.Describe(errno)}", errno);
                }
            }
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }
}
