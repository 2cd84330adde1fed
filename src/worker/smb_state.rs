//! SMB and DCE/RPC connection state: routed SMB records applied to their connection.

use super::records::{
    Piece, Routed, RoutedPacket, SmbDeferred, SmbOpen, SmbSegment, SmbWhat, NAME_LEN, NAME_MORE,
};
use super::Worker;
use crate::catalog::{Match, PortTable, Transport};
use crate::flow::smb::{Conn, Label};
use crate::inspect::smb;

impl Worker<'_> {
    /// The SMB connection of packet `p`, the last one applied, if it is a whole one (SMB
    /// comes from whole segments); made if it has none and `make`.
    fn smb_conn(&mut self, p: &RoutedPacket, make: bool) -> Option<&mut Conn> {
        if p.piece != Piece::Whole {
            return None;
        }
        let flow = self.last_flow?;
        let local = self.local(p.shard());
        self.shards[local].smb_at(flow, make)
    }

    /// What an SMB message (or a DCE/RPC bind outside SMB) of packet `p` names.
    pub(super) fn apply_smb_event(&mut self, what: &SmbWhat, p: &RoutedPacket) {
        if let SmbWhat::Undecrypted { session } = *what {
            *self.tally.smb_undecrypted.entry(session).or_default() += 1;
            return;
        }
        let (port, _) = smb_ends(p);
        let table = self.table;
        let local = self.local(p.shard());
        let interface = match what {
            SmbWhat::Bind { uuid, .. }
            | SmbWhat::Context { uuid, .. }
            | SmbWhat::PipeContext { uuid, .. } => {
                let count = matches!(what, SmbWhat::Bind { .. });
                match self.name_interface(local, uuid, count) {
                    Some(id) => Some(id),
                    None => return,
                }
            }
            _ => None,
        };
        let Some(conn) = self.smb_conn(p, true) else {
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
            SmbWhat::PipeContext { file, id, .. } => {
                if let Some(interface) = interface {
                    conn.pipe_context(file, id, interface);
                }
            }
            SmbWhat::Context { id, port, .. } => {
                if let Some(interface) = interface {
                    conn.context(id, interface, port, |l| smb_row(table, port, l));
                }
            }
            SmbWhat::Undecrypted { .. } => {}
        }
    }

    /// A create request: on a pipe share (or on a tree whose connect was not seen, for a
    /// name the pipe table knows), the pipe it opens.
    pub(super) fn apply_smb_open(&mut self, o: &SmbOpen, more: &[Routed], p: &RoutedPacket) {
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
        let Some(tree) = self.smb_conn(p, true).map(|conn| conn.tree(o.tree)) else {
            return;
        };
        let pipe = match tree {
            Some(smb::ShareKind::Pipe) if !name.is_empty() => self.name_pipe(local, name),
            // A tree whose connect the capture missed: only a name the pipe table knows.
            None => table.known_pipe(name),
            Some(_) => None,
        };
        if let (Some(pipe), Some(conn)) = (pipe, self.smb_conn(p, true)) {
            conn.open(o.message, o.tree, pipe, |l| smb_row(table, port, l));
        }
    }

    /// The messages of packet `p`'s segment, for the part of its connection they go to.
    pub(super) fn apply_smb_segment(&mut self, s: &SmbSegment, p: &RoutedPacket) {
        // Messages a segment held past those read for names: what they named is forgotten.
        self.tally.smb_forgotten += u64::from(s.segment.unread);
        let (port, side) = smb_ends(p);
        let table = self.table;
        // A connection gets its state at its first SMB message: a segment in which none
        // begins only counts for a connection that has one. A DCE/RPC connection gets it
        // at its first bind's contexts.
        let make = s.segment.start.is_some() && s.segment.first.dialect != smb::Dialect::Rpc;
        let Some(conn) = self.smb_conn(p, make) else {
            return;
        };
        let lens = (u64::from(p.wire_len), u64::from(p.ip_len()));
        conn.segment(side, s.seq, s.len, lens, &s.segment, |l| {
            smb_row(table, port, l)
        });
    }

    /// A segment of packet `p` that its router deferred to this owner, its payload in
    /// `chunks`: read here as the router reads others ([`super::route::route_smb`]), with
    /// the keys derived so far for its connection's sessions, its records applied to `p`;
    /// then its messages carry the connection's negotiation on.
    pub(super) fn apply_smb_deferred(
        &mut self,
        s: &SmbDeferred,
        chunks: &[Routed],
        p: &RoutedPacket,
    ) {
        let Some(keys) = self.keys else {
            return;
        };
        let mut payload = std::mem::take(&mut self.deferred);
        payload.clear();
        for r in chunks {
            if let Routed::SmbBytes(b) = r {
                payload.extend_from_slice(b);
            }
        }
        payload.truncate(s.captured as usize);
        let mut negotiation = self
            .smb_conn(p, false)
            .and_then(|conn| conn.negotiation.take())
            .unwrap_or_default();
        let mut records = std::mem::take(&mut self.deferred_records);
        records.clear();
        let crypt = smb::Crypt {
            keys,
            derived: &negotiation.derived,
            to_server: s.to_server,
            plain: &mut self.plain,
        };
        super::route::route_smb(s.seq, s.len, &payload, Some(crypt), &mut records);
        self.apply_after(&records, Some(p));
        if let Some(conn) = self.smb_conn(p, false) {
            negotiation.segment(s.to_server, s.seq, &payload, s.len, keys);
            conn.negotiation = Some(negotiation);
        }
        self.deferred = payload;
        self.deferred_records = records;
    }

    /// The last message of packet `p`'s segment goes on past it.
    pub(super) fn apply_smb_tail(&mut self, header: &smb::Header, p: &RoutedPacket) {
        let (port, side) = smb_ends(p);
        let table = self.table;
        let make = header.dialect != smb::Dialect::Rpc;
        if let Some(conn) = self.smb_conn(p, make) {
            conn.tail(side, header, |l| smb_row(table, port, l));
        }
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
fn smb_row(table: &PortTable, port: u16, label: Label) -> Match {
    match label {
        Label::Share(share) => table.smb_share_row(port, share == smb::ShareKind::Print),
        Label::Pipe { pipe, interface } => table.smb_pipe_row(port, pipe, interface),
        Label::Sealed => table.smb_encrypted_row(port),
        Label::Session => table.smb_session_row(port),
        Label::Interface { interface, port } => table.rpc_bind_row(Transport::Tcp, port, interface),
    }
}
