using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using TunTcp.Ip;

namespace TunTcp.Cli;

/// <summary>
/// The Unix socket through which <c>tuntcp stats</c> reads a running <c>serve</c> or <c>forward</c>:
/// <c>/run/tuntcp/NAME.sock</c> as root (else under <c>$XDG_RUNTIME_DIR/tuntcp</c>), NAME being the
/// network namespace (or <c>dev-DEVICE</c> with <c>--no-netns</c>), mode 0600 in a 0700 directory,
/// so only its owner may ask. One request per connection: the line <c>stats</c>, answered with
/// the <see cref="StackReport"/> as JSON.
/// </summary>
internal sealed class ControlSocket : IDisposable
{
    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private ControlSocket(string path, Socket socket, NetStack stack, ILogger log)
    {
        Path = path;
        _socket = socket;
        _loop = ServeAsync(stack, log);
    }

    public string Path { get; }

    /// <summary>Where the socket of the stack for <paramref name="name"/> lives.</summary>
    public static string PathFor(string name)
    {
        string directory = Environment.UserName == "root" || Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is not { Length: > 0 }
            ? "/run/tuntcp"
            : System.IO.Path.Combine(Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR")!, "tuntcp");
        return System.IO.Path.Combine(directory, name + ".sock");
    }

    /// <summary>The name of a stack's socket: its namespace, or its device in the current one.</summary>
    public static string NameFor(string? networkNamespace, string device) => networkNamespace ?? $"dev-{device}";

    /// <summary>Opens the socket; null (and a warning) when it cannot, since the stack works without it.</summary>
    public static ControlSocket? TryOpen(string name, NetStack stack, ILogger log)
    {
        string path = PathFor(name);
        try
        {
            var directory = System.IO.Path.GetDirectoryName(path)!;
            Directory.CreateDirectory(directory);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            // A socket file left by a process that died: nobody answers on it any more.
            if (File.Exists(path) && !Answers(path)) File.Delete(path);
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Bind(new UnixDomainSocketEndPoint(path));
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            socket.Listen(16);
            return new ControlSocket(path, socket, stack, log);
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            log.LogWarning("No statistics socket at {Path} ({Error}); `tuntcp stats` will not reach this stack", path, e.Message);
            return null;
        }
    }

    private static bool Answers(string path)
    {
        try
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private async Task ServeAsync(NetStack stack, ILogger log)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try { client = await _socket.AcceptAsync(_stop.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = AnswerAsync(client, stack, log);
        }
    }

    private async Task AnswerAsync(Socket client, NetStack stack, ILogger log)
    {
        using (client)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                var buffer = new byte[64];
                int n = await client.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                string request = Encoding.ASCII.GetString(buffer, 0, n).Trim();
                // The answer gets its own, longer deadline: with 100,000 connections the report is
                // about 80 MB of JSON and taking plus sending it outlasts 5 s on a busy machine; the
                // 5 s bound cut the send short and the client printed a truncated report.
                timeout.CancelAfter(TimeSpan.FromSeconds(120));
                string answer = request == "stats"
                    ? (await StackReport.CaptureAsync(stack).ConfigureAwait(false)).ToJson()
                    : $"{{\"error\": \"unknown request '{request.Replace("\"", "", StringComparison.Ordinal)}'; the only one is 'stats'\"}}";
                await client.SendAsync(Encoding.UTF8.GetBytes(answer), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                log.LogDebug("statistics request failed: {Error}", e.Message);
            }
        }
    }

    /// <summary>Asks the stack behind <paramref name="name"/> for its report (the client side of <c>tuntcp stats</c>).</summary>
    /// <exception cref="IOException">No stack answers there; the message says where it looked.</exception>
    public static string Request(string name)
    {
        string path = PathFor(name);
        if (!File.Exists(path))
            throw new IOException($"no running tuntcp serve or forward for '{name}': {path} does not exist (start one, or give its --netns)");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 120_000, SendTimeout = 10_000 };
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException e)
        {
            throw new IOException(e.SocketErrorCode == SocketError.AccessDenied
                ? $"{path} belongs to another user: run tuntcp stats as the user that runs the stack (sudo)"
                : $"nothing answers at {path} ({e.Message}): the stack has stopped", e);
        }
        socket.Send("stats\n"u8);
        var answer = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = socket.Receive(buffer)) > 0) answer.Write(buffer, 0, n);
        return Encoding.UTF8.GetString(answer.ToArray());
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        try { _loop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        try { File.Delete(Path); } catch (IOException) { }
    }
}
