using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using TunTcp.Ip;

namespace TunTcp.AspNetCore;

/// <summary>Registration of the TunTcp transport, in the style of <c>UseSockets</c>.</summary>
public static class TunTcpWebHostBuilderExtensions
{
    /// <summary>
    /// Adds the TunTcp transport with <paramref name="stack"/> as the default stack for
    /// <see cref="TunTcpEndPoint"/>s; Kestrel's socket transport stays for other endpoints.
    /// Listen with <c>ConfigureKestrel(k => k.Listen(new TunTcpEndPoint(stack, 80)))</c> or
    /// <see cref="ListenTunTcp(KestrelServerOptions, NetStack, int, Action{ListenOptions}?)"/>.
    /// </summary>
    public static IWebHostBuilder UseTunTcp(this IWebHostBuilder builder, NetStack stack)
    {
        ArgumentNullException.ThrowIfNull(stack);
        return builder.UseTunTcp(options => options.Stack = stack);
    }

    /// <summary>Adds the TunTcp transport configured by <paramref name="configure"/>.</summary>
    public static IWebHostBuilder UseTunTcp(this IWebHostBuilder builder, Action<TunTcpTransportOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigureServices(services =>
        {
            // An enumerable entry beside Kestrel's socket factory: Kestrel asks each factory's
            // CanBind, so registration order does not matter.
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnectionListenerFactory, TunTcpTransportFactory>());
            var options = services.AddOptions<TunTcpTransportOptions>();
            if (configure is not null) options.Configure(configure);
        });
    }

    /// <summary>Listens on <paramref name="port"/> of <paramref name="stack"/> (port 0: a free one).</summary>
    public static void ListenTunTcp(this KestrelServerOptions options, NetStack? stack, int port, Action<ListenOptions>? configure = null) =>
        options.Listen(new TunTcpEndPoint(stack, port), configure ?? (_ => { }));
}
