//! Hostile and broken input: every capture of the corpus ends cleanly and in time, memory
//! stays bounded under floods of flows and fragments.

use super::util::{bin, classify_json, tmpdir, Report};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary with a time limit; returns (exit code, stdout, stderr).
fn run_limited(args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("portscope {args:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every capture of the corpus in `tests/corpus/` (a fifth of them malformed, fuzzed or
/// truncated on purpose): a report with exit 0, a report with a warning and exit 1, or one
/// error line and exit 2 when libpcap cannot open the file. Never a panic or a hang.
#[test]
fn every_corpus_capture_ends_cleanly() {
    let corpus = super::corpus::dir();
    // The captures only: the directory also holds the index, a README and LICENSES/.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("the corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "pcap" || x == "cap" || x == "pcapng")
        })
        .collect();
    files.sort();
    assert!(files.len() > 200);
    let (mut reports, mut refused) = (0, 0);
    for f in &files {
        let name = f.to_str().unwrap();
        let (code, out, err) = run_limited(
            &["classify", "--format", "json", name],
            Duration::from_secs(30),
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        match code {
            Some(0 | 1) => {
                let r: Report =
                    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
                r.check_totals();
                if code == Some(1) {
                    assert!(
                        err.starts_with(&format!(
                            "portscope: warning: {name}: reading stopped after packet "
                        )),
                        "{name}: {err}"
                    );
                }
                reports += 1;
            }
            Some(2) => {
                assert_eq!(err.lines().count(), 1, "{name}: {err}");
                assert!(
                    err.starts_with(&format!("portscope: cannot open capture {name}: ")),
                    "{name}: {err}"
                );
                // Nothing was read: the error line is the whole answer, no all-zero report.
                assert_eq!(out, "", "{name}");
                refused += 1;
            }
            other => panic!("{name}: exit {other:?}: {err}"),
        }
    }
    assert!(
        reports > 200 && refused > 0,
        "{reports} reports, {refused} refused"
    );
}

/// Writes a classic pcap file of `n` 60-byte frames made by `frame(i)`, 1 µs apart.
fn write_capture(path: &Path, n: u32, frame: impl Fn(u32, &mut [u8; 60])) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(&[
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0,
    ])
    .unwrap();
    let mut f = [0u8; 60];
    for i in 0..n {
        frame(i, &mut f);
        let (sec, usec) = (1_700_000_000 + i / 1_000_000, i % 1_000_000);
        for v in [sec, usec, 60, 60] {
            out.write_all(&v.to_le_bytes()).unwrap();
        }
        out.write_all(&f).unwrap();
    }
    out.flush().unwrap();
}

/// An Ethernet/IPv4 frame from 10.0.0.1 to 10.(i)/8 with `proto`; the caller fills the rest.
fn ipv4(i: u32, proto: u8, f: &mut [u8; 60]) {
    f.fill(0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = proto;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    let d = i.to_be_bytes();
    f[30..34].copy_from_slice(&[11, d[1], d[2], d[3]]);
}

/// Peak RSS in MiB of `portscope args`, and its report.
fn peak_rss(name: &str, args: &[&str]) -> (u64, Report) {
    let dir = tmpdir(&format!("rss-{name}"));
    let time = dir.join("time");
    let out = Command::new("/usr/bin/time")
        .args([
            "-f",
            "%M",
            "-o",
            time.to_str().unwrap(),
            env!("CARGO_BIN_EXE_portscope"),
            "classify",
            "--format",
            "json",
        ])
        .args(args)
        .output()
        .expect("/usr/bin/time (Debian package time)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kib: u64 = std::fs::read_to_string(&time)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    (kib / 1024, serde_json::from_slice(&out.stdout).unwrap())
}

/// A SYN scan: 5 million distinct flows, classified with room for 100,000.
#[test]
fn a_five_million_flow_scan_stays_bounded() {
    let dir = tmpdir("scan");
    let path = dir.join("scan.pcap");
    let n = 5_000_000;
    write_capture(&path, n, |i, f| {
        ipv4(i, 6, f);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&445u16.to_be_bytes());
        f[46] = 0x50;
        f[47] = 0x02; // SYN
    });
    let (mib, r) = peak_rss("scan", &["--max-flows", "100000", path.to_str().unwrap()]);
    r.check_totals();
    assert_eq!(
        (r.packets, r.bytes, r.flows),
        (5_000_000, 300_000_000, 5_000_000)
    );
    assert_eq!(
        r.row("tcp/445").map(|x| (x.flows, x.packets)),
        Some((5_000_000, 5_000_000))
    );
    assert!(r.evicted_flows > 4_000_000, "{}", r.evicted_flows);
    assert!(mib < 150, "peak RSS {mib} MiB");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A flood of first fragments whose later fragments never come, and of later fragments
/// whose first never came: the fragment table stays bounded, every packet is counted.
#[test]
fn a_fragment_flood_stays_bounded() {
    let dir = tmpdir("fragments");
    let path = dir.join("frags.pcap");
    let n = 2_000_000;
    write_capture(&path, n, |i, f| {
        ipv4(i, 17, f);
        f[18..20].copy_from_slice(&(i as u16).to_be_bytes());
        if i % 2 == 0 {
            f[20] = 0x20; // more fragments, offset 0: a first fragment with a UDP header
            f[34..36].copy_from_slice(&50000u16.to_be_bytes());
            f[36..38].copy_from_slice(&389u16.to_be_bytes());
        } else {
            f[20] = 0x10; // a later fragment of a datagram never seen
            f[21] = 0x00;
            f[26..30].copy_from_slice(&[10, 0, 0, 2]);
        }
    });
    let (mib, r) = peak_rss(
        "fragments",
        &["--max-flows", "100000", path.to_str().unwrap()],
    );
    assert_eq!((r.packets, r.bytes), (2_000_000, 120_000_000));
    assert_eq!(r.row("udp/389").map(|x| x.packets), Some(1_000_000));
    assert_eq!(
        (r.unclassified.packets, r.orphan_fragments),
        (1_000_000, 1_000_000)
    );
    assert!(mib < 150, "peak RSS {mib} MiB");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn several_inputs_with_a_bad_one_report_the_rest() {
    let dir = tmpdir("several");
    let bad = dir.join("bad.pcap");
    std::fs::write(&bad, b"\xd4\xc3\xb2\xa1garbage").unwrap();
    let good = super::util::fixture("link_ethernet.pcap");
    let (r, out) = classify_json(&[
        &good,
        bad.to_str().unwrap(),
        &super::util::fixture("nanosecond.pcap"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(r.packets, 18);
    let read: Vec<_> = r
        .inputs
        .iter()
        .map(|i| (i.packets, i.error.is_some()))
        .collect();
    assert_eq!(read, [(12, false), (0, true), (6, false)]);
}
