//! What one TCP segment of an SMB connection says, read without state: the SMB messages
//! that begin in it (behind the 4-byte session framing of TCP 445 and of the NetBIOS
//! session service on TCP 139), where the last of them ends, and the events that name what
//! a connection's later messages address: a tree connected to a share of some type, a file
//! created by name, the file id the server gave it, and a DCE/RPC bind written to a pipe.
//!
//! SMB2/SMB3 ([MS-SMB2] 2.2), SMB1 ([MS-CIFS] 2.2) and the SMB3 transform and compression
//! headers (whose messages cannot be read). Every length is checked against the segment;
//! what does not look like SMB yields nothing. The connection's state (which tree is which
//! share, which file id is which pipe, where the next message starts) is the flow table's:
//! see `flow::smb`.

use crate::decode::{array, Decoded, IpProto, Upper};

/// SMB over TCP ([MS-SMB2] 2.1) and the NetBIOS session service (RFC 1002).
pub const SMB_PORT: u16 = 445;
pub const NETBIOS_SESSION_PORT: u16 = 139;

/// The NetBIOS session message type that carries SMB; the others (session request, positive
/// and negative response, retarget, keep-alive) carry none.
const SESSION_MESSAGE: u8 = 0x00;
/// At most this many messages of one segment are read for names: a segment usually holds
/// a few, an offloaded one a few hundred small ones at most. The walk goes on past them
/// (so the next message is found where it starts), and the messages past the bound that
/// could have named something are counted in [`Segment::unread`].
pub const MAX_MESSAGES: usize = 64;
/// At most this many SMB2 commands of one compound message, or SMB1 AndX commands of one
/// message, are read for events.
const MAX_CHAIN: usize = 8;

/// Byte offsets of the fields read.
mod field {
    pub mod smb2 {
        pub const HEADER_LEN: usize = 64;
        pub const STATUS: usize = 8;
        pub const COMMAND: usize = 12;
        pub const FLAGS: usize = 16;
        pub const NEXT_COMMAND: usize = 20;
        pub const MESSAGE_ID: usize = 24;
        pub const TREE_ID: usize = 36;
        /// In a body: where the file id stands, per request command.
        pub const TREE_CONNECT_SHARE_TYPE: usize = 2;
        pub const CREATE_NAME_OFFSET: usize = 44;
        pub const CREATE_NAME_LENGTH: usize = 46;
        pub const CREATE_RESPONSE_FILE_ID: usize = 64;
        pub const WRITE_DATA_OFFSET: usize = 2;
        pub const WRITE_LENGTH: usize = 4;
        pub const IOCTL_CTL_CODE: usize = 4;
        pub const IOCTL_INPUT_OFFSET: usize = 24;
        pub const IOCTL_INPUT_COUNT: usize = 28;
        pub const IOCTL_RESPONSE_OUTPUT_OFFSET: usize = 32;
        pub const READ_RESPONSE_DATA_OFFSET: usize = 2;
    }
    pub mod smb1 {
        pub const HEADER_LEN: usize = 32;
        pub const COMMAND: usize = 4;
        pub const STATUS: usize = 5;
        pub const FLAGS: usize = 9;
        pub const FLAGS2: usize = 10;
        pub const TID: usize = 24;
        pub const PID: usize = 26;
        pub const MID: usize = 30;
        pub const WORD_COUNT: usize = 32;
        pub const WORDS: usize = 33;
    }
}

mod smb2_command {
    pub const NEGOTIATE: u16 = 0x00;
    pub const SESSION_SETUP: u16 = 0x01;
    pub const LOGOFF: u16 = 0x02;
    pub const TREE_CONNECT: u16 = 0x03;
    pub const TREE_DISCONNECT: u16 = 0x04;
    pub const CREATE: u16 = 0x05;
    pub const CLOSE: u16 = 0x06;
    pub const FLUSH: u16 = 0x07;
    pub const READ: u16 = 0x08;
    pub const WRITE: u16 = 0x09;
    pub const LOCK: u16 = 0x0a;
    pub const IOCTL: u16 = 0x0b;
    pub const ECHO: u16 = 0x0d;
    pub const QUERY_DIRECTORY: u16 = 0x0e;
    pub const CHANGE_NOTIFY: u16 = 0x0f;
    pub const QUERY_INFO: u16 = 0x10;
    pub const SET_INFO: u16 = 0x11;
    pub const OPLOCK_BREAK: u16 = 0x12;
}

mod smb1_command {
    pub const CLOSE: u8 = 0x04;
    pub const TRANSACTION: u8 = 0x25;
    pub const READ_ANDX: u8 = 0x2e;
    pub const ECHO: u8 = 0x2b;
    pub const WRITE_ANDX: u8 = 0x2f;
    pub const TREE_DISCONNECT: u8 = 0x71;
    pub const NEGOTIATE: u8 = 0x72;
    pub const SESSION_SETUP_ANDX: u8 = 0x73;
    pub const LOGOFF_ANDX: u8 = 0x74;
    pub const TREE_CONNECT_ANDX: u8 = 0x75;
    pub const NT_CREATE_ANDX: u8 = 0xa2;
    /// No further command in an AndX chain.
    pub const NONE: u8 = 0xff;
}

const SMB2_FLAG_RESPONSE: u32 = 0x1;
const SMB2_FLAG_ASYNC: u32 = 0x2;
const SMB1_FLAG_REPLY: u8 = 0x80;
const SMB1_FLAGS2_UNICODE: u16 = 0x8000;
/// STATUS_PENDING: an interim response; the final one follows.
const STATUS_PENDING: u32 = 0x0000_0103;
/// FSCTL_PIPE_TRANSCEIVE ([MS-FSCC] 2.3): a write and a read on a pipe in one request.
const FSCTL_PIPE_TRANSCEIVE: u32 = 0x0011_c017;
/// TRANSACTION's TransactNmPipe subcommand ([MS-CIFS] 2.2.5.5).
const TRANS_TRANSACT_NMPIPE: u16 = 0x26;
/// The "no tree" value of [`Header::tree`] (an SMB2 async header carries none).
pub const NO_TREE: u32 = u32::MAX;

/// What framing a message has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Smb2,
    Smb1,
    /// An SMB3 transform (encrypted) or compression header: its message cannot be read.
    Sealed,
    /// A NetBIOS session packet that carries no SMB (session request, keep-alive...), or a
    /// session message whose bytes are not SMB.
    Other,
    /// Not SMB: a connection-oriented DCE/RPC PDU on its own TCP connection
    /// ([`crate::inspect::rpc::co_segment`]). `command` is its type, `tree` its
    /// presentation context ([`crate::inspect::rpc::NO_CONTEXT`] for none), `message` its
    /// call id.
    Rpc,
}

/// The fields of a message that say what it addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub dialect: Dialect,
    pub response: bool,
    /// An interim response (STATUS_PENDING): the request's final response is still to come.
    pub interim: bool,
    /// The SMB2 command, or the SMB1 command byte.
    pub command: u16,
    /// SMB2's TreeId, SMB1's TID; [`NO_TREE`] for SMB2 async messages.
    pub tree: u32,
    /// What pairs a response with its request: SMB2's MessageId, SMB1's PID and MID.
    pub message: u64,
    /// The file id a request names (0 when it names none); SMB2's two halves folded
    /// into one word.
    pub file: u64,
    /// The presentation context of the DCE/RPC PDU the message writes to a pipe or reads
    /// from one (SMB2 WRITE and IOCTL requests, READ and IOCTL responses), if it begins
    /// with one.
    pub context: Option<u16>,
}

impl Header {
    /// Whether the message belongs to the SMB session itself rather than to a tree: a
    /// NEGOTIATE, SESSION_SETUP, LOGOFF or ECHO (SMB2 or SMB1) or its response. The SMB
    /// server answers these itself (on Windows, the Server service).
    pub fn is_session(&self) -> bool {
        match self.dialect {
            Dialect::Smb2 => {
                use smb2_command::*;
                matches!(self.command, NEGOTIATE | SESSION_SETUP | LOGOFF | ECHO)
            }
            Dialect::Smb1 => {
                use smb1_command::*;
                u8::try_from(self.command)
                    .is_ok_and(|c| matches!(c, NEGOTIATE | SESSION_SETUP_ANDX | LOGOFF_ANDX | ECHO))
            }
            Dialect::Sealed | Dialect::Other | Dialect::Rpc => false,
        }
    }

    const OTHER: Header = Header {
        dialect: Dialect::Other,
        response: false,
        interim: false,
        command: 0,
        tree: NO_TREE,
        message: 0,
        file: 0,
        context: None,
    };
}

/// What a share's type is, from a tree connect response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareKind {
    Disk,
    Pipe,
    Print,
}

/// A file name as a create request sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Name<'a> {
    pub bytes: &'a [u8],
    /// UTF-16LE (SMB2 always; SMB1 when its header says Unicode), else 8-bit characters.
    pub utf16: bool,
}

/// What a message names for the messages after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A tree connect response: `tree` is a share of this kind.
    Tree { tree: u32, share: ShareKind },
    /// A create request for `name` on `tree`.
    Open {
        message: u64,
        tree: u32,
        name: Name<'a>,
    },
    /// A successful create response: the file the request `message` opened is `file`.
    Opened { message: u64, file: u64 },
    /// A DCE/RPC bind or alter context written to `file` (a pipe), naming `uuid`.
    Bind { file: u64, uuid: [u8; 16] },
    /// Each presentation context (`id`, for `uuid`) a bind or alter context written to
    /// `file` offers, after its [`Event::Bind`].
    PipeContext { file: u64, id: u16, uuid: [u8; 16] },
    /// A directory listing or change notification on `tree`: only disk shares have
    /// directories, so a tree whose connect the capture missed is a disk share.
    Directory { tree: u32 },
    /// A close request (`message`) of `file`: the file ends with it.
    Close { message: u64, file: u64 },
    /// A tree disconnect request (`message`): `tree` and the files opened on it end.
    TreeDisconnect { message: u64, tree: u32 },
    /// A logoff request: the session's trees and files end.
    Logoff,
    /// An encrypted message of a session the keys name (`--smb-keys`) that did not
    /// decrypt with them: it names nothing.
    Undecrypted { session: u64 },
}

/// What decrypting transform messages needs: the keys (the file's, and those derived for
/// the connection's SMB 3.1.1 sessions), whether the segment goes to the server, and room
/// for one message's plaintext ([`crypt::MAX_PLAIN`] bytes).
pub struct Crypt<'k> {
    pub keys: &'k crypt::Keys,
    pub derived: &'k [crypt::Session],
    pub to_server: bool,
    pub plain: &'k mut [u8],
}

/// What a segment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where the first message the walk read begins: 0 when the segment starts with one;
    /// else the first place that looks like the start of an SMB message (after a gap in
    /// the stream, or the end of a message the capture did not show); `None` if none does.
    pub start: Option<u32>,
    /// The first message read.
    pub first: Header,
    /// Where the walk ended: the offset, from the segment's start, at which the message
    /// after the last one read begins (beyond the segment when that message goes on).
    pub end: u32,
    /// Messages past the first [`MAX_MESSAGES`] that could have named a tree or a pipe,
    /// and were not read for it.
    pub unread: u32,
}

/// Whether a packet may carry SMB: TCP to or from port 445 or 139, with payload.
#[inline(always)]
pub fn may_carry(d: &Decoded, payload: &[u8]) -> bool {
    if payload.is_empty() || d.ip.proto != IpProto::TCP {
        return false;
    }
    match d.upper {
        Upper::Ports { src, dst, .. } => {
            matches!(src, SMB_PORT | NETBIOS_SESSION_PORT)
                || matches!(dst, SMB_PORT | NETBIOS_SESSION_PORT)
        }
        _ => false,
    }
}

/// Reads the messages that begin in `payload` (a TCP segment of an SMB connection, as far
/// as it was captured; `len` is its length on the wire), handing each event to `event`.
/// Returns the segment, and its tail: the last message read, if it is not the first and
/// goes on past the segment (what the segments after this one carry).
pub fn segment(
    payload: &[u8],
    len: u32,
    event: impl FnMut(Event<'_>),
) -> (Segment, Option<Header>) {
    segment_decrypting(payload, len, None, event)
}

/// [`segment`], decrypting with `crypt` the encrypted messages whole in the segment whose
/// session it has keys for: such a message is read as the message inside it (its header
/// for the part it goes to, its events), exactly as a message sent in the clear.
pub fn segment_decrypting(
    payload: &[u8],
    len: u32,
    mut crypt: Option<Crypt<'_>>,
    mut event: impl FnMut(Event<'_>),
) -> (Segment, Option<Header>) {
    // The message at offset 0 is read once, here and in the walk below.
    let mut at_zero = message_at(payload, 0);
    let start = if at_zero.is_some() {
        Some(0)
    } else {
        find_message(payload)
    };
    let Some(start) = start else {
        return (
            Segment {
                start: None,
                first: Header::OTHER,
                end: 0,
                unread: 0,
            },
            None,
        );
    };
    let mut at = start as usize;
    let mut first = None;
    let mut last = Header::OTHER;
    let mut read = 0;
    let mut unread = 0;
    // Every message advances `at` by at least its 4-byte session header.
    while let Some((mut header, total)) = at_zero.take().or_else(|| message_at(payload, at)) {
        let body = payload.get(at + 4..).unwrap_or(&[]);
        let body = &body[..body.len().min(total - 4)];
        if let (Dialect::Sealed, Some(c)) = (header.dialect, crypt.as_mut()) {
            // Only a transform (not a compression) header, whole in the segment.
            if body.len() == total - 4 && body.first() == Some(&0xfd) {
                match c.keys.decrypt_among(c.derived, body, c.to_server, c.plain) {
                    crypt::Decrypted::Plain(plain) => {
                        if let Some(inner) = smb2_header(plain) {
                            header = inner;
                            if may_name(&inner, plain) && read < MAX_MESSAGES {
                                events::events(Dialect::Smb2, plain, &mut event);
                            }
                        }
                    }
                    crypt::Decrypted::Failed(session) => event(Event::Undecrypted { session }),
                    crypt::Decrypted::NoKey => {}
                }
            } else if body.first() == Some(&0xfd) {
                // Longer than the segment: its header (and the segments after it) from its
                // first blocks, unverified; its events, if any, are not read.
                if let Some(inner) = c
                    .keys
                    .peek_among(c.derived, body, c.to_server)
                    .and_then(|(block, n)| smb2_header(&block[..n]))
                {
                    header = inner;
                }
            }
        } else if may_name(&header, body) {
            if read < MAX_MESSAGES {
                events::events(header.dialect, body, &mut event);
            } else {
                unread += 1;
            }
        }
        first.get_or_insert(header);
        last = header;
        read += 1;
        at += total;
        if at >= payload.len() {
            break;
        }
    }
    let first = first.unwrap_or(Header::OTHER);
    let end = u32::try_from(at).unwrap_or(u32::MAX);
    (
        Segment {
            start: Some(start),
            first,
            end,
            unread,
        },
        (end > len && read > 1).then_some(last),
    )
}

/// The message whose session header stands at `at`: its header fields and its length with
/// the 4-byte session header. A session message must hold an SMB header whose protocol id
/// is captured (unless the capture ends first); other session packet types are accepted
/// with their length.
fn message_at(payload: &[u8], at: usize) -> Option<(Header, usize)> {
    let h = array::<4>(payload, at)?;
    let length = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
    let total = 4 + length;
    if h[0] != SESSION_MESSAGE {
        // Session request 0x81, positive 0x82 and negative 0x83 response, retarget 0x84,
        // keep-alive 0x85: short, and only from RFC 1002's set.
        return (matches!(h[0], 0x81..=0x85) && length <= 512).then_some((Header::OTHER, total));
    }
    let smb = &payload[at + 4..];
    let id = smb.get(..4).unwrap_or(smb);
    let dialect = match id {
        [0xfe, b'S', b'M', b'B'] => Dialect::Smb2,
        [0xff, b'S', b'M', b'B'] => Dialect::Smb1,
        [0xfd | 0xfc, b'S', b'M', b'B'] => Dialect::Sealed,
        // Cut by the capture right after the session header: its length still frames it.
        [] => Dialect::Other,
        _ => return None,
    };
    if length < 4 {
        return None;
    }
    let header = match dialect {
        Dialect::Smb2 => smb2_header(smb).unwrap_or(Header {
            dialect,
            ..Header::OTHER
        }),
        Dialect::Smb1 => smb1_header(smb).unwrap_or(Header {
            dialect,
            ..Header::OTHER
        }),
        _ => Header {
            dialect,
            ..Header::OTHER
        },
    };
    Some((header, total))
}

/// The first place in `payload` after offset 0 where an SMB message seems to begin: a
/// session message header whose SMB protocol id follows in full.
fn find_message(payload: &[u8]) -> Option<u32> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"SMB"));
    let finder = &*FINDER;
    let mut from = 0;
    while let Some(i) = finder.find(payload.get(from..)?) {
        let id = from + i;
        from = id + 1;
        // The protocol id's first byte stands before "SMB", the session header before it.
        let Some(at) = id.checked_sub(5) else {
            continue;
        };
        if matches!(payload[id - 1], 0xfc..=0xff) && message_at(payload, at).is_some() {
            return u32::try_from(at).ok();
        }
    }
    None
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    array::<2>(b, at).map(|a| u16::from_le_bytes(*a))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    array::<4>(b, at).map(|a| u32::from_le_bytes(*a))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    array::<8>(b, at).map(|a| u64::from_le_bytes(*a))
}

/// SMB2's 16-byte file id (persistent and volatile halves) folded into one word; 0 is
/// kept for "none".
fn file_id(b: &[u8], at: usize) -> Option<u64> {
    let persistent = le64(b, at)?;
    let volatile = le64(b, at + 8)?;
    Some((persistent ^ volatile.rotate_left(32)).max(1))
}

fn smb2_header(smb: &[u8]) -> Option<Header> {
    use field::smb2::*;
    use smb2_command::*;
    let h = array::<HEADER_LEN>(smb, 0)?;
    let flags = le32(h, FLAGS)?;
    let command = le16(h, COMMAND)?;
    let response = flags & SMB2_FLAG_RESPONSE != 0;
    let body = &smb[HEADER_LEN..];
    // Requests that address an open file, and where its id stands in their bodies.
    let file_at = match command {
        _ if response => None,
        CLOSE | FLUSH | LOCK | IOCTL | QUERY_DIRECTORY | CHANGE_NOTIFY | OPLOCK_BREAK => Some(8),
        READ | WRITE | SET_INFO => Some(16),
        QUERY_INFO => Some(24),
        _ => None,
    };
    Some(Header {
        dialect: Dialect::Smb2,
        response,
        interim: response && le32(h, STATUS)? == STATUS_PENDING,
        command,
        tree: if flags & SMB2_FLAG_ASYNC != 0 {
            NO_TREE
        } else {
            le32(h, TREE_ID)?
        },
        message: le64(h, MESSAGE_ID)?,
        file: file_at.and_then(|at| file_id(body, at)).unwrap_or(0),
        context: pdu_context(smb, command, response),
    })
}

/// The presentation context of the DCE/RPC PDU an SMB2 message carries, for a pipe.
#[inline]
fn pdu_context(smb: &[u8], command: u16, response: bool) -> Option<u16> {
    use field::smb2::*;
    use smb2_command::*;
    let body = smb.get(HEADER_LEN..)?;
    let at = match (command, response) {
        (WRITE, false) => usize::from(le16(body, WRITE_DATA_OFFSET)?),
        (READ, true) => usize::from(*body.get(READ_RESPONSE_DATA_OFFSET)?),
        (IOCTL, false) if le32(body, IOCTL_CTL_CODE)? == FSCTL_PIPE_TRANSCEIVE => {
            le32(body, IOCTL_INPUT_OFFSET)? as usize
        }
        (IOCTL, true) if le32(body, IOCTL_CTL_CODE)? == FSCTL_PIPE_TRANSCEIVE => {
            le32(body, IOCTL_RESPONSE_OUTPUT_OFFSET)? as usize
        }
        _ => return None,
    };
    crate::inspect::rpc::co_context(smb.get(at..)?)
}

fn smb1_header(smb: &[u8]) -> Option<Header> {
    use field::smb1::*;
    use smb1_command::*;
    let h = array::<{ HEADER_LEN + 1 }>(smb, 0)?;
    let command = h[COMMAND];
    let response = h[FLAGS] & SMB1_FLAG_REPLY != 0;
    let words = usize::from(h[WORD_COUNT]);
    let file = if response {
        None
    } else {
        match command {
            CLOSE => le16(smb, WORDS),
            READ_ANDX | WRITE_ANDX => le16(smb, WORDS + 4),
            // TransactNmPipe names the pipe in its second setup word.
            TRANSACTION if words >= 16 && le16(smb, WORDS + 28) == Some(TRANS_TRANSACT_NMPIPE) => {
                le16(smb, WORDS + 30)
            }
            _ => None,
        }
    };
    Some(Header {
        dialect: Dialect::Smb1,
        response,
        interim: false,
        command: u16::from(command),
        tree: u32::from(le16(h, TID)?),
        message: (u64::from(le16(h, PID)?) << 16) | u64::from(le16(h, MID)?),
        file: file.map_or(0, |f| u64::from(f) + 1),
        context: None,
    })
}

/// Whether a message can carry an event: most messages (reads, writes of data, their
/// responses) cannot, and are not read further.
#[inline]
fn may_name(h: &Header, smb: &[u8]) -> bool {
    match h.dialect {
        Dialect::Smb2 => {
            use smb2_command::*;
            let compound = le32(smb, field::smb2::NEXT_COMMAND).is_some_and(|n| n != 0);
            compound
                || matches!(
                    (h.command, h.response),
                    (TREE_CONNECT, true)
                        | (CREATE, _)
                        | (
                            WRITE
                                | IOCTL
                                | QUERY_DIRECTORY
                                | CHANGE_NOTIFY
                                | CLOSE
                                | TREE_DISCONNECT
                                | LOGOFF,
                            false
                        )
                )
        }
        // Session setup can chain a tree connect (AndX).
        // Close, tree disconnect and logoff end what they name.
        Dialect::Smb1 => matches!(
            h.command,
            0x04 | 0x25 | 0x2f | 0x71 | 0x73 | 0x74 | 0x75 | 0xa2
        ),
        Dialect::Sealed | Dialect::Other | Dialect::Rpc => false,
    }
}

/// A file name as portscope names pipes: lower case, without leading backslashes or a
/// `\pipe\` prefix, at most `N` bytes of UTF-8 (a longer name is cut at a character);
/// returns the length written.
pub fn pipe_name<const N: usize>(name: Name<'_>, out: &mut [u8; N]) -> usize {
    // Room for the prefix and a name longer than any pipe's (Windows allows 256
    // characters), so the cut comes after the prefix is gone.
    let mut all = [0u8; 4 * MAX_NAME];
    let mut len = 0;
    let mut push = |c: char| {
        let c = c.to_ascii_lowercase();
        let mut buf = [0; 4];
        let s = c.encode_utf8(&mut buf).as_bytes();
        if len + s.len() <= all.len() {
            all[len..len + s.len()].copy_from_slice(s);
            len += s.len();
        }
    };
    if name.utf16 {
        let units = name
            .bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0);
        for c in char::decode_utf16(units) {
            push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
        }
    } else {
        for &b in name.bytes.iter().take_while(|&&b| b != 0) {
            push(char::from(b));
        }
    }
    let name = &all[..len];
    let skip = name.iter().take_while(|&&b| b == b'\\').count();
    let name = &name[skip..];
    let name = name.strip_prefix(b"pipe\\").unwrap_or(name);
    // Cut at a character boundary (UTF-8 continuation bytes are 0b10xx_xxxx).
    let mut n = name.len().min(N);
    while n > 0 && n < name.len() && name[n] & 0xc0 == 0x80 {
        n -= 1;
    }
    out[..n].copy_from_slice(&name[..n]);
    n
}

/// The longest pipe or file name portscope keeps, in bytes of UTF-8: a Windows pipe name
/// has at most 256 characters, `\\pipe\\` included.
pub const MAX_NAME: usize = 255;

/// SMB messages with their session header, for tests and the fixture generator.
pub mod build;
pub mod crypt;
mod events;
pub mod preauth;

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use proptest::prelude::*;

    fn read(payload: &[u8]) -> ((Segment, Option<Header>), Vec<String>) {
        let mut events = Vec::new();
        let len = u32::try_from(payload.len()).unwrap();
        let walked = segment(payload, len, |e| events.push(format!("{e:?}")));
        (walked, events)
    }

    #[test]
    fn messages_of_a_segment_and_their_events() {
        let mut payload = session(&tree_connect_response(1, 5, 2));
        payload.extend(session(&create_request(2, 5, "\\PIPE\\SamR")));
        let ((s, tail), events) = read(&payload);
        assert_eq!(s.start, Some(0));
        assert_eq!(s.first.command, 3);
        assert!(s.first.response);
        assert_eq!(s.end as usize, payload.len());
        assert_eq!(tail, None);
        assert_eq!(events.len(), 2);
        assert!(events[0].starts_with("Tree { tree: 5, share: Pipe }"));
        let mut name = [0; 32];
        let mut open = None;
        segment(&payload, 0, |e| {
            if let Event::Open { name: n, .. } = e {
                open = Some(pipe_name(n, &mut name));
            }
        });
        assert_eq!(&name[..open.unwrap()], b"samr");
    }

    #[test]
    fn messages_past_the_bound_are_walked_and_counted_unread() {
        // 70 creates and 10 reads (which name nothing) in one segment.
        let mut payload = Vec::new();
        for i in 0..70 {
            payload.extend(session(&create_request(i, 1, "srvsvc")));
            if i % 7 == 0 {
                payload.extend(session(&read_request(1000 + i, 1, 5)));
            }
        }
        let ((s, _), events) = read(&payload);
        assert_eq!(s.end as usize, payload.len());
        // The first 64 messages are 8 of (7 creates, a read): 56 creates are read, and the
        // other 14 are left unread.
        assert_eq!(events.len(), 56);
        assert_eq!(s.unread, 14);
    }

    #[test]
    fn a_message_longer_than_its_segment_and_one_after_it() {
        let mut read_response = read_response_header(9, 2);
        read_response.resize(read_response.len() + 5000, 0);
        let message = session(&read_response);
        let ((s, _), _) = read(&message[..1400]);
        assert_eq!((s.start, s.end), (Some(0), 5084));
        // A small message, then the start of a long one: the long one is the tail.
        let mut payload = session(&smb2_plain(9, true, 8, 16));
        let small = payload.len() as u32;
        payload.extend_from_slice(&message[..600]);
        let ((s, tail), _) = read(&payload);
        assert_eq!(s.first.message, 8);
        assert_eq!(s.end, small + 5084);
        assert_eq!(tail.map(|t| t.message), Some(9));
        // The end of a message the segment continues, then a header: found by its magic.
        let mut payload = vec![0x33; 700];
        payload.extend(session(&read_request(10, 2, 99)));
        let ((s, _), _) = read(&payload);
        assert_eq!(s.start, Some(700));
        assert_eq!(s.first.message, 10);
        assert_ne!(s.first.file, 0);
    }

    #[test]
    fn sealed_smb1_and_what_is_not_smb() {
        let ((s, _), _) = read(&session(&transform(64)));
        assert_eq!(s.first.dialect, Dialect::Sealed);
        let ((s, _), events) = read(&session(&smb1_tree_connect_response(2048, 3, "A:")));
        assert_eq!((s.first.dialect, s.first.tree), (Dialect::Smb1, 2048));
        assert!(events[0].contains("share: Disk"));
        let ((s, _), _) = read(&[0x85, 0, 0, 0]);
        assert_eq!(
            (s.start, s.first.dialect, s.end),
            (Some(0), Dialect::Other, 4)
        );
        let ((s, _), _) = read(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(s.start, None);
        // A session message that is not SMB, and a length below the protocol id.
        let ((s, _), _) = read(&[0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(s.start, None);
        let ((s, _), _) = read(&[0, 0, 0, 2, 0xfe, b'S', b'M', b'B']);
        assert_eq!(s.start, None);
    }

    #[test]
    fn names_are_lower_case_without_prefixes_and_bounded() {
        let name = |bytes: &[u8], utf16| {
            let mut out = [0; 8];
            let n = pipe_name(Name { bytes, utf16 }, &mut out);
            String::from_utf8(out[..n].to_vec()).unwrap()
        };
        assert_eq!(name(b"\\LSARPC\0junk", false), "lsarpc");
        assert_eq!(name(b"\\pipe\\Spoolss", false), "spoolss");
        assert_eq!(name(b"abcdefghijkl", false), "abcdefgh");
        let utf16: Vec<u8> = "Wkssvc".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(name(&utf16, true), "wkssvc");
        assert_eq!(name(&[0x00, 0xd8, b'a', 0], true), "\u{fffd}a");
    }

    proptest! {
        /// Whatever follows a session header and an SMB protocol id, reading never panics,
        /// and the walk ends inside what the lengths say.
        #[test]
        fn arbitrary_smb_never_panics(
            magic in prop::sample::select(vec![0xfeu8, 0xff, 0xfd, 0xfc]),
            length in 0u32..0x0100_0000,
            body in prop::collection::vec(any::<u8>(), 0..400),
            cut in 0usize..420,
        ) {
            let mut payload = vec![0, (length >> 16) as u8, (length >> 8) as u8, length as u8];
            payload.extend_from_slice(&[magic, b'S', b'M', b'B']);
            payload.extend_from_slice(&body);
            payload.truncate(cut.max(1));
            let mut events = 0;
            let (s, _) = segment(&payload, payload.len() as u32, |_| events += 1);
            prop_assert!(events <= MAX_MESSAGES * MAX_CHAIN * 2);
            if let Some(start) = s.start {
                prop_assert!(start as usize <= payload.len());
            }
        }
    }
}
