//! The threads: one reader fills batches from the sources, N workers decode and classify.
//!
//! The reader deals batches out to the workers in turn over bounded crossbeam channels; the
//! worker that gets a batch decodes it, sends it back for reuse, and routes each packet to
//! the worker owning its flow's shard (see `classify`). Offline, the reader blocks when the
//! workers fall behind, so nothing is dropped; live, it sheds. At the end the workers'
//! tallies are merged in worker order; since every flow lives in exactly one shard, and every
//! shard sees its packets in capture order with its own clock, the result is the same for
//! any thread count.

use crate::capture::{Batch, Drops, Fill, Source};
use crate::catalog::PortTable;
use crate::classify::{Routed, Worker, WorkerConfig};
use crate::decode::Link;
use crate::flow::Tally;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use std::collections::BTreeMap;
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
    /// From a worker: its share of interval `seq` (boxed: once per interval, not per packet).
    Part { seq: u64, tally: Box<Tally> },
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
        // Parts of decoded batches between workers, and the emptied vectors going back.
        let (part_tx, part_rx) = mesh(workers);
        let spare: Vec<Spare> = (0..workers).map(|_| unbounded()).collect();
        let mut senders = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for (id, (outs, ins)) in part_tx.into_iter().zip(part_rx).enumerate() {
            let (tx, rx) = bounded::<Batch>(queue);
            senders.push(tx);
            let links = Links {
                batches: rx,
                recycle: recycle_tx.clone(),
                parts_out: outs,
                parts_in: ins,
                spare_in: spare[id].1.clone(),
                spare_out: spare.iter().map(|s| s.0.clone()).collect(),
                reports: report_tx.clone(),
            };
            handles.push(scope.spawn(move || work(Worker::new(id, table, worker_config), &links)));
        }
        drop(spare);
        drop(recycle_tx);
        let reporter = live.as_ref().map(|l| l.interval);
        let reporter_handle = live.map(|l| {
            let on_interval = l.on_interval;
            scope.spawn(move || report(&report_rx, workers, on_interval))
        });
        let mut reader = Reader {
            senders,
            sent: 0,
            spare: Vec::new(),
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

/// One channel end per ordered pair of workers: `[from][to]` for senders, `[to][from]` for
/// receivers; `None` on the diagonal. Unbounded, because a sender never gets more than
/// [`AHEAD`] batches ahead of the batch it applies, and bounded queues between workers that
/// both run ahead could wait on each other.
type Mesh<T> = Vec<Vec<Option<T>>>;
/// A worker's returned vectors: the sending end for others, the receiving end for itself.
type Spare = (Sender<Vec<Routed>>, Receiver<Vec<Routed>>);

fn mesh(workers: usize) -> (Mesh<Sender<Part>>, Mesh<Receiver<Part>>) {
    let mut tx: Mesh<Sender<Part>> = (0..workers).map(|_| Vec::new()).collect();
    let mut rx: Mesh<Receiver<Part>> = (0..workers).map(|_| Vec::new()).collect();
    for (from, row) in tx.iter_mut().enumerate() {
        for (to, column) in rx.iter_mut().enumerate() {
            let (t, r) = if from == to {
                (None, None)
            } else {
                let (t, r) = unbounded::<Part>();
                (Some(t), Some(r))
            };
            row.push(t);
            column.push(r);
        }
    }
    (tx, rx)
}

/// Routed packets of one batch for one worker, in batch order.
struct Part {
    routed: Vec<Routed>,
    /// Live mode: report the interval with this number after these packets.
    tick: Option<u64>,
}

/// A worker's channels.
struct Links {
    /// The batches this worker decodes (every `workers`-th batch).
    batches: Receiver<Batch>,
    recycle: Sender<Batch>,
    /// Parts this worker decoded for each other worker (`None` for itself).
    parts_out: Vec<Option<Sender<Part>>>,
    /// Parts each other worker decoded for this one.
    parts_in: Vec<Option<Receiver<Part>>>,
    /// Emptied vectors that come back to this worker, and the way back to each worker.
    spare_in: Receiver<Vec<Routed>>,
    spare_out: Vec<Sender<Vec<Routed>>>,
    reports: Sender<Report>,
}

/// How many of its own batches a worker may decode ahead of the batch it applies.
const AHEAD: usize = 4;

/// Decodes one of this worker's batches: sends each other worker its part, returns its own.
fn decode_batch(
    worker: &mut Worker<'_>,
    links: &Links,
    outboxes: &mut [Vec<Routed>],
    batch: Batch,
) -> Part {
    for outbox in outboxes.iter_mut() {
        if outbox.capacity() == 0 {
            *outbox = links.spare_in.try_recv().unwrap_or_default();
        }
    }
    for f in &batch.frames {
        worker.route(batch.link, f.ts_ns, f.wire_len, batch.bytes(f), outboxes);
    }
    let tick = batch.tick;
    // The pool is full only if the reader is gone; then the batch is simply freed.
    let _ = links.recycle.try_send(batch);
    for (to, out) in links.parts_out.iter().enumerate() {
        if let Some(out) = out {
            // A worker only goes away on a panic, which the join reports.
            let _ = out.send(Part {
                routed: std::mem::take(&mut outboxes[to]),
                tick,
            });
        }
    }
    Part {
        routed: std::mem::take(&mut outboxes[worker.id()]),
        tick,
    }
}

/// A worker's loop: batch `b` is decoded by worker `b % workers`, which routes each packet
/// to the worker owning its shard; every worker applies the parts meant for it in batch
/// order, so each shard sees its packets in capture order. While it waits for another
/// worker's part, a worker decodes its own next batches (up to [`AHEAD`]), so decoding runs
/// in parallel.
fn work(mut worker: Worker<'_>, links: &Links) -> (Tally, Duration) {
    let me = worker.id();
    let n = links.parts_out.len();
    let mut busy = Duration::ZERO;
    let mut outboxes: Vec<Vec<Routed>> = (0..n).map(|_| Vec::new()).collect();
    let mut own: std::collections::VecDeque<Part> = std::collections::VecDeque::new();
    let mut batches_open = true;
    for b in 0usize.. {
        let owner = b % n;
        let part = if owner == me {
            if let Some(part) = own.pop_front() {
                part
            } else {
                let Ok(batch) = links.batches.recv() else {
                    break;
                };
                let start = Instant::now();
                let part = decode_batch(&mut worker, links, &mut outboxes, batch);
                busy += start.elapsed();
                part
            }
        } else {
            let Some(inbox) = links.parts_in[owner].as_ref() else {
                break;
            };
            let received = loop {
                if !batches_open || own.len() >= AHEAD {
                    break inbox.recv().ok();
                }
                crossbeam_channel::select! {
                    recv(inbox) -> part => break part.ok(),
                    recv(links.batches) -> batch => match batch {
                        Ok(batch) => {
                            let start = Instant::now();
                            own.push_back(decode_batch(&mut worker, links, &mut outboxes, batch));
                            busy += start.elapsed();
                        }
                        Err(_) => batches_open = false,
                    },
                }
            };
            let Some(part) = received else { break };
            part
        };
        let start = Instant::now();
        worker.apply(&part.routed);
        if let Some(seq) = part.tick {
            let _ = links.reports.send(Report::Part {
                seq,
                tally: Box::new(worker.interval()),
            });
        }
        busy += start.elapsed();
        let mut routed = part.routed;
        routed.clear();
        if owner == me {
            outboxes[me] = routed;
        } else {
            let _ = links.spare_out[owner].send(routed);
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
                    Some(i) => i.tally += *tally,
                    None => {
                        entry.0 = Some(Interval {
                            start: SystemTime::UNIX_EPOCH,
                            end: SystemTime::UNIX_EPOCH,
                            tally: *tally,
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
    senders: Vec<Sender<Batch>>,
    /// Batches sent so far: batch `b` goes to worker `b % workers`.
    sent: usize,
    /// Batches that were filled but not sent, ready for the next fill.
    spare: Vec<Batch>,
    recycle: Receiver<Batch>,
    allocated: usize,
    busy: Duration,
    progress: Option<indicatif::ProgressBar>,
    live: Option<LiveState>,
}

impl Reader {
    fn batch(&mut self) -> Batch {
        if let Some(b) = self.spare.pop() {
            return b;
        }
        if let Ok(b) = self.recycle.try_recv() {
            return b;
        }
        if self.allocated < POOL || self.live.is_some() {
            self.allocated += 1;
            return Batch::default();
        }
        self.recycle.recv().unwrap_or_default()
    }

    /// The queue of the worker that gets the next batch.
    fn next_queue(&self) -> &Sender<Batch> {
        &self.senders[self.sent % self.senders.len()]
    }

    /// Sends a batch to the next worker in turn. Live, a batch that worker has no room for
    /// is shed (counted) rather than waited for: only this thread sends, so room seen here
    /// stays.
    fn send(&mut self, batch: Batch, report: &mut InputReport) {
        let full = self.next_queue().is_full();
        if let Some(live) = &mut self.live {
            if full {
                live.shed += batch.frames.len() as u64;
                report.shed += batch.frames.len() as u64;
                self.keep(batch);
                return;
            }
        }
        // A worker only goes away on a panic, which the join reports.
        let _ = self.next_queue().send(batch);
        self.sent += 1;
    }

    /// Keeps a batch that was not sent (empty, or shed) for the next fill.
    fn keep(&mut self, batch: Batch) {
        self.spare.push(batch);
    }

    /// Live: ends the current interval when it is due (or `now` is forced at the end).
    fn tick(&mut self, source: &mut dyn Source, force: bool, report: &mut InputReport) {
        let full = self.next_queue().is_full();
        let Some(live) = &mut self.live else { return };
        if !force && Instant::now() < live.next {
            return;
        }
        // The tick travels as a batch, after the batches before it; a full queue means the
        // workers are behind, so the tick waits for the next call (unless this is the end).
        if !force && full {
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
            let _ = self.next_queue().send(batch);
            self.sent += 1;
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
                self.keep(batch);
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
                follow: true,
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
