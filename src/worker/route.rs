//! Routing: a frame decoded once, and its records appended to the outbox of the worker
//! that owns its shard.

use super::records::{
    Announced, Evidence, InnerPacket, Outboxes, Piece, Routed, RoutedPacket, SmbDeferred, SmbOpen,
    SmbSegment, SmbWhat, NAME_LEN, NAME_MORE, SMB_BYTES,
};
use super::Worker;
use crate::announce::{self, Announcement, What};
use crate::catalog::PortTable;
use crate::decode::{self, Fragment, IpVersion, Link, Skip};
use crate::flow::{shard_of_pair, Counts, Key, Target};
use crate::inspect::{self, smb};

impl Worker<'_> {
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
                }));
            }
        }
        if self.config.follow && smb::may_carry(&d, payload) {
            let len = payload_wire_len(wire_len, data, payload);
            if self.defer_smb {
                defer_smb(d.tcp_seq(), len, payload, to_server(&d), outbox);
            } else {
                let crypt = self.crypt(&d);
                route_smb(d.tcp_seq(), len, payload, crypt, outbox);
            }
        } else if self.config.follow && inspect::rpc::may_carry_co(&d, payload) {
            route_rpc(&d, wire_len, data, payload, outbox);
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

    /// With `--smb-keys`, what decrypting an SMB segment of `d` needs.
    fn crypt(&mut self, d: &decode::Decoded) -> Option<smb::Crypt<'_>> {
        let plain = &mut self.plain;
        self.keys.map(|keys| smb::Crypt {
            keys,
            derived: &[],
            to_server: to_server(d),
            plain,
        })
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

/// Routes the DCE/RPC PDUs of a segment of a connection outside SMB, after its packet,
/// through the SMB connection state that frames messages: the contexts its binds offer,
/// then the segment.
fn route_rpc(
    d: &decode::Decoded,
    wire_len: u32,
    data: &[u8],
    payload: &[u8],
    outbox: &mut Vec<Routed>,
) {
    let decode::Upper::Ports { dst, .. } = d.upper else {
        return;
    };
    let len = payload_wire_len(wire_len, data, payload);
    let walked = inspect::rpc::co_segment(payload, len, |id, uuid| {
        outbox.push(Routed::SmbEvent(SmbWhat::Context {
            id,
            uuid,
            port: dst,
        }));
    });
    push_segment(d.tcp_seq(), len, walked, outbox);
}

/// Whether an SMB packet goes to the server.
fn to_server(d: &decode::Decoded) -> bool {
    matches!(
        d.upper,
        decode::Upper::Ports {
            dst: smb::SMB_PORT | smb::NETBIOS_SESSION_PORT,
            ..
        }
    )
}

/// Sends an SMB segment (`len` bytes on the wire at sequence number `seq`, `payload` as
/// captured) to its owner to read, after its packet.
fn defer_smb(seq: u32, len: u32, payload: &[u8], to_server: bool, outbox: &mut Vec<Routed>) {
    outbox.push(Routed::SmbDeferred(SmbDeferred {
        seq,
        len,
        captured: u32::try_from(payload.len()).unwrap_or(u32::MAX),
        to_server,
    }));
    for chunk in payload.chunks(SMB_BYTES) {
        let mut bytes = [0; SMB_BYTES];
        bytes[..chunk.len()].copy_from_slice(chunk);
        outbox.push(Routed::SmbBytes(bytes));
    }
}

/// Routes what the SMB messages of a segment (`len` bytes on the wire at sequence number
/// `seq`, `payload` as captured) say, after its packet.
pub(super) fn route_smb(
    seq: u32,
    len: u32,
    payload: &[u8],
    crypt: Option<smb::Crypt<'_>>,
    outbox: &mut Vec<Routed>,
) {
    let walked = smb::segment_decrypting(payload, len, crypt, |e| {
        let what = match e {
            smb::Event::Tree { tree, share } => SmbWhat::Tree { tree, share },
            smb::Event::Opened { message, file } => SmbWhat::Opened { message, file },
            smb::Event::Bind { file, uuid } => SmbWhat::Bind { file, uuid },
            smb::Event::PipeContext { file, id, uuid } => SmbWhat::PipeContext { file, id, uuid },
            smb::Event::Directory { tree } => SmbWhat::Directory { tree },
            smb::Event::Close { message, file } => SmbWhat::Close { message, file },
            smb::Event::TreeDisconnect { message, tree } => {
                SmbWhat::TreeDisconnect { message, tree }
            }
            smb::Event::Logoff => SmbWhat::Logoff,
            smb::Event::Undecrypted { session } => SmbWhat::Undecrypted { session },
            smb::Event::Open {
                message,
                tree,
                name,
            } => {
                push_open(message, tree, name, outbox);
                return;
            }
        };
        outbox.push(Routed::SmbEvent(what));
    });
    push_segment(seq, len, walked, outbox);
}

/// A create request's records: the request with the first [`NAME_LEN`] bytes of its name,
/// then the rest in [`Routed::SmbName`] records.
fn push_open(message: u64, tree: u32, name: smb::Name<'_>, outbox: &mut Vec<Routed>) {
    let mut all = [0; smb::MAX_NAME];
    let n = smb::pipe_name(name, &mut all);
    let mut first = [0; NAME_LEN];
    first.copy_from_slice(&all[..NAME_LEN]);
    outbox.push(Routed::SmbOpen(SmbOpen {
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
}

/// The records of a segment's messages (SMB or DCE/RPC): the segment, and its tail if the
/// last message goes on past it.
fn push_segment(
    seq: u32,
    len: u32,
    (segment, tail): (smb::Segment, Option<smb::Header>),
    outbox: &mut Vec<Routed>,
) {
    outbox.push(Routed::SmbSegment(SmbSegment { seq, len, segment }));
    if let Some(header) = tail {
        outbox.push(Routed::SmbTail(header));
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
pub(super) const UNNAMED: u32 = u32::MAX;

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
