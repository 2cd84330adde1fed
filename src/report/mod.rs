//! Reports: a finished run turned into a [`Summary`] with names, and printed as a table,
//! JSON or CSV; finished flows as JSON lines.
//!
//! This is the only module that formats for people or serialises; it computes nothing that
//! the tally does not already hold, except sorting and naming.

mod csv_out;
mod flows;
mod html;
mod list;
mod live;
mod merge;
pub mod names;
mod notes;
mod table;

pub use flows::{sort_flows, write_flows};
pub use html::{match_words, write_html};
pub use list::{write_columns, write_list, Columns};
pub use live::{
    write_interval_table, write_live_json, write_live_table, LiveDrops, INTERVAL_TOP_ROWS,
};
pub use merge::MergeError;
use names::SMB_SERVER;
pub use names::{application, candidates, row_key};
pub use notes::notes;

use crate::capture::InputReport;
use crate::catalog::{format_uuid, Catalog, Match, MatchKind, PortTable, Transport};
use crate::decode::{Link, Tunnel};
use crate::flow::{Counts, Expectations, Hosts, Tally};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::net::IpAddr;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    /// JSON on one line.
    Ndjson,
    Csv,
}

/// A service from the catalog, as a row lists it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    pub system_name: Option<String>,
    /// The catalog the service's record came from.
    pub catalog: String,
}

/// One service row: a transport and port (or range, or IP protocol) with its candidates.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// For rows of flows inside tunnels, the tunnel kind.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "merge::some_tunnel"
    )]
    pub tunnel: Option<Tunnel>,
    #[serde(deserialize_with = "merge::transport")]
    pub transport: Transport,
    /// `[low, high]`; `[445, 445]` for one port; `None` for IP-protocol rows.
    pub ports: Option<[u16; 2]>,
    /// How the flows were matched: `port`, `ip-protocol`, `range`, `epm`, `expectation`;
    /// `inner` for rows of flows inside tunnels.
    #[serde(rename = "match", deserialize_with = "merge::kind")]
    pub kind: KindName,
    /// For `inner` rows, how the inner flows were matched.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "merge::some_kind"
    )]
    pub inner_match: Option<KindName>,
    /// For `rpc-bind` and `epm` rows, and `smb-pipe` rows whose pipe a bind was seen on,
    /// the DCE/RPC interface.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interface: Option<InterfaceRef>,
    /// For `smb-pipe` rows, the pipe's name (lower case, without `\pipe\`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pipe: Option<String>,
    /// For `smb-share` rows, `disk` or `print`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "merge::some_share_type"
    )]
    pub share_type: Option<KindName>,
    /// Application protocol names of the candidate records, in catalog order.
    pub protocols: Vec<String>,
    /// Every candidate service, in catalog order.
    pub services: Vec<Service>,
    /// For `smb-session` rows, whose service is the SMB server's (Server): the port's
    /// other candidates, which the trees and pipes after the session reach.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub port_services: Option<Vec<Service>>,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    /// `--top N`: the N host pairs with most bytes in this row.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub top_pairs: Option<Vec<Pair>>,
}

/// Two hosts and what their flows of one row carried.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    /// The lower address first.
    pub a: IpAddr,
    pub b: IpAddr,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// A server host and the rows of the flows it served (`--servers`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub address: IpAddr,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Most bytes first.
    pub rows: Vec<Row>,
}

/// An address as reports show it: IPv4 for IPv4-mapped addresses.
pub fn ip_addr(bytes: [u8; 16]) -> IpAddr {
    let v6 = std::net::Ipv6Addr::from(bytes);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

/// A match kind's name (`port`, `inner`). An alias, because serde would otherwise take a
/// `&'static str` field as borrowed from the input and refuse to read reports it does not own.
pub type KindName = &'static str;

/// A DCE/RPC interface as a row names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceRef {
    /// Lower case, in string order.
    pub uuid: String,
    /// The interface table's name for it; `None` for an interface the table does not know.
    pub name: Option<String>,
}

impl Row {
    /// `tcp/445`, `tcp/1024-65534`, `gre`.
    pub fn key(&self) -> String {
        row_key(self.transport, self.ports.map(|[lo, hi]| (lo, hi)))
    }

    /// Whether the row was matched by a port range alone (outside a tunnel or inside one):
    /// its services are the range's candidates, a guess, never a service the traffic named.
    pub fn is_range_guess(&self) -> bool {
        self.kind == MatchKind::Range.as_str()
            || self.inner_match == Some(MatchKind::Range.as_str())
    }

    /// The candidate service names as every human-readable output shows them, joined by
    /// `sep`: a range row's start with [`RANGE_GUESS`], even when there is one candidate.
    pub fn service_words(&self, sep: &str) -> String {
        let names: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
        format!("{}{}", self.guess_prefix(), names.join(sep))
    }

    /// [`RANGE_GUESS`] for a range row, else nothing.
    pub fn guess_prefix(&self) -> &'static str {
        if self.is_range_guess() {
            RANGE_GUESS
        } else {
            ""
        }
    }
}

/// What the table, CSV, HTML and IPFIX put before the services of a row matched by a port
/// range alone (the dynamic RPC range, for one): candidates, not a named service.
pub const RANGE_GUESS: &str = "range guess: ";

/// An SMB3 session whose keys did not decrypt some of its messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Undecrypted {
    /// The session id, `0x` and 16 hex digits (the number the wire holds little-endian).
    pub session: String,
    pub messages: u64,
}

/// Packets and bytes that are not in any flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketCounts {
    pub packets: u64,
    pub bytes: u64,
}

impl From<Counts> for PacketCounts {
    fn from(c: Counts) -> PacketCounts {
        PacketCounts {
            packets: c.packets,
            bytes: c.bytes,
        }
    }
}

/// Undecodable packets, with the link types portscope does not decode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Undecodable {
    pub packets: u64,
    pub bytes: u64,
    pub unsupported_link_types: Vec<LinkCount>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkCount {
    pub dlt: i32,
    /// libpcap's description of the link type ([`link_name`]).
    #[serde(default)]
    pub name: String,
    pub packets: u64,
}

/// A link type and its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkType {
    pub dlt: i32,
    pub name: String,
}

/// Nanoseconds since the epoch as seconds, to the microsecond JSON's doubles hold.
fn ns_seconds(ns: u64) -> f64 {
    (ns / 1000) as f64 / 1e6
}

/// The name of link type `dlt` as libpcap describes it (`pcap_datalink_val_to_description`:
/// "Ethernet", "802.11 plus radiotap header", "D-Bus"), else its DLT name ("USER0"), else
/// "unnamed". LINKTYPE_USER0 to USER15 (147 to 162), which libpcap does not name, are
/// reserved for private use.
pub fn link_name(dlt: i32) -> String {
    if (147..=162).contains(&dlt) {
        return format!("USER{}, for private use", dlt - 147);
    }
    let link = pcap::Linktype(dlt);
    link.get_description()
        .or_else(|_| link.get_name())
        .unwrap_or_else(|_| "unnamed".to_string())
}

/// One input as the report lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub name: String,
    /// The first link type (a pcapng file's first interface's).
    pub link_type: Option<i32>,
    /// Every link type of the input's frames, named.
    #[serde(default)]
    pub link_types: Vec<LinkType>,
    /// The earliest and the latest capture time of its packets, in seconds since the epoch
    /// (absent when it has none).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub first_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_time: Option<f64>,
    pub packets: u64,
    /// Wire bytes read, counted by the reader (the rows add up to the sum over inputs).
    pub bytes: u64,
    /// Why the input could not be read in full (or at all), if so.
    pub error: Option<String>,
    /// What the capture itself counted as dropped: a pcapng file's interface statistics
    /// (summed over its interfaces), or a live capture's counters. Absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub drops: Option<crate::capture::Drops>,
    /// `classify -f`: what the filter left out (read, but in no count of the report).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub filtered: Option<PacketCounts>,
}

/// One tunnel kind: every packet of it, and what its inner packets were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelTotal {
    #[serde(deserialize_with = "merge::tunnel")]
    pub tunnel: Tunnel,
    /// Inner flows.
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Inner IP flows that match no service.
    pub unclassified: Counts,
    /// Packets with no inner IP packet (L2TP control, PPP LCP, PPTP acknowledgments, ARP).
    pub not_ip: PacketCounts,
}

/// Everything a report shows; `portscope merge` reads it back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub inputs: Vec<Input>,
    /// Every record read.
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    /// Service rows, by bytes (most first).
    pub services: Vec<Row>,
    pub unclassified: Counts,
    pub not_ip: PacketCounts,
    pub undecodable: Undecodable,
    /// Flows ended early because the flow table was full (their counts are kept).
    pub evicted_flows: u64,
    /// Later IP fragments whose first fragment was not seen (counted as unclassified).
    pub orphan_fragments: u64,
    /// DCE/RPC binds to unknown interfaces past the bound on naming them (their
    /// connections keep their port rows).
    pub unnamed_binds: u64,
    /// SMB state (trees, open pipes, pending requests) that a connection's bounds pushed
    /// out: what it would have named stays in the port row. (Absent from reports of
    /// versions before SMB attribution, which merge as 0.)
    #[serde(default)]
    pub smb_forgotten: u64,
    /// `--smb-keys`: the sessions with keys some of whose encrypted messages did not
    /// decrypt with them (those stay `smb-encrypted`), by session id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smb_undecrypted: Vec<Undecrypted>,
    /// Per tunnel kind, most bytes first. These packets are also counted above, under their
    /// outer flows.
    pub tunnels: Vec<TunnelTotal>,
    /// Service rows of the flows inside tunnels, by tunnel kind, then most bytes first.
    pub tunneled: Vec<Row>,
    /// Announced flows (endpoint mapper, FTP, TFTP).
    pub expectations: Expectations,
    /// `--servers`: the server hosts, most bytes first.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub servers: Option<Vec<Server>>,
}

impl Summary {
    /// Names and sorts a tally.
    pub fn new(
        tally: &Tally,
        inputs: &[InputReport],
        catalog: &Catalog,
        table: &PortTable,
    ) -> Summary {
        let total = tally.total();
        let hosts = tally.hosts.as_deref();
        let mut pairs = hosts.filter(|h| h.top > 0).map(top_pairs);
        let mut services: Vec<Row> = tally
            .rows
            .iter()
            .filter_map(|(m, c)| {
                let m = (*m)?;
                let mut r = row(&m, *c, catalog, table);
                r.top_pairs = pairs
                    .as_mut()
                    .map(|p| p.remove(&Some(m)).unwrap_or_default());
                Some(r)
            })
            .collect();
        let servers = hosts
            .filter(|h| h.list_servers)
            .map(|h| servers_of(h, catalog, table));
        services.sort_by(by_bytes);
        let (tunnels, tunneled) = tunnels_of(tally, catalog, table);
        let mut summary = Summary {
            inputs: inputs.iter().map(input).collect(),
            packets: total.packets,
            bytes: total.bytes,
            flows: tally.flow_count,
            services,
            unclassified: tally.rows.get(&None).copied().unwrap_or_default(),
            not_ip: tally.not_ip.into(),
            undecodable: Undecodable {
                packets: tally.undecodable.packets,
                bytes: tally.undecodable.bytes,
                unsupported_link_types: tally
                    .unsupported_links
                    .iter()
                    .map(|(&dlt, &packets)| LinkCount {
                        dlt,
                        name: link_name(dlt),
                        packets,
                    })
                    .collect(),
            },
            evicted_flows: tally.evicted_flows,
            orphan_fragments: tally.orphan_fragments,
            unnamed_binds: tally.unnamed_binds,
            smb_forgotten: tally.smb_forgotten,
            smb_undecrypted: tally
                .smb_undecrypted
                .iter()
                .map(|(&session, &messages)| Undecrypted {
                    session: format!("{session:#018x}"),
                    messages,
                })
                .collect(),
            tunnels,
            tunneled,
            expectations: tally.expectations,
            servers,
        };
        summary.sort();
        summary
    }

    /// Puts rows and tunnels in report order: the order depends on the counts alone, so
    /// a merged summary sorts like a single run's.
    fn sort(&mut self) {
        self.services.sort_by(by_bytes);
        self.smb_undecrypted
            .sort_by(|a, b| a.session.cmp(&b.session));
        self.tunnels
            .sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.tunnel.cmp(&b.tunnel)));
        let tunnels = &self.tunnels;
        self.tunneled.sort_by(|a, b| {
            let rank = |r: &Row| tunnels.iter().position(|t| Some(t.tunnel) == r.tunnel);
            rank(a).cmp(&rank(b)).then(by_bytes(a, b))
        });
    }

    /// Writes the report in `format`.
    ///
    /// # Errors
    /// Any error of `out`.
    pub fn write(&self, format: Format, out: &mut dyn Write) -> io::Result<()> {
        match format {
            Format::Table => table::write(self, out),
            Format::Json => {
                serde_json::to_writer_pretty(&mut *out, self)?;
                writeln!(out)
            }
            Format::Ndjson => {
                serde_json::to_writer(&mut *out, self)?;
                writeln!(out)
            }
            Format::Csv => csv_out::write(self, out),
        }
    }
}

/// Most bytes first, then most packets, then by transport and ports.
fn by_bytes(a: &Row, b: &Row) -> std::cmp::Ordering {
    b.bytes
        .cmp(&a.bytes)
        .then(b.packets.cmp(&a.packets))
        .then(a.transport.cmp(&b.transport))
        .then(a.ports.cmp(&b.ports))
        .then(a.kind.cmp(b.kind))
        .then(a.protocols.cmp(&b.protocols))
        .then_with(|| {
            let uuid = |r: &Row| r.interface.as_ref().map(|i| i.uuid.clone());
            uuid(a).cmp(&uuid(b))
        })
        .then_with(|| a.pipe.cmp(&b.pipe))
        .then(a.share_type.cmp(&b.share_type))
}

/// The tunnels and the rows of the flows inside them.
fn tunnels_of(tally: &Tally, catalog: &Catalog, table: &PortTable) -> (Vec<TunnelTotal>, Vec<Row>) {
    let mut tunnels: Vec<TunnelTotal> = Vec::new();
    let mut tunneled: Vec<Row> = Vec::new();
    let total_of = |kind: Tunnel, tunnels: &mut Vec<TunnelTotal>| -> usize {
        if let Some(i) = tunnels.iter().position(|t| t.tunnel == kind) {
            return i;
        }
        tunnels.push(TunnelTotal {
            tunnel: kind,
            flows: 0,
            packets: 0,
            bytes: 0,
            unclassified: Counts::default(),
            not_ip: PacketCounts::default(),
        });
        tunnels.len() - 1
    };
    for (&(kind, m), &c) in &tunnel_rows(tally) {
        let i = total_of(kind, &mut tunnels);
        let t = &mut tunnels[i];
        t.flows += c.flows;
        t.packets += c.packets;
        t.bytes += c.bytes;
        match m {
            Some(m) => {
                let mut r = row(&m, c, catalog, table);
                r.tunnel = Some(kind);
                r.inner_match = Some(r.kind);
                r.kind = "inner";
                tunneled.push(r);
            }
            None => t.unclassified += c,
        }
    }
    for (kind, &c) in Tunnel::ALL
        .iter()
        .map(|&t| (t, &tally.tunnel_not_ip[usize::from(t.code())]))
        .filter(|(_, c)| c.packets > 0)
    {
        let i = total_of(kind, &mut tunnels);
        let t = &mut tunnels[i];
        t.packets += c.packets;
        t.bytes += c.bytes;
        t.not_ip = c.into();
    }
    (tunnels, tunneled)
}

/// An input as the report names it.
fn input(i: &InputReport) -> Input {
    Input {
        name: i.name.clone(),
        link_type: i.link.map(Link::dlt),
        first_time: i.span.map(|(first, _)| ns_seconds(first)),
        last_time: i.span.map(|(_, last)| ns_seconds(last)),
        link_types: i
            .links
            .iter()
            .map(|l| LinkType {
                dlt: l.dlt(),
                name: link_name(l.dlt()),
            })
            .collect(),
        packets: i.packets,
        bytes: i.bytes,
        error: i.open_error.clone().or_else(|| i.read_error.clone()),
        drops: i.drops,
        filtered: i.filtered.map(|f| PacketCounts {
            packets: f.packets,
            bytes: f.bytes,
        }),
    }
}

/// The tally's tunnel rows in a fixed order.
fn tunnel_rows(tally: &Tally) -> std::collections::BTreeMap<(Tunnel, Option<Match>), Counts> {
    tally.tunneled.iter().map(|(k, c)| (*k, *c)).collect()
}

fn row(m: &Match, c: Counts, catalog: &Catalog, table: &PortTable) -> Row {
    let (protocols, services) = candidates(m, catalog, table);
    Row {
        tunnel: None,
        inner_match: None,
        transport: m.transport,
        ports: m.ports.map(|(lo, hi)| [lo, hi]),
        kind: m.kind.as_str(),
        interface: m.interface().map(|id| InterfaceRef {
            uuid: table
                .interface_uuid(id)
                .map_or_else(String::new, |u| format_uuid(&u)),
            name: catalog.interfaces.get(id as usize).map(|i| i.name.clone()),
        }),
        pipe: m.pipe().and_then(|id| table.pipe_name(id)),
        share_type: m.share_type(),
        protocols,
        services,
        port_services: (m.kind == MatchKind::SmbSession).then(|| {
            let port = Match {
                kind: MatchKind::Port,
                ..*m
            };
            let (_, all) = candidates(&port, catalog, table);
            all.into_iter().filter(|s| s.name != SMB_SERVER).collect()
        }),
        flows: c.flows,
        packets: c.packets,
        bytes: c.bytes,
        top_pairs: None,
    }
}

/// Per row, the `hosts.top` host pairs with most bytes (then most packets, then by
/// address), in one pass over the pairs.
fn top_pairs(hosts: &Hosts) -> hashbrown::HashMap<Option<Match>, Vec<Pair>> {
    let mut by_row: hashbrown::HashMap<Option<Match>, Vec<Pair>> = hashbrown::HashMap::new();
    for (&(m, a, b), c) in &hosts.pairs {
        by_row.entry(m).or_default().push(Pair {
            a: ip_addr(a),
            b: ip_addr(b),
            flows: c.flows,
            packets: c.packets,
            bytes: c.bytes,
        });
    }
    for pairs in by_row.values_mut() {
        pairs.sort_by(|x, y| {
            (y.bytes, y.packets)
                .cmp(&(x.bytes, x.packets))
                .then((x.a, x.b).cmp(&(y.a, y.b)))
        });
        pairs.truncate(hosts.top);
    }
    by_row
}

/// Server hosts with their rows, most bytes first (then by address).
fn servers_of(hosts: &Hosts, catalog: &Catalog, table: &PortTable) -> Vec<Server> {
    let mut by_address: std::collections::BTreeMap<[u8; 16], Server> = Default::default();
    for (&(m, address), &c) in &hosts.servers {
        let s = by_address.entry(address).or_insert_with(|| Server {
            address: ip_addr(address),
            flows: 0,
            packets: 0,
            bytes: 0,
            rows: Vec::new(),
        });
        s.packets += c.packets;
        s.bytes += c.bytes;
        s.rows.push(row(&m, c, catalog, table));
    }
    // Distinct flows: an SMB connection is in several of a server's rows.
    for (address, s) in &mut by_address {
        s.flows = hosts.server_flows.get(address).copied().unwrap_or(0);
    }
    let mut servers: Vec<Server> = by_address.into_values().collect();
    for s in &mut servers {
        s.rows.sort_by(by_bytes);
    }
    servers.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.address.cmp(&b.address)));
    servers
}

/// `1.5 MiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
