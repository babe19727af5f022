namespace TunTcp.Wire;

/// <summary>The TCP control bits (RFC 9293 3.1, RFC 3168 for ECE/CWR).</summary>
[Flags]
internal enum TcpFlags : byte
{
    None = 0,
    Fin = 0x01,
    Syn = 0x02,
    Rst = 0x04,
    Psh = 0x08,
    Ack = 0x10,
    Urg = 0x20,
    Ece = 0x40,
    Cwr = 0x80,
}

internal static class TcpFlagsText
{
    /// <summary>tcpdump-style flag letters: S, F, R, P, . (ACK), U, E, W.</summary>
    public static int Format(this TcpFlags flags, Span<char> destination)
    {
        int n = 0;
        if ((flags & TcpFlags.Syn) != 0) destination[n++] = 'S';
        if ((flags & TcpFlags.Fin) != 0) destination[n++] = 'F';
        if ((flags & TcpFlags.Rst) != 0) destination[n++] = 'R';
        if ((flags & TcpFlags.Psh) != 0) destination[n++] = 'P';
        if ((flags & TcpFlags.Urg) != 0) destination[n++] = 'U';
        if ((flags & TcpFlags.Ece) != 0) destination[n++] = 'E';
        if ((flags & TcpFlags.Cwr) != 0) destination[n++] = 'W';
        if ((flags & TcpFlags.Ack) != 0) destination[n++] = '.';
        if (n == 0) destination[n++] = '-';
        return n;
    }

    public static string ToText(this TcpFlags flags)
    {
        Span<char> buf = stackalloc char[8];
        return new string(buf[..flags.Format(buf)]);
    }
}
