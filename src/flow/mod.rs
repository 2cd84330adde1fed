//! Flows: the canonical key, bounded per-shard flow tables with capture-time timeouts, the
//! IP fragment table, and the [`Tally`] that finished flows are added to.
//!
//! A flow's service row is decided once, when the flow starts, by the `classify` callback;
//! this module never looks up names. Tables are owned by one worker each: no locks.

mod expected;
mod flows;
mod fragments;
mod hosts;
mod key;
pub mod smb;
mod table;

pub use expected::{ExpectKey, Expected, Target};
pub use fragments::{FragmentKey, Fragments};
pub use hosts::{server_of, Hosts};
pub use key::{shard_of, shard_of_pair, Key};
pub use table::{Packet, Shard, SHARDS};

use crate::catalog::Match;
use crate::decode::{IpProto, Tunnel};
use std::collections::BTreeMap;
use std::ops::AddAssign;

const NS: u64 = 1_000_000_000;

/// When a flow ends, in capture time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Idle time after which a TCP flow ends (Zeek's default: 5 minutes).
    pub tcp_ns: u64,
    /// Idle time for UDP (Zeek: 1 minute).
    pub udp_ns: u64,
    /// Idle time for ICMP and every other protocol (Zeek: 1 minute).
    pub other_ns: u64,
    /// After RST, or FIN in both directions, how long late packets still join the flow
    /// (Zeek's `tcp_close_delay`: 5 seconds). A new SYN starts a new flow at once.
    pub tcp_close_ns: u64,
    /// Active timeout (0: none): a flow open this long since its start or its last export
    /// is exported again, with what it carried since, and stays open (IPFIX export only).
    pub active_ns: u64,
}

impl Timeouts {
    /// Zeek's defaults.
    pub const ZEEK: Timeouts = Timeouts {
        tcp_ns: 300 * NS,
        udp_ns: 60 * NS,
        other_ns: 60 * NS,
        tcp_close_ns: 5 * NS,
        active_ns: 0,
    };

    /// Builds timeouts from whole seconds.
    pub fn from_secs(tcp: u64, udp: u64, other: u64) -> Timeouts {
        Timeouts {
            tcp_ns: tcp.saturating_mul(NS),
            udp_ns: udp.saturating_mul(NS),
            other_ns: other.saturating_mul(NS),
            tcp_close_ns: Timeouts::ZEEK.tcp_close_ns,
            active_ns: 0,
        }
    }

    fn idle_ns(&self, proto: IpProto) -> u64 {
        match proto {
            IpProto::TCP => self.tcp_ns,
            IpProto::UDP => self.udp_ns,
            _ => self.other_ns,
        }
    }
}

/// Flows, packets and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

impl Counts {
    /// `self - earlier`, for counters that only grow.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            flows: self.flows.saturating_sub(earlier.flows),
            packets: self.packets.saturating_sub(earlier.packets),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.flows += o.flows;
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
}

/// A tunnel as flows inside it name it: its kind and the outer endpoints (canonical order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TunnelEnds {
    pub kind: Tunnel,
    pub a: [u8; 16],
    pub b: [u8; 16],
}

/// The key of a flow inside a tunnel: the tunnel, then the inner flow's own key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InnerKey {
    pub tunnel: TunnelEnds,
    pub key: Key,
}

impl std::hash::Hash for TunnelEnds {
    /// The outer addresses as four words (the inner key says the rest).
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for half in [&self.a, &self.b] {
            let mut w = [0u8; 8];
            w.copy_from_slice(&half[..8]);
            state.write_u64(u64::from_le_bytes(w));
            w.copy_from_slice(&half[8..]);
            state.write_u64(u64::from_le_bytes(w) ^ u64::from(self.kind.code()));
        }
    }
}

/// What a flow table needs of its keys.
pub trait FlowKey: Copy + Eq + std::hash::Hash {
    /// The IP protocol, which picks the idle timeout.
    fn proto(&self) -> IpProto;
    /// The flow's own 5-tuple key.
    fn flow_key(&self) -> Key;
    /// The tunnel the flow is inside, if any.
    fn tunnel(&self) -> Option<TunnelEnds>;
}

impl FlowKey for Key {
    #[inline]
    fn proto(&self) -> IpProto {
        self.proto
    }
    fn flow_key(&self) -> Key {
        *self
    }
    fn tunnel(&self) -> Option<TunnelEnds> {
        None
    }
}

impl FlowKey for InnerKey {
    #[inline]
    fn proto(&self) -> IpProto {
        self.key.proto
    }
    fn flow_key(&self) -> Key {
        self.key
    }
    fn tunnel(&self) -> Option<TunnelEnds> {
        Some(self.tunnel)
    }
}

/// A part of a finished flow that went to a row of its own (an SMB connection's trees and
/// pipes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartRecord {
    pub row: Match,
    /// Sent by `a` (index 0) and by `b` (index 1).
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// The IP-layer octets of those bytes (RFC 7012's octets, which IPFIX exports).
    pub ip_bytes: [u64; 2],
    /// What no live interval has reported yet (the part itself, if never reported).
    pub unreported: Counts,
    /// What earlier records of the flow exported of the part (active timeout).
    pub exported_packets: [u64; 2],
    pub exported_bytes: [u64; 2],
    pub exported_ip_bytes: [u64; 2],
}

/// Active timeout: what the records of a flow exported while it was open, so that the next
/// one carries only what came since (RFC 7011's delta counters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Of the flow's own row (parts keep theirs), sent by `a` and by `b`.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub ip_bytes: [u64; 2],
    /// Capture time of the last export: the next is due an active timeout later.
    pub at_ns: u64,
    /// The time of the first packet since then (`u64::MAX`: none yet), the next record's
    /// start.
    pub first_ns: u64,
}

/// A finished flow, kept only when `--flows` asks for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    pub key: Key,
    /// For a flow inside a tunnel, the tunnel.
    pub tunnel: Option<TunnelEnds>,
    /// The service row; `None` is unclassified.
    pub row: Option<Match>,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Whether endpoint `a` sent the first packet.
    pub a_is_origin: bool,
    /// Packets and bytes sent by `a` (index 0) and by `b` (index 1), in the flow's own row
    /// (all but its parts').
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// The IP-layer octets of those bytes (RFC 7012's octets, which IPFIX exports).
    pub ip_bytes: [u64; 2],
    /// TCP flags sent by `a` and by `b`, or'ed over the flow.
    pub tcp_flags: [u8; 2],
    /// What ended the flow.
    pub end: FlowEnd,
    /// What no live interval has reported yet of the flow's own row (the flow itself, if
    /// never reported there).
    pub unreported: Counts,
    /// Live mode: whether an interval counted the flow among its flows.
    pub counted: bool,
    /// The parts that went to rows of their own, in the order they began.
    pub parts: Vec<PartRecord>,
    /// SMB state the connection's bounds pushed out.
    pub smb_forgotten: u64,
    /// TCP: whether `a` (true) or `b` answered the handshake with a SYN-ACK, if one was seen.
    pub syn_ack_from_a: Option<bool>,
    /// Of a flow that active-timeout records exported in part while it was open: what they
    /// carried (the counts above are still the whole flow's). `None` for those records
    /// themselves, whose counts are their own deltas.
    pub exported: Option<Box<Exported>>,
}

impl FlowRecord {
    /// Packets and bytes over the flow's own row and its parts, sent by `a` and by `b`.
    pub fn totals(&self) -> ([u64; 2], [u64; 2]) {
        let (mut packets, mut bytes) = (self.packets, self.bytes);
        for p in &self.parts {
            for side in 0..2 {
                packets[side] += p.packets[side];
                bytes[side] += p.bytes[side];
            }
        }
        (packets, bytes)
    }
}

/// What ended a flow (IPFIX's `flowEndReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowEnd {
    /// Idle past its timeout.
    Idle,
    /// RST, or FIN both ways, then idle past the close delay or a new SYN.
    Closed,
    /// Ended early because its flow-table shard was full (its counts are kept).
    Evicted,
    /// Still open at the end of the input.
    Finished,
    /// Not an end: the flow is open past the active timeout, and the record carries what
    /// it sent since its last record (counted nowhere else; `--flows` leaves it out).
    Active,
}

impl FlowRecord {
    /// Ended by the flow-table bound rather than by a timeout or the end of input.
    pub fn evicted(&self) -> bool {
        self.end == FlowEnd::Evicted
    }
}

/// What the workers counted; merged with `+=`, so which worker saw what does not matter.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Per service row (`None`: unclassified IP traffic).
    pub rows: hashbrown::HashMap<Option<Match>, Counts>,
    pub not_ip: Counts,
    pub undecodable: Counts,
    /// Undecodable packets of link types portscope does not decode, by DLT.
    pub unsupported_links: BTreeMap<i32, u64>,
    /// Flows (outer or inside tunnels) ended because their table was full (their counts
    /// are kept).
    pub evicted_flows: u64,
    /// Later IP fragments whose first fragment was never seen (counted as unclassified).
    pub orphan_fragments: u64,
    /// DCE/RPC binds to interfaces the interface table does not know, past the bound on
    /// how many such interfaces a shard names: their connections keep their port rows.
    pub unnamed_binds: u64,
    /// Distinct flows ended (outside tunnels): a flow split into parts counts in each
    /// part's row, and once here.
    pub flow_count: u64,
    /// SMB state (trees, open pipes, pending requests, parts) that a connection's bounds
    /// pushed out: what it would have named stays in the port row.
    pub smb_forgotten: u64,
    /// `--smb-keys`: per session, the encrypted messages that did not decrypt with its
    /// keys (only sessions the key file names: bounded by it).
    pub smb_undecrypted: BTreeMap<u64, u64>,
    /// Finished flows, when kept.
    pub flows: Vec<FlowRecord>,
    pub keep_flows: bool,
    /// Live mode: what ended or arrived outside flows since the last interval report.
    pub interval: Option<hashbrown::HashMap<Option<Match>, Counts>>,
    /// Live mode: flows that ended since the last interval report before one counted them.
    pub interval_flows: u64,
    /// Live mode: the same for flows inside tunnels.
    pub interval_tunneled: Option<hashbrown::HashMap<(Tunnel, Option<Match>), Counts>>,
    /// Flows inside tunnels, per tunnel kind and inner service row (packets are also in
    /// `rows`, under their outer flow).
    pub tunneled: hashbrown::HashMap<(Tunnel, Option<Match>), Counts>,
    /// Packets of a tunnel whose inner packet is not IP or not decodable (PPTP
    /// acknowledgments, L2TP control messages, PPP's LCP, ARP over VXLAN).
    /// Indexed by [`Tunnel::code`] (a fixed array: PPTP acknowledgments can be a
    /// tunnel's most common packet).
    pub tunnel_not_ip: [Counts; 8],
    pub expectations: Expectations,
    /// `--servers`, `--top`: the hosts behind the rows, when kept.
    pub hosts: Option<Box<Hosts>>,
}

impl Tally {
    /// The counters that are neither rows nor flows (packets outside flows, what bounded
    /// state forgot, announcements), as they stand now: the snapshot an interval report
    /// subtracts the next time ([`Tally::counters_since`]). Every such field is here.
    pub fn counters(&self) -> Tally {
        Tally {
            not_ip: self.not_ip,
            undecodable: self.undecodable,
            unsupported_links: self.unsupported_links.clone(),
            evicted_flows: self.evicted_flows,
            orphan_fragments: self.orphan_fragments,
            unnamed_binds: self.unnamed_binds,
            smb_forgotten: self.smb_forgotten,
            smb_undecrypted: self.smb_undecrypted.clone(),
            tunnel_not_ip: self.tunnel_not_ip,
            expectations: self.expectations,
            ..Tally::default()
        }
    }

    /// What those counters grew by since `before` (a [`Tally::counters`] snapshot; all
    /// of them only grow).
    pub fn counters_since(&self, before: &Tally) -> Tally {
        let mut unsupported_links = self.unsupported_links.clone();
        for (dlt, n) in &mut unsupported_links {
            *n -= before.unsupported_links.get(dlt).copied().unwrap_or(0);
        }
        unsupported_links.retain(|_, n| *n > 0);
        let mut smb_undecrypted = self.smb_undecrypted.clone();
        for (session, n) in &mut smb_undecrypted {
            *n -= before.smb_undecrypted.get(session).copied().unwrap_or(0);
        }
        smb_undecrypted.retain(|_, n| *n > 0);
        let mut tunnel_not_ip = self.tunnel_not_ip;
        for (now, then) in tunnel_not_ip.iter_mut().zip(before.tunnel_not_ip) {
            *now = now.since(then);
        }
        Tally {
            not_ip: self.not_ip.since(before.not_ip),
            undecodable: self.undecodable.since(before.undecodable),
            unsupported_links,
            evicted_flows: self.evicted_flows - before.evicted_flows,
            orphan_fragments: self.orphan_fragments - before.orphan_fragments,
            unnamed_binds: self.unnamed_binds - before.unnamed_binds,
            smb_forgotten: self.smb_forgotten - before.smb_forgotten,
            smb_undecrypted,
            tunnel_not_ip,
            expectations: self.expectations.since(before.expectations),
            ..Tally::default()
        }
    }
}

/// What dynamic-port announcements did: how many were seen, how many classified a flow,
/// how many ran out unused (expired, or pushed out of a full table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    pub announced: u64,
    pub matched: u64,
    pub unused: u64,
}

impl Expectations {
    /// `self - earlier`, for counters that only grow.
    pub fn since(self, earlier: Expectations) -> Expectations {
        Expectations {
            announced: self.announced.saturating_sub(earlier.announced),
            matched: self.matched.saturating_sub(earlier.matched),
            unused: self.unused.saturating_sub(earlier.unused),
        }
    }
}

impl AddAssign for Expectations {
    fn add_assign(&mut self, o: Expectations) {
        self.announced += o.announced;
        self.matched += o.matched;
        self.unused += o.unused;
    }
}

impl Tally {
    pub fn new(keep_flows: bool) -> Tally {
        Tally {
            keep_flows,
            ..Tally::default()
        }
    }

    /// Adds a finished flow: its own row, and each of its parts' rows (a row that several
    /// parts of the flow went to counts the flow once).
    pub fn end_flow(&mut self, record: FlowRecord) {
        let own = Counts {
            flows: 1,
            packets: record.packets[0] + record.packets[1],
            bytes: record.bytes[0] + record.bytes[1],
        };
        if record.evicted() {
            self.evicted_flows += 1;
        }
        if let Some(tunnel) = record.tunnel {
            *self.tunneled.entry((tunnel.kind, record.row)).or_default() += own;
            if let Some(interval) = &mut self.interval_tunneled {
                *interval.entry((tunnel.kind, record.row)).or_default() += record.unreported;
            }
            if self.keep_flows {
                self.flows.push(record);
            }
            return;
        }
        self.flow_count += 1;
        self.smb_forgotten += record.smb_forgotten;
        if let Some(hosts) = &mut self.hosts {
            hosts.count_flow(&record);
        }
        if record.parts.is_empty() || own.packets > 0 {
            *self.rows.entry(record.row).or_default() += own;
            if let Some(hosts) = &mut self.hosts {
                hosts.add(&record, record.row, own);
            }
        }
        for (i, p) in record.parts.iter().enumerate() {
            let first = !record.parts[..i].iter().any(|q| q.row == p.row);
            let counts = Counts {
                flows: u64::from(first),
                packets: p.packets[0] + p.packets[1],
                bytes: p.bytes[0] + p.bytes[1],
            };
            *self.rows.entry(Some(p.row)).or_default() += counts;
            if let Some(hosts) = &mut self.hosts {
                hosts.add(&record, Some(p.row), counts);
            }
        }
        if let Some(interval) = &mut self.interval {
            if record.unreported != Counts::default() {
                *interval.entry(record.row).or_default() += record.unreported;
            }
            for p in &record.parts {
                if p.unreported != Counts::default() {
                    *interval.entry(Some(p.row)).or_default() += p.unreported;
                }
            }
            self.interval_flows += u64::from(!record.counted);
        }
        if self.keep_flows {
            self.flows.push(record);
        }
    }

    /// Keeps the active-timeout record of an open flow for the export (it counts in no row:
    /// the flow counts when it ends).
    pub fn export_open(&mut self, record: FlowRecord) {
        if self.keep_flows {
            self.flows.push(record);
        }
    }

    /// Counts a packet that belongs to no flow under a row (an orphan fragment).
    pub fn add_packet(&mut self, row: Option<Match>, bytes: u64) {
        let one = Counts {
            flows: 0,
            packets: 1,
            bytes,
        };
        *self.rows.entry(row).or_default() += one;
        if let Some(interval) = &mut self.interval {
            *interval.entry(row).or_default() += one;
        }
    }

    /// Every packet counted.
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for c in self.rows.values() {
            total += *c;
        }
        total += self.not_ip;
        total += self.undecodable;
        total
    }
}

impl AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        for (row, counts) in other.rows {
            *self.rows.entry(row).or_default() += counts;
        }
        self.not_ip += other.not_ip;
        self.undecodable += other.undecodable;
        for (dlt, n) in other.unsupported_links {
            *self.unsupported_links.entry(dlt).or_default() += n;
        }
        self.evicted_flows += other.evicted_flows;
        self.orphan_fragments += other.orphan_fragments;
        self.unnamed_binds += other.unnamed_binds;
        self.flow_count += other.flow_count;
        self.smb_forgotten += other.smb_forgotten;
        for (session, n) in other.smb_undecrypted {
            *self.smb_undecrypted.entry(session).or_default() += n;
        }
        self.flows.extend(other.flows);
        for (row, counts) in other.tunneled {
            *self.tunneled.entry(row).or_default() += counts;
        }
        for (mine, theirs) in self.tunnel_not_ip.iter_mut().zip(other.tunnel_not_ip) {
            *mine += theirs;
        }
        self.expectations += other.expectations;
        match (&mut self.hosts, other.hosts) {
            (Some(mine), Some(theirs)) => **mine += *theirs,
            (None, theirs) => self.hosts = theirs,
            _ => {}
        }
    }
}
