namespace TunTcp.Ip;

/// <summary>Where the stack core puts each IP packet it emits: a link device, or a simulator.</summary>
public interface IPacketOutput
{
    /// <summary>Takes one complete IP packet. The span is only valid during the call.</summary>
    void Send(ReadOnlySpan<byte> packet);

    /// <summary>
    /// Takes a TCP/IPv4 super-segment for the link to cut into segments of
    /// <paramref name="segmentPayload"/> bytes (only called when the core was told the link
    /// offloads segmentation; see <see cref="Links.ISegmentationOffload"/>).
    /// </summary>
    void SendSegmented(ReadOnlySpan<byte> packet, int segmentPayload) =>
        throw new NotSupportedException("this output does not offload segmentation");
}
