using CsCheck;
using TunTcp.Tcp;
using TunTcp.Tests.Support;
using TunTcp.Wire;
using static TunTcp.Tests.Tcp.TcpHarness;

namespace TunTcp.Tests.Tcp;

/// <summary>
/// Robustness against hostile and random input: an established connection is driven by a
/// seeded peer that mixes plausible traffic (in-window and out-of-order data, ACKs and SACK
/// blocks over what we sent, window changes, FINs) with garbage (any flags, any sequence and
/// acknowledgment numbers, stale or future timestamps, inverted or huge SACK blocks), while the
/// application writes, reads, closes and time jumps. After every step the engine's own
/// bookkeeping must agree with itself (<see cref="TcpConnection.CheckInvariants"/>: sequence
/// space, sent records, pipe and loss/SACK counters, memory bounds), nothing may throw, and no
/// segment may exceed the MSS. Seeds: 150 per profile in CI, TUNTCP_SIM_ITERATIONS / 2 if set.
/// It found a SACKed zero-window probe being resent and put back in the pipe (fixed, and pinned
/// by Persist_ProbeSackedButWindowZero_AskedWithAckProbe_NotResent).
/// </summary>
public class TcpHostileInputTests
{
    private static readonly int Iterations = PropertyIterations.Get(150, share: 0.5);

    public static TheoryData<string> Profiles => ["default", "classic", "nosack", "smallbuffers"];

    [Theory]
    [MemberData(nameof(Profiles))]
    public void RandomAndHostileSegments_KeepTheBookkeepingConsistent(string profile)
    {
        Gen.ULong.Sample(seed => Drive(profile, seed), iter: Iterations, threads: 1);
    }

    private static void Drive(string profile, ulong seed)
    {
        var rnd = new SeededRandomSource(seed);
        var settings = profile switch
        {
            "classic" => Classic(),
            "smallbuffers" => new TcpSettings { SendBufferSize = 4096, ReceiveBufferSize = 4096 },
            _ => new TcpSettings(),
        };
        TcpOptions? synOptions = profile == "nosack" ? LinuxSyn(sack: false) : null;
        var h = Established(settings, synOptions: synOptions);

        int peerNext = 0;            // the peer's next new data byte, relative to IRS + 1
        var ourMax = h.Iss + 1;      // highest sequence number we have emitted, + 1
        var lastAck = h.Iss + 1;     // the peer's cumulative ACK so far
        uint tsVal = h.PeerTsVal;

        int Next(int max) => max <= 0 ? 0 : (int)(rnd.NextUInt32() % (uint)max);
        bool Chance(double p) => rnd.NextDouble() < p;

        void Drain()
        {
            foreach (var e in h.RecvAll())
            {
                var end = e.Seq + e.Payload.Length + ((e.Flags & (TcpFlags.Syn | TcpFlags.Fin)) != 0 ? 1 : 0);
                if ((e.Flags & TcpFlags.Rst) == 0 && end > ourMax) ourMax = end;
                Assert.True(e.Payload.Length <= Mss, $"seed {seed}: a {e.Payload.Length}-byte segment exceeds the MSS");
            }
            var problem = h.C.CheckInvariants();
            Assert.True(problem is null, $"seed {seed} ({profile}): {problem}");
        }

        for (int step = 0; step < 400 && h.C.State != TcpConnectionState.Closed; step++)
        {
            int action = Next(100);
            if (action < 55)
            {
                // A plausible segment, sometimes bent.
                var o = new TcpOptions();
                tsVal += (uint)Next(3);
                if (h.Timestamps || Chance(0.05))
                    o.SetTimestamps(Chance(0.1) ? tsVal - (uint)Next(100_000) : tsVal, h.LastTsVal ?? 0);
                int span = ourMax - lastAck;
                for (int b = Next(5); b > 0; b--)
                {
                    var left = lastAck + Next(span + 2000) - (Chance(0.1) ? Next(5000) : 0);
                    var right = left + (Chance(0.1) ? -Next(3000) : 1 + Next(6000));
                    o.AddSackBlock(new SackBlock(left, right));
                }
                if (Chance(0.6) && span > 0) lastAck += Next(span + 1);
                var ack = Chance(0.1) ? lastAck + Next(200_000) - 100_000 : lastAck;
                int offset = Chance(0.7) ? peerNext : peerNext + Next(20_000) - 5_000;
                byte[] data = Chance(0.5) ? new byte[Next(Chance(0.2) ? 9000 : 1500)] : [];
                rnd.Fill(data);
                var flags = TcpFlags.Ack | (Chance(0.3) ? TcpFlags.Psh : 0) | (Chance(0.03) ? TcpFlags.Fin : 0);
                ushort window = (ushort)(Chance(0.1) ? Next(3) * 512 : 65535 - Next(1000));
                var r = h.Send(new Seg { Flags = flags, Seq = h.Irs + 1 + offset, Ack = ack, Window = window, Options = o, Payload = data });
                if (r == TcpSegmentResult.ReopenFromTimeWait) break;
                if (offset == peerNext) peerNext += data.Length;
            }
            else if (action < 65)
            {
                // Garbage: any flags, any numbers, options of any kind.
                var o = new TcpOptions();
                if (Chance(0.5)) o.SetTimestamps(rnd.NextUInt32(), rnd.NextUInt32());
                for (int b = Next(5); b > 0; b--) o.AddSackBlock(new SackBlock(new SeqNumber(rnd.NextUInt32()), new SeqNumber(rnd.NextUInt32())));
                var flags = (TcpFlags)(rnd.NextUInt32() & 0x3F);
                var seq = Chance(0.5) ? h.Irs + 1 + peerNext + Next(2000) - 1000 : new SeqNumber(rnd.NextUInt32());
                var ack = Chance(0.5) ? lastAck + Next(4000) - 2000 : new SeqNumber(rnd.NextUInt32());
                byte[] data = new byte[Chance(0.5) ? 0 : Next(2000)];
                rnd.Fill(data);
                var r = h.Send(new Seg { Flags = flags, Seq = seq, Ack = ack, Window = (ushort)rnd.NextUInt32(), Options = o, Payload = data });
                if (r == TcpSegmentResult.ReopenFromTimeWait) break;
            }
            else if (action < 78)
            {
                var data = new byte[Next(Chance(0.2) ? 40_000 : 3000)];
                rnd.Fill(data);
                h.Write(data);
            }
            else if (action < 86)
            {
                h.ReadAll();
            }
            else if (action < 97)
            {
                if (Chance(0.5) && !h.C.NextDeadline.IsNever) h.At(Later(h.Now, h.C.NextDeadline));
                else h.After(TimeSpan.FromMilliseconds(Next(Chance(0.1) ? 5_000 : 300)));
            }
            else if (action < 99)
            {
                h.C.ShutdownSend(h.Now, h);
            }
            else
            {
                h.C.Close(h.Now, h);
            }
            Drain();
        }
    }

    private static Instant Later(Instant a, Instant b) => a > b ? a : b;
}
