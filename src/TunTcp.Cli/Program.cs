namespace TunTcp.Cli;

internal static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("tuntcp: not built yet");
        return 2;
    }
}
