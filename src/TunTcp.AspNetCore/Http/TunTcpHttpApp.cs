using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TunTcp.Ip;

namespace TunTcp.AspNetCore.Http;

/// <summary>
/// The HTTP app of <c>tuntcp serve</c>: an ASP.NET Core minimal API (<see cref="TunTcpHttpRoutes"/>)
/// served by Kestrel over the TunTcp transport on a running <see cref="NetStack"/>, on a plain
/// HTTP port, an HTTPS port, or both.
/// </summary>
/// <example>
/// <code>
/// await using var http = await TunTcpHttpApp.StartAsync(stack, new TunTcpHttpAppOptions { HttpPort = 80, HttpsPort = 443 });
/// // ... until Ctrl-C; disposing stops Kestrel (graceful, then abortive) before the stack goes.
/// </code>
/// </example>
/// <remarks>
/// The app does not take over the process: it installs no Ctrl-C or SIGTERM handling (the
/// caller owns signals and calls <see cref="StopAsync"/>), reads no command line, and binds no
/// socket of the host unless asked.
/// </remarks>
internal sealed class TunTcpHttpApp : IAsyncDisposable
{
    private readonly ListenOptions? _http;
    private readonly ListenOptions? _https;
    private readonly bool _ownsCertificate;
    private int _disposed;

    private TunTcpHttpApp(WebApplication application, ListenOptions? http, ListenOptions? https, X509Certificate2? certificate, bool ownsCertificate)
    {
        Application = application;
        _http = http;
        _https = https;
        Certificate = certificate;
        _ownsCertificate = ownsCertificate;
    }

    /// <summary>The running ASP.NET Core app.</summary>
    public WebApplication Application { get; }

    /// <summary>The bound plain HTTP endpoint on the stack, or null.</summary>
    public TunTcpEndPoint? HttpEndPoint => _http?.EndPoint as TunTcpEndPoint;

    /// <summary>The bound HTTPS endpoint on the stack, or null.</summary>
    public TunTcpEndPoint? HttpsEndPoint => _https?.EndPoint as TunTcpEndPoint;

    /// <summary>The HTTPS certificate (generated or loaded), or null without HTTPS.</summary>
    public X509Certificate2? Certificate { get; }

    /// <summary>The URLs Kestrel reports, e.g. <c>http://[::]:80</c>.</summary>
    public ICollection<string> Urls => Application.Urls;

    /// <summary>
    /// Builds the app on <paramref name="stack"/> and starts it: the given ports are listening
    /// when the task completes. Throws if a port is taken or the PFX cannot be loaded.
    /// </summary>
    public static async Task<TunTcpHttpApp> StartAsync(NetStack stack, TunTcpHttpAppOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stack);
        options ??= new TunTcpHttpAppOptions();
        if (options.HttpPort is null && options.HttpsPort is null)
            throw new ArgumentException("Neither an HTTP nor an HTTPS port was given.", nameof(options));

        X509Certificate2? certificate = null;
        if (options.HttpsPort is not null)
        {
            certificate = options.PfxPath is { } pfx
                ? X509CertificateLoader.LoadPkcs12FromFile(pfx, options.PfxPassword)
                : SelfSignedCertificate.Create([.. StackAddresses(stack), .. options.CertificateNames]);
        }

        WebApplication? app = null;
        try
        {
            var builder = CreateBuilder(options);
            builder.WebHost.UseTunTcp(transport =>
            {
                transport.Stack = stack;
                options.ConfigureTransport?.Invoke(transport);
            });
            ListenOptions? http = null, https = null;
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                if (options.HttpPort is int httpPort)
                    kestrel.Listen(new TunTcpEndPoint(stack, httpPort), listen => http = listen);
                if (options.HttpsPort is int httpsPort)
                    kestrel.Listen(new TunTcpEndPoint(stack, httpsPort), listen => { listen.UseHttps(certificate!); https = listen; });
            });
            app = builder.Build();
            app.MapTunTcpHttpRoutes(stack);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            return new TunTcpHttpApp(app, http, https, certificate, ownsCertificate: true);
        }
        catch
        {
            if (app is not null) await app.DisposeAsync().ConfigureAwait(false);
            certificate?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A <see cref="WebApplicationBuilder"/> with the app's host settings and no endpoints: quiet
    /// ASP.NET Core logging, no console lifetime, no command line. Used by <see cref="StartAsync"/>
    /// and by the benchmark's Kestrel-sockets server, so both run the same app.
    /// </summary>
    /// <summary>The stack's own addresses, as the names its self-signed certificate covers.</summary>
    private static IEnumerable<string> StackAddresses(NetStack stack) =>
        new[] { stack.Options.Address, stack.Options.Address6 }.OfType<System.Net.IPAddress>().Select(a => a.ToString());

    public static WebApplicationBuilder CreateBuilder(TunTcpHttpAppOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ApplicationName = typeof(TunTcpHttpApp).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        // Programmatic UseHttps on a slim builder needs Kestrel's HTTPS services registered.
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.Logging.ClearProviders();
        if (options.LoggerFactory is { } factory) builder.Logging.AddProvider(new ForwardingLoggerProvider(factory));
        if (options.ConfigureLogging is { } configure) configure(builder.Logging);
        if (options.LoggerFactory is null && options.ConfigureLogging is null)
            builder.Logging.AddSimpleConsole(console => { console.SingleLine = true; console.TimestampFormat = "HH:mm:ss.fff "; });
        // Kestrel, hosting and routing log every connection and request at Information and below.
        builder.Logging.AddFilter("Microsoft", options.AspNetCoreLogLevel);
        // The caller owns the process's signals; the default console lifetime would take Ctrl-C.
        builder.Services.AddSingleton<IHostLifetime, CallerOwnedLifetime>();
        return builder;
    }

    /// <summary>Stops Kestrel: stops accepting, lets requests in flight finish, then closes connections.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => Application.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            await Application.StopAsync().ConfigureAwait(false);
        }
        finally
        {
            await Application.DisposeAsync().ConfigureAwait(false);
            if (_ownsCertificate) Certificate?.Dispose();
        }
    }

    /// <summary>Hands the host's loggers to a factory the caller owns (and keeps: it is not disposed here).</summary>
    private sealed class ForwardingLoggerProvider(ILoggerFactory factory) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => factory.CreateLogger(categoryName);
        public void Dispose() { }
    }

    /// <summary>A host lifetime that leaves start and stop to whoever owns the process.</summary>
    private sealed class CallerOwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
