using System.Runtime.InteropServices;

namespace TunTcp.Links;

/// <summary>
/// A wake-up handle for the stack thread: a Linux eventfd that <c>poll(2)</c> reports readable
/// once <see cref="Signal"/> was called, so one poll waits for packets and for application
/// commands at once. <see cref="Signal"/> is cheap and safe from any thread; signals coalesce.
/// </summary>
public sealed class WakeSignal : IDisposable
{
    private const int EFD_NONBLOCK = 0x800, EFD_CLOEXEC = 0x80000;
    private int _pending;
    /// <summary>Serialises <see cref="Signal"/>'s write with <see cref="Dispose"/>'s close, so a signal never writes to a closed (and possibly reused) descriptor.</summary>
    private readonly Lock _gate = new();

    public WakeSignal()
    {
        Fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (Fd < 0) throw new IOException($"eventfd failed: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    /// <summary>The eventfd to include in a poll set.</summary>
    public int Fd { get; private set; }

    /// <summary>Wakes the waiting thread; coalesces with earlier signals not yet consumed.</summary>
    public unsafe void Signal()
    {
        if (Interlocked.Exchange(ref _pending, 1) == 1) return;
        ulong one = 1;
        lock (_gate)
        {
            if (Fd >= 0) _ = write(Fd, &one, 8);
        }
    }

    /// <summary>Consumes pending signals; call after waking, before looking at the work queues.</summary>
    public unsafe void Reset()
    {
        if (Volatile.Read(ref _pending) == 0) return;
        // Drain first, then clear: a Signal that lands in between is coalesced into this wake-up,
        // whose caller looks at the work queues only after Reset returns.
        ulong value;
        _ = read(Fd, &value, 8);
        Volatile.Write(ref _pending, 0);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (Fd >= 0) { _ = close(Fd); Fd = -1; }
        }
    }

    [DllImport("libc", SetLastError = true)] private static extern int eventfd(uint initval, int flags);
    [DllImport("libc", SetLastError = true)] private static extern unsafe nint write(int fd, void* buf, nint count);
    [DllImport("libc", SetLastError = true)] private static extern unsafe nint read(int fd, void* buf, nint count);
    [DllImport("libc", SetLastError = true)] private static extern int close(int fd);
}
