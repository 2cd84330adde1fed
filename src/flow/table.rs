//! A shard of the flow table: a bounded map from [`Key`] to running counters.
//!
//! Flows are spread over [`SHARDS`] shards by a fixed hash of their key, and each shard is
//! owned by exactly one worker (shard `s` by worker `s % workers`). Every limit and timer is
//! per shard and measured in the shard's own capture time, so a flow ends at the same packet
//! whatever the number of workers: the output does not depend on `--threads`.

use super::{Counts, FlowKey, FlowRecord, Key, Tally, Timeouts};
use crate::catalog::{Match, MatchKind};
use crate::decode::IpProto;

/// The number of flow-table shards, fixed so results do not depend on the thread count.
pub const SHARDS: usize = 64;

/// How often (in capture time) a shard looks for idle flows to end.
const SWEEP_EVERY_NS: u64 = 10_000_000_000;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

#[derive(Clone, Copy, Debug)]
struct Stats {
    first_ns: u64,
    last_ns: u64,
    packets: [u64; 2],
    bytes: [u64; 2],
    row: Option<Match>,
    a_is_origin: bool,
    /// FIN seen from a (bit 0) and from b (bit 1); SYN-ACK from a (bit 2) and from b (bit 3).
    fins: u8,
    closed: bool,
    /// Live mode: whether an interval has counted this flow, and the packets and bytes
    /// intervals have counted.
    reported: bool,
    reported_packets: u64,
    reported_bytes: u64,
}

impl Stats {
    fn unreported(&self) -> Counts {
        Counts {
            flows: u64::from(!self.reported),
            packets: self.packets[0] + self.packets[1] - self.reported_packets,
            bytes: self.bytes[0] + self.bytes[1] - self.reported_bytes,
        }
    }
}

/// One packet as the flow table sees it.
#[derive(Clone, Copy, Debug)]
pub struct Packet<K = Key> {
    pub key: K,
    pub from_a: bool,
    pub ts_ns: u64,
    pub wire_len: u64,
    pub tcp_flags: u8,
}

/// One shard of the flow table (of outer flows, or of flows inside tunnels).
#[derive(Debug)]
pub struct Shard<K = Key> {
    flows: hashbrown::HashMap<K, Stats>,
    max_flows: usize,
    next_sweep_ns: u64,
    scratch: Vec<u64>,
}

fn record<K: FlowKey>(key: K, s: &Stats, evicted: bool) -> FlowRecord {
    FlowRecord {
        key: key.flow_key(),
        tunnel: key.tunnel(),
        row: s.row,
        first_ns: s.first_ns,
        last_ns: s.last_ns,
        a_is_origin: s.a_is_origin,
        packets: s.packets,
        bytes: s.bytes,
        evicted,
        unreported: s.unreported(),
        syn_ack_from_a: match s.fins & 0b1100 {
            0 => None,
            bits => Some(bits & 0b0100 != 0),
        },
    }
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
        let max_flows = max_flows.max(1);
        Shard {
            flows: hashbrown::HashMap::with_capacity(capacity.min(max_flows)),
            max_flows,
            next_sweep_ns: 0,
            scratch: Vec::new(),
        }
    }

    /// Counts a packet into its flow, starting a flow (classified once by `classify`) when
    /// there is none or the previous one is over.
    #[inline]
    pub fn packet(
        &mut self,
        p: &Packet<K>,
        classify: impl FnOnce(&K) -> Option<Match>,
        timeouts: &Timeouts,
        tally: &mut Tally,
    ) {
        if p.ts_ns >= self.next_sweep_ns {
            self.sweep(p.ts_ns, timeouts, tally);
            self.next_sweep_ns = p.ts_ns.saturating_add(SWEEP_EVERY_NS);
        }
        let over = match self.flows.get_mut(&p.key) {
            Some(s) if !is_over(s, p.key.proto(), p.ts_ns, p.tcp_flags, timeouts) => {
                count(s, p);
                return;
            }
            Some(_) => true,
            None => false,
        };
        if over {
            if let Some(old) = self.flows.remove(&p.key) {
                tally.end_flow(&record(p.key, &old, false));
            }
        } else if self.flows.len() >= self.max_flows {
            self.evict(tally);
        }
        let mut s = Stats {
            first_ns: p.ts_ns,
            last_ns: p.ts_ns,
            packets: [0; 2],
            bytes: [0; 2],
            row: classify(&p.key),
            a_is_origin: p.from_a,
            fins: 0,
            closed: false,
            reported: false,
            reported_packets: 0,
            reported_bytes: 0,
        };
        count(&mut s, p);
        self.flows.insert(p.key, s);
    }

    /// Ends every flow idle past its timeout at capture time `now`.
    fn sweep(&mut self, now: u64, timeouts: &Timeouts, tally: &mut Tally) {
        self.flows.retain(|key, s| {
            let over = is_over(s, key.proto(), now, 0, timeouts);
            if over {
                tally.end_flow(&record(*key, s, false));
            }
            !over
        });
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
        self.flows.retain(|key, s| {
            let evict = s.last_ns <= threshold;
            if evict {
                tally.end_flow(&record(*key, s, true));
            }
            !evict
        });
    }

    /// Ends every flow (the input is over).
    pub fn finish(&mut self, tally: &mut Tally) {
        for (key, s) in self.flows.drain() {
            tally.end_flow(&record(key, &s, false));
        }
    }

    /// Refines the row of the open flow `key` with payload evidence: a flow the port table
    /// classified (by port or range) or left unclassified takes `row`, as a whole, the
    /// packets it already carried included. An announced flow (endpoint mapper, FTP, TFTP)
    /// keeps its row, and so does one already refined: evidence refines a flow once.
    pub fn refine(&mut self, key: &K, row: Match) {
        if let Some(s) = self.flows.get_mut(key) {
            let refinable = match s.row {
                None => true,
                Some(m) => matches!(m.kind, MatchKind::Port | MatchKind::Range),
            };
            if refinable {
                s.row = Some(row);
            }
        }
    }

    /// Live mode: hands `add` what each open flow carried since the last call (its key,
    /// row and counts).
    pub fn report_open(&mut self, mut add: impl FnMut(&K, Option<Match>, Counts)) {
        for (key, s) in &mut self.flows {
            let delta = s.unreported();
            if delta != Counts::default() {
                add(key, s.row, delta);
                s.reported = true;
                s.reported_packets += delta.packets;
                s.reported_bytes += delta.bytes;
            }
        }
    }
}

#[inline]
fn count<K: FlowKey>(s: &mut Stats, p: &Packet<K>) {
    let side = usize::from(!p.from_a);
    s.packets[side] += 1;
    s.bytes[side] += p.wire_len;
    s.first_ns = s.first_ns.min(p.ts_ns);
    s.last_ns = s.last_ns.max(p.ts_ns);
    if p.key.proto() == IpProto::TCP {
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
        assert!(t.flows.iter().any(|f| f.key.a_port == 99 && !f.evicted));
    }
}
