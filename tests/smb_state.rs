//! SMB state over long sessions: what CLOSE, TREE_DISCONNECT and the bounds free, pipe
//! names as long as the wire has them, and a message that starts deep inside an offloaded
//! segment, read the same through every reader. Captures are generated into a temporary
//! directory with the SMB message builders.

use super::fixtures::{eth_ip, whole, Stream, A, B, NS, T0};
use super::util::{run, stderr, tmpdir};
use portscope::gen::{self, Record};
use portscope::inspect::rpc::bind_pdu;
use portscope::inspect::smb::build::*;
use std::path::{Path, PathBuf};

const SRVSVC: &str = "4b324fc8-1670-01d3-1278-5a47bf6ee188";

/// A capture of one SMB2 connection to TCP 445 that `body` fills, after the handshake,
/// negotiation, and tree connects of IPC$ (tree 1) and a disk share (tree 2).
fn capture_of(dir: &Path, name: &str, body: impl FnOnce(&mut dyn FnMut(usize, &[u8]))) -> PathBuf {
    let mut records: Vec<Record> = Vec::new();
    let mut t = Stream::new((A, 50600), (B, 445));
    let mut at = T0;
    let mut push = |t: &mut Stream, side: usize, syn: bool, payload: &[u8]| {
        at += NS / 1000;
        records.push(whole(at, eth_ip(&t.segment(side, syn, payload))));
    };
    push(&mut t, 0, true, &[]);
    push(&mut t, 1, true, &[]);
    push(&mut t, 0, false, &session(&smb2_plain(0, false, 0, 36)));
    push(&mut t, 1, false, &session(&smb2_plain(0, true, 0, 64)));
    push(&mut t, 0, false, &session(&smb2_plain(3, false, 1, 24)));
    push(&mut t, 1, false, &session(&tree_connect_response(1, 1, 2)));
    push(&mut t, 0, false, &session(&smb2_plain(3, false, 2, 24)));
    push(&mut t, 1, false, &session(&tree_connect_response(2, 2, 1)));
    body(&mut |side, payload| push(&mut t, side, false, payload));
    let path = dir.join(name);
    gen::write_pcap(&path, 1, false, records).unwrap();
    path
}

/// `classify --format json` of `path` under GNU time: the report and the peak RSS in KiB.
fn report_and_peak(path: &Path) -> (serde_json::Value, u64) {
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_portscope"))
        .args(["classify", "--format", "json", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let peak = stderr(&out).trim().lines().last().unwrap().parse().unwrap();
    (serde_json::from_slice(&out.stdout).unwrap(), peak)
}

fn report(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["classify", "--format", "json"];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (match, pipe, packets, bytes) of every TCP 445 row.
fn smb_rows(j: &serde_json::Value) -> Vec<(String, Option<String>, u64, u64)> {
    let mut rows: Vec<_> = j["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ports"] == serde_json::json!([445, 445]))
        .map(|r| {
            (
                r["match"].as_str().unwrap().to_string(),
                r["pipe"].as_str().map(str::to_string),
                r["packets"].as_u64().unwrap(),
                r["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Opens pipe `name` as file `file` with create request `message`, and binds SRVSVC on it.
fn open_pipe(push: &mut dyn FnMut(usize, &[u8]), message: u64, name: &str, file: u64) {
    let srvsvc = portscope::catalog::parse_uuid(SRVSVC).unwrap();
    push(0, &session(&create_request(message, 1, name)));
    push(1, &session(&create_response(message, 1, file)));
    let bind = bind_pdu(srvsvc, false);
    push(0, &session(&write_request(message + 1, 1, file, &bind)));
    push(1, &session(&smb2_plain(9, true, message + 1, 16)));
}

/// A pipe opened first and used last, with 100,000 files opened and closed on the disk
/// share in between: nothing is forgotten, every file message is in the share row, and the
/// pipe keeps its row; memory stays small.
#[test]
fn a_hundred_thousand_closed_files_forget_nothing() {
    let dir = tmpdir("smb-files");
    let files = 100_000u64;
    let path = capture_of(&dir, "files.pcap", |push| {
        open_pipe(push, 10, "srvsvc", 7);
        for i in 0..files {
            let m = 100 + 4 * i;
            push(
                0,
                &session(&create_request(m, 2, &format!("dir\\file{i}.txt"))),
            );
            push(1, &session(&create_response(m, 2, 1000 + i)));
            push(0, &session(&close_request(m + 1, 2, 1000 + i)));
            push(1, &session(&smb2_plain(6, true, m + 1, 60)));
        }
        // The pipe, still open, is used again.
        push(0, &session(&read_request(5_000_000, 1, 7)));
        push(1, &session(&smb2_plain(8, true, 5_000_000, 80)));
    });
    let (j, peak_kib) = report_and_peak(&path);
    assert_eq!(j["smb_forgotten"], 0);
    let rows = smb_rows(&j);
    let share = rows.iter().find(|r| r.0 == "smb-share").unwrap();
    // Each file's four messages, and the disk tree's connect response.
    assert_eq!(share.2, 4 * files + 1);
    let pipe = rows.iter().find(|r| r.0 == "smb-pipe").unwrap();
    // Create, bind and their responses; the READ and its response.
    assert_eq!((pipe.1.as_deref(), pipe.2), (Some("srvsvc"), 6));
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Pipes opened one after another, each closed, then a tree disconnected and connected
/// again: the bound on open pipes (64) is never reached, so nothing is forgotten. Without
/// CLOSE the same capture forgets the pipes the bound pushed out, and says how many.
#[test]
fn closed_pipes_free_their_place_and_open_ones_are_counted() {
    let dir = tmpdir("smb-pipes");
    let pipes = 300u64;
    let capture = |close: bool| {
        let name = if close { "closed.pcap" } else { "open.pcap" };
        capture_of(&dir, name, move |push| {
            for i in 0..pipes {
                let m = 100 + 4 * i;
                open_pipe(push, m, "srvsvc", 1000 + i);
                if close {
                    push(0, &session(&close_request(m + 2, 1, 1000 + i)));
                    push(1, &session(&smb2_plain(6, true, m + 2, 60)));
                }
            }
            push(0, &session(&tree_disconnect_request(90_000, 2)));
            push(1, &session(&smb2_plain(4, true, 90_000, 4)));
        })
    };
    let closed = report(&[capture(true).to_str().unwrap()]);
    assert_eq!(closed["smb_forgotten"], 0);
    let rows = smb_rows(&closed);
    let pipe = rows.iter().find(|r| r.0 == "smb-pipe").unwrap();
    // Four messages to open and bind each pipe, two to close it.
    assert_eq!(pipe.2, 6 * pipes);
    // The tree connect response, the disconnect and its response.
    let share = rows.iter().find(|r| r.0 == "smb-share").unwrap();
    assert_eq!(share.2, 3);
    let open = report(&[capture(false).to_str().unwrap()]);
    // Every pipe past the first 64 pushes out the least recently used one.
    assert_eq!(open["smb_forgotten"], pipes - 64);
    let rows = smb_rows(&open);
    let pipe = rows.iter().find(|r| r.0 == "smb-pipe").unwrap();
    assert_eq!(pipe.2, 4 * pipes);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A hostile session opens 1,000,000 pipes, each with its own name, and closes none (32
/// creates to a segment, then their 32 responses): the run finishes, memory stays under
/// 64 MiB, every packet is in a row, and all but the 64 pipes still held are forgotten and
/// counted.
#[test]
fn a_million_pipes_never_closed_are_counted_and_memory_stays_bounded() {
    let dir = tmpdir("smb-million");
    let (pipes, per_segment) = (1_000_000u64, 32u64);
    let path = dir.join("million.pcap");
    let mut t = Stream::new((A, 50601), (B, 445));
    let mut at = T0;
    let mut segment = move |side: usize, syn: bool, payload: &[u8]| {
        at += NS / 1000;
        whole(at, eth_ip(&t.segment(side, syn, payload)))
    };
    let mut setup = vec![
        segment(0, true, &[]),
        segment(1, true, &[]),
        segment(0, false, &session(&smb2_plain(3, false, 1, 24))),
        segment(1, false, &session(&tree_connect_response(1, 1, 2))),
    ]
    .into_iter();
    let mut batch = 0u64;
    let mut responses: Option<Record> = None;
    let records = std::iter::from_fn(move || {
        if let Some(r) = setup.next() {
            return Some(r);
        }
        if let Some(r) = responses.take() {
            return Some(r);
        }
        if batch * per_segment == pipes {
            return None;
        }
        let (mut asks, mut answers) = (Vec::new(), Vec::new());
        for i in batch * per_segment..(batch + 1) * per_segment {
            asks.extend(session(&create_request(10 + i, 1, &format!("pipe{i}"))));
            answers.extend(session(&create_response(10 + i, 1, 1_000_000 + i)));
        }
        batch += 1;
        let ask = segment(0, false, &asks);
        responses = Some(segment(1, false, &answers));
        Some(ask)
    });
    let frames = gen::write_pcap(&path, 1, false, records).unwrap();
    assert_eq!(frames, 4 + 2 * pipes / per_segment);
    let (j, peak_kib) = report_and_peak(&path);
    assert_eq!(j["packets"], frames);
    assert_eq!(j["smb_forgotten"], pipes - 64);
    let in_rows: u64 = j["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(in_rows, frames);
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
    eprintln!("a million open pipes: peak RSS {peak_kib} KiB");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Pipe names longer than 32 bytes, as PsExec's are, are reported whole.
#[test]
fn long_pipe_names_are_whole() {
    let dir = tmpdir("smb-names");
    let names = [
        "PSEXESVC-WORKSTATION01-4242-stdin".to_string(),
        "PSEXESVC-WORKSTATION01-4242-stdout".to_string(),
        "PSEXESVC-WORKSTATION01-4242-stderr".to_string(),
        format!("{}-end", "x".repeat(200)),
    ];
    let path = capture_of(&dir, "names.pcap", |push| {
        for (i, name) in names.iter().enumerate() {
            open_pipe(push, 100 + 4 * i as u64, name, 1000 + i as u64);
        }
    });
    let j = report(&[path.to_str().unwrap()]);
    let mut got: Vec<String> = smb_rows(&j).into_iter().filter_map(|r| r.1).collect();
    got.sort();
    let mut want: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(j["smb_forgotten"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A 29,254-byte offloaded segment that ends one WRITE and starts the next 7,252 bytes in,
/// as in Suricata's PsExec capture: the second WRITE's header is read whichever reader
/// copies the frame, so every path puts the segments after it in the share row.
#[test]
fn a_message_deep_inside_an_offloaded_segment_is_read_by_every_reader() {
    let dir = tmpdir("smb-offload");
    let path = offloaded_write(&dir);
    let p = path.to_str().unwrap();
    let base = report(&[p]);
    let rows = smb_rows(&base);
    let share = rows.iter().find(|r| r.0 == "smb-share").unwrap();
    // The disk tree's connect response, the two writes' 28 segments and two responses.
    assert_eq!(share.2, 31, "{rows:?}");
    for args in [
        &["--reader", "libpcap", p][..],
        &["--merge", p],
        &["--threads", "1", p],
    ] {
        assert_eq!(smb_rows(&report(args)), rows, "{args:?}");
    }
    // The last line of --interval is the whole capture.
    let out = run(&["classify", "--format", "json", "--interval", "3600", p]);
    let last = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(smb_rows(&last), rows, "--interval");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `offload.pcap` in `dir`: the capture of the test above (live replays it too).
pub(super) fn offloaded_write(dir: &Path) -> PathBuf {
    capture_of(dir, "offload.pcap", |push| {
        let mut first = write_request(10, 2, 5, &[]);
        let data = 7_252 - 4 - first.len();
        first.resize(first.len() + data, 0x11);
        let first = session(&first);
        let second = session(&write_request(11, 2, 5, &vec![0x22; 60_000]));
        let mut big = first[1000..].to_vec();
        big.extend_from_slice(&second[..29_254 - big.len()]);
        assert_eq!(big.len(), 29_254);
        push(0, &first[..1000]);
        push(0, &big);
        let rest = &second[29_254 - (first.len() - 1000)..];
        for chunk in rest.chunks(1448) {
            push(0, chunk);
        }
        push(1, &session(&smb2_plain(9, true, 10, 16)));
        push(1, &session(&smb2_plain(9, true, 11, 16)));
    })
}
