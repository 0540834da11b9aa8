//! The library's error type: every variant names the thing it is about.

use std::path::PathBuf;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the name of the file, dataset, model or entry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store {path}: {message}")]
    Store { path: PathBuf, message: String },

    #[error("store is in use by another jiandu process ({path}); stop it or use --store for another store")]
    StoreLocked { path: PathBuf },

    #[error(transparent)]
    Db(#[from] sled::Error),

    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },

    #[error("schema {path}: {message}")]
    Schema { path: String, message: String },

    #[error("dataset `{name}`: {message}")]
    Dataset { name: String, message: String },

    #[error("{}", crate::dataset::ingest::describe_rejection(.file, .errors, *.total, *.rows, .warnings))]
    IngestRejected {
        file: PathBuf,
        /// The problems described (up to the limit), in line order.
        errors: Vec<crate::dataset::ingest::RowError>,
        /// Problems in all.
        total: usize,
        /// Rows (lines) with at least one problem.
        rows: usize,
        /// Identifier-check warnings of the rows (up to the limit), shown
        /// too: they would have to be looked at once the errors are fixed.
        warnings: Vec<crate::dataset::ingest::RowError>,
    },

    #[error("model {model}: {message}")]
    Model { model: String, message: String },

    #[error("policy {path}: {message}")]
    Policy { path: PathBuf, message: String },

    #[error("run refused for {model}: {message}")]
    RunRefused { model: String, message: String },

    /// A run refused for its parameters: a usage error (exit code 2).
    #[error("run refused for {model}: {message}")]
    BadParams { model: String, message: String },

    #[error("ledger: {0}")]
    Ledger(String),

    #[error("leads: {0}")]
    Leads(String),

    #[error("{0}")]
    Other(String),

    /// An action a person asked for that the state of what it acts on
    /// does not allow (confirming a lead confirmed already): the message
    /// is for that person, as it is.
    #[error("{0}")]
    Refused(String),

    /// A long read for a run went past the run's deadline.
    #[error("dataset `{dataset}`: the run's wall time ran out while the host was reading it")]
    Deadline { dataset: String },
}

impl Error {
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.into(),
            message: message.to_string(),
        }
    }

    pub fn dataset(name: &str, message: impl std::fmt::Display) -> Self {
        Error::Dataset {
            name: name.to_string(),
            message: message.to_string(),
        }
    }

    pub fn model(model: &str, message: impl std::fmt::Display) -> Self {
        Error::Model {
            model: model.to_string(),
            message: message.to_string(),
        }
    }
}

impl From<sled::transaction::TransactionError<Error>> for Error {
    fn from(e: sled::transaction::TransactionError<Error>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => Error::Db(e),
        }
    }
}
