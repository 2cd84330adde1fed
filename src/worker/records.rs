//! The records a router sends a shard's owner: one cache line each.
//!
//! A packet's records follow it in its owner's outbox, in the order they were pushed, and
//! carry no reference back to it: the owner applies them to the packet it applied last.
//! Two kinds continue the record before them: an [`Routed::Interface`] its
//! [`Routed::Announce`], and [`Routed::SmbName`]s their [`Routed::SmbOpen`].

use crate::decode::{IpProto, Tunnel};
use crate::flow::{FragmentKey, Key, Target, SHARDS};
use crate::inspect::smb;

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
    SmbEvent(SmbWhat),
    /// An SMB create request's file name.
    SmbOpen(SmbOpen),
    /// The rest of the file name of the [`SmbOpen`] before it, [`NAME_MORE`] bytes a
    /// record.
    SmbName([u8; NAME_MORE]),
    /// The SMB messages a segment holds, for the part of its connection it goes to.
    SmbSegment(SmbSegment),
    /// The last SMB message of a segment, which goes on past it.
    SmbTail(smb::Header),
    /// The UUID of the interface the announcement just before it names, when the interface
    /// table does not know it.
    Interface([u8; 16]),
    /// A segment of an SMB connection for its owner to read, its payload in the
    /// [`Routed::SmbBytes`] records after it: with session keys given alone, an SMB 3.1.1
    /// session's keys come from its negotiation, which only the owner sees in order.
    SmbDeferred(SmbDeferred),
    /// [`SMB_BYTES`] bytes of the payload of the [`SmbDeferred`] before it.
    SmbBytes([u8; SMB_BYTES]),
}

/// The payload bytes an [`Routed::SmbBytes`] record carries.
pub const SMB_BYTES: usize = 62;

/// A segment of an SMB connection whose payload follows in [`Routed::SmbBytes`] records.
#[derive(Clone, Copy, Debug)]
pub struct SmbDeferred {
    pub seq: u32,
    /// The TCP payload's length on the wire, and as far as it was captured.
    pub len: u32,
    pub captured: u32,
    pub to_server: bool,
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
}

/// A DCE/RPC interface the payload of a packet names. Its flow, shard and direction are
/// the packet's.
#[derive(Clone, Copy, Debug)]
pub struct Evidence {
    pub uuid: [u8; 16],
    /// Whether the packet went to the server (else it came from it).
    pub to_server: bool,
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
    PipeContext {
        file: u64,
        id: u16,
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
    /// An encrypted message of a session with keys that did not decrypt with them.
    Undecrypted {
        session: u64,
    },
}

/// How many bytes of a create request's file name an [`SmbOpen`] carries; the rest, up to
/// [`smb::MAX_NAME`], follows in [`Routed::SmbName`] records.
pub const NAME_LEN: usize = 32;

/// The bytes of a name an [`Routed::SmbName`] record carries.
pub const NAME_MORE: usize = 60;

/// An SMB create request: its file name, as [`smb::pipe_name`] writes it (`len` bytes in
/// all: the first [`NAME_LEN`] here, the rest in the records after it).
#[derive(Clone, Copy, Debug)]
pub struct SmbOpen {
    pub message: u64,
    pub tree: u32,
    pub len: u8,
    pub name: [u8; NAME_LEN],
}

/// The SMB (or DCE/RPC) messages of a packet's segment.
#[derive(Clone, Copy, Debug)]
pub struct SmbSegment {
    pub seq: u32,
    /// The TCP payload's length on the wire.
    pub len: u32,
    pub segment: smb::Segment,
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
    pub(super) fn fragment_key(&self) -> FragmentKey {
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
    pub(super) fn for_shard(&mut self, shard: u8) -> &mut Vec<Routed> {
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
