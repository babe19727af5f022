using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Simulation;

/// <summary>
/// One bulk transfer over a <see cref="SimulatedNetwork"/>: B connects to A's listener, A's
/// accepted connection sends <c>bytes</c> of the pattern to B and closes; B reads and checks
/// every byte, then closes too.
/// </summary>
internal sealed class TransferScenario
{
    public TransferScenario(SimulatedNetwork network, long bytes, int seed = 0, ushort port = 5001)
    {
        Network = network;
        Bytes = bytes;
        Listener = network.A.Listen(Ipv4Address.Any, port, 16);
        Client = network.B.Connect(SimulatedNetwork.AddressA, port, network.Now);
        Receiver = new PatternReceiver(network.B, Client, seed);
        network.AddApp(n =>
        {
            if (Server is null && Listener.TryAccept(out var accepted))
            {
                Server = accepted;
                Sender = new BulkSender(n.A, accepted, bytes, seed);
            }
            Sender?.Step(n.Now);
            Receiver.Step();
            if (Receiver.Eof && !_clientClosed)
            {
                _clientClosed = true;
                FinishedAt = n.Now;
                n.B.Close(Client, n.Now);
            }
        });
    }

    private bool _clientClosed;

    public SimulatedNetwork Network { get; }
    public long Bytes { get; }
    public TcpListenQueue Listener { get; }
    public TcpConnection Client { get; }
    public TcpConnection? Server { get; private set; }
    public BulkSender? Sender { get; private set; }
    public PatternReceiver Receiver { get; }
    public Instant FinishedAt { get; private set; }

    /// <summary>Both ends reached CLOSED (or TIME-WAIT on the side that closed first).</summary>
    public bool Done => Receiver.Eof && Client.State is TcpConnectionState.Closed or TcpConnectionState.TimeWait
        && Server is { State: TcpConnectionState.Closed or TcpConnectionState.TimeWait };

    public bool Run(TimeSpan limit) => Network.RunUntil(() => Done, limit);
}
