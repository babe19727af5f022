using TunTcp.Wire;

namespace TunTcp.Tcp;

/// <summary>
/// The send sequence variables of RFC 9293 3.3.1, with the ones that go with them (the
/// peer's window shift, MAX.SND.WND, where the send buffer starts, Nagle's last small segment).
/// A field of its connection, so reading one costs what reading a field of the class does.
/// </summary>
internal struct SendSequence
{
    /// <summary>ISS: initial send sequence number.</summary>
    public SeqNumber Iss;
    /// <summary>SND.UNA: oldest unacknowledged sequence number. Invariant: SND.UNA &lt;= SND.NXT.</summary>
    public SeqNumber Una;
    /// <summary>SND.NXT: next new sequence number to send (retransmissions never move it back).</summary>
    public SeqNumber Nxt;
    /// <summary>SND.WND: the peer's receive window in bytes, already scaled.</summary>
    public long Wnd;
    /// <summary>MAX.SND.WND (RFC 5961 5.2): the largest window the peer has offered.</summary>
    public long MaxWnd;
    /// <summary>SND.WL1 / SND.WL2: SEG.SEQ and SEG.ACK of the segment last used to update SND.WND.</summary>
    public SeqNumber Wl1, Wl2;
    /// <summary>Sequence number of the first byte in the send buffer (SND.UNA once the SYN is acknowledged).</summary>
    public SeqNumber BufferStart;
    /// <summary>Snd.Wind.Shift (RFC 7323 2.3): how far the peer's window field is shifted (0 without scaling).</summary>
    public int Shift;
    /// <summary>End of the last segment sent shorter than SMSS (Linux snd_sml, Minshall's Nagle variant).</summary>
    public SeqNumber Sml;
}

/// <summary>The receive sequence variables of RFC 9293 3.3.1, with our window shift.</summary>
internal struct ReceiveSequence
{
    /// <summary>IRS: initial receive sequence number.</summary>
    public SeqNumber Irs;
    /// <summary>RCV.NXT: next sequence number expected. Everything below it is in the receive buffer (or was the SYN/FIN).</summary>
    public SeqNumber Nxt;
    /// <summary>RCV.NXT + RCV.WND as last advertised; never moves left (RFC 9293 3.8.6.2.2, RFC 7323 2.4).</summary>
    public SeqNumber AdvertisedEdge;
    /// <summary>Rcv.Wind.Shift (RFC 7323 2.3): how far we shift our window field (0 without scaling).</summary>
    public int Shift;
}
