//! Command-line interface: one file per subcommand, each with its arguments
//! (`clap` derive) and an `exec` that calls the library and prints.

mod audit;
mod dataset;
mod demo;
mod leads;
mod model;
mod output;
mod run;
mod unit;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use jiandu::policy::Policy;
use jiandu::Store;
use std::path::PathBuf;
use std::process::ExitCode;

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
}

/// Shared context of a command.
pub struct Ctx {
    store_path: PathBuf,
    config: Option<PathBuf>,
    pub operator: String,
}

impl Ctx {
    pub fn open(&self) -> Result<Store> {
        Store::open(&self.store_path)
            .with_context(|| format!("opening store {}", self.store_path.display()))
    }

    pub fn policy(&self, store: &Store) -> Result<Policy> {
        let path = self.config.clone().unwrap_or_else(|| store.policy_path());
        Ok(Policy::load(&path)?)
    }
}

pub fn main() -> ExitCode {
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
    let ctx = Ctx {
        store_path: cli.store,
        config: cli.config,
        operator: cli.operator.unwrap_or_else(jiandu::run::default_operator),
    };
    let result = match cli.command {
        Command::Demo(a) => demo::exec(&ctx, a),
        Command::Dataset(c) => dataset::exec(&ctx, c),
        Command::Model(c) => model::exec(&ctx, c),
        Command::Run(a) => run::exec(&ctx, a),
        Command::Leads(c) => leads::exec(&ctx, c),
        Command::Audit(c) => audit::exec(&ctx, c),
        Command::Unit(c) => unit::exec(&ctx, c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A spinner on stderr that stays silent when stderr is not a terminal.
pub fn spinner(message: impl Into<String>) -> indicatif::ProgressBar {
    let pb =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("template"),
    );
    pb.set_message(message.into());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}
