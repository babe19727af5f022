using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TunTcp.Links;

namespace TunTcp.Ip;

/// <summary>
/// The stack runtime of DESIGN.md: one thread owns the <see cref="NetStackCore"/> and the link.
/// It waits on the link and a wake-up eventfd with a timeout equal to the next timer deadline,
/// reads packets in batches, runs application commands, runs due timers and writes what is due.
/// Nothing else touches protocol state; applications talk to it through <see cref="Post"/>
/// and the per-connection rings.
/// </summary>
public sealed class NetStack : IDisposable
{
    private readonly ILinkDevice _link;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly WakeSignal _wake = new();
    private readonly ConcurrentQueue<Action<NetStackCore, Instant>> _commands = new();
    private readonly LinkOutput _output;
    private readonly int _batch;
    private Thread? _thread;
    private volatile bool _stopping;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public NetStack(ILinkDevice link, NetStackOptions options, TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
    {
        _link = link;
        _time = time ?? TimeProvider.System;
        loggerFactory ??= NullLoggerFactory.Instance;
        _log = loggerFactory.CreateLogger<NetStack>();
        _output = new LinkOutput(link);
        _batch = Math.Max(1, options.ReceiveBatch);
        Core = new NetStackCore(options, _output, loggerFactory.CreateLogger<NetStackCore>());
    }

    /// <summary>The protocol state. Only the stack thread may touch it (use <see cref="Post"/>).</summary>
    internal NetStackCore Core { get; }

    public NetStackStatistics Statistics => Core.Statistics;

    public LinkStatistics LinkStatistics => _link.Statistics;

    /// <summary>Completes when the stack thread has stopped; faults if it died of an exception.</summary>
    public Task Completion => _completion.Task;

    /// <summary>The stack's clock as an <see cref="Instant"/>.</summary>
    public Instant Now => new(checked((long)(_time.GetTimestamp() * (1_000_000.0 / _time.TimestampFrequency))));

    /// <summary>Starts the stack thread.</summary>
    public void Start()
    {
        if (_thread is not null) throw new InvalidOperationException("The stack is already started.");
        _thread = new Thread(Run) { IsBackground = true, Name = "tuntcp-stack" };
        _thread.Start();
    }

    /// <summary>Runs <paramref name="command"/> on the stack thread, soon. Safe from any thread.</summary>
    public void Post(Action<NetStackCore, Instant> command)
    {
        _commands.Enqueue(command);
        _wake.Signal();
    }

    /// <summary>Wakes the stack thread (e.g. after an application wrote into a send ring).</summary>
    internal void Wake() => _wake.Signal();

    private void Run()
    {
        try
        {
            var buffer = new byte[Math.Max(_link.Mtu, 1500) + 64];
            while (!_stopping)
            {
                var now = Now;
                int received = 0;
                for (; received < _batch; received++)
                {
                    int length = _link.Receive(buffer);
                    if (length == 0) break;
                    Core.Receive(buffer.AsSpan(0, length), now);
                }
                _wake.Reset();
                while (_commands.TryDequeue(out var command)) command(Core, now);
                Core.Poll(now);
                if (received == _batch || !_commands.IsEmpty) continue;

                var deadline = Core.NextDeadline;
                TimeSpan timeout = Timeout.InfiniteTimeSpan;
                if (!deadline.IsNever)
                {
                    timeout = deadline - Now;
                    if (timeout <= TimeSpan.Zero) continue;
                    // Round up so a wake-up never comes a hair early and spins.
                    timeout += TimeSpan.FromMilliseconds(1);
                }
                _link.Wait(_wake, timeout);
            }
            _completion.TrySetResult();
        }
        catch (Exception e)
        {
            _log.LogCritical(e, "The stack thread failed");
            _completion.TrySetException(e);
        }
    }

    /// <summary>Stops the stack thread and waits for it; the link is not disposed (its owner does that).</summary>
    public void Dispose()
    {
        _stopping = true;
        _wake.Signal();
        if (_thread is not null && _thread != Thread.CurrentThread) _thread.Join();
        _completion.TrySetResult();
        _wake.Dispose();
    }

    private sealed class LinkOutput(ILinkDevice link) : IPacketOutput
    {
        public void Send(ReadOnlySpan<byte> packet) => link.Send(packet);
    }
}
