//! The human-readable table: one line per service row, most bytes first, then the lines
//! that are not service rows, then totals that add up to every packet read.

use super::{human_bytes, thousands, Row, Summary};
use std::io::{self, Write};

/// Widths past which lists of names are cut short with `+N`.
const PROTOCOLS_WIDTH: usize = 30;
const SERVICES_WIDTH: usize = 44;

/// Joins names until `width` would be passed, then says how many were left out:
/// `Server, Net Logon +6`.
pub fn abbreviate(names: &[&str], width: usize) -> String {
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        let rest = names.len() - i - 1;
        let sep = if i == 0 { "" } else { ", " };
        let suffix = if rest > 0 {
            format!(" +{rest}")
        } else {
            String::new()
        };
        if i > 0 && out.len() + sep.len() + name.len() + suffix.len() > width {
            out.push_str(&format!(" +{}", names.len() - i));
            return out;
        }
        out.push_str(sep);
        out.push_str(name);
    }
    out
}

fn share(bytes: u64, total: u64) -> String {
    if total == 0 {
        return "-".to_string();
    }
    format!("{:.1}%", bytes as f64 * 100.0 / total as f64)
}

const COLUMNS: usize = 8;
/// Columns from this one on are numbers, aligned right.
const FIRST_NUMBER: usize = 4;

fn service_line(r: &Row, key: String, total_bytes: u64) -> [String; COLUMNS] {
    let mut protocols: Vec<&str> = r.protocols.iter().map(String::as_str).collect();
    // An interface the interface table does not know is named by its UUID.
    if let (true, Some(i)) = (protocols.is_empty(), &r.interface) {
        protocols.push(&i.uuid);
    }
    // A pipe row names its pipe, and the interface if the table does not know it; a share
    // row its type.
    let pipe;
    if let Some(name) = &r.pipe {
        let unknown = r.interface.as_ref().filter(|i| i.name.is_none());
        pipe = match unknown {
            Some(i) => format!("\\pipe\\{name} {}", i.uuid),
            None => format!("\\pipe\\{name}"),
        };
        protocols.insert(0, &pipe);
    }
    if let Some(share) = r.share_type {
        protocols.insert(0, share);
    }
    let services: Vec<&str> = r.services.iter().map(|x| x.name.as_str()).collect();
    let guess = r.guess_prefix();
    [
        key,
        r.kind.to_string(),
        abbreviate(&protocols, PROTOCOLS_WIDTH),
        format!(
            "{guess}{}",
            abbreviate(&services, SERVICES_WIDTH.saturating_sub(guess.len()))
        ),
        thousands(r.flows),
        thousands(r.packets),
        human_bytes(r.bytes),
        share(r.bytes, total_bytes),
    ]
}

/// `--top`: the row's host pairs, under it (shares of the row's bytes).
fn pair_lines(r: &Row, lines: &mut Vec<[String; COLUMNS]>) {
    for p in r.top_pairs.iter().flatten() {
        lines.push(other_line(
            &format!("  {} <-> {}", p.a, p.b),
            Some(p.flows),
            p.packets,
            p.bytes,
            r.bytes,
        ));
    }
}

fn other_line(
    name: &str,
    flows: Option<u64>,
    packets: u64,
    bytes: u64,
    total: u64,
) -> [String; COLUMNS] {
    [
        name.to_string(),
        String::new(),
        String::new(),
        String::new(),
        flows.map_or(String::new(), thousands),
        thousands(packets),
        human_bytes(bytes),
        share(bytes, total),
    ]
}

/// Prints `lines` under `header` in aligned columns.
fn print_block(
    out: &mut dyn Write,
    header: [&str; COLUMNS],
    lines: &[[String; COLUMNS]],
) -> io::Result<()> {
    let header = header.map(str::to_string);
    let rows: Vec<&[String]> = std::iter::once(&header[..])
        .chain(lines.iter().map(|l| &l[..]))
        .collect();
    super::list::write_columns(out, &rows, FIRST_NUMBER)
}

pub(super) fn write(s: &Summary, out: &mut dyn Write) -> io::Result<()> {
    let header = [
        "ROW",
        "MATCH",
        "PROTOCOLS",
        "SERVICES",
        "FLOWS",
        "PACKETS",
        "BYTES",
        "SHARE",
    ];
    let mut lines: Vec<[String; COLUMNS]> = Vec::with_capacity(s.services.len() + 4);
    for r in &s.services {
        lines.push(service_line(r, r.key(), s.bytes));
        pair_lines(r, &mut lines);
    }
    lines.push(other_line(
        "unclassified",
        Some(s.unclassified.flows),
        s.unclassified.packets,
        s.unclassified.bytes,
        s.bytes,
    ));
    lines.push(other_line(
        "not IP",
        None,
        s.not_ip.packets,
        s.not_ip.bytes,
        s.bytes,
    ));
    lines.push(other_line(
        "undecodable",
        None,
        s.undecodable.packets,
        s.undecodable.bytes,
        s.bytes,
    ));
    lines.push(other_line(
        "total",
        Some(s.flows),
        s.packets,
        s.bytes,
        s.bytes,
    ));
    print_block(out, header, &lines)?;

    if !s.tunnels.is_empty() {
        writeln!(out)?;
        let mut header = header;
        header[0] = "INSIDE TUNNELS";
        print_block(out, header, &tunnel_lines(s))?;
    }
    for server in s.servers.iter().flatten() {
        writeln!(out)?;
        let mut lines: Vec<[String; COLUMNS]> = Vec::new();
        for r in &server.rows {
            lines.push(service_line(r, format!("  {}", r.key()), server.bytes));
        }
        lines.push(other_line(
            "  total",
            Some(server.flows),
            server.packets,
            server.bytes,
            server.bytes,
        ));
        let title = format!("SERVER {}", server.address);
        let mut header = header;
        header[0] = &title;
        print_block(out, header, &lines)?;
    }
    for note in super::notes::notes(s) {
        writeln!(out, "note: {note}")?;
    }
    Ok(())
}

/// The lines of the `INSIDE TUNNELS` block: each tunnel's packets (already counted above,
/// under the outer flows), then what they carried; shares are of the tunnel's bytes.
fn tunnel_lines(s: &Summary) -> Vec<[String; COLUMNS]> {
    let mut lines: Vec<[String; COLUMNS]> = Vec::new();
    for t in &s.tunnels {
        lines.push(other_line(
            &format!("{} tunnel", t.tunnel),
            Some(t.flows),
            t.packets,
            t.bytes,
            t.bytes,
        ));
        for r in s.tunneled.iter().filter(|r| r.tunnel == Some(t.tunnel)) {
            let key = format!("  {}", r.key());
            let mut line = service_line(r, key, t.bytes);
            line[1] = format!("inner {}", r.inner_match.unwrap_or_default());
            lines.push(line);
        }
        if t.unclassified.packets > 0 {
            lines.push(other_line(
                "  unclassified",
                Some(t.unclassified.flows),
                t.unclassified.packets,
                t.unclassified.bytes,
                t.bytes,
            ));
        }
        if t.not_ip.packets > 0 {
            lines.push(other_line(
                "  no inner IP",
                None,
                t.not_ip.packets,
                t.not_ip.bytes,
                t.bytes,
            ));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::abbreviate;

    #[test]
    fn abbreviations() {
        assert_eq!(abbreviate(&["Server"], 10), "Server");
        assert_eq!(
            abbreviate(&["Server", "Net Logon", "Fax Service", "DFS"], 20),
            "Server, Net Logon +2"
        );
        assert_eq!(
            abbreviate(&["A very long service name"], 5),
            "A very long service name"
        );
        assert_eq!(abbreviate(&[], 5), "");
    }
}
