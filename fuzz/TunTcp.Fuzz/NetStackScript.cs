using System.Buffers.Binary;
using static TunTcp.Fuzz.NetStackCoreTarget;

namespace TunTcp.Fuzz;

/// <summary>
/// Writes scripts in the format <see cref="NetStackCoreTarget"/> reads: the seed corpus's
/// exchanges (handshakes, data, closes, pings, ICMP errors, fragments) and regression inputs.
/// </summary>
internal sealed class NetStackScript
{
    private readonly List<byte> _bytes = [];

    public byte[] ToArray() => [.. _bytes];

    /// <summary>A segment from a host port to <paramref name="port"/> with these numbers.</summary>
    /// <param name="otherAddress">An odd source or destination (<see cref="NetStackCoreTarget"/>'s address pick: even picks replace the source, odd ones the destination).</param>
    public NetStackScript Tcp(bool v6, int hostPortIndex, ushort port, uint seq, uint ack, byte flags, ReadOnlySpan<byte> options = default, ReadOnlySpan<byte> payload = default, ushort window = 64240, byte? otherAddress = null)
    {
        Byte((byte)((byte)Op.Tcp | (v6 ? V6 : 0) | (otherAddress is null ? 0 : OtherAddress)));
        Byte((byte)hostPortIndex);
        if (port == ListenPort) Byte(0); else { Byte(255); UInt16(port); }
        UInt32(seq);
        UInt32(ack);
        TcpRest(flags, window, options, payload);
        if (otherAddress is byte pick) Byte(pick);
        return this;
    }

    /// <summary>An answer to the stack's <paramref name="recent"/>-th latest remembered segment, numbers offset by the deltas.</summary>
    public NetStackScript Reply(int recent, byte flags, ReadOnlySpan<byte> options = default, ReadOnlySpan<byte> payload = default, sbyte seqDelta = 0, sbyte ackDelta = 0, ushort window = 64240)
    {
        Byte((byte)Op.Tcp | Variant);
        Byte((byte)recent);
        Byte((byte)seqDelta);
        Byte((byte)ackDelta);
        return TcpRest(flags, window, options, payload);
    }

    private NetStackScript TcpRest(byte flags, ushort window, ReadOnlySpan<byte> options, ReadOnlySpan<byte> payload)
    {
        Byte(flags);
        UInt16(window);
        Byte((byte)options.Length);
        Bytes(options);
        UInt16((ushort)payload.Length);
        Bytes(payload);
        return this;
    }

    public NetStackScript Udp(bool v6, ReadOnlySpan<byte> payload, ushort port = UdpPort, byte? otherAddress = null)
    {
        Byte((byte)((byte)Op.Udp | (v6 ? V6 : 0) | (otherAddress is null ? 0 : OtherAddress)));
        Byte(0);
        if (port == UdpPort) Byte(0); else { Byte(255); UInt16(port); }
        UInt16((ushort)payload.Length);
        Bytes(payload);
        if (otherAddress is byte pick) Byte(pick);
        return this;
    }

    public NetStackScript Icmp(bool v6, byte type, byte code, uint rest, ReadOnlySpan<byte> body, byte? otherAddress = null)
    {
        Byte((byte)((byte)Op.Icmp | (v6 ? V6 : 0) | (otherAddress is null ? 0 : OtherAddress)));
        Byte(type);
        Byte(code);
        UInt32(rest);
        UInt16((ushort)body.Length);
        Bytes(body);
        if (otherAddress is byte pick) Byte(pick);
        return this;
    }

    /// <summary>An ICMP error quoting the stack's <paramref name="recent"/>-th remembered packet, cut to <paramref name="quoteLength"/> bytes.</summary>
    public NetStackScript IcmpQuoting(int recent, byte type, byte code, uint rest, ushort quoteLength)
    {
        Byte((byte)Op.Icmp | Variant);
        Byte(type);
        Byte(code);
        UInt32(rest);
        Byte((byte)recent);
        UInt16(quoteLength);
        return this;
    }

    /// <summary>Raw bytes after a valid IP header: fragments (IPv4's flags/offset field given), IPv6 extension headers.</summary>
    public NetStackScript Ip(bool v6, byte protocol, ushort identification, ushort fragmentField, ReadOnlySpan<byte> payload)
    {
        Byte((byte)((byte)Op.Ip | (v6 ? V6 : 0)));
        Byte(protocol);
        UInt16(identification);
        UInt16(fragmentField);
        UInt16((ushort)payload.Length);
        Bytes(payload);
        return this;
    }

    public NetStackScript Raw(ReadOnlySpan<byte> packet)
    {
        Byte((byte)Op.Raw);
        UInt16((ushort)packet.Length);
        Bytes(packet);
        return this;
    }

    public NetStackScript Time(int milliseconds)
    {
        if (milliseconds > ushort.MaxValue) { Byte((byte)Op.Time | Variant); UInt16((ushort)(milliseconds / 100)); }
        else { Byte((byte)Op.Time); UInt16((ushort)milliseconds); }
        return this;
    }

    public NetStackScript App(AppCall call, byte a = 0, ushort b = 0)
    {
        Byte((byte)Op.App);
        Byte((byte)call);
        switch (call)
        {
            case AppCall.Accept: break;
            case AppCall.Connect or AppCall.CompleteFlow: Byte(a); Byte((byte)b); break;
            case AppCall.Write or AppCall.Read: Byte(a); UInt16(b); break;
            default: Byte(a); break;
        }
        return this;
    }

    private void Byte(byte b) => _bytes.Add(b);

    private void UInt16(ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, v);
        Bytes(b);
    }

    private void UInt32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        Bytes(b);
    }

    private void Bytes(ReadOnlySpan<byte> b)
    {
        foreach (var x in b) _bytes.Add(x);
    }
}
