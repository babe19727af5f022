using System.Buffers.Binary;
using System.Text;

namespace TunTcp.Links;

/// <summary>
/// Configures a network device through the classic ioctls on an AF_INET datagram socket
/// (netdevice(7)): read and set flags and MTU, give an IPv4 address and netmask.
/// </summary>
/// <remarks>
/// Why ioctls rather than rtnetlink: everything the tool needs (one IPv4 address with its prefix,
/// MTU, link up) is covered by four fixed-layout requests over a 40-byte <c>struct ifreq</c>, with
/// the result in errno; rtnetlink would need message building, attribute alignment and parsing
/// of NLMSG_ERROR acknowledgements for the same effect. The limits of the ioctl interface (one
/// address per label, no IPv6) do not matter here. The kernel installs the prefix route for the
/// address itself, exactly as for <c>ip addr add</c>.
/// <para>
/// The socket is created in the network namespace of the calling thread (socket(2) takes
/// <c>current->nsproxy->net_ns</c>), so it addresses that namespace's devices from any thread
/// afterwards.
/// </para>
/// </remarks>
internal sealed unsafe class NetDeviceControl : IDisposable
{
    // <linux/sockios.h>
    private const nuint SIOCGIFFLAGS = 0x8913, SIOCSIFFLAGS = 0x8914, SIOCSIFADDR = 0x8916,
        SIOCSIFNETMASK = 0x891C, SIOCGIFMTU = 0x8921, SIOCSIFMTU = 0x8922, SIOCGIFINDEX = 0x8933;

    /// <summary>IFF_UP from &lt;linux/if.h&gt;.</summary>
    public const int IffUp = 0x1;

    /// <summary>IFNAMSIZ from &lt;linux/if.h&gt;: names are at most 15 bytes plus the terminating NUL.</summary>
    public const int NameSize = 16;

    /// <summary>sizeof(struct ifreq) on 64-bit Linux: the name, then a 24-byte union.</summary>
    public const int IfReqSize = 40;

    private int _socket;

    private NetDeviceControl(int socket) => _socket = socket;

    /// <summary>Opens the control socket in the calling thread's network namespace.</summary>
    public static NetDeviceControl Open()
    {
        int fd = Libc.Socket(Libc.AF_INET, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            int errno = Libc.LastErrno;
            throw new LinkSetupException($"cannot open an AF_INET control socket: {Libc.Describe(errno)} (is IPv4 available in this kernel?)", errno);
        }
        return new NetDeviceControl(fd);
    }

    /// <summary>True if a device named <paramref name="name"/> exists in the socket's namespace.</summary>
    public bool Exists(string name)
    {
        Span<byte> req = stackalloc byte[IfReqSize];
        WriteName(req, name);
        return Call(SIOCGIFINDEX, req) == 0;
    }

    /// <summary>The device's interface index (for rtnetlink requests).</summary>
    public int GetIndex(string name)
    {
        Span<byte> req = stackalloc byte[IfReqSize];
        WriteName(req, name);
        Check(Call(SIOCGIFINDEX, req), $"read the index of {name}");
        return BinaryPrimitives.ReadInt32LittleEndian(req[16..]);
    }

    public int GetMtu(string name)
    {
        Span<byte> req = stackalloc byte[IfReqSize];
        WriteName(req, name);
        Check(Call(SIOCGIFMTU, req), $"read the MTU of {name}");
        return BinaryPrimitives.ReadInt32LittleEndian(req[16..]);
    }

    public void SetMtu(string name, int mtu)
    {
        Span<byte> req = stackalloc byte[IfReqSize];
        WriteName(req, name);
        BinaryPrimitives.WriteInt32LittleEndian(req[16..], mtu);
        int errno = Call(SIOCSIFMTU, req);
        if (errno == Libc.EINVAL)
            throw new LinkSetupException($"the kernel refused MTU {mtu} for {name}: {Libc.Describe(errno)}; choose an MTU from 68 to 65535", errno);
        Check(errno, $"set the MTU of {name} to {mtu}");
    }

    public int GetFlags(string name)
    {
        Span<byte> req = stackalloc byte[IfReqSize];
        WriteName(req, name);
        Check(Call(SIOCGIFFLAGS, req), $"read the flags of {name}");
        return BinaryPrimitives.ReadUInt16LittleEndian(req[16..]);
    }

    /// <summary>Sets IFF_UP, keeping the other flags.</summary>
    public void BringUp(string name)
    {
        int flags = GetFlags(name);
        if ((flags & IffUp) != 0) return;
        Span<byte> req = stackalloc byte[IfReqSize];
        WriteName(req, name);
        BinaryPrimitives.WriteUInt16LittleEndian(req[16..], (ushort)(flags | IffUp));
        Check(Call(SIOCSIFFLAGS, req), $"bring {name} up");
    }

    /// <summary>Gives the device its IPv4 address, then narrows the netmask to the prefix.</summary>
    public void SetAddress(string name, InterfaceAddress address)
    {
        // SIOCSIFADDR first: it creates the address with a classful default mask, which
        // SIOCSIFNETMASK then replaces (the kernel re-inserts the address and its prefix route).
        Span<byte> req = stackalloc byte[IfReqSize];
        WriteName(req, name);
        WriteSockAddrIn(req[16..], address.Value);
        int errno = Call(SIOCSIFADDR, req);
        if (errno == Libc.EINVAL || errno == Libc.EADDRNOTAVAIL)
            throw new LinkSetupException($"the kernel refused address {address.Address} for {name}: {Libc.Describe(errno)}; give a unicast host address such as 192.168.0.1/24", errno);
        Check(errno, $"give {name} the address {address.Address}");

        req.Clear();
        WriteName(req, name);
        WriteSockAddrIn(req[16..], address.Netmask);
        errno = Call(SIOCSIFNETMASK, req);
        if (errno == Libc.EINVAL)
            throw new LinkSetupException($"the kernel refused prefix /{address.PrefixLength} for {name}: {Libc.Describe(errno)}; use a prefix length from 1 to 32", errno);
        Check(errno, $"set the netmask of {name} to {address.Netmask}");
    }

    public void Dispose()
    {
        if (_socket >= 0) { _ = Libc.Close(_socket); _socket = -1; }
    }

    /// <summary>
    /// Checks a device name the way the kernel's dev_valid_name does: 1..15 bytes, not "." or "..",
    /// no '/', ':' or whitespace. A "%d" (as in "tun%d") asks the kernel to pick the number.
    /// </summary>
    public static bool IsValidName(string? name, out string error)
    {
        error = "";
        if (string.IsNullOrEmpty(name)) error = "the device name is empty";
        else if (Encoding.UTF8.GetByteCount(name) >= NameSize) error = $"device name '{name}' is longer than {NameSize - 1} bytes (IFNAMSIZ)";
        else if (name is "." or "..") error = $"'{name}' is not a valid device name";
        else if (name.Any(c => c == '/' || c == ':' || char.IsWhiteSpace(c) || char.IsControl(c)))
            error = $"device name '{name}' contains '/', ':', a space or a control character, which Linux does not allow";
        return error.Length == 0;
    }

    /// <summary>Writes the NUL-terminated name into <c>ifr_name</c>.</summary>
    public static void WriteName(Span<byte> ifreq, string name)
    {
        ifreq[..NameSize].Clear();
        int written = Encoding.UTF8.GetBytes(name, ifreq[..(NameSize - 1)]);
        ifreq[written] = 0;
    }

    /// <summary>Reads <c>ifr_name</c> back (the kernel fills it in for a "tun%d" pattern).</summary>
    public static string ReadName(ReadOnlySpan<byte> ifreq)
    {
        var field = ifreq[..NameSize];
        int end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }

    private static void WriteSockAddrIn(Span<byte> union, Wire.Ipv4Address address)
    {
        // struct sockaddr_in: sin_family in host order, sin_port, sin_addr in network order.
        union[..16].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(union, Libc.AF_INET);
        address.Write(union[4..]);
    }

    private int Call(nuint request, Span<byte> ifreq)
    {
        fixed (byte* p = ifreq)
            return Libc.Ioctl(_socket, request, p) == 0 ? 0 : Libc.LastErrno;
    }

    private static void Check(int errno, string action)
    {
        if (errno == 0) return;
        if (errno is Libc.EPERM or Libc.EACCES)
            throw new LinkSetupException($"cannot {action}: {Libc.Describe(errno)}. {Privileges.NetAdminHint}", errno);
        if (errno == Libc.ENODEV)
            throw new LinkSetupException($"cannot {action}: the device does not exist (was it deleted while the tool was starting?)", errno);
        throw new LinkSetupException($"cannot {action}: {Libc.Describe(errno)}", errno);
    }
}
