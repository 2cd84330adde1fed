//! `portscope classify`: captures in, per-service summary out.

use super::args::{ClassifyArgs, ClassifyFormat, ReaderArg};
use super::{catalog_cmd, write_output};
use portscope::capture::{self, Filter};
use portscope::catalog::PortTable;
use portscope::pipeline::{self, Config, Interval, Live, Outcome};
use portscope::report::{self, Format, LiveDrops, Summary};
use portscope::worker::WorkerConfig;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

pub fn run(a: &ClassifyArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::new(a)?;
    let sources = plan.captures.iter().map(|path| match a.reader {
        ReaderArg::Auto => capture::open_file(path, plan.filter.as_ref()),
        ReaderArg::Libpcap => capture::open_libpcap(path, plan.filter.as_ref()),
    });
    // Flows go to the collectors (and become the file's records) as they end, while the
    // run goes on.
    let hand_over = super::HandOver {
        keep: a.flows.is_some(),
        flush: false,
    };
    let (catalog, table, config) = (&plan.catalog, &plan.table, &plan.config);
    let mut intervals: Vec<((SystemTime, SystemTime), Summary)> = Vec::new();
    let (outcome, (deliveries, file)) = super::with_export(
        &a.export,
        plan.targets.clone(),
        catalog,
        table,
        hand_over,
        |export| match plan.interval {
            None => pipeline::run_exporting(sources, table, config, None, export),
            Some(interval) => {
                let mut on_interval = |i: Interval| {
                    let summary = Summary::new(&i.tally, &[], catalog, table);
                    intervals.push(((i.start, i.end), summary));
                };
                let live = Live {
                    interval,
                    capture_time: true,
                    on_interval: &mut on_interval,
                };
                pipeline::run_exporting(sources, table, config, Some(live), export)
            }
        },
    )?;
    let mut outcome = outcome?;
    if let Some(bar) = &config.progress {
        bar.finish_and_clear();
    }
    let status = input_status(&outcome.inputs);
    // Nothing was read: the error lines are the whole answer (an all-zero report beside
    // them would read as an empty capture).
    if !outcome.inputs.is_empty() && outcome.inputs.iter().all(|i| i.open_error.is_some()) {
        return Ok(status);
    }
    let summary = Summary::new(&outcome.tally, &outcome.inputs, catalog, table);
    write_report(a, &plan, &summary, &intervals)?;
    if let Some(path) = &a.flows {
        let path = (!plan.flows_to_stdout).then_some(path.as_path());
        write_output(path, |out| {
            report::write_flows(&mut outcome.tally.flows, table, out)
        })?;
    }
    super::export_file(&a.export, file)?;
    if a.stats {
        print_stats(&outcome, &summary);
        super::print_deliveries(&deliveries);
    }
    Ok(status)
}

/// A classify run as its arguments ask for it, checked whole before any packet is read.
struct Plan {
    captures: Vec<String>,
    filter: Option<Filter>,
    /// Intervals of capture time (`--interval`, or the HTML page's charts).
    interval: Option<Duration>,
    /// `--flows -`: the flows take standard output.
    flows_to_stdout: bool,
    catalog: portscope::catalog::Catalog,
    table: PortTable,
    config: Config,
    /// The IPFIX collectors, resolved.
    targets: Vec<portscope::export::Target>,
}

impl Plan {
    fn new(a: &ClassifyArgs) -> anyhow::Result<Plan> {
        let named: Vec<String> = a.read.iter().chain(&a.captures).cloned().collect();
        let (files, trailing) = trailing_filter(&named, a.filter.is_some())?;
        let captures = expand_directories(files)?;
        if a.count == Some(0) {
            anyhow::bail!("--count must be at least 1");
        }
        if a.top == Some(0) {
            anyhow::bail!("--top must be at least 1");
        }
        // Collectors are resolved before any packet is read: a bad URL stops the run here.
        let targets = super::export_targets(&a.export)?;
        let exporting = super::exporting(&a.export);
        let interval = a
            .interval
            .map(|s| super::live_cmd::seconds("--interval", s))
            .transpose()?;
        let html = a.format == ClassifyFormat::Html;
        if interval.is_some() && a.format == ClassifyFormat::Csv {
            anyhow::bail!(
                "--interval writes JSON lines or a table: use --format json or --format table"
            );
        }
        if html && a.output.is_none() && std::io::stdout().is_terminal() {
            anyhow::bail!(
                "--format html writes a file: give it with -o FILE (or redirect the output)"
            );
        }
        let filter = match trailing {
            Some(f) => Some(f),
            None => a.filter.as_deref().map(Filter::new).transpose()?,
        };
        // `--flows -` streams the flows on standard output; the report then goes to
        // standard error, unless -o names a file for it.
        let flows_to_stdout = a.flows.as_deref() == Some(std::path::Path::new("-"));
        if flows_to_stdout && html && a.output.is_none() {
            anyhow::bail!(
                "--flows - takes standard output: give the HTML report a file with -o FILE"
            );
        }
        let interval = match interval {
            None if html => Some(fitting_interval(&captures, filter.as_ref(), a.count)),
            interval => interval,
        };
        let catalog = catalog_cmd::load(&a.catalog)?;
        let table = PortTable::build(&catalog);
        let base = super::worker_config(&a.flow, a.flows.is_some() || exporting)?;
        let worker = WorkerConfig {
            hosts: a.servers || html,
            top: a.top.unwrap_or(0),
            timeouts: portscope::flow::Timeouts {
                active_ns: super::active_ns(&a.export, 0),
                ..base.timeouts
            },
            inner_active: a.export.ipfix_inner,
            ..base
        };
        let config = Config {
            worker,
            progress: progress_bar(&captures),
            max_packets: a.count,
            merge: a.merge,
            smb_keys: super::smb_keys(&a.flow)?,
        };
        Ok(Plan {
            captures,
            filter,
            interval,
            flows_to_stdout,
            catalog,
            table,
            config,
            targets,
        })
    }
}

/// Says what went wrong with each input on standard error; the exit status they make.
fn input_status(inputs: &[portscope::capture::InputReport]) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for input in inputs {
        if let Some(note) = &input.note {
            eprintln!("portscope: note: {}: {note}", input.name);
        }
        if let Some(e) = &input.open_error {
            eprintln!("portscope: cannot open capture {}: {e}", input.name);
            status = ExitCode::from(2);
        } else if let Some(e) = &input.read_error {
            eprintln!(
                "portscope: warning: {}: reading stopped after packet {}: {e}",
                input.name, input.packets
            );
            if status == ExitCode::SUCCESS {
                status = ExitCode::from(1);
            }
        }
        if let Some(d) = input.drops.filter(|d| d.kernel + d.interface > 0) {
            eprintln!(
                "portscope: note: {}: the capture's interface statistics count {} packets dropped ({} by the system, {} by the interface)",
                input.name,
                d.kernel + d.interface,
                d.kernel,
                d.interface
            );
        }
    }
    status
}

/// The report in the format asked for, to `-o`, standard output, or (with `--flows -`)
/// standard error.
fn write_report(
    a: &ClassifyArgs,
    plan: &Plan,
    summary: &Summary,
    intervals: &[((SystemTime, SystemTime), Summary)],
) -> anyhow::Result<()> {
    let report_to = match (&a.output, plan.flows_to_stdout) {
        (None, true) => Some(std::path::Path::new("/dev/stderr")),
        (output, _) => output.as_deref(),
    };
    write_output(report_to, |out| match (a.format, plan.interval) {
        (ClassifyFormat::Html, _) => report::write_html(summary, intervals, out),
        (ClassifyFormat::Table, None) => summary.write(Format::Table, out),
        (ClassifyFormat::Json, None) => summary.write(Format::Json, out),
        (ClassifyFormat::Ndjson, None) => summary.write(Format::Ndjson, out),
        (ClassifyFormat::Csv, _) => summary.write(Format::Csv, out),
        (ClassifyFormat::Table, Some(_)) => report::write_interval_table(intervals, summary, out),
        (ClassifyFormat::Json | ClassifyFormat::Ndjson, Some(_)) => {
            for (span, s) in intervals {
                report::write_live_json(s, *span, LiveDrops::default(), false, out)?;
            }
            let whole = match (intervals.first(), intervals.last()) {
                (Some(((start, _), _)), Some(((_, end), _))) => (*start, *end),
                _ => (SystemTime::UNIX_EPOCH, SystemTime::UNIX_EPOCH),
            };
            report::write_live_json(summary, whole, LiveDrops::default(), true, out)
        }
    })
}

/// A filter written after the captures, as tcpdump takes one (`portscope classify F tcp
/// port 445`): without `-f`, the arguments from the first one that names no file (and is
/// not `-`) on are the filter, if they compile as one and a capture comes before them.
/// Otherwise every argument is a capture, and a missing one is reported as such.
/// A filter that does not compile is its error when it begins with a word only a filter
/// begins with (`tcp prt 445`).
fn trailing_filter(
    args: &[String],
    has_filter: bool,
) -> anyhow::Result<(&[String], Option<Filter>)> {
    /// Words a BPF expression starts with (pcap-filter(7)'s primitives and qualifiers).
    const FILTER_WORDS: [&str; 27] = [
        "tcp",
        "udp",
        "icmp",
        "icmp6",
        "ip",
        "ip6",
        "arp",
        "rarp",
        "host",
        "net",
        "port",
        "portrange",
        "src",
        "dst",
        "ether",
        "vlan",
        "mpls",
        "pppoes",
        "not",
        "proto",
        "greater",
        "less",
        "broadcast",
        "multicast",
        "inbound",
        "outbound",
        "sctp",
    ];
    let first_missing = args
        .iter()
        .position(|a| a != "-" && !std::path::Path::new(a).exists());
    let Some(i) = first_missing.filter(|&i| i > 0 && !has_filter) else {
        return Ok((args, None));
    };
    let expr = args[i..].join(" ");
    match Filter::new(&expr) {
        Ok(filter) => Ok((&args[..i], Some(filter))),
        Err(e) if FILTER_WORDS.contains(&args[i].as_str()) || args[i].starts_with(['(', '!']) => {
            Err(e.into())
        }
        Err(_) => Ok((args, None)),
    }
}

/// The inputs with every directory replaced by the files under it (recursively): the
/// captures in the order of their first packet's time (a ring buffer's files in the order
/// they were written, so a flow that goes on from one file into the next is one flow), then
/// the files that are not captures, which the run names as inputs it cannot open (exit
/// status 2, as for any bad input). Files named on the command line keep their order.
fn expand_directories(inputs: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        let path = std::path::Path::new(input);
        if input == "-" || !path.is_dir() {
            out.push(input.clone());
            continue;
        }
        let mut files = Vec::new();
        let mut dirs = vec![path.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| anyhow::anyhow!("cannot read directory {}: {e}", dir.display()))?;
            for entry in entries {
                let entry = entry
                    .map_err(|e| anyhow::anyhow!("cannot read directory {}: {e}", dir.display()))?;
                let p = entry.path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    files.push(p.to_string_lossy().into_owned());
                }
            }
        }
        if files.is_empty() {
            anyhow::bail!("directory {input} holds no files");
        }
        // First packet's time, then name: a file that is no capture (or has no packet)
        // goes last, where its error is reported after the captures.
        let mut keyed: Vec<(u64, String)> = files
            .into_iter()
            .map(|f| {
                let first = capture::open_file(&f, None)
                    .ok()
                    .and_then(|mut s| capture::first_time(&mut *s))
                    .unwrap_or(u64::MAX);
                (first, f)
            })
            .collect();
        keyed.sort();
        out.extend(keyed.into_iter().map(|(_, f)| f));
    }
    Ok(out)
}

/// Intervals for `--format html`'s chart over time: about 40 across the span of the captures
/// (read once beforehand for their first and latest times), a round number of seconds or
/// of a power of ten of them (1, 2 or 5 times), at least 1 ms; a minute for standard input.
/// With `-c`, only the packets the report will cover.
fn fitting_interval(captures: &[String], filter: Option<&Filter>, count: Option<u64>) -> Duration {
    if captures.iter().any(|c| c == "-") {
        return Duration::from_secs(60);
    }
    let mut span: Option<(u64, u64)> = None;
    let mut left = count;
    for path in captures {
        if left == Some(0) {
            break;
        }
        if let Ok(mut source) = capture::open_file(path, filter) {
            if let Some((first, last)) = capture::time_span(&mut *source, &mut left) {
                let whole = span.get_or_insert((first, last));
                whole.1 = whole.1.max(last);
            }
        }
    }
    let width = span.map_or(0, |(first, last)| last.saturating_sub(first)) / 40;
    let mut step: u64 = 1_000_000;
    'out: loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= width {
                step = step.saturating_mul(m);
                break 'out;
            }
        }
        step = step.saturating_mul(10);
    }
    Duration::from_nanos(step)
}

/// A progress bar on standard error when it is a terminal and the inputs are files.
fn progress_bar(captures: &[String]) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let total: u64 = captures
        .iter()
        .filter(|p| p.as_str() != "-")
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    // Small inputs finish before a bar would be worth drawing.
    if total < 64 * 1024 * 1024 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

fn print_stats(outcome: &Outcome, summary: &Summary) {
    let t = &outcome.timings;
    let secs = t.elapsed.as_secs_f64().max(1e-9);
    let pct =
        |busy: std::time::Duration, n: usize| 100.0 * busy.as_secs_f64() / (secs * n.max(1) as f64);
    eprintln!(
        "portscope: {} packets, {} in {:.3} s: {:.2} Mpps, {:.2} Gbit/s; reader busy {:.0}%, {} workers busy {:.0}% on average",
        summary.packets,
        report::human_bytes(summary.bytes),
        secs,
        summary.packets as f64 / secs / 1e6,
        summary.bytes as f64 * 8.0 / secs / 1e9,
        pct(t.reader_busy, 1),
        t.workers,
        pct(t.workers_busy, t.workers),
    );
}
