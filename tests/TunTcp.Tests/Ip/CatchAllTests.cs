using System.Net.Sockets;
using TunTcp.Ip;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;

namespace TunTcp.Tests.Ip;

/// <summary>
/// Catch-all mode (<see cref="NetStackOptions.FlowHandler"/>): flows to any address are offered to
/// the handler, which accepts, refuses, answers unreachable or drops them; the stack then speaks
/// from the address the peer dialed.
/// </summary>
public class CatchAllTests
{
    private static readonly Ipv4Address World4 = Ipv4Address.Parse("10.203.0.2");
    private static readonly IpAddress World6 = IpAddress.Parse("fd00:cb::2");

    private readonly RecordingOutput _out = new();
    private readonly ScriptedHandler _handler = new();

    private NetStackCore Core(int pendingLimit = 16, TimeSpan? timeout = null)
    {
        var core = new NetStackCore(new NetStackOptions
        {
            Address = Packets.Stack.ToIPAddress(),
            Address6 = Packets6.Stack.ToIPAddress(),
            FlowHandler = _handler,
            PendingFlowLimit = pendingLimit,
            FlowDecisionTimeout = timeout ?? TimeSpan.FromSeconds(75),
        }, _out);
        _handler.Core = core;
        return core;
    }

    private static IpAddress World(bool v6) => v6 ? World6 : World4;

    private static byte[] SynTo(bool v6, ushort sourcePort = 40000, ushort port = 8080, uint isn = 1000) =>
        Tcp(v6, new TcpHeader(sourcePort, port, new SeqNumber(isn), default, TcpFlags.Syn, 64240), new TcpOptions { MaxSegmentSize = 1460 });

    private static byte[] Tcp(bool v6, TcpHeader header, TcpOptions options = default, ReadOnlySpan<byte> payload = default) =>
        v6 ? Packets6.Tcp(header, options, payload, to: World6) : Packets.Tcp(header, options, payload, to: World4);

    private static (IpAddress Source, IpAddress Destination) Addresses(byte[] packet) => packet[0] >> 4 == 4
        ? (IpAddress.FromV4(Ipv4Address.Read(packet.AsSpan(12))), IpAddress.FromV4(Ipv4Address.Read(packet.AsSpan(16))))
        : (IpAddress.ReadV6(packet.AsSpan(8)), IpAddress.ReadV6(packet.AsSpan(24)));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SynToAnyAddress_IsOfferedOnce_AndItsRetransmissionsAreFolded(bool v6)
    {
        var core = Core();
        core.Receive(SynTo(v6), Instant.Zero);
        core.Receive(SynTo(v6), Seconds(1));

        var request = Assert.Single(_handler.Flows);
        Assert.Equal(World(v6), request.Destination);
        Assert.Equal(8080, request.DestinationPort);
        Assert.Equal(40000, request.SourcePort);
        Assert.Equal(1, request.SynRetransmissions);
        Assert.True(request.IsPending);
        Assert.Empty(_out.Packets); // nothing is answered before the decision
        Assert.Equal(1, core.Statistics.FlowsRequested);
        Assert.Equal(1, core.Statistics.FlowSynsFolded);
        Assert.Equal(1, core.PendingFlowCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AcceptedFlow_IsAnsweredFromTheDialedAddress_AndCarriesData(bool v6)
    {
        var core = Core();
        core.Receive(SynTo(v6), Instant.Zero);
        var c = core.CompleteTcpFlow(_handler.Flows[0], FlowVerdict.Accept, Instant.Zero);

        Assert.NotNull(c);
        Assert.Equal(TcpConnectionState.SynReceived, c.State);
        var synAck = _out.Single();
        Assert.Equal((World(v6), v6 ? Packets6.Host : IpAddress.FromV4(Packets.Host)), Addresses(synAck));
        var sent = SentTcp.Parse(synAck);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, sent.Flags);
        Assert.Equal(8080, sent.SourcePort);
        Assert.Equal(new SeqNumber(1001), sent.Ack);
        Assert.True(IsChecksumValid(synAck));
        _out.Packets.Clear();

        core.Receive(Tcp(v6, new TcpHeader(40000, 8080, new SeqNumber(1001), sent.Seq + 1, TcpFlags.Ack | TcpFlags.Psh, 502), payload: "GET /"u8), Instant.FromMilliseconds(1));
        core.Poll(Instant.FromMilliseconds(1));
        Assert.Equal(TcpConnectionState.Established, c.State);
        Assert.Null(c.Listener);
        var read = new byte[16];
        Assert.Equal("GET /"u8.ToArray(), read.AsSpan(0, c.ReceiveBuffer.Read(read)).ToArray());
        Assert.False(_handler.Flows[0].IsPending);
        Assert.Equal(0, core.PendingFlowCount);
        Assert.Equal(1, core.Statistics.FlowsAccepted);

        // The reply goes out from the dialed address too.
        _out.Packets.Clear();
        CoreTcp.Write(core, c, 100, Instant.FromMilliseconds(2));
        var data = Assert.Single(_out.Packets, p => SentTcp.Parse(p).Length > 0);
        Assert.Equal(World(v6), Addresses(data).Source);
        Assert.True(IsChecksumValid(data));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RefusedFlow_GetsRstFromTheDialedAddress(bool v6)
    {
        var core = Core();
        core.Receive(SynTo(v6), Instant.Zero);
        Assert.Null(core.CompleteTcpFlow(_handler.Flows[0], FlowVerdict.Refuse, Instant.Zero));

        var rst = _out.Single();
        Assert.Equal(World(v6), Addresses(rst).Source);
        var sent = SentTcp.Parse(rst);
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, sent.Flags);
        Assert.Equal(new SeqNumber(1001), sent.Ack); // RFC 9293 3.10.7.1: ACK = SEG.SEQ + SEG.LEN
        Assert.Equal(0, core.ConnectionCount);
        Assert.Equal(1, core.Statistics.FlowsRefused);
    }

    [Theory]
    [InlineData(false, (int)(FlowVerdict.HostUnreachable), 1)]
    [InlineData(false, (int)(FlowVerdict.NetworkUnreachable), 0)]
    [InlineData(true, (int)(FlowVerdict.HostUnreachable), 3)]
    [InlineData(true, (int)(FlowVerdict.NetworkUnreachable), 0)]
    public void UnreachableFlow_GetsIcmpFromTheStackAsRouter_QuotingTheSyn(bool v6, int verdictValue, byte code)
    {
        var verdict = (FlowVerdict)verdictValue;
        var core = Core();
        var syn = SynTo(v6);
        core.Receive(syn, Instant.Zero);
        core.CompleteTcpFlow(_handler.Flows[0], verdict, Instant.Zero);

        var error = _out.Single();
        var (source, _) = Addresses(error);
        Assert.Equal(v6 ? Packets6.Stack : IpAddress.FromV4(Packets.Stack), source);
        int at = v6 ? Ipv6Header.Length : Ipv4Header.Length;
        Assert.Equal(v6 ? (byte)Icmpv6Type.DestinationUnreachable : (byte)Icmpv4Type.DestinationUnreachable, error[at]);
        Assert.Equal(code, error[at + 1]);
        Assert.Equal(syn.AsSpan(0, Math.Min(syn.Length, 28)).ToArray(), error.AsSpan(at + 8, Math.Min(syn.Length, 28)).ToArray());
        Assert.Equal(1, core.Statistics.FlowsUnreachable);
    }

    [Fact]
    public void UndecidedFlow_ExpiresAfterTheDecisionTimeout_AndALateDecisionIsIgnored()
    {
        var core = Core(timeout: TimeSpan.FromSeconds(5));
        core.Receive(SynTo(false), Instant.Zero);
        Assert.False(core.NextDeadline.IsNever); // the sweep is scheduled

        core.Poll(Seconds(4));
        Assert.Equal(1, core.PendingFlowCount);
        core.Poll(Seconds(6));
        Assert.Equal(0, core.PendingFlowCount);
        Assert.False(_handler.Flows[0].IsPending);
        Assert.Equal(1, core.Statistics.FlowsExpired);
        Assert.True(core.NextDeadline.IsNever);

        Assert.Null(core.CompleteTcpFlow(_handler.Flows[0], FlowVerdict.Accept, Seconds(7)));
        Assert.Empty(_out.Packets);
        Assert.Equal(0, core.ConnectionCount);
    }

    [Fact]
    public void PendingTable_IsBounded_NewFlowsBeyondItAreDropped()
    {
        var core = Core(pendingLimit: 2);
        for (ushort port = 1; port <= 3; port++) core.Receive(SynTo(false, sourcePort: (ushort)(40000 + port)), Instant.Zero);

        Assert.Equal(2, _handler.Flows.Count);
        Assert.Equal(1, core.Statistics.FlowTableFull);
        Assert.Empty(_out.Packets);

        // Deciding one makes room again.
        core.CompleteTcpFlow(_handler.Flows[0], FlowVerdict.Drop, Instant.Zero);
        core.Receive(SynTo(false, sourcePort: 40003), Instant.Zero);
        Assert.Equal(3, _handler.Flows.Count);
        Assert.Equal(1, core.Statistics.FlowsDropped);
    }

    [Fact]
    public void DecisionMadeInsideTheCallback_Works()
    {
        var core = Core();
        _handler.Immediate = FlowVerdict.Accept;
        core.Receive(SynTo(false), Instant.Zero);
        Assert.Equal(1, core.ConnectionCount);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, SentTcp.Parse(_out.Single()).Flags);
    }

    [Fact]
    public void NonSynSegmentForNoFlow_GetsRstFromTheDialedAddress_WithoutAskingTheHandler()
    {
        var core = Core();
        core.Receive(Tcp(false, new TcpHeader(40000, 8080, new SeqNumber(5), new SeqNumber(77), TcpFlags.Ack, 100)), Instant.Zero);
        Assert.Empty(_handler.Flows);
        var rst = _out.Single();
        Assert.Equal(IpAddress.FromV4(World4), Addresses(rst).Source);
        Assert.Equal(TcpFlags.Rst, SentTcp.Parse(rst).Flags);
    }

    [Fact]
    public void WildcardListener_ServesOnlyTheStacksOwnAddresses()
    {
        var core = Core();
        core.Listen(IpAddress.AnyV6, 8080, 8);
        core.Receive(SynTo(false), Instant.Zero);
        Assert.Single(_handler.Flows); // the foreign flow went to the handler
        core.Receive(Packets.Tcp(new TcpHeader(40001, 8080, new SeqNumber(1), default, TcpFlags.Syn, 1000)), Instant.Zero);
        Assert.Single(_handler.Flows);
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, SentTcp.Parse(_out.Single()).Flags); // the listener answered its own
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void UdpToAnyAddress_GoesToTheHandler_AndRepliesComeFromThatAddress(bool v6)
    {
        var core = Core();
        var datagram = v6 ? Packets6.Udp(5353, 53, "query"u8, to: World6) : Packets.Udp(5353, 53, "query"u8, to: World4);
        core.Receive(datagram, Instant.Zero);

        var (source, sourcePort, destination, port, payload) = Assert.Single(_handler.Datagrams);
        Assert.Equal((World(v6), (ushort)53, (ushort)5353), (destination, port, sourcePort));
        Assert.Equal("query"u8.ToArray(), payload);

        core.SendUdp(destination, port, source, sourcePort, "answer"u8);
        var reply = _out.Single();
        Assert.Equal((World(v6), source), Addresses(reply));
        Assert.True(IsChecksumValid(reply));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RefusedUdp_GetsPortUnreachableFromTheDestinationItself(bool v6)
    {
        var core = Core();
        _handler.UdpVerdict = FlowVerdict.Refuse;
        core.Receive(v6 ? Packets6.Udp(5353, 9, "x"u8, to: World6) : Packets.Udp(5353, 9, "x"u8, to: World4), Instant.Zero);
        var error = _out.Single();
        Assert.Equal(World(v6), Addresses(error).Source);
        int at = v6 ? Ipv6Header.Length : Ipv4Header.Length;
        Assert.Equal(v6 ? (byte)Icmpv6UnreachableCode.PortUnreachable : (byte)Icmpv4UnreachableCode.PortUnreachable, error[at + 1]);
    }

    [Theory]
    [InlineData(false, (int)FlowVerdict.Refuse)]
    [InlineData(true, (int)FlowVerdict.Refuse)]
    [InlineData(false, (int)FlowVerdict.HostUnreachable)]
    [InlineData(true, (int)FlowVerdict.NetworkUnreachable)]
    public void UpstreamIcmpError_ReachesTheApplication_QuotingItsDatagramAsItSentIt(bool v6, int verdictValue)
    {
        // The relay's upstream socket heard an ICMP error about the datagram it sent for the
        // application; the application gets one about its own datagram: the same UDP header and
        // checksum it sent, so its kernel finds the socket; port unreachable from the destination,
        // the others from the stack as the router.
        var verdict = (FlowVerdict)verdictValue;
        var core = Core();
        var app = v6 ? Packets6.Udp(5353, 9, "hello"u8, to: World6) : Packets.Udp(5353, 9, "hello"u8, to: World4);
        var (appAddress, _) = Addresses(app);
        Assert.True(core.SendUdpError(appAddress, 5353, World(v6), 9, "hello"u8, verdict));

        var error = _out.Single();
        var (source, destination) = Addresses(error);
        Assert.Equal(appAddress, destination);
        Assert.Equal(verdict == FlowVerdict.Refuse ? World(v6) : (v6 ? Packets6.Stack : IpAddress.FromV4(Packets.Stack)), source);
        int at = v6 ? Ipv6Header.Length : Ipv4Header.Length;
        Assert.Equal(v6 ? (byte)Icmpv6Type.DestinationUnreachable : (byte)Icmpv4Type.DestinationUnreachable, error[at]);
        byte code = verdict switch
        {
            FlowVerdict.Refuse => v6 ? (byte)Icmpv6UnreachableCode.PortUnreachable : (byte)Icmpv4UnreachableCode.PortUnreachable,
            FlowVerdict.HostUnreachable => v6 ? (byte)Icmpv6UnreachableCode.AddressUnreachable : (byte)Icmpv4UnreachableCode.HostUnreachable,
            _ => v6 ? (byte)Icmpv6UnreachableCode.NoRoute : (byte)Icmpv4UnreachableCode.NetUnreachable,
        };
        Assert.Equal(code, error[at + 1]);
        var quoted = error.AsSpan(at + 8);
        Assert.Equal(Addresses(app), Addresses(quoted.ToArray()));
        Assert.Equal(app.AsSpan(at).ToArray(), quoted[at..].ToArray()); // UDP header with its checksum, and the payload
    }

    [Fact]
    public void UpstreamIcmpError_OfTheOtherFamily_IsNotSent()
    {
        var core = Core();
        Assert.False(core.SendUdpError(IpAddress.FromV4(Packets.Host), 5353, World6, 9, "x"u8, FlowVerdict.Refuse));
        Assert.Empty(_out.Packets);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EchoToAnyAddress_IsRelayed_AndToTheStackItselfStillAnswered(bool v6)
    {
        var core = Core();
        core.Receive(v6 ? Packets6.EchoRequest(7, 1, "hi"u8, to: World6) : Packets.EchoRequest(7, 1, "hi"u8, to: World4), Instant.Zero);
        var (from, to, id, seq, data) = Assert.Single(_handler.Echoes);
        Assert.Equal((World(v6), (ushort)7, (ushort)1), (to, id, seq));
        Assert.Equal("hi"u8.ToArray(), data);
        Assert.Empty(_out.Packets);

        core.SendEchoReply(to, from, id, seq, data);
        var reply = _out.Single();
        Assert.Equal((World(v6), from), Addresses(reply));
        Assert.True(IsChecksumValid(reply));
        _out.Packets.Clear();

        core.Receive(v6 ? Packets6.EchoRequest(8, 1, "me"u8) : Packets.EchoRequest(8, 1, "me"u8), Instant.Zero);
        Assert.Single(_handler.Echoes);
        Assert.Equal(v6 ? Packets6.Stack : IpAddress.FromV4(Packets.Stack), Addresses(_out.Single()).Source);
    }

    [Fact]
    public void WithoutAHandler_OtherAddressesAreNotForUs_AndCannotBeSentFrom()
    {
        var core = new NetStackCore(Packets6.DualStack(), _out);
        core.Receive(SynTo(false), Instant.Zero);
        Assert.Empty(_out.Packets);
        Assert.Equal(1, core.Statistics.NotForUsDropped);
        var e = Assert.Throws<SocketException>(() => core.SendUdp(World4, 53, Packets.Host, 5353, "x"u8));
        Assert.Equal(SocketError.AddressNotAvailable, e.SocketErrorCode);
        Assert.False(core.IsCatchAll);
    }

    [Fact]
    public void BroadcastAndMulticast_AreNeverTaken()
    {
        var core = Core();
        core.Receive(Packets.Udp(5353, 53, "x"u8, to: Ipv4Address.Parse("255.255.255.255")), Instant.Zero);
        core.Receive(Packets.Udp(5353, 53, "x"u8, to: Ipv4Address.Parse("224.0.0.251")), Instant.Zero);
        Assert.Empty(_handler.Datagrams);
        Assert.Equal(2, core.Statistics.NotForUsDropped);
    }

    [Fact]
    public void HandlerThatThrows_LosesOnlyThatFlow()
    {
        var core = Core();
        _handler.Throw = true;
        core.Receive(SynTo(false), Instant.Zero);
        Assert.Equal(0, core.PendingFlowCount);
        Assert.Equal(1, core.Statistics.FlowsDropped);
        _handler.Throw = false;
        core.Receive(SynTo(false, sourcePort: 40001), Instant.Zero);
        Assert.Equal(1, core.PendingFlowCount);
    }

    private static Instant Seconds(int s) => Instant.FromMilliseconds(s * 1000L);

    private static bool IsChecksumValid(byte[] packet)
    {
        var (source, destination) = Addresses(packet);
        int at = packet[0] >> 4 == 4 ? Ipv4Header.Length : Ipv6Header.Length;
        var body = packet.AsSpan(at);
        var protocol = packet[0] >> 4 == 4 ? (IpProtocol)packet[9] : (IpProtocol)packet[6];
        if (protocol == IpProtocol.Icmp) return Checksum.Compute(body) == 0;
        return Checksum.Finish(Checksum.Add(Checksum.PseudoHeader(source, destination, protocol, body.Length), body)) == 0;
    }

    private sealed class ScriptedHandler : IFlowHandler
    {
        public List<TcpFlowRequest> Flows { get; } = [];
        public List<(IpAddress, ushort, IpAddress, ushort, byte[])> Datagrams { get; } = [];
        public List<(IpAddress, IpAddress, ushort, ushort, byte[])> Echoes { get; } = [];
        public FlowVerdict? Immediate { get; set; }
        public FlowVerdict UdpVerdict { get; set; } = FlowVerdict.Accept;
        public bool Throw { get; set; }
        public NetStackCore? Core { get; set; }

        public void OnTcpFlow(TcpFlowRequest request)
        {
            if (Throw) throw new InvalidOperationException("scripted failure");
            Flows.Add(request);
            if (Immediate is { } verdict) Core!.CompleteTcpFlow(request, verdict, Instant.Zero);
        }

        public FlowVerdict OnUdpDatagram(in UdpFlowDatagram d)
        {
            Datagrams.Add((d.Source, d.SourcePort, d.Destination, d.DestinationPort, d.Payload.ToArray()));
            return UdpVerdict;
        }

        public bool OnEchoRequest(in EchoFlowRequest r)
        {
            Echoes.Add((r.Source, r.Destination, r.Identifier, r.SequenceNumber, r.Data.ToArray()));
            return true;
        }
    }
}
