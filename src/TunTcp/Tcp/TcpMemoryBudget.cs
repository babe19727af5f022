namespace TunTcp.Tcp;

/// <summary>
/// The stack-wide budget for connection buffers, as Linux's <c>tcp_mem</c>: the bytes of every
/// send and receive ring's array are charged here when a ring grows and given back when a
/// connection is forgotten or a ring shrinks. Three steps:
/// <list type="bullet">
/// <item>below <see cref="Pressure"/> (3/4 of the limit): rings grow as their traffic needs;</item>
/// <item>under pressure (entered at <see cref="Pressure"/>, left below <see cref="Low"/>, half the
/// limit): rings no longer grow, so the receive windows offered shrink to the space already
/// allocated and writes to a full send array wait; the stack gives back what idle receive rings
/// hold;</item>
/// <item>at <see cref="Limit"/>: out-of-order data is pruned first (RFC 2018 reneging: the sender
/// still has it), then receive rings are cut to the data they hold; a segment that does not fit
/// is dropped unacknowledged. Data already acknowledged is never dropped.</item>
/// </list>
/// Every ring may always take its first <see cref="Allowance"/> bytes, so each connection can make
/// progress however full the budget is. Charged from the stack thread (receive rings) and from
/// application threads (send rings): the counters are atomic.
/// </summary>
internal sealed class TcpMemoryBudget
{
    /// <summary>The first array a ring may always have (ByteRing's initial size).</summary>
    public const int Allowance = 16 * 1024;

    private long _allocated;
    private int _underPressure;
    private long _pressureEntered;
    private long _growthDenied;

    public TcpMemoryBudget(long limit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, (long)Allowance);
        Limit = limit;
        Pressure = limit / 4 * 3;
        Low = limit / 2;
    }

    public long Limit { get; }
    public long Pressure { get; }
    public long Low { get; }

    /// <summary>Bytes of ring arrays charged now.</summary>
    public long Allocated => Volatile.Read(ref _allocated);

    public bool UnderPressure => Volatile.Read(ref _underPressure) != 0;

    /// <summary>At or above the limit: prune.</summary>
    public bool OverLimit => Allocated >= Limit;

    /// <summary>Times the budget entered the pressure state.</summary>
    public long PressureEntered => Volatile.Read(ref _pressureEntered);

    /// <summary>Ring growths refused.</summary>
    public long GrowthDenied => Volatile.Read(ref _growthDenied);

    /// <summary>
    /// Charges a ring's growth from <paramref name="currentLength"/> to <paramref name="newLength"/>
    /// bytes; false (nothing charged) when the budget does not allow it.
    /// </summary>
    public bool TryGrow(int currentLength, int newLength)
    {
        long delta = newLength - currentLength;
        bool allowance = currentLength == 0 && newLength <= Allowance;
        if (!allowance && (UnderPressure || Allocated + delta > Pressure))
        {
            Interlocked.Increment(ref _growthDenied);
            UpdatePressure(Allocated);
            return false;
        }
        UpdatePressure(Interlocked.Add(ref _allocated, delta));
        return true;
    }

    /// <summary>Gives back <paramref name="bytes"/> of ring arrays.</summary>
    public void Release(long bytes)
    {
        if (bytes == 0) return;
        UpdatePressure(Interlocked.Add(ref _allocated, -bytes));
    }

    private void UpdatePressure(long allocated)
    {
        if (allocated >= Pressure)
        {
            if (Interlocked.Exchange(ref _underPressure, 1) == 0) Interlocked.Increment(ref _pressureEntered);
        }
        else if (allocated < Low)
        {
            Volatile.Write(ref _underPressure, 0);
        }
    }
}
