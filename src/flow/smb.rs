//! The SMB state of one TCP connection, and the parts its packets are split into.
//!
//! One SMB connection carries many trees (shares) and open files (pipes), so its packets
//! are attributed per message: each segment goes to the part of the tree or pipe that the
//! message it begins, continues or completes addresses. The state is small and bounded:
//! [`MAX_TREES`] trees, [`MAX_FILES`] open pipes, [`MAX_PENDING`] requests awaiting their
//! response and [`MAX_PARTS`] parts per connection.
//!
//! State forgets only what has ended, as far as it can: a CLOSE ends its file, a
//! TREE_DISCONNECT its tree and the files opened on it, a LOGOFF every tree and file of the
//! connection (portscope does not key trees by session), a response its request. Files on
//! disk and print shares are not kept at all (their messages name their tree). When a
//! table is full all the same, it pushes out the entry used least recently (for requests,
//! the oldest), so a pipe in use outlives idle ones; what is pushed out is counted in
//! `forgotten`.
//!
//! Per direction, the connection knows where the next message starts in TCP sequence
//! space. A segment that starts there begins a message; one before it continues the
//! current message (a message longer than a segment, such as a 1 MB READ, is followed by
//! its length, not buffered); after a gap, or a segment that does not begin where a message
//! should, the direction resynchronises on the next SMB header the segment shows, and
//! what cannot be placed stays in the flow's own row.
//!
//! Parts are named by the worker, which owns the tables of pipes and interfaces: this
//! module sees ids and kinds only.

use crate::catalog::Match;
use crate::inspect::smb::{Dialect, Header, Segment, ShareKind};

pub const MAX_TREES: usize = 64;
pub const MAX_FILES: usize = 64;
pub const MAX_PENDING: usize = 64;
/// Presentation contexts of a DCE/RPC connection (Windows offers one to three per bind or
/// alter context, and a WMI session a handful).
pub const MAX_CONTEXTS: usize = 16;
/// Presentation contexts one open pipe keeps (a bind offers one or two; an alter context
/// adds one); past that, the oldest is forgotten.
pub const MAX_PIPE_CONTEXTS: usize = 4;
/// Parts: one per open pipe, plus disk and print shares, sealed and session messages.
pub const MAX_PARTS: usize = MAX_FILES + 4;

/// No part: the flow's own (port) row.
const NONE: u8 = u8::MAX;

/// What a part of a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// A share of a kind (disk or print).
    Share(ShareKind),
    /// An open pipe (the worker's pipe id) and the interface bound over it, once one is.
    Pipe { pipe: u32, interface: Option<u32> },
    /// Encrypted or compressed messages.
    Sealed,
    /// The session's own messages (negotiate, session setup, logoff, echo), which address
    /// no tree.
    Session,
    /// On a DCE/RPC connection of its own, the PDUs of the presentation contexts bound to
    /// an interface (the worker's interface id) other than the connection's first, on the
    /// server's port.
    Interface { interface: u32, port: u16 },
}

/// The packets and bytes of one part of a connection, by sender (`a` is index 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub label: Label,
    pub row: Match,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// The IP-layer octets of those bytes (what IPFIX exports).
    pub ip_bytes: [u64; 2],
    /// Live mode: whether an interval counted this part, and what intervals counted.
    pub reported: bool,
    pub reported_packets: u64,
    pub reported_bytes: u64,
    /// What active-timeout records exported of the part while its flow was open.
    pub exported_packets: [u64; 2],
    pub exported_bytes: [u64; 2],
    pub exported_ip_bytes: [u64; 2],
}

impl Part {
    /// Adds what `other` counted (both parts' flow counts once in every row it is in).
    fn absorb(&mut self, other: &Part) {
        for side in 0..2 {
            self.packets[side] += other.packets[side];
            self.bytes[side] += other.bytes[side];
            self.ip_bytes[side] += other.ip_bytes[side];
            self.exported_packets[side] += other.exported_packets[side];
            self.exported_bytes[side] += other.exported_bytes[side];
            self.exported_ip_bytes[side] += other.exported_ip_bytes[side];
        }
        self.reported |= other.reported;
        self.reported_packets += other.reported_packets;
        self.reported_bytes += other.reported_bytes;
    }

    /// A part that has counted nothing yet.
    fn new(label: Label, row: Match) -> Part {
        Part {
            label,
            row,
            packets: [0; 2],
            bytes: [0; 2],
            ip_bytes: [0; 2],
            reported: false,
            reported_packets: 0,
            reported_bytes: 0,
            exported_packets: [0; 2],
            exported_bytes: [0; 2],
            exported_ip_bytes: [0; 2],
        }
    }

    /// Counts nothing again.
    fn clear(&mut self) {
        *self = Part::new(self.label, self.row);
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Direction {
    synced: bool,
    /// The sequence number at which the next message begins.
    next: u32,
    /// The part of the message that segments before `next` carry.
    current: u8,
}

/// The SMB state of one connection.
#[derive(Clone, Debug, Default)]
pub struct Conn {
    directions: [Direction; 2],
    trees: Vec<Tree>,
    /// Open pipes.
    files: Vec<File>,
    /// Requests whose response goes to a part: message id to part.
    pending: Vec<(u64, u8)>,
    /// Create requests on pipes: message id to the tree, for the file they open.
    creating: Vec<(u64, u32)>,
    /// Counts the uses of trees and files, for least-recently-used eviction.
    clock: u64,
    /// A DCE/RPC connection's presentation contexts: context id to part ([`NONE`] for
    /// the connection's first interface, whose PDUs stay in the flow's own row).
    contexts: Vec<(u32, u8)>,
    /// The interface the connection bound first, which its own row names.
    first_interface: Option<u32>,
    /// The part of the last bind or alter context, which its acknowledgement joins.
    binding: Option<u8>,
    pub parts: Vec<Part>,
    /// Trees, files, pending requests or parts pushed out of full tables, or parts that
    /// found no room.
    pub forgotten: u64,
    /// With session keys given alone, what the connection's negotiation has shown (SMB
    /// 3.1.1 keys come from it), made at its first deferred segment.
    pub negotiation: Option<Box<crate::inspect::smb::preauth::Negotiation>>,
}

#[derive(Clone, Copy, Debug)]
struct Tree {
    id: u32,
    share: ShareKind,
    used: u64,
}

/// An open pipe.
#[derive(Clone, Copy, Debug)]
struct File {
    id: u64,
    part: u8,
    tree: u32,
    used: u64,
    /// The presentation contexts binds and alter contexts offered over it: context id
    /// and interface id, the first `contexts_len`.
    contexts: [(u16, u32); MAX_PIPE_CONTEXTS],
    contexts_len: u8,
}

impl File {
    /// The interface presentation context `id` was offered for.
    fn context(&self, id: u16) -> Option<u32> {
        self.contexts[..usize::from(self.contexts_len)]
            .iter()
            .find(|c| c.0 == id)
            .map(|c| c.1)
    }
}

/// Pushes `entry` into a table bounded at `max`, pushing out the oldest; counts it.
fn bounded<T>(table: &mut Vec<T>, max: usize, entry: T, forgotten: &mut u64) {
    if table.len() >= max {
        table.remove(0);
        *forgotten += 1;
    }
    table.push(entry);
}

/// Pushes `entry` into a table bounded at `max`, pushing out the entry with the smallest
/// `used`; counts it.
fn bounded_lru<T>(
    table: &mut Vec<T>,
    max: usize,
    entry: T,
    used: impl Fn(&T) -> u64,
    forgotten: &mut u64,
) {
    if table.len() >= max {
        if let Some(i) = (0..table.len()).min_by_key(|&i| used(&table[i])) {
            table.swap_remove(i);
            *forgotten += 1;
        }
    }
    table.push(entry);
}

/// Whether sequence number `a` is before `b` (RFC 1982 arithmetic).
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Conn {
    /// The kind of share `tree` is, if its tree connect was seen.
    pub fn tree(&self, tree: u32) -> Option<ShareKind> {
        self.trees.iter().find(|t| t.id == tree).map(|t| t.share)
    }

    /// Marks `tree` used now; its kind.
    fn use_tree(&mut self, tree: u32) -> Option<ShareKind> {
        self.clock += 1;
        let now = self.clock;
        let t = self.trees.iter_mut().find(|t| t.id == tree)?;
        t.used = now;
        Some(t.share)
    }

    /// The part of open pipe `file`, marked used now.
    fn use_file(&mut self, file: u64) -> Option<u8> {
        self.clock += 1;
        let now = self.clock;
        let f = self.files.iter_mut().find(|f| f.id == file)?;
        f.used = now;
        Some(f.part)
    }

    /// Trees and open pipes held now (for tests and the bounds).
    pub fn held(&self) -> (usize, usize) {
        (self.trees.len(), self.files.len())
    }

    /// A tree connect response.
    pub fn connected(&mut self, tree: u32, share: ShareKind) {
        if self.use_tree(tree).is_some() {
            if let Some(t) = self.trees.iter_mut().find(|t| t.id == tree) {
                t.share = share;
            }
        } else {
            self.add_tree(tree, share);
        }
    }

    fn add_tree(&mut self, id: u32, share: ShareKind) {
        let entry = Tree {
            id,
            share,
            used: self.clock,
        };
        bounded_lru(
            &mut self.trees,
            MAX_TREES,
            entry,
            |t| t.used,
            &mut self.forgotten,
        );
    }

    /// A directory operation on `tree`: a tree whose connect was not seen is a disk share.
    pub fn directory(&mut self, tree: u32) {
        if self.tree(tree).is_none() {
            self.add_tree(tree, ShareKind::Disk);
        }
    }

    /// A create request for pipe `pipe` on `tree`: the request and its response go to the
    /// pipe's part, and so will the file it opens.
    pub fn open(&mut self, message: u64, tree: u32, pipe: u32, row: impl FnOnce(Label) -> Match) {
        let label = Label::Pipe {
            pipe,
            interface: None,
        };
        let part = self.part(label, row);
        if part != NONE {
            self.expect(message, part);
            if let Some(c) = self.creating.iter_mut().find(|c| c.0 == message) {
                c.1 = tree;
            } else {
                bounded(
                    &mut self.creating,
                    MAX_PENDING,
                    (message, tree),
                    &mut self.forgotten,
                );
            }
        }
    }

    /// A create response: the pipe the create request `message` opened is `file`. (Files
    /// on other shares are not kept: their messages name their tree.)
    pub fn opened(&mut self, message: u64, file: u64) {
        let Some(i) = self.creating.iter().position(|c| c.0 == message) else {
            return;
        };
        let (_, tree) = self.creating.swap_remove(i);
        let Some(&(_, part)) = self.pending.iter().find(|p| p.0 == message) else {
            return;
        };
        if self.use_file(file).is_some() {
            if let Some(f) = self.files.iter_mut().find(|f| f.id == file) {
                f.part = part;
                f.tree = tree;
            }
        } else {
            let entry = File {
                id: file,
                part,
                tree,
                used: self.clock,
                contexts: [(0, 0); MAX_PIPE_CONTEXTS],
                contexts_len: 0,
            };
            bounded_lru(
                &mut self.files,
                MAX_FILES,
                entry,
                |f| f.used,
                &mut self.forgotten,
            );
        }
    }

    /// A close request (`message`) of `file`: the request and its response still go to
    /// the file's part; the file ends.
    pub fn close(&mut self, message: u64, file: u64) {
        if let Some(i) = self.files.iter().position(|f| f.id == file) {
            let part = self.files.swap_remove(i).part;
            self.expect(message, part);
        }
    }

    /// A tree disconnect request (`message`): the request and its response still go to the
    /// tree's part; the tree ends, and so do the pipes opened on it.
    pub fn disconnect(&mut self, message: u64, tree: u32, row: impl FnOnce(Label) -> Match) {
        let part = self.tree_part(tree, row);
        if part != NONE {
            self.expect(message, part);
        }
        self.trees.retain(|t| t.id != tree);
        self.files.retain(|f| f.tree != tree);
    }

    /// A logoff: every tree and file of the connection ends.
    pub fn logoff(&mut self) {
        self.trees.clear();
        self.files.clear();
        self.creating.clear();
    }

    /// A bind written to `file`: its pipe's part takes the interface, unless one was bound
    /// before (the first bind names the part). When an earlier open of the same pipe bound
    /// the same interface, the file and what its part counted join that part, and the
    /// emptied part stays the pipe's unbound one, for the next open: a session that opens
    /// the same pipe again and again holds two parts, not one per open.
    pub fn bound(&mut self, file: u64, interface: u32, row: impl FnOnce(Label) -> Match) {
        let Some(part) = self.use_file(file) else {
            return;
        };
        let Some(&p) = self.parts.get(usize::from(part)) else {
            return;
        };
        let Label::Pipe {
            pipe,
            interface: None,
        } = p.label
        else {
            return;
        };
        let label = Label::Pipe {
            pipe,
            interface: Some(interface),
        };
        let Some(into) = self.parts.iter().position(|q| q.label == label) else {
            let p = &mut self.parts[usize::from(part)];
            p.label = label;
            p.row = row(label);
            return;
        };
        let into_id = u8::try_from(into).unwrap_or(NONE);
        self.parts[into].absorb(&p);
        self.parts[usize::from(part)].clear();
        for f in &mut self.files {
            if f.part == part {
                f.part = into_id;
            }
        }
        for q in &mut self.pending {
            if q.1 == part {
                q.1 = into_id;
            }
        }
        for d in &mut self.directions {
            if d.current == part {
                d.current = into_id;
            }
        }
    }

    /// Counts a segment of `len` payload bytes at sequence number `seq`, sent by `side`
    /// (0 for a), into the part its message goes to; returns whether it went to one.
    pub fn segment(
        &mut self,
        side: usize,
        seq: u32,
        len: u32,
        (wire_len, ip_len): (u64, u64),
        s: &Segment,
        row: impl FnMut(Label) -> Match,
    ) -> bool {
        let d = self.directions[side];
        let end = seq.wrapping_add(len);
        let part = if d.synced && seq == d.next {
            if s.start == Some(0) {
                let part = self.part_of(&s.first, row);
                self.resume(side, seq, s, part);
                part
            } else {
                // Not a message where one should begin: lost.
                self.lost(side, seq, s);
                NONE
            }
        } else if d.synced && before(seq, d.next) && !before(d.next, end) {
            // Inside the current message (or a retransmission of it).
            d.current
        } else if d.synced && before(seq, d.next) && s.start == Some(d.next.wrapping_sub(seq)) {
            // The current message ends inside this segment and the next begins there: the
            // segment completes the current one, and goes with it.
            let current = d.current;
            let part = self.part_of(&s.first, row);
            self.resume(side, seq, s, part);
            current
        } else {
            // Not synchronised, a gap, or a message boundary that is not where the segment
            // says: start over at the first header in the segment.
            match s.start {
                Some(0) => {
                    let part = self.part_of(&s.first, row);
                    self.resume(side, seq, s, part);
                    part
                }
                _ => {
                    self.lost(side, seq, s);
                    NONE
                }
            }
        };
        let Some(p) = self.parts.get_mut(usize::from(part)) else {
            return false;
        };
        p.packets[side] += 1;
        p.bytes[side] += wire_len;
        p.ip_bytes[side] += ip_len;
        true
    }

    /// The last message of a segment goes on past it: the segments after it carry that
    /// message's part.
    pub fn tail(&mut self, side: usize, h: &Header, row: impl FnMut(Label) -> Match) {
        let part = self.part_of(h, row);
        self.directions[side].current = part;
    }

    /// After the messages of `s` (the first of which goes to `part`).
    fn resume(&mut self, side: usize, seq: u32, s: &Segment, part: u8) {
        self.directions[side] = Direction {
            synced: true,
            next: seq.wrapping_add(s.end),
            // When one message goes on past the segment, segments after it continue it;
            // a `tail` record says so when it is not the first.
            current: part,
        };
    }

    /// No message begins where the segment starts: synchronise on the first header in it,
    /// whose part is unknown to the segments that continue it.
    fn lost(&mut self, side: usize, seq: u32, s: &Segment) {
        self.directions[side] = match s.start {
            Some(_) => Direction {
                synced: true,
                next: seq.wrapping_add(s.end),
                current: NONE,
            },
            None => Direction::default(),
        };
    }

    /// A bind or alter context written to pipe `file` offers presentation context `id` for
    /// `interface`: the PDUs on it go to the part of the pipe and that interface.
    pub fn pipe_context(&mut self, file: u64, id: u16, interface: u32) {
        let Some(f) = self.files.iter_mut().find(|f| f.id == file) else {
            return;
        };
        let n = usize::from(f.contexts_len);
        if let Some(c) = f.contexts[..n].iter_mut().find(|c| c.0 == id) {
            c.1 = interface;
        } else if n < MAX_PIPE_CONTEXTS {
            f.contexts[n] = (id, interface);
            f.contexts_len += 1;
        } else {
            f.contexts.copy_within(1.., 0);
            f.contexts[MAX_PIPE_CONTEXTS - 1] = (id, interface);
            self.forgotten += 1;
        }
    }

    /// The part of a message on a pipe that goes to `part` and carries a PDU on
    /// presentation context `context`: the part of the pipe and the context's interface,
    /// when the pipe's file (`file`, or for a response the pipe's file that offered the
    /// context) did offer it; else `part`.
    fn pipe_pdu_part(
        &mut self,
        part: u8,
        file: Option<u64>,
        context: Option<u16>,
        row: impl FnOnce(Label) -> Match,
    ) -> u8 {
        let (Some(context), Some(Label::Pipe { pipe, .. })) =
            (context, self.parts.get(usize::from(part)).map(|p| p.label))
        else {
            return part;
        };
        let parts = &self.parts;
        let of_pipe = |f: &&File| {
            parts
                .get(usize::from(f.part))
                .is_some_and(|p| matches!(p.label, Label::Pipe { pipe: q, .. } if q == pipe))
        };
        let interface = match file {
            Some(id) => self
                .files
                .iter()
                .find(|f| f.id == id)
                .and_then(|f| f.context(context)),
            None => self
                .files
                .iter()
                .filter(of_pipe)
                .find_map(|f| f.context(context)),
        };
        match interface {
            Some(interface) => self.part(
                Label::Pipe {
                    pipe,
                    interface: Some(interface),
                },
                row,
            ),
            None => part,
        }
    }

    /// A DCE/RPC connection's presentation context `id` is bound to `interface` on the
    /// server's `port` (a bind or alter context offered it: offers the server rejects carry
    /// no PDUs afterwards, so taking them as bound costs nothing).
    pub fn context(
        &mut self,
        id: u16,
        interface: u32,
        port: u16,
        row: impl FnOnce(Label) -> Match,
    ) {
        let id = u32::from(id);
        let first = *self.first_interface.get_or_insert(interface);
        let part = if interface == first {
            NONE
        } else {
            self.part(Label::Interface { interface, port }, row)
        };
        if let Some(c) = self.contexts.iter_mut().find(|c| c.0 == id) {
            c.1 = part;
        } else {
            bounded(
                &mut self.contexts,
                MAX_CONTEXTS,
                (id, part),
                &mut self.forgotten,
            );
        }
    }

    /// The part of a DCE/RPC PDU: a request, response or fault goes with its context; a
    /// bind or alter context with the first context it offers, and its acknowledgement
    /// with it; anything else (auth3, shutdown, an unknown context) stays in the flow's
    /// own row.
    fn pdu_part(&mut self, h: &Header) -> u8 {
        let of = |contexts: &[(u32, u8)], id: u32| {
            contexts.iter().find(|c| c.0 == id).map_or(NONE, |c| c.1)
        };
        match h.command {
            // Bind and alter context.
            11 | 14 => {
                let part = of(&self.contexts, h.tree);
                self.binding = Some(part);
                part
            }
            // Their acknowledgements (and a bind's refusal).
            12 | 13 | 15 => self.binding.unwrap_or(NONE),
            // Request, response, fault.
            0 | 2 | 3 => of(&self.contexts, h.tree),
            _ => NONE,
        }
    }

    /// The part a message goes to.
    fn part_of(&mut self, h: &Header, mut row: impl FnMut(Label) -> Match) -> u8 {
        match h.dialect {
            Dialect::Sealed => return self.part(Label::Sealed, row),
            Dialect::Other => return NONE,
            Dialect::Rpc => return self.pdu_part(h),
            Dialect::Smb2 | Dialect::Smb1 => {}
        }
        if h.is_session() {
            return self.part(Label::Session, row);
        }
        if h.response {
            if let Some(i) = self.pending.iter().position(|p| p.0 == h.message) {
                let part = self.pending[i].1;
                if !h.interim {
                    self.pending.remove(i);
                }
                return self.pipe_pdu_part(part, None, h.context, row);
            }
            return self.tree_part(h.tree, &mut row);
        }
        let file = (h.file != 0).then(|| self.use_file(h.file)).flatten();
        if let Some(part) = file {
            let part = self.pipe_pdu_part(part, Some(h.file), h.context, &mut row);
            self.expect(h.message, part);
            return part;
        }
        // A create request on a pipe registered its part before this.
        if let Some(p) = self.pending.iter().find(|p| p.0 == h.message) {
            return p.1;
        }
        let part = self.tree_part(h.tree, &mut row);
        if part != NONE {
            self.expect(h.message, part);
        }
        part
    }

    /// The part of a disk or print share's tree; none for a pipe tree or an unknown one.
    fn tree_part(&mut self, tree: u32, row: impl FnOnce(Label) -> Match) -> u8 {
        match self.use_tree(tree) {
            Some(share @ (ShareKind::Disk | ShareKind::Print)) => {
                self.part(Label::Share(share), row)
            }
            _ => NONE,
        }
    }

    /// The response to `message` goes to `part`.
    fn expect(&mut self, message: u64, part: u8) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.0 == message) {
            p.1 = part;
        } else {
            bounded(
                &mut self.pending,
                MAX_PENDING,
                (message, part),
                &mut self.forgotten,
            );
        }
    }

    /// The part labelled `label` (for a pipe, an unbound one), made if there is none.
    fn part(&mut self, label: Label, row: impl FnOnce(Label) -> Match) -> u8 {
        if let Some(i) = self.parts.iter().position(|p| p.label == label) {
            return u8::try_from(i).unwrap_or(NONE);
        }
        if self.parts.len() >= MAX_PARTS {
            self.forgotten += 1;
            return NONE;
        }
        self.parts.push(Part::new(label, row(label)));
        u8::try_from(self.parts.len() - 1).unwrap_or(NONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{MatchKind, SetId, Transport};
    use crate::inspect::smb::{build::*, segment, Event};

    fn row(label: Label) -> Match {
        Match {
            transport: Transport::Tcp,
            ports: Some((445, 445)),
            kind: MatchKind::SmbShare,
            set: SetId(match label {
                Label::Share(ShareKind::Print) => 3,
                _ => 1,
            }),
        }
    }

    /// Feeds one segment of `side` at `seq` (events first, as the worker does).
    fn feed(conn: &mut Conn, side: usize, seq: u32, payload: &[u8]) -> bool {
        let len = u32::try_from(payload.len()).unwrap();
        let (s, tail) = segment(payload, len, |e| match e {
            Event::Tree { tree, share } => conn.connected(tree, share),
            Event::Opened { message, file } => conn.opened(message, file),
            _ => {}
        });
        let placed = conn.segment(side, seq, len, (100, 86), &s, row);
        if let Some(t) = tail {
            conn.tail(side, &t, row);
        }
        placed
    }

    /// Feeds one DCE/RPC segment: its contexts bound to interface `uuid[15]`, then it.
    fn feed_rpc(conn: &mut Conn, side: usize, seq: u32, payload: &[u8]) -> bool {
        let len = u32::try_from(payload.len()).unwrap();
        let (s, tail) = crate::inspect::rpc::co_segment(payload, len, |id, uuid| {
            conn.context(id, u32::from(uuid[15]), 49670, row);
        });
        let placed = conn.segment(side, seq, len, (100, 86), &s, row);
        if let Some(t) = tail {
            conn.tail(side, &t, row);
        }
        placed
    }

    #[test]
    fn dce_rpc_pdus_go_to_the_part_of_their_context() {
        use crate::inspect::rpc::{bind_contexts, co_pdu};
        let (first, second) = ([1; 16], [2; 16]);
        let mut c = Conn::default();
        let (mut client, mut server) = (1000u32, 5000u32);
        let mut send = |c: &mut Conn, side: usize, pdu: &[u8]| {
            let seq = if side == 0 { &mut client } else { &mut server };
            let placed = feed_rpc(c, side, *seq, pdu);
            *seq = seq.wrapping_add(pdu.len() as u32);
            placed
        };
        // The bind of the first interface and its ack stay in the flow's own row.
        assert!(!send(&mut c, 0, &bind_contexts(&[first], 0, 1, false)));
        assert!(!send(&mut c, 1, &co_pdu(12, 0, 1, 40)));
        // An alter context adds context 1, for the second: it, its ack, and the calls on
        // context 1 go to the second interface's part; calls on context 0 stay.
        assert!(send(&mut c, 0, &bind_contexts(&[second], 1, 2, true)));
        assert!(send(&mut c, 1, &co_pdu(15, 0, 2, 40)));
        assert!(send(&mut c, 0, &co_pdu(0, 1, 3, 200)));
        assert!(!send(&mut c, 0, &co_pdu(0, 0, 4, 200)));
        // A response on context 1 longer than a segment: its three segments go with it.
        let response = co_pdu(2, 1, 3, 4000);
        for chunk in response.chunks(1460) {
            assert!(send(&mut c, 1, chunk));
        }
        assert_eq!(c.parts.len(), 1);
        assert_eq!(
            c.parts[0].label,
            Label::Interface {
                interface: 2,
                port: 49670
            }
        );
        assert_eq!(c.parts[0].packets, [2, 4]);
        assert_eq!(c.forgotten, 0);
    }

    #[test]
    fn a_long_message_is_followed_across_sequence_wrap() {
        let mut c = Conn::default();
        assert!(feed(
            &mut c,
            1,
            u32::MAX - 1100,
            &session(&tree_connect_response(1, 2, 1))
        ));
        let mut m = read_response_header(7, 2);
        m.resize(m.len() + 3000, 0);
        let m = session(&m);
        let start = u32::MAX - 1000;
        assert!(feed(&mut c, 1, start, &m[..1400]));
        assert!(feed(&mut c, 1, start.wrapping_add(1400), &m[1400..2800]));
        assert!(feed(&mut c, 1, start.wrapping_add(2800), &m[2800..]));
        assert_eq!(c.parts[0].packets, [0, 4]);
        assert_eq!(c.parts[0].bytes, [0, 400]);
        assert_eq!(c.parts[0].ip_bytes, [0, 344]);
    }

    #[test]
    fn state_is_bounded_and_what_is_pushed_out_is_counted() {
        let mut c = Conn::default();
        let mut seq = 0;
        for tree in 0..100 {
            let m = session(&tree_connect_response(tree.into(), tree, 1));
            feed(&mut c, 1, seq, &m);
            seq += m.len() as u32;
        }
        assert_eq!(c.trees.len(), MAX_TREES);
        // Each response went to the disk part; 36 trees were pushed out.
        assert_eq!(c.parts.len(), 1);
        assert_eq!(c.forgotten, 36);
        assert_eq!(c.tree(99), Some(ShareKind::Disk));
        assert_eq!(c.tree(0), None);
        for message in 0..200u64 {
            c.expect(message, 0);
        }
        assert_eq!(c.pending.len(), MAX_PENDING);
        for pipe in 0..100 {
            c.open(1000 + u64::from(pipe), 1, pipe, row);
        }
        assert_eq!(c.parts.len(), MAX_PARTS);
    }
}
