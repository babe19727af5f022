using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using TunTcp.Forwarding;

namespace TunTcp.Tests.Forwarding;

/// <summary>The control messages and names recvmsg(MSG_ERRQUEUE) returns, as ip(7) and ipv6(7) lay them out on 64-bit Linux.</summary>
public class IcmpErrorQueueTests
{
    /// <summary>One cmsghdr (len, level, type) with a sock_extended_err and an offender sockaddr after it.</summary>
    private static byte[] Control(int level, int type, int errno, byte origin, params int[] paddingBefore)
    {
        int before = paddingBefore.Length > 0 ? paddingBefore[0] : 0;
        var control = new byte[before + 16 + 16 + 16];
        if (before > 0)
        {
            // An unrelated control message first (e.g. IP_TTL): 16-byte header and a 4-byte int, aligned to 8.
            BinaryPrimitives.WriteUInt64LittleEndian(control, 20);
            BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(8), 0);
            BinaryPrimitives.WriteInt32LittleEndian(control.AsSpan(12), 2);
        }
        var c = control.AsSpan(before);
        BinaryPrimitives.WriteUInt64LittleEndian(c, 16 + 16 + 16);
        BinaryPrimitives.WriteInt32LittleEndian(c[8..], level);
        BinaryPrimitives.WriteInt32LittleEndian(c[12..], type);
        BinaryPrimitives.WriteInt32LittleEndian(c[16..], errno);
        c[20] = origin; c[21] = 3; c[22] = 3; // ee_type, ee_code: ICMP port unreachable
        return control;
    }

    private static byte[] Name4(string address, int port)
    {
        var name = new byte[16];
        BinaryPrimitives.WriteUInt16LittleEndian(name, 2);
        BinaryPrimitives.WriteUInt16BigEndian(name.AsSpan(2), (ushort)port);
        IPAddress.Parse(address).GetAddressBytes().CopyTo(name, 4);
        return name;
    }

    private static byte[] Name6(string address, int port)
    {
        var name = new byte[28];
        BinaryPrimitives.WriteUInt16LittleEndian(name, 10);
        BinaryPrimitives.WriteUInt16BigEndian(name.AsSpan(2), (ushort)port);
        IPAddress.Parse(address).GetAddressBytes().CopyTo(name, 8);
        return name;
    }

    [Fact]
    public void PortUnreachable_OverIpv4_NamesTheDestinationAndConnectionRefused()
    {
        var error = IcmpErrorQueue.ParseError(Control(0, 11, 111, 2), Name4("10.203.0.2", 7999));
        Assert.Equal((new IPEndPoint(IPAddress.Parse("10.203.0.2"), 7999), SocketError.ConnectionRefused), error);
    }

    [Fact]
    public void HostUnreachable_OverIpv6_BehindAnotherControlMessage()
    {
        var error = IcmpErrorQueue.ParseError(Control(41, 25, 113, 3, 24), Name6("fd00:cb::2", 53));
        Assert.Equal((new IPEndPoint(IPAddress.Parse("fd00:cb::2"), 53), SocketError.HostUnreachable), error);
    }

    [Theory]
    [InlineData(0, 11, 90, 2)]   // EMSGSIZE (fragmentation needed): the upstream's own path MTU, not the application's
    [InlineData(0, 11, 111, 1)]  // a local error, not an ICMP message
    [InlineData(0, 8, 111, 2)]   // IP_PKTINFO, not IP_RECVERR
    public void OtherMessages_AreNotErrorsToRelay(int level, int type, int errno, int origin)
    {
        Assert.Null(IcmpErrorQueue.ParseError(Control(level, type, errno, (byte)origin), Name4("10.203.0.2", 7999)));
    }

    [Fact]
    public void TruncatedOrEmptyControl_IsNull()
    {
        Assert.Null(IcmpErrorQueue.ParseError([], Name4("10.203.0.2", 1)));
        Assert.Null(IcmpErrorQueue.ParseError(Control(0, 11, 111, 2).AsSpan(0, 20), Name4("10.203.0.2", 1)));
        Assert.Null(IcmpErrorQueue.ParseError(Control(0, 11, 111, 2), []));
    }
}
