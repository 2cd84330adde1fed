//! Frames held in memory: for `bench` (classification without I/O) and for tests.

use super::{Batch, Fill, Source};
use crate::decode::Link;

/// A list of frames in memory, replayed in order.
#[derive(Clone, Debug)]
pub struct MemorySource {
    name: String,
    link: Link,
    /// (capture time in ns, wire length, bytes)
    frames: Vec<(u64, u32, Vec<u8>)>,
    next: usize,
}

impl MemorySource {
    pub fn new(name: &str, link: Link, frames: Vec<(u64, u32, Vec<u8>)>) -> MemorySource {
        MemorySource {
            name: name.to_string(),
            link,
            frames,
            next: 0,
        }
    }

    /// Reads every frame of another source into memory.
    pub fn load(source: &mut dyn Source) -> (MemorySource, Fill) {
        let mut frames = Vec::new();
        let mut batch = Batch::default();
        let end = loop {
            let fill = source.fill(&mut batch);
            frames.extend(
                batch
                    .frames
                    .iter()
                    .map(|f| (f.ts_ns, f.wire_len, batch.bytes(f).to_vec())),
            );
            if fill != super::Fill::More {
                break fill;
            }
        };
        (MemorySource::new(source.name(), source.link(), frames), end)
    }

    /// Starts again from the first frame.
    pub fn rewind(&mut self) {
        self.next = 0;
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The sum of wire lengths.
    pub fn wire_bytes(&self) -> u64 {
        self.frames.iter().map(|f| u64::from(f.1)).sum()
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
        while !batch.is_full() {
            let Some((ts, wire_len, bytes)) = self.frames.get(self.next) else {
                return Fill::Done;
            };
            batch.push(*ts, *wire_len, bytes);
            self.next += 1;
        }
        Fill::More
    }
}
