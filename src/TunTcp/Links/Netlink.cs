using System.Buffers.Binary;
using TunTcp.Wire;

namespace TunTcp.Links;

/// <summary>
/// The rtnetlink requests the tool needs (rtnetlink(7)): give a device an IPv6 address with
/// IFA_F_NODAD, which the ioctl interface of <see cref="NetDeviceControl"/> cannot express (its
/// SIOCSIFADDR is IPv4 only, and the IPv6 ioctl takes no flags), and route prefixes of either
/// family through a device (for <c>forward</c>).
/// </summary>
/// <remarks>
/// The socket is opened in the calling thread's network namespace, as for
/// <see cref="NetDeviceControl"/>. The request asks for an acknowledgement (NLM_F_ACK), so the
/// kernel's answer is always one NLMSG_ERROR message whose error field is 0 or a negative errno.
/// </remarks>
internal static unsafe class Netlink
{
    // <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_addr.h>
    private const int NETLINK_ROUTE = 0;
    private const ushort RTM_NEWADDR = 20, RTM_NEWROUTE = 24, NLMSG_ERROR = 2;
    private const ushort RTA_DST = 1, RTA_OIF = 4;
    private const byte RT_TABLE_MAIN = 254, RTPROT_BOOT = 3, RT_SCOPE_UNIVERSE = 0, RT_SCOPE_LINK = 253, RTN_UNICAST = 1;
    private const int RtMsgLength = 12;
    private const ushort NLM_F_REQUEST = 0x1, NLM_F_ACK = 0x4, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400;
    private const ushort IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_FLAGS = 8;
    private const uint IFA_F_NODAD = 0x02;
    private const int HeaderLength = 16, IfAddrMsgLength = 8;

    /// <summary>
    /// Adds <paramref name="address"/>/<paramref name="prefixLength"/> to device <paramref name="index"/>
    /// without duplicate address detection; the kernel installs the prefix route, as for
    /// <c>ip -6 addr add ADDR/LEN dev DEV nodad</c>.
    /// </summary>
    /// <exception cref="LinkSetupException">The kernel refused; the message says why.</exception>
    public static void AddIpv6Address(int index, string device, IpAddress address, int prefixLength)
    {
        Span<byte> buffer = stackalloc byte[128];
        int length = BuildAddRequest(buffer, index, address, prefixLength, sequence: 1);
        int errno = Request(buffer[..length]);
        if (errno == 0) return;
        string action = $"give {device} the address {address}/{prefixLength}";
        if (errno is Libc.EPERM or Libc.EACCES)
            throw new LinkSetupException($"cannot {action}: {Libc.Describe(errno)}. {Privileges.NetAdminHint}", errno);
        if (errno == Libc.EEXIST)
            throw new LinkSetupException($"cannot {action}: the device already has it", errno);
        if (errno == Libc.EINVAL)
            throw new LinkSetupException($"cannot {action}: {Libc.Describe(errno)} (is IPv6 disabled on {device}, or its MTU below 1280?)", errno);
        throw new LinkSetupException($"cannot {action}: {Libc.Describe(errno)}", errno);
    }

    /// <summary>
    /// Routes <paramref name="network"/>/<paramref name="prefixLength"/> (0: the default route) of
    /// either family out of device <paramref name="index"/>, with no gateway (a TUN device is a
    /// layer-3 link), as <c>ip route add NET/LEN dev DEV</c>.
    /// </summary>
    /// <exception cref="LinkSetupException">The kernel refused; the message says why.</exception>
    public static void AddRoute(int index, string device, IpAddress network, int prefixLength)
    {
        Span<byte> buffer = stackalloc byte[128];
        int length = BuildRouteRequest(buffer, index, network, prefixLength, sequence: 2);
        int errno = Request(buffer[..length]);
        if (errno == 0) return;
        string action = $"route {network}/{prefixLength} through {device}";
        if (errno is Libc.EPERM or Libc.EACCES)
            throw new LinkSetupException($"cannot {action}: {Libc.Describe(errno)}. {Privileges.NetAdminHint}", errno);
        if (errno == Libc.EEXIST)
            throw new LinkSetupException($"cannot {action}: the namespace has such a route already", errno);
        throw new LinkSetupException($"cannot {action}: {Libc.Describe(errno)}", errno);
    }

    /// <summary>Writes an RTM_NEWROUTE request (nlmsghdr, rtmsg, RTA_DST unless default, RTA_OIF); returns its length.</summary>
    internal static int BuildRouteRequest(Span<byte> destination, int index, IpAddress network, int prefixLength, uint sequence)
    {
        bool v4 = network.IsV4;
        int addressLength = v4 ? 4 : 16;
        int dst = prefixLength > 0 ? 4 + addressLength : 0;
        int length = HeaderLength + RtMsgLength + dst + 8;
        var m = destination[..length];
        m.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)length);
        BinaryPrimitives.WriteUInt16LittleEndian(m[4..], RTM_NEWROUTE);
        BinaryPrimitives.WriteUInt16LittleEndian(m[6..], NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        BinaryPrimitives.WriteUInt32LittleEndian(m[8..], sequence);
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        var rt = m[HeaderLength..];
        rt[0] = (byte)(v4 ? Libc.AF_INET : Libc.AF_INET6);
        rt[1] = (byte)prefixLength;
        rt[4] = RT_TABLE_MAIN;
        rt[5] = RTPROT_BOOT;
        rt[6] = v4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
        rt[7] = RTN_UNICAST;
        int at = HeaderLength + RtMsgLength;
        if (dst > 0)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(m[at..], (ushort)dst);
            BinaryPrimitives.WriteUInt16LittleEndian(m[(at + 2)..], RTA_DST);
            if (v4) BinaryPrimitives.WriteUInt32BigEndian(m[(at + 4)..], network.V4.Value);
            else network.WriteV6(m[(at + 4)..]);
            at += dst;
        }
        BinaryPrimitives.WriteUInt16LittleEndian(m[at..], 8);
        BinaryPrimitives.WriteUInt16LittleEndian(m[(at + 2)..], RTA_OIF);
        BinaryPrimitives.WriteInt32LittleEndian(m[(at + 4)..], index);
        return length;
    }

    /// <summary>
    /// Writes an RTM_NEWADDR request (nlmsghdr, ifaddrmsg, IFA_LOCAL, IFA_ADDRESS, IFA_FLAGS) into
    /// <paramref name="destination"/>; returns its length. Pure, so tests can check the layout.
    /// </summary>
    internal static int BuildAddRequest(Span<byte> destination, int index, IpAddress address, int prefixLength, uint sequence)
    {
        const int attribute16 = 4 + 16, attribute4 = 4 + 4;
        int length = HeaderLength + IfAddrMsgLength + 2 * attribute16 + attribute4;
        var m = destination[..length];
        m.Clear();
        // struct nlmsghdr, host byte order.
        BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)length);
        BinaryPrimitives.WriteUInt16LittleEndian(m[4..], RTM_NEWADDR);
        BinaryPrimitives.WriteUInt16LittleEndian(m[6..], NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        BinaryPrimitives.WriteUInt32LittleEndian(m[8..], sequence);
        // struct ifaddrmsg: family, prefix length, flags (the low 8 bits), scope universe, index.
        var ifa = m[HeaderLength..];
        ifa[0] = Libc.AF_INET6;
        ifa[1] = (byte)prefixLength;
        ifa[2] = (byte)IFA_F_NODAD;
        ifa[3] = 0;
        BinaryPrimitives.WriteInt32LittleEndian(ifa[4..], index);
        int at = HeaderLength + IfAddrMsgLength;
        foreach (ushort type in new[] { IFA_LOCAL, IFA_ADDRESS })
        {
            BinaryPrimitives.WriteUInt16LittleEndian(m[at..], attribute16);
            BinaryPrimitives.WriteUInt16LittleEndian(m[(at + 2)..], type);
            address.WriteV6(m[(at + 4)..]);
            at += attribute16;
        }
        BinaryPrimitives.WriteUInt16LittleEndian(m[at..], attribute4);
        BinaryPrimitives.WriteUInt16LittleEndian(m[(at + 2)..], IFA_FLAGS);
        BinaryPrimitives.WriteUInt32LittleEndian(m[(at + 4)..], IFA_F_NODAD);
        return length;
    }

    /// <summary>Sends one acknowledged request and returns the errno of the kernel's answer (0: done).</summary>
    private static int Request(ReadOnlySpan<byte> message)
    {
        int fd = Libc.Socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0) return Libc.LastErrno;
        try
        {
            fixed (byte* p = message)
                if (Libc.Send(fd, p, (nuint)message.Length, 0) < 0) return Libc.LastErrno;
            Span<byte> answer = stackalloc byte[1024];
            while (true)
            {
                nint n;
                fixed (byte* p = answer) n = Libc.Recv(fd, p, (nuint)answer.Length, 0);
                if (n < 0)
                {
                    int errno = Libc.LastErrno;
                    if (errno == Libc.EINTR) continue;
                    return errno;
                }
                return ParseAck(answer[..(int)n]);
            }
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }

    /// <summary>The errno an NLMSG_ERROR acknowledgement carries (0 for success); EIO for anything else.</summary>
    internal static int ParseAck(ReadOnlySpan<byte> answer)
    {
        if (answer.Length < HeaderLength + 4) return Libc.EIO;
        if (BinaryPrimitives.ReadUInt16LittleEndian(answer[4..]) != NLMSG_ERROR) return Libc.EIO;
        return -BinaryPrimitives.ReadInt32LittleEndian(answer[HeaderLength..]);
    }
}
