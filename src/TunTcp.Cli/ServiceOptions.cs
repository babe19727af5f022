using System.Globalization;
using TunTcp.Links;

namespace TunTcp.Cli;

/// <summary>The built-in services of <c>tuntcp serve</c>; a null port means switched off.</summary>
internal sealed record ServiceOptions(ushort? Echo, ushort? Discard, ushort? Chargen, ushort? UdpEcho)
{
    /// <summary>The default ports, written once: the options' defaults and the port-clash check read them here.</summary>
    public const ushort DefaultEcho = 7, DefaultDiscard = 9, DefaultChargen = 19, DefaultUdpEcho = 7, DefaultHttp = 80;

    public static readonly ServiceOptions Default = new(DefaultEcho, DefaultDiscard, DefaultChargen, DefaultUdpEcho);

    /// <summary>The HTTP app (ASP.NET Core on the stack) on plain HTTP.</summary>
    public ushort? Http { get; init; } = DefaultHttp;

    /// <summary>The same app over TLS; off unless asked for.</summary>
    public ushort? Https { get; init; }

    /// <summary>PKCS#12 certificate for HTTPS; a self-signed one is made when null.</summary>
    public string? PfxPath { get; init; }

    public string? PfxPassword { get; init; }
}

/// <summary>The fault injection asked for on the command line: one profile per direction.</summary>
/// <param name="Inbound">Packets from the host (kernel) to the stack.</param>
/// <param name="Outbound">Packets from the stack to the host.</param>
internal sealed record LinkFaults(FaultProfile Inbound, FaultProfile Outbound, ulong Seed)
{
    public static readonly LinkFaults None = new(FaultProfile.None, FaultProfile.None, 1);

    public bool IsEmpty => Inbound.IsEmpty && Outbound.IsEmpty;
}

/// <summary>
/// Parses fault option values: <c>N</c> (both directions), <c>in:N</c>, <c>out:N</c> or
/// <c>in:N,out:M</c>. Percentages are 0..100, times are milliseconds, rates take a unit
/// (<c>10mbit</c>, <c>1.5gbit</c>, <c>800kbit</c>, or plain bits per second).
/// </summary>
internal static class FaultSyntax
{
    /// <summary>Splits a directional value; returns null with an error message when malformed.</summary>
    public static (string? In, string? Out)? Split(string text, string option, out string? error)
    {
        error = null;
        if (!text.Contains(':')) return (text, text);
        string? inbound = null, outbound = null;
        foreach (var part in text.Split(','))
        {
            var kv = part.Split(':', 2);
            if (kv.Length != 2) { error = $"{option}: '{part}' is not N, in:N or out:N"; return null; }
            switch (kv[0].Trim().ToLowerInvariant())
            {
                case "in": inbound = kv[1].Trim(); break;
                case "out": outbound = kv[1].Trim(); break;
                default: error = $"{option}: direction '{kv[0]}' is neither 'in' (host to stack) nor 'out' (stack to host)"; return null;
            }
        }
        return (inbound, outbound);
    }

    public static bool TryPercent(string? text, out double value)
    {
        value = 0;
        if (text is null) return true;
        return double.TryParse(text.TrimEnd('%'), NumberStyles.Float, CultureInfo.InvariantCulture, out value) && value is >= 0 and <= 100;
    }

    public static bool TryMilliseconds(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (text is null) return true;
        var t = text.EndsWith("ms", StringComparison.OrdinalIgnoreCase) ? text[..^2] : text;
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double ms) || ms < 0 || ms > 600_000) return false;
        value = TimeSpan.FromMilliseconds(ms);
        return true;
    }

    public static bool TryRate(string? text, out long bitsPerSecond)
    {
        bitsPerSecond = 0;
        if (text is null) return true;
        var t = text.Trim().ToLowerInvariant();
        double scale = 1;
        foreach (var (suffix, factor) in new[] { ("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0) })
        {
            if (!t.EndsWith(suffix, StringComparison.Ordinal)) continue;
            t = t[..^suffix.Length];
            scale = factor;
            break;
        }
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || v <= 0) return false;
        double bps = v * scale;
        if (bps < 8_000 || bps > 1e12) return false;
        bitsPerSecond = (long)bps;
        return true;
    }
}
