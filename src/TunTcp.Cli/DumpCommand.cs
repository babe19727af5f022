using System.Globalization;
using System.Text;
using TunTcp.Links;
using TunTcp.Wire;

namespace TunTcp.Cli;

/// <summary>
/// <c>tuntcp dump</c>: sets the device up and prints one line per packet the host sends into it,
/// like tcpdump on the TUN device: local time, then <see cref="PacketFormatter"/>'s description
/// (IP version, source -> destination, protocol, length, ports, flags, seq/ack/window, ICMP
/// type). Every packet gets a line, IPv6 and garbage included. Nothing is answered.
/// </summary>
internal static class DumpCommand
{
    private const int BatchLimit = 256;

    public static int Run(ToolSettings settings, ToolConsole console) =>
        DeviceCommand.Run(settings, console, (tun, link, signals) =>
        {
            // Status on stderr, as tcpdump does, so stdout carries only packet lines.
            console.Error.WriteLine($"tuntcp: ready: dumping packets on {tun.Describe()}; stop with Ctrl-C");
            // Larger than any IP packet, so no packet is ever dropped for length.
            var buffer = new byte[Ipv4Packet.MaxPacketLength + 1];
            var line = new StringBuilder(256);
            while (!signals.Token.IsCancellationRequested)
            {
                link.Wait(signals.Wake, Timeout.InfiniteTimeSpan);
                for (int i = 0; i < BatchLimit && !signals.Token.IsCancellationRequested; i++)
                {
                    int length = link.Receive(buffer);
                    if (length == 0) break;
                    line.Clear();
                    line.Append(console.Time.GetLocalNow().ToString("HH:mm:ss.ffffff", CultureInfo.InvariantCulture)).Append(' ');
                    PacketFormatter.Append(line, buffer.AsSpan(0, length));
                    console.Out.WriteLine(line);
                }
            }
            return 0;
        });
}
