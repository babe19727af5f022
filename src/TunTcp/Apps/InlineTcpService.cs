using Microsoft.Extensions.Logging;
using TunTcp.Ip;
using TunTcp.Tcp;

namespace TunTcp.Apps;

/// <summary>
/// A TCP service whose handlers run on the stack thread itself, reacting to connection events
/// by moving bytes between the connection's rings. A thread hop costs more here than
/// the whole TUN round trip, so built-in apps (echo, discard, chargen) take none. Handlers must
/// not block; they ask for engine work through <see cref="NetStackCore.MarkReady"/>, which the
/// stack runs after the current event, so the engine is never re-entered.
/// </summary>
internal abstract class InlineTcpService : ITcpListenObserver
{
    private readonly NetStackCore _core;

    protected InlineTcpService(NetStackCore core, ushort port, int backlog, ILogger logger)
    {
        _core = core;
        Logger = logger;
        Listener = core.Listen(Wire.IpAddress.AnyV6, port, backlog); // both families (dual mode), as a Socket on [::]
        Listener.Observer = this;
    }

    public TcpListenQueue Listener { get; }

    public ILogger Logger { get; }

    public abstract string Name { get; }

    public long ConnectionsAccepted { get; private set; }

    protected abstract InlineTcpHandler CreateHandler(NetStackCore core, TcpConnection connection, ConnectionEntry entry);

    void ITcpListenObserver.OnAcceptable(TcpListenQueue listener)
    {
        while (listener.TryAccept(out var connection))
        {
            var entry = _core.FindEntry(connection);
            if (entry is null) continue; // reset before we got to it
            ConnectionsAccepted++;
            var handler = CreateHandler(_core, connection, entry);
            connection.Observer = handler;
            handler.Start();
        }
    }

    /// <summary>Stops listening (stack thread only); open connections carry on.</summary>
    public void Stop() => _core.StopListening(Listener, _core.Now);
}

/// <summary>Per-connection logic of an <see cref="InlineTcpService"/>, on the stack thread.</summary>
internal abstract class InlineTcpHandler : ITcpConnectionObserver
{
    private readonly InlineTcpService _service;
    private bool _closedLogged;

    protected InlineTcpHandler(InlineTcpService service, NetStackCore core, TcpConnection connection, ConnectionEntry entry)
    {
        _service = service;
        Core = core;
        Connection = connection;
        Entry = entry;
    }

    protected NetStackCore Core { get; }
    protected TcpConnection Connection { get; }
    protected ConnectionEntry Entry { get; }

    /// <summary>Called once, right after accept: process whatever already arrived.</summary>
    public void Start()
    {
        if (_service.Logger.IsEnabled(LogLevel.Information))
            _service.Logger.LogInformation("{Service}: connection from {Remote} opened", _service.Name, Connection.Tuple.RemoteAddress.WithPort(Connection.Tuple.RemotePort));
        OnEvents(Connection, TcpConnectionEvents.Readable | TcpConnectionEvents.Writable | (Connection.State == TcpConnectionState.Closed ? TcpConnectionEvents.Closed : 0));
    }

    public void OnEvents(TcpConnection connection, TcpConnectionEvents events)
    {
        if (Connection.State != TcpConnectionState.Closed || (events & TcpConnectionEvents.Readable) != 0) OnActivity(events);
        if ((events & TcpConnectionEvents.Closed) != 0 && !_closedLogged)
        {
            _closedLogged = true;
            if (_service.Logger.IsEnabled(LogLevel.Information))
                _service.Logger.LogInformation("{Service}: connection from {Remote} closed ({Reason}), {Received} bytes in, {Sent} bytes out",
                    _service.Name, Connection.Tuple.RemoteAddress.WithPort(Connection.Tuple.RemotePort),
                    Connection.Error == TcpError.None ? "normal" : Connection.Error.ToString(), Connection.BytesReceived, Connection.BytesSent);
        }
    }

    /// <summary>React to readable/writable/closed; called on the stack thread.</summary>
    protected abstract void OnActivity(TcpConnectionEvents events);

    protected void Request(PendingWork work) => Core.MarkReady(Entry, work);

    private bool _halfClosed;

    /// <summary>Half-closes once: a FIN after whatever is queued; later calls do nothing.</summary>
    protected void HalfCloseOnce()
    {
        if (_halfClosed) return;
        _halfClosed = true;
        Request(PendingWork.ShutdownSend);
    }

    /// <summary>Releases everything received without copying it (and lets the window reopen).</summary>
    protected void DiscardReceived()
    {
        var rx = Connection.ReceiveBuffer;
        int n = rx.Count;
        if (n == 0) return;
        rx.Consume(n);
        Request(PendingWork.ReceiveBufferRead);
    }
}
