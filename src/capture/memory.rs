//! Frames held in memory: for `bench` (classification without I/O) and for tests.
//!
//! The frames are laid out in ready-made batches before the run, and `fill` hands each one
//! over whole (swapping it for the pipeline's empty batch), so a benchmark measures the
//! workers, not the reader. A source is used up by one run: make another for the next.

use super::{Batch, Fill, Source};
use crate::decode::Link;

/// A list of frames in memory, replayed in order.
#[derive(Debug)]
pub struct MemorySource {
    name: String,
    link: Link,
    batches: Vec<Batch>,
    frames: usize,
    wire_bytes: u64,
    next: usize,
}

impl MemorySource {
    /// Frames as (capture time in ns, wire length, bytes).
    pub fn new(name: &str, link: Link, frames: Vec<(u64, u32, Vec<u8>)>) -> MemorySource {
        MemorySource::from_slice(name, link, &frames)
    }

    /// As [`MemorySource::new`], from borrowed frames.
    pub fn from_slice(name: &str, link: Link, frames: &[(u64, u32, Vec<u8>)]) -> MemorySource {
        let mut batches = Vec::new();
        let mut batch = Batch::default();
        batch.clear(link);
        let (count, mut wire_bytes) = (frames.len(), 0);
        for (ts, wire_len, bytes) in frames {
            wire_bytes += u64::from(*wire_len);
            batch.push(*ts, *wire_len, bytes);
            if batch.is_full() {
                batches.push(std::mem::take(&mut batch));
                batch.clear(link);
            }
        }
        if !batch.frames.is_empty() {
            batches.push(batch);
        }
        MemorySource {
            name: name.to_string(),
            link,
            batches,
            frames: count,
            wire_bytes,
            next: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.frames
    }

    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// The sum of wire lengths.
    pub fn wire_bytes(&self) -> u64 {
        self.wire_bytes
    }
}

impl Source for MemorySource {
    fn name(&self) -> &str {
        &self.name
    }

    fn link(&self) -> Link {
        self.link
    }

    fn fill(&mut self, batch: &mut Batch) -> Fill {
        batch.clear(self.link);
        let Some(ready) = self.batches.get_mut(self.next) else {
            return Fill::Done;
        };
        std::mem::swap(batch, ready);
        self.next += 1;
        if self.next == self.batches.len() {
            Fill::Done
        } else {
            Fill::More
        }
    }
}
