//! SMB3 decryption with the analyst's keys ([MS-SMB2] 2.2.41, 3.1.4.2, 3.1.4.3): the key
//! file in Wireshark's `smb2_seskey_list` format, the SP800-108 key derivation, and the
//! four ciphers, AES-128 and AES-256 in CCM and GCM modes (RustCrypto's `ccm` and
//! `aes-gcm`, which implement RFC 4309 and RFC 5116 as [MS-SMB2] uses them).
//!
//! A transform message whole in its segment is decrypted and its tag verified, so a wrong
//! key names nothing ([`Keys::decrypt`]); one longer than its segment gives its header
//! from its first blocks, unverified ([`Keys::peek_header`]): it is not buffered. Which of
//! the two modes a session uses is told by the tag (CCM for SMB 3.0 and 3.0.2; CCM or GCM
//! for 3.1.1), so the negotiation need not be seen. Keys are kept in types that never
//! print them.

use aes::{Aes128, Aes256};
use aes_gcm::aead::{generic_array::GenericArray, AeadInPlace, KeyInit};
use aes_gcm::AesGcm;
use ccm::consts::{U11, U12, U16};
use ccm::Ccm;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The SMB2 TRANSFORM_HEADER: protocol id, signature, nonce, original message size,
/// reserved, flags, session id.
pub const TRANSFORM_LEN: usize = 52;

/// The most plaintext one message decrypts into here: a frame holds at most 262,144
/// bytes, so a message whole in one segment is smaller.
pub const MAX_PLAIN: usize = 262_144;

/// An AES key of 128 or 256 bits.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    Aes128([u8; 16]),
    Aes256([u8; 32]),
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys never appear in any output.
        f.write_str(match self {
            Key::Aes128(_) => "Key::Aes128(..)",
            Key::Aes256(_) => "Key::Aes256(..)",
        })
    }
}

impl Key {
    fn from_bytes(b: &[u8]) -> Option<Key> {
        match b.len() {
            16 => b.try_into().ok().map(Key::Aes128),
            32 => b.try_into().ok().map(Key::Aes256),
            _ => None,
        }
    }
}

/// The two decryption keys of one session: for what the client sends (the server's
/// decryption key, `C2S`) and for what the server sends (`S2C`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The session id as a number (the wire holds it little-endian).
    pub id: u64,
    c2s: Key,
    s2c: Key,
    /// A session key given alone: `c2s` and `s2c` are its SMB 3.0 keys, and an SMB 3.1.1
    /// session's keys come from it and the session's negotiation ([`Session::negotiated`]).
    session_key: Option<SessionKey>,
}

/// A session key of 16 or 32 bytes (Kerberos gives AES-256 sessions the whole 32).
#[derive(Clone, PartialEq, Eq)]
struct SessionKey {
    bytes: [u8; 32],
    len: u8,
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({} bytes)", self.len)
    }
}

impl Session {
    /// The keys of an SMB 3.1.1 session whose key file line gives its session key alone,
    /// from that key and the session's preauthentication integrity hash ([MS-SMB2]
    /// 3.1.4.2, 3.3.5.5.3): 256-bit keys for an AES-256 cipher (`aes256`), from the whole
    /// session key, 128-bit ones from its first 16 bytes otherwise. `None` for a session
    /// given its two keys, which need no derivation.
    pub fn negotiated(&self, preauth: &[u8; 64], aes256: bool) -> Option<Session> {
        let key = self.session_key.as_ref()?;
        let (bits, len) = if aes256 {
            (256, usize::from(key.len))
        } else {
            (128, 16)
        };
        let derive = |label: &[u8]| {
            let block = kdf(&key.bytes[..len], label, preauth, bits);
            Key::from_bytes(&block[..bits as usize / 8]).unwrap_or(Key::Aes128([0; 16]))
        };
        Some(Session {
            id: self.id,
            c2s: derive(b"SMBC2SCipherKey\0"),
            s2c: derive(b"SMBS2CCipherKey\0"),
            session_key: None,
        })
    }

    /// The session's key for what goes to the server (`to_server`) or comes from it.
    fn key(&self, to_server: bool) -> &Key {
        if to_server {
            &self.c2s
        } else {
            &self.s2c
        }
    }
}

/// The keys of every session a key file names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    sessions: Vec<Session>,
}

/// A key file line that cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("key file {path}:{line}: {message}")]
pub struct KeyFileError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

/// SP800-108 in counter mode with HMAC-SHA256, as [MS-SMB2] 3.1.4.2 uses it: the first
/// block of key from `key`, `label` and `context` (both as the specification spells
/// them, their terminating NULs included) for an `bits`-bit key, whose first `bits / 8`
/// bytes are the key (one block is enough for 128 and 256 bits).
pub fn kdf(key: &[u8], label: &[u8], context: &[u8], bits: u32) -> [u8; 32] {
    // HMAC takes a key of any length.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(&1u32.to_be_bytes());
    mac.update(label);
    mac.update(&[0]);
    mac.update(context);
    mac.update(&bits.to_be_bytes());
    mac.finalize().into_bytes().into()
}

/// A session's decryption keys from its session key, for SMB 3.0 and 3.0.2 (the fixed
/// labels of [MS-SMB2] 3.1.4.2; AES-128-CCM). SMB 3.1.1 derives its keys from a hash of the
/// session's negotiation as well, so its sessions need their two keys in the file.
pub fn keys_from_session_key(session_key: &[u8]) -> (Key, Key) {
    let first = |block: [u8; 32]| {
        let mut key = [0; 16];
        key.copy_from_slice(&block[..16]);
        Key::Aes128(key)
    };
    (
        first(kdf(session_key, b"SMB2AESCCM\0", b"ServerIn \0", 128)),
        first(kdf(session_key, b"SMB2AESCCM\0", b"ServerOut\0", 128)),
    )
}

/// The bytes of a hex field, as Wireshark writes them (`""` for none).
fn hex_field(field: &str) -> Result<Vec<u8>, String> {
    let field = field.trim();
    let field = field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(field);
    if field.len() % 2 != 0 {
        return Err(format!(
            "{field:?} is not hex bytes (an odd number of digits)"
        ));
    }
    (0..field.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&field[i..i + 2], 16)
                .map_err(|_| format!("{field:?} is not hex bytes"))
        })
        .collect()
}

impl Keys {
    /// Reads a key file (`path` names it in errors): one session a line,
    /// `SESSION_ID,SESSION_KEY,S2C_KEY,C2S_KEY` in hex as the wire holds them, each field
    /// optionally quoted; the two decryption keys may be `""`, and then come from the
    /// session key (SMB 3.0 and 3.0.2). `#` begins a comment; blank lines are skipped.
    ///
    /// # Errors
    /// The first line that cannot be used, with why.
    pub fn parse(text: &str, path: &str) -> Result<Keys, KeyFileError> {
        let mut keys = Keys::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |message: String| KeyFileError {
                path: path.to_string(),
                line: n + 1,
                message,
            };
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != 4 {
                return Err(error(format!(
                    "expected SESSION_ID,SESSION_KEY,S2C_KEY,C2S_KEY, found {} fields",
                    fields.len()
                )));
            }
            let field = |i: usize| hex_field(fields[i]).map_err(&error);
            let id: [u8; 8] = field(0)?
                .try_into()
                .map_err(|_| error("the session id must be 8 bytes (16 hex digits)".to_string()))?;
            let (session_key, s2c, c2s) = (field(1)?, field(2)?, field(3)?);
            let (c2s, s2c) = match (c2s.is_empty(), s2c.is_empty()) {
                (false, false) => {
                    let key = |b: &[u8], what: &str| {
                        Key::from_bytes(b)
                            .ok_or_else(|| error(format!("the {what} key must be 16 or 32 bytes")))
                    };
                    (key(&c2s, "C2S")?, key(&s2c, "S2C")?)
                }
                (true, true) if matches!(session_key.len(), 16 | 32) => {
                    keys_from_session_key(&session_key[..16])
                }
                (true, true) => {
                    return Err(error(
                        "a session key alone must be 16 or 32 bytes".to_string(),
                    ))
                }
                _ => {
                    return Err(error(
                        "give both decryption keys (S2C and C2S) or neither".to_string(),
                    ))
                }
            };
            let alone = fields[2].trim().trim_matches('"').is_empty();
            let session_key = alone.then(|| {
                let mut bytes = [0; 32];
                bytes[..session_key.len()].copy_from_slice(&session_key);
                SessionKey {
                    bytes,
                    len: session_key.len() as u8,
                }
            });
            keys.sessions.push(Session {
                id: u64::from_le_bytes(id),
                c2s,
                s2c,
                session_key,
            });
        }
        Ok(keys)
    }

    /// Whether no session has keys.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Whether some session has its session key alone: its keys, if it is an SMB 3.1.1
    /// one, come from its negotiation, which only the owner of its connection sees in order.
    pub fn need_negotiation(&self) -> bool {
        self.sessions.iter().any(|s| s.session_key.is_some())
    }

    /// The keys of session `id`: those derived for it on this connection (`derived`)
    /// first, then the file's.
    fn find<'a>(&'a self, derived: &'a [Session], id: u64) -> Option<&'a Session> {
        derived
            .iter()
            .find(|s| s.id == id)
            .or_else(|| self.sessions.iter().find(|s| s.id == id))
    }

    /// The file's keys of session `id`.
    pub fn session(&self, id: u64) -> Option<&Session> {
        self.find(&[], id)
    }

    /// How many sessions have keys.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Adds the sessions of `other` (a later key file); a session already known keeps
    /// its first keys.
    pub fn extend(&mut self, other: Keys) {
        for s in other.sessions {
            if !self.sessions.iter().any(|k| k.id == s.id) {
                self.sessions.push(s);
            }
        }
    }

    /// Decrypts transform message `message` (its header and ciphertext, whole), sent to
    /// the server (`to_server`) or by it, into `plain`.
    pub fn decrypt<'p>(
        &self,
        message: &[u8],
        to_server: bool,
        plain: &'p mut [u8],
    ) -> Decrypted<'p> {
        self.decrypt_among(&[], message, to_server, plain)
    }

    /// [`Keys::decrypt`], with the keys `derived` for this connection's sessions first.
    pub fn decrypt_among<'p>(
        &self,
        derived: &[Session],
        message: &[u8],
        to_server: bool,
        plain: &'p mut [u8],
    ) -> Decrypted<'p> {
        let Some(header) = message.get(..TRANSFORM_LEN) else {
            return Decrypted::NoKey;
        };
        let session = u64::from_le_bytes(header[44..52].try_into().unwrap_or([0; 8]));
        let Some(keys) = self.find(derived, session) else {
            return Decrypted::NoKey;
        };
        let size = u32::from_le_bytes(header[36..40].try_into().unwrap_or([0; 4])) as usize;
        let Some(cipher) = message.get(TRANSFORM_LEN..TRANSFORM_LEN + size) else {
            return Decrypted::Failed(session);
        };
        let Some(out) = plain.get_mut(..size) else {
            return Decrypted::Failed(session);
        };
        let key = keys.key(to_server);
        let (tag, nonce, aad) = (&header[4..20], &header[20..36], &header[20..52]);
        for gcm in [true, false] {
            out.copy_from_slice(cipher);
            if open(key, gcm, nonce, aad, tag, out) {
                return Decrypted::Plain(out);
            }
        }
        Decrypted::Failed(session)
    }
}

impl Keys {
    /// The SMB2 header of a transform message longer than its segment (a large READ or
    /// WRITE), from the first blocks of its ciphertext (`message`, as far as the segment
    /// holds it): both modes encrypt with a counter, so the first bytes decrypt alone. Up
    /// to 128 are decrypted (a request's file id is in its body), at least the header's 64.
    /// The tag covers the whole message and is not checked; the header is taken only if
    /// it reads as one (its protocol id and structure size: 48 bits that a wrong key or
    /// mode matches once in 2^48 tries).
    pub fn peek_header(&self, message: &[u8], to_server: bool) -> Option<([u8; 128], usize)> {
        self.peek_among(&[], message, to_server)
    }

    /// [`Keys::peek_header`], with the keys `derived` for this connection's sessions first.
    pub fn peek_among(
        &self,
        derived: &[Session],
        message: &[u8],
        to_server: bool,
    ) -> Option<([u8; 128], usize)> {
        let header = message.get(..TRANSFORM_LEN)?;
        let session = u64::from_le_bytes(header[44..52].try_into().ok()?);
        let keys = self.find(derived, session)?;
        let cipher = message.get(TRANSFORM_LEN..)?;
        let n = cipher.len().min(128);
        if n < 64 {
            return None;
        }
        let mut first = [0u8; 128];
        first[..n].copy_from_slice(&cipher[..n]);
        let key = keys.key(to_server);
        let nonce = &header[20..36];
        for gcm in [true, false] {
            // GCM counts from the nonce's 12 bytes and 2 (1 is the tag's); CCM from the
            // flags byte 3 (a 4-byte counter), the nonce's 11 bytes and 1.
            let mut iv = [0u8; 16];
            if gcm {
                iv[..12].copy_from_slice(&nonce[..12]);
                iv[15] = 2;
            } else {
                iv[0] = 3;
                iv[1..12].copy_from_slice(&nonce[..11]);
                iv[15] = 1;
            }
            let mut block = first;
            match key {
                Key::Aes128(k) => ctr::Ctr32BE::<Aes128>::new(k.into(), &iv.into())
                    .apply_keystream(&mut block[..n]),
                Key::Aes256(k) => ctr::Ctr32BE::<Aes256>::new(k.into(), &iv.into())
                    .apply_keystream(&mut block[..n]),
            }
            if block[..4] == [0xfe, b'S', b'M', b'B'] && block[4..6] == [64, 0] {
                return Some((block, n));
            }
        }
        None
    }
}

/// What decrypting a transform message gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Decrypted<'p> {
    /// No key for its session: it stays encrypted.
    NoKey,
    /// The session has keys, but the tag does not verify (or the message is cut short).
    Failed(u64),
    /// The SMB2 message inside.
    Plain(&'p [u8]),
}

/// Decrypts `buf` in place and verifies its tag, in GCM (12-byte nonce) or CCM (11-byte
/// nonce) mode.
fn open(key: &Key, gcm: bool, nonce: &[u8], aad: &[u8], tag: &[u8], buf: &mut [u8]) -> bool {
    let tag = GenericArray::from_slice(tag);
    match (key, gcm) {
        (Key::Aes128(k), true) => AesGcm::<Aes128, U12>::new(GenericArray::from_slice(k))
            .decrypt_in_place_detached(GenericArray::from_slice(&nonce[..12]), aad, buf, tag)
            .is_ok(),
        (Key::Aes256(k), true) => AesGcm::<Aes256, U12>::new(GenericArray::from_slice(k))
            .decrypt_in_place_detached(GenericArray::from_slice(&nonce[..12]), aad, buf, tag)
            .is_ok(),
        (Key::Aes128(k), false) => Ccm::<Aes128, U16, U11>::new(GenericArray::from_slice(k))
            .decrypt_in_place_detached(GenericArray::from_slice(&nonce[..11]), aad, buf, tag)
            .is_ok(),
        (Key::Aes256(k), false) => Ccm::<Aes256, U16, U11>::new(GenericArray::from_slice(k))
            .decrypt_in_place_detached(GenericArray::from_slice(&nonce[..11]), aad, buf, tag)
            .is_ok(),
    }
}

/// Encrypts `plain` into a whole transform message for `session`: for tests and the
/// fixture generator (the nonce is the caller's; a real sender never repeats one).
pub fn seal(key: &Key, gcm: bool, session: u64, nonce: [u8; 16], plain: &[u8]) -> Option<Vec<u8>> {
    let mut m = vec![0u8; TRANSFORM_LEN];
    m[..4].copy_from_slice(&[0xfd, b'S', b'M', b'B']);
    m[20..36].copy_from_slice(&nonce);
    m[36..40].copy_from_slice(&u32::try_from(plain.len()).unwrap_or(u32::MAX).to_le_bytes());
    m[42..44].copy_from_slice(&1u16.to_le_bytes());
    m[44..52].copy_from_slice(&session.to_le_bytes());
    let mut buf = plain.to_vec();
    let aad = m[20..52].to_vec();
    let tag = match (key, gcm) {
        (Key::Aes128(k), true) => AesGcm::<Aes128, U12>::new(GenericArray::from_slice(k))
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce[..12]), &aad, &mut buf),
        (Key::Aes256(k), true) => AesGcm::<Aes256, U12>::new(GenericArray::from_slice(k))
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce[..12]), &aad, &mut buf),
        (Key::Aes128(k), false) => Ccm::<Aes128, U16, U11>::new(GenericArray::from_slice(k))
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce[..11]), &aad, &mut buf),
        (Key::Aes256(k), false) => Ccm::<Aes256, U16, U11>::new(GenericArray::from_slice(k))
            .encrypt_in_place_detached(GenericArray::from_slice(&nonce[..11]), &aad, &mut buf),
    }
    .ok()?;
    m[4..20].copy_from_slice(&tag);
    m.extend_from_slice(&buf);
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        hex_field(s).unwrap()
    }

    #[test]
    fn key_file_lines_and_their_errors() {
        let text = "# from Wireshark\n\n\"0100000000000000\",\"000102030405060708090a0b0c0d0e0f\",\"\",\"\"\n0200000000000000,00,101112131415161718191a1b1c1d1e1f,202122232425262728292a2b2c2d2e2f\n";
        let keys = Keys::parse(text, "k").unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.sessions[0].id, 1);
        assert_eq!(keys.sessions[1].id, 2);
        assert_eq!(
            keys.sessions[1].s2c,
            Key::from_bytes(&hex("101112131415161718191a1b1c1d1e1f")).unwrap()
        );
        let err = |t: &str| Keys::parse(t, "keys.txt").unwrap_err().to_string();
        assert_eq!(
            err("# c\n01,02\n"),
            "key file keys.txt:2: expected SESSION_ID,SESSION_KEY,S2C_KEY,C2S_KEY, found 2 fields"
        );
        assert_eq!(
            err("0100,00,\"\",\"\"\n"),
            "key file keys.txt:1: the session id must be 8 bytes (16 hex digits)"
        );
        assert_eq!(
            err("0100000000000000,zz,\"\",\"\"\n"),
            "key file keys.txt:1: \"zz\" is not hex bytes"
        );
        assert_eq!(
            err("0100000000000000,00,0011,\"\"\n"),
            "key file keys.txt:1: give both decryption keys (S2C and C2S) or neither"
        );
        assert_eq!(
            err("0100000000000000,00112233445566778899,\"\",\"\"\n"),
            "key file keys.txt:1: a session key alone must be 16 or 32 bytes"
        );
        // A session key alone, of 16 or 32 bytes (Kerberos's for AES-256 sessions): its
        // SMB 3.0 keys from its first 16 bytes, and SMB 3.1.1 ones from the negotiation.
        let long = Keys::parse(
            &format!(
                "0300000000000000,{}{},,\n",
                "ab".repeat(16),
                "cd".repeat(16)
            ),
            "k",
        )
        .unwrap();
        assert!(long.need_negotiation() && keys.need_negotiation());
        assert_eq!(long.sessions[0].c2s, keys_from_session_key(&[0xab; 16]).0);
        let derived = long.sessions[0].negotiated(&[5; 64], true).unwrap();
        let mut whole = [0xab; 32];
        whole[16..].fill(0xcd);
        let bytes = kdf(&whole, b"SMBC2SCipherKey\0", &[5; 64], 256);
        assert_eq!(derived.c2s, Key::Aes256(bytes));
        assert_eq!(keys.sessions[1].negotiated(&[5; 64], false), None);
        // Keys never print.
        assert!(!format!("{keys:?}").contains("1011"));
    }

    #[test]
    fn each_cipher_opens_what_it_sealed_and_a_wrong_key_opens_nothing() {
        let plain = b"\xfeSMB an SMB2 message of some length, at least one block".to_vec();
        for key in [Key::Aes128([7; 16]), Key::Aes256([9; 32])] {
            for gcm in [true, false] {
                let keys = Keys {
                    sessions: vec![Session {
                        id: 0x1122,
                        c2s: key.clone(),
                        s2c: Key::Aes128([1; 16]),
                        session_key: None,
                    }],
                };
                let sealed = seal(&key, gcm, 0x1122, [3; 16], &plain).unwrap();
                let mut out = [0u8; 128];
                assert_eq!(
                    keys.decrypt(&sealed, true, &mut out),
                    Decrypted::Plain(&plain[..])
                );
                // The other direction's key: the tag does not verify.
                assert_eq!(
                    keys.decrypt(&sealed, false, &mut out),
                    Decrypted::Failed(0x1122)
                );
                let mut other = sealed.clone();
                other[44] ^= 1;
                assert_eq!(keys.decrypt(&other, true, &mut out), Decrypted::NoKey);
            }
        }
    }

    proptest::proptest! {
        /// Hostile transform messages with random keys: never a panic, never a plaintext
        /// (a forged tag does not verify), a failure counted for a session with keys.
        #[test]
        fn hostile_transform_messages_decrypt_to_nothing(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            key in proptest::prelude::any::<[u8; 16]>(),
            size in 0u32..300,
        ) {
            let keys = Keys {
                sessions: vec![Session { id: 7, c2s: Key::Aes128(key), s2c: Key::Aes256([key[0]; 32]), session_key: None }],
            };
            let mut m = body.clone();
            if m.len() >= TRANSFORM_LEN {
                m[36..40].copy_from_slice(&size.to_le_bytes());
                m[44..52].copy_from_slice(&7u64.to_le_bytes());
            }
            let mut out = [0u8; 512];
            for to_server in [true, false] {
                let got = keys.decrypt(&m, to_server, &mut out);
                proptest::prop_assert!(!matches!(got, Decrypted::Plain(_)));
                if m.len() >= TRANSFORM_LEN {
                    proptest::prop_assert_eq!(got, Decrypted::Failed(7));
                }
            }
        }
    }

    #[test]
    fn the_header_of_a_long_message_decrypts_from_its_first_blocks() {
        let mut plain = vec![0u8; 3000];
        plain[..4].copy_from_slice(&[0xfe, b'S', b'M', b'B']);
        plain[4] = 64;
        plain[12] = 8;
        for key in [Key::Aes128([7; 16]), Key::Aes256([9; 32])] {
            for gcm in [true, false] {
                let keys = Keys {
                    sessions: vec![Session {
                        id: 5,
                        c2s: Key::Aes128([1; 16]),
                        s2c: key.clone(),
                        session_key: None,
                    }],
                };
                let sealed = seal(&key, gcm, 5, [4; 16], &plain).unwrap();
                // The first segment holds the transform header and 1,000 bytes of it.
                let (block, n) = keys.peek_header(&sealed[..1052], false).unwrap();
                assert_eq!(n, 128);
                assert_eq!(block[..], plain[..128]);
                assert_eq!(keys.peek_header(&sealed[..1052], true), None);
                assert_eq!(keys.peek_header(&sealed[..100], false), None);
            }
        }
    }

    /// Microsoft's worked example ("Encryption in SMB 3.0: a protocol perspective",
    /// Open Specifications blog): session key B4546771..., the client's encryption key
    /// (what it sends, the server's decryption key: C2S) 261B7235..., its decryption key
    /// (S2C) 8FE2B57E....
    #[test]
    fn smb30_keys_match_microsofts_example() {
        let (c2s, s2c) = keys_from_session_key(&hex("b4546771b515f766a86735532dd6c4f0"));
        let expect = |s: &str| Key::from_bytes(&hex(s)).unwrap();
        assert_eq!(c2s, expect("261b72350558f2e9dcf613070383edbf"));
        assert_eq!(s2c, expect("8fe2b57ec34d2db5b1a9727f526bbdb5"));
    }

    /// Microsoft's AES-128-GCM example ("SMB 3.1.1 Encryption in Windows 10", Open
    /// Specifications blog, appendix A.1): a WRITE request of session 0x0000100000000025
    /// and the transform message it becomes.
    #[test]
    fn gcm_matches_microsofts_example() {
        let key = Key::from_bytes(&hex("a2f5e80e5d59103034f32e52f698e5ec")).unwrap();
        let plain = hex(concat!(
            "fe534d4240000100000000000900010008000000000000000500000000000000fffe000001000000",
            "25000000001000000000000000000000000000000000000031007000170000000000000000000000",
            "0600000004000000010000000400000000000000000000007000000000000000536d623320656e63",
            "72797074696f6e2074657374696e67",
        ));
        let sealed = hex(concat!(
            "fd534d42bd73d97d2bc9001bcafac0fdff5feebcc7d6822d269caf48904c664c0000000087000000",
            "0000010025000000001000006ecdd2a7afc7b47763057a041b8fd4daffe990b70c9e09d36c084e02",
            "d14ef247f8bde38acf6256f8b1d3b56f77fbdeb312fea5e92cbcc1ed8fb2ebbfaa75e49a4a394bb4",
            "4576545567c24d4c014d47c9fbdfdafd2c4f9b72f8d256452620a299f48e29e53d6b61d1c13a19e9",
            "1af013f00d17e3abc2fc3d36c8c1b6b93973253852dbd442e46ee8",
        ));
        let mut nonce = [0u8; 16];
        nonce[..12].copy_from_slice(&hex("c7d6822d269caf48904c664c"));
        assert_eq!(
            seal(&key, true, 0x0000_1000_0000_0025, nonce, &plain).unwrap(),
            sealed
        );
        let keys = Keys {
            sessions: vec![Session {
                id: 0x0000_1000_0000_0025,
                c2s: key,
                s2c: Key::Aes128([0; 16]),
                session_key: None,
            }],
        };
        let mut out = [0u8; 256];
        assert_eq!(
            keys.decrypt(&sealed, true, &mut out),
            Decrypted::Plain(&plain[..])
        );
    }

    #[test]
    fn smb30_keys_come_from_the_session_key() {
        // The derivation is HMAC-SHA256 over 1, the label, 0, the context and L: its
        // first 16 bytes, checked against an independent computation (Python's hmac).
        let (c2s, s2c) = keys_from_session_key(&[0x11; 16]);
        let expect = |s: &str| Key::from_bytes(&hex(s)).unwrap();
        assert_eq!(c2s, expect(C2S_OF_0X11));
        assert_eq!(s2c, expect(S2C_OF_0X11));
    }

    /// KDF(16 × 0x11, "SMB2AESCCM\0", "ServerIn \0" / "ServerOut\0", 128), by Python's
    /// `hmac.new(key, b"\0\0\0\1" + label + b"\0" + context + b"\0\0\0\x80", "sha256")`.
    const C2S_OF_0X11: &str = "802d75cc3b7b7239ec7a995c480ae29b";
    const S2C_OF_0X11: &str = "24951ddaacd61b80c3b83c8bfae3447e";
}
