namespace TunTcp.Tcp;

/// <summary>
/// The deadlines of one connection's timers (RFC 9293 3.8, RFC 6298, RFC 8985, RFC 1122
/// keepalive), each <see cref="Instant.Never"/> while not armed: one value, so the next deadline
/// and "all timers off" are each written once.
/// </summary>
internal struct TcpTimerSet
{
    /// <summary>Retransmission timeout (RFC 6298).</summary>
    public Instant Rto;
    /// <summary>Zero-window probe (RFC 9293 3.8.6.1).</summary>
    public Instant Persist;
    /// <summary>Delayed ACK (RFC 9293 3.8.6.3).</summary>
    public Instant DelayedAck;
    /// <summary>2 MSL in TIME-WAIT.</summary>
    public Instant TimeWait;
    /// <summary>Keepalive idle / probe interval (RFC 1122 4.2.3.6).</summary>
    public Instant Keepalive;
    /// <summary>FIN-WAIT-2 of a fully closed connection.</summary>
    public Instant FinWait2;
    /// <summary>Tail loss probe (RFC 8985 7).</summary>
    public Instant LossProbe;

    public TcpTimerSet() => ClearAll();

    /// <summary>The earliest armed deadline, or <see cref="Instant.Never"/>.</summary>
    public readonly Instant Next
    {
        get
        {
            var d = Instant.Min(Rto, Persist);
            d = Instant.Min(d, DelayedAck);
            d = Instant.Min(d, TimeWait);
            d = Instant.Min(d, Keepalive);
            d = Instant.Min(d, FinWait2);
            return Instant.Min(d, LossProbe);
        }
    }

    /// <summary>Disarms every timer.</summary>
    public void ClearAll() => Rto = Persist = DelayedAck = TimeWait = Keepalive = FinWait2 = LossProbe = Instant.Never;
}
