//! `portscope merge`: reports of files that share no flow add up to the report of one run
//! over all of them, byte for byte; bad documents are refused with one line.

use super::util::{run, stderr, stdout, tmpdir};
use std::path::PathBuf;

/// Captures that share flows with another capture of the list (the same packets on another
/// link type, or the same generated or public capture twice): in one run their flows join,
/// so their reports cannot add up to it. Found by merging every capture with the ones
/// before it.
const SHARE_FLOWS: &[&str] = &[
    "link_ipv4.pcap",
    "link_ipv6.pcap",
    "link_loop.pcap",
    "link_null.pcap",
    "link_raw.pcap",
    "link_sll.pcap",
    "link_sll2.pcap",
    "rpc.pcap",
    "arkime__nbns.pcap",
    "arkime__wireshark-smb-on-windows10.pcap",
    "ndpi__dos_win98_smb_netbeui.pcap",
    // The first packet of libpcap__http_PPI.pcap.
    "packetnet__80211_ppi_multiplefields.pcap",
    "pcpp__GrePackets.cap",
    "pcpp__Ntp.pcap",
    "pcpp__null_loopback.pcap",
    "pcpp__QinQ_802.1_AD.pcapng",
    "pcpp__raw_ip.pcap",
    "suricata__sip-method__sip.pcap",
    "suricata__smb2-ntlmssp-negotiateflags__input.pcap",
    "tcpdump__LINKTYPE_RAW_ipv4.pcap",
    "tcpdump__LINKTYPE_RAW_ipv6.pcap",
    "zeek__dhcp.pcap",
    "zeek__radius.pcap",
];

/// The fixtures, and every fourth capture of the corpus (the whole corpus takes half a
/// minute in a debug build), less the ones that share flows.
fn captures() -> Vec<PathBuf> {
    let all = super::corpus::inputs();
    let (fixtures, corpus): (Vec<_>, Vec<_>) = all
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e != "txt"))
        .partition(|p| p.starts_with(super::fixtures::dir()));
    fixtures
        .into_iter()
        .chain(corpus.into_iter().step_by(4))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !SHARE_FLOWS.contains(&name.as_ref()) && name != "unsupported_link.pcap"
        })
        .collect()
}

/// Equal documents, or the first line that differs (the documents are long).
fn same(merged: &str, one: &str) {
    if let Some((i, (m, o))) = merged
        .lines()
        .zip(one.lines())
        .enumerate()
        .find(|(_, (m, o))| m != o)
    {
        panic!("line {}: merged {m:?}, one run {o:?}", i + 1);
    }
    assert_eq!(merged.lines().count(), one.lines().count());
}

#[test]
fn merged_reports_equal_one_run() {
    let captures = captures();
    assert!(captures.len() > 50, "{}", captures.len());
    let dir = tmpdir("merge-one-run");
    let mut reports = Vec::new();
    for (i, c) in captures.iter().enumerate() {
        let out = run(&["classify", "--format", "json", c.to_str().unwrap()]);
        assert!(out.status.code().unwrap() < 2, "{}", stderr(&out));
        let path = dir.join(format!("{i}.json"));
        std::fs::write(&path, &out.stdout).unwrap();
        reports.push(path.display().to_string());
    }
    let mut args = vec!["classify", "--format", "json"];
    args.extend(captures.iter().map(|c| c.to_str().unwrap()));
    let one = run(&args);
    assert!(one.status.code().unwrap() < 2, "{}", stderr(&one));
    let mut args = vec!["merge"];
    args.extend(reports.iter().map(String::as_str));
    let merged = run(&args);
    assert!(merged.status.success(), "{}", stderr(&merged));
    same(&stdout(&merged), &stdout(&one));

    // Merging is associative: halves merged, then merged, give the same document.
    let half = reports.len() / 2;
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    for (part, out) in [(&reports[..half], &a), (&reports[half..], &b)] {
        let mut args = vec!["merge", "-o", out.to_str().unwrap()];
        args.extend(part.iter().map(String::as_str));
        assert!(run(&args).status.success());
    }
    let again = run(&["merge", a.to_str().unwrap(), b.to_str().unwrap()]);
    same(&stdout(&again), &stdout(&one));
    // And the table of a merge is the table of the run.
    let table = run(&[
        "merge",
        "--format",
        "table",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    let mut args = vec!["classify"];
    args.extend(captures.iter().map(|c| c.to_str().unwrap()));
    same(&stdout(&table), &stdout(&run(&args)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn merge_refuses_what_is_not_a_report() {
    let dir = tmpdir("merge-bad");
    let good = dir.join("good.json");
    let out = run(&[
        "classify",
        "--format",
        "json",
        &super::util::fixture("demo.pcap"),
    ]);
    std::fs::write(&good, &out.stdout).unwrap();
    let cases: [(&str, &str, &str); 4] = [
        (
            "bad.json",
            "{\"packets\": ",
            "EOF while parsing a value at line 1 column 12",
        ),
        (
            "number.json",
            "42",
            "invalid type: integer `42`, expected struct Summary at line 1 column 2",
        ),
        ("live.json", "", "unknown field `interval_start`"),
        ("flows.json", "{\"first\": 1.5}", "unknown field `first`"),
    ];
    for (name, text, want) in &cases {
        let path = dir.join(name);
        let text = if *name == "live.json" {
            // A live report line has the classify schema plus interval fields.
            std::fs::read_to_string(&good)
                .unwrap()
                .replacen('{', "{\"interval_start\": 1,", 1)
        } else {
            text.to_string()
        };
        std::fs::write(&path, text).unwrap();
        let out = run(&["merge", good.to_str().unwrap(), path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty());
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        let line = err.lines().next().unwrap();
        let expected = format!(
            "portscope: {}: not a portscope classify JSON report: {want}",
            path.display()
        );
        assert!(line.starts_with(&expected), "{line}\n{expected}");
    }
    let missing = dir.join("missing.json");
    let out = run(&["merge", good.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "portscope: cannot read {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
