using System.Runtime.InteropServices;
using TunTcp.Links;

namespace TunTcp.Cli;

/// <summary>
/// Turns SIGINT, SIGTERM and SIGHUP into an orderly exit: the first signal cancels
/// <see cref="Token"/> and signals <see cref="Wake"/> (so a thread sleeping in a device's Wait
/// returns at once) and suppresses the default termination, so the command can remove what it
/// created. A second signal while shutting down is let through and ends the process the hard way,
/// for when clean-up hangs.
/// </summary>
internal sealed class ShutdownSignals : IDisposable
{
    private readonly CancellationTokenSource _cancellation = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _received;

    public ShutdownSignals()
    {
        HonourIgnoredSigint();
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGHUP, OnSignal),
        ];
    }

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => _cancellation.Token;

    /// <summary>Signalled with the first signal; pass it to <see cref="ILinkDevice.Wait"/>.</summary>
    public WakeSignal Wake { get; } = new();

    /// <summary>The first signal received, or null.</summary>
    public PosixSignal? Received { get; private set; }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        Wake.Dispose();
        _cancellation.Dispose();
    }

    /// <summary>
    /// A non-interactive shell starts background commands (<c>tuntcp serve &amp;</c>) with SIGINT
    /// ignored, and the .NET runtime then leaves it ignored, so <c>kill -INT</c> would do nothing
    /// and the device and namespace would stay until SIGTERM. SIGINT is this tool's documented
    /// stop signal and leads to an orderly clean-up, so an inherited "ignore" is reset to the
    /// default before registering (only then: a handler the runtime installed is left alone).
    /// </summary>
    private static unsafe void HonourIgnoredSigint()
    {
        const int SIGINT = 2;
        nint SIG_DFL = 0, SIG_IGN = 1;
        // struct sigaction (glibc, x86-64 and arm64): the handler is the first field; 152 bytes in all.
        byte* current = stackalloc byte[256];
        if (sigaction(SIGINT, null, current) != 0) return;
        if (*(nint*)current != SIG_IGN) return;
        byte* reset = stackalloc byte[256];
        new Span<byte>(reset, 256).Clear();
        *(nint*)reset = SIG_DFL;
        _ = sigaction(SIGINT, reset, null);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern unsafe int sigaction(int signal, byte* action, byte* oldAction);

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Exchange(ref _received, 1) == 1) return; // second signal: default action
        context.Cancel = true;
        Received = context.Signal;
        _cancellation.Cancel();
        Wake.Signal();
    }
}
