//! Reports: a finished run turned into a [`Summary`] with names, and printed as a table,
//! JSON or CSV; finished flows as JSON lines.
//!
//! This is the only module that formats for people or serialises; it computes nothing that
//! the tally does not already hold, except sorting and naming.

mod csv_out;
mod flows;
mod live;
mod table;

pub use flows::write_flows;
pub use live::{write_live_json, write_live_table, LiveDrops};

use crate::catalog::{Catalog, Match, PortTable, Transport};
use crate::decode::Link;
use crate::flow::{Counts, Tally};
use crate::pipeline::InputReport;
use serde::Serialize;
use std::io::{self, Write};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// A service from the catalog, as a row lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Service {
    pub name: String,
    pub system_name: Option<String>,
    /// The catalog the service's record came from.
    pub catalog: String,
}

/// One service row: a transport and port (or range, or IP protocol) with its candidates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub transport: Transport,
    /// `[low, high]`; `[445, 445]` for one port; `None` for IP-protocol rows.
    pub ports: Option<[u16; 2]>,
    #[serde(rename = "match")]
    pub kind: &'static str,
    /// Application protocol names of the candidate records, in catalog order.
    pub protocols: Vec<String>,
    /// Every candidate service, in catalog order.
    pub services: Vec<Service>,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

impl Row {
    /// `tcp/445`, `tcp/1024-65534`, `gre`.
    pub fn key(&self) -> String {
        row_key(self.transport, self.ports.map(|[lo, hi]| (lo, hi)))
    }
}

/// The key the tshark oracle and `--flows` use for a row.
pub fn row_key(transport: Transport, ports: Option<(u16, u16)>) -> String {
    match ports {
        Some((lo, hi)) if lo == hi => format!("{transport}/{lo}"),
        Some((lo, hi)) => format!("{transport}/{lo}-{hi}"),
        None => transport.to_string(),
    }
}

/// Packets and bytes that are not in any flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Undecodable {
    pub packets: u64,
    pub bytes: u64,
    pub unsupported_link_types: Vec<LinkCount>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkCount {
    pub dlt: i32,
    pub packets: u64,
}

/// One input as the report lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Input {
    pub name: String,
    pub link_type: Option<i32>,
    pub packets: u64,
    /// Wire bytes read, counted by the reader (the rows add up to the sum over inputs).
    pub bytes: u64,
    /// Why the input could not be read in full (or at all), if so.
    pub error: Option<String>,
}

/// Everything a report shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
        let mut services: Vec<Row> = tally
            .rows
            .iter()
            .filter_map(|(m, c)| m.map(|m| row(&m, *c, catalog, table)))
            .collect();
        services.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then(b.packets.cmp(&a.packets))
                .then(a.transport.cmp(&b.transport))
                .then(a.ports.cmp(&b.ports))
        });
        Summary {
            inputs: inputs
                .iter()
                .map(|i| Input {
                    name: i.name.clone(),
                    link_type: i.link.map(Link::dlt),
                    packets: i.packets,
                    bytes: i.bytes,
                    error: i.open_error.clone().or_else(|| i.read_error.clone()),
                })
                .collect(),
            packets: total.packets,
            bytes: total.bytes,
            flows: total.flows,
            services,
            unclassified: tally.rows.get(&None).copied().unwrap_or_default(),
            not_ip: tally.not_ip.into(),
            undecodable: Undecodable {
                packets: tally.undecodable.packets,
                bytes: tally.undecodable.bytes,
                unsupported_link_types: tally
                    .unsupported_links
                    .iter()
                    .map(|(&dlt, &packets)| LinkCount { dlt, packets })
                    .collect(),
            },
            evicted_flows: tally.evicted_flows,
            orphan_fragments: tally.orphan_fragments,
        }
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
            Format::Csv => csv_out::write(self, out),
        }
    }
}

fn row(m: &Match, c: Counts, catalog: &Catalog, table: &PortTable) -> Row {
    let (protocols, services) = candidates(m, catalog, table);
    Row {
        transport: m.transport,
        ports: m.ports.map(|(lo, hi)| [lo, hi]),
        kind: m.kind.as_str(),
        protocols,
        services,
        flows: c.flows,
        packets: c.packets,
        bytes: c.bytes,
    }
}

/// The distinct protocol names and services of a row's candidate records, in catalog order.
pub fn candidates(m: &Match, catalog: &Catalog, table: &PortTable) -> (Vec<String>, Vec<Service>) {
    let mut protocols: Vec<String> = Vec::new();
    let mut services: Vec<Service> = Vec::new();
    for &i in table.records(m.set) {
        let Some(r) = catalog.records.get(i as usize) else {
            continue;
        };
        if !protocols.contains(&r.protocol) {
            protocols.push(r.protocol.clone());
        }
        let service = Service {
            name: r.service.clone(),
            system_name: r.system_name.clone(),
            catalog: catalog.source_name(r).to_string(),
        };
        if !services.contains(&service) {
            services.push(service);
        }
    }
    (protocols, services)
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
