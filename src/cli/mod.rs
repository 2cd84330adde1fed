//! The command-line front end: turns [`Args`] into library calls, prints, picks exit codes.
//!
//! Exit status: 0 when everything was read; 1 when the report is complete for what was read
//! but an input ended early (a truncated or corrupt capture); 2 on errors (bad arguments, a
//! bad catalog, a capture that cannot be opened). Only this module and `main.rs` use anyhow.

mod args;
mod bench_cmd;
mod catalog_cmd;
mod classify_cmd;
mod live_cmd;
mod man;

pub use args::Args;

use anyhow::Context;
use args::Command;
use portscope::flow::Timeouts;
use portscope::worker::WorkerConfig;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Runs a parsed command line.
///
/// # Errors
/// Anything that stops the command; `main` prints it and exits 2.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Classify(a) => classify_cmd::run(&a),
        Command::Merge(m) => merge(&m),
        Command::Catalog(c) => catalog_cmd::run(c),
        Command::Live(a) => live_cmd::run(&a),
        Command::Interfaces => live_cmd::interfaces(),
        Command::Bench(b) => bench_cmd::run(&b),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let shell = match shell {
                args::ShellArg::Bash => clap_complete::Shell::Bash,
                args::ShellArg::Zsh => clap_complete::Shell::Zsh,
                args::ShellArg::Fish => clap_complete::Shell::Fish,
            };
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Args::command(), "portscope", &mut out);
            write_output(None, |w| w.write_all(&out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { subcommand, dir } => {
            if let Some(dir) = dir {
                let n = man::write_all(&dir)?;
                eprintln!("portscope: wrote {n} man pages to {}", dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            let mut out = Vec::new();
            man::write_page(subcommand.as_deref(), &mut out)?;
            write_output(None, |w| w.write_all(&out))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gen(g) => {
            let spec = portscope::gen::Spec {
                packets: g.packets,
                flows: g.flows,
                seed: g.seed,
                small: g.small,
            };
            let written = portscope::gen::write_file(&g.output, &spec)
                .with_context(|| format!("cannot write {}", g.output.display()))?;
            eprintln!(
                "portscope: wrote {} packets to {}",
                written,
                g.output.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `portscope merge`: every report is read and checked before anything is written.
fn merge(m: &args::MergeArgs) -> anyhow::Result<ExitCode> {
    let mut parts = Vec::with_capacity(m.reports.len());
    for path in &m.reports {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(path)
        }
        .with_context(|| format!("cannot read {}", path.display()))?;
        let summary = portscope::report::Summary::from_json(&text)
            .with_context(|| path.display().to_string())?;
        parts.push(summary);
    }
    let merged = portscope::report::Summary::merge(parts);
    let format = match m.format {
        args::FormatArg::Table => portscope::report::Format::Table,
        args::FormatArg::Json => portscope::report::Format::Json,
        args::FormatArg::Ndjson => portscope::report::Format::Ndjson,
        args::FormatArg::Csv => portscope::report::Format::Csv,
    };
    write_output(m.output.as_deref(), |out| merged.write(format, out))?;
    Ok(ExitCode::SUCCESS)
}

/// The collectors of `--ipfix`, parsed and resolved.
fn export_targets(e: &args::ExportOpts) -> anyhow::Result<Vec<portscope::export::Target>> {
    if !(512..=65535).contains(&e.ipfix_mtu) {
        anyhow::bail!("--ipfix-mtu must be between 512 and 65535");
    }
    export_settings(e)?;
    e.ipfix
        .iter()
        .map(|url| portscope::export::Target::parse(url).map_err(anyhow::Error::from))
        .collect()
}

/// Whether flows are exported at all (`--ipfix` or `--ipfix-file`).
fn exporting(e: &args::ExportOpts) -> bool {
    !e.ipfix.is_empty() || e.ipfix_file.is_some()
}

/// `--active-timeout` in nanoseconds (`default` seconds when not given), in force only when
/// flows are exported.
fn active_ns(e: &args::ExportOpts, default: u64) -> u64 {
    if !exporting(e) {
        return 0;
    }
    e.active_timeout
        .unwrap_or(default)
        .saturating_mul(1_000_000_000)
}

/// How the pipeline hands flows to the exporter.
#[derive(Clone, Copy)]
struct HandOver {
    /// Whether the outcome keeps the flows too (`--flows`).
    keep: bool,
    /// Whether each hand-over leaves at once rather than when a message is full (live).
    flush: bool,
}

/// What export produced: what each collector was sent, and the `--ipfix-file` contents.
type ExportOutcome = (
    Vec<portscope::export::Delivery>,
    Option<portscope::export::IpfixFile>,
);

/// Runs `run` with the pipeline's hand-over to the collectors of `--ipfix` and the file of
/// `--ipfix-file` (`None` when there are neither), then ends the export: the same for
/// classify and live.
fn with_export<T>(
    e: &args::ExportOpts,
    targets: Vec<portscope::export::Target>,
    catalog: &portscope::catalog::Catalog,
    table: &portscope::catalog::PortTable,
    hand_over: HandOver,
    run: impl FnOnce(Option<portscope::pipeline::Export<'_>>) -> T,
) -> anyhow::Result<(T, ExportOutcome)> {
    if targets.is_empty() && e.ipfix_file.is_none() {
        return Ok((run(None), (Vec::new(), None)));
    }
    let file = e.ipfix_file.is_some();
    let mut exporter =
        portscope::export::Exporter::new(targets, file, export_settings(e)?, catalog, table)
            .context("cannot open a socket for IPFIX export")?;
    let mut send = |flows: &[portscope::flow::FlowRecord]| {
        exporter.send(flows);
        if hand_over.flush {
            exporter.flush();
        }
    };
    let outcome = run(Some(portscope::pipeline::Export {
        sink: &mut send,
        keep: hand_over.keep,
    }));
    Ok((outcome, finish_export(exporter)))
}

/// `--stats`: what each collector was sent.
fn print_deliveries(deliveries: &[portscope::export::Delivery]) {
    for d in deliveries {
        eprintln!(
            "portscope: IPFIX {}: {} flow records sent, {} not sent",
            d.url, d.sent, d.unsent
        );
    }
}

fn export_settings(e: &args::ExportOpts) -> anyhow::Result<portscope::export::Settings> {
    let inner_domain = match (e.ipfix_inner, e.inner_observation_domain) {
        (false, _) => None,
        (true, Some(d)) if d == e.observation_domain => anyhow::bail!(
            "--inner-observation-domain must differ from --observation-domain ({d})"
        ),
        (true, Some(d)) => Some(d),
        (true, None) => Some(e.observation_domain.checked_add(1).ok_or_else(|| {
            anyhow::anyhow!("--observation-domain {} leaves no domain for inner flows: give --inner-observation-domain", e.observation_domain)
        })?),
    };
    Ok(portscope::export::Settings {
        domain: e.observation_domain,
        inner_domain,
        mtu: e.ipfix_mtu,
        rate: e.ipfix_rate,
    })
}

/// Writes the IPFIX file of `--ipfix-file`, if asked.
fn export_file(
    e: &args::ExportOpts,
    file: Option<portscope::export::IpfixFile>,
) -> anyhow::Result<()> {
    let (Some(path), Some(file)) = (&e.ipfix_file, file) else {
        return Ok(());
    };
    write_output(Some(path), |out| file.write(out))
}

/// Ends export; warns on standard error about records a collector did not get.
fn finish_export(exporter: portscope::export::Exporter<'_>) -> ExportOutcome {
    let (deliveries, file) = exporter.finish();
    for d in &deliveries {
        if d.unsent > 0 {
            eprintln!(
                "portscope: warning: IPFIX collector {}: {} of {} flow records not sent ({})",
                d.url,
                d.unsent,
                d.sent + d.unsent,
                d.error.as_deref().unwrap_or("unknown error")
            );
        }
    }
    (deliveries, file)
}

/// The keys of `--smb-keys`, read before any packet is: a file that cannot be read or has
/// a line that cannot be used is the run's one error line.
fn smb_keys(
    f: &args::FlowOpts,
) -> anyhow::Result<Option<std::sync::Arc<portscope::inspect::smb::crypt::Keys>>> {
    use portscope::inspect::smb::crypt::Keys;
    if f.smb_keys.is_empty() {
        return Ok(None);
    }
    let mut keys = Keys::default();
    for path in &f.smb_keys {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read key file {name}: {e}"))?;
        keys.extend(Keys::parse(&text, &name)?);
    }
    Ok(Some(std::sync::Arc::new(keys)))
}

/// Worker settings from the flow options.
fn worker_config(f: &args::FlowOpts, keep_flows: bool) -> anyhow::Result<WorkerConfig> {
    let workers = match f.threads {
        Some(0) => anyhow::bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    Ok(WorkerConfig {
        max_flows: f.max_flows.max(1),
        timeouts: Timeouts::from_secs(f.tcp_timeout, f.udp_timeout, f.other_timeout),
        keep_flows,
        follow: !f.ports_only,
        ..WorkerConfig::new(workers)
    })
}

/// Writes through `write` to `path` (via a temporary file renamed into place, so an
/// interrupted run never leaves half a report), or to standard output (no path, or `-`).
fn write_output(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    match path.filter(|p| p.as_os_str() != "-") {
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            write(&mut out)?;
            out.flush()?;
        }
        // A device, a pipe or a symbolic link (`-o /dev/null`, `--flows /dev/stdout`) is
        // written in place: a rename would put a regular file where it was.
        Some(path)
            if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) =>
        {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            write(&mut out)
                .and_then(|()| out.flush())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Some(path) => {
            let mut tmp_name = path.as_os_str().to_owned();
            tmp_name.push(format!(".tmp{}", std::process::id()));
            let tmp = std::path::PathBuf::from(tmp_name);
            let result = (|| -> std::io::Result<()> {
                let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
                write(&mut out)?;
                out.into_inner()
                    .map_err(std::io::IntoInnerError::into_error)?
                    .sync_all()?;
                std::fs::rename(&tmp, path)
            })();
            if let Err(e) = result {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("cannot write {}", path.display()));
            }
        }
    }
    Ok(())
}
