//! DCE/RPC connections named by the interface their bind names: exact rows on the generated
//! fixture, and the corpus against tshark's `dcerpc` dissector.

use super::corpus::inputs;
use super::oracle::tshark_fields;
use super::util::{classify_json, fixture, flow_lines, flow_lines_of};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SAMR: &str = "12345778-1234-abcd-ef00-0123456789ac";
const EPMAPPER: &str = "e1af8308-5d1f-11c9-91a4-08002b14a0fa";
const NETLOGON: &str = "12345678-1234-abcd-ef00-01234567cffb";
const LSARPC: &str = "12345778-1234-abcd-ef00-0123456789ab";
const UNKNOWN: &str = "01234567-89ab-cdef-0123-456789abcdef";

/// (row, match, interface uuid, interface name, owning services, flows, packets, bytes).
type Expected<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a [&'a str],
    u64,
    u64,
    u64,
);

#[test]
fn binds_name_their_connections() {
    let ad = "Active Directory (Local Security Authority)";
    let want: &[Expected] = &[
        (
            "tcp/49667",
            "rpc-bind",
            SAMR,
            Some("SAMR"),
            &[ad],
            1,
            5,
            742,
        ),
        (
            "tcp/135",
            "rpc-bind",
            EPMAPPER,
            Some("EPMAPPER (endpoint mapper)"),
            &["Remote Procedure Call (RPC)"],
            1,
            4,
            520,
        ),
        // The alter context's interface; the bind after it does not move the connection.
        (
            "tcp/49668",
            "rpc-bind",
            NETLOGON,
            Some("NETLOGON"),
            &["Net Logon"],
            1,
            3,
            306,
        ),
        (
            "udp/1030",
            "rpc-bind",
            NETLOGON,
            Some("NETLOGON"),
            &["Net Logon"],
            1,
            2,
            268,
        ),
        // Unknown to the interface table: named by its UUID, no service.
        ("tcp/49669", "rpc-bind", UNKNOWN, None, &[], 1, 2, 180),
        // Announced by the endpoint mapper: keeps `epm`, and names the interface too.
        ("tcp/49670", "epm", LSARPC, Some("LSARPC"), &[ad], 1, 2, 180),
    ];
    for threads in ["1", "2", "3"] {
        let (r, _) = classify_json(&["--threads", threads, &fixture("rpc.pcap")]);
        assert_eq!((r.packets, r.flows), (20, 7));
        let mut got: Vec<_> = r
            .services
            .iter()
            .filter(|row| row.interface.is_some())
            .map(|row| {
                let i = row.interface.as_ref().unwrap();
                let services: Vec<&str> = row.services.iter().map(|s| s.name.as_str()).collect();
                (
                    row.key(),
                    row.kind.clone(),
                    i.uuid.clone(),
                    i.name.clone(),
                    services.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    row.flows,
                    row.packets,
                    row.bytes,
                )
            })
            .collect();
        got.sort();
        let mut expected: Vec<_> = want
            .iter()
            .map(|&(key, kind, uuid, name, services, f, p, b)| {
                (
                    key.to_string(),
                    kind.to_string(),
                    uuid.to_string(),
                    name.map(str::to_string),
                    services.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    f,
                    p,
                    b,
                )
            })
            .collect();
        expected.sort();
        assert_eq!(got, expected, "threads {threads}");
        // Too short to be a bind: the port table's range row.
        let range = r.row("tcp/49152-65535").unwrap();
        assert_eq!((range.kind.as_str(), range.packets), ("range", 2));
    }
    // --ports-only: the port table alone, no interface anywhere.
    let (plain, _) = classify_json(&["--ports-only", &fixture("rpc.pcap")]);
    assert!(plain.services.iter().all(|r| r.interface.is_none()));
    assert_eq!(plain.row("tcp/135").unwrap().services.len(), 18);
    assert_eq!(plain.row("tcp/49152-65535").unwrap().packets, 14);
    // The flow lines name the interface of every rpc-bind and epm flow.
    let lines = flow_lines("rpc.pcap");
    let named: Vec<(String, String, String)> = lines
        .iter()
        .filter_map(|l| {
            Some((
                l["row"].as_str()?.to_string(),
                l["match"].as_str()?.to_string(),
                l["interface"].as_str()?.to_string(),
            ))
        })
        .collect();
    assert_eq!(
        named,
        [
            ("tcp/49667", "rpc-bind", SAMR),
            ("tcp/135", "rpc-bind", EPMAPPER),
            ("tcp/49668", "rpc-bind", NETLOGON),
            ("tcp/49669", "rpc-bind", UNKNOWN),
            ("tcp/49670", "epm", LSARPC),
            ("udp/1030", "rpc-bind", NETLOGON),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    );
}

/// A connection or exchange tshark saw bound to an interface: its endpoints (sorted), the
/// server's port, the interface, and its bytes.
#[derive(Debug)]
struct Bound {
    server_port: u16,
    uuid: String,
    bytes: u64,
}

/// tshark's answer, independently of portscope: for every TCP connection the interface of
/// the first bind or alter context it dissects outside SMB (where the bind does not start a
/// segment), and for every UDP exchange the interface of its first connectionless request
/// or response; with the bytes of the whole conversation.
fn tshark_binds(capture: &Path) -> BTreeMap<(String, String, String), Bound> {
    let fields = [
        "frame.len",
        "frame.protocols",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "tcp.srcport",
        "tcp.dstport",
        "udp.srcport",
        "udp.dstport",
        "dcerpc.pkt_type",
        "dcerpc.cn_bind_to_uuid",
        "dcerpc.dg_if_id",
    ];
    let (out, _, _) = tshark_fields(capture, &fields, false);
    let mut bytes: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut bound: BTreeMap<(String, String, String), Bound> = BTreeMap::new();
    for line in out.lines() {
        let v: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| v.get(i).copied().unwrap_or("");
        let (src, dst) = if get(2).is_empty() {
            (get(4), get(5))
        } else {
            (get(2), get(3))
        };
        let (proto, sp, dp) = if !get(6).is_empty() {
            ("tcp", get(6), get(7))
        } else if !get(8).is_empty() {
            ("udp", get(8), get(9))
        } else {
            continue;
        };
        let a = format!("{src}:{sp}");
        let b = format!("{dst}:{dp}");
        let key = if a <= b {
            (proto.to_string(), a, b)
        } else {
            (proto.to_string(), b, a)
        };
        *bytes.entry(key.clone()).or_default() += get(0).parse::<u64>().unwrap_or(0);
        let protocols = get(1);
        if protocols.contains(":smb") || protocols.contains(":nbss") || bound.contains_key(&key) {
            continue;
        }
        let port = |p: &str| p.parse::<u16>().unwrap();
        let found = match (proto, get(10), get(11), get(12)) {
            ("tcp", "11" | "14", uuid, _) if !uuid.is_empty() => Some((port(dp), uuid)),
            ("udp", "0", _, uuid) if !uuid.is_empty() => Some((port(dp), uuid)),
            ("udp", "2", _, uuid) if !uuid.is_empty() => Some((port(sp), uuid)),
            _ => None,
        };
        if let Some((server_port, uuid)) = found {
            bound.insert(
                key,
                Bound {
                    server_port,
                    uuid: uuid.to_string(),
                    bytes: 0,
                },
            );
        }
    }
    for (key, b) in &mut bound {
        b.bytes = bytes[key];
    }
    bound
}

/// Connections tshark ties to an interface that portscope does not, with the reason.
const MISSED: &[(&str, &str, &str)] = &[];

#[test]
fn corpus_binds_agree_with_tshark() {
    let files: Vec<PathBuf> = inputs();
    let results: Vec<(PathBuf, Vec<String>, u64, u64)> = std::thread::scope(|s| {
        let check = |f: &PathBuf| -> (PathBuf, Vec<String>, u64, u64) {
            let theirs = tshark_binds(f);
            let mut problems = Vec::new();
            let (mut total, mut named) = (0, 0);
            if theirs.is_empty() {
                return (f.clone(), problems, 0, 0);
            }
            let lines = flow_lines_of(f);
            let mut ours: BTreeMap<(String, String, String), Vec<&serde_json::Value>> =
                BTreeMap::new();
            for l in &lines {
                let proto = match l["proto"].as_u64() {
                    Some(6) => "tcp",
                    Some(17) => "udp",
                    _ => continue,
                };
                if l.get("tunnel").is_some() {
                    continue;
                }
                let end = |addr: &str, port: &str| {
                    let ip = l[addr].as_str().unwrap_or("");
                    format!("{ip}:{}", l[port])
                };
                let (a, b) = (end("orig_addr", "orig_port"), end("resp_addr", "resp_port"));
                let key = if a <= b {
                    (proto.to_string(), a, b)
                } else {
                    (proto.to_string(), b, a)
                };
                ours.entry(key).or_default().push(l);
            }
            for (key, bound) in &theirs {
                total += bound.bytes;
                let flows = ours.get(key).cloned().unwrap_or_default();
                let ok = !flows.is_empty()
                    && flows.iter().all(|l| {
                        l["interface"].as_str() == Some(bound.uuid.as_str())
                            && l["row"].as_str()
                                == Some(format!("{}/{}", key.0, bound.server_port).as_str())
                            && matches!(l["match"].as_str(), Some("rpc-bind" | "epm"))
                    });
                if ok {
                    named += bound.bytes;
                } else {
                    let name = f.file_name().unwrap().to_string_lossy().to_string();
                    let listed = MISSED.iter().any(|m| m.0 == name && m.1 == key.1);
                    if !listed {
                        let got: Vec<String> = flows
                            .iter()
                            .map(|l| format!("{} {} {}", l["row"], l["match"], l["interface"]))
                            .collect();
                        problems.push(format!(
                            "{name}: {key:?}: tshark binds {} on port {}, portscope {got:?}",
                            bound.uuid, bound.server_port
                        ));
                    }
                }
            }
            // And no connection portscope names that tshark does not.
            for (key, flows) in &ours {
                for l in flows {
                    if l["match"].as_str() == Some("rpc-bind") && !theirs.contains_key(key) {
                        problems.push(format!(
                            "{}: {key:?}: portscope names {}, tshark sees no bind",
                            f.display(),
                            l["interface"]
                        ));
                    }
                }
            }
            (f.clone(), problems, total, named)
        };
        let (a, b) = files.split_at(files.len() / 2);
        let h = s.spawn(move || b.iter().map(check).collect::<Vec<_>>());
        let mut out: Vec<_> = a.iter().map(check).collect();
        out.extend(h.join().unwrap());
        out
    });
    let problems: Vec<&String> = results.iter().flat_map(|r| &r.1).collect();
    let total: u64 = results.iter().map(|r| r.2).sum();
    let named: u64 = results.iter().map(|r| r.3).sum();
    let with_binds = results.iter().filter(|r| r.2 > 0).count();
    assert!(
        problems.is_empty(),
        "{}",
        problems
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "DCE/RPC: {named} of {total} bytes of bound connections named, {with_binds} captures"
    );
    assert!(with_binds >= 10, "only {with_binds} captures with binds");
    assert!(
        named as f64 >= 0.95 * total as f64,
        "{named} of {total} bound bytes named"
    );
}

/// A flood of binds to made-up interfaces names at most 64 per shard (one address pair is
/// one shard); the rest keep their port rows and are counted, the same at any thread count.
#[test]
fn binds_to_unknown_interfaces_are_bounded() {
    use etherparse::PacketBuilder;
    use portscope::inspect::rpc::bind_pdu;
    let dir = super::util::tmpdir("rpc-flood");
    let capture = dir.join("flood.pcap");
    let mut records = Vec::new();
    for i in 0..70u16 {
        let mut uuid = [0x77; 16];
        uuid[..2].copy_from_slice(&i.to_be_bytes());
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 9, 0, 1], [10, 9, 0, 2], 64)
            .tcp(40_000 + i, 50_000, 1, 1000);
        let mut frame = Vec::new();
        b.write(&mut frame, &bind_pdu(uuid, false)).unwrap();
        let len = u32::try_from(frame.len()).unwrap();
        records.push((u64::from(i) * 1_000_000, len, frame));
    }
    portscope::gen::write_pcap(&capture, 1, false, records).unwrap();
    let mut reports = Vec::new();
    for threads in ["1", "2"] {
        let (r, out) = classify_json(&["--threads", threads, capture.to_str().unwrap()]);
        let named: u64 = r
            .services
            .iter()
            .filter(|row| row.kind == "rpc-bind")
            .map(|row| row.flows)
            .sum();
        assert_eq!(named, 64);
        // Client ports 40000-40069: the seed's dynamic range, not today's.
        assert_eq!(r.row("tcp/1024-65534").unwrap().flows, 6);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["unnamed_binds"], 6);
        reports.push(out.stdout);
    }
    assert_eq!(reports[0], reports[1]);
    std::fs::remove_dir_all(&dir).unwrap();
}
