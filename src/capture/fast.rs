//! A fast reader for classic pcap files: large block reads, record headers parsed in place,
//! and each block handed on whole as a batch's arena, so no frame is copied.
//!
//! It reads the variants of classic pcap tshark reads (see [`FastPcap::new`]); from a
//! regular file in standard pcap it reads only what it is sure libpcap would read the same
//! way: version 2.4, micro- or nanosecond magic, either byte order, a link type portscope
//! decodes. At anything unusual (a record longer than the snapshot length,
//! a file cut short) it hands over to libpcap, positioned after the frames already delivered,
//! so the frames and the error messages are libpcap's own. A test checks that both readers
//! give byte-identical reports on every fixture and every capture of the shared corpus.
//!
//! A stream (a compressed file, standard input) cannot be reopened, and libpcap cannot read
//! the variants, so for those it follows
//! libpcap's rules itself: a record longer than the snapshot length keeps the snapshot
//! length, one longer than 262,144 bytes or cut short ends the input with libpcap's message.

use super::filter::{Filtered, Program};
use super::input::Input;
use super::offline::PcapFile;
use super::{ts_ns, Batch, Error, Fill, Frame, Source};
use crate::decode::Link;

/// libpcap's largest snapshot length for the link types read here.
const MAX_SNAPLEN: u32 = super::FRAME_BYTES as u32;
/// Link types (as written in the file) read here from a plain file; anything else goes to
/// libpcap, which also maps LINKTYPE values to DLT values.
const LINKTYPES: [u32; 10] = [1, 0, 108, 101, 228, 229, 113, 276, 9, 104];

/// A classic pcap file read in blocks.
pub struct FastPcap {
    input: Input,
    link: Link,
    swapped: bool,
    nano: bool,
    /// Before version 2.3 the captured and wire lengths stood in the other order; in 2.3
    /// they may (libpcap's rule: a captured length above the wire length means swapped).
    lengths: Lengths,
    snaplen: u32,
    /// A record header's length: 16, or more in the variants.
    record: usize,
    /// Read by libpcap's rules here, never handed over: a stream (which cannot be
    /// reopened), or a variant libpcap cannot read.
    own_rules: bool,
    /// Records read so far (passed or filtered out): where libpcap takes over.
    delivered: u64,
    /// `classify -f`: frames it rejects are skipped in place (and counted).
    filter: Option<Program>,
    /// libpcap takes over after an anomaly: `Pending` until the frames before it are out.
    handover: Handover,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lengths {
    InOrder,
    Swapped,
    Maybe,
}

/// Why [`FastPcap::new`] did not take an input.
pub(super) enum Refusal {
    /// Not classic pcap, or a plain file libpcap reads: the input, for another reader.
    NotMine(Box<Input>),
    /// A pcap header of a kind nothing reads.
    Format(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Magic {
    Standard,
    Nano,
    Modified,
    Ixia,
}

/// The record header layouts of classic pcap: the standard 16 bytes, and the variants
/// that add fields after them (Wireshark's wiretap/libpcap.c names them).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    Pcap,
    /// Alexey Kuznetsov's patches of 1999-04-17 (Red Hat 6.1, standard magic) and
    /// 1999-10-29 (modified magic): interface index, protocol, packet type, a pad byte.
    Ss990417,
    /// The 1999-09-15 patch (SuSE 6.3, modified magic): those and five more bytes.
    Ss990915,
    /// Some Nokia firewalls: four bytes of unknown meaning.
    Nokia,
}

impl Variant {
    fn record_len(self) -> usize {
        match self {
            Variant::Pcap => 16,
            Variant::Ss990417 => 24,
            Variant::Ss990915 => 28,
            Variant::Nokia => 20,
        }
    }
}

/// The variants a standard and a modified magic may stand for, in Wireshark's order.
const STANDARD: [Variant; 3] = [Variant::Pcap, Variant::Ss990417, Variant::Nokia];
const MODIFIED: [Variant; 2] = [Variant::Ss990417, Variant::Ss990915];

/// Records the variant heuristic reads.
const TRIED_RECORDS: usize = 3;

/// Wireshark's choice among `variants`: the first whose first three records make sense,
/// else the one with the fewest oddities (the first of those). Peeks at the input's first
/// bytes (4 KiB, or 1 MiB when a record runs past them: three records of the largest
/// snapshot length fit).
fn guess(input: &mut Input, variants: &[Variant], swapped: bool, snaplen: u32) -> Variant {
    let mut merits = [0; 3];
    for want in [4096, super::input::BLOCK] {
        let got = input.peek(want).len();
        let ended = got < want || input.peeked_all();
        let head = input.head();
        let records = &head[head.len().min(24)..];
        let mut cut = false;
        for (merit, &v) in merits.iter_mut().zip(variants) {
            match oddities(records, ended, v, swapped, snaplen) {
                Some(m) => *merit = m,
                None => cut = true,
            }
        }
        if !cut {
            break;
        }
    }
    let merits = &merits[..variants.len()];
    let best = merits.iter().position(|&m| m == 0).unwrap_or_else(|| {
        let least = merits.iter().min().copied().unwrap_or(0);
        merits.iter().position(|&m| m == least).unwrap_or(0)
    });
    variants[best]
}

/// Wireshark's figure of merit (libpcap_try_record) for reading the first records of
/// `records` as `variant`: one for each field that makes no sense. `None` when `records`
/// ends inside them and more may follow (`!ended`).
fn oddities(
    records: &[u8],
    ended: bool,
    variant: Variant,
    swapped: bool,
    snaplen: u32,
) -> Option<u32> {
    let mut merit = 0;
    let mut at = 0;
    for _ in 0..TRIED_RECORDS {
        if at == records.len() {
            return Some(merit);
        }
        let header = variant.record_len();
        let Some(h) = records.get(at..at + header) else {
            // A short read: one more oddity, and the end.
            return ended.then_some(merit + 1);
        };
        let u32_at = |i: usize| read_u32(&h[i..i + 4], swapped);
        let (usec, incl, orig) = (u32_at(4), u32_at(8), u32_at(12));
        merit += u32::from(usec >= 1_000_000);
        let incl_ok = incl <= MAX_SNAPLEN;
        merit += u32::from(!incl_ok) + u32::from(incl > snaplen);
        merit += u32::from(orig > 128 << 20) + u32::from(incl > orig);
        match variant {
            Variant::Pcap => {}
            Variant::Ss990417 | Variant::Ss990915 => {
                let ifindex = u32_at(16);
                let p = [h[20], h[21]];
                let protocol = if swapped {
                    u16::from_be_bytes(p)
                } else {
                    u16::from_le_bytes(p)
                };
                let known = protocol >= 0x0600
                    || matches!(protocol, 0 | 0x60 | 0x200 | 0x400)
                    || (1..=0x17).contains(&protocol);
                merit += u32::from(ifindex > 10_000) + u32::from(!known) + u32::from(h[22] > 4);
            }
            Variant::Nokia => {
                // Read in the writer's order as Wireshark does (on a little-endian host).
                let stuff = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
                let seen = stuff & 0x0fff_00f0 == 0x0fbf_0000
                    && matches!(stuff & 0xf000_0000, 0x9000_0000 | 0xb000_0000)
                    && matches!(stuff & 0xf000, 0xb000 | 0xd000)
                    && matches!(stuff & 0x0f00, 0x0600 | 0x0900)
                    && matches!(stuff & 0xf, 1 | 2);
                merit += u32::from(!seen);
            }
        }
        if !incl_ok {
            return Some(merit);
        }
        at += header + incl as usize;
        if at > records.len() {
            return ended.then_some(merit + 1);
        }
    }
    Some(merit)
}

enum Handover {
    None,
    Pending,
    Libpcap(Box<PcapFile>),
}

/// A classic pcap file's magic: its kind, whether its times are in nanoseconds, and
/// whether it is in the other byte order; `None` for another file.
fn magic(bytes: [u8; 4]) -> Option<(Magic, bool, bool)> {
    let mut magic_le = u32::from_le_bytes(bytes);
    let other_order = magic_le.swap_bytes();
    let swapped = other_order & 0xffff_0000 == 0xa1b2_0000
        || matches!(other_order, 0x1c00_01ac | 0x1c00_01ab);
    if swapped {
        magic_le = other_order;
    }
    let (kind, nano) = match magic_le {
        0xa1b2_c3d4 => (Magic::Standard, false),
        0xa1b2_3c4d => (Magic::Nano, true),
        0xa1b2_cd34 => (Magic::Modified, false),
        // Ixia's lcap: 4 more header bytes (the records' size), hardware or software.
        0x1c00_01ac => (Magic::Ixia, true),
        0x1c00_01ab => (Magic::Ixia, false),
        _ => return None,
    };
    Some((kind, nano, swapped))
}

impl FastPcap {
    /// Opens `path` if the fast reader can read it; `None` means "use libpcap".
    pub fn open(path: &str) -> Option<FastPcap> {
        let input = Input::open(path).ok()?;
        if !input.plain_file {
            return None;
        }
        FastPcap::new(input).ok()
    }

    /// Reads `input` if it starts with a classic pcap header, of any variant tshark reads:
    /// the modified magic (Alexey Kuznetsov's patches, 8 or 12 more bytes per record), the
    /// standard magic with the Red Hat 6.1 or Nokia record headers (told apart by
    /// Wireshark's heuristic over the first three records), nanosecond, AIX and Ixia
    /// magics, either byte order, and versions 2.0 and later (2.0 to 2.3 and DG/UX's
    /// 543.0 with libpcap's swapped lengths).
    ///
    /// A plain file in standard pcap with anything unusual (a version other than 2.4, a
    /// link type outside [`LINKTYPES`]) is given back so that libpcap reads it; a stream,
    /// and any variant libpcap cannot read, is read here whatever its link type.
    ///
    /// # Errors
    /// [`Refusal::NotMine`]: the input, when it is not for this reader;
    /// [`Refusal::Format`]: a pcap header no reader can read.
    pub(super) fn new(input: Input) -> Result<FastPcap, Refusal> {
        let Some(header) = input.head().get(..24) else {
            return Err(Refusal::NotMine(Box::new(input)));
        };
        let Some((kind, nano, swapped)) = magic([header[0], header[1], header[2], header[3]])
        else {
            return Err(Refusal::NotMine(Box::new(input)));
        };
        let u16_at = |at: usize| {
            let b = [header[at], header[at + 1]];
            if swapped {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let u32_at = |at: usize| read_u32(&header[at..at + 4], swapped);
        let version = (u16_at(4), u16_at(6));
        let mut linktype = u32_at(20);
        let snaplen = u32_at(16);
        if version.0 < 2 {
            if input.plain_file {
                return Err(Refusal::NotMine(Box::new(input)));
            }
            return Err(Refusal::Format(format!(
                "pcap version {}.{} unsupported (archaic pcap savefile format)",
                version.0, version.1
            )));
        }
        let lengths = match version {
            (2, 0..=2) | (543, _) => Lengths::Swapped,
            (2, 3) => Lengths::Maybe,
            _ => Lengths::InOrder,
        };
        let mut input = input;
        let file_header = if kind == Magic::Ixia { 28 } else { 24 };
        let mut variant = Variant::Pcap;
        let mut aix = false;
        match kind {
            // AIX wrote version 2.2 and RFC 1573 ifType values: Ethernet 6, loopback 24
            // (token ring 9 and FDDI 15, which portscope does not decode, are mapped too).
            Magic::Standard if version == (2, 2) && matches!(linktype, 6 | 9 | 15 | 24) => {
                aix = true;
                linktype = match linktype {
                    6 => 1,
                    9 => 6,
                    15 => 10,
                    _ => 0,
                };
            }
            Magic::Standard if lengths == Lengths::InOrder => {
                variant = guess(&mut input, &STANDARD, swapped, snaplen);
            }
            Magic::Modified => variant = guess(&mut input, &MODIFIED, swapped, snaplen),
            _ => {}
        }
        // libpcap reads standard records of versions 2.0 to 2.4 and 543.0 itself.
        let libpcap_reads = variant == Variant::Pcap
            && !aix
            && matches!(kind, Magic::Standard | Magic::Nano)
            && (version.0 == 2 && version.1 <= 4 || version == (543, 0));
        let usual = libpcap_reads && version == (2, 4) && LINKTYPES.contains(&linktype);
        if input.plain_file && libpcap_reads && !usual {
            return Err(Refusal::NotMine(Box::new(input)));
        }
        let Ok(dlt) = i32::try_from(linktype & 0x03ff_ffff) else {
            return Err(Refusal::NotMine(Box::new(input)));
        };
        if input.peek(file_header).len() < file_header {
            return Err(Refusal::NotMine(Box::new(input)));
        }
        input.skip_head(file_header);
        Ok(FastPcap {
            own_rules: !input.plain_file || !libpcap_reads,
            input,
            link: Link::from_dlt(dlt),
            swapped,
            nano: nano || aix,
            lengths,
            record: variant.record_len(),
            snaplen,
            delivered: 0,
            filter: None,
            handover: Handover::None,
        })
    }

    /// Keeps only the frames `filter` passes (compiled for this file's link type).
    pub fn set_filter(&mut self, filter: Program) {
        self.filter = Some(filter);
    }

    /// A record header's captured and wire lengths.
    #[inline]
    fn lengths_of(&self, header: &[u8; 16]) -> (u32, u32) {
        let caplen = read_u32(&header[8..12], self.swapped);
        let wire_len = read_u32(&header[12..16], self.swapped);
        match self.lengths {
            Lengths::Swapped => (wire_len, caplen),
            Lengths::Maybe if caplen > wire_len => (wire_len, caplen),
            _ => (caplen, wire_len),
        }
    }

    fn hand_over(&mut self, batch: &mut Batch) -> Fill {
        let mut libpcap = match PcapFile::open(&self.input.name) {
            Ok(f) => f,
            Err(Error::Open { message, .. }) => return Fill::Failed(message),
            Err(e) => return Fill::Failed(e.to_string()),
        };
        if let Err(message) = libpcap.skip(self.delivered) {
            return Fill::Failed(message);
        }
        if let Some(filter) = self.filter.take() {
            libpcap.set_filter(filter);
        }
        let fill = libpcap.fill(batch);
        self.handover = Handover::Libpcap(Box::new(libpcap));
        fill
    }
}

fn read_u32(b: &[u8], swapped: bool) -> u32 {
    let w = [b[0], b[1], b[2], b[3]];
    if swapped {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

impl Source for FastPcap {
    fn name(&self) -> &str {
        &self.input.name
    }

    fn link(&self) -> Link {
        self.link
    }

    fn filtered(&self) -> Option<Filtered> {
        match &self.handover {
            Handover::Libpcap(libpcap) => libpcap.filtered(),
            _ => self.filter.as_ref().map(|f| f.filtered),
        }
    }

    fn fill(&mut self, batch: &mut Batch) -> Fill {
        match &mut self.handover {
            Handover::Libpcap(libpcap) => return libpcap.fill(batch),
            Handover::Pending => return self.hand_over(batch),
            Handover::None => {}
        }
        batch.clear_frames(self.link);
        let (data, frames) = batch.parts_mut();
        let (valid, ended) = match self.input.next_block(data) {
            Ok(got) => got,
            Err(message) => return Fill::Failed(message),
        };
        let limit = if self.snaplen == 0 {
            MAX_SNAPLEN
        } else {
            self.snaplen.min(MAX_SNAPLEN)
        };
        let stream = self.own_rules;
        let record = self.record;
        let mut at = 0;
        let mut anomaly = None;
        // The standard 16 bytes as an array (constant offsets); a variant's fields after
        // them are skipped.
        while at + record <= valid {
            let Some(header) = data
                .get(at..at + 16)
                .and_then(|h| <&[u8; 16]>::try_from(h).ok())
            else {
                break;
            };
            let (caplen, wire_len) = self.lengths_of(header);
            if caplen > limit && (!stream || caplen > MAX_SNAPLEN) {
                // libpcap refuses such a record (or, from a file, decides itself).
                anomaly = Some(format!(
                    "invalid packet capture length {caplen}, bigger than maximum of {MAX_SNAPLEN}"
                ));
                break;
            }
            let end = at + record + caplen as usize;
            if end > valid {
                break;
            }
            let start = at + record;
            // Longer than the snapshot length: libpcap keeps the snapshot length.
            let len = caplen.min(limit);
            // The file's fields are signed 32-bit (bpf_int32), converted as libpcap does.
            let signed = |at: usize| i64::from(read_u32(&header[at..at + 4], self.swapped) as i32);
            let frac = signed(4);
            let ts = ts_ns(signed(0), if self.nano { frac } else { frac * 1000 });
            at = end;
            self.delivered += 1;
            if let Some(filter) = &mut self.filter {
                if !filter.pass(&data[start..start + len as usize], wire_len) {
                    continue;
                }
            }
            frames.push(Frame {
                ts_ns: ts,
                wire_len,
                start: u32::try_from(start).unwrap_or(u32::MAX),
                len,
                link: 0,
            });
        }
        let rest = valid - at;
        if anomaly.is_some() || (ended && rest > 0) {
            if stream {
                // libpcap's messages, for the same cut or record.
                let message = anomaly.unwrap_or_else(|| {
                    if rest < record {
                        format!(
                            "truncated dump file; tried to read {record} header bytes, only got {rest}"
                        )
                    } else {
                        format!(
                            "truncated dump file; tried to read {} captured bytes, only got {}",
                            <&[u8; 16]>::try_from(&data[at..at + 16]).map_or(0, |h| self.lengths_of(h).0),
                            rest - record
                        )
                    }
                });
                return Fill::Failed(message);
            }
            // A record libpcap may read differently, or a file cut inside a record.
            self.handover = Handover::Pending;
            return Fill::More;
        }
        self.input.keep(data, at, valid);
        if ended {
            Fill::Done
        } else {
            Fill::More
        }
    }

    fn position(&self) -> Option<u64> {
        Some(self.input.consumed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three records of 60 bytes with `extra` after each standard header.
    fn records(extra: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..3u32 {
            for field in [1_700_000_000, 10 * i, 60, 60] {
                out.extend_from_slice(&u32::to_le_bytes(field));
            }
            out.extend_from_slice(extra);
            out.extend_from_slice(&[0x45; 60]);
        }
        out
    }

    #[test]
    fn the_heuristic_knows_each_record_layout() {
        // The Nokia bytes Wireshark has seen (0x9fbfb601), and editcap's zeros.
        let nokia = records(&0x9fbf_b601u32.to_le_bytes());
        let odd = |b: &[u8], v| oddities(b, true, v, false, 65535).unwrap();
        assert_eq!(odd(&nokia, Variant::Nokia), 0);
        assert!(odd(&nokia, Variant::Pcap) > 0);
        assert_eq!(odd(&records(&[0; 4]), Variant::Nokia), 3);
        // Interface 2, IPv4, packet type 0, pad.
        let modified = records(&[2, 0, 0, 0, 0x00, 0x08, 0, 0]);
        assert_eq!(odd(&modified, Variant::Ss990417), 0);
        assert!(odd(&modified, Variant::Pcap) > 0);
        assert!(odd(&modified, Variant::Ss990915) > 0);
        assert_eq!(odd(&records(&[]), Variant::Pcap), 0);
        // Cut inside the second record: more may follow, or the end is one oddity.
        let cut = &records(&[])[..100];
        assert_eq!(oddities(cut, false, Variant::Pcap, false, 65535), None);
        assert_eq!(oddities(cut, true, Variant::Pcap, false, 65535), Some(1));
    }
}
