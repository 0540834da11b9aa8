//! Commands a running server executes for its clients.
//!
//! A client sends the arguments it was given and its working directory;
//! the server parses them with every path made absolute against that
//! directory ([`parse`]), so no command depends on the server's own working
//! directory, which nothing changes. Commands of different clients then
//! run at once; only those that change the same part of the store take
//! turns ([`Part`]). A command run without a server is parsed the same way,
//! so it prints the same paths either way.

use super::{dispatch, finish, sink, Cli, Command, Ctx};
use clap::builder::TypedValueParser;
use clap::{CommandFactory, FromArgMatches};
use jiandu::serve::api::{ApiRequest, ApiResponse, Live};
use jiandu::serve::Server;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// What a text argument that may name a file or folder holds besides a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    /// A registry: a folder, a bundle file, or an `http://` URL.
    Location,
    /// A public key in hex, or a file holding it.
    KeyOrFile,
    /// An entry count, or a file holding a checkpoint.
    CountOrFile,
}

/// Arguments typed as text that may name a file or a folder: (subcommand
/// path, argument id, what else they hold). Arguments typed as paths need
/// no entry: every one of them is resolved.
const TEXT_PATHS: &[(&[&str], &str, Text)] = &[
    (&["model", "import"], "from", Text::Location),
    (&["registry", "publish"], "to", Text::Location),
    (&["registry", "search"], "registry", Text::Location),
    (&["registry", "yank"], "registry", Text::Location),
    (&["trust", "add"], "key", Text::KeyOrFile),
    (&["audit", "unit", "add"], "key", Text::KeyOrFile),
    (&["audit", "export"], "since", Text::CountOrFile),
];

/// Parses `args` (the program name first) as a command given in the
/// folder `cwd`: every path argument, and every text argument that names
/// a file or a folder, comes out absolute. With `own_environment` false
/// (a client's command parsed in the server) no argument is read from the
/// environment: the server's is not the client's.
pub fn parse<I, T>(args: I, cwd: &Path, own_environment: bool) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let base = Arc::new(cwd.to_path_buf());
    let mut command = resolving(Cli::command(), &mut Vec::new(), &base);
    if !own_environment {
        command = without_environment(command);
    }
    let matches = command.try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// `command` with the value parser of each path argument, and of each
/// argument in [`TEXT_PATHS`], replaced by one that resolves against `base`.
fn resolving(command: clap::Command, at: &mut Vec<String>, base: &Arc<PathBuf>) -> clap::Command {
    let command = command.mut_args(|arg| {
        let text = TEXT_PATHS
            .iter()
            .find(|(path, id, _)| *path == at.as_slice() && arg.get_id() == *id)
            .map(|(_, _, text)| *text);
        if let Some(text) = text {
            let base = base.clone();
            return arg.value_parser(
                clap::builder::StringValueParser::new()
                    .map(move |value| resolve_text(&base, &value, text)),
            );
        }
        if arg.get_value_parser().type_id() == std::any::TypeId::of::<PathBuf>() {
            return arg.value_parser(ClientPath(base.clone()));
        }
        arg
    });
    command.mut_subcommands(|sub| {
        at.push(sub.get_name().to_string());
        let sub = resolving(sub, at, base);
        at.pop();
        sub
    })
}

/// `command` with no argument read from the environment.
fn without_environment(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| arg.env(None::<&'static str>))
        .mut_subcommands(without_environment)
}

/// A path argument resolved against the client's folder.
#[derive(Clone)]
struct ClientPath(Arc<PathBuf>);

impl TypedValueParser for ClientPath {
    type Value = PathBuf;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<PathBuf, clap::Error> {
        if value.is_empty() {
            // As clap's own path parser does: an empty path names nothing.
            return clap::builder::PathBufValueParser::new().parse_ref(cmd, arg, value);
        }
        Ok(absolute(&self.0, Path::new(value)))
    }
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// A text argument resolved against the client's folder when it names a
/// file or a folder, and left as it is when it holds something else.
fn resolve_text(base: &Path, value: &str, text: Text) -> String {
    let other = match text {
        Text::Location => value.contains("://"),
        Text::KeyOrFile => jiandu_registry::keys::PublicKey::parse(value.trim()).is_ok(),
        Text::CountOrFile => value.trim().parse::<u64>().is_ok(),
    };
    if other || value.is_empty() {
        return value.to_string();
    }
    absolute(base, Path::new(value)).display().to_string()
}

/// A part of the store that client commands change. Commands that change
/// the same part take turns (two ingests of one dataset would both take
/// its next version number; two model builds share the process's staging
/// folder); everything else, runs and reads included, runs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Datasets,
    Models,
    /// This unit's identity, the keys it trusts, and the ledgers and
    /// checkpoints of units it receives.
    Units,
    /// The ledger's checkpoints.
    Checkpoints,
    /// Registry folders (outside the store, published to and yanked from).
    Registries,
}

const PARTS: [Part; 5] = [
    Part::Datasets,
    Part::Models,
    Part::Units,
    Part::Checkpoints,
    Part::Registries,
];

/// The parts of the store `command` changes.
fn parts(command: &Command) -> &'static [Part] {
    use super::{audit, dataset, model, registry, trust, unit};
    match command {
        Command::Demo(_) => &PARTS,
        Command::Dataset(
            dataset::Command::Ingest(_)
            | dataset::Command::Rollback { .. }
            | dataset::Command::Prune { .. },
        ) => &[Part::Datasets],
        Command::Model(model::Command::Build { .. } | model::Command::Import { .. }) => {
            &[Part::Models]
        }
        Command::Unit(unit::Command::Init { .. })
        | Command::Trust(trust::Command::Add { .. } | trust::Command::Remove { .. })
        | Command::Audit(
            audit::Command::Import { .. } | audit::Command::Unit(audit::UnitCommand::Add { .. }),
        ) => &[Part::Units],
        Command::Audit(audit::Command::Export { .. } | audit::Command::Checkpoint { .. }) => {
            &[Part::Checkpoints]
        }
        Command::Registry(registry::Command::Publish { .. } | registry::Command::Yank { .. }) => {
            &[Part::Registries]
        }
        _ => &[],
    }
}

/// Takes the turns of `parts`, always in the order of [`PARTS`] so that
/// two commands never wait on each other.
fn take_turns(parts: &[Part]) -> Vec<std::sync::MutexGuard<'static, ()>> {
    static TURNS: [Mutex<()>; PARTS.len()] = [const { Mutex::new(()) }; PARTS.len()];
    PARTS
        .iter()
        .enumerate()
        .filter(|(_, p)| parts.contains(p))
        .map(|(i, _)| TURNS[i].lock().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

/// Runs a client's command inside the server, sending what it prints to
/// the client as it prints it.
pub fn execute_in_server(server: &Arc<Server>, req: ApiRequest, live: Live) -> ApiResponse {
    let refuse = |code: i32, message: String| ApiResponse {
        code,
        stdout: String::new(),
        stderr: format!("error: {message}\n"),
    };
    if !req.cwd.is_absolute() {
        return refuse(
            2,
            format!(
                "the client's folder `{}` is not an absolute path; the server resolves paths against it",
                req.cwd.display()
            ),
        );
    }
    let args = std::iter::once("jiandu".to_string()).chain(req.args.iter().cloned());
    let cli = match parse(args, &req.cwd, false) {
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
        return refuse(
            1,
            format!(
                "a jiandu server is already running on {}",
                server.store.root().display()
            ),
        );
    }
    let _turns = take_turns(parts(&cli.command));
    let ctx = Ctx {
        store_path: server.store.root().to_path_buf(),
        // The policy file the client named, by --config or its own
        // $JIANDU_CONFIG (sent apart: the server does not read the
        // client's environment).
        config: req.config.map(|c| absolute(&req.cwd, &c)).or(cli.config),
        operator: cli.operator.unwrap_or(req.operator),
        cwd: req.cwd,
        server: Some(server.clone()),
        creates_store: true,
    };
    let code = sink::stream(live, || finish(dispatch(&ctx, cli.command)));
    ApiResponse {
        code: if code == ExitCode::SUCCESS {
            0
        } else if code == ExitCode::from(2) {
            2
        } else {
            1
        },
        stdout: String::new(),
        stderr: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Cli {
        let args = std::iter::once("jiandu").chain(args.iter().copied());
        parse(args, Path::new("/client/dir"), false).unwrap()
    }

    /// The value of argument `id` of the innermost subcommand of `args`,
    /// as parsed for a client in `/client/dir`.
    fn value(args: &[&str], id: &str) -> String {
        let base = Arc::new(PathBuf::from("/client/dir"));
        let command = without_environment(resolving(Cli::command(), &mut Vec::new(), &base));
        let all = std::iter::once("jiandu").chain(args.iter().copied());
        let mut m = command.try_get_matches_from(all).unwrap();
        while let Some((_, sub)) = m.remove_subcommand() {
            m = sub;
        }
        if let Ok(Some(p)) = m.try_get_one::<PathBuf>(id) {
            return p.display().to_string();
        }
        m.get_one::<String>(id)
            .unwrap_or_else(|| panic!("no value for `{id}` in {args:?}"))
            .clone()
    }

    #[test]
    fn every_text_argument_that_may_name_a_path_exists() {
        for (path, id, _) in TEXT_PATHS {
            let mut command = Cli::command();
            for name in path.iter() {
                command = command
                    .find_subcommand(name)
                    .unwrap_or_else(|| panic!("no subcommand {path:?}"))
                    .clone();
            }
            assert!(
                command.get_arguments().any(|a| a.get_id() == *id),
                "no argument `{id}` in {path:?}"
            );
        }
    }

    #[test]
    fn relative_paths_are_made_absolute_against_the_client_folder() {
        let ingest = [
            "dataset",
            "ingest",
            "employers",
            "data/employers.csv",
            "--schema=../schemas/employers.toml",
        ];
        assert_eq!(value(&ingest, "file"), "/client/dir/data/employers.csv");
        assert_eq!(
            value(&ingest, "schema"),
            "/client/dir/../schemas/employers.toml"
        );
        assert_eq!(
            value(&["audit", "import", "a.jsonl", "/b.jsonl"], "files"),
            "/client/dir/a.jsonl"
        );
        let cli = parsed(&["--config", "policy.toml", "status"]);
        assert_eq!(cli.config, Some(PathBuf::from("/client/dir/policy.toml")));
        let cli = parsed(&["status", "--config=/etc/jiandu.toml"]);
        assert_eq!(cli.config, Some(PathBuf::from("/etc/jiandu.toml")));
    }

    #[test]
    fn absolute_paths_urls_keys_and_counts_are_kept() {
        let key = jiandu_registry::keys::UnitKey::generate()
            .unwrap()
            .public()
            .to_hex();
        for (args, id, kept) in [
            (
                vec!["model", "import", "m", "--from", "http://127.0.0.1:7878"],
                "from",
                "http://127.0.0.1:7878",
            ),
            (
                vec!["model", "import", "m", "--from", "/mnt/usb/registry"],
                "from",
                "/mnt/usb/registry",
            ),
            (
                vec!["trust", "add", &key, "--unit", "u"],
                "key",
                key.as_str(),
            ),
            (
                vec!["audit", "export", "--since", "42", "-o", "/x"],
                "since",
                "42",
            ),
        ] {
            assert_eq!(value(&args, id), kept, "{args:?}");
        }
    }

    #[test]
    fn text_arguments_naming_files_are_resolved() {
        for (args, id, resolved) in [
            (
                vec!["model", "import", "m", "--from", "usb/registry"],
                "from",
                "/client/dir/usb/registry",
            ),
            (
                vec!["registry", "publish", "b.jiandu", "--to", "reg"],
                "to",
                "/client/dir/reg",
            ),
            (
                vec!["trust", "add", "akesu.json", "--unit", "u"],
                "key",
                "/client/dir/akesu.json",
            ),
            (
                vec!["audit", "export", "--since", "previous.jsonl", "-o", "x"],
                "since",
                "/client/dir/previous.jsonl",
            ),
        ] {
            assert_eq!(value(&args, id), resolved, "{args:?}");
        }
    }

    #[test]
    fn the_servers_environment_is_not_read_for_a_client() {
        // No other test of this binary reads this variable.
        std::env::set_var("JIANDU_CONFIG", "/server/policy.toml");
        let cli = parsed(&["status"]);
        assert_eq!(cli.config, None);
        let own = parse(["jiandu", "status"], Path::new("/client/dir"), true).unwrap();
        assert_eq!(own.config, Some(PathBuf::from("/server/policy.toml")));
        std::env::remove_var("JIANDU_CONFIG");
    }

    #[test]
    fn commands_that_change_the_same_part_take_turns_and_reads_do_not() {
        assert_eq!(
            parts(&parsed(&["dataset", "ingest", "a", "a.csv"]).command),
            &[Part::Datasets]
        );
        assert_eq!(
            parts(&parsed(&["model", "build", "crate"]).command),
            &[Part::Models]
        );
        for read in [
            vec!["run", "m"],
            vec!["status"],
            vec!["dataset", "list"],
            vec!["leads", "list"],
            vec!["audit", "verify"],
        ] {
            assert!(parts(&parsed(&read).command).is_empty(), "{read:?}");
        }
    }
}
