using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using TunTcp.Apps;
using TunTcp.AspNetCore.Http;
using TunTcp.AspNetCore.Tests.Support;
using TunTcp.Sockets;
using TunTcp.Tcp;

namespace TunTcp.AspNetCore.Tests;

/// <summary>The HTTP app of <c>tuntcp serve</c>, served by Kestrel over TunTcp, used by HttpClient and by hand.</summary>
public sealed partial class HttpAppTests : IAsyncLifetime
{
    // SHA-256 of the first 10,000,000 bytes of the RFC 864 chargen stream, computed by an
    // independent implementation (Python, from the RFC's rule), so a change of pattern shows.
    private const string TenMillionPatternSha256 = "290ff2b2cb3e9ed541fd0147de98ed769dad61bdefa70e9ec6b69d821a17702a";

    private StackPair _net = null!;
    private TunTcpHttpApp _app = null!;

    private static string Http(string path) => $"http://{StackPair.ServerAddress}:80{path}";
    private static string Https(string path) => $"https://{StackPair.ServerAddress}:443{path}";

    public async ValueTask InitializeAsync()
    {
        _net = StackPair.Start();
        _app = await TunTcpHttpApp.StartAsync(_net.Server, new TunTcpHttpAppOptions
        {
            HttpPort = 80,
            HttpsPort = 443,
            ConfigureLogging = _ => { }, // no providers: quiet tests
        }).Within();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync().AsTask().WaitAsync(Bounded.Timeout);
        await _net.DisposeAsync();
    }

    [Fact]
    public void Endpoints_AreTheStacksPorts()
    {
        Assert.Equal(80, _app.HttpEndPoint?.IPEndPoint.Port);
        Assert.Equal(443, _app.HttpsEndPoint?.IPEndPoint.Port);
        Assert.Contains("http://[::]:80", _app.Urls);
        Assert.Contains("https://[::]:443", _app.Urls);
    }

    [Fact]
    public async Task GetRoot_ShowsLiveStatistics()
    {
        using var client = _net.CreateHttpClient();
        using var response = await client.GetAsync(Http("/")).Within();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        string html = await response.Content.ReadAsStringAsync().Within();
        Assert.Contains("TunTcp stack 10.0.0.1", html);
        // The request itself rides an established connection, and it took segments to get here.
        Assert.InRange(Counter(html, "Established"), 1, 10);
        Assert.True(Counter(html, "segments in") > 0);
        Assert.True(Counter(html, "segments out") > 0);
        Assert.True(Counter(html, "retransmissions") >= 0);
        Assert.Equal(2, Counter(html, "listening ports")); // 80 and 443
    }

    [Fact]
    public async Task GetBytes_TenMillion_StreamsThePatternWithContentLength()
    {
        using var client = _net.CreateHttpClient();
        using var response = await client.GetAsync(Http("/bytes/10000000"), HttpCompletionOption.ResponseHeadersRead).Within();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(10_000_000, response.Content.Headers.ContentLength);
        Assert.Null(response.Headers.TransferEncodingChunked);
        var (length, sha) = await HashAsync(await response.Content.ReadAsStreamAsync().Within());
        Assert.Equal(10_000_000, length);
        Assert.Equal(TenMillionPatternSha256, sha);
    }

    [Fact]
    public async Task GetBytes_Zero_IsAnEmptyBody()
    {
        using var client = _net.CreateHttpClient();
        using var response = await client.GetAsync(Http("/bytes/0")).Within();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, response.Content.Headers.ContentLength);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("+5")]
    [InlineData("1e3")]
    [InlineData("0x10")]
    [InlineData("1073741825")]
    [InlineData("99999999999999999999999")]
    public async Task GetBytes_BadOrHugeN_IsAClear400(string n)
    {
        using var client = _net.CreateHttpClient();
        using var response = await client.GetAsync(Http("/bytes/" + n)).Within();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        string body = await response.Content.ReadAsStringAsync().Within();
        Assert.Contains("1073741824", body);
    }

    [Fact]
    public async Task PostEcho_TenMegabytes_OverHttp11_ComesBackIntact()
    {
        // The echo streams: the answer flows back while the body is still arriving, so a client
        // must read while it sends (as curl does) once the body outgrows the buffers on the way.
        // HttpClient's HTTP/1.1 sends the whole body before it reads (even with duplex content), so
        // this client is written by hand.
        var body = new byte[10 * 1024 * 1024];
        new Random(7).NextBytes(body);
        using var connection = await _net.ConnectAsync(80).Within();
        var sending = Task.Run(async () =>
        {
            await connection.SendAsync(Encoding.ASCII.GetBytes(
                $"POST /echo HTTP/1.1\r\nHost: 10.0.0.1\r\nContent-Type: application/x-test\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"));
            for (int offset = 0; offset < body.Length; offset += 64 * 1024)
                await connection.SendAsync(body.AsMemory(offset, Math.Min(64 * 1024, body.Length - offset)));
        });
        var response = await ReadAllBytesAsync(connection);
        await sending.Within();

        int headerEnd = response.AsSpan().IndexOf("\r\n\r\n"u8) + 4;
        string head = Encoding.ASCII.GetString(response, 0, headerEnd);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", head);
        Assert.Contains($"Content-Length: {body.Length}\r\n", head);
        Assert.Contains("Content-Type: application/x-test\r\n", head);
        Assert.Equal(body.Length, response.Length - headerEnd);
        Assert.True(body.AsSpan().SequenceEqual(response.AsSpan(headerEnd)));
    }

    [Fact]
    public async Task PostEcho_TenMegabytes_OverHttp2WithTls_ComesBackIntact()
    {
        // HttpClient reads the echo while it still sends only for content types it does not know
        // (it keeps its own ByteArrayContent and the like half duplex), hence DuplexContent.
        var body = new byte[10 * 1024 * 1024];
        new Random(8).NextBytes(body);
        var certificate = _app.Certificate!;
        using var client = _net.CreateHttpClient(h => h.SslOptions.RemoteCertificateValidationCallback =
            (_, presented, _, _) => presented?.GetCertHashString() == certificate.GetCertHashString());
        using var content = new DuplexContent(body);
        using var request = new HttpRequestMessage(HttpMethod.Post, Https("/echo"))
        {
            Content = content,
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).Within();
        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        var (length, sha) = await HashAsync(await response.Content.ReadAsStreamAsync().Within());
        Assert.Equal(body.Length, length);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), sha);
    }

    [Fact]
    public async Task PostEcho_OneMegabyte_WithHttpClient_ComesBackIntact()
    {
        // Small enough for the buffers on the way, so HttpClient's send-then-read HTTP/1.1 works.
        var body = new byte[1024 * 1024];
        new Random(9).NextBytes(body);
        using var client = _net.CreateHttpClient();
        using var content = new ByteArrayContent(body);
        using var response = await client.PostAsync(Http("/echo"), content).Within();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(body, await response.Content.ReadAsByteArrayAsync().Within());
    }

    [Fact]
    public async Task PostEcho_Chunked_ComesBackChunked()
    {
        using var client = _net.CreateHttpClient();
        var payload = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("chunk ", 5000)));
        using var content = new StreamContent(new MemoryStream(payload)); // no length: sent chunked
        using var request = new HttpRequestMessage(HttpMethod.Post, Http("/echo")) { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var response = await client.SendAsync(request).Within();
        Assert.Equal(payload, await response.Content.ReadAsByteArrayAsync().Within());
    }

    [Fact]
    public async Task KeepAlive_HundredRequests_ShareOneConnection()
    {
        var connects = new StrongBox<int>();
        using var client = _net.CreateHttpClient(h => h.MaxConnectionsPerServer = 1, connects);
        for (int i = 0; i < 100; i++)
        {
            string path = i % 2 == 0 ? "/healthz" : $"/bytes/{i * 100}";
            using var response = await client.GetAsync(Http(path)).Within();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadAsByteArrayAsync().Within();
            Assert.Equal(i % 2 == 0 ? "ok\n"u8.ToArray() : Pattern(i * 100), body);
        }
        Assert.Equal(1, connects.Value);
    }

    [Fact]
    public async Task ShortConnections_ThreeHundredInSequence_AllServedAndClosed()
    {
        for (int i = 0; i < 300; i++)
        {
            using var connection = await _net.ConnectAsync(80).Within();
            await connection.SendAsync("GET /healthz HTTP/1.1\r\nHost: 10.0.0.1\r\nConnection: close\r\n\r\n"u8.ToArray()).Within();
            string response = await ReadToEndAsync(connection);
            Assert.StartsWith("HTTP/1.1 200 OK\r\n", response);
            Assert.EndsWith("\r\n\r\nok\n", response);
        }
        // The server closed each one (Connection: close): none is left established.
        Assert.True(await Bounded.UntilAsync(() =>
            _net.Server.Invoke((core, _) => core.CountConnectionsByState().GetValueOrDefault(TcpConnectionState.Established)).Result == 0));
    }

    [Fact]
    public async Task HandTypedRequest_ByteByByteWithBareLineFeeds_IsServed()
    {
        // What `nc 10.0.0.1 80` sends when someone types the request: one line at a time, "\n" endings.
        using var connection = await _net.ConnectAsync(80).Within();
        foreach (byte b in "GET /bytes/20 HTTP/1.1\nHost: 10.0.0.1\n\n"u8.ToArray())
            await connection.SendAsync(new[] { b }).Within();
        var buffer = new byte[4096];
        var text = new StringBuilder();
        while (!text.ToString().EndsWith(Encoding.ASCII.GetString(Pattern(20)), StringComparison.Ordinal))
        {
            int n = await connection.ReceiveAsync(buffer).Within();
            Assert.NotEqual(0, n);
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", text.ToString());
        Assert.Contains("Content-Length: 20\r\n", text.ToString());
        // Keep-alive: the same connection takes another request.
        await connection.SendAsync("GET /healthz HTTP/1.1\r\nHost: 10.0.0.1\r\nConnection: close\r\n\r\n"u8.ToArray()).Within();
        Assert.EndsWith("ok\n", await ReadToEndAsync(connection));
    }

    [Fact]
    public async Task Https_HttpClientTrustingTheGeneratedCertificate_GetsThePattern()
    {
        var certificate = _app.Certificate!;
        using var client = _net.CreateHttpClient(h => h.SslOptions.RemoteCertificateValidationCallback =
            (_, presented, _, _) => presented is not null && presented.GetCertHashString() == certificate.GetCertHashString());
        using (var health = await client.GetAsync(Https("/healthz")).Within())
            Assert.Equal("ok\n", await health.Content.ReadAsStringAsync().Within());
        using var response = await client.GetAsync(Https("/bytes/1000000"), HttpCompletionOption.ResponseHeadersRead).Within();
        var (length, sha) = await HashAsync(await response.Content.ReadAsStreamAsync().Within());
        Assert.Equal(1_000_000, length);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Pattern(1_000_000))), sha);
    }

    [Fact]
    public async Task Https_UntrustedCertificate_IsRejectedByDefaultValidation()
    {
        using var client = _net.CreateHttpClient();
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(Https("/healthz"))).Within();
    }

    [Fact]
    public async Task Https_SslStreamOverATunTcpConnection_SpeaksToKestrel()
    {
        var certificate = _app.Certificate!;
        var connection = await _net.ConnectAsync(443).Within();
        await using var tls = new SslStream(connection.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, presented, _, errors) =>
                presented?.GetCertHashString() == certificate.GetCertHashString() && errors == SslPolicyErrors.RemoteCertificateChainErrors,
        }).Within();
        await tls.WriteAsync("POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"u8.ToArray()).Within();
        var response = new MemoryStream();
        await tls.CopyToAsync(response).Within();
        string text = Encoding.ASCII.GetString(response.ToArray());
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", text);
        Assert.EndsWith("\r\n\r\nhello", text);
    }

    [Fact]
    public async Task Stop_UnbindsThePorts()
    {
        await _app.StopAsync().Within();
        var refused = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(() => _net.ConnectAsync(80)).Within();
        Assert.Equal(System.Net.Sockets.SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    // ---- helpers ----

    [GeneratedRegex("<td>([^<]+)</td><td class=\"n\">(\\d+)</td>")]
    private static partial Regex CounterRow();

    private static long Counter(string html, string name)
    {
        foreach (Match m in CounterRow().Matches(html))
            if (m.Groups[1].Value == name) return long.Parse(m.Groups[2].Value);
        throw new Xunit.Sdk.XunitException($"no row '{name}' on the page");
    }

    private static byte[] Pattern(int length)
    {
        var data = new byte[length];
        ChargenPattern.Fill(data, 0);
        return data;
    }

    private static async Task<(long Length, string Sha256)> HashAsync(Stream stream)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long length = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer).Within()) > 0)
        {
            hash.AppendData(buffer, 0, n);
            length += n;
        }
        return (length, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    /// <summary>Request content that HttpClient may keep sending after the response started.</summary>
    private sealed class DuplexContent(byte[] body) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            for (int offset = 0; offset < body.Length; offset += 64 * 1024)
                await stream.WriteAsync(body.AsMemory(offset, Math.Min(64 * 1024, body.Length - offset)));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = body.Length;
            return true;
        }
    }

    private static async Task<byte[]> ReadAllBytesAsync(TunTcpConnection connection)
    {
        var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await connection.ReceiveAsync(buffer).Within()) > 0) all.Write(buffer, 0, n);
        return all.ToArray();
    }

    private static async Task<string> ReadToEndAsync(TunTcpConnection connection)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        int n;
        while ((n = await connection.ReceiveAsync(buffer).Within()) > 0) text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        return text.ToString();
    }
}
