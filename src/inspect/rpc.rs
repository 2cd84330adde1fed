//! The DCE/RPC interface a packet names: the first presentation context of a
//! connection-oriented bind or alter context (C706 12.6.4.3 and 12.6.4.1; [MS-RPCE] 2.2.2),
//! or the interface id of a connectionless request or response header (C706 12.5.2).
//!
//! Only the fixed header and the first context are read, with every length checked
//! against the segment; a PDU that does not look like DCE/RPC (a wrong version, type or
//! data representation, a length below what it must hold, no context) yields nothing. The
//! first-fragment flag is not required: a bind is one fragment, and some clients leave the
//! flag clear (tshark and Suricata read such binds too; the corpus has one).

use crate::catalog::swap_uuid_fields;
use crate::decode::{array, Decoded, IpProto, Upper};

/// Byte offsets of the fields read.
mod field {
    /// Connection-oriented PDUs (C706 12.6.3.1).
    pub mod co {
        pub const VERSION: usize = 0;
        pub const MINOR: usize = 1;
        pub const PTYPE: usize = 2;
        pub const DREP: usize = 4;
        pub const FRAG_LEN: usize = 8;
        /// The bind and alter context body: the number of contexts, then the first one's
        /// id (2 bytes), transfer syntax count and reserved byte, then its abstract syntax.
        pub const N_CONTEXTS: usize = 24;
        pub const ABSTRACT_SYNTAX: usize = 32;
        /// The header, the body to the first context, and the first context's id, counts
        /// and abstract syntax (UUID and version).
        pub const MIN_BIND_LEN: usize = 52;
    }
    /// Connectionless PDUs (C706 12.5.2): an 80-byte header.
    pub mod cl {
        pub const VERSION: usize = 0;
        pub const PTYPE: usize = 1;
        pub const DREP: usize = 4;
        pub const INTERFACE: usize = 24;
        pub const BODY_LEN: usize = 74;
        pub const LEN: usize = 80;
    }
}

/// The endpoint mapper's port, and the lowest port of the ranges Windows hands out.
const EPM_PORT: u16 = 135;
const DYNAMIC: u16 = 1024;
const CO_VERSION: u8 = 5;
const CL_VERSION: u8 = 4;
const PTYPE_REQUEST: u8 = 0;
const PTYPE_RESPONSE: u8 = 2;
const PTYPE_BIND: u8 = 11;
const PTYPE_ALTER_CONTEXT: u8 = 14;
/// The integer representation bits of the data representation's first byte: 0x10 is
/// little-endian, 0x00 big-endian; the low bits give the character set (ASCII or EBCDIC).
const DREP_INTEGER: u8 = 0xf0;
const DREP_LITTLE_ENDIAN: u8 = 0x10;

/// A DCE/RPC interface a packet names, and which side of the packet is the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The interface UUID in string order (`12345778-1234-abcd-ef00-0123456789ac` is
    /// `[0x12, 0x34, 0x57, 0x78, ...]`).
    pub uuid: [u8; 16],
    /// Whether the packet's destination is the server (a bind, an alter context, a
    /// connectionless request); false for a connectionless response.
    pub to_server: bool,
}

/// The interface a TCP segment or UDP datagram names, if its payload begins with a
/// connection-oriented bind or alter context (TCP) or a connectionless request or response
/// (UDP).
///
/// Only packets to or from port 135 (the endpoint mapper) or between two ports of 1024 and
/// up (the dynamic ports Windows hands DCE/RPC servers) are read: the test runs on every
/// packet, and reading a payload's first byte costs a cache line that the headers did not
/// touch (`benches/README.md` has the numbers). DCE/RPC to a fixed port below 1024 other
/// than 135 is not seen.
#[inline(always)]
pub fn interface(d: &Decoded, payload: &[u8]) -> Option<Bound> {
    let Upper::Ports { src, dst, .. } = d.upper else {
        return None;
    };
    let rpc_ports = src == EPM_PORT || dst == EPM_PORT || (src >= DYNAMIC && dst >= DYNAMIC);
    let tcp = d.ip.proto == IpProto::TCP;
    let long_enough = payload.len()
        >= if tcp {
            field::co::MIN_BIND_LEN
        } else {
            field::cl::LEN
        };
    if !rpc_ports || !long_enough {
        return None;
    }
    match (tcp, payload.first()) {
        (true, Some(&CO_VERSION)) => co_bind(payload).map(|uuid| Bound {
            uuid,
            to_server: true,
        }),
        (false, Some(&CL_VERSION)) if d.ip.proto == IpProto::UDP => cl_header(payload),
        _ => None,
    }
}

/// The abstract syntax of the first presentation context of a bind or alter context.
pub fn co_bind(payload: &[u8]) -> Option<[u8; 16]> {
    use field::co::*;
    let h = array::<MIN_BIND_LEN>(payload, 0)?;
    if h[VERSION] != CO_VERSION
        || h[MINOR] > 1
        || !matches!(h[PTYPE], PTYPE_BIND | PTYPE_ALTER_CONTEXT)
        || h[DREP] & DREP_INTEGER & !DREP_LITTLE_ENDIAN != 0
    {
        return None;
    }
    let le = h[DREP] & DREP_LITTLE_ENDIAN != 0;
    let frag_len = usize::from(if le {
        u16::from_le_bytes([h[FRAG_LEN], h[FRAG_LEN + 1]])
    } else {
        u16::from_be_bytes([h[FRAG_LEN], h[FRAG_LEN + 1]])
    });
    if frag_len < MIN_BIND_LEN || h[N_CONTEXTS] == 0 {
        return None;
    }
    let uuid = array::<16>(h, ABSTRACT_SYNTAX)?;
    Some(string_order(*uuid, le))
}

/// The interface of a connectionless request or response.
fn cl_header(payload: &[u8]) -> Option<Bound> {
    use field::cl::*;
    let h = array::<LEN>(payload, 0)?;
    let to_server = match h[PTYPE] {
        PTYPE_REQUEST => true,
        PTYPE_RESPONSE => false,
        _ => return None,
    };
    if h[VERSION] != CL_VERSION || h[DREP] & DREP_INTEGER & !DREP_LITTLE_ENDIAN != 0 {
        return None;
    }
    let le = h[DREP] & DREP_LITTLE_ENDIAN != 0;
    let body = [h[BODY_LEN], h[BODY_LEN + 1]];
    let body = usize::from(if le {
        u16::from_le_bytes(body)
    } else {
        u16::from_be_bytes(body)
    });
    // The body follows the header whole, unless the capture cut it short.
    if body < payload.len() - LEN {
        return None;
    }
    let uuid = string_order(*array::<16>(h, INTERFACE)?, le);
    (uuid != [0; 16]).then_some(Bound { uuid, to_server })
}

/// A UUID as NDR sends it (its first three fields in the sender's integer order) in string
/// order.
fn string_order(u: [u8; 16], le: bool) -> [u8; 16] {
    if le {
        swap_uuid_fields(u)
    } else {
        u
    }
}

/// The presentation context of a PDU that names none (an auth3, a shutdown...).
pub const NO_CONTEXT: u32 = u32::MAX;
/// At most this many PDUs of one segment are walked, and this many presentation contexts
/// of one bind or alter context are read (Windows offers two or three).
const MAX_PDUS: usize = 64;
const MAX_CONTEXTS_READ: usize = 8;
const PTYPE_FAULT: u8 = 3;
const PTYPE_BIND_ACK: u8 = 12;
const PTYPE_BIND_NAK: u8 = 13;
const PTYPE_ALTER_CONTEXT_RESP: u8 = 15;
/// The highest PDU type C706 defines (rts is 20 in [MS-RPCH]).
const PTYPE_MAX: u8 = 20;

/// Whether a TCP segment may belong to a DCE/RPC connection of its own: the ports
/// [`interface`] reads (the endpoint mapper's, or two dynamic ones), SMB's aside, and at
/// least a PDU header's 16 bytes of payload. (The last few bytes of a PDU, alone in a
/// segment shorter than that, stay in the flow's own row: this keeps the small segments of
/// every other connection between dynamic ports from costing a record each.)
#[inline(always)]
pub fn may_carry_co(d: &Decoded, payload: &[u8]) -> bool {
    let Upper::Ports { src, dst, .. } = d.upper else {
        return false;
    };
    payload.len() >= 16
        && d.ip.proto == IpProto::TCP
        && (src == EPM_PORT || dst == EPM_PORT || (src >= DYNAMIC && dst >= DYNAMIC))
}

/// The connection-oriented PDU header at `at`: its type, fragment length, call id, context
/// id (from a request, response or fault; the first one offered by a bind or alter
/// context) and integer byte order. `None` unless the header is captured and well formed.
fn co_header(payload: &[u8], at: usize) -> Option<(u8, usize, u32, u32, bool)> {
    use field::co::*;
    let h = array::<16>(payload, at)?;
    if h[VERSION] != CO_VERSION
        || h[MINOR] > 1
        || h[PTYPE] > PTYPE_MAX
        || h[DREP] & DREP_INTEGER & !DREP_LITTLE_ENDIAN != 0
    {
        return None;
    }
    let le = h[DREP] & DREP_LITTLE_ENDIAN != 0;
    let u16_at = |b: [u8; 2]| {
        if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let frag_len = usize::from(u16_at([h[FRAG_LEN], h[FRAG_LEN + 1]]));
    if frag_len < 16 {
        return None;
    }
    let call = [h[12], h[13], h[14], h[15]];
    let call = if le {
        u32::from_le_bytes(call)
    } else {
        u32::from_be_bytes(call)
    };
    let context_at = match h[PTYPE] {
        PTYPE_REQUEST | PTYPE_RESPONSE | PTYPE_FAULT => Some(at + 20),
        PTYPE_BIND | PTYPE_ALTER_CONTEXT => Some(at + 28),
        _ => None,
    };
    let context = context_at
        .and_then(|c| array::<2>(payload, c))
        .map_or(NO_CONTEXT, |c| u32::from(u16_at(*c)));
    Some((h[PTYPE], frag_len, call, context, le))
}

/// The presentation context of the connection-oriented PDU at the start of `pdu` (data an
/// SMB message writes to a pipe or reads from one): a request's, response's or fault's, a
/// bind's or alter context's first one. `None` for other PDUs and for bytes that are not
/// a PDU's start.
pub fn co_context(pdu: &[u8]) -> Option<u16> {
    let (_, _, _, context, _) = co_header(pdu, 0)?;
    u16::try_from(context).ok()
}

/// Each presentation context (its id and the abstract syntax's UUID in string order) that
/// the bind or alter context at the start of `pdu` offers.
pub fn co_offers(pdu: &[u8], mut context: impl FnMut(u16, [u8; 16])) {
    if let Some((PTYPE_BIND | PTYPE_ALTER_CONTEXT, _, _, _, le)) = co_header(pdu, 0) {
        contexts(pdu, 0, le, &mut context);
    }
}

/// Reads the connection-oriented DCE/RPC PDUs that begin in `payload` (a segment of a TCP
/// connection, as far as it was captured; `len` is its length on the wire), as
/// [`crate::inspect::smb::segment`] reads SMB messages, so that the SMB connection state
/// can frame them: a header of [`Dialect::Rpc`](crate::inspect::smb::Dialect::Rpc) per
/// PDU. Each presentation context a bind or alter context offers goes to `context` (its
/// id and the abstract syntax's UUID in string order). Returns the segment and its tail,
/// as [`crate::inspect::smb::segment`] does.
pub fn co_segment(
    payload: &[u8],
    len: u32,
    mut context: impl FnMut(u16, [u8; 16]),
) -> (
    crate::inspect::smb::Segment,
    Option<crate::inspect::smb::Header>,
) {
    use crate::inspect::smb::{Dialect, Header, Segment};
    let mut at = 0;
    let mut first = None;
    let mut last = None;
    let mut read = 0;
    while read < MAX_PDUS {
        let Some((ptype, frag_len, call, ctx, le)) = co_header(payload, at) else {
            break;
        };
        if matches!(ptype, PTYPE_BIND | PTYPE_ALTER_CONTEXT) {
            contexts(payload, at, le, &mut context);
        }
        let header = Header {
            dialect: Dialect::Rpc,
            response: matches!(
                ptype,
                PTYPE_RESPONSE
                    | PTYPE_FAULT
                    | PTYPE_BIND_ACK
                    | PTYPE_BIND_NAK
                    | PTYPE_ALTER_CONTEXT_RESP
            ),
            interim: false,
            command: u16::from(ptype),
            tree: ctx,
            message: u64::from(call),
            file: 0,
            context: None,
        };
        first.get_or_insert(header);
        last = Some(header);
        read += 1;
        at += frag_len;
        if at >= payload.len() {
            break;
        }
    }
    let Some(first) = first else {
        return (
            Segment {
                start: None,
                first: Header {
                    dialect: Dialect::Other,
                    response: false,
                    interim: false,
                    command: 0,
                    tree: 0,
                    message: 0,
                    file: 0,
                    context: None,
                },
                end: 0,
                unread: 0,
            },
            None,
        );
    };
    let end = u32::try_from(at).unwrap_or(u32::MAX);
    (
        Segment {
            start: Some(0),
            first,
            end,
            unread: 0,
        },
        if end > len && read > 1 { last } else { None },
    )
}

/// The presentation contexts of the bind or alter context at `at` (C706 12.6.4.3: the
/// count at offset 24, then per context its id, transfer syntax count, a reserved byte,
/// the abstract syntax and that many transfer syntaxes of 20 bytes each).
fn contexts(payload: &[u8], at: usize, le: bool, context: &mut impl FnMut(u16, [u8; 16])) {
    let Some(&n) = payload.get(at + 24) else {
        return;
    };
    let mut pos = at + 28;
    for _ in 0..usize::from(n).min(MAX_CONTEXTS_READ) {
        let (Some(id), Some(&syntaxes), Some(uuid)) = (
            array::<2>(payload, pos),
            payload.get(pos + 2),
            array::<16>(payload, pos + 4),
        ) else {
            return;
        };
        let id = if le {
            u16::from_le_bytes(*id)
        } else {
            u16::from_be_bytes(*id)
        };
        context(id, string_order(*uuid, le));
        pos += 24 + 20 * usize::from(syntaxes);
    }
}

/// A little-endian bind (or, with `alter`, an alter context) naming `uuid` (string order)
/// in its one presentation context, with the NDR transfer syntax: for tests and the
/// fixture generator.
pub fn bind_pdu(uuid: [u8; 16], alter: bool) -> Vec<u8> {
    let wire = swap_uuid_fields(uuid);
    let ptype = if alter {
        PTYPE_ALTER_CONTEXT
    } else {
        PTYPE_BIND
    };
    let mut pdu = vec![CO_VERSION, 0, ptype, 0x03, DREP_LITTLE_ENDIAN, 0, 0, 0];
    pdu.extend_from_slice(&72u16.to_le_bytes());
    pdu.extend_from_slice(&[0, 0, 1, 0, 0, 0]); // auth length, call id
    pdu.extend_from_slice(&[0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0]); // max frags, group
    pdu.extend_from_slice(&[1, 0, 0, 0]); // one context
    pdu.extend_from_slice(&[0, 0, 1, 0]); // context 0, one transfer syntax
    pdu.extend_from_slice(&wire);
    pdu.extend_from_slice(&[1, 0, 0, 0]); // interface version 1.0
                                          // NDR 8a885d04-1ceb-11c9-9fe8-08002b104860 version 2.
    pdu.extend_from_slice(&[
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48,
        0x60, 2, 0, 0, 0,
    ]);
    pdu
}

/// A little-endian bind or alter context (`alter`) offering one presentation context `id`
/// per UUID of `uuids` (string order), from `id` up, with call id `call`: for tests and
/// the fixture generator.
pub fn bind_contexts(uuids: &[[u8; 16]], id: u16, call: u32, alter: bool) -> Vec<u8> {
    let one = bind_pdu(uuids.first().copied().unwrap_or([0; 16]), alter);
    // The header and the body before the contexts, then each 44-byte context.
    let mut pdu = one[..24].to_vec();
    pdu[12..16].copy_from_slice(&call.to_le_bytes());
    pdu.extend_from_slice(&[u8::try_from(uuids.len()).unwrap_or(u8::MAX), 0, 0, 0]);
    for (k, uuid) in uuids.iter().enumerate() {
        let mut context = one[28..72].to_vec();
        let ctx = id + u16::try_from(k).unwrap_or(0);
        context[..2].copy_from_slice(&ctx.to_le_bytes());
        context[4..20].copy_from_slice(&swap_uuid_fields(*uuid));
        pdu.extend_from_slice(&context);
    }
    let len = u16::try_from(pdu.len()).unwrap_or(u16::MAX);
    pdu[8..10].copy_from_slice(&len.to_le_bytes());
    pdu
}

/// A little-endian connection-oriented PDU of type `ptype` (request 0, response 2, bind
/// ack 12, alter context response 15...) for context `ctx`, call `call`, with a `body`-byte
/// stub after the 24-byte header: for tests and the fixture generator.
pub fn co_pdu(ptype: u8, ctx: u16, call: u32, body: usize) -> Vec<u8> {
    let mut pdu = vec![CO_VERSION, 0, ptype, 0x03, DREP_LITTLE_ENDIAN, 0, 0, 0];
    let len = u16::try_from(24 + body).unwrap_or(u16::MAX);
    pdu.extend_from_slice(&len.to_le_bytes());
    pdu.extend_from_slice(&[0, 0]); // auth length
    pdu.extend_from_slice(&call.to_le_bytes());
    pdu.extend_from_slice(&u32::try_from(body).unwrap_or(0).to_le_bytes()); // alloc hint
    pdu.extend_from_slice(&ctx.to_le_bytes());
    pdu.extend_from_slice(&[0, 0]); // opnum, or cancel count and reserved
    pdu.resize(24 + body, 0x5a);
    pdu
}

/// A little-endian connectionless request for `uuid` (string order) with a `body`-byte
/// stub: for tests and the fixture generator.
pub fn cl_request(uuid: [u8; 16], body: usize) -> Vec<u8> {
    let wire = swap_uuid_fields(uuid);
    let mut pdu = vec![
        CL_VERSION,
        PTYPE_REQUEST,
        0x28,
        0,
        DREP_LITTLE_ENDIAN,
        0,
        0,
        0,
    ];
    pdu.extend_from_slice(&[0; 16]); // object
    pdu.extend_from_slice(&wire);
    pdu.extend_from_slice(&[7; 16]); // activity
    pdu.extend_from_slice(&[0; 4]); // server boot time
    pdu.extend_from_slice(&[1, 0, 0, 0]); // interface version
    pdu.extend_from_slice(&[0; 4]); // sequence number
    pdu.extend_from_slice(&[0, 0, 0xff, 0xff, 0xff, 0xff]); // opnum, hints
    pdu.extend_from_slice(&u16::try_from(body).unwrap_or(u16::MAX).to_le_bytes());
    pdu.extend_from_slice(&[0, 0, 0, 0]); // fragment number, auth, serial
    pdu.resize(field::cl::LEN + body, 0);
    pdu
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, Link};
    use etherparse::PacketBuilder;

    const SAMR: [u8; 16] = [
        0x12, 0x34, 0x57, 0x78, 0x12, 0x34, 0xab, 0xcd, 0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89,
        0xac,
    ];

    fn segment(udp: bool, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
        let mut out = Vec::new();
        if udp {
            b.udp(50000, 135).write(&mut out, payload).unwrap();
        } else {
            b.tcp(50000, 49667, 1, 1000)
                .write(&mut out, payload)
                .unwrap();
        }
        out
    }

    fn bound(frame: &[u8]) -> Option<Bound> {
        let (d, payload) = decode(Link::Ethernet, frame).unwrap();
        interface(&d, payload)
    }

    #[test]
    fn co_segments_frame_pdus_and_list_the_contexts_offered() {
        let lsarpc = {
            let mut u = SAMR;
            u[15] = 0xab;
            u
        };
        // An alter context offering two contexts, then a request on context 1.
        let mut payload = bind_contexts(&[SAMR, lsarpc], 0, 7, true);
        let bind_len = payload.len();
        payload.extend(co_pdu(PTYPE_REQUEST, 1, 8, 100));
        let mut offered = Vec::new();
        let (s, tail) = co_segment(&payload, payload.len() as u32, |id, uuid| {
            offered.push((id, uuid))
        });
        assert_eq!(offered, [(0, SAMR), (1, lsarpc)]);
        assert_eq!((s.start, s.end as usize), (Some(0), payload.len()));
        assert_eq!(
            (s.first.command, s.first.tree, s.first.message),
            (u16::from(PTYPE_ALTER_CONTEXT), 0, 7)
        );
        assert_eq!(tail, None);
        // The request goes on past the segment: it is the tail, on context 1.
        let cut = &payload[..bind_len + 30];
        let (s, tail) = co_segment(cut, cut.len() as u32, |_, _| {});
        assert_eq!(s.end as usize, payload.len());
        let tail = tail.unwrap();
        assert_eq!((tail.tree, tail.message, tail.response), (1, 8, false));
        // A response alone, longer than its segment: no tail (it is the first), its context.
        let response = co_pdu(PTYPE_RESPONSE, 3, 9, 5000);
        let (s, tail) = co_segment(&response[..1460], 1460, |_, _| {});
        assert_eq!((s.first.tree, s.first.response, s.end), (3, true, 5024));
        assert_eq!(tail, None);
        // Not DCE/RPC: nothing.
        let (s, _) = co_segment(b"GET / HTTP/1.1\r\n", 16, |_, _| panic!());
        assert_eq!(s.start, None);
    }

    #[test]
    fn binds_alter_contexts_and_connectionless_requests_name_their_interface() {
        let expect = Some(Bound {
            uuid: SAMR,
            to_server: true,
        });
        assert_eq!(bound(&segment(false, &bind_pdu(SAMR, false))), expect);
        assert_eq!(bound(&segment(false, &bind_pdu(SAMR, true))), expect);
        assert_eq!(bound(&segment(true, &cl_request(SAMR, 24))), expect);
        let mut response = cl_request(SAMR, 0);
        response[1] = PTYPE_RESPONSE;
        assert_eq!(
            bound(&segment(true, &response)),
            Some(Bound {
                uuid: SAMR,
                to_server: false
            })
        );
    }

    #[test]
    fn big_endian_uuids_are_read_as_sent() {
        let mut pdu = bind_pdu(SAMR, false);
        pdu[4] = 0x00;
        pdu[8..10].copy_from_slice(&72u16.to_be_bytes());
        pdu[32..48].copy_from_slice(&SAMR);
        assert_eq!(co_bind(&pdu), Some(SAMR));
    }

    #[test]
    fn what_is_not_a_first_bind_is_nothing() {
        let good = bind_pdu(SAMR, false);
        let changed = |at: usize, value: u8| {
            let mut p = good.clone();
            p[at] = value;
            co_bind(&p)
        };
        assert_eq!(changed(0, 4), None, "version 4 on TCP");
        assert_eq!(changed(1, 2), None, "minor version 2");
        assert_eq!(changed(2, 12), None, "a bind ack");
        assert_eq!(changed(2, 0), None, "a request");
        assert_eq!(changed(3, 0x00), Some(SAMR), "no first-fragment flag");
        assert_eq!(changed(4, 0x20), None, "unknown integer representation");
        assert_eq!(changed(24, 0), None, "no context");
        assert_eq!(changed(8, 40), None, "a length below one context");
        for n in 0..MIN_BIND {
            assert_eq!(co_bind(&good[..n]), None, "cut at {n}");
        }
        // The rest of the PDU may be cut by the snapshot length.
        assert_eq!(co_bind(&good[..MIN_BIND]), Some(SAMR));
        let mut wrong = cl_request(SAMR, 8);
        wrong[74] = 4; // says a 4-byte body, 8 follow
        assert_eq!(bound(&segment(true, &wrong)), None);
        let zero = cl_request([0; 16], 0);
        assert_eq!(bound(&segment(true, &zero)), None);
        // DCE/RPC bytes on the other transport are not read.
        assert_eq!(bound(&segment(true, &good)), None);
        assert_eq!(bound(&segment(false, &cl_request(SAMR, 0))), None);
    }

    const MIN_BIND: usize = field::co::MIN_BIND_LEN;

    #[test]
    fn only_the_mapper_and_dynamic_ports_are_read() {
        let pdu = bind_pdu(SAMR, false);
        let on = |sport: u16, dport: u16| {
            let b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
            let mut out = Vec::new();
            b.tcp(sport, dport, 1, 1000).write(&mut out, &pdu).unwrap();
            bound(&out).is_some()
        };
        assert!(on(50000, 135));
        assert!(on(135, 50000));
        assert!(on(1024, 65535));
        assert!(!on(50000, 445), "SMB carries binds inside its own messages");
        assert!(!on(1023, 50000));
    }

    #[test]
    fn arbitrary_payloads_never_panic() {
        use proptest::prelude::*;
        proptest!(|(udp: bool, mut bytes in prop::collection::vec(any::<u8>(), 0..160))| {
            if let Some(first) = bytes.first_mut() {
                *first = if udp { CL_VERSION } else { CO_VERSION };
            }
            let frame = segment(udp, &bytes);
            let _ = bound(&frame);
        });
    }
}
