namespace TunTcp.Tcp;

internal sealed partial class TcpConnection
{
    private TcpTimerSet _timers = new();
    private Instant _lastReceivedAt;
    /// <summary>Retransmission timeouts in a row without forward progress.</summary>
    private int _consecutiveRtos;
    private int _persistBackoff;
    /// <summary>Zero-window probes sent with no ACK at all in reply.</summary>
    private int _probesUnanswered;
    private int _keepaliveProbesSent;

    /// <summary>The earliest instant at which <see cref="Poll"/> has work, or <see cref="Instant.Never"/>.</summary>
    public Instant NextDeadline => _timers.Next;

    private void RunTimers()
    {
        if (_timers.TimeWait <= _now)
        {
            // RFC 9293: when the time-wait timeout expires, delete the TCB.
            Terminate(TcpError.None);
            return;
        }
        if (_timers.FinWait2 <= _now)
        {
            Terminate(TcpError.None);
            return;
        }
        // RFC 8985 7.2: a probe due no later than the timeout goes first (its PTO was clamped to
        // the RTO's instant); the probe re-arms the RTO, which is then no longer due.
        bool probeFirst = _timers.LossProbe <= _now && _timers.LossProbe <= _timers.Rto;
        if (probeFirst) _loss.OnLossProbeTimeout();
        if (_timers.Rto <= _now) OnRetransmissionTimeout();
        if (State == TcpConnectionState.Closed) return;
        if (!probeFirst && _timers.LossProbe <= _now) _loss.OnLossProbeTimeout();
        if (_timers.Persist <= _now) OnPersistTimeout();
        if (State == TcpConnectionState.Closed) return;
        if (_timers.DelayedAck <= _now)
        {
            // RFC 9293 3.8.6.3: the delayed ACK is due.
            _timers.DelayedAck = Instant.Never;
            _ackNow = true;
        }
        if (_timers.Keepalive <= _now) OnKeepaliveTimeout();
    }

    /// <summary>RFC 6298 5.4-5.7: the retransmission timer expired.</summary>
    private void OnRetransmissionTimeout()
    {
        _timers.Rto = Instant.Never;
        if (State is TcpConnectionState.SynSent or TcpConnectionState.SynReceived)
        {
            if (_synTransmissions > _settings.MaxSynRetransmissions)
            {
                Terminate(TcpError.TimedOut);
                return;
            }
            RetransmissionTimeouts++;
            _env.Statistics.RetransmissionTimeouts++;
            _rtt.BackOff();
            SendSyn(synAck: State == TcpConnectionState.SynReceived);
            return;
        }
        if (_sent.Count == 0) return;

        _consecutiveRtos++;
        bool userTimeout = _settings.UserTimeout is TimeSpan limit && _now - _progressAt >= limit;
        if (_consecutiveRtos > _settings.MaxRetransmissions || userTimeout)
        {
            // RFC 9293 3.8.3 R2 / RFC 5482: give up and report the timeout.
            Terminate(TcpError.TimedOut);
            return;
        }
        RetransmissionTimeouts++;
        _env.Statistics.RetransmissionTimeouts++;
        _loss.OnRetransmissionTimeout();
        // 5.5: back off the timer; 5.6: start it again.
        _rtt.BackOff();
        _timers.Rto = _now + _rtt.Rto;
        // 5.4: retransmit the earliest segment not yet acknowledged (Transmit sends lost records first).
    }

    /// <summary>
    /// RFC 9293 3.8.6.1 / RFC 1122 4.2.2.17: the peer's window is zero and we have data: send a
    /// probe of one new byte (never more past a zero window), then back off. Probing goes on as
    /// long as the peer answers; it gives up only after as many unanswered probes as data
    /// retransmissions. Also the SWS override timer (RFC 9293 3.8.6.2.1 (4)).
    /// </summary>
    private void OnPersistTimeout()
    {
        _timers.Persist = Instant.Never;
        if (!CanSendData) return;
        long peerRoom = _snd.Wnd - (_snd.Nxt - _snd.Una);
        int unsent = Math.Max(0, DataEnd - _snd.Nxt);
        if (peerRoom > 0)
        {
            // The window is open but too small for SWS avoidance: the override timer fired.
            if (unsent > 0) _forceSend = true;
            return;
        }
        if (_probesUnanswered >= _settings.MaxRetransmissions)
        {
            Terminate(TcpError.TimedOut);
            return;
        }
        if (_sent.Count > 0 && _sent.Last.Has(SentFlags.Probe) && _sent.Last.Has(SentFlags.Sacked))
        {
            // The peer SACKed the probe byte yet shows no window: resending what it holds would
            // tell it nothing. Ask for its window with a segment it must acknowledge instead.
            SendWindowProbe();
        }
        else if (_sent.Count > 0 && _sent.Last.Has(SentFlags.Probe))
        {
            Retransmit(_sent.Count - 1);
            // A probe is not congestion-controlled: undo the pipe accounting Retransmit did.
            ref var rec = ref _sent.Last;
            if (rec.Has(SentFlags.InPipe)) { rec.Flags &= ~SentFlags.InPipe; _pipe -= rec.Length; }
            _timers.Rto = Instant.Never;
        }
        else if (unsent > 0 && _sent.Count == 0)
        {
            SendNewSegment(1, fin: false, probe: true);
        }
        else if (OnlyFinWaits)
        {
            // Only the FIN waits: it cannot be a probe byte (Linux tcp_write_wakeup).
            SendWindowProbe();
        }
        else
        {
            return; // data in flight: its ACK (or RTO) will move things on
        }
        _probesUnanswered++;
        _env.Statistics.ZeroWindowProbes++;
        _persistBackoff++;
        ArmPersist();
    }

    /// <summary>
    /// A segment the peer must acknowledge, carrying no data: SEQ = SND.UNA - 1 (old, so
    /// unacceptable, so answered with an ACK that shows the window), as Linux's
    /// tcp_xmit_probe_skb and keepalive probes.
    /// </summary>
    private void SendWindowProbe()
    {
        var header = new Wire.TcpHeader(Tuple.LocalPort, Tuple.RemotePort, _snd.Una - 1, _rcv.Nxt, Wire.TcpFlags.Ack, WindowField());
        Emit(header, DataOptions(), 0, 0);
    }

    /// <summary>
    /// RFC 1122 4.2.3.6: after an idle period, send a probe the peer must answer (an old
    /// sequence number, no data, as Linux does); declare the connection dead after too many
    /// unanswered probes.
    /// </summary>
    private void OnKeepaliveTimeout()
    {
        _timers.Keepalive = Instant.Never;
        if (_keepaliveProbesSent >= _settings.KeepaliveProbes)
        {
            Terminate(TcpError.TimedOut);
            return;
        }
        SendWindowProbe();
        _keepaliveProbesSent++;
        _env.Statistics.KeepaliveProbes++;
    }

    /// <summary>Keepalive runs only on an idle synchronized connection (no data outstanding).</summary>
    private void UpdateKeepaliveDeadline()
    {
        if (!KeepaliveEnabled || State is not (TcpConnectionState.Established or TcpConnectionState.CloseWait) || _sent.Count > 0)
        {
            _timers.Keepalive = Instant.Never;
            return;
        }
        _timers.Keepalive = _lastReceivedAt + _settings.KeepaliveIdle + _keepaliveProbesSent * _settings.KeepaliveInterval;
    }
}
