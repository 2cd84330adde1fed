//! The reader: fills batches from each source in turn and deals them to the workers, batch
//! `b` to worker `b % workers`. Offline it waits for room; live it sheds a batch the next
//! worker has no room for (counted), and ends an interval with a tick when one is due.
//! With intervals of capture time (`classify --interval`) it never sheds, and cuts batches
//! where an interval ends, so every packet is reported in the interval of its timestamp.

use super::live::Report;
use super::{Opened, QUEUE};
use crate::capture::{self, Batch, Fill, InputReport, Source};
use crossbeam_channel::{Receiver, Sender};
use std::time::{Duration, Instant, SystemTime};

/// Batches allocated at most; more are recycled.
const POOL: usize = 4 * QUEUE;

pub(super) struct LiveState {
    pub interval: Duration,
    pub reports: Sender<Report>,
    pub seq: u64,
    pub start: SystemTime,
    pub next: Instant,
    pub shed: u64,
    /// Intervals of capture time instead of wall-clock time.
    pub capture: Option<CaptureClock>,
}

impl LiveState {
    /// Intervals of `interval`, of capture time (`capture_time`) or wall-clock time from
    /// now, reported on `reports`.
    pub fn new(interval: Duration, capture_time: bool, reports: Sender<Report>) -> LiveState {
        LiveState {
            interval,
            reports,
            seq: 0,
            start: SystemTime::now(),
            next: Instant::now() + interval,
            shed: 0,
            capture: capture_time.then(|| CaptureClock {
                step_ns: u64::try_from(interval.as_nanos())
                    .unwrap_or(u64::MAX)
                    .max(1),
                span: None,
            }),
        }
    }
}

/// Intervals of capture time: the first starts at the first packet's time, each lasts
/// `step_ns`, and empty ones are reported too (as tshark's `io,stat` counts them). A packet
/// earlier than the current interval (time going backwards) counts in the current one.
pub(super) struct CaptureClock {
    pub step_ns: u64,
    /// The current interval's start and end, once the first packet is seen.
    pub span: Option<(u64, u64)>,
}

/// Empty intervals reported one by one before the rest of a gap in capture time is
/// reported as one (`classify --interval`'s help says so).
const MAX_EMPTY: u32 = 1000;

/// Whether a frame at `ts` is past an interval ending at `end`. The last representable
/// interval (ending at `u64::MAX` ns, in 2554) holds everything after it.
fn due(ts: u64, end: u64) -> bool {
    ts >= end && end < u64::MAX
}

fn at(ns: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)
}

pub(super) struct Reader {
    senders: Vec<Sender<Batch>>,
    /// Batches sent so far: batch `b` goes to worker `b % workers`.
    sent: usize,
    /// Batches that were filled but not sent, ready for the next fill.
    spare: Vec<Batch>,
    recycle: Receiver<Batch>,
    allocated: usize,
    /// Time spent filling batches (the rest it waited for workers or batches).
    pub busy: Duration,
    /// Packets still to read, when the run is limited to a count.
    pub remaining: Option<u64>,
    progress: Option<indicatif::ProgressBar>,
    live: Option<LiveState>,
}

impl Reader {
    pub fn new(
        senders: Vec<Sender<Batch>>,
        recycle: Receiver<Batch>,
        progress: Option<indicatif::ProgressBar>,
        live: Option<LiveState>,
    ) -> Reader {
        Reader {
            senders,
            sent: 0,
            spare: Vec::new(),
            recycle,
            allocated: 0,
            busy: Duration::ZERO,
            remaining: None,
            progress,
            live,
        }
    }

    fn batch(&mut self) -> Batch {
        if let Some(b) = self.spare.pop() {
            return b;
        }
        if let Ok(b) = self.recycle.try_recv() {
            return b;
        }
        let sheds = self.live.as_ref().is_some_and(|l| l.capture.is_none());
        if self.allocated < POOL || sheds {
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
        if let Some(live) = self.live.as_mut().filter(|l| l.capture.is_none()) {
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

    /// Sends a batch cut at the ends of intervals of capture time: the frames before an
    /// interval's end go (copied into a batch of their own), the interval's tick follows
    /// (and those of empty intervals after it), and the rest of the batch goes on.
    fn send_by_capture_time(&mut self, mut batch: Batch, report: &mut InputReport) {
        loop {
            let Some(clock) = self.live.as_mut().and_then(|l| l.capture.as_mut()) else {
                return self.send(batch, report);
            };
            let Some(first) = batch.frames.first() else {
                return self.keep(batch);
            };
            let (_, end) = *clock
                .span
                .get_or_insert((first.ts_ns, first.ts_ns.saturating_add(clock.step_ns)));
            let Some(cut) = batch.frames.iter().position(|f| due(f.ts_ns, end)) else {
                return self.send(batch, report);
            };
            if cut > 0 {
                let mut head = self.batch();
                head.clear(batch.link());
                for f in &batch.frames[..cut] {
                    head.push_from(&batch, f);
                }
                self.send(head, report);
                batch.frames.drain(..cut);
            }
            let next = batch.frames[0].ts_ns;
            let mut empty = 0;
            while let Some(clock) = self
                .live
                .as_mut()
                .and_then(|l| l.capture.as_mut())
                .filter(|c| c.span.is_some_and(|(_, end)| due(next, end)))
            {
                // The interval just ended was reported; the ones after it are empty up to
                // the one holding `next`. Past MAX_EMPTY of them, the rest of the gap is
                // one interval, so a jump in the clock cannot make billions of lines.
                if empty == MAX_EMPTY {
                    if let Some((start, end)) = clock.span {
                        let steps = (next - end) / clock.step_ns;
                        clock.span = Some((start, end + steps * clock.step_ns));
                    }
                }
                self.capture_tick(batch.link());
                empty += 1;
            }
        }
    }

    /// Ends the current interval of capture time and starts the next.
    fn capture_tick(&mut self, link: crate::decode::Link) {
        let Some(live) = &mut self.live else { return };
        let Some(clock) = &mut live.capture else {
            return;
        };
        let Some((start, end)) = clock.span else {
            return;
        };
        clock.span = Some((end, end.saturating_add(clock.step_ns)));
        let _ = live.reports.send(Report::Tick {
            seq: live.seq,
            start: at(start),
            end: at(end),
            shed: 0,
            drops: None,
        });
        let seq = live.seq;
        live.seq += 1;
        let mut batch = self.batch();
        batch.clear(link);
        batch.tick = Some(seq);
        let _ = self.next_queue().send(batch);
        self.sent += 1;
    }

    /// Intervals of capture time: ends the last interval, after every input.
    pub fn finish(&mut self) {
        let started = self
            .live
            .as_ref()
            .and_then(|l| l.capture.as_ref())
            .is_some_and(|c| c.span.is_some());
        if started {
            self.capture_tick(crate::decode::Link::Ethernet);
        }
    }

    /// Live: ends the current interval when it is due (or `now` is forced at the end).
    fn tick(&mut self, source: &mut dyn Source, force: bool, report: &mut InputReport) {
        let full = self.next_queue().is_full();
        let Some(live) = self.live.as_mut().filter(|l| l.capture.is_none()) else {
            return;
        };
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

    /// Reads all `sources` as one capture, their frames interleaved by time
    /// ([`capture::Merge`]), through [`Reader::read`]; what became of each, in order.
    pub fn read_merged(&mut self, sources: Vec<Opened<'_>>) -> Vec<InputReport> {
        let mut reports: Vec<Option<InputReport>> = Vec::with_capacity(sources.len());
        let mut open = Vec::with_capacity(sources.len());
        for opened in sources {
            match opened {
                Ok(source) => {
                    open.push(source);
                    reports.push(None);
                }
                Err(e) => reports.push(Some(self.read(Err(e)))),
            }
        }
        let mut merge = capture::Merge::new(open, self.remaining);
        // The merge delivers no more than the limit, and counts what each input gave.
        let _ = self.read(Ok(Box::new(&mut merge)));
        let mut merged = merge.reports().into_iter();
        reports
            .into_iter()
            .filter_map(|r| r.or_else(|| merged.next()))
            .collect()
    }

    pub fn read(&mut self, opened: Opened<'_>) -> InputReport {
        let mut source = match opened {
            Ok(source) => source,
            Err(e) => {
                let (name, message) = e.parts();
                return InputReport {
                    open_error: Some(message),
                    ..InputReport::named(name)
                };
            }
        };
        let mut report = InputReport::named(source.name().to_string());
        let mut position = 0;
        loop {
            let mut batch = self.batch();
            let start = Instant::now();
            let mut fill = source.fill(&mut batch);
            self.busy += start.elapsed();
            if let Some(left) = &mut self.remaining {
                let keep = usize::try_from(*left).unwrap_or(usize::MAX);
                if batch.frames.len() >= keep {
                    batch.frames.truncate(keep);
                    fill = Fill::Done;
                }
                *left -= batch.frames.len() as u64;
            }
            report.packets += batch.frames.len() as u64;
            let (mut bytes, mut first, mut last) = (0, u64::MAX, 0);
            for f in &batch.frames {
                bytes += u64::from(f.wire_len);
                first = first.min(f.ts_ns);
                last = last.max(f.ts_ns);
            }
            report.bytes += bytes;
            if first <= last {
                let span = report.span.get_or_insert((first, last));
                *span = (span.0.min(first), span.1.max(last));
            }
            if let Some(bar) = &self.progress {
                bar.inc(progress(&*source, &batch, &mut position));
            }
            if batch.frames.is_empty() {
                self.keep(batch);
            } else {
                self.send_by_capture_time(batch, &mut report);
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
        // Known once read: a pcapng file's first interface, its statistics blocks' counters.
        report.link = Some(source.link());
        report.links = source.links();
        // Offline (intervals of capture time included): the file's own drop counters.
        if !self.live.as_ref().is_some_and(|l| l.capture.is_none()) {
            report.drops = source.drops();
        }
        report.filtered = source.filtered();
        report.note = source.note();
        report
    }
}
/// How far a batch moved the progress bar: the bytes of the file (compressed, if it is)
/// read since `position`, or where the source cannot say, its frames' record headers and
/// captured bytes (their offset in a classic pcap file).
fn progress(source: &dyn Source, batch: &Batch, position: &mut u64) -> u64 {
    match source.position() {
        Some(now) => now.saturating_sub(std::mem::replace(position, now)),
        None => {
            batch.frames.len() as u64 * 16
                + batch
                    .frames
                    .iter()
                    .map(|f| u64::from(f.wire_len.min(262_144)))
                    .sum::<u64>()
        }
    }
}
