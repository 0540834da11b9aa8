//! Printing lists as an aligned table, CSV or JSON.
//!
//! Cells hold text from models and files, so every format shows it inert
//! ([`jiandu::text`]): in a table and in CSV each cell is one line with
//! its control characters escaped (`\u{1b}`), and a CSV cell that a
//! spreadsheet would run as a formula gets a leading `'`; JSON stays JSON,
//! with the characters `serde_json` leaves raw that a terminal acts on
//! written as JSON escapes.

use anyhow::Result;
use jiandu::text::{formula_safe, json_safe, printable};
use std::io::Write;

/// Output formats of listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
}

/// Display width: CJK and other wide characters take two columns.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = c as u32;
            if (0x1100..=0x115F).contains(&c)
                || (0x2E80..=0xA4CF).contains(&c)
                || (0xAC00..=0xD7A3).contains(&c)
                || (0xF900..=0xFAFF).contains(&c)
                || (0xFE30..=0xFE4F).contains(&c)
                || (0xFF00..=0xFF60).contains(&c)
                || (0xFFE0..=0xFFE6).contains(&c)
            {
                2
            } else {
                1
            }
        })
        .sum()
}

/// Prints rows under headers in `format`.
pub fn print(format: Format, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut out: Vec<u8> = Vec::new();
    match format {
        Format::Table => {
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| r.iter().map(|c| printable(c).into_owned()).collect())
                .collect();
            let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
            for r in &rows {
                for (i, c) in r.iter().enumerate() {
                    widths[i] = widths[i].max(width(c));
                }
            }
            let line = |out: &mut dyn Write, cells: &[String]| -> std::io::Result<()> {
                let mut s = String::new();
                for (i, c) in cells.iter().enumerate() {
                    s.push_str(c);
                    if i + 1 < cells.len() {
                        s.push_str(&" ".repeat(widths[i] - width(c) + 2));
                    }
                }
                writeln!(out, "{}", s.trim_end())
            };
            line(
                &mut out,
                &headers.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>(),
            )?;
            for r in &rows {
                line(&mut out, r)?;
            }
        }
        Format::Csv => {
            let cell = |c: &str| formula_safe(&printable(c)).into_owned();
            let mut w = csv::Writer::from_writer(&mut out);
            w.write_record(headers.iter().map(|h| cell(h)))?;
            for r in rows {
                w.write_record(r.iter().map(|c| cell(c)))?;
            }
            w.flush()?;
        }
        Format::Json => {
            let list: Vec<serde_json::Map<String, serde_json::Value>> = rows
                .iter()
                .map(|r| {
                    headers
                        .iter()
                        .zip(r)
                        .map(|(h, c)| (h.to_string(), serde_json::Value::String(c.clone())))
                        .collect()
                })
                .collect();
            out.extend_from_slice(json_safe(serde_json::to_string_pretty(&list)?).as_bytes());
            writeln!(out)?;
        }
    }
    super::sink::out(format_args!("{}", String::from_utf8_lossy(&out)));
    Ok(())
}

/// Prints any serializable value as pretty JSON.
pub fn json<T: serde::Serialize>(value: &T) -> Result<()> {
    let text = json_safe(serde_json::to_string_pretty(value)?);
    super::sink::out(format_args!("{text}\n"));
    Ok(())
}
