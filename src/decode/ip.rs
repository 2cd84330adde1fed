//! IPv4 and IPv6 (with extension headers and fragments), then the first bytes of the transport
//! header: TCP/UDP ports and TCP flags, the ESP SPI, the protocol behind AH, the GRE header.

use super::{array, be16, be32, EtherType, Fragment, Ip, IpProto, IpVersion, Layer, Skip, Upper};

/// Byte offsets of the fields read, per header.
mod field {
    pub mod ipv4 {
        pub const LEN: usize = 20;
        pub const VER_IHL: usize = 0;
        pub const TOTAL_LEN: usize = 2;
        pub const IDENT: usize = 4;
        pub const FLAGS_OFFSET: usize = 6;
        pub const PROTOCOL: usize = 9;
        pub const SRC: usize = 12;
        pub const DST: usize = 16;
    }
    pub mod ipv6 {
        pub const LEN: usize = 40;
        pub const PAYLOAD_LEN: usize = 4;
        pub const NEXT_HEADER: usize = 6;
        pub const SRC: usize = 8;
        pub const DST: usize = 24;
    }
    /// The IPv6 fragment extension header (RFC 8200 section 4.5).
    pub mod fragment {
        pub const LEN: usize = 8;
        pub const NEXT_HEADER: usize = 0;
        pub const OFFSET_FLAGS: usize = 2;
        pub const IDENT: usize = 4;
    }
    pub mod tcp {
        pub const SEQ: usize = 4;
        pub const DATA_OFFSET: usize = 12;
        pub const FLAGS: usize = 13;
    }
    pub const UDP_LEN: usize = 8;
    pub mod gre {
        pub const FLAGS: usize = 0;
        pub const PROTOCOL: usize = 2;
    }
}

/// IPv6 extension headers walked over: hop-by-hop, routing, destination options, mobility,
/// HIP, shim6 (RFC 8200 section 4 and the IANA list). Fragment (44) is handled apart.
const IPV6_EXTENSIONS: [IpProto; 6] = [
    IpProto::HOPOPTS,
    IpProto::IPV6_ROUTING,
    IpProto::IPV6_DSTOPTS,
    IpProto::MOBILITY,
    IpProto::HIP,
    IpProto::SHIM6,
];
const MAX_EXTENSIONS: usize = 8;

/// IPv4 fragment flags and offset (RFC 791).
const MORE_FRAGMENTS: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// GRE flags (RFC 2784, 2890; version 1 is PPTP's, RFC 2637).
const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
const GRE_ACK: u16 = 0x0080;
const GRE_VERSION: u16 = 0x0007;

/// What an IP packet holds, and the bytes after the headers read (the TCP or UDP payload,
/// the packet behind a GRE or AH header, the inner packet of IP-in-IP; empty for later
/// fragments and everything else).
type Decoded<'a> = (super::Decoded, &'a [u8]);

/// Decodes an IP packet, found on `vlan`. The result is built in one place, where it is
/// returned: building parts and assembling them costs moves on the hot path.
// Always inlined: the hot path (`decode`) and the tunnel path (`tunnel::inner`, itself never
// inlined) each get their own copy.
#[inline(always)]
pub(super) fn decode(packet: &[u8], vlan: u16) -> Result<Decoded<'_>, Skip> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => ipv4(packet, vlan),
        Some(6) => ipv6(packet, vlan),
        Some(_) => Err(Skip::BadIp),
        None => Err(Skip::Truncated(Layer::Ip)),
    }
}

/// An IPv4 address as portscope stores it (`::ffff:a.b.c.d`).
#[inline(always)]
pub fn mapped(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[10] = 0xff;
    a[11] = 0xff;
    a[12..].copy_from_slice(&v4);
    a
}

#[inline(always)]
fn ipv4(p: &[u8], vlan: u16) -> Result<Decoded<'_>, Skip> {
    use field::ipv4::*;
    let h = array::<LEN>(p, 0).ok_or(Skip::Truncated(Layer::Ip))?;
    let header_len = usize::from(h[VER_IHL] & 0x0f) * 4;
    if header_len < LEN {
        return Err(Skip::BadIp);
    }
    let word = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    // An IPv4-mapped address, computed in a register.
    let v4 = |at: usize| {
        0xffff_u128 << 32 | u128::from(u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]))
    };
    let id = u32::from(word(IDENT));
    let flags_offset = word(FLAGS_OFFSET);
    // A total length below the header (TSO captures write 0) is ignored.
    let declared = usize::from(word(TOTAL_LEN));
    let total = if declared >= header_len {
        declared
    } else {
        p.len()
    };
    let mut ip = Ip {
        version: IpVersion::V4,
        src: v4(SRC),
        dst: v4(DST),
        proto: IpProto(h[PROTOCOL]),
        fragment: Fragment::None,
        len: if declared >= header_len {
            u32::from(word(TOTAL_LEN))
        } else {
            0
        },
        captured: u32::try_from(p.len()).unwrap_or(u32::MAX),
    };
    if flags_offset & OFFSET_MASK != 0 {
        ip.fragment = Fragment::Later(id);
        return Ok((
            super::Decoded {
                vlan,
                ip,
                upper: Upper::None,
            },
            &[],
        ));
    }
    if flags_offset & MORE_FRAGMENTS != 0 {
        ip.fragment = Fragment::First(id);
    }
    // The payload ends at the total length (which drops Ethernet padding), or at the end of
    // the capture.
    let end = total.min(p.len());
    // A match, not `map_or`: the closure form was not inlined.
    let (upper, rest) = match p.get(header_len..end) {
        Some(payload) => transport(ip.proto, payload),
        None => (Upper::None, &[][..]),
    };
    Ok((super::Decoded { vlan, ip, upper }, rest))
}

#[inline(always)]
fn ipv6(p: &[u8], vlan: u16) -> Result<Decoded<'_>, Skip> {
    use field::ipv6::*;
    let h = array::<LEN>(p, 0).ok_or(Skip::Truncated(Layer::Ip))?;
    let mut ip = Ip {
        version: IpVersion::V6,
        src: u128::from_be_bytes(*array::<16>(h, SRC).ok_or(Skip::Truncated(Layer::Ip))?),
        dst: u128::from_be_bytes(*array::<16>(h, DST).ok_or(Skip::Truncated(Layer::Ip))?),
        proto: IpProto(h[NEXT_HEADER]),
        fragment: Fragment::None,
        len: match u16::from_be_bytes([h[PAYLOAD_LEN], h[PAYLOAD_LEN + 1]]) {
            0 => 0,
            len => u32::from(len) + LEN as u32,
        },
        captured: u32::try_from(p.len()).unwrap_or(u32::MAX),
    };
    let mut next = ip.proto;
    let mut rest = &p[LEN..];
    for _ in 0..MAX_EXTENSIONS {
        if IPV6_EXTENSIONS.contains(&next) {
            let (Some(&following), Some(&len)) = (rest.first(), rest.get(1)) else {
                break;
            };
            let skip = (usize::from(len) + 1) * 8;
            next = IpProto(following);
            rest = rest.get(skip..).unwrap_or(&[]);
        } else if next == IpProto::IPV6_FRAGMENT {
            use field::fragment;
            let Some(f) = array::<{ fragment::LEN }>(rest, 0) else {
                break;
            };
            let offset_flags = u16::from_be_bytes([f[fragment::OFFSET_FLAGS], f[3]]);
            let id = u32::from_be_bytes([
                f[fragment::IDENT],
                f[fragment::IDENT + 1],
                f[fragment::IDENT + 2],
                f[fragment::IDENT + 3],
            ]);
            next = IpProto(f[fragment::NEXT_HEADER]);
            rest = &rest[fragment::LEN..];
            if offset_flags >> 3 != 0 {
                ip.proto = next;
                ip.fragment = Fragment::Later(id);
                return Ok((
                    super::Decoded {
                        vlan,
                        ip,
                        upper: Upper::None,
                    },
                    &[],
                ));
            }
            if offset_flags & 0x0001 != 0 {
                ip.fragment = Fragment::First(id);
            }
        } else {
            break;
        }
    }
    ip.proto = next;
    // The payload length bounds the packet (jumbograms, with 0 here, are taken whole).
    let len = usize::from(u16::from_be_bytes([h[PAYLOAD_LEN], h[PAYLOAD_LEN + 1]]));
    let rest = if len == 0 {
        rest
    } else {
        let consumed = p.len() - LEN - rest.len();
        rest.get(..len.saturating_sub(consumed)).unwrap_or(rest)
    };
    let (upper, rest) = transport(ip.proto, rest);
    Ok((super::Decoded { vlan, ip, upper }, rest))
}

/// The GRE header (RFC 2784 and 2890; version 1 is PPTP's, RFC 2637): flags, version and
/// protocol type, and its length from the optional fields present.
fn gre(payload: &[u8]) -> (Upper, &[u8]) {
    let (Some(flags), Some(proto)) = (
        be16(payload, field::gre::FLAGS),
        be16(payload, field::gre::PROTOCOL),
    ) else {
        return (Upper::None, &[]);
    };
    let present = |bit: u16| u8::from(flags & bit != 0);
    let len = match flags & GRE_VERSION {
        // A routing field (R, RFC 1701) has a variable length: such packets are not read
        // (RFC 2784 discards them too).
        0 if flags & GRE_ROUTING != 0 => return (Upper::None, &[]),
        0 => 4 + 4 * (present(GRE_CHECKSUM) + present(GRE_KEY) + present(GRE_SEQUENCE)),
        // PPTP: the key is mandatory; an acknowledgment follows when flagged.
        1 => 8 + 4 * (present(GRE_SEQUENCE) + present(GRE_ACK)),
        _ => return (Upper::None, &[]),
    };
    match payload.get(usize::from(len)..) {
        Some(rest) => (
            Upper::Gre {
                proto: EtherType(proto),
                len,
                flags,
            },
            rest,
        ),
        None => (Upper::None, &[]),
    }
}

/// Reads what the header of protocol `proto` offers, as far as the bytes go, and returns
/// what follows it (empty when the header is cut short). This is also how AH in transport
/// mode is seen through: its protected header, read as if AH were not there.
#[inline(always)]
pub(super) fn transport(proto: IpProto, payload: &[u8]) -> (Upper, &[u8]) {
    match proto {
        IpProto::TCP | IpProto::UDP => {
            let upper = match (be16(payload, 0), be16(payload, 2)) {
                (Some(src), Some(dst)) => Upper::Ports {
                    src,
                    dst,
                    tcp_flags: if proto == IpProto::TCP {
                        payload.get(field::tcp::FLAGS).copied().unwrap_or(0)
                    } else {
                        0
                    },
                    seq: if proto == IpProto::TCP {
                        be32(payload, field::tcp::SEQ).unwrap_or(0)
                    } else {
                        0
                    },
                },
                _ => Upper::None,
            };
            let header_len = if proto == IpProto::TCP {
                payload
                    .get(field::tcp::DATA_OFFSET)
                    .map_or(usize::MAX, |&b| usize::from(b >> 4) * 4)
            } else {
                field::UDP_LEN
            };
            (
                upper,
                payload.get(header_len.max(field::UDP_LEN)..).unwrap_or(&[]),
            )
        }
        IpProto::ESP => (
            Upper::Esp {
                spi: be32(payload, 0).unwrap_or(0),
            },
            &[],
        ),
        IpProto::AH => match (payload.first(), payload.get(1)) {
            (Some(&next), Some(&len)) => {
                let len = (u16::from(len) + 2) * 4;
                (
                    Upper::Ah {
                        next: IpProto(next),
                        len,
                    },
                    payload.get(usize::from(len)..).unwrap_or(&[]),
                )
            }
            _ => (Upper::None, &[]),
        },
        IpProto::GRE => gre(payload),
        IpProto::IPIP | IpProto::IPV6 => (Upper::None, payload),
        _ => (Upper::None, &[]),
    }
}
