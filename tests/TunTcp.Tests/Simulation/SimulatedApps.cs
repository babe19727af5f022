using System.Security.Cryptography;
using TunTcp.Ip;
using TunTcp.Tcp;

namespace TunTcp.Tests.Simulation;

/// <summary>A deterministic byte pattern: byte i of the stream is a function of i and a seed.</summary>
public static class StreamPattern
{
    public static byte At(long index, int seed) => (byte)((index * 131 + (index >> 8) * 7 + seed) & 0xFF);

    public static void Fill(Span<byte> destination, long offset, int seed)
    {
        for (int i = 0; i < destination.Length; i++) destination[i] = At(offset + i, seed);
    }
}

/// <summary>Writes <see cref="Total"/> pattern bytes into a connection as the send buffer allows, then closes.</summary>
internal sealed class BulkSender(NetStackCore core, TcpConnection connection, long total, int seed = 0, bool closeWhenDone = true)
{
    private readonly byte[] _chunk = new byte[16384];
    public long Total => total;
    public long Written { get; private set; }
    public bool Closed { get; private set; }

    public void Step(Instant now)
    {
        if (connection.State is not (TcpConnectionState.Established or TcpConnectionState.CloseWait)) return;
        var entry = core.FindEntry(connection);
        if (entry is null) return;
        bool wrote = false;
        while (Written < total)
        {
            int n = (int)Math.Min(Math.Min(_chunk.Length, total - Written), connection.SendBuffer.Free);
            if (n == 0) break;
            StreamPattern.Fill(_chunk.AsSpan(0, n), Written, seed);
            connection.SendBuffer.Write(_chunk.AsSpan(0, n));
            Written += n;
            wrote = true;
        }
        if (wrote) core.MarkReady(entry, PendingWork.SendBufferWritten);
        if (Written == total && closeWhenDone && !Closed)
        {
            Closed = true;
            core.ShutdownSend(connection, now);
        }
    }
}

/// <summary>Reads a connection to the end, checking every byte against the pattern.</summary>
internal sealed class PatternReceiver(NetStackCore core, TcpConnection connection, int seed = 0)
{
    private readonly byte[] _buffer = new byte[65536];
    public long Received { get; private set; }
    public bool Corrupt { get; private set; }
    public bool Eof { get; private set; }

    public void Step()
    {
        bool read = false;
        while (true)
        {
            int n = connection.ReceiveBuffer.Read(_buffer);
            if (n == 0) break;
            for (int i = 0; i < n; i++)
                if (_buffer[i] != StreamPattern.At(Received + i, seed)) Corrupt = true;
            Received += n;
            read = true;
        }
        if (read && core.FindEntry(connection) is { } entry) core.MarkReady(entry, PendingWork.ReceiveBufferRead);
        if (connection.PeerFinReceived && connection.ReceiveBuffer.Count == 0) Eof = true;
    }
}
