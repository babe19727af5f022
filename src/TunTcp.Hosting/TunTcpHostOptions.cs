using System.Net;
using TunTcp.Ip;
using TunTcp.Links;

namespace TunTcp.Hosting;

/// <summary>What <see cref="TunTcpHost"/> opens and runs (see <c>AddTunTcp</c>).</summary>
public sealed class TunTcpHostOptions
{
    /// <summary>The stack's own IPv4 address when <see cref="Stack"/> names none: 192.168.0.2, as the tool's.</summary>
    public static readonly IPAddress DefaultAddress = IPAddress.Parse("192.168.0.2");

    /// <summary>The stack's own IPv6 address when <see cref="Stack"/> names none and the device has IPv6.</summary>
    public static readonly IPAddress DefaultAddress6 = IPAddress.Parse("fd00:7475:6e::2");

    /// <summary>
    /// The TUN device to create and configure (name, host-side addresses, MTU, network
    /// namespace); the defaults are the tool's. Ignored when <see cref="Link"/> is set.
    /// </summary>
    public TunInterfaceOptions Interface { get; set; } = new();

    /// <summary>
    /// A link of the application's own instead of a TUN device (a <see cref="MemoryLink"/> in
    /// tests, say). The host disposes it when it stops.
    /// </summary>
    public Func<IServiceProvider, ILinkDevice>? Link { get; set; }

    /// <summary>
    /// The stack's settings. Without an address, the stack takes <see cref="DefaultAddress"/> (and
    /// <see cref="DefaultAddress6"/> when the device has IPv6); its MTU follows the device's.
    /// </summary>
    public NetStackOptions Stack { get; set; } = new();

    /// <summary>How long stopping the host waits for connections to close after their FIN before it resets the rest.</summary>
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromSeconds(5);
}
