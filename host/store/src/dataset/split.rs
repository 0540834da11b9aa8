//! CSV records split out of text already decoded, as the csv crate (with
//! `flexible`, its default quoting, the file's delimiter and `\r`, `\n` or
//! `\r\n` ending records) splits them, but without copying each record and
//! checking its UTF-8 again: a chunk is checked once when it is decoded,
//! and every field starts and ends at an ASCII byte (the delimiter, `"`,
//! `\r`, `\n`), so it is a slice of the chunk's `&str`. Only a field with
//! `""` inside or text after its closing quote is built anew.
//!
//! The csv reader's rules, which these follow: line breaks before a record
//! are skipped (blank lines); a field starting with `"` is quoted, `""`
//! inside it is a quote, and text after its closing quote belongs to it; a
//! quote elsewhere is text; a quote never closed runs to the end. The
//! splitter also says when a field has text after its closing quote
//! ([`Splitter::text_after_quote`]), which ingest refuses: the quotes of
//! `"王"五` were text, and the csv reader drops them.

use std::borrow::Cow;

/// Reads records from a text, from a byte offset on.
pub(crate) struct Splitter<'t> {
    text: &'t str,
    pos: usize,
    /// What separates fields: an ASCII byte other than `"`, `\r`, `\n`.
    delimiter: u8,
    /// In the record last read: the first field with text other than
    /// spaces after its closing quote (`"王"五`), and that text.
    after_quote: Option<(usize, &'t str)>,
}

/// Where the unquoted field (or rest of a field) from `at` ends: its
/// delimiter or line break, or the end of `bytes`.
fn field_end(bytes: &[u8], at: usize, delimiter: u8) -> usize {
    memchr::memchr3(delimiter, b'\r', b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n)
}

impl<'t> Splitter<'t> {
    /// A splitter reading `text` from byte `pos`, where a record (or
    /// line breaks before one) starts, its fields separated by
    /// `delimiter`.
    pub(crate) fn new(text: &'t str, pos: usize, delimiter: u8) -> Splitter<'t> {
        debug_assert!(delimiter.is_ascii() && !matches!(delimiter, b'"' | b'\r' | b'\n'));
        Splitter {
            text,
            pos,
            delimiter,
            after_quote: None,
        }
    }

    /// Where the reader stands: past the byte that ended the last record
    /// (the csv reader's position).
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Reads the next record's fields into `fields`; `None` at the end.
    /// Returns where the reader stood before it (the csv reader's record
    /// position: line breaks before the record come after it).
    pub(crate) fn next_record(&mut self, fields: &mut Vec<Cow<'t, str>>) -> Option<usize> {
        fields.clear();
        self.after_quote = None;
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut at = start;
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        if at == bytes.len() {
            self.pos = at;
            return None;
        }
        loop {
            let (field, end, after) = self.field(at);
            if let Some(after) = after.filter(|_| self.after_quote.is_none()) {
                self.after_quote = Some((fields.len(), after));
            }
            fields.push(field);
            match bytes.get(end) {
                Some(&b) if b == self.delimiter => at = end + 1,
                // The `\n` of a `\r\n` is skipped before the next record.
                Some(_) => {
                    self.pos = end + 1;
                    return Some(start);
                }
                None => {
                    self.pos = end;
                    return Some(start);
                }
            }
        }
    }

    /// The field starting at `at`, where it ends (its delimiter or line
    /// break, or the end of the text), and the text after its closing
    /// quote when that is more than spaces.
    fn field(&self, at: usize) -> (Cow<'t, str>, usize, Option<&'t str>) {
        let bytes = self.text.as_bytes();
        if bytes.get(at) != Some(&b'"') {
            let end = field_end(bytes, at, self.delimiter);
            return (Cow::Borrowed(&self.text[at..end]), end, None);
        }
        let open = at + 1;
        let Some(close) = memchr::memchr(b'"', &bytes[open..]).map(|n| open + n) else {
            return (Cow::Borrowed(&self.text[open..]), bytes.len(), None);
        };
        match bytes.get(close + 1) {
            None | Some(b'\r' | b'\n') => (Cow::Borrowed(&self.text[open..close]), close + 1, None),
            Some(&b) if b == self.delimiter => {
                (Cow::Borrowed(&self.text[open..close]), close + 1, None)
            }
            Some(_) => self.quoted_field(open),
        }
    }

    /// A quoted field (its text from `open` on) with `""` inside or text
    /// after its closing quote.
    fn quoted_field(&self, open: usize) -> (Cow<'t, str>, usize, Option<&'t str>) {
        let (text, bytes) = (self.text, self.text.as_bytes());
        let mut out = String::new();
        let mut at = open;
        loop {
            let Some(close) = memchr::memchr(b'"', &bytes[at..]).map(|n| at + n) else {
                out.push_str(&text[at..]);
                return (Cow::Owned(out), bytes.len(), None);
            };
            out.push_str(&text[at..close]);
            if bytes.get(close + 1) != Some(&b'"') {
                at = close + 1;
                break;
            }
            out.push('"');
            at = close + 2;
        }
        // Past the closing quote the field goes on unquoted.
        let end = field_end(bytes, at, self.delimiter);
        let after = &text[at..end];
        out.push_str(after);
        let after = (!after.trim().is_empty()).then_some(after);
        (Cow::Owned(out), end, after)
    }

    /// In the record last read, the first field with text other than
    /// spaces after its closing quote, and that text: a quote the file
    /// meant as text (`"王"五`, which the csv reader reads as `王五`).
    pub(crate) fn text_after_quote(&self) -> Option<(usize, &'t str)> {
        self.after_quote
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records and positions as the csv crate reads them (the way ingest
    /// read CSV before), from byte `from`.
    fn by_csv(text: &str, from: usize) -> Vec<(usize, Vec<String>, usize)> {
        by_csv_with(text, from, b',')
    }

    fn by_csv_with(text: &str, from: usize, delimiter: u8) -> Vec<(usize, Vec<String>, usize)> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(&text.as_bytes()[from..]);
        let mut record = csv::StringRecord::new();
        let mut out = Vec::new();
        while reader.read_record(&mut record).unwrap() {
            let start = from + record.position().unwrap().byte() as usize;
            let end = from + reader.position().byte() as usize;
            out.push((start, record.iter().map(str::to_string).collect(), end));
        }
        out
    }

    fn by_splitter(text: &str, from: usize) -> Vec<(usize, Vec<String>, usize)> {
        by_splitter_with(text, from, b',')
    }

    fn by_splitter_with(
        text: &str,
        from: usize,
        delimiter: u8,
    ) -> Vec<(usize, Vec<String>, usize)> {
        let mut splitter = Splitter::new(text, from, delimiter);
        let mut fields = Vec::new();
        let mut out = Vec::new();
        while let Some(start) = splitter.next_record(&mut fields) {
            let fields = fields.iter().map(|f| f.to_string()).collect();
            out.push((start, fields, splitter.position()));
        }
        out
    }

    #[test]
    fn tricky_quoting_splits_as_the_csv_crate_splits_it() {
        let cases = [
            "",
            "\n\r\n\r",
            "a",
            "a,",
            ",",
            "a,b\nc,d",
            "a,b\r\nc,d\r\n",
            "a\r\rb\n\nc",
            "\"a,b\",c\n",
            "\"a\"\"b\",\"\"\"\",\"\"",
            "\"a\"b,c",
            "\"a\"b\"c\",d",
            "ab\"c,\"d\"",
            "\"line\nbreak\",\"cr\r\nlf\"\nnext",
            "\"never closed,\nx",
            "\"a\"\"",
            "\"a\"",
            "\"\"",
            "\"",
            "阿克苏,\"华信，有限\",\"引\"\"号\"\"\"后,末\n",
            " a , \" b \" ,c \n",
        ];
        for text in cases {
            assert_eq!(by_splitter(text, 0), by_csv(text, 0), "{text:?}");
        }
    }

    #[test]
    fn random_texts_split_as_the_csv_crate_splits_them() {
        random_texts_split_alike(b',');
    }

    /// Tab- and semicolon-separated texts (with commas in them, which are
    /// then text) split as the csv crate splits them with that delimiter.
    #[test]
    fn other_delimiters_split_as_the_csv_crate_splits_them() {
        random_texts_split_alike(b'\t');
        random_texts_split_alike(b';');
        let text = "a\t\"b\tc\",d\n\"x\"\"\ty\"\tz";
        assert_eq!(
            by_splitter_with(text, 0, b'\t'),
            by_csv_with(text, 0, b'\t')
        );
        // Text after a closing quote belongs to the field, a comma too.
        assert_eq!(by_splitter_with(text, 0, b'\t')[0].1, ["a", "b\tc,d"]);
    }

    fn random_texts_split_alike(delimiter: u8) {
        let alphabet = ["a", ",", "\t", ";", "\"", "\r", "\n", "阿", " ", "\"\""];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            let mut text = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for _ in 0..x % 24 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text.push_str(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            assert_eq!(
                by_splitter_with(&text, 0, delimiter),
                by_csv_with(&text, 0, delimiter),
                "{text:?}"
            );
        }
    }

    #[test]
    fn reading_from_an_offset_skips_what_came_before() {
        let text = "h1,h2\r\na,\"b\"\"\"\r\n\r\nc,d";
        assert_eq!(by_splitter(text, 6), by_csv(text, 6));
        assert_eq!(by_splitter(text, 7), by_csv(text, 7));
    }
}
