using TunTcp.Links;

namespace TunTcp.Cli;

/// <summary>Wraps the device in the decorators the command line asked for.</summary>
internal static class LinkDecorators
{
    /// <summary>
    /// Capture innermost, so the pcap holds exactly what crossed the device; the tracer outside it.
    /// The returned link owns <paramref name="device"/>: disposing it disposes the chain.
    /// </summary>
    public static ILinkDevice Wrap(ILinkDevice device, ToolSettings settings, TextWriter traceOutput, TimeProvider time)
    {
        ILinkDevice link = device;
        if (settings.PcapPath is { } path) link = PcapCaptureLink.Create(link, path, time);
        if (settings.Trace) link = new TracingLink(link, traceOutput, time);
        return link;
    }
}
