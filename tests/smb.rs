//! SMB connections split by the trees and pipes their messages address: exact rows on the
//! generated fixture (`fixtures/smb.pcap`, built in `tests/fixtures.rs`), and the corpus
//! against an oracle built on tshark's `smb` and `smb2` dissectors.

use super::util::{classify_json, fixture, flow_lines};
use std::collections::BTreeMap;

const SAMR: &str = "12345778-1234-abcd-ef00-0123456789ac";
const LSARPC: &str = "12345778-1234-abcd-ef00-0123456789ab";
const UNKNOWN: &str = "01234567-89ab-cdef-0123-456789abcdef";
const AD: &str = "Active Directory (Local Security Authority)";

/// (row, match, pipe, share type, interface uuid and name, services, flows, packets, bytes).
type Expected<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<(&'a str, Option<&'a str>)>,
    &'a [&'a str],
    u64,
    u64,
    u64,
);

#[test]
fn smb_connections_split_by_tree_and_pipe() {
    let want: &[Expected] = &[
        // A disk share: its tree connect response, four READs (one spanning three
        // segments, one with a lost segment inside its data, one whose start was lost).
        (
            "tcp/445",
            "smb-share",
            None,
            Some("disk"),
            None,
            &["Server"],
            1,
            12,
            9052,
        ),
        (
            "tcp/445",
            "smb-encrypted",
            None,
            None,
            None,
            &[],
            1,
            3,
            1530,
        ),
        // Handshakes, IPC$ tree connects, the segment after a lost message start, and a
        // bare ACK stay in the port row with all its candidates.
        ("tcp/445", "port", None, None, None, &[], 2, 9, 1038),
        (
            "tcp/139",
            "smb-share",
            None,
            Some("print"),
            None,
            &["Print Spooler"],
            1,
            3,
            932,
        ),
        (
            "tcp/445",
            "smb-pipe",
            Some("samr"),
            None,
            Some((SAMR, Some("SAMR"))),
            &[AD],
            1,
            4,
            776,
        ),
        // Two negotiations (one before the encrypted messages), the Server service's own.
        (
            "tcp/445",
            "smb-session",
            None,
            None,
            None,
            &["Server"],
            2,
            4,
            688,
        ),
        // A bind to an interface no table knows: the pipe's service, the interface by UUID.
        (
            "tcp/445",
            "smb-pipe",
            Some("spoolss"),
            None,
            Some((UNKNOWN, None)),
            &["Print Spooler"],
            1,
            3,
            644,
        ),
        (
            "tcp/139",
            "smb-pipe",
            Some("lsarpc"),
            None,
            Some((LSARPC, Some("LSARPC"))),
            &[AD],
            1,
            4,
            608,
        ),
        // A pipe no table knows: its own row, its name, no service.
        (
            "tcp/445",
            "smb-pipe",
            Some("psexesvc"),
            None,
            None,
            &[],
            1,
            3,
            575,
        ),
        // The NetBIOS session request and its answer, and the SMB1 tree connect to IPC$.
        ("tcp/139", "port", None, None, None, &[], 1, 6, 511),
        // The SMB1 negotiation.
        (
            "tcp/139",
            "smb-session",
            None,
            None,
            None,
            &["Server"],
            1,
            2,
            232,
        ),
    ];
    let (report, _) = classify_json(&[&fixture("smb.pcap")]);
    // Port and encrypted rows keep every candidate of the port; rows named from payload
    // list exactly the owning service.
    let named = |r: &super::util::Row| !matches!(r.kind.as_str(), "port" | "smb-encrypted");
    let got: Vec<String> = report
        .services
        .iter()
        .map(|r| {
            let services: Vec<&str> = r.services.iter().map(|s| s.name.as_str()).collect();
            let services = if named(r) { services } else { Vec::new() };
            let interface = r
                .interface
                .as_ref()
                .map(|i| (i.uuid.as_str(), i.name.as_deref()));
            format!(
                "{:?}",
                (
                    r.key(),
                    &r.kind,
                    r.pipe.as_deref(),
                    r.share_type.as_deref(),
                    interface,
                    services,
                    (r.flows, r.packets, r.bytes)
                )
            )
        })
        .collect();
    let want: Vec<String> = want
        .iter()
        .map(|w| {
            format!(
                "{:?}",
                (
                    w.0.to_string(),
                    &w.1.to_string(),
                    w.2,
                    w.3,
                    w.4,
                    w.5.to_vec(),
                    (w.6, w.7, w.8)
                )
            )
        })
        .collect();
    assert_eq!(got, want);
    let candidates = |r: &super::util::Row| if r.key() == "tcp/445" { 9 } else { 11 };
    for r in report.services.iter().filter(|r| !named(r)) {
        assert_eq!(r.services.len(), candidates(r), "{}", r.key());
    }
    // A session row names Server and keeps the port's other candidates beside it.
    for r in report.services.iter().filter(|r| r.kind == "smb-session") {
        let others = r.port_services.as_ref().expect("port_services");
        assert_eq!(others.len(), candidates(r) - 1, "{}", r.key());
        assert!(others.iter().all(|s| s.name != "Server"));
    }
    // Three connections; their rows' flows add up to more.
    assert_eq!(report.flows, 3);
    assert_eq!(report.services.iter().map(|r| r.flows).sum::<u64>(), 13);
    // Every flow line lists its parts, which with the port row's share make the whole.
    let lines = flow_lines("smb.pcap");
    assert_eq!(lines.len(), 3);
    let parts: Vec<Vec<(String, String, u64)>> = lines
        .iter()
        .map(|l| {
            l["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let what = p["pipe"]
                        .as_str()
                        .or(p["share_type"].as_str())
                        .unwrap_or("")
                        .to_string();
                    let bytes =
                        p["orig_bytes"].as_u64().unwrap() + p["resp_bytes"].as_u64().unwrap();
                    (p["match"].as_str().unwrap().to_string(), what, bytes)
                })
                .collect()
        })
        .collect();
    let part = |m: &str, w: &str, b: u64| (m.to_string(), w.to_string(), b);
    assert_eq!(
        parts,
        [
            vec![
                part("smb-session", "", 344),
                part("smb-pipe", "samr", 776),
                part("smb-pipe", "spoolss", 644),
                part("smb-pipe", "psexesvc", 575),
                part("smb-share", "disk", 9052),
            ],
            vec![
                part("smb-session", "", 232),
                part("smb-pipe", "lsarpc", 608),
                part("smb-share", "print", 932)
            ],
            vec![
                part("smb-session", "", 344),
                part("smb-encrypted", "", 1530)
            ],
        ]
    );
    let whole: u64 = lines
        .iter()
        .map(|l| l["orig_bytes"].as_u64().unwrap() + l["resp_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(whole, report.bytes);
}

#[test]
fn ports_only_keeps_smb_in_the_port_rows() {
    let (report, _) = classify_json(&["--ports-only", &fixture("smb.pcap")]);
    let rows: Vec<(String, String, u64, u64)> = report
        .services
        .iter()
        .map(|r| (r.key(), r.kind.clone(), r.flows, r.packets))
        .collect();
    assert_eq!(
        rows,
        [
            ("tcp/445".to_string(), "port".to_string(), 2, 38),
            ("tcp/139".to_string(), "port".to_string(), 1, 15),
        ]
    );
}

#[test]
fn smb_rows_do_not_depend_on_the_thread_count() {
    let one = super::util::run(&[
        "classify",
        "--format",
        "json",
        "--threads",
        "1",
        &fixture("smb.pcap"),
    ]);
    for threads in ["2", "3", "8"] {
        let other = super::util::run(&[
            "classify",
            "--format",
            "json",
            "--threads",
            threads,
            &fixture("smb.pcap"),
        ]);
        assert_eq!(one.stdout, other.stdout, "--threads {threads}");
    }
}

/// What tshark ties a frame's bytes to: a pipe (by name), a share type, the session, or
/// encryption.
type Label = String;

/// tshark's view of the SMB in `capture`: bytes per label, and per pipe the first interface
/// bound over it. The rules, applied to tshark's `smb`, `smb2` and `dcerpc` fields:
/// - only frames of TCP streams count (SMB over NetBEUI has none);
/// - a frame goes with the first SMB message it carries; a frame carrying part of a message
///   that another frame completes goes with that frame (tshark's `tcp.reassembled_in`,
///   with two-pass dissection);
/// - an encrypted or compressed message (SMB3 transform header) is `encrypted`;
/// - an SMB2 message on a disk or print share (tshark tracks each tree's share type) is
///   `share:disk` or `share:print`; on a pipe share, a create request is the pipe it
///   names, a create response the pipe of its request, a request naming a file id the
///   pipe that id was opened as, and any other response that of its request (by message
///   id); SMB1 the same, with tree types from tree connect responses' service
///   (`IPC`, `A:`, `LPT1:`) and requests paired with responses by PID and MID;
/// - a tree whose type tshark does not know (its connect is not in the capture) is a disk
///   share from the first directory listing or change notification on it;
/// - a negotiate, session setup, logoff or echo (SMB2 commands 0, 1, 2, 13; SMB1 0x72,
///   0x73, 0x74, 0x2b), request or response, is `session`;
/// - everything else (tree connects to `IPC$`, bare ACKs, what cannot be tied) is no label.
fn tshark_smb(capture: &std::path::Path) -> (BTreeMap<Label, u64>, BTreeMap<String, String>) {
    tshark_smb_with(capture, &[])
}

/// [`tshark_smb`] with more tshark options (`-o uat:smb2_seskey_list:...` for keys): a
/// frame whose encrypted message tshark decrypted goes by the message inside.
pub(super) fn tshark_smb_with(
    capture: &std::path::Path,
    options: &[String],
) -> (BTreeMap<Label, u64>, BTreeMap<String, String>) {
    let fields = [
        "frame.number",
        "frame.len",
        "tcp.stream",
        "tcp.len",
        "tcp.reassembled_in",
        "smb2.protocol_id",
        "smb2.cmd",
        "smb2.flags.response",
        "smb2.msg_id",
        "smb2.share_type",
        "smb2.filename",
        "smb2.fid",
        "smb.cmd",
        "smb.flags.response",
        "smb.tid",
        "smb.pid",
        "smb.mid",
        "smb.fid",
        "smb.file",
        "smb.service",
        "dcerpc.cn_bind_to_uuid",
        "dcerpc.pkt_type",
        "smb2.tid",
    ];
    let mut cmd = std::process::Command::new("tshark");
    cmd.args(["-2", "-n"])
        .args(options)
        .arg("-r")
        .arg(capture)
        .args([
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=\u{1f}",
        ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let pipe_name = |s: &str| {
        let s = s.trim_start_matches('\\').to_lowercase();
        let s = s.strip_prefix("pipe\\").unwrap_or(&s).to_string();
        format!("pipe:{s}")
    };
    // Per stream: tree types (SMB1), file ids to pipes, requests to labels.
    let mut trees: BTreeMap<(String, String), &'static str> = BTreeMap::new();
    let mut files: BTreeMap<(String, String), Label> = BTreeMap::new();
    let mut requests: BTreeMap<(String, String), Label> = BTreeMap::new();
    let mut frames: Vec<(String, u64, String, Option<Label>)> = Vec::new();
    let mut binds: BTreeMap<String, String> = BTreeMap::new();
    let mut inferred: std::collections::BTreeSet<(String, String)> = Default::default();
    for line in text.lines() {
        let all: Vec<Vec<&str>> = line
            .split('\t')
            .map(|f| f.split('\u{1f}').collect())
            .collect();
        // The first message's value of each field (field 6 has every command).
        let v: Vec<&str> = all.iter().map(|f| f[0]).collect();
        let get = |i: usize| v.get(i).copied().unwrap_or("");
        let commands = all.get(6).cloned().unwrap_or_default();
        let (number, len, stream) = (get(0), get(1).parse::<u64>().unwrap_or(0), get(2));
        // SMB over TCP only (not NetBEUI, which portscope does not decode).
        if stream.is_empty() {
            continue;
        }
        let reassembled_in = get(4).to_string();
        let key = |k: &str| (stream.to_string(), k.to_string());
        let response = |i: usize| matches!(get(i), "1" | "True" | "true");
        let mut label: Option<Label> = None;
        // An encrypted message tshark decrypted shows the message inside as well.
        let decrypted = all.get(5).is_some_and(|ids| ids.contains(&"0xfe534d42"));
        if matches!(get(5), "0xfd534d42" | "0xfc534d42") && !decrypted {
            label = Some("encrypted".into());
        } else if !get(6).is_empty() {
            let (command, msg, fid, tid) = (get(6), get(8), get(11), get(22));
            // A directory request on a tree whose type tshark does not know: a disk share.
            if get(9).is_empty()
                && !response(7)
                && commands.iter().any(|c| matches!(*c, "14" | "15"))
            {
                inferred.insert(key(tid));
            }
            let share = if get(9).is_empty() && inferred.contains(&key(tid)) {
                "0x01"
            } else {
                get(9)
            };
            label = match share {
                // Negotiate, session setup, logoff and echo address no tree.
                _ if matches!(command, "0" | "1" | "2" | "13") => Some("session".into()),
                "0x01" => Some("share:disk".into()),
                "0x03" => Some("share:print".into()),
                "0x02" => {
                    if command == "5" && !response(7) && !get(10).is_empty() {
                        Some(pipe_name(get(10)))
                    } else if command == "5" && response(7) {
                        let l = requests.get(&key(msg)).cloned();
                        if let (Some(l), false) = (&l, fid.is_empty()) {
                            files.insert(key(fid), l.clone());
                        }
                        l
                    } else if !response(7) {
                        files.get(&key(fid)).cloned()
                    } else {
                        requests.get(&key(msg)).cloned()
                    }
                }
                _ => None,
            };
            if !response(7) {
                if let Some(l) = &label {
                    requests.insert(key(msg), l.clone());
                }
            }
        } else if !get(12).is_empty() {
            let command = get(12).split(',').next().unwrap_or("");
            let (tid, pm, fid) = (get(14), format!("{}/{}", get(15), get(16)), get(17));
            if command == "0x75" && response(13) {
                let service = get(19);
                let kind = if service.starts_with("IPC") {
                    "pipe"
                } else if service.starts_with("A:") {
                    "disk"
                } else if service.starts_with("LPT") {
                    "print"
                } else {
                    "other"
                };
                trees.insert(key(tid), kind);
            }
            label = match trees.get(&key(tid)).copied() {
                _ if matches!(command, "0x72" | "0x73" | "0x74" | "0x2b") => Some("session".into()),
                Some("disk") => Some("share:disk".into()),
                Some("print") => Some("share:print".into()),
                Some("pipe") => {
                    if command == "0xa2" && !response(13) && !get(18).is_empty() {
                        Some(pipe_name(get(18)))
                    } else if command == "0xa2" && response(13) {
                        let l = requests.get(&key(&pm)).cloned();
                        if let (Some(l), false) = (&l, fid.is_empty()) {
                            files.insert(key(fid), l.clone());
                        }
                        l
                    } else if !response(13) {
                        files.get(&key(fid)).cloned()
                    } else {
                        requests.get(&key(&pm)).cloned()
                    }
                }
                _ => None,
            };
            if !response(13) {
                if let Some(l) = &label {
                    requests.insert(key(&pm), l.clone());
                }
            }
        }
        if let (Some(l), "11" | "14") = (&label, get(21)) {
            if l.starts_with("pipe:") && !get(20).is_empty() {
                binds
                    .entry(l.clone())
                    .or_insert_with(|| get(20).to_string());
            }
        }
        frames.push((number.to_string(), len, reassembled_in, label));
    }
    let by_number: BTreeMap<String, Option<Label>> = frames
        .iter()
        .map(|(n, _, _, l)| (n.clone(), l.clone()))
        .collect();
    let mut bytes: BTreeMap<Label, u64> = BTreeMap::new();
    for (_, len, reassembled_in, label) in &frames {
        let label = if reassembled_in.is_empty() {
            label.clone()
        } else {
            by_number.get(reassembled_in).cloned().flatten()
        };
        if let Some(l) = label {
            *bytes.entry(l).or_default() += len;
        }
    }
    (bytes, binds)
}

/// A row's label as [`tshark_smb`] names what it ties frames to; `None` for rows that are
/// not SMB parts.
pub(super) fn smb_label(r: &super::util::Row) -> Option<Label> {
    Some(match r.kind.as_str() {
        "smb-pipe" => format!("pipe:{}", r.pipe.as_deref().unwrap_or("")),
        "smb-share" => format!("share:{}", r.share_type.as_deref().unwrap_or("")),
        "smb-encrypted" => "encrypted".to_string(),
        "smb-session" => "session".to_string(),
        _ => return None,
    })
}

/// portscope's bytes per label, as [`tshark_smb`] names them, and per pipe the interfaces
/// of its rows.
fn portscope_smb(
    capture: &std::path::Path,
) -> (BTreeMap<Label, u64>, BTreeMap<String, Vec<String>>) {
    let (report, _) = classify_json(&[capture.to_str().unwrap()]);
    let mut bytes: BTreeMap<Label, u64> = BTreeMap::new();
    let mut interfaces: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &report.services {
        let Some(label) = smb_label(r) else { continue };
        *bytes.entry(label.clone()).or_default() += r.bytes;
        if let Some(i) = &r.interface {
            interfaces.entry(label).or_default().push(i.uuid.clone());
        }
    }
    (bytes, interfaces)
}

/// Rows portscope has that the oracle does not, and why.
const EXTRA: &[(&str, &str, &str)] = &[(
    "zeek__20171220_smb_at_schedule.pcap",
    "pipe:atsvc",
    "the capture starts after the tree connect: tshark cannot tell the tree's type, \
     portscope takes a create naming a pipe the pipe table knows on a tree it has not seen \
     as that pipe",
)];

#[test]
fn corpus_smb_agrees_with_tshark() {
    // Only real captures with SMB in them: the others cost a tshark run for nothing, and
    // the generated fixture (whose exact rows are checked above) writes only the fields
    // portscope reads, too few for tshark to track its trees.
    let files: Vec<std::path::PathBuf> = super::corpus::inputs()
        .into_iter()
        .filter(|f| f.starts_with(super::corpus::dir()))
        .filter(|f| {
            let data = std::fs::read(f).unwrap_or_default();
            data.windows(4)
                .any(|w| matches!(w, [0xfc..=0xff, b'S', b'M', b'B']))
        })
        .collect();
    let results: Vec<(String, u64, u64, Vec<String>)> = std::thread::scope(|s| {
        let check = |f: &std::path::PathBuf| {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let (theirs, binds) = tshark_smb(f);
            let (ours, interfaces) = portscope_smb(f);
            let mut problems = Vec::new();
            let (mut total, mut agreed) = (0, 0);
            for (label, &b) in &theirs {
                total += b;
                let mine = ours.get(label).copied().unwrap_or(0);
                agreed += b.min(mine);
                if mine == 0 {
                    problems.push(format!(
                        "{name}: tshark ties {b} bytes to {label}, portscope has no row"
                    ));
                }
            }
            for (label, uuid) in &binds {
                if !interfaces.get(label).is_some_and(|u| u.contains(uuid)) {
                    problems.push(format!(
                        "{name}: tshark sees {uuid} bound over {label}, portscope {:?}",
                        interfaces.get(label)
                    ));
                }
            }
            for label in ours.keys() {
                let explained = EXTRA.iter().any(|e| e.0 == name && e.1 == label);
                if !theirs.contains_key(label) && !explained {
                    problems.push(format!("{name}: portscope has {label}, tshark does not"));
                }
            }
            (name, total, agreed, problems)
        };
        let (a, b) = files.split_at(files.len() / 2);
        let h = s.spawn(move || b.iter().map(check).collect::<Vec<_>>());
        let mut out: Vec<_> = a.iter().map(check).collect();
        out.extend(h.join().unwrap());
        out
    });
    let total: u64 = results.iter().map(|r| r.1).sum();
    let agreed: u64 = results.iter().map(|r| r.2).sum();
    let problems: Vec<&String> = results.iter().flat_map(|r| &r.3).collect();
    for r in &results {
        if r.1 > 0 {
            eprintln!("{}: tshark {} bytes, agreed {}", r.0, r.1, r.2);
        }
    }
    eprintln!("corpus SMB: tshark ties {total} bytes to pipes, shares or encryption; portscope agrees on {agreed}");
    assert!(total > 50_000, "the corpus has SMB: {total}");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(agreed * 100 >= total * 95, "{agreed} of {total}");
}
