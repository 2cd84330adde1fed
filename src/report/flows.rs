//! `--flows`: one JSON object per finished flow, in the spirit of Zeek's conn.log, sorted by
//! start time so the file is the same for any thread count.

use super::row_key;
use crate::catalog::{format_uuid, Match, PortTable};
use crate::decode::{IpProto, Tunnel};
use crate::flow::{FlowEnd, FlowRecord};
use serde::Serialize;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv6Addr};

#[derive(Serialize)]
struct Line {
    /// Start and end, seconds since the epoch.
    first: f64,
    last: f64,
    proto: u8,
    orig_addr: IpAddr,
    orig_port: u16,
    resp_addr: IpAddr,
    resp_port: u16,
    vlan: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    spi: Option<u32>,
    /// The service row (`tcp/445`), or `unclassified`.
    row: String,
    #[serde(rename = "match")]
    kind: Option<&'static str>,
    orig_packets: u64,
    orig_bytes: u64,
    resp_packets: u64,
    resp_bytes: u64,
    /// Ended early because the flow table was full.
    evicted: bool,
    /// For a flow inside a tunnel: the tunnel's kind and outer endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel: Option<TunnelLine>,
    /// For a flow inside a tunnel (`match` is `inner`): how the inner flow was matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    inner_match: Option<&'static str>,
    /// For `rpc-bind` and `epm` flows: the DCE/RPC interface's UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    /// For an SMB connection split by the trees and pipes its messages addressed: the
    /// parts, in the order they began (`row` and the counts above are the whole flow's;
    /// what no part took is the row's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    parts: Vec<PartLine>,
}

#[derive(Serialize)]
struct PartLine {
    #[serde(rename = "match")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pipe: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    share_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    orig_packets: u64,
    orig_bytes: u64,
    resp_packets: u64,
    resp_bytes: u64,
}

fn interface_uuid(m: &Match, table: &PortTable) -> Option<String> {
    m.interface()
        .and_then(|id| table.interface_uuid(id))
        .map(|u| format_uuid(&u))
}

#[derive(Serialize)]
struct TunnelLine {
    kind: Tunnel,
    /// The outer endpoints, lower address first.
    outer_a: IpAddr,
    outer_b: IpAddr,
}

fn addr(bytes: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
}

fn seconds(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1e6
}

/// Puts flows in start-time order, the same for any thread count (`--flows` and IPFIX
/// export both write them in this order).
pub fn sort_flows(flows: &mut [FlowRecord]) {
    flows.sort_unstable_by_key(|f| (f.first_ns, f.tunnel, f.key, f.last_ns));
}

/// Writes `flows` (sorted in place) as JSON lines.
///
/// # Errors
/// Any error of `out`.
pub fn write_flows(
    flows: &mut [FlowRecord],
    table: &PortTable,
    out: &mut dyn Write,
) -> io::Result<()> {
    sort_flows(flows);
    // Active-timeout records are pieces of flows whose whole line follows when they end.
    for f in flows.iter().filter(|f| f.end != FlowEnd::Active) {
        let k = &f.key;
        let (o, r) = if f.a_is_origin { (0, 1) } else { (1, 0) };
        let (packets, bytes) = f.totals();
        let ends = [(k.a, k.a_port), (k.b, k.b_port)];
        let line = Line {
            first: seconds(f.first_ns),
            last: seconds(f.last_ns),
            proto: k.proto.0,
            orig_addr: addr(ends[o].0),
            orig_port: ends[o].1,
            resp_addr: addr(ends[r].0),
            resp_port: ends[r].1,
            vlan: k.vlan,
            spi: (k.proto == IpProto::ESP).then_some(k.spi),
            row: f.row.map_or_else(
                || "unclassified".to_string(),
                |m| row_key(m.transport, m.ports),
            ),
            kind: match f.tunnel {
                Some(_) => Some("inner"),
                None => f.row.map(|m| m.kind.as_str()),
            },
            orig_packets: packets[o],
            orig_bytes: bytes[o],
            resp_packets: packets[r],
            resp_bytes: bytes[r],
            evicted: f.evicted(),
            tunnel: f.tunnel.map(|t| TunnelLine {
                kind: t.kind,
                outer_a: addr(t.a),
                outer_b: addr(t.b),
            }),
            inner_match: f.tunnel.and_then(|_| f.row.map(|m| m.kind.as_str())),
            interface: f.row.and_then(|m| interface_uuid(&m, table)),
            parts: f
                .parts
                .iter()
                .map(|p| PartLine {
                    kind: p.row.kind.as_str(),
                    pipe: p.row.pipe().and_then(|id| table.pipe_name(id)),
                    share_type: p.row.share_type(),
                    interface: interface_uuid(&p.row, table),
                    orig_packets: p.packets[o],
                    orig_bytes: p.bytes[o],
                    resp_packets: p.packets[r],
                    resp_bytes: p.bytes[r],
                })
                .collect(),
        };
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    }
    Ok(())
}
