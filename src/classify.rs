//! A worker's two jobs: decode frames and route them to the shard that owns their flow
//! ([`Worker::route`]), and apply routed packets to its own shards' flow tables, classifying
//! each new flow ([`Worker::apply`]).
//!
//! Every frame is decoded once, by the worker that received its batch. A packet's shard is a
//! fixed hash of its address pair (and VLAN), so both directions of a flow, and every
//! fragment of a datagram, meet in one shard, and the fragment table can live beside the
//! flow table. Shard `s` belongs to worker `s % workers`; each worker applies packets in
//! capture order, so the result does not depend on the number of workers.

use crate::announce::{self, Announcement, What};
use crate::catalog::{Match, PortTable, Transport};
use crate::decode::{self, Fragment, Link, Skip, Tunnel};
use crate::flow::{
    shard_of_pair, Counts, Expectations, Expected, FragmentKey, Fragments, InnerKey, Key, Packet,
    Shard, Tally, Target, Timeouts, TunnelEnds, SHARDS,
};

/// The service row of a flow, by the rule in ARCHITECTURE.md: for TCP and UDP the port with
/// an exact record (the lower if both have one), else the narrowest range holding both ports;
/// ICMP, GRE, ESP and AH by IP protocol; `None` (unclassified) otherwise.
#[inline]
pub fn classify(table: &PortTable, key: &Key) -> Option<Match> {
    match Transport::from_ip_proto(key.proto)? {
        t @ (Transport::Tcp | Transport::Udp) => table.classify_ports(t, key.a_port, key.b_port),
        t => table.classify_ip(t),
    }
}

/// Settings every worker shares.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    pub workers: usize,
    /// The whole flow-table bound, split evenly over the shards.
    pub max_flows: usize,
    pub max_fragments: usize,
    pub timeouts: Timeouts,
    pub keep_flows: bool,
    /// Live mode: keep what each interval report needs.
    pub live: bool,
    /// Follow announcements of dynamic ports (endpoint mapper, FTP, TFTP).
    pub follow: bool,
}

/// A decoded packet on its way to the worker that owns its shard: one cache line.
#[derive(Clone, Copy, Debug)]
pub struct Routed {
    /// A placeholder for a later fragment, whose key comes from the fragment table.
    pub key: Key,
    pub ts_ns: u64,
    pub wire_len: u32,
    /// The IP identification, for fragments.
    pub fragment_id: u32,
    /// The global shard, `0..SHARDS`.
    pub shard: u8,
    pub from_a: bool,
    pub tcp_flags: u8,
    /// Bits 0-1: [`FRAGMENT_NONE`], [`FRAGMENT_FIRST`] or [`FRAGMENT_LATER`]; bit 7:
    /// [`FRAGMENT_V6`]; bits 2-6: what the record is ([`Routed::what`]). One byte, so the
    /// record stays one 64-byte cache line.
    pub flags: u8,
}

const _: () = assert!(std::mem::size_of::<Routed>() == 64);

/// A packet.
pub const WHAT_PACKET: u8 = 0;
/// An announced flow: `key.a` listens on `key.a_port` for `key.b` (transport `key.proto`,
/// VLAN `key.vlan`); `fragment_id` is the [`Target`] code. (Tunnel codes, 1 to 7, mark
/// the inner packet of the packet routed just before.)
pub const WHAT_ANNOUNCE: u8 = 0x1f;
const WHAT_SHIFT: u8 = 2;

/// Expectations each shard keeps at most (64 shards: 4,096 in all).
const EXPECTATIONS_PER_SHARD: usize = 64;

pub const FRAGMENT_NONE: u8 = 0;
pub const FRAGMENT_FIRST: u8 = 1;
pub const FRAGMENT_LATER: u8 = 2;
/// Set on IPv6 fragments (their datagrams are keyed without the protocol).
pub const FRAGMENT_V6: u8 = 0x80;

impl Routed {
    /// [`WHAT_PACKET`], a tunnel code ([`Tunnel::code`]) for an inner packet, or
    /// [`WHAT_ANNOUNCE`].
    #[inline]
    pub fn what(&self) -> u8 {
        (self.flags >> WHAT_SHIFT) & 0x1f
    }

    #[inline]
    fn fragment(&self) -> u8 {
        self.flags & 0x03
    }

    /// The datagram of a fragment: addresses in the packet's own direction.
    fn fragment_key(&self) -> FragmentKey {
        let (src, dst) = if self.from_a {
            (self.key.a, self.key.b)
        } else {
            (self.key.b, self.key.a)
        };
        FragmentKey {
            src,
            dst,
            proto: if self.flags & FRAGMENT_V6 != 0 {
                0
            } else {
                self.key.proto
            },
            id: self.fragment_id,
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
    /// Announced flows, per owned shard.
    expected: Vec<Expected>,
    fragments: Fragments,
    tally: Tally,
    /// Live mode: the tally's counters at the last interval report.
    reported: Tally,
}

impl<'t> Worker<'t> {
    pub fn new(id: usize, table: &'t PortTable, config: WorkerConfig) -> Worker<'t> {
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
            expected: (0..owned)
                .map(|_| Expected::new(EXPECTATIONS_PER_SHARD))
                .collect(),
            fragments: Fragments::new(config.max_fragments),
            tally: Tally {
                interval: config.live.then(hashbrown::HashMap::new),
                interval_tunneled: config.live.then(hashbrown::HashMap::new),
                ..Tally::new(config.keep_flows)
            },
            reported: Tally::default(),
        }
    }

    /// Live mode: what this worker counted since the last call (flows are counted in the
    /// interval they are first seen in), so the intervals add up to the final tally.
    pub fn interval(&mut self) -> Tally {
        let mut rows = self
            .tally
            .interval
            .replace(hashbrown::HashMap::new())
            .unwrap_or_default();
        for shard in &mut self.shards {
            shard.report_open(|_, row, delta| *rows.entry(row).or_default() += delta);
        }
        let mut tunneled = self
            .tally
            .interval_tunneled
            .replace(hashbrown::HashMap::new())
            .unwrap_or_default();
        for shard in &mut self.inner {
            shard.report_open(|key, row, delta| {
                *tunneled.entry((key.tunnel.kind, row)).or_default() += delta;
            });
        }
        let mut tunnel_not_ip = self.tally.tunnel_not_ip;
        for (now, before) in tunnel_not_ip.iter_mut().zip(self.reported.tunnel_not_ip) {
            *now = now.since(before);
        }
        let mut expectations = Expectations::default();
        for e in &self.expected {
            expectations += e.counts;
        }
        let mut unsupported_links = self.tally.unsupported_links.clone();
        for (dlt, n) in &mut unsupported_links {
            *n -= self
                .reported
                .unsupported_links
                .get(dlt)
                .copied()
                .unwrap_or(0);
        }
        unsupported_links.retain(|_, n| *n > 0);
        let out = Tally {
            rows,
            not_ip: self.tally.not_ip.since(self.reported.not_ip),
            undecodable: self.tally.undecodable.since(self.reported.undecodable),
            unsupported_links,
            evicted_flows: self.tally.evicted_flows - self.reported.evicted_flows,
            orphan_fragments: self.tally.orphan_fragments - self.reported.orphan_fragments,
            tunneled,
            tunnel_not_ip,
            expectations: expectations.since(self.reported.expectations),
            ..Tally::default()
        };
        self.reported = Tally {
            not_ip: self.tally.not_ip,
            undecodable: self.tally.undecodable,
            unsupported_links: self.tally.unsupported_links.clone(),
            evicted_flows: self.tally.evicted_flows,
            orphan_fragments: self.tally.orphan_fragments,
            tunnel_not_ip: self.tally.tunnel_not_ip,
            expectations,
            ..Tally::default()
        };
        out
    }

    /// Decodes a frame and appends it to the outbox of the worker that owns its shard;
    /// a frame that is no IP packet is counted here. `wire_len` is its length on the wire,
    /// `data` the bytes captured (possibly fewer).
    #[inline]
    pub fn route(
        &mut self,
        link: Link,
        ts_ns: u64,
        wire_len: u32,
        data: &[u8],
        outboxes: &mut [Vec<Routed>],
    ) {
        let wire_len = u64::from(wire_len);
        let mut d = decode::Decoded::default();
        let payload = match decode::decode_into(link, data, &mut d) {
            Ok(payload) => payload,
            Err(skip) => {
                self.count_skip(skip, wire_len);
                return;
            }
        };
        let (key, from_a) = Key::of(&d);
        let (fragment, fragment_id) = match d.fragment {
            Fragment::None => (FRAGMENT_NONE, 0),
            Fragment::First(id) => (FRAGMENT_FIRST, id),
            Fragment::Later(id) => (FRAGMENT_LATER, id),
        };
        let v6 = if d.ip_version == 6 { FRAGMENT_V6 } else { 0 };
        let shard = crate::flow::shard_of(&d);
        let routed = Routed {
            key,
            ts_ns,
            wire_len: u32::try_from(wire_len).unwrap_or(u32::MAX),
            fragment_id,
            shard,
            from_a,
            tcp_flags: d.tcp_flags,
            flags: fragment | v6 | (WHAT_PACKET << WHAT_SHIFT),
        };
        let workers = self.config.workers;
        let Some(outbox) = outboxes.get_mut(usize::from(shard) % workers) else {
            return;
        };
        outbox.push(routed);
        if decode::may_carry(&d) {
            if let Some((tunnel, inner)) = decode::inner(&d, payload) {
                match inner {
                    Ok((i, _)) => {
                        let (key, from_a) = Key::of(&i);
                        outbox.push(Routed {
                            key,
                            from_a,
                            tcp_flags: i.tcp_flags,
                            fragment_id: 0,
                            flags: FRAGMENT_NONE | (tunnel.code() << WHAT_SHIFT),
                            ..routed
                        });
                    }
                    Err(_) => {
                        let slot = usize::from(tunnel.code()) & 7;
                        self.tally.tunnel_not_ip[slot] += Counts {
                            flows: 0,
                            packets: 1,
                            bytes: wire_len,
                        };
                    }
                }
            }
        }
        if self.config.follow && announce::may_announce(&d) {
            let table = self.table;
            announce::announcements(&d, payload, |a| {
                if let Some(target) = target_of(table, &a) {
                    let shard = shard_of_pair(&a.listener, &a.other, d.vlan);
                    if let Some(outbox) = outboxes.get_mut(usize::from(shard) % workers) {
                        outbox.push(announced(&a, target, d.vlan, ts_ns, shard));
                    }
                }
            });
        }
    }

    /// Applies, in order, the records routed to this worker from one batch: packets are
    /// counted into their flows (fragments joined first), inner packets into the flow inside
    /// the tunnel of the packet just before them, announcements into the expected flows.
    #[inline]
    pub fn apply(&mut self, part: &[Routed]) {
        let mut previous: Option<&Routed> = None;
        for r in part {
            let local = usize::from(r.shard) / self.config.workers;
            match r.what() {
                WHAT_PACKET => self.apply_packet(r, local),
                WHAT_ANNOUNCE => self.apply_announcement(r, local),
                code => {
                    if let Some(outer) = previous {
                        self.apply_inner(r, local, code, &outer.key);
                    }
                }
            }
            previous = Some(r);
        }
    }

    #[inline]
    fn apply_packet(&mut self, r: &Routed, local: usize) {
        let mut packet = Packet {
            key: r.key,
            from_a: r.from_a,
            ts_ns: r.ts_ns,
            wire_len: u64::from(r.wire_len),
            tcp_flags: r.tcp_flags,
        };
        match r.fragment() {
            FRAGMENT_FIRST => {
                let fragment = r.fragment_key();
                self.fragments
                    .first(fragment, packet.key, packet.from_a, packet.ts_ns);
            }
            FRAGMENT_LATER => match self.fragments.later(r.fragment_key(), packet.ts_ns) {
                Some((key, from_a)) => {
                    packet.key = key;
                    packet.from_a = from_a;
                }
                None => {
                    self.tally.orphan_fragments += 1;
                    self.tally.add_packet(None, packet.wire_len);
                    return;
                }
            },
            _ => {}
        }
        let table = self.table;
        if let (Some(shard), Some(expected)) =
            (self.shards.get_mut(local), self.expected.get_mut(local))
        {
            shard.packet(
                &packet,
                |k| {
                    expected
                        .take(k, packet.ts_ns)
                        .or_else(|| classify(table, k))
                },
                &self.config.timeouts,
                &mut self.tally,
            );
        }
    }

    /// An inner packet: counted into its flow inside the tunnel of `outer`, the packet
    /// routed just before it (to the same shard).
    fn apply_inner(&mut self, r: &Routed, local: usize, code: u8, outer: &Key) {
        let Some(kind) = Tunnel::from_code(code) else {
            return;
        };
        let packet = Packet {
            key: InnerKey {
                tunnel: TunnelEnds {
                    kind,
                    a: outer.a,
                    b: outer.b,
                },
                key: r.key,
            },
            from_a: r.from_a,
            ts_ns: r.ts_ns,
            wire_len: u64::from(r.wire_len),
            tcp_flags: r.tcp_flags,
        };
        let table = self.table;
        if let Some(shard) = self.inner.get_mut(local) {
            shard.packet(
                &packet,
                |k| classify(table, &k.key),
                &self.config.timeouts,
                &mut self.tally,
            );
        }
    }

    fn apply_announcement(&mut self, r: &Routed, local: usize) {
        let target = Target::from_code(r.fragment_id);
        let k = &r.key;
        let row = match target {
            Target::Rpc(index) => Some(self.table.epm_row(index, k.a_port)),
            Target::FtpData => self.table.expectation_row(Transport::Tcp, 20),
            Target::Tftp => self.table.expectation_row(Transport::Udp, 69),
        };
        if let (Some(row), Some(expected)) = (row, self.expected.get_mut(local)) {
            expected.announce(
                k.a,
                k.a_port,
                k.b,
                k.proto,
                k.vlan,
                row,
                target.once(),
                r.ts_ns,
                target.lifetime_ns(),
            );
        }
    }

    fn count_skip(&mut self, skip: Skip, wire_len: u64) {
        if skip.is_broken_ip() {
            self.tally.add_packet(None, wire_len);
            return;
        }
        let counts = if skip.is_not_ip() {
            &mut self.tally.not_ip
        } else {
            &mut self.tally.undecodable
        };
        counts.packets += 1;
        counts.bytes += wire_len;
        if let Skip::UnsupportedLink(dlt) = skip {
            *self.tally.unsupported_links.entry(dlt).or_default() += 1;
        }
    }

    /// This worker's number.
    pub fn id(&self) -> usize {
        self.id
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

/// What an announcement will label, if the catalog can name it (an interface the
/// interface table lacks is not followed).
fn target_of(table: &PortTable, a: &Announcement) -> Option<Target> {
    match a.what {
        What::FtpData => Some(Target::FtpData),
        What::Tftp => Some(Target::Tftp),
        What::Rpc(uuid) => table.interface_index(&uuid).map(Target::Rpc),
    }
}

/// The routed form of an announcement.
fn announced(a: &Announcement, target: Target, vlan: u16, ts_ns: u64, shard: u8) -> Routed {
    Routed {
        key: Key {
            a: a.listener,
            b: a.other,
            a_port: a.port,
            b_port: 0,
            proto: a.proto,
            vlan,
            spi: 0,
        },
        ts_ns,
        wire_len: 0,
        fragment_id: target.code(),
        shard,
        from_a: false,
        tcp_flags: 0,
        flags: FRAGMENT_NONE | (WHAT_ANNOUNCE << WHAT_SHIFT),
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
    let mut workers: Vec<Worker<'_>> = (0..n).map(|id| Worker::new(id, table, config)).collect();
    let mut outboxes: Vec<Vec<Routed>> = vec![Vec::new(); n];
    for (ts, wire_len, data) in frames {
        workers[0].route(link, ts, wire_len, data, &mut outboxes);
        for (w, outbox) in workers.iter_mut().zip(&mut outboxes) {
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

    fn config(workers: usize) -> WorkerConfig {
        WorkerConfig {
            workers,
            max_flows: 8,
            max_fragments: 4,
            timeouts: Timeouts::ZEEK,
            keep_flows: false,
            live: false,
            follow: true,
        }
    }

    proptest! {
        /// Whatever the bytes, every frame is counted once, with exactly its wire length.
        #[test]
        fn arbitrary_frames_are_each_counted_once(
            dlt in prop::sample::select(vec![0, 1, 12, 101, 108, 113, 228, 229, 276, 147]),
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
