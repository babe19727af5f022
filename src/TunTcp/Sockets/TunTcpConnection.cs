using System.Net;
using System.Net.Sockets;
using TunTcp.Ip;
using TunTcp.Tcp;

namespace TunTcp.Sockets;

/// <summary>
/// A TCP connection on a TunTcp stack, used like a connected <see cref="Socket"/>:
/// <see cref="ReceiveAsync"/> (0 bytes means the peer closed), <see cref="SendAsync"/> (returns
/// once all bytes are queued; waits while the send buffer is full), <see cref="ShutdownSend"/>,
/// <see cref="Abort"/>, and a <see cref="Stream"/> view from <see cref="GetStream"/>. Safe for
/// one reader and one writer at a time, like a socket. Data moves through the connection's
/// rings without a thread hop when it can: a receive with data waiting completes synchronously.
/// Errors are <see cref="SocketException"/>s with the usual codes (ConnectionRefused,
/// ConnectionReset, TimedOut, ConnectionAborted, Shutdown).
/// </summary>
public sealed class TunTcpConnection : ITcpConnectionObserver, IDisposable, IAsyncDisposable
{
    private readonly NetStack _stack;
    private readonly TcpConnection _tcp;
    private readonly ConnectionEntry? _entry;
    private readonly AsyncSignal _readable = new();
    private readonly AsyncSignal _writable = new();
    private readonly TaskCompletionSource _established = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _sendCompleted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _peerFin;
    private volatile bool _closed;
    private volatile int _error;
    private volatile bool _sendShutdown;
    private volatile bool _receiveShutdown;
    private volatile bool _disposed;
    private bool _noDelay;
    private bool _keepAlive;

    /// <summary>Created on the stack thread once the engine connection exists.</summary>
    internal TunTcpConnection(NetStack stack, TcpConnection tcp, ConnectionEntry? entry)
    {
        _stack = stack;
        _tcp = tcp;
        _entry = entry;
        _noDelay = tcp.NoDelay;
        _keepAlive = tcp.KeepaliveEnabled;
        LocalEndPoint = new IPEndPoint(tcp.Tuple.LocalAddress.ToIPAddress(), tcp.Tuple.LocalPort);
        RemoteEndPoint = new IPEndPoint(tcp.Tuple.RemoteAddress.ToIPAddress(), tcp.Tuple.RemotePort);
        // Events raised before this object existed (data, FIN, reset while queued for accept) are read from the engine.
        _peerFin = tcp.PeerFinReceived;
        if (tcp.IsSynchronized) _established.TrySetResult();
        if (tcp.State is TcpConnectionState.FinWait2 or TcpConnectionState.TimeWait) _sendCompleted.TrySetResult();
        if (tcp.State == TcpConnectionState.Closed || entry is null) MarkClosed(tcp.Error);
        tcp.Observer = this;
    }

    public IPEndPoint LocalEndPoint { get; }
    public IPEndPoint RemoteEndPoint { get; }

    /// <summary>The engine's state (a racy snapshot when read off the stack thread).</summary>
    public TcpConnectionState State => _tcp.State;

    /// <summary>Why the connection failed, or <see cref="TcpError.None"/>.</summary>
    public TcpError Error => (TcpError)_error;

    /// <summary>True once the peer has closed its side (its FIN arrived).</summary>
    public bool PeerClosed => _peerFin;

    /// <summary>Nagle's algorithm off (like TCP_NODELAY).</summary>
    public bool NoDelay
    {
        get => _noDelay;
        set { _noDelay = value; _stack.Post((_, _) => _tcp.NoDelay = value); }
    }

    /// <summary>RFC 1122 keepalive probes on this connection (like SO_KEEPALIVE).</summary>
    public bool KeepAlive
    {
        get => _keepAlive;
        set { _keepAlive = value; _stack.Post((_, _) => _tcp.KeepaliveEnabled = value); }
    }

    public int SendBufferSize => _tcp.SendBuffer.Capacity;
    public int ReceiveBufferSize => _tcp.ReceiveBuffer.Capacity;

    /// <summary>Bytes waiting to be read.</summary>
    public int Available => _tcp.ReceiveBuffer.Count;

    /// <summary>The engine connection (advanced use; only the stack thread may call its methods).</summary>
    internal TcpConnection Engine => _tcp;

    /// <summary>
    /// Completes once the peer has acknowledged everything sent, the FIN included (after
    /// <see cref="ShutdownSend"/> or <see cref="Dispose"/>); faults with a
    /// <see cref="SocketException"/> if the connection fails or is aborted first. The stack, not
    /// the kernel, holds unacknowledged data: a process that ends after closing a connection must
    /// wait for this (and keep the stack running), or its last bytes die with it.
    /// </summary>
    public Task SendCompleted => _sendCompleted.Task;

    /// <summary>Live statistics, read on the stack thread.</summary>
    public Task<TcpConnectionStatistics> GetStatisticsAsync() => _stack.Invoke((_, _) => _tcp.GetStatistics());

    /// <summary>A <see cref="NetworkStream"/>-like view; disposing it closes the connection.</summary>
    public TunTcpStream GetStream() => new(this);

    // ---- receiving ----

    /// <summary>
    /// Receives up to <paramref name="buffer"/>.Length bytes; 0 means the peer closed (or, for an
    /// empty buffer, that data is available). Completes synchronously when data is waiting.
    /// </summary>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_receiveShutdown) return new ValueTask<int>(0);
        if (buffer.Length == 0)
        {
            if (_tcp.ReceiveBuffer.Count > 0 || _peerFin || _closed) return ThrowIfFailedOrZero();
            return WaitReadableAsync(cancellationToken);
        }
        int n = TryRead(buffer.Span);
        if (n > 0) return new ValueTask<int>(n);
        if (IsEndOfStream(out var end)) return end;
        return ReceiveSlowAsync(buffer, cancellationToken);
    }

    /// <summary>
    /// Synchronous receive (blocks while no data is waiting), straight into <paramref name="buffer"/>:
    /// it waits on the connection's own signal and allocates nothing unless it must block.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called on the stack thread, which it would deadlock.</exception>
    public int Receive(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_receiveShutdown) return 0;
        while (true)
        {
            int n = TryRead(buffer);
            if (n > 0 || buffer.Length == 0) return n;
            if (IsEndOfStream(out var end)) return end.GetAwaiter().GetResult();
            BlockOn(_readable);
        }
    }

    /// <summary>Waits for <paramref name="signal"/> on this thread; never on the stack thread, which alone can set it.</summary>
    private void BlockOn(AsyncSignal signal)
    {
        if (_stack.IsStackThread)
            throw new InvalidOperationException("A synchronous receive or send on the stack thread would wait for the stack thread itself; use the async methods or the connection's events.");
        signal.Wait();
    }

    private async ValueTask<int> ReceiveSlowAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            await _readable.WaitAsync(cancellationToken).ConfigureAwait(false);
            int n = TryRead(buffer.Span);
            if (n > 0) return n;
            if (IsEndOfStream(out var end)) return await end.ConfigureAwait(false);
        }
    }

    private async ValueTask<int> WaitReadableAsync(CancellationToken cancellationToken)
    {
        while (_tcp.ReceiveBuffer.Count == 0 && !_peerFin && !_closed)
            await _readable.WaitAsync(cancellationToken).ConfigureAwait(false);
        return await ThrowIfFailedOrZero().ConfigureAwait(false);
    }

    /// <summary>After a failed read attempt: end of stream (0), an error, or still open (false).</summary>
    private bool IsEndOfStream(out ValueTask<int> result)
    {
        // The FIN flag is published after the data before it, so an empty ring now means EOF.
        if ((_peerFin || _closed) && _tcp.ReceiveBuffer.Count == 0)
        {
            result = ThrowIfFailedOrZero();
            return true;
        }
        result = default;
        return false;
    }

    private ValueTask<int> ThrowIfFailedOrZero()
    {
        var error = (TcpError)_error;
        if (error != TcpError.None && !_peerFin) return ValueTask.FromException<int>(ToSocketException(error));
        return new ValueTask<int>(0);
    }

    private int TryRead(Span<byte> destination)
    {
        var ring = _tcp.ReceiveBuffer;
        int freeBefore = ring.Free;
        int n = ring.Read(destination);
        // Tell the stack only when the window it advertised may have become small; while data
        // flows its ACKs carry the updated window anyway.
        if (n > 0 && freeBefore < ring.Capacity / 2 && _entry is not null && !_closed)
            _stack.Core.MarkReady(_entry, PendingWork.ReceiveBufferRead);
        return n;
    }

    // ---- sending ----

    /// <summary>Queues all of <paramref name="data"/> for sending; waits while the send buffer is full.</summary>
    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (CheckCanSend() is SocketException e) return ValueTask.FromException<int>(e);
        int n = _tcp.SendBuffer.Write(data.Span);
        if (n > 0) NotifySent();
        if (n == data.Length) return new ValueTask<int>(n);
        return SendSlowAsync(data, n, cancellationToken);
    }

    /// <summary>
    /// Synchronous send (blocks while the send buffer is full), straight from <paramref name="data"/>:
    /// no copy, no allocation unless it must block.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called on the stack thread with the buffer full, which would deadlock.</exception>
    public int Send(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int sent = 0;
        while (true)
        {
            if (CheckCanSend() is SocketException e) throw e;
            int n = _tcp.SendBuffer.Write(data[sent..]);
            if (n > 0) { sent += n; NotifySent(); }
            if (sent == data.Length) return sent;
            BlockOn(_writable);
        }
    }

    private async ValueTask<int> SendSlowAsync(ReadOnlyMemory<byte> data, int sent, CancellationToken cancellationToken)
    {
        while (sent < data.Length)
        {
            await _writable.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (CheckCanSend() is SocketException e) throw e;
            int n = _tcp.SendBuffer.Write(data.Span[sent..]);
            if (n > 0) { sent += n; NotifySent(); }
        }
        return sent;
    }

    private SocketException? CheckCanSend()
    {
        if (_closed) return ToSocketException((TcpError)_error == TcpError.None ? TcpError.Aborted : (TcpError)_error);
        if (_sendShutdown) return new SocketException((int)SocketError.Shutdown);
        return null;
    }

    private void NotifySent()
    {
        if (_entry is not null) _stack.Core.MarkReady(_entry, PendingWork.SendBufferWritten);
    }

    /// <summary>
    /// Like <see cref="Socket.Shutdown"/>: <see cref="SocketShutdown.Send"/> half-closes (a FIN
    /// follows the queued data; receiving goes on); <see cref="SocketShutdown.Receive"/> makes
    /// every later receive return 0 at once (as Linux's SHUT_RD: data the peer still sends is
    /// acknowledged and kept, and a close with it unread resets the connection);
    /// <see cref="SocketShutdown.Both"/> does both.
    /// </summary>
    public void Shutdown(SocketShutdown how)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (how is not (SocketShutdown.Send or SocketShutdown.Receive or SocketShutdown.Both))
            throw new ArgumentOutOfRangeException(nameof(how), how, "Send, Receive or Both");
        if (how != SocketShutdown.Send)
        {
            _receiveShutdown = true;
            _readable.Set();
        }
        if (how != SocketShutdown.Receive) ShutdownSend();
    }

    /// <summary>Half-close: a FIN follows the queued data; receiving goes on (Shutdown(Send)).</summary>
    internal void ShutdownSend()
    {
        if (_sendShutdown) return;
        _sendShutdown = true;
        _stack.Post((core, now) => core.ShutdownSend(_tcp, now));
    }

    /// <summary>Resets the connection (RST); pending data is discarded.</summary>
    public void Abort()
    {
        _sendShutdown = true;
        _stack.Post((core, now) => core.Abort(_tcp, now));
    }

    /// <summary>Waits until the handshake completes (active open).</summary>
    internal async Task WaitEstablishedAsync(CancellationToken cancellationToken)
    {
        using (cancellationToken.UnsafeRegister(static s => ((TunTcpConnection)s!)._established.TrySetCanceled(), this))
        {
            try
            {
                await _established.Task.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Abort();
                throw new OperationCanceledException(cancellationToken);
            }
        }
    }

    // ---- events from the stack thread ----

    void ITcpConnectionObserver.OnEvents(TcpConnection connection, TcpConnectionEvents events)
    {
        if ((events & TcpConnectionEvents.Established) != 0) _established.TrySetResult();
        // Before Closed: LAST-ACK to CLOSED raises both at once.
        if ((events & TcpConnectionEvents.SendCompleted) != 0) _sendCompleted.TrySetResult();
        if ((events & TcpConnectionEvents.Closed) != 0) MarkClosed(connection.Error);
        if ((events & TcpConnectionEvents.Readable) != 0)
        {
            if (connection.PeerFinReceived) _peerFin = true;
            _readable.Set();
        }
        if ((events & TcpConnectionEvents.Writable) != 0) _writable.Set();
    }

    private void MarkClosed(TcpError error)
    {
        _error = (int)error;
        _closed = true;
        _readable.Set();
        _writable.Set();
        if (error != TcpError.None) _established.TrySetException(ToSocketException(error));
        else _established.TrySetException(new SocketException((int)SocketError.ConnectionAborted));
        // Closed before our FIN was acknowledged. Without an error that is a reset in CLOSING or
        // LAST-ACK, which RFC 9293 3.10.7.4 does not report, but the peer may not have our data.
        _sendCompleted.TrySetException(ToSocketException(error == TcpError.None ? TcpError.ConnectionReset : error));
    }

    internal static SocketException ToSocketException(TcpError error) => new((int)(error switch
    {
        TcpError.ConnectionRefused => SocketError.ConnectionRefused,
        TcpError.ConnectionReset => SocketError.ConnectionReset,
        TcpError.TimedOut => SocketError.TimedOut,
        TcpError.Aborted => SocketError.ConnectionAborted,
        TcpError.HostUnreachable => SocketError.HostUnreachable,
        TcpError.NetworkUnreachable => SocketError.NetworkUnreachable,
        _ => SocketError.NotConnected,
    }));

    /// <summary>
    /// Closes the connection like <see cref="Socket.Close()"/>: a FIN after the queued data; if
    /// unread data is left, a reset instead (RFC 1122 4.2.2.13).
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _sendShutdown = true;
        if (_closed) return;
        try
        {
            _stack.Post((core, now) => core.Close(_tcp, now));
        }
        catch (ObjectDisposedException)
        {
            // The stack is gone; so is the connection.
        }
    }

    /// <summary>Closes like <see cref="Dispose"/> (the close itself never waits).</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Closes with a linger time, like <see cref="Socket.Close(int)"/> or a
    /// <see cref="LingerOption"/>: a FIN after the queued data, then waits up to
    /// <paramref name="linger"/> for the peer to acknowledge all of it; if it has not by then (or
    /// <paramref name="linger"/> is zero, or <paramref name="cancellationToken"/> fires), the
    /// connection is reset and the unsent data discarded. Returns true if everything was delivered.
    /// </summary>
    public async ValueTask<bool> CloseAsync(TimeSpan linger, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(linger, TimeSpan.Zero);
        if (linger == TimeSpan.Zero)
        {
            bool delivered = _sendCompleted.Task.IsCompletedSuccessfully;
            if (!delivered && !_closed) Abort();
            Dispose();
            return delivered;
        }
        Dispose();
        try
        {
            await _sendCompleted.Task.WaitAsync(linger, _stack.Time, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            try
            {
                if (!_closed) _stack.Post((core, now) => core.Abort(_tcp, now));
            }
            catch (ObjectDisposedException)
            {
                // The stack is gone; so is the connection.
            }
            return false;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public override string ToString() => $"{LocalEndPoint} <-> {RemoteEndPoint} {State}";
}
