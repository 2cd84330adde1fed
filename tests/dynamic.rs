//! Tunnels and dynamic ports on the generated fixtures (`tests/fixtures.rs` says what each
//! packet is): exact rows, the same answer at any thread count, `--ports-only`, `--flows`.

use super::util::{classify_json, fixture, flow_lines, run, stdout, Interface, Report, Row};

/// (tunnel, row key, inner match, flows, packets, bytes) of every tunneled row.
fn tunneled(r: &Report) -> Vec<(String, String, String, u64, u64, u64)> {
    r.tunneled
        .iter()
        .map(|t| {
            assert_eq!(t.kind, "inner");
            (
                t.tunnel.clone().unwrap(),
                t.key(),
                t.inner_match.clone().unwrap(),
                t.flows,
                t.packets,
                t.bytes,
            )
        })
        .collect()
}

fn owned(
    rows: &[(&str, &str, &str, u64, u64, u64)],
) -> Vec<(String, String, String, u64, u64, u64)> {
    rows.iter()
        .map(|&(a, b, c, f, p, by)| (a.into(), b.into(), c.into(), f, p, by))
        .collect()
}

fn names(row: &Row) -> Vec<&str> {
    row.services.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn every_tunnel_is_seen_through_and_totals_do_not_change() {
    let (r, _) = classify_json(&[&fixture("tunnels.pcap")]);
    // Outer rows: each packet once, under its outer flow.
    assert_eq!((r.packets, r.bytes), (13, 1124));
    assert_eq!(r.row("gre").map(|g| (g.flows, g.packets)), Some((1, 6)));
    assert_eq!(r.row("udp/1701").map(|g| g.packets), Some(2));
    assert_eq!(r.row("ah").map(|g| g.packets), Some(1));
    assert_eq!(r.unclassified.packets, 2, "IP protocols 4 and 41");
    assert_eq!(
        tunneled(&r),
        owned(&[
            ("gre", "tcp/445", "port", 1, 3, 334),
            ("ip-in-ip", "udp/53", "port", 1, 1, 92),
            ("l2tp", "tcp/1433", "port", 1, 1, 94),
            ("pptp", "udp/53", "port", 1, 1, 82),
            ("vxlan", "udp/137", "port", 1, 1, 112),
            ("erspan", "tcp/3389", "port", 1, 1, 104),
            ("ah", "tcp/445", "port", 1, 1, 78),
        ])
    );
    let totals: Vec<(&str, u64, u64, u64, u64, u64)> = r
        .tunnels
        .iter()
        .map(|t| {
            (
                t.tunnel.as_str(),
                t.flows,
                t.packets,
                t.bytes,
                t.unclassified.packets,
                t.not_ip.packets,
            )
        })
        .collect();
    assert_eq!(
        totals,
        [
            ("gre", 1, 3, 334, 0, 0),
            ("ip-in-ip", 2, 2, 166, 1, 0),
            ("l2tp", 1, 2, 148, 0, 1),
            ("pptp", 1, 2, 128, 0, 1),
            ("vxlan", 1, 1, 112, 0, 0),
            ("erspan", 1, 1, 104, 0, 0),
            ("ah", 1, 1, 78, 0, 0),
        ]
    );
    // A tunnel's rows, unclassified and non-IP packets add up to the tunnel.
    for t in &r.tunnels {
        let rows: u64 = r
            .tunneled
            .iter()
            .filter(|x| x.tunnel.as_deref() == Some(&t.tunnel))
            .map(|x| x.packets)
            .sum();
        assert_eq!(rows + t.unclassified.packets + t.not_ip.packets, t.packets);
    }
    let table = stdout(&run(&["classify", &fixture("tunnels.pcap")]));
    assert!(table.contains("\ngre tunnel  "), "{table}");
    assert!(
        table.contains("  tcp/445        inner port  SMB, SMB (named pipes)"),
        "{table}"
    );
    assert!(table.contains("  no inner IP"), "{table}");
}

/// Aruba's GRE mirror: the packets in its 802.11 data frames are the tunnel's inner rows;
/// a protected frame, a beacon and GRE 0x9000 have no inner IP.
#[test]
fn aruba_gre_80211_is_seen_through() {
    let (r, _) = classify_json(&[&fixture("aruba_gre.pcap")]);
    assert_eq!((r.packets, r.bytes), (7, 766));
    assert_eq!(r.row("gre").map(|g| (g.flows, g.packets)), Some((1, 7)));
    assert_eq!(
        tunneled(&r),
        owned(&[
            ("gre", "udp/53", "port", 1, 2, 286),
            ("gre", "tcp/445", "port", 1, 2, 224),
        ])
    );
    let gre = &r.tunnels[0];
    assert_eq!(
        (
            gre.tunnel.as_str(),
            gre.flows,
            gre.packets,
            gre.not_ip.packets
        ),
        ("gre", 2, 7, 3)
    );
}

#[test]
fn inner_flows_name_their_tunnel_in_flows_lines() {
    let lines = flow_lines("tunnels.pcap");
    let inner: Vec<&serde_json::Value> = lines.iter().filter(|l| l["tunnel"].is_object()).collect();
    assert_eq!(lines.len(), 7 + 8);
    assert_eq!(inner.len(), 8);
    let smb = inner.iter().find(|l| l["tunnel"]["kind"] == "gre").unwrap();
    assert_eq!(smb["row"], "tcp/445");
    assert_eq!(smb["match"], "inner");
    assert_eq!(smb["inner_match"], "port");
    assert_eq!(smb["tunnel"]["outer_a"], "192.0.2.1");
    assert_eq!(smb["tunnel"]["outer_b"], "192.0.2.2");
    assert_eq!(
        (smb["orig_addr"].as_str(), smb["resp_port"].as_u64()),
        (Some("10.1.1.1"), Some(445))
    );
    assert_eq!(
        (smb["orig_packets"].as_u64(), smb["resp_packets"].as_u64()),
        (Some(2), Some(1))
    );
    // Outer flows have no tunnel and their own match kind.
    let gre = lines.iter().find(|l| l["row"] == "gre").unwrap();
    assert_eq!(
        (gre["match"].as_str(), gre.get("tunnel")),
        (Some("ip-protocol"), None)
    );
}

#[test]
fn announced_unknown_interfaces_are_named_by_their_uuid() {
    // Two answers of the endpoint mapper for an interface no table knows, on ports 49710
    // and 49711: each connection is an `epm` row of that interface, with no name and no
    // service, rather than a guess among the RPC range's candidates.
    let (r, _) = classify_json(&[&fixture("epm-unknown.pcap")]);
    assert_eq!((r.packets, r.flows), (7, 3));
    let rows: Vec<(String, String, u64, u64, u64)> = r
        .services
        .iter()
        .map(|x| {
            (
                x.key(),
                x.kind.clone(),
                x.flows,
                x.packets,
                x.services.len() as u64,
            )
        })
        .collect();
    let want = [
        ("tcp/135", "port", 1, 3, 18),
        ("tcp/49710", "epm", 1, 3, 0),
        ("tcp/49711", "epm", 1, 1, 0),
    ];
    let want: Vec<(String, String, u64, u64, u64)> = want
        .iter()
        .map(|&(k, m, f, p, s)| (k.to_string(), m.to_string(), f, p, s))
        .collect();
    assert_eq!(rows, want);
    for row in ["tcp/49710", "tcp/49711"] {
        assert_eq!(
            r.row(row).unwrap().interface,
            Some(Interface {
                uuid: "0a0b0c0d-1111-2222-3333-445566778899".into(),
                name: None
            })
        );
    }
    assert_eq!((r.expectations.announced, r.expectations.matched), (2, 2));
    // Without following announcements, the range row takes them.
    let (plain, _) = classify_json(&["--ports-only", &fixture("epm-unknown.pcap")]);
    assert_eq!(plain.row("tcp/49152-65535").map(|x| x.flows), Some(2));
}

#[test]
fn announced_ports_take_the_announced_service() {
    let (r, _) = classify_json(&[&fixture("dynamic.pcap")]);
    assert_eq!((r.packets, r.flows), (26, 13));
    let rows: Vec<(String, String, u64, u64)> = r
        .services
        .iter()
        .map(|x| (x.key(), x.kind.clone(), x.flows, x.packets))
        .collect();
    let want: Vec<(String, String, u64, u64)> = [
        ("tcp/20", "expectation", 3, 4),
        ("udp/69", "expectation", 1, 2),
        ("tcp/135", "port", 1, 5),
        ("udp/49152-65535", "range", 1, 1),
        ("tcp/21", "port", 1, 5),
        ("tcp/49667", "epm", 1, 3),
        ("tcp/49152-65535", "range", 2, 3),
        ("udp/69", "port", 2, 2),
        ("tcp/49670", "epm", 1, 1),
    ]
    .iter()
    .map(|&(k, m, f, p)| (k.to_string(), m.to_string(), f, p))
    .collect();
    assert_eq!(rows, want);
    let drs = &r.services[5];
    assert_eq!(drs.protocols, ["DRSUAPI (directory replication)"]);
    assert_eq!(names(drs), ["Active Directory (Local Security Authority)"]);
    assert_eq!(drs.services[0].system_name.as_deref(), Some("LSASS"));
    assert_eq!(drs.services[0].catalog, "rpc-interfaces");
    assert_eq!(names(&r.services[8]), ["Net Logon"]);
    assert_eq!(names(&r.services[0]), ["FTP Publishing Service"]);
    assert_eq!(names(&r.services[1]), ["Trivial FTP Daemon"]);
    assert_eq!(
        (
            r.expectations.announced,
            r.expectations.matched,
            r.expectations.unused
        ),
        (8, 6, 2)
    );
    // The same answer on any number of threads.
    let outs: Vec<Vec<u8>> = ["1", "2", "8"]
        .iter()
        .map(|t| {
            run(&[
                "classify",
                "--format",
                "json",
                "--threads",
                t,
                &fixture("dynamic.pcap"),
            ])
            .stdout
        })
        .collect();
    assert!(outs.iter().all(|o| *o == outs[0]));
}

#[test]
fn ports_only_ignores_announcements() {
    let (r, _) = classify_json(&["--ports-only", &fixture("dynamic.pcap")]);
    assert_eq!((r.packets, r.flows), (26, 13));
    assert!(r
        .services
        .iter()
        .all(|x| x.kind == "port" || x.kind == "range"));
    // One announced flow has a port below 49152: the seed's range, the rest today's.
    assert_eq!(
        r.row("tcp/49152-65535").map(|x| (x.flows, x.packets)),
        Some((5, 9))
    );
    assert_eq!(
        r.row("tcp/1024-65534").map(|x| (x.flows, x.packets)),
        Some((1, 1))
    );
    assert_eq!(r.row("tcp/20").map(|x| (x.flows, x.packets)), Some((1, 1)));
    assert_eq!((r.expectations.announced, r.expectations.matched), (0, 0));
}

#[test]
fn announced_flows_say_so_in_flows_lines() {
    let lines = flow_lines("dynamic.pcap");
    let pasv = lines.iter().find(|l| l["resp_port"] == 50000).unwrap();
    assert_eq!(
        (pasv["row"].as_str(), pasv["match"].as_str()),
        (Some("tcp/20"), Some("expectation"))
    );
    let early = lines.iter().find(|l| l["orig_port"] == 50102).unwrap();
    assert_eq!(
        (
            early["row"].as_str(),
            early["match"].as_str(),
            early["orig_packets"].as_u64()
        ),
        (Some("tcp/49152-65535"), Some("range"), Some(2))
    );
    let late = lines.iter().find(|l| l["orig_port"] == 50103).unwrap();
    assert_eq!(
        (late["row"].as_str(), late["match"].as_str()),
        (Some("tcp/49670"), Some("epm"))
    );
}
