using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>
/// Where the TCP engine puts the segments it emits. The payload comes as two spans because it
/// is read straight out of a ring buffer that may wrap; the implementation copies both into the
/// packet it builds, so the engine never allocates or copies per segment itself.
/// </summary>
internal interface ITcpOutput
{
    void Send(in TcpTuple tuple, in TcpHeader header, in TcpOptions options, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued);

    /// <summary>
    /// Sends a super-segment whose payload is longer than one segment; the link cuts it into
    /// segments of <paramref name="segmentPayload"/> bytes. Only used when
    /// <see cref="TcpEnvironment.SegmentationOffloadBytes"/> is set; outputs without offload
    /// need not implement it.
    /// </summary>
    void SendSegmented(in TcpTuple tuple, in TcpHeader header, in TcpOptions options, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued, int segmentPayload) =>
        Send(tuple, header, options, payload, payloadContinued);
}
