//! Tunnels and dynamic ports on the corpus in `tests/corpus/`, checked against what tshark
//! decodes.
//!
//! Tunnels: for every capture whose index lists an encapsulation (and the tunnel and Aruba
//! GRE fixtures),
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

use super::corpus::inputs;
use super::oracle::Rules;
use super::util::classify_json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Captures where portscope's inner rows differ from tshark's: (file, packets, why).
const INNER_DISAGREE: &[(&str, u64, &str)] = &[(
    "tcpdump__kday1.pcap",
    1,
    "fuzzed: ethertype IPv4 but version 6; portscope reads the header by its version field \
     (an IPv6 packet, no tunnel), tshark by the ethertype (IPv4 carrying IPv6)",
)];

/// tshark's fields of every frame, all occurrences (`,`-separated).
fn tshark(capture: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let (out, _, _) = super::oracle::tshark_fields(capture, fields, true);
    out.lines()
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

fn tunnel_files() -> Vec<PathBuf> {
    let index = std::fs::read_to_string(super::corpus::dir().join("INDEX.tsv")).unwrap();
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
    inputs()
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            tunneled.contains(name.as_ref()) || name == "tunnels.pcap" || name == "aruba_gre.pcap"
        })
        .collect()
}

#[test]
fn tunnels_agree_with_tshark() {
    let rules = Rules::load();
    let files = tunnel_files();
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

/// The ports tshark saw announced in a capture: endpoint mapper towers (port to interface
/// UUIDs), FTP passive and active ports, and the client ports of TFTP requests.
#[derive(Default)]
struct Announced {
    epm: BTreeMap<u16, BTreeSet<String>>,
    ftp: BTreeSet<u16>,
    tftp: BTreeSet<u16>,
}

fn announced(capture: &Path) -> Announced {
    let fields = [
        "tcp.srcport",
        "dcerpc.pkt_type",
        "epm.uuid",
        "epm.proto.tcp_port",
        "ftp.passive.port",
        "ftp.active.port",
        "tftp.opcode",
        "udp.srcport",
        "ftp.epsv.port",
        "ftp.eprt.port",
    ];
    let mut a = Announced::default();
    for v in tshark(capture, &fields) {
        let list = |i: usize| -> Vec<String> {
            v[i].split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        if v[0] == "135" && list(1).contains(&"2".to_string()) {
            for port in list(3) {
                a.epm
                    .entry(port.parse().unwrap())
                    .or_default()
                    .extend(list(2));
            }
        }
        for p in [4, 5, 8, 9].into_iter().flat_map(list) {
            a.ftp.insert(p.parse().unwrap());
        }
        if list(6).iter().any(|op| op == "1" || op == "2") {
            if let Some(p) = list(7).first() {
                a.tftp.insert(p.parse().unwrap());
            }
        }
    }
    a
}

/// UUID to the service that owns it, from the built-in interface table.
fn interface_services() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/rpc-interfaces.toml"),
    )
    .unwrap();
    let table: toml::Value = toml::from_str(&text).unwrap();
    table["interface"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["uuid"].as_str().unwrap().to_string(),
                i["service"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn announced_ports_agree_with_tshark() {
    let services = interface_services();
    let dir = super::util::tmpdir("announced");
    let mut problems = Vec::new();
    let (mut epm_flows, mut expected_flows) = (0, 0);
    // The corpus only: the fixtures' exchanges are checked row by row in `dynamic.rs` (tshark
    // cannot name an interface without the bind the fixture leaves out).
    let corpus = super::corpus::dir();
    for f in inputs().into_iter().filter(|f| f.starts_with(&corpus)) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let flows_path = dir.join("flows.jsonl");
        let (r, _) = classify_json(&["--flows", flows_path.to_str().unwrap(), f.to_str().unwrap()]);
        let (plain, _) = classify_json(&["--ports-only", f.to_str().unwrap()]);
        if (r.packets, r.bytes, r.flows) != (plain.packets, plain.bytes, plain.flows) {
            problems.push(format!("{name}: totals change with announcements followed"));
        }
        if r.expectations.announced == 0 && !name.contains("ftp") && !name.contains("dcerpc") {
            // Nothing announced by portscope's reading; tshark is asked only where a
            // control port was seen, to keep the test quick.
            let controls = plain
                .services
                .iter()
                .any(|x| matches!(x.key().as_str(), "tcp/135" | "tcp/21" | "udp/69"));
            if !controls {
                continue;
            }
        }
        let theirs = announced(&f);
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&flows_path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for l in &lines {
            let (proto, port) = (
                l["proto"].as_u64().unwrap(),
                l["resp_port"].as_u64().unwrap() as u16,
            );
            let kind = l["match"].as_str().unwrap_or("");
            let row = l["row"].as_str().unwrap();
            let announced_here = match proto {
                6 => theirs.epm.contains_key(&port) || theirs.ftp.contains(&port),
                17 => theirs.tftp.contains(&port) && l["orig_port"] != 69,
                _ => false,
            };
            let labelled = matches!(kind, "epm" | "expectation");
            if labelled != announced_here {
                problems.push(format!(
                    "{name}: flow to {proto}/{port} is {kind} ({row}); tshark saw it announced: {announced_here}"
                ));
                continue;
            }
            if kind == "epm" {
                epm_flows += 1;
                let owner = r
                    .services
                    .iter()
                    .find(|x| x.key() == row && x.kind == "epm")
                    .map(|x| x.services[0].name.clone());
                let theirs: Vec<&String> = theirs.epm[&port]
                    .iter()
                    .filter_map(|u| services.get(u))
                    .collect();
                if owner.as_ref().is_none_or(|o| !theirs.contains(&o)) {
                    problems.push(format!(
                        "{name}: {row} is {owner:?}; tshark's interfaces belong to {theirs:?}"
                    ));
                }
            } else if kind == "expectation" {
                expected_flows += 1;
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // zerologon (21) and the four samrlab captures; ndpi ftp (2), sip-method (1), zeek's
    // FTP over IPv6 (5), ndpi tftp (3).
    assert_eq!((epm_flows, expected_flows), (25, 11));
    std::fs::remove_dir_all(&dir).unwrap();
}
