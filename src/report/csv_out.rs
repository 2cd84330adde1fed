//! CSV: one line per row (service rows, then the rows of flows inside tunnels, whose `tunnel`
//! column names the tunnel, then unclassified, not_ip and undecodable), with a header.
//! Lists inside a cell are separated by `; `.

use super::Summary;
use std::io::{self, Write};

pub(super) fn write(s: &Summary, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    // `--servers` adds a last column, `server`: empty on the report's own rows, the server's
    // address on the rows of each server that follow them.
    // `--top N` adds two more, `pair_a` and `pair_b`: empty on the other rows, the pair's
    // addresses (the lower first) on the rows of each pair, which follow those of servers,
    // row by row, with the pair's flows, packets and bytes.
    let servers = s.servers.as_deref();
    let pairs = s.services.iter().any(|r| r.top_pairs.is_some());
    let extra = |mut record: Vec<String>, (server, a, b): (&str, &str, &str)| {
        if servers.is_some() {
            record.push(server.to_string());
        }
        if pairs {
            record.push(a.to_string());
            record.push(b.to_string());
        }
        record
    };
    w.write_record(extra(
        HEADER.map(String::from).to_vec(),
        ("server", "pair_a", "pair_b"),
    ))
    .map_err(io_err)?;
    let rows = s
        .services
        .iter()
        .chain(&s.tunneled)
        .map(|r| (r, String::new(), None));
    let served = servers
        .into_iter()
        .flatten()
        .flat_map(|v| v.rows.iter().map(|r| (r, v.address.to_string(), None)));
    let paired = s.services.iter().flat_map(|r| {
        r.top_pairs
            .iter()
            .flatten()
            .map(move |p| (r, String::new(), Some(p)))
    });
    for (r, server, pair) in rows.chain(served).chain(paired) {
        let (a, b) = pair.map_or((String::new(), String::new()), |p| {
            (p.a.to_string(), p.b.to_string())
        });
        w.write_record(extra(row_record(r, pair), (&server, &a, &b)))
            .map_err(io_err)?;
    }
    let others = [
        (
            "unclassified",
            Some(s.unclassified.flows),
            s.unclassified.packets,
            s.unclassified.bytes,
        ),
        ("not_ip", None, s.not_ip.packets, s.not_ip.bytes),
        (
            "undecodable",
            None,
            s.undecodable.packets,
            s.undecodable.bytes,
        ),
    ];
    for (name, flows, packets, bytes) in others {
        let mut record = vec![String::new(); HEADER.len()];
        record[0] = name.to_string();
        record[7] = flows.map_or(String::new(), |f| f.to_string());
        record[8] = packets.to_string();
        record[9] = bytes.to_string();
        w.write_record(extra(record, ("", "", "")))
            .map_err(io_err)?;
    }
    w.flush()
}

/// The columns of every line (before `--servers` and `--top` add theirs).
const HEADER: [&str; 14] = [
    "row",
    "transport",
    "low_port",
    "high_port",
    "match",
    "protocols",
    "services",
    "flows",
    "packets",
    "bytes",
    "tunnel",
    "interface",
    "pipe",
    "share_type",
];

/// The cells of a row's line, or of one of its host pairs' (its own counts).
fn row_record(r: &super::Row, pair: Option<&super::Pair>) -> Vec<String> {
    let (flows, packets, bytes) = pair.map_or((r.flows, r.packets, r.bytes), |p| {
        (p.flows, p.packets, p.bytes)
    });
    let (lo, hi) = r.ports.map_or((String::new(), String::new()), |[lo, hi]| {
        (lo.to_string(), hi.to_string())
    });
    vec![
        r.key(),
        r.transport.to_string(),
        lo,
        hi,
        r.kind.to_string(),
        r.protocols.join("; "),
        r.service_words("; "),
        flows.to_string(),
        packets.to_string(),
        bytes.to_string(),
        r.tunnel.map_or(String::new(), |t| t.to_string()),
        r.interface
            .as_ref()
            .map_or(String::new(), |i| i.uuid.clone()),
        r.pipe.clone().unwrap_or_default(),
        r.share_type.unwrap_or_default().to_string(),
    ]
}

/// The I/O error inside a CSV error, with its kind: a closed pipe must stay a closed pipe,
/// so that `| head` ends quietly as it does for the other formats.
fn io_err(e: csv::Error) -> io::Error {
    let message = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        _ => io::Error::other(message),
    }
}
