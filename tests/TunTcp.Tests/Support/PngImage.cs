using System.Buffers.Binary;
using System.IO.Compression;

namespace TunTcp.Tests.Support;

/// <summary>
/// Just enough of a PNG decoder (RFC 2083) to look at a browser's screenshot: 8-bit RGB or RGBA,
/// not interlaced, all five filter types.
/// </summary>
internal sealed class PngImage
{
    private readonly byte[] _rgb;

    public int Width { get; }
    public int Height { get; }

    private PngImage(int width, int height, byte[] rgb) => (Width, Height, _rgb) = (width, height, rgb);

    public (byte R, byte G, byte B) this[int x, int y] => (_rgb[(y * Width + x) * 3], _rgb[(y * Width + x) * 3 + 1], _rgb[(y * Width + x) * 3 + 2]);

    public static PngImage Decode(byte[] file)
    {
        ReadOnlySpan<byte> signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
        if (file.Length < 8 || !file.AsSpan(0, 8).SequenceEqual(signature)) throw new InvalidDataException("not a PNG file");
        int width = 0, height = 0, channels = 0;
        using var idat = new MemoryStream();
        for (int i = 8; i + 12 <= file.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(i));
            string type = System.Text.Encoding.ASCII.GetString(file, i + 4, 4);
            var data = file.AsSpan(i + 8, length);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                if (data[8] != 8 || data[12] != 0) throw new InvalidDataException($"bit depth {data[8]} or interlace {data[12]} not supported");
                channels = data[9] switch { 2 => 3, 6 => 4, _ => throw new InvalidDataException($"colour type {data[9]} not supported") };
            }
            else if (type == "IDAT") idat.Write(data);
            else if (type == "IEND") break;
            i += 12 + length;
        }
        idat.Position = 0;
        using var inflated = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionMode.Decompress)) z.CopyTo(inflated);
        var raw = inflated.ToArray();
        int stride = width * channels;
        var previous = new byte[stride];
        var line = new byte[stride];
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            int offset = y * (stride + 1);
            byte filter = raw[offset];
            for (int x = 0; x < stride; x++)
            {
                int a = x >= channels ? line[x - channels] : 0, b = previous[x], c = x >= channels ? previous[x - channels] : 0;
                int value = raw[offset + 1 + x];
                line[x] = (byte)(filter switch
                {
                    0 => value,
                    1 => value + a,
                    2 => value + b,
                    3 => value + (a + b) / 2,
                    4 => value + Paeth(a, b, c),
                    _ => throw new InvalidDataException($"filter {filter}"),
                });
            }
            for (int x = 0; x < width; x++)
                for (int k = 0; k < 3; k++) rgb[(y * width + x) * 3 + k] = line[x * channels + k];
            (previous, line) = (line, previous);
        }
        return new PngImage(width, height, rgb);
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static bool Near((byte R, byte G, byte B) p, (byte R, byte G, byte B) color, int tolerance) =>
        Math.Abs(p.R - color.R) <= tolerance && Math.Abs(p.G - color.G) <= tolerance && Math.Abs(p.B - color.B) <= tolerance;

    /// <summary>
    /// Pixels of <paramref name="color"/> in the rows that cross a plot area (rows with at least
    /// <paramref name="minBackground"/> pixels of <paramref name="background"/>): marks in a graph,
    /// not the swatches of a key above it.
    /// </summary>
    public int CountInPlotRows((byte R, byte G, byte B) color, (byte R, byte G, byte B) background, int minBackground = 300, int tolerance = 6)
    {
        int count = 0;
        for (int y = 0; y < Height; y++)
        {
            int backgroundPixels = 0, colorPixels = 0;
            for (int x = 0; x < Width; x++)
            {
                var p = this[x, y];
                if (Near(p, background, 1)) backgroundPixels++;
                else if (Near(p, color, tolerance)) colorPixels++;
            }
            if (backgroundPixels >= minBackground) count += colorPixels;
        }
        return count;
    }
}
