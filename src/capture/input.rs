//! An input's bytes: a file or standard input, decompressed as it is read when its first
//! bytes are a compressor's magic (gzip, zstd, xz, bzip2, lz4), and handed out in large
//! blocks to the block readers ([`super::FastPcap`], [`super::Pcapng`]).
//!
//! Nothing is decompressed to disk or held whole: a block reader asks for 1 MiB at a time.
//! The bytes taken from the file itself are counted, so the progress bar follows the
//! compressed file.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

/// Bytes read per block (and so, roughly, per batch).
pub(super) const BLOCK: usize = 1 << 20;

/// How an input is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
    Lz4,
}

impl Compression {
    /// Recognises a compressed stream by its magic bytes.
    fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            [0x04, 0x22, 0x4d, 0x18, ..] => Compression::Lz4,
            _ => Compression::None,
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
            Compression::Lz4 => "lz4",
        }
    }
}

/// Counts the bytes read through it into a shared cell (read by the progress bar).
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// An opened input, its compression undone, with the carry of a record cut by a block.
pub struct Input {
    pub name: String,
    pub compression: Compression,
    /// A regular, uncompressed file: libpcap can reopen it by name.
    pub plain_file: bool,
    reader: Box<dyn Read>,
    /// The first bytes of the (decompressed) capture, read to recognise its format and
    /// handed out again by the first block.
    head: Vec<u8>,
    consumed: Rc<Cell<u64>>,
    /// The start of a record the last block cut.
    carry: Vec<u8>,
    /// Bytes of the decompressed capture before the current block.
    offset: u64,
    ended: bool,
    /// A read that failed after some bytes: reported once those are used.
    error: Option<String>,
}

impl Input {
    /// Opens a file, or standard input for `-`, and undoes its compression.
    ///
    /// # Errors
    /// The operating system's reason, or the decompressor's when the stream does not start
    /// as its magic promised.
    pub fn open(path: &str) -> Result<Input, String> {
        let io_error = |e: io::Error| io_message(&e);
        let (raw, plain_file): (Box<dyn Read>, bool) = if path == "-" {
            (Box::new(io::stdin()), false)
        } else {
            let file = File::open(path).map_err(io_error)?;
            let meta = file.metadata().map_err(io_error)?;
            if meta.is_dir() {
                return Err("is a directory".into());
            }
            (Box::new(file), meta.is_file())
        };
        let consumed = Rc::new(Cell::new(0));
        let mut raw = Counted {
            inner: raw,
            count: consumed.clone(),
        };
        // The magic is read, then put back in front of the rest of the stream.
        let mut magic = vec![0; 6];
        let (got, error) = read_full(&mut raw, &mut magic);
        if let Some(e) = error {
            return Err(io_message(&e));
        }
        magic.truncate(got);
        let compression = Compression::sniff(&magic);
        let buffered = BufReader::with_capacity(64 * 1024, io::Cursor::new(magic).chain(raw));
        let mut reader: Box<dyn Read> = match compression {
            Compression::None => Box::new(buffered),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(buffered).map_err(io_error)?)
            }
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(buffered)),
            Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buffered)),
            Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(buffered)),
        };
        let mut head = vec![0; 24];
        let (got, error) = read_full(&mut *reader, &mut head);
        let error = error.map(|e| decompress_error(compression, e));
        head.truncate(got);
        if let (Some(e), true) = (&error, got < 24) {
            // Not even a file header before the failure.
            return Err(e.clone());
        }
        Ok(Input {
            name: path.to_string(),
            compression,
            plain_file: plain_file && compression == Compression::None,
            reader,
            head,
            consumed,
            carry: Vec::new(),
            offset: 0,
            ended: false,
            error,
        })
    }

    /// The capture's first bytes (up to 24: a classic pcap header).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Reads more of the capture's first bytes, up to `n` in all (fewer when it ends or
    /// fails first), for a reader that must see the first records to tell the format; they
    /// are handed out again by the first block. At most [`BLOCK`].
    pub fn peek(&mut self, n: usize) -> &[u8] {
        let n = n.min(BLOCK);
        let had = self.head.len();
        if n > had && !self.ended && self.error.is_none() {
            self.head.resize(n, 0);
            let (got, error) = read_full(&mut *self.reader, &mut self.head[had..]);
            self.head.truncate(had + got);
            self.error = error.map(|e| decompress_error(self.compression, e));
            self.ended = had + got < n && self.error.is_none();
        }
        &self.head
    }

    /// Whether [`Input::peek`] saw the whole capture.
    pub fn peeked_all(&self) -> bool {
        self.ended
    }

    /// Drops the first `n` bytes of the capture (a file header already read from
    /// [`Input::head`]).
    pub fn skip_head(&mut self, n: usize) {
        let n = n.min(self.head.len());
        self.head.drain(..n);
        self.offset += n as u64;
    }

    /// Bytes read from the file itself so far (compressed bytes, for a compressed input).
    pub fn consumed(&self) -> u64 {
        self.consumed.get()
    }

    /// Where `data[0]` of the current block lies in the decompressed capture.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Fills `data` with the carry of the last block and up to [`BLOCK`] new bytes, and
    /// returns how many bytes of it are valid and whether the input has ended. The arena
    /// keeps its length from batch to batch, so it is zeroed when it grows, never again.
    ///
    /// # Errors
    /// A read error, or a decompressor's (a truncated or corrupt stream).
    pub fn next_block(&mut self, data: &mut Vec<u8>) -> Result<(usize, bool), String> {
        let carried = self.carry.len();
        if data.len() < carried + BLOCK {
            data.resize(carried + BLOCK, 0);
        }
        data[..carried].copy_from_slice(&self.carry);
        self.carry.clear();
        let mut got = 0;
        if !self.head.is_empty() {
            let n = self.head.len();
            data[carried..carried + n].copy_from_slice(&self.head);
            self.head = Vec::new();
            got = n;
        }
        if got == 0 {
            // The bytes before a failure were used: now the failure.
            if let Some(e) = self.error.take() {
                return Err(e);
            }
        }
        if !self.ended && self.error.is_none() {
            let buf = &mut data[carried + got..carried + BLOCK];
            let (n, error) = read_full(&mut *self.reader, buf);
            got += n;
            self.error = error.map(|e| decompress_error(self.compression, e));
            // With a failure pending the input has not ended: the next block reports it.
            self.ended = n < buf.len() && self.error.is_none();
        }
        Ok((carried + got, self.ended))
    }

    /// Keeps the bytes of `data[at..valid]` (the start of a record the block cut) for the
    /// next block; `at` bytes of this block were used.
    pub fn keep(&mut self, data: &[u8], at: usize, valid: usize) {
        self.carry.extend_from_slice(&data[at..valid]);
        self.offset += at as u64;
    }
}

/// Reads until `buf` is full or the input ends; how much it read, and the error that
/// stopped it, if one did.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

/// The operating system's message without Rust's "(os error N)".
pub(super) fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn decompress_error(c: Compression, e: io::Error) -> String {
    match (c, e.kind()) {
        (Compression::None, _) => io_message(&e),
        (_, io::ErrorKind::UnexpectedEof) => {
            format!("the {} stream is cut short (truncated file)", c.name())
        }
        _ => format!("{} stream: {e}", c.name()),
    }
}
