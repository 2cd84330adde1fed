//! Capture files read through libpcap: classic pcap (micro- or nanosecond) and pcapng,
//! or standard input when the path is `-`.

use super::filter::{Filtered, Program};
use super::{ts_ns, Batch, Error, Fill, Source};
use crate::decode::Link;
use pcap::{Capture, Offline, Precision};

/// A capture file opened with libpcap.
pub struct PcapFile {
    name: String,
    link: Link,
    capture: Capture<Offline>,
    /// `classify -f`: frames it rejects are read and counted, not kept. (Not libpcap's own
    /// filter on the handle, which would drop them unseen.)
    filter: Option<Program>,
    /// Frames put in batches so far.
    delivered: u64,
}

impl PcapFile {
    /// Opens a capture file (`-` reads standard input).
    ///
    /// # Errors
    /// [`Error::Open`] with libpcap's reason.
    pub fn open(path: &str) -> Result<PcapFile, Error> {
        let capture =
            Capture::from_file_with_precision(path, Precision::Nano).map_err(|e| Error::Open {
                path: path.to_string(),
                message: pcap_message(&e, path),
            })?;
        Ok(PcapFile {
            name: path.to_string(),
            link: Link::from_dlt(capture.get_datalink().0),
            capture,
            filter: None,
            delivered: 0,
        })
    }

    /// The file's link type as libpcap reports it (a DLT value), to compile filters for.
    pub fn dlt(&self) -> i32 {
        self.capture.get_datalink().0
    }

    /// Frames put in batches so far (the filter's rejects not among them).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Keeps only the frames `filter` passes (compiled for [`PcapFile::dlt`]).
    pub fn set_filter(&mut self, filter: Program) {
        self.filter = Some(filter);
    }
}

impl PcapFile {
    /// Reads and discards `n` frames (to take over from another reader).
    ///
    /// # Errors
    /// libpcap's message if the file ends or fails first.
    pub fn skip(&mut self, n: u64) -> Result<(), String> {
        for _ in 0..n {
            if let Err(e) = self.capture.next_packet() {
                return Err(pcap_message(&e, &self.name));
            }
        }
        Ok(())
    }
}

/// libpcap's text without the crate's prefix or a repeated path.
fn pcap_message(e: &pcap::Error, path: &str) -> String {
    let text = match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    };
    let prefix = format!("{path}: ");
    text.strip_prefix(&prefix).unwrap_or(&text).to_string()
}

impl Source for PcapFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn link(&self) -> Link {
        self.link
    }

    fn filtered(&self) -> Option<Filtered> {
        self.filter.as_ref().map(|f| f.filtered)
    }

    fn fill(&mut self, batch: &mut Batch) -> Fill {
        batch.clear(self.link);
        while !batch.is_full() {
            match self.capture.next_packet() {
                Ok(p) => {
                    if let Some(filter) = &mut self.filter {
                        if !filter.pass(p.data, p.header.len) {
                            continue;
                        }
                    }
                    batch.push(
                        ts_ns(p.header.ts.tv_sec, p.header.ts.tv_usec),
                        p.header.len,
                        p.data,
                    );
                    self.delivered += 1;
                }
                Err(pcap::Error::NoMorePackets) => return Fill::Done,
                Err(e) => return Fill::Failed(pcap_message(&e, &self.name)),
            }
        }
        Fill::More
    }
}
