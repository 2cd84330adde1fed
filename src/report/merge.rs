//! `portscope merge`: classify JSON reports read back and added, so that many machines can
//! each classify a share of the files and one merge gives the whole.
//!
//! Every field adds exactly: counters are summed, rows and tunnels are matched on
//! everything but their counts, inputs are listed in argument order, and the result is
//! sorted by the same rule as a single run's report. For files that share no flow the
//! merged document is the one `classify` prints for all of them at once, with one caveat
//! the sum cannot see: the bounds a single run applies across files (`--max-flows` per
//! shard, 64 unknown DCE/RPC interfaces per shard, the fragment and announcement tables)
//! apply per report here, so `evicted_flows` and `unnamed_binds` (and the rows of the
//! flows they concern) are those of the separate runs.

use super::{PacketCounts, Row, Summary, TunnelTotal};
use crate::catalog::{MatchKind, Transport};
use crate::decode::Tunnel;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashMap};

/// Why a document is not a classify report.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("not a portscope classify JSON report")]
    Json(#[from] serde_json::Error),
    #[error("not a consistent report: its rows, unclassified, not IP and undecodable add up to {sum} packets, not its {packets}")]
    Inconsistent { sum: u64, packets: u64 },
    #[error(
        "a report with servers or host pairs (--servers, --top): merge adds reports without them"
    )]
    Hosts,
}

impl Summary {
    /// Reads a report written by `classify --format json` (or by `merge`).
    ///
    /// # Errors
    /// The document is not JSON, has fields of another schema, or does not add up.
    pub fn from_json(text: &str) -> Result<Summary, MergeError> {
        let s: Summary = serde_json::from_str(text)?;
        let sum = s.services.iter().map(|r| r.packets).sum::<u64>()
            + s.unclassified.packets
            + s.not_ip.packets
            + s.undecodable.packets;
        if sum != s.packets {
            return Err(MergeError::Inconsistent {
                sum,
                packets: s.packets,
            });
        }
        // Servers and host pairs cut to the top N do not add up exactly across reports.
        if s.servers.is_some() || s.services.iter().any(|r| r.top_pairs.is_some()) {
            return Err(MergeError::Hosts);
        }
        Ok(s)
    }

    /// Adds the reports in order: the inputs are listed in that order.
    pub fn merge(parts: impl IntoIterator<Item = Summary>) -> Summary {
        let mut total = Summary {
            inputs: Vec::new(),
            packets: 0,
            bytes: 0,
            flows: 0,
            services: Vec::new(),
            unclassified: Default::default(),
            not_ip: PacketCounts::default(),
            undecodable: Default::default(),
            evicted_flows: 0,
            orphan_fragments: 0,
            unnamed_binds: 0,
            smb_forgotten: 0,
            smb_undecrypted: Vec::new(),
            servers: None,
            tunnels: Vec::new(),
            tunneled: Vec::new(),
            expectations: Default::default(),
        };
        let mut services = Rows::default();
        let mut tunneled = Rows::default();
        let mut tunnels: BTreeMap<Tunnel, TunnelTotal> = BTreeMap::new();
        let mut links: BTreeMap<i32, u64> = BTreeMap::new();
        for s in parts {
            total.inputs.extend(s.inputs);
            total.packets += s.packets;
            total.bytes += s.bytes;
            total.flows += s.flows;
            s.services.into_iter().for_each(|r| services.add(r));
            total.unclassified += s.unclassified;
            total.not_ip.packets += s.not_ip.packets;
            total.not_ip.bytes += s.not_ip.bytes;
            total.undecodable.packets += s.undecodable.packets;
            total.undecodable.bytes += s.undecodable.bytes;
            for l in s.undecodable.unsupported_link_types {
                *links.entry(l.dlt).or_default() += l.packets;
            }
            total.evicted_flows += s.evicted_flows;
            total.orphan_fragments += s.orphan_fragments;
            total.unnamed_binds += s.unnamed_binds;
            total.smb_forgotten += s.smb_forgotten;
            for u in s.smb_undecrypted {
                match total
                    .smb_undecrypted
                    .iter_mut()
                    .find(|t| t.session == u.session)
                {
                    Some(t) => t.messages += u.messages,
                    None => total.smb_undecrypted.push(u),
                }
            }
            for t in s.tunnels {
                match tunnels.get_mut(&t.tunnel) {
                    Some(sum) => {
                        sum.flows += t.flows;
                        sum.packets += t.packets;
                        sum.bytes += t.bytes;
                        sum.unclassified += t.unclassified;
                        sum.not_ip.packets += t.not_ip.packets;
                        sum.not_ip.bytes += t.not_ip.bytes;
                    }
                    None => {
                        tunnels.insert(t.tunnel, t);
                    }
                }
            }
            s.tunneled.into_iter().for_each(|r| tunneled.add(r));
            total.expectations += s.expectations;
        }
        total.services = services.rows;
        total.tunneled = tunneled.rows;
        total.tunnels = tunnels.into_values().collect();
        total.undecodable.unsupported_link_types = links
            .into_iter()
            .map(|(dlt, packets)| super::LinkCount {
                dlt,
                name: super::link_name(dlt),
                packets,
            })
            .collect();
        total.sort();
        total
    }
}

/// Rows added by identity: everything but the counts.
#[derive(Default)]
struct Rows {
    rows: Vec<Row>,
    index: HashMap<Row, usize>,
}

impl Rows {
    fn add(&mut self, r: Row) {
        let id = Row {
            flows: 0,
            packets: 0,
            bytes: 0,
            ..r.clone()
        };
        match self.index.get(&id) {
            Some(&i) => {
                let sum = &mut self.rows[i];
                sum.flows += r.flows;
                sum.packets += r.packets;
                sum.bytes += r.bytes;
            }
            None => {
                self.index.insert(id, self.rows.len());
                self.rows.push(r);
            }
        }
    }
}

/// The names a row's `match` can have: the match kinds, and `inner`.
fn static_kind(name: &str) -> Option<&'static str> {
    MatchKind::ALL
        .iter()
        .map(|k| k.as_str())
        .chain(["inner"])
        .find(|k| *k == name)
}

pub(super) fn kind<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let name = String::deserialize(d)?;
    static_kind(&name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown match kind {name:?}")))
}

pub(super) fn some_kind<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
    kind(d).map(Some)
}

pub(super) fn some_share_type<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<&'static str>, D::Error> {
    let name = String::deserialize(d)?;
    ["disk", "print"]
        .into_iter()
        .find(|k| *k == name)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown share type {name:?}")))
}

pub(super) fn transport<'de, D: Deserializer<'de>>(d: D) -> Result<Transport, D::Error> {
    let name = String::deserialize(d)?;
    Transport::ALL
        .into_iter()
        .find(|t| t.as_str() == name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown transport {name:?}")))
}

pub(super) fn tunnel<'de, D: Deserializer<'de>>(d: D) -> Result<Tunnel, D::Error> {
    let name = String::deserialize(d)?;
    Tunnel::ALL
        .into_iter()
        .find(|t| t.as_str() == name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown tunnel {name:?}")))
}

pub(super) fn some_tunnel<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tunnel>, D::Error> {
    tunnel(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{
      "inputs": [{ "name": "a.pcap", "link_type": 1, "packets": 10, "bytes": 1000, "error": null }],
      "packets": 10, "bytes": 1000, "flows": 3,
      "services": [
        { "transport": "tcp", "ports": [445, 445], "match": "port", "protocols": ["SMB"],
          "services": [{ "name": "Server", "system_name": "lanmanserver", "catalog": "built-in" }],
          "flows": 2, "packets": 6, "bytes": 600 }
      ],
      "unclassified": { "flows": 1, "packets": 2, "bytes": 200 },
      "not_ip": { "packets": 1, "bytes": 100 },
      "undecodable": { "packets": 1, "bytes": 100, "unsupported_link_types": [{ "dlt": 147, "packets": 1 }] },
      "evicted_flows": 0, "orphan_fragments": 0, "unnamed_binds": 0,
      "tunnels": [], "tunneled": [],
      "expectations": { "announced": 1, "matched": 1, "unused": 0 }
    }"#;

    #[test]
    fn adds_rows_by_identity_and_sorts_like_a_run() {
        let a = Summary::from_json(ONE).unwrap();
        let mut b = a.clone();
        b.inputs[0].name = "b.pcap".into();
        b.services[0].bytes = 50_000;
        b.services[0].packets = 6;
        b.bytes += 50_000 - 600;
        let mut other = b.services[0].clone();
        other.ports = Some([135, 135]);
        other.bytes = 10;
        b.services.push(other);
        b.packets += 6;
        b.flows += 2;
        b.bytes += 10;
        let m = Summary::merge([a, b]);
        assert_eq!(m.inputs.len(), 2);
        assert_eq!((m.packets, m.flows), (26, 8));
        let rows: Vec<_> = m
            .services
            .iter()
            .map(|r| (r.key(), r.packets, r.bytes))
            .collect();
        assert_eq!(
            rows,
            [("tcp/445".into(), 12, 50_600), ("tcp/135".into(), 6, 10)]
        );
        assert_eq!(m.unclassified.packets, 4);
        assert_eq!(m.undecodable.unsupported_link_types[0].packets, 2);
        assert_eq!(m.expectations.matched, 2);
    }

    #[test]
    fn refuses_other_documents() {
        let e = Summary::from_json("[1, 2]").unwrap_err().to_string();
        assert_eq!(e, "not a portscope classify JSON report");
        let live = ONE.replacen("\"flows\": 3,", "\"flows\": 3, \"final\": true,", 1);
        let e = Summary::from_json(&live).unwrap_err();
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert!(source.starts_with("unknown field `final`"), "{source}");
        let off = ONE.replacen(
            "\"packets\": 10, \"bytes\": 1000, \"flows\"",
            "\"packets\": 11, \"bytes\": 1000, \"flows\"",
            1,
        );
        let e = Summary::from_json(&off).unwrap_err().to_string();
        assert_eq!(e, "not a consistent report: its rows, unclassified, not IP and undecodable add up to 10 packets, not its 11");
    }
}
