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
    let frames: Vec<(u64, u32, Vec<u8>)> = match &a.file {
        Some(path) => {
            let mut opened = capture::open_file(path, None)?;
            let link = opened.link();
            if link != Link::Ethernet {
                bail!(
                    "bench reads Ethernet captures; {path} has link type {}",
                    link.dlt()
                );
            }
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
            frames
        }
        None => {
            let spec = Spec {
                packets: a.packets,
                flows: (a.packets / 25).max(1),
                seed: a.seed,
                small: a.small,
            };
            frames(&spec)
                .map(|(ts, f)| (ts, u32::try_from(f.len()).unwrap_or(u32::MAX), f))
                .collect()
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
        let config = Config {
            worker: WorkerConfig::new(threads),
            progress: None,
            max_packets: None,
            merge: false,
        };
        let mut best = Duration::MAX;
        for _ in 0..a.runs.max(1) {
            // Laid out in batches before the clock starts.
            let mut source = MemorySource::from_slice("bench", Link::Ethernet, &frames);
            let boxed: Box<dyn Source + '_> = Box::new(&mut source);
            let started = Instant::now();
            let outcome = pipeline::run([Ok(boxed)], &table, &config)?;
            let took = started.elapsed();
            let counted = outcome.tally.total().packets;
            if counted as f64 != packets {
                bail!("counted {counted} packets of {packets}");
            }
            best = best.min(took);
        }
        let secs = best.as_secs_f64();
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
