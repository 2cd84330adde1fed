//! The threads: one reader fills batches from the sources, N workers decode and classify.
//!
//! The reader sends every batch to every worker (an `Arc`, not a copy) over a bounded
//! crossbeam channel per worker; each worker keeps the flows of its own shards (see
//! `classify`). The last worker done with a batch sends it back for reuse. Offline, the
//! reader blocks when workers fall behind, so nothing is dropped. At the end the workers'
//! tallies are merged in worker order; since every flow lives in exactly one shard and every
//! shard's clock only sees its own packets, the result is the same for any thread count.

use crate::capture::{Batch, Fill, Source};
use crate::catalog::PortTable;
use crate::classify::{Worker, WorkerConfig};
use crate::decode::Link;
use crate::flow::Tally;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Batches in flight per worker before the reader waits.
const QUEUE: usize = 8;
/// Batches allocated at most; more are recycled.
const POOL: usize = 4 * QUEUE;

/// What to run with.
#[derive(Clone, Debug)]
pub struct Config {
    pub worker: WorkerConfig,
    /// Advanced by the number of captured bytes read, when set.
    pub progress: Option<indicatif::ProgressBar>,
}

/// What became of one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputReport {
    pub name: String,
    /// `None` when the input could not be opened.
    pub link: Option<Link>,
    pub packets: u64,
    /// Why the input could not be opened (fatal for this input, none of it read).
    pub open_error: Option<String>,
    /// Why reading stopped early; the packets before it are counted.
    pub read_error: Option<String>,
}

/// Timings for `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    pub elapsed: Duration,
    /// Time the reader spent filling batches (the rest it waited for workers or batches).
    pub reader_busy: Duration,
    /// Time each worker spent on frames, summed over workers.
    pub workers_busy: Duration,
    pub workers: usize,
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    pub tally: Tally,
    pub inputs: Vec<InputReport>,
    pub timings: Timings,
}

/// An input to read, or the reason it could not be opened.
pub type Opened<'a> = Result<Box<dyn Source + 'a>, crate::capture::Error>;

/// Reads every source in order and classifies every frame.
pub fn run<'a>(
    sources: impl IntoIterator<Item = Opened<'a>>,
    table: &PortTable,
    config: &Config,
) -> Outcome {
    let started = Instant::now();
    let workers = config.worker.workers.max(1);
    let worker_config = WorkerConfig {
        workers,
        ..config.worker
    };
    std::thread::scope(|scope| {
        let (recycle_tx, recycle_rx) = bounded::<Batch>(POOL);
        let mut senders = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for id in 0..workers {
            let (tx, rx) = bounded::<Arc<Batch>>(QUEUE);
            senders.push(tx);
            let recycle = recycle_tx.clone();
            handles.push(
                scope.spawn(move || work(Worker::new(id, table, worker_config), &rx, &recycle)),
            );
        }
        drop(recycle_tx);
        let mut reader = Reader {
            senders,
            recycle: recycle_rx,
            allocated: 0,
            busy: Duration::ZERO,
            progress: config.progress.clone(),
        };
        let inputs: Vec<InputReport> = sources.into_iter().map(|s| reader.read(s)).collect();
        let reader_busy = reader.busy;
        drop(reader);
        let mut tally = Tally::new(config.worker.keep_flows);
        let mut workers_busy = Duration::ZERO;
        for handle in handles {
            // A worker only panics on a bug; the scope re-raises it when joined here.
            if let Ok((part, busy)) = handle.join() {
                tally += part;
                workers_busy += busy;
            }
        }
        Outcome {
            tally,
            inputs,
            timings: Timings {
                elapsed: started.elapsed(),
                reader_busy,
                workers_busy,
                workers,
            },
        }
    })
}

fn work(
    mut worker: Worker<'_>,
    rx: &Receiver<Arc<Batch>>,
    recycle: &Sender<Batch>,
) -> (Tally, Duration) {
    let mut busy = Duration::ZERO;
    for batch in rx {
        let start = Instant::now();
        for f in &batch.frames {
            worker.frame(batch.link, f.ts_ns, f.wire_len, batch.bytes(f));
        }
        busy += start.elapsed();
        if let Some(batch) = Arc::into_inner(batch) {
            // The pool is full only if the reader is gone; then the batch is simply freed.
            let _ = recycle.try_send(batch);
        }
    }
    (worker.finish(), busy)
}

struct Reader {
    senders: Vec<Sender<Arc<Batch>>>,
    recycle: Receiver<Batch>,
    allocated: usize,
    busy: Duration,
    progress: Option<indicatif::ProgressBar>,
}

impl Reader {
    fn batch(&mut self) -> Batch {
        if let Ok(b) = self.recycle.try_recv() {
            return b;
        }
        if self.allocated < POOL {
            self.allocated += 1;
            return Batch::default();
        }
        self.recycle.recv().unwrap_or_default()
    }

    fn read(&mut self, opened: Opened<'_>) -> InputReport {
        let mut source = match opened {
            Ok(source) => source,
            Err(crate::capture::Error::Open { path, message }) => {
                return InputReport {
                    name: path,
                    link: None,
                    packets: 0,
                    open_error: Some(message),
                    read_error: None,
                }
            }
        };
        let mut report = InputReport {
            name: source.name().to_string(),
            link: Some(source.link()),
            packets: 0,
            open_error: None,
            read_error: None,
        };
        loop {
            let mut batch = self.batch();
            let start = Instant::now();
            let fill = source.fill(&mut batch);
            self.busy += start.elapsed();
            report.packets += batch.frames.len() as u64;
            if let Some(bar) = &self.progress {
                // Record header plus captured bytes: the offset in a classic pcap file.
                let read: u64 = batch.frames.len() as u64 * 16
                    + batch
                        .frames
                        .iter()
                        .map(|f| u64::from(f.wire_len.min(262_144)))
                        .sum::<u64>();
                bar.inc(read);
            }
            if !batch.frames.is_empty() {
                let shared = Arc::new(batch);
                for tx in &self.senders {
                    // A worker only goes away on a panic, which the join reports.
                    let _ = tx.send(Arc::clone(&shared));
                }
            }
            match fill {
                Fill::More => {}
                Fill::Done => break,
                Fill::Failed(message) => {
                    report.read_error = Some(message);
                    break;
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::MemorySource;
    use crate::catalog::Catalog;
    use crate::decode::test_util::eth_tcp4;
    use crate::flow::Timeouts;

    fn config(workers: usize, max_flows: usize) -> Config {
        Config {
            worker: WorkerConfig {
                workers,
                max_flows,
                max_fragments: 100,
                timeouts: Timeouts::ZEEK,
                keep_flows: true,
            },
            progress: None,
        }
    }

    #[test]
    fn thread_count_does_not_change_the_tally() {
        let (flows, evicted) = same_for_every_thread_count(100_000);
        assert_eq!((flows, evicted), (700, 0));
        // With a flow-table bound small enough to evict, still the same for every count.
        let (flows, evicted) = same_for_every_thread_count(1000);
        assert!(flows > 700 && evicted > 0, "{flows} {evicted}");
    }

    fn same_for_every_thread_count(max_flows: usize) -> (usize, u64) {
        let catalog = Catalog::builtin().unwrap();
        let table = PortTable::build(&catalog);
        let frames: Vec<_> = (0..3000u64)
            .map(|i| {
                let sport = 40000 + u16::try_from(i % 700).unwrap();
                let dport = [445, 135, 3389, 50000, 9999][usize::try_from(i % 5).unwrap()];
                let f = eth_tcp4(sport, dport, &[0; 10]);
                (i * 1_000_000, u32::try_from(f.len()).unwrap() + 100, f)
            })
            .collect();
        let mut results = Vec::new();
        for workers in [1, 2, 3, 8] {
            let src = MemorySource::new("mem", Link::Ethernet, frames.clone());
            let out = run(
                [Ok(Box::new(src) as Box<dyn Source>)],
                &table,
                &config(workers, max_flows),
            );
            let evicted = out.tally.evicted_flows;
            assert_eq!(out.inputs[0].packets, 3000);
            let mut rows: Vec<_> = out.tally.rows.into_iter().collect();
            rows.sort_unstable_by_key(|r| r.0);
            let mut flows = out.tally.flows;
            flows.sort_unstable_by_key(|f| (f.first_ns, f.key));
            results.push((rows, flows, evicted));
        }
        let total: u64 = results[0].0.iter().map(|r| r.1.packets).sum();
        assert_eq!(total, 3000);
        for r in &results[1..] {
            assert_eq!(r, &results[0]);
        }
        // The source port decides the destination port: 700 flows of 4 or 5 packets.
        (results[0].1.len(), results[0].2)
    }
}
