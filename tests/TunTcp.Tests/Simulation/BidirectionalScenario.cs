using TunTcp.Tcp;
using TunTcp.Wire;

namespace TunTcp.Tests.Simulation;

/// <summary>
/// B connects to A; both send a pattern stream at the same time, then half-close; each side
/// closes once it has read to the end and written all it had. Used by the property tests: every byte must arrive exactly
/// once and in order, and both connections must end (cleanly or with a reported timeout).
/// </summary>
internal sealed class BidirectionalScenario
{
    private bool _aClosed, _bClosed;

    public BidirectionalScenario(SimulatedNetwork network, long aToB, long bToA)
    {
        Network = network;
        var listener = network.A.Listen(Ipv4Address.Any, 7000, 4);
        Client = network.B.Connect(SimulatedNetwork.AddressA, 7000, network.Now);
        ClientSender = new BulkSender(network.B, Client, bToA, seed: 2);
        ClientReceiver = new PatternReceiver(network.B, Client, seed: 1);
        network.AddApp(n =>
        {
            if (Server is null && listener.TryAccept(out var s))
            {
                Server = s;
                ServerSender = new BulkSender(n.A, s, aToB, seed: 1);
                ServerReceiver = new PatternReceiver(n.A, s, seed: 2);
            }
            ClientSender.Step(n.Now);
            ClientReceiver.Step();
            if (ClientReceiver.Eof && ClientSender.Closed && !_bClosed) { _bClosed = true; n.B.Close(Client, n.Now); }
            if (Server is not null)
            {
                ServerSender!.Step(n.Now);
                ServerReceiver!.Step();
                if (ServerReceiver.Eof && ServerSender.Closed && !_aClosed) { _aClosed = true; n.A.Close(Server, n.Now); }
            }
        });
    }

    public SimulatedNetwork Network { get; }
    public TcpConnection Client { get; }
    public TcpConnection? Server { get; private set; }
    public BulkSender ClientSender { get; }
    public PatternReceiver ClientReceiver { get; }
    public BulkSender? ServerSender { get; private set; }
    public PatternReceiver? ServerReceiver { get; private set; }

    private static bool Ended(TcpConnection? c) => c is null || c.State is TcpConnectionState.Closed or TcpConnectionState.TimeWait;

    /// <summary>Both ends have finished (a connect that never got through counts as ended for the server).</summary>
    public bool Ended() => Ended(Client) && (Server is null ? Client.State == TcpConnectionState.Closed : Ended(Server));

    public bool TimedOut => Client.Error == TcpError.TimedOut || Server?.Error == TcpError.TimedOut;
}
