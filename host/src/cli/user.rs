//! `jiandu user add|list|disable|enable|reset|reveal`: the people who may
//! log in to the console (`jiandu::users`).

use super::output::{self, Format};
use super::Ctx;
use anyhow::{bail, Context, Result};
use jiandu::users::{self, Role};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Add a person who may log in to the console, with their role.
    ///
    /// The password is read from standard input when it is not a terminal
    /// (its first line), else asked for twice without echo. It must be at
    /// least 12 characters; only its Argon2id hash is stored.
    ///
    /// Roles: reviewer (sees and acts on leads), admin (also manages
    /// models, datasets and runs, and sees personal values in clear),
    /// auditor (sees the audit views only).
    ///
    /// Example: `printf '%s\n' "$PASSWORD" | jiandu user add 李明 --role reviewer`
    Add {
        /// The name they log in with: 1 to 64 characters, Chinese included.
        name: String,
        #[arg(long, value_enum)]
        role: Role,
    },
    /// List the people of this store (never their passwords or hashes).
    ///
    /// Example: `jiandu user list --format json`
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Stop a person from logging in; their open sessions end.
    ///
    /// Example: `jiandu user disable 李明`
    Disable { name: String },
    /// Let a disabled person log in again.
    ///
    /// Example: `jiandu user enable 李明`
    Enable { name: String },
    /// Give a person a new password (read as for `add`); clears a lockout
    /// after wrong passwords, and ends their open sessions.
    ///
    /// Example: `jiandu user reset 李明`
    Reset { name: String },
    /// Let a reviewer see personal values in clear, or take it back
    /// (admins see them by role; auditors cannot be given it).
    ///
    /// Example: `jiandu user reveal 李明 --allow`
    Reveal {
        name: String,
        /// Grant it.
        #[arg(long, conflicts_with = "deny", required_unless_present = "deny")]
        allow: bool,
        /// Take it back.
        #[arg(long)]
        deny: bool,
    },
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Add { name, role } => {
            let store = ctx.open()?;
            // Before asking for a password that would be refused anyway.
            users::check_available(&store, &name)?;
            let password = read_password(ctx, &name, "add")?;
            let user = users::add(&store, &name, role, &password, jiandu::time::now())?;
            outln!("added {} as {}", user.name, user.role);
        }
        Command::List { format } => {
            let store = ctx.open()?;
            let people = users::list(&store)?;
            if format == Format::Json {
                output::json(&people)?;
            } else {
                let now = jiandu::time::now();
                let rows: Vec<Vec<String>> = people
                    .into_iter()
                    .map(|u| {
                        let state = if u.disabled {
                            "disabled".to_string()
                        } else if let Some(until) = u.locked_at(now) {
                            format!("locked until {}", until.format("%Y-%m-%d %H:%M"))
                        } else {
                            "active".to_string()
                        };
                        // By role or by grant: what the console will allow.
                        let reveals = u.may(users::Action::RevealClear);
                        vec![
                            u.name,
                            u.role.to_string(),
                            if reveals { "yes" } else { "no" }.to_string(),
                            state,
                            u.failed_logins.to_string(),
                            u.created_at,
                            u.last_login_at.unwrap_or_default(),
                        ]
                    })
                    .collect();
                output::print(
                    format,
                    &[
                        "name",
                        "role",
                        "sees_clear",
                        "state",
                        "failed_logins",
                        "created_at",
                        "last_login_at",
                    ],
                    &rows,
                )?;
            }
        }
        Command::Disable { name } => {
            let store = ctx.open()?;
            let (user, changed) = users::disable(&store, &name)?;
            outln!(
                "{} {}: cannot log in, open sessions ended",
                if changed {
                    "disabled"
                } else {
                    "already disabled:"
                },
                user.name
            );
        }
        Command::Enable { name } => {
            let store = ctx.open()?;
            let (user, changed) = users::enable(&store, &name)?;
            outln!(
                "{} {}: can log in again",
                if changed {
                    "enabled"
                } else {
                    "already enabled:"
                },
                user.name
            );
        }
        Command::Reset { name } => {
            let store = ctx.open()?;
            if users::get(&store, &name)?.is_none() {
                // Before asking for a password that would go nowhere.
                bail!("there is no user `{name}`; `jiandu user list` shows who there is");
            }
            let password = read_password(ctx, &name, "reset")?;
            let user = users::reset_password(&store, &name, &password)?;
            outln!(
                "new password for {}; lockout cleared, open sessions ended",
                user.name
            );
        }
        Command::Reveal { name, allow, .. } => {
            let store = ctx.open()?;
            let user = users::set_reveal(&store, &name, allow)?;
            outln!(
                "{} {} see personal values in clear",
                user.name,
                if allow { "may now" } else { "may no longer" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The new password for `name`: the first line of standard input when it
/// is not a terminal, else typed twice without echo. Checked before it is
/// returned, so a bad one is refused before anything else happens.
fn read_password(ctx: &Ctx, name: &str, command: &str) -> Result<String> {
    if ctx.server.is_some() {
        bail!(
            "`jiandu user {command}` reads a password on this machine's terminal or standard input, which a running server cannot be handed; stop `jiandu serve` for this store, run it again, then start the server: nothing was changed"
        );
    }
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt(&format!("password for {name}: "))?;
        jiandu::users::check_password(name, &first)?;
        let again = prompt("the same password again: ")?;
        if first != again {
            bail!("the two passwords differ: nothing was changed");
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let password = line
            .strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line);
        if password.is_empty() {
            bail!("no password on standard input (its first line is the password): nothing was changed");
        }
        password.to_string()
    };
    jiandu::users::check_password(name, &password)?;
    Ok(password)
}

/// Asks on standard error and reads a line from the terminal on standard
/// input without echoing it.
fn prompt(question: &str) -> Result<String> {
    let mut err = std::io::stderr();
    write!(err, "{question}")?;
    err.flush()?;
    let line = {
        let _quiet = EchoOff::on_stdin().context("turning off the terminal's echo")?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    };
    writeln!(err)?;
    if line.is_empty() {
        bail!("no password typed (end of input): nothing was changed");
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// The terminal on standard input with echo off, until dropped.
///
/// Twenty lines of termios rather than a crate (`rpassword` does the
/// same): the binary already links `libc`.
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn on_stdin() -> std::io::Result<EchoOff> {
        let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the termios it is given when it returns
        // 0, which is checked before the value is read.
        let saved = unsafe {
            if libc::tcgetattr(libc::STDIN_FILENO, saved.as_mut_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            saved.assume_init()
        };
        let mut quiet = saved;
        quiet.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHONL);
        // SAFETY: a valid termios for a descriptor tcgetattr accepted.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read from the same descriptor.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved) };
    }
}
