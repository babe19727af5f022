using System.Net;
using System.Net.Sockets;
using System.Text;
using TunTcp.Forwarding;

namespace TunTcp.Tests.Forwarding;

public class Socks5ProxyParseTests
{
    [Theory]
    [InlineData("socks5://127.0.0.1:1080", "127.0.0.1", 1080, null, null)]
    [InlineData("SOCKS5://127.0.0.1:1", "127.0.0.1", 1, null, null)]
    [InlineData("socks5://[::1]:1080", "::1", 1080, null, null)]
    [InlineData("socks5://[fd00::7:1]:65535/", "fd00::7:1", 65535, null, null)]
    [InlineData("socks5://proxy.example:9050", "proxy.example", 9050, null, null)]
    [InlineData("socks5://localhost:9050/", "localhost", 9050, null, null)]
    [InlineData("socks5://user:pass@10.0.0.1:1080", "10.0.0.1", 1080, "user", "pass")]
    [InlineData("socks5://us%40er:p%3Ass%20w%25@[::1]:1080", "::1", 1080, "us@er", "p:ss w%")]
    [InlineData("socks5://%C3%A9t%C3%A9:x@h:1", "h", 1, "\u00e9t\u00e9", "x")]
    [InlineData("socks5://u:p@ss@h:1", "h", 1, "u", "p@ss")]
    [InlineData("socks5://u:p:q@h:1", "h", 1, "u", "p:q")]
    public void Parse_Valid(string url, string host, int port, string? user, string? password)
    {
        var proxy = Socks5Proxy.Parse(url);
        Assert.Equal(new Socks5Proxy(host, port, user, password), proxy);
        Assert.Equal(user is not null, proxy.HasCredentials);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("127.0.0.1:1080", "no scheme")]
    [InlineData("http://127.0.0.1:1080", "only socks5:// is supported")]
    [InlineData("socks4://127.0.0.1:1080", "scheme 'socks4'")]
    [InlineData("socks5://127.0.0.1", "no port")]
    [InlineData("socks5://127.0.0.1:", "no port")]
    [InlineData("socks5://[::1]", "no port")]
    [InlineData("socks5://[::1]:", "no port")]
    [InlineData("socks5://127.0.0.1:0", "out of range")]
    [InlineData("socks5://127.0.0.1:65536", "out of range")]
    [InlineData("socks5://127.0.0.1:99999999999999", "out of range")]
    [InlineData("socks5://127.0.0.1:80a", "not a number")]
    [InlineData("socks5://127.0.0.1:-1", "not a number")]
    [InlineData("socks5://:1080", "no host")]
    [InlineData("socks5://::1:1080", "in brackets")]
    [InlineData("socks5://[::1:1080", "unclosed")]
    [InlineData("socks5://[1.2.3.4]:1080", "not an IPv6 address")]
    [InlineData("socks5://[::1]x:1080", "after the IPv6 address")]
    [InlineData("socks5://300.1.1.1:1080", "not an IPv4 address or a host name")]
    [InlineData("socks5://bad_host:1080", "not an IPv4 address or a host name")]
    [InlineData("socks5://127.0.0.1:1080/path", "path")]
    [InlineData("socks5://127.0.0.1:1080?x=1", "query")]
    [InlineData("socks5://user@127.0.0.1:1080", "no password")]
    [InlineData("socks5://:pass@127.0.0.1:1080", "user name is empty")]
    [InlineData("socks5://user:@127.0.0.1:1080", "password is empty")]
    [InlineData("socks5://us%4:pass@127.0.0.1:1080", "percent-escape in the user name")]
    [InlineData("socks5://user:pa%zzss@127.0.0.1:1080", "percent-escape in the password")]
    [InlineData("socks5://user:%FF@127.0.0.1:1080", "percent-escape in the password")]
    public void Parse_Invalid_SaysWhy(string url, string reason)
    {
        var e = Assert.Throws<FormatException>(() => Socks5Proxy.Parse(url));
        Assert.Contains(reason, e.Message);
        Assert.False(Socks5Proxy.TryParse(url, out _, out var error));
        Assert.Equal(e.Message, error);
    }

    [Fact]
    public void Parse_RejectsCredentialsLongerThan255Bytes_CountingUtf8Bytes()
    {
        Assert.Equal(255, Socks5Proxy.Parse($"socks5://{new string('u', 255)}:p@h:1").UserName!.Length);
        var user = Assert.Throws<FormatException>(() => Socks5Proxy.Parse($"socks5://{new string('u', 256)}:p@h:1"));
        Assert.Contains("user name is 256 bytes long", user.Message);
        // 128 two-byte characters: 128 characters, 256 bytes.
        var password = Assert.Throws<FormatException>(() => Socks5Proxy.Parse($"socks5://u:{string.Concat(Enumerable.Repeat("%C3%A9", 128))}@h:1"));
        Assert.Contains("password is 256 bytes long", password.Message);
    }

    [Fact]
    public void Parse_ErrorsNeverShowThePassword()
    {
        foreach (var url in (string[])["http://user:hunter2@h:1", "socks5://user:hunter2@h", "socks5://user:hunter2@h:0", "socks5://user:hunter2@::1:1"])
        {
            var e = Assert.Throws<FormatException>(() => Socks5Proxy.Parse(url));
            Assert.DoesNotContain("hunter2", e.Message);
            Assert.Contains("user", e.Message);
        }
    }

    [Fact]
    public void ToString_ShowsTheUserButNeverThePassword()
    {
        Assert.Equal("socks5://127.0.0.1:1080", new Socks5Proxy("127.0.0.1", 1080).ToString());
        Assert.Equal("socks5://u%40x@[::1]:1080", new Socks5Proxy("::1", 1080, "u@x", "hunter2").ToString());
        Assert.DoesNotContain("hunter2", Socks5Proxy.Parse("socks5://u:hunter2@h:1").ToString());
        Assert.DoesNotContain("hunter2", $"{Socks5Proxy.Parse("socks5://u:hunter2@h:1")}");
    }

    [Theory]
    [InlineData("socks5://127.0.0.1:1080")]
    [InlineData("socks5://[fd00::1]:1")]
    [InlineData("socks5://proxy.example:9050")]
    public void ToString_RoundTripsWithoutCredentials(string url) => Assert.Equal(url, Socks5Proxy.Parse(url).ToString());
}

public class Socks5UdpHeaderTests
{
    [Theory]
    [InlineData("10.9.8.7", 53, "000000010A09080700350102")]
    [InlineData("::ffff:10.9.8.7", 53, "000000010A09080700350102")] // an IPv4-mapped address goes as IPv4
    [InlineData("2001:db8::1", 443, "000000042001" + "0DB8000000000000000000000001" + "01BB0102")]
    public void Header_EncodesAndDecodes(string address, int port, string hex)
    {
        var destination = new IPEndPoint(IPAddress.Parse(address), port);
        var datagram = new byte[Socks5Wire.MaxUdpHeaderLength + 2];
        int headerLength = Socks5Wire.WriteUdpHeader(datagram, destination);
        datagram[headerLength] = 1;
        datagram[headerLength + 1] = 2;
        Assert.Equal(hex, Convert.ToHexString(datagram, 0, headerLength + 2));

        var status = Socks5Wire.TryReadUdpHeader(datagram.AsSpan(0, headerLength + 2), out var read, out ushort readPort, out int readLength);
        Assert.Equal(Socks5Wire.UdpHeaderStatus.Ok, status);
        Assert.Equal(headerLength, readLength);
        Assert.Equal(port, readPort);
        var expected = destination.Address.IsIPv4MappedToIPv6 ? destination.Address.MapToIPv4() : destination.Address;
        Assert.Equal(expected, new IPAddress(read));
    }

    [Theory]
    [InlineData("", "Truncated")]
    [InlineData("000000", "Truncated")]
    [InlineData("000000010A090807", "Truncated")]
    [InlineData("000000010A09080700", "Truncated")]
    [InlineData("00000004200100000000000000000000000000", "Truncated")]
    [InlineData("000001010A0908070035AA", "Fragment")]
    [InlineData("000081010A0908070035AA", "Fragment")]
    [InlineData("00000003036E733100350102", "UnsupportedAddressType")]
    [InlineData("00000009000000000000", "UnsupportedAddressType")]
    public void Header_RejectsFragmentsTruncationAndDomainNames(string hex, string expected) =>
        Assert.Equal(expected, Socks5Wire.TryReadUdpHeader(Convert.FromHexString(hex), out _, out _, out _).ToString());

    [Fact]
    public void Header_WithoutPayload_IsAnEmptyDatagram()
    {
        Assert.Equal(Socks5Wire.UdpHeaderStatus.Ok, Socks5Wire.TryReadUdpHeader(Convert.FromHexString("000000010A0908070035"), out _, out _, out int length));
        Assert.Equal(10, length);
    }
}

/// <summary>
/// The client against a scripted fake proxy on 127.0.0.1: the fake checks every byte the client
/// sends and answers scripted bytes. Every wait is bounded by <see cref="Timeout"/>.
/// </summary>
public sealed class Socks5ClientTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly CancellationTokenSource _timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

    public Socks5ClientTests()
    {
        _timeout.CancelAfter(Timeout);
        _listener.Start();
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Dispose();
        _timeout.Dispose();
    }

    private CancellationToken Ct => _timeout.Token;

    private int ProxyPort => ((IPEndPoint)_listener.LocalEndpoint).Port;

    private Socks5Proxy Proxy => new("127.0.0.1", ProxyPort);

    private static readonly IPEndPoint Destination4 = new(IPAddress.Parse("10.1.2.3"), 8080);
    private static readonly byte[] NoAuthOffer = [5, 1, 0], NoAuthChosen = [5, 0];
    private static readonly byte[] Connect4 = [5, 1, 0, 1, 10, 1, 2, 3, 0x1f, 0x90];
    private static readonly byte[] Succeeded4 = [5, 0, 0, 1, 127, 0, 0, 1, 0x30, 0x39];

    /// <summary>Accepts one connection and runs the fake proxy's script on it; the socket is closed after.</summary>
    private Task Serve(Func<Socket, Task> script) => Task.Run(async () =>
    {
        using var socket = await _listener.AcceptSocketAsync(Ct);
        await script(socket);
    }, Ct);

    private async Task Expect(Socket socket, byte[] expected)
    {
        var got = new byte[expected.Length];
        int read = 0;
        while (read < got.Length)
        {
            int n = await socket.ReceiveAsync(got.AsMemory(read), SocketFlags.None, Ct);
            if (n == 0) break;
            read += n;
        }
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(got, 0, read));
    }

    private async Task Send(Socket socket, params byte[] data) => await socket.SendAsync(data, SocketFlags.None, Ct);

    private async Task ExpectClosed(Socket socket)
    {
        var one = new byte[1];
        Assert.Equal(0, await socket.ReceiveAsync(one, SocketFlags.None, Ct));
    }

    /// <summary>Runs the client; then waits for the fake, so a broken script fails the test with its own assertion first.</summary>
    private static async Task<(T? Result, Exception? Error)> Run<T>(Func<Task<T>> client, Task fake)
    {
        T? result = default;
        Exception? error = null;
        try
        {
            result = await client();
        }
        catch (Exception e)
        {
            error = e;
        }
        await fake;
        return (result, error);
    }

    private static async Task EchoOnce(Socket client, string send, string expect, CancellationToken ct)
    {
        await client.SendAsync(Encoding.ASCII.GetBytes(send), SocketFlags.None, ct);
        var buffer = new byte[expect.Length];
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await client.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, ct);
            Assert.NotEqual(0, n);
            read += n;
        }
        Assert.Equal(expect, Encoding.ASCII.GetString(buffer));
    }

    [Fact]
    public async Task Connect_NoAuthIpv4_SendsTheExactRequest_AndReturnsTheStream()
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, NoAuthChosen);
            await Expect(s, Connect4);
            await Send(s, Succeeded4);
            await Expect(s, "ping"u8.ToArray());
            await Send(s, "pong"u8.ToArray());
            await ExpectClosed(s);
        });
        var (socket, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, Ct), fake: Task.CompletedTask);
        Assert.Null(error);
        using (socket)
        {
            Assert.True(socket!.NoDelay);
            await EchoOnce(socket, "ping", "pong", Ct);
            socket.Shutdown(SocketShutdown.Send);
            await fake;
        }
    }

    [Fact]
    public async Task Connect_Ipv6Destination_UsesAtyp4_AndReadsAnIpv6Reply()
    {
        var destination = new IPEndPoint(IPAddress.Parse("2001:db8::7"), 443);
        byte[] request = [5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0x01, 0xbb];
        byte[] reply = [5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x04, 0x38];
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, NoAuthChosen);
            await Expect(s, request);
            // The reply and the first data in one segment: the client must take exactly the reply.
            await Send(s, [.. reply, .. "data"u8]);
            await ExpectClosed(s);
        });
        var (socket, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, destination, Ct), Task.CompletedTask);
        Assert.Null(error);
        using (socket)
        {
            var buffer = new byte[4];
            Assert.Equal(4, await socket!.ReceiveAsync(buffer, SocketFlags.None, Ct));
            Assert.Equal("data", Encoding.ASCII.GetString(buffer));
            socket.Shutdown(SocketShutdown.Send);
            await fake;
        }
    }

    [Fact]
    public async Task Connect_Ipv4MappedDestination_GoesAsIpv4()
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, NoAuthChosen);
            await Expect(s, Connect4);
            await Send(s, Succeeded4);
        });
        var (socket, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, new IPEndPoint(IPAddress.Parse("::ffff:10.1.2.3"), 8080), Ct), fake);
        socket?.Dispose();
        Assert.Null(error);
    }

    [Fact]
    public async Task Connect_DomainNameBoundAddress_IsReadToTheLastOctet()
    {
        byte[] reply = [5, 0, 0, 3, 13, .. "proxy.example"u8, 0x04, 0x38];
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, NoAuthChosen);
            await Expect(s, Connect4);
            await Send(s, [.. reply, .. "hello"u8]);
            await ExpectClosed(s);
        });
        var (socket, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, Ct), Task.CompletedTask);
        Assert.Null(error);
        using (socket)
        {
            var buffer = new byte[16];
            Assert.Equal(5, await socket!.ReceiveAsync(buffer, SocketFlags.None, Ct));
            Assert.Equal("hello", Encoding.ASCII.GetString(buffer, 0, 5));
            socket.Shutdown(SocketShutdown.Send);
            await fake;
        }
    }

    [Fact]
    public async Task Connect_ReplyArrivingOneOctetAtATime_IsAssembled()
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, 5);
            await Send(s, 0);
            await Expect(s, Connect4);
            foreach (var b in Succeeded4) await Send(s, b);
        });
        var (socket, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, Ct), fake);
        socket?.Dispose();
        Assert.Null(error);
    }

    [Fact]
    public async Task Connect_WithCredentials_OffersBothMethods_AndAuthenticatesPerRfc1929()
    {
        var proxy = Proxy with { UserName = "user", Password = "s3cret" };
        var fake = Serve(async s =>
        {
            await Expect(s, [5, 2, 0, 2]);
            await Send(s, 5, 2);
            await Expect(s, [1, 4, .. "user"u8, 6, .. "s3cret"u8]);
            await Send(s, 1, 0);
            await Expect(s, Connect4);
            await Send(s, Succeeded4);
        });
        var (socket, error) = await Run(() => Socks5Client.ConnectAsync(proxy, Destination4, Ct), fake);
        socket?.Dispose();
        Assert.Null(error);
    }

    [Fact]
    public async Task Connect_WithCredentials_ToAProxyThatNeedsNone_SkipsAuthentication()
    {
        var proxy = Proxy with { UserName = "user", Password = "s3cret" };
        var fake = Serve(async s =>
        {
            await Expect(s, [5, 2, 0, 2]);
            await Send(s, NoAuthChosen);
            await Expect(s, Connect4);
            await Send(s, Succeeded4);
        });
        var (socket, error) = await Run(() => Socks5Client.ConnectAsync(proxy, Destination4, Ct), fake);
        socket?.Dispose();
        Assert.Null(error);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)] // some servers answer with the SOCKS version; the status still counts
    public async Task Connect_RejectedCredentials_AreAccessDenied(byte version)
    {
        var proxy = Proxy with { UserName = "user", Password = "wrong" };
        var fake = Serve(async s =>
        {
            await Expect(s, [5, 2, 0, 2]);
            await Send(s, 5, 2);
            await Expect(s, [1, 4, .. "user"u8, 5, .. "wrong"u8]);
            await Send(s, version, 1);
            await ExpectClosed(s);
        });
        var (_, error) = await Run(() => Socks5Client.ConnectAsync(proxy, Destination4, Ct), fake);
        var e = Assert.IsType<SocketException>(error);
        Assert.Equal(SocketError.AccessDenied, e.SocketErrorCode);
        Assert.Contains("rejected the user name and password", e.Message);
        Assert.Contains($"socks5://user@127.0.0.1:{ProxyPort}", e.Message);
        Assert.DoesNotContain("wrong", e.Message);
    }

    [Fact]
    public async Task Connect_NoAcceptableMethod_WithoutCredentials_IsAccessDenied_AndSaysAuthenticationIsNeeded()
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, 5, 0xff);
            await ExpectClosed(s);
        });
        var (_, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, Ct), fake);
        var e = Assert.IsType<SocketException>(error);
        Assert.Equal(SocketError.AccessDenied, e.SocketErrorCode);
        Assert.Contains("requires authentication", e.Message);
    }

    [Fact]
    public async Task Connect_NoAcceptableMethod_WithCredentials_IsAccessDenied()
    {
        var fake = Serve(async s =>
        {
            await Expect(s, [5, 2, 0, 2]);
            await Send(s, 5, 0xff);
        });
        var (_, error) = await Run(() => Socks5Client.ConnectAsync(Proxy with { UserName = "u", Password = "p" }, Destination4, Ct), fake);
        var e = Assert.IsType<SocketException>(error);
        Assert.Equal(SocketError.AccessDenied, e.SocketErrorCode);
        Assert.Contains("accepts none of the offered authentication methods", e.Message);
    }

    [Theory]
    [InlineData(0x01, SocketError.SocketError)]
    [InlineData(0x02, SocketError.AccessDenied)]
    [InlineData(0x03, SocketError.NetworkUnreachable)]
    [InlineData(0x04, SocketError.HostUnreachable)]
    [InlineData(0x05, SocketError.ConnectionRefused)]
    [InlineData(0x06, SocketError.TimedOut)]
    [InlineData(0x07, SocketError.OperationNotSupported)]
    [InlineData(0x08, SocketError.AddressFamilyNotSupported)]
    [InlineData(0x09, SocketError.SocketError)]
    [InlineData(0xff, SocketError.SocketError)]
    public async Task Connect_FailureReply_IsTheSocketErrorOfADirectConnect(byte reply, SocketError expected)
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, NoAuthChosen);
            await Expect(s, Connect4);
            await Send(s, 5, reply, 0, 1, 0, 0, 0, 0, 0, 0);
        });
        var (_, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, Ct), fake);
        var e = Assert.IsType<SocketException>(error);
        Assert.Equal(expected, e.SocketErrorCode);
        Assert.Contains($"127.0.0.1:{ProxyPort}", e.Message);
        Assert.Contains($"CONNECT to {Destination4}", e.Message);
        Assert.Contains($"(REP {reply})", e.Message);
    }

    [Fact]
    public async Task Connect_FailureReply_FollowedByClose_IsStillTheReplyCode()
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, NoAuthChosen);
            await Expect(s, Connect4);
            await Send(s, 5, 5); // VER REP, then gone: the code is all that matters
        });
        var (_, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, Ct), fake);
        Assert.Equal(SocketError.ConnectionRefused, Assert.IsType<SocketException>(error).SocketErrorCode);
    }

    [Fact]
    public async Task Connect_ProxyClosingMidReply_IsConnectionReset_NamingTheProxy()
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, NoAuthChosen);
            await Expect(s, Connect4);
            await Send(s, 5, 0, 0, 1, 127, 0);
        });
        var (_, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, Ct), fake);
        var e = Assert.IsType<SocketException>(error);
        Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
        Assert.Contains($"SOCKS5 proxy socks5://127.0.0.1:{ProxyPort} closed the connection in the middle of the reply", e.Message);
    }

    [Fact]
    public async Task Connect_ProxyClosingBeforeTheMethodReply_IsConnectionReset()
    {
        var fake = Serve(s => Expect(s, NoAuthOffer));
        var (_, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, Ct), fake);
        var e = Assert.IsType<SocketException>(error);
        Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
        Assert.Contains("closed the connection instead of sending the method selection", e.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0x48, 0x54 }, "not 5: it does not speak SOCKS5")] // "HT"TP/1.1 400
    [InlineData(new byte[] { 5, 0x80 }, "method 0x80, which was not offered")]
    [InlineData(new byte[] { 5, 2 }, "method 0x02, which was not offered")]
    public async Task Connect_GarbageMethodReply_IsProtocolNotSupported(byte[] answer, string reason)
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, answer);
        });
        var (_, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, Ct), fake);
        var e = Assert.IsType<SocketException>(error);
        Assert.Equal(SocketError.ProtocolNotSupported, e.SocketErrorCode);
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [InlineData(new byte[] { 4, 0x5a, 0, 0 }, "with version 4, not 5")]
    [InlineData(new byte[] { 5, 0, 0, 9 }, "unknown address type 9")]
    [InlineData(new byte[] { 5, 0, 0, 3, 0, 0, 0 }, "empty domain name")]
    public async Task Connect_GarbageReply_IsProtocolNotSupported(byte[] answer, string reason)
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, NoAuthChosen);
            await Expect(s, Connect4);
            await Send(s, answer);
        });
        var (_, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, Ct), fake);
        var e = Assert.IsType<SocketException>(error);
        Assert.Equal(SocketError.ProtocolNotSupported, e.SocketErrorCode);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public async Task Connect_ProxyNotListening_IsThatConnectsError_NamingTheProxy()
    {
        // A port that was just free: nothing listens there now.
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        probe.Dispose();
        var e = await Assert.ThrowsAsync<SocketException>(() => Socks5Client.ConnectAsync(new Socks5Proxy("127.0.0.1", port), Destination4, Ct));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
        Assert.Contains($"cannot connect to SOCKS5 proxy socks5://127.0.0.1:{port}", e.Message);
    }

    [Fact]
    public async Task Connect_Cancelled_DisposesTheSocket()
    {
        using var cancel = new CancellationTokenSource();
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            cancel.Cancel(); // the client waits for the method reply, which never comes
            await ExpectClosed(s);
        });
        var (_, error) = await Run(() => Socks5Client.ConnectAsync(Proxy, Destination4, cancel.Token), fake);
        Assert.IsAssignableFrom<OperationCanceledException>(error);
    }

    [Fact]
    public async Task Connect_RejectsBadArguments()
    {
        await Assert.ThrowsAsync<ArgumentNullException>(() => Socks5Client.ConnectAsync(null!, Destination4, Ct));
        await Assert.ThrowsAsync<ArgumentNullException>(() => Socks5Client.ConnectAsync(Proxy, null!, Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Socks5Client.ConnectAsync(Proxy with { Port = 0 }, Destination4, Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Socks5Client.ConnectAsync(Proxy with { UserName = "u" }, Destination4, Ct));
        await Assert.ThrowsAsync<ArgumentException>(() => Socks5Client.ConnectAsync(Proxy with { UserName = new string('u', 256), Password = "p" }, Destination4, Ct));
    }

    // ---- UDP ASSOCIATE (RFC 1928 section 7) ----

    /// <summary>
    /// A fake proxy's side of UDP ASSOCIATE: checks the request names the client's UDP socket,
    /// answers with <paramref name="replyAddress"/> (4 octets) and the relay's port, and returns the client's UDP endpoint.
    /// </summary>
    private async Task<IPEndPoint> AcceptAssociate(Socket s, int relayPort, byte[] replyAddress)
    {
        await Expect(s, NoAuthOffer);
        await Send(s, NoAuthChosen);
        var request = new byte[10];
        int read = 0;
        while (read < request.Length)
        {
            int n = await s.ReceiveAsync(request.AsMemory(read), SocketFlags.None, Ct);
            Assert.NotEqual(0, n);
            read += n;
        }
        Assert.Equal("050300017F000001", Convert.ToHexString(request, 0, 8)); // VER CMD RSV ATYP 127.0.0.1
        int clientPort = request[8] << 8 | request[9];
        Assert.NotEqual(0, clientPort);
        await Send(s, [5, 0, 0, 1, .. replyAddress, (byte)(relayPort >> 8), (byte)relayPort]);
        return new IPEndPoint(IPAddress.Loopback, clientPort);
    }

    [Fact]
    public async Task Associate_SendsAndReceivesThroughTheRelay_DroppingFragmentsStrangersAndRunts()
    {
        using var relay = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        relay.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        using var stranger = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        stranger.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int relayPort = ((IPEndPoint)relay.LocalEndPoint!).Port;
        var clientUdp = new TaskCompletionSource<IPEndPoint>(TaskCreationOptions.RunContinuationsAsynchronously);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // BND.ADDR 0.0.0.0: "use the proxy's address".
        var fake = Serve(async s =>
        {
            clientUdp.SetResult(await AcceptAssociate(s, relayPort, [0, 0, 0, 0]));
            await done.Task.WaitAsync(Ct);
        });

        var (association, error) = await Run(() => Socks5Client.AssociateUdpAsync(Proxy, Ct), Task.CompletedTask);
        Assert.Null(error);
        await using (association)
        {
            var client = await clientUdp.Task.WaitAsync(Ct);
            Assert.Equal(client, association!.LocalEndPoint);
            Assert.Equal(new IPEndPoint(IPAddress.Loopback, relayPort), association.RelayEndPoint);

            var peer = new IPEndPoint(IPAddress.Parse("10.9.8.7"), 53);
            await association.SendToAsync("hi"u8.ToArray(), peer, Ct);
            var datagram = new byte[100];
            var from = (EndPoint)new IPEndPoint(IPAddress.Any, 0);
            var got = await relay.ReceiveFromAsync(datagram, SocketFlags.None, from, Ct);
            Assert.Equal(client, got.RemoteEndPoint);
            Assert.Equal("000000010A0908070035" + Convert.ToHexString("hi"u8), Convert.ToHexString(datagram, 0, got.ReceivedBytes));

            await relay.SendToAsync(Convert.FromHexString("000001010A0908070035AAAA"), client, Ct);      // FRAG 1: dropped
            await stranger.SendToAsync(Convert.FromHexString("000000010A0908070035BBBB"), client, Ct);   // not the relay: dropped
            await relay.SendToAsync(Convert.FromHexString("000000010A0908"), client, Ct);                // truncated: dropped
            await relay.SendToAsync(Convert.FromHexString("00000003036E733100350102"), client, Ct);      // a domain name: dropped
            await relay.SendToAsync(Convert.FromHexString("000000010A0908070035" + Convert.ToHexString("yo"u8)), client, Ct);
            var buffer = new byte[100];
            var (length, sender) = await association.ReceiveFromAsync(buffer, Ct);
            Assert.Equal("yo", Encoding.ASCII.GetString(buffer, 0, length));
            Assert.Equal(peer, sender);
            Assert.Equal(3, association.DroppedDatagrams);

            // The same sender again: the same endpoint instance; a short buffer truncates.
            await relay.SendToAsync(Convert.FromHexString("000000010A0908070035" + Convert.ToHexString("abcdef"u8)), client, Ct);
            var small = new byte[3];
            var (shortLength, sameSender) = await association.ReceiveFromAsync(small, Ct);
            Assert.Equal(3, shortLength);
            Assert.Equal("abc", Encoding.ASCII.GetString(small));
            Assert.Same(sender, sameSender);

            // An IPv6 destination through an IPv4 relay is fine: the header carries it.
            var peer6 = new IPEndPoint(IPAddress.Parse("2001:db8::1"), 443);
            await association.SendToAsync(new byte[] { 7 }, peer6, Ct);
            got = await relay.ReceiveFromAsync(datagram, SocketFlags.None, from, Ct);
            Assert.Equal("00000004" + "20010DB8000000000000000000000001" + "01BB07", Convert.ToHexString(datagram, 0, got.ReceivedBytes));

            var tooLong = await Assert.ThrowsAsync<SocketException>(() => association.SendToAsync(new byte[Socks5UdpAssociation.MaxPayloadLength + 1], peer, Ct).AsTask());
            Assert.Equal(SocketError.MessageSize, tooLong.SocketErrorCode);
        }
        done.SetResult();
        await fake;
    }

    [Fact]
    public async Task Associate_ProxyClosingTheControlConnection_EndsTheAssociation()
    {
        using var relay = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        relay.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int relayPort = ((IPEndPoint)relay.LocalEndPoint!).Port;
        var close = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fake = Serve(async s =>
        {
            await AcceptAssociate(s, relayPort, [127, 0, 0, 1]);
            await close.Task.WaitAsync(Ct);
        });
        var (association, error) = await Run(() => Socks5Client.AssociateUdpAsync(Proxy, Ct), Task.CompletedTask);
        Assert.Null(error);
        await using (association)
        {
            var pending = association!.ReceiveFromAsync(new byte[100], Ct).AsTask();
            Assert.False(association.Closed.IsCompleted);
            close.SetResult();
            await fake;
            await association.Closed.WaitAsync(Ct);
            var e = await Assert.ThrowsAsync<SocketException>(() => pending.WaitAsync(Ct));
            Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
            Assert.Contains("ended the UDP association", e.Message);
            e = await Assert.ThrowsAsync<SocketException>(() => association.SendToAsync(new byte[1], new IPEndPoint(IPAddress.Loopback, 9), Ct).AsTask());
            Assert.Equal(SocketError.ConnectionReset, e.SocketErrorCode);
        }
    }

    [Fact]
    public async Task Associate_Dispose_ClosesTheControlConnection()
    {
        var fake = Serve(async s =>
        {
            await AcceptAssociate(s, 4000, [127, 0, 0, 1]);
            await ExpectClosed(s);
        });
        var (association, error) = await Run(() => Socks5Client.AssociateUdpAsync(Proxy, Ct), Task.CompletedTask);
        Assert.Null(error);
        await association!.DisposeAsync();
        await fake;
        Assert.True(association.Closed.IsCompleted);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => association.SendToAsync(new byte[1], new IPEndPoint(IPAddress.Loopback, 9), Ct).AsTask());
    }

    [Fact]
    public async Task Associate_ProxyWithoutUdp_IsOperationNotSupported()
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, NoAuthChosen);
            var request = new byte[10];
            Assert.Equal(10, await s.ReceiveAsync(request, SocketFlags.None, Ct));
            Assert.Equal(3, request[1]); // CMD UDP ASSOCIATE
            await Send(s, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0);
        });
        var (_, error) = await Run(() => Socks5Client.AssociateUdpAsync(Proxy, Ct), fake);
        var e = Assert.IsType<SocketException>(error);
        Assert.Equal(SocketError.OperationNotSupported, e.SocketErrorCode);
        Assert.Contains("command not supported (REP 7)", e.Message);
    }

    [Fact]
    public async Task Associate_ProxyNamingAnIpv6RelayForAnIpv4Client_IsAddressFamilyNotSupported()
    {
        var fake = Serve(async s =>
        {
            await Expect(s, NoAuthOffer);
            await Send(s, NoAuthChosen);
            var request = new byte[10];
            Assert.Equal(10, await s.ReceiveAsync(request, SocketFlags.None, Ct));
            await Send(s, [5, 0, 0, 4, .. IPAddress.IPv6Loopback.GetAddressBytes(), 0x10, 0]);
        });
        var (_, error) = await Run(() => Socks5Client.AssociateUdpAsync(Proxy, Ct), fake);
        Assert.Equal(SocketError.AddressFamilyNotSupported, Assert.IsType<SocketException>(error).SocketErrorCode);
    }
}
