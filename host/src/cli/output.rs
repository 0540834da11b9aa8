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
use unicode_width::UnicodeWidthStr;

/// Output formats of listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
}

/// Display width in terminal columns (Unicode Annex #11: CJK and emoji
/// take two, combining marks none; ambiguous characters one, as terminals
/// show them by default).
fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Writes `rows` under `headers` as columns aligned by display width.
fn table(out: &mut Vec<u8>, headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
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
        out,
        &headers.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>(),
    )?;
    for r in &rows {
        line(out, r)?;
    }
    Ok(())
}

/// Prints rows under headers in `format`.
pub fn print(format: Format, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut out: Vec<u8> = Vec::new();
    match format {
        Format::Table => table(&mut out, headers, rows)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_columns() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("残保金"), 6);
        assert_eq!(width("ＡＢ"), 4, "fullwidth forms");
        assert_eq!(width("🙂"), 2);
        assert_eq!(width("e\u{301}"), 1, "a combining accent takes none");
        assert_eq!(width("阿克苏 ok 🙂"), 12);
    }

    #[test]
    fn columns_line_up_under_mixed_cjk_ascii_and_emoji() {
        let rows = vec![
            vec!["阿克苏地区".to_string(), "12".to_string(), "x".to_string()],
            vec!["ok".to_string(), "残保金 🙂".to_string(), "y".to_string()],
            vec!["🙂🙂a".to_string(), "数".to_string(), "z".to_string()],
        ];
        let mut out = Vec::new();
        table(&mut out, &["name", "value", "end"], &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        // The last column starts at the same display column on every line.
        let starts: Vec<usize> = text
            .lines()
            .map(|l| {
                let last = l.rfind(' ').unwrap() + 1;
                width(&l[..last])
            })
            .collect();
        assert_eq!(starts.len(), 4, "{text}");
        assert!(starts.iter().all(|s| *s == starts[0]), "{starts:?}\n{text}");
        // Widest first column (10) + 2, widest second (9) + 2.
        assert_eq!(starts[0], 23, "{text}");
    }
}
