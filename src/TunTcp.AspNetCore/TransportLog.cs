using Microsoft.Extensions.Logging;

namespace TunTcp.AspNetCore;

/// <summary>
/// The transport's log events; names and levels follow Kestrel's socket transport, so the same
/// logging filters work for both.
/// </summary>
internal static partial class TransportLog
{
    [LoggerMessage(6, LogLevel.Debug, "Connection id \"{ConnectionId}\" received FIN.", EventName = "ConnectionReadFin")]
    public static partial void ConnectionReadFin(ILogger logger, string connectionId);

    [LoggerMessage(7, LogLevel.Debug, "Connection id \"{ConnectionId}\" sending FIN because: \"{Reason}\"", EventName = "ConnectionWriteFin")]
    public static partial void ConnectionWriteFin(ILogger logger, string connectionId, string reason);

    [LoggerMessage(8, LogLevel.Debug, "Connection id \"{ConnectionId}\" sending RST because: \"{Reason}\"", EventName = "ConnectionWriteRst")]
    public static partial void ConnectionWriteRst(ILogger logger, string connectionId, string reason);

    [LoggerMessage(4, LogLevel.Debug, "Connection id \"{ConnectionId}\" paused.", EventName = "ConnectionPause")]
    public static partial void ConnectionPause(ILogger logger, string connectionId);

    [LoggerMessage(5, LogLevel.Debug, "Connection id \"{ConnectionId}\" resumed.", EventName = "ConnectionResume")]
    public static partial void ConnectionResume(ILogger logger, string connectionId);

    [LoggerMessage(19, LogLevel.Debug, "Connection id \"{ConnectionId}\" reset.", EventName = "ConnectionReset")]
    public static partial void ConnectionReset(ILogger logger, string connectionId);

    [LoggerMessage(14, LogLevel.Debug, "Connection id \"{ConnectionId}\" communication error.", EventName = "ConnectionError")]
    public static partial void ConnectionError(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(20, LogLevel.Error, "Unexpected exception in the TunTcp transport of connection id \"{ConnectionId}\".", EventName = "TransportFailure")]
    public static partial void TransportFailure(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(21, LogLevel.Debug, "Listening on TunTcp endpoint {EndPoint}.", EventName = "Bound")]
    public static partial void Bound(ILogger logger, string endPoint);
}
