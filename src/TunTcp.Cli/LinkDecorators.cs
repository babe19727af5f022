using TunTcp.Links;

namespace TunTcp.Cli;

/// <summary>Wraps the device in the decorators the command line asked for.</summary>
internal static class LinkDecorators
{
    /// <summary>
    /// Capture innermost, so the capture holds exactly what crossed the device; faults next; the tracer outermost.
    /// The returned link owns <paramref name="device"/>: disposing it disposes the chain.
    /// </summary>
    public static ILinkDevice Wrap(ILinkDevice device, ToolSettings settings, TextWriter traceOutput, TimeProvider time)
    {
        ILinkDevice link = device;
        if (settings.PcapPath is { } path)
        {
            // pcapng's if_name: the device name tshark shows as frame.interface_name.
            string name = settings.Interface.DeviceName;
            string where = settings.Interface.NetworkNamespace is { } ns ? $"network namespace {ns}" : "the tool's network namespace";
            link = PcapCaptureLink.Create(link, path, time, settings.PcapFormat, name,
                $"TunTcp stack {settings.StackAddress} on TUN device {name} in {where}");
        }
        // Faults between the capture and the stack: the capture shows what crossed the device, the
        // tracer what the stack saw.
        if (!settings.Faults.IsEmpty)
            link = new FaultInjectingLink(link, settings.Faults.Inbound, settings.Faults.Outbound, settings.Faults.Seed, time);
        if (settings.Trace) link = new TracingLink(link, traceOutput, time);
        return link;
    }
}
