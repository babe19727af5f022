using System.Buffers.Binary;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace TunTcp.Links;

/// <summary>
/// A Linux TUN device (Documentation/networking/tuntap.rst): every read returns one IP packet the
/// kernel routed to the device, every write injects one IP packet into the kernel, as if it had
/// arrived on the device.
/// </summary>
/// <remarks>
/// <para>
/// Opening either creates the device (needs CAP_NET_ADMIN; the kernel deletes it again when the
/// descriptor closes) or, if a device of that name already exists as a persistent TUN device
/// (<c>ip tuntap add dev tun0 mode tun user NAME</c>), attaches to it: the kernel allows the owner
/// of a persistent device to attach without CAP_NET_ADMIN (tun_not_capable in drivers/net/tun.c),
/// which is how the tool runs without root. <see cref="Created"/> tells which happened.
/// </para>
/// <para>
/// The device lives in the network namespace of the thread that opened <c>/dev/net/tun</c>
/// (the file's socket takes <c>current->nsproxy->net_ns</c>); the descriptor then works from any
/// thread. It is non-blocking: <see cref="Receive"/> returns 0 on EAGAIN and <see cref="Wait"/>
/// sleeps in ppoll(2).
/// </para>
/// <para>
/// With <see cref="PacketInformation"/> (no IFF_NO_PI) every packet carries a 4-byte prefix,
/// <c>struct tun_pi { u16 flags; __be16 proto; }</c>: <see cref="Receive"/> strips it and
/// <see cref="Send"/> prepends it with ETH_P_IP or ETH_P_IPV6 chosen by the version nibble.
/// </para>
/// </remarks>
public sealed unsafe class TunDevice : ILinkDevice, ISegmentationOffload
{
    /// <summary>The clone device every TUN device is opened through.</summary>
    public const string DefaultClonePath = "/dev/net/tun";

    // <linux/if_tun.h>
    private const nuint TUNSETIFF = 0x400454CA, TUNGETIFF = 0x800454D2, TUNSETOFFLOAD = 0x400454D0, TUNSETVNETHDRSZ = 0x400454D8;
    private const short IFF_TUN = 0x0001, IFF_NO_PI = 0x1000, IFF_PERSIST = 0x0800, IFF_VNET_HDR = 0x4000;
    private const uint TUN_F_CSUM = 0x01, TUN_F_TSO4 = 0x02, TUN_F_TSO6 = 0x04;
    // <linux/virtio_net.h>: struct virtio_net_hdr, native (little) endian on tun by default.
    private const int VnetHeaderLength = 10;
    private const byte VIRTIO_NET_HDR_F_NEEDS_CSUM = 1, VIRTIO_NET_HDR_F_DATA_VALID = 2, VIRTIO_NET_HDR_GSO_TCPV4 = 1, VIRTIO_NET_HDR_GSO_TCPV6 = 4;
    private const ushort TUN_PKT_STRIP = 0x0001;
    private const int PacketInfoLength = 4;
    // <linux/if_ether.h>
    private const ushort EthPIp = 0x0800, EthPIpv6 = 0x86DD;

    // A burst of oversized packets must not keep one Receive call busy for long.
    private const int MaxDropsPerReceive = 64;

    private readonly LinkStatistics _statistics = new();
    private readonly ILogger _logger;
    private int _fd;
    private bool _sendErrorLogged;

    private TunDevice(int fd, string name, bool created, bool persistent, bool packetInformation, bool offloads, int mtu, ILogger logger)
    {
        _fd = fd;
        Offloads = offloads;
        Name = name;
        Created = created;
        Persistent = persistent;
        PacketInformation = packetInformation;
        Mtu = mtu;
        _logger = logger;
    }

    /// <summary>The device name the kernel reports (the number filled in if a "tun%d" pattern was given).</summary>
    public string Name { get; }

    /// <summary>True if opening created the device; false if it attached to an existing persistent device.</summary>
    public bool Created { get; }

    /// <summary>True if the device outlives its descriptor (TUNSETPERSIST, e.g. made by <c>ip tuntap add</c>).</summary>
    public bool Persistent { get; }

    /// <summary>True in packet-information mode: a 4-byte flags/protocol prefix on every packet (no IFF_NO_PI).</summary>
    public bool PacketInformation { get; }

    /// <summary>
    /// True when the device runs with IFF_VNET_HDR and TSO/checksum offloads: the kernel hands
    /// over TCP super-segments of up to 64 KiB and takes them from us (<see cref="ISegmentationOffload"/>).
    /// </summary>
    public bool Offloads { get; }

    /// <inheritdoc/>
    public int MaxSegmentationSize => Offloads ? 65535 : 0;

    /// <inheritdoc/>
    public bool LastReceiveChecksumTrusted { get; private set; }

    /// <summary>The device MTU: read from the kernel when opened, updated when <see cref="TunInterface"/> sets it.</summary>
    public int Mtu { get; internal set; }

    /// <summary>The TUN file descriptor, -1 once disposed.</summary>
    public int FileDescriptor => _fd;

    /// <inheritdoc/>
    public LinkStatistics Statistics => _statistics;

    /// <summary>
    /// True if <paramref name="name"/> is a name Linux accepts for a device (dev_valid_name):
    /// 1..15 bytes, not "." or "..", no '/', ':' or whitespace; otherwise <paramref name="error"/> says why.
    /// </summary>
    public static bool IsValidName(string? name, out string error) => NetDeviceControl.IsValidName(name, out error);

    /// <summary>
    /// Opens (creating or attaching to) the TUN device <paramref name="name"/> in the calling thread's
    /// network namespace.
    /// </summary>
    /// <param name="name">Device name, 1..15 bytes; "tun%d" lets the kernel pick the number.</param>
    /// <param name="packetInformation">True for the 4-byte packet-information prefix (no IFF_NO_PI).</param>
    /// <param name="clonePath">The TUN clone device; only tests point it elsewhere.</param>
    /// <param name="logger">Receives the first send failure (later ones are only counted).</param>
    /// <exception cref="LinkSetupException">The device cannot be opened; the message names the fix.</exception>
    /// <param name="offloads">
    /// Ask for IFF_VNET_HDR with checksum and TSO offloads (not with packet information). If the
    /// kernel refuses the offloads, the device still works with plain packets.
    /// </param>
    public static TunDevice Open(string name, bool packetInformation = false, string clonePath = DefaultClonePath, ILogger? logger = null, bool offloads = false)
    {
        offloads &= !packetInformation;
        if (!NetDeviceControl.IsValidName(name, out var nameError)) throw new LinkSetupException(nameError);
        using var control = NetDeviceControl.Open();
        bool existed = control.Exists(name);

        int fd = Libc.Open(clonePath, Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0) throw OpenCloneFailed(clonePath, Libc.LastErrno);
        try
        {
            Span<byte> req = stackalloc byte[NetDeviceControl.IfReqSize];
            req.Clear();
            NetDeviceControl.WriteName(req, name);
            short flags = IFF_TUN;
            if (!packetInformation) flags |= IFF_NO_PI;
            if (offloads) flags |= IFF_VNET_HDR;
            BinaryPrimitives.WriteInt16LittleEndian(req[16..], flags);
            fixed (byte* p = req)
            {
                if (Libc.Ioctl(fd, TUNSETIFF, p) != 0) throw SetIffFailed(name, existed, Libc.LastErrno);
            }
            string actualName = NetDeviceControl.ReadName(req);

            req.Clear();
            bool persistent = false;
            fixed (byte* p = req)
            {
                if (Libc.Ioctl(fd, TUNGETIFF, p) == 0)
                    persistent = (BinaryPrimitives.ReadInt16LittleEndian(req[16..]) & IFF_PERSIST) != 0;
            }
            bool offloaded = offloads && EnableOffloads(fd);
            if (offloads && !offloaded)
            {
                // The header stays (IFF_VNET_HDR cannot be dropped once set); every packet then
                // carries an all-zero one, which Send and Receive handle.
                (logger ?? NullLogger.Instance).LogInformation("TUN device {Device}: the kernel refused TSO/checksum offloads; using plain packets", actualName);
            }
            int mtu = control.GetMtu(actualName);
            return new TunDevice(fd, actualName, created: !existed, persistent, packetInformation, offloads, mtu, logger ?? NullLogger.Instance) { _vnetHeader = offloads };
        }
        catch
        {
            _ = Libc.Close(fd);
            throw;
        }
    }

    /// <summary>
    /// Takes over a TUN descriptor opened elsewhere: by a helper inside a user namespace, which
    /// passed it over a Unix socket (<see cref="DescriptorPassing"/>). The device's name, packet
    /// information and virtio header come from the descriptor itself (TUNGETIFF); the MTU is given,
    /// since the device lives in another network namespace where this process cannot ask.
    /// Disposing closes the descriptor.
    /// </summary>
    /// <exception cref="LinkSetupException">The descriptor is not an attached TUN device.</exception>
    internal static TunDevice FromDescriptor(int fd, int mtu, ILogger? logger = null)
    {
        Span<byte> req = stackalloc byte[NetDeviceControl.IfReqSize];
        req.Clear();
        fixed (byte* p = req)
        {
            if (Libc.Ioctl(fd, TUNGETIFF, p) != 0)
                throw new LinkSetupException($"descriptor {fd} is not an attached TUN device: {Libc.Describe(Libc.LastErrno)}");
        }
        short flags = BinaryPrimitives.ReadInt16LittleEndian(req[16..]);
        bool vnet = (flags & IFF_VNET_HDR) != 0;
        return new TunDevice(fd, NetDeviceControl.ReadName(req), created: true, persistent: (flags & IFF_PERSIST) != 0,
            packetInformation: (flags & IFF_NO_PI) == 0, offloads: vnet, mtu, logger ?? NullLogger.Instance) { _vnetHeader = vnet };
    }

    /// <summary>The descriptor carries a virtio_net_hdr before every packet (IFF_VNET_HDR).</summary>
    private bool _vnetHeader;

    /// <summary>
    /// TUNSETVNETHDRSZ to the plain 10-byte header, then TUNSETOFFLOAD with TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6:
    /// we take partial checksums and TSO super-segments, so the kernel stops cutting its TCP's
    /// 64 KiB GSO segments into MTU-sized packets for us (tun_set_offload in drivers/net/tun.c).
    /// </summary>
    private static bool EnableOffloads(int fd)
    {
        int size = VnetHeaderLength;
        if (Libc.Ioctl(fd, TUNSETVNETHDRSZ, &size) != 0) return false;
        return Libc.Ioctl(fd, TUNSETOFFLOAD, (void*)(nint)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) == 0;
    }

    /// <inheritdoc/>
    public int Receive(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        for (int attempt = 0; attempt < MaxDropsPerReceive; attempt++)
        {
            nint n;
            ushort piFlags = 0;
            // A trailing one-byte iovec catches a packet longer than the caller's buffer: the kernel
            // copies as much as fits and drops the rest (tun_put_user), so without it a long packet
            // would come back silently truncated. With it, n > buffer.Length means "too long".
            byte overflow;
            uint packetInfo = 0;
            byte* vnet = stackalloc byte[VnetHeaderLength];
            fixed (byte* p = buffer)
            {
                Libc.IoVec* iov = stackalloc Libc.IoVec[3];
                int count = 0;
                if (PacketInformation) iov[count++] = new Libc.IoVec { Base = &packetInfo, Length = PacketInfoLength };
                if (_vnetHeader) iov[count++] = new Libc.IoVec { Base = vnet, Length = VnetHeaderLength };
                iov[count++] = new Libc.IoVec { Base = p, Length = (nuint)buffer.Length };
                iov[count++] = new Libc.IoVec { Base = &overflow, Length = 1 };
                n = Libc.ReadV(_fd, iov, count);
            }
            if (n < 0)
            {
                int errno = Libc.LastErrno;
                if (errno == Libc.EAGAIN) return 0;
                if (errno == Libc.EINTR) continue;
                throw new IOException($"reading from TUN device {Name} failed: {Libc.Describe(errno)}");
            }
            int length = (int)n;
            if (_vnetHeader)
            {
                length -= VnetHeaderLength;
                byte vflags = vnet[0];
                LastReceiveChecksumTrusted = (vflags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)) != 0;
            }
            if (PacketInformation)
            {
                var pi = new ReadOnlySpan<byte>(&packetInfo, PacketInfoLength);
                piFlags = BinaryPrimitives.ReadUInt16BigEndian(pi);
                length -= PacketInfoLength;
            }
            if (length > buffer.Length || (piFlags & TUN_PKT_STRIP) != 0)
            {
                _statistics.CountReceiveDrop();
                continue;
            }
            if (length <= 0) { _statistics.CountReceiveDrop(); continue; }
            _statistics.CountReceived(length);
            return length;
        }
        return 0;
    }

    /// <inheritdoc/>
    public void Send(ReadOnlySpan<byte> packet)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        if (packet.IsEmpty || packet.Length > Mtu)
        {
            _statistics.CountSendDrop();
            return;
        }
        if (PacketInformation)
        {
            ushort protocol = (packet[0] >> 4) switch { 4 => EthPIp, 6 => EthPIpv6, _ => 0 };
            if (protocol == 0)
            {
                // The kernel would take proto 0 as "unknown" and drop it anyway.
                _statistics.CountSendDrop();
                return;
            }
            Span<byte> pi = stackalloc byte[PacketInfoLength];
            BinaryPrimitives.WriteUInt16BigEndian(pi, 0);
            BinaryPrimitives.WriteUInt16BigEndian(pi[2..], protocol);
            Write(pi, packet);
        }
        else if (_vnetHeader)
        {
            // An all-zero header: no offload, the checksums are complete.
            Span<byte> header = stackalloc byte[VnetHeaderLength];
            header.Clear();
            Write(header, packet);
        }
        else
        {
            Write(default, packet);
        }
    }

    /// <inheritdoc/>
    public void SendSegmented(ReadOnlySpan<byte> headers, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> payloadContinued, int segmentPayload)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        if (!Offloads) throw new InvalidOperationException($"TUN device {Name} runs without offloads");
        bool v6 = headers[0] >> 4 == 6;
        int ipHeader = v6 ? Wire.Ipv6Packet.HeaderLength : (headers[0] & 0x0F) * 4;
        int tcpHeader = (headers[ipHeader + 12] >> 4) * 4;
        int length = headers.Length + payload.Length + payloadContinued.Length;
        int dataLength = payload.Length + payloadContinued.Length;
        bool segmented = segmentPayload > 0 && dataLength > segmentPayload;
        if (length > (segmented ? MaxSegmentationSize : Mtu) || segmentPayload < 0 || headers.Length != ipHeader + tcpHeader)
        {
            _statistics.CountSendDrop();
            return;
        }
        // struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
        Span<byte> header = stackalloc byte[VnetHeaderLength];
        header.Clear();
        header[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        if (segmented)
        {
            header[1] = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
            BinaryPrimitives.WriteUInt16LittleEndian(header[2..], (ushort)(ipHeader + tcpHeader));
            BinaryPrimitives.WriteUInt16LittleEndian(header[4..], (ushort)segmentPayload);
        }
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], (ushort)ipHeader);
        BinaryPrimitives.WriteUInt16LittleEndian(header[8..], 16); // offsetof(struct tcphdr, check)
        nint n;
        fixed (byte* v = header)
        fixed (byte* h = headers)
        fixed (byte* p1 = payload)
        fixed (byte* p2 = payloadContinued)
        {
            Libc.IoVec* iov = stackalloc Libc.IoVec[4];
            int count = 0;
            iov[count++] = new Libc.IoVec { Base = v, Length = VnetHeaderLength };
            iov[count++] = new Libc.IoVec { Base = h, Length = (nuint)headers.Length };
            if (!payload.IsEmpty) iov[count++] = new Libc.IoVec { Base = p1, Length = (nuint)payload.Length };
            if (!payloadContinued.IsEmpty) iov[count++] = new Libc.IoVec { Base = p2, Length = (nuint)payloadContinued.Length };
            n = Libc.WriteV(_fd, iov, count);
        }
        Completed(n, length);
    }

    /// <summary>One write(2)/writev(2) of an optional prefix and the packet; failures are counted drops.</summary>
    private void Write(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> packet)
    {
        nint n;
        fixed (byte* pre = prefix)
        fixed (byte* p = packet)
        {
            if (prefix.IsEmpty)
            {
                n = Libc.Write(_fd, p, (nuint)packet.Length);
            }
            else
            {
                Libc.IoVec* iov = stackalloc Libc.IoVec[2];
                iov[0] = new Libc.IoVec { Base = pre, Length = (nuint)prefix.Length };
                iov[1] = new Libc.IoVec { Base = p, Length = (nuint)packet.Length };
                n = Libc.WriteV(_fd, iov, 2);
            }
        }
        Completed(n, packet.Length);
    }

    /// <summary>After a write: count it, or count and (once) log the failure.</summary>
    private void Completed(nint n, int length)
    {
        if (n < 0)
        {
            // EIO: the link is down (tun_get_user); EAGAIN/ENOBUFS: no room; EINVAL: the kernel
            // rejected the packet. All are a lost packet to the stack, which TCP recovers from.
            int errno = Libc.LastErrno;
            _statistics.CountSendDrop();
            if (!_sendErrorLogged)
            {
                _sendErrorLogged = true;
                _logger.LogWarning("Sending to TUN device {Device} failed: {Error}{Hint} (further send failures are only counted)",
                    Name, Libc.Describe(errno), errno == Libc.EIO ? "; the link is down: ip link set " + Name + " up" : "");
            }
            return;
        }
        _statistics.CountSent(length);
    }

    /// <inheritdoc/>
    public void Wait(WakeSignal wakeup, TimeSpan timeout)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        Libc.WaitReadable(_fd, wakeup.Fd, timeout);
    }

    /// <summary>
    /// Closes the descriptor. A device this object created disappears with it, together with its
    /// addresses and routes; a persistent device stays, as its owner configured it.
    /// Call it after the thread using the device has stopped.
    /// </summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) _ = Libc.Close(fd);
    }

    public override string ToString() =>
        $"{Name} ({(Created ? "created" : "attached")}{(PacketInformation ? ", packet info" : "")}{(Offloads ? ", TSO offloads" : "")}, MTU {Mtu})";

    private static LinkSetupException OpenCloneFailed(string path, int errno) => errno switch
    {
        Libc.ENOENT => new LinkSetupException(
            $"{path} does not exist: the TUN driver is not loaded. Load it with `sudo modprobe tun`"
            + " (if the node is still missing: `sudo mkdir -p /dev/net && sudo mknod /dev/net/tun c 10 200`).", errno),
        Libc.ENODEV or Libc.ENXIO => new LinkSetupException(
            $"{path} exists but the TUN driver is not loaded ({Libc.Describe(errno)}). Load it with `sudo modprobe tun`.", errno),
        Libc.EACCES or Libc.EPERM => new LinkSetupException(
            $"cannot open {path}: {Libc.Describe(errno)}. It is normally mode 0666 (`sudo chmod 0666 {path}`). {Privileges.NetAdminHint}", errno),
        _ => new LinkSetupException($"cannot open {path}: {Libc.Describe(errno)}", errno),
    };

    private static LinkSetupException SetIffFailed(string name, bool existed, int errno) => errno switch
    {
        Libc.EPERM when existed => new LinkSetupException(
            $"TUN device {name} exists but belongs to another user or group ({Libc.Describe(errno)}). Attach as its owner,"
            + $" recreate it for yourself (`sudo ip tuntap del dev {name} mode tun && sudo ip tuntap add dev {name} mode tun user $USER`), or run as root.", errno),
        Libc.EPERM or Libc.EACCES => new LinkSetupException($"cannot create TUN device {name}: {Libc.Describe(errno)}. {Privileges.NetAdminHint}", errno),
        Libc.EBUSY => new LinkSetupException(
            $"device name {name} is in use: another process has TUN device {name} open ({Libc.Describe(errno)}). Stop that process or choose another device name.", errno) { DeviceNameTaken = true },
        Libc.EINVAL when existed => new LinkSetupException(
            $"a network device named {name} already exists and is not a single-queue TUN device ({Libc.Describe(errno)}). Choose another device name.", errno) { DeviceNameTaken = true },
        _ => new LinkSetupException($"cannot {(existed ? "attach to" : "create")} TUN device {name}: {Libc.Describe(errno)}", errno),
    };
}
