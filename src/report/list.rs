//! Columns and lists, shared by every printer: aligned text columns (the report table and
//! the catalog commands' tables), and lists of records (the catalog commands' answers) in
//! each report format from one description of their columns.

use super::Format;
use serde::Serialize;
use std::io::{self, Write};

/// Writes `rows` (the first is the header) in columns two spaces apart, each as wide as
/// its widest cell: left-aligned, but for the columns from `right_from` on, which are
/// numbers and aligned right. Lines end without trailing spaces.
pub fn write_columns<R: AsRef<[String]>>(
    out: &mut dyn Write,
    rows: &[R],
    right_from: usize,
) -> io::Result<()> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            let n = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(n),
                None => widths.push(n),
            }
        }
    }
    for row in rows {
        let mut text = String::new();
        for (i, (cell, &w)) in row.as_ref().iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            if i >= right_from {
                text.push_str(&format!("{cell:>w$}"));
            } else {
                text.push_str(&format!("{cell:<w$}"));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

/// How a list's items print as table and CSV lines: a header and the cells of an item.
pub struct Columns<'a, T> {
    pub header: &'a [&'a str],
    pub cells: &'a dyn Fn(&T) -> Vec<String>,
}

/// Writes `items` in `format`: JSON (a list), NDJSON (an item a line), CSV or a table.
pub fn write_list<T: Serialize>(
    items: &[T],
    format: Format,
    table: Columns<'_, T>,
    csv: Columns<'_, T>,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, items)?;
            writeln!(out)
        }
        Format::Ndjson => {
            for item in items {
                serde_json::to_writer(&mut *out, item)?;
                writeln!(out)?;
            }
            Ok(())
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(csv.header)?;
            for item in items {
                w.write_record((csv.cells)(item))?;
            }
            w.flush()
        }
        Format::Table => {
            let mut rows = vec![table.header.iter().map(ToString::to_string).collect()];
            rows.extend(items.iter().map(table.cells));
            write_columns::<Vec<String>>(out, &rows, usize::MAX)
        }
    }
}
