using TunTcp.Ip;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>The report behind <c>tuntcp stats</c> and <c>/stats.json</c>.</summary>
public class StackReportTests
{
    [Fact]
    public void Report_ListsEachConnectionWithItsState_AndRoundTripsThroughJson()
    {
        var output = new RecordingOutput();
        var core = new NetStackCore(new NetStackOptions { Address = Packets.Stack.ToIPAddress() }, output);
        var now = Instant.FromMilliseconds(1000);
        var c = CoreTcp.ActiveOpen(core, output, v6: false, now, out _);
        CoreTcp.Write(core, c, 3000, now);

        var report = StackReport.Capture(core, now + TimeSpan.FromSeconds(2));
        var connection = Assert.Single(report.Connections);
        Assert.Equal("Established", connection.State);
        Assert.Equal("192.168.0.1:5000", connection.Remote);
        Assert.Equal(3000, connection.BytesSent);
        Assert.True(connection.InFlight > 0);
        Assert.Equal(2, connection.AgeSeconds, 1);
        Assert.NotNull(connection.NextTimerMs); // the retransmission timer runs
        Assert.Equal(1, report.Totals["connections"]);

        var again = StackReport.FromJson(report.ToJson())!;
        Assert.Equal(report.Connections, again.Connections);
        Assert.Equal(report.Totals, again.Totals);
        var text = report.ToText();
        Assert.Contains("Established", text);
        Assert.Contains("bytes_sent:3000", text);
        Assert.Contains("connections=1", text);
    }
}
