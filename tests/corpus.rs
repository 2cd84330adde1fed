//! portscope against an independent decoder: the project's tshark oracle (`oracle.rs`:
//! tshark's dissection, the same service-row rule) over every capture of the corpus in
//! `tests/corpus/` that tshark reads cleanly and whose link type portscope decodes, and over
//! the fixtures.
//!
//! Asserted: the total packet count is equal on every file libpcap can read whole; at least
//! 99% of all packets land in the oracle's row; and every file where some packets do not is
//! listed below with the number of such packets and the reason.

use super::oracle::{oracle, Rules, NOT_IP, UNCLASSIFIED};
use super::util::classify_json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Link types (as the corpus index names them) that portscope decodes.
const DECODED_LINKS: &[&str] = &[
    "ether(1)",
    "linux-sll(25)",
    "linux-sll2(210)",
    "rawip(7)",
    "rawip4(129)",
    "rawip6(130)",
    "null(15)",
    "ppp(4)",
    "chdlc(28)",
    "ieee-802-11(20)",
    "ieee-802-11-radiotap(23)",
    "ppi(97)",
    "nflog(141)",
    "frelay(26)",
    "arcnet_linux(9)",
    "ipnet(124)",
    "ip-ib(180)",
    "pktap(171)",
];

/// Files where portscope and the oracle put some packets in different rows:
/// (file, packets in a different row, why).
const DISAGREE: &[(&str, u64, &str)] = &[(
    "pcpp__ipv4-malformed.pcap",
    1,
    "an IPv4 total length of 11, below its header: portscope ignores such a length (TSO \
     captures write 0) and reads the TCP ports behind it; tshark calls it bogus",
)];

/// Files portscope cannot read to the end: (file, packets it reads, why). None at present:
/// `pcpp__ipv4-malformed.pcap`, a pcapng in disguise whose second interface has another
/// snapshot length, which libpcap refused, is read whole by portscope's pcapng reader.
const LIBPCAP_STOPS: &[(&str, u64, &str)] = &[];

/// The third-party captures and their index, in the repository (see its README.md).
pub fn dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    assert!(
        dir.join("INDEX.tsv").is_file(),
        "the corpus is missing: expected {}/INDEX.tsv",
        dir.display()
    );
    dir
}

struct Outcome {
    file: String,
    ours_total: u64,
    oracle_total: u64,
    disagree: u64,
}

fn compare(capture: &Path, rules: &Rules) -> Outcome {
    let theirs = oracle(capture, rules);
    // The oracle knows only the port table: announcements are not followed here (the
    // dynamic-port tests check them against tshark apart).
    let (report, _) = classify_json(&["--threads", "2", "--ports-only", capture.to_str().unwrap()]);
    let mut ours: BTreeMap<String, u64> = BTreeMap::new();
    for r in &report.services {
        ours.insert(r.key(), r.packets);
    }
    ours.insert(UNCLASSIFIED.into(), report.unclassified.packets);
    ours.insert(
        NOT_IP.into(),
        report.not_ip.packets + report.undecodable.packets,
    );
    let agree: u64 = theirs
        .rows
        .iter()
        .map(|(k, c)| c.packets.min(*ours.get(k).unwrap_or(&0)))
        .sum();
    let oracle_total = theirs.packets;
    Outcome {
        file: capture.file_name().unwrap().to_string_lossy().into_owned(),
        ours_total: report.packets,
        oracle_total,
        disagree: oracle_total - agree,
    }
}

pub fn inputs() -> Vec<PathBuf> {
    let corpus = dir();
    let index = std::fs::read_to_string(corpus.join("INDEX.tsv")).unwrap();
    let mut lines = index.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, link, read) = (col("file"), col("link_type"), col("tshark_read"));
    let mut files: Vec<PathBuf> = lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|c| c[read] == "clean" && DECODED_LINKS.contains(&c[link]))
        .map(|c| corpus.join(c[file]))
        .collect();
    let fixtures = super::fixtures::dir();
    for f in super::fixtures::all() {
        files.push(fixtures.join(f.name));
    }
    files
}

#[test]
fn corpus_agrees_with_the_tshark_oracle() {
    let rules = Rules::load();
    let files = inputs();
    assert!(
        files.len() > 100,
        "only {} corpus files selected",
        files.len()
    );
    let half = files.len() / 2;
    let (a, b) = files.split_at(half);
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let run_all = |part: &[PathBuf]| -> Vec<Outcome> {
            part.iter().map(|f| compare(f, &rules)).collect()
        };
        let h = s.spawn(move || run_all(b));
        let mut first = run_all(a);
        first.extend(h.join().unwrap());
        first
    });

    let mut problems = Vec::new();
    let (mut total, mut disagree) = (0, 0);
    for o in &outcomes {
        total += o.oracle_total;
        disagree += o.disagree;
        match LIBPCAP_STOPS.iter().find(|s| s.0 == o.file) {
            Some(&(_, read, _)) if o.ours_total != read => {
                problems.push(format!(
                    "{}: read {} packets, expected {read}",
                    o.file, o.ours_total
                ));
            }
            Some(_) => continue,
            None if o.ours_total != o.oracle_total => problems.push(format!(
                "{}: {} packets, the oracle {}",
                o.file, o.ours_total, o.oracle_total
            )),
            None => {}
        }
        let expected = DISAGREE.iter().find(|d| d.0 == o.file).map_or(0, |d| d.1);
        if o.disagree != expected {
            problems.push(format!(
                "{}: {} packets in another row than the oracle's, expected {expected}",
                o.file, o.disagree
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let share = 1.0 - disagree as f64 / total as f64;
    assert!(share >= 0.99, "{disagree} of {total} packets disagree");
}
