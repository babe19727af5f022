using System.Net.Sockets;

namespace TunTcp.Links;

/// <summary>
/// A file descriptor and a short message over a connected Unix stream socket (unix(7),
/// SCM_RIGHTS): how a TUN device opened inside a user namespace reaches the process that runs the
/// stack outside it, as pasta passes its tap descriptor. The kernel installs a new descriptor for
/// the same open file in the receiver; the sender may close its own afterwards.
/// </summary>
internal static unsafe class DescriptorPassing
{
    // struct cmsghdr (64-bit): size_t cmsg_len, int cmsg_level, int cmsg_type, then the data,
    // aligned to 8: CMSG_SPACE(sizeof(int)) = 24, CMSG_LEN(sizeof(int)) = 20.
    private const int HeaderLength = 16, ControlSpace = 24, ControlLength = HeaderLength + sizeof(int);

    /// <summary>Sends <paramref name="message"/> (at least one byte) with <paramref name="fd"/> attached.</summary>
    /// <exception cref="IOException">sendmsg failed or sent part of the message.</exception>
    public static void Send(Socket socket, int fd, ReadOnlySpan<byte> message)
    {
        if (message.IsEmpty) throw new ArgumentException("a descriptor needs at least one byte of message to travel with", nameof(message));
        byte* control = stackalloc byte[ControlSpace];
        new Span<byte>(control, ControlSpace).Clear();
        *(nuint*)control = ControlLength;
        *(int*)(control + 8) = Libc.SOL_SOCKET;
        *(int*)(control + 12) = Libc.SCM_RIGHTS;
        *(int*)(control + HeaderLength) = fd;
        fixed (byte* data = message)
        {
            var iov = new Libc.IoVec { Base = data, Length = (nuint)message.Length };
            var header = new Libc.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = ControlSpace };
            nint sent = Libc.SendMsg((int)socket.Handle, &header, Libc.MSG_NOSIGNAL);
            if (sent < 0) throw new IOException($"sendmsg with a descriptor failed: {Libc.Describe(Libc.LastErrno)}");
            if (sent != message.Length) throw new IOException($"sendmsg sent {sent} of {message.Length} bytes");
        }
    }

    /// <summary>
    /// Receives one message into <paramref name="buffer"/>; returns its length (0 at end of stream)
    /// and the descriptor that came with it (close-on-exec), or -1 when none did.
    /// </summary>
    /// <exception cref="IOException">recvmsg failed, or the control data was cut short (a descriptor may have been lost).</exception>
    public static int Receive(Socket socket, Span<byte> buffer, out int fd)
    {
        fd = -1;
        byte* control = stackalloc byte[ControlSpace];
        new Span<byte>(control, ControlSpace).Clear();
        fixed (byte* data = buffer)
        {
            var iov = new Libc.IoVec { Base = data, Length = (nuint)buffer.Length };
            var header = new Libc.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = ControlSpace };
            nint received;
            do received = Libc.RecvMsg((int)socket.Handle, &header, Libc.MSG_CMSG_CLOEXEC);
            while (received < 0 && Libc.LastErrno == 4 /* EINTR */);
            if (received < 0) throw new IOException($"recvmsg failed: {Libc.Describe(Libc.LastErrno)}");
            if (header.ControlLength >= ControlLength && *(int*)(control + 8) == Libc.SOL_SOCKET && *(int*)(control + 12) == Libc.SCM_RIGHTS)
                fd = *(int*)(control + HeaderLength);
            if ((header.Flags & 0x8 /* MSG_CTRUNC */) != 0)
            {
                if (fd >= 0) _ = Libc.Close(fd);
                throw new IOException("recvmsg: the control data was truncated (more descriptors than expected)");
            }
            return (int)received;
        }
    }
}
