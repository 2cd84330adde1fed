//! Live reports: one NDJSON line per interval (the classify schema plus the interval and the
//! drop counters), or a table redrawn in place.

use super::Summary;
use crate::capture::Drops;
use serde::Serialize;
use std::io::{self, Write};
use std::time::SystemTime;

/// Drop counters of a live report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LiveDrops {
    /// libpcap: packets received by the capture, since it started.
    pub received: u64,
    /// libpcap: dropped by the kernel (the capture buffer was full), since it started.
    pub kernel: u64,
    /// libpcap: dropped by the interface or its driver, since it started.
    pub interface: u64,
    /// Read but shed by portscope because its workers were behind, in this report's span.
    pub shed: u64,
}

impl LiveDrops {
    pub fn new(drops: Option<Drops>, shed: u64) -> LiveDrops {
        let d = drops.unwrap_or_default();
        LiveDrops {
            received: d.received,
            kernel: d.kernel,
            interface: d.interface,
            shed,
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    /// Seconds since the epoch.
    interval_start: f64,
    interval_end: f64,
    drops: LiveDrops,
    #[serde(rename = "final")]
    is_final: bool,
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_micros() as f64) / 1e6)
}

/// One NDJSON line.
///
/// # Errors
/// Any error of `out`.
pub fn write_live_json(
    summary: &Summary,
    span: (SystemTime, SystemTime),
    drops: LiveDrops,
    is_final: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let line = Line {
        summary,
        interval_start: seconds(span.0),
        interval_end: seconds(span.1),
        drops,
        is_final,
    };
    serde_json::to_writer(&mut *out, &line)?;
    writeln!(out)
}

/// The interval's table (when given) and the running total's, under a header line.
///
/// # Errors
/// Any error of `out`.
pub fn write_live_table(
    title: &str,
    interval: Option<&Summary>,
    total: &Summary,
    drops: LiveDrops,
    redraw: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    if redraw {
        // Clear the screen and go home, so the report is redrawn in place.
        write!(out, "\x1b[2J\x1b[H")?;
    }
    writeln!(out, "{title}")?;
    writeln!(
        out,
        "drops: {} received, {} by the kernel, {} by the interface, {} shed by portscope",
        drops.received, drops.kernel, drops.interface, drops.shed
    )?;
    if let Some(interval) = interval {
        writeln!(out, "\nthis interval:")?;
        super::table::write(interval, out)?;
    }
    writeln!(out, "\nsince the start:")?;
    super::table::write(total, out)?;
    if !redraw {
        writeln!(out)?;
    }
    out.flush()
}

/// A row's match kind with what tells it from the other rows of its port: its pipe,
/// share type or interface.
fn qualified_kind(r: &super::Row) -> String {
    match (&r.pipe, r.share_type, &r.interface) {
        (Some(pipe), _, _) => format!("{} \\pipe\\{pipe}", r.kind),
        (None, Some(share), _) => format!("{} {share}", r.kind),
        (None, None, Some(i)) => format!("{} {}", r.kind, i.name.as_ref().unwrap_or(&i.uuid)),
        (None, None, None) => r.kind.to_string(),
    }
}

/// How many of the report's top rows `write_interval_table` follows.
pub const INTERVAL_TOP_ROWS: usize = 5;

/// Whether two rows are the same service row (the counts aside).
pub(super) fn same_row(a: &super::Row, b: &super::Row) -> bool {
    // The whole key: two pipes (or shares, or interfaces) on one port are two rows.
    a.transport == b.transport
        && a.ports == b.ports
        && a.kind == b.kind
        && a.tunnel == b.tunnel
        && a.inner_match == b.inner_match
        && a.interface.as_ref().map(|i| &i.uuid) == b.interface.as_ref().map(|i| &i.uuid)
        && a.pipe == b.pipe
        && a.share_type == b.share_type
        && a.protocols == b.protocols
}

/// `classify --interval` as a table: one compact line per interval per top row of `total`
/// (its [`INTERVAL_TOP_ROWS`] rows with most bytes), times in seconds since the first
/// packet, then the report of the whole capture.
///
/// # Errors
/// Any error of `out`.
pub fn write_interval_table(
    intervals: &[((SystemTime, SystemTime), Summary)],
    total: &Summary,
    out: &mut dyn Write,
) -> io::Result<()> {
    let Some(((first, _), _)) = intervals.first() else {
        return super::table::write(total, out);
    };
    let rel = |t: &SystemTime| t.duration_since(*first).unwrap_or_default().as_secs_f64();
    let top: Vec<&super::Row> = total.services.iter().take(INTERVAL_TOP_ROWS).collect();
    writeln!(
        out,
        "intervals from the first packet at {:.6} s since the epoch; the top {} rows of the capture in each",
        seconds(*first),
        top.len()
    )?;
    let mut lines = Vec::new();
    for ((start, end), s) in intervals {
        let span = format!("{:.3}-{:.3}", rel(start), rel(end));
        if top.is_empty() {
            lines.push([
                span.clone(),
                String::new(),
                String::new(),
                s.packets.to_string(),
                super::human_bytes(s.bytes),
            ]);
        }
        for r in &top {
            let (packets, bytes) = s
                .services
                .iter()
                .find(|x| same_row(x, r))
                .map_or((0, 0), |x| (x.packets, x.bytes));
            lines.push([
                span.clone(),
                r.key(),
                qualified_kind(r),
                super::thousands(packets),
                super::human_bytes(bytes),
            ]);
        }
    }
    let header = ["SECONDS", "ROW", "MATCH", "PACKETS", "BYTES"].map(str::to_string);
    let rows: Vec<&[String]> = std::iter::once(&header[..])
        .chain(lines.iter().map(|l| &l[..]))
        .collect();
    super::list::write_columns(out, &rows, 3)?;
    writeln!(out, "\nthe whole capture:")?;
    super::table::write(total, out)
}
