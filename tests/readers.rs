//! The block reader for classic pcap files against libpcap: byte-identical reports, flow
//! lines, messages and exit codes on every fixture and every capture of the corpus in
//! `tests/corpus/`.

use super::util::run;
use std::path::PathBuf;

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
    let files = captures();
    assert!(files.len() > 200, "{} captures", files.len());
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
