//! Flow export to the collectors operators already run: the finished flow records that
//! `--flows` writes, as IPFIX messages to UDP and TCP collectors (`--ipfix URL`) and to an
//! IPFIX file (`--ipfix-file`, RFC 5655: the messages one after another).
//!
//! One record per flow, per part of a flow split over service rows (SMB), and per active
//! timeout of a long flow; flows inside tunnels are exported only when asked (`--ipfix-inner`;
//! their packets are also in their tunnel's outer flow), in an observation domain of their
//! own, so a collector's totals of the outer domain equal portscope's. Each record's
//! `applicationId` names its service row; options records name the applications, before
//! the first record and, over UDP, again every so often (a collector may start late).

mod file;
pub mod ipfix;

pub use file::IpfixFile;

use crate::catalog::{Catalog, Match, PortTable};
use crate::flow::{FlowEnd, FlowRecord};
use ipfix::{Encoder, EndReason, Record};
use std::collections::HashMap;
use std::io::{self, Write};
use std::iter;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

/// The default UDP message size bound.
pub const DEFAULT_MTU: usize = 1400;

/// A file has no datagrams to fit: the largest messages IPFIX allows.
const FILE_MTU: usize = 65535;

/// What UDP export repeats, and how often.
const REFRESH: Refresh = Refresh {
    templates_every: 256,
    names_every: Duration::from_secs(60),
};

/// The default UDP pace, in data records per second: what a local nfcapd (nfdump 1.7.1)
/// with its default receive buffer stores without loss, on this project's 2-core machine
/// while portscope runs beside it (see the README's "Deployment").
pub const DEFAULT_RATE: u64 = 200_000;

/// A TCP collector that went away is tried again after this long, doubling up to the most.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MOST: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A collector URL that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("IPFIX collector {0:?}: expected udp://HOST:PORT or tcp://HOST:PORT")]
    Unparsable(String),
    #[error("IPFIX collector {url:?}: unknown scheme {scheme:?} (udp or tcp)")]
    Scheme { url: String, scheme: String },
    #[error("IPFIX collector {url:?}: cannot resolve {host:?}: {reason}")]
    Unresolvable {
        url: String,
        host: String,
        reason: String,
    },
}

/// The transport of a collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A collector, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl Target {
    /// Parses and resolves `[udp://|tcp://]HOST:PORT` (an IPv6 address in brackets).
    ///
    /// # Errors
    /// An unknown scheme, no port or a bad one, or a host that does not resolve.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let (transport, rest) = match url.split_once("://") {
            None => (Transport::Udp, url),
            Some(("udp", rest)) => (Transport::Udp, rest),
            Some(("tcp", rest)) => (Transport::Tcp, rest),
            Some((scheme, _)) => {
                return Err(TargetError::Scheme {
                    url: url.into(),
                    scheme: scheme.into(),
                })
            }
        };
        let bad = || TargetError::Unparsable(url.into());
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if port == 0 || host.is_empty() || host.contains(['/', '[', ']']) {
            return Err(bad());
        }
        let unresolvable = |reason: String| TargetError::Unresolvable {
            url: url.into(),
            host: host.into(),
            reason,
        };
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| unresolvable(e.to_string()))?
            .next()
            .ok_or_else(|| unresolvable("no address".into()))?;
        Ok(Target {
            url: url.into(),
            transport,
            addr,
        })
    }
}

/// How export went for one collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    /// Flow records handed to the collector's socket.
    pub sent: u64,
    /// Flow records that could not be sent (a TCP collector down), and the last reason.
    pub unsent: u64,
    pub error: Option<String>,
}

/// One application: a service row as IPFIX names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    pub selector: u32,
    /// `tcp/445`, `tcp/1024-65534 range`, `tcp/49667 rpc-bind SAMR`.
    pub name: String,
    /// The row's candidate services.
    pub description: String,
}

/// Settings of every export.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub domain: u32,
    /// Export the flows inside tunnels too, in this observation domain (`--ipfix-inner`).
    pub inner_domain: Option<u32>,
    /// UDP messages stay within this many bytes.
    pub mtu: usize,
    /// UDP messages carry at most this many data records per second (0: as fast as the
    /// socket takes them).
    pub rate: u64,
}

/// Paces UDP messages: a token bucket of data records, filled at the rate and holding a
/// millisecond's worth (at least one full message), so that a collector's receive buffer
/// never sees more than that at once. UDP has no flow control: without it, an offline
/// run's flows leave in one burst that fills the collector's buffer in milliseconds, and
/// what does not fit is lost without a word.
#[derive(Debug)]
struct Pacer {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    fn new(rate: u64, mtu: usize) -> Option<Pacer> {
        if rate == 0 {
            return None;
        }
        let rate = rate as f64;
        // The most records one message holds: IPv4 records of 74 bytes.
        let message = (mtu / 74) as f64;
        let burst = (rate / 1000.0).max(message);
        Some(Pacer {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        })
    }

    /// Waits until `records` may leave, and takes them from the bucket.
    fn wait(&mut self, records: u32) {
        let records = f64::from(records);
        loop {
            let now = Instant::now();
            let elapsed = now.duration_since(self.last).as_secs_f64();
            self.last = now;
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
            if self.tokens >= records.min(self.burst) {
                self.tokens -= records;
                return;
            }
            std::thread::sleep(Duration::from_secs_f64(
                (records.min(self.burst) - self.tokens) / self.rate,
            ));
        }
    }
}

/// The applications of a stream: every row named so far, by its match, in the order first
/// named. Looked up once per record: a hash map.
#[derive(Debug, Default)]
pub struct Applications {
    known: HashMap<Match, u32, foldhash::fast::RandomState>,
    list: Vec<Application>,
}

impl Applications {
    /// Every application named so far.
    pub fn all(&self) -> &[Application] {
        &self.list
    }

    /// The selector of `m`'s row, naming it (at the end of the list) if it is new.
    fn selector(&mut self, m: Match, catalog: &Catalog, table: &PortTable) -> u32 {
        *self.known.entry(m).or_insert_with(|| {
            let (name, description) = crate::report::names::application(&m, catalog, table);
            let selector = ipfix::selector(&name);
            self.list.push(Application {
                selector,
                name,
                description,
            });
            selector
        })
    }
}

/// The records of a run's flows: the outer flows, and apart the flows inside tunnels, which
/// go to an observation domain of their own.
#[derive(Debug, Default)]
pub struct Records {
    pub outer: Vec<Record>,
    pub inner: Vec<Record>,
}

/// The records of `flows` (the flows inside tunnels only when `inner`), appended to `out`;
/// the applications they name that `apps` did not know yet are appended to its list.
pub fn records(
    flows: &[FlowRecord],
    apps: &mut Applications,
    catalog: &Catalog,
    table: &PortTable,
    inner: bool,
    out: &mut Records,
) {
    let mut app_of = |m: Option<Match>| m.map_or(0, |m| apps.selector(m, catalog, table));
    let less =
        |n: [u64; 2], sent: [u64; 2]| [n[0].saturating_sub(sent[0]), n[1].saturating_sub(sent[1])];
    for f in flows {
        let out = match f.tunnel {
            None => &mut out.outer,
            Some(_) if inner => &mut out.inner,
            Some(_) => continue,
        };
        // A flow split into parts (an SMB connection's pipes and shares) is one record per
        // part, and one for what its own row kept. Of a flow whose active-timeout records
        // went out while it was open, only what is left, from the first packet after them.
        let (sent, start) = f
            .exported
            .as_deref()
            .map_or((([0; 2], [0; 2]), f.first_ns), |e| {
                ((e.packets, e.ip_bytes), e.first_ns)
            });
        let packets = less(f.packets, sent.0);
        if packets[0] + packets[1] > 0 {
            out.push(record(
                f,
                start,
                packets,
                less(f.ip_bytes, sent.1),
                app_of(f.row),
            ));
        }
        for p in &f.parts {
            let packets = less(p.packets, p.exported_packets);
            if packets[0] + packets[1] > 0 {
                let octets = less(p.ip_bytes, p.exported_ip_bytes);
                out.push(record(f, start, packets, octets, app_of(Some(p.row))));
            }
        }
    }
}

/// `octets` are IP-layer octets (RFC 7012's `octetDeltaCount`), not wire bytes.
fn record(f: &FlowRecord, start_ns: u64, packets: [u64; 2], octets: [u64; 2], app: u32) -> Record {
    let k = &f.key;
    let (o, r) = if f.a_is_origin { (0, 1) } else { (1, 0) };
    let ends = [(k.a, k.a_port), (k.b, k.b_port)];
    Record {
        start_ms: start_ns / 1_000_000,
        end_ms: f.last_ns / 1_000_000,
        src: ends[o].0,
        dst: ends[r].0,
        src_port: ends[o].1,
        dst_port: ends[r].1,
        proto: k.proto.0,
        tcp_flags: [f.tcp_flags[o], f.tcp_flags[r]],
        vlan: k.vlan,
        end: match f.end {
            FlowEnd::Idle => EndReason::IdleTimeout,
            FlowEnd::Closed => EndReason::EndOfFlow,
            FlowEnd::Evicted => EndReason::LackOfResources,
            FlowEnd::Finished => EndReason::ForcedEnd,
            FlowEnd::Active => EndReason::ActiveTimeout,
        },
        packets: [packets[o], packets[r]],
        octets: [octets[o], octets[r]],
        app,
    }
}

fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// When a UDP stream repeats what a collector that started late (or restarted) needs.
#[derive(Clone, Copy, Debug)]
pub struct Refresh {
    /// The templates (one message), after this many messages of records.
    pub templates_every: u32,
    /// The application names, after this long: a run has thousands of rows (4,138 on the
    /// reference mix, 1.1 MB of options), so repeating them by message count would send
    /// more names than records.
    pub names_every: Duration,
}

/// One IPFIX stream (a file, a connection, UDP messages to collectors): the templates
/// first, then each application's name before the first record that names it, then the
/// records, repeating templates and names as `refresh` asks. `out` takes each message,
/// its number of data records, and whether it carries only templates or names.
pub struct Stream {
    enc: Encoder,
    refresh: Option<Refresh>,
    /// Applications named on the stream so far.
    named: usize,
    since: u32,
    names_sent: Instant,
}

impl Stream {
    pub fn new(settings: Settings, refresh: Option<Refresh>) -> Stream {
        Stream::of(
            Encoder::new(settings.domain, settings.mtu, now_secs()),
            refresh,
        )
    }

    /// The stream of the flows inside tunnels, if `settings` asks for them.
    pub fn new_inner(settings: Settings, refresh: Option<Refresh>) -> Option<Stream> {
        let domain = settings.inner_domain?;
        let enc = Encoder::new_inner(domain, settings.mtu, now_secs());
        Some(Stream::of(enc, refresh))
    }

    fn of(enc: Encoder, refresh: Option<Refresh>) -> Stream {
        Stream {
            enc,
            refresh,
            named: 0,
            since: 0,
            names_sent: Instant::now(),
        }
    }

    /// Sends the names of the applications in `apps` not named on this stream yet, then
    /// `records` (which name only applications of `apps`).
    pub fn send<'r>(
        &mut self,
        apps: &[Application],
        records: impl IntoIterator<Item = &'r Record>,
        out: &mut impl FnMut(&[u8], u32, bool),
    ) {
        if self.enc.sequence() == 0 && self.named == 0 {
            self.templates(out);
        }
        let new = &apps[self.named.min(apps.len())..];
        if !new.is_empty() {
            self.names(new, out);
            self.named = apps.len();
        }
        for r in records {
            let Stream { enc, since, .. } = self;
            enc.record(r, &mut |m: &[u8], n: u32| {
                *since += 1;
                out(m, n, false);
            });
            let Some(refresh) = self.refresh else {
                continue;
            };
            if self.since >= refresh.templates_every {
                self.since = 0;
                // The records already encoded leave as records, before the templates.
                self.enc.flush(&mut |m: &[u8], n: u32| out(m, n, false));
                self.templates(out);
                if self.names_sent.elapsed() >= refresh.names_every {
                    self.names_sent = Instant::now();
                    self.names(apps, out);
                }
            }
        }
    }

    /// Sends one record encoded beforehand (by an encoder of this stream's domain); for
    /// streams without refresh, after [`Stream::send`] named the applications.
    fn encoded(&mut self, template: u16, record: &[u8], out: &mut impl FnMut(&[u8], u32, bool)) {
        self.enc
            .encoded(template, record, &mut |m: &[u8], n: u32| out(m, n, false));
    }

    /// Sends what is encoded and not sent yet.
    pub fn flush(&mut self, out: &mut impl FnMut(&[u8], u32, bool)) {
        self.enc.flush(&mut |m: &[u8], n: u32| out(m, n, false));
    }

    fn templates(&mut self, out: &mut impl FnMut(&[u8], u32, bool)) {
        self.enc.flush(&mut |m: &[u8], n: u32| out(m, n, false));
        self.enc.templates(&mut |m: &[u8], n: u32| out(m, n, true));
    }

    fn names(&mut self, apps: &[Application], out: &mut impl FnMut(&[u8], u32, bool)) {
        self.enc.flush(&mut |m: &[u8], n: u32| out(m, n, false));
        let mut out = |m: &[u8], n: u32| out(m, n, true);
        for a in apps {
            self.enc
                .application(a.selector, &a.name, &a.description, &mut out);
        }
        self.enc.flush(&mut out);
    }
}

/// A TCP collector: one connection, opened again with backoff when it fails.
struct TcpCollector {
    target: Target,
    stream: Option<TcpStream>,
    next_try: Instant,
    backoff: Duration,
    delivery: Delivery,
}

impl TcpCollector {
    /// Sends one message, connecting first when it is time to; counts what is lost.
    fn send(&mut self, msg: &[u8], records: u32, preamble: &[Vec<u8>]) {
        if self.stream.is_none() && Instant::now() >= self.next_try {
            match TcpStream::connect_timeout(&self.target.addr, CONNECT_TIMEOUT) {
                Ok(mut s) => {
                    // A new connection is a new transport session: templates first.
                    let sent = preamble.iter().try_for_each(|m| s.write_all(m));
                    match sent {
                        Ok(()) => {
                            self.stream = Some(s);
                            self.backoff = BACKOFF_FIRST;
                        }
                        Err(e) => self.failed(&e),
                    }
                }
                Err(e) => self.failed(&e),
            }
        }
        let Some(stream) = &mut self.stream else {
            self.delivery.unsent += u64::from(records);
            return;
        };
        match stream.write_all(msg) {
            Ok(()) => self.delivery.sent += u64::from(records),
            Err(e) => {
                self.failed(&e);
                self.delivery.unsent += u64::from(records);
            }
        }
    }

    fn failed(&mut self, e: &io::Error) {
        self.stream = None;
        self.delivery.error = Some(e.to_string());
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MOST);
    }
}

/// The UDP collectors of a run: one socket, a stream per observation domain, paced.
struct Udp {
    socket: UdpSocket,
    targets: Vec<(Target, Delivery)>,
    streams: Streams,
    pacer: Option<Pacer>,
}

/// The streams of a transport: the outer flows', and the inner flows' with `--ipfix-inner`.
struct Streams {
    outer: Stream,
    inner: Option<Stream>,
}

impl Streams {
    fn new(settings: Settings, refresh: Option<Refresh>) -> Streams {
        Streams {
            outer: Stream::new(settings, refresh),
            inner: Stream::new_inner(settings, refresh),
        }
    }

    fn send(
        &mut self,
        apps: &[Application],
        records: &Records,
        out: &mut impl FnMut(&[u8], u32, bool),
    ) {
        self.outer.send(apps, &records.outer, out);
        if let Some(inner) = &mut self.inner {
            if !records.inner.is_empty() {
                inner.send(apps, &records.inner, out);
            }
        }
    }

    fn flush(&mut self, out: &mut impl FnMut(&[u8], u32, bool)) {
        for s in iter::once(&mut self.outer).chain(&mut self.inner) {
            s.flush(out);
        }
    }
}

impl Udp {
    /// Sends each message to every target, paced.
    fn out<'s>(
        socket: &'s UdpSocket,
        targets: &'s mut [(Target, Delivery)],
        pacer: &'s mut Option<Pacer>,
    ) -> impl FnMut(&[u8], u32, bool) + 's {
        move |m: &[u8], n, pre| {
            if let Some(p) = pacer.as_mut() {
                p.wait(n);
            }
            let n = if pre { 0 } else { u64::from(n) };
            for (t, d) in targets.iter_mut() {
                // An unreachable UDP collector is not an error: nobody would know.
                match socket.send_to(m, t.addr) {
                    Ok(_) => d.sent += n,
                    Err(e) => {
                        d.unsent += n;
                        d.error = Some(e.to_string());
                    }
                }
            }
        }
    }
}

/// The TCP collectors of a run: one stream, each connection opened with what a new
/// transport session needs first (the templates and every name so far).
struct Tcp {
    collectors: Vec<TcpCollector>,
    streams: Streams,
    preamble: Vec<Vec<u8>>,
}

/// The collectors of a run and its IPFIX file, fed the flows as they finish, on the
/// pipeline's export thread while the run goes on: each flow becomes its records once, which
/// go to the network at once and, for the file, are encoded and kept (a third of a flow's
/// size) until the end.
pub struct Exporter<'a> {
    catalog: &'a Catalog,
    table: &'a PortTable,
    inner: bool,
    apps: Applications,
    records: Records,
    udp: Option<Udp>,
    tcp: Option<Tcp>,
    file: Option<IpfixFile>,
}

impl<'a> Exporter<'a> {
    /// Opens sockets for `targets`, and keeps the records for a file if `file`; a TCP
    /// collector that does not answer yet is not an error (it is tried again, and what it
    /// misses is counted).
    ///
    /// # Errors
    /// No UDP socket could be bound.
    pub fn new(
        targets: Vec<Target>,
        file: bool,
        settings: Settings,
        catalog: &'a Catalog,
        table: &'a PortTable,
    ) -> io::Result<Exporter<'a>> {
        let delivery = |t: &Target| Delivery {
            url: t.url.clone(),
            sent: 0,
            unsent: 0,
            error: None,
        };
        let (udp, tcp): (Vec<Target>, Vec<Target>) = targets
            .into_iter()
            .partition(|t| t.transport == Transport::Udp);
        let udp = if udp.is_empty() {
            None
        } else {
            let v6 = udp.iter().any(|t| t.addr.is_ipv6());
            Some(Udp {
                socket: UdpSocket::bind(if v6 { "[::]:0" } else { "0.0.0.0:0" })?,
                targets: udp
                    .into_iter()
                    .map(|t| {
                        let d = delivery(&t);
                        (t, d)
                    })
                    .collect(),
                streams: Streams::new(settings, Some(REFRESH)),
                pacer: Pacer::new(settings.rate, settings.mtu),
            })
        };
        let tcp = (!tcp.is_empty()).then(|| Tcp {
            collectors: tcp
                .into_iter()
                .map(|t| TcpCollector {
                    delivery: delivery(&t),
                    target: t,
                    stream: None,
                    next_try: Instant::now(),
                    backoff: BACKOFF_FIRST,
                })
                .collect(),
            streams: Streams::new(settings, None),
            preamble: Vec::new(),
        });
        Ok(Exporter {
            catalog,
            table,
            inner: settings.inner_domain.is_some(),
            apps: Applications::default(),
            records: Records::default(),
            udp,
            tcp,
            file: file.then(|| IpfixFile::new(settings)),
        })
    }

    /// Sends the records of `flows` to every collector, and encodes them for the file.
    pub fn send(&mut self, flows: &[FlowRecord]) {
        self.records.outer.clear();
        self.records.inner.clear();
        records(
            flows,
            &mut self.apps,
            self.catalog,
            self.table,
            self.inner,
            &mut self.records,
        );
        let apps = self.apps.all();
        if let Some(u) = &mut self.udp {
            let mut out = Udp::out(&u.socket, &mut u.targets, &mut u.pacer);
            u.streams.send(apps, &self.records, &mut out);
        }
        if let Some(t) = &mut self.tcp {
            let (preamble, collectors) = (&mut t.preamble, &mut t.collectors);
            t.streams
                .send(apps, &self.records, &mut |m: &[u8], n, pre| {
                    tcp_out(preamble, collectors, m, n, pre);
                });
        }
        if let Some(file) = &mut self.file {
            file.push(&self.records);
        }
    }

    /// Sends the records encoded so far without waiting for a full message (live: a
    /// collector sees records when they are handed over).
    pub fn flush(&mut self) {
        if let Some(u) = &mut self.udp {
            u.streams
                .flush(&mut Udp::out(&u.socket, &mut u.targets, &mut u.pacer));
        }
        if let Some(t) = &mut self.tcp {
            let (preamble, collectors) = (&mut t.preamble, &mut t.collectors);
            t.streams.flush(&mut |m: &[u8], n, pre| {
                tcp_out(preamble, collectors, m, n, pre);
            });
        }
    }

    /// Sends what is left and closes the connections: what each collector received, UDP
    /// collectors first, each in the order given; and the file's contents, if asked.
    pub fn finish(mut self) -> (Vec<Delivery>, Option<IpfixFile>) {
        self.flush();
        let mut deliveries = Vec::new();
        if let Some(u) = self.udp.take() {
            deliveries.extend(u.targets.into_iter().map(|(_, d)| d));
        }
        if let Some(mut t) = self.tcp.take() {
            for c in &mut t.collectors {
                if let Some(mut s) = c.stream.take() {
                    let _ = s.flush();
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    // Wait for the collector to close, so that everything sent was read.
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = io::copy(&mut s, &mut io::sink());
                }
            }
            deliveries.extend(t.collectors.into_iter().map(|c| c.delivery));
        }
        let apps = self.apps.list;
        let file = self.file.take().map(|file| file.naming(apps));
        (deliveries, file)
    }
}

/// A TCP stream's message: templates and names are kept for connections opened later.
fn tcp_out(
    preamble: &mut Vec<Vec<u8>>,
    collectors: &mut [TcpCollector],
    m: &[u8],
    n: u32,
    pre: bool,
) {
    if pre {
        preamble.push(m.to_vec());
        // A connection that is open gets it now; one opened later, with the rest.
        for c in collectors.iter_mut().filter(|c| c.stream.is_some()) {
            c.send(m, 0, &[]);
        }
        return;
    }
    for c in collectors.iter_mut() {
        c.send(m, n, preamble);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records of a flow with active-timeout records: each carries what came since the
    /// one before, from its first packet, and together they carry the flow exactly.
    #[test]
    fn active_timeout_records_add_up_to_the_flow() {
        use crate::flow::{Exported, Key, Packet, Shard, Tally, Timeouts};
        let catalog = Catalog::builtin().unwrap();
        let table = PortTable::build(&catalog);
        let s = 1_000_000_000;
        let timeouts = Timeouts {
            active_ns: 10 * s,
            ..Timeouts::ZEEK
        };
        let key = Key {
            a: [1; 16],
            b: [2; 16],
            a_port: 40000,
            b_port: 445,
            proto: crate::decode::IpProto::TCP,
            vlan: 0,
            spi: 0,
        };
        let mut shard: Shard = Shard::new(10);
        let mut tally = Tally::new(true);
        // 25 packets, one every 1.5 s, the first and every third from a.
        for i in 0..25u64 {
            let p = Packet {
                key,
                from_a: i % 3 == 0,
                ts_ns: i * 3 * s / 2,
                wire_len: 100 + i,
                ip_len: 86 + i,
                tcp_flags: 0x10,
            };
            shard.packet(
                &p,
                |k| crate::classify::classify(&table, k),
                &timeouts,
                &mut tally,
            );
        }
        shard.finish(&mut tally);
        let mut apps = Applications::default();
        let mut all = Records::default();
        records(&tally.flows, &mut apps, &catalog, &table, false, &mut all);
        let out = all.outer;
        let got: Vec<_> = out
            .iter()
            .map(|r| {
                (
                    r.end,
                    r.start_ms / 1000,
                    r.end_ms / 1000,
                    r.packets[0] + r.packets[1],
                )
            })
            .collect();
        // Checks at every second of capture time: due at 10.5 s (packets 0 to 6), at 21 s
        // (7 to 13), at 31.5 s (14 to 20); the rest at the end.
        assert_eq!(
            got,
            [
                (EndReason::ActiveTimeout, 0, 9, 7),
                (EndReason::ActiveTimeout, 10, 19, 7),
                (EndReason::ActiveTimeout, 21, 30, 7),
                (EndReason::ForcedEnd, 31, 36, 4),
            ]
        );
        let sum = |f: &dyn Fn(&Record) -> u64| out.iter().map(f).sum::<u64>();
        assert_eq!(sum(&|r| r.packets[0]), 9);
        assert_eq!(sum(&|r| r.packets[1]), 16);
        assert_eq!(sum(&|r| r.octets[0] + r.octets[1]), (86..111).sum::<u64>());
        assert!(out.iter().all(|r| r.app == out[0].app && r.app != 0));
        assert!(matches!(
            tally.flows[3].exported.as_deref(),
            Some(Exported { .. })
        ));
    }

    #[test]
    fn the_pacer_keeps_to_its_rate() {
        let mut p = Pacer::new(100_000, 1400).unwrap();
        let start = Instant::now();
        for _ in 0..1000 {
            p.wait(18);
        }
        // 18,000 records at 100,000 a second, less the 100 of the first millisecond.
        assert!(
            start.elapsed() >= Duration::from_millis(178),
            "{:?}",
            start.elapsed()
        );
        assert!(Pacer::new(0, 1400).is_none());
    }

    /// However long the pacer waited, it lets no more than a millisecond's worth leave at
    /// once: a pause does not become a burst that a collector's buffer cannot hold.
    #[test]
    fn the_pacer_sends_no_more_than_its_burst_after_a_pause() {
        let mut p = Pacer::new(100_000, 1400).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        for _ in 0..50 {
            p.wait(18);
        }
        // 900 records: the 100 of the burst at once, 800 at 100,000 a second.
        assert!(
            start.elapsed() >= Duration::from_millis(8),
            "{:?}",
            start.elapsed()
        );
        // A message bigger than the burst still leaves.
        let mut p = Pacer::new(1_000, 1400).unwrap();
        assert_eq!(p.burst, 18.0);
        p.wait(18);
    }

    #[test]
    fn udp_streams_repeat_templates_often_and_names_seldom() {
        let record = ipfix::Record {
            start_ms: 0,
            end_ms: 0,
            src: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1],
            dst: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2],
            src_port: 1,
            dst_port: 445,
            proto: 6,
            tcp_flags: [0, 0],
            vlan: 0,
            end: EndReason::EndOfFlow,
            packets: [1, 1],
            octets: [40, 40],
            app: 7,
        };
        let apps = Applications {
            known: HashMap::default(),
            list: vec![Application {
                selector: 7,
                name: "tcp/445".into(),
                description: "Server".into(),
            }],
        };
        // 512-byte messages hold 6 records: 100 records are 17 messages.
        let settings = Settings {
            domain: 1,
            inner_domain: None,
            mtu: 512,
            rate: 0,
        };
        let refresh = Refresh {
            templates_every: 4,
            names_every: Duration::from_secs(3600),
        };
        let (mut templates, mut names, mut records) = (0, 0, 0);
        let mut out = |m: &[u8], n, pre| {
            // Set id 2 (templates) or 258 (application names) opens a preamble message.
            match (pre, u16::from_be_bytes([m[16], m[17]])) {
                (true, 2) => templates += 1,
                (true, _) => names += n,
                (false, _) => records += n,
            }
        };
        let mut stream = Stream::new(settings, Some(refresh));
        stream.send(apps.all(), &[record; 60], &mut out);
        // Names already sent are not sent again.
        stream.send(apps.all(), &[record; 40], &mut out);
        stream.flush(&mut out);
        assert_eq!((templates, names, records), (1 + 4, 1, 100));
    }

    #[test]
    fn urls() {
        let t = Target::parse("127.0.0.1:4739").unwrap();
        assert_eq!((t.transport, t.addr.port()), (Transport::Udp, 4739));
        let t = Target::parse("tcp://[::1]:4739").unwrap();
        assert_eq!(
            (t.transport, t.addr.to_string()),
            (Transport::Tcp, "[::1]:4739".into())
        );
        let e = |u: &str| Target::parse(u).unwrap_err().to_string();
        assert_eq!(
            e("sctp://h:1"),
            "IPFIX collector \"sctp://h:1\": unknown scheme \"sctp\" (udp or tcp)"
        );
        for bad in [
            "udp://h",
            "udp://h:x",
            "udp://:1",
            "tcp://h:0",
            "h:70000",
            "udp://a/b:1",
        ] {
            assert_eq!(
                e(bad),
                format!("IPFIX collector {bad:?}: expected udp://HOST:PORT or tcp://HOST:PORT")
            );
        }
    }
}
