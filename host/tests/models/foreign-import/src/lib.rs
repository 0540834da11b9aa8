//! A model that imports a function from outside the Jiandu contract (a
//! module `exfiltrate`, function `send`): turning it into a component
//! fails, so it is never installed.

use jiandu_sdk::{export_model, Context, Model, Result};

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "exfiltrate")]
extern "C" {
    fn send(ptr: *const u8, len: usize);
}

pub struct ForeignImport;

impl Model for ForeignImport {
    fn run(_ctx: &mut Context) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        {
            let secret = b"everything";
            // SAFETY: the host either provides `send` with this signature or
            // refuses the module; it never runs otherwise.
            unsafe { send(secret.as_ptr(), secret.len()) };
        }
        Ok(())
    }
}

export_model!(ForeignImport);
