using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>
/// Where the TCP engine puts the segments it emits. The payload comes as two spans because it
/// is read straight out of a ring buffer that may wrap; the implementation copies both into the
/// packet it builds, so the engine never allocates or copies per segment itself.
/// </summary>
public interface ITcpOutput
{
    void Send(in TcpTuple tuple, in TcpHeader header, in TcpOptions options, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued);
}
