//! Hosts behind the rows (`--servers`, `--top`): which endpoint of each finished flow served
//! it, and the host pairs of each row. Kept only when asked for: the pairs grow with the
//! number of distinct host pairs (at most one entry per flow).

use super::{Counts, FlowRecord};
use crate::catalog::{Match, MatchKind};
use crate::decode::IpProto;
use std::ops::AddAssign;

/// A row and a host pair (the lower address first).
pub type PairKey = (Option<Match>, [u8; 16], [u8; 16]);

/// Per row, the server hosts and the host pairs, of outer flows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hosts {
    /// (row, server address) → what the flows it served carried.
    pub servers: hashbrown::HashMap<(Match, [u8; 16]), Counts>,
    /// (row, lower address, higher address) → the pair's flows; only when `top` > 0.
    pub pairs: hashbrown::HashMap<PairKey, Counts>,
    /// Server address → the distinct flows it served (an SMB connection split over several
    /// rows counts once here, in each of its rows there).
    pub server_flows: hashbrown::HashMap<[u8; 16], u64>,
    /// How many pairs per row the report lists (`--top N`).
    pub top: usize,
    /// Whether the report lists the servers (`--servers`): `--top` alone does not.
    pub list_servers: bool,
}

/// The address of the endpoint that served a flow, if one can be told:
/// - TCP: the side that answered the handshake (sent SYN-ACK);
/// - otherwise, on a row of one port (a port record, or a port the endpoint mapper, FTP or
///   TFTP announced, or a DCE/RPC bind's server port): the endpoint on that port (the one
///   that did not send first, when both are);
/// - range and IP-protocol rows, and unclassified flows, without a handshake: none;
/// - never a broadcast or multicast address (NetBIOS name and datagram broadcasts go to
///   the subnet's broadcast address, which no host answers from).
pub fn server_of(r: &FlowRecord) -> Option<[u8; 16]> {
    let server = endpoint_served(r)?;
    let sent = if server == r.key.a {
        r.packets[0]
    } else {
        r.packets[1]
    };
    (!group_address(&server, sent == 0)).then_some(server)
}

/// Whether `addr` names a group rather than a host: IPv4's limited broadcast, IPv4 and
/// IPv6 multicast, and, for an address that sent nothing in the flow (`silent`), an IPv4
/// address ending in .255 (a /24 or wider subnet's broadcast; a host with such an address
/// in a wider subnet shows itself by sending).
fn group_address(addr: &[u8; 16], silent: bool) -> bool {
    let v6 = std::net::Ipv6Addr::from(*addr);
    match v6.to_ipv4_mapped() {
        Some(v4) => v4.is_broadcast() || v4.is_multicast() || (silent && v4.octets()[3] == 255),
        None => v6.is_multicast(),
    }
}

/// The endpoint the rules above name, before group addresses are left out.
fn endpoint_served(r: &FlowRecord) -> Option<[u8; 16]> {
    let k = &r.key;
    if k.proto == IpProto::TCP {
        if let Some(a) = r.syn_ack_from_a {
            return Some(if a { k.a } else { k.b });
        }
    }
    let m = r.row?;
    let (lo, hi) = m.ports?;
    if lo != hi || m.kind == MatchKind::Range {
        return None;
    }
    match (k.a_port == lo, k.b_port == lo) {
        (true, true) => Some(if r.a_is_origin { k.b } else { k.a }),
        (true, false) => Some(k.a),
        (false, true) => Some(k.b),
        (false, false) => None,
    }
}

impl Hosts {
    /// Hosts for a report that lists the servers (`list_servers`) and the `top` host
    /// pairs of each row (none for 0).
    pub fn new(top: usize, list_servers: bool) -> Hosts {
        Hosts {
            top,
            list_servers,
            ..Hosts::default()
        }
    }

    /// Counts a finished outer flow once for its server, if it has rows and a server.
    pub fn count_flow(&mut self, r: &FlowRecord) {
        if r.row.is_some() || !r.parts.is_empty() {
            if let Some(server) = server_of(r) {
                *self.server_flows.entry(server).or_default() += 1;
            }
        }
    }

    /// Adds what a finished outer flow carried in one of its rows.
    pub fn add(&mut self, r: &FlowRecord, row: Option<Match>, c: Counts) {
        if let (Some(m), Some(server)) = (row, server_of(r)) {
            *self.servers.entry((m, server)).or_default() += c;
        }
        if self.top > 0 {
            *self.pairs.entry((row, r.key.a, r.key.b)).or_default() += c;
        }
    }
}

impl AddAssign for Hosts {
    fn add_assign(&mut self, o: Hosts) {
        for (k, c) in o.servers {
            *self.servers.entry(k).or_default() += c;
        }
        for (k, c) in o.pairs {
            *self.pairs.entry(k).or_default() += c;
        }
        for (k, n) in o.server_flows {
            *self.server_flows.entry(k).or_default() += n;
        }
        self.top = self.top.max(o.top);
        self.list_servers |= o.list_servers;
    }
}
