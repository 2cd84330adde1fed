//! A fast reader for classic pcap files: large block reads, record headers parsed in place,
//! and each block handed on whole as a batch's arena, so no frame is copied.
//!
//! From a regular file it reads only what it is sure libpcap would read the same way: a
//! classic pcap header (version 2.4, micro- or nanosecond magic, either byte order) of a link
//! type portscope decodes. At anything unusual (a record longer than the snapshot length,
//! a file cut short) it hands over to libpcap, positioned after the frames already delivered,
//! so the frames and the error messages are libpcap's own. A test checks that both readers
//! give byte-identical reports on every fixture and every capture of the shared corpus.
//!
//! A stream (a compressed file, standard input) cannot be reopened, so there it follows
//! libpcap's rules itself: a record longer than the snapshot length keeps the snapshot
//! length, one longer than 262,144 bytes or cut short ends the input with libpcap's message.

use super::filter::{Filtered, Program};
use super::input::Input;
use super::offline::PcapFile;
use super::{ts_ns, Batch, Error, Fill, Frame, Source};
use crate::decode::Link;

/// libpcap's largest snapshot length for the link types read here.
const MAX_SNAPLEN: u32 = 262_144;
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

enum Handover {
    None,
    Pending,
    Libpcap(Box<PcapFile>),
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

    /// Reads `input` if it starts with a classic pcap header. A plain file with anything
    /// unusual (a version other than 2.4, a link type outside [`LINKTYPES`]) is refused
    /// (given back) so that libpcap reads it; a stream is read whatever its link type, as
    /// it cannot be reopened.
    ///
    /// # Errors
    /// The input, when it is not for this reader.
    pub(super) fn new(input: Input) -> Result<FastPcap, Box<Input>> {
        let Some(header) = input.head().get(..24) else {
            return Err(Box::new(input));
        };
        let magic = [header[0], header[1], header[2], header[3]];
        let (swapped, nano) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            _ => return Err(Box::new(input)),
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
        let linktype = u32_at(20);
        let usual = version == (2, 4) && LINKTYPES.contains(&linktype);
        if input.plain_file && !usual || version.0 != 2 {
            return Err(Box::new(input));
        }
        let Ok(dlt) = i32::try_from(linktype & 0x03ff_ffff) else {
            return Err(Box::new(input));
        };
        let snaplen = u32_at(16);
        let mut input = input;
        input.skip_head(24);
        Ok(FastPcap {
            input,
            link: Link::from_dlt(dlt),
            swapped,
            nano,
            lengths: match version {
                (2, 0..=2) => Lengths::Swapped,
                (2, 3) => Lengths::Maybe,
                _ => Lengths::InOrder,
            },
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
    fn lengths_of(&self, header: &[u8]) -> (u32, u32) {
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
        let stream = !self.input.plain_file;
        let mut at = 0;
        let mut anomaly = None;
        while let Some(header) = data[..valid].get(at..at + 16) {
            let (caplen, wire_len) = self.lengths_of(header);
            if caplen > limit && (!stream || caplen > MAX_SNAPLEN) {
                // libpcap refuses such a record (or, from a file, decides itself).
                anomaly = Some(format!(
                    "invalid packet capture length {caplen}, bigger than maximum of {MAX_SNAPLEN}"
                ));
                break;
            }
            let end = at + 16 + caplen as usize;
            if end > valid {
                break;
            }
            let start = at + 16;
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
                let message = anomaly.unwrap_or_else(|| match rest {
                    ..16 => format!(
                        "truncated dump file; tried to read 16 header bytes, only got {rest}"
                    ),
                    _ => format!(
                        "truncated dump file; tried to read {} captured bytes, only got {}",
                        self.lengths_of(&data[at..at + 16]).0,
                        rest - 16
                    ),
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
