using TunTcp.Links;

namespace TunTcp.Cli;

/// <summary>Wraps the device in the decorators the command line asked for.</summary>
internal static class LinkDecorators
{
    /// <summary>
    /// Capture innermost, so the pcap holds exactly what crossed the device; faults next; the tracer outermost.
    /// The returned link owns <paramref name="device"/>: disposing it disposes the chain.
    /// </summary>
    public static ILinkDevice Wrap(ILinkDevice device, ToolSettings settings, TextWriter traceOutput, TimeProvider time)
    {
        ILinkDevice link = device;
        if (settings.PcapPath is { } path) link = PcapCaptureLink.Create(link, path, time);
        // Faults between the capture and the stack: the pcap shows what crossed the device, the
        // tracer what the stack saw.
        if (!settings.Faults.IsEmpty)
            link = new FaultInjectingLink(link, settings.Faults.Inbound, settings.Faults.Outbound, settings.Faults.Seed, time);
        if (settings.Trace) link = new TracingLink(link, traceOutput, time);
        return link;
    }
}
