//! Command-line interface: one file per subcommand, each with its arguments
//! (`clap` derive) and an `exec` that calls the library and prints.

#[macro_use]
pub mod sink;

mod audit;
mod client;
mod dataset;
mod demo;
mod leads;
mod model;
mod output;
mod registry;
mod run;
mod serve;
mod status;
mod trust;
mod unit;
mod user;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use jiandu::policy::Policy;
use jiandu::serve::api::ApiRequest;
use jiandu::serve::Server;
use jiandu::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub use client::execute_in_server;

/// Jiandu (监督): run big-data legal supervision models in a sandbox over
/// department data, and keep a tamper-evident record of every run.
#[derive(Parser)]
#[command(name = "jiandu", version, about, long_about = None)]
#[command(
    after_help = "Start with `jiandu demo`: it generates sample data, runs the 残保金 model and verifies the ledger."
)]
pub struct Cli {
    /// Store folder (datasets, models, leads, ledger).
    #[arg(
        long,
        global = true,
        env = "JIANDU_STORE",
        default_value = "jiandu-store"
    )]
    store: PathBuf,

    /// Host policy file (default: jiandu.toml in the store).
    #[arg(long, global = true, env = "JIANDU_CONFIG")]
    config: Option<PathBuf>,

    /// Who is running the command, for the ledger (default: $JIANDU_OPERATOR or the login name).
    #[arg(long, global = true)]
    operator: Option<String>,

    /// More log output (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// No progress display and no log output but errors: only results
    /// (standard output) and problems (standard error).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate sample department data, run the four sample models and verify the ledger.
    Demo(demo::Args),
    /// Department datasets: ingest files, list, show, roll back, prune versions.
    #[command(subcommand)]
    Dataset(dataset::Command),
    /// Models: build, list, show, pack for sharing, import from a registry.
    #[command(subcommand)]
    Model(model::Command),
    /// Run a model in the sandbox over its datasets and keep its leads.
    Run(run::Args),
    /// Leads: list, export, mark resolved; personal values masked unless --clear.
    #[command(subcommand)]
    Leads(leads::Command),
    /// The ledger: log, show, verify, replay, export and import for central audit.
    #[command(subcommand)]
    Audit(audit::Command),
    /// This unit's identity and signing key.
    #[command(subcommand)]
    Unit(unit::Command),
    /// Publishers whose models this unit trusts.
    #[command(subcommand)]
    Trust(trust::Command),
    /// People who may log in to the console, and their roles.
    #[command(subcommand)]
    User(user::Command),
    /// Model registries on a folder or over HTTP: publish, search, yank, serve.
    #[command(subcommand)]
    Registry(registry::Command),
    /// Serve the store: hot-reload models, answer other jiandu commands, run triggers.
    Serve(serve::Args),
    /// What a running server has loaded, or what the store holds.
    Status(status::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Shared context of a command.
pub struct Ctx {
    store_path: PathBuf,
    config: Option<PathBuf>,
    pub operator: String,
    /// The folder the command was given in (the client's, when a server
    /// runs it): where a file it writes by default goes. Paths given as
    /// arguments are already absolute.
    pub cwd: PathBuf,
    /// The running server, when the command runs inside it for a client.
    pub server: Option<Arc<Server>>,
    /// The command may create the store when its folder does not exist.
    pub creates_store: bool,
}

impl Ctx {
    pub fn open(&self) -> Result<Store> {
        if let Some(server) = &self.server {
            return Ok(server.store.clone());
        }
        if !self.creates_store && !self.store_path.exists() {
            anyhow::bail!(
                "there is no store at {}: give --store (or $JIANDU_STORE) the folder of one; `jiandu demo`, `jiandu dataset ingest`, `jiandu model build`, `jiandu model import`, `jiandu unit init` and `jiandu serve` create one",
                self.store_path.display()
            );
        }
        Store::open(&self.store_path)
            .with_context(|| format!("opening store {}", self.store_path.display()))
    }

    pub fn policy(&self, store: &Store) -> Result<Policy> {
        match (&self.config, &self.server) {
            (Some(path), _) => Ok(Policy::load_required(path)?),
            // The policy the server runs under: its last good one when the
            // file broke, never the defaults.
            (None, Some(server)) => Ok(server.policy()),
            (None, None) => Ok(Policy::load(&store.policy_path())?),
        }
    }

    /// The store, if there is one: for a command that uses a store when
    /// it exists (its schemas, its policy) and works without one.
    pub fn open_existing(&self) -> Result<Option<Store>> {
        if self.server.is_some() || self.store_path.exists() {
            self.open().map(Some)
        } else {
            Ok(None)
        }
    }

    /// `path` as given in the command's folder.
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        self.cwd.join(path)
    }
}

pub fn main() -> ExitCode {
    // Everything this process creates is its owner's alone: the store and
    // every file in it (sled's included), the server's socket, and the
    // files it writes elsewhere (exports, bundles), which hold data about
    // people or a unit's work. Share one on purpose with chmod.
    // SAFETY: umask sets the process's file-creation mask and cannot fail.
    unsafe { libc::umask(0o077) };
    // Paths are made absolute as they are parsed, here as in a server that
    // runs the command for this process: nothing depends on which process's
    // working directory a path is read in.
    let cwd = std::env::current_dir().ok();
    let cli = match &cwd {
        Some(dir) => client::parse(std::env::args_os(), dir, true).unwrap_or_else(|e| e.exit()),
        None => Cli::parse(),
    };
    let filter = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    VERBOSE.store(cli.verbose, std::sync::atomic::Ordering::Relaxed);
    tracing_subscriber::fmt()
        .with_timer(Utc8)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JIANDU_LOG")
                .unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .init();
    let operator = cli
        .operator
        .clone()
        .unwrap_or_else(jiandu::run::default_operator);
    // A server holds the store: hand the command to it.
    if !matches!(
        cli.command,
        Command::Serve(_)
            | Command::Registry(registry::Command::Serve { .. })
            | Command::Completions { .. }
    ) {
        let request = cwd.as_ref().map(|dir| ApiRequest {
            args: std::env::args().skip(1).collect(),
            cwd: dir.clone(),
            operator: operator.clone(),
            config: cli.config.clone(),
        });
        let reply = match &request {
            Some(request) => jiandu::serve::api::call(&cli.store, request, &mut |which, text| {
                use jiandu::serve::api::Stream;
                use std::io::Write;
                let _ = match which {
                    Stream::Stdout => std::io::stdout().write_all(text.as_bytes()),
                    Stream::Stderr => std::io::stderr().write_all(text.as_bytes()),
                };
            }),
            None if jiandu::serve::api::is_running(&jiandu::serve::socket_path(&cli.store)) => {
                eprintln!(
                    "error: this folder no longer exists, and the server on {} resolves paths against it; change to another folder",
                    cli.store.display()
                );
                return ExitCode::FAILURE;
            }
            None => None,
        };
        if let Some(reply) = reply {
            return match reply {
                Ok(r) => {
                    use std::io::Write;
                    let _ = std::io::stdout().write_all(r.stdout.as_bytes());
                    let _ = std::io::stderr().write_all(r.stderr.as_bytes());
                    ExitCode::from(r.code.clamp(0, 255) as u8)
                }
                Err(e) => {
                    eprintln!(
                        "error: the server on {} did not answer: {e}",
                        cli.store.display()
                    );
                    ExitCode::FAILURE
                }
            };
        }
    }
    let ctx = Ctx {
        creates_store: creates_store(&cli.command),
        store_path: cli.store,
        config: cli.config,
        operator,
        cwd: cwd.unwrap_or_default(),
        server: None,
    };
    finish(dispatch(&ctx, cli.command))
}

/// Whether `command` may create the store it names: the commands that put
/// something into a new store. Every other command needs an existing one.
fn creates_store(command: &Command) -> bool {
    matches!(
        command,
        Command::Demo(_)
            | Command::Serve(_)
            | Command::Dataset(dataset::Command::Ingest(_))
            | Command::Model(model::Command::Build { .. } | model::Command::Import { .. })
            | Command::Unit(unit::Command::Init { .. })
            | Command::Trust(trust::Command::Add { .. })
    )
}

fn dispatch(ctx: &Ctx, command: Command) -> Result<ExitCode> {
    match command {
        Command::Demo(a) => demo::exec(ctx, a),
        Command::Dataset(c) => dataset::exec(ctx, c),
        Command::Model(c) => model::exec(ctx, c),
        Command::Run(a) => run::exec(ctx, a),
        Command::Leads(c) => leads::exec(ctx, c),
        Command::Audit(c) => audit::exec(ctx, c),
        Command::Unit(c) => unit::exec(ctx, c),
        Command::Trust(c) => trust::exec(ctx, c),
        Command::User(c) => user::exec(ctx, c),
        Command::Registry(c) => registry::exec(ctx, c),
        Command::Serve(a) => serve::exec(ctx, a),
        Command::Status(a) => status::exec(ctx, a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "jiandu", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn finish(result: Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e:#}");
            if matches!(
                e.downcast_ref::<jiandu::Error>(),
                Some(jiandu::Error::BadParams { .. })
            ) {
                // A usage error, like a bad flag.
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `--quiet`: no spinners.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How many `-v`.
static VERBOSE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// How a line a model logged is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelLine {
    Shown,
    Hidden,
    /// An info line of a partitioned run's part after the first, counted
    /// in one line instead (`-v` shows it).
    Folded,
}

/// How a line a model logged at `level` (by part `part` of a partitioned
/// run) is shown, as the host's own lines are: debug lines with `-v`;
/// with `--quiet` only warnings and errors; the info lines of parts after
/// the first with `-v`, folded otherwise.
pub fn model_line(level: &str, part: Option<usize>) -> ModelLine {
    let quiet = QUIET.load(std::sync::atomic::Ordering::Relaxed);
    let verbose = VERBOSE.load(std::sync::atomic::Ordering::Relaxed) > 0;
    match level {
        "debug" if quiet || !verbose => ModelLine::Hidden,
        "info" if quiet => ModelLine::Hidden,
        "info" if !verbose && part.is_some_and(|p| p > 1) => ModelLine::Folded,
        _ => ModelLine::Shown,
    }
}

/// Log lines carry the time as every record does: China Standard Time
/// with its offset (`jiandu::time`), not UTC.
struct Utc8;

impl tracing_subscriber::fmt::time::FormatTime for Utc8 {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", jiandu::time::now_text())
    }
}

/// A spinner on stderr that stays silent when stderr is not a terminal
/// (and with `--quiet`).
pub fn spinner(message: impl Into<String>) -> indicatif::ProgressBar {
    let target = if sink::capturing() || QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        indicatif::ProgressDrawTarget::hidden()
    } else {
        indicatif::ProgressDrawTarget::stderr()
    };
    let pb = indicatif::ProgressBar::with_draw_target(None, target);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("template"),
    );
    pb.set_message(message.into());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}
