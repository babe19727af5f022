using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace TunTcp.Hosting;

/// <summary>
/// Healthy while the stack runs (with its connection, packet and drop counts as data); unhealthy
/// before it was opened, after it stopped, or when opening it failed.
/// </summary>
internal sealed class TunTcpHealthCheck(TunTcpHost host) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!host.IsRunning)
            return Task.FromResult(new HealthCheckResult(context.Registration.FailureStatus, "the TunTcp stack is not running"));
        var stack = host.Stack;
        var s = stack.Statistics;
        var link = stack.LinkStatistics;
        var data = new Dictionary<string, object>
        {
            ["connectionsOpened"] = s.TcpConnectionsOpened,
            ["connectionsClosed"] = s.TcpConnectionsClosed,
            ["packetsReceived"] = link.PacketsReceived,
            ["packetsSent"] = link.PacketsSent,
            ["receiveDrops"] = link.ReceiveDrops,
            ["sendDrops"] = link.SendDrops,
        };
        return Task.FromResult(HealthCheckResult.Healthy($"TunTcp stack running on {host.Interface?.Options.DeviceName ?? "its link"}", data));
    }
}
