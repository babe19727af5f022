using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using TunTcp.Ip;
using TunTcp.Tcp;

namespace TunTcp.Sockets;

/// <summary>
/// A listening TCP port on a TunTcp stack, used like <see cref="TcpListener"/>:
/// <see cref="AcceptAsync"/> returns connected <see cref="TunTcpConnection"/>s. At most
/// <see cref="Backlog"/> completed connections wait for acceptance (further handshakes are held
/// back, as Linux does), and at most <see cref="TcpSettings.SynBacklog"/> half-open ones.
/// </summary>
public sealed class TunTcpListener : ITcpListenObserver, IDisposable, IAsyncDisposable
{
    private readonly NetStack _stack;
    private readonly TcpListenQueue _queue;
    private readonly ConcurrentQueue<TunTcpConnection> _ready = new();
    private readonly AsyncSignal _acceptable = new();
    private volatile bool _stopped;

    internal TunTcpListener(NetStack stack, TcpListenQueue queue)
    {
        _stack = stack;
        _queue = queue;
        LocalEndPoint = new IPEndPoint(queue.LocalAddress.ToIPAddress(), queue.Port);
        queue.Observer = this;
    }

    public IPEndPoint LocalEndPoint { get; }

    public int Backlog => _queue.Backlog;

    /// <summary>Waits for the next connection. Throws <see cref="ObjectDisposedException"/> once stopped.</summary>
    public async ValueTask<TunTcpConnection> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            ObjectDisposedException.ThrowIf(_stopped, this);
            if (_ready.TryDequeue(out var connection))
            {
                // Room in the ready queue again: let the stack move more completed connections up.
                _stack.Post((core, _) => MoveAccepted(core));
                return connection;
            }
            await _acceptable.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    void ITcpListenObserver.OnAcceptable(TcpListenQueue listener) => MoveAccepted(_stack.Core);

    /// <summary>Stack thread: wraps completed connections, keeping at most a backlog of them ready.</summary>
    private void MoveAccepted(NetStackCore core)
    {
        bool any = false;
        while (_ready.Count < _queue.Backlog && _queue.TryAccept(out var tcp))
        {
            _ready.Enqueue(new TunTcpConnection(_stack, tcp, core.FindEntry(tcp)));
            any = true;
        }
        if (any) _acceptable.Set();
    }

    /// <summary>Stops listening; connections not yet accepted are reset.</summary>
    public void Dispose()
    {
        if (_stopped) return;
        _stopped = true;
        _acceptable.Set();
        try
        {
            _stack.Post((core, now) =>
            {
                core.StopListening(_queue, now);
                while (_ready.TryDequeue(out var c)) c.Abort();
            });
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Stops listening, like <see cref="Dispose"/> (it never waits).</summary>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
