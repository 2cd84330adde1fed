//! The readers. The block reader for classic pcap files against libpcap: byte-identical
//! reports, flow lines, messages and exit codes on every fixture and every classic pcap
//! capture of the corpus in `tests/corpus/`. Compressed copies (made here with the gzip,
//! zstd, xz, bzip2 and lz4 tools) against the plain files. The pcapng reader against tshark
//! on every pcapng of the corpus and on a file mixing link types, and on broken pcapng
//! files built here.

use super::util::{run, stderr, tmpdir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn captures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [super::fixtures::dir(), super::corpus::dir()] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "pcap" || x == "cap" || x == "pcapng")
            })
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

#[test]
fn block_reader_matches_libpcap_everywhere() {
    let dir = super::util::tmpdir("readers");
    // pcapng files (whatever their name) have a reader of their own, checked against tshark.
    let files: Vec<PathBuf> = captures().into_iter().filter(|f| !is_pcapng(f)).collect();
    assert!(files.len() > 180, "{} captures", files.len());
    let mut differ = Vec::new();
    for f in &files {
        let name = f.to_str().unwrap();
        let outputs: Vec<_> = ["libpcap", "auto"]
            .iter()
            .map(|reader| {
                let flows = dir.join(format!("{reader}.jsonl"));
                let out = run(&[
                    "classify",
                    "--reader",
                    reader,
                    "--format",
                    "json",
                    "--flows",
                    flows.to_str().unwrap(),
                    name,
                ]);
                let flows = std::fs::read(&flows).unwrap_or_default();
                (out.status.code(), out.stdout, out.stderr, flows)
            })
            .collect();
        if outputs[0] != outputs[1] {
            differ.push(name.to_string());
        }
    }
    assert!(differ.is_empty(), "the readers differ on: {differ:?}");
}

fn is_pcapng(f: &Path) -> bool {
    std::fs::read(f).is_ok_and(|b| b.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]))
}

/// `classify --format json --flows` on `inputs`: exit code, report with the input names
/// taken out, stderr, flow lines.
fn report(
    dir: &Path,
    inputs: &[&str],
    stdin: Option<&Path>,
) -> (Option<i32>, String, String, String) {
    let flows = dir.join("flows.jsonl");
    let mut cmd = super::util::bin();
    cmd.args([
        "classify",
        "--format",
        "json",
        "--flows",
        flows.to_str().unwrap(),
    ])
    .args(inputs);
    if let Some(f) = stdin {
        cmd.stdin(std::fs::File::open(f).unwrap());
    }
    let out = cmd.output().unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if let Some(inputs) = json.get_mut("inputs").and_then(|i| i.as_array_mut()) {
        for i in inputs {
            i["name"] = "INPUT".into();
        }
    }
    let mut err = stderr(&out);
    for name in inputs {
        err = err.replace(name, "INPUT");
    }
    let flows = std::fs::read_to_string(&flows).unwrap_or_default();
    (out.status.code(), json.to_string(), err, flows)
}

/// Compresses `from` into `to` with a command-line tool reading stdin.
fn compress(tool: &[&str], from: &Path, to: &Path) {
    let status = Command::new(tool[0])
        .args(&tool[1..])
        .stdin(std::fs::File::open(from).unwrap())
        .stdout(std::fs::File::create(to).unwrap())
        .status()
        .unwrap_or_else(|e| panic!("{}: {e} (.ci/run installs it)", tool[0]));
    assert!(status.success(), "{tool:?} {}", from.display());
}

const COMPRESSORS: [(&str, &[&str]); 5] = [
    ("gz", &["gzip", "-c"]),
    ("zst", &["zstd", "-q", "-c"]),
    ("xz", &["xz", "-c"]),
    ("bz2", &["bzip2", "-c"]),
    ("lz4", &["lz4", "-q", "-c"]),
];

/// Every fixture and a sample of the corpus (pcapng, several link types, a truncated file, a
/// file with records longer than its snapshot length), in every compression, from a file
/// and (gzip) from standard input, give the plain file's report, flows, messages and exit
/// status.
#[test]
fn compressed_captures_read_as_the_plain_ones() {
    let dir = tmpdir("compressed");
    let corpus = super::corpus::dir();
    let mut files: Vec<PathBuf> = super::fixtures::all()
        .iter()
        .map(|f| super::fixtures::dir().join(f.name))
        .collect();
    for name in [
        "arkime__nflog.pcap",
        "arkime__80211http.pcap",
        "arkime__wireshark-smb-on-windows10.pcap",
        "pcpp__sll2.pcap",
        "pcpp__many_interfaces-1.pcapng",
        "pcpp__ipv4-malformed.pcap",
        "samrlab__powershell.exe_ad.pcapng",
        "ndpi__fuzz-2021-10-13.pcap",
        "ndpi__dns_fragmented.pcap",
    ] {
        files.push(corpus.join(name));
    }
    let mut differ = Vec::new();
    for f in &files {
        let plain = report(&dir, &[f.to_str().unwrap()], None);
        assert!(
            plain.0.is_some() && plain.1.len() > 100,
            "{}: {plain:?}",
            f.display()
        );
        for (ext, tool) in COMPRESSORS {
            let packed = dir.join(format!("capture.{ext}"));
            compress(tool, f, &packed);
            if report(&dir, &[packed.to_str().unwrap()], None) != plain {
                differ.push(format!("{} as {ext}", f.display()));
            }
            if ext == "gz" && report(&dir, &["-"], Some(&packed)) != plain {
                differ.push(format!("{} as {ext} on standard input", f.display()));
            }
        }
        // Plain, from standard input: the stream path of the block readers.
        if report(&dir, &["-"], Some(f)) != plain {
            differ.push(format!("{} on standard input", f.display()));
        }
    }
    assert!(differ.is_empty(), "compressed reads differ: {differ:#?}");
}

/// A compressed capture cut short: the packets before the cut are reported, one warning
/// names the file, exit status 1.
#[test]
fn a_truncated_compressed_capture_reports_what_came_before() {
    let dir = tmpdir("compressed-cut");
    // Real payloads: half of the compressed file holds many compressor blocks.
    let demo = super::corpus::dir().join("ndpi__1kxun.pcap");
    let total = 1723;
    // Small compressor blocks, so that half of the file holds whole blocks.
    let small: [(&str, &[&str]); 5] = [
        ("gz", &["gzip", "-c"]),
        ("zst", &["zstd", "-q", "-c"]),
        ("xz", &["xz", "-c", "--block-size=65536"]),
        ("bz2", &["bzip2", "-1", "-c"]),
        ("lz4", &["lz4", "-q", "-B4", "-c"]),
    ];
    for (ext, tool) in small {
        let packed = dir.join(format!("demo.pcap.{ext}"));
        compress(tool, &demo, &packed);
        let bytes = std::fs::read(&packed).unwrap();
        let cut = dir.join(format!("cut.pcap.{ext}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let name = cut.to_str().unwrap();
        let out = run(&["classify", "--format", "json", name]);
        assert_eq!(out.status.code(), Some(1), "{ext}: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let packets = json["packets"].as_u64().unwrap();
        // Half of the compressed bytes hold a good part of the packets, not all.
        assert!(packets > 500 && packets < total, "{ext}: {packets} packets");
        let tool_name = match ext {
            "gz" => "gzip",
            "zst" => "zstd",
            "bz2" => "bzip2",
            other => other,
        };
        let err = stderr(&out);
        let expected = format!(
            "portscope: warning: {name}: reading stopped after packet {packets}: the {tool_name} stream is cut short (truncated file)\n"
        );
        assert_eq!(err, expected, "{ext}");
    }
}

/// tshark's packet count for a capture (what it reads before any error).
fn tshark_packets(f: &Path) -> u64 {
    let out = Command::new("tshark")
        .args([
            "-n",
            "-r",
            f.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
        .expect("tshark");
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

fn packets(args: &[&str]) -> (u64, serde_json::Value, String, Option<i32>) {
    let mut all = vec!["classify", "--format", "json"];
    all.extend_from_slice(args);
    let out = run(&all);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        json["packets"].as_u64().unwrap(),
        json,
        stderr(&out),
        out.status.code(),
    )
}

/// Every pcapng file of the corpus (whatever its name): the packets tshark reads.
#[test]
fn pcapng_reader_counts_what_tshark_reads() {
    let mut files: Vec<PathBuf> = captures().into_iter().filter(|f| is_pcapng(f)).collect();
    files.sort();
    assert!(files.len() >= 30, "{} pcapng files", files.len());
    let mut differ = Vec::new();
    for f in &files {
        let (ours, _, _, _) = packets(&[f.to_str().unwrap()]);
        let theirs = tshark_packets(f);
        if ours != theirs {
            differ.push(format!("{}: {ours}, tshark {theirs}", f.display()));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

/// A pcapng file whose interfaces have different link types (Ethernet, NFLOG, 802.11 with
/// radiotap, Linux cooked v2), as mergecap writes it and libpcap refuses: every packet read,
/// and each in the row it has in its own capture.
#[test]
fn pcapng_with_several_link_types() {
    let dir = tmpdir("pcapng-links");
    let corpus = super::corpus::dir();
    let parts: Vec<String> = [
        super::fixtures::dir().join("demo.pcap"),
        corpus.join("arkime__nflog.pcap"),
        corpus.join("packetnet__80211_plus_radiotap_header.pcap"),
        corpus.join("pcpp__sll2.pcap"),
    ]
    .iter()
    .map(|p| p.to_str().unwrap().to_string())
    .collect();
    let merged = dir.join("merged.pcapng");
    let status = Command::new("mergecap")
        .args(["-F", "pcapng", "-w", merged.to_str().unwrap()])
        .args(&parts)
        .status()
        .expect("mergecap");
    assert!(status.success());
    let libpcap = run(&[
        "classify",
        "--reader",
        "libpcap",
        "--format",
        "json",
        merged.to_str().unwrap(),
    ]);
    // libpcap refuses the second interface (mergecap writes them all first); portscope's
    // own reader reads on, and says so.
    assert_eq!(libpcap.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&libpcap.stderr),
        format!(
            "portscope: note: {}: libpcap stopped after 0 packets (an interface has a type 239 different from the type of the first interface); read on with portscope's own reader\n",
            merged.display()
        )
    );
    let (ours, merged_json, err, code) = packets(&[merged.to_str().unwrap()]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let libpcap_json: serde_json::Value = serde_json::from_slice(&libpcap.stdout).unwrap();
    assert_eq!(
        libpcap_json, merged_json,
        "--reader libpcap gives another report"
    );
    assert_eq!(ours, tshark_packets(&merged));
    let args: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (apart, apart_json, _, _) = packets(&args);
    assert_eq!(ours, apart);
    // The captures share no flow, so every row is the sum of the rows of its parts.
    let rows = |j: &serde_json::Value| -> Vec<(String, u64, u64)> {
        let mut rows: Vec<_> = j["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    format!("{}/{}", r["transport"], r["ports"]),
                    r["packets"].as_u64().unwrap(),
                    r["bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(rows(&merged_json), rows(&apart_json));
    for k in ["unclassified", "not_ip", "undecodable"] {
        assert_eq!(merged_json[k]["packets"], apart_json[k]["packets"], "{k}");
    }
    // Every link type is in the report, named, and the table says so.
    assert_eq!(
        merged_json["inputs"][0]["link_types"],
        serde_json::json!([
            {"dlt": 1, "name": "Ethernet"},
            {"dlt": 239, "name": "Linux netfilter log messages"},
            {"dlt": 127, "name": "802.11 plus radiotap header"},
            {"dlt": 276, "name": "Linux cooked v2"},
        ])
    );
    let table = run(&["classify", merged.to_str().unwrap()]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.ends_with(&format!(
            "note: {} has frames of 4 link types: Ethernet (1), Linux netfilter log messages (239), 802.11 plus radiotap header (127), Linux cooked v2 (276)\n",
            merged.display()
        )),
        "{text}"
    );
}

/// Little-endian pcapng blocks, built by hand.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let len = u32::try_from(12 + padded).unwrap();
    let mut b = Vec::new();
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&len.to_le_bytes());
    b
}

fn shb() -> Vec<u8> {
    let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    block(0x0a0d_0d0a, &body)
}

/// An interface description; `options` as (code, value).
fn idb(link: u16, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = link.to_le_bytes().to_vec();
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&65535u32.to_le_bytes());
    for (code, value) in options {
        body.extend_from_slice(&code.to_le_bytes());
        body.extend_from_slice(&u16::try_from(value.len()).unwrap().to_le_bytes());
        body.extend_from_slice(value);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    if !options.is_empty() {
        body.extend_from_slice(&[0; 4]);
    }
    block(1, &body)
}

fn epb(interface: u32, units: u64, frame: &[u8]) -> Vec<u8> {
    let mut body = interface.to_le_bytes().to_vec();
    body.extend_from_slice(&u32::try_from(units >> 32).unwrap().to_le_bytes());
    body.extend_from_slice(&u32::try_from(units & 0xffff_ffff).unwrap().to_le_bytes());
    let len = u32::try_from(frame.len()).unwrap();
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(frame);
    block(6, &body)
}

/// A raw-IP (LINKTYPE_RAW) UDP packet from 10.0.0.1:50000 to 10.0.0.2:`port`.
fn udp(port: u16) -> Vec<u8> {
    let mut p = Vec::new();
    etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(50000, port)
        .write(&mut p, &[0; 8])
        .unwrap();
    p
}

/// Sections, interfaces of two link types with their own timestamp resolution and offset,
/// simple packet blocks, unknown blocks and interface statistics, read as tshark does.
#[test]
fn pcapng_sections_interfaces_and_statistics() {
    let dir = tmpdir("pcapng-built");
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x08, 0x00]);
    eth.extend_from_slice(&udp(53));
    let mut f = shb();
    // Raw IP in nanoseconds, 100 s offset; Ethernet in 2^-10 s.
    f.extend(idb(101, &[(9, &[9]), (14, &100i64.to_le_bytes())]));
    f.extend(idb(1, &[(9, &[0x8a])]));
    f.extend(epb(0, 5_000_000_000, &udp(137)));
    f.extend(epb(1, 10 * 1024, &eth));
    f.extend(block(0x0bad_0000, b"unknown block"));
    // A second section: its interface 0 is Ethernet, read by a simple packet block.
    f.extend(shb());
    f.extend(idb(1, &[]));
    let mut spb = u32::try_from(eth.len()).unwrap().to_le_bytes().to_vec();
    spb.extend_from_slice(&eth);
    f.extend(block(3, &spb));
    // Statistics: 1,000 received, 7 dropped by the interface, 3 by the system.
    let mut isb = 0u32.to_le_bytes().to_vec();
    isb.extend_from_slice(&[0; 8]);
    for (code, v) in [(4u16, 1000u64), (5, 7), (7, 3)] {
        isb.extend_from_slice(&code.to_le_bytes());
        isb.extend_from_slice(&8u16.to_le_bytes());
        isb.extend_from_slice(&v.to_le_bytes());
    }
    isb.extend_from_slice(&[0; 4]);
    f.extend(block(5, &isb));
    let path = dir.join("built.pcapng");
    std::fs::write(&path, &f).unwrap();
    let name = path.to_str().unwrap();
    assert_eq!(tshark_packets(&path), 3);
    let flows = dir.join("flows.jsonl");
    let (n, json, err, code) = packets(&["--flows", flows.to_str().unwrap(), name]);
    assert_eq!(n, 3);
    assert_eq!(code, Some(0));
    assert_eq!(
        err,
        format!("portscope: note: {name}: the capture's interface statistics count 10 packets dropped (3 by the system, 7 by the interface)\n")
    );
    assert_eq!(
        json["inputs"][0]["drops"],
        serde_json::json!({"received": 1000, "kernel": 3, "interface": 7})
    );
    let row = |port: u64| {
        json["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ports"][0] == port)
            .map(|r| r["packets"].as_u64().unwrap())
    };
    assert_eq!((row(137), row(53)), (Some(1), Some(2)));
    // Times: 100 s + 5 s for the raw-IP packet, 10 s for the first Ethernet one; the simple
    // packet block, without a time (0), is in the same flow.
    let text = std::fs::read_to_string(&flows).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = |port: u64| {
        lines
            .iter()
            .find(|l| l["resp_port"] == port)
            .map(|l| (l["first"].clone(), l["last"].clone()))
    };
    let times = |a: f64, b: f64| Some((serde_json::json!(a), serde_json::json!(b)));
    assert_eq!(first(137), times(105.0, 105.0), "{text}");
    assert_eq!(first(53), times(0.0, 10.0), "{text}");
}

/// Broken pcapng: one line naming the file and the block, the packets before it reported,
/// exit status 1.
#[test]
fn broken_pcapng_blocks() {
    let dir = tmpdir("pcapng-broken");
    let good = |n: usize| {
        let mut f = shb();
        f.extend(idb(101, &[]));
        for _ in 0..n {
            f.extend(epb(0, 1_000_000, &udp(445)));
        }
        f
    };
    let epb_len = epb(0, 0, &udp(445)).len();
    let header = shb().len() + idb(101, &[]).len();
    let mut lying = good(3);
    // The second packet's length field says 4 bytes more than its trailer.
    let second = header + epb_len;
    let len = u32::try_from(epb_len + 4).unwrap();
    lying[second + 4..second + 8].copy_from_slice(&len.to_le_bytes());
    let mut no_interface = shb();
    no_interface.extend(epb(0, 0, &udp(445)));
    let mut missing = good(2);
    missing.extend(epb(3, 0, &udp(445)));
    let mut cut = good(2);
    cut.truncate(cut.len() - 10);
    let cases: [(&str, Vec<u8>, u64, String); 4] = [
        // What stands where the trailer would be is the next block's type, 6.
        ("lying", lying, 1, format!("pcapng block at byte {second} (type 0x6) says it is {} bytes long, but its trailer says 6", epb_len + 4)),
        ("no-interface", no_interface, 0, format!("pcapng packet block at byte {} names interface 0, but its section (at byte 0) describes no interface", shb().len())),
        ("missing", missing, 2, format!("pcapng packet block at byte {} names interface 3, but its section (at byte 0) describes only 1", header + 2 * epb_len)),
        ("cut", cut, 1, format!("the file is cut inside the pcapng block at byte {} ({} bytes of it)", header + epb_len, epb_len - 10)),
    ];
    for (what, bytes, before, message) in cases {
        let path = dir.join(format!("{what}.pcapng"));
        std::fs::write(&path, &bytes).unwrap();
        let name = path.to_str().unwrap();
        let (n, _, err, code) = packets(&[name]);
        assert_eq!((n, code), (before, Some(1)), "{what}: {err}");
        assert_eq!(
            err,
            format!(
                "portscope: warning: {name}: reading stopped after packet {before}: {message}\n"
            ),
            "{what}"
        );
    }
}

/// A directory: every capture under it (recursively) in the order of its first packet, so
/// a capture split into a ring of files gives the whole capture's report and flows; a file
/// that is no capture is named, and the exit status is 2.
#[test]
fn a_directory_of_ring_files_is_the_whole_capture() {
    let dir = super::util::tmpdir("ring");
    let whole = super::corpus::dir().join("suricata__dcerpc-smb-test-01__input.pcap");
    let ring = dir.join("ring");
    std::fs::create_dir_all(ring.join("older")).unwrap();
    let split = std::process::Command::new("editcap")
        .args(["-c", "40"])
        .arg(&whole)
        .arg(ring.join("part.pcap"))
        .status()
        .expect("editcap runs (it comes with tshark)");
    assert!(split.success());
    // One file in a subdirectory, and a name that sorts before its time.
    let mut parts: Vec<PathBuf> = std::fs::read_dir(&ring)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    parts.sort();
    assert_eq!(parts.len(), 5);
    std::fs::rename(&parts[3], ring.join("older").join("a-first.pcap")).unwrap();
    let flows = |name: &str| dir.join(name);
    let classify = |input: &Path, flows: &Path| {
        run(&[
            "classify",
            "--format",
            "json",
            "--flows",
            flows.to_str().unwrap(),
            input.to_str().unwrap(),
        ])
    };
    let one = classify(&whole, &flows("whole.jsonl"));
    let all = classify(&ring, &flows("ring.jsonl"));
    assert_eq!(all.status.code(), Some(0), "{}", super::util::stderr(&all));
    let report = |out: &[u8]| {
        let mut v: serde_json::Value = serde_json::from_slice(out).unwrap();
        let inputs = v["inputs"].as_array().unwrap().len();
        v.as_object_mut().unwrap().remove("inputs");
        (v, inputs)
    };
    let ((a, _), (b, inputs)) = (report(&one.stdout), report(&all.stdout));
    assert_eq!(inputs, 5);
    assert_eq!(a, b);
    assert_eq!(
        std::fs::read(flows("whole.jsonl")).unwrap(),
        std::fs::read(flows("ring.jsonl")).unwrap()
    );
    // A file that is no capture: named, the rest reported, exit status 2.
    std::fs::write(ring.join("notes.txt"), "not a capture\n").unwrap();
    let with_notes = classify(&ring, &flows("notes.jsonl"));
    assert_eq!(with_notes.status.code(), Some(2));
    assert!(super::util::stderr(&with_notes).contains(&format!(
        "portscope: cannot open capture {}: unknown file format",
        ring.join("notes.txt").display()
    )));
    assert_eq!(report(&with_notes.stdout).0, a);
    // An empty directory is one line.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(&["classify", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        super::util::stderr(&out),
        format!("portscope: directory {} holds no files\n", empty.display())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `bytes` (a little-endian classic pcap with `file_header`-byte file and `record`-byte
/// record headers, the captured length at `caplen_at` in them) written in the other byte
/// order, as a big-endian host would.
fn byte_swapped(bytes: &[u8], file_header: usize, record: usize, caplen_at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let swap = |out: &mut Vec<u8>, at: usize, n: usize| out[at..at + n].reverse();
    for (at, n) in [(0, 4), (4, 2), (6, 2), (8, 4), (12, 4), (16, 4), (20, 4)] {
        swap(&mut out, at, n);
    }
    let mut at = file_header;
    while at + record <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + caplen_at..][..4].try_into().unwrap()) as usize;
        for field in 0..4 {
            swap(&mut out, at + 4 * field, 4);
        }
        if record >= 24 {
            // Interface index and protocol; the Nokia bytes are not numbers.
            swap(&mut out, at + 16, 4);
            swap(&mut out, at + 20, 2);
        }
        at += record + caplen;
    }
    out
}

/// `bytes` (a little-endian classic pcap with 16-byte records in the usual length order)
/// with each record's header changed by `edit`.
fn edit_records(bytes: &[u8], file_header: usize, edit: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut at = file_header;
    while at + 16 <= out.len() {
        let caplen = u32::from_le_bytes(out[at + 8..at + 12].try_into().unwrap()) as usize;
        edit(&mut out[at..at + 16]);
        at += 16 + caplen;
    }
    out
}

/// The classic pcap variants tshark reads: the modified, nanosecond, Nokia, Red Hat 6.1
/// and SuSE 6.3 forms editcap writes from a fixture, each also in the other byte order,
/// and headers edited here (versions 2.5, 3.0 and DG/UX's 543.0, AIX's version 2.2 with
/// nanosecond times and ifType 6, Ixia's lcap magic with its longer file header). Each
/// gives the plain pcap's report and flows (from the file, gzipped, and gzipped on
/// standard input), and tshark's packet count.
#[test]
fn classic_pcap_variants_read_as_tshark_reads_them() {
    let dir = tmpdir("variants");
    let demo = super::fixtures::dir().join("demo.pcap");
    let plain_bytes = std::fs::read(&demo).unwrap();
    // editcap rewrites the file header: compare with its own plain pcap.
    let plain = dir.join("plain.pcap");
    let editcap = |format: &str, to: &Path| {
        let status = Command::new("editcap")
            .args(["-F", format, demo.to_str().unwrap(), to.to_str().unwrap()])
            .status()
            .expect("editcap (.ci/run installs tshark)");
        assert!(status.success(), "editcap -F {format}");
    };
    editcap("pcap", &plain);
    let expected = report(&dir, &[plain.to_str().unwrap()], None);
    assert_eq!(expected.0, Some(0), "{expected:?}");
    assert!(expected.1.contains("\"packets\":500"), "{}", expected.1);

    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    for (format, record) in [
        ("modpcap", 24),
        ("nsecpcap", 16),
        ("nokiapcap", 20),
        ("rh6_1pcap", 24),
        ("suse6_3pcap", 28),
    ] {
        let to = dir.join(format!("{format}.pcap"));
        editcap(format, &to);
        let bytes = std::fs::read(&to).unwrap();
        variants.push((
            format!("{format}-swapped"),
            byte_swapped(&bytes, 24, record, 8),
        ));
        variants.push((format.to_string(), bytes));
    }
    let header = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = plain_bytes.clone();
        edit(&mut b);
        b
    };
    // Before 2.3 (and in DG/UX's 543.0) the wire length came first.
    let old_order = |b: &[u8]| {
        edit_records(b, 24, |h| {
            let caplen: [u8; 4] = h[8..12].try_into().unwrap();
            h.copy_within(12..16, 8);
            h[12..16].copy_from_slice(&caplen);
        })
    };
    for (name, major, minor) in [("v2.5", 2u16, 5u16), ("v3.0", 3, 0), ("v543.0", 543, 0)] {
        let mut b = header(&|b| {
            b[4..6].copy_from_slice(&major.to_le_bytes());
            b[6..8].copy_from_slice(&minor.to_le_bytes());
        });
        let mut caplen_at = 8;
        if major == 543 {
            b = old_order(&b);
            caplen_at = 12;
        }
        variants.push((
            format!("{name}-swapped"),
            byte_swapped(&b, 24, 16, caplen_at),
        ));
        variants.push((name.to_string(), b));
    }
    // AIX: version 2.2 (so the old length order), ifType 6 for Ethernet, nanoseconds.
    let aix = header(&|b| {
        b[6..8].copy_from_slice(&2u16.to_le_bytes());
        b[20..24].copy_from_slice(&6u32.to_le_bytes());
    });
    let aix = edit_records(&aix, 24, |h| {
        let usec = u32::from_le_bytes(h[4..8].try_into().unwrap());
        h[4..8].copy_from_slice(&(usec * 1000).to_le_bytes());
    });
    variants.push(("aix".to_string(), old_order(&aix)));
    // Ixia's software capture: its magic, and the records' size after the file header.
    let mut ixia = header(&|b| b[0..4].copy_from_slice(&0x1c00_01abu32.to_le_bytes()));
    let size = u32::try_from(plain_bytes.len() - 24).unwrap();
    ixia.splice(24..24, size.to_le_bytes());
    variants.push(("ixia-swapped".to_string(), byte_swapped(&ixia, 28, 16, 8)));
    variants.push(("ixia".to_string(), ixia));

    let mut problems = Vec::new();
    for (name, bytes) in &variants {
        let file = dir.join(format!("{name}.pcap"));
        std::fs::write(&file, bytes).unwrap();
        let tshark = tshark_packets(&file);
        if tshark != 500 {
            problems.push(format!("{name}: tshark reads {tshark} packets"));
        }
        let gz = dir.join(format!("{name}.pcap.gz"));
        compress(&["gzip", "-c"], &file, &gz);
        for (how, got) in [
            ("file", report(&dir, &[file.to_str().unwrap()], None)),
            ("gzip", report(&dir, &[gz.to_str().unwrap()], None)),
            ("gzip on stdin", report(&dir, &["-"], Some(&gz))),
        ] {
            if got != expected {
                problems.push(format!(
                    "{name} ({how}): {} {}",
                    got.2,
                    &got.1[..got.1.len().min(300)]
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");

    // Version 1, which tshark refuses too: one line naming the file, from a file (libpcap's
    // words) or a stream.
    let v1 = super::corpus::dir().join("libpcap__pcap-invalid-version-1.pcap");
    let gz = dir.join("v1.pcap.gz");
    compress(&["gzip", "-c"], &v1, &gz);
    for (file, why) in [
        (v1.as_path(), "archaic pcap savefile format"),
        (
            gz.as_path(),
            "pcap version 1.4 unsupported (archaic pcap savefile format)",
        ),
    ] {
        let out = run(&["classify", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            stderr(&out),
            format!("portscope: cannot open capture {}: {why}\n", file.display())
        );
    }
}

/// `classify --format json --flows` with `args`: the report without its `inputs`, the
/// inputs' (packets, bytes), and the flow lines.
fn merged_report(dir: &Path, args: &[&str]) -> (String, Vec<(u64, u64)>, String) {
    let flows = dir.join("merged-flows.jsonl");
    let mut all = vec![
        "classify",
        "--format",
        "json",
        "--flows",
        flows.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = run(&all);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inputs = json["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["packets"].as_u64().unwrap(), i["bytes"].as_u64().unwrap()))
        .collect();
    json.as_object_mut().unwrap().remove("inputs");
    (
        json.to_string(),
        inputs,
        std::fs::read_to_string(&flows).unwrap(),
    )
}

/// Two sensors' captures that overlap in time, made here by splitting a capture into its
/// odd and even packets with tshark: `--merge` (of the files, or of their directory, for
/// any `--threads`) gives the whole capture's rows and flows, each input counting its own
/// packets; without it the inputs are read one after the other, as their concatenation
/// (mergecap -a) is; `-c` counts over the merged packets.
#[test]
fn merge_interleaves_overlapping_captures_by_time() {
    let dir = tmpdir("merge");
    for name in ["demo.pcap", "real_smb_windows10.pcap"] {
        let whole = super::fixtures::dir().join(name);
        let whole = whole.to_str().unwrap();
        // Times strictly increase, so the merge can restore the order exactly.
        let times = Command::new("tshark")
            .args(["-n", "-r", whole, "-T", "fields", "-e", "frame.time_epoch"])
            .output()
            .unwrap();
        let times: Vec<f64> = String::from_utf8_lossy(&times.stdout)
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{name}");
        let sensors = dir.join(name.replace(".pcap", ""));
        std::fs::create_dir_all(&sensors).unwrap();
        let part = |rest: u32| {
            let to = sensors.join(format!("part{rest}.pcap"));
            let status = Command::new("tshark")
                .args(["-n", "-r", whole, "-F", "pcap", "-w", to.to_str().unwrap()])
                .args(["-Y", &format!("frame.number % 2 == {rest}")])
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            to.to_str().unwrap().to_string()
        };
        // The even packets first: the merge must not depend on the order of the inputs.
        let (even, odd) = (part(0), part(1));
        let expected = merged_report(&dir, &[whole]);
        let total = times.len() as u64;
        for threads in ["1", "2", "3"] {
            let got = merged_report(&dir, &["--threads", threads, "--merge", &even, &odd]);
            assert_eq!(got.0, expected.0, "{name} --threads {threads}");
            assert_eq!(got.2, expected.2, "{name} --threads {threads}: flows");
            let split = (total / 2, total - total / 2);
            assert_eq!((got.1[0].0, got.1[1].0), split, "{name}");
            assert_eq!(got.1[0].1 + got.1[1].1, expected.1[0].1, "{name}");
        }
        let by_dir = merged_report(&dir, &["--merge", sensors.to_str().unwrap()]);
        assert_eq!((&by_dir.0, &by_dir.2), (&expected.0, &expected.2), "{name}");
        // Without --merge: one input after the other, as their concatenation.
        let cat = dir.join("cat.pcap");
        let status = Command::new("mergecap")
            .args(["-a", "-F", "pcap", "-w", cat.to_str().unwrap(), &even, &odd])
            .status()
            .unwrap();
        assert!(status.success());
        let apart = merged_report(&dir, &[&even, &odd]);
        let concatenated = merged_report(&dir, &[cat.to_str().unwrap()]);
        assert_eq!((&apart.0, &apart.2), (&concatenated.0, &concatenated.2));
        assert_ne!(apart.2, expected.2, "{name}: the order of packets matters");
        // -c: the first packets of the merged capture, each input counting its own.
        let first = merged_report(&dir, &["--merge", "-c", "101", &even, &odd]);
        let head = merged_report(&dir, &["-c", "101", whole]);
        assert_eq!((&first.0, &first.2), (&head.0, &head.2), "{name}");
        assert_eq!((first.1[0].0, first.1[1].0), (50, 51), "{name}");
    }
}
