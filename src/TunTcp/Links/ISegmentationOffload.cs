namespace TunTcp.Links;

/// <summary>
/// A link that moves TCP super-segments of up to 64 KiB in one operation, cutting and checksumming
/// them itself (Linux TUN with IFF_VNET_HDR and TSO/GSO offloads, Documentation/networking/
/// segmentation-offloads.rst). The stack then crosses the user/kernel boundary once per 64 KiB
/// instead of once per MTU-sized packet, which is where TUN's cost is.
/// </summary>
/// <remarks>
/// Only the device itself implements this: decorators (capture, tracer, fault injector) do not,
/// so the stack sees plain MTU-sized packets whenever something is watching or disturbing them.
/// </remarks>
public interface ISegmentationOffload
{
    /// <summary>Largest IP packet <see cref="SendSegmented"/> takes and <see cref="ILinkDevice.Receive"/> may return.</summary>
    int MaxSegmentationSize { get; }

    /// <summary>
    /// True when the packet the last <see cref="ILinkDevice.Receive"/> returned needs no transport
    /// checksum check: the kernel verified it (DATA_VALID) or left it to be computed
    /// (NEEDS_CSUM, CHECKSUM_PARTIAL: the field holds only the pseudo-header sum) because the
    /// packet never left the host.
    /// </summary>
    bool LastReceiveChecksumTrusted { get; }

    /// <summary>
    /// Sends a TCP/IPv4 packet whose payload the kernel cuts into segments of
    /// <paramref name="segmentPayload"/> bytes, each with copies of the headers. The TCP checksum
    /// field must hold the pseudo-header sum (CHECKSUM_PARTIAL), as Linux's own TCP leaves it.
    /// </summary>
    void SendSegmented(ReadOnlySpan<byte> packet, int segmentPayload);
}
