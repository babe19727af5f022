using SharpFuzz;

namespace TunTcp.Fuzz;

/// <summary>
/// <c>TunTcp.Fuzz list</c>: the targets. <c>TunTcp.Fuzz TARGET</c>: the target under afl-fuzz
/// (SharpFuzz's persistent mode: one process, many inputs; an exception is a crash).
/// <c>TunTcp.Fuzz TARGET FILE...</c>: replays inputs (a crash afl-fuzz saved) and prints what
/// each one throws. <c>TunTcp.Fuzz trace INPUT [--forward]</c>: the packets a netstack (netstack-forward) input makes.
/// <c>TunTcp.Fuzz seed DIR [CAPTURE...]</c>: writes the seed corpus.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.Error.WriteLine("usage: TunTcp.Fuzz list | TARGET [INPUT...] | trace INPUT [--forward] | seed DIR [CAPTURE...]");
            return args.Length == 0 ? 2 : 0;
        }
        if (args[0] == "list")
        {
            foreach (var name in FuzzTargets.All.Keys) Console.WriteLine(name);
            return 0;
        }
        if (args[0] == "trace" && (args.Length == 2 || (args.Length == 3 && args[2] == "--forward")))
        {
            // The packets a netstack input makes the core receive (>) and send (<), one line each.
            NetStackCoreTarget.Run(File.ReadAllBytes(args[1]), (p, d) =>
                Console.WriteLine($"{(d == Wire.CaptureDirection.Inbound ? '>' : '<')} {Wire.PacketFormatter.Format(p)}"), forwarding: args.Length == 3);
            return 0;
        }
        if (args[0] == "seed" && args.Length >= 2)
        {
            int n = SeedCorpus.Write(args[1], args.Skip(2));
            Console.WriteLine($"wrote {n} seed files under {args[1]}");
            return 0;
        }
        if (!FuzzTargets.All.TryGetValue(args[0], out var target))
        {
            Console.Error.WriteLine($"unknown target '{args[0]}'; targets: {string.Join(", ", FuzzTargets.All.Keys)}");
            return 2;
        }
        if (args.Length > 1) return Replay(target, args[1..]);

        var buffer = new byte[1 << 20];
        Fuzzer.Run(stream =>
        {
            int length = 0, read;
            while (length < buffer.Length && (read = stream.Read(buffer, length, buffer.Length - length)) > 0) length += read;
            target(buffer.AsSpan(0, length));
        });
        return 0;
    }

    private static int Replay(FuzzTarget target, string[] files)
    {
        int failed = 0;
        foreach (var file in files)
        {
            try
            {
                target(File.ReadAllBytes(file));
                Console.WriteLine($"{file}: ok");
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine($"{file}: {e}");
            }
        }
        return failed == 0 ? 0 : 1;
    }
}
