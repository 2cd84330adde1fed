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

use crate::announce::{self, Announcement, What};
use crate::catalog::{PortTable, Transport, UNKNOWN_INTERFACES_PER_SHARD};
use crate::classify::classify;
use crate::decode::{self, Fragment, IpProto, IpVersion, Link, Skip, Tunnel};
use crate::flow::{
    shard_of_pair, Counts, ExpectKey, Expectations, Expected, FragmentKey, Fragments, InnerKey,
    Key, Packet, Shard, Tally, Target, Timeouts, TunnelEnds, SHARDS,
};
use crate::inspect::{self, smb};

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
    /// Live mode: keep what each interval report needs.
    pub live: bool,
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
            live: false,
            follow: true,
            hosts: false,
            top: 0,
            inner_active: false,
        }
    }
}

/// A record on its way to the worker that owns its shard: one cache line.
#[derive(Clone, Copy, Debug)]
pub enum Routed {
    /// A packet, counted in its flow.
    Packet(RoutedPacket),
    /// The packet inside a tunnel, counted in the flow inside the tunnel of its outer packet.
    Inner(InnerPacket),
    /// An announced flow, for the expectations of its shard.
    Announce(Announced),
    /// What a packet's payload names (a DCE/RPC interface), for its flow's row.
    Evidence(Evidence),
    /// What an SMB message in a packet names for the messages after it (a tree's share
    /// type, a file id, a bind on a pipe).
    SmbEvent(SmbEvent),
    /// An SMB create request's file name.
    SmbOpen(SmbOpen),
    /// The rest of the file name of the [`SmbOpen`] before it, [`NAME_MORE`] bytes a
    /// record.
    SmbName([u8; NAME_MORE]),
    /// The SMB messages a segment holds, for the part of its connection it goes to.
    SmbSegment(SmbSegment),
    /// The last SMB message of a segment, which goes on past it.
    SmbTail(SmbTail),
    /// The UUID of the interface the announcement just before it names, when the interface
    /// table does not know it.
    Interface([u8; 16]),
}

const _: () = assert!(std::mem::size_of::<Routed>() == 64);

/// A decoded packet.
#[derive(Clone, Copy, Debug)]
pub struct RoutedPacket {
    /// For a later fragment, a stand-in: the key comes from the fragment table.
    pub key: Key,
    pub ts_ns: u64,
    pub wire_len: u32,
    /// The IP identification, for fragments.
    pub fragment_id: u32,
    /// The global shard (`0..SHARDS`, the low six bits) and whether endpoint `a` sent the
    /// packet (the top bit), in one byte so that `overhead` fits in the cache line.
    place: u8,
    /// The frame's bytes outside its IP packet (`wire_len` less the IP-layer octets: link
    /// headers, padding, trailers), at most 255: IPFIX counts IP-layer octets.
    pub overhead: u8,
    pub tcp_flags: u8,
    pub piece: Piece,
}

/// Where a routed packet stands in a fragmented datagram, and for fragments the IP version
/// (IPv6 datagrams are keyed without the protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    Whole,
    FirstV4,
    LaterV4,
    FirstV6,
    LaterV6,
}

/// The packet inside a tunnel. Its time, length and shard are its outer packet's.
#[derive(Clone, Copy, Debug)]
pub struct InnerPacket {
    pub key: Key,
    pub from_a: bool,
    pub tcp_flags: u8,
    pub tunnel: Tunnel,
    /// The inner packet's IP-layer octets.
    pub ip_len: u32,
    /// The index, in the same part, of the outer packet it travels in (always the record
    /// just before it: both go to the owner of the outer packet's shard).
    pub outer: u32,
}

/// A DCE/RPC interface the payload of a packet names. Its flow, shard and direction are
/// the packet's.
#[derive(Clone, Copy, Debug)]
pub struct Evidence {
    pub uuid: [u8; 16],
    /// Whether the packet went to the server (else it came from it).
    pub to_server: bool,
    /// The index, in the same part, of the packet it was found in.
    pub packet: u32,
}

/// What an SMB message of packet `packet` (an index in the same part) names.
#[derive(Clone, Copy, Debug)]
pub struct SmbEvent {
    pub packet: u32,
    pub what: SmbWhat,
}

/// [`smb::Event`] without its borrowed name ([`SmbOpen`] carries that).
#[derive(Clone, Copy, Debug)]
pub enum SmbWhat {
    Tree {
        tree: u32,
        share: smb::ShareKind,
    },
    Opened {
        message: u64,
        file: u64,
    },
    Bind {
        file: u64,
        uuid: [u8; 16],
    },
    Directory {
        tree: u32,
    },
    Close {
        message: u64,
        file: u64,
    },
    TreeDisconnect {
        message: u64,
        tree: u32,
    },
    Logoff,
    /// A DCE/RPC bind or alter context (outside SMB) offers presentation context `id` for
    /// `uuid`, to the server on `port`.
    Context {
        id: u16,
        uuid: [u8; 16],
        port: u16,
    },
}

/// How many bytes of a create request's file name an [`SmbOpen`] carries; the rest, up to
/// [`smb::MAX_NAME`], follows in [`Routed::SmbName`] records.
pub const NAME_LEN: usize = 32;

/// The bytes of a name an [`Routed::SmbName`] record carries.
pub const NAME_MORE: usize = 60;

/// An SMB create request of packet `packet`: its file name, as [`smb::pipe_name`] writes it
/// (`len` bytes in all: the first [`NAME_LEN`] here, the rest in the records after it).
#[derive(Clone, Copy, Debug)]
pub struct SmbOpen {
    pub packet: u32,
    pub message: u64,
    pub tree: u32,
    pub len: u8,
    pub name: [u8; NAME_LEN],
}

/// The SMB messages of packet `packet`'s segment.
#[derive(Clone, Copy, Debug)]
pub struct SmbSegment {
    pub packet: u32,
    pub seq: u32,
    /// The TCP payload's length on the wire.
    pub len: u32,
    /// [`smb::Segment::unread`] (a message that may name holds at least 68 bytes, so a
    /// frame's 262,144 bytes hold fewer than `u16::MAX`).
    pub unread: u16,
    pub segment: SegmentRead,
}

/// [`smb::Segment`] without its tail (an [`SmbTail`] carries that).
#[derive(Clone, Copy, Debug)]
pub struct SegmentRead {
    /// [`smb::Segment::start`], `u32::MAX` for none.
    pub start: u32,
    pub first: smb::Header,
    pub end: u32,
}

/// The last SMB message of packet `packet`'s segment, which goes on past it.
#[derive(Clone, Copy, Debug)]
pub struct SmbTail {
    pub packet: u32,
    pub header: smb::Header,
}

/// An announced flow: `other` will connect to `listener` on `port`.
#[derive(Clone, Copy, Debug)]
pub struct Announced {
    pub listener: [u8; 16],
    pub other: [u8; 16],
    pub port: u16,
    pub proto: IpProto,
    pub vlan: u16,
    /// The shard of the address pair.
    pub shard: u8,
    pub target: Target,
    pub ts_ns: u64,
}

impl RoutedPacket {
    /// A packet of `wire_len` bytes on the wire, `ip_len` of them IP-layer octets.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn new(
        key: Key,
        from_a: bool,
        shard: u8,
        ts_ns: u64,
        wire_len: u32,
        ip_len: u32,
        tcp_flags: u8,
        (piece, fragment_id): (Piece, u32),
    ) -> RoutedPacket {
        debug_assert!(usize::from(shard) < SHARDS);
        RoutedPacket {
            key,
            ts_ns,
            wire_len,
            fragment_id,
            place: shard | u8::from(from_a) << 7,
            // At most 255 (a frame with more outside its IP packet counts more octets).
            overhead: u8::try_from(wire_len - ip_len.min(wire_len)).unwrap_or(u8::MAX),
            tcp_flags,
            piece,
        }
    }

    /// The global shard, `0..SHARDS`.
    #[inline(always)]
    pub fn shard(&self) -> u8 {
        self.place & 0x3f
    }

    /// Whether endpoint `a` of the key sent the packet.
    #[inline(always)]
    pub fn from_a(&self) -> bool {
        self.place & 0x80 != 0
    }

    /// The packet's IP-layer octets.
    #[inline(always)]
    pub fn ip_len(&self) -> u32 {
        self.wire_len - u32::from(self.overhead)
    }

    /// The datagram of a fragment: addresses in the packet's own direction.
    fn fragment_key(&self) -> FragmentKey {
        let (src, dst) = if self.from_a() {
            (self.key.a, self.key.b)
        } else {
            (self.key.b, self.key.a)
        };
        FragmentKey {
            src,
            dst,
            proto: match self.piece {
                Piece::FirstV6 | Piece::LaterV6 => IpProto(0),
                _ => self.key.proto,
            },
            id: self.fragment_id,
        }
    }
}

/// One vector of routed records per worker, in worker order. There is always one for every
/// worker, so every shard's owner has one: a record cannot be left without a place to go.
#[derive(Debug)]
pub struct Outboxes {
    boxes: Vec<Vec<Routed>>,
    /// The owner of each shard, so routing a packet takes no division.
    owner: [u8; SHARDS],
}

impl Outboxes {
    /// Empty outboxes for `workers` workers (at least one).
    pub fn new(workers: usize) -> Outboxes {
        let workers = workers.max(1);
        Outboxes {
            boxes: (0..workers).map(|_| Vec::new()).collect(),
            owner: std::array::from_fn(|s| u8::try_from(s % workers).unwrap_or(0)),
        }
    }

    /// The outbox of the worker that owns `shard`.
    #[inline]
    fn for_shard(&mut self, shard: u8) -> &mut Vec<Routed> {
        let owner = self.owner[usize::from(shard) % SHARDS];
        &mut self.boxes[usize::from(owner)]
    }

    /// The outbox of worker `worker`.
    ///
    /// # Panics
    /// When there is no such worker: a bug in the caller.
    pub fn of(&mut self, worker: usize) -> &mut Vec<Routed> {
        &mut self.boxes[worker]
    }

    /// Every outbox, in worker order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Vec<Routed>> {
        self.boxes.iter_mut()
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
    /// The record index (in the part being applied) of the last whole packet, and its
    /// flow's index in its shard; `u32::MAX` when there is none.
    last_flow: (u32, u32),
    /// The index among this worker's shards of each global shard (`shard / workers`), so
    /// finding a packet's shard takes no division.
    local_of: [u8; SHARDS],
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
            last_flow: (u32::MAX, 0),
            local_of: std::array::from_fn(|s| u8::try_from(s / workers).unwrap_or(0)),
            tally: Tally {
                interval: config.live.then(hashbrown::HashMap::new),
                interval_tunneled: config.live.then(hashbrown::HashMap::new),
                hosts: (config.hosts || config.top > 0)
                    .then(|| Box::new(crate::flow::Hosts::new(config.top, config.hosts))),
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
        let mut flows = std::mem::take(&mut self.tally.interval_flows);
        for shard in &mut self.shards {
            flows += shard.report_open(|_, row, delta| *rows.entry(row).or_default() += delta);
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
            flow_count: flows,
            smb_forgotten: self.tally.smb_forgotten - self.reported.smb_forgotten,
            not_ip: self.tally.not_ip.since(self.reported.not_ip),
            undecodable: self.tally.undecodable.since(self.reported.undecodable),
            unsupported_links,
            evicted_flows: self.tally.evicted_flows - self.reported.evicted_flows,
            orphan_fragments: self.tally.orphan_fragments - self.reported.orphan_fragments,
            unnamed_binds: self.tally.unnamed_binds - self.reported.unnamed_binds,
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
            unnamed_binds: self.tally.unnamed_binds,
            smb_forgotten: self.tally.smb_forgotten,
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
        outboxes: &mut Outboxes,
    ) {
        let (d, payload) = match decode::decode(link, data) {
            Ok(decoded) => decoded,
            Err(skip) => {
                self.count_skip(skip, u64::from(wire_len));
                return;
            }
        };
        let (key, from_a) = Key::of(&d);
        let v6 = d.ip.version == IpVersion::V6;
        let (piece, fragment_id) = match d.ip.fragment {
            Fragment::None => (Piece::Whole, 0),
            Fragment::First(id) => (if v6 { Piece::FirstV6 } else { Piece::FirstV4 }, id),
            Fragment::Later(id) => (if v6 { Piece::LaterV6 } else { Piece::LaterV4 }, id),
        };
        let shard = crate::flow::shard_of(&d);
        let packet = RoutedPacket::new(
            key,
            from_a,
            shard,
            ts_ns,
            wire_len,
            decode::ip_octets(&d.ip, wire_len, data.len()),
            d.tcp_flags(),
            (piece, fragment_id),
        );
        let outbox = outboxes.for_shard(shard);
        let outer = u32::try_from(outbox.len()).unwrap_or(u32::MAX);
        outbox.push(Routed::Packet(packet));
        if decode::may_carry(&d) {
            match decode::inner(&d, payload) {
                Some((tunnel, Ok((i, _)))) => {
                    let (key, from_a) = Key::of(&i);
                    outbox.push(Routed::Inner(InnerPacket {
                        key,
                        from_a,
                        tcp_flags: i.tcp_flags(),
                        tunnel,
                        // Bounded by the outer packet's: an inner header's length is
                        // hostile too.
                        ip_len: match i.ip.len {
                            0 => i.ip.captured,
                            len => len,
                        }
                        .min(packet.ip_len()),
                        outer,
                    }));
                }
                Some((tunnel, Err(_))) => {
                    self.tally.tunnel_not_ip[usize::from(tunnel.code())] += Counts {
                        flows: 0,
                        packets: 1,
                        bytes: u64::from(wire_len),
                    };
                }
                None => {}
            }
        }
        // Later fragments carry no payload here; first fragments do, with their flow's key.
        if self.config.follow {
            if let Some(bound) = inspect::interface(&d, payload) {
                outbox.push(Routed::Evidence(Evidence {
                    uuid: bound.uuid,
                    to_server: bound.to_server,
                    packet: outer,
                }));
            }
        }
        if self.config.follow && smb::may_carry(&d, payload) {
            route_smb(&d, wire_len, data, payload, outer, outbox);
        } else if self.config.follow && inspect::rpc::may_carry_co(&d, payload) {
            route_rpc(&d, wire_len, data, payload, outer, outbox);
        }
        if self.config.follow && announce::may_announce(&d) {
            let table = self.table;
            announce::announcements(&d, payload, |a| {
                let shard = shard_of_pair(&a.listener, &a.other, d.vlan);
                let outbox = outboxes.for_shard(shard);
                let target = target_of(table, &a);
                outbox.push(announced(&a, target, d.vlan, ts_ns, shard));
                // An interface the table does not know travels behind its announcement:
                // the owner names it, within its shard's bound.
                if let (Target::Rpc(UNNAMED), What::Rpc(uuid)) = (target, a.what) {
                    outbox.push(Routed::Interface(uuid));
                }
            });
        }
    }

    /// Applies, in order, the records routed to this worker from one batch: packets are
    /// counted into their flows (fragments joined first), inner packets into the flow inside
    /// the tunnel of their outer packet, announcements into the expected flows.
    #[inline]
    pub fn apply(&mut self, part: &[Routed]) {
        for (at, r) in part.iter().enumerate() {
            self.apply_one(part, u32::try_from(at).unwrap_or(u32::MAX), r);
        }
    }

    /// Applies record `at` of `part`.
    #[inline]
    fn apply_one(&mut self, part: &[Routed], at: u32, r: &Routed) {
        let packet = |i: u32| match part.get(i as usize) {
            Some(Routed::Packet(p)) => Some(p),
            _ => None,
        };
        match r {
            Routed::Packet(p) => self.apply_packet(p, at),
            Routed::Inner(i) => match packet(i.outer) {
                Some(outer) => self.apply_inner(i, outer),
                None => debug_assert!(false, "inner packet without its outer: {i:?}"),
            },
            Routed::Announce(a) => match (a.target, part.get(at as usize + 1)) {
                (Target::Rpc(UNNAMED), Some(Routed::Interface(uuid))) => {
                    let local = self.local(a.shard);
                    if let Some(id) = self.name_interface(local, uuid, true) {
                        self.apply_announcement(&Announced {
                            target: Target::Rpc(id),
                            ..*a
                        });
                    }
                }
                (Target::Rpc(UNNAMED), _) => {
                    debug_assert!(
                        false,
                        "an unnamed interface's announcement without it: {a:?}"
                    );
                }
                _ => self.apply_announcement(a),
            },
            // Read with the announcement before it.
            Routed::Interface(_) => {}
            Routed::Evidence(e) => match packet(e.packet) {
                Some(p) => self.apply_evidence(e, p),
                None => debug_assert!(false, "evidence without its packet: {e:?}"),
            },
            Routed::SmbEvent(e) => {
                if let Some(p) = packet(e.packet) {
                    self.apply_smb_event(&e.what, p, e.packet);
                }
            }
            Routed::SmbOpen(o) => {
                if let Some(p) = packet(o.packet) {
                    let more = part.get(at as usize + 1..).unwrap_or(&[]);
                    self.apply_smb_open(o, more, p);
                }
            }
            // Read with the create request before it.
            Routed::SmbName(_) => {}
            Routed::SmbSegment(s) => {
                if let Some(p) = packet(s.packet) {
                    self.apply_smb_segment(s, p);
                }
            }
            Routed::SmbTail(t) => {
                if let Some(p) = packet(t.packet) {
                    let (port, side) = smb_ends(p);
                    let table = self.table;
                    let make = t.header.dialect != smb::Dialect::Rpc;
                    if let Some(conn) = self.smb_conn(p, t.packet, make) {
                        conn.tail(side, &t.header, |l| smb_row(table, port, l));
                    }
                }
            }
        }
    }

    /// The index among this worker's shards of global shard `shard`, which it owns.
    #[inline]
    fn local(&self, shard: u8) -> usize {
        debug_assert_eq!(usize::from(shard) % self.config.workers, self.id);
        usize::from(self.local_of[usize::from(shard) % SHARDS])
    }

    #[inline]
    fn apply_packet(&mut self, r: &RoutedPacket, at: u32) {
        let local = self.local(r.shard());
        let mut packet = Packet {
            key: r.key,
            from_a: r.from_a(),
            ts_ns: r.ts_ns,
            wire_len: u64::from(r.wire_len),
            ip_len: u64::from(r.ip_len()),
            tcp_flags: r.tcp_flags,
        };
        match r.piece {
            Piece::FirstV4 | Piece::FirstV6 => {
                let fragment = r.fragment_key();
                self.fragments
                    .first(fragment, packet.key, packet.from_a, packet.ts_ns);
            }
            Piece::LaterV4 | Piece::LaterV6 => {
                match self.fragments.later(r.fragment_key(), packet.ts_ns) {
                    Some((key, from_a)) => {
                        packet.key = key;
                        packet.from_a = from_a;
                    }
                    None => {
                        self.tally.orphan_fragments += 1;
                        self.tally.add_packet(None, packet.wire_len);
                        return;
                    }
                }
            }
            Piece::Whole => {}
        }
        let table = self.table;
        let (shard, expected) = (&mut self.shards[local], &mut self.expected[local]);
        let flow = shard.packet(
            &packet,
            |k| {
                expected
                    .take(k, packet.ts_ns)
                    .or_else(|| classify(table, k))
            },
            &self.config.timeouts,
            &mut self.tally,
        );
        // A whole packet's SMB records follow it, and none of them ends a flow: they find
        // the flow by this index rather than by a second lookup.
        self.last_flow = if r.piece == Piece::Whole {
            (at, flow)
        } else {
            (u32::MAX, 0)
        };
    }

    /// An inner packet: counted into its flow inside the tunnel of `outer`.
    fn apply_inner(&mut self, r: &InnerPacket, outer: &RoutedPacket) {
        let local = self.local(outer.shard());
        let packet = Packet {
            key: InnerKey {
                tunnel: TunnelEnds {
                    kind: r.tunnel,
                    a: outer.key.a,
                    b: outer.key.b,
                },
                key: r.key,
            },
            from_a: r.from_a,
            ts_ns: outer.ts_ns,
            wire_len: u64::from(outer.wire_len),
            ip_len: u64::from(r.ip_len),
            tcp_flags: r.tcp_flags,
        };
        let table = self.table;
        self.inner[local].packet(
            &packet,
            |k| classify(table, &k.key),
            &self.inner_timeouts,
            &mut self.tally,
        );
    }

    /// A DCE/RPC interface named in `packet`: its flow becomes the interface's row on the
    /// server's port (a later fragment's stand-in key is never refined: evidence comes
    /// from whole packets and first fragments only).
    fn apply_evidence(&mut self, e: &Evidence, packet: &RoutedPacket) {
        let local = self.local(packet.shard());
        let k = &packet.key;
        let Some(transport) = Transport::from_ip_proto(k.proto) else {
            return;
        };
        // The packet's destination is b when a sent it.
        let server_port = if packet.from_a() == e.to_server {
            k.b_port
        } else {
            k.a_port
        };
        let Some(id) = self.name_interface(local, &e.uuid, true) else {
            return;
        };
        let row = self.table.rpc_bind_row(transport, server_port, id);
        self.shards[local].refine(k, row);
    }

    /// The SMB connection of routed packet `p` (record `at` of its part), if its flow is
    /// open (a later fragment's stand-in key finds none: SMB comes from whole segments);
    /// made if it has none and `make`.
    fn smb_conn(
        &mut self,
        p: &RoutedPacket,
        at: u32,
        make: bool,
    ) -> Option<&mut crate::flow::smb::Conn> {
        if p.piece != Piece::Whole {
            return None;
        }
        let local = self.local(p.shard());
        let shard = &mut self.shards[local];
        let flow = match self.last_flow {
            (packet, flow) if packet == at => flow,
            _ => shard.find(&p.key)?,
        };
        shard.smb_at(flow, make)
    }

    fn apply_smb_event(&mut self, what: &SmbWhat, p: &RoutedPacket, at: u32) {
        let (port, _) = smb_ends(p);
        let table = self.table;
        let local = self.local(p.shard());
        let interface = match what {
            SmbWhat::Bind { uuid, .. } | SmbWhat::Context { uuid, .. } => {
                let count = matches!(what, SmbWhat::Bind { .. });
                match self.name_interface(local, uuid, count) {
                    Some(id) => Some(id),
                    None => return,
                }
            }
            _ => None,
        };
        let Some(conn) = self.smb_conn(p, at, true) else {
            return;
        };
        match *what {
            SmbWhat::Tree { tree, share } => conn.connected(tree, share),
            SmbWhat::Opened { message, file } => conn.opened(message, file),
            SmbWhat::Directory { tree } => conn.directory(tree),
            SmbWhat::Close { message, file } => conn.close(message, file),
            SmbWhat::TreeDisconnect { message, tree } => {
                conn.disconnect(message, tree, |l| smb_row(table, port, l));
            }
            SmbWhat::Logoff => conn.logoff(),
            SmbWhat::Bind { file, .. } => {
                if let Some(id) = interface {
                    conn.bound(file, id, |l| smb_row(table, port, l));
                }
            }
            SmbWhat::Context { id, port, .. } => {
                if let Some(interface) = interface {
                    conn.context(id, interface, port, |l| smb_row(table, port, l));
                }
            }
        }
    }

    /// A create request: on a pipe share (or on a tree whose connect was not seen, for a
    /// name the pipe table knows), the pipe it opens.
    fn apply_smb_open(&mut self, o: &SmbOpen, more: &[Routed], p: &RoutedPacket) {
        let (port, _) = smb_ends(p);
        let table = self.table;
        let local = self.local(p.shard());
        let mut whole = [0u8; smb::MAX_NAME];
        let len = usize::from(o.len).min(smb::MAX_NAME);
        let first = len.min(NAME_LEN);
        whole[..first].copy_from_slice(&o.name[..first]);
        let mut at = first;
        for r in more {
            let Routed::SmbName(bytes) = r else { break };
            let n = (len - at).min(NAME_MORE);
            whole[at..at + n].copy_from_slice(&bytes[..n]);
            at += n;
            if at >= len {
                break;
            }
        }
        let name = std::str::from_utf8(&whole[..at]).unwrap_or("");
        let Some(tree) = self
            .smb_conn(p, o.packet, true)
            .map(|conn| conn.tree(o.tree))
        else {
            return;
        };
        let pipe = match tree {
            Some(smb::ShareKind::Pipe) if !name.is_empty() => self.name_pipe(local, name),
            // A tree whose connect the capture missed: only a name the pipe table knows.
            None => table.known_pipe(name),
            Some(_) => None,
        };
        if let (Some(pipe), Some(conn)) = (pipe, self.smb_conn(p, o.packet, true)) {
            conn.open(o.message, o.tree, pipe, |l| smb_row(table, port, l));
        }
    }

    /// The id of a pipe a create names on a pipe share, counting a pipe the table does not
    /// know against the shard's bound the first time the shard names it (before it is
    /// numbered, so names past the bound are never kept); `None` past the bound.
    fn name_pipe(&mut self, local: usize, name: &str) -> Option<u32> {
        if let Some(id) = self.table.known_pipe(name) {
            return Some(id);
        }
        let named = &mut self.unknown_pipes[local];
        if let Some(id) = self
            .table
            .numbered_pipe(name)
            .filter(|id| named.contains(id))
        {
            return Some(id);
        }
        if named.len() >= UNKNOWN_INTERFACES_PER_SHARD {
            self.tally.smb_forgotten += 1;
            return None;
        }
        let id = self.table.pipe_id(name);
        named.push(id);
        Some(id)
    }

    fn apply_smb_segment(&mut self, s: &SmbSegment, p: &RoutedPacket) {
        // Messages a segment held past those read for names: what they named is forgotten.
        self.tally.smb_forgotten += u64::from(s.unread);
        let (port, side) = smb_ends(p);
        let table = self.table;
        // A connection gets its state at its first SMB message: a segment in which none
        // begins only counts for a connection that has one. A DCE/RPC connection gets it
        // at its first bind's contexts.
        let make = s.segment.start != u32::MAX && s.segment.first.dialect != smb::Dialect::Rpc;
        let Some(conn) = self.smb_conn(p, s.packet, make) else {
            return;
        };
        let segment = smb::Segment {
            start: (s.segment.start != u32::MAX).then_some(s.segment.start),
            first: s.segment.first,
            end: s.segment.end,
            tail: None,
            unread: u32::from(s.unread),
        };
        let lens = (u64::from(p.wire_len), u64::from(p.ip_len()));
        conn.segment(side, s.seq, s.len, lens, &segment, |l| {
            smb_row(table, port, l)
        });
    }

    /// The id of an interface a bind or an endpoint mapper answer names, counting an unknown
    /// one against the shard's bound the first time the shard names it; `None` past the
    /// bound.
    fn name_interface(&mut self, local: usize, uuid: &[u8; 16], count: bool) -> Option<u32> {
        if self.table.known_interface(uuid).is_none() {
            let named = &mut self.unknown_interfaces[local];
            if !named.contains(uuid) {
                if named.len() >= UNKNOWN_INTERFACES_PER_SHARD {
                    // Counted once per bind: by its evidence, not again by its contexts.
                    if count {
                        self.tally.unnamed_binds += 1;
                    }
                    return None;
                }
                named.push(*uuid);
            }
        }
        Some(self.table.interface_id(uuid))
    }

    fn apply_announcement(&mut self, a: &Announced) {
        let local = self.local(a.shard);
        let row = match a.target {
            Target::Rpc(index) => Some(self.table.epm_row(index, a.port)),
            Target::FtpData => self.table.expectation_row(Transport::Tcp, 20),
            Target::Tftp => self.table.expectation_row(Transport::Udp, 69),
        };
        if let Some(row) = row {
            let key = ExpectKey {
                listener: a.listener,
                other: a.other,
                port: a.port,
                proto: a.proto,
                vlan: a.vlan,
            };
            self.expected[local].announce(key, row, a.target, a.ts_ns);
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

/// The server port of an SMB packet's connection (445 or 139), and which side sent it
/// (0 for a).
fn smb_ends(p: &RoutedPacket) -> (u16, usize) {
    let k = &p.key;
    let server_is_b = matches!(k.b_port, smb::SMB_PORT | smb::NETBIOS_SESSION_PORT)
        && (k.a_port > k.b_port || !matches!(k.a_port, smb::SMB_PORT | smb::NETBIOS_SESSION_PORT));
    let port = if server_is_b { k.b_port } else { k.a_port };
    (port, usize::from(!p.from_a()))
}

/// The row of a part of an SMB connection to `port`.
fn smb_row(table: &PortTable, port: u16, label: crate::flow::smb::Label) -> crate::catalog::Match {
    use crate::flow::smb::Label;
    match label {
        Label::Share(share) => table.smb_share_row(port, share == smb::ShareKind::Print),
        Label::Pipe { pipe, interface } => table.smb_pipe_row(port, pipe, interface),
        Label::Sealed => table.smb_encrypted_row(port),
        Label::Session => table.smb_session_row(port),
        Label::Interface { interface, port } => {
            table.rpc_bind_row(crate::catalog::Transport::Tcp, port, interface)
        }
    }
}

/// The length on the wire of a TCP payload the capture may have cut short.
fn payload_wire_len(wire_len: u32, data: &[u8], payload: &[u8]) -> u32 {
    let len = if data.len() as u64 >= u64::from(wire_len) {
        payload.len()
    } else {
        let headers = (payload.as_ptr() as usize).saturating_sub(data.as_ptr() as usize);
        (wire_len as usize).saturating_sub(headers)
    };
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Routes the DCE/RPC PDUs of a segment of a connection outside SMB, after its packet (at
/// index `packet` of `outbox`), through the SMB connection state that frames messages:
/// the contexts its binds offer, then the segment.
fn route_rpc(
    d: &decode::Decoded,
    wire_len: u32,
    data: &[u8],
    payload: &[u8],
    packet: u32,
    outbox: &mut Vec<Routed>,
) {
    let decode::Upper::Ports { dst, .. } = d.upper else {
        return;
    };
    let len = payload_wire_len(wire_len, data, payload);
    let segment = inspect::rpc::co_segment(payload, len, |id, uuid| {
        outbox.push(Routed::SmbEvent(SmbEvent {
            packet,
            what: SmbWhat::Context {
                id,
                uuid,
                port: dst,
            },
        }));
    });
    push_segment(d, packet, len, &segment, outbox);
}

/// Routes what the SMB messages of a segment say, after its packet (at index `packet` of
/// `outbox`).
fn route_smb(
    d: &decode::Decoded,
    wire_len: u32,
    data: &[u8],
    payload: &[u8],
    packet: u32,
    outbox: &mut Vec<Routed>,
) {
    let len = payload_wire_len(wire_len, data, payload);
    let segment = smb::segment(payload, len, |e| {
        let record = match e {
            smb::Event::Tree { tree, share } => Routed::SmbEvent(SmbEvent {
                packet,
                what: SmbWhat::Tree { tree, share },
            }),
            smb::Event::Opened { message, file } => Routed::SmbEvent(SmbEvent {
                packet,
                what: SmbWhat::Opened { message, file },
            }),
            smb::Event::Bind { file, uuid } => Routed::SmbEvent(SmbEvent {
                packet,
                what: SmbWhat::Bind { file, uuid },
            }),
            smb::Event::Directory { tree } => Routed::SmbEvent(SmbEvent {
                packet,
                what: SmbWhat::Directory { tree },
            }),
            smb::Event::Close { message, file } => Routed::SmbEvent(SmbEvent {
                packet,
                what: SmbWhat::Close { message, file },
            }),
            smb::Event::TreeDisconnect { message, tree } => Routed::SmbEvent(SmbEvent {
                packet,
                what: SmbWhat::TreeDisconnect { message, tree },
            }),
            smb::Event::Logoff => Routed::SmbEvent(SmbEvent {
                packet,
                what: SmbWhat::Logoff,
            }),
            smb::Event::Open {
                message,
                tree,
                name,
            } => {
                let mut all = [0; smb::MAX_NAME];
                let n = smb::pipe_name(name, &mut all);
                let mut first = [0; NAME_LEN];
                first.copy_from_slice(&all[..NAME_LEN]);
                outbox.push(Routed::SmbOpen(SmbOpen {
                    packet,
                    message,
                    tree,
                    len: u8::try_from(n).unwrap_or(u8::MAX),
                    name: first,
                }));
                for chunk in all[NAME_LEN.min(n)..n].chunks(NAME_MORE) {
                    let mut more = [0; NAME_MORE];
                    more[..chunk.len()].copy_from_slice(chunk);
                    outbox.push(Routed::SmbName(more));
                }
                return;
            }
        };
        outbox.push(record);
    });
    push_segment(d, packet, len, &segment, outbox);
}

/// The records of a segment's messages (SMB or DCE/RPC): the segment, and its tail if the
/// last message goes on past it.
fn push_segment(
    d: &decode::Decoded,
    packet: u32,
    len: u32,
    segment: &smb::Segment,
    outbox: &mut Vec<Routed>,
) {
    outbox.push(Routed::SmbSegment(SmbSegment {
        packet,
        seq: d.tcp_seq(),
        len,
        unread: u16::try_from(segment.unread).unwrap_or(u16::MAX),
        segment: SegmentRead {
            start: segment.start.unwrap_or(u32::MAX),
            first: segment.first,
            end: segment.end,
        },
    }));
    if let Some(header) = segment.tail {
        outbox.push(Routed::SmbTail(SmbTail { packet, header }));
    }
}

/// What an announcement will label. An interface the table does not know is
/// [`UNNAMED`] here: the announcement is decoded outside its shard's order, so only the
/// shard's owner can name it within the shard's bound.
fn target_of(table: &PortTable, a: &Announcement) -> Target {
    match a.what {
        What::FtpData => Target::FtpData,
        What::Tftp => Target::Tftp,
        What::Rpc(uuid) => Target::Rpc(table.known_interface(&uuid).unwrap_or(UNNAMED)),
    }
}

/// The interface id of an endpoint mapper answer for an interface the table does not know,
/// until the owner of its shard names it (from the [`Routed::Interface`] behind it).
const UNNAMED: u32 = u32::MAX;

/// The routed form of an announcement.
fn announced(a: &Announcement, target: Target, vlan: u16, ts_ns: u64, shard: u8) -> Routed {
    Routed::Announce(Announced {
        listener: a.listener,
        other: a.other,
        port: a.port,
        proto: a.proto,
        vlan,
        shard,
        target,
        ts_ns,
    })
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
