using Microsoft.Extensions.Logging;
using TunTcp.Ip;
using TunTcp.Tcp;

namespace TunTcp.Apps;

/// <summary>RFC 862 echo over TCP: every byte received is sent back; the peer's FIN is echoed as a FIN.</summary>
internal sealed class EchoService(NetStackCore core, ushort port, ILogger logger, int backlog = 128)
    : InlineTcpService(core, port, backlog, logger)
{
    public override string Name => "echo";

    protected override InlineTcpHandler CreateHandler(NetStackCore core, TcpConnection connection, ConnectionEntry entry) =>
        new Handler(this, core, connection, entry);

    private sealed class Handler(InlineTcpService service, NetStackCore core, TcpConnection connection, ConnectionEntry entry)
        : InlineTcpHandler(service, core, connection, entry)
    {
        protected override void OnActivity(TcpConnectionEvents events)
        {
            var rx = Connection.ReceiveBuffer;
            var tx = Connection.SendBuffer;
            int n = Math.Min(rx.Count, tx.Free);
            if (n > 0 && !Connection.SendClosed)
            {
                // Ring to ring, at most two copies for the wrap-around on each side.
                rx.Peek(0, n, out var first, out var second);
                tx.Write(first);
                tx.Write(second);
                rx.Consume(n);
                Request(PendingWork.SendBufferWritten | PendingWork.ReceiveBufferRead);
            }
            // The peer's FIN is echoed once everything before it went back.
            if (Connection.PeerFinReceived && rx.Count == 0) HalfCloseOnce();
        }
    }
}

/// <summary>RFC 863 discard: everything received is dropped; closes when the peer closes.</summary>
internal sealed class DiscardService(NetStackCore core, ushort port, ILogger logger, int backlog = 128)
    : InlineTcpService(core, port, backlog, logger)
{
    public override string Name => "discard";

    protected override InlineTcpHandler CreateHandler(NetStackCore core, TcpConnection connection, ConnectionEntry entry) =>
        new Handler(this, core, connection, entry);

    private sealed class Handler(InlineTcpService service, NetStackCore core, TcpConnection connection, ConnectionEntry entry)
        : InlineTcpHandler(service, core, connection, entry)
    {
        protected override void OnActivity(TcpConnectionEvents events)
        {
            DiscardReceived();
            if (Connection.PeerFinReceived) HalfCloseOnce();
        }
    }
}

/// <summary>
/// RFC 864 character generator over TCP: sends lines of 72 printable characters, each line
/// starting one character later in the 95-character ASCII cycle, until the peer goes away;
/// whatever the peer sends is discarded.
/// </summary>
internal sealed class ChargenService(NetStackCore core, ushort port, ILogger logger, int backlog = 128)
    : InlineTcpService(core, port, backlog, logger)
{
    public override string Name => "chargen";

    protected override InlineTcpHandler CreateHandler(NetStackCore core, TcpConnection connection, ConnectionEntry entry) =>
        new Handler(this, core, connection, entry);

    private sealed class Handler(InlineTcpService service, NetStackCore core, TcpConnection connection, ConnectionEntry entry)
        : InlineTcpHandler(service, core, connection, entry)
    {
        private const int FirstFill = 64 * 1024;
        private long _position;

        protected override void OnActivity(TcpConnectionEvents events)
        {
            DiscardReceived();
            if (Connection.PeerFinReceived)
            {
                // RFC 864: the stream goes on "until the calling user terminates the connection".
                HalfCloseOnce();
                return;
            }
            if (Connection.SendClosed || Connection.State is not (TcpConnectionState.Established or TcpConnectionState.CloseWait)) return;
            var tx = Connection.SendBuffer;
            if (tx.Free == 0) return;
            // Keep queued what the connection can send soon, as Linux sizes a send buffer by the
            // congestion window (tcp_sndbuf_expand: 2 x cwnd), at least 64 KiB: a new
            // connection's first segment goes out without the whole buffer being allocated and
            // filled first (1 MiB with --buffer auto: ~3 ms and 1 MiB per accepted connection),
            // while a bulk transfer's buffer grows with its window.
            int target = (int)Math.Min(int.MaxValue, Math.Max(FirstFill, 2L * Connection.CongestionWindow));
            if (tx.Count >= target) return;
            tx.GetWritable(out var first, out var second, target - tx.Count);
            ChargenPattern.Fill(first, _position);
            ChargenPattern.Fill(second, _position + first.Length);
            int n = first.Length + second.Length;
            tx.Commit(n);
            _position += n;
            Request(PendingWork.SendBufferWritten);
        }
    }
}

/// <summary>
/// The RFC 864 stream: lines of 72 printable characters plus CR LF; each line starts one
/// character further along the 95 printable ASCII characters, the first with '!' as in the RFC.
/// </summary>
internal static class ChargenPattern
{
    public const int LineLength = 74; // 72 characters + CR + LF
    private const int Cycle = 95;      // printable ASCII 0x20..0x7E

    /// <summary>The stream repeats every 95 lines; two periods back to back let any slice be one copy.</summary>
    public const int Period = Cycle * LineLength;

    private static readonly byte[] TwoPeriods = BuildTwoPeriods();

    /// <summary>The byte at <paramref name="position"/> of the infinite stream.</summary>
    public static byte At(long position)
    {
        long line = position / LineLength;
        int column = (int)(position % LineLength);
        if (column == 72) return (byte)'\r';
        if (column == 73) return (byte)'\n';
        // RFC 864's sample output starts its first line with '!', the character after space.
        return (byte)(0x20 + (line + column + 1) % Cycle);
    }

    /// <summary>Writes the stream's bytes from <paramref name="position"/> on into <paramref name="destination"/>.</summary>
    public static void Fill(Span<byte> destination, long position)
    {
        int offset = (int)(position % Period);
        while (!destination.IsEmpty)
        {
            int n = Math.Min(destination.Length, Period);
            TwoPeriods.AsSpan(offset, n).CopyTo(destination);
            destination = destination[n..];
            offset = (offset + n) % Period;
        }
    }

    private static byte[] BuildTwoPeriods()
    {
        var b = new byte[2 * Period];
        for (int i = 0; i < b.Length; i++) b[i] = At(i);
        return b;
    }
}

/// <summary>RFC 862 echo over UDP, answered on the stack thread.</summary>
internal sealed class UdpEchoService
{
    private readonly NetStackCore _core;
    private readonly UdpBinding _binding;

    public UdpEchoService(NetStackCore core, ushort port)
    {
        _core = core;
        _binding = core.BindUdp(port);
        _binding.Received = OnReceived;
    }

    public ushort Port => _binding.Port;

    private void OnReceived()
    {
        while (_binding.TryDequeue(out var d)) _core.SendUdp(_binding.Port, d.Source, d.SourcePort, d.Payload);
    }

    public void Stop() => _binding.Close();
}
