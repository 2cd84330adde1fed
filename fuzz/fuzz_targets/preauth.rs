//! A connection's segments, whatever their bytes, through the SMB 3.1.1 negotiation
//! tracker with a session key given alone, then decrypted with what it derived: no panic,
//! and its state stays within its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portscope::inspect::smb::crypt::Keys;
use portscope::inspect::smb::preauth::{Negotiation, MAX_DERIVED};
use portscope::inspect::smb::{segment_decrypting, Crypt};

fuzz_target!(|data: &[u8]| {
    let Ok(keys) = Keys::parse(
        "6891861800000000,001371d33c097876c0c8ea272205892b,\"\",\"\"\n",
        "fuzz",
    ) else {
        return;
    };
    let mut n = Negotiation::default();
    let mut plain = vec![0u8; portscope::inspect::smb::crypt::MAX_PLAIN];
    // Segments: a byte of flags (direction; whether the capture cut the segment), a
    // sequence-number step, a length, then the bytes.
    let mut rest = data;
    let mut seq = [0u32; 2];
    while let [flags, step, len, more @ ..] = rest {
        let len = usize::from(*len).min(more.len());
        let (payload, after) = more.split_at(len);
        rest = after;
        let to_server = flags & 1 == 0;
        let side = usize::from(!to_server);
        seq[side] = seq[side].wrapping_add(u32::from(*step));
        let wire = u32::try_from(len).unwrap_or(0) + u32::from(flags >> 6);
        n.segment(to_server, seq[side], payload, wire, &keys);
        let crypt = Crypt {
            keys: &keys,
            derived: &n.derived,
            to_server,
            plain: &mut plain,
        };
        let _ = segment_decrypting(payload, wire, Some(crypt), |_| {});
        assert!(n.derived.len() <= MAX_DERIVED);
    }
});
