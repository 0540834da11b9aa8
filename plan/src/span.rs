//! Positions in a plan file: every node of a parsed plan keeps the line and
//! column where it was written, so that a type error or a run-time error
//! points a non-programmer at the exact spot.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A line and column in a plan file, both counted from 1; the column
/// counts characters (not bytes), as an editor shows it for Chinese text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
}

impl Pos {
    /// A position at `line`:`column`.
    pub fn new(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Turns byte offsets of one source text into [`Pos`]itions.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset at which each line starts.
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes the line starts of `text`.
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// The position of byte `offset` in `text` (clamped to its end).
    pub fn pos(&self, text: &str, offset: usize) -> Pos {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.starts[line];
        // A byte offset inside a multi-byte character counts as that character.
        let column = text[start..offset].chars().count();
        Pos::new(line as u32 + 1, column as u32 + 1)
    }
}

/// A value with the position it was written at. Equality and hashing
/// ignore the position: two plans that differ only in layout are equal.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub pos: Pos,
}

impl<T> Spanned<T> {
    /// `value` written at `pos`.
    pub fn new(value: T, pos: Pos) -> Self {
        Spanned { value, pos }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: fmt::Display> fmt::Display for Spanned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "a = 1\n名称 = \"x\"\n";
        let idx = LineIndex::new(text);
        assert_eq!(idx.pos(text, 0), Pos::new(1, 1));
        let x = text.find('"').unwrap();
        assert_eq!(idx.pos(text, x), Pos::new(2, 6));
        assert_eq!(idx.pos(text, text.len()), Pos::new(3, 1));
    }
}

/// Where a text value (an expression, a title template) sits in the plan
/// file, so that positions inside the text become file positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The position of the text's first character.
    pub start: Pos,
    /// Whether the text's characters are the file's characters one for
    /// one (no escapes); when not, every position inside it is `start`.
    pub exact: bool,
}

impl Origin {
    /// Text written verbatim starting at `start`.
    pub fn exact(start: Pos) -> Origin {
        Origin { start, exact: true }
    }

    /// The file position of byte `offset` of `text`.
    pub fn at(&self, text: &str, offset: usize) -> Pos {
        if !self.exact {
            return self.start;
        }
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        match before.rfind('\n') {
            None => Pos::new(
                self.start.line,
                self.start.column + before.chars().count() as u32,
            ),
            Some(nl) => Pos::new(
                self.start.line + before.matches('\n').count() as u32,
                before[nl + 1..].chars().count() as u32 + 1,
            ),
        }
    }
}
