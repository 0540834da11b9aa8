//! `jiandu registry publish|search|yank|serve`

use super::output::{self, Format};
use super::Ctx;
use anyhow::{bail, Context, Result};
use jiandu_registry::dir::DirRegistry;
use jiandu_registry::http::Server;
use jiandu_registry::index::parse_spec;
use jiandu_registry::source::{search, Source};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Add a bundle (from `jiandu model pack`) to a registry folder.
    ///
    /// The folder is created if needed; it can be a shared folder or a USB
    /// stick. The bundle's signature and digests are checked first. A
    /// version already there with the same files is left as it is; with
    /// other files it is refused; a model's versions must all be signed by
    /// the same unit.
    ///
    /// Example: `jiandu registry publish disability-fund-arrears-1.0.0.jiandu --to /mnt/usb/registry`
    Publish {
        /// The bundle file.
        bundle: PathBuf,
        /// The registry folder.
        #[arg(long)]
        to: String,
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
    /// Only the unit that published it can: the yank is signed with this
    /// store's unit key and checked against the publisher's key. Installed
    /// copies are not touched.
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
    },
    /// Serve a registry folder read-only over HTTP until stopped.
    ///
    /// Every command that reads a registry (`registry search`, `model
    /// import --from`) takes the printed URL in place of the folder.
    /// Bundles are verified by their signatures on import, however they
    /// travelled. Listens on 127.0.0.1 unless --listen says otherwise.
    ///
    /// Example: `jiandu registry serve /srv/registry --listen 0.0.0.0:7878`
    Serve {
        registry: PathBuf,
        /// Address to listen on; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: String,
    },
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
        Command::Publish { bundle, to } => {
            let registry = writable(&to)?;
            let bytes =
                std::fs::read(&bundle).with_context(|| format!("reading {}", bundle.display()))?;
            let published = registry.publish(
                &bytes,
                &bundle.display().to_string(),
                &jiandu::time::now_text(),
            )?;
            let e = &published.entry;
            if published.added {
                outln!(
                    "published {}@{} to {} (publisher {}, bundle sha256 {})",
                    published.name,
                    e.version,
                    registry.root().display(),
                    e.publisher.describe(),
                    e.bundle_sha256
                );
            } else {
                outln!(
                    "{}@{} is already in {} with the same files; nothing to do",
                    published.name,
                    e.version,
                    registry.root().display()
                );
            }
        }
        Command::Search {
            registry,
            text,
            format,
        } => {
            let source = Source::parse(&registry)?;
            let indexes = source.indexes()?;
            let found = search(&indexes, text.as_deref().unwrap_or(""));
            if format == Format::Json {
                output::json(&found)?;
                return Ok(ExitCode::SUCCESS);
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
                        shown.map(|e| e.publisher.unit.clone()).unwrap_or_default(),
                        shown
                            .map(|e| e.publisher.fingerprint.clone())
                            .unwrap_or_default(),
                        shown.map(|e| e.sdk.clone()).unwrap_or_default(),
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
                ],
                &rows,
            )?;
        }
        Command::Yank {
            spec,
            registry,
            reason,
        } => {
            let registry = writable(&registry)?;
            let (name, req) = parse_spec(&spec).map_err(anyhow::Error::msg)?;
            let version = spec
                .split_once('@')
                .and_then(|(_, v)| semver::Version::parse(v.trim()).ok())
                .with_context(|| {
                    format!("name the exact version to yank: `{name}@1.2.0`, not `{spec}` ({req})")
                })?;
            let store = ctx.open()?;
            let Some(key) = jiandu::unit::signing_key(&store)? else {
                bail!("this store has no unit key to sign the yank with; only the publishing unit's store can yank");
            };
            let changed = registry.yank(
                &name,
                &version,
                &key,
                reason.as_deref(),
                &jiandu::time::now_text(),
            )?;
            if changed {
                outln!(
                    "yanked {name}@{version} in {}; imports no longer pick it",
                    registry.root().display()
                );
            } else {
                outln!("{name}@{version} was already yanked");
            }
        }
        Command::Serve { registry, listen } => {
            if ctx.server.is_some() {
                bail!("`registry serve` runs on its own, not inside a jiandu server; run it with --store naming a folder no server holds");
            }
            let server = Server::bind(DirRegistry::new(&registry), &listen)?;
            outln!(
                "serving {} read-only at http://{} (stop with Ctrl-C)",
                registry.display(),
                server.local_addr()
            );
            use std::io::Write;
            let _ = std::io::stdout().flush();
            server.serve()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
