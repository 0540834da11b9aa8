//! Writing a small XLSX workbook: the sample data's Excel files and the
//! ingest tests' fixtures.

use std::path::Path;

/// A cell of a generated spreadsheet.
#[derive(Debug, Clone, PartialEq)]
pub enum XlsxCell {
    Empty,
    Text(String),
    /// Money and counts, as Excel numbers.
    Number(f64),
    /// A date cell (formatted `yyyy-mm-dd`), as departments' exports have.
    Date(chrono::NaiveDate),
}

/// Writes one sheet named `sheet`: a header row, then `rows`. The document
/// carries a fixed creation time so that the same rows give the same bytes.
pub fn write_xlsx(
    path: &Path,
    sheet: &str,
    header: &[&str],
    rows: &[Vec<XlsxCell>],
) -> std::io::Result<()> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| std::io::Error::other(e.to_string());
    let mut book = Workbook::new();
    let created = ExcelDateTime::from_ymd(2025, 1, 1).map_err(err)?;
    book.set_properties(
        &DocProperties::new()
            .set_creation_datetime(&created)
            .set_comment("synthetic data"),
    );
    let bold = Format::new().set_bold();
    let date_format = Format::new().set_num_format("yyyy-mm-dd");
    let ws = book.add_worksheet();
    ws.set_name(sheet).map_err(err)?;
    for (c, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)
            .map_err(err)?;
        ws.set_column_width(c as u16, 16).map_err(err)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                XlsxCell::Empty => {}
                XlsxCell::Text(t) => {
                    ws.write_string(r, c, t).map_err(err)?;
                }
                XlsxCell::Number(n) => {
                    ws.write_number(r, c, *n).map_err(err)?;
                }
                XlsxCell::Date(d) => {
                    use chrono::Datelike;
                    let x =
                        ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8)
                            .map_err(err)?;
                    ws.write_datetime_with_format(r, c, &x, &date_format)
                        .map_err(err)?;
                }
            }
        }
    }
    let bytes = book.save_to_buffer().map_err(err)?;
    crate::fsio::write_atomic(path, &bytes)
}
