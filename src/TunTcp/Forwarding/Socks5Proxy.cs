using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TunTcp.Forwarding;

/// <summary>
/// A SOCKS5 proxy (RFC 1928) and, optionally, the user name and password it wants (RFC 1929),
/// as given on the command line: <c>socks5://[USER:PASS@]HOST:PORT</c>. <see cref="Host"/> is an
/// IPv4 or IPv6 literal (without brackets) or a host name; <see cref="ToString"/> never shows the
/// password, so a proxy can be logged and put in error messages.
/// </summary>
/// <param name="Host">The proxy's address or host name; an IPv6 literal without brackets.</param>
/// <param name="Port">The proxy's TCP port, 1..65535.</param>
/// <param name="UserName">RFC 1929 UNAME, 1..255 bytes of UTF-8; null for no authentication.</param>
/// <param name="Password">RFC 1929 PASSWD, 1..255 bytes of UTF-8; given exactly when <paramref name="UserName"/> is.</param>
public sealed record Socks5Proxy(string Host, int Port, string? UserName = null, string? Password = null)
{
    /// <summary>The URL scheme <see cref="Parse"/> accepts.</summary>
    public const string Scheme = "socks5";

    /// <summary>RFC 1929 section 2: ULEN and PLEN are one octet, and at least 1.</summary>
    public const int MaxCredentialBytes = 255;

    /// <summary>True if the proxy asks for RFC 1929 username/password authentication.</summary>
    public bool HasCredentials => UserName is not null;

    /// <summary>
    /// Parses <c>socks5://[USER:PASS@]HOST:PORT</c> (a trailing '/' is allowed). HOST is an IPv4
    /// literal, an IPv6 literal in brackets (<c>[::1]</c>) or a host name; USER and PASS may be
    /// percent-encoded (<c>%40</c> for '@', <c>%3A</c> for ':').
    /// </summary>
    /// <exception cref="FormatException">The URL is not of that form; the message says what is wrong.</exception>
    public static Socks5Proxy Parse(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (!TryParse(url, out var proxy, out var error)) throw new FormatException(error);
        return proxy;
    }

    /// <summary>Like <see cref="Parse"/>, but returns false with the reason instead of throwing.</summary>
    public static bool TryParse(string? url, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Socks5Proxy? proxy, out string error)
    {
        proxy = null;
        error = ParseCore(url, ref proxy);
        return error.Length == 0;
    }

    private static string ParseCore(string? url, ref Socks5Proxy? proxy)
    {
        const string Form = "expected socks5://[USER:PASS@]HOST:PORT";
        if (string.IsNullOrWhiteSpace(url)) return $"the proxy URL is empty; {Form}";
        string shown = Redact(url);
        int schemeEnd = url.IndexOf("://", StringComparison.Ordinal);
        if (schemeEnd < 0) return $"proxy URL '{shown}' has no scheme; {Form}";
        string scheme = url[..schemeEnd];
        if (!scheme.Equals(Scheme, StringComparison.OrdinalIgnoreCase))
            return $"proxy URL '{shown}' has scheme '{scheme}', but only socks5:// is supported; {Form}";

        string authority = url[(schemeEnd + 3)..];
        if (authority.EndsWith('/')) authority = authority[..^1];
        int junk = authority.IndexOfAny(['/', '?', '#']);
        if (junk >= 0) return $"proxy URL '{shown}' has a path, query or fragment after HOST:PORT; {Form}";

        string? user = null, password = null;
        int at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            string userInfo = authority[..at];
            authority = authority[(at + 1)..];
            int colon = userInfo.IndexOf(':');
            if (colon < 0) return $"proxy URL '{shown}' has a user name but no password (USER:PASS@); RFC 1929 needs both";
            if (!TryPercentDecode(userInfo[..colon], out user)) return $"proxy URL '{shown}' has a malformed percent-escape in the user name";
            if (!TryPercentDecode(userInfo[(colon + 1)..], out password)) return $"proxy URL '{shown}' has a malformed percent-escape in the password";
            string? credentialError = CheckCredentials(user, password);
            if (credentialError is not null) return $"proxy URL '{shown}': {credentialError}";
        }

        string host, portText;
        if (authority.StartsWith('['))
        {
            int close = authority.IndexOf(']');
            if (close < 0) return $"proxy URL '{shown}' has an unclosed '[' in its IPv6 address";
            host = authority[1..close];
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
                return $"proxy URL '{shown}': '{host}' in brackets is not an IPv6 address";
            string rest = authority[(close + 1)..];
            if (rest.Length == 0) return $"proxy URL '{shown}' has no port; {Form}";
            if (rest[0] != ':') return $"proxy URL '{shown}' has '{rest}' after the IPv6 address where ':PORT' belongs";
            portText = rest[1..];
        }
        else
        {
            int colon = authority.IndexOf(':');
            if (colon < 0) return $"proxy URL '{shown}' has no port; {Form}";
            if (authority.IndexOf(':', colon + 1) >= 0)
                return $"proxy URL '{shown}': an IPv6 address must be written in brackets, as socks5://[::1]:1080";
            host = authority[..colon];
            portText = authority[(colon + 1)..];
            if (host.Length == 0) return $"proxy URL '{shown}' has no host; {Form}";
            if (!IsHostNameOrIpv4(host)) return $"proxy URL '{shown}': '{host}' is not an IPv4 address or a host name";
        }

        if (portText.Length == 0) return $"proxy URL '{shown}' has no port after ':'; {Form}";
        if (!portText.All(char.IsAsciiDigit)) return $"proxy URL '{shown}': port '{portText}' is not a number";
        if (portText.Length > 5 || !int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
            return $"proxy URL '{shown}': port {portText} is out of range (1..65535)";

        proxy = new Socks5Proxy(host, port, user, password);
        return "";
    }

    /// <summary>The RFC 1929 limits on a user name and password; null if they are usable.</summary>
    internal static string? CheckCredentials(string? user, string? password)
    {
        if (user is null && password is null) return null;
        if (user is null || password is null) return "a user name needs a password and a password needs a user name (RFC 1929)";
        int userBytes = Encoding.UTF8.GetByteCount(user), passwordBytes = Encoding.UTF8.GetByteCount(password);
        if (userBytes == 0) return "the user name is empty (RFC 1929 needs 1..255 bytes)";
        if (userBytes > MaxCredentialBytes) return $"the user name is {userBytes} bytes long; RFC 1929 allows at most {MaxCredentialBytes}";
        if (passwordBytes == 0) return "the password is empty (RFC 1929 needs 1..255 bytes)";
        if (passwordBytes > MaxCredentialBytes) return $"the password is {passwordBytes} bytes long; RFC 1929 allows at most {MaxCredentialBytes}";
        return null;
    }

    /// <summary>The URL without the password: <c>socks5://USER@HOST:PORT</c>.</summary>
    public override string ToString()
    {
        string host = Host.Contains(':') ? $"[{Host}]" : Host;
        string user = UserName is null ? "" : Uri.EscapeDataString(UserName) + "@";
        return $"{Scheme}://{user}{host}:{Port.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>The URL as typed, with anything between "://" and the last '@' reduced to the user name, for error messages.</summary>
    private static string Redact(string url)
    {
        int start = url.IndexOf("://", StringComparison.Ordinal);
        int at = url.LastIndexOf('@');
        if (start < 0 || at < start) return url;
        string userInfo = url[(start + 3)..at];
        int colon = userInfo.IndexOf(':');
        return colon < 0 ? url : url[..(start + 3)] + userInfo[..colon] + ":***" + url[at..];
    }

    private static bool IsHostNameOrIpv4(string host)
    {
        if (IPAddress.TryParse(host, out var address)) return address.AddressFamily == AddressFamily.InterNetwork && host.Count(c => c == '.') == 3;
        // RFC 1123 2.1 host names: labels of letters, digits and '-', at most 253 characters.
        if (host.Length > 253) return false;
        // A last label of digits only would make "300.1.1.1" a host name (RFC 3696 2: no all-numeric TLD).
        if (host.Split('.')[^1].All(char.IsAsciiDigit)) return false;
        foreach (var label in host.Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-') return false;
            if (!label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')) return false;
        }
        return true;
    }

    /// <summary>RFC 3986 2.1 percent-decoding to UTF-8; false on a truncated or non-hex escape or invalid UTF-8.</summary>
    private static bool TryPercentDecode(string text, out string decoded)
    {
        decoded = text;
        if (!text.Contains('%')) return true;
        var bytes = new List<byte>(text.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '%')
            {
                if (i + 2 >= text.Length || !char.IsAsciiHexDigit(text[i + 1]) || !char.IsAsciiHexDigit(text[i + 2])) return false;
                bytes.Add(byte.Parse(text.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
                i += 2;
            }
            else if (char.IsHighSurrogate(c) && i + 1 < text.Length)
            {
                int n = Encoding.UTF8.GetBytes(text.AsSpan(i, 2), utf8);
                for (int k = 0; k < n; k++) bytes.Add(utf8[k]);
                i++;
            }
            else
            {
                int n = Encoding.UTF8.GetBytes([c], utf8);
                for (int k = 0; k < n; k++) bytes.Add(utf8[k]);
            }
        }
        try
        {
            decoded = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString([.. bytes]);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
