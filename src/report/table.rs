//! The human-readable table: one line per service row, most bytes first, then the lines
//! that are not service rows, then totals that add up to every packet read.

use super::{human_bytes, thousands, Summary};
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

pub(super) fn write(s: &Summary, out: &mut dyn Write) -> io::Result<()> {
    let header = [
        "ROW",
        "PROTOCOLS",
        "SERVICES",
        "FLOWS",
        "PACKETS",
        "BYTES",
        "SHARE",
    ];
    let mut lines: Vec<[String; 7]> = Vec::with_capacity(s.services.len() + 4);
    for r in &s.services {
        let protocols: Vec<&str> = r.protocols.iter().map(String::as_str).collect();
        let services: Vec<&str> = r.services.iter().map(|x| x.name.as_str()).collect();
        lines.push([
            r.key(),
            abbreviate(&protocols, PROTOCOLS_WIDTH),
            abbreviate(&services, SERVICES_WIDTH),
            thousands(r.flows),
            thousands(r.packets),
            human_bytes(r.bytes),
            share(r.bytes, s.bytes),
        ]);
    }
    let other = |name: &str, flows: Option<u64>, packets: u64, bytes: u64| {
        [
            name.to_string(),
            String::new(),
            String::new(),
            flows.map_or(String::new(), thousands),
            thousands(packets),
            human_bytes(bytes),
            share(bytes, s.bytes),
        ]
    };
    lines.push(other(
        "unclassified",
        Some(s.unclassified.flows),
        s.unclassified.packets,
        s.unclassified.bytes,
    ));
    lines.push(other("not IP", None, s.not_ip.packets, s.not_ip.bytes));
    lines.push(other(
        "undecodable",
        None,
        s.undecodable.packets,
        s.undecodable.bytes,
    ));
    let total = other("total", Some(s.flows), s.packets, s.bytes);

    let mut widths = header.map(str::len);
    for line in lines.iter().chain(std::iter::once(&total)) {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let print = |out: &mut dyn Write, cells: &[String; 7]| -> io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            if i >= 3 {
                text.push_str(&format!("{cell:>w$}"));
            } else {
                text.push_str(&format!("{cell:<w$}"));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    print(out, &header.map(str::to_string))?;
    for line in &lines {
        print(out, line)?;
    }
    print(out, &total)?;
    for link in &s.undecodable.unsupported_link_types {
        writeln!(
            out,
            "note: {} packets of link type {} (DLT), which portscope does not decode",
            thousands(link.packets),
            link.dlt
        )?;
    }
    if s.evicted_flows > 0 {
        writeln!(
            out,
            "note: {} flows were ended early because the flow table was full (--max-flows); their counts are kept",
            thousands(s.evicted_flows)
        )?;
    }
    if s.orphan_fragments > 0 {
        writeln!(
            out,
            "note: {} IP fragments arrived without their first fragment and are counted as unclassified",
            thousands(s.orphan_fragments)
        )?;
    }
    Ok(())
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
