using System.Diagnostics.Metrics;
using System.Net;
using TunTcp.Ip;
using TunTcp.Links;
using TunTcp.Sockets;
using TunTcp.Tests.Support;

namespace TunTcp.Tests.Diagnostics;

/// <summary>The <c>TunTcp</c> meter: its counters follow what two stacks joined in memory do.</summary>
public class MetricsTests
{
    [Fact]
    public async Task TheMeter_CountsConnectionsSegmentsAndLinkBytes_PerStack_AndRecordsTheHistograms()
    {
        var ct = TestContext.Current.CancellationToken;
        var (linkA, linkB) = MemoryLink.CreatePair(mtu: 1500, capacity: 1024);
        using var server = new NetStack(linkA, new NetStackOptions { Address = IPAddress.Parse("192.168.0.2") });
        using var client = new NetStack(linkB, new NetStackOptions { Address = IPAddress.Parse("192.168.0.1") });
        server.Start();
        client.Start();
        Assert.NotEqual(server.MetricsId, client.MetricsId);

        var longs = new Dictionary<(string Name, int Stack, string? Tag), long>();
        var doubles = new List<(string Name, int Stack, double Value)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Meter.Name == TunTcpMetrics.MeterName) l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            int stack = 0; string? tag = null;
            foreach (var t in tags)
            {
                if (t.Key == "tuntcp.stack") stack = (int)t.Value!;
                else tag = $"{t.Key}={t.Value}";
            }
            lock (longs) longs[(instrument.Name, stack, tag)] = value;
        });
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            int stack = 0;
            foreach (var t in tags) if (t.Key == "tuntcp.stack") stack = (int)t.Value!;
            lock (doubles) doubles.Add((instrument.Name, stack, value));
        });
        listener.Start();

        using (var tcp = await server.ListenTcpAsync(new IPEndPoint(IPAddress.Any, 7), cancellationToken: TestContext.Current.CancellationToken))
        {
            var accept = tcp.AcceptAsync(ct).AsTask();
            await using var connection = await client.ConnectTcpAsync(new IPEndPoint(IPAddress.Parse("192.168.0.2"), 7), ct);
            await using var accepted = await accept.WaitAsync(TimeSpan.FromSeconds(30), ct);
            await connection.SendAsync(new byte[10_000], ct);
            var buffer = new byte[10_000];
            int got = 0;
            while (got < buffer.Length) got += await accepted.ReceiveAsync(buffer.AsMemory(got), ct);

            listener.RecordObservableInstruments();
            long Value(NetStack stack, string name, string? tag = null) { lock (longs) return longs.GetValueOrDefault((name, stack.MetricsId, tag)); }
            Assert.Equal(1, Value(server, "tuntcp.tcp.connections.opened"));
            Assert.Equal(1, Value(client, "tuntcp.tcp.connections.opened"));
            Assert.Equal(1, Value(server, "tuntcp.tcp.connections.active", "tcp.state=Established"));
            Assert.Equal(0, Value(server, "tuntcp.tcp.connections.active", "tcp.state=TimeWait"));
            Assert.True(Value(server, "tuntcp.tcp.segments", "direction=receive") >= 8); // handshake + 10 000 bytes in MSS-sized segments
            Assert.True(Value(client, "tuntcp.link.bytes", "direction=transmit") >= 10_000);
            Assert.True(Value(server, "tuntcp.link.bytes", "direction=receive") >= 10_000);
            Assert.Equal(0, Value(server, "tuntcp.tcp.listen.queue", "queue=accept"));

            // A reset closes both at once: the histograms get one entry per stack.
            connection.Abort();
        }
        Assert.True(await Poll(async () =>
        {
            int closed = await server.Invoke((core, _) => (int)core.Statistics.TcpConnectionsClosed);
            int closedClient = await client.Invoke((core, _) => (int)core.Statistics.TcpConnectionsClosed);
            return closed == 1 && closedClient == 1;
        }));
        lock (doubles)
        {
            Assert.Contains(doubles, d => d.Name == "tuntcp.tcp.connection.duration" && d.Stack == server.MetricsId && d.Value >= 0);
            Assert.Contains(doubles, d => d.Name == "tuntcp.tcp.rtt" && d.Stack == client.MetricsId && d.Value > 0);
        }
    }

    private static async Task<bool> Poll(Func<Task<bool>> condition)
    {
        for (int i = 0; i < 2000; i++)
        {
            if (await condition()) return true;
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }
        return false;
    }
}
