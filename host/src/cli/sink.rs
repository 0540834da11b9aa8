//! Where a command's output goes: the terminal, or — when a running server
//! executes the command for a client — the client, line by line as it is
//! printed, so a command prints the same with or without a server.
//!
//! Everything printed passes through [`jiandu::text::printable_lines`]:
//! whatever a command prints — a model's panic message in an error, a
//! file's cell in an ingest error, a title from another unit's registry —
//! reaches the terminal with its control characters escaped, newlines and
//! tabs aside. Commands print no control characters of their own (colour
//! is left to `tracing` and the progress bars, which do not pass here).
//! Text that must stay on one line (a table cell, a log line) is escaped
//! whole with [`jiandu::text::printable`] before it gets here.

use jiandu::serve::api::{Live, Stream};
use jiandu::text::printable_lines;
use std::cell::RefCell;
use std::io::Write;

thread_local! {
    /// Where this thread's command output goes instead of the terminal: a
    /// client of the server, as it is printed.
    static CAPTURE: RefCell<Option<Live>> = const { RefCell::new(None) };
}

/// Sends `text` where this thread's output goes; `false` when it is not
/// captured (it goes to the terminal).
fn captured(which: Stream, text: &str) -> bool {
    CAPTURE.with(|c| match &mut *c.borrow_mut() {
        Some(live) => {
            live(which, text);
            true
        }
        None => false,
    })
}

/// `args` as they may be shown.
fn shown(args: std::fmt::Arguments<'_>) -> String {
    let text = match args.as_str() {
        Some(s) => s.to_string(),
        None => args.to_string(),
    };
    match printable_lines(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

/// Writes to the command's stdout.
pub fn out(args: std::fmt::Arguments<'_>) {
    let text = shown(args);
    if !captured(Stream::Stdout, &text) {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
}

/// Writes to the command's stderr.
pub fn err(args: std::fmt::Arguments<'_>) {
    let text = shown(args);
    if !captured(Stream::Stderr, &text) {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// Whether output is being captured (no terminal, no progress bars).
pub fn capturing() -> bool {
    CAPTURE.with(|c| c.borrow().is_some())
}

/// Runs `f` with this thread's output sent to `live` as it is printed (a
/// command run by the server for a client).
pub fn stream<T>(live: Live, f: impl FnOnce() -> T) -> T {
    CAPTURE.with(|c| *c.borrow_mut() = Some(live));
    let value = f();
    CAPTURE.with(|c| c.borrow_mut().take());
    value
}

/// `println!` for command output.
macro_rules! outln {
    () => { $crate::cli::sink::out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::sink::out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` for command output.
macro_rules! errln {
    () => { $crate::cli::sink::err(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::sink::err(format_args!("{}\n", format_args!($($arg)*))) };
}
