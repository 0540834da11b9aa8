//! Where a command's output goes: the terminal, or — when a running server
//! executes the command for a client — buffers sent back to the client, so
//! a command prints the same with or without a server.
//!
//! Everything printed passes through [`jiandu::text::printable_lines`]:
//! whatever a command prints — a model's panic message in an error, a
//! file's cell in an ingest error, a title from another unit's registry —
//! reaches the terminal with its control characters escaped, newlines and
//! tabs aside. Commands print no control characters of their own (colour
//! is left to `tracing` and the progress bars, which do not pass here).
//! Text that must stay on one line (a table cell, a log line) is escaped
//! whole with [`jiandu::text::printable`] before it gets here.

use jiandu::text::printable_lines;
use std::cell::RefCell;
use std::io::Write;

thread_local! {
    static CAPTURE: RefCell<Option<(Vec<u8>, Vec<u8>)>> = const { RefCell::new(None) };
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
    CAPTURE.with(|c| match &mut *c.borrow_mut() {
        Some((out, _)) => out.extend_from_slice(text.as_bytes()),
        None => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    })
}

/// Writes to the command's stderr.
pub fn err(args: std::fmt::Arguments<'_>) {
    let text = shown(args);
    CAPTURE.with(|c| match &mut *c.borrow_mut() {
        Some((_, err)) => err.extend_from_slice(text.as_bytes()),
        None => {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    })
}

/// Whether output is being captured (no terminal, no progress bars).
pub fn capturing() -> bool {
    CAPTURE.with(|c| c.borrow().is_some())
}

/// Runs `f` with this thread's output captured; returns what it printed.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<u8>, Vec<u8>) {
    CAPTURE.with(|c| *c.borrow_mut() = Some((Vec::new(), Vec::new())));
    let value = f();
    let (out, err) = CAPTURE
        .with(|c| c.borrow_mut().take())
        .expect("capture was set");
    (value, out, err)
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
