//! Arbitrary bytes under every link type, through the decoder, the tunnel, announcement,
//! DCE/RPC bind and SMB parsers, and a worker's flow tables (with their SMB state):
//! no panic, and every frame counted once with its wire length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portscope::announce::announcements;
use portscope::catalog::{Catalog, PortTable};
use portscope::decode::{decode, inner, Link};
use portscope::worker::{classify_frames, WorkerConfig};
use std::sync::LazyLock;

static TABLE: LazyLock<PortTable> =
    LazyLock::new(|| PortTable::build(&Catalog::builtin().unwrap_or_default()));

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let dlts = Link::DECODED_DLTS;
    let link = Link::from_dlt(dlts[usize::from(selector) % dlts.len()]);
    // The payload parsers: the packet inside a tunnel, announcements of dynamic ports.
    if let Ok((d, payload)) = decode(link, rest) {
        if let Some((_, Ok((i, p)))) = inner(&d, payload) {
            announcements(&i, p, |_| {});
        }
        announcements(&d, payload, |_| {});
        let _ = portscope::inspect::interface(&d, payload);
        if portscope::inspect::smb::may_carry(&d, payload) {
            let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
            let _ = portscope::inspect::smb::segment(payload, len, |_| {});
        }
    }
    // The same bytes cut into frames (a length byte before each), through a small worker.
    let config = WorkerConfig {
        max_flows: 4,
        max_fragments: 2,
        keep_flows: true,
        ..WorkerConfig::new(2)
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
