//! Announcements of connections to come, read from the payload of control flows: the
//! DCE/RPC endpoint mapper's answers (TCP 135), FTP's PASV/EPSV replies and PORT/EPRT
//! commands (TCP 21), and TFTP requests (UDP 69).
//!
//! Each parser reads the first bytes of one segment, bounds-checked, without allocating
//! or reassembling: an announcement split across segments is missed (and the flow it
//! announced keeps its port-table label). Only outer packets are read; announcements inside
//! tunnels are not followed.

mod epm;
mod ftp;

pub use epm::{map_response, map_response_pdu, tower, Endpoint};
pub use ftp::{client_command, server_reply, tftp_request};

use crate::decode::{Decoded, Fragment};

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PORT_EPM: u16 = 135;
const PORT_FTP: u16 = 21;
const PORT_TFTP: u16 = 69;

/// What the announced flow will be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    FtpData,
    Tftp,
    /// A DCE/RPC interface, by UUID.
    Rpc([u8; 16]),
}

/// A flow to come: `other` will connect to `listener` on `port` over `proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub listener: [u8; 16],
    pub port: u16,
    pub other: [u8; 16],
    pub proto: u8,
    pub what: What,
}

/// Whether a packet is on a control port portscope reads: the cheap test every packet takes.
#[inline(always)]
pub fn may_announce(d: &Decoded) -> bool {
    d.has_ports
        && (matches!(d.src_port, PORT_EPM | PORT_FTP) || matches!(d.dst_port, PORT_FTP | PORT_TFTP))
        && matches!(d.proto, PROTO_TCP | PROTO_UDP)
}

/// Calls `found` for each announcement in a packet's payload.
#[inline]
pub fn announcements(d: &Decoded, payload: &[u8], mut found: impl FnMut(Announcement)) {
    if !d.has_ports || payload.is_empty() || matches!(d.fragment, Fragment::Later(_)) {
        return;
    }
    if !matches!(d.src_port, PORT_EPM | PORT_FTP) && !matches!(d.dst_port, PORT_FTP | PORT_TFTP) {
        return;
    }
    match (d.proto, d.src_port, d.dst_port) {
        (PROTO_TCP, PORT_EPM, _) => map_response(payload, |e| {
            let listener = e.addr.map_or(d.src, mapped);
            found(Announcement {
                listener,
                port: e.port,
                other: d.dst,
                proto: PROTO_TCP,
                what: What::Rpc(e.uuid),
            });
        }),
        (PROTO_TCP, PORT_FTP, _) | (PROTO_TCP, _, PORT_FTP) => {
            // The server's replies, or the client's commands: either way the sender listens.
            let port = if d.src_port == PORT_FTP {
                server_reply(payload)
            } else {
                client_command(payload)
            };
            if let Some(port) = port {
                found(Announcement {
                    listener: d.src,
                    port,
                    other: d.dst,
                    proto: PROTO_TCP,
                    what: What::FtpData,
                });
            }
        }
        (PROTO_UDP, _, PORT_TFTP) if tftp_request(payload) => found(Announcement {
            listener: d.src,
            port: d.src_port,
            other: d.dst,
            proto: PROTO_UDP,
            what: What::Tftp,
        }),
        _ => {}
    }
}

/// An IPv4 address as portscope stores it (`::ffff:a.b.c.d`).
fn mapped(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[10] = 0xff;
    a[11] = 0xff;
    a[12..].copy_from_slice(&v4);
    a
}
