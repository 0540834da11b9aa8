//! Command-line interface: one file per subcommand, each with its arguments
//! (`clap` derive) and an `exec` that calls the library and prints.

#[macro_use]
pub mod sink;

mod audit;
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

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use jiandu::policy::Policy;
use jiandu::serve::api::{ApiRequest, ApiResponse};
use jiandu::serve::Server;
use jiandu::Store;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

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

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Demo(demo::Args),
    #[command(subcommand)]
    Dataset(dataset::Command),
    #[command(subcommand)]
    Model(model::Command),
    Run(run::Args),
    #[command(subcommand)]
    Leads(leads::Command),
    #[command(subcommand)]
    Audit(audit::Command),
    #[command(subcommand)]
    Unit(unit::Command),
    #[command(subcommand)]
    Trust(trust::Command),
    #[command(subcommand)]
    Registry(registry::Command),
    Serve(serve::Args),
    Status(status::Args),
}

/// Shared context of a command.
pub struct Ctx {
    store_path: PathBuf,
    config: Option<PathBuf>,
    pub operator: String,
    /// The running server, when the command runs inside it for a client.
    pub server: Option<Arc<Server>>,
}

impl Ctx {
    pub fn open(&self) -> Result<Store> {
        if let Some(server) = &self.server {
            return Ok(server.store.clone());
        }
        Store::open(&self.store_path)
            .with_context(|| format!("opening store {}", self.store_path.display()))
    }

    pub fn policy(&self, store: &Store) -> Result<Policy> {
        match &self.config {
            Some(path) => Ok(Policy::load_required(path)?),
            None => Ok(Policy::load(&store.policy_path())?),
        }
    }
}

pub fn main() -> ExitCode {
    // Everything this process creates is its owner's alone: the store and
    // every file in it (sled's included), the server's socket, and the
    // files it writes elsewhere (exports, bundles), which hold data about
    // people or a unit's work. Share one on purpose with chmod.
    // SAFETY: umask sets the process's file-creation mask and cannot fail.
    unsafe { libc::umask(0o077) };
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JIANDU_LOG")
                .unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
    let operator = cli
        .operator
        .clone()
        .unwrap_or_else(jiandu::run::default_operator);
    // A server holds the store: hand the command to it.
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Registry(registry::Command::Serve { .. })
    ) {
        let request = ApiRequest {
            args: std::env::args().skip(1).collect(),
            cwd: std::env::current_dir().unwrap_or_default(),
            operator: operator.clone(),
        };
        if let Some(reply) = jiandu::serve::api::call(&cli.store, &request) {
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
        store_path: cli.store,
        config: cli.config,
        operator,
        server: None,
    };
    finish(dispatch(&ctx, cli.command))
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
        Command::Registry(c) => registry::exec(ctx, c),
        Command::Serve(a) => serve::exec(ctx, a),
        Command::Status(a) => status::exec(ctx, a),
    }
}

fn finish(result: Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client's command inside the server, capturing what it prints.
/// Commands run one at a time: each runs in the client's working directory.
pub fn execute_in_server(server: &Arc<Server>, req: ApiRequest) -> ApiResponse {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let args = std::iter::once("jiandu".to_string()).chain(req.args.iter().cloned());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let text = e.render().to_string();
            let (stdout, stderr) = if e.use_stderr() {
                (String::new(), text)
            } else {
                (text, String::new())
            };
            return ApiResponse {
                code,
                stdout,
                stderr,
            };
        }
    };
    if matches!(cli.command, Command::Serve(_)) {
        return ApiResponse {
            code: 1,
            stdout: String::new(),
            stderr: format!(
                "error: a jiandu server is already running on {}\n",
                server.store.root().display()
            ),
        };
    }
    // Commands that take paths run one at a time, each in its client's
    // working directory; `status` and `run` take none and never wait.
    let _turn = (!matches!(cli.command, Command::Status(_) | Command::Run(_)))
        .then(|| ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner()));
    if let Err(e) = std::env::set_current_dir(&req.cwd) {
        return ApiResponse {
            code: 1,
            stdout: String::new(),
            stderr: format!(
                "error: the server cannot use the directory {}: {e}\n",
                req.cwd.display()
            ),
        };
    }
    let ctx = Ctx {
        store_path: server.store.root().to_path_buf(),
        config: cli.config,
        operator: cli.operator.unwrap_or(req.operator),
        server: Some(server.clone()),
    };
    let (code, out, err) = sink::capture(|| finish(dispatch(&ctx, cli.command)));
    ApiResponse {
        code: if code == ExitCode::SUCCESS { 0 } else { 1 },
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// A spinner on stderr that stays silent when stderr is not a terminal.
pub fn spinner(message: impl Into<String>) -> indicatif::ProgressBar {
    let target = if sink::capturing() {
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
