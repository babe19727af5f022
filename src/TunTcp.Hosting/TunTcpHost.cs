using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TunTcp.Ip;
using TunTcp.Links;

namespace TunTcp.Hosting;

/// <summary>
/// Owns one TUN device (or the configured link) and the <see cref="NetStack"/> on it for the life
/// of the host: opened on first use of <see cref="Stack"/> or when the host starts, whichever
/// comes first (so a hosted service or Kestrel that starts earlier still finds it), and shut down
/// in order when the host stops: FIN on every connection, <see cref="TunTcpHostOptions.ShutdownGrace"/>
/// to finish, resets for the rest, then the device and what was created around it are removed.
/// </summary>
public sealed class TunTcpHost : IHostedService, IAsyncDisposable
{
    private readonly TunTcpHostOptions _options;
    private readonly IServiceProvider _services;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private NetStack? _stack;
    private TunInterface? _interface;
    private ILinkDevice? _link;
    private bool _stopped;

    /// <summary>Made by dependency injection (see <c>AddTunTcp</c>).</summary>
    public TunTcpHost(IOptions<TunTcpHostOptions> options, IServiceProvider services, ILoggerFactory? loggerFactory = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        _options = options.Value;
        _services = services;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger("TunTcp.Hosting");
        _time = time ?? TimeProvider.System;
    }

    /// <summary>
    /// The running stack, opened on first use. Throws <see cref="LinkSetupException"/> when the
    /// device cannot be set up (not root, a taken name, a bad address: the message says which),
    /// and <see cref="ObjectDisposedException"/> once the host has stopped.
    /// </summary>
    public NetStack Stack
    {
        get
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_stopped, this);
                return _stack ??= Open();
            }
        }
    }

    /// <summary>The TUN interface the host created (null with a link of the application's own, or before opening).</summary>
    public TunInterface? Interface
    {
        get { lock (_gate) return _interface; }
    }

    /// <summary>True once the stack runs and until the host stops.</summary>
    public bool IsRunning
    {
        get { lock (_gate) return _stack is { Completion.IsCompleted: false } && !_stopped; }
    }

    private NetStack Open()
    {
        TunInterface? tun = null;
        ILinkDevice link;
        try
        {
            if (_options.Link is { } factory)
            {
                link = factory(_services);
            }
            else
            {
                tun = TunInterface.Open(_options.Interface, _loggerFactory.CreateLogger<TunInterface>());
                link = tun.Device;
            }
        }
        catch
        {
            tun?.Dispose();
            throw;
        }
        var stackOptions = _options.Stack;
        if (stackOptions.Address is null && stackOptions.Address6 is null)
        {
            bool v6 = _options.Link is not null || _options.Interface.HostAddress6 is not null;
            stackOptions = stackOptions with { Address = TunTcpHostOptions.DefaultAddress, Address6 = v6 ? TunTcpHostOptions.DefaultAddress6 : null };
        }
        if (tun is not null) stackOptions = stackOptions with { Mtu = tun.Options.Mtu };
        var stack = new NetStack(link, stackOptions, _time, _loggerFactory);
        try
        {
            stack.Start();
        }
        catch
        {
            stack.Dispose();
            link.Dispose();
            tun?.Dispose();
            throw;
        }
        _interface = tun;
        _link = link;
        _logger.LogInformation("TunTcp stack {Addresses} running on {Link}",
            string.Join(", ", new[] { stackOptions.Address, stackOptions.Address6 }.Where(a => a is not null)),
            tun?.Describe() ?? link.GetType().Name);
        return stack;
    }

    /// <summary>Opens the device and starts the stack, if nothing has used it yet.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = Stack;
        return Task.CompletedTask;
    }

    /// <summary>Orderly shutdown (see the class summary); the token cuts the grace period short.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        NetStack? stack;
        lock (_gate)
        {
            if (_stopped) return;
            _stopped = true;
            stack = _stack;
        }
        if (stack is not null)
        {
            try
            {
                await stack.ShutdownAsync(_options.ShutdownGrace, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The host's shutdown timeout: the rest is reset below.
            }
        }
        Release(stack);
    }

    /// <summary>Abortive: resets every connection and removes the device (what <see cref="StopAsync"/> did not already).</summary>
    public async ValueTask DisposeAsync()
    {
        NetStack? stack;
        lock (_gate)
        {
            _stopped = true;
            stack = _stack;
        }
        if (stack is not null) await stack.DisposeAsync().ConfigureAwait(false);
        Release(stack);
    }

    private void Release(NetStack? stack)
    {
        ILinkDevice? link;
        TunInterface? tun;
        lock (_gate)
        {
            link = _link;
            tun = _interface;
            _link = null;
            _interface = null;
        }
        stack?.Dispose();
        link?.Dispose();
        tun?.Dispose();
    }
}
