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
fn report(dir: &Path, inputs: &[&str], stdin: Option<&Path>) -> (Option<i32>, String, String, String) {
    let flows = dir.join("flows.jsonl");
    let mut cmd = super::util::bin();
    cmd.args(["classify", "--format", "json", "--flows", flows.to_str().unwrap()])
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
        assert!(plain.0.is_some() && plain.1.len() > 100, "{}: {plain:?}", f.display());
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
