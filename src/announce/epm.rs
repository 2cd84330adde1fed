//! The DCE/RPC endpoint mapper's `ept_map` response (C706 chapter 12 and appendix L;
//! [MS-RPCE] 2.2.1.2): the towers that say on which TCP port and IPv4 address an interface
//! listens.
//!
//! Only what the answer needs is read, with every length checked: the connection-oriented
//! PDU header (C706 12.6.3), the response header, then the NDR stub of `ept_map`: a context
//! handle, the tower count, a conformant varying array of tower pointers, and the towers.
//! A tower is a floor count and floors of (left-hand side, right-hand side) octet strings;
//! floor 1 names the interface, floor 4 the TCP port (big-endian), floor 5 the IPv4 address.

use crate::catalog::swap_uuid_fields;
use crate::decode::{be16, be32};

/// An endpoint the endpoint mapper announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The interface UUID in string order.
    pub uuid: [u8; 16],
    pub port: u16,
    /// The IPv4 address, when the tower names one other than 0.0.0.0.
    pub addr: Option<[u8; 4]>,
}

const PTYPE_RESPONSE: u8 = 2;
/// At most this many towers are read from one answer (Windows returns one to four).
const MAX_TOWERS: usize = 16;
const FLOOR_UUID: u8 = 0x0d;
const FLOOR_RPC_CO: u8 = 0x0b;
const FLOOR_TCP: u8 = 0x07;
const FLOOR_IP: u8 = 0x09;

/// Calls `found` for each TCP/IP endpoint in an `ept_map` response that starts at the
/// beginning of `payload`. Anything else (a request, a bind, another operation's answer, a
/// PDU cut short before its towers) yields nothing.
pub fn map_response(payload: &[u8], mut found: impl FnMut(Endpoint)) {
    let Some(header) = payload.get(..24) else {
        return;
    };
    if header[0] != 5 || header[1] != 0 || header[2] != PTYPE_RESPONSE {
        return;
    }
    let le = header[4] & 0x10 != 0;
    let u16_at = |b: &[u8], at: usize| be16(b, at).map(|v| if le { v.swap_bytes() } else { v });
    let u32_at = |b: &[u8], at: usize| be32(b, at).map(|v| if le { v.swap_bytes() } else { v });
    let Some(frag_len) = u16_at(header, 8) else {
        return;
    };
    let end = usize::from(frag_len).min(payload.len());
    let Some(stub) = payload.get(24..end) else {
        return;
    };
    // NDR (4-byte counts and pointers) or NDR64 (8-byte ones), whichever transfer syntax
    // the bind chose: the stub says which by parsing under one and not the other.
    if !towers(stub, 4, &u32_at, &mut found) {
        towers(stub, 8, &u32_at, &mut found);
    }
}

/// Reads the towers of an `ept_map` stub whose counts and pointers are `word` bytes wide;
/// false if the array header does not parse that way.
fn towers(
    stub: &[u8],
    word: usize,
    u32_at: &impl Fn(&[u8], usize) -> Option<u32>,
    found: &mut impl FnMut(Endpoint),
) -> bool {
    // A count in the word size: the low half, with a zero high half for NDR64 (counts here
    // are small; the byte order is the PDU's).
    let count_at = |at: usize| -> Option<u32> {
        let v = u32_at(stub, at)?;
        if word == 8 {
            let other = u32_at(stub, at + 4)?;
            return match (v, other) {
                (v, 0) => Some(v),
                (0, v) => Some(v),
                _ => None,
            };
        }
        Some(v)
    };
    // handle (20), num_towers, then the array's max count, offset and actual count.
    let (Some(num), Some(max), Some(offset), Some(actual)) = (
        u32_at(stub, 20),
        count_at(24),
        count_at(24 + word),
        count_at(24 + 2 * word),
    ) else {
        return false;
    };
    if offset != 0 || actual != num || actual > max || actual as usize > stub.len() / word {
        return false;
    }
    let pointers = 24 + 3 * word;
    let count = (actual as usize).min(MAX_TOWERS);
    let mut at = pointers + word * actual as usize;
    for i in 0..count {
        // A null pointer has no tower.
        if !matches!(count_at(pointers + word * i), Some(referent) if referent != 0) {
            continue;
        }
        // The tower: conformance (max count), its length, its octets, padding.
        let (Some(_), Some(len)) = (count_at(at), u32_at(stub, at + word)) else {
            return true;
        };
        let len = len as usize;
        let start = at + word + 4;
        let Some(tower) = stub.get(start..start.saturating_add(len)) else {
            return true;
        };
        if let Some(endpoint) = parse_tower(tower) {
            found(endpoint);
        }
        at = (start + len).next_multiple_of(word);
    }
    true
}

/// A tower's floors are little-endian counts and lengths whatever the PDU's byte order;
/// the UUID's first three fields are little-endian too, the port and address big-endian.
fn parse_tower(tower: &[u8]) -> Option<Endpoint> {
    let le16 = |at: usize| be16(tower, at).map(u16::swap_bytes);
    let floors = le16(0)?;
    let mut at = 2;
    let (mut uuid, mut port, mut addr, mut connection_oriented) = (None, None, None, false);
    for _ in 0..floors.min(8) {
        let lhs_len = usize::from(le16(at)?);
        let lhs = tower.get(at + 2..at + 2 + lhs_len)?;
        at += 2 + lhs_len;
        let rhs_len = usize::from(le16(at)?);
        let rhs = tower.get(at + 2..at + 2 + rhs_len)?;
        at += 2 + rhs_len;
        match (lhs.first(), rhs) {
            (Some(&FLOOR_UUID), _) if uuid.is_none() && lhs.len() >= 17 => {
                let mut u = [0u8; 16];
                u.copy_from_slice(&lhs[1..17]);
                uuid = Some(swap_uuid_fields(u));
            }
            (Some(&FLOOR_RPC_CO), _) => connection_oriented = true,
            (Some(&FLOOR_TCP), &[hi, lo]) => port = Some(u16::from_be_bytes([hi, lo])),
            (Some(&FLOOR_IP), &[a, b, c, d]) => addr = Some([a, b, c, d]),
            _ => {}
        }
    }
    let port = port.filter(|&p| p != 0)?;
    if !connection_oriented {
        return None;
    }
    Some(Endpoint {
        uuid: uuid?,
        port,
        addr: addr.filter(|a| *a != [0; 4]),
    })
}

/// Builds a tower for `uuid` (string order) on TCP `port` at `addr`: for tests and the
/// fixture generator.
pub fn tower(uuid: [u8; 16], port: u16, addr: [u8; 4]) -> Vec<u8> {
    let mut t = vec![5, 0];
    t.extend_from_slice(&[19, 0, FLOOR_UUID]);
    t.extend_from_slice(&swap_uuid_fields(uuid));
    t.extend_from_slice(&[4, 0, 2, 0, 0, 0]);
    // NDR transfer syntax 8a885d04-1ceb-11c9-9fe8-08002b104860 v2.
    t.extend_from_slice(&[19, 0, FLOOR_UUID]);
    t.extend_from_slice(&[
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48,
        0x60,
    ]);
    t.extend_from_slice(&[2, 0, 2, 0, 0, 0]);
    t.extend_from_slice(&[1, 0, FLOOR_RPC_CO, 2, 0, 0, 0]);
    t.extend_from_slice(&[1, 0, FLOOR_TCP, 2, 0]);
    t.extend_from_slice(&port.to_be_bytes());
    t.extend_from_slice(&[1, 0, FLOOR_IP, 4, 0]);
    t.extend_from_slice(&addr);
    t
}

/// Builds a little-endian `ept_map` response PDU carrying `towers`.
/// (A PDU longer than 65,535 bytes is not valid; its length field saturates.)
pub fn map_response_pdu(towers: &[Vec<u8>]) -> Vec<u8> {
    let n = u32::try_from(towers.len()).unwrap_or(u32::MAX);
    let mut stub = vec![0u8; 20];
    for v in [n, n.max(4), 0, n] {
        stub.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..n {
        stub.extend_from_slice(&(0x3_0000 + i).to_le_bytes());
    }
    for t in towers {
        let len = u32::try_from(t.len()).unwrap_or(u32::MAX);
        stub.extend_from_slice(&len.to_le_bytes());
        stub.extend_from_slice(&len.to_le_bytes());
        stub.extend_from_slice(t);
        while stub.len() % 4 != 0 {
            stub.push(0);
        }
    }
    stub.extend_from_slice(&0u32.to_le_bytes()); // status
    let frag_len = u16::try_from(24 + stub.len()).unwrap_or(u16::MAX);
    let mut pdu = vec![5, 0, PTYPE_RESPONSE, 3, 0x10, 0, 0, 0];
    pdu.extend_from_slice(&frag_len.to_le_bytes());
    pdu.extend_from_slice(&[0, 0, 2, 0, 0, 0]); // auth length, call id
    pdu.extend_from_slice(&u32::try_from(stub.len()).unwrap_or(u32::MAX).to_le_bytes());
    pdu.extend_from_slice(&[0, 0, 0, 0]);
    pdu.extend_from_slice(&stub);
    pdu
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRSUAPI: [u8; 16] = [
        0xe3, 0x51, 0x42, 0x35, 0x4b, 0x06, 0x11, 0xd1, 0xab, 0x04, 0x00, 0xc0, 0x4f, 0xc2, 0xdc,
        0xd2,
    ];

    fn endpoints(payload: &[u8]) -> Vec<Endpoint> {
        let mut out = Vec::new();
        map_response(payload, |e| out.push(e));
        out
    }

    #[test]
    fn reads_every_tower_of_a_map_response() {
        let pdu = map_response_pdu(&[
            tower(DRSUAPI, 49667, [10, 0, 0, 5]),
            tower(DRSUAPI, 49668, [0, 0, 0, 0]),
        ]);
        assert_eq!(
            endpoints(&pdu),
            [
                Endpoint {
                    uuid: DRSUAPI,
                    port: 49667,
                    addr: Some([10, 0, 0, 5])
                },
                Endpoint {
                    uuid: DRSUAPI,
                    port: 49668,
                    addr: None
                }
            ]
        );
    }

    /// An `ept_map` answer under NDR64, as Samba's rpcclient negotiates it: frame 17 of the
    /// corpus capture samrlab__rpcclient_enumdomusers.pcapng (tshark reads the same towers).
    #[test]
    fn reads_ndr64_answers() {
        let hex = [
            "05000203100000006c01000002000000540100000100000000000000000000000000000000000000",
            "00000000030000000400000000000000000000000000000003000000000000000300000000000000",
            "040000000000000005000000000000004b000000000000004b000000050013000d785634123412cd",
            "abef0001234567cffb01000200000013000d045d888aeb1cc9119fe808002b104860020002000000",
            "01000b020000000100070200cf080100090400c0a80b0b004b000000000000004b00000005001300",
            "0d785634123412cdabef0001234567cffb01000200000013000d045d888aeb1cc9119fe808002b10",
            "486002000200000001000b020000000100070200c2040100090400c0a80b0b004b00000000000000",
            "4b000000050013000d785634123412cdabef0001234567cffb01000200000013000d045d888aeb1c",
            "c9119fe808002b10486002000200000001000b020000000100070200c2000100090400c0a80b0b00",
            "00000000",
        ]
        .concat();
        let pdu: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let netlogon = [
            0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0xab, 0xcd, 0xef, 0x00, 0x01, 0x23, 0x45, 0x67,
            0xcf, 0xfb,
        ];
        let ports: Vec<(u16, Option<[u8; 4]>)> = endpoints(&pdu)
            .iter()
            .map(|e| {
                assert_eq!(e.uuid, netlogon);
                (e.port, e.addr)
            })
            .collect();
        let at = Some([192, 168, 11, 11]);
        assert_eq!(ports, [(53000, at), (49668, at), (49664, at)]);
    }

    #[test]
    fn requests_and_cut_pdus_yield_nothing() {
        let pdu = map_response_pdu(&[tower(DRSUAPI, 49667, [10, 0, 0, 5])]);
        let mut request = pdu.clone();
        request[2] = 0;
        assert!(endpoints(&request).is_empty());
        for n in 0..pdu.len() - 4 {
            let got = endpoints(&pdu[..n]);
            assert!(got.is_empty() || n >= pdu.len() - 8, "{n}: {got:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        use proptest::prelude::*;
        proptest!(|(mut bytes in prop::collection::vec(any::<u8>(), 0..300), cut in 0usize..300)| {
            if bytes.len() > 3 {
                bytes[0] = 5;
                bytes[1] = 0;
                bytes[2] = 2;
            }
            let _ = endpoints(&bytes);
            let _ = endpoints(&bytes[..cut.min(bytes.len())]);
        });
    }
}
