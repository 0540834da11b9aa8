//! Reading an Excel `.xlsx` workbook's first visible worksheet, a cell at
//! a time, in bounded memory whatever the workbook holds.
//!
//! A workbook is a zip of XML parts. Each part is inflated and read by a
//! small tokenizer of our own that never holds more than [`MAX_TOKEN`]
//! bytes of one text run, tag, comment or CDATA section: a longer one is
//! refused as it is met, before it is held whole (a cell holds at most the
//! 64 KiB a record may hold anyway). The shared strings (`sharedStrings.xml`)
//! go into one byte arena with a `u32` end offset each; past
//! [`SPILL_OVER`] bytes the arena moves to an unlinked file under the
//! store's `tmp/` and strings are read back by offset through a few cached
//! windows, so memory stays bounded up to the workbook size limit.
//! `<!DOCTYPE` is refused in every part (no entity of a document type is
//! ever expanded).
//!
//! What a cell reads as follows what spreadsheet programs show: shared and
//! inline strings (rich-text runs concatenated, phonetic runs left out, XML
//! entities and OOXML `_xHHHH_` escapes decoded), numbers, booleans,
//! errors, ISO dates, and numbers whose style's number format is a date or
//! a time (the built-in ids and custom codes with date letters), in the
//! 1900 or 1904 date system.

use std::borrow::Cow;
use std::io::{BufWriter, Read, Seek, Write};
use std::path::Path;

/// The most bytes one text run, tag, comment, CDATA section or shared
/// string of a workbook part may hold. A cell holds far less (a record
/// holds at most 64 KiB), and Excel itself keeps 32,767 characters a cell.
pub const MAX_TOKEN: usize = 1 << 20;

/// The most shared strings a workbook may hold: 16,777,216 (each costs 4
/// bytes of memory, 64 MiB at most). One million rows of ten columns of
/// distinct texts hold ten million.
pub const MAX_SHARED_STRINGS: usize = 1 << 24;

/// The most bytes the shared strings may hold together, decoded: the
/// size limit of a whole workbook (1 GiB), kept on disk past
/// [`SPILL_OVER`].
pub const MAX_SHARED_STRING_BYTES: u64 = 1 << 30;

/// Shared strings are held in memory up to this many bytes; past it they
/// move to an unlinked file under the store's `tmp/`.
pub const SPILL_OVER: usize = 16 << 20;

/// The most cell formats (`cellXfs`) and custom number formats a workbook
/// may declare (Excel allows 64,000 cell formats).
pub const MAX_STYLES: usize = 1 << 20;

/// The most sheets and relationships a workbook may declare.
const MAX_SHEETS: usize = 1 << 16;

/// The bytes of spilled shared strings read back at a time, and how many
/// such windows are kept (strings are mostly used in the order they were
/// stored, so a window serves many cells).
const WINDOW: usize = 1 << 20;
const WINDOWS: usize = 8;

/// Why a workbook could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadError {
    /// Not a workbook, or a part of it is malformed: said after "is not a
    /// readable .xlsx workbook: ".
    Unreadable(String),
    /// The workbook passes one of the limits above: the whole message,
    /// naming the part, the cell where it can, and the limit.
    TooLarge(String),
    /// A formula cell of the sheet has no saved value.
    UnvaluedFormula,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unreadable(why) => write!(f, "is not a readable .xlsx workbook: {why}"),
            ReadError::TooLarge(why) => f.write_str(why),
            ReadError::UnvaluedFormula => f.write_str(
                "holds formulas without a saved result (the program that wrote it does not compute formulas), which would read as empty cells: open it in Excel or WPS and save it, so that each formula's value is saved with it",
            ),
        }
    }
}

type Result<T> = std::result::Result<T, ReadError>;

fn unreadable(why: impl std::fmt::Display) -> ReadError {
    ReadError::Unreadable(why.to_string())
}

/// One cell's value as the workbook holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    /// A number shown as a date or a time (its style's number format).
    Date {
        serial: f64,
        date1904: bool,
    },
    /// A number shown as a duration (`[h]:mm:ss`): read as the number.
    Duration(f64),
    /// A `t="d"` cell: an ISO 8601 date as written.
    IsoDate(String),
    /// A `t="e"` cell: the error as written (`#DIV/0!`, `#N/A`, …).
    Error(String),
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Empty => Ok(()),
            Cell::Text(s) | Cell::IsoDate(s) | Cell::Error(s) => f.write_str(s),
            Cell::Number(n) | Cell::Duration(n) => write!(f, "{n}"),
            Cell::Date { serial, date1904 } => f.write_str(&date_text(*serial, *date1904)),
            Cell::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A region of merged cells, zero-based `(row, column)` corners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    pub first: (u32, u32),
    pub last: (u32, u32),
}

/// The spreadsheet name of a zero-based cell position (`(6, 1)` is `B7`).
pub fn cell_name((row, col): (u32, u32)) -> String {
    let mut letters = Vec::new();
    let mut c = col + 1;
    while c > 0 {
        letters.push(b'A' + ((c - 1) % 26) as u8);
        c = (c - 1) / 26;
    }
    letters.reverse();
    format!(
        "{}{}",
        String::from_utf8_lossy(&letters),
        u64::from(row) + 1
    )
}

// ---------------------------------------------------------------------------
// Dates

/// How a number format shows a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    Number,
    DateTime,
    Duration,
}

/// The built-in number formats that show a date or a time (ECMA-376
/// 18.8.30, and the East Asian ids 27–36 and 50–58).
fn builtin_format(id: u32) -> Shown {
    match id {
        14..=22 | 27..=36 | 45 | 47 | 50..=58 => Shown::DateTime,
        46 => Shown::Duration,
        _ => Shown::Number,
    }
}

/// How a custom number format code shows a number: a date or a time when
/// its first section has a date or time letter outside quotes, brackets
/// and escapes (or `AM/PM`, `A/P`); a duration when it has an elapsed
/// time in brackets (`[h]`, `[mm]`, `[ss]`). The rule spreadsheet readers
/// share, so a workbook reads alike in all of them.
fn custom_format(code: &str) -> Shown {
    let (mut literal_next, mut quoted, mut am_pm, mut elapsed) = (false, false, false, false);
    let mut depth = 0u32;
    let mut prev = ' ';
    for c in code.chars() {
        let outside = depth == 0;
        if literal_next {
            literal_next = false;
        } else if matches!(c, '_' | '\\' | '*') {
            // The next character is a literal, a width or a fill.
            literal_next = true;
        } else if quoted {
            quoted = c != '"';
        } else if c == '"' {
            quoted = true;
        } else if c == ';' {
            return Shown::Number;
        } else if c == '[' {
            depth += 1;
        } else if c == ']' && depth == 1 && elapsed {
            return Shown::Duration;
        } else if c == ']' {
            depth = depth.saturating_sub(1);
        } else if outside && !am_pm && matches!(c, 'a' | 'A') {
            am_pm = true;
        } else if outside && (am_pm && "pPmM/".contains(c) || !am_pm && "dmhysDMHYS".contains(c)) {
            // After `A`, only `AM/PM` or `A/P` shows a time.
            return Shown::DateTime;
        } else if !(elapsed && c.eq_ignore_ascii_case(&prev)) {
            elapsed = prev == '[' && "mhsMHS".contains(c);
        }
        prev = c;
    }
    Shown::Number
}

/// The last serial day of each date system (9999-12-31).
const LAST_DAY_1900: u64 = 2_958_465;
const LAST_DAY_1904: u64 = 2_957_003;

/// A date cell's text: `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM:SS` when it has
/// a time of day. Serial days count from 1900-01-01 (day 1, with the
/// 1900-02-29 Lotus kept, day 60) or from 1904-01-01 (day 0); the time is
/// the fraction of the day, to the nearest millisecond.
pub fn date_text(serial: f64, date1904: bool) -> String {
    // Negative and NaN serials saturate to day 0, as spreadsheets show them.
    let day = serial.floor() as u64;
    let seconds_f = serial.fract() * 86_400.0;
    let mut seconds = seconds_f as u64;
    if (seconds_f.fract() * 1000.0).round() as u64 == 1000 {
        seconds += 1;
    }
    if seconds == 86_400 {
        return date_text(serial.floor() + 1.0, date1904);
    }
    let (y, m, d) = serial_day(day, date1904);
    let (h, mi, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if (h, mi, s) == (0, 0, 0) {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    }
}

/// The calendar date of a serial day.
fn serial_day(day: u64, date1904: bool) -> (i32, u32, u32) {
    use chrono::Datelike;
    let (epoch, day) = if date1904 {
        ((1904, 1, 1), day.min(LAST_DAY_1904))
    } else {
        match day.min(LAST_DAY_1900) {
            // Day 60 is the 29th of February 1900 that Lotus 1-2-3 had and
            // Excel kept; days before it count from 1899-12-31.
            60 => return (1900, 2, 29),
            d @ 0..=59 => ((1899, 12, 31), d),
            d => ((1899, 12, 30), d),
        }
    };
    let date = chrono::NaiveDate::from_ymd_opt(epoch.0, epoch.1, epoch.2)
        .and_then(|e| e.checked_add_days(chrono::Days::new(day)))
        .expect("a serial day within 9999");
    (date.year(), date.month(), date.day())
}

// ---------------------------------------------------------------------------
// Text decoding

/// Decodes the XML entity or character reference `name` (between `&` and
/// `;`) onto `out`.
fn decode_entity(name: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), String> {
    let c = match name {
        b"amp" => '&',
        b"lt" => '<',
        b"gt" => '>',
        b"quot" => '"',
        b"apos" => '\'',
        [b'#', b'x', hex @ ..] => char_ref(hex, 16)?,
        [b'#', dec @ ..] => char_ref(dec, 10)?,
        _ => {
            return Err(format!(
                "unknown entity `&{};`",
                String::from_utf8_lossy(name)
            ))
        }
    };
    let mut utf8 = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    Ok(())
}

/// The character of a numeric character reference's digits.
fn char_ref(digits: &[u8], radix: u32) -> std::result::Result<char, String> {
    std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|d| u32::from_str_radix(d, radix).ok())
        .filter(|&n| n != 0)
        .and_then(char::from_u32)
        .ok_or_else(|| {
            format!(
                "`&#{}{};` is not a character",
                if radix == 16 { "x" } else { "" },
                String::from_utf8_lossy(digits)
            )
        })
}

/// Decodes entities in an attribute value.
fn decode_attr(raw: &[u8]) -> std::result::Result<Cow<'_, [u8]>, String> {
    if memchr::memchr(b'&', raw).is_none() {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = memchr::memchr(b'&', rest) {
        out.extend_from_slice(&rest[..at]);
        let end = memchr::memchr(b';', &rest[at..]).ok_or("an `&` without its `;`")? + at;
        decode_entity(&rest[at + 1..end], &mut out)?;
        rest = &rest[end + 1..];
    }
    out.extend_from_slice(rest);
    Ok(Cow::Owned(out))
}

/// The UTF-16 code unit of an OOXML escape `_xHHHH_` at the start of `s`.
fn ooxml_escape(s: &[u8]) -> Option<u16> {
    match s {
        [b'_', b'x', hex @ .., b'_'] if hex.len() == 4 => std::str::from_utf8(hex)
            .ok()
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u16::from_str_radix(h, 16).ok()),
        _ => None,
    }
}

/// Appends `text` to `out` with its OOXML escapes decoded: Excel writes a
/// character XML cannot hold (a control character, a lone `_x…_`) as
/// `_xHHHH_`, a UTF-16 unit; a surrogate pair as two escapes. A surrogate
/// without its pair reads as U+FFFD.
fn push_unescaped(text: &str, out: &mut String) {
    let bytes = text.as_bytes();
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = memchr::memchr(b'_', &bytes[at..]) {
        let i = at + found;
        let Some(unit) = bytes.get(i..i + 7).and_then(ooxml_escape) else {
            at = i + 1;
            continue;
        };
        out.push_str(&text[copied..i]);
        let mut next = i + 7;
        let c = match unit {
            0xD800..=0xDBFF => match bytes.get(next..next + 7).and_then(ooxml_escape) {
                Some(low @ 0xDC00..=0xDFFF) => {
                    next += 7;
                    let high = u32::from(unit) - 0xD800;
                    char::from_u32(0x10000 + (high << 10) + (u32::from(low) - 0xDC00))
                }
                _ => None,
            },
            unit => char::from_u32(u32::from(unit)),
        };
        out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
        copied = next;
        at = next;
    }
    out.push_str(&text[copied..]);
}

// ---------------------------------------------------------------------------
// The XML tokenizer

/// What [`Xml::next`] met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// `<name …>`: its name and attributes are [`Xml::name`], [`Xml::attr`].
    Start,
    /// `<name …/>`.
    Empty,
    /// `</name>`.
    End,
    /// Character data (or CDATA): read it with [`Xml::text`], else it is
    /// passed by.
    Text,
    Eof,
}

/// A pull tokenizer over one inflated part, holding at most one token
/// ([`MAX_TOKEN`]) at a time.
struct Xml<R> {
    input: R,
    /// The part's name, for errors.
    part: String,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// The last tag: `buf[tag.0..tag.1]` between `<` (or `</`) and `>`.
    tag: (usize, usize),
    /// The tokenizer stands at character data not yet read.
    in_text: bool,
}

/// The first read buffer; it grows to [`MAX_TOKEN`] for a long tag.
const FIRST_BUF: usize = 64 << 10;

impl<R: Read> Xml<R> {
    fn new(input: R, part: &str) -> Self {
        Xml {
            input,
            part: part.to_string(),
            buf: vec![0; FIRST_BUF],
            pos: 0,
            end: 0,
            eof: false,
            tag: (0, 0),
            in_text: false,
        }
    }

    fn bad(&self, why: impl std::fmt::Display) -> ReadError {
        unreadable(format!("{}: {why}", self.part))
    }

    fn too_long(&self, what: &str) -> ReadError {
        ReadError::TooLarge(format!(
            "holds {what} longer than the limit of {} MiB in its part {}: no spreadsheet cell holds that much; the file was not written by a spreadsheet program, or is damaged",
            MAX_TOKEN >> 20,
            self.part
        ))
    }

    /// Reads more of the part after `end`, first moving what is unread to
    /// the front, growing the buffer up to [`MAX_TOKEN`] when it is full:
    /// false at the end of the part.
    fn fill(&mut self, what: &str) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_TOKEN {
                return Err(self.too_long(what));
            }
            self.buf.resize((self.buf.len() * 2).min(MAX_TOKEN), 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.bad(e)),
            }
        }
    }

    /// Makes at least `n` unread bytes available if the part has them.
    fn have(&mut self, n: usize, what: &str) -> Result<bool> {
        while self.end - self.pos < n {
            if !self.fill(what)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next tag or text, passing by comments, processing instructions
    /// and text the caller did not read.
    fn next(&mut self) -> Result<Event> {
        loop {
            if self.in_text {
                self.text_run(None)?;
            }
            if !self.have(1, "a tag")? {
                return Ok(Event::Eof);
            }
            if self.buf[self.pos] != b'<' {
                self.in_text = true;
                return Ok(Event::Text);
            }
            self.have(9, "a tag")?;
            let head = &self.buf[self.pos..self.end];
            if head.starts_with(b"<![CDATA[") {
                self.in_text = true;
                return Ok(Event::Text);
            }
            if head.starts_with(b"<!--") {
                self.skip_past(4, b"-->", "a comment")?;
            } else if head.starts_with(b"<?") {
                self.skip_past(2, b"?>", "a processing instruction")?;
            } else if head.starts_with(b"<!") {
                return Err(if head.starts_with(b"<!DOCTYPE") {
                    self.bad("declares a document type (`<!DOCTYPE`), which no workbook part has")
                } else {
                    self.bad("holds a `<!` declaration")
                });
            } else {
                return self.tag();
            }
        }
    }

    /// Passes by a comment or processing instruction: `skip` bytes, then
    /// everything up to and including `close`, streaming (it is never
    /// held), refused past [`MAX_TOKEN`].
    fn skip_past(&mut self, skip: usize, close: &[u8], what: &str) -> Result<()> {
        self.pos += skip;
        let mut seen = 0usize;
        loop {
            let unread = &self.buf[self.pos..self.end];
            if let Some(at) = memchr::memmem::find(unread, close) {
                if seen + at > MAX_TOKEN {
                    return Err(self.too_long(what));
                }
                self.pos += at + close.len();
                return Ok(());
            }
            // Keep what could be the start of `close`.
            let keep = (close.len() - 1).min(unread.len());
            let passed = unread.len() - keep;
            self.pos += passed;
            seen += passed;
            if seen > MAX_TOKEN {
                return Err(self.too_long(what));
            }
            if !self.fill(what)? {
                return Err(self.bad(format!("ends inside {what}")));
            }
        }
    }

    /// Reads a tag at `pos` (its `<`) whole: start, empty or end.
    fn tag(&mut self) -> Result<Event> {
        let mut at = 1;
        let mut quote: Option<u8> = None;
        let close = loop {
            let unread = &self.buf[self.pos..self.end];
            let found = match quote {
                Some(q) => memchr::memchr(q, &unread[at..]).map(|i| (i, q)),
                None => {
                    memchr::memchr3(b'>', b'"', b'\'', &unread[at..]).map(|i| (i, unread[at + i]))
                }
            };
            match found {
                Some((i, b'>')) if quote.is_none() => break at + i,
                Some((i, q)) => {
                    at += i + 1;
                    quote = if quote.is_some() { None } else { Some(q) };
                }
                None => {
                    at = unread.len();
                    if !self.fill("a tag")? {
                        return Err(self.bad("ends inside a tag"));
                    }
                }
            }
        };
        let (start, end) = (self.pos, self.pos + close);
        self.pos = end + 1;
        let body = &self.buf[start + 1..end];
        Ok(if let Some(rest) = body.strip_prefix(b"/") {
            self.tag = (end - rest.len(), end);
            Event::End
        } else if body.ends_with(b"/") {
            self.tag = (start + 1, end - 1);
            Event::Empty
        } else {
            self.tag = (start + 1, end);
            Event::Start
        })
    }

    /// The last tag's name without its namespace prefix.
    fn name(&self) -> &[u8] {
        let tag = &self.buf[self.tag.0..self.tag.1];
        let name_end = tag
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(tag.len());
        let name = &tag[..name_end];
        match memchr::memrchr(b':', name) {
            Some(colon) => &name[colon + 1..],
            None => name,
        }
    }

    /// The value of the last tag's attribute `key` (matched whole, or by
    /// its local name when `key` has no prefix), entities decoded.
    fn attr(&self, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        let tag = &self.buf[self.tag.0..self.tag.1];
        let mut rest = match tag.iter().position(|b| b.is_ascii_whitespace()) {
            Some(at) => &tag[at..],
            None => return Ok(None),
        };
        loop {
            rest = rest.trim_ascii_start();
            let Some(eq) = memchr::memchr(b'=', rest) else {
                return Ok(None);
            };
            let name = rest[..eq].trim_ascii_end();
            let value = rest[eq + 1..].trim_ascii_start();
            let Some(&q @ (b'"' | b'\'')) = value.first() else {
                return Err(self.bad("an attribute without quotes"));
            };
            let Some(len) = memchr::memchr(q, &value[1..]) else {
                return Err(self.bad("an attribute without its closing quote"));
            };
            let local = match (memchr::memchr(b':', key), memchr::memrchr(b':', name)) {
                (None, Some(colon)) => &name[colon + 1..],
                _ => name,
            };
            if local == key {
                return decode_attr(&value[1..1 + len])
                    .map(Some)
                    .map_err(|e| self.bad(e));
            }
            rest = &value[len + 2..];
        }
    }

    /// The last tag's attribute `key` as text.
    fn attr_text(&self, key: &[u8]) -> Result<Option<String>> {
        match self.attr(key)? {
            None => Ok(None),
            Some(v) => String::from_utf8(v.into_owned())
                .map(Some)
                .map_err(|_| self.bad("an attribute that is not UTF-8")),
        }
    }

    /// Reads the character data the tokenizer stands at (after
    /// [`Event::Text`]) onto `out`, entities decoded and line ends made
    /// `\n`; CDATA sections are taken as they are, comments passed by.
    /// With `out` `None` the text is passed by. Refused past [`MAX_TOKEN`]
    /// bytes, before they are held.
    fn text(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.text_run(Some(out))
    }

    fn text_run(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<()> {
        self.in_text = false;
        let mut seen = 0usize;
        loop {
            if self.pos == self.end && !self.fill("a text")? {
                return Ok(());
            }
            let unread = &self.buf[self.pos..self.end];
            let plain = memchr::memchr3(b'<', b'&', b'\r', unread).unwrap_or(unread.len());
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(&unread[..plain]);
            }
            self.pos += plain;
            seen += plain;
            if seen > MAX_TOKEN {
                return Err(self.too_long("a text"));
            }
            if self.pos == self.end {
                continue;
            }
            match self.buf[self.pos] {
                b'&' => seen += self.entity(out.as_deref_mut())?,
                b'\r' => {
                    self.have(2, "a text")?;
                    self.pos += 1;
                    seen += 1;
                    // `\r\n` and a lone `\r` are both a line end.
                    if self.buf.get(self.pos) != Some(&b'\n') || self.pos == self.end {
                        if let Some(out) = out.as_deref_mut() {
                            out.push(b'\n');
                        }
                    }
                }
                _ => {
                    self.have(9, "a text")?;
                    let head = &self.buf[self.pos..self.end];
                    if head.starts_with(b"<![CDATA[") {
                        seen += self.cdata(out.as_deref_mut(), MAX_TOKEN - seen.min(MAX_TOKEN))?;
                    } else if head.starts_with(b"<!--") {
                        self.skip_past(4, b"-->", "a comment")?;
                    } else if head.starts_with(b"<?") {
                        self.skip_past(2, b"?>", "a processing instruction")?;
                    } else {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Decodes the entity at `pos` (its `&`) onto `out`: the bytes read.
    fn entity(&mut self, out: Option<&mut Vec<u8>>) -> Result<usize> {
        // The longest entity is `&#x10FFFF;`; a few more digits of zeros
        // are allowed.
        const LONGEST: usize = 32;
        self.have(LONGEST, "an entity")?;
        let unread = &self.buf[self.pos..self.end];
        let Some(semi) = memchr::memchr(b';', &unread[..unread.len().min(LONGEST)]) else {
            return Err(self.bad("an `&` without its `;`"));
        };
        let mut scratch = Vec::new();
        decode_entity(&unread[1..semi], out.unwrap_or(&mut scratch)).map_err(|e| self.bad(e))?;
        self.pos += semi + 1;
        Ok(semi + 1)
    }

    /// Reads the CDATA section at `pos` onto `out` as it is: the bytes read,
    /// refused past `room`.
    fn cdata(&mut self, mut out: Option<&mut Vec<u8>>, room: usize) -> Result<usize> {
        self.pos += 9;
        let mut seen = 9;
        loop {
            let unread = &self.buf[self.pos..self.end];
            let (take, done) = match memchr::memmem::find(unread, b"]]>") {
                Some(at) => (at, true),
                None => (unread.len().saturating_sub(2), false),
            };
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(&unread[..take]);
            }
            self.pos += take;
            seen += take;
            if seen > room {
                return Err(self.too_long("a CDATA section"));
            }
            if done {
                self.pos += 3;
                return Ok(seen + 3);
            }
            if !self.fill("a CDATA section")? {
                return Err(self.bad("ends inside a CDATA section"));
            }
        }
    }

    /// Passes by the element whose start tag was just read, to its end.
    fn skip_element(&mut self) -> Result<()> {
        self.walk_element(None)
    }

    /// Reads the text of the element whose start tag was just read, to its
    /// end (the text of elements inside it too) onto `out`, refused past
    /// `limit` bytes.
    fn element_text(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<()> {
        self.walk_element(Some((out, limit)))
    }

    /// Reads to the end of the element whose start tag was just read,
    /// its texts onto `text`'s buffer (up to its limit) if given.
    fn walk_element(&mut self, mut text: Option<(&mut Vec<u8>, usize)>) -> Result<()> {
        let mut depth = 1usize;
        loop {
            match self.next()? {
                Event::Text => {
                    if let Some((out, limit)) = text.as_mut() {
                        self.text(out)?;
                        if out.len() > *limit {
                            return Err(self.too_long("a text"));
                        }
                    }
                }
                Event::Start => depth += 1,
                Event::End => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Event::Eof => return Err(self.bad("ends inside an element")),
                Event::Empty => {}
            }
        }
    }

    /// Reads a string item (`<si>`, `<is>`) whose start tag was just read:
    /// its `<t>` texts, those of rich-text runs concatenated and those of
    /// phonetic runs (`<rPh>`) left out. A `<t>` is trimmed of ASCII
    /// white space unless it says `xml:space="preserve"`; OOXML escapes
    /// are decoded after.
    fn string_item(&mut self, out: &mut String, scratch: &mut Vec<u8>) -> Result<()> {
        out.clear();
        let mut phonetic = 0usize;
        let mut depth = 1usize;
        loop {
            match self.next()? {
                Event::Start if self.name() == b"rPh" => {
                    phonetic += 1;
                    depth += 1;
                }
                Event::Start if self.name() == b"t" && phonetic == 0 => {
                    let preserve = self.attr(b"xml:space")?.as_deref() == Some(b"preserve");
                    scratch.clear();
                    self.element_text(scratch, MAX_TOKEN)?;
                    let text = std::str::from_utf8(scratch)
                        .map_err(|_| self.bad("a text that is not UTF-8"))?;
                    let text = if preserve {
                        text
                    } else {
                        text.trim_matches([' ', '\t', '\r', '\n'])
                    };
                    push_unescaped(text, out);
                    if out.len() > MAX_TOKEN {
                        return Err(self.too_long("a string"));
                    }
                }
                Event::Start => depth += 1,
                Event::End => {
                    if self.name() == b"rPh" {
                        phonetic = phonetic.saturating_sub(1);
                    }
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Event::Eof => return Err(self.bad("ends inside a string")),
                Event::Empty | Event::Text => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Shared strings

/// The workbook's shared strings: their bytes one after another (in
/// memory, or past [`SPILL_OVER`] in an unlinked file), and where each
/// ends.
struct SharedStrings {
    /// End offsets, in chunks so that growing never copies them all.
    ends: Vec<Vec<u32>>,
    count: usize,
    len: u64,
    memory: Vec<u8>,
    spill: Option<Spill>,
    /// Where a spill file would go.
    tmp: std::path::PathBuf,
    spill_over: usize,
}

/// Shared strings kept on disk: written through a buffer, then read back
/// by windows.
struct Spill {
    writer: Option<BufWriter<std::fs::File>>,
    file: std::fs::File,
    windows: Vec<(u64, Vec<u8>, u64)>,
    tick: u64,
}

const ENDS_CHUNK: usize = 1 << 16;

impl SharedStrings {
    fn new(tmp: &Path, spill_over: usize) -> Self {
        SharedStrings {
            ends: Vec::new(),
            count: 0,
            len: 0,
            memory: Vec::new(),
            spill: None,
            tmp: tmp.to_path_buf(),
            spill_over,
        }
    }

    /// Adds the next string.
    fn push(&mut self, s: &str, part: &str) -> Result<()> {
        if self.count >= MAX_SHARED_STRINGS {
            return Err(ReadError::TooLarge(format!(
                "holds more than {MAX_SHARED_STRINGS} distinct texts (shared strings, in its part {part}), the limit for a workbook: split the export, or save it as CSV"
            )));
        }
        let len = self.len + s.len() as u64;
        if len > MAX_SHARED_STRING_BYTES {
            return Err(ReadError::TooLarge(format!(
                "holds more than {} MiB of distinct texts (shared strings, in its part {part}), the limit for a workbook: split the export, or save it as CSV",
                MAX_SHARED_STRING_BYTES >> 20
            )));
        }
        if self.spill.is_none() && len as usize > self.spill_over {
            self.spill_to_disk()?;
        }
        match self.spill.as_mut().and_then(|s| s.writer.as_mut()) {
            Some(w) => w
                .write_all(s.as_bytes())
                .map_err(|e| unreadable(format!("cannot keep its shared strings: {e}")))?,
            None => self.memory.extend_from_slice(s.as_bytes()),
        }
        self.len = len;
        if self.count.is_multiple_of(ENDS_CHUNK) {
            self.ends.push(Vec::with_capacity(ENDS_CHUNK));
        }
        self.ends.last_mut().expect("a chunk").push(len as u32);
        self.count += 1;
        Ok(())
    }

    /// Moves the strings held so far to an unlinked file under `tmp`.
    fn spill_to_disk(&mut self) -> Result<()> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let fail = |e: std::io::Error| unreadable(format!("cannot keep its shared strings: {e}"));
        std::fs::create_dir_all(&self.tmp).map_err(fail)?;
        let at = self.tmp.join(format!(
            "shared-strings-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&at)
            .map_err(fail)?;
        std::fs::remove_file(&at).map_err(fail)?;
        let mut writer = BufWriter::with_capacity(1 << 16, file.try_clone().map_err(fail)?);
        writer.write_all(&self.memory).map_err(fail)?;
        self.memory = Vec::new();
        self.spill = Some(Spill {
            writer: Some(writer),
            file,
            windows: Vec::new(),
            tick: 0,
        });
        Ok(())
    }

    /// Ends the writing of the strings.
    fn finish(&mut self) -> Result<()> {
        if let Some(w) = self.spill.as_mut().and_then(|s| s.writer.take()) {
            w.into_inner()
                .map_err(|e| unreadable(format!("cannot keep its shared strings: {e}")))?;
        }
        Ok(())
    }

    /// The string at `index`, if there is one.
    fn get(&mut self, index: usize) -> Result<Option<&[u8]>> {
        if index >= self.count {
            return Ok(None);
        }
        let end = |i: usize| u64::from(self.ends[i / ENDS_CHUNK][i % ENDS_CHUNK]);
        let (start, end) = (if index == 0 { 0 } else { end(index - 1) }, end(index));
        let Some(spill) = self.spill.as_mut() else {
            return Ok(Some(&self.memory[start as usize..end as usize]));
        };
        spill.read(start, end, self.len).map(Some)
    }
}

impl Spill {
    /// The bytes `start..end` of the spilled strings, from a window that
    /// holds them, reading one if none does.
    fn read(&mut self, start: u64, end: u64, total: u64) -> Result<&[u8]> {
        use std::os::unix::fs::FileExt;
        self.tick += 1;
        let tick = self.tick;
        let hit = self
            .windows
            .iter()
            .position(|(at, data, _)| *at <= start && end <= *at + data.len() as u64);
        let slot = match hit {
            Some(slot) => slot,
            None => {
                let len = (end - start).max(WINDOW as u64).min(total - start) as usize;
                let slot = if self.windows.len() < WINDOWS {
                    self.windows.push((0, Vec::new(), 0));
                    self.windows.len() - 1
                } else {
                    let oldest = self.windows.iter().enumerate().min_by_key(|(_, w)| w.2);
                    oldest.map(|(i, _)| i).expect("a window")
                };
                let window = &mut self.windows[slot];
                window.0 = start;
                window.1.resize(len, 0);
                self.file
                    .read_exact_at(&mut window.1, start)
                    .map_err(|e| unreadable(format!("cannot read its shared strings back: {e}")))?;
                slot
            }
        };
        let window = &mut self.windows[slot];
        window.2 = tick;
        let from = (start - window.0) as usize;
        Ok(&window.1[from..from + (end - start) as usize])
    }
}

// ---------------------------------------------------------------------------
// The workbook

/// A workbook opened for its first visible worksheet.
pub struct Workbook<R: Read + Seek> {
    archive: zip::ZipArchive<R>,
    strings: SharedStrings,
    /// How each cell format (`cellXfs`, by index) shows a number.
    formats: Vec<Shown>,
    date1904: bool,
    /// The zip name of the worksheet to read.
    sheet_part: String,
}

impl<R: Read + Seek> Workbook<R> {
    /// Opens a workbook: its relationships, sheets, styles and shared
    /// strings (spilled under `tmp` past [`SPILL_OVER`] bytes).
    pub fn open(reader: R, tmp: &Path) -> Result<Self> {
        Self::open_with(reader, tmp, SPILL_OVER)
    }

    fn open_with(reader: R, tmp: &Path, spill_over: usize) -> Result<Self> {
        let archive = zip::ZipArchive::new(reader).map_err(unreadable)?;
        let mut book = Workbook {
            archive,
            strings: SharedStrings::new(tmp, spill_over),
            formats: Vec::new(),
            date1904: false,
            sheet_part: String::new(),
        };
        let workbook = book.workbook_part()?;
        let (dir, name) = match workbook.rfind('/') {
            Some(i) => workbook.split_at(i + 1),
            None => ("", workbook.as_str()),
        };
        let rels = book.relationships(&format!("{dir}_rels/{name}.rels"))?;
        book.sheet_part = book.first_visible_sheet(&workbook, dir, &rels)?;
        book.read_styles(&format!("{dir}styles.xml"))?;
        book.read_shared_strings(&format!("{dir}sharedStrings.xml"))?;
        Ok(book)
    }

    /// The index of the part `name`: exactly, else ignoring case and `\`
    /// for `/` (as some writers spell them).
    fn find(&self, name: &str) -> Option<usize> {
        self.archive.index_for_name(name).or_else(|| {
            let wanted = name.to_ascii_lowercase();
            self.archive
                .file_names()
                .position(|n| n.is_ok_and(|n| n.replace('\\', "/").to_ascii_lowercase() == wanted))
        })
    }

    /// A tokenizer over the part `name`, `None` if the workbook lacks it.
    fn part(&mut self, name: &str) -> Result<Option<Xml<zip::read::ZipFile<'_, R>>>> {
        let Some(index) = self.find(name) else {
            return Ok(None);
        };
        let file = self
            .archive
            .by_index(index)
            .map_err(|e| unreadable(format!("{name}: {e}")))?;
        Ok(Some(Xml::new(file, name)))
    }

    /// The workbook part the package relationships name (`xl/workbook.xml`
    /// when they name none).
    fn workbook_part(&mut self) -> Result<String> {
        let mut found = None;
        if let Some(mut xml) = self.part("_rels/.rels")? {
            loop {
                match xml.next()? {
                    Event::Start | Event::Empty if xml.name() == b"Relationship" => {
                        let ty = xml.attr_text(b"Type")?.unwrap_or_default();
                        if ty.ends_with("/relationships/officeDocument") {
                            found = xml.attr_text(b"Target")?;
                        }
                    }
                    Event::Eof => break,
                    _ => {}
                }
            }
        }
        let target = found.unwrap_or_else(|| "xl/workbook.xml".to_string());
        Ok(target.trim_start_matches('/').to_string())
    }

    /// The workbook's relationships: id → (target, type).
    fn relationships(
        &mut self,
        part: &str,
    ) -> Result<std::collections::HashMap<String, (String, String)>> {
        let mut rels = std::collections::HashMap::new();
        let Some(mut xml) = self.part(part)? else {
            return Err(unreadable(format!("it has no {part}")));
        };
        loop {
            match xml.next()? {
                Event::Start | Event::Empty if xml.name() == b"Relationship" => {
                    if rels.len() >= MAX_SHEETS {
                        return Err(xml.bad(format!("more than {MAX_SHEETS} relationships")));
                    }
                    if let Some(id) = xml.attr_text(b"Id")? {
                        let target = xml.attr_text(b"Target")?.unwrap_or_default();
                        let ty = xml.attr_text(b"Type")?.unwrap_or_default();
                        rels.insert(id, (target, ty));
                    }
                }
                Event::Eof => return Ok(rels),
                _ => {}
            }
        }
    }

    /// Reads the workbook part's sheets and date system: the part of the
    /// first visible worksheet (a hidden sheet before it, stale data or a
    /// lookup table, is not what was exported), else of the first sheet.
    fn first_visible_sheet(
        &mut self,
        workbook: &str,
        dir: &str,
        rels: &std::collections::HashMap<String, (String, String)>,
    ) -> Result<String> {
        let Some(mut xml) = self.part(workbook)? else {
            return Err(unreadable(format!("it has no {workbook}")));
        };
        let (mut first, mut visible, mut sheets) = (None, None, 0usize);
        let mut date1904 = false;
        loop {
            match xml.next()? {
                Event::Start | Event::Empty if xml.name() == b"sheet" => {
                    sheets += 1;
                    if sheets > MAX_SHEETS {
                        return Err(xml.bad(format!("more than {MAX_SHEETS} sheets")));
                    }
                    let name = xml.attr_text(b"name")?.unwrap_or_default();
                    let hidden = matches!(
                        xml.attr(b"state")?.as_deref(),
                        Some(b"hidden" | b"veryHidden")
                    );
                    let rel = xml.attr_text(b"id")?.and_then(|id| rels.get(&id));
                    let part = rel.map(|(target, _)| part_path(dir, target));
                    let worksheet = rel.is_some_and(|(_, ty)| ty.ends_with("/worksheet"));
                    if first.is_none() {
                        first = Some((name, part.clone()));
                    }
                    if visible.is_none() && !hidden && worksheet {
                        visible = part;
                    }
                }
                Event::Start | Event::Empty if xml.name() == b"workbookPr" => {
                    if let Some(v) = xml.attr(b"date1904")? {
                        date1904 = matches!(&*v, b"1" | b"true");
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        drop(xml);
        self.date1904 = date1904;
        match (visible, first) {
            (Some(part), _) => Ok(part),
            (None, Some((_, Some(part)))) => Ok(part),
            (None, Some((name, None))) => Err(unreadable(format!(
                "its sheet `{name}` has no part in its relationships"
            ))),
            (None, None) => Err(ReadError::Unreadable("the workbook has no sheet".into())),
        }
    }

    /// Reads how each cell format shows a number (`styles.xml`: the
    /// `numFmtId` of each `cellXfs` `xf`, custom `numFmts` first).
    fn read_styles(&mut self, part: &str) -> Result<()> {
        let Some(mut xml) = self.part(part)? else {
            return Ok(());
        };
        let mut custom = std::collections::HashMap::new();
        let (mut in_num_fmts, mut in_cell_xfs) = (false, false);
        let mut formats = Vec::new();
        loop {
            let event = xml.next()?;
            let name = xml.name();
            match event {
                Event::Start if name == b"numFmts" => in_num_fmts = true,
                Event::End if name == b"numFmts" => in_num_fmts = false,
                Event::Start if name == b"cellXfs" => in_cell_xfs = true,
                Event::End if name == b"cellXfs" => in_cell_xfs = false,
                Event::Start | Event::Empty if in_num_fmts && name == b"numFmt" => {
                    if custom.len() >= MAX_STYLES {
                        return Err(xml.bad(format!("more than {MAX_STYLES} number formats")));
                    }
                    if let (Some(id), Some(code)) =
                        (xml.attr_text(b"numFmtId")?, xml.attr_text(b"formatCode")?)
                    {
                        custom.insert(id, custom_format(&code));
                    }
                }
                Event::Start | Event::Empty if in_cell_xfs && name == b"xf" => {
                    if formats.len() >= MAX_STYLES {
                        return Err(xml.bad(format!("more than {MAX_STYLES} cell formats")));
                    }
                    let shown = match xml.attr_text(b"numFmtId")? {
                        None => Shown::Number,
                        Some(id) => custom
                            .get(&id)
                            .copied()
                            .unwrap_or_else(|| id.parse().map_or(Shown::Number, builtin_format)),
                    };
                    formats.push(shown);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        drop(xml);
        self.formats = formats;
        Ok(())
    }

    /// Reads the shared strings into [`SharedStrings`].
    fn read_shared_strings(&mut self, part: &str) -> Result<()> {
        let Some(index) = self.find(part) else {
            return Ok(());
        };
        let file = self
            .archive
            .by_index(index)
            .map_err(|e| unreadable(format!("{part}: {e}")))?;
        let mut xml = Xml::new(file, part);
        let (mut text, mut scratch) = (String::new(), Vec::new());
        loop {
            match xml.next()? {
                Event::Start if xml.name() == b"si" => {
                    xml.string_item(&mut text, &mut scratch)?;
                    self.strings.push(&text, part)?;
                }
                Event::Empty if xml.name() == b"si" => self.strings.push("", part)?,
                Event::Eof => break,
                _ => {}
            }
        }
        drop(xml);
        self.strings.finish()
    }

    /// The worksheet to read, from its start.
    pub fn sheet(&mut self) -> Result<Sheet<'_, R>> {
        let part = self.sheet_part.clone();
        let Some(index) = self.find(&part) else {
            return Err(unreadable(format!("it has no {part}")));
        };
        let file = self
            .archive
            .by_index(index)
            .map_err(|e| unreadable(format!("{part}: {e}")))?;
        let mut xml = Xml::new(file, &part);
        // Everything before the sheet's data (its views, columns) is
        // passed by.
        loop {
            match xml.next()? {
                Event::Start if xml.name() == b"sheetData" => break,
                Event::Empty if xml.name() == b"sheetData" => {
                    return Ok(Sheet::new(
                        xml,
                        &mut self.strings,
                        &self.formats,
                        self.date1904,
                        true,
                    ));
                }
                Event::Eof => {
                    return Err(unreadable(format!("{part} is not a worksheet")));
                }
                _ => {}
            }
        }
        Ok(Sheet::new(
            xml,
            &mut self.strings,
            &self.formats,
            self.date1904,
            false,
        ))
    }
}

/// The zip name of a relationship's target: absolute (`/xl/…`) or
/// relative to the workbook's folder, `.` and `..` resolved.
fn part_path(dir: &str, target: &str) -> String {
    let joined = match target.strip_prefix('/') {
        Some(absolute) => absolute.to_string(),
        None => format!("{dir}{target}"),
    };
    let mut parts: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// The cell type (`t`) of a `<c>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Number,
    Shared,
    Bool,
    Error,
    FormulaText,
    Inline,
    IsoDate,
}

/// A worksheet read a cell at a time.
pub struct Sheet<'a, R: Read + Seek> {
    xml: Xml<zip::read::ZipFile<'a, R>>,
    strings: &'a mut SharedStrings,
    formats: &'a [Shown],
    date1904: bool,
    /// Where the next cell without an `r` is.
    row: u32,
    col: u32,
    /// The sheet's data is read (merged cells may follow).
    done: bool,
    scratch: Vec<u8>,
    text: String,
}

impl<'a, R: Read + Seek> Sheet<'a, R> {
    fn new(
        xml: Xml<zip::read::ZipFile<'a, R>>,
        strings: &'a mut SharedStrings,
        formats: &'a [Shown],
        date1904: bool,
        done: bool,
    ) -> Self {
        Sheet {
            xml,
            strings,
            formats,
            date1904,
            row: 0,
            col: 0,
            done,
            scratch: Vec::new(),
            text: String::new(),
        }
    }

    /// The next cell in the order the sheet holds them: its zero-based
    /// `(row, column)` (from its `r`, else counted along its row) and value;
    /// `None` after the last.
    pub fn next_cell(&mut self) -> Result<Option<((u32, u32), Cell)>> {
        while !self.done {
            let event = self.xml.next()?;
            match (event, self.xml.name()) {
                (Event::Start | Event::Empty, b"row") => {
                    if let Some(r) = self.xml.attr(b"r")? {
                        let row = parse_row(&r).ok_or_else(|| self.bad_ref("row", &r))?;
                        self.row = row;
                    }
                    if event == Event::Empty {
                        self.end_row();
                    }
                }
                (Event::End, b"row") => self.end_row(),
                (Event::Start | Event::Empty, b"c") => return self.cell(event).map(Some),
                (Event::End, b"sheetData") => self.done = true,
                (Event::Eof, _) => return Err(self.xml.bad("ends inside its sheet data")),
                _ => {}
            }
        }
        Ok(None)
    }

    fn end_row(&mut self) {
        self.row = self.row.saturating_add(1);
        self.col = 0;
    }

    fn bad_ref(&self, what: &str, r: &[u8]) -> ReadError {
        self.xml.bad(format!(
            "a {what} named `{}`, which is not a {what} reference",
            String::from_utf8_lossy(r)
        ))
    }

    /// Reads the cell whose tag was just read.
    fn cell(&mut self, event: Event) -> Result<((u32, u32), Cell)> {
        let at = match self.xml.attr(b"r")? {
            Some(r) => parse_cell(&r).ok_or_else(|| self.bad_ref("cell", &r))?,
            None => (self.row, self.col),
        };
        self.col = at.1.saturating_add(1);
        // A style that is not a number is the default one.
        let style = self.xml.attr(b"s")?.map(|s| {
            std::str::from_utf8(&s)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0)
        });
        let ty = match self.xml.attr(b"t")?.as_deref() {
            None | Some(b"n") => Type::Number,
            Some(b"s") => Type::Shared,
            Some(b"b") => Type::Bool,
            Some(b"e") => Type::Error,
            Some(b"str") => Type::FormulaText,
            Some(b"inlineStr" | b"is") => Type::Inline,
            Some(b"d") => Type::IsoDate,
            Some(other) => {
                let other = String::from_utf8_lossy(other).into_owned();
                return Err(self.at(at, format!("a cell type `{other}` no workbook has")));
            }
        };
        let untyped = self.xml.attr(b"t")?.is_none();
        if event == Event::Empty {
            return Ok((at, Cell::Empty));
        }
        let (mut value, mut formula, mut valued) = (Cell::Empty, false, false);
        loop {
            let event = self.xml.next()?;
            match (event, self.xml.name()) {
                (Event::Start, b"v") if ty == Type::Inline => {
                    // An inline string's `<v>` repeats its `<is>`.
                    self.xml.skip_element()?;
                    value = Cell::Empty;
                }
                (Event::Start, b"v") => {
                    valued = true;
                    self.scratch.clear();
                    self.xml
                        .element_text(&mut self.scratch, MAX_TOKEN)
                        .map_err(|e| self.within(at, e))?;
                    value = self.value(at, ty, untyped, style)?;
                }
                (Event::Empty, b"v") => {
                    valued = true;
                    self.scratch.clear();
                    value = self.value(at, ty, untyped, style)?;
                }
                (Event::Start, b"is") => {
                    valued = true;
                    let mut text = std::mem::take(&mut self.text);
                    self.xml
                        .string_item(&mut text, &mut self.scratch)
                        .map_err(|e| self.within(at, e))?;
                    value = Cell::Text(text.clone());
                    self.text = text;
                }
                (Event::Empty, b"is") => {
                    valued = true;
                    value = Cell::Text(String::new());
                }
                (Event::Start | Event::Empty, b"f") => {
                    formula = true;
                    if event == Event::Start {
                        self.xml.skip_element().map_err(|e| self.within(at, e))?;
                    }
                    value = Cell::Empty;
                }
                (Event::Start, _) => self.xml.skip_element().map_err(|e| self.within(at, e))?,
                (Event::End, b"c") => break,
                (Event::Eof, _) => return Err(self.at(at, "the part ends inside the cell")),
                _ => {}
            }
        }
        if formula && !valued {
            return Err(ReadError::UnvaluedFormula);
        }
        Ok((at, value))
    }

    /// An error about the cell at `at`.
    fn at(&self, at: (u32, u32), why: impl std::fmt::Display) -> ReadError {
        self.xml
            .bad(format!("cell {} of the sheet: {why}", cell_name(at)))
    }

    /// `e` with the cell it arose in named.
    fn within(&self, at: (u32, u32), e: ReadError) -> ReadError {
        let cell = cell_name(at);
        match e {
            ReadError::TooLarge(why) => ReadError::TooLarge(format!("{why} (cell {cell})")),
            ReadError::Unreadable(why) => ReadError::Unreadable(format!("{why} (cell {cell})")),
            e => e,
        }
    }

    /// The value of a cell of type `ty` whose `<v>` text is in `scratch`.
    fn value(
        &mut self,
        at: (u32, u32),
        ty: Type,
        untyped: bool,
        style: Option<usize>,
    ) -> Result<Cell> {
        let v = std::str::from_utf8(&self.scratch)
            .map_err(|_| self.at(at, "a value that is not UTF-8"))?;
        if v.is_empty() && matches!(ty, Type::Number | Type::Shared | Type::Bool | Type::Error) {
            return Ok(Cell::Empty);
        }
        Ok(match ty {
            Type::Shared => {
                let index = v.parse::<usize>().ok();
                let s = match index {
                    Some(i) => self.strings.get(i)?,
                    None => None,
                };
                let Some(s) = s else {
                    return Err(self.at(
                        at,
                        format!("a shared string `{v}` the workbook does not have"),
                    ));
                };
                Cell::Text(
                    String::from_utf8(s.to_vec())
                        .map_err(|_| self.at(at, "a text that is not UTF-8"))?,
                )
            }
            Type::Bool => match v {
                "0" | "false" => Cell::Bool(false),
                "1" | "true" => Cell::Bool(true),
                _ => return Err(self.at(at, format!("`{v}` is not a boolean"))),
            },
            Type::Error => Cell::Error(v.to_string()),
            Type::IsoDate => Cell::IsoDate(v.to_string()),
            Type::FormulaText => {
                let mut s = String::with_capacity(v.len());
                push_unescaped(v, &mut s);
                Cell::Text(s)
            }
            Type::Inline => Cell::Empty,
            Type::Number => match v.parse::<f64>() {
                Ok(n) => {
                    let shown = style.map_or(Shown::Number, |s| {
                        self.formats.get(s).copied().unwrap_or(Shown::Number)
                    });
                    match shown {
                        Shown::Number => Cell::Number(n),
                        Shown::DateTime => Cell::Date {
                            serial: n,
                            date1904: self.date1904,
                        },
                        Shown::Duration => Cell::Duration(n),
                    }
                }
                // A value without a type that is not a number is its text.
                Err(_) if untyped => Cell::Text(v.to_string()),
                Err(_) => return Err(self.at(at, format!("`{v}` is not a number"))),
            },
        })
    }

    /// The next region of merged cells (`<mergeCell ref="A2:A4"/>`, after
    /// the sheet's data); `None` after the last. Call after the last cell.
    pub fn next_merge(&mut self) -> Result<Option<Merged>> {
        while !self.done {
            if self.next_cell()?.is_none() {
                break;
            }
        }
        loop {
            match self.xml.next()? {
                Event::Start | Event::Empty if self.xml.name() == b"mergeCell" => {
                    let Some(r) = self.xml.attr(b"ref")? else {
                        continue;
                    };
                    let mut corners = r.split(|&b| b == b':');
                    let first = corners.next().and_then(parse_cell);
                    let last = match corners.next() {
                        Some(c) => parse_cell(c),
                        None => first,
                    };
                    let (Some(first), Some(last)) = (first, last) else {
                        return Err(self.bad_ref("range", &r));
                    };
                    return Ok(Some(Merged { first, last }));
                }
                Event::Eof => return Ok(None),
                _ => {}
            }
        }
    }
}

/// The zero-based row of a row reference (`7`, or a cell's `B7`).
fn parse_row(r: &[u8]) -> Option<u32> {
    let digits = &r[r.iter().take_while(|b| b.is_ascii_alphabetic()).count()..];
    parse_number(digits)?.checked_sub(1)
}

/// The zero-based `(row, column)` of a cell reference (`B7` is `(6, 1)`).
fn parse_cell(r: &[u8]) -> Option<(u32, u32)> {
    let letters = r.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    if letters == 0 || letters > 4 {
        return None;
    }
    let col = r[..letters].iter().fold(0u32, |col, &b| {
        col * 26 + u32::from(b.to_ascii_uppercase() - b'A') + 1
    });
    Some((parse_row(r)?, col - 1))
}

/// A decimal number of up to nine digits.
fn parse_number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const RELS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

    /// A workbook of the given parts (stored), with the package and
    /// workbook relationships of one sheet unless `parts` has them.
    fn zip_of(parts: &[(&str, String)]) -> Vec<u8> {
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let mut all: Vec<(&str, String)> = parts.to_vec();
        let defaults = [
            (
                "_rels/.rels",
                format!(
                    r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
                ),
            ),
            (
                "xl/_rels/workbook.xml.rels",
                format!(
                    r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{RELS}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{RELS}/worksheet" Target="/xl/worksheets/sheet2.xml"/></Relationships>"#
                ),
            ),
            (
                "xl/workbook.xml",
                format!(
                    r#"<workbook xmlns="{MAIN}" xmlns:r="{RELS}"><sheets><sheet name="一" sheetId="1" r:id="rId1"/></sheets></workbook>"#
                ),
            ),
        ];
        for (name, text) in defaults {
            if !all.iter().any(|(n, _)| *n == name) {
                all.push((name, text));
            }
        }
        for (name, text) in all {
            out.start_file(name, stored).unwrap();
            out.write_all(text.as_bytes()).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    /// A worksheet part holding `rows` (the XML inside `<sheetData>`) and
    /// `after` (after it).
    fn sheet(rows: &str, after: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}"><dimension ref="A1"/><sheetData>{rows}</sheetData>{after}</worksheet>"#
        )
    }

    fn shared(items: &str) -> String {
        format!(r#"<sst xmlns="{MAIN}">{items}</sst>"#)
    }

    /// Every cell of the workbook's sheet, shared strings spilled past
    /// `spill_over` bytes.
    fn read_with(bytes: &[u8], spill_over: usize) -> Result<Vec<((u32, u32), Cell)>> {
        let tmp = tempfile::tempdir().unwrap();
        let mut book = Workbook::open_with(Cursor::new(bytes), tmp.path(), spill_over)?;
        let mut sheet = book.sheet()?;
        let mut cells = Vec::new();
        while let Some(cell) = sheet.next_cell()? {
            cells.push(cell);
        }
        Ok(cells)
    }

    fn read(bytes: &[u8]) -> Result<Vec<((u32, u32), Cell)>> {
        read_with(bytes, SPILL_OVER)
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }

    #[test]
    fn entities_and_ooxml_escapes_are_decoded() {
        let bytes = zip_of(&[
            (
                "xl/sharedStrings.xml",
                shared(
                    "<si><t>a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#65;&#x4E2D;</t></si>\
                     <si><t>x_x000D_y _x005F_x000D_ _xD83D__xDE00_ _xD83D_ _x41</t></si>\
                     <si><t>  trimmed\r\n</t></si><si><t xml:space=\"preserve\"> kept\r\nline </t></si>\
                     <si><t><![CDATA[<raw & text>]]></t></si>",
                ),
            ),
            (
                "xl/worksheets/sheet1.xml",
                sheet(
                    r#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c><c r="E1" t="s"><v>4</v></c><c r="F1" t="str"><v>f&amp;_x0031_</v></c></row>"#,
                    "",
                ),
            ),
        ]);
        let cells = read(&bytes).unwrap();
        let values: Vec<Cell> = cells.into_iter().map(|(_, c)| c).collect();
        assert_eq!(
            values,
            [
                text("a&b <c> \"d\" 'e' A中"),
                text("x\ry _x000D_ 😀 \u{FFFD} _x41"),
                text("trimmed"),
                text(" kept\nline "),
                text("<raw & text>"),
                text("f&1"),
            ]
        );
        let unknown = zip_of(&[(
            "xl/worksheets/sheet1.xml",
            sheet(r#"<row><c t="str"><v>&nbsp;</v></c></row>"#, ""),
        )]);
        let err = read(&unknown).unwrap_err().to_string();
        assert!(err.contains("unknown entity `&nbsp;`"), "{err}");
    }

    #[test]
    fn rich_text_runs_are_joined_and_phonetic_runs_left_out() {
        // Three shared strings; the sheet's first row refers to `cells`.
        let book = |cells: &str| {
            zip_of(&[
                (
                    "xl/sharedStrings.xml",
                    shared(
                        r#"<si><r><rPr><b/></rPr><t>张</t></r><r><t xml:space="preserve"> 三</t></r><rPh sb="0" eb="1"><t>チョウ</t></rPh><phoneticPr fontId="1"/></si><si/><si><t></t></si>"#,
                    ),
                ),
                (
                    "xl/worksheets/sheet1.xml",
                    sheet(&format!(r#"<row r="1">{cells}</row>"#), ""),
                ),
            ])
        };
        let first_three = r#"<c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c>"#;
        // A fourth refers past the table.
        let err = read(&book(&format!(
            r#"{first_three}<c r="D1" t="s"><v>3</v></c>"#
        )))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("cell D1") && err.contains("shared string `3`"),
            "{err}"
        );
        let values: Vec<Cell> = read(&book(first_three))
            .unwrap()
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(values, [text("张 三"), text(""), text("")]);
    }

    #[test]
    fn inline_strings_booleans_errors_and_iso_dates_read() {
        let bytes = zip_of(&[(
            "xl/worksheets/sheet1.xml",
            sheet(
                r#"<row r="2"><c r="A2" t="inlineStr"><is><t>内联</t></is></c><c r="B2" t="inlineStr"><is><r><t>a</t></r><r><t>b</t></r><rPh><t>x</t></rPh></is></c><c r="C2" t="b"><v>1</v></c><c r="D2" t="e"><v>#DIV/0!</v></c><c r="E2" t="d"><v>2024-03-01T00:00:00</v></c><c r="F2"><v>1.5</v></c><c r="G2" t="n"><v></v></c><c r="H2"><v>N/A</v></c><c r="I2" s="0"/></row>"#,
                "",
            ),
        )]);
        let cells = read(&bytes).unwrap();
        assert_eq!(
            cells,
            [
                ((1, 0), text("内联")),
                ((1, 1), text("ab")),
                ((1, 2), Cell::Bool(true)),
                ((1, 3), Cell::Error("#DIV/0!".into())),
                ((1, 4), Cell::IsoDate("2024-03-01T00:00:00".into())),
                ((1, 5), Cell::Number(1.5)),
                ((1, 6), Cell::Empty),
                ((1, 7), text("N/A")),
                ((1, 8), Cell::Empty),
            ]
        );
    }

    /// Shared strings past the spill size are kept on disk and read back
    /// by their offsets, in any order, through the cached windows.
    #[test]
    fn shared_strings_spilled_to_disk_are_read_back() {
        let n = 5000;
        let items: String = (0..n)
            .map(|i| format!("<si><t>第{i}条{}</t></si>", "x".repeat(i % 700)))
            .collect();
        let rows: String = (0..n)
            .map(|i| {
                // Strings asked for out of order, some far apart.
                let k = (i * 7919) % n;
                format!(
                    r#"<row r="{}"><c r="A{}" t="s"><v>{k}</v></c></row>"#,
                    i + 1,
                    i + 1
                )
            })
            .collect();
        let bytes = zip_of(&[
            ("xl/sharedStrings.xml", shared(&items)),
            ("xl/worksheets/sheet1.xml", sheet(&rows, "")),
        ]);
        for spill_over in [SPILL_OVER, 1000] {
            let cells = read_with(&bytes, spill_over).unwrap();
            assert_eq!(cells.len(), n);
            for (i, (at, cell)) in cells.into_iter().enumerate() {
                let k = (i * 7919) % n;
                assert_eq!(at, (i as u32, 0));
                assert_eq!(cell, text(&format!("第{k}条{}", "x".repeat(k % 700))));
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let book = Workbook::open_with(Cursor::new(&bytes), tmp.path(), 1000).unwrap();
        assert!(book.strings.spill.is_some());
        assert!(book.strings.memory.is_empty());
        // The spill file is unlinked at once.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn dates_are_told_by_their_style_in_either_date_system() {
        let styles = format!(
            r#"<styleSheet xmlns="{MAIN}"><numFmts count="3"><numFmt numFmtId="164" formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/><numFmt numFmtId="165" formatCode="&quot;Y&quot;0.00"/><numFmt numFmtId="14" formatCode="0.00"/></numFmts><cellStyleXfs count="1"><xf numFmtId="22"/></cellStyleXfs><cellXfs count="7"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/><xf numFmtId="22"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="46"/><xf numFmtId="57"><alignment horizontal="left"/></xf></cellXfs></styleSheet>"#
        );
        let rows = r#"<row r="1"><c r="A1" s="1"><v>45352</v></c><c r="B1" s="2"><v>45352.5625</v></c><c r="C1" s="3"><v>45352</v></c><c r="D1" s="4"><v>45352</v></c><c r="E1" s="5"><v>1.5</v></c><c r="F1" s="6"><v>45352</v></c><c r="G1" s="0"><v>45352</v></c><c r="H1" s="99"><v>45352</v></c><c r="I1"><v>45352</v></c></row>"#;
        for (date1904, workbook_pr) in [(false, ""), (true, r#"<workbookPr date1904="1"/>"#)] {
            let bytes = zip_of(&[
                ("xl/styles.xml", styles.clone()),
                ("xl/worksheets/sheet1.xml", sheet(rows, "")),
                (
                    "xl/workbook.xml",
                    format!(
                        r#"<workbook xmlns="{MAIN}" xmlns:r="{RELS}">{workbook_pr}<sheets><sheet name="s" sheetId="1" r:id="rId1"/></sheets></workbook>"#
                    ),
                ),
            ]);
            let values: Vec<String> = read(&bytes)
                .unwrap()
                .into_iter()
                .map(|(_, c)| c.to_string())
                .collect();
            // Custom format 14 redefined as a number; `[h]:mm:ss` a duration.
            let (day, later) = if date1904 {
                ("2028-03-02", "2028-03-02 13:30:00")
            } else {
                ("2024-03-01", "2024-03-01 13:30:00")
            };
            assert_eq!(
                values,
                ["45352", later, day, "45352", "1.5", day, "45352", "45352", "45352"],
                "{date1904}"
            );
        }
    }

    #[test]
    fn custom_number_formats_are_dates_by_their_letters() {
        for (code, shown) in [
            ("yyyy-mm-dd", Shown::DateTime),
            ("DD/MM/YY", Shown::DateTime),
            ("H:MM:SS;@", Shown::DateTime),
            ("[$-F800]dddd\\,\\ mmmm\\ dd\\,\\ yyyy", Shown::DateTime),
            ("[$-404]e\"年\"m\"月\"d\"日\"", Shown::DateTime),
            ("m\"M\"d\"D\";@", Shown::DateTime),
            ("AM/PM h", Shown::DateTime),
            ("[h]:mm:ss", Shown::Duration),
            ("[ss]", Shown::Duration),
            ("[Blue]\\+[h]:mm;[Red]\\-[h]:mm", Shown::Duration),
            ("0.00", Shown::Number),
            ("#,##0.0####\" YMD\"", Shown::Number),
            ("\\Y000000", Shown::Number),
            ("\"$\"#,##0_);[Red](\"$\"#,##0)", Shown::Number),
            ("0_ ;[Red]\\-0\\ ", Shown::Number),
            ("[Red]0.00", Shown::Number),
            ("0;yyyy", Shown::Number),
            ("General", Shown::Number),
        ] {
            assert_eq!(custom_format(code), shown, "{code}");
        }
        for id in [14, 22, 27, 36, 45, 47, 50, 58] {
            assert_eq!(builtin_format(id), Shown::DateTime, "{id}");
        }
        for id in [0, 1, 13, 23, 26, 37, 44, 48, 49, 59] {
            assert_eq!(builtin_format(id), Shown::Number, "{id}");
        }
        assert_eq!(builtin_format(46), Shown::Duration);
    }

    #[test]
    fn serial_dates_follow_the_spreadsheet_calendars() {
        for (serial, date1904, shown) in [
            (1.0, false, "1900-01-01"),
            (59.0, false, "1900-02-28"),
            (60.0, false, "1900-02-29"),
            (61.0, false, "1900-03-01"),
            (45352.0, false, "2024-03-01"),
            (45_352.999_999_9, false, "2024-03-01 23:59:59"),
            (45_352.999_999_999_9, false, "2024-03-02"),
            (45352.25, false, "2024-03-01 06:00:00"),
            (0.0, true, "1904-01-01"),
            (43890.0, true, "2024-03-01"),
            (1e12, false, "9999-12-31"),
        ] {
            assert_eq!(date_text(serial, date1904), shown, "{serial} {date1904}");
        }
    }

    /// A text longer than [`MAX_TOKEN`] is refused as it is read, naming
    /// its part, its cell and the limit.
    #[test]
    fn a_cell_over_the_token_limit_is_refused_before_it_is_held() {
        let long = "x".repeat(MAX_TOKEN + 10);
        let bytes = zip_of(&[(
            "xl/worksheets/sheet1.xml",
            sheet(
                &format!(
                    r#"<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c></row><row r="3"><c r="B3" t="inlineStr"><is><t>{long}</t></is></c></row>"#
                ),
                "",
            ),
        )]);
        let err = read(&bytes).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge(_)), "{err:?}");
        let err = err.to_string();
        assert!(
            err.contains("limit of 1 MiB")
                && err.contains("xl/worksheets/sheet1.xml")
                && err.contains("cell B3"),
            "{err}"
        );
        // White space between rows, a tag and a comment alike.
        for filler in [
            " ".repeat(MAX_TOKEN + 10),
            format!("<row r=\"2\" x=\"{long}\"/>"),
            format!("<!--{long}-->"),
        ] {
            let bytes = zip_of(&[(
                "xl/worksheets/sheet1.xml",
                sheet(
                    &format!(r#"<row r="1"><c r="A1"><v>1</v></c></row>{filler}"#),
                    "",
                ),
            )]);
            let err = read(&bytes).unwrap_err().to_string();
            assert!(err.contains("limit of 1 MiB"), "{err}");
        }
    }

    #[test]
    fn a_document_type_is_refused() {
        let bytes = zip_of(&[(
            "xl/sharedStrings.xml",
            r#"<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "aaaaaaaa">]><sst><si><t>&a;</t></si></sst>"#.to_string(),
        ), ("xl/worksheets/sheet1.xml", sheet("", ""))]);
        let err = read(&bytes).unwrap_err().to_string();
        assert!(
            err.contains("xl/sharedStrings.xml") && err.contains("<!DOCTYPE"),
            "{err}"
        );
    }

    /// Rows and cells without `r` are counted: a cell follows the one
    /// before it, a row the one before it.
    #[test]
    fn a_sheet_without_cell_references_is_counted() {
        let bytes = zip_of(&[(
            "xl/worksheets/sheet1.xml",
            sheet(
                r#"<row><c><v>1</v></c><c><v>2</v></c></row><row r="5"><c><v>3</v></c><c r="D5"><v>4</v></c><c><v>5</v></c></row><row/><row><c t="b"><v>0</v></c></row>"#,
                "",
            ),
        )]);
        let at: Vec<(u32, u32)> = read(&bytes)
            .unwrap()
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        assert_eq!(at, [(0, 0), (0, 1), (4, 0), (4, 3), (4, 4), (6, 0)]);
    }

    /// A hidden first sheet is passed by, whether its part is named
    /// relatively or absolutely.
    #[test]
    fn a_hidden_first_sheet_is_passed_by() {
        let workbook = |state: &str| {
            format!(
                r#"<workbook xmlns="{MAIN}" xmlns:r="{RELS}"><workbookPr/><sheets><sheet name="旧" sheetId="1" state="{state}" r:id="rId1"/><sheet name="新" sheetId="2" r:id="rId2"/></sheets></workbook>"#
            )
        };
        for (state, first) in [("hidden", 2.0), ("veryHidden", 2.0), ("visible", 1.0)] {
            let bytes = zip_of(&[
                ("xl/workbook.xml", workbook(state)),
                (
                    "xl/worksheets/sheet1.xml",
                    sheet(r#"<row><c><v>1</v></c></row>"#, ""),
                ),
                (
                    "xl/worksheets/sheet2.xml",
                    sheet(r#"<row><c><v>2</v></c></row>"#, ""),
                ),
            ]);
            let cells = read(&bytes).unwrap();
            assert_eq!(cells, [((0, 0), Cell::Number(first))], "{state}");
        }
    }

    #[test]
    fn merged_regions_are_read_after_the_cells() {
        let bytes = zip_of(&[(
            "xl/worksheets/sheet1.xml",
            sheet(
                r#"<row r="1"><c r="A1"><v>1</v></c></row>"#,
                r#"<mergeCells count="2"><mergeCell ref="A2:A4"/><mergeCell ref="C7"/></mergeCells>"#,
            ),
        )]);
        let tmp = tempfile::tempdir().unwrap();
        let mut book = Workbook::open(Cursor::new(&bytes), tmp.path()).unwrap();
        let mut sheet = book.sheet().unwrap();
        let mut merges = Vec::new();
        while let Some(m) = sheet.next_merge().unwrap() {
            merges.push((cell_name(m.first), cell_name(m.last)));
        }
        assert_eq!(
            merges,
            [("A2".into(), "A4".into()), ("C7".into(), "C7".into())]
        );
    }

    #[test]
    fn a_formula_without_a_saved_value_is_refused() {
        for c in [
            r#"<c r="B2"><f>1+1</f></c>"#,
            r#"<c r="B2"><f t="shared" si="0"/></c>"#,
        ] {
            let bytes = zip_of(&[(
                "xl/worksheets/sheet1.xml",
                sheet(
                    &format!(r#"<row r="2"><c r="A2"><v>1</v></c>{c}</row>"#),
                    "",
                ),
            )]);
            assert_eq!(read(&bytes).unwrap_err(), ReadError::UnvaluedFormula, "{c}");
        }
        let bytes = zip_of(&[(
            "xl/worksheets/sheet1.xml",
            sheet(
                r#"<row r="2"><c r="B2" t="str"><f>"a"</f><v>a</v></c></row>"#,
                "",
            ),
        )]);
        assert_eq!(read(&bytes).unwrap(), [((1, 1), text("a"))]);
    }

    /// The memory bound: a workbook holding one 40 MiB cell (written
    /// deflated, streaming, into a temp file) is refused at the token
    /// limit, not read whole.
    #[test]
    fn a_workbook_with_a_huge_cell_is_refused_at_the_token_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.xlsx");
        {
            let file = std::fs::File::create(&path).unwrap();
            let mut out = zip::ZipWriter::new(file);
            let deflated = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true);
            let small = zip_of(&[("xl/worksheets/sheet1.xml", String::new())]);
            let mut parts = zip::ZipArchive::new(Cursor::new(small)).unwrap();
            for i in 0..parts.len() {
                let mut part = parts.by_index(i).unwrap();
                let name = part.name().unwrap().to_string();
                if name == "xl/worksheets/sheet1.xml" {
                    continue;
                }
                out.start_file(name, deflated).unwrap();
                std::io::copy(&mut part, &mut out).unwrap();
            }
            out.start_file("xl/worksheets/sheet1.xml", deflated)
                .unwrap();
            write!(
                out,
                r#"<worksheet xmlns="{MAIN}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>"#
            )
            .unwrap();
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..40 {
                out.write_all(&chunk).unwrap();
            }
            out.write_all(b"</t></is></c></row></sheetData></worksheet>")
                .unwrap();
            out.finish().unwrap();
        }
        let tmp = tempfile::tempdir().unwrap();
        let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
        let mut book = Workbook::open(file, tmp.path()).unwrap();
        let mut sheet = book.sheet().unwrap();
        let err = sheet.next_cell().unwrap_err().to_string();
        assert!(
            err.contains("limit of 1 MiB") && err.contains("cell A1"),
            "{err}"
        );
    }

    /// What calamine reads from a workbook written by a spreadsheet
    /// library, cell for cell, as text: this reader reads the same.
    #[test]
    fn cells_read_as_calamine_reads_them() {
        use calamine::Reader;
        use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook as Writer};
        let mut book = Writer::new();
        let ws = book.add_worksheet();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let time = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
        let elapsed = Format::new().set_num_format("[h]:mm");
        let money = Format::new().set_num_format("¥#,##0.00");
        let texts = [
            "张三",
            "a & b <c>",
            "line\nbreak",
            " padded ",
            "_x000D_",
            "😀",
        ];
        for (r, t) in texts.iter().enumerate() {
            let r = r as u32;
            ws.write_string(r, 0, *t).unwrap();
            ws.write_number(r, 1, r as f64 * 1.1 - 3.0).unwrap();
            ws.write_number_with_format(r, 2, 45000.0 + r as f64 * 37.25, &date)
                .unwrap();
            ws.write_number_with_format(r, 3, 45000.0 + r as f64 * 0.3, &time)
                .unwrap();
            ws.write_number_with_format(r, 4, r as f64 * 1.75, &elapsed)
                .unwrap();
            ws.write_number_with_format(r, 5, r as f64 * 1000.5, &money)
                .unwrap();
            ws.write_boolean(r, 6, r.is_multiple_of(2)).unwrap();
            ws.write_formula(r, 7, Formula::new("=1+1").set_result(format!("{}", r + 2)))
                .unwrap();
            ws.write_datetime_with_format(
                r,
                8,
                ExcelDateTime::from_ymd(1900 + r as u16 * 30, 2, 28).unwrap(),
                &date,
            )
            .unwrap();
        }
        ws.write_rich_string(
            7,
            0,
            &[(&Format::new().set_bold(), "粗"), (&Format::new(), "细")],
        )
        .unwrap();
        ws.merge_range(9, 0, 10, 1, "merged", &Format::new())
            .unwrap();
        let bytes = book.save_to_buffer().unwrap();

        let mut theirs: calamine::Xlsx<_> =
            calamine::open_workbook_from_rs(Cursor::new(bytes.clone())).unwrap();
        let name = theirs.sheet_names()[0].clone();
        let range = theirs.worksheet_range(&name).unwrap();
        let shown = |d: &calamine::Data| match d {
            calamine::Data::DateTime(dt) if dt.is_datetime() => {
                let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
                if (h, mi, s) == (0, 0, 0) {
                    format!("{y:04}-{mo:02}-{d:02}")
                } else {
                    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
                }
            }
            calamine::Data::DateTime(dt) => dt.as_f64().to_string(),
            other => other.to_string(),
        };
        let mut expected = Vec::new();
        for (r, c, d) in range.used_cells() {
            let (r0, c0) = range.start().unwrap();
            expected.push(((r as u32 + r0, c as u32 + c0), shown(d)));
        }
        let ours: Vec<((u32, u32), String)> = read(&bytes)
            .unwrap()
            .into_iter()
            .filter(|(_, c)| *c != Cell::Empty)
            .map(|(at, c)| (at, c.to_string()))
            .collect();
        assert_eq!(ours, expected);

        // Serial dates across both calendars agree with calamine's.
        let mut serial = 0.0f64;
        while serial < 2_958_470.0 {
            for date1904 in [false, true] {
                let dt = calamine::ExcelDateTime::new(
                    serial,
                    calamine::ExcelDateTimeType::DateTime,
                    date1904,
                );
                assert_eq!(
                    date_text(serial, date1904),
                    shown(&calamine::Data::DateTime(dt)),
                    "{serial} {date1904}"
                );
            }
            serial = if serial < 400.0 {
                serial + 0.25
            } else {
                serial * 1.013 + 0.123_457
            };
        }
    }
}
