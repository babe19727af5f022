using System.Security.Cryptography;
using System.Text;
using TunTcp.Tests.Wire;
using TunTcp.Wire;
using static TunTcp.Fuzz.NetStackCoreTarget;

namespace TunTcp.Fuzz;

/// <summary>
/// Writes the seed corpus (fuzz/corpus/TARGET/...): scripted exchanges for the stack core, and
/// for the parsers the packets of those exchanges as the stack's own pcap and pcapng writers
/// capture them (both directions), the real Linux packets of <see cref="WireCaptures"/>, and the
/// packets of any capture files named on the command line (e.g. a pcap a real-peer test wrote).
/// Deterministic: the same inputs give the same files.
/// </summary>
internal static class SeedCorpus
{
    private const int MaxPerTarget = 40;

    /// <summary>MSS 1460, NOP NOP SACK-permitted, NOP window scale 7: a SYN's options.</summary>
    private static readonly byte[] SynOptions = [2, 4, 0x05, 0xB4, 1, 1, 4, 2, 1, 3, 3, 7];
    /// <summary>MSS 1440 with timestamps (Linux's layout), for the timestamp paths.</summary>
    private static readonly byte[] SynOptionsTimestamps = [2, 4, 0x05, 0xA0, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];

    public static IEnumerable<(string Name, byte[] Script)> Scripts()
    {
        byte[] hello = "hello\n"u8.ToArray();
        const byte Syn = 0x02, Ack = 0x10, SynAck = 0x12, PshAck = 0x18, FinAck = 0x11, Rst = 0x04, RstAck = 0x14;
        foreach (bool v6 in new[] { false, true })
        {
            string family = v6 ? "v6" : "v4";
            yield return ($"passive-{family}", new NetStackScript()
                .Tcp(v6, 0, ListenPort, 1000, 0, Syn, SynOptions)
                .Reply(0, Ack).Reply(0, PshAck, payload: hello).Time(50)
                .App(AppCall.Accept).App(AppCall.Write, 0, 3000).Time(10).Reply(0, Ack).App(AppCall.Read, 0, 100)
                .Reply(0, FinAck).Time(200).App(AppCall.Close, 0).Reply(0, Ack).Time(70_000).ToArray());
            yield return ($"active-{family}", new NetStackScript()
                .App(AppCall.Connect, (byte)(v6 ? 1 : 0), 0).Reply(0, SynAck, SynOptionsTimestamps)
                .App(AppCall.Write, 0, 20000).Time(5).Reply(0, Ack).Reply(1, Ack, seqDelta: 0).Time(300)
                .Reply(0, PshAck, payload: hello).App(AppCall.Shutdown, 0).Time(40).Reply(0, FinAck).Time(130_000).ToArray());
            yield return ($"lossy-{family}", new NetStackScript()
                .Tcp(v6, 1, ListenPort, 77, 0, Syn, SynOptionsTimestamps).Reply(0, Ack).App(AppCall.Accept)
                .App(AppCall.Write, 0, 16000).Reply(2, Ack).Reply(2, Ack).Reply(2, Ack).Time(400).Time(1200)
                .Reply(0, Ack, ackDelta: -100).Reply(0, Rst).ToArray());
            yield return ($"flood-{family}", new NetStackScript()
                .Tcp(v6, 0, ListenPort, 1, 0, Syn).Tcp(v6, 1, ListenPort, 2, 0, Syn).Tcp(v6, 2, ListenPort, 3, 0, Syn)
                .Tcp(v6, 3, ListenPort, 4, 0, Syn).Tcp(v6, 0, 9, 5, 0, Syn).Tcp(v6, 1, ListenPort, 6, 0, RstAck)
                .Tcp(v6, 2, ListenPort, 7, 9, 0xFF).Time(3000).Reply(0, Ack).Time(65_000).ToArray());
        }
        yield return ("ping-udp", new NetStackScript()
            .Icmp(false, 8, 0, 0x00010001, hello).Icmp(true, 128, 0, 0x00010001, hello)
            .Udp(false, hello).Udp(true, hello).Icmp(true, 135, 0, 0, new byte[16]).Icmp(false, 13, 0, 0, new byte[12]).ToArray());
        yield return ("icmp-errors", new NetStackScript()
            .App(AppCall.Connect, 0, 1).IcmpQuoting(0, 3, 4, 1000, 48).Time(1000)
            .App(AppCall.Connect, 1, 2).IcmpQuoting(0, 2, 0, 1280, 1000).IcmpQuoting(0, 1, 4, 0, 60).Time(1000)
            .IcmpQuoting(0, 11, 0, 0, 28).ToArray());
        yield return ("fragments", Fragments());
        yield return ("extension-headers", new NetStackScript()
            .Ip(true, 0, 0, 0, [58, 0, 1, 4, 0, 0, 0, 0, 128, 0, 0, 0, 0, 1, 0, 1])
            .Ip(true, 60, 0, 0, [59, 0, 0x80, 4, 0, 0, 0, 0])
            .Ip(true, 43, 0, 0, [6, 0, 0, 1, 0, 0, 0, 0])
            .Ip(true, 99, 0, 0, [1, 2, 3, 4])
            .Ip(false, 99, 0, 0x4000, [1, 2, 3, 4]).ToArray());
        yield return ("linux-packets", LinuxPackets().Aggregate(new NetStackScript(), (s, p) => s.Raw(p.Packet)).ToArray());
    }

    /// <summary>Forwarding mode: flows to a remote address (the target's first odd destination), each verdict, UDP and echo relays.</summary>
    public static IEnumerable<(string Name, byte[] Script)> ForwardScripts()
    {
        byte[] hello = "hello\n"u8.ToArray();
        const byte Remote = 1; // the first of the odd addresses, as destination: 192.168.0.3 or fd00::3
        const byte Syn = 0x02, Ack = 0x10, PshAck = 0x18, FinAck = 0x11;
        foreach (bool v6 in new[] { false, true })
        {
            string family = v6 ? "v6" : "v4";
            yield return ($"forward-tcp-{family}", new NetStackScript()
                .Tcp(v6, 0, 443, 1000, 0, Syn, SynOptions, otherAddress: Remote).App(AppCall.CompleteFlow, 0, (byte)Ip.FlowVerdict.Accept)
                .Reply(0, Ack).Reply(0, PshAck, payload: hello).App(AppCall.Write, 0, 5000).Time(20).Reply(0, Ack)
                .Reply(0, FinAck).App(AppCall.Close, 0).Time(200).Reply(0, Ack).Time(70_000).ToArray());
            var verdicts = new NetStackScript();
            for (int v = 1; v < 5; v++)
                verdicts.Tcp(v6, v % 4, (ushort)(8000 + v), (uint)v, 0, Syn, otherAddress: Remote).App(AppCall.CompleteFlow, 0, (byte)v);
            verdicts.Tcp(v6, 0, 9000, 9, 0, Syn, otherAddress: Remote).Time(3000).Time(25_000);
            yield return ($"forward-verdicts-{family}", verdicts.ToArray());
            yield return ($"forward-udp-echo-{family}", new NetStackScript()
                .Udp(v6, hello, 5000, Remote).Udp(v6, hello, 5001, Remote).Udp(v6, hello, 5002, Remote)
                .Icmp(v6, (byte)(v6 ? 128 : 8), 0, 0x00020001, hello, Remote).Icmp(v6, (byte)(v6 ? 128 : 8), 0, 0x00010001, hello, Remote)
                .Time(40_000).ToArray());
        }
    }

    private static byte[] Fragments()
    {
        var s = new NetStackScript();
        // A UDP echo to port 7 in two IPv4 fragments, then the same over IPv6 in two Fragment headers.
        var payload = Enumerable.Range(0, 40).Select(i => (byte)i).ToArray();
        foreach (bool v6 in new[] { false, true })
        {
            var from = v6 ? Host6 : Host4;
            var to = v6 ? Stack6 : Stack4;
            var datagram = new byte[UdpHeader.Length + payload.Length];
            new UdpHeader(40000, UdpPort, payload.Length).Write(datagram);
            payload.CopyTo(datagram, UdpHeader.Length);
            UdpHeader.WriteChecksum(datagram, from, to);
            if (!v6)
            {
                s.Ip(false, 17, 7, 0x2000, datagram.AsSpan(0, 24));
                s.Ip(false, 17, 7, 24 / 8, datagram.AsSpan(24));
            }
            else
            {
                s.Ip(true, 44, 0, 0, Ipv6Fragment(17, 0, true, 7, datagram.AsSpan(0, 24)));
                s.Ip(true, 44, 0, 0, Ipv6Fragment(17, 24, false, 7, datagram.AsSpan(24)));
            }
        }
        s.Ip(false, 17, 9, 0x2000, new byte[64]).Time(31_000);
        return s.ToArray();
    }

    private static byte[] Ipv6Fragment(byte next, int offset, bool more, uint id, ReadOnlySpan<byte> data)
    {
        var b = new byte[Ipv6FragmentHeader.Length + data.Length];
        Ipv6FragmentHeader.Write(b, next, offset, more, id);
        data.CopyTo(b.AsSpan(Ipv6FragmentHeader.Length));
        return b;
    }

    private static IEnumerable<(string Name, byte[] Packet)> LinuxPackets() =>
        typeof(WireCaptures).GetFields(System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public)
            .Where(f => f.FieldType == typeof(byte[])).OrderBy(f => f.Name, StringComparer.Ordinal)
            .Select(f => (f.Name, (byte[])f.GetValue(null)!));

    private static readonly string[] AddressTexts =
    [
        "192.168.0.2", "0.0.0.0", "255.255.255.255", "10.1.2.3", "127.0.0.1", "::", "::1", "fd00::2", "fe80::1:2:3:4",
        "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", "::ffff:192.168.0.1", "64:ff9b::10.0.0.1", "1:2:3:4:5:6:7:8",
        "ff02::1", "1::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "001.002.003.004", "1.2.3", "::1::", "12345::",
    ];

    /// <summary>Writes every target's seeds under <paramref name="root"/>; returns the number of files.</summary>
    public static int Write(string root, IEnumerable<string> captureFiles)
    {
        var seeds = FuzzTargets.All.Keys.ToDictionary(k => k, _ => new List<byte[]>(), StringComparer.Ordinal);
        var packets = new List<byte[]>();
        foreach (var (name, script) in Scripts())
        {
            seeds["netstack"].Add(script);
            var exchange = new List<(byte[] Packet, CaptureDirection Direction)>();
            NetStackCoreTarget.Run(script, (p, d) => exchange.Add((p.ToArray(), d)));
            packets.AddRange(exchange.Select(e => e.Packet));
            seeds["pcap"].Add(Capture(exchange, ng: false));
            seeds["pcapng"].Add(Capture(exchange, ng: true));
        }
        var linux = LinuxPackets().Select(p => (p.Packet, CaptureDirection.Inbound)).ToList();
        packets.AddRange(linux.Select(p => p.Packet));
        seeds["pcap"].Add(Capture(linux, ng: false));
        seeds["pcapng"].Add(Capture(linux, ng: true));
        foreach (var file in captureFiles)
        {
            var bytes = File.ReadAllBytes(file);
            seeds[PcapNgReader.TryRead(bytes, out _, out _, out _) ? "pcapng" : "pcap"].Add(bytes);
            if (PcapReader.TryRead(bytes, out var records, out _, out _)) packets.AddRange(records.Select(r => r.Packet));
            else if (PcapNgReader.TryRead(bytes, out var ngRecords, out _, out _)) packets.AddRange(ngRecords.Select(r => r.Packet));
        }
        foreach (var (_, script) in ForwardScripts().Concat(Scripts()))
        {
            seeds["netstack-forward"].Add(script);
            NetStackCoreTarget.Run(script, (p, _) => packets.Add(p.ToArray()), forwarding: true);
        }
        foreach (var packet in packets) Split(packet, seeds);
        seeds["ip-address"].AddRange(AddressTexts.Select(Encoding.Latin1.GetBytes));

        int count = 0;
        foreach (var (target, list) in seeds)
        {
            string dir = Path.Combine(root, target);
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            Directory.CreateDirectory(dir);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            int index = 0;
            foreach (var seed in list.Where(s => s.Length > 0 && seen.Add(Convert.ToHexString(SHA256.HashData(s)))).Take(MaxPerTarget))
                File.WriteAllBytes(Path.Combine(dir, $"seed-{index++:D3}"), seed);
            count += index;
        }
        return count;
    }

    /// <summary>A packet for the formatter and its IP parser, and its transport bytes for theirs.</summary>
    private static void Split(byte[] packet, Dictionary<string, List<byte[]>> seeds)
    {
        seeds["formatter"].Add(packet);
        ReadOnlySpan<byte> transport;
        byte protocol;
        if (Ipv4Packet.TryParse(packet, out var ip4, out _))
        {
            seeds["ipv4"].Add(packet);
            if (ip4.IsFragment && ip4.FragmentOffset != 0) return;
            transport = ip4.Payload;
            protocol = (byte)ip4.Protocol;
        }
        else if (Ipv6Packet.TryParse(packet, out var ip6, out _))
        {
            seeds["ipv6"].Add(packet);
            var chain = Ipv6HeaderChain.Walk(ip6.Bytes);
            if (chain.Problem != Ipv6ChainProblem.None || chain.HasFragmentHeader) return;
            transport = ip6.Bytes[chain.UpperLayerOffset..];
            protocol = chain.UpperLayer;
        }
        else return;
        switch ((IpProtocol)protocol)
        {
            case IpProtocol.Tcp:
                seeds["tcp"].Add(transport.ToArray());
                if (transport.Length >= TcpPacket.MinHeaderLength)
                {
                    int header = Math.Min(transport.Length, (transport[12] >> 4) * 4);
                    if (header > TcpPacket.MinHeaderLength) seeds["tcp-options"].Add(transport[TcpPacket.MinHeaderLength..header].ToArray());
                }
                break;
            case IpProtocol.Udp: seeds["udp"].Add(transport.ToArray()); break;
            case IpProtocol.Icmp: seeds["icmpv4"].Add(transport.ToArray()); break;
            case IpProtocol.Icmpv6: seeds["icmpv6"].Add(transport.ToArray()); break;
        }
    }

    private static byte[] Capture(IEnumerable<(byte[] Packet, CaptureDirection Direction)> packets, bool ng)
    {
        using var stream = new MemoryStream();
        ICaptureWriter writer = ng ? new PcapNgWriter(stream, "tun0", "fuzz seed", ownsStream: false, application: "TunTcp.Fuzz")
            : new PcapWriter(stream, ownsStream: false);
        using (writer)
        {
            long t = 1_765_000_000_000_000;
            foreach (var (packet, direction) in packets.Take(24)) writer.Write(packet, t += 1000, direction);
        }
        return stream.ToArray();
    }
}
