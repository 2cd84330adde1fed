//! `portscope classify` on the fixtures: exact rows and totals (the tshark oracle checks the
//! same files independently in `corpus.rs`), determinism, formats, outputs and errors.

use super::util::{
    bin, classify_json, fixture, flow_lines, run, stderr, stdout, tmpdir, Counts, Interface, Report,
};
use std::io::Write;
use std::process::Stdio;

type Rows<'a> = &'a [(&'a str, u64, u64, u64)];

/// Asserts every service row (key, flows, packets, bytes) in order, and the other lines.
fn check(
    name: &str,
    rows: Rows,
    unclassified: (u64, u64, u64),
    not_ip: (u64, u64),
    undecodable: (u64, u64),
) -> Report {
    let (report, out) = classify_json(&["--threads", "2", &fixture(name)]);
    assert!(out.status.success(), "{name}: {}", stderr(&out));
    let want: Vec<_> = rows
        .iter()
        .map(|&(k, f, p, b)| (k.to_string(), f, p, b))
        .collect();
    assert_eq!(report.rows(), want, "{name}");
    let u = report.unclassified;
    assert_eq!(
        (u.flows, u.packets, u.bytes),
        unclassified,
        "{name} unclassified"
    );
    assert_eq!(
        (report.not_ip.packets, report.not_ip.bytes),
        not_ip,
        "{name} not IP"
    );
    assert_eq!(
        (report.undecodable.packets, report.undecodable.bytes),
        undecodable,
        "{name} undecodable"
    );
    report
}

/// The same conversation in every link type: 4 packets to tcp/445, 2 udp/53 over IPv6,
/// 2 ICMP, 2 in the dynamic RPC range, 1 udp/137, 1 to tcp/22 (unclassified).
#[test]
fn every_link_type() {
    // Bytes differ only by the link header: Ethernet 14, SLL 16, SLL2 20, NULL/LOOP 4, raw 0.
    for (name, link) in [
        ("link_ethernet.pcap", 14),
        ("link_sll.pcap", 16),
        ("link_sll2.pcap", 20),
        ("link_null.pcap", 4),
        ("link_loop.pcap", 4),
        ("link_raw.pcap", 0),
    ] {
        let l = |n: u64| n * link;
        check(
            name,
            &[
                ("tcp/445", 1, 4, 360 + l(4)),
                ("udp/53", 1, 2, 216 + l(2)),
                ("icmp", 1, 2, 120 + l(2)),
                ("tcp/49152-65535", 1, 2, 80 + l(2)),
                ("udp/137", 1, 1, 78 + l(1)),
            ],
            (1, 1, 40 + l(1)),
            (0, 0),
            (0, 0),
        );
    }
    check(
        "link_ipv4.pcap",
        &[
            ("tcp/445", 1, 4, 360),
            ("icmp", 1, 2, 120),
            ("tcp/49152-65535", 1, 2, 80),
            ("udp/137", 1, 1, 78),
        ],
        (1, 1, 40),
        (0, 0),
        (0, 0),
    );
    check(
        "link_ipv6.pcap",
        &[("udp/53", 1, 2, 216)],
        (0, 0, 0),
        (0, 0),
        (0, 0),
    );
}

#[test]
fn ethernet_encapsulations() {
    // Plain, 802.1Q, QinQ (0x88a8 and 0x9100), MPLS and PPPoE: six SYNs, six flows; ARP,
    // LLDP and an 802.3/LLC frame are not IP.
    check(
        "encapsulations.pcap",
        &[("tcp/445", 6, 6, 360)],
        (0, 0, 0),
        (3, 120),
        (0, 0),
    );
}

#[test]
fn ip_protocol_rows() {
    let r = check(
        "ip_protocols.pcap",
        &[
            ("udp/500", 1, 2, 684),
            ("esp", 3, 5, 550),
            ("icmp", 2, 4, 288),
            ("udp/4500", 1, 2, 284),
            ("gre", 1, 2, 196),
            ("ah", 1, 2, 156),
        ],
        (2, 2, 140),
        (0, 0),
        (0, 0),
    );
    let gre = r.row("gre").unwrap();
    assert_eq!((gre.kind.as_str(), gre.ports), ("ip-protocol", None));
    assert_eq!(gre.protocols, ["GRE (IP protocol 47)"]);
    assert_eq!(gre.services[0].name, "Routing and Remote Access");
    assert_eq!(gre.services[0].system_name.as_deref(), Some("RemoteAccess"));
}

#[test]
fn fragments_follow_their_first() {
    let r = check(
        "fragments.pcap",
        &[("udp/389", 1, 4, 2644), ("udp/137", 1, 2, 1628)],
        (0, 1, 98),
        (0, 0),
        (0, 0),
    );
    assert_eq!(r.orphan_fragments, 1);
}

#[test]
fn snaplen_cut_frames_count_their_wire_length() {
    // Ports visible (tcp/445), a whole UDP header (udp/53), an IPv4 header without ports
    // and an IPv4 header cut after 6 bytes (both unclassified IP, one flow between them).
    check(
        "snaplen.pcap",
        &[("tcp/445", 1, 1, 1514), ("udp/53", 1, 1, 442)],
        (1, 2, 1608),
        (0, 0),
        (0, 0),
    );
}

#[test]
fn idle_timeouts_in_capture_time_with_nanoseconds() {
    check(
        "nanosecond.pcap",
        &[("tcp/3389", 2, 3, 462), ("udp/123", 2, 3, 270)],
        (0, 0, 0),
        (0, 0),
        (0, 0),
    );
    // A shorter TCP timeout splits the RDP flow once more.
    let (r, _) = classify_json(&["--tcp-timeout", "100", &fixture("nanosecond.pcap")]);
    assert_eq!(r.row("tcp/3389").unwrap().flows, 3);
    // Capture times reach --flows (as seconds, to the microsecond, like Zeek).
    let lines = flow_lines("nanosecond.pcap");
    assert_eq!(lines[0]["first"].as_f64().unwrap(), 1_700_000_000.0);
    assert_eq!(lines[0]["last"].as_f64().unwrap(), 1_700_000_000.5);
    assert_eq!(lines.len(), 4);
}

#[test]
fn unsupported_link_types_are_named() {
    let r = check("unsupported_link.pcap", &[], (0, 0, 0), (0, 0), (3, 48));
    assert_eq!(r.undecodable.unsupported_link_types.len(), 1);
    assert_eq!(
        (
            r.undecodable.unsupported_link_types[0].dlt,
            r.undecodable.unsupported_link_types[0].packets
        ),
        (147, 3)
    );
    let table = stdout(&run(&["classify", &fixture("unsupported_link.pcap")]));
    assert!(
        table.contains(
            "note: 3 packets of link type 147 (USER0, for private use), which portscope does not decode"
        ),
        "{table}"
    );
}

#[test]
fn real_captures() {
    check(
        "real_smb_windows10.pcap",
        // One connection opens \\pipe\\srvsvc and binds SRVSVC: those messages have a
        // row of their own (tests/smb.rs has the rules). Negotiations, session setups and
        // logoffs are the smb-session rows: 15,785 and 3,305 bytes, as tshark's
        // `smb2.cmd in {0,1,2,13} or smb.cmd in {0x72,0x73,0x74,0x2b}` counts them.
        &[
            ("tcp/445", 6, 42, 15785),
            ("tcp/445", 1, 17, 3307),
            ("tcp/139", 2, 12, 3305),
            ("tcp/445", 6, 31, 2602),
            ("tcp/139", 2, 23, 2120),
        ],
        (0, 0, 0),
        (0, 0),
        (0, 0),
    );
    check(
        "real_nbns.pcap",
        &[
            ("udp/137", 4, 46, 5060),
            ("udp/138", 1, 15, 3447),
            ("icmp", 1, 1, 60),
        ],
        (0, 0, 0),
        (0, 0),
        (0, 0),
    );
    check(
        "real_pptp_gre.pcap",
        &[("gre", 1, 17, 1196), ("tcp/1723", 1, 9, 1020)],
        (0, 0, 0),
        (2, 102),
        (0, 0),
    );
    // pcapng: SMB (its SAMR pipe, then the rest of the connection), the endpoint mapper
    // and the RPC connection it handed out (NETLOGON on TCP 53000, in an NDR64 answer).
    let r = check(
        "real_rpcclient_enumdomusers.pcapng",
        &[
            ("tcp/445", 1, 20, 5144),
            ("tcp/53000", 1, 8, 2684),
            ("tcp/445", 1, 6, 2190),
            ("tcp/445", 1, 25, 1998),
            ("tcp/135", 1, 8, 1256),
        ],
        (0, 0, 0),
        (0, 0),
        (0, 0),
    );
    // The connection to the endpoint mapper binds to it: its row is the mapper's interface,
    // owned by the RPC service, not the 18 candidates of TCP 135.
    let epm = r.row("tcp/135").unwrap();
    assert_eq!(epm.kind, "rpc-bind");
    assert_eq!(
        epm.interface,
        Some(Interface {
            uuid: "e1af8308-5d1f-11c9-91a4-08002b14a0fa".into(),
            name: Some("EPMAPPER (endpoint mapper)".into())
        })
    );
    assert_eq!(epm.services.len(), 1);
    assert_eq!(epm.services[0].name, "Remote Procedure Call (RPC)");
    let netlogon = r.row("tcp/53000").unwrap();
    assert_eq!(
        (netlogon.kind.as_str(), netlogon.services[0].name.as_str()),
        ("epm", "Net Logon")
    );
    assert_eq!(
        netlogon.interface.as_ref().map(|i| i.uuid.as_str()),
        Some("12345678-1234-abcd-ef00-01234567cffb")
    );
    let (plain, _) = classify_json(&[
        "--ports-only",
        &fixture("real_rpcclient_enumdomusers.pcapng"),
    ]);
    assert_eq!(plain.row("tcp/49152-65535").unwrap().kind, "range");
    // The PPTP call: 2 pings inside; the rest is PPP control or GRE acknowledgments.
    let (pptp, _) = classify_json(&[&fixture("real_pptp_gre.pcap")]);
    let inner: Vec<_> = pptp.tunneled.iter().map(|t| (t.key(), t.packets)).collect();
    assert_eq!(inner, [("icmp".to_string(), 2)]);
    assert_eq!(
        (pptp.tunnels[0].packets, pptp.tunnels[0].not_ip.packets),
        (17, 15)
    );
}

#[test]
fn the_demo_capture() {
    let r = check(
        "demo.pcap",
        &[
            ("udp/500", 2, 92, 58977),
            ("udp/49152-65535", 1, 60, 48178),
            ("tcp/445", 13, 79, 47514),
            ("tcp/135", 1, 39, 26611),
            ("tcp/443", 4, 32, 22420),
            ("udp/53", 5, 32, 20755),
            ("tcp/593", 1, 23, 15387),
            ("tcp/80", 2, 21, 13491),
            ("tcp/49152-65535", 4, 19, 10733),
            ("tcp/3389", 2, 10, 10565),
            ("tcp/3268", 2, 16, 9627),
            ("udp/161", 2, 10, 7727),
            ("icmp", 1, 5, 5675),
            ("udp/389", 2, 10, 5358),
            ("tcp/110", 1, 4, 5337),
            ("tcp/1723", 1, 4, 4002),
            ("udp/1900", 3, 6, 3991),
            ("esp", 2, 5, 3685),
            ("udp/137", 2, 6, 3630),
            ("udp/123", 3, 7, 1835),
            ("udp/88", 1, 5, 1577),
            ("tcp/464", 2, 3, 1562),
            ("tcp/88", 1, 2, 1548),
            ("tcp/139", 1, 1, 1454),
            ("tcp/25", 1, 2, 222),
        ],
        (1, 3, 2926),
        (4, 240),
        (0, 0),
    );
    assert_eq!((r.packets, r.bytes, r.flows), (500, 335_027, 61));
    let smb = r.row("tcp/445").unwrap();
    assert_eq!(smb.protocols, ["SMB", "SMB (named pipes)"]);
    let names: Vec<_> = smb.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Distributed File System",
            "Fax Service",
            "Group Policy",
            "License Logging",
            "Net Logon",
            "Print Spooler",
            "Remote Procedure Call (RPC) Locator",
            "Server",
            "Terminal Services Licensing"
        ]
    );
}

/// The output is a function of the input: byte-identical for 1, 2 and 8 threads, every format.
#[test]
fn output_does_not_depend_on_threads() {
    for format in ["table", "json", "csv"] {
        let outputs: Vec<_> = ["1", "2", "8"]
            .iter()
            .map(|t| {
                run(&[
                    "classify",
                    "--threads",
                    t,
                    "--format",
                    format,
                    &fixture("demo.pcap"),
                    &fixture("ip_protocols.pcap"),
                ])
                .stdout
            })
            .collect();
        assert!(!outputs[0].is_empty());
        assert!(outputs.iter().all(|o| *o == outputs[0]), "{format}");
    }
    // Also when the flow table is small enough to evict.
    let evicting: Vec<_> = ["1", "2", "8"]
        .iter()
        .map(|t| {
            run(&[
                "classify",
                "--threads",
                t,
                "--format",
                "json",
                "--max-flows",
                "64",
                &fixture("demo.pcap"),
            ])
            .stdout
        })
        .collect();
    assert!(evicting.iter().all(|o| *o == evicting[0]));
    let r: Report = serde_json::from_slice(&evicting[0]).unwrap();
    assert!(r.evicted_flows > 0);
    assert_eq!((r.packets, r.bytes), (500, 335_027));
}

#[test]
fn table_and_csv_formats() {
    let table = stdout(&run(&["classify", &fixture("link_ethernet.pcap")]));
    let want = "\
ROW              MATCH        PROTOCOLS                                 SERVICES                                                      FLOWS  PACKETS    BYTES   SHARE
tcp/445          port         SMB, SMB (named pipes)                    Distributed File System, Fax Service +7                           1        4    416 B   39.2%
udp/53           port         DNS                                       DNS Server +1                                                     1        2    244 B   23.0%
icmp             ip-protocol  ICMP (ping)                               Group Policy                                                      1        2    148 B   13.9%
tcp/49152-65535  range        RPC randomly allocated high TCP ports +6  range guess: Active Directory (Local Security Authority) +20      1        2    108 B   10.2%
udp/137          port         Cluster Administrator +1                  Cluster Service, Computer Browser +4                              1        1     92 B    8.7%
unclassified                                                                                                                              1        1     54 B    5.1%
not IP                                                                                                                                             0      0 B    0.0%
undecodable                                                                                                                                        0      0 B    0.0%
total                                                                                                                                     6       12  1.0 KiB  100.0%
";
    assert_eq!(table, want);
    let csv = stdout(&run(&[
        "classify",
        "--format",
        "csv",
        &fixture("link_ethernet.pcap"),
    ]));
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "row,transport,low_port,high_port,match,protocols,services,flows,packets,bytes,tunnel,interface,pipe,share_type"
    );
    assert_eq!(
        lines[3],
        "icmp,icmp,,,ip-protocol,ICMP (ping),Group Policy,1,2,148,,,,"
    );
    // A row matched by a port range alone says its services are a guess.
    assert!(
        lines[4].starts_with("tcp/49152-65535,tcp,49152,65535,range,")
            && lines[4].contains(",range guess: Active Directory (Local Security Authority); "),
        "{}",
        lines[4]
    );
    assert_eq!(lines[6], "unclassified,,,,,,,1,1,54,,,,");
    assert_eq!(lines[7], "not_ip,,,,,,,,0,0,,,,");
    assert_eq!(lines.len(), 9);
}

#[test]
fn output_file_flows_file_and_stdin() {
    let dir = tmpdir("outputs");
    let report = dir.join("report.json");
    let flows = dir.join("flows.jsonl");
    let out = run(&[
        "classify",
        "--format",
        "json",
        "-o",
        report.to_str().unwrap(),
        "--flows",
        flows.to_str().unwrap(),
        &fixture("link_ethernet.pcap"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let r: Report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r.packets, 12);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "no temporary file is left"
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&flows)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    let smb = &lines[0];
    assert_eq!(smb["orig_addr"], "10.1.1.1");
    assert_eq!(smb["orig_port"], 50000);
    assert_eq!(smb["resp_addr"], "10.1.1.2");
    assert_eq!(smb["resp_port"], 445);
    assert_eq!(smb["row"], "tcp/445");
    assert_eq!(smb["match"], "port");
    assert_eq!(
        (smb["orig_packets"].as_u64(), smb["resp_packets"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        (smb["orig_bytes"].as_u64(), smb["resp_bytes"].as_u64()),
        (Some(362), Some(54))
    );

    let mut child = bin()
        .args(["classify", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(fixture("link_ethernet.pcap")).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    let from_stdin: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_stdin.rows(), r.rows());
    assert_eq!(from_stdin.inputs[0].name, "-");
}

#[test]
fn several_inputs_add_up() {
    let (r, _) = classify_json(&[
        &fixture("link_ethernet.pcap"),
        &fixture("encapsulations.pcap"),
    ]);
    assert_eq!((r.packets, r.bytes), (21, 1542));
    assert_eq!(r.inputs.len(), 2);
    assert_eq!(
        r.row("tcp/445").map(|x| (x.flows, x.packets)),
        Some((7, 10))
    );
}

/// Inputs of different link types and readers (block reader, libpcap for pcapng) in one run.
#[test]
fn inputs_of_different_link_types_in_one_run() {
    let files = [
        "link_sll.pcap",
        "link_raw.pcap",
        "real_rpcclient_enumdomusers.pcapng",
        "link_null.pcap",
    ];
    let paths: Vec<String> = files.iter().map(|f| fixture(f)).collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (r, out) = classify_json(&args);
    assert!(out.status.success());
    let links: Vec<_> = r.inputs.iter().map(|i| (i.link_type, i.packets)).collect();
    assert_eq!(
        links,
        [
            (Some(113), 12),
            (Some(12), 12),
            (Some(1), 67),
            (Some(0), 12)
        ]
    );
    // The same conversation in three link types, with the same addresses and capture times,
    // so its flows carry on from file to file; plus the pcapng's SMB flow.
    // Its SMB flow's SAMR pipe has a row of its own; the port row has both flows.
    let port = r
        .services
        .iter()
        .find(|r| r.key() == "tcp/445" && r.kind == "port")
        .unwrap();
    assert_eq!(port.flows, 2);
    let smb = r.services.iter().filter(|r| r.key() == "tcp/445");
    let (packets, bytes) = smb.fold((0, 0), |(p, b), r| (p + r.packets, b + r.bytes));
    assert_eq!(packets, 3 * 4 + 51);
    assert_eq!(bytes, (360 + 4 * 16) + 360 + (360 + 4 * 4) + 9332);
    assert_eq!(r.packets, 12 * 3 + 67);
}

#[test]
fn missing_file_is_an_error_but_the_rest_is_reported() {
    let out = run(&["classify", "/nonexistent/x.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "portscope: cannot open capture /nonexistent/x.pcap: No such file or directory\n"
    );
    // Nothing was read: no all-zero report beside the error.
    assert_eq!(stdout(&out), "");
    let (r, out) = classify_json(&["/nonexistent/x.pcap", &fixture("link_ethernet.pcap")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(r.packets, 12);
    assert_eq!(
        r.inputs[0].error.as_deref(),
        Some("No such file or directory")
    );
    let dir = tmpdir("garbage");
    let garbage = dir.join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture file at all").unwrap();
    let out = run(&["classify", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "portscope: cannot open capture {}: unknown file format\n",
            garbage.display()
        )
    );
}

#[test]
fn truncated_capture_keeps_what_was_read() {
    let dir = tmpdir("truncated");
    let bytes = std::fs::read(fixture("link_ethernet.pcap")).unwrap();
    let cut = dir.join("cut.pcap");
    // Global header, then five whole records (16 + 74 bytes for the first...): cut inside the
    // sixth record.
    let mut offset = 24;
    for _ in 0..5 {
        let caplen =
            u32::from_le_bytes(bytes[offset + 8..offset + 12].try_into().unwrap()) as usize;
        offset += 16 + caplen;
    }
    std::fs::write(&cut, &bytes[..offset + 20]).unwrap();
    let (r, out) = classify_json(&[cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r.packets, 5);
    assert_eq!(r.row("tcp/445").map(|x| x.packets), Some(4));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "portscope: warning: {}: reading stopped after packet 5: truncated dump file",
            cut.display()
        )),
        "{err}"
    );
    assert_eq!(
        r.unclassified,
        Counts {
            flows: 0,
            packets: 0,
            bytes: 0
        }
    );
}

#[test]
fn bad_arguments() {
    let out = run(&["classify", "--threads", "0", &fixture("demo.pcap")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), "portscope: --threads must be at least 1\n");
    let out = run(&["classify"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Runs the binary with its standard output a pipe closed before anything is read.
fn with_stdout_closed(args: &[&str]) -> std::process::Output {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let out = with_stdout_closed(&["catalog", "dump"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), "");
}

/// A CSV report larger than the CSV writer's buffer, to a pipe closed at once: the writer
/// fails inside a record, not in the final flush, and must still end quietly.
#[test]
fn a_closed_pipe_ends_a_large_csv_quietly() {
    let dir = tmpdir("csv-pipe");
    // 300 UDP flows to 300 ports an extra catalog names: 300 rows, well past 8 KiB.
    let mut services = String::new();
    let mut records = Vec::new();
    for i in 0..300u16 {
        let port = 20_000 + i;
        services.push_str(&format!("svc{i} {port}/udp # a test service\n"));
        let b = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(40_000, port);
        let mut frame = Vec::new();
        b.write(&mut frame, b"x").unwrap();
        let len = u32::try_from(frame.len()).unwrap();
        records.push((u64::from(i) * 1_000_000, len, frame));
    }
    let (catalog, capture) = (dir.join("extra.services"), dir.join("many.pcap"));
    std::fs::write(&catalog, services).unwrap();
    portscope::gen::write_pcap(&capture, 1, false, records).unwrap();
    let args = [
        "classify",
        "--format",
        "csv",
        "--catalog",
        catalog.to_str().unwrap(),
        capture.to_str().unwrap(),
    ];
    let whole = run(&args);
    assert_eq!(whole.status.code(), Some(0));
    assert_eq!(stdout(&whole).lines().count(), 1 + 300 + 3);
    assert!(whole.stdout.len() > 12 * 1024, "{}", whole.stdout.len());
    let out = with_stdout_closed(&args);
    assert_eq!((out.status.code(), stderr(&out)), (Some(0), String::new()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A worker that panics fails the run with one clear line and exit status 2, and no report
/// that silently lacks its packets. The fault is injected through `PORTSCOPE_PANIC_WORKER`,
/// which only debug builds (the test suite's) read.
#[test]
fn a_panicking_worker_fails_the_run() {
    for (threads, worker) in [("2", "1"), ("1", "0")] {
        let out = bin()
            .args(["classify", "--threads", threads, &fixture("demo.pcap")])
            .env("PORTSCOPE_PANIC_WORKER", worker)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "threads {threads}");
        assert_eq!(stdout(&out), "", "threads {threads}: no report");
        let last = stderr(&out).lines().last().unwrap_or_default().to_string();
        assert_eq!(
            last,
            format!(
                "portscope: internal error: worker {worker} panicked (fault injected by \
                 PORTSCOPE_PANIC_WORKER={worker}); no report, as it would lack that thread's packets"
            )
        );
    }
}

/// Shell completions and the man page come from the same clap definitions as the parser.
#[test]
fn completions_and_man_page() {
    let text = |args: &[&str]| {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let bash = text(&["completions", "bash"]);
    assert!(
        bash.contains("_portscope()") && bash.contains("--ports-only"),
        "{bash}"
    );
    assert!(text(&["completions", "zsh"]).starts_with("#compdef portscope"));
    let fish = text(&["completions", "fish"]);
    assert!(fish.contains("complete -c portscope") && fish.contains("classify"));
    let man = text(&["man"]);
    assert!(man.contains(".TH portscope 1"), "{man}");
    assert!(man.contains("classify"));
    for section in [
        ".SH \"EXIT STATUS\"",
        ".SH FILES",
        ".SH EXAMPLES",
        ".BR portscope-classify (1)",
    ] {
        assert!(man.contains(section), "{section}");
    }
    // A page per subcommand, with every long option its --help lists.
    for sub in [
        "classify",
        "merge",
        "catalog",
        "live",
        "interfaces",
        "gen",
        "bench",
        "completions",
        "man",
    ] {
        let page = text(&["man", sub]);
        assert!(page.contains(&format!(".TH portscope-{sub} 1")), "{sub}");
        let help = text(&[sub, "--help"]);
        for word in help.split_whitespace() {
            let Some(option) = word.strip_prefix("--") else {
                continue;
            };
            let option = option.trim_end_matches([',', '.', ')', '`']);
            let option = option.split(['=', '`', '\'']).next().unwrap();
            if option.is_empty() || !option.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                continue;
            }
            let roff = format!("\\-\\-{}", option.replace('-', "\\-"));
            assert!(page.contains(&roff), "man {sub} lacks --{option}");
        }
    }
    let classify = text(&["man", "classify"]);
    assert!(classify.starts_with(".ie") && classify.contains(".TH portscope-classify 1"));
    for option in ["\\-\\-flows", "\\-\\-interval", "\\-\\-reader"] {
        assert!(classify.contains(option), "{option}");
    }
    let bad = run(&["man", "clasify"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        stderr(&bad),
        "portscope: no subcommand clasify: see portscope --help\n"
    );
    let dir = tmpdir("man");
    let out = run(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(
        stderr(&out),
        format!("portscope: wrote 10 man pages to {}\n", dir.display())
    );
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages[..3],
        [
            "portscope-bench.1",
            "portscope-catalog.1",
            "portscope-classify.1"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("portscope-classify.1")).unwrap(),
        classify
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let bad = run(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("invalid value 'tcsh'"),
        "{}",
        stderr(&bad)
    );
}

/// tcpdump's habits: a filter after the captures, and `-` for standard output.
#[test]
fn trailing_filter_and_flows_on_standard_output() {
    let smb = fixture("smb.pcap");
    let (with_f, _) = classify_json(&["-f", "tcp port 445", &smb]);
    let (trailing, out) = classify_json(&[&smb, "tcp", "port", "445"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(trailing.rows(), with_f.rows());
    assert_eq!(trailing.inputs.len(), 1);
    assert_eq!(trailing.packets, with_f.packets);
    // A typo in it is a filter error, not three missing captures.
    let out = run(&["classify", &smb, "tcp", "prt", "445"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "portscope: bad filter \"tcp prt 445\": can't parse filter expression: syntax error\n"
    );
    assert_eq!(stdout(&out), "");
    // Words that are no filter stay missing captures.
    let out = run(&["classify", &smb, "nosuch.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "portscope: cannot open capture nosuch.pcap: No such file or directory\n"
    );
    // `--flows -`: the flow lines on standard output, the report on standard error.
    let out = run(&["classify", "--format", "json", "--flows", "-", &smb]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let report: Report = serde_json::from_str(&stderr(&out)).unwrap();
    assert_eq!(lines.len() as u64, report.flows);
    let packets: u64 = lines
        .iter()
        .map(|l| l["orig_packets"].as_u64().unwrap() + l["resp_packets"].as_u64().unwrap())
        .sum();
    assert_eq!(packets, report.packets - report.not_ip.packets);
    assert!(!std::path::Path::new("-").exists());
    // `-r FILE` as tcpdump and tshark take it, `-o -`, and ndjson: the report on one line.
    let out = run(&[
        "classify", "-r", &smb, "-o", "-", "--format", "ndjson", "tcp", "port", "445",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1);
    let one: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(one.rows(), with_f.rows());
    let out = run(&["catalog", "interfaces", "--format", "ndjson"]);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() > 100);
    assert_eq!(lines[0]["uuid"], "e3514235-4b06-11d1-ab04-00c04fc2dcd2");
}

/// `-c N` stops after N packets over all inputs, like tcpdump's, and the report covers
/// exactly those; inputs after the last one read are not opened.
#[test]
fn count_stops_after_n_packets() {
    let demo = fixture("demo.pcap");
    let (r, out) = classify_json(&["-c", "7", &demo]);
    assert!(out.status.success());
    assert_eq!((r.packets, r.inputs.len(), r.inputs[0].packets), (7, 1, 7));
    // The wire lengths of the file's first seven records (little-endian classic pcap).
    let file = std::fs::read(&demo).unwrap();
    let (mut at, mut first_seven) = (24, 0u64);
    for _ in 0..7 {
        let word = |o: usize| u32::from_le_bytes(file[at + o..at + o + 4].try_into().unwrap());
        first_seven += u64::from(word(12));
        at += 16 + word(8) as usize;
    }
    assert_eq!(r.bytes, first_seven);
    // 500 packets of the first input, then 10 of the second; the third is never opened.
    let rpc = fixture("rpc.pcap");
    let (two, _) = classify_json(&["--count", "510", &demo, &rpc, "/nonexistent.pcap"]);
    let read: Vec<u64> = two.inputs.iter().map(|i| i.packets).collect();
    assert_eq!((two.packets, read), (510, vec![500, 10]));
    let zero = run(&["classify", "-c", "0", &demo]);
    assert_eq!(zero.status.code(), Some(2));
    assert_eq!(stderr(&zero), "portscope: --count must be at least 1\n");
}

/// `-o` and `--flows` write a symbolic link's target, a device or a pipe in place: renaming
/// a temporary file over `/dev/null` or `/dev/stdout` replaced them with regular files.
#[test]
fn outputs_through_links_and_devices_stay_what_they_are() {
    let dir = super::util::tmpdir("output-link");
    let target = dir.join("report.txt");
    let link = dir.join("link.txt");
    std::fs::write(&target, "old").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let demo = fixture("demo.pcap");
    let out = run(&[
        "classify",
        &demo,
        "-o",
        link.to_str().unwrap(),
        "--flows",
        "/dev/null",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let report = std::fs::read_to_string(&target).unwrap();
    assert!(report.starts_with("ROW "), "{report}");
    assert!(report.lines().last().unwrap().starts_with("total"));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// FDDI (link type 10): LLC/SNAP frames carry IP, station management frames do not; tshark
/// reads the same ports.
#[test]
fn fddi_frames_as_tshark_reads_them() {
    use etherparse::PacketBuilder;
    let dir = tmpdir("fddi");
    let path = dir.join("fddi.pcap");
    let fddi = |ip: Vec<u8>| {
        let mut f = vec![0x50];
        f.extend_from_slice(&[0x11; 12]);
        f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        f.extend_from_slice(&ip);
        f
    };
    let mut tcp = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(50000, 445, 1, 1000)
        .write(&mut tcp, b"x")
        .unwrap();
    let mut udp = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(50001, 53)
        .write(&mut udp, b"query")
        .unwrap();
    let mut smt = vec![0x41];
    smt.extend_from_slice(&[0; 40]);
    let frames = [fddi(tcp), fddi(udp), smt];
    let records: Vec<portscope::gen::Record> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                1_700_000_000_000_000_000 + i as u64 * 1000,
                u32::try_from(f.len()).unwrap(),
                f.clone(),
            )
        })
        .collect();
    portscope::gen::write_pcap(&path, 10, false, records).unwrap();
    let (r, out) = classify_json(&[path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<(String, u64)> = r.services.iter().map(|s| (s.key(), s.packets)).collect();
    assert_eq!(
        rows,
        [("tcp/445".to_string(), 1), ("udp/53".to_string(), 1)]
    );
    assert_eq!((r.not_ip.packets, r.undecodable.packets), (1, 0));
    let tshark = std::process::Command::new("tshark")
        .args([
            "-n",
            "-r",
            path.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "tcp.dstport",
            "-e",
            "udp.dstport",
        ])
        .output()
        .expect("tshark");
    assert_eq!(String::from_utf8_lossy(&tshark.stdout), "445\t\n\t53\n\t\n");
    std::fs::remove_dir_all(&dir).unwrap();
}
