//! `portscope catalog` through the binary: the dump against a table derived from the seed,
//! lookups, `check`, and bad catalogs.

use super::util::{classify_json, fixture, run, stderr, stdout, tmpdir};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
struct Entry {
    service: String,
    system_name: Option<String>,
    protocol: String,
    transport: String,
    ports: Option<[u16; 2]>,
    catalog: String,
    #[serde(rename = "match")]
    kind: Option<String>,
}

fn dump() -> Vec<Entry> {
    let out = run(&["catalog", "dump", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn lookup(query: &str) -> Vec<Entry> {
    let out = run(&["catalog", "lookup", query, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn seed_rows(name: &str) -> Vec<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// The seed's literal transport and ports, read the way the catalog's comments say:
/// (transport, ports) pairs.
fn normalise(proto: &str, app: &str, ports: &str) -> Vec<(String, Option<[u16; 2]>)> {
    let transports: Vec<&str> = match proto {
        "TCP + UDP" => vec!["tcp", "udp"],
        "UCP" if app.starts_with("ICMP") => return vec![("icmp".into(), None)],
        "UPD" => vec!["udp"],
        "GRE" | "ESP" | "AH" => return vec![(proto.to_lowercase(), None)],
        "TCP" => vec!["tcp"],
        "UDP" => vec!["udp"],
        other => panic!("unexpected protocol {other:?} in the seed table"),
    };
    let mut ranges = Vec::new();
    for part in ports.split(", ") {
        let part = part.trim_start_matches("random port number between ");
        let range = match part.split_once(" - ") {
            Some((lo, hi)) => [
                lo.parse().unwrap(),
                hi.parse::<u32>().unwrap().min(65535) as u16,
            ],
            None => {
                let p = part.parse().unwrap();
                [p, p]
            }
        };
        ranges.push(range);
    }
    transports
        .iter()
        .flat_map(|t| ranges.iter().map(move |r| (t.to_string(), Some(*r))))
        .collect()
}

#[test]
fn dump_has_every_row_of_the_seed_per_service_tables() {
    let entries = dump();
    let rows = seed_rows("seed-per-service.tsv");
    assert_eq!(rows.len(), 184);
    for row in rows {
        let [service, system, app, proto, ports] = &row[..] else {
            panic!("{row:?}")
        };
        let protocol = if app == "Quoted" {
            "Quotd"
        } else {
            app.as_str()
        };
        let system = (!system.is_empty()).then(|| system.clone());
        for (transport, ports) in normalise(proto, app, ports) {
            let want = Entry {
                service: service.clone(),
                system_name: system.clone(),
                protocol: protocol.to_string(),
                transport,
                ports,
                catalog: "built-in".into(),
                kind: None,
            };
            assert!(entries.contains(&want), "missing from the dump: {want:?}");
        }
    }
}

#[test]
fn dump_has_every_port_of_the_seed_port_table() {
    let entries = dump();
    for row in seed_rows("seed-by-port.tsv") {
        let [port, proto, app, _service] = &row[..] else {
            panic!("{row:?}")
        };
        let ports = match port.as_str() {
            "n/a" => None,
            p => Some(match p.split_once('-') {
                Some((lo, hi)) => [lo.parse().unwrap(), hi.parse().unwrap()],
                None => [p.parse().unwrap(), p.parse().unwrap()],
            }),
        };
        let transport = normalise(proto, app, "1")[0].0.clone();
        assert!(
            entries
                .iter()
                .any(|e| e.transport == transport && e.ports == ports),
            "no record for {port}/{proto} ({app})"
        );
    }
    // The rows that exist only in the table sorted by port.
    let only = |t: &str, p: u16, service: &str, protocol: &str| {
        assert!(
            entries.iter().any(|e| e.transport == t
                && e.ports == Some([p, p])
                && e.service == service
                && e.protocol == protocol),
            "{p}/{t} {service}"
        );
    };
    only("tcp", 464, "Net Logon", "Kerberos Password V5");
    only(
        "tcp",
        1067,
        "Installation Bootstrap Service",
        "Installation Bootstrap protocol server",
    );
    only(
        "tcp",
        1068,
        "Installation Bootstrap Service",
        "Installation Bootstrap protocol client",
    );
}

#[test]
fn dump_json_fields_and_other_formats() {
    let entries = dump();
    // The seed's 189 records, exactly as before the current-Windows layer, then its 50.
    assert_eq!(entries.len(), 189 + 50);
    assert!(entries[..189].iter().all(|e| e.catalog == "built-in"));
    assert!(entries[189..]
        .iter()
        .all(|e| e.catalog == "built-in-current"));
    let smb = entries
        .iter()
        .find(|e| e.service == "Server" && e.protocol == "SMB")
        .unwrap();
    assert_eq!(smb.system_name.as_deref(), Some("lanmanserver"));
    assert_eq!(
        (smb.transport.as_str(), smb.ports),
        ("tcp", Some([445, 445]))
    );
    let gre = entries.iter().find(|e| e.transport == "gre").unwrap();
    assert_eq!(gre.ports, None);
    let csv = stdout(&run(&["catalog", "dump", "--format", "csv"]));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("service,system_name,protocol,transport,low_port,high_port,catalog,line")
    );
    assert_eq!(lines.count(), 239);
    let table = stdout(&run(&["catalog", "dump"]));
    assert!(table.starts_with("TRANSPORT  PORTS"));
    assert_eq!(table.lines().count(), 240);
}

fn services(entries: &[Entry]) -> Vec<(&str, &str)> {
    entries
        .iter()
        .map(|e| (e.kind.as_deref().unwrap_or(""), e.service.as_str()))
        .collect()
}

#[test]
fn lookups() {
    let tcp135 = lookup("tcp/135");
    assert_eq!(tcp135.len(), 18);
    assert!(tcp135
        .iter()
        .all(|e| e.protocol == "RPC" && e.kind.as_deref() == Some("port")));
    let tcp445 = lookup("445/tcp");
    assert_eq!(tcp445.len(), 9);
    assert!(tcp445
        .iter()
        .any(|e| e.service == "Net Logon" && e.system_name.as_deref() == Some("Netlogon")));
    let udp137 = lookup("udp/137");
    let protocols: Vec<_> = udp137.iter().map(|e| e.protocol.as_str()).collect();
    assert!(protocols.contains(&"Cluster Administrator"));
    assert_eq!(
        protocols
            .iter()
            .filter(|p| **p == "NetBIOS Name Resolution")
            .count(),
        5
    );
    let https: Vec<_> = lookup("443/tcp")
        .into_iter()
        .map(|e| (e.protocol, e.service))
        .collect();
    assert!(https.contains(&(
        "RPC over HTTP".into(),
        "Microsoft Exchange Server and Outlook clients".into()
    )));
    assert!(https.contains(&("HTTPS".into(), "HTTP SSL".into())));
    let rdp = lookup("tcp/3389");
    assert_eq!(
        services(&rdp[..2]),
        [
            ("port", "NetMeeting Remote Desktop Sharing"),
            ("port", "Terminal Services")
        ]
    );
    assert!(rdp[2..].iter().all(|e| e.kind.as_deref() == Some("range")));
    for (q, service) in [
        ("gre", "Routing and Remote Access"),
        ("esp", "Routing and Remote Access"),
        ("ah", "Routing and Remote Access"),
        ("icmp", "Group Policy"),
    ] {
        assert_eq!(services(&lookup(q)), [("ip-protocol", service)], "{q}");
    }
    let high = lookup("tcp/50000");
    assert!(high.iter().all(|e| e.kind.as_deref() == Some("range")));
    assert_eq!(
        high.iter()
            .filter(|e| e.ports == Some([1024, 65535]))
            .count(),
        1
    );
    assert_eq!(
        services(&lookup("udp/9")),
        [("port", "Simple TCP/IP Services")]
    );
    assert!(lookup("udp/6").is_empty());
    let none = run(&["catalog", "lookup", "6/udp"]);
    assert_eq!(stdout(&none), "no catalog record matches 6/udp\n");
    // A bare port asks TCP and UDP.
    let both: Vec<_> = lookup("53").into_iter().map(|e| e.transport).collect();
    assert!(both.contains(&"tcp".to_string()) && both.contains(&"udp".to_string()));
    let bad = run(&["catalog", "lookup", "tcp/0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        stderr(&bad),
        "portscope: bad port \"0\" in \"tcp/0\" (expected 1-65535)\n"
    );
}

/// Every kind of bad catalog: one line naming file and line, exit status 2.
#[test]
fn bad_catalogs_name_file_and_line() {
    let dir = tmpdir("bad-catalogs");
    let head = "# a user catalog\n[[service]]\nname = \"Mine\"\nports = [\n";
    let cases = [
        ("{ protocol = \"A\", transport = \"sctp\", port = 1 }", "unknown transport \"sctp\" (expected tcp, udp, icmp, gre, esp or ah)"),
        ("{ protocol = \"A\", transport = \"tcp\", port = 0 }", "port 0 is out of range (1-65535)"),
        ("{ protocol = \"A\", transport = \"udp\", port = 65536 }", "port 65536 is out of range (1-65535)"),
        ("{ protocol = \"A\", transport = \"tcp\", range = [3000, 2000] }", "inverted range 3000-2000"),
        ("{ protocol = \"A\", transport = \"gre\", port = 47 }", "gre is an IP protocol and has no ports; remove `port`/`range`"),
        ("{ transport = \"tcp\", port = 8080 }", "record is missing `protocol`"),
        ("{ protocol = \"A\", transport = \"tcp\", port = 8080 },\n  { protocol = \"A\", transport = \"tcp\", port = 8080 }", "duplicate record: \"Mine\" \"A\" tcp 8080 is already at line 5"),
    ];
    for (i, (record, message)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.toml"));
        std::fs::write(&path, format!("{head}  {record},\n]\n")).unwrap();
        let p = path.to_str().unwrap();
        let line = if message.starts_with("duplicate") {
            6
        } else {
            5
        };
        let want = format!("portscope: {p}:{line}: {message}\n");
        for args in [
            vec!["catalog", "dump", "--catalog", p],
            vec!["classify", "--catalog", p, &fixture("demo.pcap")],
        ] {
            let out = run(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert_eq!(stderr(&out), want, "{args:?}");
            assert!(out.stdout.is_empty());
        }
        let check = run(&["catalog", "check", p]);
        assert_eq!(check.status.code(), Some(2));
        assert_eq!(stdout(&check), format!("{p}:{line}: {message}\n"));
    }
    let missing = run(&["catalog", "dump", "--catalog", "/nonexistent/x.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        stderr(&missing),
        "portscope: cannot read catalog /nonexistent/x.toml: No such file or directory (os error 2)\n"
    );
}

#[test]
fn check_reports_every_problem_and_passes_clean_files() {
    let dir = tmpdir("check");
    let bad = dir.join("services");
    std::fs::write(
        &bad,
        "ssh 22/tcp\nbad 0/tcp\nworse 99999/udp\nodd 5/xyz\nfine 9/sctp\n",
    )
    .unwrap();
    let out = run(&["catalog", "check", bad.to_str().unwrap()]);
    let b = bad.display();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stdout(&out),
        format!("{b}:2: port 0 is out of range (1-65535)\n{b}:3: port 99999 is out of range (1-65535)\n{b}:4: unknown transport \"xyz\" (expected tcp or udp)\n")
    );
    let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/windows-services.toml");
    let out = run(&["catalog", "check", builtin.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        format!("{}: ok, 189 records\n", builtin.display())
    );
}

#[test]
fn extra_catalog_names_the_rest_of_the_traffic() {
    let dir = tmpdir("extra");
    let services = dir.join("services");
    std::fs::write(&services, "# mine\nssh\t22/tcp\n").unwrap();
    let s = services.to_str().unwrap();
    let (report, _) = classify_json(&["--catalog", s, &fixture("link_ethernet.pcap")]);
    let ssh = report
        .row("tcp/22")
        .expect("tcp/22 named by the extra catalog");
    assert_eq!((ssh.flows, ssh.packets, ssh.bytes), (1, 1, 54));
    assert_eq!(ssh.services[0].name, "ssh");
    assert_eq!(ssh.services[0].catalog, s);
    assert_eq!(report.unclassified.packets, 0);
    // The built-in catalog still wins where it has the port.
    assert_eq!(
        report.row("tcp/445").unwrap().services[0].catalog,
        "built-in"
    );
}

/// The layer of today's Windows ports (`catalog/windows-current.toml`, built in after the
/// seed's) names what the 2003-era table lacks, says so in every record, and leaves the
/// seed's rows as they are.
#[test]
fn the_current_windows_layer_adds_todays_ports() {
    let layer = concat!(env!("CARGO_MANIFEST_DIR"), "/catalog/windows-current.toml");
    let out = run(&["catalog", "check", layer]);
    assert_eq!(
        super::util::stdout(&out),
        format!("{layer}: ok, 50 records\n")
    );
    for (port, service) in [
        ("5355/udp", "DNS Client"),
        ("5353/udp", "DNS Client"),
        ("3702/udp", "Function Discovery Resource Publication"),
        ("547/udp", "DHCP Server"),
        ("546/udp", "DHCP Client"),
        ("5985/tcp", "Windows Remote Management (WinRM)"),
        ("5986/tcp", "Windows Remote Management (WinRM)"),
        ("9389/tcp", "Active Directory Web Services"),
    ] {
        let found = lookup(port);
        assert!(
            found.iter().any(|r| r.service == service
                && r.kind.as_deref() == Some("port")
                && r.catalog == "built-in-current"),
            "{port}: {found:?}"
        );
    }
    // LLMNR was the seed's DCOM range alone (Group Policy); now its port comes first.
    let llmnr = lookup("udp/5355");
    assert_eq!(llmnr[0].kind.as_deref(), Some("port"));
    assert_eq!(llmnr[0].protocol, "LLMNR");
    // The seed's rows, unchanged: the dump's built-in records are those the seed derives.
    let seed: Vec<Entry> = dump()
        .into_iter()
        .filter(|e| e.catalog == "built-in")
        .collect();
    assert_eq!(seed.len(), 189);
    // Loading the file again as an extra catalog lists its records a second time, as a
    // layer of their own.
    let both = run(&["catalog", "dump", "--format", "json", "--catalog", layer]);
    let both: Vec<Entry> = serde_json::from_slice(&both.stdout).unwrap();
    assert_eq!(both.len(), 239 + 50);
}

#[test]
fn interfaces_lists_the_endpoint_mapper_table() {
    let out = run(&["catalog", "interfaces", "--format", "json"]);
    assert!(out.status.success());
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 308);
    let netlogon = list
        .iter()
        .find(|i| i["uuid"] == "12345678-1234-abcd-ef00-01234567cffb")
        .unwrap();
    assert_eq!(
        (
            netlogon["interface"].as_str(),
            netlogon["service"].as_str(),
            netlogon["system_name"].as_str()
        ),
        (Some("NETLOGON"), Some("Net Logon"), Some("Netlogon"))
    );
    // Every owner is a catalog service but these, which the seed lacks and which carry their
    // own system names.
    let dump: Vec<serde_json::Value> =
        serde_json::from_slice(&run(&["catalog", "dump", "--format", "json"]).stdout).unwrap();
    let mut outside: Vec<(&str, &str)> = list
        .iter()
        .filter(|i| !dump.iter().any(|r| r["service"] == i["service"]))
        .map(|i| {
            (
                i["service"].as_str().unwrap(),
                i["system_name"].as_str().unwrap(),
            )
        })
        .collect();
    outside.sort_unstable();
    outside.dedup();
    assert_eq!(
        outside,
        [
            ("Background Intelligent Transfer Service", "BITS"),
            ("COM+ Event System", "EventSystem"),
            ("Cryptographic Services", "CryptSvc"),
            ("DCOM object exporter (any process)", "any"),
            ("DFS Replication", "DFSR"),
            ("Distributed Link Tracking Client", "TrkWks"),
            ("Encrypting File System (EFS)", "EFS"),
            ("File Server Resource Manager", "SrmSvc"),
            ("File Server VSS Agent Service", "fssagent"),
            ("IIS Admin Service", "IISADMIN"),
            ("IPsec Policy Agent", "PolicyAgent"),
            ("Local Session Manager", "LSM"),
            ("Logical Disk Manager Administrative Service", "dmadmin"),
            ("Microsoft Key Distribution Service", "KdsSvc"),
            ("Network DDE", "NetDDE"),
            ("Online Responder Service", "OCSPSvc"),
            ("Plug and Play", "PlugPlay"),
            ("Protected Storage", "ProtectedStorage"),
            ("Remote Access Connection Manager", "RasMan"),
            ("Remote Desktop Configuration", "SessionEnv"),
            ("Remote Desktop Gateway", "TSGateway"),
            ("Remote Registry", "RemoteRegistry"),
            ("Removable Storage", "NtmsSvc"),
            ("Secondary Logon", "seclogon"),
            ("Service Control Manager", "services.exe"),
            ("Software Protection", "sppsvc"),
            ("Task Scheduler", "Schedule"),
            ("Telephony", "TapiSrv"),
            ("Virtual Disk", "vds"),
            ("Volume Shadow Copy", "VSS"),
            ("WebClient", "WebClient"),
            ("Windows Audio", "AudioSrv"),
            ("Windows Deployment Services Server", "WDSServer"),
            ("Windows Firewall", "MpsSvc"),
            ("Windows Management Instrumentation", "Winmgmt"),
            ("Windows Start-Up Application", "wininit.exe"),
            ("Windows System Resource Manager", "WSRM"),
            ("Wireless Zero Configuration", "WZCSVC"),
            ("Workstation", "LanmanWorkstation"),
        ]
    );
    let table = stdout(&run(&["catalog", "interfaces"]));
    assert!(table.starts_with("UUID "), "{table}");
    assert_eq!(table.lines().count(), 309);
}
