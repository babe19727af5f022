using System.Security.Cryptography;
using TunTcp.RealPeer.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// The transfers the real-peer tests run, plain and under loss and disorder: each one moves a
/// byte stream between the kernel's TCP and the stack and checks every byte on the receiving side
/// (SHA-256 of what was sent against SHA-256 of what arrived, plus the first differing offset
/// where the receiver knows the pattern), and that the connection ended the way it should.
/// </summary>
internal static class KernelTransfers
{
    public const int EchoPort = 7, DiscardPort = 9, ChargenPort = 19, ListenerPort = 5001;

    /// <summary>
    /// The kernel sends <paramref name="bytes"/> to discard, half-closes, and waits for discard's
    /// FIN; the serve log must then count exactly those bytes in, on a normal close.
    /// </summary>
    public static void Discard(PeerSession session, long bytes)
    {
        var result = session.RunPeer(DiscardPort, "discard", "--bytes", bytes.ToString());
        Assert.Equal(bytes, result.Long("sent"));
        Assert.True(result.Bool("fin"), result.ToString());
        session.WaitForServeLog(TimeSpan.FromSeconds(20), "discard: connection from", "closed (normal)", $"{bytes} bytes in");
    }

    /// <summary>The kernel reads <paramref name="bytes"/> from chargen; they must be the RFC 864 stream.</summary>
    public static void Chargen(PeerSession session, long bytes)
    {
        var result = session.RunPeer(ChargenPort, "chargen", "--bytes", bytes.ToString());
        Assert.Equal(bytes, result.Long("received"));
        Assert.Equal(result.String("expected_sha256"), result.String("sha256"));
        // The kernel closed with chargen's data still arriving: the stack sees a FIN or a reset
        // (RFC 1122 4.2.2.13, unread data), either way the connection must end.
        session.WaitForServeLog(TimeSpan.FromSeconds(20), "chargen: connection from", "closed (");
    }

    /// <summary>
    /// The kernel sends <paramref name="bytes"/> to echo while reading the echo, half-closes when
    /// done, and reads on until echo's FIN; everything must come back in order.
    /// </summary>
    public static void Echo(PeerSession session, long bytes, bool readAfterShutdown = false)
    {
        var result = session.RunPeer(EchoPort, "echo", readAfterShutdown
            ? ["--bytes", bytes.ToString(), "--read-after-shutdown"]
            : ["--bytes", bytes.ToString()]);
        Assert.Equal(bytes, result.Long("sent"));
        Assert.Equal(bytes, result.Long("received"));
        Assert.Equal(result.String("sha256_sent"), result.String("sha256_received"));
        Assert.True(result.Bool("eof"), result.ToString());
        if (readAfterShutdown) Assert.Equal(bytes, result.Long("received_after_shutdown"));
        session.WaitForServeLog(TimeSpan.FromSeconds(20), "echo: connection from", "closed (normal)", $"{bytes} bytes in, {bytes} bytes out");
    }

    /// <summary>
    /// <c>tuntcp connect</c> against a kernel listener: <paramref name="upload"/> bytes from a file
    /// on its stdin to the kernel while the kernel sends <paramref name="download"/> bytes to its
    /// stdout. With <paramref name="stackClosesFirst"/> the kernel sends only after it has seen
    /// the stack's FIN (stdin EOF), so the stack's half-closed connection must still receive.
    /// </summary>
    public static void Connect(PeerSession session, long upload, long download, bool stackClosesFirst = false, params string[] toolOptions)
    {
        string input = Path.Combine(Path.GetTempPath(), $"{session.Ns.Name}.in");
        string output = Path.Combine(Path.GetTempPath(), $"{session.Ns.Name}.out");
        try
        {
            string inputSha = WriteRandomFile(input, upload, seed: 42);
            using var listener = KernelPeer.StartScript(session.Ns,
                ["--port", ListenerPort.ToString(), "--timeout", "30", "--deadline", "140", "--seed", "7",
                 "listen", "--send-bytes", download.ToString(), .. stackClosesFirst ? new[] { "--send-after-eof" } : []]);
            listener.WaitForLine("listening", TimeSpan.FromSeconds(10));

            var tool = session.StartConnect(ListenerPort, input, output, toolOptions);
            if (!tool.WaitForExit(PeerSession.PeerBound))
                Assert.Fail($"tuntcp connect did not finish within {PeerSession.PeerBound.TotalSeconds} s.\n{tool.Stderr}\n--- listener ---\n{listener.Output}");
            Assert.True(tool.ExitCode == 0, $"tuntcp connect exited {tool.ExitCode}:\n{tool.Stderr}\n--- listener so far ---\n{listener.Output}");
            // connect ends only once the listener has everything, so the listener ends at once too.
            var result = listener.WaitForResult(TimeSpan.FromSeconds(30));
            Assert.True(result.Ok, $"{result}\n--- tuntcp connect ---\n{tool.Stderr}");

            // Stack to kernel: what the listener received is the input file.
            Assert.Equal(upload, result.Long("received"));
            Assert.Equal(inputSha, result.String("sha256_received"));
            // Kernel to stack: what connect wrote to stdout is what the listener sent.
            Assert.Equal(download, new FileInfo(output).Length);
            Assert.Equal(result.String("sha256_sent"), Sha256OfFile(output));
            if (stackClosesFirst) Assert.True(result.Bool("eof_before_send"), result.ToString());
            Assert.True(tool.Stderr.Contains($"done: {upload} bytes sent, {download} received", StringComparison.Ordinal),
                $"connect's summary does not count {upload} bytes sent and {download} received:\n{tool.Stderr}");
        }
        finally
        {
            File.Delete(input);
            File.Delete(output);
        }
    }

    /// <summary>Writes <paramref name="length"/> seeded random bytes; returns their SHA-256 (hex).</summary>
    public static string WriteRandomFile(string path, long length, int seed)
    {
        var random = new Random(seed);
        var buffer = new byte[1 << 20];
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var file = File.Create(path))
        {
            for (long left = length; left > 0;)
            {
                int n = (int)Math.Min(buffer.Length, left);
                random.NextBytes(buffer.AsSpan(0, n));
                file.Write(buffer, 0, n);
                sha.AppendData(buffer, 0, n);
                left -= n;
            }
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    public static string Sha256OfFile(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }
}
