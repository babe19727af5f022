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
internal interface ISegmentationOffload
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
    /// Sends a TCP packet (IPv4 or IPv6, no extension headers) given as its headers and up to two payload pieces (gathered with
    /// writev(2), so the payload goes from where it lies, e.g. a send ring, straight to the kernel).
    /// The TCP checksum field holds only the pseudo-header sum (CHECKSUM_PARTIAL, as Linux's own
    /// TCP leaves it): the kernel completes it, or, for local delivery, never needs it. With
    /// <paramref name="segmentPayload"/> &gt; 0 the kernel also cuts the payload into segments of
    /// that size, each with copies of the headers.
    /// </summary>
    void SendSegmented(ReadOnlySpan<byte> headers, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued, int segmentPayload);
}
