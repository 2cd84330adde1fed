//! `--ipfix-file`: the records of a run as one IPFIX file (RFC 5655, the messages one
//! after another), written when the run ends.

use super::ipfix::{Encoder, Record, MAX_RECORD_LEN};
use super::{Application, Records, Settings, Stream, FILE_MTU};
use std::io::{self, Write};
use std::iter;

/// What an IPFIX file (`--ipfix-file`, RFC 5655) holds: every record of the run, encoded
/// on the export thread while the run went on, and the applications they name.
#[derive(Debug)]
pub struct IpfixFile {
    settings: Settings,
    apps: Vec<Application>,
    outer: Encoded,
    inner: Option<Encoded>,
}

impl IpfixFile {
    /// The file, with the applications its options records name.
    pub(super) fn naming(self, apps: Vec<Application>) -> IpfixFile {
        IpfixFile { apps, ..self }
    }

    pub(super) fn new(settings: Settings) -> IpfixFile {
        let settings = Settings {
            mtu: FILE_MTU,
            ..settings
        };
        IpfixFile {
            settings,
            apps: Vec::new(),
            outer: Encoded::new(Encoder::new(settings.domain, FILE_MTU, 0)),
            inner: settings
                .inner_domain
                .map(|d| Encoded::new(Encoder::new_inner(d, FILE_MTU, 0))),
        }
    }

    pub(super) fn push(&mut self, records: &Records) {
        for r in &records.outer {
            self.outer.push(r);
        }
        if let Some(inner) = &mut self.inner {
            for r in &records.inner {
                inner.push(r);
            }
        }
    }

    /// Writes the file: the outer flows' stream, then the inner flows' (in their own
    /// domain, if there are any), each with its templates and every name first, then its
    /// records in start-time order. Names and records are sorted by their content, so the
    /// file does not depend on the order flows ended in (nor on `--threads`), but for its
    /// export time.
    ///
    /// # Errors
    /// Any error of `out`.
    pub fn write(mut self, out: &mut dyn Write) -> io::Result<()> {
        self.apps.sort_unstable_by(|a, b| {
            (&a.name, &a.description, a.selector).cmp(&(&b.name, &b.description, b.selector))
        });
        let mut result = Ok(());
        let mut write = |m: &[u8], _, _| {
            if result.is_ok() {
                result = out.write_all(m);
            }
        };
        let inner = self.inner.as_ref().filter(|e| !e.index.is_empty());
        let domains = [
            (Some(Stream::new(self.settings, None)), Some(&self.outer)),
            (Stream::new_inner(self.settings, None), inner),
        ];
        for (stream, records) in domains {
            let (Some(mut stream), Some(records)) = (stream, records) else {
                continue;
            };
            stream.send(&self.apps, iter::empty(), &mut write);
            for i in records.in_order() {
                let e = records.index[i as usize];
                stream.encoded(e.template, records.bytes_of(e), &mut write);
            }
            stream.flush(&mut write);
        }
        result
    }
}

/// One observation domain's records for a file, encoded as they come: their bytes one
/// after another, and where each record's are.
#[derive(Debug)]
struct Encoded {
    enc: Encoder,
    bytes: Vec<u8>,
    index: Vec<Entry>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    start_ms: u64,
    at: u64,
    len: u8,
    template: u16,
}

impl Encoded {
    fn new(enc: Encoder) -> Encoded {
        Encoded {
            enc,
            bytes: Vec::new(),
            index: Vec::new(),
        }
    }

    fn push(&mut self, r: &Record) {
        let mut b = [0; MAX_RECORD_LEN];
        let (template, len) = self.enc.encode(r, &mut b);
        self.index.push(Entry {
            start_ms: r.start_ms,
            at: self.bytes.len() as u64,
            len: len as u8,
            template,
        });
        self.bytes.extend_from_slice(&b[..len]);
    }

    fn bytes_of(&self, e: Entry) -> &[u8] {
        let at = e.at as usize;
        &self.bytes[at..at + usize::from(e.len)]
    }

    /// The records' indices in start-time order, ties in the order of their bytes (the
    /// same records in any order give the same bytes in the end). Sorts pairs of integers,
    /// then the rare runs of one start time.
    fn in_order(&self) -> Vec<u32> {
        let mut keys: Vec<(u64, u32)> = (0u32..)
            .zip(&self.index)
            .map(|(i, e)| (e.start_ms, i))
            .collect();
        keys.sort_unstable();
        let bytes = |i: u32| self.bytes_of(self.index[i as usize]);
        for run in keys.chunk_by_mut(|a, b| a.0 == b.0) {
            if run.len() > 1 {
                run.sort_unstable_by(|a, b| bytes(a.1).cmp(bytes(b.1)));
            }
        }
        keys.into_iter().map(|(_, i)| i).collect()
    }
}
