namespace TunTcp.Links;

/// <summary>
/// A device that carries raw IP packets, with no link-layer header: a Linux TUN device, one end
/// of an in-memory pair, or a decorator around another device (capture, tracer, fault injector).
/// One thread (the stack thread) calls <see cref="Receive"/>, <see cref="Send"/> and
/// <see cref="Wait"/>; implementations need not be thread-safe beyond that, except that
/// <see cref="WakeSignal.Signal"/> may be called from any thread.
/// </summary>
public interface ILinkDevice : IDisposable
{
    /// <summary>The largest IP packet, in bytes, the device carries.</summary>
    int Mtu { get; }

    /// <summary>
    /// Copies the next waiting packet into <paramref name="buffer"/> and returns its length, or
    /// 0 when nothing is waiting. Never blocks. <paramref name="buffer"/> should hold at least
    /// <see cref="Mtu"/> bytes; a longer packet is dropped and counted, never truncated.
    /// </summary>
    int Receive(Span<byte> buffer);

    /// <summary>
    /// Sends one IP packet. Never blocks for long: if the device cannot take it now, the packet
    /// is dropped and counted, like a full NIC queue; TCP recovers.
    /// </summary>
    void Send(ReadOnlySpan<byte> packet);

    /// <summary>
    /// Blocks until <see cref="Receive"/> may return a packet, <paramref name="wakeup"/> is
    /// signalled, or <paramref name="timeout"/> passes (<see cref="Timeout.InfiniteTimeSpan"/>:
    /// no limit). Spurious returns are allowed; callers loop.
    /// </summary>
    void Wait(WakeSignal wakeup, TimeSpan timeout);

    /// <summary>Counters since the device was opened.</summary>
    LinkStatistics Statistics { get; }
}

/// <summary>Packet counters of a link device. Updated by the stack thread, read by anyone.</summary>
public sealed class LinkStatistics
{
    private long _packetsReceived, _bytesReceived, _packetsSent, _bytesSent, _receiveDrops, _sendDrops;

    public long PacketsReceived => Volatile.Read(ref _packetsReceived);
    public long BytesReceived => Volatile.Read(ref _bytesReceived);
    public long PacketsSent => Volatile.Read(ref _packetsSent);
    public long BytesSent => Volatile.Read(ref _bytesSent);
    /// <summary>Packets lost on the way in (too long for the buffer, read errors).</summary>
    public long ReceiveDrops => Volatile.Read(ref _receiveDrops);
    /// <summary>Packets the device could not take (queue full, too long for the MTU).</summary>
    public long SendDrops => Volatile.Read(ref _sendDrops);

    public void CountReceived(int bytes) { _packetsReceived++; _bytesReceived += bytes; }
    public void CountSent(int bytes) { _packetsSent++; _bytesSent += bytes; }
    public void CountReceiveDrop() => _receiveDrops++;
    public void CountSendDrop() => _sendDrops++;

    public override string ToString() =>
        $"rx {PacketsReceived} pkts {BytesReceived} B (drops {ReceiveDrops}), tx {PacketsSent} pkts {BytesSent} B (drops {SendDrops})";
}
