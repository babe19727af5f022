using TunTcp.Wire;

namespace TunTcp.Ip;

/// <summary>
/// The path MTU learned per destination from ICMP (RFC 1191 6.3, RFC 8201 5.3): new connections to
/// that destination start from it. Entries expire after <see cref="Lifetime"/> (RFC 1191 suggests
/// 10 minutes, as Linux's mtu_expires), so a path that grew again is used at full size. Bounded:
/// when full, expired entries go first, then the one that expires soonest.
/// </summary>
internal sealed class PathMtuCache
{
    public const int Capacity = 4096;
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);

    private readonly Dictionary<IpAddress, (int Mtu, Instant Expires)> _entries = new();

    public int Count => _entries.Count;

    /// <summary>The learned MTU towards <paramref name="destination"/>, if one is known and unexpired.</summary>
    public bool TryGet(IpAddress destination, Instant now, out int mtu)
    {
        mtu = 0;
        if (_entries.Count == 0 || !_entries.TryGetValue(destination, out var e)) return false;
        if (e.Expires <= now) { _entries.Remove(destination); return false; }
        mtu = e.Mtu;
        return true;
    }

    /// <summary>Records <paramref name="mtu"/> for <paramref name="destination"/> if it is lower than what is known.</summary>
    public void Lower(IpAddress destination, int mtu, Instant now)
    {
        if (TryGet(destination, now, out int known) && known <= mtu) return;
        if (!_entries.ContainsKey(destination) && _entries.Count >= Capacity) Evict(now);
        _entries[destination] = (mtu, now + Lifetime);
    }

    private void Evict(Instant now)
    {
        IpAddress? soonest = null;
        var soonestAt = Instant.Never;
        foreach (var (address, e) in _entries)
        {
            if (e.Expires <= now) { _entries.Remove(address); return; }
            if (e.Expires < soonestAt) { soonestAt = e.Expires; soonest = address; }
        }
        if (soonest is { } s) _entries.Remove(s);
    }
}
