using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Support;

/// <summary>The fields of a TCP segment the core sent, read from the whole IP packet of either family.</summary>
internal readonly record struct SentTcp(TcpFlags Flags, SeqNumber Seq, SeqNumber Ack, int Length, ushort SourcePort, ushort DestinationPort)
{
    public static SentTcp Parse(byte[] packet)
    {
        int at = packet[0] >> 4 == 4 ? (packet[0] & 0x0F) * 4 : Ipv6Header.Length;
        Assert.True(TcpPacket.TryParse(packet.AsSpan(at), out var t, out _));
        return new SentTcp(t.Flags, t.SequenceNumber, t.AcknowledgmentNumber, t.Payload.Length, t.SourcePort, t.DestinationPort);
    }
}

/// <summary>Drives TCP through a <see cref="NetStackCore"/> from the host's side (the tools' default addresses), for core-level tests.</summary>
internal static class CoreTcp
{
    /// <summary>A segment from the host, over IPv4 or IPv6.</summary>
    public static byte[] FromHost(bool v6, TcpHeader header, TcpOptions options = default, ReadOnlySpan<byte> payload = default) =>
        v6 ? Packets6.Tcp(header, options, payload) : Packets.Tcp(header, options, payload);

    /// <summary>The ECN field of an IP packet of either family (RFC 3168 5).</summary>
    public static IpEcn EcnOf(byte[] packet) => (IpEcn)(packet[0] >> 4 == 4 ? packet[1] & 3 : (packet[1] >> 4) & 3);

    /// <summary>
    /// An active open to the host's port 5000, completed by a SYN-ACK (ISS 7000, the given MSS and
    /// extra flags); returns the connection, with <paramref name="syn"/> the packet of our SYN. The output is empty afterwards.
    /// </summary>
    public static TcpConnection ActiveOpen(NetStackCore core, RecordingOutput output, bool v6, Instant now, out byte[] syn,
        TcpFlags synAckFlags = TcpFlags.None, ushort mss = 1460)
    {
        var c = core.Connect(v6 ? Packets6.Host : Packets.Host, 5000, now);
        syn = output.Single();
        var s = SentTcp.Parse(syn);
        output.Packets.Clear();
        var synAck = new TcpHeader(5000, s.SourcePort, new SeqNumber(7000), s.Seq + 1, TcpFlags.Syn | TcpFlags.Ack | synAckFlags, 65535);
        core.Receive(FromHost(v6, synAck, new TcpOptions { MaxSegmentSize = mss }), now);
        Assert.Equal(TcpConnectionState.Established, c.State);
        output.Packets.Clear();
        return c;
    }

    /// <summary>The application writes <paramref name="bytes"/> zero bytes; the core sends what it may.</summary>
    public static void Write(NetStackCore core, TcpConnection c, int bytes, Instant now)
    {
        c.SendBuffer.Write(new byte[bytes]);
        core.MarkReady(core.FindEntry(c)!, PendingWork.SendBufferWritten);
        core.Poll(now);
    }
}
