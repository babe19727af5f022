using System.IO.Pipelines;
using TunTcp.Ip;

namespace TunTcp.AspNetCore;

/// <summary>Settings of the TunTcp Kestrel transport (see <c>UseTunTcp</c>).</summary>
public sealed class TunTcpTransportOptions
{
    /// <summary>The stack that <see cref="TunTcpEndPoint"/>s without a stack of their own listen on.</summary>
    public NetStack? Stack { get; set; }

    /// <summary>Completed connections waiting for Kestrel to accept them (Kestrel's socket transport: 512).</summary>
    public int Backlog { get; set; } = 512;

    /// <summary>
    /// Bytes received and not yet consumed by Kestrel before the transport stops reading the
    /// connection (the TCP window then closes and the peer waits). Null or 0: no limit.
    /// Defaults to Kestrel's <c>MaxRequestBufferSize</c>, 1 MB.
    /// </summary>
    public long? MaxReadBufferSize { get; set; } = 1024 * 1024;

    /// <summary>
    /// Bytes Kestrel may write ahead of what the connection's send buffer took before its
    /// flushes wait. Null or 0: no limit. Defaults to Kestrel's <c>MaxResponseBufferSize</c>, 64 KB.
    /// </summary>
    public long? MaxWriteBufferSize { get; set; } = 64 * 1024;

    /// <summary>Nagle's algorithm off on accepted connections, as Kestrel's socket transport does.</summary>
    public bool NoDelay { get; set; } = true;

    /// <summary>
    /// Runs Kestrel's request processing inline on the transport's receive loop instead of
    /// queueing it to the thread pool: one thread hop fewer per request, but application code
    /// that blocks then also stops this connection's reading. Kestrel's socket transport has the
    /// same switch under the same name. Defaults to false.
    /// </summary>
    public bool UnsafePreferInlineScheduling { get; set; }

    internal PipeScheduler ApplicationScheduler => UnsafePreferInlineScheduling ? PipeScheduler.Inline : PipeScheduler.ThreadPool;
}
