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
