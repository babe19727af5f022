using System.Net;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using TunTcp.AspNetCore.Http;

// The benchmark's baseline: the routes and host settings of TunTcp's HTTP app
// (TunTcpHttpApp.CreateBuilder + MapTunTcpHttpRoutes) served by Kestrel's own socket transport,
// so bench/http.sh compares the same app on the kernel's TCP and on TunTcp.
// Usage: KestrelSocketsServer --addr IPV4 --port PORT. Prints "ready" once listening; stops on SIGINT/SIGTERM.

IPAddress address = IPAddress.Loopback;
int port = 8080;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--addr" when i + 1 < args.Length && IPAddress.TryParse(args[i + 1], out var a):
            address = a;
            i++;
            break;
        case "--port" when i + 1 < args.Length && int.TryParse(args[i + 1], out var p) && p is > 0 and < 65536:
            port = p;
            i++;
            break;
        default:
            Console.Error.WriteLine($"KestrelSocketsServer: unknown or incomplete argument '{args[i]}'; usage: --addr IPV4 --port PORT");
            return 2;
    }
}

var builder = TunTcpHttpApp.CreateBuilder(new TunTcpHttpAppOptions());
builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(address, port));
await using var app = builder.Build();
app.MapTunTcpHttpRoutes(stack: null);

using var stop = new CancellationTokenSource();
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Cancel(); });
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Cancel(); });

await app.StartAsync();
Console.WriteLine($"KestrelSocketsServer: ready: serving http://{address}:{port}/");
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}
using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
await app.StopAsync(grace.Token);
return 0;
