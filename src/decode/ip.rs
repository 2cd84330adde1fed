//! IPv4 and IPv6 (with extension headers and fragments), then the first bytes of the transport
//! header: TCP/UDP ports and TCP flags, the ESP SPI, the protocol behind AH.

use super::{be16, be32, Decoded, Fragment, Layer, Skip};

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ESP: u8 = 50;
const PROTO_AH: u8 = 51;
const PROTO_GRE: u8 = 47;
const PROTO_IPIP: u8 = 4;
const PROTO_IPV6: u8 = 41;
/// IPv6 extension headers walked over: hop-by-hop, routing, destination options, mobility,
/// HIP, shim6 (RFC 8200 section 4 and the IANA list). Fragment (44) is handled apart.
const IPV6_EXTENSIONS: [u8; 6] = [0, 43, 60, 135, 139, 140];
const IPV6_FRAGMENT: u8 = 44;
const MAX_EXTENSIONS: usize = 8;

/// Decodes an IP packet into `out` and returns what follows the headers `out` describes:
/// the TCP or UDP payload, the packet behind a GRE or AH header, the inner packet of IP-in-IP;
/// empty for later fragments and everything else.
// Always inlined, as in the old single caller: the hot path (`decode_payload`) and the
// tunnel path (`tunnel::inner`, itself never inlined) each get their own copy.
#[inline(always)]
pub(super) fn decode<'a>(packet: &'a [u8], out: &mut Decoded) -> Result<&'a [u8], Skip> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => ipv4(packet, out),
        Some(6) => ipv6(packet, out),
        Some(_) => Err(Skip::BadIp),
        None => Err(Skip::Truncated(Layer::Ip)),
    }
}

#[inline(always)]
fn ipv4<'a>(p: &'a [u8], out: &mut Decoded) -> Result<&'a [u8], Skip> {
    let header = p.get(..20).ok_or(Skip::Truncated(Layer::Ip))?;
    let header_len = usize::from(header[0] & 0x0f) * 4;
    if header_len < 20 {
        return Err(Skip::BadIp);
    }
    out.ip_version = 4;
    out.src[10..12].copy_from_slice(&[0xff, 0xff]);
    out.src[12..].copy_from_slice(&header[12..16]);
    out.dst[10..12].copy_from_slice(&[0xff, 0xff]);
    out.dst[12..].copy_from_slice(&header[16..20]);
    out.proto = header[9];
    let id = u32::from(u16::from_be_bytes([header[4], header[5]]));
    let flags_offset = u16::from_be_bytes([header[6], header[7]]);
    if flags_offset & 0x1fff != 0 {
        out.fragment = Fragment::Later(id);
        return Ok(&[]);
    }
    if flags_offset & 0x2000 != 0 {
        out.fragment = Fragment::First(id);
    }
    // The payload ends at the total length (which drops Ethernet padding), or at the end of
    // the capture; a total length below the header (TSO captures write 0) is ignored.
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let end = if total >= header_len {
        total.min(p.len())
    } else {
        p.len()
    };
    Ok(p.get(header_len..end)
        .map_or(&[][..], |payload| transport(payload, out)))
}

#[inline(always)]
fn ipv6<'a>(p: &'a [u8], out: &mut Decoded) -> Result<&'a [u8], Skip> {
    let header = p.get(..40).ok_or(Skip::Truncated(Layer::Ip))?;
    out.ip_version = 6;
    out.src.copy_from_slice(&header[8..24]);
    out.dst.copy_from_slice(&header[24..40]);
    let mut next = header[6];
    let mut rest = &p[40..];
    for _ in 0..MAX_EXTENSIONS {
        if IPV6_EXTENSIONS.contains(&next) {
            let (Some(&following), Some(&len)) = (rest.first(), rest.get(1)) else {
                break;
            };
            let skip = (usize::from(len) + 1) * 8;
            next = following;
            rest = rest.get(skip..).unwrap_or(&[]);
        } else if next == IPV6_FRAGMENT {
            let Some(fragment) = rest.get(..8) else { break };
            let offset = u16::from_be_bytes([fragment[2], fragment[3]]) >> 3;
            let more = fragment[3] & 0x01 != 0;
            let id = u32::from_be_bytes([fragment[4], fragment[5], fragment[6], fragment[7]]);
            next = fragment[0];
            rest = &rest[8..];
            if offset != 0 {
                out.proto = next;
                out.fragment = Fragment::Later(id);
                return Ok(&[]);
            }
            if more {
                out.fragment = Fragment::First(id);
            }
        } else {
            break;
        }
    }
    out.proto = next;
    // The payload length bounds the packet (jumbograms, with 0 here, are taken whole).
    let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let rest = if len == 0 {
        rest
    } else {
        let consumed = p.len() - 40 - rest.len();
        rest.get(..len.saturating_sub(consumed)).unwrap_or(rest)
    };
    Ok(transport(rest, out))
}

/// The GRE header (RFC 2784 and 2890; version 1 is PPTP's, RFC 2637): flags, version and
/// protocol type, and its length from the optional fields present.
fn gre<'a>(payload: &'a [u8], out: &mut Decoded) -> &'a [u8] {
    let (Some(flags), Some(proto)) = (be16(payload, 0), be16(payload, 2)) else {
        return &[];
    };
    let (checksum, key, sequence) = (
        flags & 0x8000 != 0,
        flags & 0x2000 != 0,
        flags & 0x1000 != 0,
    );
    let len = match flags & 0x0007 {
        // A routing field (R, RFC 1701) has a variable length: such packets are not read
        // (RFC 2784 discards them too).
        0 if flags & 0x4000 != 0 => return &[],
        0 => 4 + 4 * (u8::from(checksum) + u8::from(key) + u8::from(sequence)),
        // PPTP: the key is mandatory; an acknowledgment follows when flagged.
        1 => 8 + 4 * (u8::from(sequence) + u8::from(flags & 0x0080 != 0)),
        _ => return &[],
    };
    match payload.get(usize::from(len)..) {
        Some(rest) => {
            out.gre_proto = proto;
            out.gre_len = len;
            out.gre_flags = flags;
            rest
        }
        None => &[],
    }
}

/// Reads what the transport header offers, as far as the bytes go, and returns what follows
/// it (empty when the header is cut short).
#[inline(always)]
fn transport<'a>(payload: &'a [u8], out: &mut Decoded) -> &'a [u8] {
    match out.proto {
        PROTO_TCP | PROTO_UDP => {
            if let (Some(s), Some(d)) = (be16(payload, 0), be16(payload, 2)) {
                out.has_ports = true;
                out.src_port = s;
                out.dst_port = d;
            }
            let header_len = if out.proto == PROTO_TCP {
                out.tcp_flags = payload.get(13).copied().unwrap_or(0);
                payload
                    .get(12)
                    .map_or(usize::MAX, |&b| usize::from(b >> 4) * 4)
            } else {
                8
            };
            payload.get(header_len.max(8)..).unwrap_or(&[])
        }
        PROTO_ESP => {
            out.spi = be32(payload, 0).unwrap_or(0);
            &[]
        }
        PROTO_AH => match (payload.first(), payload.get(1)) {
            (Some(&next), Some(&len)) => {
                out.ah_next = next;
                out.ah_len = (u16::from(len) + 2) * 4;
                payload.get(usize::from(out.ah_len)..).unwrap_or(&[])
            }
            _ => &[],
        },
        PROTO_GRE => gre(payload, out),
        PROTO_IPIP | PROTO_IPV6 => payload,
        _ => &[],
    }
}

/// Reads an upper-layer header of protocol `proto` (what AH in transport mode protects).
pub(super) fn upper<'a>(proto: u8, payload: &'a [u8], out: &mut Decoded) -> &'a [u8] {
    out.proto = proto;
    transport(payload, out)
}
