//! `jiandu registry publish|search|yank|unyank|sign|serve`

use super::output::{self, Format};
use super::Ctx;
use anyhow::{bail, Context, Result};
use jiandu_registry::dir::{Change, DirRegistry};
use jiandu_registry::http::Server;
use jiandu_registry::index::{parse_spec, SignedIndex, YankAction, DEFAULT_VALID_DAYS};
use jiandu_registry::source::{search, Source};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Add a bundle (from `jiandu model pack`) to a registry folder, and
    /// sign the model's index with this store's unit key.
    ///
    /// The folder is created if needed; it can be a shared folder or a USB
    /// stick. The bundle's signature and digests are checked first, and it
    /// must be signed by this store's unit: the unit that packed a bundle
    /// publishes it. A version already there with the same files is left
    /// as it is; with other files it is refused. Each change signs the
    /// model's index again, one version higher, valid for --valid-days.
    ///
    /// Example: `jiandu registry publish disability-fund-arrears-1.0.0.jiandu --to /mnt/usb/registry`
    Publish {
        /// The bundle file.
        bundle: PathBuf,
        /// The registry folder.
        #[arg(long)]
        to: String,
        /// Days the signed index stays valid; importers refuse it after.
        #[arg(long, default_value_t = DEFAULT_VALID_DAYS)]
        valid_days: u32,
    },
    /// List the models of a registry (folder or URL), optionally only those
    /// whose name, title, description or publisher contains TEXT.
    ///
    /// Example: `jiandu registry search /mnt/usb/registry 残保金 --format json`
    Search {
        /// Registry folder or URL (`http://host:port` of `jiandu registry serve`).
        registry: String,
        text: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Withdraw a published version so that imports no longer pick it.
    ///
    /// Only the unit that published it can: the yank is written into the
    /// model's index, which is signed again with this store's unit key.
    /// Installed copies are not touched.
    ///
    /// Example: `jiandu registry yank disability-fund-arrears@1.1.0 --in /mnt/usb/registry --reason "wrong wage cap"`
    Yank {
        /// `name@version`.
        spec: String,
        /// The registry folder.
        #[arg(long = "in")]
        registry: String,
        #[arg(long)]
        reason: Option<String>,
        /// Days the signed index stays valid.
        #[arg(long, default_value_t = DEFAULT_VALID_DAYS)]
        valid_days: u32,
    },
    /// Restore a yanked version, so that imports may pick it again.
    ///
    /// Only the unit that published it can; the yank stays on the record
    /// in the index beside the un-yank.
    ///
    /// Example: `jiandu registry unyank disability-fund-arrears@1.1.0 --in /mnt/usb/registry --reason "the cap was right"`
    Unyank {
        /// `name@version`.
        spec: String,
        /// The registry folder.
        #[arg(long = "in")]
        registry: String,
        #[arg(long)]
        reason: Option<String>,
        /// Days the signed index stays valid.
        #[arg(long, default_value_t = DEFAULT_VALID_DAYS)]
        valid_days: u32,
    },
    /// Sign a model's index again, unchanged, one version higher and valid
    /// for --valid-days from now: before it expires, or after.
    ///
    /// Example: `jiandu registry sign disability-fund-arrears --in /mnt/usb/registry`
    Sign {
        /// The model's name.
        name: String,
        /// The registry folder.
        #[arg(long = "in")]
        registry: String,
        /// Days the signed index stays valid.
        #[arg(long, default_value_t = DEFAULT_VALID_DAYS)]
        valid_days: u32,
    },
    /// Serve a registry folder read-only over HTTP until stopped.
    ///
    /// Every command that reads a registry (`registry search`, `model
    /// import --from`) takes the printed URL in place of the folder.
    /// Bundles and indexes are verified by their signatures on import,
    /// however they travelled. Listens on 127.0.0.1 unless --listen says
    /// otherwise.
    ///
    /// Example: `jiandu registry serve /srv/registry --listen 0.0.0.0:7878`
    Serve {
        registry: PathBuf,
        /// Address to listen on; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: String,
    },
}

/// This store's unit key, which signs what a registry publishes.
fn unit_key(store: &jiandu::Store, what: &str) -> Result<jiandu_registry::keys::UnitKey> {
    match jiandu::unit::signing_key(store)? {
        Some(key) => Ok(key),
        None => bail!(
            "this store has no unit key to {what} with; only the publishing unit's store can (`jiandu unit init` makes one)"
        ),
    }
}

/// `index version N, valid until T`.
fn index_line(index: &SignedIndex) -> String {
    format!(
        "index version {}, valid until {}",
        index.signed.version, index.signed.expires
    )
}

/// `registry yank` and `registry unyank`.
fn set_yanked(
    ctx: &Ctx,
    action: YankAction,
    spec: &str,
    registry: &str,
    reason: Option<String>,
    valid_days: u32,
) -> Result<()> {
    let verb = match action {
        YankAction::Yank => "yank",
        YankAction::Unyank => "unyank",
    };
    let registry = writable(registry)?;
    let (name, req) = parse_spec(spec).map_err(anyhow::Error::msg)?;
    let version = spec
        .split_once('@')
        .and_then(|(_, v)| semver::Version::parse(v.trim()).ok())
        .with_context(|| {
            format!("name the exact version to {verb}: `{name}@1.2.0`, not `{spec}` ({req})")
        })?;
    let store = ctx.open()?;
    let key = unit_key(&store, verb)?;
    let now = jiandu::time::now_text();
    let changed = registry.set_yanked(
        &name,
        &version,
        action,
        &Change {
            key: &key,
            now: &now,
            reason: reason.as_deref(),
            valid_days,
        },
    )?;
    match (changed, action) {
        (Some(index), YankAction::Yank) => outln!(
            "yanked {name}@{version} in {}; imports no longer pick it ({})",
            registry.root().display(),
            index_line(&index)
        ),
        (Some(index), YankAction::Unyank) => outln!(
            "un-yanked {name}@{version} in {}; imports may pick it again ({})",
            registry.root().display(),
            index_line(&index)
        ),
        (None, YankAction::Yank) => outln!("{name}@{version} was already yanked"),
        (None, YankAction::Unyank) => outln!("{name}@{version} is not yanked"),
    }
    Ok(())
}

/// A registry that can be written: a folder, not a URL.
fn writable(text: &str) -> Result<DirRegistry> {
    match Source::parse(text)? {
        Source::Http(_) => {
            bail!("{text} is a served registry and is read-only; publish and yank in its folder")
        }
        Source::File(p) => bail!("{} is a file, not a registry folder", p.display()),
        Source::Dir(d) => Ok(d),
    }
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Publish {
            bundle,
            to,
            valid_days,
        } => publish(ctx, &bundle, &to, valid_days)?,
        Command::Search {
            registry,
            text,
            format,
        } => search_registry(&registry, text.as_deref(), format)?,
        Command::Yank {
            spec,
            registry,
            reason,
            valid_days,
        } => set_yanked(ctx, YankAction::Yank, &spec, &registry, reason, valid_days)?,
        Command::Unyank {
            spec,
            registry,
            reason,
            valid_days,
        } => set_yanked(
            ctx,
            YankAction::Unyank,
            &spec,
            &registry,
            reason,
            valid_days,
        )?,
        Command::Sign {
            name,
            registry,
            valid_days,
        } => sign(ctx, &name, &registry, valid_days)?,
        Command::Serve { registry, listen } => serve(ctx, &registry, &listen)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `registry publish`: adds a bundle to a folder registry and signs the model's index.
fn publish(ctx: &Ctx, bundle: &std::path::Path, to: &str, valid_days: u32) -> Result<()> {
    let registry = writable(to)?;
    let bytes = std::fs::read(bundle).with_context(|| format!("reading {}", bundle.display()))?;
    let store = ctx.open()?;
    let key = unit_key(&store, "publish")?;
    let published = registry.publish(
        &bytes,
        &bundle.display().to_string(),
        &key,
        &jiandu::time::now_text(),
        valid_days,
    )?;
    let e = &published.entry;
    match &published.index {
        Some(index) => outln!(
            "published {}@{} to {} (publisher {}, bundle sha256 {}); {}",
            published.name,
            e.version,
            registry.root().display(),
            index.signed.publisher.describe(),
            e.bundle_sha256,
            index_line(index)
        ),
        None => outln!(
            "{}@{} is already in {} with the same files; nothing to do",
            published.name,
            e.version,
            registry.root().display()
        ),
    }
    Ok(())
}

/// `registry search`: the models of a registry whose name or title matches.
fn search_registry(registry: &str, text: Option<&str>, format: Format) -> Result<()> {
    let source = Source::parse(registry)?;
    let indexes = source.indexes()?;
    let found = search(&indexes, text.unwrap_or(""));
    if format == Format::Json {
        output::json(&found)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|i| {
            let shown = i.latest().or_else(|| i.versions.last());
            vec![
                i.name.clone(),
                i.latest()
                    .map(|e| e.version.clone())
                    .unwrap_or_else(|| "-".into()),
                i.available().join(" "),
                shown.map(|e| e.title.clone()).unwrap_or_default(),
                i.publisher.unit.clone(),
                i.publisher.fingerprint.clone(),
                shown.map(|e| e.sdk.clone()).unwrap_or_default(),
                i.version.to_string(),
                i.expires.clone(),
            ]
        })
        .collect();
    output::print(
        format,
        &[
            "model",
            "latest",
            "versions",
            "title",
            "publisher",
            "fingerprint",
            "sdk",
            "index",
            "expires",
        ],
        &rows,
    )?;
    Ok(())
}

/// `registry sign`: signs a model's index again (a new version, a new expiry).
fn sign(ctx: &Ctx, name: &str, registry: &str, valid_days: u32) -> Result<()> {
    let registry = writable(registry)?;
    let store = ctx.open()?;
    let key = unit_key(&store, "sign the index")?;
    let now = jiandu::time::now_text();
    let signed = registry.resign(
        name,
        &Change {
            key: &key,
            now: &now,
            reason: None,
            valid_days,
        },
    )?;
    outln!(
        "signed the index of {name} in {}: {}",
        registry.root().display(),
        index_line(&signed)
    );
    Ok(())
}

/// `registry serve`: serves a folder registry read-only over HTTP until stopped.
fn serve(ctx: &Ctx, registry: &std::path::Path, listen: &str) -> Result<()> {
    if ctx.server.is_some() {
        bail!("`registry serve` runs on its own, not inside a jiandu server; run it with --store naming a folder no server holds");
    }
    let server = Server::bind(DirRegistry::new(registry), listen)?;
    outln!(
        "serving {} read-only at http://{} (stop with Ctrl-C)",
        registry.display(),
        server.local_addr()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    server.serve()?;
    Ok(())
}
