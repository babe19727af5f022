using Microsoft.Extensions.Logging;

namespace TunTcp.AspNetCore.Http;

/// <summary>Settings of <see cref="TunTcpHttpApp"/>: which ports, which certificate, how much logging.</summary>
internal sealed class TunTcpHttpAppOptions
{
    /// <summary>Plain HTTP port on the stack (0: a free one); null serves no plain HTTP.</summary>
    public int? HttpPort { get; set; } = 80;

    /// <summary>HTTPS port on the stack (0: a free one); null serves no HTTPS.</summary>
    public int? HttpsPort { get; set; }

    /// <summary>
    /// A PKCS#12 file with the HTTPS certificate and its private key. Without one, a self-signed
    /// certificate is made at start (see <see cref="SelfSignedCertificate"/>).
    /// </summary>
    public string? PfxPath { get; set; }

    /// <summary>Password of <see cref="PfxPath"/>; null for none.</summary>
    public string? PfxPassword { get; set; }

    /// <summary>
    /// Extra host names and IP addresses for a generated certificate, besides 192.168.0.2,
    /// localhost and the stack's own address.
    /// </summary>
    public IList<string> CertificateNames { get; } = new List<string>();

    /// <summary>Minimum level of ASP.NET Core's own log categories (Kestrel, hosting, routing).</summary>
    public LogLevel AspNetCoreLogLevel { get; set; } = LogLevel.Warning;

    /// <summary>
    /// Logs through this factory, e.g. the tool's own, so the app's lines look like the rest of
    /// its output. The factory stays the caller's (it is not disposed with the app).
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// Sets up logging providers; without it and without <see cref="LoggerFactory"/>, single-line
    /// console logs. The minimum level of ASP.NET Core categories (<see cref="AspNetCoreLogLevel"/>)
    /// is applied either way.
    /// </summary>
    public Action<ILoggingBuilder>? ConfigureLogging { get; set; }

    /// <summary>Transport settings (buffer limits, backlog, scheduling).</summary>
    public Action<TunTcpTransportOptions>? ConfigureTransport { get; set; }
}
