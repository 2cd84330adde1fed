//! `--format html`: one self-contained page for an analyst: the totals, a bar chart of bytes
//! per row, the top rows over time, the servers, tunnels and announcements, and what each
//! match kind means in plain words. Charts are inline SVG; nothing is fetched and no script
//! runs (no `http:`, `https:` or `//` anywhere, so it reads the same offline or mailed on).
//!
//! Every number a test reads sits in an element with a class naming it (`packets`,
//! `bytes`, ...), written in full with thousands separators.

use super::live::{same_row, INTERVAL_TOP_ROWS};
use super::{human_bytes, thousands, Row, Summary};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::SystemTime;

/// Rows the bar chart shows at most (the table lists them all).
const CHART_ROWS: usize = 25;
/// Servers the page shows at most, most bytes first (the JSON report lists them all).
const PAGE_SERVERS: usize = 100;
const COLORS: [&str; 6] = [
    "#3367d6", "#e8710a", "#1e8e3e", "#d93025", "#9334e6", "#80868b",
];

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a match kind means, for someone who has not read the README.
pub fn match_words(kind: &str) -> String {
    match kind {
        "port" => "One of the flow's ports is listed in the Windows service catalog for these services: a certain match on the port.".into(),
        "range" => "Neither port is listed on its own, but both fall in a port range the catalog lists (such as the dynamic RPC range): a guess among the services that use the range.".into(),
        "ip-protocol" => "Matched by the IP protocol (ICMP, GRE, ESP or AH), which has no ports.".into(),
        "epm" => "The DCE/RPC endpoint mapper told a client to connect to this port for this interface; the service is the one that owns the interface.".into(),
        "rpc-bind" => "The connection's first DCE/RPC message named this interface; the service is the one that owns the interface.".into(),
        "smb-pipe" => "The SMB messages of this connection that used this named pipe; once a DCE/RPC bind was seen on the pipe, the service is the one that owns the bound interface, else the one that listens on the pipe.".into(),
        "smb-share" => "The SMB messages of this connection that used a disk share (the Server service's file sharing) or a print share (the Print Spooler).".into(),
        "smb-encrypted" => "Encrypted or compressed SMB3 messages: nothing in them can be read, so every service of the port is still a candidate.".into(),
        "expectation" => "An FTP control connection (or a TFTP request) announced this connection before it started.".into(),
        "inner" => "A flow inside a tunnel, matched by the same rules as the flows outside.".into(),
        other => format!("Matched by what the traffic itself carried ({other})."),
    }
}

fn row_label(r: &Row) -> String {
    let name = r
        .pipe
        .as_ref()
        .map(|p| format!("\\pipe\\{p}"))
        .or_else(|| r.share_type.map(str::to_string))
        .or_else(|| r.protocols.first().cloned())
        .or_else(|| r.interface.as_ref().map(|i| i.uuid.clone()))
        .unwrap_or_default();
    let label = format!("{} {}", r.key(), name);
    // The chart's label column is about 40 characters wide.
    match label.char_indices().nth(38) {
        Some((cut, _)) => format!("{}…", &label[..cut]),
        None => label,
    }
}

/// A `<tr>` of a service row (`class="service"`).
fn row_html(out: &mut String, r: &Row, total_bytes: u64) {
    let services: Vec<&str> = r.services.iter().map(|s| s.name.as_str()).collect();
    let share = if total_bytes == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", r.bytes as f64 * 100.0 / total_bytes as f64)
    };
    let interface = r
        .interface
        .as_ref()
        .map_or(String::new(), |i| i.uuid.clone());
    let _ = writeln!(
        out,
        "<tr class=\"service\" data-row=\"{}\" data-match=\"{}\" data-interface=\"{}\" data-tunnel=\"{}\"><td>{}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td class=\"flows\">{}</td><td class=\"packets\">{}</td><td class=\"bytes\">{}</td><td>{}</td><td>{}</td></tr>",
        esc(&r.key()),
        esc(r.kind),
        esc(&interface),
        r.tunnel.map_or(String::new(), |t| t.to_string()),
        esc(&r.key()),
        esc(&match_words(r.kind)),
        esc(r.inner_match.map_or(r.kind.to_string(), |m| format!("inner {m}")).as_str()),
        esc(&r.protocols.join(", ")),
        esc(&services.join(", ")),
        thousands(r.flows),
        thousands(r.packets),
        thousands(r.bytes),
        human_bytes(r.bytes),
        share,
    );
}

const ROW_HEADER: &str = "<tr><th>Row</th><th>Match</th><th>Protocols</th><th>Services</th><th>Flows</th><th>Packets</th><th>Bytes</th><th>Size</th><th>Share</th></tr>\n";

fn bar_chart(out: &mut String, rows: &[Row]) {
    let shown = &rows[..rows.len().min(CHART_ROWS)];
    let max = shown.iter().map(|r| r.bytes).max().unwrap_or(0).max(1);
    let (label_w, bar_w, h) = (260.0, 520.0, 20.0);
    let height = h * shown.len() as f64 + 10.0;
    let _ = writeln!(
        out,
        "<svg class=\"bars\" width=\"900\" height=\"{height}\" role=\"img\" aria-label=\"bytes per row\">"
    );
    for (i, r) in shown.iter().enumerate() {
        let y = i as f64 * h + 5.0;
        let w = (r.bytes as f64 / max as f64 * bar_w).max(1.0);
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(&row_label(r)),
            label_w,
            y + 2.0,
            h - 4.0,
            COLORS[0],
            label_w + w + 6.0,
            y + 14.0,
            human_bytes(r.bytes),
        );
    }
    out.push_str("</svg>\n");
    if rows.len() > shown.len() {
        let _ = writeln!(
            out,
            "<p>and {} more rows, in the table below.</p>",
            rows.len() - shown.len()
        );
    }
}

/// The bytes of each top row in each interval, as lines, with a table of the same numbers.
fn time_chart(out: &mut String, intervals: &[((SystemTime, SystemTime), Summary)], top: &[&Row]) {
    let Some(((first, _), _)) = intervals.first() else {
        out.push_str("<p>No packets.</p>\n");
        return;
    };
    let rel = |t: &SystemTime| t.duration_since(*first).unwrap_or_default().as_secs_f64();
    let series: Vec<Vec<u64>> = top
        .iter()
        .map(|r| {
            intervals
                .iter()
                .map(|(_, s)| {
                    s.services
                        .iter()
                        .find(|x| same_row(x, r))
                        .map_or(0, |x| x.bytes)
                })
                .collect()
        })
        .collect();
    let max = series.iter().flatten().copied().max().unwrap_or(0).max(1);
    let (left, top_m, w, h) = (70.0, 10.0, 780.0, 220.0);
    let n = intervals.len();
    let x = |i: usize| {
        left + if n > 1 {
            i as f64 * w / (n - 1) as f64
        } else {
            w / 2.0
        }
    };
    let y = |v: u64| top_m + h - v as f64 / max as f64 * h;
    let _ = writeln!(
        out,
        "<svg class=\"time\" width=\"900\" height=\"{}\" role=\"img\" aria-label=\"bytes of the top rows over time\">",
        h + 50.0
    );
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/><line x1=\"{left}\" y1=\"{top_m}\" x2=\"{left}\" y2=\"{}\" stroke=\"#999\"/>",
        top_m + h,
        left + w,
        top_m + h,
        top_m + h
    );
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        left - 4.0,
        top_m + 10.0,
        human_bytes(max),
        left - 4.0,
        top_m + h
    );
    let mut ticks = vec![0, n / 2, n - 1];
    ticks.dedup();
    for i in ticks {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{:.3} s</text>",
            x(i),
            top_m + h + 18.0,
            rel(&intervals[i].0 .0)
        );
    }
    for (k, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
            COLORS[k % COLORS.len()],
            points.join(" ")
        );
    }
    out.push_str("</svg>\n<ul class=\"legend\">\n");
    for (k, r) in top.iter().enumerate() {
        let _ = writeln!(
            out,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
            COLORS[k % COLORS.len()],
            esc(&row_label(r))
        );
    }
    out.push_str("</ul>\n<details><summary>The numbers (bytes per interval)</summary>\n<table class=\"intervals\"><tr><th>Seconds</th><th>Packets</th>");
    for r in top {
        let _ = write!(out, "<th>{}</th>", esc(&r.key()));
    }
    out.push_str("</tr>\n");
    for (i, ((start, end), s)) in intervals.iter().enumerate() {
        let _ = write!(
            out,
            "<tr class=\"interval\"><td>{:.3}-{:.3}</td><td class=\"packets\">{}</td>",
            rel(start),
            rel(end),
            thousands(s.packets)
        );
        for column in &series {
            let _ = write!(out, "<td class=\"bytes\">{}</td>", thousands(column[i]));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></details>\n");
}

fn counts_row(
    out: &mut String,
    id: &str,
    name: &str,
    flows: Option<u64>,
    packets: u64,
    bytes: u64,
) {
    let _ = writeln!(
        out,
        "<tr id=\"{id}\"><th>{name}</th><td class=\"flows\">{}</td><td class=\"packets\">{}</td><td class=\"bytes\">{}</td><td>{}</td></tr>",
        flows.map_or(String::new(), thousands),
        thousands(packets),
        thousands(bytes),
        human_bytes(bytes)
    );
}

/// Writes the page.
///
/// # Errors
/// Any error of `out`.
pub fn write_html(
    s: &Summary,
    intervals: &[((SystemTime, SystemTime), Summary)],
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut h = String::with_capacity(64 * 1024);
    h.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>portscope report</title>\n<style>\n",
        "body{font-family:sans-serif;margin:2em;color:#202124}table{border-collapse:collapse;margin:.5em 0}",
        "th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}td.flows,td.packets,td.bytes{text-align:right}",
        "svg text{font-size:12px;fill:#202124}.swatch{display:inline-block;width:1em;height:1em;margin-right:.4em}",
        ".legend{list-style:none;padding:0}h2{border-bottom:1px solid #ccc}\n",
        "</style></head><body>\n<h1>portscope report</h1>\n"
    ));
    h.push_str("<h2>Inputs</h2>\n<table class=\"inputs\"><tr><th>Capture</th><th>Link type</th><th>Packets</th><th>Bytes</th><th>Note</th></tr>\n");
    for i in &s.inputs {
        let mut note = i.error.clone().unwrap_or_default();
        if let Some(f) = i.filtered {
            let _ = write!(note, "the filter left out {} packets", thousands(f.packets));
        }
        let _ = writeln!(
            h,
            "<tr class=\"input\"><td>{}</td><td>{}</td><td class=\"packets\">{}</td><td class=\"bytes\">{}</td><td>{}</td></tr>",
            esc(&i.name),
            esc(&i
                .link_types
                .iter()
                .map(|l| format!("{} ({})", l.name, l.dlt))
                .collect::<Vec<_>>()
                .join(", ")),
            thousands(i.packets),
            thousands(i.bytes),
            esc(&note)
        );
    }
    h.push_str("</table>\n<h2>Totals</h2>\n<table class=\"totals\"><tr><th></th><th>Flows</th><th>Packets</th><th>Bytes</th><th>Size</th></tr>\n");
    let rows_total = s.services.iter().fold((0, 0, 0), |(f, p, b), r| {
        (f + r.flows, p + r.packets, b + r.bytes)
    });
    counts_row(
        &mut h,
        "total",
        "Everything read",
        Some(s.flows),
        s.packets,
        s.bytes,
    );
    counts_row(
        &mut h,
        "classified",
        "In service rows",
        Some(rows_total.0),
        rows_total.1,
        rows_total.2,
    );
    counts_row(
        &mut h,
        "unclassified",
        "IP, no service",
        Some(s.unclassified.flows),
        s.unclassified.packets,
        s.unclassified.bytes,
    );
    counts_row(
        &mut h,
        "not-ip",
        "Not IP",
        None,
        s.not_ip.packets,
        s.not_ip.bytes,
    );
    counts_row(
        &mut h,
        "undecodable",
        "Undecodable",
        None,
        s.undecodable.packets,
        s.undecodable.bytes,
    );
    h.push_str("</table>\n<h2>Bytes per service row</h2>\n");
    bar_chart(&mut h, &s.services);
    h.push_str("<h2>The top rows over time</h2>\n");
    let top: Vec<&Row> = s.services.iter().take(INTERVAL_TOP_ROWS).collect();
    time_chart(&mut h, intervals, &top);
    h.push_str("<h2>Service rows</h2>\n<p>Hover over a match kind for what it means; the list is at the end.</p>\n<table class=\"services\">\n");
    h.push_str(ROW_HEADER);
    for r in &s.services {
        row_html(&mut h, r, s.bytes);
    }
    h.push_str("</table>\n");
    if let Some(servers) = &s.servers {
        h.push_str("<h2>Servers</h2>\n<p>For a TCP connection, the host that answered the handshake; otherwise the host on the row's port.</p>\n");
        for v in servers.iter().take(PAGE_SERVERS) {
            let _ = writeln!(
                h,
                "<section class=\"server\" data-address=\"{}\"><h3>{}</h3><p><span class=\"flows\">{}</span> flows, <span class=\"packets\">{}</span> packets, <span class=\"bytes\">{}</span> bytes ({})</p><table>",
                esc(&v.address.to_string()),
                esc(&v.address.to_string()),
                thousands(v.flows),
                thousands(v.packets),
                thousands(v.bytes),
                human_bytes(v.bytes)
            );
            h.push_str(ROW_HEADER);
            for r in &v.rows {
                row_html(&mut h, r, v.bytes);
            }
            h.push_str("</table></section>\n");
        }
        if servers.len() > PAGE_SERVERS {
            let _ = writeln!(
                h,
                "<p>and {} more servers, in the JSON report (<code>--servers --format json</code>).</p>",
                servers.len() - PAGE_SERVERS
            );
        }
    }
    h.push_str("<h2>Tunnels</h2>\n");
    if s.tunnels.is_empty() {
        h.push_str("<p>No tunnels.</p>\n");
    } else {
        h.push_str("<p>These packets are also counted above, under their outer flows.</p>\n<table class=\"tunnels\"><tr><th>Tunnel</th><th>Flows inside</th><th>Packets</th><th>Bytes</th></tr>\n");
        for t in &s.tunnels {
            let _ = writeln!(
                h,
                "<tr class=\"tunnel\" data-tunnel=\"{}\"><td>{}</td><td class=\"flows\">{}</td><td class=\"packets\">{}</td><td class=\"bytes\">{}</td></tr>",
                t.tunnel,
                t.tunnel,
                thousands(t.flows),
                thousands(t.packets),
                thousands(t.bytes)
            );
        }
        h.push_str("</table>\n<table class=\"tunneled\">\n");
        h.push_str(ROW_HEADER);
        for r in &s.tunneled {
            row_html(&mut h, r, s.bytes);
        }
        h.push_str("</table>\n");
    }
    let e = &s.expectations;
    let _ = writeln!(
        h,
        "<h2>Announcements</h2>\n<p>Connections announced by the DCE/RPC endpoint mapper, FTP or TFTP: <span class=\"announced\">{}</span> announced, <span class=\"matched\">{}</span> flows labelled by them, <span class=\"unused\">{}</span> unused.</p>",
        thousands(e.announced),
        thousands(e.matched),
        thousands(e.unused)
    );
    let mut notes = Vec::new();
    if s.evicted_flows > 0 {
        notes.push(format!(
            "{} flows were ended early because the flow table was full; their counts are kept.",
            thousands(s.evicted_flows)
        ));
    }
    if s.orphan_fragments > 0 {
        notes.push(format!("{} IP fragments arrived without their first fragment and are counted as IP with no service.", thousands(s.orphan_fragments)));
    }
    if s.unnamed_binds > 0 {
        notes.push(format!("{} DCE/RPC binds named more unknown interfaces than portscope names; their connections keep their port rows.", thousands(s.unnamed_binds)));
    }
    for n in notes {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&n));
    }
    h.push_str("<h2>How rows are matched</h2>\n<dl class=\"kinds\">\n");
    let mut kinds: Vec<&str> = s
        .services
        .iter()
        .chain(&s.tunneled)
        .map(|r| r.kind)
        .collect();
    for k in [
        "port",
        "range",
        "ip-protocol",
        "epm",
        "rpc-bind",
        "expectation",
        "inner",
    ] {
        kinds.push(k);
    }
    let mut seen = Vec::new();
    for k in kinds {
        if !seen.contains(&k) {
            seen.push(k);
            let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&match_words(k)));
        }
    }
    h.push_str("</dl>\n<p>Bytes are lengths on the wire. Every packet read is counted once: the service rows, IP with no service, not IP and undecodable add up to everything read.</p>\n</body></html>\n");
    out.write_all(h.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("a<b> & \"c\" 'd'"),
            "a&lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;"
        );
    }

    #[test]
    fn every_kind_has_words() {
        let kinds = crate::catalog::MatchKind::ALL.map(|k| k.as_str());
        for k in kinds.iter().chain(&["inner"]) {
            assert!(!match_words(k).contains(&format!("({k})")), "{k}");
        }
        assert_eq!(
            match_words("a-kind-to-come"),
            "Matched by what the traffic itself carried (a-kind-to-come)."
        );
    }
}
