using System.Runtime.InteropServices;

namespace TunTcp.Links;

/// <summary>
/// The few libc calls the Linux link devices need. Constants are the x86-64 / arm64 (asm-generic)
/// values from the kernel UAPI headers named next to each; both architectures agree on all of them.
/// </summary>
internal static unsafe partial class Libc
{
    // <asm-generic/fcntl.h>
    public const int O_RDONLY = 0, O_RDWR = 2, O_NONBLOCK = 0x800, O_CLOEXEC = 0x80000;

    // <asm-generic/errno-base.h>, <asm-generic/errno.h>
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, ENXIO = 6, EAGAIN = 11, EACCES = 13,
        EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOBUFS = 105, EADDRNOTAVAIL = 99;

    // <asm-generic/poll.h>
    public const short POLLIN = 0x1;

    // <linux/sched.h>: setns(2) nstype for a network namespace.
    public const int CLONE_NEWNET = 0x40000000;

    // <linux/socket.h>, <linux/net.h>
    public const int AF_INET = 2, AF_INET6 = 10, AF_NETLINK = 16, SOCK_DGRAM = 2, SOCK_RAW = 3, SOCK_CLOEXEC = O_CLOEXEC;

    // <sys/eventfd.h>
    public const int EFD_NONBLOCK = 0x800, EFD_CLOEXEC = 0x80000;

    /// <summary><c>struct iovec</c> from &lt;bits/types/struct_iovec.h&gt;.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary><c>struct pollfd</c> from poll(2).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    /// <summary><c>struct timespec</c> on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "readv", SetLastError = true)]
    public static partial nint ReadV(int fd, IoVec* iov, int count);

    [LibraryImport("libc", EntryPoint = "writev", SetLastError = true)]
    public static partial nint WriteV(int fd, IoVec* iov, int count);

    // ioctl(2) is variadic; on x86-64 and arm64 Linux a variadic pointer argument is passed exactly
    // like a fixed one, so a three-argument prototype is safe there.
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, void* argument);

    [LibraryImport("libc", EntryPoint = "ppoll", SetLastError = true)]
    public static partial int PPoll(PollFd* fds, nuint count, TimeSpec* timeout, void* signalMask);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(int fd, int namespaceType);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, void* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, void* buffer, nuint length, int flags);

    /// <summary><c>struct msghdr</c> from &lt;bits/socket.h&gt; (64-bit layout).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    // <linux/socket.h>, <linux/in.h>, <linux/in6.h>, <linux/errqueue.h>
    public const int MSG_DONTWAIT = 0x40, MSG_ERRQUEUE = 0x2000;
    public const int SOL_IP = 0, IP_RECVERR = 11, SOL_IPV6 = 41, IPV6_RECVERR = 25;
    public const byte SO_EE_ORIGIN_ICMP = 2, SO_EE_ORIGIN_ICMP6 = 3;

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    public static partial nint RecvMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    public static partial nint SendMsg(int fd, MsgHdr* message, int flags);

    // <bits/socket.h>: descriptors passed over a Unix socket (unix(7), SCM_RIGHTS).
    public const int SOL_SOCKET = 1, SCM_RIGHTS = 1, MSG_NOSIGNAL = 0x4000, MSG_CMSG_CLOEXEC = 0x40000000;

    // <sys/mount.h>
    public const nuint MS_BIND = 0x1000;

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string? fileSystemType, nuint flags, void* data);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initialValue, int flags);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    /// <summary>errno of the last failed call made through this class on this thread.</summary>
    public static int LastErrno => Marshal.GetLastPInvokeError();

    /// <summary>The strerror(3) text for <paramref name="errno"/>.</summary>
    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary>
    /// Waits with ppoll(2) until one of two descriptors is readable or <paramref name="timeout"/>
    /// passes. ppoll rather than poll for its nanosecond timeout: the stack sleeps until its next
    /// timer, and rounding a 200 µs deadline up to 1 ms (or down to a busy 0) would distort it.
    /// EINTR is a normal (spurious) return.
    /// </summary>
    public static void WaitReadable(int fdA, int fdB, TimeSpan timeout)
    {
        PollFd* fds = stackalloc PollFd[2];
        fds[0] = new PollFd { Fd = fdA, Events = POLLIN };
        fds[1] = new PollFd { Fd = fdB, Events = POLLIN };
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            _ = PPoll(fds, 2, null, null);
            return;
        }
        // A deadline already in the past polls without sleeping.
        long ticks = Math.Max(0, timeout.Ticks);
        var ts = new TimeSpec
        {
            Seconds = ticks / TimeSpan.TicksPerSecond,
            Nanoseconds = ticks % TimeSpan.TicksPerSecond * TimeSpan.NanosecondsPerTick,
        };
        _ = PPoll(fds, 2, &ts, null);
    }
}
