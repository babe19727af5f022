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

    private void OnSignal(PosixSignalContext context)
    {
        if (Interlocked.Exchange(ref _received, 1) == 1) return; // second signal: default action
        context.Cancel = true;
        Received = context.Signal;
        _cancellation.Cancel();
        Wake.Signal();
    }
}
