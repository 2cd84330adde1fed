//! Applying routed records to the worker's own shards, in the order they were pushed.

use super::records::{Announced, Evidence, InnerPacket, Piece, Routed, RoutedPacket};
use super::route::UNNAMED;
use super::Worker;
use crate::catalog::Transport;
use crate::classify::classify;
use crate::flow::{ExpectKey, InnerKey, Packet, Target, TunnelEnds, SHARDS};

impl Worker<'_> {
    /// Applies, in order, the records routed to this worker from one batch: packets are
    /// counted into their flows (fragments joined first), and the records after a packet
    /// are applied to it (inner packets into the flow inside its tunnel, payload evidence
    /// and SMB records into its connection); announcements go into the expected flows.
    #[inline]
    pub fn apply(&mut self, part: &[Routed]) {
        self.apply_after(part, None);
    }

    /// [`Worker::apply`], the first records belonging to packet `current`.
    pub(super) fn apply_after<'a>(
        &mut self,
        part: &'a [Routed],
        mut current: Option<&'a RoutedPacket>,
    ) {
        let mut rest = part;
        while let Some((r, after)) = rest.split_first() {
            rest = after;
            match r {
                Routed::Packet(p) => {
                    self.apply_packet(p);
                    current = Some(p);
                }
                // Announcements stand alone, but for the unknown interface behind one.
                Routed::Announce(a) => {
                    let uuid = match rest.first() {
                        Some(Routed::Interface(uuid)) => {
                            rest = &rest[1..];
                            Some(uuid)
                        }
                        _ => None,
                    };
                    self.apply_announce(a, uuid);
                }
                Routed::SmbOpen(o) => {
                    let names = rest
                        .iter()
                        .take_while(|r| matches!(r, Routed::SmbName(_)))
                        .count();
                    let (more, after) = rest.split_at(names);
                    rest = after;
                    match current {
                        Some(p) => self.apply_smb_open(o, more, p),
                        None => debug_assert!(false, "a record before any packet: {r:?}"),
                    }
                }
                Routed::SmbDeferred(s) => {
                    let chunks = rest
                        .iter()
                        .take_while(|r| matches!(r, Routed::SmbBytes(_)))
                        .count();
                    let (bytes, after) = rest.split_at(chunks);
                    rest = after;
                    match current {
                        Some(p) => self.apply_smb_deferred(s, bytes, p),
                        None => debug_assert!(false, "a record before any packet: {r:?}"),
                    }
                }
                Routed::Interface(_) | Routed::SmbName(_) | Routed::SmbBytes(_) => {
                    debug_assert!(false, "a continuation without its first record: {r:?}");
                }
                _ => match current {
                    Some(p) => self.apply_to_packet(r, p),
                    None => debug_assert!(false, "a record before any packet: {r:?}"),
                },
            }
        }
    }

    /// Applies a record that belongs to packet `p`, the last one applied.
    #[inline]
    fn apply_to_packet(&mut self, r: &Routed, p: &RoutedPacket) {
        match r {
            Routed::Inner(i) => self.apply_inner(i, p),
            Routed::Evidence(e) => self.apply_evidence(e, p),
            Routed::SmbEvent(what) => self.apply_smb_event(what, p),
            Routed::SmbSegment(s) => self.apply_smb_segment(s, p),
            Routed::SmbTail(header) => self.apply_smb_tail(header, p),
            Routed::Packet(_)
            | Routed::Announce(_)
            | Routed::SmbOpen(_)
            | Routed::Interface(_)
            | Routed::SmbName(_)
            | Routed::SmbDeferred(_)
            | Routed::SmbBytes(_) => {}
        }
    }

    /// An announcement; `uuid`, the record behind it, names an interface the table does
    /// not know, within the shard's bound.
    fn apply_announce(&mut self, a: &Announced, uuid: Option<&[u8; 16]>) {
        match (a.target, uuid) {
            (Target::Rpc(UNNAMED), Some(uuid)) => {
                let local = self.local(a.shard);
                if let Some(id) = self.name_interface(local, uuid, true) {
                    self.apply_announcement(&Announced {
                        target: Target::Rpc(id),
                        ..*a
                    });
                }
            }
            (Target::Rpc(UNNAMED), None) => {
                debug_assert!(
                    false,
                    "an unnamed interface's announcement without it: {a:?}"
                );
            }
            _ => self.apply_announcement(a),
        }
    }

    /// The index among this worker's shards of global shard `shard`, which it owns.
    #[inline]
    pub(super) fn local(&self, shard: u8) -> usize {
        debug_assert_eq!(usize::from(shard) % self.config.workers, self.id);
        usize::from(self.local_of[usize::from(shard) % SHARDS])
    }

    #[inline]
    fn apply_packet(&mut self, r: &RoutedPacket) {
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
        self.last_flow = (r.piece == Piece::Whole).then_some(flow);
    }

    /// An inner packet: counted into its flow inside the tunnel of `outer`.
    pub(super) fn apply_inner(&mut self, r: &InnerPacket, outer: &RoutedPacket) {
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
    pub(super) fn apply_evidence(&mut self, e: &Evidence, packet: &RoutedPacket) {
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

    pub(super) fn apply_announcement(&mut self, a: &Announced) {
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
}
