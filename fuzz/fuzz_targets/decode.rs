//! Arbitrary bytes under every link type, through the decoder, the tunnel and announcement
//! parsers, and a worker's flow tables:
//! no panic, and every frame counted once with its wire length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portscope::catalog::{Catalog, PortTable};
use portscope::classify::{classify_frames, WorkerConfig};
use portscope::announce::announcements;
use portscope::decode::{decode, decode_payload, inner, Link};
use portscope::flow::Timeouts;
use std::sync::LazyLock;

static TABLE: LazyLock<PortTable> =
    LazyLock::new(|| PortTable::build(&Catalog::builtin().unwrap_or_default()));

const DLTS: [i32; 10] = [1, 0, 108, 12, 14, 101, 228, 229, 113, 276];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let link = Link::from_dlt(DLTS[usize::from(selector) % DLTS.len()]);
    let _ = decode(link, rest);
    // The payload parsers: the packet inside a tunnel, announcements of dynamic ports.
    if let Ok((d, payload)) = decode_payload(link, rest) {
        if let Some((_, Ok((i, p)))) = inner(&d, payload) {
            announcements(&i, p, |_| {});
        }
        announcements(&d, payload, |_| {});
    }
    // The same bytes cut into frames (a length byte before each), through a small worker.
    let config = WorkerConfig {
        workers: 2,
        max_flows: 4,
        max_fragments: 2,
        timeouts: Timeouts::ZEEK,
        keep_flows: true,
        live: false,
        follow: true,
    };
    let mut frames = Vec::new();
    let mut at = 0usize;
    while at < rest.len() {
        let len = usize::from(rest[at]);
        let frame = &rest[at + 1..(at + 1 + len).min(rest.len())];
        let wire_len = u32::try_from(frame.len()).unwrap_or(0) + u32::from(selector);
        frames.push((at as u64 * 1_000_000_000, wire_len, frame));
        at += 1 + len;
    }
    let wire: u64 = frames.iter().map(|f| u64::from(f.1)).sum();
    let count = frames.len() as u64;
    let total = classify_frames(&TABLE, config, link, frames).total();
    assert_eq!((total.packets, total.bytes), (count, wire));
});
