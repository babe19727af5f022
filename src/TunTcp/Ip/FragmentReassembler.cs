using System.Buffers;
using TunTcp.Wire;

namespace TunTcp.Ip;

/// <summary>
/// What names one datagram in reassembly: RFC 791 3.2 (source, destination, protocol,
/// identification) for IPv4; RFC 8200 4.5 (source, destination, identification) for IPv6,
/// where <see cref="Protocol"/> is 0.
/// </summary>
internal readonly record struct FragmentKey(IpAddress Source, IpAddress Destination, uint Identification, byte Protocol);

/// <summary>What <see cref="FragmentReassembler.Add"/> did with a fragment.</summary>
internal enum FragmentOutcome
{
    /// <summary>Held; the datagram still misses fragments.</summary>
    Held,
    /// <summary>The datagram is whole: <see cref="FragmentReassembler.Assembled"/> holds it.</summary>
    Complete,
    /// <summary>An exact copy of a fragment already held: ignored.</summary>
    Duplicate,
    /// <summary>
    /// It overlaps a fragment held with other bounds: the whole datagram is dropped (RFC 5722 for
    /// IPv6; for IPv4 too, as Linux since 2018: overlaps serve only to evade inspection or to
    /// rewrite a transport header, RFC 1858 and RFC 3128).
    /// </summary>
    Overlap,
    /// <summary>Inconsistent with what is held (data past the end the last fragment set, a second last fragment, too many pieces): datagram dropped.</summary>
    Inconsistent,
    /// <summary>The datagram alone is larger than the memory budget: dropped.</summary>
    OverBudget,
}

/// <summary>
/// Reassembles IP datagrams from fragments, either family, out of order and with duplicates
/// (RFC 791 3.2, RFC 815, RFC 8200 4.5). Sans-IO: it is given fragments and instants, never
/// reads a clock. Memory is bounded for all datagrams together by a byte budget, the oldest
/// datagram evicted first when a new fragment would exceed it (Linux's ipfrag_high_thresh); each
/// datagram is dropped when its timeout passes, and the caller is told of those whose first
/// fragment had arrived, so that it can send ICMP time exceeded (RFC 792, RFC 4443 3.3).
/// </summary>
internal sealed class FragmentReassembler
{
    /// <summary>Pieces one datagram may hold: 64 KiB in 1280-byte fragments is 52; tiny-fragment floods get no further.</summary>
    public const int MaxFragmentsPerDatagram = 128;

    /// <summary>Largest reassembled payload: the 16-bit length fields bound every datagram.</summary>
    public const int MaxDatagramPayload = 65535;

    private readonly int _memoryLimit;
    private readonly TimeSpan _timeout4, _timeout6;
    private readonly Dictionary<FragmentKey, Datagram> _datagrams = new();
    /// <summary>Datagrams in the order they were created: both the timeout order per family and the eviction order.</summary>
    private readonly LinkedList<Datagram> _age4 = new(), _age6 = new();
    private readonly byte[] _assembled = new byte[MaxDatagramPayload + Datagram.MaxHeader];
    private int _assembledLength;
    private long _created;

    public FragmentReassembler(int memoryLimit, TimeSpan timeout4, TimeSpan timeout6)
    {
        _memoryLimit = memoryLimit;
        _timeout4 = timeout4;
        _timeout6 = timeout6;
    }

    /// <summary>Bytes all datagrams in reassembly hold now.</summary>
    public int MemoryInUse { get; private set; }

    public int DatagramCount => _datagrams.Count;

    /// <summary>Datagrams dropped to stay within the memory budget.</summary>
    public long Evicted { get; private set; }

    /// <summary>The last datagram <see cref="Add"/> completed: header (with lengths fixed up by the caller) then payload; valid until the next call.</summary>
    public Span<byte> Assembled => _assembled.AsSpan(0, _assembledLength);

    /// <summary>The instant the oldest datagram times out, or never.</summary>
    public Instant NextDeadline
    {
        get
        {
            var d = Instant.Never;
            if (_age4.First is { } a) d = a.Value.Deadline;
            if (_age6.First is { } b && b.Value.Deadline < d) d = b.Value.Deadline;
            return d;
        }
    }

    /// <summary>
    /// Takes one fragment: <paramref name="data"/> is its share of the fragmentable part, starting
    /// at byte <paramref name="offset"/> of it; <paramref name="header"/> is what precedes the
    /// fragmentable part in this packet (the IPv4 header, or IPv6's unfragmentable part), kept
    /// from the first fragment. On <see cref="FragmentOutcome.Complete"/>, <see cref="Assembled"/>
    /// holds the first fragment's header followed by the whole fragmentable part.
    /// </summary>
    public FragmentOutcome Add(in FragmentKey key, bool v6, int offset, bool more, ReadOnlySpan<byte> data, ReadOnlySpan<byte> header, Instant now)
    {
        int end = offset + data.Length;
        if (!_datagrams.TryGetValue(key, out var d))
        {
            d = new Datagram(key, v6, now + (v6 ? _timeout6 : _timeout4), _created++);
            d.Node = (v6 ? _age6 : _age4).AddLast(d);
            _datagrams.Add(key, d);
        }

        switch (d.Place(offset, end, more))
        {
            case Placement.Duplicate:
                return FragmentOutcome.Duplicate;
            case Placement.Overlap:
                Remove(d);
                return FragmentOutcome.Overlap;
            case Placement.Inconsistent:
                Remove(d);
                return FragmentOutcome.Inconsistent;
        }

        int growth = d.GrowthFor(end, offset == 0 ? header.Length : 0);
        if (growth > 0 && !MakeRoom(d, growth))
        {
            Remove(d);
            return FragmentOutcome.OverBudget;
        }
        MemoryInUse += d.Store(offset, data, offset == 0 ? header : default);

        if (!d.IsComplete) return FragmentOutcome.Held;
        d.Header.AsSpan(0, d.HeaderLength).CopyTo(_assembled);
        d.Data.AsSpan(0, d.TotalLength).CopyTo(_assembled.AsSpan(d.HeaderLength));
        _assembledLength = d.HeaderLength + d.TotalLength;
        Remove(d);
        return FragmentOutcome.Complete;
    }

    /// <summary>
    /// Drops the oldest datagram whose timeout has passed, if any; returns true and, when its first
    /// fragment had arrived, the bytes to quote in ICMP time exceeded (that fragment's header and
    /// the data after it), valid until the next call.
    /// </summary>
    public bool TryExpire(Instant now, out bool v6, out FragmentKey key, out ReadOnlySpan<byte> firstFragment)
    {
        v6 = false;
        key = default;
        firstFragment = default;
        LinkedList<Datagram>? list = null;
        if (_age4.First is { } a && a.Value.Deadline <= now) list = _age4;
        else if (_age6.First is { } b && b.Value.Deadline <= now) list = _age6;
        if (list is null) return false;
        var d = list.First!.Value;
        v6 = d.V6;
        key = d.Key;
        if (d.HeaderLength > 0)
        {
            int data = d.ContiguousFromStart;
            d.Header.AsSpan(0, d.HeaderLength).CopyTo(_assembled);
            d.Data.AsSpan(0, data).CopyTo(_assembled.AsSpan(d.HeaderLength));
            firstFragment = _assembled.AsSpan(0, d.HeaderLength + data);
        }
        Remove(d);
        return true;
    }

    /// <summary>Drops every datagram (stack shutdown).</summary>
    public void Clear()
    {
        foreach (var d in _datagrams.Values.ToList()) Remove(d);
    }

    /// <summary>Evicts the oldest other datagrams until <paramref name="bytes"/> more fit the budget.</summary>
    private bool MakeRoom(Datagram current, int bytes)
    {
        if (bytes > _memoryLimit) return false;
        while (MemoryInUse + bytes > _memoryLimit)
        {
            var oldest = Oldest(current);
            if (oldest is null) return false;
            Remove(oldest);
            Evicted++;
        }
        return true;
    }

    private Datagram? Oldest(Datagram except)
    {
        Datagram? a = _age4.First?.Value, b = _age6.First?.Value;
        if (a == except) a = _age4.First!.Next?.Value;
        if (b == except) b = _age6.First!.Next?.Value;
        if (a is null) return b;
        if (b is null) return a;
        return a.Sequence < b.Sequence ? a : b;
    }

    private void Remove(Datagram d)
    {
        if (!_datagrams.Remove(d.Key)) return;
        (d.V6 ? _age6 : _age4).Remove(d.Node!);
        MemoryInUse -= d.Release();
    }

    private enum Placement { Added, Duplicate, Overlap, Inconsistent }

    private sealed class Datagram
    {
        /// <summary>IPv4 header with options (60) or IPv6's unfragmentable part, as far as TunTcp keeps it.</summary>
        public const int MaxHeader = 2048;

        public readonly FragmentKey Key;
        public readonly bool V6;
        public readonly Instant Deadline;
        /// <summary>Creation order across both families, for eviction.</summary>
        public readonly long Sequence;
        public LinkedListNode<Datagram>? Node;
        public byte[] Data = [];
        public byte[] Header = [];
        public int HeaderLength;
        /// <summary>Length of the fragmentable part once the last fragment (MF = 0) arrived, else -1.</summary>
        public int TotalLength = -1;
        /// <summary>Fragments held, sorted by start, disjoint.</summary>
        private readonly List<(int Start, int End)> _pieces = new();
        private int _bytesHeld;

        public Datagram(FragmentKey key, bool v6, Instant deadline, long sequence)
        {
            Key = key;
            V6 = v6;
            Deadline = deadline;
            Sequence = sequence;
        }

        public int Capacity => Data.Length + Header.Length;

        public bool IsComplete => TotalLength >= 0 && HeaderLength > 0 && _bytesHeld == TotalLength;

        /// <summary>Bytes held from offset 0 without a gap.</summary>
        public int ContiguousFromStart
        {
            get
            {
                int reach = 0;
                foreach (var (start, end) in _pieces)
                {
                    if (start > reach) break;
                    reach = Math.Max(reach, end);
                }
                return reach;
            }
        }

        /// <summary>Bytes <see cref="Store"/> would add to <see cref="Capacity"/> for a fragment ending at <paramref name="end"/>.</summary>
        public int GrowthFor(int end, int headerLength)
        {
            int growth = Math.Max(0, CapacityFor(end) - Data.Length);
            if (headerLength > 0 && HeaderLength == 0) growth += (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, headerLength));
            return growth;
        }

        public static int CapacityFor(int end) => end <= 2048 ? 2048 : (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)end);

        public Placement Place(int start, int end, bool more)
        {
            if (!more)
            {
                // RFC 815: the last fragment fixes the length; a second, different one contradicts it.
                if (TotalLength >= 0 && TotalLength != end) return Placement.Inconsistent;
                if (_pieces.Count > 0 && _pieces[^1].End > end) return Placement.Inconsistent;
            }
            else if (TotalLength >= 0 && end > TotalLength) return Placement.Inconsistent;
            int i = FirstEndingAfter(start);
            if (i < _pieces.Count && _pieces[i].Start < end)
            {
                if (_pieces[i].Start == start && _pieces[i].End == end) return Placement.Duplicate;
                return Placement.Overlap;
            }
            if (_pieces.Count >= MaxFragmentsPerDatagram) return Placement.Inconsistent;
            _pieces.Insert(i, (start, end));
            _bytesHeld += end - start;
            if (!more) TotalLength = end;
            return Placement.Added;
        }

        /// <summary>The index of the first piece ending after <paramref name="start"/> (binary search).</summary>
        private int FirstEndingAfter(int start)
        {
            int lo = 0, hi = _pieces.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_pieces[mid].End <= start) lo = mid + 1;
                else hi = mid;
            }
            return lo;
        }

        /// <summary>Copies the fragment in, growing the buffers; returns the bytes newly charged.</summary>
        public int Store(int offset, ReadOnlySpan<byte> data, ReadOnlySpan<byte> header)
        {
            int before = Capacity;
            int needed = CapacityFor(offset + data.Length);
            if (Data.Length < needed)
            {
                var grown = ArrayPool<byte>.Shared.Rent(needed);
                Data.AsSpan().CopyTo(grown);
                if (Data.Length > 0) ArrayPool<byte>.Shared.Return(Data);
                Data = grown;
            }
            data.CopyTo(Data.AsSpan(offset));
            if (!header.IsEmpty && HeaderLength == 0)
            {
                Header = ArrayPool<byte>.Shared.Rent(header.Length);
                header.CopyTo(Header);
                HeaderLength = header.Length;
            }
            return Capacity - before;
        }

        /// <summary>Returns the buffers; returns the bytes that were charged.</summary>
        public int Release()
        {
            int charged = Capacity;
            if (Data.Length > 0) ArrayPool<byte>.Shared.Return(Data);
            if (Header.Length > 0) ArrayPool<byte>.Shared.Return(Header);
            Data = [];
            Header = [];
            return charged;
        }
    }
}
