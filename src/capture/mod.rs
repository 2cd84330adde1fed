//! Packet sources: where frames come from, and the reusable [`Batch`] they travel in.
//!
//! This is the only module that touches libpcap. A source yields frames (capture time,
//! wire length, the captured bytes) of one link type; it parses nothing beyond the record
//! header. Any reader that can fill a [`Batch`] implements [`Source`].

mod fast;
mod filter;
mod input;
mod live;
mod memory;
mod merge;
mod offline;
mod pcapng;

pub use fast::FastPcap;
pub use filter::{Filter, Filtered, Program};
pub use input::{Compression, Input};
pub use live::{interfaces, LiveCapture, LiveOptions};
pub use memory::MemorySource;
pub use merge::Merge;
pub use offline::PcapFile;
pub use pcapng::Pcapng;

/// Opens a capture file, or standard input for `-`, compressed or not, with the block
/// readers: [`FastPcap`] for classic pcap, [`Pcapng`] for pcapng. libpcap ([`PcapFile`])
/// reads uncompressed files of any other format it knows, and classic pcap files with
/// something unusual, exactly as before.
///
/// With `filter`, only the frames it passes are kept (the others are counted).
///
/// # Errors
/// The operating system's or the decompressor's reason, `unknown file format` for a stream
/// that is neither pcap nor pcapng, or libpcap's reason for a file; [`Error::Filter`] when
/// the filter does not compile for the file's link type.
pub fn open_file(path: &str, filter: Option<&Filter>) -> Result<Box<dyn Source>, Error> {
    let open_error = |message: String| Error::Open {
        path: path.to_string(),
        message,
    };
    let input = Input::open(path).map_err(open_error)?;
    if Pcapng::recognises(input.head()) {
        let mut pcapng = Pcapng::new(input).map_err(open_error)?;
        if let Some(f) = filter {
            pcapng.set_filter(f.clone());
        }
        return Ok(Box::new(pcapng));
    }
    match FastPcap::new(input) {
        Ok(mut fast) => {
            if let Some(f) = filter {
                fast.set_filter(f.compile(fast.link().dlt())?);
            }
            Ok(Box::new(fast))
        }
        Err(fast::Refusal::Format(message)) => Err(open_error(message)),
        Err(fast::Refusal::NotMine(input)) if input.plain_file => libpcap_alone(path, filter),
        Err(fast::Refusal::NotMine(input))
            if input.head().len() < 24 && input.compression == Compression::None =>
        {
            Err(open_error(format!(
                "the capture is too short ({} bytes)",
                input.head().len()
            )))
        }
        Err(fast::Refusal::NotMine(_)) => Err(open_error("unknown file format".to_string())),
    }
}

/// Opens a capture file with libpcap alone (`--reader libpcap`), filtered as [`open_file`].
///
/// # Errors
/// As [`open_file`].
///
/// Where libpcap refuses what portscope's own readers read (a pcapng file whose interfaces
/// differ in link type or snapshot length, a pcap version it does not know), those readers
/// take over: from the start when libpcap cannot open the file, else after the frames
/// libpcap delivered. The input's [`InputReport::note`] says so; the report is the one
/// the default reader gives.
pub fn open_libpcap(path: &str, filter: Option<&Filter>) -> Result<Box<dyn Source>, Error> {
    let mut file = match PcapFile::open(path) {
        Ok(file) => file,
        Err(refusal) => {
            let Ok(own) = open_file(path, filter) else {
                return Err(refusal);
            };
            let (_, why) = refusal.parts();
            return Ok(Box::new(LibpcapFirst {
                libpcap: None,
                own: Some(own),
                path: path.to_string(),
                filter: filter.cloned(),
                skip: 0,
                note: Some(format!(
                    "libpcap cannot open it ({why}); read with portscope's own reader"
                )),
            }));
        }
    };
    if let Some(f) = filter {
        file.set_filter(f.compile(file.dlt())?);
    }
    Ok(Box::new(LibpcapFirst {
        libpcap: Some(file),
        own: None,
        path: path.to_string(),
        filter: filter.cloned(),
        skip: 0,
        note: None,
    }))
}

/// libpcap's reader, for files the block readers leave to it.
fn libpcap_alone(path: &str, filter: Option<&Filter>) -> Result<Box<dyn Source>, Error> {
    let mut file = PcapFile::open(path)?;
    if let Some(f) = filter {
        file.set_filter(f.compile(file.dlt())?);
    }
    Ok(Box::new(file))
}

/// `--reader libpcap`: libpcap's reader, and portscope's own for what libpcap refuses.
struct LibpcapFirst {
    libpcap: Option<PcapFile>,
    own: Option<Box<dyn Source>>,
    path: String,
    filter: Option<Filter>,
    /// Frames the own reader still has to pass over: those libpcap delivered.
    skip: u64,
    note: Option<String>,
}

impl LibpcapFirst {
    /// libpcap stopped with `message` after the frames it delivered (`kept`, the filter's
    /// rejects not among them): the own reader takes over when it can read the file.
    fn take_over(&mut self, kept: u64, message: String) -> Fill {
        match open_file(&self.path, self.filter.as_ref()) {
            Ok(own) => {
                self.note = Some(format!(
                    "libpcap stopped after {kept} packets ({message}); read on with portscope's own reader"
                ));
                self.own = Some(own);
                self.libpcap = None;
                self.skip = kept;
                Fill::More
            }
            Err(_) => Fill::Failed(message),
        }
    }
}

impl Source for LibpcapFirst {
    fn name(&self) -> &str {
        &self.path
    }

    fn link(&self) -> Link {
        match (&self.own, &self.libpcap) {
            (Some(own), _) => own.link(),
            (None, Some(file)) => file.link(),
            (None, None) => Link::Ethernet,
        }
    }

    fn links(&self) -> Vec<Link> {
        match (&self.own, &self.libpcap) {
            (Some(own), _) => own.links(),
            (None, Some(file)) => file.links(),
            (None, None) => vec![Link::Ethernet],
        }
    }

    fn fill(&mut self, batch: &mut Batch) -> Fill {
        if let Some(file) = &mut self.libpcap {
            let fill = file.fill(batch);
            let Fill::Failed(message) = fill else {
                return fill;
            };
            // libpcap reads one link type and snapshot length per file; other failures
            // (a truncated file) are the file's, and the own reader would meet them too.
            if !message.contains(" different from the ") {
                return Fill::Failed(message);
            }
            let kept = file.delivered();
            let fill = self.take_over(kept, message);
            if !batch.frames.is_empty() || fill != Fill::More {
                return fill;
            }
        }
        let Some(own) = &mut self.own else {
            return Fill::Done;
        };
        loop {
            let fill = own.fill(batch);
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(batch.frames.len());
                batch.frames.drain(..n);
                self.skip -= n as u64;
            }
            if !batch.frames.is_empty() || fill != Fill::More {
                return fill;
            }
        }
    }

    fn drops(&mut self) -> Option<Drops> {
        match (&mut self.own, &mut self.libpcap) {
            (Some(own), _) => own.drops(),
            (None, Some(file)) => file.drops(),
            (None, None) => None,
        }
    }

    fn filtered(&self) -> Option<Filtered> {
        // The own reader reads the file from its start, so its counts cover it all.
        match (&self.own, &self.libpcap) {
            (Some(own), _) => own.filtered(),
            (None, Some(file)) => file.filtered(),
            (None, None) => None,
        }
    }

    fn note(&self) -> Option<String> {
        self.note.clone()
    }
}

use crate::decode::Link;

/// The capture time of `source`'s first frame, if it has one.
pub fn first_time(source: &mut dyn Source) -> Option<u64> {
    let mut batch = Batch::default();
    loop {
        let fill = source.fill(&mut batch);
        if let Some(f) = batch.frames.first() {
            return Some(f.ts_ns);
        }
        if fill != Fill::More {
            return None;
        }
    }
}

/// The first frame's capture time and the latest, reading `source` to its end or for
/// `*limit` frames (counted down; `classify -c`), to choose intervals that fit a capture
/// before reading it for the report; `None` without frames.
pub fn time_span(source: &mut dyn Source, limit: &mut Option<u64>) -> Option<(u64, u64)> {
    let mut batch = Batch::default();
    let mut span: Option<(u64, u64)> = None;
    loop {
        let fill = source.fill(&mut batch);
        for f in &batch.frames {
            if let Some(left) = limit {
                if *left == 0 {
                    return span;
                }
                *left -= 1;
            }
            let (first, last) = span.get_or_insert((f.ts_ns, f.ts_ns));
            *last = (*last).max(f.ts_ns).max(*first);
        }
        if fill != Fill::More {
            return span;
        }
    }
}

/// The most bytes of a frame any reader keeps: libpcap's `MAXIMUM_SNAPLEN`, the most it
/// reads of a record from a file and what tcpdump keeps live by default. Every reader (the
/// block readers, libpcap offline and live, `--merge`, the copies `--interval` cuts) keeps
/// the same `min(captured, FRAME_BYTES)` bytes of a frame, so the payload parsers (SMB
/// messages inside a 64 KiB offloaded segment, DCE/RPC binds, endpoint mapper answers)
/// see the same bytes whichever path read it. Wire lengths are kept whole.
pub const FRAME_BYTES: usize = 262_144;

/// Frames per batch, at most.
pub const BATCH_FRAMES: usize = 512;

/// Bytes of frames a copying reader puts in a batch before it counts as full (one more
/// frame may take it past this, by at most [`FRAME_BYTES`]): the block readers' block size,
/// so a batch of large frames is no larger than a block.
pub const BATCH_BYTES: usize = 1 << 20;

/// One frame's place in a [`Batch`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// Capture time in nanoseconds since the epoch.
    pub ts_ns: u64,
    /// The frame's length on the wire (`frame.len` in tshark).
    pub wire_len: u32,
    start: u32,
    len: u32,
    /// Index of the frame's link type in [`Batch::links`]: a pcapng file's interfaces may
    /// differ. It sits in what was padding, so a frame is no larger.
    link: u16,
}

/// A batch of frames: one byte arena plus a frame table. Batches are recycled, so in steady
/// state the reader allocates nothing.
#[derive(Debug)]
pub struct Batch {
    /// The link types of the batch's frames: `links[0]` unless a frame names another
    /// (only the pcapng reader does). Never empty.
    links: Vec<Link>,
    data: Vec<u8>,
    pub frames: Vec<Frame>,
    /// Live captures: after its frames, each worker reports the interval with this number.
    pub tick: Option<u64>,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            links: vec![Link::Ethernet],
            data: Vec::with_capacity(BATCH_BYTES),
            frames: Vec::with_capacity(BATCH_FRAMES),
            tick: None,
        }
    }
}

impl Batch {
    /// The arena and the frame table, for a reader that fills the arena itself.
    pub(crate) fn parts_mut(&mut self) -> (&mut Vec<u8>, &mut Vec<Frame>) {
        (&mut self.data, &mut self.frames)
    }

    /// Empties the frame table but leaves the arena as it is, for a reader that reads over it.
    pub(crate) fn clear_frames(&mut self, link: Link) {
        self.set_link(link);
        self.frames.clear();
        self.tick = None;
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self, link: Link) {
        self.set_link(link);
        self.data.clear();
        self.frames.clear();
        self.tick = None;
    }

    fn set_link(&mut self, link: Link) {
        self.links.clear();
        self.links.push(link);
    }

    /// The link types frames may name by index (a reader with several sets them after
    /// filling the batch). An empty list leaves the first link type.
    pub(crate) fn set_links(&mut self, links: &[Link]) {
        if !links.is_empty() {
            self.links.clear();
            self.links.extend_from_slice(links);
        }
    }

    /// The link type of the batch's first frames (of all of them, for every reader but
    /// pcapng's).
    pub fn link(&self) -> Link {
        self.links[0]
    }

    /// A frame's link type.
    #[inline]
    pub fn link_of(&self, f: &Frame) -> Link {
        self.links
            .get(usize::from(f.link))
            .copied()
            .unwrap_or(self.links[0])
    }

    /// Whether a copying reader should stop adding frames: [`BATCH_FRAMES`] frames, or
    /// [`BATCH_BYTES`] of them.
    pub fn is_full(&self) -> bool {
        self.frames.len() >= BATCH_FRAMES || self.data.len() >= BATCH_BYTES
    }

    /// Appends a frame, keeping at most [`FRAME_BYTES`] of it.
    #[inline]
    pub fn push(&mut self, ts_ns: u64, wire_len: u32, bytes: &[u8]) {
        let kept = &bytes[..bytes.len().min(FRAME_BYTES)];
        let start = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        self.data.extend_from_slice(kept);
        self.frames.push(Frame {
            ts_ns,
            wire_len,
            start,
            len: u32::try_from(kept.len()).unwrap_or(0),
            link: 0,
        });
    }

    /// Appends a frame of `other`, keeping at most [`FRAME_BYTES`] of it, with its link
    /// type (added to this batch's list when new).
    #[inline]
    pub(crate) fn push_from(&mut self, other: &Batch, f: &Frame) {
        let link = other.link_of(f);
        let index = match self.links.iter().position(|&l| l == link) {
            Some(i) => i,
            None => {
                self.links.push(link);
                self.links.len() - 1
            }
        };
        self.push(f.ts_ns, f.wire_len, other.bytes(f));
        if let Some(last) = self.frames.last_mut() {
            last.link = u16::try_from(index).unwrap_or(0);
        }
    }

    /// The bytes kept of a frame of this batch.
    #[inline]
    pub fn bytes(&self, f: &Frame) -> &[u8] {
        let start = f.start as usize;
        self.data.get(start..start + f.len as usize).unwrap_or(&[])
    }
}

/// How a call to [`Source::fill`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fill {
    /// The batch is full and more frames may follow.
    More,
    /// The source is exhausted.
    Done,
    /// The source failed after the frames already in the batch (e.g. a truncated file).
    Failed(String),
}

/// A source of frames.
pub trait Source {
    /// The name the user knows the source by (a path, `-`, an interface).
    fn name(&self) -> &str;
    /// The link type of every frame (a pcapng file's first interface's).
    fn link(&self) -> Link;
    /// Every link type the frames had, in the order they appeared: more than one only in
    /// a pcapng file whose interfaces differ.
    fn links(&self) -> Vec<Link> {
        vec![self.link()]
    }
    /// Clears `batch` and fills it with up to [`BATCH_FRAMES`] frames.
    fn fill(&mut self, batch: &mut Batch) -> Fill;
    /// Drop counters: libpcap's for live captures, the interface statistics of a pcapng
    /// file once it is read.
    fn drops(&mut self) -> Option<Drops> {
        None
    }
    /// Bytes of the input file read so far (compressed bytes, when it is compressed), for
    /// the progress bar; `None` when the reader cannot tell.
    fn position(&self) -> Option<u64> {
        None
    }

    /// What a filter dropped so far, when the source has one (`classify -f`).
    fn filtered(&self) -> Option<Filtered> {
        None
    }

    /// Something the user should know about how the input was read (a reader that took
    /// over from another); not part of the report.
    fn note(&self) -> Option<String> {
        None
    }
}

/// What became of one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputReport {
    pub name: String,
    /// `None` when the input could not be opened.
    pub link: Option<Link>,
    /// Every link type of its frames ([`Source::links`]); empty when not opened.
    pub links: Vec<Link>,
    /// The earliest and the latest capture time of its frames (ns since the epoch).
    pub span: Option<(u64, u64)>,
    /// Packets read (including any shed).
    pub packets: u64,
    /// Their wire lengths, summed.
    pub bytes: u64,
    /// Why the input could not be opened (fatal for this input, none of it read).
    pub open_error: Option<String>,
    /// Why reading stopped early; the packets before it are counted.
    pub read_error: Option<String>,
    /// Live mode: packets read but shed because the workers were behind.
    pub shed: u64,
    /// Live mode: libpcap's counters at the end.
    pub drops: Option<Drops>,
    /// `classify -f`: frames read but dropped by the filter (not in `packets`).
    pub filtered: Option<Filtered>,
    /// How the input was read, when the user should know ([`Source::note`]).
    pub note: Option<String>,
}

impl InputReport {
    /// An input named `name` of which nothing was read yet.
    pub fn named(name: String) -> InputReport {
        InputReport {
            name,
            link: None,
            links: Vec::new(),
            span: None,
            packets: 0,
            bytes: 0,
            open_error: None,
            read_error: None,
            shed: 0,
            drops: None,
            filtered: None,
            note: None,
        }
    }
}

/// libpcap's counters of a live capture (`pcap_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drops {
    /// Packets the capture received.
    pub received: u64,
    /// Dropped by the kernel: the capture buffer was full.
    pub kernel: u64,
    /// Dropped by the interface or its driver.
    pub interface: u64,
}

impl<S: Source + ?Sized> Source for &mut S {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn link(&self) -> Link {
        (**self).link()
    }

    fn links(&self) -> Vec<Link> {
        (**self).links()
    }

    fn fill(&mut self, batch: &mut Batch) -> Fill {
        (**self).fill(batch)
    }

    fn drops(&mut self) -> Option<Drops> {
        (**self).drops()
    }

    fn position(&self) -> Option<u64> {
        (**self).position()
    }

    fn filtered(&self) -> Option<Filtered> {
        (**self).filtered()
    }

    fn note(&self) -> Option<String> {
        (**self).note()
    }
}

impl Error {
    /// The input the error is about (a path or an interface) and what went wrong.
    pub fn parts(&self) -> (String, String) {
        match self {
            Error::Open { path, message } => (path.clone(), message.clone()),
            Error::NoInterface { name, .. } | Error::Permission { name, .. } => {
                (name.clone(), self.to_string())
            }
            Error::Filter { filter, .. } => (filter.clone(), self.to_string()),
        }
    }
}

/// A source that could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open capture {path}: {message}")]
    Open { path: String, message: String },
    #[error("no capture interface named {name:?} (available: {available})")]
    NoInterface { name: String, available: String },
    #[error("no permission to capture on {name} ({message}): capture needs root, or CAP_NET_RAW and CAP_NET_ADMIN: sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v portscope)\"")]
    Permission { name: String, message: String },
    #[error("bad filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
}

/// Converts a libpcap timestamp read with nanosecond precision.
#[inline]
pub(crate) fn ts_ns(sec: i64, nsec: i64) -> u64 {
    u64::try_from(sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(nsec).unwrap_or(0))
}
