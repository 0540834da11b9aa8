//! Reading a department file a piece at a time: the bytes are cut into
//! chunks that end where a record ends (never inside a quoted field), each
//! decoded on its own, and every physical line is counted on the way, so
//! that memory stays bounded at any file size and the records read can be
//! reconciled with the lines the file has.
//!
//! One scanner ([`Scanner`]) reads quotes as the csv reader does: a field
//! is quoted when it starts with `"`, `""` inside it is a quote, text after
//! its closing quote belongs to it, and a line break inside it continues
//! the record. It finds where chunks may end, counts lines (record lines,
//! continuations, blank lines) and remembers where an open quote opened.

use super::ingest::{Encoding, LineAccount};
use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

/// Bytes read at a time; a chunk is at most this plus the rest of the
/// record it cuts. Three groups of chunks are in memory at once (one
/// parsed on every core while the group before is added to the sorts and
/// the group after is read), each with its decoded text and its rows:
/// 2 MiB keeps an ingest of a dataset with personal fields (GBK, three
/// personal fields, two indexes) near 190 MiB at its peak, at 11 million
/// rows as at 3 million. With 4 MiB chunks the same pipeline reached
/// 335 MiB (and 250 MiB without it, where a group was added only after
/// it was parsed, the cores waiting meanwhile); BENCHMARKS.md.
pub const CHUNK_BYTES: usize = 2 << 20;

/// The longest record ingest holds (all its lines together): a longer
/// one is refused, naming the line it starts on, before more of it is
/// read. No department record comes near it; a runaway quote does.
pub const MAX_RECORD_BYTES: usize = 32 << 20;

/// The quote and line state of a file read so far.
#[derive(Debug, Clone)]
pub struct Scanner {
    /// Whether quotes mean anything (CSV) or not (JSON Lines).
    csv: bool,
    /// What separates a CSV file's fields (a quote opens a field only
    /// after it or a line end).
    delimiter: u8,
    quoted: bool,
    field_start: bool,
    line_empty: bool,
    /// The last byte was a `\r`: a `\n` right after it ends no new line.
    after_cr: bool,
    /// Line ends seen.
    lines: u64,
    continuations: u64,
    blank: u64,
    /// The line (from 1) a quote still open opened on.
    quote_line: u64,
    /// Bytes scanned.
    offset: u64,
    /// The last place a chunk may end (just after a line end outside
    /// quotes), as a file offset, and the line ends before it.
    boundary: Option<(u64, u64)>,
    /// The text is GBK and the delimiter a byte that can be the second of
    /// a GBK character (`|`): each byte from 0x81 up is read with the one
    /// after it, as one character ([`Scanner::pair_gbk`]).
    gbk: bool,
    /// The next byte is the second of a GBK character.
    trail: bool,
}

impl Scanner {
    pub fn new(csv: bool) -> Scanner {
        Scanner {
            csv,
            delimiter: b',',
            quoted: false,
            field_start: true,
            line_empty: true,
            after_cr: false,
            lines: 0,
            continuations: 0,
            blank: 0,
            quote_line: 0,
            offset: 0,
            boundary: None,
            gbk: false,
            trail: false,
        }
    }

    /// Reads the text from here on as GBK whose characters' second bytes
    /// may equal the delimiter: only a delimiter byte of its own then
    /// separates fields (a quote after the second byte of a character is
    /// text, not the start of a quoted field).
    pub fn pair_gbk(&mut self) {
        self.gbk = true;
    }

    /// Reads the next bytes of the file.
    pub fn scan(&mut self, bytes: &[u8]) {
        if self.gbk {
            // Whether a byte is a delimiter depends on the bytes before it.
            self.scan_bytes(bytes);
        } else if !self.quoted && (!self.csv || memchr::memchr(b'"', bytes).is_none()) {
            self.scan_unquoted(bytes);
        } else {
            self.scan_bytes(bytes);
        }
        self.offset += bytes.len() as u64;
    }

    /// [`Scanner::scan`] of bytes without a quote, outside quotes: only
    /// line ends matter, found a word at a time.
    fn scan_unquoted(&mut self, bytes: &[u8]) {
        let mut from = 0;
        for at in memchr::memchr2_iter(b'\r', b'\n', bytes) {
            if at > from {
                self.line_empty = false;
                self.after_cr = false;
            }
            let b = bytes[at];
            if b == b'\n' && self.after_cr {
                self.after_cr = false;
                self.boundary = Some((self.offset + at as u64 + 1, self.lines));
                from = at + 1;
                continue;
            }
            self.lines += 1;
            if self.line_empty {
                self.blank += 1;
            }
            if b == b'\n' || bytes.get(at + 1).is_some_and(|&c| c != b'\n') {
                self.boundary = Some((self.offset + at as u64 + 1, self.lines));
            }
            self.after_cr = b == b'\r';
            self.line_empty = true;
            from = at + 1;
        }
        if bytes.len() > from {
            self.line_empty = false;
            self.after_cr = false;
        }
        if let Some(&last) = bytes.last() {
            self.field_start = matches!(last, b'\r' | b'\n') || last == self.delimiter;
        }
    }

    fn scan_bytes(&mut self, bytes: &[u8]) {
        let mut i = 0;
        let n = bytes.len();
        while i < n {
            let b = bytes[i];
            // A GBK character's second byte is 0x40 and up (0x30 to 0x39 in
            // GB18030's four-byte ones); a byte below is not one (the text
            // is not GBK there, which its decoding then names).
            let second = std::mem::take(&mut self.trail) && b >= 0x30;
            if second || (self.gbk && b >= 0x81) {
                self.trail = !second;
                self.after_cr = false;
                self.line_empty = false;
                self.field_start = false;
                i += 1;
                continue;
            }
            if b == b'\n' && self.after_cr {
                // The `\n` of a `\r\n`: the line was counted at the `\r`.
                self.after_cr = false;
                if !self.quoted {
                    self.boundary = Some((self.offset + i as u64 + 1, self.lines));
                }
                i += 1;
                continue;
            }
            self.after_cr = false;
            if b == b'\r' || b == b'\n' {
                self.lines += 1;
                if self.quoted {
                    self.continuations += 1;
                } else {
                    if self.line_empty {
                        self.blank += 1;
                    }
                    self.field_start = true;
                    // After a `\r`, only once the next byte is known not to
                    // be a `\n` (which belongs to this line end).
                    if b == b'\n' || bytes.get(i + 1).is_some_and(|&c| c != b'\n') {
                        self.boundary = Some((self.offset + i as u64 + 1, self.lines));
                    }
                }
                self.after_cr = b == b'\r';
                self.line_empty = true;
                i += 1;
                continue;
            }
            self.line_empty = false;
            if self.csv && b == b'"' {
                if self.quoted && bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                if self.quoted || self.field_start {
                    self.quoted = !self.quoted;
                    if self.quoted {
                        self.quote_line = self.lines + 1;
                    }
                }
            }
            self.field_start = !self.quoted && b == self.delimiter;
            i += 1;
        }
    }

    /// Whether a quoted field is open at the end of what was scanned, and
    /// the line it opened on.
    pub fn open_quote(&self) -> Option<u64> {
        self.quoted.then_some(self.quote_line)
    }

    /// Lines of the file so far (a last line without a line end counts).
    pub fn lines_seen(&self) -> u64 {
        self.lines + u64::from(!self.line_empty)
    }

    /// The file's lines, with `records` records read after a one-line
    /// header and `spaces` lines of spaces (blank, though not empty); why
    /// not, if they do not add up.
    pub fn account(&self, records: u64, spaces: u64) -> std::result::Result<LineAccount, String> {
        let account = LineAccount {
            lines: self.lines_seen(),
            header: 1,
            records,
            continuations: self.continuations,
            blank: self.blank + spaces,
        };
        let counted = account.header + account.records + account.continuations + account.blank;
        if counted == account.lines {
            Ok(account)
        } else {
            Err(format!(
                "the file has {} lines, but {counted} are accounted for (the header, {} records, {} continuation lines inside quoted fields, {} blank lines): lines would be lost; nothing was ingested",
                account.lines, account.records, account.continuations, account.blank
            ))
        }
    }
}

/// A piece of a file that ends where a record ends.
pub struct Chunk {
    pub bytes: Vec<u8>,
    /// Line ends before it in the file: its first line is `lines_before + 1`.
    pub lines_before: u64,
    pub first: bool,
    pub last: bool,
}

/// Cuts a file into [`Chunk`]s, hashing every byte it reads.
pub struct Chunker<'r> {
    input: &'r mut dyn Read,
    path: &'r Path,
    scanner: Scanner,
    sha256: Sha256,
    /// Bytes read and not yet handed out; `start` is the file offset of
    /// its first byte.
    buf: Vec<u8>,
    start: u64,
    lines_before: u64,
    first: bool,
    done: bool,
    /// Bytes read at a time ([`CHUNK_BYTES`]).
    read_size: usize,
    /// A CSV file's delimiter is still to be told from its first line
    /// ([`sniff_delimiter`]): nothing is scanned until that line is read.
    sniffing: bool,
    /// Whether the scanner reads GBK characters' bytes in pairs
    /// ([`Chunker::settle_pairs`]); `None` while `--encoding auto` has
    /// seen nothing but ASCII.
    gbk: Option<bool>,
}

/// Reads into `buf` until it is full or `input` ends; returns how many
/// bytes were read (fewer than `buf` holds only at the end).
pub fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The delimiters a CSV file's first line is looked at for, the comma
/// first. The first three are no byte of a GBK character's second half
/// (those are 0x40 and above), so the scanner, which reads the file's
/// bytes before they are decoded, finds the same fields as the decoded
/// text has; `|` can be one, and in a GBK file the scanner reads each
/// character's two bytes together ([`Scanner::pair_gbk`]).
pub const DELIMITERS: [u8; 4] = [b',', b'\t', b';', b'|'];

/// Whether `bytes` are not UTF-8 (a character cut short at their end
/// aside): text that `--encoding auto` reads as GBK.
fn invalid_utf8(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_err_and(|e| e.error_len().is_some())
}

/// How much text from its first byte that is not ASCII tells a file under
/// `--encoding auto` as GBK or UTF-8 for [`Chunker::settle_pairs`].
const SETTLE_BYTES: usize = 64;

/// How far into a file its first line is looked for to tell its delimiter.
const SNIFF_BYTES: usize = 1 << 16;

/// The delimiter of a CSV file whose first line (its header) starts
/// `bytes`: of [`DELIMITERS`], the one found most often outside quotes in
/// that line, the comma when it ties or none is found.
pub fn sniff_delimiter(bytes: &[u8]) -> u8 {
    let line = match memchr::memchr2(b'\r', b'\n', bytes) {
        Some(end) => &bytes[..end],
        None => bytes,
    };
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    // In a GBK line, a character's second byte may be a `|`.
    let gbk = invalid_utf8(line);
    let mut bytes = line.iter();
    while let Some(&b) = bytes.next() {
        if gbk && b >= 0x81 {
            bytes.next();
        } else if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
                counts[i] += 1;
            }
        }
    }
    let mut best = 0;
    for i in 1..DELIMITERS.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    DELIMITERS[best]
}

impl<'r> Chunker<'r> {
    pub fn new(input: &'r mut dyn Read, path: &'r Path, csv: bool) -> Chunker<'r> {
        Chunker {
            input,
            path,
            scanner: Scanner::new(csv),
            sha256: Sha256::new(),
            buf: Vec::new(),
            start: 0,
            lines_before: 0,
            first: true,
            done: false,
            read_size: CHUNK_BYTES,
            sniffing: false,
            gbk: Some(false),
        }
    }

    /// A CSV file's chunker whose fields are separated by `delimiter`, or
    /// by the delimiter its first line shows when `None`
    /// ([`sniff_delimiter`]), its text in `encoding` (UTF-16 is read as the
    /// UTF-8 a [`Utf16Reader`] hands out).
    pub fn csv(
        input: &'r mut dyn Read,
        path: &'r Path,
        delimiter: Option<u8>,
        encoding: Encoding,
    ) -> Chunker<'r> {
        let mut chunker = Chunker::new(input, path, true);
        match delimiter {
            Some(d) => chunker.scanner.delimiter = d,
            None => chunker.sniffing = true,
        }
        chunker.gbk = match encoding {
            Encoding::Gbk => Some(true),
            Encoding::Auto => None,
            Encoding::Utf8 | Encoding::Utf16le | Encoding::Utf16be => Some(false),
        };
        chunker
    }

    /// Before the bytes of `buf` from `from` on are scanned: whether the
    /// scanner reads GBK characters' bytes in pairs, which only a
    /// delimiter that can be a character's second byte (`|`) needs. A
    /// file named GBK is; under `--encoding auto`, one whose text from its
    /// first byte that is not ASCII is not UTF-8, told from at least
    /// [`SETTLE_BYTES`] of it (a few GBK characters can be UTF-8 too), read
    /// ahead if the read at hand ends sooner.
    fn settle_pairs(&mut self, from: usize) -> Result<()> {
        if self.scanner.delimiter < 0x40 {
            return Ok(());
        }
        if self.gbk.is_none() {
            let Some(first) = self.buf[from..].iter().position(|b| !b.is_ascii()) else {
                return Ok(());
            };
            let first = from + first;
            self.gbk = Some(loop {
                let text = &self.buf[first..];
                match std::str::from_utf8(text) {
                    Err(e) if e.error_len().is_some() => break true,
                    _ if text.len() >= SETTLE_BYTES => break false,
                    checked => {
                        let cut = checked.is_err();
                        let held = self.buf.len();
                        self.buf.resize(held + SETTLE_BYTES, 0);
                        let got = read_full(self.input, &mut self.buf[held..])
                            .map_err(|e| Error::file(self.path, e))?;
                        self.buf.truncate(held + got);
                        if got == 0 {
                            // The whole rest of the file: a character cut
                            // short at its end is not UTF-8.
                            break cut;
                        }
                    }
                }
            });
        }
        if self.gbk == Some(true) {
            self.scanner.pair_gbk();
        }
        Ok(())
    }

    /// What separates the fields of the CSV file being read (known once
    /// its first chunk is read).
    pub fn delimiter(&self) -> u8 {
        self.scanner.delimiter
    }

    /// Reads `n` bytes at a time instead of [`CHUNK_BYTES`] (tests cut
    /// small files into many chunks with it).
    pub fn with_read_size(mut self, n: usize) -> Self {
        self.read_size = n.max(1);
        self
    }

    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// The sha256 of every byte read (the whole file, once the last chunk
    /// was handed out).
    pub fn sha256(&self) -> String {
        hex::encode(self.sha256.clone().finalize())
    }

    /// Reads up to [`CHUNK_BYTES`] more; `false` at the end of the file.
    fn fill(&mut self) -> Result<bool> {
        let old = self.buf.len();
        self.buf.resize(old + self.read_size, 0);
        let filled = old
            + read_full(self.input, &mut self.buf[old..]).map_err(|e| Error::file(self.path, e))?;
        self.buf.truncate(filled);
        let scan_from = if !self.sniffing {
            Some(old)
        } else if filled == old
            || memchr::memchr2(b'\r', b'\n', &self.buf).is_some()
            || self.buf.len() >= SNIFF_BYTES
        {
            // The first line is here (or all there is of it): nothing was
            // handed out yet, so the buffer is the file from its start.
            self.sniffing = false;
            self.scanner.delimiter = sniff_delimiter(&self.buf);
            Some(0)
        } else {
            None
        };
        if let Some(from) = scan_from {
            // It may read a little further.
            self.settle_pairs(from)?;
        }
        self.sha256.update(&self.buf[old..]);
        if let Some(from) = scan_from {
            self.scanner.scan(&self.buf[from..]);
        }
        Ok(self.buf.len() > old)
    }

    /// The next chunk, or `None` after the last.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        loop {
            let more = self.fill()?;
            let boundary = self
                .scanner
                .boundary
                .filter(|(at, _)| *at > self.start)
                .map(|(at, lines)| ((at - self.start) as usize, lines));
            if !more {
                self.done = true;
                let bytes = std::mem::take(&mut self.buf);
                return Ok(Some(Chunk {
                    bytes,
                    lines_before: self.lines_before,
                    first: std::mem::replace(&mut self.first, false),
                    last: true,
                }));
            }
            match boundary {
                Some((cut, lines)) => {
                    let rest = self.buf.split_off(cut);
                    let bytes = std::mem::replace(&mut self.buf, rest);
                    let lines_before = std::mem::replace(&mut self.lines_before, lines);
                    self.start += cut as u64;
                    return Ok(Some(Chunk {
                        bytes,
                        lines_before,
                        first: std::mem::replace(&mut self.first, false),
                        last: false,
                    }));
                }
                None if self.buf.len() > MAX_RECORD_BYTES => {
                    let line = self.lines_before + 1;
                    let quote = match self.scanner.open_quote() {
                        Some(q) => format!(
                            "; a quote that opened on line {q} is still open, so every line after it would belong to one field (a quote inside a quoted field is written \"\")"
                        ),
                        None => String::new(),
                    };
                    return Err(Error::file(
                        self.path,
                        format!(
                            "line {line}: the record starting here runs past {} MiB, the most ingest reads as one record{quote}; nothing was ingested",
                            MAX_RECORD_BYTES >> 20
                        ),
                    ));
                }
                None => {}
            }
        }
    }
}

/// A UTF-16 file's byte order, told by its byte order mark or named with
/// `--encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utf16 {
    Le,
    Be,
}

impl Utf16 {
    /// The byte order a file starting with `head` ([`UTF16_HEAD`] bytes,
    /// or fewer when that is the whole file) is read in under `encoding`:
    /// the one named, or under `--encoding auto` the one its byte order
    /// mark shows, else the one its zero bytes show: no UTF-8 or GBK text
    /// has a zero byte, while UTF-16 writes each ASCII character (the
    /// delimiters, line ends and digits of any CSV file) with one, after
    /// it in little-endian order and before it in big-endian, so that
    /// nearly all zero bytes are on one side. `None`: not
    /// UTF-16. Excel's "Unicode Text" (Unicode 文本) export is UTF-16LE
    /// with a mark, and tab-separated.
    pub fn of(encoding: Encoding, head: &[u8]) -> Option<Utf16> {
        match encoding {
            Encoding::Utf16le => Some(Utf16::Le),
            Encoding::Utf16be => Some(Utf16::Be),
            Encoding::Auto if head.starts_with(Utf16::Le.mark()) => Some(Utf16::Le),
            Encoding::Auto if head.starts_with(Utf16::Be.mark()) => Some(Utf16::Be),
            Encoding::Auto => {
                let zeros_at = |parity: usize| {
                    head.iter()
                        .skip(parity)
                        .step_by(2)
                        .filter(|&&b| b == 0)
                        .count()
                };
                let (even, odd) = (zeros_at(0), zeros_at(1));
                // A character whose code ends or starts in a zero byte
                // puts one on the other side now and then.
                if odd >= 2 && odd > 4 * even {
                    Some(Utf16::Le)
                } else if even >= 2 && even > 4 * odd {
                    Some(Utf16::Be)
                } else {
                    None
                }
            }
            Encoding::Utf8 | Encoding::Gbk => None,
        }
    }

    fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            Utf16::Le => encoding_rs::UTF_16LE,
            Utf16::Be => encoding_rs::UTF_16BE,
        }
    }

    /// Its byte order mark.
    fn mark(self) -> &'static [u8] {
        match self {
            Utf16::Le => b"\xFF\xFE",
            Utf16::Be => b"\xFE\xFF",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Utf16::Le => "UTF-16LE",
            Utf16::Be => "UTF-16BE",
        }
    }
}

/// How much of a file's start [`Utf16::of`] looks at.
pub const UTF16_HEAD: usize = 256;

/// Bytes of a UTF-16 file read at a time by [`Utf16Reader`].
const UTF16_READ: usize = 1 << 20;

/// A UTF-16 file read as UTF-8 text, a piece at a time, so that the
/// scanner, the splitter and the parsers, which read bytes, find its
/// quotes, delimiters and line ends (which UTF-16 spreads over two bytes,
/// one of them zero). Its byte order mark is dropped; the file's own
/// bytes are hashed on the way (what the version records as its source).
/// Text that is not UTF-16 (a lone surrogate, an odd last byte) is an
/// error naming its line.
pub struct Utf16Reader<R> {
    input: R,
    order: Utf16,
    decoder: encoding_rs::Decoder,
    sha256: Sha256,
    /// The file's first two bytes (its byte order mark, if it has one).
    head: Vec<u8>,
    raw: Vec<u8>,
    /// Decoded text not yet handed out, from `at`.
    text: Vec<u8>,
    at: usize,
    /// Line ends in the text decoded before `text`.
    lines: u64,
    done: bool,
}

impl<R: Read> Utf16Reader<R> {
    pub fn new(input: R, order: Utf16) -> Utf16Reader<R> {
        Utf16Reader {
            input,
            order,
            decoder: order.encoding().new_decoder_with_bom_removal(),
            sha256: Sha256::new(),
            head: Vec::new(),
            raw: Vec::new(),
            text: Vec::new(),
            at: 0,
            lines: 0,
            done: false,
        }
    }

    /// Reads `n` bytes of the file at a time instead of 1 MiB (tests cut
    /// code units and surrogate pairs apart with it).
    pub fn with_read_size(mut self, n: usize) -> Self {
        self.raw = vec![0; n.max(1)];
        self
    }

    /// How the file was read, for the report: `detected` when its byte
    /// order was told by [`Utf16::of`] rather than named.
    pub fn describe(&self, detected: bool) -> String {
        match (self.head == self.order.mark(), detected) {
            (true, _) => format!("{} (with BOM)", self.order.name()),
            (false, true) => format!("{} (detected)", self.order.name()),
            (false, false) => self.order.name().to_string(),
        }
    }

    /// The sha256 of the file's bytes read so far (all of them once the
    /// text is read to its end).
    pub fn sha256(&self) -> String {
        hex::encode(self.sha256.clone().finalize())
    }

    /// Decodes the next bytes of the file into `text`; `false` at its end.
    fn decode_more(&mut self) -> std::io::Result<bool> {
        if self.raw.is_empty() {
            self.raw = vec![0; UTF16_READ];
        }
        let n = read_full(&mut self.input, &mut self.raw)?;
        let raw = &self.raw[..n];
        self.sha256.update(raw);
        for &b in raw.iter().take(2 - self.head.len().min(2)) {
            self.head.push(b);
        }
        let last = n == 0;
        self.lines += memchr::memchr_iter(b'\n', &self.text).count() as u64;
        self.text.clear();
        self.at = 0;
        let room = self
            .decoder
            .max_utf8_buffer_length_without_replacement(n)
            .ok_or_else(|| std::io::Error::other("a UTF-16 read too large to decode"))?;
        self.text.resize(room, 0);
        let (result, _, written) =
            self.decoder
                .decode_to_utf8_without_replacement(raw, &mut self.text, last);
        self.text.truncate(written);
        if let encoding_rs::DecoderResult::Malformed(..) = result {
            let line = self.lines + memchr::memchr_iter(b'\n', &self.text).count() as u64 + 1;
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "line {line}: is not valid {} (a surrogate without its pair, or an odd byte at the end); fix the file, or name its encoding with --encoding",
                    self.order.name()
                ),
            ));
        }
        if last {
            self.done = true;
        }
        Ok(!last || written > 0)
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.text.len() {
            if self.done || !self.decode_more()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.text.len() - self.at);
        buf[..n].copy_from_slice(&self.text[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// How a file's text is being decoded, as its chunks are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// `--encoding auto`, and nothing but ASCII so far.
    Undecided,
    Utf8 {
        bom: bool,
        detected: bool,
    },
    Gbk {
        detected: bool,
    },
}

impl Decoding {
    pub fn new(encoding: Encoding) -> Decoding {
        match encoding {
            Encoding::Auto => Decoding::Undecided,
            Encoding::Utf8 => Decoding::Utf8 {
                bom: false,
                detected: false,
            },
            Encoding::Gbk => Decoding::Gbk { detected: false },
            // Read through a [`Utf16Reader`], which hands out UTF-8.
            Encoding::Utf16le | Encoding::Utf16be => Decoding::Utf8 {
                bom: false,
                detected: false,
            },
        }
    }

    /// How the file was read, for the report.
    pub fn describe(&self) -> String {
        match self {
            Decoding::Undecided => "ASCII (valid UTF-8)".into(),
            Decoding::Utf8 { bom: true, .. } => "UTF-8 (with BOM)".into(),
            Decoding::Utf8 { detected: true, .. } => "UTF-8 (detected)".into(),
            Decoding::Utf8 { .. } => "UTF-8".into(),
            Decoding::Gbk { detected: true } => "GBK (detected: not valid UTF-8)".into(),
            Decoding::Gbk { .. } => "GBK".into(),
        }
    }

    /// Decodes one chunk (`lines_before` line ends precede it), settling
    /// the encoding on the first chunk that is not pure ASCII.
    pub fn decode<'a>(
        &mut self,
        path: &Path,
        chunk: &'a [u8],
        first: bool,
        lines_before: u64,
    ) -> Result<Cow<'a, str>> {
        let body = &chunk[self.bom_len(chunk, first)..];
        no_nul(path, body, lines_before)?;
        let checked = std::str::from_utf8(body);
        if self.settle(path, body, checked.as_ref().err(), lines_before)? {
            Ok(Cow::Borrowed(
                checked.expect("settled as UTF-8 only when valid"),
            ))
        } else {
            gbk(path, body, lines_before)
        }
    }

    /// [`Decoding::decode`] of a chunk given whole: UTF-8 text takes its
    /// bytes as they are, without a copy.
    pub fn decode_owned(
        &mut self,
        path: &Path,
        mut chunk: Vec<u8>,
        first: bool,
        lines_before: u64,
    ) -> Result<String> {
        let bom = self.bom_len(&chunk, first);
        chunk.drain(..bom);
        no_nul(path, &chunk, lines_before)?;
        match String::from_utf8(chunk) {
            Ok(text) if self.settle(path, text.as_bytes(), None, lines_before)? => Ok(text),
            Ok(text) => Ok(gbk(path, text.as_bytes(), lines_before)?.into_owned()),
            Err(e) => {
                let bytes = e.as_bytes();
                self.settle(path, bytes, Some(&e.utf8_error()), lines_before)?;
                Ok(gbk(path, bytes, lines_before)?.into_owned())
            }
        }
    }

    /// The length of a byte order mark that starts the file, when UTF-8 is
    /// possible (which a BOM then settles).
    fn bom_len(&mut self, chunk: &[u8], first: bool) -> usize {
        let utf8_possible = matches!(self, Decoding::Undecided | Decoding::Utf8 { .. });
        if first && utf8_possible && chunk.starts_with(b"\xEF\xBB\xBF") {
            *self = Decoding::Utf8 {
                bom: true,
                detected: false,
            };
            return 3;
        }
        0
    }

    /// Whether a chunk whose UTF-8 check gave `invalid` is read as UTF-8
    /// (else as GBK), settling an undecided encoding: text with no other
    /// byte than ASCII leaves it undecided, valid UTF-8 settles UTF-8,
    /// anything else GBK, unless it is mostly UTF-8 (a damaged UTF-8 file,
    /// refused by line and byte rather than read as GBK).
    fn settle(
        &mut self,
        path: &Path,
        body: &[u8],
        invalid: Option<&std::str::Utf8Error>,
        lines_before: u64,
    ) -> Result<bool> {
        let damaged = |e: &std::str::Utf8Error| not_utf8(path, body, e, lines_before);
        match (*self, invalid) {
            (Decoding::Gbk { .. }, _) => Ok(false),
            (Decoding::Utf8 { .. }, None) => Ok(true),
            (Decoding::Utf8 { .. }, Some(e)) => Err(damaged(e)),
            (Decoding::Undecided, None) => {
                if !body.is_ascii() {
                    *self = Decoding::Utf8 {
                        bom: false,
                        detected: true,
                    };
                }
                Ok(true)
            }
            (Decoding::Undecided, Some(e)) if mostly_utf8(body) => Err(damaged(e)),
            (Decoding::Undecided, Some(_)) => {
                *self = Decoding::Gbk { detected: true };
                Ok(false)
            }
        }
    }
}

/// Line (from 1) and byte of the line (from 1) of offset `at` of `body`.
fn line_and_column(body: &[u8], at: usize, lines_before: u64) -> (u64, usize) {
    let before = &body[..at];
    let line = lines_before + before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (line, at - line_start + 1)
}

fn gbk<'a>(path: &Path, body: &'a [u8], lines_before: u64) -> Result<Cow<'a, str>> {
    if let Some(text) = encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(body) {
        return Ok(text);
    }
    // Find the first bad sequence to name it.
    let mut decoder = encoding_rs::GBK.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(body.len() * 3 / 2 + 16);
    let (result, read) = decoder.decode_to_string_without_replacement(body, &mut out, true);
    let at = match result {
        encoding_rs::DecoderResult::Malformed(bad, after) => {
            read.saturating_sub(after as usize + bad as usize)
        }
        _ => read.min(body.len().saturating_sub(1)),
    };
    let (line, column) = line_and_column(body, at, lines_before);
    Err(Error::file(
        path,
        format!(
            "line {line}: byte {column} of the line (0x{:02X}) is neither valid UTF-8 nor valid GBK; fix the file or name its encoding with --encoding",
            body.get(at).copied().unwrap_or(0)
        ),
    ))
}

/// Whether text that is not valid UTF-8 is still mostly UTF-8: most of its
/// non-ASCII bytes form valid UTF-8 characters. Such a file is UTF-8 with
/// a few damaged bytes, not GBK (whose bytes seldom happen to be valid
/// UTF-8), and reading it as GBK would turn every character into another.
fn mostly_utf8(bytes: &[u8]) -> bool {
    let (mut valid, mut invalid) = (0usize, 0usize);
    for chunk in bytes.utf8_chunks() {
        valid += chunk.valid().bytes().filter(|b| !b.is_ascii()).count();
        invalid += chunk.invalid().len();
    }
    valid > 0 && valid >= invalid * 4
}

/// Refuses a NUL byte, which no UTF-8 or GBK text holds: the file is not
/// text, or it is UTF-16 read as another encoding. Stored, it would end a
/// value early in whatever reads it as a C string.
fn no_nul(path: &Path, body: &[u8], lines_before: u64) -> Result<()> {
    let Some(at) = body.iter().position(|&b| b == 0) else {
        return Ok(());
    };
    let (line, column) = line_and_column(body, at, lines_before);
    Err(Error::file(
        path,
        format!(
            "line {line}: byte {column} of the line is a NUL byte (0x00), which text does not hold: the file is not text, or it is UTF-16 (ingest it with --encoding utf-16le or utf-16be, or --encoding auto)"
        ),
    ))
}

/// An invalid UTF-8 sequence, named by line and byte of the line.
fn not_utf8(path: &Path, body: &[u8], e: &std::str::Utf8Error, lines_before: u64) -> Error {
    let at = e.valid_up_to();
    let (line, column) = line_and_column(body, at, lines_before);
    Error::file(
        path,
        format!(
            "line {line}: is not valid UTF-8 (byte {column} of the line, 0x{:02X}); fix the file, or if it is GBK, ingest it with --encoding gbk",
            body[at]
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Concat {
        fn concat_bytes(&self) -> Vec<u8>;
    }

    impl Concat for Vec<Chunk> {
        fn concat_bytes(&self) -> Vec<u8> {
            self.iter().flat_map(|c| c.bytes.clone()).collect()
        }
    }

    fn chunks_of(text: &[u8], csv: bool) -> (Vec<Chunk>, Scanner) {
        let mut input = text;
        let path = Path::new("t.csv");
        let mut c = Chunker::new(&mut input, path, csv);
        let mut out = Vec::new();
        while let Some(chunk) = c.next_chunk().unwrap() {
            out.push(chunk);
        }
        (out, c.scanner().clone())
    }

    #[test]
    fn utf16_is_read_as_the_same_utf8_whatever_the_reads_cut_apart() {
        // Surrogate pairs, CRLF, Chinese and ASCII: every read size cuts
        // some code unit or pair in two.
        let text = "a,\"b\r\n𠀀c\"\r\n中文,𝄞\n";
        for (order, big_endian) in [(Utf16::Le, false), (Utf16::Be, true)] {
            let mut bytes: Vec<u8> = Vec::new();
            for unit in std::iter::once(0xFEFF).chain(text.encode_utf16()) {
                bytes.extend(if big_endian {
                    unit.to_be_bytes()
                } else {
                    unit.to_le_bytes()
                });
            }
            for size in [1, 2, 3, 5, 64] {
                let mut reader = Utf16Reader::new(&bytes[..], order).with_read_size(size);
                let mut out = String::new();
                reader.read_to_string(&mut out).unwrap();
                assert_eq!(out, text, "{order:?} in reads of {size}");
                assert!(reader.describe(true).ends_with("(with BOM)"));
                assert_eq!(reader.sha256(), hex::encode(Sha256::digest(&bytes)));
            }
        }
        assert_eq!(Utf16::of(Encoding::Auto, b"id,name\n"), None);
        assert_eq!(Utf16::of(Encoding::Auto, "身份证号,x".as_bytes()), None);
        assert_eq!(Utf16::of(Encoding::Gbk, b"\xFF\xFEi\0"), None);
    }

    #[test]
    fn lines_are_counted_across_every_kind_of_line_end() {
        let text = b"h1,h2\r\na,\"x\r\ny\"\n\nb,c\rd,e";
        let (chunks, s) = chunks_of(text, true);
        assert_eq!(chunks.concat_bytes(), text);
        // Records a, b, d after the header.
        let a = s.account(3, 0).unwrap();
        assert_eq!((a.lines, a.continuations, a.blank), (6, 1, 1));
        assert!(s.account(4, 0).is_err());
        assert_eq!(s.open_quote(), None);
    }

    #[test]
    fn text_without_quotes_is_counted_as_byte_by_byte() {
        let texts: [&[u8]; 5] = [
            b"h\r\n\r\na,b\rc\n\nd",
            b"\n\n\r\r\n,\n",
            b"x,y\r",
            b"",
            b"a\r\nb\r\n",
        ];
        for text in texts {
            for cut in 0..=text.len() {
                let (a, b) = text.split_at(cut);
                let mut fast = Scanner::new(true);
                fast.scan(a);
                fast.scan(b);
                let mut slow = Scanner::new(true);
                slow.scan_bytes(a);
                slow.offset += a.len() as u64;
                slow.scan_bytes(b);
                slow.offset += b.len() as u64;
                assert_eq!(
                    format!("{fast:?}"),
                    format!("{slow:?}"),
                    "{text:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn an_open_quote_is_found_with_its_line() {
        let (_, s) = chunks_of(b"h\nok\n\"never\nclosed\nat all\n", true);
        assert_eq!(s.open_quote(), Some(3));
        // JSON Lines: quotes mean nothing.
        let (_, s) = chunks_of(b"{\"a\":\"b\"}\n\"\n", false);
        assert_eq!(s.open_quote(), None);
    }

    #[test]
    fn the_delimiter_is_the_one_the_first_line_shows_most_outside_quotes() {
        let cases: [(&[u8], u8); 9] = [
            (b"a,b,c\nx;y;z;w;v", b','),
            (b"a\tb\tc\r\n1,2,3,4", b'\t'),
            (b"a;b;c", b';'),
            (b"\"x;y;z\",b", b','),
            (b"single\n", b','),
            (b"", b','),
            (b"a;b,c", b','),
            (b"a\tb;c;d", b';'),
            // GBK 用人单位 and 年度, tab-separated.
            (b"\xd3\xc3\xc8\xcb\xb5\xa5\xce\xbb\t\xc4\xea\xb6\xc8", b'\t'),
        ];
        for (text, delimiter) in cases {
            assert_eq!(sniff_delimiter(text), delimiter, "{text:?}");
        }
    }

    /// A tab-separated file: quotes open after a tab, not after a comma
    /// (which is then text); its delimiter is told from its first line,
    /// however the file is cut into reads.
    #[test]
    fn a_tab_separated_file_is_scanned_by_its_own_delimiter() {
        let text: &[u8] = b"h1\th2\r\na,\"x\ty\nb\t\"c\nd\"\n";
        for read in [1, 2, 3, 7, 1 << 20] {
            let mut input = text;
            let mut c = Chunker::csv(&mut input, Path::new("t.txt"), None, Encoding::Auto)
                .with_read_size(read);
            let mut bytes = Vec::new();
            while let Some(chunk) = c.next_chunk().unwrap() {
                bytes.extend(chunk.bytes);
            }
            assert_eq!(bytes, text);
            assert_eq!(c.delimiter(), b'\t', "reads of {read}");
            // `a,"x` is text (no quote after a comma); `"c⏎d"` is one
            // field over two lines.
            let a = c.scanner().account(2, 0).unwrap();
            assert_eq!((a.lines, a.continuations), (4, 1), "reads of {read}");
            assert_eq!(c.scanner().open_quote(), None);
        }
        // Told the delimiter, the chunker does not look for it.
        let mut input = &b"a;b\n1;\"2\n3\"\n"[..];
        let mut c = Chunker::csv(&mut input, Path::new("t.csv"), Some(b','), Encoding::Auto);
        while c.next_chunk().unwrap().is_some() {}
        assert_eq!(c.delimiter(), b',');
        assert_eq!(c.scanner().open_quote(), None);
        assert_eq!(c.scanner().account(2, 0).unwrap().continuations, 0);
    }

    /// The chunks, the delimiter and the line account of `text` read
    /// `read` bytes at a time as `encoding`, `records` records in it.
    fn pipe_account(
        text: &[u8],
        encoding: Encoding,
        read: usize,
        records: u64,
    ) -> (u8, Option<u64>, LineAccount) {
        let mut input = text;
        let mut c =
            Chunker::csv(&mut input, Path::new("t.txt"), None, encoding).with_read_size(read);
        let mut bytes = Vec::new();
        while let Some(chunk) = c.next_chunk().unwrap() {
            bytes.extend(chunk.bytes);
        }
        assert_eq!(bytes, text, "reads of {read}");
        let account = c.scanner().account(records, 0).unwrap();
        (c.delimiter(), c.scanner().open_quote(), account)
    }

    /// `|` can be the second byte of a GBK character (億 is 0x83 0x7C): in a
    /// GBK file such a byte is text, and so is a quote after it, while a
    /// `|` of its own separates fields and a quote after it opens one;
    /// under `--encoding auto` the file is told GBK by its first text that
    /// is not ASCII, however the reads cut it. In UTF-8 every `|` byte is
    /// one, whatever bytes come before it.
    #[test]
    fn a_pipe_separated_gbk_file_reads_each_characters_two_bytes_together() {
        for header in ["名称|金额", "name|amount"] {
            let text = format!("{header}\n億\"元|1\n\"甲\n乙\"|2\n");
            let (gbk, _, _) = encoding_rs::GBK.encode(&text);
            assert!(gbk.windows(3).any(|w| w == b"\x83\x7c\""), "{gbk:?}");
            for encoding in [Encoding::Gbk, Encoding::Auto] {
                for read in [1, 2, 3, 5, 8, 1 << 20] {
                    let (delimiter, open, a) = pipe_account(&gbk, encoding, read, 2);
                    assert_eq!(delimiter, b'|', "{header}, reads of {read}");
                    assert_eq!(open, None, "{header}, {encoding:?}, reads of {read}");
                    assert_eq!((a.lines, a.continuations), (4, 1), "{encoding:?} {read}");
                }
            }
            // Read as UTF-8 by mistake, a quote after 億's `|` opens a field.
            let alone = format!("{header}\n億\"元|1\nx|2\n");
            let (alone, _, _) = encoding_rs::GBK.encode(&alone);
            let mut input = &alone[..];
            let mut c = Chunker::csv(&mut input, Path::new("t.txt"), None, Encoding::Utf8);
            while c.next_chunk().unwrap().is_some() {}
            assert_eq!(c.scanner().open_quote(), Some(2), "{header}");
            assert_eq!(pipe_account(&alone, Encoding::Auto, 3, 2).1, None);
        }
        // UTF-8: 中 (three bytes, the last two from 0x80 up) before a `|`.
        let text = "名称|金额\n中|\"甲\n乙\"\n中|中\n".as_bytes();
        for encoding in [Encoding::Utf8, Encoding::Auto] {
            for read in [1, 2, 4, 1 << 20] {
                let (delimiter, open, a) = pipe_account(text, encoding, read, 2);
                assert_eq!((delimiter, open), (b'|', None), "{encoding:?} {read}");
                assert_eq!((a.lines, a.continuations), (4, 1), "{encoding:?} {read}");
            }
        }
        // GBK 名称,金额 (comma-separated) has no `|` of its own: the one in
        // 億 does not make it `|`-separated.
        let (gbk, _, _) = encoding_rs::GBK.encode("名称,金额,億|\n");
        assert_eq!(sniff_delimiter(&gbk), b',');
        assert_eq!(sniff_delimiter(b"a|b|c,d\n"), b'|');
    }

    #[test]
    fn a_crlf_split_between_two_reads_is_one_line_end() {
        let mut s = Scanner::new(true);
        s.scan(b"h\r");
        s.scan(b"\na\r");
        s.scan(b"\n");
        assert_eq!(s.account(1, 0).unwrap().lines, 2);
        assert_eq!(s.boundary, Some((6, 2)));
    }

    #[test]
    fn decoding_settles_on_the_first_non_ascii_chunk() {
        let path = Path::new("t.csv");
        let mut d = Decoding::new(Encoding::Auto);
        assert_eq!(d.decode(path, b"id\n1\n", true, 0).unwrap(), "id\n1\n");
        assert_eq!(d, Decoding::Undecided);
        let (gbk, _, _) = encoding_rs::GBK.encode("张三\n");
        assert_eq!(d.decode(path, &gbk, false, 2).unwrap(), "张三\n");
        assert_eq!(d, Decoding::Gbk { detected: true });
        // UTF-8 with a damaged byte is named by line and column, never GBK.
        let mut d = Decoding::new(Encoding::Auto);
        let mut bad = "id\n张三李四王五\n".as_bytes().to_vec();
        bad[6] = 0xFF;
        let err = d.decode(path, &bad, true, 10).unwrap_err().to_string();
        assert!(err.contains("line 12") && err.contains("byte 4"), "{err}");
    }

    #[test]
    fn owned_decoding_reads_as_borrowed_decoding_does() {
        let path = Path::new("t.csv");
        let (gbk, _, _) = encoding_rs::GBK.encode("张三\n");
        let mut damaged = "id\n张三李四王五\n".as_bytes().to_vec();
        damaged[6] = 0xFF;
        let inputs: [&[u8]; 5] = [
            b"id\n1\n",
            "\u{feff}身份\n".as_bytes(),
            &gbk,
            &damaged,
            b"\xEF\xBB\xBFid\n",
        ];
        for encoding in [Encoding::Auto, Encoding::Utf8, Encoding::Gbk] {
            for input in inputs {
                let (mut a, mut b) = (Decoding::new(encoding), Decoding::new(encoding));
                let borrowed = a.decode(path, input, true, 3).map(|t| t.into_owned());
                let owned = b.decode_owned(path, input.to_vec(), true, 3);
                assert_eq!(
                    format!("{borrowed:?} {a:?}"),
                    format!("{owned:?} {b:?}"),
                    "{encoding:?} {input:?}"
                );
            }
        }
    }

    #[test]
    fn invalid_gbk_is_named_by_line_and_column() {
        let path = Path::new("t.csv");
        let mut d = Decoding::new(Encoding::Gbk);
        let err = d
            .decode(path, b"id\nab\x81\x20c\n", true, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("byte 3"), "{err}");
    }
}
