//! Link layers: from a frame of a libpcap link type to the IP header it carries.
//!
//! Link types and their headers follow <https://www.tcpdump.org/linktypes.html>.

use super::{array, be16, EtherType, Layer, Protocol, Skip};
use super::{rare, wireless};

/// The link layers portscope decodes, from a libpcap DLT value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    Ethernet,
    /// BSD loopback: a 4-byte address family in the writer's byte order.
    Null,
    /// OpenBSD loopback: the same, in network byte order.
    Loop,
    /// Raw IP, version in the first nibble.
    Raw,
    Ipv4,
    Ipv6,
    /// Linux cooked capture v1 (16-byte header).
    Sll,
    /// Linux cooked capture v2 (20-byte header).
    Sll2,
    /// PPP (DLT 9): the protocol field, after an optional 0xff 0x03 address and control.
    Ppp,
    /// PPP in HDLC-like framing (DLT 50, RFC 1662), as serial links carry it: read as
    /// [`Link::Ppp`] (as tshark reads it, and editcap rewrites it to DLT 9), or as Cisco
    /// HDLC when the address is Cisco's (0x0f or 0x8f), as BSD's ppp capture writes it.
    PppSerial,
    /// Cisco HDLC (DLT 104): address, control, then an ethertype.
    CHdlc,
    /// IEEE 802.11 (DLT 105): a data frame's header, then LLC/SNAP.
    Ieee80211,
    /// Radiotap (DLT 127): a radio header, then an 802.11 frame.
    Radiotap,
    /// PPI (DLT 192): a per-packet information header, then the frame of the link type it
    /// names (802.11 or Ethernet).
    Ppi,
    /// Linux NFLOG (DLT 239): a header and TLVs, one of which is the IP packet.
    Nflog,
    /// Frame relay (DLT 107): a Q.922 address, then an NLPID (RFC 2427) or, as Cisco
    /// sends it, an ethertype.
    FrameRelay,
    /// Linux ARCnet (DLT 129): addresses, an offset, then an RFC 1201 or RFC 1051 protocol.
    Arcnet,
    /// Solaris ipnet (DLT 226): a 24-byte header with the address family.
    Ipnet,
    /// IP over InfiniBand (DLT 242, RFC 4391): 40 bytes of addresses, then an ethertype.
    Ipoib,
    /// Apple's PKTAP (DLT 258): a header naming the link type of the frame after it.
    Pktap,
    /// FDDI (DLT 10): frame control, addresses, then LLC/SNAP.
    Fddi,
    /// Anything else: every frame is a [`Skip::UnsupportedLink`].
    Unsupported(i32),
}

impl Link {
    /// Every DLT value portscope decodes: what the fuzzer and the property tests draw from.
    pub const DECODED_DLTS: [i32; 23] = [
        1, 0, 108, 12, 14, 101, 228, 229, 113, 276, 9, 50, 104, 105, 127, 192, 239, 107, 129, 226,
        242, 258, 10,
    ];

    /// Maps a DLT value as libpcap reports it (`pcap_datalink`).
    ///
    /// libpcap turns LINKTYPE_RAW (101) in a file into DLT_RAW, which is 12 on most systems
    /// and 14 on OpenBSD, so all three mean raw IP.
    pub fn from_dlt(dlt: i32) -> Link {
        match dlt {
            1 => Link::Ethernet,
            0 => Link::Null,
            108 => Link::Loop,
            12 | 14 | 101 => Link::Raw,
            228 => Link::Ipv4,
            229 => Link::Ipv6,
            113 => Link::Sll,
            276 => Link::Sll2,
            9 => Link::Ppp,
            50 => Link::PppSerial,
            104 => Link::CHdlc,
            105 => Link::Ieee80211,
            127 => Link::Radiotap,
            192 => Link::Ppi,
            239 => Link::Nflog,
            107 => Link::FrameRelay,
            129 => Link::Arcnet,
            226 => Link::Ipnet,
            242 => Link::Ipoib,
            258 => Link::Pktap,
            10 => Link::Fddi,
            other => Link::Unsupported(other),
        }
    }

    /// The DLT value, for messages.
    pub fn dlt(self) -> i32 {
        match self {
            Link::Ethernet => 1,
            Link::Null => 0,
            Link::Loop => 108,
            Link::Raw => 12,
            Link::Ipv4 => 228,
            Link::Ipv6 => 229,
            Link::Sll => 113,
            Link::Sll2 => 276,
            Link::Ppp => 9,
            Link::PppSerial => 50,
            Link::CHdlc => 104,
            Link::Ieee80211 => 105,
            Link::Radiotap => 127,
            Link::Ppi => 192,
            Link::Nflog => 239,
            Link::FrameRelay => 107,
            Link::Arcnet => 129,
            Link::Ipnet => 226,
            Link::Ipoib => 242,
            Link::Pktap => 258,
            Link::Fddi => 10,
            Link::Unsupported(d) => d,
        }
    }
}

/// Byte offsets of the link headers' fields.
mod field {
    pub const ETHERNET_TYPE: usize = 12;
    pub const ETHERNET_LEN: usize = 14;
    pub const NULL_LEN: usize = 4;
    pub const SLL_PROTOCOL: usize = 14;
    pub const SLL_LEN: usize = 16;
    pub const SLL2_PROTOCOL: usize = 0;
    pub const SLL2_LEN: usize = 20;
    pub const CHDLC_PROTOCOL: usize = 2;
    pub const CHDLC_LEN: usize = 4;
    pub const VLAN_LEN: usize = 4;
    pub const PPPOE_LEN: usize = 6;
    pub const MPLS_LEN: usize = 4;
    /// An Ethernet pseudowire's control word (4) and Ethernet header, to its ethertype.
    pub const PSEUDOWIRE_TYPE: usize = 16;
    pub const PSEUDOWIRE_LEN: usize = 18;
}

/// PPP protocol numbers (RFC 1661, IANA).
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const PPP_MPLS: u16 = 0x0281;
const PPP_MPLS_MULTICAST: u16 = 0x0283;
/// How many VLAN tags or MPLS labels are followed before the frame counts as undecodable.
const MAX_TAGS: usize = 8;

/// Strips the link layer and returns the IP packet, recording the outermost VLAN id in
/// `vlan` (which stays as it is for untagged frames).
#[inline(always)]
pub(super) fn strip<'a>(link: Link, frame: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    match link {
        Link::Ethernet => {
            let ethertype = be16(frame, field::ETHERNET_TYPE).ok_or(truncated)?;
            let rest = frame.get(field::ETHERNET_LEN..).ok_or(truncated)?;
            ethertype_payload(EtherType(ethertype), rest, vlan)
        }
        Link::Null | Link::Loop => {
            let af = array::<{ field::NULL_LEN }>(frame, 0).ok_or(truncated)?;
            let be = u32::from_be_bytes(*af);
            let family = if link == Link::Loop || be <= 0xffff {
                be
            } else {
                u32::from_le_bytes(*af)
            };
            let rest = &frame[field::NULL_LEN..];
            match family {
                // AF_INET everywhere; AF_INET6 is 10 on Linux, 24/28/30 on the BSDs and macOS.
                2 | 10 | 24 | 28 | 30 => Ok(rest),
                // Some writers put an ethertype in the low half (Wireshark accepts it too).
                _ if matches!(
                    be16(af, 2).map(EtherType),
                    Some(EtherType::IPV4 | EtherType::IPV6)
                ) =>
                {
                    Ok(rest)
                }
                other => Err(Skip::NotIp(Protocol::AddressFamily(other))),
            }
        }
        Link::Raw | Link::Ipv4 | Link::Ipv6 => Ok(frame),
        Link::Sll => {
            let protocol = be16(frame, field::SLL_PROTOCOL).ok_or(truncated)?;
            ethertype_payload(EtherType(protocol), &frame[field::SLL_LEN..], vlan)
        }
        Link::Sll2 => {
            let protocol = be16(frame, field::SLL2_PROTOCOL).ok_or(truncated)?;
            let rest = frame.get(field::SLL2_LEN..).ok_or(truncated)?;
            ethertype_payload(EtherType(protocol), rest, vlan)
        }
        Link::PppSerial if matches!(frame.first(), Some(0x0f | 0x8f)) => {
            strip(Link::CHdlc, frame, vlan)
        }
        Link::Ppp | Link::PppSerial => {
            let rest = match frame {
                [0xff, 0x03, rest @ ..] => rest,
                rest => rest,
            };
            ppp_payload(rest, vlan)
        }
        Link::CHdlc => {
            let ethertype = be16(frame, field::CHDLC_PROTOCOL).ok_or(truncated)?;
            ethertype_payload(EtherType(ethertype), &frame[field::CHDLC_LEN..], vlan)
        }
        Link::Ieee80211 => wireless::ieee80211(frame, vlan),
        Link::Radiotap => wireless::radiotap(frame, vlan),
        Link::Ppi => wireless::ppi(frame, vlan),
        Link::Nflog => wireless::nflog(frame),
        Link::FrameRelay => rare::frame_relay(frame, vlan),
        Link::Arcnet => rare::arcnet(frame),
        Link::Ipnet => rare::ipnet(frame),
        Link::Ipoib => rare::ipoib(frame, vlan),
        Link::Pktap => rare::pktap(frame, vlan),
        Link::Fddi => rare::fddi(frame, vlan),
        Link::Unsupported(dlt) => Err(Skip::UnsupportedLink(dlt)),
    }
}

/// The frame a link header carries when the header names the frame's link type (PPI and
/// PKTAP headers do): `frame` decoded as link type `dlt`. This is the one place the
/// decoder recurses, and the nesting rule, written once: inside another header, PPI is
/// never read, PKTAP only inside PPI, and radiotap and NFLOG not inside PPI, nor radiotap
/// inside PKTAP. So the deepest chain is PPI, PKTAP, then a plain link type.
pub(super) fn carried<'a>(
    outer: Link,
    dlt: i32,
    frame: &'a [u8],
    vlan: &mut u16,
) -> Result<&'a [u8], Skip> {
    let inner = Link::from_dlt(dlt);
    let read = !matches!(
        (outer, inner),
        (_, Link::Ppi)
            | (Link::Ppi, Link::Radiotap | Link::Nflog)
            | (Link::Pktap, Link::Pktap | Link::Radiotap)
    );
    if read {
        strip(inner, frame, vlan)
    } else {
        Err(Skip::UnsupportedLink(dlt))
    }
}

/// A PPP frame from its protocol field (one byte when compressed, RFC 1661 section 6.5):
/// IPv4, IPv6 or MPLS; anything else (LCP, IPCP...) is not IP.
pub(super) fn ppp_payload<'a>(frame: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    let truncated = Skip::Truncated(Layer::Pppoe);
    let (protocol, rest) = match frame.first() {
        Some(&b) if b & 1 == 1 => (u16::from(b), &frame[1..]),
        _ => (be16(frame, 0).ok_or(truncated)?, &frame[2..]),
    };
    match protocol {
        PPP_IPV4 | PPP_IPV6 => Ok(rest),
        PPP_MPLS | PPP_MPLS_MULTICAST => mpls(rest, vlan),
        other => Err(Skip::NotIp(Protocol::Ppp(other))),
    }
}

/// Follows VLAN tags, MPLS labels and PPPoE sessions to the IP header.
pub(super) fn ethertype_payload<'a>(
    mut ethertype: EtherType,
    mut rest: &'a [u8],
    vlan: &mut u16,
) -> Result<&'a [u8], Skip> {
    for _ in 0..MAX_TAGS {
        match ethertype {
            EtherType::IPV4 | EtherType::IPV6 => return Ok(rest),
            EtherType::VLAN | EtherType::QINQ | EtherType::QINQ_OLD => {
                let tag =
                    array::<{ field::VLAN_LEN }>(rest, 0).ok_or(Skip::Truncated(Layer::Vlan))?;
                let tci = u16::from_be_bytes([tag[0], tag[1]]);
                ethertype = EtherType(u16::from_be_bytes([tag[2], tag[3]]));
                if *vlan == 0 {
                    *vlan = tci & 0x0fff;
                }
                rest = &rest[field::VLAN_LEN..];
            }
            EtherType::MPLS | EtherType::MPLS_MULTICAST => return mpls(rest, vlan),
            EtherType::PPPOE_SESSION => {
                // The 6-byte PPPoE header, then a PPP frame.
                let ppp = rest
                    .get(field::PPPOE_LEN..)
                    .ok_or(Skip::Truncated(Layer::Pppoe))?;
                return match ppp_payload(ppp, vlan) {
                    Err(Skip::NotIp(_)) => {
                        Err(Skip::NotIp(Protocol::EtherType(EtherType::PPPOE_SESSION)))
                    }
                    other => other,
                };
            }
            other => return Err(Skip::NotIp(Protocol::EtherType(other))),
        }
    }
    Err(Skip::Truncated(Layer::Vlan))
}

/// Pops MPLS labels to the bottom of the stack and expects IP after it, or an Ethernet
/// pseudowire with its control word (first nibble 0, RFC 4448 section 3).
fn mpls<'a>(mut rest: &'a [u8], vlan: &mut u16) -> Result<&'a [u8], Skip> {
    for _ in 0..MAX_TAGS {
        let label = array::<{ field::MPLS_LEN }>(rest, 0).ok_or(Skip::Truncated(Layer::Mpls))?;
        let bottom = label[2] & 0x01 != 0;
        rest = &rest[field::MPLS_LEN..];
        if bottom {
            return match rest.first().map(|b| b >> 4) {
                Some(4 | 6) => Ok(rest),
                Some(0) => {
                    let ethertype =
                        be16(rest, field::PSEUDOWIRE_TYPE).ok_or(Skip::Truncated(Layer::Mpls))?;
                    ethertype_payload(EtherType(ethertype), &rest[field::PSEUDOWIRE_LEN..], vlan)
                }
                Some(_) => Err(Skip::NotIp(Protocol::EtherType(EtherType::MPLS))),
                None => Err(Skip::Truncated(Layer::Mpls)),
            };
        }
    }
    Err(Skip::Truncated(Layer::Mpls))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list is the mapping's own: every value in it decodes, and no other value does.
    #[test]
    fn decoded_dlts_are_exactly_the_mapped_ones() {
        for dlt in -1..1000 {
            let decoded = !matches!(Link::from_dlt(dlt), Link::Unsupported(_));
            assert_eq!(decoded, Link::DECODED_DLTS.contains(&dlt), "dlt {dlt}");
        }
    }
}
