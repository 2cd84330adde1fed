//! Criterion benches: one lookup, decode, the flow update, and the whole pipeline.
//!
//! `cargo bench --bench classify`; every group reports `Throughput::Elements` (packets, or
//! lookups), so criterion prints rates. The packets come from `portscope::gen`, never from an
//! untracked capture.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use portscope::capture::{MemorySource, Source};
use portscope::catalog::{Catalog, PortTable, Transport};
use portscope::decode::{decode, Link};
use portscope::gen::{frames, Spec};
use portscope::pipeline::{self, Config};
use portscope::worker::{classify_frames, WorkerConfig};

fn packets(n: u64) -> Vec<(u64, u32, Vec<u8>)> {
    let spec = Spec {
        packets: n,
        flows: n / 25,
        seed: 1,
        small: false,
    };
    frames(&spec)
        .map(|(ts, f)| (ts, u32::try_from(f.len()).unwrap_or(0), f))
        .collect()
}

fn config(workers: usize) -> WorkerConfig {
    WorkerConfig::new(workers)
}

fn lookup(c: &mut Criterion) {
    let catalog = Catalog::builtin().unwrap_or_default();
    let table = PortTable::build(&catalog);
    let ports: Vec<(u16, u16)> = (0..4096u32)
        .map(|i| ((i * 7919 % 65536) as u16, (i * 104_729 % 65536) as u16))
        .collect();
    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(ports.len() as u64));
    g.bench_function("exact port (array index)", |b| {
        b.iter(|| {
            ports
                .iter()
                .map(|&(p, _)| table.exact(Transport::Tcp, black_box(p)).0)
                .sum::<u32>()
        })
    });
    g.bench_function("flow rule (two ports, ranges)", |b| {
        b.iter(|| {
            ports
                .iter()
                .filter(|&&(a, p)| {
                    table
                        .classify_ports(Transport::Tcp, black_box(a), black_box(p))
                        .is_some()
                })
                .count()
        })
    });
    g.finish();
}

fn decode_and_flows(c: &mut Criterion) {
    let pkts = packets(50_000);
    let catalog = Catalog::builtin().unwrap_or_default();
    let table = PortTable::build(&catalog);
    let mut g = c.benchmark_group("per packet");
    g.throughput(Throughput::Elements(pkts.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            pkts.iter()
                .filter(|p| decode(Link::Ethernet, black_box(&p.2)).is_ok())
                .count()
        })
    });
    g.bench_function(
        "decode + route + flow update + classify (one thread)",
        |b| {
            b.iter(|| {
                let frames = pkts.iter().map(|(ts, len, f)| (*ts, *len, &f[..]));
                classify_frames(&table, config(1), Link::Ethernet, frames)
                    .rows
                    .len()
            })
        },
    );
    g.finish();
}

fn whole_pipeline(c: &mut Criterion) {
    let pkts = packets(200_000);
    let catalog = Catalog::builtin().unwrap_or_default();
    let table = PortTable::build(&catalog);
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(pkts.len() as u64));
    for threads in [1, 2, 4, 8] {
        g.bench_with_input(
            BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                b.iter_batched(
                    || MemorySource::from_slice("bench", Link::Ethernet, &pkts),
                    |src| {
                        let cfg = Config {
                            worker: config(threads),
                            progress: None,
                            max_packets: None,
                            merge: false,
                            smb_keys: None,
                        };
                        let source: Box<dyn Source> = Box::new(src);
                        pipeline::run([Ok(source)], &table, &cfg)
                            .map(|outcome| outcome.tally.total())
                    },
                    criterion::BatchSize::LargeInput,
                )
            },
        );
    }
    g.finish();
}

criterion_group!(benches, lookup, decode_and_flows, whole_pipeline);
criterion_main!(benches);
