//! Text that others wrote — models (lead titles, evidence, log lines,
//! panic and error messages), department files, other units' registries —
//! made safe to show a person.
//!
//! A terminal acts on control characters: ESC starts sequences that move
//! the cursor, recolour or retitle the window, rewrite the line above
//! (CR, BS) or, on some terminals, answer back; C1 characters (U+0080 to
//! U+009F, two bytes in UTF-8) do the same on terminals that honour them.
//! So a lead titled `\u{1b}[2J…` could clear the screen of a case handler
//! and print a lead of its own making. Bidirectional overrides and
//! isolates (U+202A–U+202E, U+2066–U+2069) make text show in another order
//! than it is stored, so they are escaped too. [`printable`] shows each
//! such character as a visible escape (`\u{1b}`); everything else, Chinese
//! included, passes through.
//!
//! A spreadsheet acts on a cell that starts like a formula: [`formula_safe`]
//! puts a `'` before such a cell, so that a CSV or XLSX file from Jiandu
//! never runs what a model wrote.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: C0 controls (tab and
/// newline included), DEL, C1 controls, and the bidirectional overrides
/// and isolates.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character [`is_unsafe`] written as a visible escape
/// (`\u{1b}` for ESC, `\u{a}` for a newline): one line, inert on any
/// terminal. Text without such characters is returned as it is. A
/// backslash is not escaped: the point is what a terminal does, not a
/// reversible encoding.
pub fn printable(text: &str) -> Cow<'_, str> {
    escape(text, is_unsafe)
}

/// Like [`printable`], but newlines and tabs stay: for messages of several
/// lines (a wasm backtrace, an error with its causes). A carriage return
/// is escaped, so no line can overwrite another.
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| is_unsafe(c) && !matches!(c, '\n' | '\t'))
}

fn escape(text: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = text.find(&unsafe_char) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text (as `serde_json` writes it) with the characters it leaves
/// raw that a terminal would act on — DEL, C1 controls, bidirectional
/// overrides and isolates — written as JSON escapes (`\u0085`). Such
/// characters can only be inside JSON strings, where the escape means the
/// same character: the value read back is unchanged. `serde_json` already
/// escapes C0 controls.
pub fn json_safe(json: String) -> String {
    if !json.contains(is_unsafe) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        // C0 controls do not occur: serde_json escaped them, and its
        // pretty printer's own newlines and spaces must stay.
        if is_unsafe(c) && u32::from(c) >= 0x20 {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `cell` as a spreadsheet cell that cannot run as a formula: a `'`
/// before a cell that starts with `=`, `+`, `@`, a tab or a carriage
/// return, with `-` when the cell is not a number (so `-12.50` stays a
/// number), or with the full-width `＝＋－＠` that spreadsheets in Chinese
/// take for their ASCII forms.
pub fn formula_safe(cell: &str) -> Cow<'_, str> {
    let risky = match cell.chars().next() {
        Some('=' | '+' | '@' | '\t' | '\r' | '＝' | '＋' | '－' | '＠') => true,
        // A lone `-` is the usual "none" placeholder, not a formula.
        Some('-') => cell != "-" && cell.parse::<f64>().is_err(),
        _ => false,
    };
    if risky {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A cell of a file a spreadsheet opens (CSV, XLSX): control characters
/// escaped but newlines and tabs kept ([`printable_lines`]), then made
/// [`formula_safe`].
pub fn spreadsheet_cell(cell: &str) -> Cow<'_, str> {
    match printable_lines(cell) {
        Cow::Borrowed(b) => formula_safe(b),
        Cow::Owned(o) => Cow::Owned(formula_safe(&o).into_owned()),
    }
}

/// Cuts text to at most `max` bytes on a character boundary, marking the cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(
            printable("a\u{1b}[31mred\u{7}\r\u{8}\u{7f}\u{9b}2J"),
            "a\\u{1b}[31mred\\u{7}\\u{d}\\u{8}\\u{7f}\\u{9b}2J"
        );
        assert_eq!(printable("two\nlines\tand"), "two\\u{a}lines\\u{9}and");
        assert_eq!(printable("\u{202e}txt.exe"), "\\u{202e}txt.exe");
    }

    #[test]
    fn plain_text_and_chinese_pass_through_unchanged_and_unallocated() {
        for text in ["", "残保金漏征 ＝ 120 元", "C:\\path\\u{1b}", "张*"] {
            assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn printable_lines_keeps_newlines_and_tabs_only() {
        assert_eq!(
            printable_lines("panicked: x\u{1b}]0;owned\u{7}\nwasm backtrace:\r\n\tat f"),
            "panicked: x\\u{1b}]0;owned\\u{7}\nwasm backtrace:\\u{d}\n\tat f"
        );
    }

    #[test]
    fn json_stays_json_and_reads_back_the_same() {
        let value = serde_json::json!({
            "title": "x\u{1b}[2J\u{85}\u{9b}\u{7f}\u{202e}\n残保金",
        });
        let text = json_safe(serde_json::to_string_pretty(&value).unwrap());
        assert!(
            !text.contains(|c: char| is_unsafe(c) && c != '\n'),
            "{text}"
        );
        assert!(
            text.contains("\\u0085") && text.contains("\\u009b"),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn cells_that_would_run_as_formulas_are_quoted() {
        assert_eq!(formula_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(formula_safe("+1"), "'+1");
        assert_eq!(formula_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(formula_safe("\tx"), "'\tx");
        assert_eq!(formula_safe("\rx"), "'\rx");
        assert_eq!(formula_safe("-12.50"), "-12.50");
        assert_eq!(formula_safe("-cmd"), "'-cmd");
        assert_eq!(formula_safe("-"), "-");
        assert_eq!(formula_safe("--1"), "'--1");
        assert_eq!(formula_safe("＝1+1"), "'＝1+1");
        assert_eq!(formula_safe("＋1"), "'＋1");
        assert_eq!(formula_safe("－1"), "'－1");
        assert_eq!(formula_safe("＠x"), "'＠x");
        assert_eq!(formula_safe("张*"), "张*");
        assert_eq!(formula_safe("a=b"), "a=b");
        assert_eq!(formula_safe(""), "");
    }

    #[test]
    fn spreadsheet_cells_are_escaped_then_quoted() {
        assert_eq!(spreadsheet_cell("=1\u{1b}"), "'=1\\u{1b}");
        assert_eq!(spreadsheet_cell("\r=1"), "\\u{d}=1");
        assert_eq!(spreadsheet_cell("line\nline"), "line\nline");
        assert_eq!(spreadsheet_cell("\tx"), "'\tx");
    }
}
