using System.Net;
using System.Net.Http;
using System.Runtime.CompilerServices;
using TunTcp.Ip;
using TunTcp.Links;
using TunTcp.Sockets;
using TunTcp.Wire;

namespace TunTcp.AspNetCore.Tests.Support;

/// <summary>
/// Two running stacks joined by an in-memory link: the server at 10.0.0.1, the client at
/// 10.0.0.2. Nothing leaves the process.
/// </summary>
internal sealed class StackPair : IAsyncDisposable
{
    public static readonly IPAddress ServerAddress = IPAddress.Parse("10.0.0.1");
    public static readonly IPAddress ClientAddress = IPAddress.Parse("10.0.0.2");

    private readonly ILinkDevice _serverLink;
    private readonly ILinkDevice _clientLink;

    private StackPair(ILinkDevice serverLink, ILinkDevice clientLink, NetStack server, NetStack client)
    {
        _serverLink = serverLink;
        _clientLink = clientLink;
        Server = server;
        Client = client;
    }

    public NetStack Server { get; }
    public NetStack Client { get; }

    public static StackPair Start(int mtu = 1500)
    {
        var (serverLink, clientLink) = MemoryLink.CreatePair(mtu, capacity: 1024);
        var server = new NetStack(serverLink, new NetStackOptions { Address = ServerAddress, Mtu = mtu });
        var client = new NetStack(clientLink, new NetStackOptions { Address = ClientAddress, Mtu = mtu });
        server.Start();
        client.Start();
        return new StackPair(serverLink, clientLink, server, client);
    }

    /// <summary>Connects from the client stack to <paramref name="port"/> of the server stack.</summary>
    public Task<TunTcpConnection> ConnectAsync(int port, CancellationToken cancellationToken = default) =>
        Client.ConnectTcpAsync(new IPEndPoint(ServerAddress, port), cancellationToken);

    /// <summary>
    /// An <see cref="HttpClient"/> whose connections are TunTcp connections from the client
    /// stack (the URL's host must be the server's address literal). <paramref name="connects"/>
    /// counts the connections it opened.
    /// </summary>
    public HttpClient CreateHttpClient(Action<SocketsHttpHandler>? configure = null, StrongBox<int>? connects = null)
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectCallback = async (context, cancellationToken) =>
            {
                if (connects is not null) Interlocked.Increment(ref connects.Value);
                var remote = new IPEndPoint(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port);
                var connection = await Client.ConnectTcpAsync(remote, cancellationToken).ConfigureAwait(false);
                return connection.GetStream();
            },
        };
        configure?.Invoke(handler);
        return new HttpClient(handler) { Timeout = Bounded.Timeout };
    }

    public ValueTask DisposeAsync()
    {
        Client.Dispose();
        Server.Dispose();
        _clientLink.Dispose();
        _serverLink.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>Bounds for every wait in these tests: a hang fails the test instead of blocking CI.</summary>
internal static class Bounded
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static CancellationToken Token() => new CancellationTokenSource(Timeout).Token;

    /// <summary>Polls <paramref name="condition"/> until it holds; false after <see cref="Timeout"/>.</summary>
    public static async Task<bool> UntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) return false;
            // Yield to the stack and pool threads between looks; a timer tick, not a sleep of the test's logic.
            await Task.Delay(5);
        }
        return true;
    }

    public static Task<T> Within<T>(this Task<T> task) => task.WaitAsync(Timeout);
    public static Task Within(this Task task) => task.WaitAsync(Timeout);
    public static Task<T> Within<T>(this ValueTask<T> task) => task.AsTask().WaitAsync(Timeout);
    public static Task Within(this ValueTask task) => task.AsTask().WaitAsync(Timeout);
}
