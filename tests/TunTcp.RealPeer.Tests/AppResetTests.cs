using System.Net;
using TunTcp.Ip;
using TunTcp.Links;
using TunTcp.RealPeer.Tests.Support;
using TunTcp.Sockets;
using TunTcp.Wire;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// What a kernel client sees when the application on the stack resets a connection. The stack
/// runs in this process (a <see cref="TunInterface"/> in the test's namespace, a
/// <see cref="NetStack"/> and the socket API), so the test is the application and can abort.
/// </summary>
[Collection(TransferCollection.Name)]
public sealed class AppResetTests : IDisposable
{
    private const string Host = "10.78.0.1", Stack = "10.78.0.2";
    private const int Port = 5002;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly TestNamespace? _ns;
    private readonly string _device = TestNamespace.UniqueDeviceName();

    public AppResetTests()
    {
        if (RootRequirement.IsRoot) _ns = TestNamespace.Create();
    }

    public void Dispose() => _ns?.Dispose();

    private TestNamespace Ns => _ns!;

    private TunInterface OpenDevice() => TunInterface.Open(new TunInterfaceOptions
    {
        DeviceName = _device,
        HostAddress = new InterfaceAddress(Ipv4Address.Parse(Host), 24),
        HostAddress6 = null, // the stack here is IPv4-only
        NetworkNamespace = Ns.Name,
    });

    private static NetStack StartStack(TunInterface tun)
    {
        var stack = new NetStack(tun.Device, new NetStackOptions { Address = Ipv4Address.Parse(Stack).ToIPAddress(), Mtu = tun.Device.Mtu });
        stack.Start();
        return stack;
    }

    private KernelPeer StartClient(string expect, int port = Port) => KernelPeer.StartScript(Ns,
        "--host", Stack, "--port", port.ToString(), "--timeout", "20", "--deadline", "60",
        "expect-reset", "--send-bytes", "100", "--expect", expect);

    [Fact]
    public async Task AppAbort_KernelClientSeesConnectionReset()
    {
        RootRequirement.SkipUnlessRoot();
        using var tun = OpenDevice();
        using var stack = StartStack(tun);
        using var listener = await stack.ListenTcpAsync(new IPEndPoint(IPAddress.Any, Port), cancellationToken: TestContext.Current.CancellationToken);
        using var client = StartClient("reset");
        using var timeout = new CancellationTokenSource(Bound);

        using var connection = await listener.AcceptAsync(timeout.Token);
        // Read what the client sent, so that the abort, not unread data, is what resets.
        var buffer = new byte[100];
        for (int got = 0; got < buffer.Length;)
        {
            int n = await connection.ReceiveAsync(buffer.AsMemory(got), timeout.Token);
            Assert.True(n > 0, "the client closed before sending its 100 bytes");
            got += n;
        }
        connection.Abort();

        // recv(2) in the client fails with ECONNRESET (Python: ConnectionResetError).
        client.WaitForResult(Bound).AssertOk();
        Assert.True(SpinWait.SpinUntil(() => connection.State == Tcp.TcpConnectionState.Closed, Bound), $"the aborted connection is {connection.State}");
    }

    [Fact]
    public async Task AppClosesWithUnreadData_KernelClientSeesConnectionReset()
    {
        RootRequirement.SkipUnlessRoot();
        using var tun = OpenDevice();
        using var stack = StartStack(tun);
        using var listener = await stack.ListenTcpAsync(new IPEndPoint(IPAddress.Any, Port), cancellationToken: TestContext.Current.CancellationToken);
        using var client = StartClient("reset");
        using var timeout = new CancellationTokenSource(Bound);

        var connection = await listener.AcceptAsync(timeout.Token);
        // A zero-byte receive waits until data is there without taking it.
        await connection.ReceiveAsync(Memory<byte>.Empty, timeout.Token);
        Assert.True(connection.Available > 0);
        // RFC 1122 4.2.2.13: closing with received data unread sends a RST, not a FIN.
        connection.Dispose();

        client.WaitForResult(Bound).AssertOk();
    }

    [Fact]
    public void ClosedPort_KernelClientSeesConnectionRefused()
    {
        RootRequirement.SkipUnlessRoot();
        using var tun = OpenDevice();
        using var stack = StartStack(tun);
        using var client = StartClient("refused", port: 5003);
        client.WaitForResult(Bound).AssertOk();
    }
}
