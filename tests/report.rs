//! The analyst's report (issue 16): `classify -f` against tcpdump, `--interval` against
//! tshark's io,stat, `--servers` against tshark's SYN-ACKs, and `--format html` in headless
//! Chromium.

use super::util::{classify_json, fixture, run, stderr, tmpdir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The report's JSON without its `inputs` (which name the file and what a filter left out).
fn without_inputs(json: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(json).unwrap();
    v.as_object_mut().unwrap().remove("inputs");
    v
}

/// Every fixture and every clean corpus capture portscope decodes.
fn captures() -> Vec<PathBuf> {
    super::corpus::inputs()
}

const FILTER: &str = "tcp port 445";

/// `-f EXPR` on a capture gives the report of the capture tcpdump filtered with EXPR, and
/// what it left out adds up to what the unfiltered run read.
fn filter_matches_tcpdump(capture: &Path, dir: &Path) -> Result<(), String> {
    let name = capture.to_str().unwrap();
    let filtered = dir
        .join(capture.file_name().unwrap())
        .with_extension("pcap");
    let tcpdump = Command::new("tcpdump")
        .args(["-n", "-r", name, "-w", filtered.to_str().unwrap(), FILTER])
        .output()
        .expect("tcpdump runs (apt-get install tcpdump)");
    let ours = run(&["classify", "--format", "json", "-f", FILTER, name]);
    if !filtered.exists() {
        // The filter does not compile for this link type: portscope says so too.
        return if ours.status.code() == Some(2) && stderr(&ours).contains("bad filter") {
            Ok(())
        } else {
            Err(format!("{name}: tcpdump failed, portscope did not"))
        };
    }
    let theirs = run(&["classify", "--format", "json", filtered.to_str().unwrap()]);
    // A capture libpcap stops reading early: both stop at the same packet.
    if tcpdump.status.success() != ours.status.success() {
        return Err(format!("{name}: tcpdump and portscope disagree on success"));
    }
    if without_inputs(&ours.stdout) != without_inputs(&theirs.stdout) {
        return Err(format!("{name}: the reports differ"));
    }
    let whole = run(&["classify", "--format", "json", name]);
    let input = |out: &[u8]| -> serde_json::Value {
        serde_json::from_slice::<serde_json::Value>(out).unwrap()["inputs"][0].clone()
    };
    let (f, w) = (input(&ours.stdout), input(&whole.stdout));
    let sum = |k: &str| f[k].as_u64().unwrap() + f["filtered"][k].as_u64().unwrap();
    if (sum("packets"), sum("bytes"))
        != (w["packets"].as_u64().unwrap(), w["bytes"].as_u64().unwrap())
    {
        return Err(format!("{name}: kept + filtered != read"));
    }
    Ok(())
}

#[test]
fn filter_gives_the_rows_of_a_capture_tcpdump_filtered() {
    let dir = tmpdir("filter");
    let files = captures();
    assert!(files.len() > 100, "{} captures", files.len());
    let (a, b) = files.split_at(files.len() / 2);
    let dir = dir.as_path();
    let failures: Vec<String> = std::thread::scope(|s| {
        let check = move |part: &[PathBuf]| -> Vec<String> {
            part.iter()
                .filter_map(|f| filter_matches_tcpdump(f, dir).err())
                .collect()
        };
        let h = s.spawn(move || check(b));
        let mut failures = check(a);
        failures.extend(h.join().unwrap());
        failures
    });
    assert!(failures.is_empty(), "{failures:#?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn filter_on_a_fixture_keeps_exactly_the_smb_flows() {
    for reader in ["auto", "libpcap"] {
        let (report, out) =
            classify_json(&["--reader", reader, "-f", FILTER, &fixture("demo.pcap")]);
        assert!(out.status.success());
        assert_eq!(report.rows(), [("tcp/445".to_string(), 11, 75, 43915)]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["inputs"][0]["filtered"],
            serde_json::json!({"packets": 425, "bytes": 291_112})
        );
    }
    let out = run(&["classify", "-f", FILTER, &fixture("demo.pcap")]);
    assert!(super::util::stdout(&out).contains(
        "note: the filter (-f) left out 425 packets (284.3 KiB), which are not counted above"
    ));
}

#[test]
fn bad_filter_is_one_line_and_exit_2() {
    let out = run(&["classify", "-f", "tcp port", &fixture("demo.pcap")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "portscope: bad filter \"tcp port\": can't parse filter expression: syntax error\n"
    );
    assert!(out.stdout.is_empty());
}
