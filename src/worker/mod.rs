//! A worker's two jobs: decode frames and route them to the shard that owns their flow
//! ([`Worker::route`]), and apply routed records to its own shards' flow tables, classifying
//! each new flow by the rule in [`crate::classify`] ([`Worker::apply`]); in live mode, also
//! what each interval report needs ([`Worker::interval`]).
//!
//! Every frame is decoded once, by the worker that received its batch. A packet's shard is a
//! fixed hash of its address pair (and VLAN), so both directions of a flow, and every
//! fragment of a datagram, meet in one shard, and the fragment table can live beside the
//! flow table. Shard `s` belongs to worker `s % workers`; each worker applies records in
//! capture order, so the result does not depend on the number of workers.
//!
//! The files: `records.rs`, the 64-byte [`Routed`] records and the [`Outboxes`] they travel
//! in; `route.rs`, decoding a frame into its records; `apply.rs`, applying a part's records
//! in order, each to the packet before it; `smb_state.rs`, SMB and DCE/RPC records applied
//! to their connection's state; `names.rs`, the pipes and interfaces the tables do not know,
//! within each shard's bound; `interval.rs`, what live intervals report.

mod apply;
mod interval;
mod names;
mod records;
mod route;
mod smb_state;

pub use records::{
    Announced, Evidence, InnerPacket, Outboxes, Piece, Routed, RoutedPacket, SmbDeferred, SmbOpen,
    SmbSegment, SmbWhat, NAME_LEN, NAME_MORE, SMB_BYTES,
};

use crate::catalog::PortTable;
use crate::decode::Link;
use crate::flow::{Expected, Fragments, InnerKey, Key, Shard, Tally, Timeouts, SHARDS};

/// The default bound on the flow table (about 160 MiB at worst).
pub const DEFAULT_MAX_FLOWS: usize = 500_000;
/// Fragmented datagrams each worker tracks at most.
pub const DEFAULT_MAX_FRAGMENTS: usize = 65_536;
/// Expectations each shard keeps at most (64 shards: 4,096 in all).
const EXPECTATIONS_PER_SHARD: usize = 64;

/// Settings every worker shares. Build it with [`WorkerConfig::new`] and change what differs.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    pub workers: usize,
    /// The whole flow-table bound, split evenly over the shards.
    pub max_flows: usize,
    pub max_fragments: usize,
    pub timeouts: Timeouts,
    /// Keep a record of every finished flow (for `--flows`).
    pub keep_flows: bool,
    /// Follow announcements of dynamic ports (endpoint mapper, FTP, TFTP).
    pub follow: bool,
    /// Keep the hosts behind the rows (`--servers`); with `top` > 0, every host pair too,
    /// for the `top` pairs of each row (`--top`).
    pub hosts: bool,
    pub top: usize,
    /// Active-timeout records of the flows inside tunnels too (`--ipfix-inner`); without
    /// it only outer flows make them, since the export would drop the inner ones.
    pub inner_active: bool,
}

impl WorkerConfig {
    /// `workers` workers with the defaults: [`DEFAULT_MAX_FLOWS`],
    /// [`DEFAULT_MAX_FRAGMENTS`], Zeek's timeouts, no flow records, offline, following
    /// announcements.
    pub fn new(workers: usize) -> WorkerConfig {
        WorkerConfig {
            workers: workers.max(1),
            max_flows: DEFAULT_MAX_FLOWS,
            max_fragments: DEFAULT_MAX_FRAGMENTS,
            timeouts: Timeouts::ZEEK,
            keep_flows: false,
            follow: true,
            hosts: false,
            top: 0,
            inner_active: false,
        }
    }
}

/// A decode-and-classify worker with its own shards and tally.
#[derive(Debug)]
pub struct Worker<'t> {
    id: usize,
    config: WorkerConfig,
    table: &'t PortTable,
    shards: Vec<Shard>,
    /// Flows inside tunnels, per owned shard (the shard of the outer packet).
    inner: Vec<Shard<InnerKey>>,
    /// The timeouts of those flows: the outer ones, with no active timeout unless
    /// `inner_active`.
    inner_timeouts: Timeouts,
    /// Announced flows, per owned shard.
    expected: Vec<Expected>,
    /// Interfaces the interface table does not know that each owned shard has named.
    unknown_interfaces: Vec<Vec<[u8; 16]>>,
    /// Pipes the pipe table does not know that each owned shard has named.
    unknown_pipes: Vec<Vec<u32>>,
    fragments: Fragments,
    /// The flow's index in its shard of the last packet applied, if it was a whole one:
    /// the records after a packet are its own.
    last_flow: Option<u32>,
    /// The index among this worker's shards of each global shard (`shard / workers`), so
    /// finding a packet's shard takes no division.
    local_of: [u8; SHARDS],
    tally: Tally,
    /// Live mode: the tally's counters at the last interval report.
    reported: Tally,
    /// `--smb-keys`: the SMB3 sessions whose messages can be decrypted, and room for one
    /// message's plaintext (allocated once, only with keys).
    keys: Option<&'t crate::inspect::smb::crypt::Keys>,
    plain: Box<[u8]>,
    /// Some keys need their session's negotiation: SMB segments are read by their owner,
    /// in order ([`Routed::SmbDeferred`]), not by their router.
    defer_smb: bool,
    /// A deferred segment's payload and records, reused.
    deferred: Vec<u8>,
    deferred_records: Vec<Routed>,
}

impl<'t> Worker<'t> {
    /// Worker `id` of `config.workers`; with `intervals` (live mode, `--interval`), it
    /// keeps what each interval report needs.
    pub fn new(
        id: usize,
        table: &'t PortTable,
        config: WorkerConfig,
        intervals: bool,
        keys: Option<&'t crate::inspect::smb::crypt::Keys>,
    ) -> Worker<'t> {
        let workers = config.workers.max(1);
        let per_shard = config.max_flows.div_ceil(SHARDS);
        let owned = (id..SHARDS).step_by(workers).count();
        Worker {
            id,
            config: WorkerConfig { workers, ..config },
            table,
            shards: (0..owned).map(|_| Shard::<Key>::new(per_shard)).collect(),
            // Most captures have no tunnels: these tables start empty.
            inner: (0..owned)
                .map(|_| Shard::<InnerKey>::with_capacity(per_shard, 0))
                .collect(),
            inner_timeouts: Timeouts {
                active_ns: if config.inner_active {
                    config.timeouts.active_ns
                } else {
                    0
                },
                ..config.timeouts
            },
            expected: (0..owned)
                .map(|_| Expected::new(EXPECTATIONS_PER_SHARD))
                .collect(),
            unknown_interfaces: (0..owned).map(|_| Vec::new()).collect(),
            unknown_pipes: (0..owned).map(|_| Vec::new()).collect(),
            fragments: Fragments::new(config.max_fragments),
            last_flow: None,
            local_of: std::array::from_fn(|s| u8::try_from(s / workers).unwrap_or(0)),
            tally: Tally {
                interval: intervals.then(hashbrown::HashMap::new),
                interval_tunneled: intervals.then(hashbrown::HashMap::new),
                hosts: (config.hosts || config.top > 0)
                    .then(|| Box::new(crate::flow::Hosts::new(config.top, config.hosts))),
                ..Tally::new(config.keep_flows)
            },
            reported: Tally::default(),
            keys,
            plain: if keys.is_some() {
                vec![0; crate::inspect::smb::crypt::MAX_PLAIN].into_boxed_slice()
            } else {
                Box::new([])
            },
            defer_smb: keys.is_some_and(|k| k.need_negotiation()),
            deferred: Vec::new(),
            deferred_records: Vec::new(),
        }
    }

    /// This worker's number.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The finished flows kept so far, once there are at least `at_least` of them (handed
    /// to the export while the run goes on); `next` gives the (empty) vector that keeps
    /// the flows from then on.
    pub fn take_flows(
        &mut self,
        at_least: usize,
        next: impl FnOnce() -> Vec<crate::flow::FlowRecord>,
    ) -> Option<Vec<crate::flow::FlowRecord>> {
        (self.tally.flows.len() >= at_least)
            .then(|| std::mem::replace(&mut self.tally.flows, next()))
    }

    /// Ends every open flow and hands over the tally.
    pub fn finish(mut self) -> Tally {
        for shard in &mut self.shards {
            shard.finish(&mut self.tally);
        }
        for shard in &mut self.inner {
            shard.finish(&mut self.tally);
        }
        for expected in &mut self.expected {
            self.tally.expectations += expected.finish();
        }
        self.tally
    }
}

/// Classifies frames on one thread with `config.workers` workers, exactly as the pipeline
/// would: for tests, benches and fuzzing.
pub fn classify_frames<'a>(
    table: &PortTable,
    config: WorkerConfig,
    link: Link,
    frames: impl IntoIterator<Item = (u64, u32, &'a [u8])>,
) -> Tally {
    let n = config.workers.max(1);
    let mut workers: Vec<Worker<'_>> = (0..n)
        .map(|id| Worker::new(id, table, config, false, None))
        .collect();
    let mut outboxes = Outboxes::new(n);
    for (ts, wire_len, data) in frames {
        workers[0].route(link, ts, wire_len, data, &mut outboxes);
        for (w, outbox) in workers.iter_mut().zip(outboxes.iter_mut()) {
            w.apply(outbox);
            outbox.clear();
        }
    }
    let mut tally = Tally::new(config.keep_flows);
    for w in workers {
        tally += w.finish();
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use proptest::prelude::*;
    use std::sync::LazyLock;

    static TABLE: LazyLock<PortTable> =
        LazyLock::new(|| PortTable::build(&Catalog::builtin().unwrap()));

    /// IPv6: first fragment, then destination options, then UDP 5000 -> 137.
    fn ipv6_fragment(offset_8: u16, more: bool) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 32, 44, 64];
        p.extend_from_slice(&[1; 16]);
        p.extend_from_slice(&[2; 16]);
        let fragment = ((offset_8 << 3) | u16::from(more)).to_be_bytes();
        p.extend_from_slice(&[60, 0, fragment[0], fragment[1], 0, 0, 0x12, 0x34]);
        p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&[0x13, 0x88, 0x00, 0x89, 0, 16, 0, 0]);
        p
    }

    #[test]
    fn later_ipv6_fragments_join_their_first_behind_extension_headers() {
        let (first, later) = (ipv6_fragment(0, true), ipv6_fragment(3, false));
        let frames = [(1, 100, &first[..]), (2, 60, &later[..])];
        let tally = classify_frames(&TABLE, config(2), Link::Ipv6, frames);
        assert_eq!(tally.orphan_fragments, 0);
        let udp137 = tally
            .rows
            .iter()
            .find(|(m, _)| m.is_some_and(|m| m.ports == Some((137, 137))));
        assert_eq!(
            udp137.map(|(_, c)| (c.flows, c.packets, c.bytes)),
            Some((1, 2, 160))
        );
    }

    #[test]
    fn a_later_fragment_past_the_timeout_is_an_orphan() {
        let (first, later) = (ipv6_fragment(0, true), ipv6_fragment(3, false));
        let frames = [(0, 100, &first[..]), (31_000_000_000, 60, &later[..])];
        assert_eq!(
            classify_frames(&TABLE, config(1), Link::Ipv6, frames).orphan_fragments,
            1
        );
    }

    /// IPv4 GRE from 10.0.0.1 to 10.0.0.2 carrying UDP 5000 -> 53 between 192.168.0.1 and
    /// 192.168.0.2.
    fn gre_udp() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 52, 0, 0, 0, 0, 64, 47, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&[0, 0, 0x08, 0x00]);
        p.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
        p.extend_from_slice(&[192, 168, 0, 1, 192, 168, 0, 2]);
        p.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
        p
    }

    #[test]
    fn flows_inside_tunnels_make_active_records_only_when_they_are_exported() {
        // A packet a second for 10 s under a 3 s active timeout.
        let frame = gre_udp();
        let frames = || (0..10u64).map(|i| (i * 1_000_000_000, 52, &frame[..]));
        let active = |inner_active: bool| {
            let mut c = WorkerConfig {
                keep_flows: true,
                inner_active,
                ..config(1)
            };
            c.timeouts.active_ns = 3_000_000_000;
            let tally = classify_frames(&TABLE, c, Link::Ipv4, frames());
            let count = |inner: bool| {
                tally
                    .flows
                    .iter()
                    .filter(|f| {
                        f.end == crate::flow::FlowEnd::Active && f.tunnel.is_some() == inner
                    })
                    .map(|f| f.packets[0])
                    .collect::<Vec<_>>()
            };
            (count(false), count(true))
        };
        // The packets at 3, 6 and 9 s find a record due (before they count): each carries
        // the 3 packets since the last; the 10th is left to the flow's end.
        assert_eq!(active(false), (vec![3, 3, 3], vec![]));
        assert_eq!(active(true), (vec![3, 3, 3], vec![3, 3, 3]));
    }

    fn config(workers: usize) -> WorkerConfig {
        WorkerConfig {
            max_flows: 8,
            max_fragments: 4,
            ..WorkerConfig::new(workers)
        }
    }

    proptest! {
        /// Whatever the bytes, every frame is counted once, with exactly its wire length.
        #[test]
        fn arbitrary_frames_are_each_counted_once(
            dlt in prop::sample::select({
                let mut dlts = Link::DECODED_DLTS.to_vec();
                dlts.push(147);
                dlts
            }),
            frames in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..120), 0u32..3000, 0u64..1_000_000_000_000), 0..64),
            workers in 1usize..4,
        ) {
            let input = frames.iter().map(|(bytes, wire, ts)| (*ts, *wire, &bytes[..]));
            let tally = classify_frames(&TABLE, config(workers), Link::from_dlt(dlt), input);
            let total = tally.total();
            prop_assert_eq!(total.packets, frames.len() as u64);
            prop_assert_eq!(total.bytes, frames.iter().map(|f| u64::from(f.1)).sum::<u64>());
        }
    }
}
