//! The threads: one reader fills batches from the sources, N workers decode and classify.
//!
//! The reader sends every batch to every worker (an `Arc`, not a copy) over a bounded
//! crossbeam channel per worker; each worker keeps the flows of its own shards (see
//! `classify`). The last worker done with a batch sends it back for reuse. Offline, the
//! reader blocks when workers fall behind, so nothing is dropped. At the end the workers'
//! tallies are merged in worker order; since every flow lives in exactly one shard and every
//! shard's clock only sees its own packets, the result is the same for any thread count.

use crate::capture::{Batch, Drops, Fill, Source};
use crate::catalog::PortTable;
use crate::classify::{Worker, WorkerConfig};
use crate::decode::Link;
use crate::flow::Tally;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Batches in flight per worker before the reader waits.
const QUEUE: usize = 8;
/// Live, a deeper queue absorbs bursts (64 batches of 512 frames: about 45 ms at 700k
/// packets per second) before the reader has to shed.
const LIVE_QUEUE: usize = 64;
/// Batches allocated at most; more are recycled.
const POOL: usize = 4 * QUEUE;

/// What to run with.
#[derive(Clone, Debug)]
pub struct Config {
    pub worker: WorkerConfig,
    /// Advanced by the number of captured bytes read, when set.
    pub progress: Option<indicatif::ProgressBar>,
}

/// Live mode: report every `interval`, and never block the reader.
pub struct Live<'h> {
    pub interval: Duration,
    /// Called on a reporting thread with each interval, in order; the last one covers the
    /// tail of the capture, so the intervals add up to the final tally.
    pub on_interval: &'h mut (dyn FnMut(Interval) + Send),
}

/// One live reporting interval.
#[derive(Debug)]
pub struct Interval {
    pub start: SystemTime,
    pub end: SystemTime,
    /// What was counted in the interval (flows count in the interval they were first seen).
    pub tally: Tally,
    /// Packets the pipeline shed in the interval because the workers were behind.
    pub shed: u64,
    /// libpcap's counters since the capture started.
    pub drops: Option<Drops>,
}

/// What became of one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputReport {
    pub name: String,
    /// `None` when the input could not be opened.
    pub link: Option<Link>,
    /// Packets read (including any shed).
    pub packets: u64,
    /// Their wire lengths, summed.
    pub bytes: u64,
    /// Why the input could not be opened (fatal for this input, none of it read).
    pub open_error: Option<String>,
    /// Why reading stopped early; the packets before it are counted.
    pub read_error: Option<String>,
    /// Live mode: packets read but shed because the workers were behind.
    pub shed: u64,
    /// Live mode: libpcap's counters at the end.
    pub drops: Option<Drops>,
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

/// Reads every source in order and classifies every frame (offline: nothing is dropped).
pub fn run<'a>(
    sources: impl IntoIterator<Item = Opened<'a>>,
    table: &PortTable,
    config: &Config,
) -> Outcome {
    run_with(sources, table, config, None)
}

/// As [`run`], for a live capture: batches are shed rather than waited for, and intervals
/// are reported.
pub fn run_live<'a>(
    sources: impl IntoIterator<Item = Opened<'a>>,
    table: &PortTable,
    config: &Config,
    live: Live<'_>,
) -> Outcome {
    run_with(sources, table, config, Some(live))
}

/// Messages to the live reporting thread.
enum Report {
    /// From the reader: interval `seq` ends now.
    Tick {
        seq: u64,
        start: SystemTime,
        end: SystemTime,
        shed: u64,
        drops: Option<Drops>,
    },
    /// From a worker: its share of interval `seq`.
    Part { seq: u64, tally: Tally },
}

fn run_with<'a>(
    sources: impl IntoIterator<Item = Opened<'a>>,
    table: &PortTable,
    config: &Config,
    live: Option<Live<'_>>,
) -> Outcome {
    let started = Instant::now();
    let workers = config.worker.workers.max(1);
    let worker_config = WorkerConfig {
        workers,
        live: live.is_some(),
        ..config.worker
    };
    std::thread::scope(|scope| {
        let queue = if live.is_some() { LIVE_QUEUE } else { QUEUE };
        let (recycle_tx, recycle_rx) = bounded::<Batch>(4 * queue);
        let (report_tx, report_rx) = unbounded::<Report>();
        let mut senders = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for id in 0..workers {
            let (tx, rx) = bounded::<Arc<Batch>>(queue);
            senders.push(tx);
            let recycle = recycle_tx.clone();
            let reports = report_tx.clone();
            handles.push(scope.spawn(move || {
                work(
                    Worker::new(id, table, worker_config),
                    &rx,
                    &recycle,
                    &reports,
                )
            }));
        }
        drop(recycle_tx);
        let reporter = live.as_ref().map(|l| l.interval);
        let reporter_handle = live.map(|l| {
            let on_interval = l.on_interval;
            scope.spawn(move || report(&report_rx, workers, on_interval))
        });
        let mut reader = Reader {
            senders,
            recycle: recycle_rx,
            allocated: 0,
            busy: Duration::ZERO,
            progress: config.progress.clone(),
            live: reporter.map(|interval| LiveState {
                interval,
                reports: report_tx.clone(),
                seq: 0,
                start: SystemTime::now(),
                next: Instant::now() + interval,
                shed: 0,
            }),
        };
        drop(report_tx);
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
        if let Some(h) = reporter_handle {
            let _ = h.join();
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
    reports: &Sender<Report>,
) -> (Tally, Duration) {
    let mut busy = Duration::ZERO;
    for batch in rx {
        let start = Instant::now();
        for f in &batch.frames {
            worker.frame(batch.link, f.ts_ns, f.wire_len, batch.bytes(f));
        }
        if let Some(seq) = batch.tick {
            let _ = reports.send(Report::Part {
                seq,
                tally: worker.interval(),
            });
        }
        busy += start.elapsed();
        if let Some(batch) = Arc::into_inner(batch) {
            // The pool is full only if the reader is gone; then the batch is simply freed.
            let _ = recycle.try_send(batch);
        }
    }
    (worker.finish(), busy)
}

/// Gathers each interval's parts from every worker and hands them on, in order.
fn report(rx: &Receiver<Report>, workers: usize, on_interval: &mut (dyn FnMut(Interval) + Send)) {
    let mut pending: BTreeMap<u64, (Option<Interval>, usize)> = BTreeMap::new();
    let mut next = 0;
    for msg in rx {
        match msg {
            Report::Tick {
                seq,
                start,
                end,
                shed,
                drops,
            } => {
                let entry = pending.entry(seq).or_insert((None, 0));
                let tally = entry.0.take().map_or_else(Tally::default, |i| i.tally);
                entry.0 = Some(Interval {
                    start,
                    end,
                    tally,
                    shed,
                    drops,
                });
            }
            Report::Part { seq, tally } => {
                let entry = pending.entry(seq).or_insert((None, 0));
                entry.1 += 1;
                match &mut entry.0 {
                    Some(i) => i.tally += tally,
                    None => {
                        entry.0 = Some(Interval {
                            start: SystemTime::UNIX_EPOCH,
                            end: SystemTime::UNIX_EPOCH,
                            tally,
                            shed: 0,
                            drops: None,
                        });
                    }
                }
            }
        }
        // Hand on every complete interval, in order. An interval is complete when its tick
        // came (its end is set) and every worker sent its part.
        while let Some((interval, parts)) = pending.get(&next) {
            let ticked = interval
                .as_ref()
                .is_some_and(|i| i.end != SystemTime::UNIX_EPOCH);
            if !ticked || *parts < workers {
                break;
            }
            if let Some((Some(interval), _)) = pending.remove(&next) {
                on_interval(interval);
            }
            next += 1;
        }
    }
}

struct LiveState {
    interval: Duration,
    reports: Sender<Report>,
    seq: u64,
    start: SystemTime,
    next: Instant,
    shed: u64,
}

struct Reader {
    senders: Vec<Sender<Arc<Batch>>>,
    recycle: Receiver<Batch>,
    allocated: usize,
    busy: Duration,
    progress: Option<indicatif::ProgressBar>,
    live: Option<LiveState>,
}

impl Reader {
    fn batch(&mut self) -> Batch {
        if let Ok(b) = self.recycle.try_recv() {
            return b;
        }
        if self.allocated < POOL || self.live.is_some() {
            self.allocated += 1;
            return Batch::default();
        }
        self.recycle.recv().unwrap_or_default()
    }

    /// Sends a batch to every worker. Live, a batch no worker has room for is shed (counted)
    /// rather than waited for: only this thread sends, so room seen here stays.
    fn send(&mut self, batch: Batch, report: &mut InputReport) {
        if let Some(live) = &mut self.live {
            if batch.tick.is_none() && self.senders.iter().any(Sender::is_full) {
                live.shed += batch.frames.len() as u64;
                report.shed += batch.frames.len() as u64;
                let _ = self.recycle_local(batch);
                return;
            }
        }
        let shared = Arc::new(batch);
        for tx in &self.senders {
            // A worker only goes away on a panic, which the join reports.
            let _ = tx.send(Arc::clone(&shared));
        }
    }

    fn recycle_local(&mut self, mut batch: Batch) -> Option<()> {
        batch.clear(batch.link);
        self.allocated = self.allocated.saturating_sub(1);
        None
    }

    /// Live: ends the current interval when it is due (or `now` is forced at the end).
    fn tick(&mut self, source: &mut dyn Source, force: bool, report: &mut InputReport) {
        let Some(live) = &mut self.live else { return };
        if !force && Instant::now() < live.next {
            return;
        }
        // Every worker must see the tick after the batches before it; a full queue means the
        // workers are behind, so the tick waits for the next call (unless this is the end).
        if !force && self.senders.iter().any(Sender::is_full) {
            return;
        }
        let end = SystemTime::now();
        let drops = source.drops();
        report.drops = drops;
        let _ = live.reports.send(Report::Tick {
            seq: live.seq,
            start: live.start,
            end,
            shed: live.shed,
            drops,
        });
        let mut batch = self.batch();
        batch.clear(source.link());
        let live = self.live.as_mut().map(|l| {
            batch.tick = Some(l.seq);
            l.seq += 1;
            l.start = end;
            l.next = Instant::now() + l.interval;
            l.shed = 0;
        });
        if live.is_some() {
            let shared = Arc::new(batch);
            for tx in &self.senders {
                let _ = tx.send(Arc::clone(&shared));
            }
        }
    }

    fn read(&mut self, opened: Opened<'_>) -> InputReport {
        let mut source = match opened {
            Ok(source) => source,
            Err(e) => {
                let (name, message) = e.parts();
                return InputReport {
                    name,
                    link: None,
                    packets: 0,
                    bytes: 0,
                    open_error: Some(message),
                    read_error: None,
                    shed: 0,
                    drops: None,
                };
            }
        };
        let mut report = InputReport {
            name: source.name().to_string(),
            link: Some(source.link()),
            packets: 0,
            bytes: 0,
            open_error: None,
            read_error: None,
            shed: 0,
            drops: None,
        };
        loop {
            let mut batch = self.batch();
            let start = Instant::now();
            let fill = source.fill(&mut batch);
            self.busy += start.elapsed();
            report.packets += batch.frames.len() as u64;
            report.bytes += batch
                .frames
                .iter()
                .map(|f| u64::from(f.wire_len))
                .sum::<u64>();
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
            if batch.frames.is_empty() {
                let _ = self.recycle_local(batch);
            } else {
                self.send(batch, &mut report);
            }
            match fill {
                Fill::More => self.tick(&mut *source, false, &mut report),
                Fill::Done => break,
                Fill::Failed(message) => {
                    report.read_error = Some(message);
                    break;
                }
            }
        }
        self.tick(&mut *source, true, &mut report);
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
                live: false,
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
