using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace TunTcp.Wire;

/// <summary>
/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit
/// words. Sums are carried as unfolded 32-bit "partial sums" in network byte order so that a
/// pseudo-header and several buffers can be combined before folding.
/// </summary>
/// <remarks>
/// RFC 1071 2(B): the ones' complement sum is independent of byte order, so the bulk of the
/// data is summed as native little-endian words with wide vector lanes and swapped once at the
/// end. Lanes are 32-bit accumulators of 16-bit words; they are spilled into a 64-bit total
/// often enough that no lane can overflow.
/// </remarks>
internal static class Checksum
{
    /// <summary>
    /// Adds <paramref name="data"/> to a partial sum. Every buffer but the last in a chain must
    /// have even length, since an odd trailing byte is padded with zero as RFC 1071 says.
    /// </summary>
    public static uint Add(uint partial, ReadOnlySpan<byte> data)
    {
        ulong native = SumNative(data);
        // Fold the native-order sum to 16 bits, then swap to network order.
        native = (native & 0xFFFF_FFFF) + (native >> 32);
        native = (native & 0xFFFF) + (native >> 16);
        native = (native & 0xFFFF) + (native >> 16);
        native = (native & 0xFFFF) + (native >> 16);
        uint network = BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness((ushort)native) : (ushort)native;
        ulong sum = (ulong)partial + network;
        return (uint)((sum & 0xFFFF_FFFF) + (sum >> 32));
    }

    /// <summary>Folds a partial sum to 16 bits and complements it: the value to put on the wire.</summary>
    public static ushort Finish(uint partial)
    {
        ulong s = partial;
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        return (ushort)~s;
    }

    /// <summary>The checksum of one buffer (e.g. an IPv4 header or an ICMP message).</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Finish(Add(0, data));

    /// <summary>
    /// The partial sum of the pseudo-header: IPv4's (RFC 9293 3.1, RFC 768: addresses, zero,
    /// protocol, length) or IPv6's (RFC 8200 8.1: addresses, 32-bit upper-layer length, zeros,
    /// next header), chosen by the addresses' family.
    /// </summary>
    public static uint PseudoHeader(IpAddress source, IpAddress destination, IpProtocol protocol, int length)
    {
        if (source.IsV4)
        {
            uint s4 = source.V4.Value, d4 = destination.V4.Value;
            return (s4 >> 16) + (s4 & 0xFFFF) + (d4 >> 16) + (d4 & 0xFFFF) + (uint)protocol + (uint)length;
        }
        ulong s = Words(source.High) + Words(source.Low) + Words(destination.High) + Words(destination.Low)
                + ((uint)length >> 16) + ((uint)length & 0xFFFF) + (uint)protocol;
        return (uint)((s & 0xFFFF_FFFF) + (s >> 32));
    }

    /// <summary>The sum of the four 16-bit words of a 64-bit value.</summary>
    private static ulong Words(ulong v) => (v >> 48) + ((v >> 32) & 0xFFFF) + ((v >> 16) & 0xFFFF) + (v & 0xFFFF);

    /// <summary>The TCP, UDP or ICMPv6 checksum of a whole segment with its pseudo-header.</summary>
    public static ushort ComputeTransport(IpAddress source, IpAddress destination, IpProtocol protocol, ReadOnlySpan<byte> segment) =>
        Finish(Add(PseudoHeader(source, destination, protocol, segment.Length), segment));

    private static ulong SumNative(ReadOnlySpan<byte> data)
    {
        ulong total = 0;
        ref byte start = ref MemoryMarshal.GetReference(data);
        int length = data.Length;
        int i = 0;

        if (Vector256.IsHardwareAccelerated && length >= 64)
        {
            // Each 32-byte step adds at most 2 * 0xFFFF to a 32-bit lane; spill well before 2^32.
            const int StepsPerSpill = 16384;
            while (length - i >= 32)
            {
                Vector256<uint> acc = Vector256<uint>.Zero;
                int steps = Math.Min(StepsPerSpill, (length - i) / 32);
                for (int s = 0; s < steps; s++, i += 32)
                {
                    var words = Vector256.LoadUnsafe(ref Unsafe.Add(ref start, i)).AsUInt16();
                    var (lo, hi) = Vector256.Widen(words);
                    acc += lo + hi;
                }
                var (a, b) = Vector256.Widen(acc);
                total += Vector256.Sum(a + b);
            }
        }
        else if (Vector128.IsHardwareAccelerated && length >= 32)
        {
            const int StepsPerSpill = 16384;
            while (length - i >= 16)
            {
                Vector128<uint> acc = Vector128<uint>.Zero;
                int steps = Math.Min(StepsPerSpill, (length - i) / 16);
                for (int s = 0; s < steps; s++, i += 16)
                {
                    var words = Vector128.LoadUnsafe(ref Unsafe.Add(ref start, i)).AsUInt16();
                    var (lo, hi) = Vector128.Widen(words);
                    acc += lo + hi;
                }
                var (a, b) = Vector128.Widen(acc);
                total += Vector128.Sum(a + b);
            }
        }

        for (; length - i >= 8; i += 8)
        {
            ulong w = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, i));
            total += (w & 0xFFFF_FFFF) + (w >> 32);
        }
        for (; length - i >= 2; i += 2)
            total += Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref start, i));
        if (i < length)
        {
            // The odd last byte is the high-order byte of a zero-padded word in network order,
            // which is the low-order byte of that word read as native little-endian.
            total += BitConverter.IsLittleEndian ? Unsafe.Add(ref start, i) : (ulong)Unsafe.Add(ref start, i) << 8;
        }
        return total;
    }
}
