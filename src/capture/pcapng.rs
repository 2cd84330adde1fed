//! portscope's own pcapng reader: the classic block reader's fast path for pcapng.
//!
//! Like [`super::FastPcap`], it reads 1 MiB blocks into the batch's arena and points the
//! frame table at the packets inside them, so no frame is copied. Every section keeps its
//! own byte order and interfaces; each interface its link type, snapshot length, timestamp
//! resolution (`if_tsresol`) and offset (`if_tsoffset`), so one file may mix link types
//! (which libpcap refuses): each frame names its link type by an index into the batch's
//! list ([`Batch::link_of`]). Enhanced, simple and obsolete packet blocks are read in place;
//! interface descriptions and statistics (whose drop counts are reported) are parsed with
//! `pcap-parser`; other blocks are skipped. A block whose length lies, a packet naming an
//! interface its section does not describe, or a file cut inside a block ends the input
//! with one message naming the block's offset; the packets before it are delivered.

use super::filter::{Filter, Filtered, Program};
use super::input::Input;
use super::{Batch, Drops, Fill, Frame, Source};
use crate::decode::Link;
use pcap_parser::pcapng::{
    parse_interfacedescriptionblock_be, parse_interfacedescriptionblock_le,
    parse_interfacestatisticsblock_be, parse_interfacestatisticsblock_le,
};

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const ISB: u32 = 5;
const EPB: u32 = 6;
const BYTE_ORDER: u32 = 0x1a2b_3c4d;
/// The largest block read (libpcap's limit too): a larger length is taken for a lie.
const MAX_BLOCK: u32 = 16 * 1024 * 1024;

/// How an interface's timestamp units become nanoseconds.
#[derive(Clone, Copy, Debug)]
enum Scale {
    Mul(u64),
    Div(u64),
    /// Units per second that are neither a divisor nor a multiple of 10^9 (2^-n).
    Exact(u64),
}

impl Scale {
    fn from_units_per_second(units: u64) -> Scale {
        if units == 0 {
            Scale::Mul(1000)
        } else if 1_000_000_000 % units == 0 {
            Scale::Mul(1_000_000_000 / units)
        } else if units % 1_000_000_000 == 0 {
            Scale::Div(units / 1_000_000_000)
        } else {
            Scale::Exact(units)
        }
    }

    #[inline]
    fn ns(self, units: u64) -> u64 {
        match self {
            Scale::Mul(m) => units.saturating_mul(m),
            Scale::Div(d) => units / d,
            Scale::Exact(per_s) => {
                let ns = u128::from(units) * 1_000_000_000 / u128::from(per_s);
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        }
    }
}

/// `if_tsresol`'s units per second: 10^n, or 2^n with the top bit set. (pcap-parser's
/// `ts_resolution` refuses every power of two: it checks the exponent before masking.)
fn units_per_second(tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exponent)
    } else {
        1u64.checked_shl(exponent).filter(|_| exponent < 64)
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    /// Index into [`Pcapng::links`].
    link: u16,
    snaplen: u32,
    scale: Scale,
    /// `if_tsoffset`, in nanoseconds.
    offset_ns: i64,
}

/// Counters of one interface's latest statistics block.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    section: u64,
    interface: u32,
    drops: Drops,
}

/// A pcapng file (or stream) read in blocks.
pub struct Pcapng {
    input: Input,
    big_endian: bool,
    /// The current section's interfaces, in the order of their description blocks.
    interfaces: Vec<Interface>,
    /// Where the current section began (for messages), and how many came before it.
    section_at: u64,
    sections: u64,
    /// The distinct link types seen, which frames name by index.
    links: Vec<Link>,
    stats: Vec<Stats>,
    failed: bool,
    /// `classify -f`, compiled for each link type as its first interface appears (indexed
    /// like `links`); frames it rejects are skipped in place (and counted).
    filter: Option<Filter>,
    programs: Vec<Program>,
}

impl Pcapng {
    /// Whether a capture starting with `head` is pcapng (its first block a section header).
    pub fn recognises(head: &[u8]) -> bool {
        head.starts_with(&SHB.to_le_bytes())
    }

    /// Reads `input`, which starts with a section header block.
    ///
    /// # Errors
    /// The header is cut short or its byte-order magic is wrong.
    pub fn new(input: Input) -> Result<Pcapng, String> {
        let Some(bom) = input.head().get(8..12) else {
            return Err("pcapng section header is cut short".into());
        };
        let bom = [bom[0], bom[1], bom[2], bom[3]];
        let big_endian = match bom {
            _ if u32::from_le_bytes(bom) == BYTE_ORDER => false,
            _ if u32::from_be_bytes(bom) == BYTE_ORDER => true,
            _ => return Err("not a pcapng file: bad byte-order magic".into()),
        };
        Ok(Pcapng {
            input,
            big_endian,
            interfaces: Vec::new(),
            section_at: 0,
            sections: 0,
            links: Vec::new(),
            stats: Vec::new(),
            failed: false,
            filter: None,
            programs: Vec::new(),
        })
    }

    #[inline]
    fn u32_at(&self, data: &[u8], at: usize) -> u32 {
        let w = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    }

    fn u16_at(&self, data: &[u8], at: usize) -> u16 {
        let w = [data[at], data[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(w)
        } else {
            u16::from_le_bytes(w)
        }
    }

    /// A new section: its byte order, and no interfaces yet.
    fn section(&mut self, block: &[u8], at: u64) -> Result<(), String> {
        self.interfaces.clear();
        self.section_at = at;
        self.sections += 1;
        let (major, minor) = (self.u16_at(block, 12), self.u16_at(block, 14));
        if major != 1 {
            return Err(format!(
                "pcapng section at byte {at} has version {major}.{minor}; only 1.x is read"
            ));
        }
        Ok(())
    }

    /// Keeps only the frames `filter` passes.
    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = Some(filter);
    }

    /// Whether the frame `bytes` of link index `link` passes the filter (no filter: yes).
    #[inline]
    fn passes(&mut self, link: u16, bytes: &[u8], wire_len: u32) -> bool {
        match self.programs.get_mut(usize::from(link)) {
            Some(p) => p.pass(bytes, wire_len),
            None => true,
        }
    }

    fn interface(&mut self, block: &[u8], at: u64) -> Result<(), String> {
        let parsed = if self.big_endian {
            parse_interfacedescriptionblock_be(block)
        } else {
            parse_interfacedescriptionblock_le(block)
        };
        let Ok((_, idb)) = parsed else {
            return Err(format!(
                "pcapng interface description at byte {at} is malformed"
            ));
        };
        let link = Link::from_dlt(idb.linktype.0);
        let index = match self.links.iter().position(|&l| l == link) {
            Some(i) => i,
            None => {
                if let Some(f) = &self.filter {
                    self.programs
                        .push(f.compile(idb.linktype.0).map_err(|e| e.to_string())?);
                }
                self.links.push(link);
                self.links.len() - 1
            }
        };
        let Some(scale) = units_per_second(idb.if_tsresol).map(Scale::from_units_per_second) else {
            return Err(format!(
                "pcapng interface description at byte {at}: timestamp resolution {:#04x} is out of range",
                idb.if_tsresol
            ));
        };
        self.interfaces.push(Interface {
            link: u16::try_from(index).unwrap_or(u16::MAX),
            snaplen: idb.snaplen,
            scale,
            offset_ns: idb.ts_offset().saturating_mul(1_000_000_000),
        });
        Ok(())
    }

    fn statistics(&mut self, block: &[u8]) {
        let parsed = if self.big_endian {
            parse_interfacestatisticsblock_be(block)
        } else {
            parse_interfacestatisticsblock_le(block)
        };
        // Statistics are informative: a malformed block is skipped like an unknown one.
        let Ok((_, isb)) = parsed else { return };
        let value = |v: Option<Result<u64, _>>| v.and_then(Result::ok).unwrap_or(0);
        let drops = Drops {
            received: value(isb.isb_ifrecv()),
            kernel: value(isb.isb_osdrop()),
            interface: value(isb.isb_ifdrop()),
        };
        // The counters are totals since the capture began: an interface's latest block wins.
        let (section, interface) = (self.sections, isb.if_id);
        match self
            .stats
            .iter_mut()
            .find(|s| s.section == section && s.interface == interface)
        {
            Some(s) => s.drops = drops,
            None => self.stats.push(Stats {
                section,
                interface,
                drops,
            }),
        }
    }

    fn find_interface(&self, id: u32, at: u64) -> Result<Interface, String> {
        let found = usize::try_from(id)
            .ok()
            .and_then(|i| self.interfaces.get(i));
        match found {
            Some(i) => Ok(*i),
            None if self.interfaces.is_empty() => Err(format!(
                "pcapng packet block at byte {at} names interface {id}, but its section (at byte {}) describes no interface",
                self.section_at
            )),
            None => Err(format!(
                "pcapng packet block at byte {at} names interface {id}, but its section (at byte {}) describes only {}",
                self.section_at,
                self.interfaces.len()
            )),
        }
    }

    /// Reads the blocks of `data[..valid]`, appending packets to `frames`; where the first
    /// block not wholly in it starts.
    fn blocks(
        &mut self,
        data: &[u8],
        valid: usize,
        frames: &mut Vec<Frame>,
    ) -> Result<usize, String> {
        let base = self.input.offset();
        let mut at = 0;
        while valid - at >= 12 {
            let pos = base + at as u64;
            let kind = self.u32_at(data, at);
            if kind == SHB {
                let bom = [data[at + 8], data[at + 9], data[at + 10], data[at + 11]];
                self.big_endian = match bom {
                    _ if u32::from_le_bytes(bom) == BYTE_ORDER => false,
                    _ if u32::from_be_bytes(bom) == BYTE_ORDER => true,
                    _ => {
                        return Err(format!(
                            "pcapng section header at byte {pos} has a bad byte-order magic"
                        ))
                    }
                };
            }
            let len = self.u32_at(data, at + 4);
            if len < 12 || len % 4 != 0 || len > MAX_BLOCK {
                return Err(format!(
                    "pcapng block at byte {pos} (type {kind:#x}) has an impossible length, {len} bytes"
                ));
            }
            let len = len as usize;
            if valid - at < len {
                break;
            }
            let block = &data[at..at + len];
            let trailer = self.u32_at(block, len - 4);
            if trailer as usize != len {
                return Err(format!(
                    "pcapng block at byte {pos} (type {kind:#x}) says it is {len} bytes long, but its trailer says {trailer}"
                ));
            }
            let short = || {
                format!("pcapng block at byte {pos} (type {kind:#x}) is too short for its type, {len} bytes")
            };
            match kind {
                SHB if len < 28 => return Err(short()),
                SHB => self.section(block, pos)?,
                IDB => self.interface(block, pos)?,
                EPB | OPB if len < 32 => return Err(short()),
                EPB | OPB => self.packet_block(kind, block, at, pos, frames)?,
                SPB if len < 16 => return Err(short()),
                SPB => self.simple_block(block, at, pos, frames)?,
                ISB => self.statistics(block),
                _ => {}
            }
            at += len;
        }
        Ok(at)
    }

    /// An enhanced (or obsolete) packet block of at least 32 bytes at `at` of the data
    /// read (`pos` in the file): its frame, if the filter passes it.
    fn packet_block(
        &mut self,
        kind: u32,
        block: &[u8],
        at: usize,
        pos: u64,
        frames: &mut Vec<Frame>,
    ) -> Result<(), String> {
        let len = block.len();
        let id = if kind == EPB {
            self.u32_at(block, 8)
        } else {
            u32::from(self.u16_at(block, 8))
        };
        let iface = self.find_interface(id, pos)?;
        let units = u64::from(self.u32_at(block, 12)) << 32 | u64::from(self.u32_at(block, 16));
        let caplen = self.u32_at(block, 20);
        if caplen as usize > len - 32 {
            return Err(format!(
                "pcapng packet block at byte {pos} captures {caplen} bytes, more than its {len}-byte block holds"
            ));
        }
        let wire_len = self.u32_at(block, 24);
        // Every reader keeps at most `FRAME_BYTES` of a frame.
        let caplen = caplen.min(super::FRAME_BYTES as u32);
        let bytes = &block[28..28 + caplen as usize];
        if self.passes(iface.link, bytes, wire_len) {
            frames.push(Frame {
                ts_ns: iface.scale.ns(units).saturating_add_signed(iface.offset_ns),
                wire_len,
                start: u32::try_from(at + 28).unwrap_or(u32::MAX),
                len: caplen,
                link: iface.link,
            });
        }
        Ok(())
    }

    /// A simple packet block of at least 16 bytes: its frame (with no timestamp), if the
    /// filter passes it.
    fn simple_block(
        &mut self,
        block: &[u8],
        at: usize,
        pos: u64,
        frames: &mut Vec<Frame>,
    ) -> Result<(), String> {
        let iface = self.find_interface(0, pos)?;
        let wire_len = self.u32_at(block, 8);
        let mut caplen = wire_len.min(u32::try_from(block.len() - 16).unwrap_or(0));
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen);
        }
        caplen = caplen.min(super::FRAME_BYTES as u32);
        let bytes = &block[12..12 + caplen as usize];
        if self.passes(iface.link, bytes, wire_len) {
            frames.push(Frame {
                ts_ns: 0,
                wire_len,
                start: u32::try_from(at + 12).unwrap_or(u32::MAX),
                len: caplen,
                link: iface.link,
            });
        }
        Ok(())
    }
}

impl Source for Pcapng {
    fn name(&self) -> &str {
        &self.input.name
    }

    /// The first interface's link type (frames carry their own).
    fn link(&self) -> Link {
        self.links.first().copied().unwrap_or(Link::Ethernet)
    }

    fn links(&self) -> Vec<Link> {
        if self.links.is_empty() {
            vec![Link::Ethernet]
        } else {
            self.links.clone()
        }
    }

    fn filtered(&self) -> Option<Filtered> {
        self.filter.as_ref()?;
        let mut total = Filtered::default();
        for p in &self.programs {
            total.packets += p.filtered.packets;
            total.bytes += p.filtered.bytes;
        }
        Some(total)
    }

    fn fill(&mut self, batch: &mut Batch) -> Fill {
        batch.clear_frames(self.link());
        if self.failed {
            return Fill::Done;
        }
        let (data, frames) = batch.parts_mut();
        let (valid, ended) = match self.input.next_block(data) {
            Ok(got) => got,
            Err(message) => return self.fail(batch, message),
        };
        let used = self.blocks(data, valid, frames);
        let fill = match used {
            Err(message) => return self.fail(batch, message),
            Ok(at) if ended && at < valid => {
                let pos = self.input.offset() + at as u64;
                Fill::Failed(format!(
                    "the file is cut inside the pcapng block at byte {pos} ({} bytes of it)",
                    valid - at
                ))
            }
            Ok(at) => {
                self.input.keep(data, at, valid);
                if ended {
                    Fill::Done
                } else {
                    Fill::More
                }
            }
        };
        batch.set_links(&self.links);
        fill
    }

    fn drops(&mut self) -> Option<Drops> {
        if self.stats.is_empty() {
            return None;
        }
        let mut total = Drops::default();
        for s in &self.stats {
            total.received += s.drops.received;
            total.kernel += s.drops.kernel;
            total.interface += s.drops.interface;
        }
        Some(total)
    }

    fn position(&self) -> Option<u64> {
        Some(self.input.consumed())
    }
}

impl Pcapng {
    /// Ends the input after the frames already in `batch`.
    fn fail(&mut self, batch: &mut Batch, message: String) -> Fill {
        self.failed = true;
        batch.set_links(&self.links);
        Fill::Failed(message)
    }
}
