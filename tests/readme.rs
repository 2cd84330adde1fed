//! The README's examples against the binary: every ```` ```console ```` block is run and must
//! print exactly what the README shows, and the README stays a guide of at most 3,000 words.
//!
//! A console block is one `$ ` command line followed by the command's exact standard
//! output. The command runs under `sh -c` in the crate's directory, with the directory of
//! the binary under test first in `PATH`, so `portscope` in it (also after a `|`) is that
//! binary and a file name containing "portscope" is left alone.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The most words the README may have, counted as `wc -w` counts them.
const MAX_WORDS: usize = 3000;

/// The fewest console blocks the README may show.
const MIN_BLOCKS: usize = 3;

/// One console block: its command and the output the README shows for it.
#[derive(Debug, PartialEq, Eq)]
struct Example {
    /// The 1-based line of the block's opening fence, for messages.
    line: usize,
    /// The command line without its `$ `.
    command: String,
    /// The output lines, each ending in a newline.
    expected: String,
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every console block of `text`, in order. Other fenced blocks (`sh`, `json`, ...) are
/// skipped.
///
/// # Panics
/// On a console block that does not start with a `$ ` line, holds a second one, or is
/// not closed: the README would show something the test cannot check.
fn examples(text: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((line, fence)) = lines.next() {
        if fence.trim_end() != "```console" {
            continue;
        }
        let command = match lines.next() {
            Some((_, first)) => first.strip_prefix("$ ").unwrap_or_else(|| {
                panic!("README.md:{line}: a console block starts with a `$ ` command line")
            }),
            None => panic!("README.md:{line}: a console block with no command"),
        };
        let mut expected = String::new();
        loop {
            match lines.next() {
                Some((_, end)) if end.trim_end() == "```" => break,
                Some((at, l)) => {
                    assert!(
                        !l.starts_with("$ "),
                        "README.md:{at}: one command per console block"
                    );
                    expected.push_str(l);
                    expected.push('\n');
                }
                None => panic!("README.md:{line}: a console block that is never closed"),
            }
        }
        found.push(Example {
            line,
            command: command.to_string(),
            expected,
        });
    }
    found
}

/// `PATH` with the directory of the binary under test first.
fn path_with_binary() -> OsString {
    let binary = Path::new(env!("CARGO_BIN_EXE_portscope"));
    let dir = binary
        .parent()
        .expect("the binary under test is in a directory")
        .to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::iter::once(dir)
        .chain(std::env::split_paths(&rest))
        .collect();
    std::env::join_paths(dirs).expect("the binary's directory can go in PATH")
}

/// Runs an example's command as the README's reader would, from the repository root.
fn run(command: &str, path: &OsStr) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("sh runs")
}

#[test]
fn every_console_block_prints_what_the_readme_shows() {
    let path = path_with_binary();
    let mut problems = Vec::new();
    for example in examples(&readme()) {
        let out = run(&example.command, &path);
        let actual = String::from_utf8_lossy(&out.stdout);
        if actual != example.expected {
            problems.push(format!(
                "README.md:{}: `{}` ({}) printed\n{actual}\
                 --- where the README shows\n{}\
                 --- and on standard error\n{}",
                example.line,
                example.command,
                out.status,
                example.expected,
                String::from_utf8_lossy(&out.stderr),
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_readme_shows_at_least_three_console_blocks() {
    let found = examples(&readme()).len();
    assert!(
        found >= MIN_BLOCKS,
        "README.md has {found} console blocks; it shows at least {MIN_BLOCKS}"
    );
}

#[test]
fn the_readme_is_at_most_3000_words() {
    let words = readme().split_whitespace().count();
    assert!(
        words <= MAX_WORDS,
        "README.md has {words} words (as `wc -w` counts them); a guide keeps to {MAX_WORDS}: \
         move history to benches/README.md and detail to ARCHITECTURE.md"
    );
}

#[test]
fn console_blocks_are_read_and_other_blocks_skipped() {
    let text = "intro\n\
                ```sh\n\
                portscope live -i eth0\n\
                ```\n\
                ```console\n\
                $ portscope catalog lookup gre | head -2\n\
                TRANSPORT  PORTS\n\
                \n\
                gre        -\n\
                ```\n\
                after\n";
    assert_eq!(
        examples(text),
        [Example {
            line: 5,
            command: "portscope catalog lookup gre | head -2".to_string(),
            expected: "TRANSPORT  PORTS\n\ngre        -\n".to_string(),
        }]
    );
}
