using TunTcp.Tcp;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// <see cref="TcpSettings.EventTrace"/>: the sender state a capture cannot show (cwnd, ssthresh,
/// RTO, SRTT, state, recovery phase), reported each time it changes, on the virtual clock.
/// </summary>
public sealed class TcpEventTraceTests
{
    private const TcpFlags PshAck = TcpFlags.Psh | TcpFlags.Ack;

    private sealed class RecordingTrace : ITcpEventTrace
    {
        public List<TcpTraceSample> Samples { get; } = [];
        public void OnChange(in TcpTraceSample sample) => Samples.Add(sample);
    }

    [Fact]
    public void EventTrace_Handshake_ReportsEstablishedWithInitialWindow()
    {
        var trace = new RecordingTrace();
        var h = Established(Classic(new TcpSettings { EventTrace = trace }));
        var last = trace.Samples[^1];
        Assert.Equal(TcpConnectionState.Established, last.State);
        Assert.Equal(ConnTuple, last.Tuple);
        Assert.Equal(h.C.GetStatistics().CongestionWindow, last.CongestionWindow);
        Assert.Equal(TcpRecoveryPhase.Open, last.Recovery);
        Assert.NotNull(last.SmoothedRtt);
        Assert.Contains(trace.Samples, s => s.State == TcpConnectionState.SynReceived);
    }

    // RFC 6298 5.5-5.6 and RFC 5681 3.1 (4): a timeout doubles the RTO, sets ssthresh to half the
    // flight and cwnd to one segment; the trace shows all three at the instant of the timeout.
    [Fact]
    public void EventTrace_RetransmissionTimeout_ShowsBackoffAndCollapsedWindow()
    {
        var trace = new RecordingTrace();
        var h = Established(Classic(new TcpSettings { EventTrace = trace }));
        h.Write(Bytes(100));
        h.Recv(h.Ours(flags: PshAck, data: Bytes(100)));
        var before = trace.Samples[^1];
        Assert.Equal(100, before.BytesInFlight);
        var sent = h.Now;
        h.NothingUntil(sent + Rto0);
        h.Recv(h.Ours(flags: PshAck, data: Bytes(100)));
        var timeout = trace.Samples[^1];
        Assert.Equal(sent + Rto0, timeout.Time);
        Assert.Equal(1, timeout.RetransmissionTimeouts);
        Assert.Equal(TcpRecoveryPhase.Loss, timeout.Recovery);
        Assert.Equal(2 * before.Rto, timeout.Rto);
        Assert.True(timeout.CongestionWindow < before.CongestionWindow, $"cwnd {before.CongestionWindow} -> {timeout.CongestionWindow}");
        Assert.True(timeout.SlowStartThreshold < before.SlowStartThreshold);
    }

    [Fact]
    public void EventTrace_NothingChanged_ReportsNothing()
    {
        var trace = new RecordingTrace();
        var h = Established(Classic(new TcpSettings { EventTrace = trace }));
        int count = trace.Samples.Count;
        h.C.Poll(h.Now, h);
        h.C.Poll(h.Now, h);
        Assert.Equal(count, trace.Samples.Count);
    }

    [Fact]
    public void EventTrace_Close_ReportsEachState()
    {
        var trace = new RecordingTrace();
        var h = Established(Classic(new TcpSettings { EventTrace = trace }));
        h.C.Close(h.Now, h);
        Assert.Equal(TcpConnectionState.FinWait1, trace.Samples[^1].State);
    }
}
