using System.Net.Sockets;
using TunTcp.Wire;

namespace TunTcp.Ip;

/// <summary>
/// Ports bound to one of the stack's addresses or to a wildcard, for TCP listeners and UDP
/// bindings alike, with the sharing rules of a socket API without SO_REUSEADDR: one binding per
/// address and port; a wildcard of one family conflicts with every binding of that family on the
/// port; the IPv6 wildcard in dual mode (<c>IPV6_V6ONLY</c> off, as <see cref="Socket.DualMode"/>)
/// takes IPv4 too. Lookup prefers the most specific binding.
/// </summary>
internal sealed class PortTable<T> where T : class
{
    private readonly Dictionary<ushort, List<Binding>> _ports = new();

    private readonly record struct Binding(IpAddress Address, bool DualMode, T Value);

    public int Count { get; private set; }

    public IEnumerable<T> Values => _ports.Values.SelectMany(list => list.Select(b => b.Value));

    /// <summary>The binding that takes packets to <paramref name="local"/>:<paramref name="port"/>: exact, then the family's wildcard, then the dual-mode IPv6 wildcard.</summary>
    public T? Find(IpAddress local, ushort port)
    {
        if (!_ports.TryGetValue(port, out var list)) return null;
        T? wildcard = null, dual = null;
        foreach (var b in list)
        {
            if (b.Address == local) return b.Value;
            if (b.Address == local.AnyOfFamily) wildcard = b.Value;
            else if (local.IsV4 && b.DualMode && b.Address == IpAddress.AnyV6) dual = b.Value;
        }
        return wildcard ?? dual;
    }

    /// <summary>True when a binding of <paramref name="address"/> (with <paramref name="dualMode"/>) on <paramref name="port"/> would clash with one there.</summary>
    public bool Conflicts(IpAddress address, ushort port, bool dualMode)
    {
        if (!_ports.TryGetValue(port, out var list)) return false;
        foreach (var b in list)
            if (Overlaps(address, dualMode, b.Address, b.DualMode)) return true;
        return false;
    }

    private static bool Overlaps(IpAddress a, bool aDual, IpAddress b, bool bDual)
    {
        if (a == b) return true;
        if (a.IsV4 == b.IsV4) return a.IsAny || b.IsAny;
        // Different families meet only through a dual-mode IPv6 wildcard.
        return (a == IpAddress.AnyV6 && aDual) || (b == IpAddress.AnyV6 && bDual);
    }

    public bool IsPortFree(ushort port) => !_ports.ContainsKey(port);

    public void Add(IpAddress address, ushort port, bool dualMode, T value)
    {
        if (!_ports.TryGetValue(port, out var list)) _ports.Add(port, list = new List<Binding>(1));
        list.Add(new Binding(address, dualMode, value));
        Count++;
    }

    public bool Remove(IpAddress address, ushort port, T value)
    {
        if (!_ports.TryGetValue(port, out var list)) return false;
        int i = list.FindIndex(b => b.Address == address && b.Value == value);
        if (i < 0) return false;
        list.RemoveAt(i);
        if (list.Count == 0) _ports.Remove(port);
        Count--;
        return true;
    }
}

/// <summary>The ephemeral port search every kind of binding shares.</summary>
internal static class EphemeralPorts
{
    /// <summary>IANA dynamic port range (RFC 6335 6) for ephemeral local ports.</summary>
    public const int First = 49152, Last = 65535;

    /// <summary>
    /// RFC 6056 3.3.1 (Algorithm 1): start at a random port in the range and search upward for
    /// one that <paramref name="isFree"/> accepts.
    /// </summary>
    /// <exception cref="SocketException">AddressNotAvailable: every port in the range is taken (as Linux's EADDRNOTAVAIL).</exception>
    public static ushort Find<TState>(IRandomSource random, TState state, Func<TState, ushort, bool> isFree)
    {
        const int count = Last - First + 1;
        int start = (int)(random.NextUInt32() % count);
        for (int i = 0; i < count; i++)
        {
            var port = (ushort)(First + (start + i) % count);
            if (isFree(state, port)) return port;
        }
        throw new SocketException((int)SocketError.AddressNotAvailable, $"no free ephemeral port in {First}..{Last}");
    }
}
