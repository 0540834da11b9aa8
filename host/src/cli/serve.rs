//! `jiandu serve`

use super::Ctx;
use anyhow::{Context, Result};
use jiandu::serve::{api, trigger, watch, Server};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Keep the store open, hot-reload models, run triggers, and answer the
/// other commands.
///
/// While it runs, `jiandu run`, `leads`, `dataset ingest`, `audit` and the
/// rest reach it over the Unix socket <store>/serve.sock and print the same
/// as without a server. Stop it with Ctrl-C or SIGTERM: runs in flight
/// finish, the store is flushed, and it exits 0.
///
/// Example: `jiandu serve --store /data/jiandu`
#[derive(clap::Args)]
pub struct Args {
    /// Quiet time after the last change to a model's files before it is
    /// reloaded, in milliseconds.
    #[arg(long, default_value_t = 300)]
    debounce_ms: u64,

    /// Seconds a client has to send its command once connected; a
    /// connection that sends nothing in this time is closed.
    #[arg(long, default_value_t = api::REQUEST_TIMEOUT.as_secs_f64())]
    client_timeout: f64,
}

pub fn exec(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let client_timeout = Duration::try_from_secs_f64(args.client_timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .with_context(|| {
            format!(
                "--client-timeout {} is not a positive number of seconds",
                args.client_timeout
            )
        })?;
    let socket = jiandu::serve::socket_path(&ctx.store_path);
    if api::is_running(&socket) {
        anyhow::bail!(
            "a jiandu server is already running on {}",
            ctx.store_path.display()
        );
    }
    // Open the store once, by its absolute path: nothing the server does
    // depends on its working directory.
    std::fs::create_dir_all(&ctx.store_path)
        .with_context(|| format!("creating store {}", ctx.store_path.display()))?;
    let root = ctx
        .store_path
        .canonicalize()
        .with_context(|| format!("store {}", ctx.store_path.display()))?;
    let store = jiandu::Store::open(&root)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .context("installing the signal handler")?;
    }
    let server = Server::start(store, ctx.config.clone(), ctx.operator.clone())?;
    let api_thread = api::listen(
        server.clone(),
        Arc::new(super::execute_in_server),
        client_timeout,
    )?;
    let watch_thread = watch::spawn(server.clone(), Duration::from_millis(args.debounce_ms))?;
    let trigger_thread = trigger::spawn(server.clone())?;
    let status = server.status();
    outln!(
        "jiandu serving {} (pid {}): {} models loaded; socket {}",
        root.display(),
        status.pid,
        status.models.len(),
        jiandu::serve::socket_path(&root).display()
    );
    outln!(
        "  policy {} ({})",
        status.policy.path,
        match status.policy.source {
            "file" => "read from the file",
            _ => "no file: the built-in defaults",
        }
    );
    for e in &status.recent {
        outln!("  {}", e.message);
    }
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    outln!("stopping: waiting for runs in flight");
    server.stop()?;
    let _ = api_thread.join();
    let _ = watch_thread.join();
    let _ = trigger_thread.join();
    outln!("stopped");
    Ok(ExitCode::SUCCESS)
}
