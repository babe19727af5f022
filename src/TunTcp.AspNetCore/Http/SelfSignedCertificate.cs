using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace TunTcp.AspNetCore.Http;

/// <summary>
/// Makes the throwaway TLS certificate that <c>tuntcp serve --https</c> uses when given no PFX:
/// ECDSA P-256, self-signed, valid from a day ago for a year, for TLS server authentication,
/// with the tutorial's address 192.168.0.2, localhost and any further names as subject
/// alternative names. Clients must be told to trust it (curl -k, or a validation callback).
/// </summary>
internal static class SelfSignedCertificate
{
    /// <summary>The names every generated certificate carries.</summary>
    public static IReadOnlyList<string> DefaultNames { get; } = ["192.168.0.2", "fd00:7475:6e::2", "localhost"];

    /// <param name="names">Host names or IP address literals; <see cref="DefaultNames"/> are always added.</param>
    public static X509Certificate2 Create(IEnumerable<string>? names = null, TimeProvider? time = null)
    {
        var all = DefaultNames.Concat(names ?? []).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in all)
        {
            if (IPAddress.TryParse(name, out var address)) san.AddIpAddress(address);
            else san.AddDnsName(name);
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={all[0]}, O=TunTcp self-signed", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1", "Server Authentication")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));

        var now = (time ?? TimeProvider.System).GetUtcNow();
        using var ephemeral = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(1));
        // A round trip through PKCS#12 gives a certificate whose private key every TLS back end
        // can use (an ephemeral key is not enough on every platform).
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), password: null);
    }
}
