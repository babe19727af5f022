using System.Net.Sockets;
using TunTcp.Ip;
using TunTcp.Sockets;

namespace TunTcp.Cli;

/// <summary>
/// <c>tuntcp connect HOST PORT</c>: like <c>nc HOST PORT</c>, but the TCP is TunTcp's. Sets the
/// device up, opens a connection from the stack to a listener on the host side, then copies
/// stdin to the connection and the connection to stdout at the same time. Stdin EOF half-closes
/// (FIN); the command ends when both directions are done. Refusal, timeout and reset end it with
/// a message and exit code 1; Ctrl-C resets the connection and exits with 130, as a shell reports a
/// command ended by SIGINT.
/// </summary>
internal static class ConnectCommand
{
    public static int Run(ToolSettings settings, ToolConsole console, Stream stdin, Stream stdout) =>
        DeviceCommand.Run(settings, console, (tun, link, signals) =>
        {
            using var trace = settings.OpenTcpTrace(console.Time);
            var options = settings.StackOptions(link.Mtu, eventTrace: trace);
            using var stack = new NetStack(link, options, console.Time, console.LoggerFactory);
            stack.Start();
            var target = settings.Target!;
            TunTcpConnection connection;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(signals.Token))
            {
                timeout.CancelAfter(settings.ConnectTimeout);
                try
                {
                    connection = stack.ConnectTcpAsync(target, timeout.Token).GetAwaiter().GetResult();
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
                {
                    console.Error.WriteLine($"tuntcp: error: connection to {target} refused (nothing listens there: the host answered with a reset)");
                    return ToolCommandLine.RunFailure;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
                {
                    console.Error.WriteLine($"tuntcp: error: connection to {target} timed out (no answer to the SYN)");
                    return ToolCommandLine.RunFailure;
                }
                catch (OperationCanceledException) when (!signals.Token.IsCancellationRequested)
                {
                    console.Error.WriteLine($"tuntcp: error: connection to {target} timed out after {settings.ConnectTimeout.TotalSeconds:0.#} s");
                    return ToolCommandLine.RunFailure;
                }
                catch (OperationCanceledException)
                {
                    return ToolCommandLine.Interrupted;
                }
            }
            console.Error.WriteLine($"tuntcp: connected {connection.LocalEndPoint} -> {connection.RemoteEndPoint}");
            using (connection)
            {
                var upload = CopyStdinAsync(stdin, connection, signals.Token);
                var download = CopyToStdoutAsync(connection, stdout, signals.Token);
                try
                {
                    Task.WaitAll([upload, download], signals.Token);
                    // Stdin's EOF only queued our FIN. The kernel would go on sending after nc
                    // exits; our stack ends with this process, so wait until the peer has
                    // acknowledged every byte and the FIN (the engine's retransmission limit
                    // bounds the wait; Ctrl-C aborts it).
                    connection.SendCompleted.Wait(signals.Token);
                }
                catch (OperationCanceledException)
                {
                    connection.Abort();
                    return ToolCommandLine.Interrupted;
                }
                catch (AggregateException e) when (e.InnerException is SocketException or IOException)
                {
                    var error = e.InnerException is SocketException se ? se : e.InnerException!.InnerException as SocketException;
                    string what = error?.SocketErrorCode switch
                    {
                        SocketError.ConnectionReset => "the connection was reset by the peer",
                        SocketError.TimedOut => "the connection timed out (no acknowledgement)",
                        _ => e.InnerException!.Message,
                    };
                    console.Error.WriteLine($"tuntcp: error: {what}");
                    return ToolCommandLine.RunFailure;
                }
                var stats = connection.GetStatisticsAsync().GetAwaiter().GetResult();
                console.Error.WriteLine($"tuntcp: done: {stats.BytesSent} bytes sent, {stats.BytesReceived} received, {stats.Retransmissions} retransmitted");
            }
            stack.ShutdownAsync(TimeSpan.FromSeconds(2)).Wait(TimeSpan.FromSeconds(5));
            return 0;
        });

    private static async Task CopyStdinAsync(Stream stdin, TunTcpConnection connection, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            int n = await stdin.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            await connection.SendAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        }
        connection.ShutdownSend();
    }

    private static async Task CopyToStdoutAsync(TunTcpConnection connection, Stream stdout, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            int n = await connection.ReceiveAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            await stdout.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        }
        await stdout.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
