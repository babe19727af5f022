namespace TunTcp.Fuzz;

/// <summary>One fuzz target: takes any bytes, throws only when it found a bug.</summary>
public delegate void FuzzTarget(ReadOnlySpan<byte> input);

/// <summary>
/// Every fuzz target by name, for <c>scripts/fuzz.sh TARGET SECONDS</c> (AFL++ through SharpFuzz)
/// and for the smoke test that runs each over its seed corpus and seeded mutations in-process.
/// A target's contract: the wire parsers never throw and what they accept reads back
/// consistently; the formatter gives a line for any input; the stack core survives any sequence
/// of packets, time steps and application calls with its invariants holding.
/// </summary>
public static class FuzzTargets
{
    public static IReadOnlyDictionary<string, FuzzTarget> All { get; } = new SortedDictionary<string, FuzzTarget>(StringComparer.Ordinal)
    {
        ["ipv4"] = WireTargets.Ipv4,
        ["ipv6"] = WireTargets.Ipv6,
        ["tcp"] = WireTargets.Tcp,
        ["tcp-options"] = WireTargets.TcpOptionsTarget,
        ["udp"] = WireTargets.Udp,
        ["icmpv4"] = WireTargets.Icmpv4,
        ["icmpv6"] = WireTargets.Icmpv6,
        ["pcap"] = WireTargets.Pcap,
        ["pcapng"] = WireTargets.PcapNg,
        ["ip-address"] = WireTargets.IpAddressText,
        ["formatter"] = WireTargets.Formatter,
        ["netstack"] = NetStackCoreTarget.Run,
        ["netstack-forward"] = NetStackCoreTarget.RunForwarding,
    };
}

/// <summary>What a fuzz target found: an input that broke a contract (not a crash of the harness).</summary>
public sealed class FuzzContractException(string message) : Exception(message);
