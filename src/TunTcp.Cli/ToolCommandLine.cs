using Microsoft.Extensions.Logging;
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Globalization;
using TunTcp.Cli.Plot;
using TunTcp.Links;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Cli;

/// <summary>What a command needs to run, validated and converted from the command line.</summary>
internal sealed record ToolSettings(TunInterfaceOptions Interface, Ipv4Address StackAddress, string? PcapPath, bool Trace)
{
    /// <summary>The format of the <see cref="PcapPath"/> file (<c>--pcap-format</c>).</summary>
    public CaptureFormat PcapFormat { get; init; } = CaptureFormat.PcapNg;

    /// <summary>The stack's IPv6 address; null with <c>--ipv4-only</c>.</summary>
    public IpAddress? StackAddress6 { get; init; }

    /// <summary>The stack's options for its addresses and the link's MTU; with a flow handler, catch-all mode (forward, run).</summary>
    public Ip.NetStackOptions StackOptions(int mtu, Ip.IFlowHandler? flowHandler = null, ITcpEventTrace? eventTrace = null) => new()
    {
        Address = StackAddress.ToIPAddress(),
        Address6 = StackAddress6?.ToIPAddress(),
        Mtu = mtu,
        Tcp = eventTrace is null ? Tcp : Tcp with { EventTrace = eventTrace },
        SpinBeforeSleep = Spin,
        FlowHandler = flowHandler,
    };

    /// <summary>What <c>forward</c> and <c>run</c> relay to and how.</summary>
    public ForwardSettings? Forward { get; init; }

    /// <summary>Services of <c>serve</c>.</summary>
    public ServiceOptions Services { get; init; } = ServiceOptions.Default;

    /// <summary>TCP settings of the stack (serve, connect).</summary>
    public TcpSettings Tcp { get; init; } = new();

    /// <summary>Where <c>--tcp-trace</c> writes the connections' sender state as JSON lines; null: nowhere.</summary>
    public string? TcpTracePath { get; init; }

    /// <summary>The <see cref="TcpTracePath"/> writer, clocked like the stack by <paramref name="time"/>; null without the option.</summary>
    public TcpTraceWriter? OpenTcpTrace(TimeProvider time) => TcpTracePath is { } path ? TcpTraceWriter.Create(path, time) : null;

    /// <summary>Fault injection on the link (serve, connect).</summary>
    public LinkFaults Faults { get; init; } = LinkFaults.None;

    /// <summary>Where <c>connect</c> connects to.</summary>
    public System.Net.IPEndPoint? Target { get; init; }

    /// <summary>How long the stack thread polls after activity before sleeping.</summary>
    public TimeSpan Spin { get; init; } = TimeSpan.FromMicroseconds(200);

    /// <summary>How long <c>connect</c> waits for the handshake.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>What <c>tuntcp stats</c> asks for: the stack's socket name, JSON or text, once or every second.</summary>
internal sealed record StatsRequest(string Name, bool Json, bool Watch);

/// <summary>Settings of <c>forward</c> and <c>run</c>.</summary>
/// <param name="Upstream">"direct" or a socks5:// URL, validated.</param>
/// <param name="Dns">Relay DNS queries to the gateway to the tool's resolvers and write the namespace's resolv.conf.</param>
/// <param name="Routes">What the namespace routes through the device (the default routes unless --route).</param>
/// <param name="Command">For <c>run</c>: the program and its arguments.</param>
/// <param name="NamespaceChosen">For <c>run</c>: --netns or --no-netns was given (not the fresh namespace of its own).</param>
internal sealed record ForwardSettings(string Upstream, bool Dns, IReadOnlyList<(IpAddress Network, int PrefixLength)> Routes, IReadOnlyList<string>? Command,
    bool NamespaceChosen = false);

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

    /// <summary>Exit code of <c>connect</c> and <c>run</c> after Ctrl-C (128 + SIGINT, as shells report it).</summary>
    public const int Interrupted = 130;

    /// <summary>
    /// Environment variable that replaces <c>/dev/net/tun</c>; lets tests provoke the
    /// "TUN driver missing" error without unloading the module.
    /// </summary>
    public const string ClonePathVariable = "TUNTCP_TUN_PATH";

    public static readonly Ipv4Address DefaultStackAddress = new(0xC0A8_0002); // 192.168.0.2

    /// <summary>fd00:7475:6e::2, beside the host side's fd00:7475:6e::1/64.</summary>
    public static readonly IpAddress DefaultStackAddress6 = IpAddress.Parse("fd00:7475:6e::2");

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

    private readonly Option<string> _addr6 = new("--addr6")
    {
        Description = "IPv6 address of the TunTcp stack",
        DefaultValueFactory = _ => DefaultStackAddress6.ToString(),
        HelpName = "ipv6",
    };

    private readonly Option<string> _hostAddr6 = new("--host-addr6")
    {
        Description = "IPv6 address/prefix of the host (kernel) side of the device (set without duplicate address detection; no router advertisements or solicitations)",
        DefaultValueFactory = _ => TunInterfaceOptions.DefaultHostAddress6.ToString(),
        HelpName = "ipv6/prefix",
    };

    private readonly Option<bool> _ipv4Only = new("--ipv4-only", "-4")
    {
        Description = "IPv4 only: IPv6 switched off on the device (the tutorial's set-up) and the stack without an IPv6 address",
    };

    private readonly Option<int> _mtu = new("--mtu", "-m")
    {
        Description = $"device MTU in bytes ({TunInterfaceOptions.MinimumMtu}..{TunInterfaceOptions.MaximumMtu})",
        DefaultValueFactory = _ => TunInterfaceOptions.DefaultMtu,
        HelpName = "bytes",
    };

    private readonly Option<string> _netns = new("--netns", "-n")
    {
        Description = "network namespace to work in; created (with lo up) if missing and then deleted on exit",
        DefaultValueFactory = _ => TunInterfaceOptions.DefaultNamespace,
        HelpName = "name",
    };

    private readonly Option<bool> _noNetns = new("--no-netns")
    {
        Description = "use the current network namespace (no root needed to attach to a persistent device)",
    };

    private readonly Option<string?> _pcap = new("--pcap", "-w")
    {
        Description = "also write every packet, both directions, to this capture file: pcapng with the device's name and each packet's direction unless --pcap-format pcap (LINKTYPE_RAW; tshark -r FILE)",
        HelpName = "file",
    };

    /// <summary>The values of <c>--pcap-format</c>, the default first.</summary>
    private static readonly string[] PcapFormats = ["pcapng", "pcap"];

    private readonly Option<string> _pcapFormat = new("--pcap-format")
    {
        Description = "format of the --pcap file: pcapng (the device as interface name; each packet inbound = host to stack or outbound = stack to host) or pcap (classic libpcap, neither)",
        DefaultValueFactory = _ => PcapFormats[0],
        HelpName = "pcapng|pcap",
    };

    private readonly Option<bool> _trace = new("--trace")
    {
        Description = "print one line per packet, both directions, on stderr",
    };

    private readonly Option<bool> _packetInfo = new("--packet-info")
    {
        Description = "packet-information mode: every packet carries the 4-byte flags/protocol header (no IFF_NO_PI)",
    };

    private readonly Option<int> _echo = Port("--echo", ServiceOptions.DefaultEcho, "TCP echo service (RFC 862) port");
    private readonly Option<bool> _noEcho = Switch("--no-echo", "switch the TCP echo service off");
    private readonly Option<int> _discard = Port("--discard", ServiceOptions.DefaultDiscard, "TCP discard service (RFC 863) port");
    private readonly Option<bool> _noDiscard = Switch("--no-discard", "switch the discard service off");
    private readonly Option<int> _chargen = Port("--chargen", ServiceOptions.DefaultChargen, "TCP character generator (RFC 864) port");
    private readonly Option<bool> _noChargen = Switch("--no-chargen", "switch the character generator off");
    private readonly Option<int> _udpEcho = Port("--udp-echo", ServiceOptions.DefaultUdpEcho, "UDP echo service (RFC 862) port");
    private readonly Option<bool> _noUdpEcho = Switch("--no-udp-echo", "switch the UDP echo service off");

    private readonly Option<int> _http = Port("--http", ServiceOptions.DefaultHttp, "HTTP app (ASP.NET Core on the stack: GET /, /bytes/{n}, /healthz, POST /echo) port");
    private readonly Option<bool> _noHttp = Switch("--no-http", "switch the HTTP app off");
    private readonly Option<int?> _https = new("--https")
    {
        Description = "also serve the HTTP app over TLS on this port (self-signed certificate made at start unless --pfx)",
        HelpName = "port",
    };
    private readonly Option<string?> _pfx = new("--pfx") { Description = "PKCS#12 file with the HTTPS certificate and key", HelpName = "file" };
    private readonly Option<string?> _pfxPassword = new("--pfx-password")
    {
        Description = "refused: a password on the command line is visible to every user (ps); use --pfx-password-file or TUNTCP_PFX_PASSWORD",
        HelpName = "password",
        Hidden = true,
    };
    private readonly Option<string?> _pfxPasswordFile = new("--pfx-password-file")
    {
        Description = $"file whose first line is the password of the --pfx file (or set {PfxPasswordVariable})",
        HelpName = "file",
    };

    /// <summary>Environment variable with the password of the --pfx file.</summary>
    public const string PfxPasswordVariable = "TUNTCP_PFX_PASSWORD";

    private readonly Option<string?> _logLevel = new("--log-level")
    {
        Description = "least level of the messages on stderr: trace, debug, information, warning, error, critical or none (default information; or env TUNTCP_LOG_LEVEL)",
        HelpName = "level",
        Recursive = true,
    };
    private readonly Option<bool> _quiet = new("--quiet", "-q")
    {
        Description = "only warnings and errors on stderr (--log-level warning)",
        Recursive = true,
    };

    private readonly Option<string> _cc = new("--cc")
    {
        Description = "congestion control of every connection: cubic (RFC 9438, with HyStart++) or newreno (RFC 5681/6582)",
        DefaultValueFactory = _ => "cubic",
        HelpName = "name",
    };

    private readonly Option<string> _buffer = new("--buffer")
    {
        Description = "send and receive buffer of each connection in bytes (bounds the window); 'auto': 32 segments, at least 1 MiB, at most 4 MiB",
        DefaultValueFactory = _ => "auto",
        HelpName = "bytes",
    };

    private readonly Option<string?> _loss = Fault("--loss", "drop packets at random, in percent", "pct");
    private readonly Option<string?> _delay = Fault("--delay", "delay every packet, in milliseconds", "ms");
    private readonly Option<string?> _jitter = Fault("--jitter", "extra random delay per packet in [0, ms) (reorders)", "ms");
    private readonly Option<string?> _reorder = Fault("--reorder", "hold back packets at random, in percent, so later ones overtake them", "pct");
    private readonly Option<string?> _duplicate = Fault("--duplicate", "deliver packets twice at random, in percent", "pct");
    private readonly Option<string?> _corrupt = Fault("--corrupt", "flip one bit of packets at random, in percent (checksums catch it)", "pct");
    private readonly Option<string?> _rate = Fault("--rate", "bandwidth limit, e.g. 10mbit, 1gbit, 800kbit", "rate");

    private readonly Option<ulong> _seed = new("--seed")
    {
        Description = "seed of the fault injector's random choices (same seed, same choices)",
        DefaultValueFactory = _ => 1,
        HelpName = "n",
    };

    private readonly Option<double> _timeout = new("--timeout")
    {
        Description = "connect: give up on the handshake after this many seconds",
        DefaultValueFactory = _ => 30,
        HelpName = "seconds",
    };

    private readonly Option<int> _spin = new("--spin")
    {
        Description = "microseconds the stack thread keeps polling after activity, yielding the CPU to other runnable threads, before it sleeps (lower latency for some CPU; 0 = sleep at once)",
        DefaultValueFactory = _ => 200,
        HelpName = "us",
    };

    private readonly Option<bool> _noEcn = new("--no-ecn")
    {
        Description = "do not negotiate ECN (RFC 3168): neither request it on SYNs nor accept it on a peer's",
    };

    private readonly Option<bool> _noOffload = new("--no-offload")
    {
        Description = "do not use TUN segmentation offloads (IFF_VNET_HDR, TSO): every packet crosses the device at MTU size (offloads are also off with --pcap, --trace or fault injection)",
    };

    private readonly Option<string> _upstream = new("--upstream", "-u")
    {
        Description = "where relayed flows go: 'direct' (sockets of the namespace the tool runs in) or socks5://[user:pass@]HOST:PORT (RFC 1928, RFC 1929)",
        DefaultValueFactory = _ => "direct",
        HelpName = "url",
    };

    private readonly Option<bool> _dns = new("--dns")
    {
        Description = "give the namespace the stack's addresses as its resolver (written to /etc/netns/NAME/resolv.conf) and relay its queries to the nameservers of the tool's /etc/resolv.conf",
    };

    private readonly Option<string[]> _route = new("--route")
    {
        Description = "route only this prefix (IPv4 or IPv6 CIDR) of the namespace through the device instead of the default routes; repeatable",
        HelpName = "cidr",
        AllowMultipleArgumentsPerToken = false,
    };

    private readonly Option<string?> _tcpTrace = new("--tcp-trace")
    {
        Description = "write every connection's cwnd, ssthresh, RTO, SRTT, bytes in flight and state to this file as JSON lines whenever they change (plot --trace draws cwnd from it)",
        HelpName = "file",
    };

    private readonly Argument<string> _plotCapture = new("capture") { Description = "the capture file (pcap or pcapng, e.g. from --pcap)" };
    private readonly Option<int?> _plotConnection = new("--conn") { Description = "plot: the connection's number in --list (default: the one that carried the most bytes)", HelpName = "n" };
    private readonly Option<string?> _plotOutput = new("--output", "-o") { Description = "plot: the HTML file to write", HelpName = "file.html" };
    private readonly Option<bool> _plotList = new("--list") { Description = "plot: list the capture's connections instead (number, endpoints, packets, bytes each way, duration)" };
    private readonly Option<string?> _plotTrace = new("--trace") { Description = "plot: a --tcp-trace file of the stack that made the capture, to draw cwnd and ssthresh", HelpName = "file.jsonl" };

    private readonly Option<double?> _plotFrom = new("--from") { Description = "plot: start the graphs this many seconds after the connection's first segment (zoom in)", HelpName = "seconds" };
    private readonly Option<double?> _plotTo = new("--to") { Description = "plot: end the graphs this many seconds after the connection's first segment", HelpName = "seconds" };

    private readonly Option<bool> _json = new("--json") { Description = "stats: print the report as JSON" };
    private readonly Option<bool> _watch = new("--watch") { Description = "stats: print it again every second until Ctrl-C" };

    private readonly Argument<string[]> _command = new("command")
    {
        Description = "the program to run in the namespace and its arguments (after --)",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Argument<string> _host = new("host") { Description = "IPv4 or IPv6 address to connect to (the host side, e.g. 192.168.0.1 or fd00:7475:6e::1)" };
    private readonly Argument<int> _port = new("port") { Description = "TCP port to connect to" };

    private static Option<int> Port(string name, int defaultPort, string description) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultPort,
        HelpName = "port",
    };

    private static Option<bool> Switch(string name, string description) => new(name) { Description = description };

    private static Option<string?> Fault(string name, string description, string unit) => new(name)
    {
        Description = $"{description}; N for both directions, or in:N, out:N, in:N,out:M (in = host to stack)",
        HelpName = unit,
    };

    private ToolCommandLine() { }

    /// <summary>The root command, <c>tuntcp</c>, and the subcommand that was parsed.</summary>
    public required Command Root { get; init; }

    /// <summary>
    /// Builds the command tree. <paramref name="dump"/> and <paramref name="serve"/> run the
    /// subcommands with validated settings and return the exit code.
    /// </summary>
    public static ToolCommandLine Build(Func<ToolSettings, int> dump, Func<ToolSettings, int> serve, Func<ToolSettings, int>? connect = null, Func<ToolSettings, int>? forward = null,
        Func<StatsRequest, int>? stats = null, Func<PlotRequest, int>? plot = null)
    {
        // A plain Command rather than RootCommand: RootCommand names itself after the executable
        // (TunTcp.Cli), but the tool is called tuntcp.
        var root = new Command("tuntcp", "TunTcp: a user-space TCP/IP stack on a Linux TUN device. Sets the device up (IPv4 and IPv6 addresses, MTU, link up, by default inside network namespace 'tuntcp') and removes it again on exit.");
        var line = new ToolCommandLine { Root = root };
        line.AddOptionValidators();
        root.Options.Add(new HelpOption());
        root.Options.Add(new VersionOption());
        root.Options.Add(line._logLevel);
        root.Options.Add(line._quiet);

        var dumpCommand = new Command("dump", "Set up the device and print one line per packet the host sends to it (nothing is answered).");
        var serveCommand = new Command("serve", "Set up the device and run the TunTcp stack on it with its services (echo 7, discard 9, chargen 19, UDP echo 7); prints a line with 'ready' once it receives.");
        var connectCommand = new Command("connect", "Set up the device, open a TCP connection from the stack to HOST PORT (a listener on the host side) and copy stdin to it and it to stdout, like nc; half-closes on stdin EOF.");
        var forwardCommand = new Command("forward", "Carry all the traffic of network namespace --netns through TunTcp: its default routes (or --route prefixes) point into the device, and every TCP connection, UDP flow and ping to any address is relayed to real sockets of the namespace the tool runs in (or a SOCKS5 proxy). Prints 'ready', relays until Ctrl-C, logs one line per connection.");
        var runCommand = new Command("run", "Like forward, for the life of one command: sets up a namespace (a fresh one unless --netns), runs COMMAND in it as the calling user (sudo's SUDO_UID/SUDO_GID; without root, in a user namespace of its own, as pasta does), relays its traffic, and exits with its exit code after removing everything. Example: tuntcp run --delay 50 --loss 1 -- curl http://example/");
        var forwardRun = forward ?? (_ => RunFailure);
        foreach (var (command, run) in new[] { (dumpCommand, dump), (serveCommand, serve), (connectCommand, connect ?? (_ => RunFailure)), (forwardCommand, forwardRun), (runCommand, forwardRun) })
        {
            line.AddCommonOptions(command);
            if (command != dumpCommand) line.AddStackOptions(command);
            if (command == serveCommand) line.AddServiceOptions(command);
            if (command == connectCommand) line.AddConnectArguments(command);
            if (command == forwardCommand || command == runCommand) line.AddForwardOptions(command, run: command == runCommand);
            command.SetAction(parseResult => run(line.ReadSettings(parseResult)));
            root.Subcommands.Add(command);
        }
        var statsCommand = new Command("stats", "List the connections of a running serve or forward, like ss -tin: state, endpoints, RTT, RTO, cwnd, ssthresh, in flight, windows, bytes, retransmissions, options, pending timer; then the stack's totals. Reads the stack's statistics socket (owner only).");
        foreach (Option option in new Option[] { line._netns, line._noNetns, line._tun, line._json, line._watch })
            statsCommand.Options.Add(option);
        statsCommand.SetAction(parseResult => (stats ?? (_ => RunFailure))(new StatsRequest(
            ControlSocket.NameFor(parseResult.GetValue(line._noNetns) ? null : parseResult.GetValue(line._netns), parseResult.GetValue(line._tun)!),
            parseResult.GetValue(line._json), parseResult.GetValue(line._watch))));
        root.Subcommands.Add(statsCommand);
        var plotCommand = new Command("plot", "Draw pictures of one TCP connection of a capture as a self-contained HTML file (inline SVG): the time-sequence graph (data segments, retransmissions, ACK line, receive window, SACK blocks), throughput, RTT, and outstanding bytes with cwnd and ssthresh from a --tcp-trace file.");
        plotCommand.Arguments.Add(line._plotCapture);
        foreach (Option option in new Option[] { line._plotConnection, line._plotOutput, line._plotList, line._plotTrace, line._plotFrom, line._plotTo })
            plotCommand.Options.Add(option);
        plotCommand.Validators.Add(r =>
        {
            if (!r.GetValue(line._plotList) && string.IsNullOrWhiteSpace(r.GetValue(line._plotOutput)))
                r.AddError("plot: give the HTML file to write with -o FILE.html (or --list to list the connections)");
            if (r.GetValue(line._plotFrom) is double from && (from < 0 || double.IsNaN(from))) r.AddError($"--from: {from} s is before the connection's start");
            if (r.GetValue(line._plotFrom) is double f && r.GetValue(line._plotTo) is double t && t <= f) r.AddError($"--to {t} must be after --from {f}");
        });
        plotCommand.SetAction(parseResult => (plot ?? (_ => RunFailure))(new PlotRequest(parseResult.GetValue(line._plotCapture)!,
            parseResult.GetValue(line._plotConnection), parseResult.GetValue(line._plotOutput), parseResult.GetValue(line._plotList), parseResult.GetValue(line._plotTrace))
        {
            From = parseResult.GetValue(line._plotFrom),
            To = parseResult.GetValue(line._plotTo),
        }));
        root.Subcommands.Add(plotCommand);
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
        _logLevel.Validators.Add(r =>
        {
            if (LastToken(r) is { } level && !TryParseLogLevel(level, out _))
                r.AddError($"--log-level: '{level}' is not one of trace, debug, information, warning, error, critical, none");
        });
        _pcap.Validators.Add(r =>
        {
            if (string.IsNullOrWhiteSpace(LastToken(r))) r.AddError("--pcap: give a file name");
        });
        _tcpTrace.Validators.Add(r =>
        {
            string? file = LastToken(r);
            if (string.IsNullOrWhiteSpace(file)) { r.AddError("--tcp-trace: give a file name"); return; }
            string? directory = Path.GetDirectoryName(Path.GetFullPath(file));
            if (directory is not null && !Directory.Exists(directory)) r.AddError($"--tcp-trace: the directory '{directory}' does not exist");
        });
        _https.Validators.Add(r => CheckPort(r, "--https"));
        foreach (var port in new[] { _echo, _discard, _chargen, _udpEcho, _http })
            port.Validators.Add(r => CheckPort(r, port.Name));
        _port.Validators.Add(r => CheckPort(r, "port"));
        _host.Validators.Add(r => { if (LastToken(r) is { } h && !IpAddress.TryParse(h, out _)) r.AddError($"host: '{h}' is not an IPv4 or IPv6 address"); });
        _spin.Validators.Add(r => { if (int.TryParse(LastToken(r), out int us) && us is < 0 or > 100_000) r.AddError($"--spin: {us} us is out of range (0..100000)"); });
        _timeout.Validators.Add(r => { if (double.TryParse(LastToken(r), NumberStyles.Float, CultureInfo.InvariantCulture, out double t) && t is <= 0 or > 3600) r.AddError($"--timeout: {t} s is out of range (0..3600)"); });
        _cc.Validators.Add(r => { if (LastToken(r) is { } cc && cc is not ("cubic" or "newreno")) r.AddError($"--cc: '{cc}' is not one of cubic, newreno"); });
        _buffer.Validators.Add(r =>
        {
            if (LastToken(r) is not { } b || b == "auto") return;
            if (!int.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out int size) || size < 4096 || size > 1 << 30)
                r.AddError($"--buffer: '{b}' is not a size in bytes from 4096 to 1073741824, or 'auto'");
        });
        foreach (var (option, check, what) in new (Option<string?>, Func<string?, bool>, string)[]
        {
            (_loss, t => FaultSyntax.TryPercent(t, out _), "a percentage from 0 to 100"),
            (_reorder, t => FaultSyntax.TryPercent(t, out _), "a percentage from 0 to 100"),
            (_duplicate, t => FaultSyntax.TryPercent(t, out _), "a percentage from 0 to 100"),
            (_corrupt, t => FaultSyntax.TryPercent(t, out _), "a percentage from 0 to 100"),
            (_delay, t => FaultSyntax.TryMilliseconds(t, out _), "milliseconds from 0 to 600000"),
            (_jitter, t => FaultSyntax.TryMilliseconds(t, out _), "milliseconds from 0 to 600000"),
            (_rate, t => FaultSyntax.TryRate(t, out _), "a rate such as 10mbit, 1gbit or 800kbit (8 kbit/s to 1 Tbit/s)"),
        })
        {
            option.Validators.Add(r =>
            {
                if (LastToken(r) is not { } text) return;
                if (FaultSyntax.Split(text, option.Name, out var error) is not { } parts) { r.AddError(error!); return; }
                foreach (var part in new[] { parts.In, parts.Out })
                    if (part is not null && !check(part)) { r.AddError($"{option.Name}: '{part}' is not {what}"); return; }
            });
        }
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
        (_addr6, text =>
        {
            if (text is null) return null;
            if (!IpAddress.TryParse(text, out var a) || a.IsV4) return $"--addr6: '{text}' is not an IPv6 address (such as fd00:7475:6e::2)";
            return InterfaceAddress6.IsAssignable(a, out var e) ? null : $"--addr6: {e}";
        }),
        (_hostAddr6, text => text is null || InterfaceAddress6.TryParse(text, out _, out var e) ? null : $"--host-addr6: {e}"),
        (_mtu, text =>
        {
            // A token that is not a number gets the parser's own conversion error.
            if (text is null || !int.TryParse(text, out int mtu)) return null;
            return mtu is < TunInterfaceOptions.MinimumMtu or > TunInterfaceOptions.MaximumMtu
                ? $"--mtu: {mtu} is out of range; an IPv4 link MTU is from {TunInterfaceOptions.MinimumMtu} (RFC 791) to {TunInterfaceOptions.MaximumMtu} bytes"
                : null;
        }),
        (_netns, text => text is null || NetworkNamespace.IsValidName(text, out var e) ? null : $"--netns: {e}"),
        (_pcapFormat, text => text is null || PcapFormats.Contains(text) ? null : $"--pcap-format: '{text}' is not one of {string.Join(", ", PcapFormats)}"),
    ];

    /// <summary>The one port check: a number that parses but is not 1..65535 is an error naming the option (a non-number gets the parser's own error).</summary>
    private static void CheckPort(SymbolResult result, string name)
    {
        if (int.TryParse(LastToken(result), out int p) && p is < 1 or > 65535) result.AddError($"{name}: {p} is not a port (1..65535)");
    }

    private static string? LastToken(SymbolResult? result) => result is { Tokens.Count: > 0 } ? result.Tokens[^1].Value : null;

    private void AddCommonOptions(Command command)
    {
        foreach (Option option in new Option[] { _tun, _addr, _hostAddr, _addr6, _hostAddr6, _ipv4Only, _mtu, _netns, _noNetns, _pcap, _pcapFormat, _trace, _packetInfo })
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
            if (r.GetResult(_pcapFormat) is { Implicit: false } && r.GetResult(_pcap) is null)
                r.AddError("--pcap-format sets the format of the --pcap file; add --pcap FILE");
            var stack = Ipv4Address.Parse(LastToken(r.GetResult(_addr)) ?? DefaultStackAddress.ToString());
            var host = InterfaceAddress.Parse(LastToken(r.GetResult(_hostAddr)) ?? TunInterfaceOptions.DefaultHostAddress.ToString());
            if (stack == host.Value)
                r.AddError($"--addr {stack} is the same as the host side's address (--host-addr {host}); the stack needs an address of its own, e.g. {Suggest(host)}");
            else if (!host.Contains(stack))
                r.AddError($"--addr {stack} is outside the host side's prefix {host.Network}/{host.PrefixLength} (--host-addr {host}), so the kernel would not route it to the device; use e.g. {Suggest(host)}");
            else if (!host.IsUsableHost(stack))
                r.AddError($"--addr {stack} is the network or broadcast address of {host.Network}/{host.PrefixLength}; use e.g. {Suggest(host)}");
            if (r.GetValue(_ipv4Only))
            {
                foreach (var option in new[] { _addr6, _hostAddr6 })
                    if (r.GetResult(option) is { Implicit: false })
                        r.AddError($"{option.Name} and --ipv4-only contradict each other; give one of them");
                return;
            }
            if (int.TryParse(LastToken(r.GetResult(_mtu)), out int mtuValue) && mtuValue < TunInterfaceOptions.MinimumMtu6)
                r.AddError($"--mtu {mtuValue} is below {TunInterfaceOptions.MinimumMtu6}, the least an IPv6 link carries (RFC 8200 5); raise it or add --ipv4-only");
            var stack6 = IpAddress.Parse(LastToken(r.GetResult(_addr6)) ?? DefaultStackAddress6.ToString());
            var host6 = InterfaceAddress6.Parse(LastToken(r.GetResult(_hostAddr6)) ?? TunInterfaceOptions.DefaultHostAddress6.ToString());
            if (stack6 == host6.Value)
                r.AddError($"--addr6 {stack6} is the same as the host side's address (--host-addr6 {host6}); the stack needs an address of its own");
            else if (!host6.Contains(stack6))
                r.AddError($"--addr6 {stack6} is outside the host side's prefix (--host-addr6 {host6}), so the kernel would not route it to the device");
        });
    }

    private static Ipv4Address Suggest(InterfaceAddress host)
    {
        var candidate = new Ipv4Address(host.Value.Value + 1);
        return host.IsUsableHost(candidate) ? candidate : new Ipv4Address(host.Value.Value - 1);
    }

    private ToolSettings ReadSettings(ParseResult result)
    {
        var options = new TunInterfaceOptions
        {
            DeviceName = result.GetValue(_tun)!,
            HostAddress = InterfaceAddress.Parse(result.GetValue(_hostAddr)!),
            HostAddress6 = result.GetValue(_ipv4Only) ? null : InterfaceAddress6.Parse(result.GetValue(_hostAddr6)!),
            Mtu = result.GetValue(_mtu),
            NetworkNamespace = result.GetValue(_noNetns) ? null : result.GetValue(_netns),
            PacketInformation = result.GetValue(_packetInfo),
            ClonePath = Environment.GetEnvironmentVariable(ClonePathVariable) is { Length: > 0 } path ? path : TunDevice.DefaultClonePath,
        };
        var settings = new ToolSettings(options, Ipv4Address.Parse(result.GetValue(_addr)!), result.GetValue(_pcap), result.GetValue(_trace))
        {
            StackAddress6 = result.GetValue(_ipv4Only) ? null : IpAddress.Parse(result.GetValue(_addr6)!),
            PcapFormat = result.GetValue(_pcapFormat) == "pcap" ? CaptureFormat.Pcap : CaptureFormat.PcapNg,
        };
        var command = result.CommandResult.Command;
        if (command.Name == "dump") return settings;
        settings = settings with
        {
            Tcp = ReadTcp(result, options.Mtu), Faults = ReadFaults(result), Spin = TimeSpan.FromMicroseconds(result.GetValue(_spin)),
            TcpTracePath = result.GetValue(_tcpTrace),
        };
        // Offloads only when the stack reads the device directly: decorators expect plain packets.
        bool offloads = !result.GetValue(_noOffload) && settings.PcapPath is null && !settings.Trace && settings.Faults.IsEmpty && !options.PacketInformation;
        settings = settings with { Interface = options with { Offloads = offloads } };
        if (command.Name == "serve")
        {
            settings = settings with
            {
                Services = new ServiceOptions(
                    result.GetValue(_noEcho) ? null : (ushort)result.GetValue(_echo),
                    result.GetValue(_noDiscard) ? null : (ushort)result.GetValue(_discard),
                    result.GetValue(_noChargen) ? null : (ushort)result.GetValue(_chargen),
                    result.GetValue(_noUdpEcho) ? null : (ushort)result.GetValue(_udpEcho))
                {
                    Http = result.GetValue(_noHttp) ? null : (ushort)result.GetValue(_http),
                    Https = result.GetValue(_https) is int https ? (ushort)https : null,
                    PfxPath = result.GetValue(_pfx),
                    PfxPassword = ReadPfxPassword(result.GetValue(_pfxPasswordFile)),
                },
            };
        }
        if (command.Name is "forward" or "run")
        {
            var routes = new List<(IpAddress, int)>();
            foreach (var text in result.GetValue(_route) ?? [])
                routes.Add(ParseRoute(text, out _)!.Value);
            if (routes.Count == 0)
            {
                routes.Add((IpAddress.AnyV4, 0));
                if (settings.StackAddress6 is not null) routes.Add((IpAddress.AnyV6, 0));
            }
            string? ns = options.NetworkNamespace;
            if (command.Name == "run" && result.GetResult(_netns) is null or { Implicit: true })
                ns = $"tuntcp-run-{Environment.ProcessId}";
            settings = settings with
            {
                Interface = settings.Interface with { Routes = [.. routes.Select(r => (r.Item1.ToIPAddress(), r.Item2))], NetworkNamespace = ns },
                Forward = new ForwardSettings(result.GetValue(_upstream)!, result.GetValue(_dns), routes,
                    command.Name == "run" ? result.GetValue(_command) : null,
                    NamespaceChosen: result.GetResult(_netns) is { Implicit: false } || result.GetValue(_noNetns)),
            };
        }
        if (command.Name == "connect")
        {
            settings = settings with
            {
                Target = new System.Net.IPEndPoint(IpAddress.Parse(result.GetValue(_host)!).ToIPAddress(), result.GetValue(_port)),
                ConnectTimeout = TimeSpan.FromSeconds(result.GetValue(_timeout)),
            };
        }
        return settings;
    }

    /// <summary>The PFX password: the first line of the file, else the environment variable, else none.</summary>
    private static string? ReadPfxPassword(string? file)
    {
        if (file is not null) return File.ReadLines(file).FirstOrDefault() ?? "";
        return Environment.GetEnvironmentVariable(PfxPasswordVariable) is { Length: > 0 } password ? password : null;
    }

    /// <summary>
    /// The log level the arguments ask for (<c>--log-level LEVEL</c>, <c>--log-level=LEVEL</c>,
    /// <c>-q</c>/<c>--quiet</c>, before any <c>--</c>), else <paramref name="fallback"/>. Read before
    /// parsing, because the logger exists before the command runs; a bad level is the parser's error.
    /// </summary>
    public static LogLevel LogLevelFrom(IReadOnlyList<string> args, LogLevel fallback)
    {
        var level = fallback;
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a == "--") break;
            if (a is "-q" or "--quiet") level = LogLevel.Warning;
            else if (a == "--log-level" && i + 1 < args.Count && TryParseLogLevel(args[i + 1], out var l)) level = l;
            else if (a.StartsWith("--log-level=", StringComparison.Ordinal) && TryParseLogLevel(a["--log-level=".Length..], out var m)) level = m;
        }
        return level;
    }

    /// <summary>trace, debug, information (info), warning (warn), error, critical, none; any case.</summary>
    public static bool TryParseLogLevel(string? text, out LogLevel level)
    {
        level = LogLevel.Information;
        switch (text?.ToLowerInvariant())
        {
            case "info": level = LogLevel.Information; return true;
            case "warn": level = LogLevel.Warning; return true;
            case null or "": return false;
            default: return Enum.TryParse(text, ignoreCase: true, out level) && Enum.IsDefined(level) && !int.TryParse(text, out _);
        }
    }

    /// <summary>
    /// The buffer size 'auto' picks: 32 full segments, within [1 MiB, 4 MiB]. The rings grow on
    /// demand, so a large maximum costs memory only on connections that fill it.
    /// </summary>
    public static int AutoBufferSize(int mtu) => Math.Clamp(32 * (mtu - 40), 1024 * 1024, 4 * 1024 * 1024);

    private TcpSettings ReadTcp(ParseResult result, int mtu)
    {
        string buffer = result.GetValue(_buffer)!;
        int size = buffer == "auto" ? AutoBufferSize(mtu) : int.Parse(buffer, CultureInfo.InvariantCulture);
        var cc = result.GetValue(_cc) == "newreno" ? TcpCongestionControl.NewReno : TcpCongestionControl.Cubic;
        return new TcpSettings { SendBufferSize = size, ReceiveBufferSize = size, CongestionControl = cc, Ecn = !result.GetValue(_noEcn) };
    }

    private LinkFaults ReadFaults(ParseResult result)
    {
        var inbound = new FaultProfile();
        var outbound = new FaultProfile();
        void Apply(Option<string?> option, Func<FaultProfile, string, FaultProfile> set)
        {
            if (result.GetValue(option) is not { } text) return;
            var (i, o) = FaultSyntax.Split(text, option.Name, out _)!.Value;
            if (i is not null) inbound = set(inbound, i);
            if (o is not null) outbound = set(outbound, o);
        }
        Apply(_loss, (p, t) => { FaultSyntax.TryPercent(t, out var v); return p with { LossPercent = v }; });
        Apply(_delay, (p, t) => { FaultSyntax.TryMilliseconds(t, out var v); return p with { Delay = v }; });
        Apply(_jitter, (p, t) => { FaultSyntax.TryMilliseconds(t, out var v); return p with { Jitter = v }; });
        Apply(_reorder, (p, t) => { FaultSyntax.TryPercent(t, out var v); return p with { ReorderPercent = v }; });
        Apply(_duplicate, (p, t) => { FaultSyntax.TryPercent(t, out var v); return p with { DuplicatePercent = v }; });
        Apply(_corrupt, (p, t) => { FaultSyntax.TryPercent(t, out var v); return p with { CorruptPercent = v }; });
        Apply(_rate, (p, t) => { FaultSyntax.TryRate(t, out var v); return p with { RateBitsPerSecond = v }; });
        return new LinkFaults(inbound, outbound, result.GetValue(_seed));
    }

    private void AddStackOptions(Command command)
    {
        foreach (Option option in new Option[] { _cc, _buffer, _spin, _noEcn, _noOffload, _tcpTrace, _loss, _delay, _jitter, _reorder, _duplicate, _corrupt, _rate, _seed })
            command.Options.Add(option);
    }

    private void AddServiceOptions(Command command)
    {
        foreach (Option option in new Option[] { _echo, _noEcho, _discard, _noDiscard, _chargen, _noChargen, _udpEcho, _noUdpEcho, _http, _noHttp, _https, _pfx, _pfxPassword, _pfxPasswordFile })
            command.Options.Add(option);
        command.Validators.Add(r =>
        {
            if (r.GetResult(_pfxPassword) is { Implicit: false })
                r.AddError($"--pfx-password: a password on the command line is visible to every user of the machine (ps, /proc); put it in a file for --pfx-password-file FILE, or in the environment variable {PfxPasswordVariable}");
            if (LastToken(r.GetResult(_pfxPasswordFile)) is { } passwordFile && !File.Exists(passwordFile))
                r.AddError($"--pfx-password-file: '{passwordFile}' does not exist");
            if (LastToken(r.GetResult(_pfx)) is { } file)
            {
                if (r.GetResult(_https) is null) r.AddError("--pfx only matters with --https PORT");
                if (!File.Exists(file)) r.AddError($"--pfx: '{file}' does not exist");
            }
            // Command validators see no default values yet: read the tokens, else the defaults.
            int PortOf(Option<int> option, int fallback) => int.TryParse(LastToken(r.GetResult(option)), out int p) ? p : fallback;
            bool On(Option<bool> off) => r.GetResult(off) is null;
            var ports = new List<(string, int)>();
            if (On(_noEcho)) ports.Add(("--echo", PortOf(_echo, ServiceOptions.DefaultEcho)));
            if (On(_noDiscard)) ports.Add(("--discard", PortOf(_discard, ServiceOptions.DefaultDiscard)));
            if (On(_noChargen)) ports.Add(("--chargen", PortOf(_chargen, ServiceOptions.DefaultChargen)));
            if (On(_noHttp)) ports.Add(("--http", PortOf(_http, ServiceOptions.DefaultHttp)));
            if (int.TryParse(LastToken(r.GetResult(_https)), out int h)) ports.Add(("--https", h));
            foreach (var clash in ports.GroupBy(p => p.Item2).Where(g => g.Count() > 1))
                r.AddError($"{string.Join(" and ", clash.Select(c => c.Item1))} use the same TCP port {clash.Key}; move one of them");
        });
    }

    /// <summary>A route prefix, "10.0.0.0/8" or "fd00::/8", normalised (host bits cleared); null with the reason when it is not one.</summary>
    public static (IpAddress Network, int PrefixLength)? ParseRoute(string text, out string? error)
    {
        error = null;
        int slash = text.IndexOf('/');
        if (slash < 0 || !IpAddress.TryParse(text[..slash], out var address)
            || !int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int length))
        {
            error = $"--route: '{text}' is not a prefix such as 10.0.0.0/8 or fd00::/8";
            return null;
        }
        int max = address.IsV4 ? 32 : 128;
        if (length > max)
        {
            error = $"--route: prefix length {length} is more than {max} for {address}";
            return null;
        }
        if (address.IsMulticastOrBroadcast || address.IsLoopback)
        {
            error = $"--route: {text} is a multicast, broadcast or loopback prefix, which cannot be routed through a device";
            return null;
        }
        return (Mask(address, length), length);
    }

    private static IpAddress Mask(IpAddress address, int length)
    {
        if (address.IsV4)
        {
            uint mask = length == 0 ? 0 : uint.MaxValue << (32 - length);
            return IpAddress.FromV4(new Ipv4Address(address.V4.Value & mask));
        }
        ulong high = length == 0 ? 0 : length >= 64 ? ulong.MaxValue : ulong.MaxValue << (64 - length);
        ulong low = length <= 64 ? 0 : length == 128 ? ulong.MaxValue : ulong.MaxValue << (128 - length);
        return new IpAddress(address.High & high, address.Low & low);
    }

    private void AddForwardOptions(Command command, bool run)
    {
        command.Options.Add(_upstream);
        command.Options.Add(_dns);
        command.Options.Add(_route);
        if (run) command.Arguments.Add(_command);
        command.Validators.Add(r =>
        {
            if (r.GetValue(_noNetns))
                r.AddError($"--no-netns: {command.Name} carries the traffic of a namespace of its own; it never takes over the current one");
            if (LastToken(r.GetResult(_upstream)) is { } upstream && upstream != "direct")
            {
                try { Forwarding.Socks5Proxy.Parse(upstream); }
                catch (FormatException e) { r.AddError($"--upstream: {e.Message}"); }
            }
            bool ipv4Only = r.GetValue(_ipv4Only);
            foreach (var text in r.GetValue(_route) ?? [])
            {
                if (ParseRoute(text, out var error) is not { } route) r.AddError(error!);
                else if (ipv4Only && !route.Network.IsV4) r.AddError($"--route {text} is IPv6, but --ipv4-only switches IPv6 off");
            }
        });
    }

    private void AddConnectArguments(Command command)
    {
        command.Arguments.Add(_host);
        command.Arguments.Add(_port);
        command.Options.Add(_timeout);
        command.Validators.Add(r =>
        {
            if (r.GetValue(_ipv4Only) && LastToken(r.GetResult(_host)) is { } h && IpAddress.TryParse(h, out var a) && a.IsV6)
                r.AddError($"host {h} is an IPv6 address, but --ipv4-only gives the stack none");
        });
    }
}
