//! The threads: one reader fills batches from the sources, N workers decode and classify.
//!
//! The reader ([`reader`]) deals batches out to the workers in turn over bounded crossbeam
//! channels; the worker that gets a batch decodes it, sends it back for reuse, and routes
//! each record to the worker owning its flow's shard ([`mesh`]). Offline, the reader blocks
//! when the workers fall behind, so nothing is dropped; live, it sheds, and a reporting
//! thread gathers each interval ([`live`]). At the end the workers' tallies are merged in
//! worker order; since every flow lives in exactly one shard, and every shard sees its
//! packets in capture order with its own clock, the result is the same for any thread
//! count. A thread that panics fails the run: its share of the packets would be missing.

mod live;
mod mesh;
mod reader;

pub use live::{Interval, Live};

use crate::capture::{Batch, InputReport, Source};
use crate::catalog::PortTable;
use crate::flow::{FlowRecord, Tally};
use crate::worker::{Worker, WorkerConfig};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use live::Report;
use mesh::{mesh, work, Links, Spare, AHEAD};
use reader::{LiveState, Reader};
use std::time::{Duration, Instant};

/// Batches in flight per worker before the reader waits.
const QUEUE: usize = 8;
/// Live, a deeper queue absorbs bursts (64 batches of 512 frames: about 45 ms at 700k
/// packets per second) before the reader has to shed.
const LIVE_QUEUE: usize = 64;

/// What to run with.
#[derive(Clone, Debug)]
pub struct Config {
    pub worker: WorkerConfig,
    /// Advanced by the number of captured bytes read, when set.
    pub progress: Option<indicatif::ProgressBar>,
    /// Read at most this many packets, over all inputs (`classify -c`); inputs after the
    /// last one read are not opened.
    pub max_packets: Option<u64>,
    /// Interleave the frames of all inputs by capture time (`classify --merge`) instead of
    /// reading them one after the other.
    pub merge: bool,
    /// `--smb-keys`: SMB3 sessions to decrypt.
    pub smb_keys: Option<std::sync::Arc<crate::inspect::smb::crypt::Keys>>,
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
///
/// # Errors
/// [`Panicked`] when a thread panicked: a bug, whose tally is lost.
pub fn run<'a>(
    sources: impl IntoIterator<Item = Opened<'a>>,
    table: &PortTable,
    config: &Config,
) -> Result<Outcome, Panicked> {
    run_exporting(sources, table, config, None, None)
}

/// Finished flows handed over while the run goes on (IPFIX export), on a thread of their
/// own, so that what the sink does (encoding, paced sends) overlaps the pipeline's work:
/// each worker's finished flows in chunks of [`EXPORT_CHUNK`] as they end, in no fixed
/// order, and the rest once the workers are done.
pub struct Export<'s> {
    pub sink: &'s mut (dyn FnMut(&[FlowRecord]) + Send),
    /// Whether the outcome keeps the flows too (`--flows`); live runs,
    /// which would keep them without end, do not.
    pub keep: bool,
}

/// How many finished flows a worker gathers before it hands them to the export.
pub const EXPORT_CHUNK: usize = 1024;
/// Live, a worker hands over what it has at least this often (of wall time), however few.
const LIVE_FLUSH: Duration = Duration::from_secs(1);

/// A pipeline thread panicked, so the tally lacks what it held.
#[derive(Debug, thiserror::Error)]
#[error("internal error: {thread} panicked ({message}); no report, as it would lack that thread's packets")]
pub struct Panicked {
    /// `worker N`, `the live reporter` or `the export`.
    pub thread: String,
    pub message: String,
}

impl Panicked {
    fn new(thread: String, payload: &(dyn std::any::Any + Send)) -> Panicked {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Panicked { thread, message }
    }
}

/// [`run`], reporting intervals with `live` (see [`Live`]; for a live capture, batches are
/// shed rather than waited for), and handing finished flows to `export` as they end.
///
/// # Errors
/// A thread of the run panicked (the export's included).
pub fn run_exporting<'a>(
    sources: impl IntoIterator<Item = Opened<'a>>,
    table: &PortTable,
    config: &Config,
    live: Option<Live<'_>>,
    export: Option<Export<'_>>,
) -> Result<Outcome, Panicked> {
    let started = Instant::now();
    let workers = config.worker.workers.max(1);
    let intervals = live.is_some();
    std::thread::scope(|scope| {
        let sheds = live.as_ref().is_some_and(|l| !l.capture_time);
        let exact_intervals = live.as_ref().is_some_and(|l| l.capture_time);
        let queue = if sheds { LIVE_QUEUE } else { QUEUE };
        let (recycle_tx, recycle_rx) = bounded::<Batch>(4 * queue);
        let (report_tx, report_rx) = unbounded::<Report>();
        // Parts of decoded batches between workers, and the emptied vectors going back.
        let (part_tx, part_rx) = mesh(workers);
        let spare: Vec<Spare> = (0..workers).map(|_| unbounded()).collect();
        let (finished_tx, finished_rx) = unbounded::<Vec<FlowRecord>>();
        let finished_tx = export.is_some().then_some(finished_tx);
        // The export's emptied vectors go back to the workers (unless it keeps the flows),
        // so that a hand-over neither grows a vector from nothing nor faults in new pages.
        let (emptied_tx, emptied_rx) = bounded::<Vec<FlowRecord>>(2 * workers + 2);
        let exporter =
            export.map(|export| scope.spawn(move || exporting(export, &finished_rx, &emptied_tx)));
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
                finished: finished_tx.clone(),
                emptied: emptied_rx.clone(),
                flush_every: sheds.then_some(LIVE_FLUSH),
                ahead: if exact_intervals { 0 } else { AHEAD },
            };
            let keys = config.smb_keys.as_deref();
            let worker = Worker::new(id, table, config.worker, intervals, keys);
            handles.push(scope.spawn(move || work(worker, &links)));
        }
        drop(spare);
        drop(recycle_tx);
        let reporter = live.as_ref().map(|l| (l.interval, l.capture_time));
        let reporter_handle = live.map(|l| {
            let on_interval = l.on_interval;
            scope.spawn(move || live::report(&report_rx, workers, on_interval))
        });
        let live_state = reporter.map(|(interval, capture_time)| {
            LiveState::new(interval, capture_time, report_tx.clone())
        });
        let mut reader = Reader::new(senders, recycle_rx, config.progress.clone(), live_state);
        reader.remaining = config.max_packets;
        drop(report_tx);
        let inputs = read_all(&mut reader, sources, config.merge);
        reader.finish();
        let reader_busy = reader.busy;
        drop(reader);
        let (mut tally, workers_busy, mut panicked) = join_workers(handles, config);
        if let Some(Err(payload)) = reporter_handle.map(|h| h.join()) {
            panicked.get_or_insert(Panicked::new("the live reporter".into(), &*payload));
        }
        if let Some(tx) = finished_tx {
            // The flows that ended with the input go last.
            let _ = tx.send(std::mem::take(&mut tally.flows));
            drop(tx);
            if let Some(Err(p)) = exporter.map(|h| h.join().map(|kept| tally.flows = kept.concat()))
            {
                panicked.get_or_insert(Panicked::new("the export".into(), &*p));
            }
        }
        if let Some(p) = panicked {
            return Err(p);
        }
        Ok(Outcome {
            tally,
            inputs,
            timings: Timings {
                elapsed: started.elapsed(),
                reader_busy,
                workers_busy,
                workers,
            },
        })
    })
}

/// The export thread: hands each chunk of finished flows to the sink, and keeps them
/// (`keep`) or sends the emptied vector back to the workers.
fn exporting(
    Export { sink, keep }: Export<'_>,
    finished: &Receiver<Vec<FlowRecord>>,
    emptied: &Sender<Vec<FlowRecord>>,
) -> Vec<Vec<FlowRecord>> {
    let mut kept = Vec::new();
    for mut flows in finished {
        sink(&flows);
        if keep {
            kept.push(flows);
        } else {
            flows.clear();
            let _ = emptied.try_send(flows);
        }
    }
    kept
}

/// Reads every source in turn, or all of them interleaved by time (`merge`), until the
/// packet budget runs out.
fn read_all<'a>(
    reader: &mut Reader,
    sources: impl IntoIterator<Item = Opened<'a>>,
    merge: bool,
) -> Vec<InputReport> {
    if merge {
        return reader.read_merged(sources.into_iter().collect());
    }
    let mut inputs = Vec::new();
    for source in sources {
        if reader.remaining == Some(0) {
            break;
        }
        inputs.push(reader.read(source));
    }
    inputs
}

/// Joins the workers in order: their tallies added up, their busy time, and the first
/// that panicked.
fn join_workers(
    handles: Vec<std::thread::ScopedJoinHandle<'_, (Tally, Duration)>>,
    config: &Config,
) -> (Tally, Duration, Option<Panicked>) {
    let mut tally = Tally::new(config.worker.keep_flows);
    let mut workers_busy = Duration::ZERO;
    let mut panicked = None;
    for (id, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok((part, busy)) => {
                tally += part;
                workers_busy += busy;
            }
            Err(payload) => {
                panicked.get_or_insert(Panicked::new(format!("worker {id}"), &*payload));
            }
        }
    }
    (tally, workers_busy, panicked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::MemorySource;
    use crate::catalog::Catalog;
    use crate::decode::test_util::eth_tcp4;
    use crate::decode::Link;

    fn config(workers: usize, max_flows: usize) -> Config {
        Config {
            worker: WorkerConfig {
                max_flows,
                max_fragments: 100,
                keep_flows: true,
                ..WorkerConfig::new(workers)
            },
            progress: None,
            max_packets: None,
            merge: false,
            smb_keys: None,
        }
    }

    #[test]
    fn the_export_is_handed_every_flow_once_while_the_run_goes_on() {
        let catalog = Catalog::builtin().unwrap();
        let table = PortTable::build(&catalog);
        // 3,000 TCP flows of one packet, a second apart: all but the last 300 go idle (300 s)
        // before the input ends.
        let frames: Vec<_> = (0..3000u64)
            .map(|i| {
                let f = eth_tcp4(10_000 + u16::try_from(i).unwrap(), 445, &[0; 10]);
                (i * 1_000_000_000, u32::try_from(f.len()).unwrap(), f)
            })
            .collect();
        for (workers, keep) in [(1, true), (2, true), (2, false)] {
            let src = MemorySource::new("mem", Link::Ethernet, frames.clone());
            let mut handed: Vec<usize> = Vec::new();
            let mut sink = |flows: &[FlowRecord]| handed.push(flows.len());
            let export = Export {
                sink: &mut sink,
                keep,
            };
            let out = run_exporting(
                [Ok(Box::new(src) as Box<dyn Source>)],
                &table,
                &config(workers, 100_000),
                None,
                Some(export),
            )
            .unwrap();
            assert_eq!(handed.iter().sum::<usize>(), 3000, "{workers} {keep}");
            // Chunks of finished flows came before the last hand-over (the flows that ended
            // with the input).
            assert!(handed.len() >= 2, "{handed:?}");
            assert!(handed[..handed.len() - 1]
                .iter()
                .all(|&n| n >= EXPORT_CHUNK));
            assert_eq!(out.tally.flows.len(), if keep { 3000 } else { 0 });
            assert_eq!(out.tally.flow_count, 3000);
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
            )
            .unwrap();
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
