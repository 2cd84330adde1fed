//! Link layers: from a frame of a libpcap link type to the IP header it carries.
//!
//! Link types and their headers follow <https://www.tcpdump.org/linktypes.html>.

use super::{be16, Decoded, Layer, Skip};

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
    /// Cisco HDLC (DLT 104): address, control, then an ethertype.
    CHdlc,
    /// Anything else: every frame is a [`Skip::UnsupportedLink`].
    Unsupported(i32),
}

impl Link {
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
            104 => Link::CHdlc,
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
            Link::CHdlc => 104,
            Link::Unsupported(d) => d,
        }
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MC: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
/// How many VLAN tags or MPLS labels are followed before the frame counts as undecodable.
const MAX_TAGS: usize = 8;

/// Strips the link layer and returns the IP packet, recording VLAN ids in `out`.
pub(super) fn strip<'a>(link: Link, frame: &'a [u8], out: &mut Decoded) -> Result<&'a [u8], Skip> {
    let truncated = Skip::Truncated(Layer::Link);
    match link {
        Link::Ethernet => {
            let ethertype = be16(frame, 12).ok_or(truncated)?;
            ethertype_payload(ethertype, frame.get(14..).ok_or(truncated)?, out)
        }
        Link::Null | Link::Loop => {
            let af = frame.get(..4).ok_or(truncated)?;
            let be = u32::from_be_bytes([af[0], af[1], af[2], af[3]]);
            let family = if link == Link::Loop || be <= 0xffff {
                be
            } else {
                u32::from_le_bytes([af[0], af[1], af[2], af[3]])
            };
            match family {
                // AF_INET everywhere; AF_INET6 is 10 on Linux, 24/28/30 on the BSDs and macOS.
                2 | 10 | 24 | 28 | 30 => Ok(&frame[4..]),
                // Some writers put an ethertype in the low half (Wireshark accepts it too).
                _ if matches!(be16(af, 2), Some(ETHERTYPE_IPV4 | ETHERTYPE_IPV6)) => {
                    Ok(&frame[4..])
                }
                other => Err(Skip::NotIp(u16::try_from(other).unwrap_or(u16::MAX))),
            }
        }
        Link::Raw | Link::Ipv4 | Link::Ipv6 => Ok(frame),
        Link::Sll => {
            let protocol = be16(frame, 14).ok_or(truncated)?;
            ethertype_payload(protocol, &frame[16..], out)
        }
        Link::Sll2 => {
            let protocol = be16(frame, 0).ok_or(truncated)?;
            ethertype_payload(protocol, frame.get(20..).ok_or(truncated)?, out)
        }
        Link::Ppp => {
            let rest = match frame {
                [0xff, 0x03, rest @ ..] => rest,
                rest => rest,
            };
            ppp_payload(rest, out)
        }
        Link::CHdlc => {
            let ethertype = be16(frame, 2).ok_or(truncated)?;
            ethertype_payload(ethertype, &frame[4..], out)
        }
        Link::Unsupported(dlt) => Err(Skip::UnsupportedLink(dlt)),
    }
}

/// A PPP frame from its protocol field (one byte when compressed, RFC 1661 section 6.5):
/// IPv4, IPv6 or MPLS; anything else (LCP, IPCP...) is not IP.
pub(super) fn ppp_payload<'a>(frame: &'a [u8], out: &mut Decoded) -> Result<&'a [u8], Skip> {
    let truncated = Skip::Truncated(Layer::Pppoe);
    let (protocol, rest) = match frame.first() {
        Some(&b) if b & 1 == 1 => (u16::from(b), &frame[1..]),
        _ => (be16(frame, 0).ok_or(truncated)?, &frame[2..]),
    };
    match protocol {
        0x0021 | 0x0057 => Ok(rest),
        0x0281 | 0x0283 => mpls(rest, out),
        other => Err(Skip::NotIp(other)),
    }
}

/// Follows VLAN tags, MPLS labels and PPPoE sessions to the IP header.
pub(super) fn ethertype_payload<'a>(
    mut ethertype: u16,
    mut rest: &'a [u8],
    out: &mut Decoded,
) -> Result<&'a [u8], Skip> {
    for _ in 0..MAX_TAGS {
        match ethertype {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => return Ok(rest),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                let tci = be16(rest, 0).ok_or(Skip::Truncated(Layer::Vlan))?;
                ethertype = be16(rest, 2).ok_or(Skip::Truncated(Layer::Vlan))?;
                if out.vlan == 0 {
                    out.vlan = tci & 0x0fff;
                }
                rest = &rest[4..];
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MC => return mpls(rest, out),
            ETHERTYPE_PPPOE_SESSION => {
                // The 6-byte PPPoE header, then a PPP frame.
                let ppp = rest.get(6..).ok_or(Skip::Truncated(Layer::Pppoe))?;
                return match ppp_payload(ppp, out) {
                    Err(Skip::NotIp(_)) => Err(Skip::NotIp(ETHERTYPE_PPPOE_SESSION)),
                    other => other,
                };
            }
            other => return Err(Skip::NotIp(other)),
        }
    }
    Err(Skip::Truncated(Layer::Vlan))
}

/// Pops MPLS labels to the bottom of the stack and expects IP after it, or an Ethernet
/// pseudowire with its control word (first nibble 0, RFC 4448 section 3).
fn mpls<'a>(mut rest: &'a [u8], out: &mut Decoded) -> Result<&'a [u8], Skip> {
    for _ in 0..MAX_TAGS {
        let label = rest.get(..4).ok_or(Skip::Truncated(Layer::Mpls))?;
        let bottom = label[2] & 0x01 != 0;
        rest = &rest[4..];
        if bottom {
            return match rest.first().map(|b| b >> 4) {
                Some(4 | 6) => Ok(rest),
                Some(0) => {
                    let ethertype = be16(rest, 16).ok_or(Skip::Truncated(Layer::Mpls))?;
                    ethertype_payload(ethertype, &rest[18..], out)
                }
                Some(_) => Err(Skip::NotIp(ETHERTYPE_MPLS)),
                None => Err(Skip::Truncated(Layer::Mpls)),
            };
        }
    }
    Err(Skip::Truncated(Layer::Mpls))
}
