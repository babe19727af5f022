using TunTcp.RealPeer.Tests.Support;

namespace TunTcp.RealPeer.Tests;

/// <summary>
/// The kernel transfers of <see cref="KernelTransferTests"/> (discard, chargen, echo, connect)
/// on a bad path, which must still deliver every byte intact and end cleanly: random drops made
/// by nftables in the test's namespace, and delay, jitter, reordering, duplication and loss made
/// by the stack's own fault injector. No speed is asserted; each run only has a hang bound.
/// </summary>
[Collection(TransferCollection.Name)]
public sealed class ImpairedTransferTests
{
    private const long Size = 20L * 1024 * 1024;

    public static TheoryData<string> Transfers => ["discard", "chargen", "echo", "connect"];

    [Theory]
    [MemberData(nameof(Transfers))]
    public void RandomDrops_TwoPercentEachWay_ByNftables(string transfer)
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        // The rules match the device by name, so they can go in before the device exists.
        session.DropAtRandom(percent: 2);
        // Wire-sized segments: with offloads a 20 MiB transfer is a few hundred 64 KiB packets one
        // way and fewer ACKs the other, so 2 % of them was sometimes none at all (a flaky test).
        Run(session, transfer, ["--no-offload"]);
        var (toStack, fromStack) = session.DroppedByNft();
        Assert.True(toStack > 0 && fromStack > 0, $"the rules dropped {toStack} packets to the stack and {fromStack} from it; both must bite");
    }

    [Theory]
    [MemberData(nameof(Transfers))]
    public void DelayJitterReorderingDuplication_ByTheStacksInjector(string transfer)
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        Run(session, transfer, ["--delay", "5", "--jitter", "5", "--reorder", "5", "--duplicate", "5", "--seed", "11"]);
    }

    [Theory]
    [MemberData(nameof(Transfers))]
    public void LossEachWay_AndDisorder_ByTheStacksInjector(string transfer)
    {
        RootRequirement.SkipUnlessRoot();
        using var session = PeerSession.Create();
        // True losses of the kernel's segments too (a drop in nftables' output hook is seen by
        // the kernel's TCP as a local send failure and retried, not lost), per direction.
        Run(session, transfer, ["--loss", "in:2,out:1", "--delay", "2", "--jitter", "in:3,out:1", "--reorder", "out:3", "--duplicate", "in:2", "--seed", "5"]);
    }

    private static void Run(PeerSession session, string transfer, string[] toolOptions)
    {
        switch (transfer)
        {
            case "discard":
                session.StartServe(toolOptions);
                KernelTransfers.Discard(session, Size);
                break;
            case "chargen":
                session.StartServe(toolOptions);
                KernelTransfers.Chargen(session, Size);
                break;
            case "echo":
                session.StartServe(toolOptions);
                KernelTransfers.Echo(session, Size);
                break;
            case "connect":
                KernelTransfers.Connect(session, upload: Size, download: Size, toolOptions: toolOptions);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(transfer), transfer, null);
        }
    }
}
