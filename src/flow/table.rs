//! A shard of the flow table: a bounded map from [`Key`] to running counters.
//!
//! Flows are spread over [`SHARDS`] shards by a fixed hash of their key, and each shard is
//! owned by exactly one worker (shard `s` by worker `s % workers`). Every limit and timer is
//! per shard and measured in the shard's own capture time, so a flow ends at the same packet
//! whatever the number of workers: the output does not depend on `--threads`.

use super::flows::{hash_of, Flows};
use super::smb::Conn;
use super::{Counts, Exported, FlowEnd, FlowKey, FlowRecord, Key, PartRecord, Tally, Timeouts};
use crate::catalog::{Match, MatchKind};
use crate::decode::IpProto;

/// The number of flow-table shards, fixed so results do not depend on the thread count.
pub const SHARDS: usize = 64;

/// How often (in capture time) a shard looks for idle flows to end.
const SWEEP_EVERY_NS: u64 = 10_000_000_000;
/// How often (in capture time) a shard looks for flows due for an active-timeout record,
/// when there is an active timeout: a record leaves at most this late.
const ACTIVE_EVERY_NS: u64 = 1_000_000_000;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

#[derive(Clone, Debug)]
struct Stats {
    first_ns: u64,
    last_ns: u64,
    packets: [u64; 2],
    bytes: [u64; 2],
    /// The IP-layer octets of those bytes (what IPFIX exports).
    ip_bytes: [u64; 2],
    row: Option<Match>,
    a_is_origin: bool,
    /// FIN seen from a (bit 0) and from b (bit 1); SYN-ACK from a (bit 2) and from b (bit 3).
    fins: u8,
    /// TCP flags seen from a and from b, or'ed.
    flags: [u8; 2],
    closed: bool,
    /// Live mode: whether an interval has counted this flow among its flows; whether one
    /// has counted it in its own row, and the packets and bytes intervals have counted
    /// there.
    counted: bool,
    reported: bool,
    reported_packets: u64,
    reported_bytes: u64,
    /// An SMB connection's state and the parts its packets went to; the flow's own row
    /// keeps the rest.
    smb: Option<Box<Conn>>,
    /// An SMB connection that found no room for its state.
    smb_refused: bool,
    /// Active timeout: what the flow's records exported while it was open, once one was.
    exported: Option<Box<Exported>>,
}

impl Stats {
    /// The packets, bytes and IP-layer octets of the flow's own row: all but its parts'.
    fn own(&self) -> ([u64; 2], [u64; 2], [u64; 2]) {
        let (mut packets, mut bytes, mut ip_bytes) = (self.packets, self.bytes, self.ip_bytes);
        for p in self.smb.iter().flat_map(|c| &c.parts) {
            for side in 0..2 {
                packets[side] -= p.packets[side];
                bytes[side] -= p.bytes[side];
                ip_bytes[side] -= p.ip_bytes[side];
            }
        }
        (packets, bytes, ip_bytes)
    }

    /// What no live interval has counted of the flow's own row (the flow itself, if never
    /// counted).
    fn unreported(&self) -> Counts {
        let (packets, bytes, _) = self.own();
        Counts {
            flows: u64::from(!self.reported && packets[0] + packets[1] > 0),
            packets: packets[0] + packets[1] - self.reported_packets,
            bytes: bytes[0] + bytes[1] - self.reported_bytes,
        }
    }
}

/// What no live interval has counted of a part.
fn part_unreported(p: &super::smb::Part) -> Counts {
    Counts {
        flows: u64::from(!p.reported && p.packets[0] + p.packets[1] > 0),
        packets: p.packets[0] + p.packets[1] - p.reported_packets,
        bytes: p.bytes[0] + p.bytes[1] - p.reported_bytes,
    }
}

/// One packet as the flow table sees it.
#[derive(Clone, Copy, Debug)]
pub struct Packet<K = Key> {
    pub key: K,
    pub from_a: bool,
    pub ts_ns: u64,
    pub wire_len: u64,
    /// The IP-layer octets of those bytes.
    pub ip_len: u64,
    pub tcp_flags: u8,
}

/// One shard of the flow table (of outer flows, or of flows inside tunnels).
#[derive(Debug)]
pub struct Shard<K = Key> {
    flows: Flows<K, Stats>,
    max_flows: usize,
    /// The capture time of the next idle sweep, of the next look for active-timeout
    /// records, and the earlier of the two (one comparison per packet).
    next_sweep_ns: u64,
    next_active_ns: u64,
    next_check_ns: u64,
    scratch: Vec<u64>,
    /// Open flows that carry SMB state, at most [`SMB_CONNS_PER_SHARD`].
    smb_conns: usize,
}

/// Open SMB connections with state per shard (64 shards: 16,384 in all). A connection's
/// state is a few hundred bytes, and at most about 8 KiB with every table full, so this
/// bounds it at 128 MiB under the worst flood; a connection past the bound keeps its port
/// row and counts once in `smb_forgotten`.
pub const SMB_CONNS_PER_SHARD: usize = 256;

fn record<K: FlowKey>(key: K, s: &Stats, end: FlowEnd) -> FlowRecord {
    // A flow ended by a timeout after its close is a flow whose end was seen.
    let end = match end {
        FlowEnd::Idle | FlowEnd::Finished if s.closed => FlowEnd::Closed,
        end => end,
    };
    let (packets, bytes, ip_bytes) = s.own();
    FlowRecord {
        key: key.flow_key(),
        tunnel: key.tunnel(),
        row: s.row,
        first_ns: s.first_ns,
        last_ns: s.last_ns,
        a_is_origin: s.a_is_origin,
        packets,
        bytes,
        ip_bytes,
        tcp_flags: s.flags,
        end,
        unreported: s.unreported(),
        counted: s.counted,
        parts: s
            .smb
            .iter()
            .flat_map(|c| &c.parts)
            .filter(|p| p.packets[0] + p.packets[1] > 0)
            .map(|p| PartRecord {
                row: p.row,
                packets: p.packets,
                bytes: p.bytes,
                ip_bytes: p.ip_bytes,
                unreported: part_unreported(p),
                exported_packets: p.exported_packets,
                exported_bytes: p.exported_bytes,
                exported_ip_bytes: p.exported_ip_bytes,
            })
            .collect(),
        smb_forgotten: s.smb.as_ref().map_or(0, |c| c.forgotten) + u64::from(s.smb_refused),
        syn_ack_from_a: match s.fins & 0b1100 {
            0 => None,
            bits => Some(bits & 0b0100 != 0),
        },
        exported: s.exported.clone(),
    }
}

/// The active-timeout record of open flow `s`: what it carried since its last record (its
/// own row's and each part's), starting at the first packet since; `None` if nothing.
fn delta<K: FlowKey>(key: K, s: &Stats) -> Option<FlowRecord> {
    let mut r = record(key, s, FlowEnd::Active);
    if let Some(e) = r.exported.take() {
        r.first_ns = e.first_ns;
        for side in 0..2 {
            r.packets[side] = r.packets[side].saturating_sub(e.packets[side]);
            r.bytes[side] = r.bytes[side].saturating_sub(e.bytes[side]);
            r.ip_bytes[side] = r.ip_bytes[side].saturating_sub(e.ip_bytes[side]);
        }
    }
    for p in &mut r.parts {
        for side in 0..2 {
            p.packets[side] = p.packets[side].saturating_sub(p.exported_packets[side]);
            p.bytes[side] = p.bytes[side].saturating_sub(p.exported_bytes[side]);
            p.ip_bytes[side] = p.ip_bytes[side].saturating_sub(p.exported_ip_bytes[side]);
        }
        (p.exported_packets, p.exported_bytes, p.exported_ip_bytes) = ([0; 2], [0; 2], [0; 2]);
    }
    r.parts.retain(|p| p.packets[0] + p.packets[1] > 0);
    (r.packets[0] + r.packets[1] > 0 || !r.parts.is_empty()).then_some(r)
}

/// Whether `s` is over by the time of a packet at `now` with `flags`.
fn is_over(s: &Stats, proto: IpProto, now: u64, flags: u8, t: &Timeouts) -> bool {
    let idle = now.saturating_sub(s.last_ns);
    if idle > t.idle_ns(proto) {
        return true;
    }
    s.closed && (idle > t.tcp_close_ns || flags & (TCP_SYN | TCP_ACK) == TCP_SYN)
}

impl<K: FlowKey> Shard<K> {
    /// A shard holding at most `max_flows` flows (at least one).
    pub fn new(max_flows: usize) -> Shard<K> {
        Shard::with_capacity(max_flows, max_flows.min(1024))
    }

    /// The same, with room for `capacity` flows before the table first grows (0 for tables
    /// that are often empty, such as flows inside tunnels).
    pub fn with_capacity(max_flows: usize, capacity: usize) -> Shard<K> {
        let max_flows = max_flows.clamp(1, super::flows::MAX_LEN);
        Shard {
            flows: Flows::with_capacity(capacity.min(max_flows)),
            max_flows,
            next_sweep_ns: 0,
            next_active_ns: 0,
            next_check_ns: 0,
            scratch: Vec::new(),
            smb_conns: 0,
        }
    }

    /// Counts a packet into its flow, starting a flow (classified once by `classify`) when
    /// there is none or the previous one is over; returns the flow's index, valid until a
    /// flow of the shard ends.
    #[inline]
    pub fn packet(
        &mut self,
        p: &Packet<K>,
        classify: impl FnOnce(&K) -> Option<Match>,
        timeouts: &Timeouts,
        tally: &mut Tally,
    ) -> u32 {
        if p.ts_ns >= self.next_check_ns {
            self.check(p.ts_ns, timeouts, tally);
        }
        let hash = hash_of(&p.key);
        if let Some(i) = self.flows.find(hash, &p.key) {
            let s = self.flows.value_mut(i);
            if !is_over(s, p.key.proto(), p.ts_ns, p.tcp_flags, timeouts) {
                count(s, p);
                return i;
            }
            let (key, old) = self.flows.remove(i);
            self.smb_conns -= usize::from(old.smb.is_some());
            tally.end_flow(record(key, &old, FlowEnd::Idle));
        } else if self.flows.len() >= self.max_flows {
            self.evict(tally);
        }
        let mut s = Stats {
            first_ns: p.ts_ns,
            last_ns: p.ts_ns,
            packets: [0; 2],
            bytes: [0; 2],
            ip_bytes: [0; 2],
            row: classify(&p.key),
            a_is_origin: p.from_a,
            fins: 0,
            flags: [0; 2],
            closed: false,
            counted: false,
            reported: false,
            reported_packets: 0,
            reported_bytes: 0,
            smb: None,
            smb_refused: false,
            exported: None,
        };
        count(&mut s, p);
        self.flows.insert(hash, p.key, s)
    }

    /// The timers of a shard: every [`SWEEP_EVERY_NS`] the idle sweep, and with an active
    /// timeout, every [`ACTIVE_EVERY_NS`] the active-timeout records; in capture time, so
    /// that both happen at the same packets for any number of workers.
    fn check(&mut self, now: u64, timeouts: &Timeouts, tally: &mut Tally) {
        if now >= self.next_sweep_ns {
            self.sweep(now, timeouts, tally);
            self.next_sweep_ns = now.saturating_add(SWEEP_EVERY_NS);
        }
        self.next_check_ns = self.next_sweep_ns;
        if timeouts.active_ns > 0 && tally.keep_flows {
            if now >= self.next_active_ns {
                self.export_active(now, timeouts, tally);
                self.next_active_ns = now.saturating_add(ACTIVE_EVERY_NS);
            }
            self.next_check_ns = self.next_check_ns.min(self.next_active_ns);
        }
    }

    /// Hands the export a record of what each open flow carried since its start or its
    /// last such record, when that was an active timeout ago or more; the flow stays open,
    /// and its counts stay whole for the report. Flows already over are left to the sweep.
    fn export_active(&mut self, now: u64, timeouts: &Timeouts, tally: &mut Tally) {
        for (key, s) in self.flows.iter_mut() {
            let since = s.exported.as_ref().map_or(s.first_ns, |e| e.at_ns);
            if now.saturating_sub(since) < timeouts.active_ns
                || is_over(s, key.proto(), now, 0, timeouts)
            {
                continue;
            }
            if let Some(r) = delta(*key, s) {
                tally.export_open(r);
            }
            let (packets, bytes, ip_bytes) = s.own();
            let e = s.exported.get_or_insert_with(Box::default);
            **e = Exported {
                packets,
                bytes,
                ip_bytes,
                at_ns: now,
                first_ns: u64::MAX,
            };
            for p in s.smb.iter_mut().flat_map(|c| c.parts.iter_mut()) {
                (p.exported_packets, p.exported_bytes, p.exported_ip_bytes) =
                    (p.packets, p.bytes, p.ip_bytes);
            }
        }
    }

    /// Ends every flow idle past its timeout at capture time `now`.
    fn sweep(&mut self, now: u64, timeouts: &Timeouts, tally: &mut Tally) {
        let mut freed = 0;
        self.flows.retain(|key, s| {
            let over = is_over(s, key.proto(), now, 0, timeouts);
            if over {
                freed += usize::from(s.smb.is_some());
                tally.end_flow(record(*key, s, FlowEnd::Idle));
            }
            !over
        });
        self.smb_conns -= freed;
    }

    /// Ends the longest-idle eighth of the flows to make room; their counts are kept.
    fn evict(&mut self, tally: &mut Tally) {
        self.scratch.clear();
        self.scratch.extend(self.flows.values().map(|s| s.last_ns));
        if self.scratch.is_empty() {
            return;
        }
        let nth = self.scratch.len() / 8;
        let threshold = *self.scratch.select_nth_unstable(nth).1;
        let mut freed = 0;
        self.flows.retain(|key, s| {
            let evict = s.last_ns <= threshold;
            if evict {
                freed += usize::from(s.smb.is_some());
                tally.end_flow(record(*key, s, FlowEnd::Evicted));
            }
            !evict
        });
        self.smb_conns -= freed;
    }

    /// Ends every flow (the input is over).
    pub fn finish(&mut self, tally: &mut Tally) {
        for (key, s) in self.flows.drain() {
            tally.end_flow(record(key, &s, FlowEnd::Finished));
        }
        self.smb_conns = 0;
    }

    /// Refines the row of the open flow `key` with payload evidence: a flow the port table
    /// classified (by port or range) or left unclassified takes `row`, as a whole, the
    /// packets it already carried included. An announced flow (endpoint mapper, FTP, TFTP)
    /// keeps its row, and so does one already refined: evidence refines a flow once.
    pub fn refine(&mut self, key: &K, row: Match) {
        if let Some(i) = self.find(key) {
            let s = self.flows.value_mut(i);
            let refinable = s.smb.is_none()
                && match s.row {
                    None => true,
                    Some(m) => matches!(m.kind, MatchKind::Port | MatchKind::Range),
                };
            if refinable {
                s.row = Some(row);
            }
        }
    }

    /// The index of the open flow `key`, valid until a flow of the shard ends.
    pub fn find(&self, key: &K) -> Option<u32> {
        self.flows.find(hash_of(key), key)
    }

    /// The SMB state of the flow at index `i` (as [`Shard::packet`] or [`Shard::find`]
    /// returned it, with no flow ended since); when it has none, made only if `make`.
    /// `None` also when the shard holds [`SMB_CONNS_PER_SHARD`] connections with state
    /// already (counted once per connection in `smb_forgotten`).
    pub fn smb_at(&mut self, i: u32, make: bool) -> Option<&mut Conn> {
        let s = self.flows.value_mut(i);
        if s.smb.is_none() {
            if !make {
                return None;
            }
            if self.smb_conns >= SMB_CONNS_PER_SHARD {
                s.smb_refused = true;
                return None;
            }
            self.smb_conns += 1;
        }
        Some(s.smb.get_or_insert_with(Box::default))
    }

    /// Live mode: hands `add` what each open flow carried since the last call (its key,
    /// row and counts; a flow split into parts, each part's); returns how many flows no
    /// call counted before.
    pub fn report_open(&mut self, mut add: impl FnMut(&K, Option<Match>, Counts)) -> u64 {
        let mut new = 0;
        for (key, s) in self.flows.iter_mut() {
            new += u64::from(!s.counted);
            s.counted = true;
            let delta = s.unreported();
            if delta != Counts::default() {
                add(key, s.row, delta);
                s.reported |= delta.flows > 0;
                s.reported_packets += delta.packets;
                s.reported_bytes += delta.bytes;
            }
            for p in s.smb.iter_mut().flat_map(|c| c.parts.iter_mut()) {
                let delta = part_unreported(p);
                if delta != Counts::default() {
                    add(key, Some(p.row), delta);
                    p.reported = p.packets[0] + p.packets[1] > 0;
                    p.reported_packets += delta.packets;
                    p.reported_bytes += delta.bytes;
                }
            }
        }
        new
    }
}

#[inline]
fn count<K: FlowKey>(s: &mut Stats, p: &Packet<K>) {
    let side = usize::from(!p.from_a);
    s.packets[side] += 1;
    s.bytes[side] += p.wire_len;
    s.ip_bytes[side] += p.ip_len;
    s.first_ns = s.first_ns.min(p.ts_ns);
    s.last_ns = s.last_ns.max(p.ts_ns);
    if let Some(e) = s.exported.as_deref_mut() {
        e.first_ns = e.first_ns.min(p.ts_ns);
    }
    if p.key.proto() == IpProto::TCP {
        s.flags[side] |= p.tcp_flags;
        if p.tcp_flags & TCP_RST != 0 {
            s.closed = true;
        }
        if p.tcp_flags & TCP_FIN != 0 {
            s.fins |= if p.from_a { 1 } else { 2 };
            s.closed |= s.fins & 3 == 3;
        }
        if p.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK && s.fins & 0b1100 == 0 {
            s.fins |= if p.from_a { 0b0100 } else { 0b1000 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Counts;

    const S: u64 = 1_000_000_000;

    fn pkt(a_port: u16, from_a: bool, ts_s: u64, flags: u8, proto: u8) -> Packet {
        Packet {
            key: Key {
                a: [1; 16],
                b: [2; 16],
                a_port,
                b_port: 445,
                proto: IpProto(proto),
                vlan: 0,
                spi: 0,
            },
            from_a,
            ts_ns: ts_s * S,
            wire_len: 100,
            ip_len: 86,
            tcp_flags: flags,
        }
    }

    fn run(packets: &[Packet], max: usize) -> Tally {
        let mut shard: Shard = Shard::new(max);
        let mut tally = Tally::new(true);
        for p in packets {
            shard.packet(p, |_| None, &Timeouts::ZEEK, &mut tally);
        }
        shard.finish(&mut tally);
        tally
    }

    fn flows(t: &Tally) -> u64 {
        t.rows.values().map(|c| c.flows).sum()
    }

    #[test]
    fn idle_timeouts_are_in_capture_time() {
        // TCP: 300 s idle ends a flow; 299 s does not.
        let t = run(
            &[
                pkt(1, true, 0, 0, 6),
                pkt(1, false, 299, 0, 6),
                pkt(1, true, 600, 0, 6),
            ],
            10,
        );
        assert_eq!(flows(&t), 2);
        // UDP: 60 s.
        let t = run(&[pkt(1, true, 0, 0, 17), pkt(1, false, 61, 0, 17)], 10);
        assert_eq!(flows(&t), 2);
        assert_eq!(
            t.rows[&None],
            Counts {
                flows: 2,
                packets: 2,
                bytes: 200
            }
        );
    }

    #[test]
    fn fin_both_ways_or_rst_close_but_late_acks_stay() {
        let (f, r, a, syn) = (TCP_FIN | TCP_ACK, TCP_RST, TCP_ACK, TCP_SYN);
        let t = run(
            &[
                pkt(1, true, 0, syn, 6),
                pkt(1, true, 1, f, 6),
                pkt(1, false, 1, f, 6),
                pkt(1, true, 2, a, 6),   // the last ACK joins the closed flow
                pkt(1, true, 3, syn, 6), // a new SYN starts a new flow
                pkt(1, false, 3, r, 6),
                pkt(1, true, 20, a, 6), // past the close delay: new flow
            ],
            10,
        );
        assert_eq!(flows(&t), 3);
        let mut sizes: Vec<_> = t
            .flows
            .iter()
            .map(|f| f.packets[0] + f.packets[1])
            .collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [1, 2, 4]);
    }

    fn smb<'s>(shard: &'s mut Shard, key: &Key) -> Option<&'s mut Conn> {
        let i = shard.find(key)?;
        shard.smb_at(i, true)
    }

    #[test]
    fn smb_state_is_bounded_per_shard() {
        let mut shard: Shard = Shard::new(10_000);
        let mut tally = Tally::new(false);
        let n = SMB_CONNS_PER_SHARD as u16 + 10;
        for port in 0..n {
            let p = pkt(port, true, 0, TCP_SYN, 6);
            shard.packet(&p, |_| None, &Timeouts::ZEEK, &mut tally);
            assert_eq!(
                smb(&mut shard, &p.key).is_some(),
                usize::from(port) < SMB_CONNS_PER_SHARD
            );
            // Asking again for a refused connection counts it once.
            let _ = smb(&mut shard, &p.key);
        }
        // A flow that ends frees its room.
        let first = pkt(0, true, 1, TCP_RST, 6);
        shard.packet(&first, |_| None, &Timeouts::ZEEK, &mut tally);
        let new = pkt(0, true, 10, TCP_SYN, 6);
        shard.packet(&new, |_| None, &Timeouts::ZEEK, &mut tally);
        assert!(smb(&mut shard, &new.key).is_some());
        shard.finish(&mut tally);
        assert_eq!(tally.smb_forgotten, 10);
    }

    /// A UDP flow of a packet a second for 36 s, each way in turn, under a 10 s active
    /// timeout: a record every 10 s of what came since, the flow kept whole for the tally.
    #[test]
    fn active_timeout_records_carry_deltas_and_the_flow_stays_whole() {
        let mut shard: Shard = Shard::new(10);
        let mut tally = Tally::new(true);
        let timeouts = Timeouts {
            active_ns: 10 * S,
            ..Timeouts::ZEEK
        };
        for t in 0..36 {
            shard.packet(
                &pkt(1, t % 2 == 0, t, 0, 17),
                |_| None,
                &timeouts,
                &mut tally,
            );
        }
        // Nothing counted yet: the three records are for the export only.
        assert!(tally.rows.is_empty());
        let open: Vec<_> = tally
            .flows
            .iter()
            .map(|f| (f.end, f.first_ns / S, f.last_ns / S, f.packets, f.bytes))
            .collect();
        assert_eq!(
            open,
            [
                (FlowEnd::Active, 0, 9, [5, 5], [500, 500]),
                (FlowEnd::Active, 10, 19, [5, 5], [500, 500]),
                (FlowEnd::Active, 20, 29, [5, 5], [500, 500]),
            ]
        );
        assert!(tally.flows.iter().all(|f| f.exported.is_none()));
        shard.finish(&mut tally);
        assert_eq!(
            tally.rows[&None],
            Counts {
                flows: 1,
                packets: 36,
                bytes: 3600
            }
        );
        // The last record is the whole flow, with what the others exported of it.
        let last = &tally.flows[3];
        assert_eq!(
            (last.end, last.first_ns, last.packets),
            (FlowEnd::Finished, 0, [18, 18])
        );
        assert_eq!(
            last.exported.as_deref(),
            Some(&Exported {
                packets: [15, 15],
                bytes: [1500, 1500],
                ip_bytes: [1290, 1290],
                at_ns: 30 * S,
                first_ns: 30 * S,
            })
        );

        // Without flows kept (nothing exported), no records are made.
        let mut shard: Shard = Shard::new(10);
        let mut tally = Tally::new(false);
        for t in 0..36 {
            shard.packet(&pkt(1, true, t, 0, 17), |_| None, &timeouts, &mut tally);
        }
        assert!(tally.flows.is_empty());
    }

    #[test]
    fn eviction_keeps_every_count() {
        let packets: Vec<_> = (0..100).map(|i| pkt(i, true, u64::from(i), 0, 6)).collect();
        let t = run(&packets, 16);
        assert_eq!(
            t.rows[&None],
            Counts {
                flows: 100,
                packets: 100,
                bytes: 10_000
            }
        );
        assert!(t.evicted_flows > 0);
        // The longest-idle flows went first: the newest flow was never evicted.
        assert!(t.flows.iter().any(|f| f.key.a_port == 99 && !f.evicted()));
    }
}
