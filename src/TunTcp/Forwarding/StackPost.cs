using System.Buffers;
using System.Net.Sockets;
using TunTcp.Ip;

namespace TunTcp.Forwarding;

/// <summary>Sends data from an upstream socket's loop into the stack, which only its own thread may touch.</summary>
internal static class StackPost
{
    /// <summary>The stack-thread half: sends the copied <paramref name="data"/> with <paramref name="state"/>.</summary>
    internal delegate void Send<TState>(NetStackCore core, TState state, ReadOnlySpan<byte> data);

    /// <summary>
    /// Copies <paramref name="data"/> into a pooled buffer and posts <paramref name="send"/> to the
    /// stack thread, which returns the buffer afterwards (a send the stack refuses is dropped, as a
    /// datagram would be). False when the stack has stopped; the buffer is returned then too.
    /// </summary>
    public static bool TryPostCopy<TState>(NetStack stack, ReadOnlySpan<byte> data, TState state, Send<TState> send)
    {
        var copy = ArrayPool<byte>.Shared.Rent(Math.Max(1, data.Length));
        data.CopyTo(copy);
        int length = data.Length;
        try
        {
            stack.Post((core, _) =>
            {
                try { send(core, state, copy.AsSpan(0, length)); }
                catch (SocketException) { }
                finally { ArrayPool<byte>.Shared.Return(copy); }
            });
            return true;
        }
        catch (ObjectDisposedException)
        {
            ArrayPool<byte>.Shared.Return(copy);
            return false;
        }
    }
}
