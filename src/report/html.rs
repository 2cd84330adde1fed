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

/// The charts' drawing width; they scale to the page's.
const PAGE_W: f64 = 1200.0;
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
        "smb-session" => "SMB messages that address no share or pipe (negotiate, session setup, logoff, echo): the SMB server answers them itself, which is the Server service. The port's other candidates are reached through the shares and pipes that follow.".into(),
        "expectation" => "An FTP control connection (or a TFTP request) announced this connection before it started.".into(),
        "inner" => "A flow inside a tunnel, matched by the same rules as the flows outside.".into(),
        other => format!("Matched by what the traffic itself carried ({other})."),
    }
}

/// What names a row beyond its ports: its pipe, share type or DCE/RPC interface.
fn row_name(r: &Row) -> String {
    let interface = r
        .interface
        .as_ref()
        .map(|i| i.name.clone().unwrap_or_else(|| i.uuid.clone()));
    match (&r.pipe, r.share_type, interface) {
        (Some(p), _, Some(i)) => format!("\\pipe\\{p} {i}"),
        (Some(p), _, None) => format!("\\pipe\\{p}"),
        (None, Some(share), _) => format!("{share} share"),
        (None, None, Some(i)) => i,
        (None, None, None) => String::new(),
    }
}

/// The chart labels of `rows`: the row, its name or first protocol, at most 60 characters,
/// and told apart by a number where two would read the same.
fn row_labels<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Vec<String> {
    let mut seen: hashbrown::HashMap<String, usize> = hashbrown::HashMap::new();
    rows.into_iter()
        .map(|r| {
            let name = Some(row_name(r))
                .filter(|n| !n.is_empty())
                .or_else(|| r.protocols.first().cloned())
                .unwrap_or_default();
            let label = format!("{} {} {}", r.key(), r.kind, name);
            let label = match label.char_indices().nth(59) {
                Some((cut, _)) => format!("{}…", &label[..cut]),
                None => label,
            };
            let n = seen.entry(label.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                label
            } else {
                format!("{label} ({n})")
            }
        })
        .collect()
}

/// A `<tr>` of a service row (`class="service"`).
fn row_html(out: &mut String, r: &Row, total_bytes: u64) {
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
        "<tr class=\"service\" data-row=\"{}\" data-match=\"{}\" data-interface=\"{}\" data-tunnel=\"{}\"><td>{}</td><td class=\"name\">{}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td class=\"flows\">{}</td><td class=\"packets\">{}</td><td class=\"bytes\">{}</td><td>{}</td><td>{}</td></tr>",
        esc(&r.key()),
        esc(r.kind),
        esc(&interface),
        r.tunnel.map_or(String::new(), |t| t.to_string()),
        esc(&r.key()),
        esc(&row_name(r)),
        esc(&match_words(r.kind)),
        esc(r.inner_match.map_or(r.kind.to_string(), |m| format!("inner {m}")).as_str()),
        esc(&r.protocols.join(", ")),
        esc(&r.service_words(", ")),
        thousands(r.flows),
        thousands(r.packets),
        thousands(r.bytes),
        human_bytes(r.bytes),
        share,
    );
}

const ROW_HEADER: &str = "<tr><th>Row</th><th>Pipe, share or interface</th><th>Match</th><th>Protocols</th><th>Services</th><th>Flows</th><th>Packets</th><th>Bytes</th><th>Size</th><th>Share</th></tr>\n";

fn bar_chart(out: &mut String, rows: &[Row]) {
    let shown = &rows[..rows.len().min(CHART_ROWS)];
    let labels = row_labels(shown);
    let max = shown.iter().map(|r| r.bytes).max().unwrap_or(0).max(1);
    let (label_w, bar_w, h) = (430.0, 650.0, 20.0);
    let height = h * shown.len() as f64 + 10.0;
    // As wide as the page: the drawing scales with it.
    let _ = writeln!(
        out,
        "<svg class=\"bars\" width=\"100%\" viewBox=\"0 0 {PAGE_W} {height}\" role=\"img\" aria-label=\"bytes per row\">"
    );
    for (i, r) in shown.iter().enumerate() {
        let y = i as f64 * h + 5.0;
        let w = (r.bytes as f64 / max as f64 * bar_w).max(1.0);
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            label_w - 6.0,
            y + 14.0,
            esc(&labels[i]),
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
/// A time as the chart's ticks and the interval table show it: `2024-05-01 13:45:07.123`
/// (UTC) with the date, `13:45:07.123` without.
fn wall(t: &SystemTime, with_date: bool) -> String {
    let text = humantime::format_rfc3339_millis(*t).to_string();
    let (date, time) = text.split_once('T').unwrap_or(("", &text));
    let time = time.trim_end_matches('Z');
    if with_date {
        format!("{date} {time}")
    } else {
        time.to_string()
    }
}

/// Per row of `top`, its bytes in each interval.
fn series_of(intervals: &[((SystemTime, SystemTime), Summary)], top: &[&Row]) -> Vec<Vec<u64>> {
    top.iter()
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
        .collect()
}

fn time_chart(out: &mut String, intervals: &[((SystemTime, SystemTime), Summary)], top: &[&Row]) {
    let Some(((first, _), _)) = intervals.first() else {
        out.push_str("<p>No packets.</p>\n");
        return;
    };
    let _ = first;
    let series = series_of(intervals, top);
    let max = series.iter().flatten().copied().max().unwrap_or(0).max(1);
    let (left, top_m, w, h) = (80.0, 10.0, PAGE_W - 140.0, 260.0);
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
        "<svg class=\"time\" width=\"100%\" viewBox=\"0 0 {PAGE_W} {}\" role=\"img\" aria-label=\"bytes of the top rows over time\">",
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
    let mut ticks = vec![0, n / 4, n / 2, 3 * n / 4, n - 1];
    ticks.dedup();
    for (k, &i) in ticks.iter().enumerate() {
        let anchor = match k {
            0 => "start",
            _ if i == n - 1 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            x(i),
            top_m + h + 18.0,
            wall(&intervals[i].0 .0, k == 0)
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
    let labels = row_labels(top.iter().copied());
    for (k, label) in labels.iter().enumerate() {
        let _ = writeln!(
            out,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
            COLORS[k % COLORS.len()],
            esc(label)
        );
    }
    out.push_str("</ul>\n");
    interval_table(out, intervals, &labels, &series);
}

/// The chart's numbers: bytes of each of its rows per interval.
fn interval_table(
    out: &mut String,
    intervals: &[((SystemTime, SystemTime), Summary)],
    labels: &[String],
    series: &[Vec<u64>],
) {
    out.push_str("<details open><summary>The numbers (bytes per interval)</summary>\n<table class=\"intervals\"><tr><th>Interval (UTC)</th><th>Packets</th>");
    for label in labels {
        let _ = write!(out, "<th>{}</th>", esc(label));
    }
    out.push_str("</tr>\n");
    for (i, ((start, end), s)) in intervals.iter().enumerate() {
        let _ = write!(
            out,
            "<tr class=\"interval\"><td>{} to {}</td><td class=\"packets\">{}</td>",
            wall(start, i == 0),
            wall(end, false),
            thousands(s.packets)
        );
        for column in series {
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

/// The inputs by file name: the first three, then how many more.
fn captures_named(s: &Summary) -> String {
    let names: Vec<&str> = s
        .inputs
        .iter()
        .map(|i| {
            std::path::Path::new(&i.name)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(&i.name)
        })
        .collect();
    match names.len() {
        0 => "no capture".to_string(),
        1..=3 => names.join(", "),
        n => format!("{} and {} more", names[..3].join(", "), n - 3),
    }
}

/// The earliest and latest packet times over the inputs, in seconds since the epoch.
fn time_span(s: &Summary) -> Option<(f64, f64)> {
    let first = s
        .inputs
        .iter()
        .filter_map(|i| i.first_time)
        .reduce(f64::min)?;
    let last = s
        .inputs
        .iter()
        .filter_map(|i| i.last_time)
        .reduce(f64::max)?;
    Some((first, last))
}

/// A time as `2024-05-01 13:45:07.123456` (UTC).
fn utc(seconds: f64) -> String {
    // The report's times are whole microseconds.
    let micros = (seconds.max(0.0) * 1e6).round() as u64;
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros);
    humantime::format_rfc3339_micros(t)
        .to_string()
        .trim_end_matches('Z')
        .replace('T', " ")
}

/// A duration in the largest unit that keeps it readable.
fn duration_words(seconds: f64) -> String {
    match seconds {
        s if s < 1.0 => format!("{:.3} s", s),
        s if s < 120.0 => format!("{:.1} s", s),
        s if s < 7200.0 => format!("{:.1} minutes", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} hours", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
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
    head_html(&mut h, s);
    inputs_html(&mut h, s);
    totals_html(&mut h, s);
    h.push_str("<h2>Bytes per service row</h2>\n");
    bar_chart(&mut h, &s.services);
    h.push_str("<h2>The top rows over time</h2>\n");
    let top: Vec<&Row> = s.services.iter().take(INTERVAL_TOP_ROWS).collect();
    time_chart(&mut h, intervals, &top);
    h.push_str("<h2>Service rows</h2>\n<p>What each match kind means is listed at the end of the page.</p>\n<table class=\"services\">\n");
    h.push_str(ROW_HEADER);
    for r in &s.services {
        row_html(&mut h, r, s.bytes);
    }
    h.push_str("</table>\n");
    if let Some(servers) = &s.servers {
        servers_html(&mut h, servers);
    }
    tunnels_html(&mut h, s);
    let e = &s.expectations;
    let _ = writeln!(
        h,
        "<h2>Announcements</h2>\n<p>Connections announced by the DCE/RPC endpoint mapper, FTP or TFTP: <span class=\"announced\">{}</span> announced, <span class=\"matched\">{}</span> flows labelled by them, <span class=\"unused\">{}</span> unused.</p>",
        thousands(e.announced),
        thousands(e.matched),
        thousands(e.unused)
    );
    for n in super::notes::notes(s) {
        let _ = writeln!(h, "<p class=\"note\">{}.</p>", esc(&n));
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

/// The page's head, title and time span.
fn head_html(h: &mut String, s: &Summary) {
    let title = format!("portscope report: {}", esc(&captures_named(s)));
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>\n"
    );
    h.push_str(concat!(
        "body{font-family:sans-serif;margin:2em;color:#202124}table{border-collapse:collapse;margin:.5em 0}",
        "th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}td.flows,td.packets,td.bytes{text-align:right}",
        "svg text{font-size:12px;fill:#202124}.swatch{display:inline-block;width:1em;height:1em;margin-right:.4em}",
        ".legend{list-style:none;padding:0}h2{border-bottom:1px solid #ccc}\n",
        "</style></head><body>\n"
    ));
    let _ = writeln!(h, "<h1>{title}</h1>");
    if let Some((first, last)) = time_span(s) {
        let _ = writeln!(
            h,
            "<p class=\"span\">Packets from <time class=\"first\">{}</time> to <time class=\"last\">{}</time> UTC ({})</p>",
            utc(first),
            utc(last),
            duration_words(last - first)
        );
    }
}

/// The inputs, one row each.
fn inputs_html(h: &mut String, s: &Summary) {
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
    h.push_str("</table>\n");
}

/// Everything read, and where it went.
fn totals_html(h: &mut String, s: &Summary) {
    h.push_str("<h2>Totals</h2>\n<table class=\"totals\"><tr><th></th><th>Flows</th><th>Packets</th><th>Bytes</th><th>Size</th></tr>\n");
    let rows_total = s.services.iter().fold((0, 0, 0), |(f, p, b), r| {
        (f + r.flows, p + r.packets, b + r.bytes)
    });
    counts_row(
        h,
        "total",
        "Everything read",
        Some(s.flows),
        s.packets,
        s.bytes,
    );
    counts_row(
        h,
        "classified",
        "In service rows",
        Some(rows_total.0),
        rows_total.1,
        rows_total.2,
    );
    counts_row(
        h,
        "unclassified",
        "IP, no service",
        Some(s.unclassified.flows),
        s.unclassified.packets,
        s.unclassified.bytes,
    );
    counts_row(
        h,
        "not-ip",
        "Not IP",
        None,
        s.not_ip.packets,
        s.not_ip.bytes,
    );
    counts_row(
        h,
        "undecodable",
        "Undecodable",
        None,
        s.undecodable.packets,
        s.undecodable.bytes,
    );
    h.push_str("</table>\n");
}

/// The servers (`--servers`), the first [`PAGE_SERVERS`] of them.
fn servers_html(h: &mut String, servers: &[super::Server]) {
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
            row_html(h, r, v.bytes);
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

/// The tunnels and the rows of the flows inside them.
fn tunnels_html(h: &mut String, s: &Summary) {
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
            row_html(h, r, s.bytes);
        }
        h.push_str("</table>\n");
    }
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
