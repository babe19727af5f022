namespace TunTcp.Tcp;

/// <summary>The connection states of RFC 9293 3.3.2.</summary>
public enum TcpConnectionState
{
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

/// <summary>Why a connection ended abnormally (or <see cref="None"/>).</summary>
public enum TcpError
{
    None,
    /// <summary>The peer answered our SYN with a reset (RFC 9293 3.10.7.3: "connection refused").</summary>
    ConnectionRefused,
    /// <summary>The peer reset an established connection ("connection reset").</summary>
    ConnectionReset,
    /// <summary>Retransmissions, SYN retries, keepalive probes or the user timeout ran out.</summary>
    TimedOut,
    /// <summary>This side aborted the connection (sent a reset).</summary>
    Aborted,
    /// <summary>ICMP host unreachable (or time exceeded) for our SYN, or as the soft error of a connection that then timed out (RFC 5461).</summary>
    HostUnreachable,
    /// <summary>ICMP network unreachable for our SYN, or as the soft error of a connection that then timed out.</summary>
    NetworkUnreachable,
}
