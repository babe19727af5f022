using System.Runtime.InteropServices;
using TunTcp.Links;

namespace TunTcp.AspNetCore.Tests.Support;

/// <summary>
/// Stand-in for <c>MemoryLink.CreatePair</c> while that lands on main: two connected in-memory
/// link ends, each direction a bounded queue with an eventfd readable while packets wait, so the
/// stack thread sleeps in one poll(2) on it and its wake-up eventfd.
/// </summary>
internal sealed class InterimLink : ILinkDevice
{
    private readonly PacketQueue _inbound;
    private readonly PacketQueue _outbound;

    private InterimLink(int mtu, PacketQueue inbound, PacketQueue outbound)
    {
        Mtu = mtu;
        _inbound = inbound;
        _outbound = outbound;
    }

    public static (InterimLink First, InterimLink Second) CreatePair(int mtu, int capacity)
    {
        var a = new PacketQueue(capacity);
        var b = new PacketQueue(capacity);
        return (new InterimLink(mtu, a, b), new InterimLink(mtu, b, a));
    }

    public int Mtu { get; }

    public LinkStatistics Statistics { get; } = new();

    public int Receive(Span<byte> buffer)
    {
        var packet = _inbound.TryDequeue();
        if (packet is null) return 0;
        if (packet.Length > buffer.Length) { Statistics.CountReceiveDrop(); return 0; }
        packet.CopyTo(buffer);
        Statistics.CountReceived(packet.Length);
        return packet.Length;
    }

    public void Send(ReadOnlySpan<byte> packet)
    {
        if (packet.Length > Mtu || !_outbound.TryEnqueue(packet.ToArray())) { Statistics.CountSendDrop(); return; }
        Statistics.CountSent(packet.Length);
    }

    public unsafe void Wait(WakeSignal wakeup, TimeSpan timeout)
    {
        _inbound.ConsumeSignal();
        if (_inbound.Count > 0) return;
        PollFd* fds = stackalloc PollFd[2];
        fds[0] = new PollFd { Fd = _inbound.EventFd, Events = 1 };
        fds[1] = new PollFd { Fd = wakeup.Fd, Events = 1 };
        int ms = timeout == Timeout.InfiniteTimeSpan ? -1 : (int)Math.Clamp(Math.Ceiling(timeout.TotalMilliseconds), 0, int.MaxValue);
        _ = poll(fds, 2, ms);
    }

    public void Dispose() => _inbound.Dispose();

    private sealed unsafe class PacketQueue(int capacity) : IDisposable
    {
        private readonly Queue<byte[]> _queue = new();
        private readonly Lock _lock = new();
        private int _fd = eventfd(0, 0x800 | 0x80000);

        public int EventFd => _fd;
        public int Count { get { lock (_lock) return _queue.Count; } }

        public bool TryEnqueue(byte[] packet)
        {
            lock (_lock)
            {
                if (_fd < 0 || _queue.Count >= capacity) return false;
                _queue.Enqueue(packet);
                if (_queue.Count == 1) { ulong one = 1; _ = write(_fd, &one, 8); }
                return true;
            }
        }

        public byte[]? TryDequeue()
        {
            lock (_lock) return _queue.TryDequeue(out var p) ? p : null;
        }

        public void ConsumeSignal()
        {
            lock (_lock) { if (_fd >= 0) { ulong v; _ = read(_fd, &v, 8); } }
        }

        public void Dispose()
        {
            lock (_lock) { if (_fd >= 0) { _ = close(_fd); _fd = -1; } _queue.Clear(); }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd { public int Fd; public short Events; public short Revents; }

    [DllImport("libc")] private static extern unsafe int poll(PollFd* fds, ulong nfds, int timeout);
    [DllImport("libc")] private static extern int eventfd(uint initval, int flags);
    [DllImport("libc")] private static extern unsafe nint write(int fd, void* buf, nint count);
    [DllImport("libc")] private static extern unsafe nint read(int fd, void* buf, nint count);
    [DllImport("libc")] private static extern int close(int fd);
}
