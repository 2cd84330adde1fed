//! IPFIX export against real readers: nfdump's `nfcapd` collects what `--ipfix` sends and
//! `nfdump` reads it back (with `--ipfix-inner`, the flows inside tunnels in a domain of
//! their own); `ipfixDump` (libfixbuf) reads `--ipfix-file` and what a TCP collector
//! received. Bad collector URLs stop the run before any packet is read.

use super::util::{run, stderr, stdout, tmpdir, Report};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A port no one listens on right now.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nfcapd on 127.0.0.1, writing into `dir`; started, then waited for until it listens.
pub(super) struct Nfcapd {
    child: Child,
    dir: PathBuf,
    pub(super) port: u16,
}

impl Nfcapd {
    /// nfcapd with its default receive buffer (the system's, 208 KiB on Debian), so that
    /// what UDP export's pacing does not prevent shows as lost records.
    pub(super) fn start(dir: &Path) -> Nfcapd {
        let port = free_udp_port();
        let log = std::fs::File::create(dir.join("nfcapd.log")).unwrap();
        // A directory of its own: nfcapd starts a new file at every 5 minutes of the
        // clock, so a run may leave more than one.
        let files = dir.join("nfcapd");
        std::fs::create_dir_all(&files).unwrap();
        let child = Command::new("nfcapd")
            .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-w"])
            .arg(&files)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("nfcapd (Debian package nfdump) must be installed");
        let started = Instant::now();
        while !std::fs::read_to_string(dir.join("nfcapd.log"))
            .unwrap()
            .contains("Startup nfcapd.")
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nfcapd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nfcapd {
            child,
            dir: dir.to_path_buf(),
            port,
        }
    }

    /// Stops nfcapd (SIGTERM: it writes out its file) and returns the directory of the
    /// files it wrote (`nfdump -R` reads them all).
    pub(super) fn stop(mut self) -> PathBuf {
        // Give the last datagrams time to be read.
        std::thread::sleep(Duration::from_millis(500));
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        assert!(self.child.wait().unwrap().success());
        let log = std::fs::read_to_string(self.dir.join("nfcapd.log")).unwrap();
        // Not its sequence errors: nfdump 1.7.1 counts flow records only, and RFC 7011's
        // sequence numbers count the application names that come between them too
        // (`udp_messages_stay_within_the_mtu` checks those).
        assert!(log.contains(", Bad Packets: 0"), "{log}");
        let files = self.dir.join("nfcapd");
        assert!(
            std::fs::read_dir(&files).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("nfcapd.2")),
            "nfcapd wrote no file"
        );
        files
    }
}

impl Drop for Nfcapd {
    /// A test that failed before [`Nfcapd::stop`] leaves no collector behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The applicationName portscope gives a row, and nfdump's `%nbnam` of it: name/description.
/// A row inside tunnels is named as the same row outside.
pub(super) fn nbnam(r: &super::util::Row) -> String {
    let mut name = r.key();
    let kind = r.inner_match.as_ref().unwrap_or(&r.kind);
    if kind != "port" && kind != "ip-protocol" {
        name = format!("{name} {kind}");
    }
    // An SMB part's pipe or share type (`tcp/445 smb-pipe samr`).
    if let Some(what) = r.pipe.as_ref().or(r.share_type.as_ref()) {
        name = format!("{name} {what}");
    }
    if let Some(i) = &r.interface {
        name = format!(
            "{name} {}",
            i.name.clone().unwrap_or_else(|| i.uuid.clone())
        );
    }
    let services: Vec<&str> = r.services.iter().map(|s| s.name.as_str()).collect();
    // A range row's description says its services are a guess.
    let guess = if kind == "range" { "range guess: " } else { "" };
    let services = format!("{guess}{}", services.join(", "));
    let cut = |s: &str, n: usize| {
        let mut end = s.len().min(n);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    format!("{}/{}", cut(&name, 63), cut(&services, 187))
}

/// Packets per application that portscope's report says a collector should see: the rows
/// and, as `<no info>`, the unclassified flows (packets in no flow, such as later
/// fragments without their first, are not flows and are not exported).
fn expected(report: &Report, flows: &Path) -> BTreeMap<String, u64> {
    let unclassified = unclassified_packets(flows, false);
    assert!(unclassified <= report.unclassified.packets);
    per_application(&report.services, unclassified)
}

/// The same for the flows inside tunnels (`--ipfix-inner`): the report's tunneled rows,
/// summed over tunnels, and the unclassified inner flows (packets with no inner IP are in
/// no inner flow).
fn expected_inner(report: &Report, flows: &Path) -> BTreeMap<String, u64> {
    let unclassified = unclassified_packets(flows, true);
    let in_tunnels: u64 = report.tunnels.iter().map(|t| t.unclassified.packets).sum();
    assert!(unclassified <= in_tunnels);
    per_application(&report.tunneled, unclassified)
}

fn per_application(rows: &[super::util::Row], unclassified: u64) -> BTreeMap<String, u64> {
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows {
        *want.entry(nbnam(r)).or_default() += r.packets;
    }
    if unclassified > 0 {
        want.insert("<no info>".into(), unclassified);
    }
    want
}

/// The packets of the unclassified flows of a `--flows` file, outside or inside tunnels.
fn unclassified_packets(flows: &Path, inner: bool) -> u64 {
    std::fs::read_to_string(flows)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|f| f["row"] == "unclassified" && f.get("tunnel").is_some() == inner)
        .map(|f| f["orig_packets"].as_u64().unwrap() + f["resp_packets"].as_u64().unwrap())
        .sum()
}

/// The fixtures (each its own capture), and the corpus captures with the most packets.
fn captures() -> Vec<PathBuf> {
    let fixtures = super::fixtures::dir();
    let mut out: Vec<PathBuf> = super::fixtures::all()
        .iter()
        .filter(|f| f.name != "unsupported_link.pcap")
        .map(|f| fixtures.join(f.name))
        .collect();
    let mut corpus: Vec<(u64, PathBuf)> = super::corpus::inputs()
        .into_iter()
        .filter(|p| p.starts_with(super::corpus::dir()))
        .map(|p| (std::fs::metadata(&p).unwrap().len(), p))
        .collect();
    corpus.sort();
    out.extend(corpus.into_iter().rev().take(8).map(|(_, p)| p));
    out
}

/// What nfdump reads back from nfcapd's file, per exporter (observation domain 1 to
/// `exporters`): packets per `%nbnam`, and records; and each application's `%nbid`, which
/// must be the same for every record and exporter.
#[allow(clippy::type_complexity)]
pub(super) fn read_back(
    file: &Path,
    exporters: usize,
) -> (
    Vec<BTreeMap<String, u64>>,
    Vec<u64>,
    BTreeMap<String, String>,
) {
    let (got, records, ids, _) = read_back_octets(file, exporters);
    (got, records, ids)
}

/// [`read_back`], and per exporter the packets and octets of all its records.
#[allow(clippy::type_complexity)]
fn read_back_octets(
    file: &Path,
    exporters: usize,
) -> (
    Vec<BTreeMap<String, u64>>,
    Vec<u64>,
    BTreeMap<String, String>,
    Vec<(u64, u64)>,
) {
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(file)
        .args([
            "-q",
            "-N",
            "-o",
            "fmt:%exp|%nbid|%nbnam|%ipkt|%opkt|%ibyt|%obyt",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut got: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); exporters];
    let mut records = vec![0u64; exporters];
    let mut totals = vec![(0u64, 0u64); exporters];
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(f.len(), 7, "{line}");
        let exporter: usize = f[0].parse().unwrap();
        let packets: u64 = f[3].parse::<u64>().unwrap() + f[4].parse::<u64>().unwrap();
        let octets: u64 = f[5].parse::<u64>().unwrap() + f[6].parse::<u64>().unwrap();
        *got[exporter - 1].entry(f[2].to_string()).or_default() += packets;
        records[exporter - 1] += 1;
        totals[exporter - 1].0 += packets;
        totals[exporter - 1].1 += octets;
        // One applicationId per application, in every capture: engine 6, or zero.
        let id = ids
            .entry(f[2].to_string())
            .or_insert_with(|| f[1].to_string());
        assert_eq!(id, f[1], "{line}");
        assert!(
            f[1].starts_with(if f[2] == "<no info>" { "0..0" } else { "6.." }),
            "{line}"
        );
    }
    (got, records, ids, totals)
}

/// The oracle of IP-layer octets: tshark's IP packets in `capture` and the sum of their
/// outermost IP header's length (IPv4's total length, IPv6's payload length plus 40).
fn tshark_ip_octets(capture: &Path) -> (u64, u64) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(["-T", "fields", "-E", "occurrence=f", "-E", "separator=|"])
        .args(["-e", "frame.protocols", "-e", "ip.len", "-e", "ipv6.plen"])
        .output()
        .expect("tshark must be installed");
    assert!(out.status.success(), "{}", stderr(&out));
    let (mut packets, mut octets) = (0, 0);
    for line in stdout(&out).lines() {
        let f: Vec<&str> = line.split('|').collect();
        let layers: Vec<&str> = f[0].split(':').collect();
        let v4 = layers.iter().position(|l| *l == "ip");
        let v6 = layers.iter().position(|l| *l == "ipv6");
        let len = match (v4, v6) {
            (Some(a), Some(b)) if b < a => f[2].parse::<u64>().unwrap() + 40,
            (Some(_), _) => f[1].parse().unwrap(),
            (None, Some(_)) => f[2].parse::<u64>().unwrap() + 40,
            (None, None) => continue,
        };
        packets += 1;
        octets += len;
    }
    (packets, octets)
}

/// The IPFIX records portscope sends for the flows of a `--flows` file: one per outer
/// flow, or, for a flow split into parts (SMB), one per part and one for what its own row
/// kept.
fn records_of(flows: &Path) -> u64 {
    let text = std::fs::read_to_string(flows).unwrap();
    let mut records = 0u64;
    for line in text.lines().filter(|l| !l.contains("\"tunnel\":")) {
        let l: serde_json::Value = serde_json::from_str(line).unwrap();
        let count = |v: &serde_json::Value| {
            v["orig_packets"].as_u64().unwrap() + v["resp_packets"].as_u64().unwrap()
        };
        let parts = l["parts"].as_array().cloned().unwrap_or_default();
        let own = count(&l) - parts.iter().map(count).sum::<u64>();
        records += parts.len() as u64 + u64::from(parts.is_empty() || own > 0);
    }
    records
}

#[test]
fn nfdump_reads_back_the_packets_of_every_row() {
    let dir = tmpdir("ipfix-nfcapd");
    let collector = Nfcapd::start(&dir);
    let url = format!("udp://127.0.0.1:{}", collector.port);
    let captures = captures();
    let mut want: Vec<BTreeMap<String, u64>> = Vec::new();
    let mut flows_of: Vec<u64> = Vec::new();
    for (i, capture) in captures.iter().enumerate() {
        // One observation domain per capture: nfcapd numbers its exporters in the order
        // they appear, so exporter i + 1 is capture i.
        let flows = dir.join(format!("{i}.jsonl"));
        let domain = (i + 1).to_string();
        let out = run(&[
            "classify",
            "--format",
            "json",
            "--flows",
            flows.to_str().unwrap(),
            "--ipfix",
            &url,
            "--observation-domain",
            &domain,
            capture.to_str().unwrap(),
        ]);
        assert!(out.status.code().unwrap() < 2, "{}", stderr(&out));
        let report: Report = serde_json::from_slice(&out.stdout).unwrap();
        want.push(expected(&report, &flows));
        flows_of.push(records_of(&flows));
    }
    let file = collector.stop();
    let (got, records, ids, totals) = read_back_octets(&file, captures.len());
    let mut octets_checked = Vec::new();
    for (i, capture) in captures.iter().enumerate() {
        let name = capture.file_name().unwrap().to_string_lossy();
        assert_eq!(got[i], want[i], "{name}");
        assert_eq!(records[i], flows_of[i], "{name}");
        // Octets are IP-layer octets (RFC 7012), as tshark reads the IP headers, wherever
        // every IP packet tshark sees is in an exported flow (not in captures with later
        // fragments alone or broken IP headers, which belong to no flow).
        let (packets, octets) = tshark_ip_octets(capture);
        if packets == totals[i].0 {
            assert_eq!(totals[i].1, octets, "{name}");
            octets_checked.push(name.to_string());
        }
    }
    let some = ["demo.pcap", "smb.pcap", "tunnels.pcap", "link_ipv6.pcap"];
    for name in some
        .into_iter()
        .chain(["samrlab__powershell.exe_ad.pcapng"])
    {
        assert!(
            octets_checked.iter().any(|c| c == name),
            "{name}: {octets_checked:?}"
        );
    }
    // The fixtures' applications: the rows of a port, of a range and of an interface.
    assert!(ids.contains_key("tcp/445/Distributed File System, Fax Service, Group Policy, License Logging, Net Logon, Print Spooler, Remote Procedure Call (RPC) Locator, Server, Terminal Services Licensing"));
    assert!(ids.keys().any(|k| k.starts_with("tcp/49152-65535 range/")));
    assert!(ids.keys().any(|k| k.contains(" rpc-bind ")), "{ids:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The fixtures with tunnels: GRE (with Aruba's 802.11 inside), PPTP, ERSPAN, IP-in-IP,
/// L2TP, VXLAN and AH.
const TUNNEL_FIXTURES: [&str; 4] = [
    "tunnels.pcap",
    "aruba_gre.pcap",
    "real_pptp_gre.pcap",
    "ip_protocols.pcap",
];

/// `--ipfix-inner`: the flows inside tunnels go to an observation domain of their own, whose
/// records carry it (`%odid`, and nfdump's filter `observation domain id N`), with packets
/// per application equal to the report's tunneled rows; the outer domain's totals stay the
/// report's rows, with or without it.
#[test]
fn nfdump_reads_inner_flows_apart_in_their_own_domain() {
    let dir = tmpdir("ipfix-inner");
    let collector = Nfcapd::start(&dir);
    let url = format!("udp://127.0.0.1:{}", collector.port);
    let mut want = Vec::new();
    for (i, name) in TUNNEL_FIXTURES.iter().enumerate() {
        let capture = super::util::fixture(name);
        let flows = dir.join(format!("{i}.jsonl"));
        // nfcapd numbers its exporters in the order they appear: 3i + 1 is the run without
        // --ipfix-inner, 3i + 2 the outer flows of the run with it, 3i + 3 its inner flows
        // (the first of which follows the outer stream's templates).
        let domain = |k: u32| (10 * (i as u32 + 1) + k).to_string();
        let mut reports = Vec::new();
        for inner in [false, true] {
            let mut args = vec![
                "classify",
                "--format",
                "json",
                "--flows",
                flows.to_str().unwrap(),
                "--ipfix",
                &url,
            ];
            let outer_domain = domain(u32::from(inner));
            args.extend(["--observation-domain", &outer_domain]);
            if inner {
                // The inner domain is the outer one + 1 unless given.
                args.push("--ipfix-inner");
            }
            args.push(&capture);
            let out = run(&args);
            assert!(out.status.success(), "{}", stderr(&out));
            let report: Report = serde_json::from_slice(&out.stdout).unwrap();
            reports.push(report);
        }
        assert_eq!(reports[0].services, reports[1].services);
        let outer = expected(&reports[1], &flows);
        let inner = expected_inner(&reports[1], &flows);
        assert!(!inner.is_empty(), "{name}");
        want.push((domain(2), [outer.clone(), outer, inner]));
    }
    let file = collector.stop();
    let (got, _, _) = read_back(&file, 3 * TUNNEL_FIXTURES.len());
    for (i, (inner_domain, want)) in want.iter().enumerate() {
        let name = TUNNEL_FIXTURES[i];
        assert_eq!(&got[3 * i..3 * i + 3], want, "{name}");
        // The inner records carry their domain, and nfdump filters on it.
        let out = Command::new("nfdump")
            .arg("-R")
            .arg(&file)
            .args(["-q", "-N", "-o", "fmt:%exp|%odid|%ipkt|%opkt"])
            .arg(format!("observation domain id {inner_domain}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let (mut records, mut packets) = (0, 0);
        for line in stdout(&out).lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split('|').map(str::trim).collect();
            assert_eq!(f[0], (3 * i + 3).to_string(), "{line}");
            let odid = u64::from_str_radix(f[1].trim_start_matches("0x"), 16).unwrap();
            assert_eq!(odid.to_string(), *inner_domain, "{line}");
            records += 1;
            packets += f[2].parse::<u64>().unwrap() + f[3].parse::<u64>().unwrap();
        }
        assert!(records > 0, "{name}");
        assert_eq!(packets, want[2].values().sum::<u64>(), "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// UDP has no flow control: a run's flows, sent as fast as the socket takes them, fill a
/// collector's receive buffer in milliseconds (unpaced, nfcapd stored 36% to 53% of this
/// capture's records). Paced at the default rate, nfcapd with its default buffer stores
/// every record.
#[test]
fn paced_udp_export_of_many_flows_loses_nothing() {
    let dir = tmpdir("ipfix-many");
    let capture = dir.join("many.pcap");
    super::util::gen(&capture, true, 300_000, 100_000);
    let collector = Nfcapd::start(&dir);
    let url = format!("udp://127.0.0.1:{}", collector.port);
    let flows = dir.join("flows.jsonl");
    let out = run(&[
        "classify",
        "--format",
        "json",
        "--flows",
        flows.to_str().unwrap(),
        "--ipfix",
        &url,
        "--stats",
        capture.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Report = serde_json::from_slice(&out.stdout).unwrap();
    let want = expected(&report, &flows);
    let records = records_of(&flows);
    assert!(records > 60_000, "{records}");
    assert!(
        stderr(&out).contains(&format!(
            "portscope: IPFIX {url}: {records} flow records sent, 0 not sent\n"
        )),
        "{}",
        stderr(&out)
    );
    let file = collector.stop();
    let (got, got_records, _) = read_back(&file, 1);
    assert_eq!(got_records[0], records);
    assert_eq!(got[0], want);
    assert_eq!(
        got[0].values().sum::<u64>() + report.not_ip.packets,
        300_000
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// nfdump's lines of `file` in the format `fmt` (without `fmt:`), fields split at `|`.
pub(super) fn nfdump_lines(file: &Path, fmt: &str) -> Vec<Vec<String>> {
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(file)
        .args(["-q", "-N", "-o", &format!("fmt:{fmt}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('|').map(|f| f.trim().to_string()).collect())
        .collect()
}

/// One TCP connection to port 445 that lasts 10 s (an ACK every 250 ms, each way in turn,
/// after a SYN) and one DNS query, in capture time.
fn long_flow_capture(path: &Path) {
    let mut records = Vec::new();
    for i in 0..40u64 {
        let from_client = i % 2 == 0;
        let (src, dst, sport, dport) = if from_client {
            ([10, 0, 0, 1], [10, 0, 0, 2], 50_000, 445)
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1], 445, 50_000)
        };
        let b = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, 1000, 1000);
        let b = if i == 0 { b.syn() } else { b.ack(1) };
        let mut frame = Vec::new();
        b.write(&mut frame, &[]).unwrap();
        let len = u32::try_from(frame.len()).unwrap();
        records.push((1_700_000_000_000_000_000 + i * 250_000_000, len, frame));
    }
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 3], 64)
        .udp(50_001, 53)
        .write(&mut frame, &[0; 20])
        .unwrap();
    let len = u32::try_from(frame.len()).unwrap();
    records.push((1_700_000_005_000_000_000, len, frame));
    records.sort_by_key(|r| r.0);
    portscope::gen::write_pcap(path, 1, true, records).unwrap();
}

/// `classify --active-timeout 2` on a 10 s connection: a record every 2 s of capture time
/// with what came since (flowEndReason 2, "active timeout"), then the rest when it ends;
/// the records add up to the flow, and the report and `--flows` are unchanged.
#[test]
fn active_timeout_exports_a_long_flow_in_delta_records() {
    let dir = tmpdir("ipfix-active");
    let capture = dir.join("long.pcap");
    long_flow_capture(&capture);
    let collector = Nfcapd::start(&dir);
    let url = format!("udp://127.0.0.1:{}", collector.port);
    let (flows, file) = (dir.join("flows.jsonl"), dir.join("long.ipfix"));
    let out = run(&[
        "classify",
        "--format",
        "json",
        "--flows",
        flows.to_str().unwrap(),
        "--ipfix",
        &url,
        "--ipfix-file",
        file.to_str().unwrap(),
        "--active-timeout",
        "2",
        "--stats",
        capture.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Five records of the connection, one of the DNS flow.
    assert!(
        stderr(&out).contains(&format!(
            "portscope: IPFIX {url}: 6 flow records sent, 0 not sent\n"
        )),
        "{}",
        stderr(&out)
    );
    let report: Report = serde_json::from_slice(&out.stdout).unwrap();
    let plain: Report = serde_json::from_slice(
        &run(&["classify", "--format", "json", capture.to_str().unwrap()]).stdout,
    )
    .unwrap();
    assert_eq!(report.rows(), plain.rows());
    assert_eq!(report.row("tcp/445").unwrap().packets, 40);
    // `--flows` still has one line per flow, the same as without an active timeout.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&flows)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines, super::util::flow_lines_of(&capture));
    let file_back = collector.stop();
    let mut got: Vec<(String, String, u64, u64)> =
        nfdump_lines(&file_back, "%ts|%dp|%end|%ipkt|%opkt")
            .into_iter()
            .filter(|f| f[1] == "445")
            .map(|f| {
                (
                    f[0].clone(),
                    f[2].clone(),
                    f[3].parse().unwrap(),
                    f[4].parse().unwrap(),
                )
            })
            .collect();
    got.sort();
    let got: Vec<(&str, u64, u64)> = got
        .iter()
        .map(|(_, end, i, o)| (end.as_str(), *i, *o))
        .collect();
    // Due at 2, 4, 6 and 8 s (checked once a second): 8 packets each, 4 each way, with
    // flowEndReason 2 (active timeout); the last 8 when the input ends (4, forced end).
    assert_eq!(
        got,
        [
            ("2", 4, 4),
            ("2", 4, 4),
            ("2", 4, 4),
            ("2", 4, 4),
            ("4", 4, 4)
        ]
    );
    // The file holds the same records (and the names of the two rows).
    assert_eq!(ipfix_dump_stats(&file).1, 6 + 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `ipfixDump -s`: (messages, data records), after checking it read the file cleanly.
fn ipfix_dump_stats(file: &Path) -> (u64, u64) {
    let (messages, records, _) = ipfix_dump_templates(file);
    (messages, records)
}

/// `ipfixDump -s`: messages, data records, and data records per template ID.
fn ipfix_dump_templates(file: &Path) -> (u64, u64, BTreeMap<u16, u64>) {
    let out = Command::new("ipfixDump")
        .arg("-s")
        .arg("-i")
        .arg(file)
        .output()
        .expect("ipfixDump (Debian package libfixbuf-tools) must be installed");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let text = stdout(&out);
    let stats = text
        .lines()
        .find(|l| l.starts_with("*** File Stats:"))
        .unwrap_or_else(|| panic!("{text}"));
    // *** File Stats: 3 Messages, 86 Data Records, 3 Template Records ***
    let n: Vec<u64> = stats
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    //   256 (0x0100)| 7
    let per_template = text
        .lines()
        .filter_map(|l| {
            let (id, count) = l.split_once('|')?;
            let id = id.split_whitespace().next()?.parse().ok()?;
            Some((id, count.trim().parse().ok()?))
        })
        .collect();
    (n[0], n[1], per_template)
}

/// `--ipfix-file --ipfix-inner`: the inner flows follow in their own domain, with their own
/// templates (259, 260) and the application names again; ipfixDump reads it all.
#[test]
fn ipfix_dump_reads_inner_flows_in_the_file() {
    let dir = tmpdir("ipfix-inner-file");
    let tunnels = super::util::fixture("tunnels.pcap");
    let flows = dir.join("flows.jsonl");
    let (plain, inner) = (dir.join("plain.ipfix"), dir.join("inner.ipfix"));
    for (file, with_inner) in [(&plain, false), (&inner, true)] {
        let mut args = vec!["classify", "-o", "/dev/null", "--flows"];
        args.extend([
            flows.to_str().unwrap(),
            "--ipfix-file",
            file.to_str().unwrap(),
        ]);
        if with_inner {
            args.push("--ipfix-inner");
        }
        args.push(&tunnels);
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // tunnels.pcap: 7 outer flows (all IPv4) of 5 applications, and 8 inner ones (one
    // IPv6) of 5 more; each domain names every application of the run.
    let lines = std::fs::read_to_string(&flows).unwrap();
    let inner_flows = lines.lines().filter(|l| l.contains("\"tunnel\":")).count() as u64;
    assert_eq!((records_of(&flows), inner_flows), (7, 8));
    let (_, records, templates) = ipfix_dump_templates(&plain);
    assert_eq!(records, 7 + 5);
    assert_eq!(templates, BTreeMap::from([(256, 7), (257, 0), (258, 5)]));
    let (messages, records, templates) = ipfix_dump_templates(&inner);
    assert_eq!(records, 7 + 8 + 2 * 10);
    assert_eq!(
        templates,
        BTreeMap::from([(256, 7), (257, 0), (258, 20), (259, 7), (260, 1)])
    );
    // Templates, names and records in each domain.
    assert_eq!(messages, 6);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The file is written from records sorted by their content, so it is the same whatever
/// order the flows ended in: for any `--threads`, but for the export time in each message
/// header.
#[test]
fn the_ipfix_file_is_the_same_for_any_thread_count() {
    let dir = tmpdir("ipfix-threads");
    let capture = dir.join("gen.pcap");
    super::util::gen(&capture, false, 200_000, 20_000);
    let mut files = Vec::new();
    for threads in ["1", "2", "3"] {
        let file = dir.join(format!("{threads}.ipfix"));
        let out = run(&[
            "classify",
            "--threads",
            threads,
            "-o",
            "/dev/null",
            "--ipfix-inner",
            "--ipfix-file",
            file.to_str().unwrap(),
            capture.to_str().unwrap(),
            &super::util::fixture("tunnels.pcap"),
            &super::util::fixture("aruba_gre.pcap"),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut bytes = std::fs::read(&file).unwrap();
        // Zero each message's export time (bytes 4 to 8 of its header).
        let mut at = 0;
        while at < bytes.len() {
            bytes[at + 4..at + 8].fill(0);
            at += usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        }
        assert_eq!(at, bytes.len());
        files.push(bytes);
    }
    // About 19,000 flows of 74 bytes, and the inner flows.
    assert!(files[0].len() > 1_400_000, "{}", files[0].len());
    assert!(files[1] == files[0] && files[2] == files[0]);
    let (_, _, templates) = ipfix_dump_templates(&dir.join("2.ipfix"));
    assert!(templates[&259] > 0, "{templates:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ipfix_dump_reads_the_file_and_a_tcp_stream() {
    let dir = tmpdir("ipfix-file");
    let demo = super::util::fixture("demo.pcap");
    let file = dir.join("demo.ipfix");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let collector = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        s.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let out = run(&[
        "classify",
        "--ipfix-file",
        file.to_str().unwrap(),
        "--ipfix",
        &url,
        "--stats",
        &demo,
        "-o",
        dir.join("report.txt").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "portscope: IPFIX {url}: 61 flow records sent, 0 not sent\n"
        )),
        "{}",
        stderr(&out)
    );
    let received = collector.join().unwrap();
    let stream = dir.join("tcp.ipfix");
    std::fs::write(&stream, &received).unwrap();
    // demo.pcap: 61 flows (one unclassified) and 25 rows, each an application named once.
    let report: Report =
        serde_json::from_slice(&run(&["classify", "--format", "json", &demo]).stdout).unwrap();
    assert_eq!((report.flows, report.services.len()), (61, 25));
    let (_, records) = ipfix_dump_stats(&file);
    assert_eq!(records, 61 + 25);
    let (_, records) = ipfix_dump_stats(&stream);
    assert_eq!(records, 61 + 25);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn udp_messages_stay_within_the_mtu() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let url = format!("udp://{}", socket.local_addr().unwrap());
    let out = run(&[
        "classify",
        "--ipfix",
        &url,
        "--ipfix-mtu",
        "600",
        "--observation-domain",
        "77",
        &super::util::fixture("demo.pcap"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut buf = [0u8; 65536];
    let mut next_sequence = 0u32;
    let mut records = 0;
    let mut messages = 0;
    while let Ok(n) = socket.recv(&mut buf) {
        let m = &buf[..n];
        assert!(n <= 600, "{n}");
        assert_eq!(u16::from_be_bytes([m[0], m[1]]), 10);
        assert_eq!(usize::from(u16::from_be_bytes([m[2], m[3]])), n);
        assert_eq!(u32::from_be_bytes([m[12], m[13], m[14], m[15]]), 77);
        assert_eq!(
            u32::from_be_bytes([m[8], m[9], m[10], m[11]]),
            next_sequence
        );
        // Count the data records of the message's data sets (256 and up).
        let mut at = 16;
        while at < n {
            let id = u16::from_be_bytes([m[at], m[at + 1]]);
            let len = usize::from(u16::from_be_bytes([m[at + 2], m[at + 3]]));
            let count = match id {
                256 => (len - 4) / 74,
                257 => (len - 4) / 98,
                258 => 1,
                _ => 0,
            };
            next_sequence += count as u32;
            records += count;
            at += len;
        }
        messages += 1;
        if records == 61 + 25 {
            break;
        }
    }
    // 61 flows and the names of demo.pcap's 25 rows (see above).
    assert_eq!(records, 61 + 25);
    assert!(messages > 10, "{messages}");
}

#[test]
fn bad_collectors_stop_before_any_packet_is_read() {
    let demo = super::util::fixture("demo.pcap");
    for (url, want) in [
        ("udp://host", "portscope: IPFIX collector \"udp://host\": expected udp://HOST:PORT or tcp://HOST:PORT\n".to_string()),
        ("udp://[::1:4739", "portscope: IPFIX collector \"udp://[::1:4739\": expected udp://HOST:PORT or tcp://HOST:PORT\n".into()),
        ("tcp://h:99999", "portscope: IPFIX collector \"tcp://h:99999\": expected udp://HOST:PORT or tcp://HOST:PORT\n".into()),
        ("sctp://h:4739", "portscope: IPFIX collector \"sctp://h:4739\": unknown scheme \"sctp\" (udp or tcp)\n".into()),
    ] {
        let out = run(&["classify", "--ipfix", url, &demo]);
        assert_eq!(out.status.code(), Some(2), "{url}");
        assert_eq!(stderr(&out), want);
        assert!(out.stdout.is_empty(), "{url}: a report was printed");
        // live says the same before it opens the interface (which does not exist here).
        let out = run(&["live", "-i", "nope0", "--ipfix", url]);
        assert_eq!(out.status.code(), Some(2), "{url}");
        assert_eq!(stderr(&out), want);
    }
    // The resolver's own words end the line; they differ between resolvers.
    let out = run(&[
        "classify",
        "--ipfix",
        "udp://no-such-host.invalid:4739",
        &demo,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("portscope: IPFIX collector \"udp://no-such-host.invalid:4739\": cannot resolve \"no-such-host.invalid\": "),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let live = run(&[
        "live",
        "-i",
        "nope0",
        "--ipfix",
        "udp://no-such-host.invalid:4739",
    ]);
    assert_eq!(live.status.code(), Some(2));
    assert_eq!(stderr(&live), err);
}

#[test]
fn bad_inner_domains_stop_before_any_packet_is_read() {
    let demo = super::util::fixture("demo.pcap");
    for (args, want) in [
        (
            &["--ipfix-inner", "--inner-observation-domain", "1"][..],
            "portscope: --inner-observation-domain must differ from --observation-domain (1)\n",
        ),
        (
            &["--ipfix-inner", "--observation-domain", "4294967295"][..],
            "portscope: --observation-domain 4294967295 leaves no domain for inner flows: give --inner-observation-domain\n",
        ),
    ] {
        let mut all = vec!["classify", "--ipfix-file", "/dev/null"];
        all.extend(args);
        all.push(&demo);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&out), want);
        assert!(out.stdout.is_empty());
    }
    // The inner domain without inner flows is a mistake clap names.
    let out = run(&["classify", "--inner-observation-domain", "7", &demo]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("the following required arguments were not provided:\n  --ipfix-inner"),
        "{}",
        stderr(&out)
    );
}

/// The options that shape an export are refused without `--ipfix` or `--ipfix-file`,
/// rather than silently ignored (an operator who typed `--active-timeout` expects records).
#[test]
fn export_options_without_a_collector_or_file_are_refused() {
    let demo = super::util::fixture("demo.pcap");
    for args in [
        &["classify", "--active-timeout", "5"][..],
        &["classify", "--ipfix-inner"],
        &["classify", "--ipfix-rate", "0"],
        &["classify", "--ipfix-mtu", "9000"],
        &["classify", "--observation-domain", "3"],
        &["live", "-i", "lo", "--active-timeout", "5"],
    ] {
        let mut all = args.to_vec();
        if all[0] == "classify" {
            all.push(&demo);
        }
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).starts_with(
                "error: the following required arguments were not provided:\n  <--ipfix <URL>|--ipfix-file <FILE>>\n"
            ),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty());
    }
    // With a file to export to, they are taken.
    let out = run(&[
        "classify",
        "--ipfix-file",
        "/dev/null",
        "--active-timeout",
        "5",
        "--ipfix-inner",
        "--format",
        "json",
        &demo,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn unreachable_collectors_do_not_stop_the_report() {
    let demo = super::util::fixture("demo.pcap");
    // Nothing listens on these ports: UDP is fire and forget, TCP is retried and counted.
    let udp = format!("udp://127.0.0.1:{}", free_udp_port());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let out = run(&["classify", "--ipfix", &udp, &demo]);
    assert!(out.status.success());
    assert_eq!(stderr(&out), "");
    assert!(stdout(&out).contains("total"));
    let out = run(&["classify", "--ipfix", &tcp, &demo]);
    assert!(out.status.success());
    assert_eq!(
        stderr(&out),
        format!("portscope: warning: IPFIX collector {tcp}: 61 of 61 flow records not sent (Connection refused (os error 111))\n")
    );
    assert!(stdout(&out).contains("total"));
}
