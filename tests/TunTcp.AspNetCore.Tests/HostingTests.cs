using System.Net;
using System.Net.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TunTcp.AspNetCore.Tests.Support;
using TunTcp.Hosting;
using TunTcp.Ip;
using TunTcp.Links;
using TunTcp.Sockets;

namespace TunTcp.AspNetCore.Tests;

/// <summary>services.AddTunTcp(): the hosted service that owns the link and the stack, its health check, and Kestrel finding the stack in the container.</summary>
public class HostingTests
{
    private static readonly IPAddress ServerAddress = IPAddress.Parse("10.0.0.1");

    [Fact]
    public async Task AddTunTcp_OwnsTheStack_ServesKestrelFromTheContainer_AndStopsInOrder()
    {
        var (serverLink, clientLink) = MemoryLink.CreatePair(1500, capacity: 1024);
        await using var client = new NetStack(clientLink, new NetStackOptions { Address = IPAddress.Parse("10.0.0.2") });
        client.Start();

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddTunTcp(o =>
        {
            o.Link = _ => serverLink;
            o.Stack = new NetStackOptions { Address = ServerAddress };
            o.ShutdownGrace = TimeSpan.FromSeconds(5);
        });
        builder.Services.AddHealthChecks().AddTunTcp();
        builder.WebHost.UseTunTcp(); // no stack named: the transport takes the container's
        builder.WebHost.ConfigureKestrel(k => k.Listen(new TunTcpEndPoint(null, 8080)));
        await using var app = builder.Build();
        app.MapGet("/hi", () => "hello");
        app.MapHealthChecks("/health");
        await app.StartAsync().Within();

        var host = app.Services.GetRequiredService<TunTcpHost>();
        Assert.True(host.IsRunning);
        Assert.Same(host.Stack, app.Services.GetRequiredService<NetStack>());
        using var http = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (context, token) =>
                (await client.ConnectTcpAsync(new IPEndPoint(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port), token)).GetStream(),
        }) { Timeout = Bounded.Timeout };
        Assert.Equal("hello", await http.GetStringAsync("http://10.0.0.1:8080/hi").Within());
        Assert.Equal("Healthy", await http.GetStringAsync("http://10.0.0.1:8080/health").Within());

        // A connection left open is closed by the host's orderly stop: the client reads end of stream.
        var open = await client.ConnectTcpAsync(new IPEndPoint(ServerAddress, 8080), Bounded.Token());
        var health = app.Services.GetRequiredService<HealthCheckService>();
        await app.StopAsync().Within();
        Assert.False(host.IsRunning);
        Assert.Throws<ObjectDisposedException>(() => host.Stack);
        var report = await health.CheckHealthAsync().Within();
        Assert.Equal(HealthStatus.Unhealthy, report.Status);
        Assert.Equal("the TunTcp stack is not running", report.Entries["tuntcp"].Description);
        var buffer = new byte[16];
        try
        {
            while (await open.ReceiveAsync(buffer, Bounded.Token()) > 0) { }
        }
        catch (System.Net.Sockets.SocketException)
        {
            // Reset after the grace period is as good an end as a FIN.
        }
        Assert.True(open.PeerClosed || open.Error != TunTcp.Tcp.TcpError.None);
    }

    [Fact]
    public async Task AddTunTcp_ReportsHealthyWithCounters_InAPlainGenericHost()
    {
        var (serverLink, clientLink) = MemoryLink.CreatePair(1500, capacity: 64);
        using var _ = clientLink;
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddTunTcp(o => o.Link = _ => serverLink);
        builder.Services.AddHealthChecks().AddTunTcp("stack", tags: ["network"]);
        using var host = builder.Build();
        await host.StartAsync().Within();
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync().Within();
        Assert.Equal(HealthStatus.Healthy, report.Status);
        Assert.Contains("packetsReceived", report.Entries["stack"].Data.Keys);
        Assert.Equal(["network"], report.Entries["stack"].Tags);
        // The defaults: the tool's addresses, both families.
        var stack = host.Services.GetRequiredService<NetStack>();
        Assert.Equal(TunTcpHostOptions.DefaultAddress, stack.Options.Address);
        Assert.Equal(TunTcpHostOptions.DefaultAddress6, stack.Options.Address6);
        await host.StopAsync().Within();
        Assert.True(stack.Completion.IsCompleted);
    }

    [Fact]
    public async Task AddTunTcp_WithABadDevice_FailsTheHostStart_WithTheReason()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddTunTcp(o => o.Interface = new TunInterfaceOptions { DeviceName = "not a valid name" });
        using var host = builder.Build();
        var e = await Assert.ThrowsAsync<LinkSetupException>(() => host.StartAsync().Within());
        Assert.Contains("not a valid name", e.Message);
    }
}
