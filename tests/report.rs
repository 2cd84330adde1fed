//! The analyst's report (issue 16): `classify -f` against tcpdump, `--interval` against
//! tshark's io,stat, `--servers` against tshark's SYN-ACKs, and `--format html` in headless
//! Chromium.

use super::util::{classify_json, fixture, run, stderr, tmpdir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The report's JSON without its `inputs` (which name the file and what a filter left out).
fn without_inputs(json: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(json).unwrap();
    v.as_object_mut().unwrap().remove("inputs");
    v
}

/// Every fixture and every clean corpus capture portscope decodes.
fn captures() -> Vec<PathBuf> {
    super::corpus::inputs()
}

const FILTER: &str = "tcp port 445";

/// Captures libpcap (and so tcpdump) stops reading early that portscope's own readers read
/// whole, and why: tcpdump cannot give the filtered capture to compare with.
const LIBPCAP_STOPS: &[(&str, &str)] = &[(
    "pcpp__ipv4-malformed.pcap",
    "a pcapng file under a .pcap name whose interface descriptions libpcap refuses; \
     portscope's pcapng reader reads it",
)];

/// `-f EXPR` on a capture gives the report of the capture tcpdump filtered with EXPR, and
/// what it left out adds up to what the unfiltered run read.
fn filter_matches_tcpdump(capture: &Path, dir: &Path) -> Result<(), String> {
    let name = capture.to_str().unwrap();
    let filtered = dir
        .join(capture.file_name().unwrap())
        .with_extension("pcap");
    let tcpdump = Command::new("tcpdump")
        .args(["-n", "-r", name, "-w", filtered.to_str().unwrap(), FILTER])
        .output()
        .expect("tcpdump runs (apt-get install tcpdump)");
    let ours = run(&["classify", "--format", "json", "-f", FILTER, name]);
    if !filtered.exists() {
        // The filter does not compile for this link type: portscope says so too.
        return if ours.status.code() == Some(2) && stderr(&ours).contains("bad filter") {
            Ok(())
        } else {
            Err(format!("{name}: tcpdump failed, portscope did not"))
        };
    }
    let theirs = run(&["classify", "--format", "json", filtered.to_str().unwrap()]);
    let file = capture.file_name().unwrap().to_string_lossy();
    if LIBPCAP_STOPS.iter().any(|(f, _)| *f == file) && !tcpdump.status.success() {
        return Ok(());
    }
    // A capture libpcap stops reading early: both stop at the same packet.
    if tcpdump.status.success() != ours.status.success() {
        return Err(format!("{name}: tcpdump and portscope disagree on success"));
    }
    if without_inputs(&ours.stdout) != without_inputs(&theirs.stdout) {
        return Err(format!("{name}: the reports differ"));
    }
    let whole = run(&["classify", "--format", "json", name]);
    let input = |out: &[u8]| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(out).unwrap()["inputs"][0].clone()
    };
    let (f, w) = (input(&ours.stdout), input(&whole.stdout));
    let sum = |k: &str| f[k].as_u64().unwrap() + f["filtered"][k].as_u64().unwrap();
    if (sum("packets"), sum("bytes"))
        != (w["packets"].as_u64().unwrap(), w["bytes"].as_u64().unwrap())
    {
        return Err(format!("{name}: kept + filtered != read"));
    }
    Ok(())
}

#[test]
fn filter_gives_the_rows_of_a_capture_tcpdump_filtered() {
    let dir = tmpdir("filter");
    let files = captures();
    assert!(files.len() > 100, "{} captures", files.len());
    let (a, b) = files.split_at(files.len() / 2);
    let dir = dir.as_path();
    let failures: Vec<String> = std::thread::scope(|s| {
        let check = move |part: &[PathBuf]| -> Vec<String> {
            part.iter()
                .filter_map(|f| filter_matches_tcpdump(f, dir).err())
                .collect()
        };
        let h = s.spawn(move || check(b));
        let mut failures = check(a);
        failures.extend(h.join().unwrap());
        failures
    });
    assert!(failures.is_empty(), "{failures:#?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn filter_on_a_fixture_keeps_exactly_the_smb_flows() {
    for reader in ["auto", "libpcap"] {
        let (report, out) =
            classify_json(&["--reader", reader, "-f", FILTER, &fixture("demo.pcap")]);
        assert!(out.status.success());
        assert_eq!(report.rows(), [("tcp/445".to_string(), 11, 75, 43915)]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["inputs"][0]["filtered"],
            serde_json::json!({"packets": 425, "bytes": 291_112})
        );
    }
    let out = run(&["classify", "-f", FILTER, &fixture("demo.pcap")]);
    assert!(super::util::stdout(&out).contains(
        "note: the filter (-f) left out 425 packets (284.3 KiB), which are not counted above"
    ));
}

#[test]
fn bad_filter_is_one_line_and_exit_2() {
    let out = run(&["classify", "-f", "tcp port", &fixture("demo.pcap")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "portscope: bad filter \"tcp port\": can't parse filter expression: syntax error\n"
    );
    assert!(out.stdout.is_empty());
}

/// The JSON lines of `classify --interval STEP --format json`, parsed.
fn interval_lines(capture: &str, step: &str) -> Vec<serde_json::Value> {
    // Three workers for two cores: parts of intervals cross between workers.
    let out = run(&[
        "classify",
        "--threads",
        "3",
        "--format",
        "json",
        "--interval",
        step,
        capture,
    ]);
    assert!(out.status.code() != Some(2), "{capture}: {}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// tshark's frames and bytes per interval (`-q -z io,stat,STEP`), in order.
fn tshark_io_stat(capture: &str, step: &str) -> Vec<(u64, u64)> {
    let out = Command::new("tshark")
        .args(["-n", "-r", capture, "-q", "-z", &format!("io,stat,{step}")])
        .output()
        .expect("tshark runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("<>"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[2].parse().unwrap(), cells[3].parse().unwrap())
        })
        .collect()
}

/// tshark's time (ns since the epoch) and length of every frame.
fn frame_times(capture: &Path) -> Vec<(i128, u64)> {
    let (fields, _, _) =
        super::oracle::tshark_fields(capture, &["frame.time_epoch", "frame.len"], false);
    fields
        .lines()
        .filter_map(|l| {
            let (t, len) = l.split_once('\t')?;
            let (s, frac) = t.split_once('.').unwrap_or((t, "0"));
            let frac = format!("{frac:0<9}");
            let ns = s.parse::<i128>().ok()? * 1_000_000_000 + frac[..9].parse::<i128>().ok()?;
            Some((ns, len.trim().parse().ok()?))
        })
        .collect()
}

/// Packets and bytes per interval by portscope's rule, from tshark's frame times: intervals
/// of `step_ns` from the first frame; a frame earlier than the current interval (time going
/// backwards) counts in the current one.
fn by_rule(frames: &[(i128, u64)], step_ns: i128) -> Vec<(u64, u64)> {
    let Some(&(t0, _)) = frames.first() else {
        return Vec::new();
    };
    let mut bins: Vec<(u64, u64)> = vec![(0, 0)];
    for &(t, len) in frames {
        let k = usize::try_from((t - t0).div_euclid(step_ns)).unwrap_or(0);
        if k >= bins.len() {
            bins.resize(k + 1, (0, 0));
        }
        let last = bins.last_mut().unwrap();
        last.0 += 1;
        last.1 += len;
    }
    bins
}

/// Captures whose timestamps tshark reads otherwise than libpcap: (file, why).
const OTHER_TIMES: &[(&str, &str)] = &[(
    "tcpdump__timestamp_invalid_micro.pcap",
    "microsecond fields of a million and more: libpcap passes them on (portscope adds them \
     to the seconds), wiretap does not",
)];

/// How a capture's intervals compared.
enum Compared {
    /// With tshark's io,stat table.
    IoStat,
    /// With the rule alone: time goes backwards (tshark bins such frames in past intervals,
    /// which a report written as the capture is read cannot), or tshark prints no table (a
    /// capture of one instant).
    RuleOnly,
}

/// The intervals' packets and bytes are tshark's frames and bytes per interval, and the
/// final line is the report without `--interval`.
fn intervals_match_tshark(capture: &Path) -> Result<Compared, String> {
    let name = capture.to_str().unwrap();
    if OTHER_TIMES.iter().any(|(f, _)| name.ends_with(f)) {
        return Ok(Compared::RuleOnly);
    }
    let frames = frame_times(capture);
    let first = frames.first().map_or(0, |f| f.0);
    let span = frames.iter().map(|f| f.0).max().unwrap_or(0) - first;
    let monotonic = frames.windows(2).all(|w| w[0].0 <= w[1].0);
    // The first of 1 ms, 10 ms, ... that gives at most 40 intervals.
    let (step, step_ns) = [
        ("0.001", 1_000_000i128),
        ("0.01", 10_000_000),
        ("0.1", 100_000_000),
        ("1", 1_000_000_000),
        ("10", 10_000_000_000),
        ("100", 100_000_000_000),
        ("1000", 1_000_000_000_000),
        ("100000", 100_000_000_000_000),
        ("10000000", 10_000_000_000_000_000),
    ]
    .into_iter()
    .find(|(_, ns)| span / ns < 40)
    .unwrap_or(("1000000000", 1_000_000_000_000_000_000));
    let lines = interval_lines(name, step);
    let Some((last, intervals)) = lines.split_last() else {
        return Err(format!("{name}: no lines"));
    };
    if last["inputs"][0]["error"] != serde_json::Value::Null {
        // libpcap stops early where tshark reads on (tests/corpus.rs names them).
        return Ok(Compared::RuleOnly);
    }
    let ours: Vec<(u64, u64)> = intervals
        .iter()
        .map(|l| (l["packets"].as_u64().unwrap(), l["bytes"].as_u64().unwrap()))
        .collect();
    let rule = by_rule(&frames, step_ns);
    if ours != rule {
        return Err(format!(
            "{name} every {step} s: ours {ours:?}, by the rule {rule:?}"
        ));
    }
    if intervals.iter().any(|l| l["final"] != false) || last["final"] != true {
        return Err(format!("{name}: final flags"));
    }
    let mut last = last.clone();
    for k in ["interval_start", "interval_end", "drops", "final"] {
        last.as_object_mut().unwrap().remove(k);
    }
    let plain = run(&["classify", "--format", "json", name]);
    if last != serde_json::from_slice::<serde_json::Value>(&plain.stdout).unwrap() {
        return Err(format!("{name}: the final line is not the report"));
    }
    if !monotonic || span == 0 {
        return Ok(Compared::RuleOnly);
    }
    let theirs = tshark_io_stat(name, step);
    // tshark prints ceil(duration / interval) intervals, so a last packet exactly on an
    // interval's start is in no line of its table; portscope gives it its interval.
    let on_boundary = span % step_ns == 0;
    let shown = if on_boundary && ours.len() == theirs.len() + 1 {
        &ours[..theirs.len()]
    } else {
        &ours[..]
    };
    if shown != theirs {
        return Err(format!(
            "{name} every {step} s: ours {ours:?}, tshark {theirs:?}"
        ));
    }
    Ok(Compared::IoStat)
}

#[test]
fn intervals_count_what_tshark_io_stat_counts() {
    let files = captures();
    let (a, b) = files.split_at(files.len() / 2);
    let (failures, io_stat): (Vec<String>, usize) = std::thread::scope(|s| {
        let check = move |part: &[PathBuf]| -> (Vec<String>, usize) {
            let mut failures = Vec::new();
            let mut n = 0;
            for f in part {
                match intervals_match_tshark(f) {
                    Ok(Compared::IoStat) => n += 1,
                    Ok(Compared::RuleOnly) => {}
                    Err(e) => failures.push(e),
                }
            }
            (failures, n)
        };
        let h = s.spawn(move || check(b));
        let (mut failures, n) = check(a);
        let (theirs, m) = h.join().unwrap();
        failures.extend(theirs);
        (failures, n + m)
    });
    assert!(failures.is_empty(), "{failures:#?}");
    // Most captures go forward in time and span more than an instant: tshark's table.
    assert!(
        io_stat > files.len() * 3 / 4,
        "{io_stat} of {}",
        files.len()
    );
}

#[test]
fn interval_lines_of_a_fixture() {
    // 25 packets in the first 11 s, one 130 s after the first: empty intervals between.
    let lines = interval_lines(&fixture("dynamic.pcap"), "30");
    let spans: Vec<(f64, f64, u64, u64, bool)> = lines
        .iter()
        .map(|l| {
            (
                l["interval_start"].as_f64().unwrap() - 1_700_000_000.0,
                l["interval_end"].as_f64().unwrap() - 1_700_000_000.0,
                l["packets"].as_u64().unwrap(),
                l["bytes"].as_u64().unwrap(),
                l["final"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            (1.0, 31.0, 25, 3076, false),
            (31.0, 61.0, 0, 0, false),
            (61.0, 91.0, 0, 0, false),
            (91.0, 121.0, 0, 0, false),
            (121.0, 151.0, 1, 558, false),
            (1.0, 151.0, 26, 3634, true),
        ]
    );
    let out = run(&["classify", "--interval", "30", &fixture("dynamic.pcap")]);
    let text = super::util::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1],
        "SECONDS          ROW              MATCH        PACKETS  BYTES"
    );
    assert_eq!(
        lines[2],
        "0.000-30.000     tcp/20           expectation        4  716 B"
    );
    assert_eq!(
        lines[25],
        "120.000-150.000  udp/49152-65535  range              1  558 B"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("30.000-60.000 "))
            .count(),
        5
    );
}

#[test]
fn a_gap_of_centuries_is_one_interval_after_a_thousand_empty_ones() {
    // PcapPlusPlus's pcapng example jumps from 2015 to 2061 and then to the end of what
    // nanoseconds since 1970 hold (2554): 1,000 empty one-second intervals are reported one
    // by one after each jump, then the rest of the gap is one line.
    let capture = super::corpus::dir().join("pcpp__PcapExamples__pcapng-example.pcapng");
    let lines = interval_lines(capture.to_str().unwrap(), "1");
    let t0 = 1_422_527_998.578_402;
    let spans: Vec<(i64, i64, u64)> = lines
        .iter()
        .filter(|l| {
            let width = l["interval_end"].as_f64().unwrap() - l["interval_start"].as_f64().unwrap();
            l["packets"].as_u64().unwrap() > 0 || width > 1.5
        })
        .map(|l| {
            (
                (l["interval_start"].as_f64().unwrap() - t0).round() as i64,
                (l["interval_end"].as_f64().unwrap() - t0).round() as i64,
                l["packets"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            (0, 1, 1),
            (1000, 1_472_003_999, 0),
            (1_472_003_999, 1_472_004_000, 58),
            (1_472_004_999, 17_024_216_075, 0),
            (17_024_216_075, 17_024_216_075, 100),
            (0, 17_024_216_075, 159),
        ]
    );
    assert_eq!(lines.len(), 2004);
    assert!(lines.last().unwrap()["final"].as_bool().unwrap());
}

#[test]
fn bad_intervals_are_one_line_and_exit_2() {
    for bad in ["0", "-1", "nan"] {
        let arg = format!("--interval={bad}");
        let out = run(&["classify", &arg, &fixture("demo.pcap")]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert_eq!(
            stderr(&out),
            "portscope: --interval must be a positive number of seconds\n"
        );
    }
    let out = run(&[
        "classify",
        "--interval",
        "1",
        "--format",
        "csv",
        &fixture("demo.pcap"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "portscope: --interval writes JSON lines or a table: use --format json or --format table\n"
    );
}

/// tshark's SYN-ACKs of outer TCP (no tunnel, no ICMP quote): (source address, port).
fn syn_acks(capture: &Path) -> Vec<(String, u16)> {
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(capture)
        .args([
            "-Y",
            "tcp.flags.syn == 1 && tcp.flags.ack == 1 && !icmp && !icmpv6",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "tcp.srcport",
        ])
        .output()
        .expect("tshark runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            let (v4, v6, port) = (cells.first()?, cells.get(1)?, cells.get(2)?);
            // One IP header and one TCP header: not inside a tunnel.
            let addr = match (v4.is_empty(), v6.is_empty()) {
                (false, true) if !v4.contains(',') => v4,
                (true, false) if !v6.contains(',') => v6,
                _ => return None,
            };
            Some((addr.to_string(), port.parse().ok()?))
        })
        .collect()
}

/// The servers of a report: (address, row key) of every server row.
fn servers(report: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for s in report["servers"].as_array().unwrap() {
        for r in s["rows"].as_array().unwrap() {
            let row: super::util::Row = serde_json::from_value(r.clone()).unwrap();
            out.insert((s["address"].as_str().unwrap().to_string(), row.key()));
        }
    }
    out
}

#[test]
fn every_answered_handshake_on_a_catalogued_port_names_its_server() {
    let rules = super::oracle::Rules::load();
    let mut checked = 0;
    let mut missing = Vec::new();
    for f in captures() {
        let answers = syn_acks(&f);
        if answers.is_empty() {
            continue;
        }
        let out = run(&[
            "classify",
            "--servers",
            "--format",
            "json",
            f.to_str().unwrap(),
        ]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ours = servers(&report);
        for (addr, port) in answers {
            let row = format!("tcp/{port}");
            if rules.ports("tcp", port, port) != row {
                continue;
            }
            checked += 1;
            if !ours.contains(&(addr.clone(), row.clone())) {
                missing.push(format!("{}: {addr} {row}", f.display()));
            }
        }
    }
    missing.dedup();
    assert!(missing.is_empty(), "{missing:#?}");
    assert!(checked > 100, "{checked} SYN-ACKs checked");
}

/// (address, flows, packets, bytes, [(row key, match, packets)]) of each server.
type ServerRows = Vec<(String, u64, u64, u64, Vec<(String, String, u64)>)>;

fn server_rows(report: &serde_json::Value) -> ServerRows {
    report["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let rows = s["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let row: super::util::Row = serde_json::from_value(r.clone()).unwrap();
                    (row.key(), row.kind, row.packets)
                })
                .collect();
            (
                s["address"].as_str().unwrap().to_string(),
                s["flows"].as_u64().unwrap(),
                s["packets"].as_u64().unwrap(),
                s["bytes"].as_u64().unwrap(),
                rows,
            )
        })
        .collect()
}

#[test]
fn servers_of_fixtures() {
    let json = |name: &str, extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["classify", "--format", "json", "--servers"];
        args.extend_from_slice(extra);
        let f = fixture(name);
        args.push(&f);
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let s = |v: &str| v.to_string();
    // An SMB session: the file server answered on 445, the other host on 139.
    let smb = json("real_smb_windows10.pcap", &["--top", "1"]);
    assert_eq!(
        server_rows(&smb),
        [
            (
                // Six connections, each in its session row and its port row, one in its
                // SRVSVC pipe's too.
                s("192.168.199.133"),
                6,
                90,
                21694,
                vec![
                    (s("tcp/445"), s("smb-session"), 42),
                    (s("tcp/445"), s("smb-pipe"), 17),
                    (s("tcp/445"), s("port"), 31)
                ]
            ),
            (
                s("192.168.199.1"),
                2,
                35,
                5425,
                vec![
                    (s("tcp/139"), s("smb-session"), 12),
                    (s("tcp/139"), s("port"), 23)
                ]
            ),
        ]
    );
    assert_eq!(
        smb["services"][0]["top_pairs"],
        serde_json::json!([{"a": "192.168.199.132", "b": "192.168.199.133", "flows": 6, "packets": 42, "bytes": 15785}])
    );
    // NetBIOS names: the host that answered is a server; the subnet's broadcast address,
    // where the queries and registrations went, is not.
    let nbns = json("real_nbns.pcap", &[]);
    assert_eq!(
        server_rows(&nbns),
        [(
            s("192.168.239.2"),
            2,
            14,
            1540,
            vec![(s("udp/137"), s("port"), 14)]
        )]
    );
    // DCE/RPC: one server offers the endpoint mapper and the interfaces bound or announced.
    let rpc = json("rpc.pcap", &[]);
    assert_eq!(
        server_rows(&rpc),
        [(
            s("10.1.1.2"),
            6,
            18,
            2196,
            vec![
                (s("tcp/49667"), s("rpc-bind"), 5),
                (s("tcp/135"), s("rpc-bind"), 4),
                (s("tcp/49668"), s("rpc-bind"), 3),
                (s("udp/1030"), s("rpc-bind"), 2),
                (s("tcp/49669"), s("rpc-bind"), 2),
                (s("tcp/49670"), s("epm"), 2),
            ]
        )]
    );
    // The table prints a block per server; CSV adds a `server` column.
    let out = run(&["classify", "--servers", &fixture("real_smb_windows10.pcap")]);
    let text = super::util::stdout(&out);
    assert!(text.contains("\nSERVER 192.168.199.133  MATCH"), "{text}");
    assert!(
        text.contains("\n  tcp/445               port         SMB, SMB (named pipes)"),
        "{text}"
    );
    let out = run(&[
        "classify",
        "--servers",
        "--format",
        "csv",
        &fixture("real_smb_windows10.pcap"),
    ]);
    let text = super::util::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with(",tunnel,interface,pipe,share_type,server"));
    assert!(
        lines[6].starts_with("tcp/445,tcp,445,445,smb-session,SMB (session),Server,")
            && lines[6].ends_with(",6,42,15785,,,,,192.168.199.133"),
        "{}",
        lines[6]
    );
    // Without --servers, no `servers` key.
    let (plain, _) = classify_json(&[&fixture("rpc.pcap")]);
    assert!(plain.services.iter().all(|r| r.packets > 0));
    let out = run(&["classify", "--format", "json", &fixture("rpc.pcap")]);
    assert!(!super::util::stdout(&out).contains("\"servers\""));
    // The same for any number of threads.
    let demo = fixture("demo.pcap");
    let by_threads: Vec<Vec<u8>> = ["1", "3"]
        .iter()
        .map(|t| {
            let args = [
                "classify",
                "--format",
                "json",
                "--servers",
                "--top",
                "3",
                "--threads",
                t,
                &demo,
            ];
            run(&args).stdout
        })
        .collect();
    assert_eq!(by_threads[0], by_threads[1]);
    let out = run(&["classify", "--top", "0", &fixture("rpc.pcap")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), "portscope: --top must be at least 1\n");
}

/// The text of every `<td class="NAME">` in `html`, in order, as numbers.
fn cells(html: &str, name: &str) -> Vec<u64> {
    let open = format!("<td class=\"{name}\">");
    html.split(&open)
        .skip(1)
        .map(|rest| {
            let text = &rest[..rest.find("</td>").unwrap()];
            text.replace(',', "").parse().unwrap()
        })
        .collect()
}

/// The part of `html` from `start` to the next `end`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html.find(start).unwrap_or_else(|| panic!("no {start}"));
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap()]
}

/// Renders `page` in headless Chromium: the DOM after parsing, and a screenshot.
fn chromium(page: &Path, dir: &Path) -> String {
    let url = format!("file://{}", page.display());
    let profile = format!("--user-data-dir={}", dir.join("profile").display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        profile.as_str(),
    ];
    let shot = dir.join("page.png");
    let out = Command::new("chromium")
        .args(common)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,4000")
        .arg(&url)
        .output()
        .expect("chromium runs (apt-get install chromium)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "a blank screenshot? {} bytes",
        png.len()
    );
    let out = Command::new("chromium")
        .args(common)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn html_report_renders_in_chromium_with_the_json_numbers() {
    for name in [
        "demo.pcap",
        "tunnels.pcap",
        "rpc.pcap",
        "dynamic.pcap",
        "smb.pcap",
    ] {
        let dir = tmpdir(&format!("html-{name}"));
        let page = dir.join("report.html");
        let capture = fixture(name);
        let out = run(&[
            "classify",
            "--format",
            "html",
            "-o",
            page.to_str().unwrap(),
            &capture,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let file = std::fs::read_to_string(&page).unwrap();
        // Self-contained: nothing to fetch, nothing to run.
        for banned in ["http:", "https:", "//", "<script", "<link", "<img"] {
            assert!(!file.contains(banned), "{name}: {banned}");
        }
        let json = run(&["classify", "--format", "json", "--servers", &capture]);
        let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let n = |v: &serde_json::Value| v.as_u64().unwrap();
        let dom = chromium(&page, &dir);
        // The capture's name in the title and the heading, and its time span in UTC.
        let title = format!("portscope report: {name}");
        assert!(dom.contains(&format!("<title>{title}</title>")), "{name}");
        assert!(dom.contains(&format!("<h1>{title}</h1>")), "{name}");
        let first = report["inputs"][0]["first_time"].as_f64().unwrap();
        let last = report["inputs"][0]["last_time"].as_f64().unwrap();
        let utc = |t: f64| {
            let out = Command::new("date")
                .args(["-u", "-d", &format!("@{t:.6}"), "+%Y-%m-%d %H:%M:%S.%6N"])
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        assert!(
            dom.contains(&format!(
                "Packets from <time class=\"first\">{}</time> to <time class=\"last\">{}</time> UTC",
                utc(first),
                utc(last)
            )),
            "{name}"
        );
        // Every pipe row names its pipe in the table, and the chart's labels differ.
        for r in report["services"].as_array().unwrap() {
            if let Some(pipe) = r["pipe"].as_str() {
                assert!(
                    dom.contains(&format!("<td class=\"name\">\\pipe\\{pipe}")),
                    "{name}: {pipe}"
                );
            }
        }
        let legend: Vec<&str> = between(&dom, "<ul class=\"legend\">", "</ul>")
            .split("</span>")
            .skip(1)
            .map(|l| &l[..l.find("</li>").unwrap()])
            .collect();
        let distinct: std::collections::BTreeSet<&&str> = legend.iter().collect();
        assert_eq!(distinct.len(), legend.len(), "{name}: {legend:?}");
        // Totals.
        let total = between(&dom, "<tr id=\"total\">", "</tr>");
        assert_eq!(
            (
                cells(total, "flows"),
                cells(total, "packets"),
                cells(total, "bytes")
            ),
            (
                vec![n(&report["flows"])],
                vec![n(&report["packets"])],
                vec![n(&report["bytes"])]
            ),
            "{name}"
        );
        let unclassified = between(&dom, "<tr id=\"unclassified\">", "</tr>");
        assert_eq!(
            cells(unclassified, "packets"),
            [n(&report["unclassified"]["packets"])]
        );
        let not_ip = between(&dom, "<tr id=\"not-ip\">", "</tr>");
        assert_eq!(cells(not_ip, "bytes"), [n(&report["not_ip"]["bytes"])]);
        // Every service row, in the report's order.
        let table = between(&dom, "<table class=\"services\">", "</table>");
        let services = report["services"].as_array().unwrap();
        let rows: Vec<String> = table
            .split("<tr class=\"service\" data-row=\"")
            .skip(1)
            .map(|r| r[..r.find('"').unwrap()].to_string())
            .collect();
        let keys: Vec<String> = services
            .iter()
            .map(|r| {
                serde_json::from_value::<super::util::Row>(r.clone())
                    .unwrap()
                    .key()
            })
            .collect();
        assert_eq!(rows, keys, "{name}");
        for (field, column) in [
            ("flows", "flows"),
            ("packets", "packets"),
            ("bytes", "bytes"),
        ] {
            let ours: Vec<u64> = services.iter().map(|r| n(&r[field])).collect();
            assert_eq!(cells(table, column), ours, "{name} {field}");
        }
        // Servers: each one's address and numbers.
        let servers = report["servers"].as_array().unwrap();
        let sections: Vec<&str> = dom
            .split("<section class=\"server\"")
            .skip(1)
            .map(|s| &s[..s.find("</section>").unwrap()])
            .collect();
        // The page shows the first 100 servers; the fixtures have fewer.
        assert!(servers.len() < 100);
        assert_eq!(sections.len(), servers.len(), "{name}");
        for (section, s) in sections.iter().zip(servers) {
            assert!(section.starts_with(&format!(
                " data-address=\"{}\"",
                s["address"].as_str().unwrap()
            )));
            let rows = s["rows"].as_array().unwrap();
            let ours: Vec<u64> = rows.iter().map(|r| n(&r["bytes"])).collect();
            assert_eq!(cells(section, "bytes"), ours, "{name}");
        }
        // Tunnels.
        for t in report["tunnels"].as_array().unwrap() {
            let row = between(
                &dom,
                &format!(
                    "<tr class=\"tunnel\" data-tunnel=\"{}\">",
                    t["tunnel"].as_str().unwrap()
                ),
                "</tr>",
            );
            assert_eq!(cells(row, "packets"), [n(&t["packets"])], "{name}");
        }
        // The chart over time: its intervals hold every packet.
        let intervals = between(&dom, "<table class=\"intervals\">", "</table>");
        assert_eq!(
            cells(intervals, "packets").iter().sum::<u64>(),
            n(&report["packets"])
        );
        // Announcements.
        let e = &report["expectations"];
        assert!(dom.contains(&format!(
            "<span class=\"announced\">{}</span>",
            n(&e["announced"])
        )));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn html_to_a_terminal_needs_a_file() {
    // `script` gives portscope a terminal for its standard output.
    let dir = tmpdir("html-tty");
    let log = dir.join("typescript");
    let command = format!(
        "{} classify --format html {}",
        env!("CARGO_BIN_EXE_portscope"),
        fixture("demo.pcap")
    );
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command, log.to_str().unwrap()])
        .output()
        .expect("script runs (util-linux)");
    assert_eq!(out.status.code(), Some(2));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(
        "portscope: --format html writes a file: give it with -o FILE (or redirect the output)"
    ));
    assert!(!text.contains("<html"));
    std::fs::remove_dir_all(&dir).unwrap();
}
