using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using TunTcp.Links;
using TunTcp.Wire;

namespace TunTcp.Cli;

/// <summary>What a command needs to run, validated and converted from the command line.</summary>
internal sealed record ToolSettings(TunInterfaceOptions Interface, Ipv4Address StackAddress, string? PcapPath, bool Trace);

/// <summary>
/// The <c>tuntcp</c> command tree (System.CommandLine): the options shared by every command, their
/// validation (each bad input is a parse error that says what is wrong and what is allowed), and
/// the conversion to <see cref="ToolSettings"/>.
/// </summary>
internal sealed class ToolCommandLine
{
    /// <summary>Exit code for bad command-line input (as with most Unix tools).</summary>
    public const int UsageError = 2;

    /// <summary>Exit code for a failure while running (set-up refused, I/O error).</summary>
    public const int RunFailure = 1;

    /// <summary>
    /// Environment variable that replaces <c>/dev/net/tun</c>; lets tests provoke the
    /// "TUN driver missing" error without unloading the module.
    /// </summary>
    public const string ClonePathVariable = "TUNTCP_TUN_PATH";

    public static readonly Ipv4Address DefaultStackAddress = new(0xC0A8_0002); // 192.168.0.2

    private readonly Option<string> _tun = new("--tun")
    {
        Description = "TUN device name (created if missing; a persistent device of that name is attached to and left as configured)",
        DefaultValueFactory = _ => TunInterfaceOptions.DefaultDeviceName,
        HelpName = "name",
    };

    private readonly Option<string> _addr = new("--addr")
    {
        Description = "IPv4 address of the TunTcp stack (the address the host talks to)",
        DefaultValueFactory = _ => DefaultStackAddress.ToString(),
        HelpName = "ipv4",
    };

    private readonly Option<string> _hostAddr = new("--host-addr")
    {
        Description = "address/prefix of the host (kernel) side of the device",
        DefaultValueFactory = _ => TunInterfaceOptions.DefaultHostAddress.ToString(),
        HelpName = "ipv4/prefix",
    };

    private readonly Option<int> _mtu = new("--mtu")
    {
        Description = $"device MTU in bytes ({TunInterfaceOptions.MinimumMtu}..{TunInterfaceOptions.MaximumMtu})",
        DefaultValueFactory = _ => TunInterfaceOptions.DefaultMtu,
        HelpName = "bytes",
    };

    private readonly Option<string> _netns = new("--netns")
    {
        Description = "network namespace to work in; created (with lo up) if missing and then deleted on exit",
        DefaultValueFactory = _ => TunInterfaceOptions.DefaultNamespace,
        HelpName = "name",
    };

    private readonly Option<bool> _noNetns = new("--no-netns")
    {
        Description = "use the current network namespace (no root needed to attach to a persistent device)",
    };

    private readonly Option<string?> _pcap = new("--pcap")
    {
        Description = "also write every packet, both directions, to this pcap file (LINKTYPE_RAW; tshark -r FILE)",
        HelpName = "file",
    };

    private readonly Option<bool> _trace = new("--trace")
    {
        Description = "print one line per packet, both directions, on stderr",
    };

    private readonly Option<bool> _packetInfo = new("--packet-info")
    {
        Description = "packet-information mode: every packet carries the 4-byte flags/protocol header (no IFF_NO_PI)",
    };

    private ToolCommandLine() { }

    /// <summary>The root command, <c>tuntcp</c>, and the subcommand that was parsed.</summary>
    public required Command Root { get; init; }

    /// <summary>
    /// Builds the command tree. <paramref name="dump"/> and <paramref name="serve"/> run the
    /// subcommands with validated settings and return the exit code.
    /// </summary>
    public static ToolCommandLine Build(Func<ToolSettings, int> dump, Func<ToolSettings, int> serve)
    {
        // A plain Command rather than RootCommand: RootCommand names itself after the executable
        // (TunTcp.Cli), but the tool is called tuntcp.
        var root = new Command("tuntcp", "TunTcp: a user-space TCP/IP stack on a Linux TUN device. Sets the device up (address, MTU, link up, IPv6 off, by default inside network namespace 'tuntcp') and removes it again on exit.");
        var line = new ToolCommandLine { Root = root };
        line.AddOptionValidators();
        root.Options.Add(new HelpOption());
        root.Options.Add(new VersionOption());

        var dumpCommand = new Command("dump", "Set up the device and print one line per packet the host sends to it (nothing is answered).");
        var serveCommand = new Command("serve", "Set up the device and run the TunTcp stack on it; prints a line with 'ready' once it receives.");
        foreach (var (command, run) in new[] { (dumpCommand, dump), (serveCommand, serve) })
        {
            line.AddCommonOptions(command);
            command.SetAction(parseResult => run(line.ReadSettings(parseResult)));
            root.Subcommands.Add(command);
        }
        return line;
    }

    /// <summary>
    /// Parses and runs. Bad input prints every error with a pointer to --help and returns
    /// <see cref="UsageError"/>; otherwise the command's exit code.
    /// </summary>
    public int Run(string[] args, TextWriter output, TextWriter error)
    {
        var parseResult = Root.Parse(args);
        if (parseResult.Errors.Count > 0)
        {
            foreach (var e in parseResult.Errors) error.WriteLine($"tuntcp: error: {e.Message}");
            string commandName = parseResult.CommandResult.Command == Root ? "tuntcp" : $"tuntcp {parseResult.CommandResult.Command.Name}";
            error.WriteLine($"Run '{commandName} --help' for the options.");
            return UsageError;
        }
        return parseResult.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
    }

    /// <summary>Parses without running (for tests): the parse errors' messages, empty when the input is valid.</summary>
    public IReadOnlyList<string> Validate(params string[] args) =>
        Root.Parse(args).Errors.Select(e => e.Message).ToList();

    /// <summary>Parses valid input into settings (for tests).</summary>
    public ToolSettings ParseSettings(params string[] args)
    {
        var result = Root.Parse(args);
        if (result.Errors.Count > 0) throw new ArgumentException(string.Join("; ", result.Errors.Select(e => e.Message)));
        return ReadSettings(result);
    }

    /// <summary>Each option's own check, added once: the option objects are shared by every command.</summary>
    private void AddOptionValidators()
    {
        foreach (var (option, check) in OwnChecks())
            option.Validators.Add(r => { if (check(LastToken(r)) is { } error) r.AddError(error); });
        _pcap.Validators.Add(r =>
        {
            if (string.IsNullOrWhiteSpace(LastToken(r))) r.AddError("--pcap: give a file name");
        });
    }

    /// <summary>
    /// The per-option checks, on the option's text (null when not given: its default is valid).
    /// Pure functions, so the command-level validator can ask them too.
    /// </summary>
    private IEnumerable<(Option Option, Func<string?, string?> Check)> OwnChecks() =>
    [
        (_tun, text => text is null || TunDevice.IsValidName(text, out var e) ? null : $"--tun: {e}"),
        (_addr, text =>
        {
            if (text is null) return null;
            if (!Ipv4Address.TryParse(text, out var a)) return $"--addr: '{text}' is not an IPv4 address (dotted quad such as 192.168.0.2)";
            return InterfaceAddress.IsAssignable(a, out var e) ? null : $"--addr: {e}";
        }),
        (_hostAddr, text => text is null || InterfaceAddress.TryParse(text, out _, out var e) ? null : $"--host-addr: {e}"),
        (_mtu, text =>
        {
            // A token that is not a number gets the parser's own conversion error.
            if (text is null || !int.TryParse(text, out int mtu)) return null;
            return mtu is < TunInterfaceOptions.MinimumMtu or > TunInterfaceOptions.MaximumMtu
                ? $"--mtu: {mtu} is out of range; an IPv4 link MTU is from {TunInterfaceOptions.MinimumMtu} (RFC 791) to {TunInterfaceOptions.MaximumMtu} bytes"
                : null;
        }),
        (_netns, text => text is null || NetworkNamespace.IsValidName(text, out var e) ? null : $"--netns: {e}"),
    ];

    private static string? LastToken(SymbolResult? result) => result is { Tokens.Count: > 0 } ? result.Tokens[^1].Value : null;

    private void AddCommonOptions(Command command)
    {
        foreach (Option option in new Option[] { _tun, _addr, _hostAddr, _mtu, _netns, _noNetns, _pcap, _trace, _packetInfo })
            command.Options.Add(option);

        // Checks between options. System.CommandLine runs command validators before the options'
        // own validators and skips those if a command validator reported anything, so these checks
        // stand back whenever an option is malformed on its own, and that option's error is shown.
        command.Validators.Add(r =>
        {
            if (OwnChecks().Any(c => c.Check(LastToken(r.GetResult(c.Option))) is not null)) return;
            if (r.GetResult(_mtu) is { Tokens.Count: > 0 } mtu && !int.TryParse(mtu.Tokens[^1].Value, out _)) return;
            if (r.GetValue(_noNetns) && r.GetResult(_netns) is { Implicit: false })
                r.AddError("--netns and --no-netns contradict each other; give one of them");
            var stack = Ipv4Address.Parse(LastToken(r.GetResult(_addr)) ?? DefaultStackAddress.ToString());
            var host = InterfaceAddress.Parse(LastToken(r.GetResult(_hostAddr)) ?? TunInterfaceOptions.DefaultHostAddress.ToString());
            if (stack == host.Address)
                r.AddError($"--addr {stack} is the same as the host side's address (--host-addr {host}); the stack needs an address of its own, e.g. {Suggest(host)}");
            else if (!host.Contains(stack))
                r.AddError($"--addr {stack} is outside the host side's prefix {host.Network}/{host.PrefixLength} (--host-addr {host}), so the kernel would not route it to the device; use e.g. {Suggest(host)}");
            else if (!host.IsUsableHost(stack))
                r.AddError($"--addr {stack} is the network or broadcast address of {host.Network}/{host.PrefixLength}; use e.g. {Suggest(host)}");
        });
    }

    private static Ipv4Address Suggest(InterfaceAddress host)
    {
        var candidate = new Ipv4Address(host.Address.Value + 1);
        return host.IsUsableHost(candidate) ? candidate : new Ipv4Address(host.Address.Value - 1);
    }

    private ToolSettings ReadSettings(ParseResult result)
    {
        var options = new TunInterfaceOptions
        {
            DeviceName = result.GetValue(_tun)!,
            HostAddress = InterfaceAddress.Parse(result.GetValue(_hostAddr)!),
            Mtu = result.GetValue(_mtu),
            NetworkNamespace = result.GetValue(_noNetns) ? null : result.GetValue(_netns),
            PacketInformation = result.GetValue(_packetInfo),
            ClonePath = Environment.GetEnvironmentVariable(ClonePathVariable) is { Length: > 0 } path ? path : TunDevice.DefaultClonePath,
        };
        return new ToolSettings(options, Ipv4Address.Parse(result.GetValue(_addr)!), result.GetValue(_pcap), result.GetValue(_trace));
    }
}
