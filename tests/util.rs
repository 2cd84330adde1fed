//! Running the binary, and the report's JSON as the tests read it.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn fixture(name: &str) -> String {
    super::fixtures::dir().join(name).display().to_string()
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_portscope"))
}

/// Runs portscope with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run portscope")
}

/// `portscope gen` of `packets` packets in `flows` flows (64-byte packets if `small`) into
/// `path`.
pub fn gen(path: &Path, small: bool, packets: u64, flows: u64) {
    let (packets, flows) = (packets.to_string(), flows.to_string());
    let mut args = vec!["gen", "-o", path.to_str().unwrap(), "--packets", &packets];
    args.extend(["--flows", &flows]);
    if small {
        args.push("--small");
    }
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `portscope classify --flows FILE` on a fixture and returns the flow lines, parsed.
pub fn flow_lines(name: &str) -> Vec<serde_json::Value> {
    flow_lines_of(Path::new(&fixture(name)))
}

/// Runs `portscope classify --flows FILE` on a capture and returns the flow lines, parsed.
pub fn flow_lines_of(capture: &Path) -> Vec<serde_json::Value> {
    // Tests run in parallel: one directory per call.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = capture.file_name().unwrap().to_string_lossy();
    let dir = tmpdir(&format!("flows-{call}-{name}"));
    let flows = dir.join("flows.jsonl");
    let out = run(&[
        "classify",
        "--flows",
        flows.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = std::fs::read_to_string(&flows)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    lines
}

/// A fresh temporary directory for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("portscope-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
pub struct Service {
    pub name: String,
    pub system_name: Option<String>,
    pub catalog: String,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
pub struct Row {
    #[serde(default)]
    pub tunnel: Option<String>,
    #[serde(default)]
    pub inner_match: Option<String>,
    pub transport: String,
    pub ports: Option<[u16; 2]>,
    #[serde(rename = "match")]
    pub kind: String,
    #[serde(default)]
    pub interface: Option<Interface>,
    #[serde(default)]
    pub pipe: Option<String>,
    #[serde(default)]
    pub share_type: Option<String>,
    pub protocols: Vec<String>,
    pub services: Vec<Service>,
    #[serde(default)]
    pub port_services: Option<Vec<Service>>,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// A row's DCE/RPC interface.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
pub struct Interface {
    pub uuid: String,
    pub name: Option<String>,
}

impl Row {
    pub fn key(&self) -> String {
        match self.ports {
            Some([lo, hi]) if lo == hi => format!("{}/{lo}", self.transport),
            Some([lo, hi]) => format!("{}/{lo}-{hi}", self.transport),
            None => self.transport.clone(),
        }
    }
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Copy)]
pub struct Counts {
    #[serde(default)]
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
pub struct LinkCount {
    pub dlt: i32,
    pub packets: u64,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
pub struct Undecodable {
    pub packets: u64,
    pub bytes: u64,
    pub unsupported_link_types: Vec<LinkCount>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
pub struct Input {
    pub name: String,
    pub link_type: Option<i32>,
    pub packets: u64,
    pub bytes: u64,
    pub error: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
pub struct Report {
    pub inputs: Vec<Input>,
    pub packets: u64,
    pub bytes: u64,
    pub flows: u64,
    pub services: Vec<Row>,
    pub unclassified: Counts,
    pub not_ip: Counts,
    pub undecodable: Undecodable,
    pub evicted_flows: u64,
    pub orphan_fragments: u64,
    pub tunnels: Vec<TunnelTotal>,
    pub tunneled: Vec<Row>,
    pub expectations: Expectations,
    #[serde(default)]
    pub smb_undecrypted: Vec<Undecrypted>,
}

/// A session whose keys did not decrypt some of its messages.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
pub struct Undecrypted {
    pub session: String,
    pub messages: u64,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
pub struct TunnelTotal {
    pub tunnel: String,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    pub unclassified: Counts,
    pub not_ip: Counts,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Copy)]
pub struct Expectations {
    pub announced: u64,
    pub matched: u64,
    pub unused: u64,
}

impl Report {
    /// (row key, flows, packets, bytes) of every service row, in report order.
    pub fn rows(&self) -> Vec<(String, u64, u64, u64)> {
        self.services
            .iter()
            .map(|r| (r.key(), r.flows, r.packets, r.bytes))
            .collect()
    }

    pub fn row(&self, key: &str) -> Option<&Row> {
        self.services.iter().find(|r| r.key() == key)
    }

    /// The invariant: rows + unclassified + not IP + undecodable = everything read.
    pub fn check_totals(&self) {
        let p: u64 = self.services.iter().map(|r| r.packets).sum::<u64>()
            + self.unclassified.packets
            + self.not_ip.packets
            + self.undecodable.packets;
        let b: u64 = self.services.iter().map(|r| r.bytes).sum::<u64>()
            + self.unclassified.bytes
            + self.not_ip.bytes
            + self.undecodable.bytes;
        assert_eq!(
            (p, b),
            (self.packets, self.bytes),
            "rows do not add up to the totals"
        );
        // What the reader counted, independently of the classification.
        let read: u64 = self.inputs.iter().map(|i| i.packets).sum();
        let read_bytes: u64 = self.inputs.iter().map(|i| i.bytes).sum();
        assert_eq!(
            (read, read_bytes),
            (self.packets, self.bytes),
            "inputs do not add up to the totals"
        );
    }
}

/// Runs `classify --format json` with `args` and parses the report.
pub fn classify_json(args: &[&str]) -> (Report, Output) {
    let mut all = vec!["classify", "--format", "json"];
    all.extend_from_slice(args);
    let out = run(&all);
    let report: Report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}\nstderr: {}", stdout(&out), stderr(&out)));
    report.check_totals();
    (report, out)
}
