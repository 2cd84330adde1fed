//! Several captures read as one, their frames interleaved by capture time, as mergecap
//! does: two sensors on one network, whose captures overlap in time (`classify --merge`).
//!
//! Each input keeps one batch of its own reader's; the frame with the earliest time among
//! the inputs' next frames goes next (ties: the earlier input), copied into the output
//! batch as the libpcap readers copy (at most [`FRAME_BYTES`](super::FRAME_BYTES) of it),
//! with its link type. Within one input the order is the file's, even where its time goes
//! backwards. The order depends only on the inputs, never on the thread count.

use super::filter::Filtered;
use super::{Batch, Drops, Fill, InputReport, Source};
use crate::decode::Link;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One input of a merge: its reader, the batch it last filled and what was taken of it.
struct Part<'a> {
    source: Box<dyn Source + 'a>,
    batch: Batch,
    next: usize,
    /// The last fill said more may follow.
    more: bool,
    packets: u64,
    bytes: u64,
    /// The earliest and latest capture times of its frames.
    span: Option<(u64, u64)>,
    read_error: Option<String>,
}

/// Captures merged by time; a [`Source`] like any other.
pub struct Merge<'a> {
    parts: Vec<Part<'a>>,
    /// The next frame's time of every input that has one, with the input's index.
    heads: BinaryHeap<Reverse<(u64, usize)>>,
    /// Frames still to deliver (`classify -c`), so that each input counts what it gave.
    limit: Option<u64>,
    started: bool,
    name: String,
}

impl<'a> Merge<'a> {
    /// Merges `sources` (in the order given, which breaks ties), delivering at most
    /// `limit` frames in all.
    pub fn new(sources: Vec<Box<dyn Source + 'a>>, limit: Option<u64>) -> Merge<'a> {
        let name = sources
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(" + ");
        let parts: Vec<Part<'a>> = sources
            .into_iter()
            .map(|source| Part {
                source,
                batch: Batch::default(),
                next: 0,
                more: true,
                packets: 0,
                span: None,
                bytes: 0,
                read_error: None,
            })
            .collect();
        Merge {
            heads: BinaryHeap::with_capacity(parts.len()),
            parts,
            limit,
            started: false,
            name,
        }
    }

    /// Fills input `i`'s batch again, until it has a frame or its reader is done.
    fn refill(&mut self, i: usize) {
        let part = &mut self.parts[i];
        part.next = 0;
        part.batch.frames.clear();
        while part.more && part.batch.frames.is_empty() {
            match part.source.fill(&mut part.batch) {
                Fill::More => {}
                Fill::Done => part.more = false,
                Fill::Failed(message) => {
                    part.read_error = Some(message);
                    part.more = false;
                }
            }
        }
        if let Some(f) = part.batch.frames.first() {
            self.heads.push(Reverse((f.ts_ns, i)));
        }
    }

    /// What became of each input, in the order given.
    pub fn reports(&mut self) -> Vec<InputReport> {
        self.parts
            .iter_mut()
            .map(|p| InputReport {
                name: p.source.name().to_string(),
                link: Some(p.source.link()),
                links: p.source.links(),
                span: p.span,
                packets: p.packets,
                bytes: p.bytes,
                open_error: None,
                read_error: p.read_error.clone(),
                shed: 0,
                drops: p.source.drops(),
                filtered: p.source.filtered(),
                note: p.source.note(),
            })
            .collect()
    }
}

impl Source for Merge<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    fn link(&self) -> Link {
        self.parts
            .first()
            .map_or(Link::Ethernet, |p| p.source.link())
    }

    fn fill(&mut self, out: &mut Batch) -> Fill {
        if !self.started {
            self.started = true;
            for i in 0..self.parts.len() {
                self.refill(i);
            }
        }
        out.clear(self.link());
        while !out.is_full() && self.limit != Some(0) {
            let Some(Reverse((_, i))) = self.heads.pop() else {
                break;
            };
            let part = &mut self.parts[i];
            let f = part.batch.frames[part.next];
            out.push_from(&part.batch, &f);
            part.packets += 1;
            part.bytes += u64::from(f.wire_len);
            let span = part.span.get_or_insert((f.ts_ns, f.ts_ns));
            *span = (span.0.min(f.ts_ns), span.1.max(f.ts_ns));
            part.next += 1;
            if let Some(left) = &mut self.limit {
                *left -= 1;
            }
            match part.batch.frames.get(part.next) {
                Some(n) => self.heads.push(Reverse((n.ts_ns, i))),
                None => self.refill(i),
            }
        }
        if self.heads.is_empty() || self.limit == Some(0) {
            Fill::Done
        } else {
            Fill::More
        }
    }

    fn position(&self) -> Option<u64> {
        self.parts.iter().map(|p| p.source.position()).sum()
    }

    fn drops(&mut self) -> Option<Drops> {
        None
    }

    fn filtered(&self) -> Option<Filtered> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::MemorySource;
    use super::*;

    fn source(name: &str, times: &[u64]) -> Box<dyn Source> {
        let frames = times.iter().map(|&t| (t, 60, vec![t as u8; 60])).collect();
        Box::new(MemorySource::new(name, Link::Ethernet, frames))
    }

    #[test]
    fn frames_come_in_time_order_ties_to_the_first_input() {
        let a = source("a", &[1, 3, 3, 9]);
        let b = source("b", &[2, 3, 4, 5, 6]);
        let mut m = Merge::new(vec![a, b], None);
        let mut batch = Batch::default();
        assert_eq!(m.fill(&mut batch), Fill::Done);
        let got: Vec<(u64, u8)> = batch
            .frames
            .iter()
            .map(|f| (f.ts_ns, batch.bytes(f)[0]))
            .collect();
        let times: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(times, [1, 2, 3, 3, 3, 4, 5, 6, 9]);
        let r = m.reports();
        assert_eq!((r[0].packets, r[1].packets), (4, 5));
        // With a limit, each input counts what it gave.
        let mut m = Merge::new(vec![source("a", &[1, 3]), source("b", &[2, 4])], Some(3));
        assert_eq!(m.fill(&mut batch), Fill::Done);
        assert_eq!(batch.frames.len(), 3);
        let r = m.reports();
        assert_eq!((r[0].packets, r[1].packets), (2, 1));
    }
}
