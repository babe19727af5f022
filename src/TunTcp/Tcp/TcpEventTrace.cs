namespace TunTcp.Tcp;

/// <summary>
/// Receives a connection's sender state each time it changes: what a packet capture cannot show
/// (cwnd, ssthresh, RTO, SRTT, the loss-recovery phase, state changes). Set on
/// <see cref="TcpSettings.EventTrace"/>; called on the stack's thread at the end of each input,
/// flush or timer run of the connection, once per run in which something changed. Off (null) it
/// costs one null check per run.
/// </summary>
internal interface ITcpEventTrace
{
    /// <summary>One change; <paramref name="sample"/> is the state after it.</summary>
    void OnChange(in TcpTraceSample sample);
}

/// <summary>The phase of loss recovery of a trace sample.</summary>
internal enum TcpRecoveryPhase
{
    /// <summary>No loss being repaired.</summary>
    Open,
    /// <summary>Fast recovery (RFC 6582, RFC 6675, RFC 8985).</summary>
    FastRecovery,
    /// <summary>Repairing after a retransmission timeout.</summary>
    Loss,
}

/// <summary>A connection's sender state at <see cref="Time"/> (the stack's clock).</summary>
/// <param name="SmoothedRtt">SRTT (RFC 6298), or null before the first sample.</param>
/// <param name="BytesInFlight">The pipe (RFC 6675): bytes the sender counts as in the network.</param>
internal readonly record struct TcpTraceSample(
    Instant Time, TcpTuple Tuple, TcpConnectionState State, TcpRecoveryPhase Recovery,
    int CongestionWindow, int SlowStartThreshold, TimeSpan Rto, TimeSpan? SmoothedRtt, int BytesInFlight,
    long Retransmissions, long RetransmissionTimeouts)
{
    /// <summary>True when every value but the time is the same (nothing to report).</summary>
    public bool SameStateAs(in TcpTraceSample other) =>
        State == other.State && Recovery == other.Recovery && CongestionWindow == other.CongestionWindow
        && SlowStartThreshold == other.SlowStartThreshold && Rto == other.Rto && SmoothedRtt == other.SmoothedRtt
        && BytesInFlight == other.BytesInFlight && Retransmissions == other.Retransmissions
        && RetransmissionTimeouts == other.RetransmissionTimeouts;
}
