using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using TunTcp.Ip;

namespace TunTcp.Hosting;

/// <summary>Registration of TunTcp in a <see cref="IServiceCollection"/>.</summary>
public static class TunTcpServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="TunTcpHost"/> as a hosted service that owns the device and the stack, and
    /// <see cref="NetStack"/> as a singleton (the host's stack, opened on first use), so services
    /// take a <see cref="NetStack"/> in their constructor and Kestrel's <c>UseTunTcp()</c> finds it.
    /// </summary>
    public static IServiceCollection AddTunTcp(this IServiceCollection services, Action<TunTcpHostOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<TunTcpHostOptions>();
        if (configure is not null) options.Configure(configure);
        services.TryAddSingleton<TunTcpHost>();
        // Before other hosted services, so theirs StartAsync already finds the stack running.
        services.Insert(0, ServiceDescriptor.Singleton<Microsoft.Extensions.Hosting.IHostedService>(sp => sp.GetRequiredService<TunTcpHost>()));
        services.TryAddSingleton(sp => sp.GetRequiredService<TunTcpHost>().Stack);
        return services;
    }

    /// <summary>A health check named <paramref name="name"/> that reports whether the TunTcp stack runs.</summary>
    public static IHealthChecksBuilder AddTunTcp(this IHealthChecksBuilder builder, string name = "tuntcp", HealthStatus? failureStatus = null, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Add(new HealthCheckRegistration(name, sp => new TunTcpHealthCheck(sp.GetRequiredService<TunTcpHost>()), failureStatus, tags));
    }
}
