//! # jiandu-console: the browser console of a store
//!
//! Owns the pages people use every morning, served by `jiandu serve
//! --http`: logging in ([`login`]); reviewing leads — a list with facets,
//! search, sort, paging and export, a page per lead, and actions one at a
//! time or in bulk ([`leads`]); runs, models and datasets for admins
//! ([`admin`]); and the audit views for auditors ([`audit`]). Every page
//! has a JSON twin (the same URL with `.json` or `?format=json`) built
//! from the same data, so scripts see what people see.
//!
//! Pages are rendered on the server from templates checked when the crate
//! compiles (askama, HTML-escaped by default); the only script is a
//! vendored htmx for partial updates, and every page works without it.
//! Every asset is embedded in the binary: the console works on a network
//! with no internet.
//!
//! Every request is checked on the server: a live session (cookie
//! `HttpOnly; SameSite=Strict`), the person's role ([`users::Role::may`]),
//! and for every form the session's CSRF token and the console's own
//! origin ([`web`]). Actions on leads, logins and clear values shown are
//! ledger entries.
//!
//! Depends on the store, the record, the sandbox's catalog and the runs
//! layer; never on the binary. What only the server can do (start a run
//! of a loaded model, tell what it reloaded) comes through [`Host`].

pub mod admin;
pub mod audit;
pub mod leads;
pub mod login;
pub mod web;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use jiandu_runs::users;
use jiandu_store::Store;
use serde::Serialize;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the console asks of the server it runs in.
pub trait Host: Send + Sync + 'static {
    /// Runs the served version of `model` now, as `operator`: the run's
    /// id and outcome, or why it did not run.
    fn run(
        &self,
        model: &str,
        params: Vec<(String, String)>,
        operator: &str,
    ) -> Result<RunStarted, String>;

    /// The server's loads, reloads, rejections and unloads it remembers,
    /// oldest first.
    fn model_events(&self) -> Vec<ModelEvent>;
}

/// A run started from the console.
#[derive(Debug, Clone, Serialize)]
pub struct RunStarted {
    pub run_id: String,
    pub outcome: String,
    pub leads: Option<u64>,
    pub error: Option<String>,
}

/// One load, reload, rejection or unload of a model by the server.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEvent {
    pub at: String,
    pub model: String,
    pub action: String,
    pub version: Option<String>,
    pub message: String,
}

/// The console of one store.
pub struct Console {
    pub(crate) store: Store,
    pub(crate) host: Option<Arc<dyn Host>>,
    /// Cookies say `Secure` (the console is reached over HTTPS, through a
    /// proxy that terminates TLS).
    pub(crate) secure: bool,
    /// Password checks at once: each costs 19 MiB of Argon2 memory, so a
    /// flood of logins waits here rather than exhausting the machine.
    pub(crate) logins: tokio::sync::Semaphore,
    /// Leads as their snapshots hold them, read again only when a run
    /// replaced a snapshot.
    pub(crate) leads: leads::LeadsCache,
}

/// Password checks allowed at once.
const LOGINS_AT_ONCE: usize = 4;

impl Console {
    pub fn new(store: Store, host: Option<Arc<dyn Host>>, secure: bool) -> Console {
        Console {
            store,
            host,
            secure,
            logins: tokio::sync::Semaphore::new(LOGINS_AT_ONCE),
            leads: leads::LeadsCache::default(),
        }
    }
}

type App = Arc<Console>;

/// Every route of the console.
pub fn router(console: Console) -> Router {
    let app: App = Arc::new(console);
    Router::new()
        .route("/", get(home))
        .route("/login", get(login::form_page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/leads", get(leads::list))
        .route("/leads.json", get(leads::list))
        .route("/leads.xlsx", get(leads::export))
        .route("/leads/act", post(leads::act_bulk))
        .route("/lead", get(leads::show))
        .route("/lead.json", get(leads::show))
        .route("/lead/act", post(leads::act_one))
        .route("/lead/reveal", post(leads::reveal))
        .route("/runs", get(admin::runs))
        .route("/runs.json", get(admin::runs))
        .route("/run", get(admin::run))
        .route("/run.json", get(admin::run))
        .route("/models", get(admin::models))
        .route("/models.json", get(admin::models))
        .route("/model", get(admin::model))
        .route("/model.json", get(admin::model))
        .route("/model/run", post(admin::start_run))
        .route("/datasets", get(admin::datasets))
        .route("/datasets.json", get(admin::datasets))
        .route("/dataset/rollback", post(admin::rollback))
        .route("/audit", get(audit::dashboard))
        .route("/audit.json", get(audit::dashboard))
        .route("/audit/unit", get(audit::unit))
        .route("/audit/unit.json", get(audit::unit))
        .route("/assets/{name}", get(asset))
        .fallback(not_found)
        .with_state(app)
}

async fn asset(Path(name): Path<String>) -> Response {
    web::asset(&name)
}

async fn not_found(uri: Uri, headers: HeaderMap) -> Response {
    web::failure_response(
        &web::Failure::not_found("没有这个页面"),
        web::wants_json(&uri, &headers),
        false,
    )
}

/// `/`: the first page the person's role allows.
async fn home(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    web::page(app, headers, uri, &users::Action::ALL, |ctx| {
        let to = if ctx.user.may(users::Action::ReviewLeads) {
            "/leads"
        } else if ctx.user.may(users::Action::SeeAudit) {
            "/audit"
        } else {
            "/runs"
        };
        Ok(web::Reply::Redirect(to.into()))
    })
    .await
    .into_response()
}

/// Why the console may not listen on an address.
pub fn check_address(addr: SocketAddr, unprotected: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || unprotected {
        return Ok(());
    }
    Err(format!(
        "the console would listen on {addr}, which is not loopback, and it speaks plain HTTP: \
         passwords and leads would cross the network unprotected. Serve it on 127.0.0.1 behind \
         a proxy that terminates TLS (and give --http-secure-cookies), or pass --http-unprotected \
         to say the network is trusted"
    ))
}

/// The console listening on `listener` until `stop` is set: a thread of
/// its own with an async runtime, so the rest of the server stays
/// synchronous.
pub fn spawn(
    console: Console,
    listener: TcpListener,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .thread_name("jiandu-console")
        .build()?;
    std::thread::Builder::new()
        .name("jiandu-console".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("console: cannot listen: {e}");
                        return;
                    }
                };
                let app = router(console).into_make_service_with_connect_info::<SocketAddr>();
                let stopped = async move {
                    while !stop.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::error!("console: {e}");
                }
            });
        })
}
