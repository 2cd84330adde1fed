//! `portscope live` on the loopback interface. Capturing needs root (or CAP_NET_RAW), which CI
//! has. Each test talks to its own loopback address (`local`: one per test and per run) and
//! captures with a filter on it, so tests running side by side, in one run or in two runs on
//! the same host, do not see each other's packets.

use super::util::{bin, classify_json, stderr, tmpdir, Report};
use socket2::{Domain, SockAddr, Socket, Type};
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// This run's loopback address for one test: 127.X.Y.`test`, with X.Y the low 16 bits of
/// the process id. Linux delivers all of 127.0.0.0/8 on the loopback interface, so two runs
/// neither bind the same address and port nor capture each other's traffic.
fn local(test: u8) -> [u8; 4] {
    let [_, _, x, y] = std::process::id().to_be_bytes();
    [127, x, y, test]
}

/// The capture filter `host ADDRESS`, then `rest`.
fn host(addr: [u8; 4], rest: &str) -> String {
    format!("host {}{rest}", Ipv4Addr::from(addr))
}

const UDP_PORTS: [u16; 9] = [53, 88, 123, 137, 161, 389, 500, 1434, 4500];
const TCP_PORTS: [u16; 5] = [135, 445, 1433, 3389, 40000];

/// A running `portscope live`, killed when dropped: a test that fails before it stops the
/// capture leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // Already ended, in a test that passed: nothing to kill.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Starts `portscope live` with `args` and waits until it says it is capturing (on lo).
fn start(args: &[&str]) -> (Running, BufReader<std::process::ChildStderr>) {
    start_on("lo", args)
}

/// Starts `portscope live` with `args` and waits until it says it is capturing on `iface`.
fn start_on(iface: &str, args: &[&str]) -> (Running, BufReader<std::process::ChildStderr>) {
    let mut child = Running(
        bin()
            .arg("live")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portscope live"),
    );
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(&format!("portscope: capturing on {iface} ")),
        "portscope live said: {line}"
    );
    (child, err)
}

/// Waits for the process to end (at most `limit`), returning its NDJSON lines and status.
fn finish(
    mut child: Running,
    mut err: BufReader<std::process::ChildStderr>,
    limit: Duration,
) -> (Vec<serde_json::Value>, Option<i32>, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("portscope live did not stop in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let lines = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, status.code(), rest)
}

fn interrupt(child: &Running) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn report(line: &serde_json::Value) -> Report {
    serde_json::from_value(line.clone()).unwrap()
}

/// Sends one 10-byte datagram to each UDP port (listeners are bound first, so no ICMP
/// errors come back) and opens and resets one TCP connection to each TCP port: SYN,
/// SYN-ACK, ACK, RST (SO_LINGER 0). Client ports are fixed and in no catalog record.
fn traffic(ip: [u8; 4], udp: &[u16], tcp: &[u16]) {
    let addr = |port| SocketAddr::from((ip, port));
    let listeners: Vec<UdpSocket> = udp
        .iter()
        .map(|&p| UdpSocket::bind(addr(p)).expect("bind a UDP listener (needs root)"))
        .collect();
    let client = UdpSocket::bind(addr(50_100)).unwrap();
    for &p in udp {
        client.send_to(&[7; 10], addr(p)).unwrap();
    }
    let tcp_listeners: Vec<TcpListener> = tcp
        .iter()
        .map(|&p| TcpListener::bind(addr(p)).expect("bind a TCP listener (needs root)"))
        .collect();
    for (i, &p) in tcp.iter().enumerate() {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_reuse_address(true).unwrap();
        s.bind(&SockAddr::from(addr(50_101 + u16::try_from(i).unwrap())))
            .unwrap();
        s.connect(&SockAddr::from(addr(p))).unwrap();
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    }
    // Let the last packets reach the capture before the listeners go.
    std::thread::sleep(Duration::from_millis(300));
    drop((listeners, tcp_listeners));
}

fn rows(r: &Report) -> Vec<(String, u64, u64)> {
    let mut v: Vec<_> = r
        .services
        .iter()
        .map(|x| (x.key(), x.flows, x.packets))
        .collect();
    v.sort();
    v
}

fn expected(udp: &[u16], tcp: &[u16]) -> Vec<(String, u64, u64)> {
    let mut v: Vec<_> = udp.iter().map(|p| (format!("udp/{p}"), 1, 1)).collect();
    for p in tcp {
        // A listener on 40000 is below today's dynamic range: the seed's range row.
        let key = if *p == 40000 {
            "tcp/1024-65534".to_string()
        } else {
            format!("tcp/{p}")
        };
        v.push((key, 1, 4));
    }
    v.sort();
    v
}

#[test]
fn loopback_traffic_gives_exact_rows_and_intervals_add_up() {
    let addr = local(77);
    let (child, err) = start(&[
        "-i",
        "lo",
        "-f",
        &host(addr, ""),
        "--format",
        "json",
        "--interval",
        "0.3",
    ]);
    traffic(addr, &UDP_PORTS, &TCP_PORTS);
    std::thread::sleep(Duration::from_millis(400));
    interrupt(&child);
    let (lines, status, rest) = finish(child, err, Duration::from_secs(10));
    assert_eq!(status, Some(0), "{rest}");
    let last = lines.last().unwrap();
    assert_eq!(last["final"], true);
    let total = report(last);
    assert_eq!(rows(&total), expected(&UDP_PORTS, &TCP_PORTS));
    assert_eq!((total.packets, total.flows), (9 + 5 * 4, 14));
    assert_eq!(
        total.unclassified.packets + total.not_ip.packets + total.undecodable.packets,
        0
    );
    let dns = total.row("udp/53").unwrap();
    assert_eq!(dns.bytes, 14 + 20 + 8 + 10);
    assert_eq!(last["drops"]["kernel"], 0);
    assert_eq!(last["drops"]["shed"], 0);

    // The intervals (more than one) parse, carry their span, and add up to the final line.
    let intervals: Vec<Report> = lines[..lines.len() - 1].iter().map(report).collect();
    assert!(intervals.len() >= 2, "{} intervals", intervals.len());
    for l in &lines[..lines.len() - 1] {
        assert_eq!(l["final"], false);
        assert!(l["interval_end"].as_f64().unwrap() >= l["interval_start"].as_f64().unwrap());
    }
    let sum = |f: &dyn Fn(&Report) -> u64| intervals.iter().map(f).sum::<u64>();
    assert_eq!(sum(&|r| r.packets), total.packets);
    assert_eq!(sum(&|r| r.bytes), total.bytes);
    assert_eq!(sum(&|r| r.flows), total.flows);
    for (key, flows, packets) in rows(&total) {
        let p: u64 = intervals
            .iter()
            .filter_map(|r| r.row(&key))
            .map(|r| r.packets)
            .sum();
        let f: u64 = intervals
            .iter()
            .filter_map(|r| r.row(&key))
            .map(|r| r.flows)
            .sum();
        assert_eq!((f, p), (flows, packets), "{key}");
    }
}

#[test]
fn filter_count_and_write() {
    let dir = tmpdir("live-write");
    let file = dir.join("copy.pcap");
    let f = file.to_str().unwrap();
    let addr = local(78);
    let (child, err) = start(&[
        "-i",
        "lo",
        "-f",
        &host(addr, " and udp"),
        "--format",
        "json",
        "-w",
        f,
        "--duration",
        "30",
    ]);
    traffic(addr, &UDP_PORTS, &TCP_PORTS);
    interrupt(&child);
    let (lines, status, rest) = finish(child, err, Duration::from_secs(10));
    assert_eq!(status, Some(0), "{rest}");
    let total = report(lines.last().unwrap());
    // The filter kept the UDP datagrams only.
    assert_eq!(rows(&total), expected(&UDP_PORTS, &[]));
    // The copy on disk classifies the same.
    let (offline, _) = classify_json(&[f]);
    assert_eq!(rows(&offline), rows(&total));
    assert_eq!(
        (offline.packets, offline.bytes),
        (total.packets, total.bytes)
    );

    // --count stops by itself.
    let addr = local(79);
    let (child, err) = start(&[
        "-i",
        "lo",
        "-f",
        &host(addr, ""),
        "--format",
        "json",
        "--count",
        "3",
    ]);
    traffic(addr, &UDP_PORTS, &[]);
    let (lines, status, _) = finish(child, err, Duration::from_secs(10));
    assert_eq!(status, Some(0));
    assert_eq!(report(lines.last().unwrap()).packets, 3);
}

/// `-w -`, as tcpdump takes it: the packets on standard output as a pcap stream, the
/// reports on standard error; the stream classifies as the capture's own report says.
#[test]
fn write_to_standard_output_moves_the_reports_to_standard_error() {
    let addr = local(81);
    let (mut child, mut err) = start(&[
        "-i",
        "lo",
        "-f",
        &host(addr, " and udp"),
        "--format",
        "json",
        "-w",
        "-",
        "--duration",
        "30",
    ]);
    traffic(addr, &UDP_PORTS, &[]);
    interrupt(&child);
    let mut packets = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut packets)
        .unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    // A classic pcap stream: the magic of either byte order.
    assert!(
        matches!(
            &packets[..4],
            [0xd4, 0xc3, 0xb2, 0xa1] | [0xa1, 0xb2, 0xc3, 0xd4]
        ),
        "{:?}",
        &packets[..packets.len().min(8)]
    );
    let last: serde_json::Value = rest
        .lines()
        .rfind(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no report on standard error: {rest}"));
    assert_eq!(last["final"], true);
    let total = report(&last);
    assert_eq!(rows(&total), expected(&UDP_PORTS, &[]));
    let dir = tmpdir("live-write-stdout");
    let file = dir.join("stream.pcap");
    std::fs::write(&file, &packets).unwrap();
    let (offline, _) = classify_json(&[file.to_str().unwrap()]);
    assert_eq!(rows(&offline), rows(&total));
    assert_eq!(
        (offline.packets, offline.bytes),
        (total.packets, total.bytes)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn duration_stops_a_quiet_capture() {
    let started = Instant::now();
    let (child, err) = start(&[
        "-i",
        "lo",
        "-f",
        &host(local(80), ""),
        "--format",
        "json",
        "--duration",
        "1",
        "--interval",
        "0.4",
    ]);
    let (lines, status, _) = finish(child, err, Duration::from_secs(10));
    assert_eq!(status, Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
    let last = report(lines.last().unwrap());
    assert_eq!(last.packets, 0);
    // A quiet link still reports every interval.
    assert!(lines.len() >= 3, "{} lines", lines.len());
}

#[test]
fn bad_interface_and_filter() {
    let out = bin().args(["live", "-i", "nope0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("portscope: no capture interface named \"nope0\" (available: "),
        "{err}"
    );
    assert!(err.contains("lo"));
    assert_eq!(err.lines().count(), 1);
    let out = bin()
        .args(["live", "-i", "lo", "-f", "hst foo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "portscope: bad filter \"hst foo\": can't parse filter expression: syntax error\n"
    );
}

#[test]
fn no_permission_says_how_to_grant_it() {
    // Drop root for this one run, as an operator without privileges would be.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_portscope"))
        .args(["live", "-i", "lo"])
        .output()
        .expect("setpriv (util-linux) runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "portscope: no permission to capture on lo (socket: Operation not permitted): capture needs root, or CAP_NET_RAW and CAP_NET_ADMIN: sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v portscope)\"\n"
    );
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2)")
        .success()
}

/// A veth pair named after this test run (`ps`, the process id in hex, `a` or `b`: at most
/// 9 bytes, within the 15 an interface name may have), so that two runs on one host do not
/// take each other's interfaces. Deleted on drop, also when an assertion fails.
struct Veth {
    a: String,
    b: String,
}

impl Veth {
    fn new() -> Veth {
        let id = format!("ps{:x}", std::process::id());
        let veth = Veth {
            a: format!("{id}a"),
            b: format!("{id}b"),
        };
        // A pair left by an earlier run with the same process id goes first (quietly: there
        // is usually none).
        veth.delete();
        assert!(ip(&[
            "link", "add", &veth.a, "type", "veth", "peer", "name", &veth.b
        ]));
        // No IPv6 on the pair: the kernel would send its own router solicitations and
        // multicast listener reports on it, and the tests count every packet.
        for end in [&veth.a, &veth.b] {
            let knob = format!("/proc/sys/net/ipv6/conf/{end}/disable_ipv6");
            if std::path::Path::new(&knob).exists() {
                std::fs::write(&knob, "1").unwrap();
            }
        }
        assert!(ip(&["link", "set", &veth.a, "up"]) && ip(&["link", "set", &veth.b, "up"]));
        veth
    }

    /// Deletes both ends (deleting one takes its peer); quiet if they are already gone.
    fn delete(&self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.a])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        self.delete();
    }
}

/// The interface goes away mid-capture: a final summary, a clear message, exit 1, no hang.
#[test]
fn interface_disappearing_ends_with_a_summary() {
    let veth = Veth::new();
    let mut child = Running(
        bin()
            .args([
                "live",
                "-i",
                &veth.b,
                "--format",
                "json",
                "--interval",
                "0.2",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(&format!("portscope: capturing on {}", veth.b)),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(ip(&["link", "del", &veth.a]));
    let (lines, status, rest) = finish(child, err, Duration::from_secs(10));
    assert_eq!(status, Some(1));
    assert!(
        rest.starts_with(&format!("portscope: capture on {} stopped: ", veth.b)),
        "{rest}"
    );
    assert_eq!(lines.last().unwrap()["final"], true);
}

/// GRE sent through a raw socket on loopback: the inner flow is reported in every interval
/// that carries it, and the intervals add up to the final line's `tunneled` rows.
#[test]
fn tunnels_in_live_intervals() {
    let addr = local(92);
    let (child, err) = start(&[
        "-i",
        "lo",
        "-f",
        &host(addr, " and proto gre"),
        "--format",
        "json",
        "--interval",
        "0.3",
    ]);
    let gre = Socket::new(Domain::IPV4, Type::RAW, Some(socket2::Protocol::from(47)))
        .expect("a raw GRE socket (needs root)");
    let to = SockAddr::from(SocketAddr::from((addr, 0)));
    for i in 0..3u8 {
        let mut packet = vec![0, 0, 0x08, 0x00];
        etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(50_000, 53)
            .write(&mut packet, &[i; 4])
            .unwrap();
        gre.send_to(&packet, &to).unwrap();
        std::thread::sleep(Duration::from_millis(350));
    }
    interrupt(&child);
    let (lines, status, rest) = finish(child, err, Duration::from_secs(10));
    assert_eq!(status, Some(0), "{rest}");
    let total = report(lines.last().unwrap());
    assert_eq!(rows(&total), [("gre".to_string(), 1, 3)]);
    let inner: Vec<_> = total
        .tunneled
        .iter()
        .map(|t| (t.tunnel.clone().unwrap(), t.key(), t.flows, t.packets))
        .collect();
    assert_eq!(inner, [("gre".to_string(), "udp/53".to_string(), 1, 3)]);
    // 14 (Ethernet) + 20 (IP) + 4 (GRE) + 20 (IP) + 8 (UDP) + 4.
    assert_eq!(total.tunnels[0].bytes, 3 * 70);
    let intervals: Vec<Report> = lines[..lines.len() - 1].iter().map(report).collect();
    let (flows, packets) = intervals
        .iter()
        .flat_map(|r| &r.tunneled)
        .fold((0, 0), |(f, p), t| (f + t.flows, p + t.packets));
    assert_eq!((flows, packets), (1, 3));
    assert!(
        intervals.iter().filter(|r| !r.tunneled.is_empty()).count() >= 2,
        "the inner flow shows in the intervals it was active in"
    );
}

/// The `N flow records sent` of `portscope: IPFIX URL: N flow records sent, 0 not sent`.
fn records_sent(stderr: &str, url: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("portscope: IPFIX {url}: ")))
        .unwrap_or_else(|| panic!("no IPFIX line in: {stderr}"));
    assert!(line.ends_with(" flow records sent, 0 not sent"), "{line}");
    line.split(' ').nth(3).unwrap().parse().unwrap()
}

/// Packets per application that a collector should see of a live report: its rows, and
/// its unclassified packets as `<no info>` (the capture has no fragments, so every
/// unclassified packet is in a flow).
fn expected_at_collector(total: &Report) -> std::collections::BTreeMap<String, u64> {
    let mut want = std::collections::BTreeMap::new();
    for r in &total.services {
        *want.entry(super::ipfix::nbnam(r)).or_default() += r.packets;
    }
    if total.unclassified.packets > 0 {
        want.insert("<no info>".to_string(), total.unclassified.packets);
    }
    want
}

/// tcpreplay sends 300,000 64-byte packets of the synthetic mix onto a veth pair, at
/// 300,000 a second (a rate benches/README.md measures for release builds; 30,000 from a debug
/// build, whose decoding is many times slower: at 100,000, with the rest of the suite
/// running beside it, it shed 1 packet of 300,000 once); `live --ipfix` on the other end exports to
/// nfcapd while it captures. Live counts every packet, and nfdump reads back, per
/// application, the packets of live's final rows, and as many records as live says it
/// sent: nothing lost.
#[test]
fn live_exports_to_nfcapd_while_tcpreplay_sends() {
    let pps = if cfg!(debug_assertions) {
        "--pps=30000"
    } else {
        "--pps=300000"
    };
    let dir = tmpdir("live-ipfix");
    let capture = dir.join("mix.pcap");
    super::util::gen(&capture, true, 300_000, 5_000);
    let veth = Veth::new();
    let collector = super::ipfix::Nfcapd::start(&dir);
    let url = format!("udp://127.0.0.1:{}", collector.port);
    let (child, err) = start_on(
        &veth.b,
        &[
            "-i",
            &veth.b,
            "--format",
            "json",
            // One line at the end: the test reads standard output once live has ended.
            "--interval",
            "3600",
            "--buffer-size",
            "67108864",
            "--ipfix",
            &url,
            "--stats",
        ],
    );
    let replay = Command::new("tcpreplay")
        .args(["-q", "-i", &veth.a, pps])
        .arg(&capture)
        .output()
        .expect("tcpreplay (Debian package tcpreplay) must be installed");
    assert!(replay.status.success(), "{}", stderr(&replay));
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&child);
    let (lines, status, rest) = finish(child, err, Duration::from_secs(30));
    assert_eq!(status, Some(0), "{rest}");
    let last = lines.last().unwrap();
    assert_eq!(last["final"], true);
    assert_eq!(last["drops"]["shed"], 0, "{last}");
    // What this test checks is the export: the collector holds exactly live's rows. The
    // kernel may drop a few packets when the rest of the suite loads both cores (152 of
    // 300,000 once, with tshark runs beside it); every one is counted, and live's rows
    // hold the rest.
    let kernel = last["drops"]["kernel"].as_u64().unwrap();
    assert!(kernel < 3_000, "{last}");
    let total = report(last);
    assert_eq!(total.packets + kernel, 300_000, "{last}");
    assert_eq!(total.orphan_fragments, 0);
    let sent = records_sent(&rest, &url);
    assert!(sent >= 5000, "{sent}");
    let file = collector.stop();
    let (got, records, _) = super::ipfix::read_back(&file, 1);
    assert_eq!(records[0], sent);
    assert_eq!(got[0], expected_at_collector(&total));
    assert_eq!(
        got[0].values().sum::<u64>() + total.not_ip.packets,
        total.packets
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A Windows 10 SMB capture and a 29,254-byte offloaded SMB segment, replayed with
/// `tcpreplay --topspeed` onto a veth pair (MTU 65,535, so the big frame goes as one):
/// `live` at its default snap length and kernel buffer gives the rows `classify` gives for
/// the files, and the kernel drops nothing.
#[test]
fn live_at_its_defaults_gives_the_rows_of_classify() {
    let dir = tmpdir("live-defaults");
    let offload = super::smb_state::offloaded_write(&dir);
    let windows = super::util::fixture("real_smb_windows10.pcap");
    let files = [windows.as_str(), offload.to_str().unwrap()];
    let veth = Veth::new();
    for end in [&veth.a, &veth.b] {
        assert!(ip(&["link", "set", end, "mtu", "65535"]));
    }
    let (child, err) = start_on(&veth.b, &["-i", &veth.b, "--format", "json"]);
    let replay = Command::new("tcpreplay")
        .args(["-q", "--topspeed", "-i", &veth.a])
        .args(files)
        .output()
        .expect("tcpreplay (Debian package tcpreplay) must be installed");
    assert!(replay.status.success(), "{}", stderr(&replay));
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&child);
    let (lines, status, rest) = finish(child, err, Duration::from_secs(30));
    assert_eq!(status, Some(0), "{rest}");
    let last = lines.last().unwrap();
    assert_eq!(last["final"], true);
    assert_eq!(last["drops"]["kernel"], 0, "{last}");
    assert_eq!(last["drops"]["shed"], 0, "{last}");
    let (file, out) = classify_json(&files);
    assert!(out.status.success());
    let got = report(last);
    // Flows aside: live times flows by the clock, classify by the capture's (517 s long).
    let rows = |r: &Report| -> Vec<(String, u64, u64)> {
        r.rows().into_iter().map(|(k, _, p, b)| (k, p, b)).collect()
    };
    assert_eq!(rows(&got), rows(&file));
    assert_eq!((got.packets, got.bytes), (file.packets, file.bytes));
    // 125 Windows packets and the 38 of the offloaded write, one of them 29,308 bytes.
    assert_eq!(got.packets, 125 + 38);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `live --active-timeout 1` on a UDP exchange that lasts 3.5 s: the collector gets
/// records of it while it goes on (flowEndReason 2), and its records add up to the row.
#[test]
fn live_active_timeout_exports_a_long_flow_while_it_lasts() {
    let dir = tmpdir("live-active");
    let collector = super::ipfix::Nfcapd::start(&dir);
    let url = format!("udp://127.0.0.1:{}", collector.port);
    // A second collector that the test reads itself, while the flow goes on.
    let watcher = UdpSocket::bind("127.0.0.1:0").unwrap();
    watcher.set_nonblocking(true).unwrap();
    let watch_url = format!("udp://{}", watcher.local_addr().unwrap());
    let addr = local(93);
    let (child, err) = start(&[
        "-i",
        "lo",
        "-f",
        &host(addr, " and udp"),
        "--format",
        "json",
        "--ipfix",
        &url,
        "--ipfix",
        &watch_url,
        "--active-timeout",
        "1",
        "--stats",
    ]);
    let server = UdpSocket::bind(SocketAddr::from((addr, 53))).unwrap();
    let client = UdpSocket::bind(SocketAddr::from((addr, 50_200))).unwrap();
    let mut seen_while_open = false;
    let mut buf = [0u8; 65536];
    for _ in 0..35 {
        client
            .send_to(&[1; 20], server.local_addr().unwrap())
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // A message with a set of IPv4 flow records (template 256).
        while let Ok(n) = watcher.recv(&mut buf) {
            let m = &buf[..n];
            let mut at = 16;
            while at + 4 <= n {
                let id = u16::from_be_bytes([m[at], m[at + 1]]);
                let len = usize::from(u16::from_be_bytes([m[at + 2], m[at + 3]]));
                seen_while_open |= id == 256;
                at += len.max(4);
            }
        }
    }
    assert!(
        seen_while_open,
        "no record reached the collector while the flow went on"
    );
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&child);
    let (lines, status, rest) = finish(child, err, Duration::from_secs(10));
    assert_eq!(status, Some(0), "{rest}");
    let total = report(lines.last().unwrap());
    assert_eq!(rows(&total), [("udp/53".to_string(), 1, 35)]);
    let sent = records_sent(&rest, &url);
    assert_eq!(sent, records_sent(&rest, &watch_url));
    let file = collector.stop();
    let got = super::ipfix::nfdump_lines(&file, "%ts|%dp|%end|%ipkt|%opkt");
    assert_eq!(got.len() as u64, sent);
    let mut records: Vec<(String, String, u64)> = got
        .into_iter()
        .map(|f| {
            assert_eq!(f[1], "53");
            assert_eq!(f[4], "0");
            (f[0].clone(), f[2].clone(), f[3].parse().unwrap())
        })
        .collect();
    records.sort();
    // Every record but the last is an active timeout's (about one a second), the last
    // the rest at the end of the capture (forced end); together, the row's 35 packets.
    let ends: Vec<&str> = records.iter().map(|r| r.1.as_str()).collect();
    assert!(ends.len() >= 3, "{records:?}");
    assert!(
        ends[..ends.len() - 1].iter().all(|&e| e == "2"),
        "{records:?}"
    );
    assert_eq!(ends[ends.len() - 1], "4", "{records:?}");
    assert_eq!(records.iter().map(|r| r.2).sum::<u64>(), 35);
    std::fs::remove_dir_all(&dir).unwrap();
}
