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

use crate::decode::{Decoded, Fragment, IpProto, Upper};

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
    pub proto: IpProto,
    pub what: What,
}

/// Whether a packet is on a control port portscope reads: the cheap test every packet takes.
#[inline(always)]
pub fn may_announce(d: &Decoded) -> bool {
    match d.upper {
        Upper::Ports { src, dst, .. } => {
            matches!(src, PORT_EPM | PORT_FTP) || matches!(dst, PORT_FTP | PORT_TFTP)
        }
        _ => false,
    }
}

/// Calls `found` for each announcement in a packet's payload.
#[inline]
pub fn announcements(d: &Decoded, payload: &[u8], mut found: impl FnMut(Announcement)) {
    let Upper::Ports { src, dst, .. } = d.upper else {
        return;
    };
    if payload.is_empty() || matches!(d.ip.fragment, Fragment::Later(_)) {
        return;
    }
    let (from, to) = (d.ip.src.to_be_bytes(), d.ip.dst.to_be_bytes());
    match (d.ip.proto, src, dst) {
        (IpProto::TCP, PORT_EPM, _) => map_response(payload, |e| {
            found(Announcement {
                listener: e.addr.map_or(from, crate::decode::mapped),
                port: e.port,
                other: to,
                proto: IpProto::TCP,
                what: What::Rpc(e.uuid),
            });
        }),
        (IpProto::TCP, PORT_FTP, _) | (IpProto::TCP, _, PORT_FTP) => {
            // The server's replies, or the client's commands: either way the sender listens.
            let port = if src == PORT_FTP {
                server_reply(payload)
            } else {
                client_command(payload)
            };
            if let Some(port) = port {
                found(Announcement {
                    listener: from,
                    port,
                    other: to,
                    proto: IpProto::TCP,
                    what: What::FtpData,
                });
            }
        }
        (IpProto::UDP, _, PORT_TFTP) if tftp_request(payload) => found(Announcement {
            listener: from,
            port: src,
            other: to,
            proto: IpProto::UDP,
            what: What::Tftp,
        }),
        _ => {}
    }
}
