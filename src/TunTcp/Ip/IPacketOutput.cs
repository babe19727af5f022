namespace TunTcp.Ip;

/// <summary>Where the stack core puts each IP packet it emits: a link device, or a simulator.</summary>
public interface IPacketOutput
{
    /// <summary>Takes one complete IP packet. The span is only valid during the call.</summary>
    void Send(ReadOnlySpan<byte> packet);
}
