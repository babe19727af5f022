using System.Buffers.Binary;
using System.Numerics;

namespace TunTcp.Tcp;

/// <summary>A 128-bit SipHash key.</summary>
internal readonly record struct SipKey(ulong K0, ulong K1)
{
    public static SipKey FromBytes(ReadOnlySpan<byte> key) =>
        new(BinaryPrimitives.ReadUInt64LittleEndian(key), BinaryPrimitives.ReadUInt64LittleEndian(key[8..]));
}

/// <summary>
/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed pseudorandom function for short inputs, the
/// one Linux keys its initial sequence numbers (secure_tcp_seq), timestamp offsets and SYN cookies
/// with. It replaced HMAC-SHA-256 here: a SYN flood answered with cookies spent more than half of
/// the stack thread in OpenSSL's HMAC set-up and frees (three MACs per SYN, each about a
/// microsecond through the interop), against some tens of nanoseconds for SipHash on 13 bytes.
/// </summary>
internal static class SipHash
{
    public static ulong Hash(SipKey key, ReadOnlySpan<byte> message)
    {
        ulong v0 = key.K0 ^ 0x736f6d6570736575UL;
        ulong v1 = key.K1 ^ 0x646f72616e646f6dUL;
        ulong v2 = key.K0 ^ 0x6c7967656e657261UL;
        ulong v3 = key.K1 ^ 0x7465646279746573UL;
        int whole = message.Length & ~7;
        for (int i = 0; i < whole; i += 8)
        {
            ulong m = BinaryPrimitives.ReadUInt64LittleEndian(message[i..]);
            v3 ^= m;
            Round(ref v0, ref v1, ref v2, ref v3);
            Round(ref v0, ref v1, ref v2, ref v3);
            v0 ^= m;
        }
        // The last block: the remaining bytes, little-endian, with the length's low byte on top.
        ulong last = (ulong)(byte)message.Length << 56;
        for (int i = message.Length - 1; i >= whole; i--) last |= (ulong)message[i] << (8 * (i - whole));
        v3 ^= last;
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        v0 ^= last;
        v2 ^= 0xff;
        for (int i = 0; i < 4; i++) Round(ref v0, ref v1, ref v2, ref v3);
        return v0 ^ v1 ^ v2 ^ v3;
    }

    private static void Round(ref ulong v0, ref ulong v1, ref ulong v2, ref ulong v3)
    {
        v0 += v1; v1 = BitOperations.RotateLeft(v1, 13); v1 ^= v0; v0 = BitOperations.RotateLeft(v0, 32);
        v2 += v3; v3 = BitOperations.RotateLeft(v3, 16); v3 ^= v2;
        v0 += v3; v3 = BitOperations.RotateLeft(v3, 21); v3 ^= v0;
        v2 += v1; v1 = BitOperations.RotateLeft(v1, 17); v1 ^= v2; v2 = BitOperations.RotateLeft(v2, 32);
    }
}
