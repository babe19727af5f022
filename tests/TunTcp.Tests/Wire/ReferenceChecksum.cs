using System.Buffers.Binary;

namespace TunTcp.Tests.Wire;

/// <summary>
/// RFC 1071 written the plainest way (big-endian 16-bit words, an odd last byte padded with a
/// zero byte, carries folded back in, complemented): the oracle for the vectorised
/// <see cref="TunTcp.Wire.Checksum"/>. Deliberately slow and obvious.
/// </summary>
internal static class ReferenceChecksum
{
    public static ushort Compute(ReadOnlySpan<byte> data) => (ushort)~Fold(Sum(data));

    /// <summary>The unfolded sum of the data as big-endian words.</summary>
    public static ulong Sum(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
        for (int i = 0; i < data.Length; i += 2)
        {
            int high = data[i];
            int low = i + 1 < data.Length ? data[i + 1] : 0;
            sum += (ulong)((high << 8) | low);
        }
        return sum;
    }

    public static ushort Fold(ulong sum)
    {
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }

    /// <summary>
    /// The TCP/UDP checksum over the IPv4 pseudo-header (RFC 9293 3.1, RFC 768): source,
    /// destination, a zero byte, the protocol and the segment length, then the segment itself.
    /// </summary>
    public static ushort Transport(uint source, uint destination, byte protocol, ReadOnlySpan<byte> segment)
    {
        var buffer = new byte[12 + segment.Length];
        BinaryPrimitives.WriteUInt32BigEndian(buffer, source);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(4), destination);
        buffer[8] = 0;
        buffer[9] = protocol;
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(10), (ushort)segment.Length);
        segment.CopyTo(buffer.AsSpan(12));
        return Compute(buffer);
    }
}
