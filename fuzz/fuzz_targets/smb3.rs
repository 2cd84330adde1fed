//! Encrypted SMB3 segments with random keys (`--smb-keys`): the key file line the input
//! starts with, then a transform message of that session (whole, or cut short by the
//! segment), through the decrypting SMB parser in both directions: no panic, and no
//! event from a message whose tag cannot have been made with the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portscope::inspect::smb::crypt::Keys;
use portscope::inspect::smb::{segment_decrypting, Crypt};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    // 32 key bytes (a 16-byte key for each direction, or one 32-byte key for both), the
    // session id, a byte choosing the key size and how much of the message the segment
    // holds, then the transform header's rest and the ciphertext.
    if data.len() < 41 {
        return;
    }
    let (keys, rest) = data.split_at(32);
    let (session, rest) = rest.split_at(8);
    let (choice, rest) = (rest[0], &rest[1..]);
    let line = if choice & 1 == 0 {
        format!(
            "{},{},{},{}\n",
            hex(session),
            hex(&[0; 16]),
            hex(&keys[..16]),
            hex(&keys[16..])
        )
    } else {
        format!(
            "{},{},{},{}\n",
            hex(session),
            hex(&[0; 16]),
            hex(keys),
            hex(keys)
        )
    };
    let Ok(keys) = Keys::parse(&line, "fuzz") else {
        return;
    };
    // A session message: its length, the transform protocol id, the fuzzed header bytes
    // with the session id in place, the ciphertext.
    let mut message = vec![0xfd, b'S', b'M', b'B'];
    message.extend_from_slice(rest);
    message.resize(message.len().max(52), 0);
    message[44..52].copy_from_slice(session);
    let mut payload = u32::try_from(message.len())
        .unwrap_or(0)
        .to_be_bytes()
        .to_vec();
    payload[0] = 0;
    payload.extend_from_slice(&message);
    // The segment holds all of it, or only its start.
    let cut = if choice & 2 == 0 {
        payload.len()
    } else {
        payload.len().min(4 + 52 + usize::from(choice >> 2) * 4)
    };
    let segment = &payload[..cut];
    let mut plain = vec![0u8; portscope::inspect::smb::crypt::MAX_PLAIN];
    for to_server in [true, false] {
        let crypt = Crypt {
            keys: &keys,
            derived: &[],
            to_server,
            plain: &mut plain,
        };
        let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
        let _ = segment_decrypting(segment, len, Some(crypt), |_| {});
    }
});
