//! `portscope catalog dump | lookup | interfaces | check`.

use super::args::{CatalogCommand, CatalogOpts, FormatArg};
use super::write_output;
use anyhow::bail;
use portscope::catalog::{self, Catalog, PortTable, Record, Transport};
use portscope::report::{write_list, Columns, Format};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

pub fn run(command: CatalogCommand) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::Dump { format, catalog } => {
            let catalog = load(&catalog)?;
            let entries: Vec<Entry> = catalog
                .records
                .iter()
                .map(|r| Entry::new(&catalog, r, None))
                .collect();
            write_output(None, |out| print(&entries, format, out))?;
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Lookup {
            query,
            format,
            catalog,
        } => {
            let catalog = load(&catalog)?;
            let table = PortTable::build(&catalog);
            let mut entries = Vec::new();
            // A record inside a wider range row is listed once, under its best match.
            let mut seen = std::collections::HashSet::new();
            for (transport, port) in parse_query(&query)? {
                for m in table.lookup(transport, port) {
                    for &i in table.records(m.set) {
                        if !seen.insert(i) {
                            continue;
                        }
                        let r = &catalog.records[i as usize];
                        entries.push(Entry::new(&catalog, r, Some(m.kind.as_str())));
                    }
                }
            }
            if entries.is_empty() && format == FormatArg::Table {
                println!("no catalog record matches {query}");
                return Ok(ExitCode::SUCCESS);
            }
            write_output(None, |out| print(&entries, format, out))?;
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Interfaces { format } => {
            let catalog = Catalog::builtin()?;
            write_output(None, |out| print_interfaces(&catalog, format, out))?;
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Check { files } => {
            let mut clean = true;
            for path in &files {
                let name = path.display();
                match catalog::load_file(path) {
                    Ok(parsed) => {
                        println!("{name}: ok, {} records", parsed.records.len());
                        for (line, note) in parsed.notes {
                            println!("{name}:{line}: note: {note}");
                        }
                    }
                    Err(problems) => {
                        clean = false;
                        for p in problems {
                            println!("{name}:{}: {}", p.line, p.message);
                        }
                    }
                }
            }
            Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
    }
}

/// Loads the built-in catalog and the user's, reporting their notes on stderr.
pub fn load(opts: &CatalogOpts) -> anyhow::Result<Catalog> {
    let catalog = Catalog::with_extra(&opts.catalogs)?;
    for (source, line, note) in &catalog.notes {
        eprintln!("portscope: {source}:{line}: note: {note}");
    }
    Ok(catalog)
}

/// `445/tcp`, `tcp/445`, `445` (TCP and UDP), `gre`.
fn parse_query(query: &str) -> anyhow::Result<Vec<(Transport, Option<u16>)>> {
    let parse_port = |p: &str| -> anyhow::Result<u16> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => bail!("bad port {p:?} in {query:?} (expected 1-65535)"),
            Ok(p) => Ok(p),
        }
    };
    let found = match query.split_once('/') {
        Some((a, b)) => {
            let (t, p) = match (Transport::from_name(a), Transport::from_name(b)) {
                (Some(t), None) => (t, b),
                (None, Some(t)) => (t, a),
                _ => bail!("cannot read {query:?}: expected PORT/TRANSPORT such as 445/tcp"),
            };
            if !t.has_ports() {
                bail!("{t} has no ports: ask for {t} alone");
            }
            vec![(t, Some(parse_port(p)?))]
        }
        None => match Transport::from_name(query) {
            Some(t) if !t.has_ports() => vec![(t, None)],
            Some(t) => bail!("{t} needs a port, e.g. 445/{t}"),
            None => {
                let p = parse_port(query)?;
                vec![(Transport::Tcp, Some(p)), (Transport::Udp, Some(p))]
            }
        },
    };
    Ok(found)
}

/// One record as `dump` and `lookup` print it.
#[derive(Serialize)]
struct Entry {
    service: String,
    system_name: Option<String>,
    protocol: String,
    transport: Transport,
    ports: Option<[u16; 2]>,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    catalog: String,
    line: usize,
}

impl Entry {
    fn new(catalog: &Catalog, r: &Record, kind: Option<&'static str>) -> Entry {
        Entry {
            service: r.service.clone(),
            system_name: r.system_name.clone(),
            protocol: r.protocol.clone(),
            transport: r.transport,
            ports: r.ports.map(|(lo, hi)| [lo, hi]),
            kind,
            catalog: catalog.source_name(r).to_string(),
            line: r.line,
        }
    }

    fn ports_text(&self) -> String {
        match self.ports {
            Some([lo, hi]) if lo == hi => lo.to_string(),
            Some([lo, hi]) => format!("{lo}-{hi}"),
            None => String::new(),
        }
    }
}

/// The report format of a catalog command's `--format`.
fn report_format(format: FormatArg) -> Format {
    match format {
        FormatArg::Table => Format::Table,
        FormatArg::Json => Format::Json,
        FormatArg::Ndjson => Format::Ndjson,
        FormatArg::Csv => Format::Csv,
    }
}

fn print(entries: &[Entry], format: FormatArg, out: &mut dyn Write) -> std::io::Result<()> {
    // `lookup` says how each record matches; `dump` has no match column.
    let with_match = entries.iter().any(|e| e.kind.is_some());
    let kind = |e: &Entry| with_match.then(|| e.kind.unwrap_or_default().to_string());
    let mut table_header = vec!["TRANSPORT", "PORTS", "PROTOCOL", "SERVICE", "SYSTEM NAME"];
    let mut csv_header = vec![
        "service",
        "system_name",
        "protocol",
        "transport",
        "low_port",
        "high_port",
    ];
    if with_match {
        table_header.push("MATCH");
        csv_header.push("match");
    }
    table_header.push("CATALOG");
    csv_header.extend(["catalog", "line"]);
    let table_cells = |e: &Entry| -> Vec<String> {
        let mut row = vec![
            e.transport.to_string(),
            e.ports_text(),
            e.protocol.clone(),
            e.service.clone(),
            e.system_name.clone().unwrap_or_else(|| "-".to_string()),
        ];
        row.extend(kind(e));
        row.push(format!("{}:{}", e.catalog, e.line));
        row
    };
    let csv_cells = |e: &Entry| -> Vec<String> {
        let (lo, hi) = e.ports.map_or((String::new(), String::new()), |[l, h]| {
            (l.to_string(), h.to_string())
        });
        let mut rec = vec![
            e.service.clone(),
            e.system_name.clone().unwrap_or_default(),
            e.protocol.clone(),
            e.transport.to_string(),
            lo,
            hi,
        ];
        rec.extend(kind(e));
        rec.extend([e.catalog.clone(), e.line.to_string()]);
        rec
    };
    write_list(
        entries,
        report_format(format),
        Columns {
            header: &table_header,
            cells: &table_cells,
        },
        Columns {
            header: &csv_header,
            cells: &csv_cells,
        },
        out,
    )
}

#[derive(Serialize)]
struct InterfaceEntry<'a> {
    uuid: String,
    interface: &'a str,
    service: &'a str,
    system_name: Option<&'a str>,
}

fn print_interfaces(
    catalog: &Catalog,
    format: FormatArg,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let entries: Vec<InterfaceEntry<'_>> = catalog
        .interfaces
        .iter()
        .map(|i| InterfaceEntry {
            uuid: catalog::format_uuid(&i.uuid),
            interface: &i.name,
            service: &i.service,
            system_name: i.system_name.as_deref(),
        })
        .collect();
    write_list(
        &entries,
        report_format(format),
        Columns {
            header: &["UUID", "INTERFACE", "SERVICE", "SYSTEM NAME"],
            cells: &|e: &InterfaceEntry<'_>| {
                vec![
                    e.uuid.clone(),
                    e.interface.to_string(),
                    e.service.to_string(),
                    e.system_name.unwrap_or("-").to_string(),
                ]
            },
        },
        Columns {
            header: &["uuid", "interface", "service", "system_name"],
            cells: &|e: &InterfaceEntry<'_>| {
                vec![
                    e.uuid.clone(),
                    e.interface.to_string(),
                    e.service.to_string(),
                    e.system_name.unwrap_or_default().to_string(),
                ]
            },
        },
        out,
    )
}
