using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using TunTcp.Sockets;

namespace TunTcp.AspNetCore;

/// <summary>
/// One accepted TunTcp connection as Kestrel sees it: a <see cref="ConnectionContext"/> whose
/// <see cref="IDuplexPipe"/> is fed by two loops, modelled on Kestrel's socket transport.
/// </summary>
/// <remarks>
/// <para>
/// Receive loop: wait until data is readable (no buffer held while idle), then
/// <c>GetMemory</c> -> <see cref="TunTcpConnection.ReceiveAsync"/> straight into the pipe's
/// memory -> <c>Advance</c>, repeated while the receive ring has more, then one
/// <c>FlushAsync</c>. A flush that does not complete is backpressure: Kestrel has
/// <see cref="TunTcpTransportOptions.MaxReadBufferSize"/> unread, the loop stops draining the
/// TCP receive ring, and the advertised window closes.
/// </para>
/// <para>
/// Send loop: <c>ReadAsync</c> -> <see cref="TunTcpConnection.SendAsync"/> of each segment of
/// the sequence, copied straight into the TCP send ring -> <c>AdvanceTo</c>. A full send ring
/// makes the send wait, the pipe fills to <see cref="TunTcpTransportOptions.MaxWriteBufferSize"/>
/// and Kestrel's flushes wait in turn.
/// </para>
/// <para>
/// Lifecycle, as Kestrel expects it: the peer's FIN or RST ends the receive loop, which
/// completes the input (with a <see cref="ConnectionResetException"/> for a reset) and fires
/// <see cref="ConnectionClosed"/>. Kestrel completing the output ends the send loop and closes
/// the connection gracefully (FIN after the queued data). <see cref="Abort(ConnectionAbortedException)"/>
/// with a reason resets it (RST); with a null reason (Kestrel's way of closing after the peer
/// closed) it closes gracefully, as the socket transport does. <see cref="DisposeAsync"/>
/// completes both pipes and waits for both loops.
/// </para>
/// </remarks>
internal sealed partial class TunTcpTransportConnection : ConnectionContext
{
    // Kestrel's pinned blocks are 4 KB; asking for at least half means a receive never lands in a sliver.
    private const int MinAllocBufferSize = 2048;

    // Upper bound of bytes moved from the receive ring between two flushes: one flush (and one
    // wake-up of Kestrel) per burst instead of per block, while backpressure is still checked often.
    private const int MaxReceivedPerFlush = 64 * 1024;

    private static long s_lastConnectionId = DateTime.UtcNow.Ticks;

    private readonly TunTcpConnection _connection;
    private readonly ILogger _logger;
    private readonly IDuplexPipe _originalTransport;
    private readonly PipeWriter _input;   // the transport's end of the input pipe: received bytes go in
    private readonly PipeReader _output;  // the transport's end of the output pipe: bytes to send come out
    private readonly CancellationTokenSource _connectionClosedSource = new();
    // Cancels the loops' waits on the TunTcp connection once the connection is shut down.
    private readonly CancellationTokenSource _shutdownSource = new();
    private readonly TaskCompletionSource _connectionClosedFired = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _shutdownLock = new();
    private volatile Exception? _shutdownReason;
    private int _connectionClosedQueued;
    private Task? _receiving;
    private Task? _sending;
    private string? _connectionId;
    private IDictionary<object, object?>? _items;

    public TunTcpTransportConnection(TunTcpConnection connection, MemoryPool<byte> memoryPool, TunTcpTransportOptions options, ILogger logger)
    {
        _connection = connection;
        _logger = logger;
        MemoryPool = memoryPool;
        LocalEndPoint = connection.LocalEndPoint;
        RemoteEndPoint = connection.RemoteEndPoint;
        ConnectionClosed = _connectionClosedSource.Token;

        long maxRead = options.MaxReadBufferSize ?? 0;
        long maxWrite = options.MaxWriteBufferSize ?? 0;
        // Input: we write on a thread-pool thread (resumed by the TunTcp connection), Kestrel
        // reads; a paused receive loop is resumed on the thread pool, never inside Kestrel's AdvanceTo.
        var inputOptions = new PipeOptions(memoryPool, readerScheduler: options.ApplicationScheduler, writerScheduler: PipeScheduler.ThreadPool,
            pauseWriterThreshold: maxRead, resumeWriterThreshold: maxRead / 2, useSynchronizationContext: false);
        // Output: the send loop runs inline in Kestrel's FlushAsync. It only copies into the send
        // ring and goes back to waiting, so the response leaves without a thread hop; when the
        // ring is full its continuation comes from the TunTcp connection on the thread pool.
        var outputOptions = new PipeOptions(memoryPool, readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.ThreadPool,
            pauseWriterThreshold: maxWrite, resumeWriterThreshold: maxWrite / 2, useSynchronizationContext: false);
        var input = new Pipe(inputOptions);
        var output = new Pipe(outputOptions);
        _input = input.Writer;
        _output = output.Reader;
        Transport = _originalTransport = new DuplexPipe(input.Reader, output.Writer);
    }

    /// <summary>The TunTcp connection underneath.</summary>
    public TunTcpConnection Connection => _connection;

    public MemoryPool<byte> MemoryPool { get; }

    public override IDuplexPipe Transport { get; set; }

    public override string ConnectionId
    {
        get => _connectionId ??= FormatConnectionId(Interlocked.Increment(ref s_lastConnectionId));
        set => _connectionId = value;
    }

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override CancellationToken ConnectionClosed { get; set; }

    public void Start()
    {
        _receiving = ReceiveLoopAsync();
        _sending = SendLoopAsync();
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        // Kestrel's HTTP/1.x passes null when the peer closed its side: that is a graceful close
        // (FIN), as in the socket transport; any real reason resets the connection.
        Shutdown(abortReason);
        // End the send loop; the data Kestrel had not handed over yet is dropped, as on a socket.
        _output.CancelPendingRead();
    }

    // Kestrel calls this once its connection middleware has finished with the connection.
    public override async ValueTask DisposeAsync()
    {
        _originalTransport.Input.Complete();
        _originalTransport.Output.Complete();
        try
        {
            if (_receiving is not null) await _receiving.ConfigureAwait(false);
            if (_sending is not null) await _sending.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            TransportLog.TransportFailure(_logger, ConnectionId, e);
        }
        // Normally already closed by Shutdown; this only marks the TunTcp connection disposed.
        _connection.Dispose();
        _connectionClosedSource.Dispose();
        _shutdownSource.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        Exception? error = null;
        var input = _input;
        try
        {
            var cancel = _shutdownSource.Token;
            while (true)
            {
                // A zero-length receive waits for data (or the end) without holding a pool block,
                // so idle keep-alive connections cost no buffer memory.
                await _connection.ReceiveAsync(Memory<byte>.Empty, cancel).ConfigureAwait(false);

                int received = 0;
                bool finished = false;
                do
                {
                    var buffer = input.GetMemory(MinAllocBufferSize);
                    int n = await _connection.ReceiveAsync(buffer, cancel).ConfigureAwait(false);
                    if (n == 0)
                    {
                        finished = true;
                        break;
                    }
                    input.Advance(n);
                    received += n;
                }
                while (received < MaxReceivedPerFlush && _connection.Available > 0);

                if (received > 0)
                {
                    var flush = input.FlushAsync();
                    bool paused = !flush.IsCompleted;
                    if (paused) TransportLog.ConnectionPause(_logger, ConnectionId);
                    var result = await flush.ConfigureAwait(false);
                    if (paused) TransportLog.ConnectionResume(_logger, ConnectionId);
                    // Kestrel stopped reading (completed or cancelled its input): nothing more to deliver.
                    if (result.IsCompleted || result.IsCanceled) break;
                }
                if (finished)
                {
                    TransportLog.ConnectionReadFin(_logger, ConnectionId);
                    break;
                }
            }
        }
        catch (Exception e)
        {
            error = MapReceiveError(e);
        }
        finally
        {
            // If Shutdown ran first, it is why the loop stopped; Kestrel should see that reason.
            input.Complete(_shutdownReason ?? error);
            FireConnectionClosed();
            await _connectionClosedFired.Task.ConfigureAwait(false);
        }
    }

    private Exception? MapReceiveError(Exception e)
    {
        if (_shutdownReason is not null)
        {
            // Our own shutdown cancelled the wait or aborted the connection: expected.
            return e;
        }
        switch (e)
        {
            case SocketException { SocketErrorCode: SocketError.ConnectionReset } reset:
                TransportLog.ConnectionReset(_logger, ConnectionId);
                return new ConnectionResetException(reset.Message, reset);
            case SocketException socket:
                // Timed out (retransmissions or keepalive ran out) or aborted underneath us.
                TransportLog.ConnectionError(_logger, ConnectionId, socket);
                return new ConnectionAbortedException(socket.Message, socket);
            case OperationCanceledException or ObjectDisposedException:
                return new ConnectionAbortedException("The TunTcp connection was closed.", e);
            default:
                TransportLog.TransportFailure(_logger, ConnectionId, e);
                return e;
        }
    }

    private async Task SendLoopAsync()
    {
        Exception? shutdownReason = null;
        Exception? unexpected = null;
        var output = _output;
        try
        {
            var cancel = _shutdownSource.Token;
            while (true)
            {
                var result = await output.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled) break; // Abort
                var buffer = result.Buffer;
                if (buffer.IsSingleSegment)
                {
                    if (!buffer.IsEmpty) await _connection.SendAsync(buffer.First, cancel).ConfigureAwait(false);
                }
                else
                {
                    foreach (var segment in buffer)
                        await _connection.SendAsync(segment, cancel).ConfigureAwait(false);
                }
                output.AdvanceTo(buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown)
        {
            shutdownReason = new ConnectionResetException(e.Message, e);
            TransportLog.ConnectionReset(_logger, ConnectionId);
        }
        catch (SocketException e)
        {
            shutdownReason = new ConnectionAbortedException(e.Message, e);
            if (_shutdownReason is null) TransportLog.ConnectionError(_logger, ConnectionId, e);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            // Shutdown already ran (it cancels our waits); the reason recorded there stands.
            shutdownReason = new ConnectionAbortedException("The TunTcp connection was closed.", e);
        }
        catch (Exception e)
        {
            shutdownReason = unexpected = e;
            TransportLog.TransportFailure(_logger, ConnectionId, e);
        }
        finally
        {
            Shutdown(shutdownReason);
            output.Complete(unexpected);
            // Un-pause a receive loop waiting for Kestrel to read: it must see the shutdown.
            _input.CancelPendingFlush();
        }
    }

    /// <summary>
    /// Closes the TunTcp connection once: gracefully (FIN after the queued data) when
    /// <paramref name="reason"/> is null, the send loop having finished normally; with a reset
    /// otherwise.
    /// </summary>
    private void Shutdown(Exception? reason)
    {
        lock (_shutdownLock)
        {
            if (_shutdownReason is not null) return;
            // Set before closing, so a loop that fails because of the close sees it was expected.
            _shutdownReason = reason ?? new ConnectionAbortedException("The TunTcp transport's send loop completed gracefully.");
            if (reason is not null)
            {
                TransportLog.ConnectionWriteRst(_logger, ConnectionId, reason.Message);
                _connection.Abort();
            }
            else
            {
                TransportLog.ConnectionWriteFin(_logger, ConnectionId, _shutdownReason.Message);
                // RFC 1122 4.2.2.13, like close(2): a reset instead if received data was left unread.
                _connection.Dispose();
            }
        }
        // Wake a loop waiting on the connection; its continuation runs on the thread pool.
        _shutdownSource.Cancel();
    }

    private void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _connectionClosedQueued, 1) != 0) return;
        // Kestrel's callbacks on ConnectionClosed must not run inside the receive loop.
        ThreadPool.UnsafeQueueUserWorkItem(static self =>
        {
            try
            {
                self._connectionClosedSource.Cancel();
            }
            catch (Exception e)
            {
                TransportLog.TransportFailure(self._logger, self.ConnectionId, e);
            }
            self._connectionClosedFired.TrySetResult();
        }, this, preferLocal: false);
    }

    /// <summary>13 characters of base32 like Kestrel's connection ids, from a per-process counter.</summary>
    private static string FormatConnectionId(long id) => string.Create(13, id, static (span, value) =>
    {
        const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
        for (int i = 12; i >= 0; i--)
        {
            span[i] = Alphabet[(int)(value & 31)];
            value >>= 5;
        }
    });

    public override string ToString() => $"{ConnectionId} {RemoteEndPoint} -> {LocalEndPoint}";

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}
