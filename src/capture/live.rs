//! Live capture on an interface through libpcap, with an optional BPF filter and an optional
//! copy of every captured packet to a pcap file.

use super::{ts_ns, Batch, Drops, Error, Fill, Source};
use crate::decode::Link;
use pcap::{Active, Capture, Device, Savefile};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long `fill` may hold a partial batch before handing it on, so a slow link still
/// reports on time.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// How long `fill` sleeps when no packet is waiting.
const IDLE_WAIT: Duration = Duration::from_millis(2);

/// What to open.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub interface: String,
    pub filter: Option<String>,
    pub snaplen: i32,
    pub buffer_size: Option<i32>,
    pub promisc: bool,
    /// Also write every captured packet here.
    pub write: Option<PathBuf>,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

/// A running live capture.
pub struct LiveCapture {
    name: String,
    link: Link,
    capture: Capture<Active>,
    savefile: Option<Savefile>,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
    remaining: Option<u64>,
}

/// The interfaces libpcap can capture on.
///
/// # Errors
/// libpcap's message.
pub fn interfaces() -> Result<Vec<Device>, String> {
    Device::list().map_err(|e| e.to_string())
}

fn names() -> String {
    interfaces()
        .map(|l| {
            l.iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

impl LiveCapture {
    /// Opens the interface; `stop` ends the capture when set (by a signal handler).
    ///
    /// # Errors
    /// [`Error::NoInterface`], [`Error::Permission`], [`Error::Filter`] or [`Error::Open`].
    pub fn open(options: &LiveOptions, stop: Arc<AtomicBool>) -> Result<LiveCapture, Error> {
        let iface = options.interface.as_str();
        let device = interfaces()
            .ok()
            .and_then(|list| list.into_iter().find(|d| d.name == iface))
            .ok_or_else(|| Error::NoInterface {
                name: iface.to_string(),
                available: names(),
            })?;
        let mut inactive = Capture::from_device(device)
            .map_err(|e| open_error(iface, &e))?
            .promisc(options.promisc)
            .snaplen(options.snaplen)
            .immediate_mode(true)
            .timeout(i32::try_from(FLUSH_EVERY.as_millis()).unwrap_or(100));
        if let Some(size) = options.buffer_size {
            inactive = inactive.buffer_size(size);
        }
        // Non-blocking: on Linux the read timeout does not fire while no packet arrives, so
        // `fill` waits in short sleeps instead and a quiet link still reports on time.
        let mut capture = inactive
            .open()
            .and_then(Capture::setnonblock)
            .map_err(|e| open_error(iface, &e))?;
        if let Some(filter) = &options.filter {
            capture.filter(filter, true).map_err(|e| Error::Filter {
                filter: filter.clone(),
                message: match e {
                    pcap::Error::PcapError(m) => m,
                    other => other.to_string(),
                },
            })?;
        }
        let savefile = match &options.write {
            Some(path) => Some(capture.savefile(path).map_err(|e| Error::Open {
                path: path.display().to_string(),
                message: e.to_string(),
            })?),
            None => None,
        };
        Ok(LiveCapture {
            name: iface.to_string(),
            link: Link::from_dlt(capture.get_datalink().0),
            capture,
            savefile,
            stop,
            deadline: options.duration.map(|d| Instant::now() + d),
            remaining: options.count,
        })
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || self.remaining == Some(0)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

fn open_error(iface: &str, e: &pcap::Error) -> Error {
    let message = match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    };
    let lower = message.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        Error::Permission {
            name: iface.to_string(),
            message,
        }
    } else if lower.contains("no such device") {
        Error::NoInterface {
            name: iface.to_string(),
            available: names(),
        }
    } else {
        Error::Open {
            path: iface.to_string(),
            message,
        }
    }
}

impl Source for LiveCapture {
    fn name(&self) -> &str {
        &self.name
    }

    fn link(&self) -> Link {
        self.link
    }

    fn fill(&mut self, batch: &mut Batch) -> Fill {
        batch.clear(self.link);
        let started = Instant::now();
        while !batch.is_full() {
            if self.should_stop() {
                return Fill::Done;
            }
            match self.capture.next_packet() {
                Ok(p) => {
                    batch.push(
                        ts_ns(p.header.ts.tv_sec, p.header.ts.tv_usec * 1000),
                        p.header.len,
                        p.data,
                    );
                    if let Some(file) = &mut self.savefile {
                        file.write(&p);
                    }
                    if let Some(n) = &mut self.remaining {
                        *n -= 1;
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {
                    if !batch.frames.is_empty() || started.elapsed() >= FLUSH_EVERY {
                        return Fill::More;
                    }
                    std::thread::sleep(IDLE_WAIT);
                    continue;
                }
                Err(e) => return Fill::Failed(e.to_string()),
            }
            if started.elapsed() >= FLUSH_EVERY {
                break;
            }
        }
        Fill::More
    }

    fn drops(&mut self) -> Option<Drops> {
        if let Some(file) = &mut self.savefile {
            // Keep the copy readable as it grows.
            let _ = file.flush();
        }
        self.capture.stats().ok().map(|s| Drops {
            received: u64::from(s.received),
            kernel: u64::from(s.dropped),
            interface: u64::from(s.if_dropped),
        })
    }
}
