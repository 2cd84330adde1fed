//! `portscope live` and `portscope interfaces`.

use super::args::{LiveArgs, LiveFormat};
use super::catalog_cmd;
use anyhow::bail;
use portscope::capture::InputReport;
use portscope::capture::{interfaces as list, LiveCapture, LiveOptions, Source};
use portscope::catalog::PortTable;
use portscope::decode::Link;
use portscope::flow::Tally;
use portscope::flow::Timeouts;
use portscope::pipeline::{self, Config, Interval, Live};
use portscope::report::{write_live_json, write_live_table, LiveDrops, Summary};
use portscope::worker::WorkerConfig;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub(super) fn seconds(name: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value > 0.0 && value.is_finite()) {
        bail!("{name} must be a positive number of seconds");
    }
    Ok(Duration::from_secs_f64(value))
}

/// `--active-timeout` of `live` when not given (seconds): what NetFlow exporters use.
const DEFAULT_ACTIVE_TIMEOUT: u64 = 60;

pub fn run(a: &LiveArgs) -> anyhow::Result<ExitCode> {
    let config = config(a)?;
    let catalog = catalog_cmd::load(&a.catalog)?;
    let table = PortTable::build(&catalog);
    // Collectors are resolved before the capture starts: a bad URL stops the run here.
    let targets = super::export_targets(&a.export)?;
    let interval = seconds("--interval", a.interval)?;
    let mut capture = open(a)?;
    let link = capture.link();
    eprintln!(
        "portscope: capturing on {} (link type {}){}",
        a.interface,
        link.dlt(),
        a.filter
            .as_deref()
            .map_or(String::new(), |f| format!(", filter {f:?}"))
    );
    let started = SystemTime::now();
    let json = a.format == LiveFormat::Json;
    let redraw = if packets_to_stdout(a) {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let input = |t: &Tally| live_input(&a.interface, link, t);
    let mut running = Tally::default();
    let mut failed = None;
    let mut on_interval = |i: Interval| {
        let drops = LiveDrops::new(i.drops, i.shed);
        let summary = Summary::new(&i.tally, &[input(&i.tally)], &catalog, &table);
        running += i.tally;
        let mut out = report_out(a);
        let written = if json {
            write_live_json(&summary, (i.start, i.end), drops, false, &mut out)
        } else {
            let total = Summary::new(&running, &[input(&running)], &catalog, &table);
            let title = format!(
                "portscope live on {}: every {:.0} s; this interval {:.1} s",
                a.interface,
                interval.as_secs_f64(),
                i.end
                    .duration_since(i.start)
                    .unwrap_or_default()
                    .as_secs_f64()
            );
            write_live_table(&title, Some(&summary), &total, drops, redraw, &mut out)
        };
        if let Err(e) = written.and_then(|()| out.flush()) {
            failed.get_or_insert(e);
        }
    };
    let live = Live {
        interval,
        capture_time: false,
        on_interval: &mut on_interval,
    };
    let source: Box<dyn Source + '_> = Box::new(&mut capture);
    // Flows go to the collectors as they end (or every active timeout), while the capture
    // goes on, at least once a second; `--ipfix-file` keeps their encoded records and is
    // written at the end.
    let hand_over = super::HandOver {
        keep: false,
        flush: true,
    };
    let (outcome, (deliveries, file)) =
        super::with_export(&a.export, targets, &catalog, &table, hand_over, |export| {
            pipeline::run_exporting([Ok(source)], &table, &config, Some(live), export)
        })?;
    let outcome = outcome?;
    // The file first: a closed pipe for the report must not lose a capture's records.
    super::export_file(&a.export, file)?;
    if let Some(e) = failed {
        // A closed pipe ends the run quietly, like any other output error: main decides.
        return Err(e.into());
    }
    let report = &outcome.inputs[0];
    let summary = Summary::new(&outcome.tally, &outcome.inputs, &catalog, &table);
    write_final(
        a,
        &summary,
        LiveDrops::new(report.drops, report.shed),
        started,
    )?;
    if a.stats {
        super::print_deliveries(&deliveries);
    }
    if let Some(e) = &report.read_error {
        eprintln!("portscope: capture on {} stopped: {e}", a.interface);
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The capture the arguments ask for, stopped by SIGINT or SIGTERM.
fn open(a: &LiveArgs) -> anyhow::Result<LiveCapture> {
    let duration = a.duration.map(|d| seconds("--duration", d)).transpose()?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let options = LiveOptions {
        interface: a.interface.clone(),
        filter: a.filter.clone(),
        snaplen: a.snaplen,
        buffer_size: Some(a.buffer_size),
        promisc: !a.no_promisc,
        write: a.write.clone(),
        count: a.count,
        duration,
    };
    Ok(LiveCapture::open(&options, stop)?)
}

/// The pipeline's settings for a live capture, whole before the capture opens.
fn config(a: &LiveArgs) -> anyhow::Result<Config> {
    let base = super::worker_config(&a.flow, super::exporting(&a.export))?;
    Ok(Config {
        worker: WorkerConfig {
            timeouts: Timeouts {
                active_ns: super::active_ns(&a.export, DEFAULT_ACTIVE_TIMEOUT),
                ..base.timeouts
            },
            inner_active: a.export.ipfix_inner,
            ..base
        },
        progress: None,
        max_packets: None,
        merge: false,
        smb_keys: super::smb_keys(&a.flow)?,
    })
}

/// The interface as a report's input, with what `t` counted.
fn live_input(interface: &str, link: Link, t: &Tally) -> InputReport {
    InputReport {
        link: Some(link),
        links: vec![link],
        packets: t.total().packets,
        bytes: t.total().bytes,
        ..InputReport::named(interface.to_string())
    }
}

/// `-w -`: the captured packets take standard output (as tcpdump's `-w -` does), so the
/// reports go to standard error.
fn packets_to_stdout(a: &LiveArgs) -> bool {
    a.write.as_deref() == Some(std::path::Path::new("-"))
}

/// Where the interval reports and the final summary go.
fn report_out(a: &LiveArgs) -> Box<dyn Write> {
    if packets_to_stdout(a) {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(std::io::stdout().lock())
    }
}

/// The final summary, as the intervals were written: a JSON line or a table.
fn write_final(
    a: &LiveArgs,
    summary: &Summary,
    drops: LiveDrops,
    started: SystemTime,
) -> anyhow::Result<()> {
    let mut out = report_out(a);
    if a.format == LiveFormat::Json {
        write_live_json(summary, (started, SystemTime::now()), drops, true, &mut out)?;
    } else {
        let title = format!("portscope live on {}: final summary", a.interface);
        write_live_table(&title, None, summary, drops, false, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

pub fn interfaces() -> anyhow::Result<ExitCode> {
    let devices = list().map_err(|e| anyhow::anyhow!("cannot list interfaces: {e}"))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for d in devices {
        let mut flags = Vec::new();
        if d.flags.is_up() {
            flags.push("up");
        }
        if d.flags.is_running() {
            flags.push("running");
        }
        if d.flags.is_loopback() {
            flags.push("loopback");
        }
        let addresses: Vec<String> = d.addresses.iter().map(|a| a.addr.to_string()).collect();
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            d.name,
            flags.join(","),
            if addresses.is_empty() {
                "-".to_string()
            } else {
                addresses.join(" ")
            },
            d.desc.as_deref().unwrap_or("")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
