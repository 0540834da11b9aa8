//! Errors: a plan that is wrong ([`PlanError`], at a line and column) and
//! a run that failed ([`RunError`], naming the step and the spot in the
//! plan that failed).

use crate::span::Pos;
use thiserror::Error;

/// A plan that cannot be parsed, checked or bound to parameters.
///
/// Displayed as `file:line:column: message`; the message says what was
/// expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{pos}: {message}")]
pub struct PlanError {
    /// The plan file, as the caller named it.
    pub file: String,
    /// Where in it.
    pub pos: Pos,
    /// What is wrong, and what was expected.
    pub message: String,
}

/// An error found at a position, before the file name is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub pos: Pos,
    pub message: String,
}

impl Located {
    pub(crate) fn new(pos: Pos, message: impl Into<String>) -> Self {
        Located {
            pos,
            message: message.into(),
        }
    }

    pub(crate) fn in_file(self, file: &str) -> PlanError {
        PlanError {
            file: file.to_owned(),
            pos: self.pos,
            message: self.message,
        }
    }
}

/// A failure while a row expression is evaluated (division by zero, an
/// overflow, text that is not a date).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{pos}: {message}")]
pub struct EvalError {
    /// The expression (or part of it) that failed.
    pub pos: Pos,
    /// What happened.
    pub message: String,
}

impl EvalError {
    pub(crate) fn new(pos: Pos, message: impl Into<String>) -> Self {
        EvalError {
            pos,
            message: message.into(),
        }
    }
}

/// An error reported by the host's side of a run: a dataset that could not
/// be read, a lead that could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct HostError(pub String);

/// A lookup that failed ([`RunError::Lookup`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{pos}: step `{step}`: looking up `{dataset}` by index `{index}` for {}: {error}", key_text(.key))]
pub struct LookupError {
    /// The plan file.
    pub file: String,
    /// The lookup step.
    pub step: String,
    /// Where its `key` is written.
    pub pos: Pos,
    /// The dataset.
    pub dataset: String,
    /// The index.
    pub index: String,
    /// The key looked up, as text; `None` when it is personal data, which
    /// messages do not show.
    pub key: Option<String>,
    /// The host's error.
    pub error: HostError,
}

fn key_text(key: &Option<String>) -> String {
    match key {
        Some(k) => format!("`{k}`"),
        None => "a personal key (not shown)".into(),
    }
}

/// A run that stopped. Nothing a run does panics on data: every failure is
/// one of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RunError {
    /// A row expression failed.
    #[error("{file}:{}: step `{step}`: {}", .error.pos, .error.message)]
    Eval {
        /// The plan file.
        file: String,
        /// The step whose expression failed.
        step: String,
        /// What failed, where.
        error: EvalError,
    },
    /// An input was not sorted on the key a merge needs.
    #[error("{file}:{pos}: step `{step}`: {message}")]
    Unsorted {
        /// The plan file.
        file: String,
        /// The step that merges.
        step: String,
        /// The step's position.
        pos: Pos,
        /// Which input, which keys.
        message: String,
    },
    /// Reading a dataset failed.
    #[error("reading dataset `{dataset}`: {error}")]
    Input {
        /// The dataset.
        dataset: String,
        /// The host's error.
        error: HostError,
    },
    /// Looking records up through an index failed: the host refused, or
    /// more records matched than one lookup returns.
    #[error("{0}")]
    Lookup(Box<LookupError>),
    /// A value from a dataset had another type than its schema says.
    #[error("dataset `{dataset}`, field `{field}`: expected {expected}, found {found}")]
    BadValue {
        /// The dataset.
        dataset: String,
        /// The field.
        field: String,
        /// The schema's type.
        expected: String,
        /// What came.
        found: String,
    },
    /// Writing a lead failed.
    #[error("emitting a lead: {0}")]
    Output(HostError),
}
