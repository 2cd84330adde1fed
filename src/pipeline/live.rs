//! Live mode's reporting: every interval the reader sends a tick through the workers; each
//! worker reports what it counted since its last tick, and the reporting thread hands each
//! complete interval on, in order.

use crate::capture::Drops;
use crate::flow::Tally;
use crossbeam_channel::Receiver;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Report every `interval`: live, of wall-clock time, never blocking the reader; or, with
/// `capture_time` (`classify --interval`), of capture time from the first packet, with
/// nothing shed and each packet in the interval its timestamp falls in.
pub struct Live<'h> {
    pub interval: Duration,
    pub capture_time: bool,
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

/// Messages to the live reporting thread.
pub(super) enum Report {
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

/// Gathers each interval's parts from every worker and hands them on, in order.
pub(super) fn report(
    rx: &Receiver<Report>,
    workers: usize,
    on_interval: &mut (dyn FnMut(Interval) + Send),
) {
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
