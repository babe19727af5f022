using System.Threading.Tasks.Sources;

namespace TunTcp.Sockets;

/// <summary>
/// An auto-reset event for one waiter at a time, awaited as a <see cref="ValueTask"/> without
/// allocating: the stack thread calls <see cref="Set"/> when a ring changes; the application
/// thread re-checks its condition and awaits <see cref="WaitAsync"/> when it must block. A
/// <see cref="Set"/> that finds no waiter is remembered, so the check-then-wait race cannot
/// lose a wake-up. The waiter never runs on the signalling (stack) thread: the signal queues
/// itself, a preallocated thread-pool work item, so waking an application costs no allocation.
/// A synchronous caller blocks in <see cref="Wait"/> on an event of its own (made once, reused),
/// not on the asynchronous wait: no task, no pool hop.
/// </summary>
internal sealed class AsyncSignal : IValueTaskSource, IThreadPoolWorkItem
{
    private const int Idle = 0, Waiting = 1, Signaled = 2, BlockedWaiting = 3;

    // Continuations run inline in Execute, which is already on a pool thread.
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = false };
    private int _state;
    private CancellationTokenRegistration _registration;
    private ManualResetEventSlim? _blocked;

    /// <summary>Wakes the waiter, or lets the next wait return at once.</summary>
    public void Set()
    {
        while (true)
        {
            int s = Volatile.Read(ref _state);
            if (s == Signaled) return;
            if (s == Idle)
            {
                if (Interlocked.CompareExchange(ref _state, Signaled, Idle) == Idle) return;
                continue;
            }
            if (s == BlockedWaiting)
            {
                if (Interlocked.CompareExchange(ref _state, Idle, BlockedWaiting) == BlockedWaiting)
                {
                    _blocked!.Set();
                    return;
                }
                continue;
            }
            if (Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
            {
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
                return;
            }
        }
    }

    /// <summary>Blocks this thread until the next <see cref="Set"/> (returns at once if one is pending).</summary>
    public void Wait()
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Signaled) == Signaled) return;
        var blocked = _blocked ??= new ManualResetEventSlim(false);
        blocked.Reset();
        if (Interlocked.CompareExchange(ref _state, BlockedWaiting, Idle) != Idle)
        {
            // A Set landed in between: consume it.
            Interlocked.Exchange(ref _state, Idle);
            return;
        }
        blocked.Wait();
    }

    /// <summary>On a pool thread: complete the wait (its continuation runs here, not on the stack thread).</summary>
    void IThreadPoolWorkItem.Execute() => _core.SetResult(true);

    /// <summary>Completes at the next <see cref="Set"/> (at once if one is pending), or on cancellation.</summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Signaled) == Signaled) return ValueTask.CompletedTask;
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled(cancellationToken);
        _core.Reset();
        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) != Idle)
        {
            // A Set landed between the two exchanges: consume it.
            Interlocked.Exchange(ref _state, Idle);
            return ValueTask.CompletedTask;
        }
        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(static (s, token) =>
            {
                var self = (AsyncSignal)s!;
                // The cancellation callback runs off the stack thread, so completing inline is fine.
                if (Interlocked.CompareExchange(ref self._state, Idle, Waiting) == Waiting)
                    self._core.SetException(new OperationCanceledException(token));
            }, this);
        }
        return new ValueTask(this, _core.Version);
    }

    void IValueTaskSource.GetResult(short token)
    {
        _registration.Dispose();
        _registration = default;
        _core.GetResult(token);
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
