//! Tunnels and dynamic ports on the shared corpus, checked against what tshark decodes.
//!
//! Tunnels: for every capture whose index lists an encapsulation (and the tunnel fixture),
//! tshark's dissection gives each tunneled frame's first inner IP layer and the transport
//! after it; the same service-row rule as the outer oracle names its row. portscope's
//! `tunneled` rows, per-tunnel unclassified and no-inner-IP counts must agree packet for
//! packet, except where listed below.
//!
//! Dynamic ports: tshark's endpoint mapper towers (`epm.proto.tcp_port`), FTP
//! passive/active ports and TFTP requests over every capture; every flow portscope labels
//! `epm` or `expectation` must go to a port tshark saw announced (for `epm`, of an
//! interface owned by the service the row names), every flow to an announced port must be
//! so labelled, and totals must not change against `--ports-only`.

use super::corpus::{inputs, shared};
use super::util::{classify_json, run};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Captures where portscope's inner rows differ from tshark's: (file, packets, why).
const INNER_DISAGREE: &[(&str, u64, &str)] = &[(
    "tcpdump__kday1.pcap",
    1,
    "fuzzed: ethertype IPv4 but version 6; portscope reads the header by its version field \
     (an IPv6 packet, no tunnel), tshark by the ethertype (IPv4 carrying IPv6)",
)];

/// The catalog's exact ports and ranges per transport, and its IP-protocol transports.
struct Rules {
    exact: BTreeMap<String, BTreeSet<u16>>,
    ranges: BTreeMap<String, Vec<(u16, u16)>>,
    ip: BTreeSet<String>,
}

impl Rules {
    fn load() -> Rules {
        let dump: serde_json::Value =
            serde_json::from_slice(&run(&["catalog", "dump", "--format", "json"]).stdout).unwrap();
        let mut rules = Rules {
            exact: BTreeMap::new(),
            ranges: BTreeMap::new(),
            ip: BTreeSet::new(),
        };
        for e in dump.as_array().unwrap() {
            let t = e["transport"].as_str().unwrap().to_string();
            match e["ports"].as_array() {
                None => {
                    rules.ip.insert(t);
                }
                Some(p) => {
                    let (lo, hi) = (p[0].as_u64().unwrap() as u16, p[1].as_u64().unwrap() as u16);
                    if lo == hi {
                        rules.exact.entry(t).or_default().insert(lo);
                    } else {
                        rules.ranges.entry(t).or_default().push((lo, hi));
                    }
                }
            }
        }
        rules
    }

    /// The row of a TCP or UDP packet between ports `a` and `b` (the rule in ARCHITECTURE.md).
    fn ports(&self, t: &str, a: u16, b: u16) -> String {
        let exact = self.exact.get(t);
        let has = |p: u16| exact.is_some_and(|e| e.contains(&p));
        match (has(a), has(b)) {
            (true, true) => return format!("{t}/{}", a.min(b)),
            (true, false) => return format!("{t}/{a}"),
            (false, true) => return format!("{t}/{b}"),
            _ => {}
        }
        let mut fit: Vec<(u16, u16, u16)> = self
            .ranges
            .get(t)
            .into_iter()
            .flatten()
            .filter(|(lo, hi)| (*lo..=*hi).contains(&a) && (*lo..=*hi).contains(&b))
            .map(|&(lo, hi)| (hi - lo, lo, hi))
            .collect();
        fit.sort_unstable();
        fit.first().map_or("unclassified".into(), |&(_, lo, hi)| {
            format!("{t}/{lo}-{hi}")
        })
    }

    fn ip(&self, t: &str) -> String {
        if self.ip.contains(t) {
            t.to_string()
        } else {
            "unclassified".into()
        }
    }
}

/// tshark's fields of every frame, all occurrences (`,`-separated), tab-separated.
fn tshark(capture: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(capture).args([
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ipv6.defragment:FALSE",
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut v: Vec<String> = l.split('\t').map(str::to_string).collect();
            v.resize(fields.len(), String::new());
            v
        })
        .collect()
}

/// The inner row of each tunneled frame as tshark dissects it, one level deep: row key to
/// packets, with `no inner IP` for tunneled frames without an inner IP layer.
fn inner_oracle(capture: &Path, rules: &Rules) -> BTreeMap<String, u64> {
    let fields = [
        "frame.protocols",
        "tcp.srcport",
        "tcp.dstport",
        "udp.srcport",
        "udp.dstport",
    ];
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    for v in tshark(capture, &fields) {
        let layers: Vec<&str> = v[0]
            .split(':')
            .filter(|p| !p.starts_with("ipv6."))
            .collect();
        let Some(outer) = layers.iter().position(|p| matches!(*p, "ip" | "ipv6")) else {
            continue;
        };
        // The tunnel: the first marker after the outer IP layer, before any ICMP (whose
        // errors quote IP packets) or a tunnel portscope does not decode.
        let mut marker = None;
        for (i, p) in layers.iter().enumerate().skip(outer + 1) {
            match *p {
                "gre" | "vxlan" | "l2tp" | "ah" | "ip" | "ipv6" => {
                    marker = Some(i);
                    break;
                }
                "icmp" | "icmpv6" | "teredo" | "geneve" | "mpls" | "esp" | "udpencap" => break,
                _ => {}
            }
        }
        let Some(m) = marker else { continue };
        // AH in transport mode: the transport right after it; otherwise the first IP
        // layer from the marker on.
        let transport_at =
            if layers[m] == "ah" && !matches!(layers.get(m + 1), Some(&"ip" | &"ipv6")) {
                Some(m + 1)
            } else {
                layers
                    .iter()
                    .enumerate()
                    .skip(m)
                    .find(|(_, p)| matches!(**p, "ip" | "ipv6"))
                    .map(|(i, _)| i + 1)
            };
        let key = match transport_at.and_then(|i| layers.get(i).map(|p| (i, *p))) {
            None => "no inner IP".to_string(),
            Some((i, t @ ("tcp" | "udp"))) => {
                // Which occurrence of tcp/udp this layer is.
                let n = layers[..i].iter().filter(|p| **p == t).count();
                let col = if t == "tcp" { 1 } else { 3 };
                let port = |c: usize| -> Option<u16> {
                    v[c].split(',').nth(n).and_then(|s| s.parse().ok())
                };
                match (port(col), port(col + 1)) {
                    (Some(a), Some(b)) => rules.ports(t, a, b),
                    _ => "unclassified".into(),
                }
            }
            Some((_, "icmp" | "icmpv6")) => rules.ip("icmp"),
            Some((_, t @ ("gre" | "esp" | "ah"))) => rules.ip(t),
            Some((i, _)) if i > 0 && matches!(layers[i - 1], "ip" | "ipv6") => {
                "unclassified".into()
            }
            Some(_) => "no inner IP".into(),
        };
        *rows.entry(key).or_default() += 1;
    }
    rows
}

fn tunnel_files(shared: &Path) -> Vec<PathBuf> {
    let index = std::fs::read_to_string(shared.join("corpus/INDEX.tsv")).unwrap();
    let mut lines = index.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, enc, gre, ah) = (
        col("file"),
        col("encapsulations"),
        col("gre_pkts"),
        col("ah_pkts"),
    );
    let tunneled: BTreeSet<String> = lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|c| !c[enc].is_empty() || c[gre] != "0" || c[ah] != "0")
        .map(|c| c[file].to_string())
        .collect();
    inputs(shared)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            tunneled.contains(name.as_ref()) || name == "tunnels.pcap"
        })
        .collect()
}

#[test]
fn tunnels_agree_with_tshark() {
    let shared = shared();
    let rules = Rules::load();
    let files = tunnel_files(&shared);
    assert!(files.len() > 40, "only {} files with tunnels", files.len());
    let mut problems = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut inner_packets = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let theirs = inner_oracle(f, &rules);
        let (r, _) = classify_json(&[f.to_str().unwrap()]);
        let mut ours: BTreeMap<String, u64> = BTreeMap::new();
        for row in &r.tunneled {
            *ours.entry(row.key()).or_default() += row.packets;
        }
        for t in &r.tunnels {
            seen.insert(t.tunnel.clone());
            if t.unclassified.packets > 0 {
                *ours.entry("unclassified".into()).or_default() += t.unclassified.packets;
            }
            if t.not_ip.packets > 0 {
                *ours.entry("no inner IP".into()).or_default() += t.not_ip.packets;
            }
        }
        inner_packets += ours.values().sum::<u64>();
        // Packets in another row (or in no row) on one side than on the other.
        let keys: BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
        let count = |m: &BTreeMap<String, u64>, k: &String| m.get(k).copied().unwrap_or(0);
        let only = |x: &BTreeMap<String, u64>, y: &BTreeMap<String, u64>| -> u64 {
            keys.iter()
                .map(|k| count(x, k).saturating_sub(count(y, k)))
                .sum()
        };
        let differ = only(&theirs, &ours).max(only(&ours, &theirs));
        let expected = INNER_DISAGREE
            .iter()
            .find(|d| d.0 == name)
            .map_or(0, |d| d.1);
        if differ != expected || (expected == 0 && theirs != ours) {
            problems.push(format!("{name}: tshark {theirs:?}, portscope {ours:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every kind was met, in the corpus or the fixture.
    let kinds: Vec<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(
        kinds,
        ["ah", "erspan", "gre", "ip-in-ip", "l2tp", "pptp", "vxlan"]
    );
    assert!(inner_packets > 100, "{inner_packets} tunneled packets");
}
