using System.Buffers;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using TunTcp.Ip;
using TunTcp.Sockets;

namespace TunTcp.AspNetCore;

/// <summary>A bound TunTcp port as Kestrel sees it: accepts until unbound, then returns null.</summary>
internal sealed class TunTcpConnectionListener : IConnectionListener
{
    private readonly NetStack _stack;
    private readonly TunTcpListener _listener;
    private readonly MemoryPool<byte> _memoryPool;
    private readonly bool _ownsMemoryPool;
    private readonly TunTcpTransportOptions _options;
    private readonly ILogger _logger;

    /// <param name="ownsMemoryPool">True when the pool was made for this listener (and is disposed with it).</param>
    public TunTcpConnectionListener(NetStack stack, TunTcpListener listener, TunTcpEndPoint endPoint, MemoryPool<byte> memoryPool, bool ownsMemoryPool, TunTcpTransportOptions options, ILogger logger)
    {
        _stack = stack;
        _listener = listener;
        _memoryPool = memoryPool;
        _ownsMemoryPool = ownsMemoryPool;
        _options = options;
        _logger = logger;
        EndPoint = endPoint;
    }

    /// <summary>The bound <see cref="TunTcpEndPoint"/>, with the port the stack chose when asked for 0.</summary>
    public EndPoint EndPoint { get; }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        TunTcpConnection accepted;
        try
        {
            accepted = await _listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // Unbound: Kestrel's accept loop ends on null.
            return null;
        }
        if (accepted.NoDelay != _options.NoDelay) accepted.NoDelay = _options.NoDelay;
        // A connection the peer reset while it waited in the backlog is handed over all the same;
        // its receive loop reports the reset at once, as a socket accepted late would.
        var connection = new TunTcpTransportConnection(accepted, _memoryPool, _options, _logger);
        connection.Start();
        return connection;
    }

    /// <summary>
    /// Stops listening: a pending accept returns null, connections not yet accepted are reset,
    /// and once this completes a new SYN to the port is refused, as after closing a socket.
    /// </summary>
    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _listener.Dispose();
        try
        {
            // The stack runs commands in order: when this no-op has run, so has the stop. A stack
            // thread that died runs nothing more, so its end counts as done too.
            var barrier = _stack.Invoke(static (_, _) => true);
            await Task.WhenAny(barrier, _stack.Completion).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // The stack is gone, and its listeners with it.
        }
    }

    // Kestrel disposes a listener after its connections are gone, so the pool is free to go.
    public ValueTask DisposeAsync()
    {
        _listener.Dispose();
        if (_ownsMemoryPool) _memoryPool.Dispose();
        return ValueTask.CompletedTask;
    }
}
