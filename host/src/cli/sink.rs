//! Where a command's output goes: the terminal, or — when a running server
//! executes the command for a client — buffers sent back to the client, so
//! a command prints the same with or without a server.

use std::cell::RefCell;
use std::io::Write;

thread_local! {
    static CAPTURE: RefCell<Option<(Vec<u8>, Vec<u8>)>> = const { RefCell::new(None) };
}

/// Writes to the command's stdout.
pub fn out(args: std::fmt::Arguments<'_>) {
    CAPTURE.with(|c| match &mut *c.borrow_mut() {
        Some((out, _)) => {
            let _ = out.write_fmt(args);
        }
        None => {
            let _ = std::io::stdout().lock().write_fmt(args);
        }
    })
}

/// Writes to the command's stderr.
pub fn err(args: std::fmt::Arguments<'_>) {
    CAPTURE.with(|c| match &mut *c.borrow_mut() {
        Some((_, err)) => {
            let _ = err.write_fmt(args);
        }
        None => {
            let _ = std::io::stderr().lock().write_fmt(args);
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
