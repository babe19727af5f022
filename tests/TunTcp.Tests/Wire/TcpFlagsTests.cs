using TunTcp.Wire;
using Xunit;

namespace TunTcp.Tests.Wire;

/// <summary>TCP control bits (RFC 9293 3.1, RFC 3168) and their tcpdump-style letters.</summary>
public class TcpFlagsTests
{
    [Fact]
    public void Flags_HaveTheirWireBitPositions()
    {
        // Byte 13 of the TCP header: CWR ECE URG ACK PSH RST SYN FIN, most significant first.
        Assert.Equal(0x01, (int)TcpFlags.Fin);
        Assert.Equal(0x02, (int)TcpFlags.Syn);
        Assert.Equal(0x04, (int)TcpFlags.Rst);
        Assert.Equal(0x08, (int)TcpFlags.Psh);
        Assert.Equal(0x10, (int)TcpFlags.Ack);
        Assert.Equal(0x20, (int)TcpFlags.Urg);
        Assert.Equal(0x40, (int)TcpFlags.Ece);
        Assert.Equal(0x80, (int)TcpFlags.Cwr);
    }

    [Theory]
    [InlineData((int)TcpFlags.None, "-")]
    [InlineData((int)(TcpFlags.Syn), "S")]
    [InlineData((int)(TcpFlags.Syn | TcpFlags.Ack), "S.")]
    [InlineData((int)(TcpFlags.Ack), ".")]
    [InlineData((int)(TcpFlags.Fin | TcpFlags.Ack), "F.")]
    [InlineData((int)(TcpFlags.Rst), "R")]
    [InlineData((int)(TcpFlags.Psh | TcpFlags.Ack), "P.")]
    [InlineData((int)(TcpFlags.Syn | TcpFlags.Ece | TcpFlags.Cwr), "SEW")]
    [InlineData((int)((TcpFlags)0xFF), "SFRPUEW.")]
    public void ToText_UsesTcpdumpLetters(int flags, string text) => Assert.Equal(text, ((TcpFlags)flags).ToText());

    [Fact]
    public void Format_AllFlags_FitInEightCharacters()
    {
        Span<char> buffer = stackalloc char[8];
        Assert.Equal(8, ((TcpFlags)0xFF).Format(buffer));
    }
}
