//! A fast reader for classic pcap files: large block reads, record headers parsed in place,
//! and each block handed on whole as a batch's arena, so no frame is copied.
//!
//! It reads only what it is sure libpcap would read the same way: a regular file with a
//! classic pcap header (version 2.4, micro- or nanosecond magic, either byte order) of a link
//! type portscope decodes. At anything unusual (a record longer than the snapshot length,
//! a file cut short) it hands over to libpcap, positioned after the frames already delivered,
//! so the frames and the error messages are libpcap's own. A test checks that both readers
//! give byte-identical reports on every fixture and every capture of the shared corpus.

use super::filter::{Filtered, Program};
use super::offline::PcapFile;
use super::{ts_ns, Batch, Error, Fill, Frame, Source};
use crate::decode::Link;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Bytes read per block (and so, roughly, per batch).
const BLOCK: usize = 1 << 20;
/// libpcap's largest snapshot length for the link types read here.
const MAX_SNAPLEN: u32 = 262_144;
/// Link types (as written in the file) read here; anything else goes to libpcap, which
/// also maps LINKTYPE values to DLT values.
const LINKTYPES: [u32; 10] = [1, 0, 108, 101, 228, 229, 113, 276, 9, 104];

/// A classic pcap file read in blocks.
pub struct FastPcap {
    name: String,
    file: File,
    link: Link,
    swapped: bool,
    nano: bool,
    snaplen: u32,
    /// The start of a record the last block cut.
    carry: Vec<u8>,
    /// Records read so far (passed or filtered out): where libpcap takes over.
    delivered: u64,
    /// `classify -f`: frames it rejects are skipped in place (and counted).
    filter: Option<Program>,
    /// libpcap takes over after an anomaly: `Pending` until the frames before it are out.
    handover: Handover,
}

enum Handover {
    None,
    Pending,
    Libpcap(Box<PcapFile>),
}

impl FastPcap {
    /// Opens `path` if the fast reader can read it; `None` means "use libpcap".
    pub fn open(path: &str) -> Option<FastPcap> {
        if path == "-" || !Path::new(path).metadata().ok()?.is_file() {
            return None;
        }
        let mut file = File::open(path).ok()?;
        let mut header = [0u8; 24];
        file.read_exact(&mut header).ok()?;
        let magic = [header[0], header[1], header[2], header[3]];
        let (swapped, nano) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            _ => return None,
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
        if (u16_at(4), u16_at(6)) != (2, 4) {
            return None;
        }
        let linktype = u32_at(20);
        if !LINKTYPES.contains(&linktype) {
            return None;
        }
        Some(FastPcap {
            name: path.to_string(),
            file,
            link: Link::from_dlt(i32::try_from(linktype).ok()?),
            swapped,
            nano,
            snaplen: u32_at(16),
            carry: Vec::new(),
            delivered: 0,
            filter: None,
            handover: Handover::None,
        })
    }

    /// Keeps only the frames `filter` passes (compiled for this file's link type).
    pub fn set_filter(&mut self, filter: Program) {
        self.filter = Some(filter);
    }

    /// Fills `buf` from the file; how much it read (less than asked only at the end).
    fn read_block(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.file.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    fn hand_over(&mut self, batch: &mut Batch) -> Fill {
        let mut libpcap = match PcapFile::open(&self.name) {
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
        &self.name
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
        // The arena keeps its length from batch to batch, so it is zeroed once, when it
        // grows, and never again: the block is read over whatever it held.
        batch.clear_frames(self.link);
        let (data, frames) = batch.parts_mut();
        let carried = self.carry.len();
        if data.len() < carried + BLOCK {
            data.resize(carried + BLOCK, 0);
        }
        data[..carried].copy_from_slice(&self.carry);
        self.carry.clear();
        let got = match self.read_block(&mut data[carried..carried + BLOCK]) {
            Ok(got) => got,
            Err(e) => return Fill::Failed(e.to_string()),
        };
        let ended = got < BLOCK;
        let valid = carried + got;
        let limit = if self.snaplen == 0 {
            MAX_SNAPLEN
        } else {
            self.snaplen.min(MAX_SNAPLEN)
        };
        let mut at = 0;
        let mut anomaly = false;
        while let Some(header) = data[..valid].get(at..at + 16) {
            let caplen = read_u32(&header[8..12], self.swapped);
            if caplen > limit {
                // libpcap truncates or refuses such a record: let it decide.
                anomaly = true;
                break;
            }
            let end = at + 16 + caplen as usize;
            if end > valid {
                break;
            }
            let start = at + 16;
            at = end;
            self.delivered += 1;
            let wire_len = read_u32(&header[12..16], self.swapped);
            if let Some(filter) = &mut self.filter {
                if !filter.pass(&data[start..end], wire_len) {
                    continue;
                }
            }
            // The file's fields are signed 32-bit (bpf_int32), converted as libpcap does.
            let signed = |at: usize| i64::from(read_u32(&header[at..at + 4], self.swapped) as i32);
            let frac = signed(4);
            frames.push(Frame {
                ts_ns: ts_ns(signed(0), if self.nano { frac } else { frac * 1000 }),
                wire_len,
                start: u32::try_from(start).unwrap_or(u32::MAX),
                len: caplen,
            });
        }
        let rest = valid - at;
        if anomaly || (ended && rest > 0) {
            // A record libpcap may read differently, or a file cut inside a record.
            self.handover = Handover::Pending;
            return Fill::More;
        }
        self.carry.extend_from_slice(&data[at..valid]);
        if ended {
            Fill::Done
        } else {
            Fill::More
        }
    }
}
