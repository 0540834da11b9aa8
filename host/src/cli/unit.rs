//! `jiandu unit init|show`

use super::output::{self, Format};
use super::Ctx;
use anyhow::Result;
use jiandu::unit;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create this unit's Ed25519 key pair and record the unit in the store.
    ///
    /// The private key is written to <store>/unit/unit.key (permissions
    /// 0600) and never printed.
    ///
    /// Example: `jiandu unit init --name "温宿县人民检察院" --code 11652922MB1234567X`
    Init {
        #[arg(long)]
        name: String,
        #[arg(long)]
        code: String,
    },
    /// Print the unit's public key and its fingerprint.
    ///
    /// Example: `jiandu unit show --format json`
    Show {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn exec(ctx: &Ctx, cmd: Command) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        Command::Init { name, code } => {
            let u = unit::init(&store, &name, &code)?;
            outln!("unit {} ({})", u.name, u.code);
            outln!("public key  {}", u.public_key);
            outln!("fingerprint {}", u.fingerprint);
            outln!(
                "private key {} (keep it secret, back it up)",
                unit::key_path(&store).display()
            );
        }
        Command::Show { format } => {
            let Some(u) = unit::current(&store)? else {
                anyhow::bail!("this store has no unit yet; create one with `jiandu unit init --name … --code …`");
            };
            match format {
                Format::Json => output::json(&u)?,
                _ => output::print(
                    format,
                    &["name", "code", "public_key", "fingerprint", "created_at"],
                    &[vec![
                        u.name,
                        u.code,
                        u.public_key,
                        u.fingerprint,
                        u.created_at,
                    ]],
                )?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
