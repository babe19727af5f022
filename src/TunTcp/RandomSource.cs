using System.Security.Cryptography;

namespace TunTcp;

/// <summary>
/// Where TunTcp takes randomness from (ISN keys, ephemeral ports, timestamp offsets). Injected,
/// so that a test or a simulation seeds it and every run is reproducible.
/// </summary>
internal interface IRandomSource
{
    uint NextUInt32();
    void Fill(Span<byte> destination);
}

/// <summary>Cryptographically strong randomness, the default outside tests.</summary>
internal sealed class SystemRandomSource : IRandomSource
{
    public static readonly SystemRandomSource Instance = new();
    public uint NextUInt32() => BitConverter.ToUInt32(RandomNumberGenerator.GetBytes(4));
    public void Fill(Span<byte> destination) => RandomNumberGenerator.Fill(destination);
}

/// <summary>
/// A seeded generator (SplitMix64) with a fixed algorithm, so a seed gives the same sequence on
/// every machine and .NET version. Not for secrets.
/// </summary>
internal sealed class SeededRandomSource(ulong seed) : IRandomSource
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public uint NextUInt32() => (uint)(NextUInt64() >> 32);

    /// <summary>A double in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public void Fill(Span<byte> destination)
    {
        for (int i = 0; i < destination.Length; i++) destination[i] = (byte)(NextUInt64() >> 56);
    }
}
