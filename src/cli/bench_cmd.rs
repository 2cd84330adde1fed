//! `portscope bench`: decode and classify packets held in memory, at several thread counts.

use super::args::BenchArgs;
use anyhow::bail;
use portscope::capture::{self, Batch, Fill, MemorySource, Source};
use portscope::catalog::{Catalog, PortTable};
use portscope::decode::Link;
use portscope::gen::{frames, Spec};
use portscope::pipeline::{self, Config};
use portscope::worker::WorkerConfig;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Reads a classic pcap file with the block reader and counts its records.
fn walk(path: &str) -> anyhow::Result<ExitCode> {
    let Some(mut reader) = capture::FastPcap::open(path) else {
        bail!("{path} is not a classic pcap file the block reader takes");
    };
    let started = Instant::now();
    let mut batch = Batch::default();
    let (mut frames, mut bytes) = (0u64, 0u64);
    loop {
        let fill = reader.fill(&mut batch);
        frames += batch.frames.len() as u64;
        bytes += batch
            .frames
            .iter()
            .map(|f| u64::from(f.wire_len))
            .sum::<u64>();
        match fill {
            Fill::More => {}
            Fill::Done => break,
            Fill::Failed(e) => bail!("{path}: {e}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("walked {frames} records ({bytes} wire bytes) in {secs:.3} s");
    Ok(ExitCode::SUCCESS)
}

pub fn run(a: &BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &a.walk {
        return walk(path);
    }
    let catalog = Catalog::builtin()?;
    let table = PortTable::build(&catalog);
    let (link, frames) = match &a.file {
        Some(path) => read_frames(path)?,
        None => {
            let spec = Spec {
                packets: a.packets,
                flows: (a.packets / 25).max(1),
                seed: a.seed,
                small: a.small,
            };
            let frames = frames(&spec)
                .map(|(ts, f)| (ts, u32::try_from(f.len()).unwrap_or(u32::MAX), f))
                .collect();
            (Link::Ethernet, frames)
        }
    };
    if frames.is_empty() {
        bail!("no packets to measure");
    }
    let packets = frames.len() as f64;
    let wire: u64 = frames.iter().map(|f| u64::from(f.1)).sum();
    let bits = wire as f64 * 8.0;
    println!(
        "portscope bench: {} packets in memory ({wire} wire bytes), best of {} runs per thread count",
        frames.len(),
        a.runs
    );
    println!(
        "{:>8} {:>10} {:>10} {:>12} {:>10} {:>10}",
        "threads", "seconds", "Mpps", "Gbit/s", "ns/packet", "speed-up"
    );
    let mut base = None;
    for &threads in &a.threads {
        if threads == 0 {
            bail!("--threads takes counts of at least 1");
        }
        let secs = best_of(&table, threads, a.runs, link, &frames)?.as_secs_f64();
        let base_secs = *base.get_or_insert(secs);
        println!(
            "{:>8} {:>10.3} {:>10.2} {:>12.2} {:>10.1} {:>9.2}x",
            threads,
            secs,
            packets / secs / 1e6,
            bits / secs / 1e9,
            secs * 1e9 / packets,
            base_secs / secs
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A frame held in memory: capture time (ns), length on the wire, the bytes.
type Owned = (u64, u32, Vec<u8>);

/// Every frame of a capture, held in memory, and the capture's link type.
fn read_frames(path: &str) -> anyhow::Result<(Link, Vec<Owned>)> {
    let mut opened = capture::open_file(path, None)?;
    let link = opened.link();
    let mut frames = Vec::new();
    let mut batch = Batch::default();
    while {
        let fill = opened.fill(&mut batch);
        frames.extend(
            batch
                .frames
                .iter()
                .map(|f| (f.ts_ns, f.wire_len, batch.bytes(f).to_vec())),
        );
        fill == Fill::More
    } {}
    Ok((link, frames))
}

/// The fastest of `runs` classifications of `frames` with `threads` workers; each run
/// must count every frame.
fn best_of(
    table: &PortTable,
    threads: usize,
    runs: u32,
    link: Link,
    frames: &[Owned],
) -> anyhow::Result<Duration> {
    let config = Config {
        worker: WorkerConfig::new(threads),
        progress: None,
        max_packets: None,
        merge: false,
        smb_keys: None,
    };
    let mut best = Duration::MAX;
    for _ in 0..runs.max(1) {
        // Laid out in batches before the clock starts.
        let mut source = MemorySource::from_slice("bench", link, frames);
        let boxed: Box<dyn Source + '_> = Box::new(&mut source);
        let started = Instant::now();
        let outcome = pipeline::run([Ok(boxed)], table, &config)?;
        let took = started.elapsed();
        let counted = outcome.tally.total().packets;
        if counted != frames.len() as u64 {
            bail!("counted {counted} packets of {}", frames.len());
        }
        best = best.min(took);
    }
    Ok(best)
}
