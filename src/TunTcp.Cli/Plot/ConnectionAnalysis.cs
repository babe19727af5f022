namespace TunTcp.Cli.Plot;

/// <summary>
/// One connection of a capture, by its 4-tuple. <see cref="Client"/> is the end that sent the
/// first SYN (or, with the handshake not captured, the first segment).
/// </summary>
internal sealed record CaptureConnection(int Number, TcpEndpoint Client, TcpEndpoint Server, List<CapturedSegment> Segments)
{
    public long PayloadBytes => Segments.Sum(s => (long)s.PayloadLength);

    /// <summary>Both directions of the same connection map to one key.</summary>
    public static (TcpEndpoint, TcpEndpoint) Key(TcpEndpoint a, TcpEndpoint b) =>
        string.CompareOrdinal(a.ToString(), b.ToString()) <= 0 ? (a, b) : (b, a);

    /// <summary>
    /// The connections of a capture, numbered from 1 in the order of their first segment.
    /// </summary>
    public static List<CaptureConnection> From(IReadOnlyList<CapturedSegment> segments)
    {
        var byKey = new Dictionary<(TcpEndpoint, TcpEndpoint), CaptureConnection>();
        var list = new List<CaptureConnection>();
        foreach (var s in segments)
        {
            var key = Key(s.Source, s.Destination);
            if (!byKey.TryGetValue(key, out var connection))
            {
                connection = new CaptureConnection(list.Count + 1, s.Source, s.Destination, []);
                byKey.Add(key, connection);
                list.Add(connection);
            }
            // The SYN without ACK says who opened it, even if another segment came first.
            if (s.Syn && !s.HasAck && connection.Client != s.Source)
            {
                connection = connection with { Client = s.Source, Server = s.Destination };
                byKey[key] = connection;
                list[connection.Number - 1] = connection;
            }
            connection.Segments.Add(s);
        }
        return list;
    }

    /// <summary>The default connection: the one that carried the most payload.</summary>
    public static CaptureConnection? Busiest(IReadOnlyList<CaptureConnection> connections) =>
        connections.Count == 0 ? null : connections.MaxBy(c => c.PayloadBytes);
}

/// <summary>A data segment in the time-sequence graph: [Start, End) of the sender's relative sequence space.</summary>
internal readonly record struct DataMark(double Time, long Start, long End, bool Retransmission);

/// <summary>A point of a line over time.</summary>
internal readonly record struct TimePoint(double Time, double Value);

/// <summary>A SACK block (RFC 2018) the receiver reported at <see cref="Time"/>, relative sequence numbers.</summary>
internal readonly record struct SackMark(double Time, long Left, long Right);

/// <summary>
/// What the graphs of one connection show, derived from its captured segments (tcptrace's
/// analysis): the data direction is the one that carried more payload; sequence numbers are
/// relative to the sender's first data byte (its ISN + 1 when the SYN was captured) and unwrapped;
/// times are seconds from the connection's first segment.
/// </summary>
internal sealed class ConnectionAnalysis
{
    public required CaptureConnection Connection { get; init; }
    public required TcpEndpoint Sender { get; init; }
    public required TcpEndpoint Receiver { get; init; }
    /// <summary>Capture time of the connection's first segment.</summary>
    public required long StartUnixMicroseconds { get; init; }
    public required double Duration { get; init; }
    /// <summary>The shift applied to the receiver's windows (RFC 7323 2.3), null when the handshake was not captured (no shift applied).</summary>
    public required int? ReceiveWindowShift { get; init; }
    public List<DataMark> Data { get; } = [];
    /// <summary>The receiver's cumulative ACK (relative), at each segment it sent with ACK set, a reset included.</summary>
    public List<TimePoint> Acks { get; } = [];
    /// <summary>The right edge of the receiver's window, ACK + window << shift.</summary>
    public List<TimePoint> WindowEdges { get; } = [];
    public List<SackMark> Sacks { get; } = [];
    /// <summary>RTT samples in milliseconds, as seen where the capture was taken.</summary>
    public List<TimePoint> RttMilliseconds { get; } = [];
    /// <summary>Goodput: newly acknowledged bytes per interval, in bits per second, at the interval's middle.</summary>
    public List<TimePoint> ThroughputBitsPerSecond { get; } = [];
    /// <summary>
    /// Bytes sent and not cumulatively acknowledged (highest sequence sent minus the ACK), after each
    /// of the sender's or receiver's segments; SACKed bytes count too (unlike the sender's pipe, RFC 6675).
    /// </summary>
    public List<TimePoint> BytesInFlight { get; } = [];

    public int Retransmissions => Data.Count(d => d.Retransmission);
    public long BytesAcknowledged => Acks.Count == 0 ? 0 : (long)Acks.Max(a => a.Value);

    /// <summary>Number of intervals the throughput is averaged over.</summary>
    public const int ThroughputIntervals = 60;

    public static ConnectionAnalysis Of(CaptureConnection connection)
    {
        var segments = connection.Segments;
        long fromClient = segments.Where(s => s.Source == connection.Client).Sum(s => (long)s.PayloadLength);
        long fromServer = segments.Where(s => s.Source == connection.Server).Sum(s => (long)s.PayloadLength);
        var (sender, receiver) = fromServer > fromClient ? (connection.Server, connection.Client) : (connection.Client, connection.Server);

        // The sender's first data byte: ISN + 1 from its SYN, else the first sequence number it used.
        var senderSyn = segments.FirstOrDefault(s => s.Source == sender && s.Syn);
        var receiverSyn = segments.FirstOrDefault(s => s.Source == receiver && s.Syn);
        uint baseSeq = senderSyn is not null ? unchecked(senderSyn.Seq + 1)
            : segments.FirstOrDefault(s => s.Source == sender)?.Seq ?? segments.First(s => s.Source == receiver).Ack;
        // RFC 7323 2.2: the shifts apply only when both SYNs offered one; the receiver's windows
        // are scaled by the shift in its own SYN.
        int? shift = senderSyn is null || receiverSyn is null ? null
            : senderSyn.WindowScale is not null && receiverSyn.WindowScale is { } scale ? Math.Min((int)scale, 14) : 0;

        long start = segments[0].UnixMicroseconds;
        double T(CapturedSegment s) => (s.UnixMicroseconds - start) / 1e6;
        var analysis = new ConnectionAnalysis
        {
            Connection = connection, Sender = sender, Receiver = receiver, StartUnixMicroseconds = start,
            Duration = T(segments[^1]), ReceiveWindowShift = shift,
        };

        var dataSeq = new SequenceUnwrapper(baseSeq);
        var ackSeq = new SequenceUnwrapper(baseSeq);
        long highestEnd = 0;
        long highestAck = long.MinValue;
        // Karn (RFC 6298 3): an RTT sample only from a segment that was sent once.
        var unacknowledged = new List<(long Start, long End, double Time, bool Retransmitted)>();
        foreach (var s in segments)
        {
            double t = T(s);
            if (s.Source == sender)
            {
                if (s.PayloadLength == 0 || s.Syn) continue;
                long begin = dataSeq.Unwrap(s.Seq);
                long end = begin + s.PayloadLength;
                bool retransmission = begin < highestEnd;
                analysis.Data.Add(new DataMark(t, begin, end, retransmission));
                if (retransmission)
                {
                    for (int i = 0; i < unacknowledged.Count; i++)
                        if (unacknowledged[i].Start < end && unacknowledged[i].End > begin) unacknowledged[i] = unacknowledged[i] with { Retransmitted = true };
                    // The original may not be in the capture (lost before it): the retransmission
                    // itself spoils any ACK that covers it. The list stays ordered by End.
                    int at = unacknowledged.FindIndex(u => u.End > end);
                    unacknowledged.Insert(at < 0 ? unacknowledged.Count : at, (begin, end, t, true));
                }
                else
                {
                    unacknowledged.Add((begin, end, t, false));
                }
                highestEnd = Math.Max(highestEnd, end);
                if (highestAck != long.MinValue) analysis.BytesInFlight.Add(new TimePoint(t, highestEnd - highestAck));
                continue;
            }
            if (!s.HasAck || s.Syn) continue;
            long ack = ackSeq.Unwrap(s.Ack);
            analysis.Acks.Add(new TimePoint(t, ack));
            // A receiver that closes with unread data resets (RFC 1122 4.2.2.13) with ACK = RCV.NXT
            // (Linux): that may be the only acknowledgment of the last data. A reset advertises no
            // window and releases no RTT sample.
            if (s.Rst) continue;
            analysis.WindowEdges.Add(new TimePoint(t, ack + ((long)s.Window << (shift ?? 0))));
            foreach (var block in s.Sack)
            {
                // D-SACK (RFC 2883) blocks below the ACK are drawn too: they show what was received twice.
                long left = ack + (int)(block.Left.Value - s.Ack);
                long right = ack + (int)(block.Right.Value - s.Ack);
                if (right > left) analysis.Sacks.Add(new SackMark(t, left, right));
            }
            if (ack > highestAck)
            {
                // The newest segment this ACK covers is the one that released it (delayed ACKs cover two).
                int covered = 0;
                while (covered < unacknowledged.Count && unacknowledged[covered].End <= ack) covered++;
                if (covered > 0)
                {
                    var newest = unacknowledged[covered - 1];
                    bool anyRetransmitted = false;
                    for (int i = 0; i < covered; i++) anyRetransmitted |= unacknowledged[i].Retransmitted;
                    if (!anyRetransmitted) analysis.RttMilliseconds.Add(new TimePoint(t, (t - newest.Time) * 1000));
                    unacknowledged.RemoveRange(0, covered);
                }
                highestAck = ack;
            }
            analysis.BytesInFlight.Add(new TimePoint(t, Math.Max(0, highestEnd - highestAck)));
        }
        analysis.AddThroughput();
        return analysis;
    }

    private void AddThroughput()
    {
        if (Acks.Count < 2 || Duration <= 0) return;
        double width = Duration / ThroughputIntervals;
        var acked = new double[ThroughputIntervals];
        double previous = Acks[0].Value;
        foreach (var a in Acks)
        {
            if (a.Value <= previous) continue;
            int bin = Math.Min(ThroughputIntervals - 1, (int)(a.Time / width));
            acked[bin] += a.Value - previous;
            previous = a.Value;
        }
        for (int i = 0; i < ThroughputIntervals; i++)
            ThroughputBitsPerSecond.Add(new TimePoint((i + 0.5) * width, acked[i] * 8 / width));
    }

    /// <summary>Turns 32-bit sequence numbers into a 64-bit line that keeps counting across wraps (RFC 9293 3.4).</summary>
    private sealed class SequenceUnwrapper(uint origin)
    {
        private uint _last = origin;
        private long _value;

        public long Unwrap(uint seq)
        {
            _value += unchecked((int)(seq - _last));
            _last = seq;
            return _value;
        }
    }
}
