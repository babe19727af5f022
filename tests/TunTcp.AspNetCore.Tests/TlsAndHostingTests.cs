using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TunTcp.AspNetCore.Http;
using TunTcp.AspNetCore.Tests.Support;
using TunTcp.Sockets;

namespace TunTcp.AspNetCore.Tests;

/// <summary>TLS straight over TunTcp connections, the certificate the app makes, and hosting beside Kestrel's sockets.</summary>
public sealed class TlsAndHostingTests : IAsyncLifetime
{
    private StackPair _net = null!;

    public ValueTask InitializeAsync()
    {
        _net = StackPair.Start();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => _net.DisposeAsync();

    [Fact]
    public void SelfSignedCertificate_NamesTheTutorialAddressAndLocalhost_ForServerAuthentication()
    {
        using var certificate = SelfSignedCertificate.Create(["10.0.0.1", "tun.example"]);
        Assert.True(certificate.HasPrivateKey);
        Assert.True(certificate.MatchesHostname("localhost"));
        Assert.True(certificate.MatchesHostname("192.168.0.2"));
        Assert.True(certificate.MatchesHostname("10.0.0.1"));
        Assert.True(certificate.MatchesHostname("tun.example"));
        Assert.False(certificate.MatchesHostname("192.168.0.3"));
        var eku = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single();
        Assert.Contains(eku.EnhancedKeyUsages.Cast<Oid>(), oid => oid.Value == "1.3.6.1.5.5.7.3.1");
        Assert.InRange(certificate.NotBefore.ToUniversalTime(), DateTime.UtcNow.AddDays(-2), DateTime.UtcNow);
        Assert.True(certificate.NotAfter > DateTime.Now.AddDays(300));
    }

    [Fact]
    public async Task SslStream_BothEndsOverTunTcp_CarryAMegabyteEachWay()
    {
        using var certificate = SelfSignedCertificate.Create();
        using var listener = await _net.Server.ListenTcpAsync(new IPEndPoint(IPAddress.Any, 4433)).Within();
        var payload = RandomNumberGenerator.GetBytes(1024 * 1024);

        var server = Task.Run(async () =>
        {
            var connection = await listener.AcceptAsync();
            await using var tls = new SslStream(connection.GetStream());
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate });
            // Echo until the client closes its side.
            var buffer = new byte[16 * 1024];
            int n;
            while ((n = await tls.ReadAsync(buffer)) > 0) await tls.WriteAsync(buffer.AsMemory(0, n));
        });

        var connection = await _net.ConnectAsync(4433).Within();
        await using (var tls = new SslStream(connection.GetStream()))
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost",
                RemoteCertificateValidationCallback = (_, presented, _, _) => presented?.GetCertHashString() == certificate.GetCertHashString(),
            }).Within();
            Assert.True(tls.IsEncrypted);
            var echoed = new byte[payload.Length];
            var reader = Task.Run(async () =>
            {
                int got = 0;
                while (got < echoed.Length)
                {
                    int n = await tls.ReadAsync(echoed.AsMemory(got));
                    Assert.NotEqual(0, n);
                    got += n;
                }
            });
            await tls.WriteAsync(payload).Within();
            await reader.Within();
            Assert.Equal(payload, echoed);
            await tls.ShutdownAsync().Within(); // close_notify, then our FIN ends the server's loop
            connection.ShutdownSend();
            await server.Within();
        }
    }

    [Fact]
    public async Task HttpApp_WithAGivenPfx_PresentsThatCertificate()
    {
        using var original = SelfSignedCertificate.Create(["10.0.0.1"]);
        string pfx = Path.Combine(Path.GetTempPath(), $"tuntcp-test-{Guid.NewGuid():N}.pfx");
        await File.WriteAllBytesAsync(pfx, original.Export(X509ContentType.Pkcs12, "s3cret"));
        try
        {
            await using var app = await TunTcpHttpApp.StartAsync(_net.Server, new TunTcpHttpAppOptions
            {
                HttpPort = null,
                HttpsPort = 8443,
                PfxPath = pfx,
                PfxPassword = "s3cret",
                ConfigureLogging = _ => { },
            }).Within();
            Assert.Null(app.HttpEndPoint);
            Assert.Equal(original.GetCertHashString(), app.Certificate?.GetCertHashString());

            string? presented = null;
            using var client = _net.CreateHttpClient(h => h.SslOptions.RemoteCertificateValidationCallback = (_, cert, _, _) =>
            {
                presented = cert?.GetCertHashString();
                return true;
            });
            Assert.Equal("ok\n", await client.GetStringAsync("https://10.0.0.1:8443/healthz").Within());
            Assert.Equal(original.GetCertHashString(), presented);
        }
        finally
        {
            File.Delete(pfx);
        }
    }

    [Fact]
    public async Task HttpApp_WithAWrongPfxPassword_FailsToStart()
    {
        using var original = SelfSignedCertificate.Create();
        string pfx = Path.Combine(Path.GetTempPath(), $"tuntcp-test-{Guid.NewGuid():N}.pfx");
        await File.WriteAllBytesAsync(pfx, original.Export(X509ContentType.Pkcs12, "right"));
        try
        {
            await Assert.ThrowsAsync<CryptographicException>(() => TunTcpHttpApp.StartAsync(_net.Server, new TunTcpHttpAppOptions
            {
                HttpsPort = 8443,
                PfxPath = pfx,
                PfxPassword = "wrong",
                ConfigureLogging = _ => { },
            })).Within();
        }
        finally
        {
            File.Delete(pfx);
        }
    }

    [Fact]
    public async Task OneApp_ServesTunTcpAndKestrelSockets_Together()
    {
        // Kestrel's socket transport keeps the loopback endpoint; ours takes the TunTcp one.
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseTunTcp(_net.Server);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(new TunTcpEndPoint(_net.Server, 8080));
            k.Listen(IPAddress.Loopback, 0);
        });
        await using var app = builder.Build();
        app.MapGet("/who", (HttpContext context) => context.Features.Get<ITunTcpConnectionFeature>() is null ? "sockets" : "tuntcp");
        await app.StartAsync().Within();
        // The transport takes its buffers from Kestrel's pinned-block pool when the host has one.
        Assert.NotNull(app.Services.GetService<IMemoryPoolFactory<byte>>());
        try
        {
            var loopback = app.Urls.Single(u => u.StartsWith("http://127.0.0.1:", StringComparison.Ordinal));
            using var socketsClient = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = Bounded.Timeout };
            Assert.Equal("sockets", await socketsClient.GetStringAsync(loopback + "/who").Within());

            using var tunClient = _net.CreateHttpClient();
            Assert.Equal("tuntcp", await tunClient.GetStringAsync("http://10.0.0.1:8080/who").Within());
        }
        finally
        {
            await app.StopAsync().Within();
        }
    }

    [Fact]
    public async Task KestrelAbort_FromTheApplication_ResetsTheClient()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseTunTcp(_net.Server);
        builder.WebHost.ConfigureKestrel(k => k.Listen(new TunTcpEndPoint(_net.Server, 8081)));
        await using var app = builder.Build();
        app.MapGet("/abort", (HttpContext context) => context.Abort());
        await app.StartAsync().Within();
        try
        {
            using var connection = await _net.ConnectAsync(8081).Within();
            await connection.SendAsync("GET /abort HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray()).Within();
            var reset = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(async () =>
            {
                var buffer = new byte[1024];
                while (await connection.ReceiveAsync(buffer) > 0) { }
            }).Within();
            Assert.Equal(System.Net.Sockets.SocketError.ConnectionReset, reset.SocketErrorCode);
        }
        finally
        {
            await app.StopAsync().Within();
        }
    }
}
