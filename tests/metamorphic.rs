//! One capture, one answer: for every capture of the corpus and every fixture, the JSON
//! rows and totals are the same through every path a user can take to them: one or three
//! worker threads, libpcap as the reader, the last line of `--interval`, `--merge` of the
//! one input, gzip on standard input, a directory of `editcap -c` pieces, and the numbers
//! of the HTML page (totals and service rows). A difference names the capture and the path.

use super::util::{bin, tmpdir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The report without what names the inputs (their names and how they were read).
fn core(mut j: serde_json::Value) -> serde_json::Value {
    if let Some(o) = j.as_object_mut() {
        for k in ["inputs", "interval_start", "interval_end", "final", "drops"] {
            o.remove(k);
        }
    }
    j
}

/// `classify --format json` with `args`, with `stdin` on standard input; the exit status
/// and the report.
fn report(args: &[&str], stdin: Option<&Path>) -> (Option<i32>, String) {
    let mut c = bin();
    c.args(["classify", "--format", "json"]).args(args);
    c.stdin(match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
        None => Stdio::null(),
    });
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn parsed(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str(text).ok().map(core)
}

/// Totals (flows, packets, bytes) and service rows (key, flows, packets, bytes).
type Numbers = ([u64; 3], Vec<(String, [u64; 3])>);

fn json_numbers(j: &serde_json::Value) -> Numbers {
    let n = |v: &serde_json::Value| {
        [&v["flows"], &v["packets"], &v["bytes"]].map(|x| x.as_u64().unwrap())
    };
    let rows = j["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let row: super::util::Row = serde_json::from_value(r.clone()).unwrap();
            (row.key(), n(r))
        })
        .collect();
    (n(j), rows)
}

/// The numbers of `<td class="NAME">…</td>` cells in `html`, in order.
fn cells(html: &str, name: &str) -> Option<Vec<u64>> {
    let open = format!("<td class=\"{name}\">");
    html.split(&open)
        .skip(1)
        .map(|rest| rest[..rest.find("</td>")?].replace(',', "").parse().ok())
        .collect()
}

fn html_numbers(html: &str) -> Option<Numbers> {
    let section = |start: &str| -> Option<&str> {
        let rest = &html[html.find(start)?..];
        Some(&rest[..rest.find("</tr>")?])
    };
    let three = |part: &str| -> Option<[u64; 3]> {
        let [f, p, b] = ["flows", "packets", "bytes"].map(|c| cells(part, c));
        Some([*f?.first()?, *p?.first()?, *b?.first()?])
    };
    let total = three(section("<tr id=\"total\">")?)?;
    let table = {
        let rest = &html[html.find("<table class=\"services\">")?..];
        &rest[..rest.find("</table>")?]
    };
    let rows = table
        .split("<tr class=\"service\" data-row=\"")
        .skip(1)
        .map(|r| Some((r[..r.find('"')?].to_string(), three(r)?)))
        .collect::<Option<Vec<_>>>()?;
    Some((total, rows))
}

/// Whether the first packets of `editcap -c 50`'s pieces (frames 1, 51, 101...) are in time
/// order, as tshark reads them.
fn piece_starts_in_order(capture: &Path) -> bool {
    let out = Command::new("tshark")
        .args(["-n", "-T", "fields", "-e", "frame.time_epoch", "-r"])
        .arg(capture)
        .output()
        .expect("tshark (.ci/run installs it)");
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .step_by(50)
        .map(|t| t.parse().unwrap_or(f64::NAN))
        .collect();
    times.windows(2).all(|w| w[0] <= w[1])
}

/// What differs for one capture, as "capture: path" lines.
fn paths_of(capture: &Path, dir: &Path) -> Vec<String> {
    let name = capture.file_name().unwrap().to_string_lossy().into_owned();
    let c = capture.to_str().unwrap();
    let (code, text) = report(&["--threads", "2", c], None);
    let Some(base) = parsed(&text) else {
        // A capture portscope cannot open has no report to compare.
        return Vec::new();
    };
    let mut differ = Vec::new();
    let mut check = |path: &str, (got_code, got): (Option<i32>, Option<serde_json::Value>)| {
        if got.as_ref() != Some(&base) || got_code != code {
            differ.push(format!(
                "{name}: {path} (exit {got_code:?}, plain {code:?})"
            ));
        }
    };
    for (path, args) in [
        ("--threads 1", &["--threads", "1"][..]),
        ("--threads 3", &["--threads", "3"]),
        ("--reader libpcap", &["--reader", "libpcap"]),
        ("--merge", &["--merge"]),
    ] {
        let mut all = args.to_vec();
        all.push(c);
        let (got_code, text) = report(&all, None);
        check(path, (got_code, parsed(&text)));
    }
    // One interval longer than any capture's span: the last line is the whole capture.
    let (got_code, text) = report(&["--interval", "100000000000", c], None);
    check(
        "--interval (last line)",
        (got_code, text.lines().last().and_then(parsed)),
    );
    let gz = dir.join(format!("{name}.gz"));
    let status = Command::new("gzip")
        .arg("-c")
        .arg(capture)
        .stdout(std::fs::File::create(&gz).unwrap())
        .status()
        .expect("gzip (.ci/run installs it)");
    assert!(status.success());
    let (got_code, text) = report(&["-"], Some(&gz));
    check("gzip on standard input", (got_code, parsed(&text)));
    std::fs::remove_file(&gz).unwrap();
    // Pieces of 50 packets, read one after the other as a directory; only where editcap
    // reads the whole capture (it stops at a truncated record, as a reader must).
    if code == Some(0) {
        let pieces = dir.join(format!("{name}.pieces"));
        std::fs::create_dir_all(&pieces).unwrap();
        let out = Command::new("editcap")
            .args(["-c", "50"])
            .arg(capture)
            .arg(pieces.join("piece"))
            .output()
            .expect("editcap (.ci/run installs tshark, which brings it)");
        if out.status.success() && out.stderr.is_empty() {
            let (mut got_code, text) = report(&[pieces.to_str().unwrap()], None);
            let mut got = parsed(&text);
            if got.as_ref() != Some(&base) && !piece_starts_in_order(capture) {
                // A directory's captures are read in the order of their first packets (a
                // ring buffer's files as they were written), so pieces of a capture whose
                // clock goes back at a piece's start are read out of order; in editcap's
                // order, named on the command line, they give the capture's report.
                let mut names: Vec<String> = std::fs::read_dir(&pieces)
                    .unwrap()
                    .map(|e| e.unwrap().path().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                let args: Vec<&str> = names.iter().map(String::as_str).collect();
                let (code, text) = report(&args, None);
                (got_code, got) = (code, parsed(&text));
            }
            check("a directory of editcap -c pieces", (got_code, got));
        }
        std::fs::remove_dir_all(&pieces).unwrap();
    }
    // The HTML page: its totals and its service rows (key, flows, packets, bytes).
    let page = dir.join(format!("{name}.html"));
    let out = bin()
        .args([
            "classify",
            "--format",
            "html",
            "-o",
            page.to_str().unwrap(),
            c,
        ])
        .output()
        .unwrap();
    let html = std::fs::read_to_string(&page).unwrap_or_default();
    let _ = std::fs::remove_file(&page);
    if out.status.code() != code || html_numbers(&html) != Some(json_numbers(&base)) {
        differ.push(format!(
            "{name}: --format html (exit {:?}, plain {code:?})",
            out.status.code()
        ));
    }
    differ
}

#[test]
fn every_path_gives_the_same_report() {
    let dir = tmpdir("metamorphic");
    let mut captures: Vec<PathBuf> = std::fs::read_dir(super::corpus::dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.to_string_lossy();
            n.ends_with(".pcap") || n.ends_with(".pcapng")
        })
        .collect();
    captures.extend(
        super::fixtures::all()
            .iter()
            .map(|f| super::fixtures::dir().join(f.name)),
    );
    captures.sort();
    assert!(captures.len() > 200, "{} captures", captures.len());
    let differ: Vec<String> = std::thread::scope(|s| {
        let halves: Vec<_> = captures
            .chunks(captures.len().div_ceil(2))
            .map(|part| {
                let dir = &dir;
                s.spawn(move || {
                    part.iter()
                        .flat_map(|c| paths_of(c, dir))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(differ.is_empty(), "reports differ by path: {differ:#?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
