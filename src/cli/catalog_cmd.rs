//! `portscope catalog dump | lookup | interfaces | check`.

use super::args::{CatalogCommand, CatalogOpts, FormatArg};
use super::write_output;
use anyhow::bail;
use portscope::catalog::{self, Catalog, PortTable, Record, Transport};
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

fn print(entries: &[Entry], format: FormatArg, out: &mut dyn Write) -> std::io::Result<()> {
    let with_match = entries.iter().any(|e| e.kind.is_some());
    match format {
        FormatArg::Json => {
            serde_json::to_writer_pretty(&mut *out, entries)?;
            writeln!(out)
        }
        FormatArg::Ndjson => {
            for e in entries.iter() {
                serde_json::to_writer(&mut *out, e)?;
                writeln!(out)?;
            }
            Ok(())
        }
        FormatArg::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let mut header = vec![
                "service",
                "system_name",
                "protocol",
                "transport",
                "low_port",
                "high_port",
            ];
            if with_match {
                header.push("match");
            }
            header.extend(["catalog", "line"]);
            w.write_record(&header)?;
            for e in entries {
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
                if with_match {
                    rec.push(e.kind.unwrap_or_default().to_string());
                }
                rec.extend([e.catalog.clone(), e.line.to_string()]);
                w.write_record(&rec)?;
            }
            w.flush()
        }
        FormatArg::Table => {
            let mut rows: Vec<Vec<String>> = Vec::with_capacity(entries.len() + 1);
            let mut header = vec!["TRANSPORT", "PORTS", "PROTOCOL", "SERVICE", "SYSTEM NAME"];
            if with_match {
                header.push("MATCH");
            }
            header.push("CATALOG");
            rows.push(header.iter().map(ToString::to_string).collect());
            for e in entries {
                let mut row = vec![
                    e.transport.to_string(),
                    e.ports_text(),
                    e.protocol.clone(),
                    e.service.clone(),
                    e.system_name.clone().unwrap_or_else(|| "-".to_string()),
                ];
                if with_match {
                    row.push(e.kind.unwrap_or_default().to_string());
                }
                row.push(format!("{}:{}", e.catalog, e.line));
                rows.push(row);
            }
            let mut widths = vec![0; rows[0].len()];
            for row in &rows {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            for row in &rows {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                writeln!(out, "{}", line.join("  ").trim_end())?;
            }
            Ok(())
        }
    }
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
    match format {
        FormatArg::Json => {
            serde_json::to_writer_pretty(&mut *out, &entries)?;
            writeln!(out)
        }
        FormatArg::Ndjson => {
            for e in entries.iter() {
                serde_json::to_writer(&mut *out, e)?;
                writeln!(out)?;
            }
            Ok(())
        }
        FormatArg::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(["uuid", "interface", "service", "system_name"])?;
            for e in &entries {
                w.write_record([
                    e.uuid.as_str(),
                    e.interface,
                    e.service,
                    e.system_name.unwrap_or_default(),
                ])?;
            }
            w.flush()
        }
        FormatArg::Table => {
            let width = |f: &dyn Fn(&InterfaceEntry<'_>) -> usize, title: &str| {
                entries.iter().map(f).max().unwrap_or(0).max(title.len())
            };
            let wi = width(&|e| e.interface.chars().count(), "INTERFACE");
            let ws = width(&|e| e.service.chars().count(), "SERVICE");
            writeln!(
                out,
                "{:<36}  {:<wi$}  {:<ws$}  SYSTEM NAME",
                "UUID", "INTERFACE", "SERVICE"
            )?;
            for e in &entries {
                writeln!(
                    out,
                    "{:<36}  {:<wi$}  {:<ws$}  {}",
                    e.uuid,
                    e.interface,
                    e.service,
                    e.system_name.unwrap_or("-")
                )?;
            }
            Ok(())
        }
    }
}
