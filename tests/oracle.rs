//! The project's tshark oracle: the service row of every packet of a capture, worked out from
//! tshark's dissection and the catalog's records alone, never from portscope's own code.
//!
//! Per frame, only the outermost IP header counts (an `ip` or `ipv6` entry of
//! `frame.protocols`; IPv6 extension headers are the `ipv6.*` entries after it), and the
//! transport is the protocol that follows it:
//!
//! - TCP and UDP: the rule of ARCHITECTURE.md on the outer ports, against the catalog's
//!   exact ports and ranges for that transport;
//! - ICMP and ICMPv6 give `icmp`; GRE, ESP and AH their own names: each only if the catalog
//!   has an IP-protocol record of that name;
//! - anything else carried by IP is `unclassified`, and a frame without IP is `not_ip`.
//!
//! A later fragment (offset above zero) has no transport header of its own: it goes to the
//! row of the first fragment (offset zero, more-fragments set) of the same datagram, keyed
//! by source, destination, identification and (IPv4) protocol, or to `unclassified` when no
//! such first fragment came before it. Both IPv4 and IPv6 fragments are followed.
//! A packet counts its captured frame's wire length (`frame.len`).

use super::util::run;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

/// The catalog's exact ports and ranges per transport, and its IP-protocol transports, as
/// `portscope catalog dump --format json` lists them.
pub struct Rules {
    exact: BTreeMap<String, BTreeSet<u16>>,
    ranges: BTreeMap<String, Vec<(u16, u16)>>,
    ip: BTreeSet<String>,
}

impl Rules {
    /// The built-in catalog, read from the binary's dump.
    pub fn load() -> Rules {
        let dump = run(&["catalog", "dump", "--format", "json"]);
        assert!(dump.status.success(), "portscope catalog dump failed");
        Rules::from_dump(&serde_json::from_slice(&dump.stdout).unwrap())
    }

    /// From the records of a dump: `transport`, and `ports` as `[low, high]` or null for an
    /// IP-protocol record.
    pub fn from_dump(dump: &serde_json::Value) -> Rules {
        let mut rules = Rules {
            exact: BTreeMap::new(),
            ranges: BTreeMap::new(),
            ip: BTreeSet::new(),
        };
        for e in dump.as_array().expect("the dump is a list of records") {
            let t = e["transport"].as_str().unwrap().to_string();
            match e["ports"].as_array() {
                None => {
                    rules.ip.insert(t);
                }
                Some(p) => {
                    let port = |i: usize| u16::try_from(p[i].as_u64().unwrap()).unwrap();
                    let (lo, hi) = (port(0), port(1));
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

    /// The row of a TCP or UDP packet between ports `a` and `b`: the lower of two catalogued
    /// ports, else the one catalogued port, else the narrowest range holding both.
    pub fn ports(&self, t: &str, a: u16, b: u16) -> String {
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
        fit.first()
            .map_or(UNCLASSIFIED.into(), |&(_, lo, hi)| format!("{t}/{lo}-{hi}"))
    }

    /// The row of an IP-protocol transport (`icmp`, `gre`, `esp`, `ah`).
    pub fn ip(&self, t: &str) -> String {
        if self.ip.contains(t) {
            t.to_string()
        } else {
            UNCLASSIFIED.into()
        }
    }
}

pub const UNCLASSIFIED: &str = "unclassified";
pub const NOT_IP: &str = "not_ip";

/// Packets and bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

/// What the oracle found in one capture: totals, and packets and bytes per row key (the keys
/// of portscope's rows, plus `unclassified` and `not_ip`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub packets: u64,
    pub bytes: u64,
    pub rows: BTreeMap<String, Count>,
}

impl Tally {
    fn add(&mut self, row: String, bytes: u64) {
        self.packets += 1;
        self.bytes += bytes;
        let c = self.rows.entry(row).or_default();
        c.packets += 1;
        c.bytes += bytes;
    }
}

/// The tshark fields read per frame, in column order.
const FIELDS: [&str; 17] = [
    "frame.len",
    "frame.protocols",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "ip.src",
    "ip.dst",
    "ip.id",
    "ip.proto",
    "ip.frag_offset",
    "ip.flags.mf",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.fraghdr.ident",
    "ipv6.fraghdr.offset",
    "ipv6.fraghdr.more",
];

/// One frame's columns, by field name.
struct Frame<'a>(Vec<&'a str>);

impl Frame<'_> {
    fn get(&self, field: &str) -> &str {
        let i = FIELDS.iter().position(|f| *f == field).unwrap();
        self.0.get(i).copied().unwrap_or("")
    }

    fn port(&self, field: &str) -> Option<u16> {
        self.get(field).parse().ok()
    }

    /// A fragment offset above zero (tshark prints it in 8-byte units; zero is zero).
    fn later(&self, field: &str) -> bool {
        self.get(field).parse::<u32>().is_ok_and(|o| o > 0)
    }

    /// A boolean tshark field that is set.
    fn flag(&self, field: &str) -> bool {
        matches!(self.get(field), "1" | "True" | "true")
    }
}

/// Runs tshark on `capture` with IP reassembly off (every frame is dissected on its own):
/// one tab-separated line per frame of `fields`, each the first occurrence (`all` false) or
/// every occurrence joined by `,`. Also the tshark run's success and standard error.
pub fn tshark_fields(capture: &Path, fields: &[&str], all: bool) -> (String, bool, String) {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(capture).args([
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ipv6.defragment:FALSE",
        "-T",
        "fields",
        "-E",
        "separator=/t",
    ]);
    if all {
        cmd.args(["-E", "occurrence=a", "-E", "aggregator=,"]);
    } else {
        cmd.args(["-E", "occurrence=f"]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs (apt-get install tshark)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// tshark's first occurrence of each of [`FIELDS`] per frame; tshark must succeed.
fn tshark(capture: &Path) -> String {
    let (out, ok, err) = tshark_fields(capture, &FIELDS, false);
    assert!(ok, "tshark failed on {}: {err}", capture.display());
    out
}

/// The row of every packet of `capture`, by the rule in the module's comment.
pub fn oracle(capture: &Path, rules: &Rules) -> Tally {
    let text = tshark(capture);
    let mut tally = Tally::default();
    // First fragments seen: the datagram's key to the row they went to.
    let mut firsts: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        let frame = Frame(line.split('\t').collect());
        let bytes: u64 = frame.get("frame.len").parse().unwrap_or_else(|_| {
            panic!("{}: no frame.len in {line:?}", capture.display());
        });
        let layers: Vec<&str> = frame.get("frame.protocols").split(':').collect();
        let Some(outer) = layers.iter().position(|p| matches!(*p, "ip" | "ipv6")) else {
            tally.add(NOT_IP.into(), bytes);
            continue;
        };
        // The outer header's own extension headers come right after it; the transport is
        // the first entry past them.
        let mut next = outer + 1;
        let mut ipv6_fragment = false;
        if layers[outer] == "ipv6" {
            while let Some(ext) = layers.get(next).filter(|p| p.starts_with("ipv6.")) {
                ipv6_fragment |= *ext == "ipv6.fraghdr";
                next += 1;
            }
        }
        // The datagram this packet is a fragment of, and whether it is a later one. The
        // first occurrence of each ip/ipv6 field is the outer header's: nothing before it
        // has such fields.
        let fragment = if layers[outer] == "ip" {
            let (later, more) = (frame.later("ip.frag_offset"), frame.flag("ip.flags.mf"));
            (later || more).then(|| {
                let key = ["ip.src", "ip.dst", "ip.id", "ip.proto"].map(|f| frame.get(f));
                (format!("4 {}", key.join(" ")), later)
            })
        } else if ipv6_fragment {
            // A fragment header with offset zero and no more fragments is a whole datagram
            // (an atomic fragment, RFC 6946), not the first of several.
            let later = frame.later("ipv6.fraghdr.offset");
            let more = frame.flag("ipv6.fraghdr.more");
            (later || more).then(|| {
                let key = ["ipv6.src", "ipv6.dst", "ipv6.fraghdr.ident"].map(|f| frame.get(f));
                (format!("6 {}", key.join(" ")), later)
            })
        } else {
            None
        };
        let row = match fragment {
            Some((key, true)) => firsts.get(&key).cloned().unwrap_or(UNCLASSIFIED.into()),
            _ => {
                let row = transport_row(&frame, layers.get(next).copied(), rules);
                if let Some((key, false)) = fragment {
                    firsts.insert(key, row.clone());
                }
                row
            }
        };
        tally.add(row, bytes);
    }
    tally
}

/// The row of a packet whose outer IP header carries `transport` (tshark's name for it).
fn transport_row(frame: &Frame, transport: Option<&str>, rules: &Rules) -> String {
    match transport {
        Some(t @ ("tcp" | "udp")) => {
            let (src, dst) = (format!("{t}.srcport"), format!("{t}.dstport"));
            match (frame.port(&src), frame.port(&dst)) {
                (Some(a), Some(b)) => rules.ports(t, a, b),
                _ => UNCLASSIFIED.into(),
            }
        }
        Some("icmp" | "icmpv6") => rules.ip("icmp"),
        Some(t @ ("gre" | "esp" | "ah")) => rules.ip(t),
        _ => UNCLASSIFIED.into(),
    }
}

/// The oracle on generated fixtures whose every packet's row is known from how the fixture
/// was built (`tests/fixtures.rs`): a broken oracle fails here, not only as a disagreement.
#[test]
fn the_oracle_on_fixtures_with_known_rows() {
    let rules = Rules::load();
    let tally = |name: &str| {
        let t = oracle(&super::fixtures::dir().join(name), &rules);
        let rows: Vec<(String, u64, u64)> = t
            .rows
            .iter()
            .map(|(k, c)| (k.clone(), c.packets, c.bytes))
            .collect();
        (t.packets, t.bytes, rows)
    };
    // Rows in key order: (key, packets, bytes).
    let rows = |r: &[(&str, u64, u64)]| -> Vec<(String, u64, u64)> {
        r.iter().map(|&(k, p, b)| (k.to_string(), p, b)).collect()
    };
    // Exact ports, the lower of two, a range, ICMP, IPv6, and one port in no record.
    assert_eq!(
        tally("link_ethernet.pcap"),
        (
            12,
            1062,
            rows(&[
                ("icmp", 2, 148),
                ("tcp/445", 4, 416),
                ("tcp/49152-65535", 2, 108),
                ("udp/137", 1, 92),
                ("udp/53", 2, 244),
                ("unclassified", 1, 54),
            ])
        )
    );
    // IP protocols: GRE, ESP (also over IPv6), AH with TCP behind it, ICMPv6 as `icmp`,
    // NAT-T on the outer UDP ports; IP-in-IP and OSPF unclassified.
    assert_eq!(
        tally("ip_protocols.pcap"),
        (
            19,
            2298,
            rows(&[
                ("ah", 2, 156),
                ("esp", 5, 550),
                ("gre", 2, 196),
                ("icmp", 4, 288),
                ("udp/4500", 2, 284),
                ("udp/500", 2, 684),
                ("unclassified", 2, 140),
            ])
        )
    );
    // Later IPv4 and IPv6 fragments follow their first; one whose first never came.
    assert_eq!(
        tally("fragments.pcap"),
        (
            7,
            4370,
            rows(&[
                ("udp/137", 2, 1628),
                ("udp/389", 4, 2644),
                ("unclassified", 1, 98),
            ])
        )
    );
    // VLAN, QinQ, MPLS and PPPoE in front of the IP header; three frames without IP.
    assert_eq!(
        tally("encapsulations.pcap"),
        (9, 480, rows(&[("not_ip", 3, 120), ("tcp/445", 6, 360)]))
    );
}

/// The rule itself, on a catalog small enough to read.
#[test]
fn the_oracle_rule_on_a_small_catalog() {
    let dump = serde_json::json!([
        {"transport": "tcp", "ports": [445, 445]},
        {"transport": "tcp", "ports": [135, 135]},
        {"transport": "tcp", "ports": [1024, 65535]},
        {"transport": "tcp", "ports": [49152, 65535]},
        {"transport": "udp", "ports": [53, 53]},
        {"transport": "gre", "ports": null},
    ]);
    let r = Rules::from_dump(&dump);
    assert_eq!(r.ports("tcp", 50000, 445), "tcp/445");
    assert_eq!(r.ports("tcp", 445, 135), "tcp/135");
    assert_eq!(r.ports("tcp", 50000, 50001), "tcp/49152-65535");
    assert_eq!(r.ports("tcp", 2000, 50001), "tcp/1024-65535");
    assert_eq!(r.ports("tcp", 22, 50001), "unclassified");
    assert_eq!(r.ports("udp", 445, 50000), "unclassified");
    assert_eq!(r.ports("udp", 53, 53), "udp/53");
    assert_eq!(r.ip("gre"), "gre");
    assert_eq!(r.ip("esp"), "unclassified");
}
