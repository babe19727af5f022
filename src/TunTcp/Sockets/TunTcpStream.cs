using System.Net.Sockets;

namespace TunTcp.Sockets;

/// <summary>
/// A <see cref="Stream"/> over a <see cref="TunTcpConnection"/> with the semantics of
/// <see cref="NetworkStream"/>: not seekable, <see cref="Flush"/> does nothing, a read of 0
/// bytes means the peer closed, and transport errors are <see cref="IOException"/>s wrapping
/// a <see cref="SocketException"/>. Disposing the stream closes the connection.
/// </summary>
public sealed class TunTcpStream : Stream
{
    private readonly TunTcpConnection _connection;
    private bool _disposed;

    public TunTcpStream(TunTcpConnection connection) => _connection = connection;

    public TunTcpConnection Connection => _connection;

    public override bool CanRead => !_disposed;
    public override bool CanWrite => !_disposed;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException("A network stream has no length.");
    public override long Position
    {
        get => throw new NotSupportedException("A network stream has no position.");
        set => throw new NotSupportedException("A network stream cannot seek.");
    }

    /// <summary>True when data is waiting to be read.</summary>
    public bool DataAvailable => _connection.Available > 0;

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ValueTask<int> pending;
        try
        {
            pending = _connection.ReceiveAsync(buffer, cancellationToken);
            if (pending.IsCompletedSuccessfully) return pending;
        }
        catch (SocketException e)
        {
            return ValueTask.FromException<int>(Wrap(e, "read"));
        }
        return AwaitRead(pending);
    }

    private static async ValueTask<int> AwaitRead(ValueTask<int> pending)
    {
        try { return await pending.ConfigureAwait(false); }
        catch (SocketException e) { throw Wrap(e, "read"); }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try { return _connection.Receive(buffer); }
        catch (SocketException e) { throw Wrap(e, "read"); }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ValueTask<int> pending;
        try
        {
            pending = _connection.SendAsync(buffer, cancellationToken);
            if (pending.IsCompletedSuccessfully) return ValueTask.CompletedTask;
        }
        catch (SocketException e)
        {
            return ValueTask.FromException(Wrap(e, "write"));
        }
        return AwaitWrite(pending);
    }

    private static async ValueTask AwaitWrite(ValueTask<int> pending)
    {
        try { await pending.ConfigureAwait(false); }
        catch (SocketException e) { throw Wrap(e, "write"); }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try { _connection.Send(buffer); }
        catch (SocketException e) { throw Wrap(e, "write"); }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <summary>Does nothing: every write is handed to the stack at once, as with NetworkStream.</summary>
    public override void Flush() { }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException("A network stream cannot seek.");
    public override void SetLength(long value) => throw new NotSupportedException("A network stream has no length.");

    private static IOException Wrap(SocketException e, string operation) =>
        new($"Unable to {operation} data on the TunTcp connection: {e.Message}", e);

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _connection.Dispose();
        }
        base.Dispose(disposing);
    }
}
