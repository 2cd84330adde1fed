//! SMB 3.1.1 preauthentication integrity ([MS-SMB2] 3.2.5.2, 3.3.5.4, 3.3.5.5): the hash
//! over a connection's NEGOTIATE and each session's SESSION_SETUP messages, from which the
//! keys of a session whose key file line gives its session key alone are derived.
//!
//! A [`Negotiation`] follows one connection's segments in order (the shard owner's job: it
//! is the one that sees them so), hashes those messages as they pass, across segments,
//! without buffering them (SHA-512 takes them a piece at a time), and at a session's final
//! SESSION_SETUP response derives its keys ([`Session::negotiated`]). Its state is bounded:
//! one message in progress per direction, [`MAX_SETUPS`] sessions being set up,
//! [`MAX_DERIVED`] sessions derived.

use super::crypt::{Keys, Session};
use super::field::smb2::{COMMAND, FLAGS, HEADER_LEN as SMB2_HEADER_LEN, STATUS};
use super::smb2_command::{NEGOTIATE, SESSION_SETUP};
use super::{le16, le32, le64, SMB2_FLAG_RESPONSE};
use crate::decode::array;
use sha2::{Digest, Sha512};

/// Sessions one connection sets up at once, at most (a second one pushes the oldest out).
pub const MAX_SETUPS: usize = 4;
/// Sessions whose keys one connection derives, at most (the oldest is forgotten first).
pub const MAX_DERIVED: usize = 16;

const STATUS_SUCCESS: u32 = 0;
const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xc000_0016;
/// Where an SMB2 header holds its session id.
const SESSION_ID: usize = 40;
/// The NEGOTIATE response's SMB2_ENCRYPTION_CAPABILITIES context ([MS-SMB2] 2.2.3.1.2).
const ENCRYPTION_CAPABILITIES: u16 = 0x0002;

type Hash = [u8; 64];

/// What a connection's negotiation has shown, and the keys derived from it.
#[derive(Clone, Debug)]
pub struct Negotiation {
    /// The connection's hash after its NEGOTIATE request (and response, for 3.1.1).
    connection: Hash,
    /// Whether the NEGOTIATE response chose SMB 3.1.1, and an AES-256 cipher.
    smb311: bool,
    aes256: bool,
    /// Sessions being set up: session id (0 before the server gives one) and hash.
    setups: Vec<(u64, Hash)>,
    directions: [Stream; 2],
    /// The keys derived for this connection's sessions.
    pub derived: Vec<Session>,
    /// Messages that could not be hashed (a gap in the stream, a frame cut short): the
    /// sessions they belong to cannot be derived.
    pub lost: u32,
}

impl Default for Negotiation {
    fn default() -> Negotiation {
        Negotiation {
            connection: [0; 64],
            smb311: false,
            aes256: false,
            setups: Vec::new(),
            directions: Default::default(),
            derived: Vec::new(),
            lost: 0,
        }
    }
}

/// One direction of the connection.
#[derive(Clone, Debug, Default)]
struct Stream {
    synced: bool,
    /// The sequence number at which the next message begins.
    next: u32,
    /// A hashed message that goes on past the segments seen so far.
    partial: Option<Partial>,
}

#[derive(Clone, Debug)]
struct Partial {
    hasher: Sha512,
    /// The sequence number of the segment that continues it.
    next: u32,
    /// Bytes of the message still to come, from sequence number `next`.
    remaining: usize,
    message: Message,
    /// A NEGOTIATE response's bytes so far (at most [`MAX_KEPT`]), for its contexts.
    kept: Vec<u8>,
}

/// The bytes of a NEGOTIATE response kept for its contexts, at most.
const MAX_KEPT: usize = 4096;

/// A message being hashed, with what its header said.
#[derive(Clone, Copy, Debug)]
enum Message {
    NegotiateRequest,
    NegotiateResponse,
    SetupRequest { session: u64 },
    SetupResponse { session: u64 },
}

/// Whether sequence number `a` is before `b` (RFC 1982 arithmetic).
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Negotiation {
    /// Follows a segment of `len` bytes on the wire at sequence number `seq` (`payload`, as
    /// far as it was captured), sent to the server (`to_server`) or by it. The sessions
    /// `keys` names by a session key alone get their keys at their final SESSION_SETUP
    /// response.
    pub fn segment(&mut self, to_server: bool, seq: u32, payload: &[u8], len: u32, keys: &Keys) {
        let side = usize::from(!to_server);
        let cut = (payload.len() as u64) < u64::from(len);
        let mut at = None;
        if let Some(mut p) = self.directions[side].partial.take() {
            if seq == p.next {
                let n = p.remaining.min(payload.len());
                p.hasher.update(&payload[..n]);
                p.remaining -= n;
                if matches!(p.message, Message::NegotiateResponse) {
                    let room = MAX_KEPT.saturating_sub(p.kept.len());
                    p.kept.extend_from_slice(&payload[..n.min(room)]);
                }
                if p.remaining == 0 {
                    if matches!(p.message, Message::NegotiateResponse) {
                        self.negotiated(&p.kept);
                    }
                    let hash: Hash = p.hasher.finalize().into();
                    self.hashed(p.message, hash);
                    at = Some(n);
                } else if cut {
                    self.lose(p.message);
                    return;
                } else {
                    p.next = seq.wrapping_add(len);
                    self.directions[side].partial = Some(p);
                    return;
                }
            } else if before(seq, p.next) {
                // A retransmission of what was hashed already.
                self.directions[side].partial = Some(p);
                return;
            } else {
                // A gap: the message cannot be hashed.
                self.lose(p.message);
            }
        }
        let d = &self.directions[side];
        let end = seq.wrapping_add(len);
        let at = match at {
            Some(at) => at,
            None if d.synced && seq == d.next => 0,
            None if d.synced && before(seq, d.next) && before(d.next, end) => {
                d.next.wrapping_sub(seq) as usize
            }
            // Inside a message that is not hashed, or a retransmission.
            None if d.synced && before(seq, d.next) => return,
            // Not synchronised, or a gap: only a segment that begins with a message resumes.
            None if payload.get(5..8) == Some(b"SMB") => 0,
            None => {
                self.directions[side].synced = false;
                return;
            }
        };
        self.walk(side, seq, (payload, len), at, keys);
    }

    /// Walks the messages of a segment from offset `at`, where one begins.
    fn walk(
        &mut self,
        side: usize,
        seq: u32,
        (payload, len): (&[u8], u32),
        mut at: usize,
        keys: &Keys,
    ) {
        let cut = (payload.len() as u64) < u64::from(len);
        while let Some(session) = array::<4>(payload, at) {
            let size = usize::from(session[1]) << 16
                | usize::from(session[2]) << 8
                | usize::from(session[3]);
            let m = payload.get(at + 4..).unwrap_or(&[]);
            let m = &m[..m.len().min(size)];
            if session[0] == 0 {
                let next = (!cut && m.len() < size).then(|| seq.wrapping_add(len));
                self.message(side, m, size, next, keys);
            }
            at += 4 + size;
        }
        self.directions[side].synced = true;
        self.directions[side].next = seq.wrapping_add(u32::try_from(at).unwrap_or(u32::MAX));
    }

    /// An SMB message of `size` bytes whose first bytes, as far as the segment holds
    /// them, are `m`; when it goes on in the segments after this one, `next` is where.
    fn message(&mut self, side: usize, m: &[u8], size: usize, next: Option<u32>, keys: &Keys) {
        let Some(h) = array::<SMB2_HEADER_LEN>(m, 0) else {
            return;
        };
        if h[..4] != [0xfe, b'S', b'M', b'B'] {
            return;
        }
        let (Some(command), Some(flags), Some(status), Some(session)) = (
            le16(h, COMMAND),
            le32(h, FLAGS),
            le32(h, STATUS),
            le64(h, SESSION_ID),
        ) else {
            return;
        };
        let response = flags & SMB2_FLAG_RESPONSE != 0;
        let message = match (command, response) {
            (NEGOTIATE, false) => Message::NegotiateRequest,
            (NEGOTIATE, true) => {
                if m.len() == size {
                    self.negotiated(m);
                }
                Message::NegotiateResponse
            }
            (SESSION_SETUP, false) if self.smb311 => Message::SetupRequest { session },
            (SESSION_SETUP, true) if self.smb311 => match status {
                STATUS_SUCCESS => {
                    self.derive(session, keys);
                    return;
                }
                STATUS_MORE_PROCESSING_REQUIRED => Message::SetupResponse { session },
                _ => {
                    self.setups.retain(|s| s.0 != session);
                    return;
                }
            },
            _ => return,
        };
        let mut hasher = Sha512::new();
        hasher.update(self.hash_before(message));
        hasher.update(m);
        match next {
            _ if m.len() == size => self.hashed(message, hasher.finalize().into()),
            Some(next) => {
                let kept = match message {
                    Message::NegotiateResponse => m[..m.len().min(MAX_KEPT)].to_vec(),
                    _ => Vec::new(),
                };
                self.directions[side].partial = Some(Partial {
                    hasher,
                    next,
                    remaining: size - m.len(),
                    message,
                    kept,
                });
            }
            // The capture holds less of it than the wire did.
            None => self.lose(message),
        }
    }

    /// A message could not be hashed: what it belongs to derives no keys.
    fn lose(&mut self, message: Message) {
        self.lost += 1;
        match message {
            Message::NegotiateRequest | Message::NegotiateResponse => {
                self.smb311 = false;
                self.setups.clear();
            }
            Message::SetupRequest { session } | Message::SetupResponse { session } => {
                self.setups.retain(|s| s.0 != session);
            }
        }
    }

    /// The hash a message's hash continues.
    fn hash_before(&mut self, message: Message) -> Hash {
        match message {
            Message::NegotiateRequest => [0; 64],
            Message::NegotiateResponse => self.connection,
            Message::SetupRequest { session } => {
                // A request with no session id begins a new session.
                if let Some(s) = self.setups.iter().find(|s| s.0 == session && session != 0) {
                    return s.1;
                }
                // A new session: from the connection's hash.
                self.setups.retain(|s| s.0 != session);
                if self.setups.len() >= MAX_SETUPS {
                    self.setups.remove(0);
                    self.lost += 1;
                }
                self.setups.push((session, self.connection));
                self.connection
            }
            Message::SetupResponse { session } => {
                // The first response gives the session its id.
                if !self.setups.iter().any(|s| s.0 == session) {
                    if let Some(s) = self.setups.iter_mut().find(|s| s.0 == 0) {
                        s.0 = session;
                    }
                }
                self.setups
                    .iter()
                    .find(|s| s.0 == session)
                    .map_or(self.connection, |s| s.1)
            }
        }
    }

    /// A message's hash is complete.
    fn hashed(&mut self, message: Message, hash: Hash) {
        match message {
            Message::NegotiateRequest | Message::NegotiateResponse => self.connection = hash,
            Message::SetupRequest { session } | Message::SetupResponse { session } => {
                if let Some(s) = self.setups.iter_mut().find(|s| s.0 == session) {
                    s.1 = hash;
                }
            }
        }
    }

    /// A NEGOTIATE response: the dialect, and for 3.1.1 the cipher from its contexts.
    fn negotiated(&mut self, m: &[u8]) {
        let body = m.get(SMB2_HEADER_LEN..).unwrap_or(&[]);
        let dialect = le16(body, 4);
        self.smb311 = dialect == Some(0x0311);
        self.aes256 = false;
        self.setups.clear();
        if !self.smb311 {
            return;
        }
        let count = le16(body, 6).unwrap_or(0);
        let mut at = le32(body, 60).unwrap_or(0) as usize;
        for _ in 0..count {
            let (Some(kind), Some(data)) = (le16(m, at), le16(m, at + 2)) else {
                return;
            };
            let data = usize::from(data);
            if kind == ENCRYPTION_CAPABILITIES {
                // One cipher in a response: 3 and 4 are AES-256-CCM and AES-256-GCM.
                if let Some(cipher) = le16(m, at + 10) {
                    self.aes256 = matches!(cipher, 3 | 4);
                }
                return;
            }
            at = (at + 8 + data).next_multiple_of(8);
        }
    }

    /// A session's final SESSION_SETUP response: its keys from its hash, if the key file
    /// gives its session key alone.
    fn derive(&mut self, session: u64, keys: &Keys) {
        // A session set up in one round trip still has no id here.
        let at = (self.setups.iter().position(|s| s.0 == session))
            .or_else(|| self.setups.iter().position(|s| s.0 == 0));
        let Some(at) = at else {
            return;
        };
        let hash = self.setups.remove(at).1;
        // A session authenticating again keeps its keys.
        if self.derived.iter().any(|s| s.id == session) {
            return;
        }
        let Some(derived) = keys
            .session(session)
            .and_then(|s| s.negotiated(&hash, self.aes256))
        else {
            return;
        };
        if self.derived.len() >= MAX_DERIVED {
            self.derived.remove(0);
        }
        self.derived.push(derived);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, Link, Upper};

    /// The TCP segments of a committed Samba capture (classic pcap, Ethernet): sequence
    /// number, whether it goes to the server, payload.
    fn segments(pcap: &[u8]) -> Vec<(u32, bool, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 24;
        while let Some(h) = pcap.get(at..at + 16) {
            let n = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
            let frame = &pcap[at + 16..at + 16 + n];
            at += 16 + n;
            let (d, payload) = decode(Link::Ethernet, frame).unwrap();
            let Upper::Ports { dst, .. } = d.upper else {
                continue;
            };
            if !payload.is_empty() {
                out.push((d.tcp_seq(), dst == 445, payload.to_vec()));
            }
        }
        out
    }

    fn feed(n: &mut Negotiation, keys: &Keys, segments: &[(u32, bool, Vec<u8>)]) {
        for (seq, to_server, payload) in segments {
            let len = payload.len() as u32;
            n.segment(*to_server, *seq, payload, len, keys);
        }
    }

    /// Each committed Samba capture holds two SMB 3.1.1 sessions; from their session keys
    /// alone, the negotiation gives the very keys Samba printed, whether the messages come
    /// whole, split in pieces of 7 bytes, or retransmitted; a missing piece of a
    /// SESSION_SETUP loses the session.
    #[test]
    fn the_keys_samba_printed_come_from_the_session_key_and_the_negotiation() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/smb3/");
        for cipher in ["aes-128-ccm", "aes-128-gcm", "aes-256-ccm", "aes-256-gcm"] {
            let pcap = std::fs::read(format!("{dir}samba-{cipher}.pcap")).unwrap();
            let printed = std::fs::read_to_string(format!("{dir}samba-{cipher}.keys")).unwrap();
            let full = Keys::parse(&printed, "printed").unwrap();
            let alone: String = printed
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split(',').collect();
                    format!("{},{},\"\",\"\"\n", f[0], f[1])
                })
                .collect();
            let alone = Keys::parse(&alone, "alone").unwrap();
            assert!(alone.need_negotiation() && !full.need_negotiation());
            let whole = segments(&pcap);
            // Two connections, one session each: the first connection's segments are
            // those before the second's NEGOTIATE (the second begins later in time).
            let second = whole
                .iter()
                .skip(1)
                .position(|s| s.1 && s.2.get(16) == Some(&0) && s.2.get(4..8) == Some(b"\xfeSMB"))
                .map(|p| p + 1)
                .unwrap();
            let first = &whole[..second];
            let id = |n: &Negotiation| n.derived.iter().map(|s| s.id).collect::<Vec<_>>();
            let mut n = Negotiation::default();
            feed(&mut n, &alone, first);
            assert_eq!(n.derived.len(), 1, "{cipher}");
            let session = full.session(id(&n)[0]).unwrap();
            assert_eq!(&n.derived[0], session, "{cipher}");
            assert_eq!(n.lost, 0);
            // In pieces: the first 100 bytes (a message's header is whole where it
            // begins), then 7 bytes a piece, each piece sent twice.
            let pieces: Vec<_> = first
                .iter()
                .flat_map(|(seq, to, p)| {
                    let head = p.len().min(100);
                    let mut at = 0;
                    let mut out = Vec::new();
                    for c in std::iter::once(&p[..head]).chain(p[head..].chunks(7)) {
                        let s = (seq.wrapping_add(at as u32), *to, c.to_vec());
                        at += c.len();
                        out.push(s.clone());
                        out.push(s);
                    }
                    out
                })
                .collect();
            let mut split = Negotiation::default();
            feed(&mut split, &alone, &pieces);
            assert_eq!(split.derived, n.derived, "{cipher}");
            // Without the second SESSION_SETUP request's third piece: no keys.
            let request = first
                .iter()
                .filter(|s| s.1 && s.2.get(16) == Some(&1))
                .nth(1)
                .unwrap()
                .0;
            let missing: Vec<_> = pieces
                .iter()
                .filter(|s| s.0 != request.wrapping_add(107))
                .cloned()
                .collect();
            let mut gap = Negotiation::default();
            feed(&mut gap, &alone, &missing);
            assert!(gap.derived.is_empty(), "{cipher}");
            assert_eq!(gap.lost, 1, "{cipher}");
            // With the two keys, nothing is derived.
            let mut given = Negotiation::default();
            feed(&mut given, &full, first);
            assert!(given.derived.is_empty());
        }
    }

    #[test]
    fn hostile_segments_never_panic() {
        let keys = Keys::parse(
            "0100000000000000,00112233445566778899aabbccddeeff,\"\",\"\"",
            "k",
        )
        .unwrap();
        let mut n = Negotiation::default();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 300) as usize;
            let mut p: Vec<u8> = (0..len).map(|j| (seed >> (j % 56)) as u8).collect();
            if len > 20 && seed & 1 == 0 {
                p[..8].copy_from_slice(&[
                    0,
                    0,
                    (len >> 8) as u8,
                    (len as u8).wrapping_sub(4),
                    0xfe,
                    b'S',
                    b'M',
                    b'B',
                ]);
                p[16] = (seed >> 9) as u8 & 1;
            }
            n.segment(
                seed & 2 == 0,
                i.wrapping_mul(97),
                &p,
                (len + (seed % 3) as usize) as u32,
                &keys,
            );
        }
        assert!(n.derived.len() <= MAX_DERIVED && n.setups.len() <= MAX_SETUPS);
    }
    /// Microsoft's SMB 3.1.1 AES-128-GCM example ("SMB 3.1.1 Encryption in Windows 10",
    /// appendix A.1): its NEGOTIATE and SESSION_SETUP messages, in order, give from the
    /// session key alone the published encryption and decryption keys, which open the
    /// published WRITE request.
    #[test]
    fn microsofts_smb311_example_derives_its_published_keys() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let messages = [
            "FE534D4240000100000000000000010000000000000000000000000000000000FFFE0000000000000000000000000000000000000000000000000000000000002400050001000000660000004F0D7FA009F5B246B2EF62551D7D7C0970000000020000000202100200030203110300000100260000000000010020000100D1709D7196E1BD0B6EBF95213D76553435763514392649FD6F216ED8BF269CD800000200060000000000020002000100",
            "FE534D4240000100000000000000010001000000000000000000000000000000FFFE000000000000000000000000000000000000000000000000000000000000410001001103020039CBCAF329714942BDCE5D60F09AB3FB27000000000080000000800000008000D1168E69CDAED00109094AB095AED00180004001C00100006082013C06062B0601050502A08201303082012CA01A3018060A2B06010401823702021E060A2B06010401823702020AA282010C048201084E45474F4558545301000000000000006000000070000000807CC0FD06D6362D02DDE1CF343BFE29C16AA4EA4741FB0EF645DC5C5D3C3E6A8DE5D0BAEF7A06DC070076174356EDA00000000000000000600000000100000000000000000000005C33530DEAF90D4DB2EC4AE3786EC3084E45474F4558545303000000010000004000000098000000807CC0FD06D6362D02DDE1CF343BFE295C33530DEAF90D4DB2EC4AE3786EC30840000000580000003056A05430523027802530233121301F06035504031318546F6B656E205369676E696E67205075626C6963204B65793027802530233121301F06035504031318546F6B656E205369676E696E67205075626C6963204B65790100260000000000010020000100B51C002C28941192737A08344B05CE90786EEC146D99CDB60AE44E5A86127D270000020004000000000001000200",
            "FE534D4240000100000000000100800000000000000000000100000000000000FFFE00000000000000000000000000000000000000000000000000000000000019000001010000000000000058004A000000000000000000604806062B0601050502A03E303CA00E300C060A2B06010401823702020AA22A04284E544C4D5353500001000000978208E200000000000000000000000000000000060380250000000F",
            "FE534D4240000100160000C00100010001000000000000000100000000000000FFFE000000000000250000000010000000000000000000000000000000000000090000004800B300A181B03081ADA0030A0101A10C060A2B06010401823702020AA281970481944E544C4D53535000020000000C000C003800000015828AE25FC0CB7F886E93D6000000000000000050005000440000000A0092270000000F53005500540033003100310002000C0053005500540033003100310001000C0053005500540033003100310004000C0053005500540033003100310003000C0053005500540033003100310007000800248D5C6CCDAED00100000000",
            "FE534D4240000100000000000100800000000000000000000200000000000000FFFE0000000000002500000000100000000000000000000000000000000000001900000101000000000000005800CF010000000000000000A18201CB308201C7A0030A0101A28201AA048201A64E544C4D53535000030000001800180090000000EE00EE00A80000000C000C00580000001A001A0064000000120012007E0000001000100096010000158288E2060380250000000FA5E34268EF143BE5816251D02C564E9B530055005400330031003100610064006D0069006E006900730074007200610074006F0072004400520049005600450052003300310031000000000000000000000000000000000000000000000000002C263DA5C2D54785E8EDA0552472D3A30101000000000000248D5C6CCDAED001BEA7A53E2DC098EB0000000002000C0053005500540033003100310001000C0053005500540033003100310004000C0053005500540033003100310003000C0053005500540033003100310007000800248D5C6CCDAED00106000400020000000800300030000000000000000000000000300000B61FEFCAA857EA57BF1EDCEBF8974B8E0EBA5A6DFD9D07A31D11B548F8C9D0CC0A001000000000000000000000000000000000000900160063006900660073002F00530055005400330031003100000000000000000000000000133FA6EA154880BB44576C6E2490BDE7A31204100100000067890BD408F5680D00000000",
            "FE534D4240000100000000000100800009000000000000000200000000000000FFFE00000000000025000000001000006B85A4519A0F3EEA35BA946DD3AFE6B80900000048001D00A11B3019A0030A0100A3120410010000003932A87523AB660100000000",
        ];
        let keys = Keys::parse(
            "2500000000100000,419FDDF34C1E001909D362AE7FB6AF79,\"\",\"\"",
            "k",
        )
        .unwrap();
        let published = Keys::parse("2500000000100000,419FDDF34C1E001909D362AE7FB6AF79,748C50868C90F302962A5C35F5F9A8BF,A2F5E80E5D59103034F32E52F698E5EC", "k").unwrap();
        let mut n = Negotiation::default();
        let (mut seq, mut to_server) = ([1000u32, 5000u32], true);
        for m in messages {
            let m = hex(m);
            let mut segment = (m.len() as u32).to_be_bytes().to_vec();
            segment.extend_from_slice(&m);
            let side = usize::from(!to_server);
            n.segment(to_server, seq[side], &segment, segment.len() as u32, &keys);
            seq[side] += segment.len() as u32;
            to_server = !to_server;
        }
        assert_eq!(n.derived.len(), 1);
        assert_eq!(Some(&n.derived[0]), published.session(0x1000_0000_0025));
        let mut plain = vec![0; 512];
        let write = hex("FD534D42BD73D97D2BC9001BCAFAC0FDFF5FEEBCC7D6822D269CAF48904C664C00000000870000000000010025000000001000006ECDD2A7AFC7B47763057A041B8FD4DAFFE990B70C9E09D36C084E02D14EF247F8BDE38ACF6256F8B1D3B56F77FBDEB312FEA5E92CBCC1ED8FB2EBBFAA75E49A4A394BB44576545567C24D4C014D47C9FBDFDAFD2C4F9B72F8D256452620A299F48E29E53D6B61D1C13A19E91AF013F00D17E3ABC2FC3D36C8C1B6B93973253852DBD442E46EE8");
        assert_eq!(
            keys.decrypt_among(&n.derived, &write, true, &mut plain),
            crate::inspect::smb::crypt::Decrypted::Plain(&hex("FE534D4240000100000000000900010008000000000000000500000000000000FFFE000001000000250000000010000000000000000000000000000000000000310070001700000000000000000000000600000004000000010000000400000000000000000000007000000000000000536D623320656E6372797074696F6E2074657374696E67")[..])
        );
    }
}
