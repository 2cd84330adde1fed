//! `portscope man`: roff pages from the command line's own definition (clap_mangen), so
//! they cannot drift from `--help`, plus the sections a man page reader looks for.

use super::args::Args;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// What the top page adds after the generated sections.
const TOP_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Every input was read to its end.
.TP
.B 1
An input ended early (a truncated capture or compressed stream, a broken pcapng block): what
came before is reported, and a warning names the file and the last packet read.
.TP
.B 2
An error: bad arguments, a bad catalog, filter, collector URL or interface, or a capture that
cannot be opened (the other inputs are still read and reported).
.SH FILES
.TP
.I catalog/windows-services.toml
The built-in catalog of Windows services and their ports (compiled into the binary; shown by
\fBportscope catalog dump\fR). Extra catalogs are layered after it with \fB--catalog FILE\fR.
.TP
.I catalog/rpc-interfaces.toml, catalog/rpc-pipes.toml
The DCE/RPC interfaces and SMB named pipes portscope names, and the services that own them.
.SH EXAMPLES
.TP
.B portscope classify capture.pcap
The services in a capture, as a table.
.TP
.B portscope classify -f 'tcp port 445' --format json capture.pcapng
Only SMB, as JSON (a filter may also follow the captures, as with tcpdump).
.TP
.B portscope classify --format html -o report.html captures/
Every capture of a directory as one self-contained HTML page.
.TP
.B portscope live -i eth1 --interval 10 --ipfix udp://collector:4739
Live on a mirror port, a table every 10 seconds, flows exported to an IPFIX collector.
.TP
.B portscope man --dir /usr/local/share/man/man1
Install every page; then \fBman portscope-classify\fR.
.SH "SEE ALSO"
"#;

/// Writes the page of `subcommand` (the top page for `None`) to `out`.
pub fn write_page(subcommand: Option<&str>, out: &mut dyn Write) -> anyhow::Result<()> {
    let top = Args::command();
    let Some(name) = subcommand else {
        let man = clap_mangen::Man::new(top.clone());
        man.render(out)?;
        out.write_all(TOP_EXTRA.as_bytes())?;
        let see: Vec<String> = page_names(&top)
            .into_iter()
            .skip(1)
            .map(|n| format!(".BR {n} (1)"))
            .collect();
        writeln!(out, "{}", see.join(",\n"))?;
        return Ok(());
    };
    let sub = top
        .get_subcommands()
        .find(|c| c.get_name() == name)
        .ok_or_else(|| anyhow::anyhow!("no subcommand {name}: see portscope --help"))?;
    let page = sub
        .clone()
        .display_name(format!("portscope-{name}"))
        .bin_name(format!("portscope {name}"))
        .version(env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(page).render(out)?;
    writeln!(out, ".SH \"SEE ALSO\"\n.BR portscope (1)")?;
    Ok(())
}

/// `portscope` and `portscope-SUBCOMMAND` for each subcommand.
fn page_names(top: &clap::Command) -> Vec<String> {
    std::iter::once("portscope".to_string())
        .chain(
            top.get_subcommands()
                .map(|c| format!("portscope-{}", c.get_name())),
        )
        .collect()
}

/// Writes every page into `dir` as `NAME.1`; returns how many.
pub fn write_all(dir: &Path) -> anyhow::Result<usize> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let top = Args::command();
    let subs: Vec<String> = top
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let pages = std::iter::once(None).chain(subs.iter().map(|s| Some(s.as_str())));
    let mut n = 0;
    for sub in pages {
        let name = sub.map_or("portscope".to_string(), |s| format!("portscope-{s}"));
        let path = dir.join(format!("{name}.1"));
        let mut text = Vec::new();
        write_page(sub, &mut text)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        n += 1;
    }
    Ok(n)
}
