using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>
/// ICMP errors about our segments, as the IP layer hands them on after matching the quoted
/// segment's tuple to this connection: unreachables (RFC 5461: hard during SYN-SENT, soft after)
/// and path MTU reductions (RFC 1191, RFC 8201). Both are validated as RFC 5927 4.1 asks: the
/// quoted sequence number must lie in SND.UNA..SND.NXT, or the error is forged or stale and ignored.
/// </summary>
internal sealed partial class TcpConnection
{
    /// <summary>The last soft ICMP error, reported only if the connection times out; cleared by an ACK of new data.</summary>
    private TcpError _softError;

    /// <summary>The path MTU learned from ICMP, 0 while it is the link MTU.</summary>
    private int _pathMtuOverride;

    /// <summary>The MTU segments are cut for: the link MTU, or less once the path said so.</summary>
    public int PathMtu => _pathMtuOverride > 0 ? _pathMtuOverride : _mtu;

    /// <summary>The soft error remembered from an ICMP unreachable, <see cref="TcpError.None"/> if there is none.</summary>
    public TcpError SoftError => _softError;

    /// <summary>RFC 5927 4.1: does the quoted sequence number name data we sent and that is unacknowledged?</summary>
    private bool QuotesOurFlight(SeqNumber quoted) =>
        State != TcpConnectionState.Closed && quoted >= _snd.Una && quoted < _snd.Nxt;

    /// <summary>
    /// An ICMP destination unreachable (or time exceeded) quoting our segment with sequence number
    /// <paramref name="quoted"/>. In SYN-SENT it fails the connection attempt with
    /// <paramref name="error"/> (as Linux and most stacks do, RFC 5461 4); in any other state it is
    /// a soft error (RFC 1122 4.2.3.9), remembered until new data is acknowledged and reported only
    /// if the connection times out. Returns false if validation rejected it.
    /// </summary>
    public bool OnIcmpUnreachable(TcpError error, SeqNumber quoted, Instant now, ITcpOutput output)
    {
        if (!QuotesOurFlight(quoted)) return false;
        _now = now;
        _out = output;
        try
        {
            if (State == TcpConnectionState.SynSent) Terminate(error);
            else _softError = error;
        }
        finally
        {
            Finish();
        }
        return true;
    }

    /// <summary>
    /// ICMP fragmentation needed (RFC 1191) or packet too big (RFC 8201) quoting our segment: the
    /// path carries at most <paramref name="pathMtu"/> bytes (the caller has clamped it to the
    /// family's minimum and below the link MTU). The MSS follows at once, and the segments in
    /// flight that no longer fit are marked lost and resent, re-cut to the new size, without
    /// touching the congestion window: the units changed, not the amount of data in the network
    /// (as Linux tcp_simple_retransmit). Returns false if validation rejected it.
    /// </summary>
    public bool OnPathMtuReduced(int pathMtu, SeqNumber quoted, Instant now, ITcpOutput output)
    {
        if (!QuotesOurFlight(quoted)) return false;
        if (pathMtu >= PathMtu) return true;
        _now = now;
        _out = output;
        try
        {
            ApplyPathMtu(pathMtu);
            if (IsSynchronized && MarkOversizedLost())
            {
                _loss.OnSegmentsResized();
                Transmit();
            }
        }
        finally
        {
            Finish();
        }
        return true;
    }

    /// <summary>Sets the path MTU (from the stack's per-destination cache or an ICMP error) and the MSS that follows from it.</summary>
    internal void ApplyPathMtu(int pathMtu)
    {
        if (pathMtu >= _mtu || pathMtu <= 0) return;
        _pathMtuOverride = pathMtu;
        if (State is not (TcpConnectionState.SynSent or TcpConnectionState.Listen or TcpConnectionState.Closed)) _smss = SegmentPayloadLimit(_tsOk ? 12 : 0);
    }

    private bool MarkOversizedLost()
    {
        bool marked = false;
        for (int i = 0; i < _sent.Count; i++)
        {
            ref var rec = ref _sent[i];
            if (rec.Has(SentFlags.Sacked) || rec.Has(SentFlags.Lost) || rec.DataLength <= _smss) continue;
            MarkLost(ref rec);
            marked = true;
        }
        return marked;
    }
}
