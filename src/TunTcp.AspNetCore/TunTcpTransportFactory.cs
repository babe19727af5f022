using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TunTcp.Ip;
using TunTcp.Sockets;

namespace TunTcp.AspNetCore;

/// <summary>
/// Kestrel's transport for TunTcp: binds <see cref="TunTcpEndPoint"/>s and nothing else
/// (<see cref="CanBind"/>), so Kestrel's socket transport keeps serving ordinary endpoints of the
/// same app. Registered by <c>UseTunTcp</c>.
/// </summary>
public sealed class TunTcpTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly TunTcpTransportOptions _options;
    private readonly ILogger _logger;
    private readonly IMemoryPoolFactory<byte>? _memoryPoolFactory;
    private readonly IServiceProvider? _services;

    /// <param name="memoryPoolFactories">Kestrel's pinned-block pool factory when the host has one; otherwise the shared array pool is used.</param>
    /// <param name="services">Where a <see cref="NetStack"/> registered in the container (by <c>AddTunTcp</c> of TunTcp.Hosting) is found when neither the endpoint nor the options name a stack.</param>
    public TunTcpTransportFactory(IOptions<TunTcpTransportOptions> options, ILoggerFactory loggerFactory, IEnumerable<IMemoryPoolFactory<byte>> memoryPoolFactories, IServiceProvider? services = null)
    {
        _services = services;
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _options = options.Value;
        // The category of Kestrel's socket transport with ours beside it, so filters read alike.
        _logger = loggerFactory.CreateLogger("TunTcp.AspNetCore.Transport");
        _memoryPoolFactory = memoryPoolFactories.LastOrDefault();
    }

    public bool CanBind(EndPoint endpoint) => endpoint is TunTcpEndPoint;

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not TunTcpEndPoint tun)
            throw new NotSupportedException($"The TunTcp transport binds only {nameof(TunTcpEndPoint)}s, not {endpoint.GetType().Name} '{endpoint}'.");
        var stack = tun.Stack ?? _options.Stack ?? (NetStack?)_services?.GetService(typeof(NetStack))
            ?? throw new InvalidOperationException($"{nameof(TunTcpEndPoint)} '{tun}' names no stack and the TunTcp transport has no default one: pass a stack to UseTunTcp or to the endpoint, or register one (services.AddTunTcp() of TunTcp.Hosting).");
        TunTcpListener listener;
        try
        {
            listener = await stack.ListenTcpAsync(tun.IPEndPoint, _options.Backlog, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            // Kestrel knows this one and reports it as such.
            throw new AddressInUseException($"TunTcp port {tun.IPEndPoint} is already in use.", e);
        }
        var bound = new TunTcpEndPoint(listener.LocalEndPoint, tun.Stack);
        // One pool per listener, as Kestrel's socket transport has: Kestrel's pinned 4 KB blocks when
        // the host provides its factory, else the process-wide array pool (which is never disposed).
        var pool = _memoryPoolFactory?.Create(new MemoryPoolOptions { Owner = "tuntcp" });
        TransportLog.Bound(_logger, bound.ToString());
        return new TunTcpConnectionListener(stack, listener, bound, pool ?? MemoryPool<byte>.Shared, ownsMemoryPool: pool is not null, _options, _logger);
    }
}
