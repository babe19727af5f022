using TunTcp.Wire;

namespace TunTcp.Tcp;

internal sealed partial class TcpConnection
{
    /// <summary>An ACK must go out at the next transmit (out-of-order data, FIN, window update, challenge).</summary>
    private bool _ackNow;
    /// <summary>Bytes received in order since our last ACK (RFC 9293 3.8.6.3: ACK every second full segment).</summary>
    private int _bytesSinceAck;
    /// <summary>Estimated size of a full-sized segment from the peer (Linux icsk_ack.rcv_mss; starts at 536, RFC 9293 3.7.1).</summary>
    private int _rcvMss = 536;
    /// <summary>A D-SACK block (RFC 2883) to report first in the next ACK, if any.</summary>
    private SackBlock? _dsack;

    /// <summary>
    /// RFC 9293 3.10.7.4 seventh and eighth steps: data in [start, start + payload.Length),
    /// already trimmed to the window with start &gt;= RCV.NXT, and possibly a FIN right after it.
    /// </summary>
    private void ProcessText(SeqNumber start, ReadOnlySpan<byte> payload, bool fin)
    {
        // Text is only processed in ESTABLISHED, FIN-WAIT-1 and FIN-WAIT-2; after the peer's FIN
        // (CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT) it "should not occur" and is ignored.
        if (State is not (TcpConnectionState.Established or TcpConnectionState.FinWait1 or TcpConnectionState.FinWait2))
        {
            if (payload.Length > 0 || fin) _ackNow = true;
            return;
        }
        if (payload.Length > 0 && _receiveClosed)
        {
            // RFC 1122 4.2.2.13 (and Linux): the application closed and will never read this;
            // reset to show the peer that data was lost.
            AbortWithReset(TcpError.Aborted);
            return;
        }

        int offset = start - _rcv.Nxt;
        if (payload.Length > 0)
        {
            if (offset == 0)
            {
                if (!ReceiveBuffer.WriteAt(0, payload))
                {
                    // The memory budget lets the ring grow no further. Out-of-order data goes
                    // first (the sender still has it); if the segment still does not fit it is
                    // dropped unacknowledged, and the duplicate ACK tells the sender where we are.
                    PruneOutOfOrder();
                    if (!ReceiveBuffer.WriteAt(0, payload))
                    {
                        _env.Statistics.MemoryDrops++;
                        _ackNow = true;
                        return;
                    }
                }
                bool filledGap = !_assembler.IsEmpty;
                int contiguous = payload.Length + _assembler.Advance(payload.Length);
                ReceiveBuffer.Commit(contiguous);
                _rcv.Nxt += contiguous;
                BytesReceived += contiguous;
                Raise(TcpConnectionEvents.Readable);
                _bytesSinceAck += payload.Length;
                // Linux tcp_measure_rcv_mss: the largest segment seen is what a full-sized one is
                // (our MSS less the options the peer carries, or less if its own MSS is smaller).
                if (payload.Length > _rcvMss) _rcvMss = Math.Min(payload.Length, (int)OwnMss);
                // RFC 5681 4.2: an ACK SHOULD be sent at once when a segment fills (part of) a gap.
                if (filledGap) _ackNow = true;
                // RFC 9293 3.8.6.3 / RFC 5681 4.2: acknowledge at least every second full-sized
                // segment, i.e. (as Linux) once more than one full segment is unacknowledged.
                else if (_bytesSinceAck > _rcvMss || _settings.DelayedAckTimeout == TimeSpan.Zero) _ackNow = true;
                else if (_timers.DelayedAck.IsNever) _timers.DelayedAck = _now + _settings.DelayedAckTimeout;
            }
            else
            {
                // Out of order: keep it in the ring's free space past RCV.NXT (bounded by the window),
                // if the memory budget lets the ring hold it (at the limit, none is kept).
                if (_env.Memory is { OverLimit: true } || !ReceiveBuffer.Reserve(offset + payload.Length))
                {
                    _env.Statistics.MemoryDrops++;
                }
                else if (!_assembler.Add(offset, offset + payload.Length, out int duplicate))
                {
                    _env.Statistics.OutOfOrderDrops++;
                }
                else
                {
                    ReceiveBuffer.WriteAt(offset, payload);
                    _env.Statistics.OutOfOrderSegments++;
                    if (duplicate > 0 && _sackOk) SetDsack(start, start + payload.Length);
                }
                // RFC 5681 4.2 / RFC 9293 3.8.6.3: an out-of-order segment is ACKed at once (duplicate ACK with SACK).
                _ackNow = true;
            }
        }

        if (fin)
        {
            var finSeq = start + payload.Length;
            if (finSeq == _rcv.Nxt) ProcessFin();
            else if (finSeq > _rcv.Nxt) { _pendingFinSeq = finSeq; _ackNow = true; }
        }
        else if (_pendingFinSeq is SeqNumber pending && pending == _rcv.Nxt)
        {
            // The gap before an out-of-order FIN is filled now.
            ProcessFin();
        }
    }

    /// <summary>RFC 9293 3.10.7.4, eighth step: the FIN is in sequence.</summary>
    private void ProcessFin()
    {
        _pendingFinSeq = null;
        _rcv.Nxt += 1;
        _ackNow = true;
        PeerFinReceived = true;
        Raise(TcpConnectionEvents.Readable);
        switch (State)
        {
            case TcpConnectionState.SynReceived:
            case TcpConnectionState.Established:
                SetState(TcpConnectionState.CloseWait);
                break;
            case TcpConnectionState.FinWait1:
                // If our FIN has been ACKed, TIME-WAIT; otherwise CLOSING (simultaneous close).
                if (FinAcknowledged) EnterTimeWait();
                else SetState(TcpConnectionState.Closing);
                break;
            case TcpConnectionState.FinWait2:
                EnterTimeWait();
                break;
            case TcpConnectionState.TimeWait:
                _timers.TimeWait = _now + 2 * _settings.Msl;
                break;
        }
    }

    private void EnterTimeWait()
    {
        SetState(TcpConnectionState.TimeWait);
        // RFC 9293: start the time-wait timer (2 MSL), turn off the other timers.
        var delayedAck = _timers.DelayedAck;
        _timers.ClearAll();
        _timers.DelayedAck = delayedAck;
        _timers.TimeWait = _now + 2 * _settings.Msl;
    }

    private void SetDsack(SeqNumber left, SeqNumber right)
    {
        if (_sackOk) _dsack = new SackBlock(left, right);
    }

    /// <summary>
    /// The window we advertise, after receiver silly-window avoidance (RFC 9293 3.8.6.2.2, RFC
    /// 1122 4.2.3.3): the right edge moves right only by at least min(buffer / 2, MSS), and
    /// never moves left (RFC 7323 2.4: shrinking is not done). Returns the unscaled window.
    /// </summary>
    private long UpdateAdvertisedWindow()
    {
        // Under memory pressure only the space already allocated is offered (tcp_mem).
        long free = ReceiveBuffer.StorableFree;
        long maxWindow = (long)65535 << _rcv.Shift;
        long candidate = Math.Min(free, maxWindow);
        // Round down to what the scaled field can express, so the edge we announce is exact.
        candidate = candidate >> _rcv.Shift << _rcv.Shift;
        var candidateEdge = _rcv.Nxt + (int)candidate;
        int threshold = Math.Min(ReceiveBuffer.Capacity / 2, OwnMss);
        if (candidateEdge - _rcv.AdvertisedEdge >= threshold) _rcv.AdvertisedEdge = candidateEdge;
        if (_rcv.AdvertisedEdge < _rcv.Nxt) _rcv.AdvertisedEdge = _rcv.Nxt;
        return _rcv.AdvertisedEdge - _rcv.Nxt;
    }

    /// <summary>
    /// After the application read: send a window update when the window it opens is worth it,
    /// the way Linux does (the new window at least doubles the one the peer knows, and grows by
    /// the SWS threshold), which also reopens a zero or small window promptly.
    /// </summary>
    private void MaybeSendWindowUpdate()
    {
        if (!IsSynchronized || State is TcpConnectionState.TimeWait or TcpConnectionState.CloseWait or TcpConnectionState.Closing or TcpConnectionState.LastAck) return;
        long current = Math.Max(0, _rcv.AdvertisedEdge - _rcv.Nxt);
        long possible = Math.Min(ReceiveBuffer.StorableFree, (long)65535 << _rcv.Shift) >> _rcv.Shift << _rcv.Shift;
        int threshold = Math.Min(ReceiveBuffer.Capacity / 2, OwnMss);
        if (possible - current >= threshold && possible >= 2 * current) _ackNow = true;
    }

    /// <summary>
    /// Gives up the out-of-order data held past RCV.NXT (RFC 2018 8: a receiver may renege on
    /// SACKed data; the sender keeps it until it is cumulatively acknowledged). Nothing
    /// acknowledged is touched. An out-of-order FIN waits no more either; the sender repeats it.
    /// </summary>
    private void PruneOutOfOrder()
    {
        if (_assembler.IsEmpty) return;
        _env.Statistics.OutOfOrderPrunedBytes += _assembler.BytesHeld;
        _assembler.Clear();
        _pendingFinSeq = null;
        ReceiveBuffer.DiscardPastTail();
    }

    /// <summary>
    /// The memory budget is under pressure (stack thread): give back what the receive ring holds
    /// beyond its data, first pruning out-of-order data when the budget is at its limit.
    /// Returns the bytes given back.
    /// </summary>
    public int ReclaimMemory(bool prune)
    {
        if (prune) PruneOutOfOrder();
        if (!_assembler.IsEmpty) return 0; // out-of-order data sits past the tail: keep the array
        int released = ReceiveBuffer.Shrink();
        _env.Statistics.MemoryReclaimedBytes += released;
        return released;
    }

    /// <summary>The connection is forgotten: its rings no longer count against the budget.</summary>
    public void ReleaseMemory()
    {
        SendBuffer.ReleaseBudget();
        ReceiveBuffer.ReleaseBudget();
    }
}
