//! Arbitrary bytes under every link type, through the decoder and a worker's flow tables:
//! no panic, and every frame counted once with its wire length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portscope::catalog::{Catalog, PortTable};
use portscope::classify::{Worker, WorkerConfig};
use portscope::decode::{decode, Link};
use portscope::flow::Timeouts;
use std::sync::LazyLock;

static TABLE: LazyLock<PortTable> =
    LazyLock::new(|| PortTable::build(&Catalog::builtin().unwrap_or_default()));

const DLTS: [i32; 10] = [1, 0, 108, 12, 14, 101, 228, 229, 113, 276];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let link = Link::from_dlt(DLTS[usize::from(selector) % DLTS.len()]);
    let _ = decode(link, rest);
    // The same bytes cut into frames (a length byte before each), through a small worker.
    let config = WorkerConfig {
        workers: 1,
        max_flows: 4,
        max_fragments: 2,
        timeouts: Timeouts::ZEEK,
        keep_flows: true,
        live: false,
    };
    let mut worker = Worker::new(0, &TABLE, config);
    let (mut frames, mut wire, mut at) = (0u64, 0u64, 0usize);
    while at < rest.len() {
        let len = usize::from(rest[at]);
        let frame = &rest[at + 1..(at + 1 + len).min(rest.len())];
        let wire_len = u32::try_from(frame.len()).unwrap_or(0) + u32::from(selector);
        worker.frame(link, at as u64 * 1_000_000_000, wire_len, frame);
        frames += 1;
        wire += u64::from(wire_len);
        at += 1 + len;
    }
    let total = worker.finish().total();
    assert_eq!((total.packets, total.bytes), (frames, wire));
});
