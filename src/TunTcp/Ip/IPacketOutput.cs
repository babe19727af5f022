namespace TunTcp.Ip;

/// <summary>Where the stack core puts each IP packet it emits: a link device, or a simulator.</summary>
internal interface IPacketOutput
{
    /// <summary>Takes one complete IP packet. The span is only valid during the call.</summary>
    void Send(ReadOnlySpan<byte> packet);

    /// <summary>
    /// Takes a TCP packet (IPv4 or IPv6) as headers plus payload pieces, with a partial (pseudo-header)
    /// checksum, for the link to complete and, with <paramref name="segmentPayload"/> &gt; 0, to
    /// cut into segments (only called when the core was told the link offloads; see
    /// <see cref="Links.ISegmentationOffload"/>).
    /// </summary>
    void SendSegmented(ReadOnlySpan<byte> headers, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued, int segmentPayload) =>
        throw new NotSupportedException("this output does not offload segmentation");
}
