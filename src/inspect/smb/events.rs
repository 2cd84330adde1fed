//! The events of one SMB message: what it names for the messages after it (a tree's
//! share type, a file opened on a pipe, a bind written to one, what a close or logoff
//! ends), read from its bytes, bounds-checked, without allocating.

use super::*;
use crate::inspect::rpc::co_bind;

/// The events of one message's SMB bytes.
pub(super) fn events<'a>(dialect: Dialect, smb: &'a [u8], event: &mut impl FnMut(Event<'a>)) {
    match dialect {
        Dialect::Smb2 => {
            let mut at = 0;
            for _ in 0..MAX_CHAIN {
                let Some(command) = smb.get(at..) else {
                    return;
                };
                smb2_events(command, event);
                match le32(command, field::smb2::NEXT_COMMAND) {
                    Some(next) if next >= field::smb2::HEADER_LEN as u32 => at += next as usize,
                    _ => return,
                }
            }
        }
        Dialect::Smb1 => smb1_events(smb, event),
        Dialect::Sealed | Dialect::Other | Dialect::Rpc => {}
    }
}

/// A slice of `len` bytes at `offset` of `b`, if the message holds it whole; else what of
/// it was captured (`None` if nothing was).
fn captured(b: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    let rest = b.get(offset..)?;
    Some(&rest[..rest.len().min(len)])
}

fn smb2_events<'a>(smb: &'a [u8], event: &mut impl FnMut(Event<'a>)) {
    use field::smb2::*;
    use smb2_command::*;
    let Some(h) = smb2_header(smb) else {
        return;
    };
    let body = &smb[HEADER_LEN..];
    let ok = || le32(smb, STATUS) == Some(0);
    match (h.command, h.response) {
        (TREE_CONNECT, true) if ok() && h.tree != NO_TREE => {
            let share = match body.get(TREE_CONNECT_SHARE_TYPE) {
                Some(1) => ShareKind::Disk,
                Some(2) => ShareKind::Pipe,
                Some(3) => ShareKind::Print,
                _ => return,
            };
            event(Event::Tree {
                tree: h.tree,
                share,
            });
        }
        (CREATE, false) => {
            let (Some(offset), Some(len)) = (
                le16(body, CREATE_NAME_OFFSET),
                le16(body, CREATE_NAME_LENGTH),
            ) else {
                return;
            };
            if let Some(bytes) = captured(smb, usize::from(offset), usize::from(len)) {
                event(Event::Open {
                    message: h.message,
                    tree: h.tree,
                    name: Name { bytes, utf16: true },
                });
            }
        }
        (CREATE, true) if ok() => {
            if let Some(file) = file_id(body, CREATE_RESPONSE_FILE_ID) {
                event(Event::Opened {
                    message: h.message,
                    file,
                });
            }
        }
        (WRITE, false) => {
            let (Some(offset), Some(len)) =
                (le16(body, WRITE_DATA_OFFSET), le32(body, WRITE_LENGTH))
            else {
                return;
            };
            bind(smb, usize::from(offset), len as usize, h.file, event);
        }
        (QUERY_DIRECTORY | CHANGE_NOTIFY, false) if h.tree != NO_TREE => {
            event(Event::Directory { tree: h.tree });
        }
        (CLOSE, false) if h.file != 0 => event(Event::Close {
            message: h.message,
            file: h.file,
        }),
        (TREE_DISCONNECT, false) if h.tree != NO_TREE => event(Event::TreeDisconnect {
            message: h.message,
            tree: h.tree,
        }),
        (LOGOFF, false) => event(Event::Logoff),
        (IOCTL, false) if le32(body, IOCTL_CTL_CODE) == Some(FSCTL_PIPE_TRANSCEIVE) => {
            let (Some(offset), Some(len)) = (
                le32(body, IOCTL_INPUT_OFFSET),
                le32(body, IOCTL_INPUT_COUNT),
            ) else {
                return;
            };
            bind(smb, offset as usize, len as usize, h.file, event);
        }
        _ => {}
    }
}

/// A bind in the data a request writes to `file`.
fn bind<'a>(smb: &[u8], offset: usize, len: usize, file: u64, event: &mut impl FnMut(Event<'a>)) {
    if file == 0 {
        return;
    }
    let Some(pdu) = captured(smb, offset, len) else {
        return;
    };
    if let Some(uuid) = co_bind(pdu) {
        event(Event::Bind { file, uuid });
        crate::inspect::rpc::co_offers(pdu, |id, uuid| {
            event(Event::PipeContext { file, id, uuid });
        });
    }
}

/// The share type a TREE_CONNECT_ANDX response's service names: "A:" a disk, "LPT1:" a
/// printer, "IPC" named pipes.
fn smb1_share(service: &[u8]) -> Option<ShareKind> {
    if service.starts_with(b"A:") {
        Some(ShareKind::Disk)
    } else if service.starts_with(b"LPT") {
        Some(ShareKind::Print)
    } else if service.starts_with(b"IPC") {
        Some(ShareKind::Pipe)
    } else {
        None
    }
}

fn smb1_events<'a>(smb: &'a [u8], event: &mut impl FnMut(Event<'a>)) {
    use field::smb1::*;
    use smb1_command::*;
    let Some(h) = smb1_header(smb) else {
        return;
    };
    let ok = le32(smb, STATUS) == Some(0);
    let unicode = le16(smb, FLAGS2).is_some_and(|f| f & SMB1_FLAGS2_UNICODE != 0);
    // The first command's block starts at the word count; AndX commands chain to the next
    // block by offset from the header's start.
    let mut command = h.command as u8;
    let mut at = WORD_COUNT;
    for _ in 0..MAX_CHAIN {
        let Some(&words) = smb.get(at) else {
            return;
        };
        let w = at + 1;
        let bytes_at = w + 2 * usize::from(words) + 2;
        match (command, h.response) {
            (TREE_CONNECT_ANDX, true) if ok => {
                let Some(share) = smb1_share(smb.get(bytes_at..).unwrap_or(&[])) else {
                    return;
                };
                event(Event::Tree {
                    tree: h.tree,
                    share,
                });
            }
            (NT_CREATE_ANDX, false) if words >= 24 => {
                let Some(len) = le16(smb, w + 5) else {
                    return;
                };
                // Unicode names are aligned to two bytes from the header's start.
                let name_at = bytes_at + usize::from(unicode && bytes_at % 2 == 1);
                if let Some(bytes) = captured(smb, name_at, usize::from(len)) {
                    event(Event::Open {
                        message: h.message,
                        tree: h.tree,
                        name: Name {
                            bytes,
                            utf16: unicode,
                        },
                    });
                }
            }
            (NT_CREATE_ANDX, true) if ok && words >= 3 => {
                if let Some(fid) = le16(smb, w + 5) {
                    event(Event::Opened {
                        message: h.message,
                        file: u64::from(fid) + 1,
                    });
                }
            }
            (WRITE_ANDX, false) if words >= 12 && h.file != 0 => {
                if let (Some(len), Some(offset)) = (le16(smb, w + 20), le16(smb, w + 22)) {
                    bind(smb, usize::from(offset), usize::from(len), h.file, event);
                }
            }
            (CLOSE, false) if h.file != 0 => event(Event::Close {
                message: h.message,
                file: h.file,
            }),
            (TREE_DISCONNECT, false) => event(Event::TreeDisconnect {
                message: h.message,
                tree: h.tree,
            }),
            (LOGOFF_ANDX, false) => event(Event::Logoff),
            (TRANSACTION, false) if h.file != 0 && words >= 16 => {
                if let (Some(len), Some(offset)) = (le16(smb, w + 22), le16(smb, w + 24)) {
                    bind(smb, usize::from(offset), usize::from(len), h.file, event);
                }
            }
            _ => {}
        }
        // AndX commands begin with the next command and the offset of its block.
        let andx = matches!(
            command,
            TREE_CONNECT_ANDX | NT_CREATE_ANDX | READ_ANDX | WRITE_ANDX
        ) || matches!(command, SESSION_SETUP_ANDX | LOGOFF_ANDX);
        if !andx || words < 2 {
            return;
        }
        let (Some(&next), Some(offset)) = (smb.get(w), le16(smb, w + 2)) else {
            return;
        };
        let offset = usize::from(offset);
        if next == NONE || offset <= at {
            return;
        }
        command = next;
        at = offset;
    }
}
