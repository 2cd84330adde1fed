//! The worker mesh: batch `b` is decoded by worker `b % workers`, which routes each record
//! to the worker that owns its shard; every worker applies the records meant for it in batch
//! order, so each shard sees its packets in capture order, whatever the number of workers.

use super::live::Report;
use crate::capture::Batch;
use crate::flow::{FlowRecord, Tally};
use crate::worker::{Outboxes, Routed, Worker};
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::time::{Duration, Instant};

/// One channel end per ordered pair of workers: `[from][to]` for senders, `[to][from]` for
/// receivers; `None` on the diagonal. Unbounded, because a sender never gets more than
/// [`AHEAD`] batches ahead of the batch it applies, and bounded queues between workers that
/// both run ahead could wait on each other.
pub(super) type Mesh<T> = Vec<Vec<Option<T>>>;
/// A worker's returned vectors: the sending end for others, the receiving end for itself.
pub(super) type Spare = (Sender<Vec<Routed>>, Receiver<Vec<Routed>>);

pub(super) fn mesh(workers: usize) -> (Mesh<Sender<Part>>, Mesh<Receiver<Part>>) {
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
pub(super) struct Part {
    routed: Vec<Routed>,
    /// Live mode: report the interval with this number after these packets.
    tick: Option<u64>,
}

/// A worker's channels.
pub(super) struct Links {
    /// The batches this worker decodes (every `workers`-th batch).
    pub batches: Receiver<Batch>,
    pub recycle: Sender<Batch>,
    /// Parts this worker decoded for each other worker (`None` for itself).
    pub parts_out: Vec<Option<Sender<Part>>>,
    /// Parts each other worker decoded for this one.
    pub parts_in: Vec<Option<Receiver<Part>>>,
    /// Emptied vectors that come back to this worker, and the way back to each worker.
    pub spare_in: Receiver<Vec<Routed>>,
    pub spare_out: Vec<Sender<Vec<Routed>>>,
    pub reports: Sender<Report>,
    /// Where finished flows go while the run goes on, when they are exported.
    pub finished: Option<Sender<Vec<FlowRecord>>>,
    /// The vectors the export emptied, for the next hand-over.
    pub emptied: Receiver<Vec<FlowRecord>>,
    /// Live: finished flows also go at least this often (of wall time), however few, so
    /// that a collector sees them while the capture goes on.
    pub flush_every: Option<Duration>,
    /// How many of its own batches this worker may decode ahead: [`AHEAD`], or 0 with
    /// intervals of capture time, where what decoding counts itself (frames that are not
    /// IP, undecodable ones) must fall in the interval of the batch it decodes.
    pub ahead: usize,
}

/// How many of its own batches a worker may decode ahead of the batch it applies.
pub(super) const AHEAD: usize = 4;

/// Decodes one of this worker's batches: sends each other worker its part, returns its own.
fn decode_batch(
    worker: &mut Worker<'_>,
    links: &Links,
    outboxes: &mut Outboxes,
    batch: Batch,
) -> Part {
    for outbox in outboxes.iter_mut() {
        if outbox.capacity() == 0 {
            *outbox = links.spare_in.try_recv().unwrap_or_default();
        }
    }
    for f in &batch.frames {
        worker.route(
            batch.link_of(f),
            f.ts_ns,
            f.wire_len,
            batch.bytes(f),
            outboxes,
        );
    }
    let tick = batch.tick;
    // The pool is full only if the reader is gone; then the batch is simply freed.
    let _ = links.recycle.try_send(batch);
    for (to, out) in links.parts_out.iter().enumerate() {
        if let Some(out) = out {
            // A worker only goes away on a panic, which the join reports.
            let _ = out.send(Part {
                routed: std::mem::take(outboxes.of(to)),
                tick,
            });
        }
    }
    Part {
        routed: std::mem::take(outboxes.of(worker.id())),
        tick,
    }
}

/// A worker's loop: batch `b` is decoded by worker `b % workers`, which routes each packet
/// to the worker owning its shard; every worker applies the parts meant for it in batch
/// order, so each shard sees its packets in capture order. While it waits for another
/// worker's part, a worker decodes its own next batches (up to [`AHEAD`]), so decoding runs
/// in parallel.
pub(super) fn work(mut worker: Worker<'_>, links: &Links) -> (Tally, Duration) {
    let me = worker.id();
    let n = links.parts_out.len();
    let mut busy = Duration::ZERO;
    let mut outboxes = Outboxes::new(n);
    #[cfg(debug_assertions)]
    let fault = fault::Fault::for_worker(me);
    let mut own: std::collections::VecDeque<Part> = std::collections::VecDeque::new();
    let mut batches_open = true;
    let mut flushed = Instant::now();
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
                if !batches_open || own.len() >= links.ahead {
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
        #[cfg(debug_assertions)]
        fault.strike();
        worker.apply(&part.routed);
        if let Some(tx) = &links.finished {
            let due = links
                .flush_every
                .is_some_and(|every| flushed.elapsed() >= every);
            let at_least = if due { 1 } else { super::EXPORT_CHUNK };
            let next = || {
                links
                    .emptied
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(2 * super::EXPORT_CHUNK))
            };
            if let Some(flows) = worker.take_flows(at_least, next) {
                let _ = tx.send(flows);
            }
            if due {
                flushed = Instant::now();
            }
        }
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
            *outboxes.of(me) = routed;
        } else {
            let _ = links.spare_out[owner].send(routed);
        }
    }
    (worker.finish(), busy)
}

/// Fault injection for the tests, compiled into debug builds only: the test suite makes a
/// worker panic to check that the run then fails loudly instead of reporting less.
#[cfg(debug_assertions)]
mod fault {
    /// Armed when `PORTSCOPE_PANIC_WORKER` names this worker.
    pub struct Fault(Option<usize>);

    impl Fault {
        pub fn for_worker(id: usize) -> Fault {
            let armed = std::env::var("PORTSCOPE_PANIC_WORKER").is_ok_and(|v| v == id.to_string());
            Fault(armed.then_some(id))
        }

        /// Panics, when armed, before the worker applies its first part.
        pub fn strike(&self) {
            if let Some(id) = self.0 {
                panic!("fault injected by PORTSCOPE_PANIC_WORKER={id}");
            }
        }
    }
}
