using TunTcp.Sockets;

namespace TunTcp.AspNetCore;

/// <summary>
/// The TunTcp connection under a Kestrel connection, for applications that want its TCP
/// details (state, statistics, <see cref="TunTcpConnection.Engine"/>). Get it with
/// <c>HttpContext.Features.Get&lt;ITunTcpConnectionFeature&gt;()</c> or from the connection's
/// features. Reading and writing must go through Kestrel, never through this connection.
/// </summary>
public interface ITunTcpConnectionFeature
{
    TunTcpConnection Connection { get; }
}
