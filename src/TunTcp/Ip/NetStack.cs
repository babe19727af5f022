using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TunTcp.Links;

namespace TunTcp.Ip;

/// <summary>
/// The stack runtime: one thread owns the <see cref="NetStackCore"/> and the link.
/// It waits on the link and a wake-up eventfd with a timeout equal to the next timer deadline,
/// reads packets in batches, runs application commands, runs due timers and writes what is due.
/// Nothing else touches protocol state; applications talk to it through <see cref="Post"/>
/// and the per-connection rings.
/// </summary>
public sealed class NetStack : IDisposable, IAsyncDisposable
{
    private readonly ILinkDevice _link;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly WakeSignal _wake = new();
    private readonly ConcurrentQueue<Action<NetStackCore, Instant>> _commands = new();
    private readonly LinkOutput _output;
    /// <summary>The link's segmentation offload, used only when the outermost link is the device itself.</summary>
    private readonly ISegmentationOffload? _offload;
    private readonly int _batch;
    private readonly TimeSpan _spin;
    private Thread? _thread;
    private volatile bool _stopping;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public NetStack(ILinkDevice link, NetStackOptions options, TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
    {
        _link = link;
        _time = time ?? TimeProvider.System;
        loggerFactory ??= NullLoggerFactory.Instance;
        _log = loggerFactory.CreateLogger<NetStack>();
        _offload = link is ISegmentationOffload { MaxSegmentationSize: > 0 } offload ? offload : null;
        _output = new LinkOutput(link, _offload);
        _batch = Math.Max(1, options.ReceiveBatch);
        _spin = options.SpinBeforeSleep;
        Core = new NetStackCore(options, _output, loggerFactory.CreateLogger<NetStackCore>(), _offload?.MaxSegmentationSize ?? 0);
        Core.ReadyCallback = _wake.Signal;
        Options = options;
        LoggerFactory = loggerFactory;
    }

    public NetStackOptions Options { get; }

    /// <summary>This stack's number in the process: the <c>tuntcp.stack</c> tag of its metrics (0 before <see cref="Start"/>).</summary>
    public int MetricsId { get; private set; }

    internal ILoggerFactory LoggerFactory { get; }

    /// <summary>True when called on the stack thread itself (built-in apps run there).</summary>
    public bool IsStackThread => Thread.CurrentThread == _thread;

    /// <summary>The protocol state. Only the stack thread may touch it (use <see cref="Post"/>).</summary>
    internal NetStackCore Core { get; }

    public NetStackStatistics Statistics => Core.Statistics;

    public LinkStatistics LinkStatistics => _link.Statistics;

    /// <summary>Completes when the stack thread has stopped; faults if it died of an exception.</summary>
    public Task Completion => _completion.Task;

    /// <summary>The stack's clock as an <see cref="Instant"/>.</summary>
    internal TimeProvider Time => _time;

    internal Instant Now => new(checked((long)(_time.GetTimestamp() * (1_000_000.0 / _time.TimestampFrequency))));

    /// <summary>Starts the stack thread.</summary>
    public void Start()
    {
        if (_thread is not null) throw new InvalidOperationException("The stack is already started.");
        MetricsId = TunTcpMetrics.Register(this);
        Core.MetricsId = MetricsId;
        _thread = new Thread(Run) { IsBackground = true, Name = "tuntcp-stack" };
        _thread.Start();
    }

    /// <summary>
    /// Runs <paramref name="command"/> on the stack thread and returns its result; runs it inline
    /// when already on the stack thread. Safe from any thread.
    /// </summary>
    internal Task<T> Invoke<T>(Func<NetStackCore, Instant, T> command)
    {
        if (IsStackThread) return Task.FromResult(command(Core, Now));
        if (_stopping || _thread is null) return Task.FromException<T>(new ObjectDisposedException(nameof(NetStack), "The stack is not running."));
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            Post((core, now) =>
            {
                try { tcs.TrySetResult(command(core, now)); }
                catch (Exception e) { tcs.TrySetException(e); }
            });
        }
        catch (ObjectDisposedException e)
        {
            return Task.FromException<T>(e);
        }
        // Disposed meanwhile: the command may never run.
        if (_stopping) tcs.TrySetException(new ObjectDisposedException(nameof(NetStack), "The stack is not running."));
        return tcs.Task;
    }

    /// <summary>
    /// Orderly shutdown: FIN on every connection, wait up to <paramref name="grace"/> for them to
    /// close, then reset whatever is left and stop the stack thread.
    /// </summary>
    public async Task ShutdownAsync(TimeSpan grace, CancellationToken cancellationToken = default)
    {
        if (_thread is null || _stopping) { Dispose(); return; }
        await Invoke((core, now) => { core.CloseAll(now); return 0; }).ConfigureAwait(false);
        var deadline = _time.GetTimestamp() + (long)(grace.TotalSeconds * _time.TimestampFrequency);
        while (_time.GetTimestamp() < deadline && !cancellationToken.IsCancellationRequested)
        {
            int open = await Invoke((core, _) => core.ConnectionCount).ConfigureAwait(false);
            if (open == 0) break;
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time, cancellationToken).ConfigureAwait(false);
        }
        await Invoke((core, now) => { core.AbortAll(now); return 0; }).ConfigureAwait(false);
        Dispose();
    }

    /// <summary>
    /// Runs <paramref name="command"/> on the stack thread, soon. Safe from any thread. An exception
    /// it throws is logged and the stack goes on.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The stack was disposed: the command would never run.</exception>
    internal void Post(Action<NetStackCore, Instant> command)
    {
        if (_stopping) throw new ObjectDisposedException(nameof(NetStack), "The stack is stopped; the command would never run.");
        _commands.Enqueue(command);
        _wake.Signal();
    }

    /// <summary>Wakes the stack thread (e.g. after an application wrote into a send ring).</summary>
    internal void Wake() => _wake.Signal();

    private void Run()
    {
        try
        {
            // With offload a single read may carry a 64 KiB super-segment.
            var buffer = new byte[Math.Max(Math.Max(_link.Mtu, 1500), _offload?.MaxSegmentationSize ?? 0) + 64];
            var lastActivity = Instant.Zero;
            while (!_stopping)
            {
                var now = Now;
                int received = 0;
                for (; received < _batch; received++)
                {
                    int length = _link.Receive(buffer);
                    if (length == 0) break;
                    Core.Receive(buffer.AsSpan(0, length), now, _offload?.LastReceiveChecksumTrusted ?? false);
                }
                _wake.Reset();
                bool commands = false;
                while (_commands.TryDequeue(out var command))
                {
                    commands = true;
                    // A failing command is the poster's bug, not the stack's: log it and go on
                    // serving every connection (Invoke reports its own failures to its caller).
                    try { command(Core, now); }
                    catch (Exception e) { _log.LogError(e, "A command posted to the stack threw; the stack goes on"); }
                }
                Core.Poll(now);
                // _stopping is read again after Reset: a Dispose whose wake-up landed while Reset
                // drained the eventfd was coalesced into this turn, so blocking now would wait
                // for a signal that already came (found by a real-peer test hanging in Join).
                if (received == _batch || !_commands.IsEmpty || _stopping) continue;
                if (received > 0 || commands) lastActivity = now;
                // Waking a sleeping thread costs tens of microseconds on these VMs,
                // more than the TUN round trip. Right after activity, keep polling the device for
                // a short while instead of sleeping, so the next request of a conversation is
                // seen at once. Bounded, so an idle stack sleeps. Each turn yields the CPU to any
                // runnable thread first (sched_yield): on a small machine the application threads
                // that produce the next request (Kestrel's) need the core more than the poll does;
                // a pure SpinWait cost a quarter of the HTTP request rate on 2 vCPUs
                // (bench/http.sh: 37.5k vs 48.6k req/s) and yielding costs the echo latency nothing.
                if (now - lastActivity < _spin) { if (!Thread.Yield()) Thread.SpinWait(20); continue; }

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

    /// <summary>
    /// Abortive shutdown like <see cref="Dispose"/>, without blocking the caller while the stack
    /// thread resets the connections (for an orderly one, <see cref="ShutdownAsync"/> first).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping) return;
        if (_thread is not null && _thread.IsAlive && !IsStackThread)
        {
            try
            {
                await Invoke((core, now) => { core.AbortAll(now); return 0; }).WaitAsync(TimeSpan.FromSeconds(5), _time).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or ObjectDisposedException)
            {
                // Stopped meanwhile, or wedged: stop the thread regardless.
            }
        }
        Dispose();
    }

    /// <summary>
    /// Abortive shutdown: resets every connection, stops the stack thread and waits for it. The
    /// link is not disposed (its owner does that).
    /// </summary>
    public void Dispose()
    {
        if (_stopping) return;
        TunTcpMetrics.Unregister(this);
        if (_thread is not null && _thread.IsAlive && !IsStackThread)
        {
            var done = new ManualResetEventSlim();
            Post((core, now) => { core.AbortAll(now); done.Set(); });
            done.Wait(TimeSpan.FromSeconds(5));
        }
        _stopping = true;
        _wake.Signal();
        if (_thread is not null && _thread != Thread.CurrentThread) _thread.Join();
        _completion.TrySetResult();
        _wake.Dispose();
    }

    private sealed class LinkOutput(ILinkDevice link, ISegmentationOffload? offload) : IPacketOutput
    {
        public void Send(ReadOnlySpan<byte> packet) => link.Send(packet);

        public void SendSegmented(ReadOnlySpan<byte> headers, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued, int segmentPayload) =>
            offload!.SendSegmented(headers, payload, payloadContinued, segmentPayload);
    }
}
