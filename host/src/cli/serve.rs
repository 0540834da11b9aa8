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

    /// Also serve the browser console on this address (`HOST:PORT`, or a
    /// port on 127.0.0.1); `--http` alone means 127.0.0.1:8470. Anything
    /// but loopback needs --http-unprotected.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8470")]
    http: Option<String>,

    /// Let the console listen on an address other than loopback in plain
    /// HTTP: passwords and leads cross that network unprotected.
    #[arg(long, requires = "http")]
    http_unprotected: bool,

    /// Mark the console's cookies `Secure`: give it when a proxy in front
    /// terminates TLS, so browsers send them over HTTPS only.
    #[arg(long, requires = "http")]
    http_secure_cookies: bool,
}

/// `--http`'s address: `HOST:PORT`, or a port on loopback.
fn http_address(text: &str) -> Result<std::net::SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().with_context(|| {
        format!("--http {text}: not an address; give HOST:PORT (127.0.0.1:8470) or a port")
    })
}

/// What the console asks of the server.
struct ConsoleHost(Arc<Server>);

impl jiandu_console::Host for ConsoleHost {
    fn run(
        &self,
        model: &str,
        params: Vec<(String, String)>,
        operator: &str,
    ) -> std::result::Result<jiandu_console::RunStarted, String> {
        let r = self
            .0
            .run(model, params, operator)
            .map_err(|e| e.to_string())?;
        Ok(jiandu_console::RunStarted {
            run_id: r.run_id,
            outcome: r.outcome.as_str().to_string(),
            leads: Some(r.leads),
            error: r.failure.map(|f| f.kind.to_string()),
        })
    }

    fn model_events(&self) -> Vec<jiandu_console::ModelEvent> {
        self.0
            .events()
            .into_iter()
            .map(|e| jiandu_console::ModelEvent {
                at: e.at,
                model: e.model,
                action: format!("{:?}", e.action).to_lowercase(),
                version: e.version,
                message: e.message,
            })
            .collect()
    }
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
    let http = match &args.http {
        None => None,
        Some(text) => {
            let addr = http_address(text)?;
            jiandu_console::check_address(addr, args.http_unprotected)
                .map_err(|e| anyhow::anyhow!(e))?;
            Some(
                std::net::TcpListener::bind(addr)
                    .with_context(|| format!("the console cannot listen on {addr}"))?,
            )
        }
    };
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
    let console_thread = match http {
        None => None,
        Some(listener) => {
            let addr = listener.local_addr()?;
            let console = jiandu_console::Console::new(
                server.store.clone(),
                Some(Arc::new(ConsoleHost(server.clone()))),
                args.http_secure_cookies,
            );
            let t = jiandu_console::spawn(console, listener, stop.clone())
                .context("starting the console")?;
            outln!("  console on http://{addr}/");
            Some(t)
        }
    };
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
    if let Some(t) = console_thread {
        let _ = t.join();
    }
    outln!("stopped");
    Ok(ExitCode::SUCCESS)
}
