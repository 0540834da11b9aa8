//! A unit's Ed25519 identity: the key pair that signs its model bundles and
//! its ledger entries.
//!
//! The private key lives in one file, readable by its owner only (0600),
//! and is never printed. Public keys are written as 64 hex characters; a
//! key's fingerprint is the first 16 bytes of the sha256 of the public key,
//! in hex groups of four (`3f2a:91c0:…`), short enough to read over the
//! phone when units exchange keys.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// First line of a private key file.
const KEY_FILE_HEADER: &str = "jiandu-unit-key-v1";

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("public key `{0}` is not 64 hex characters of an Ed25519 key")]
    BadPublicKey(String),
    #[error("signature is not 128 lowercase hex characters")]
    BadSignature,
    #[error("no randomness available: {0}")]
    Random(String),
}

fn file_err(path: &Path, message: impl std::fmt::Display) -> KeyError {
    KeyError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// A unit's signing key.
pub struct UnitKey {
    key: SigningKey,
}

impl UnitKey {
    /// A new random key.
    pub fn generate() -> Result<UnitKey, KeyError> {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(UnitKey {
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// Writes the private key to `path` with owner-only permissions,
    /// refusing to overwrite an existing file.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| file_err(path, e))?;
        let text = format!("{KEY_FILE_HEADER}\n{}\n", hex::encode(self.key.to_bytes()));
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| file_err(path, e))?;
        jiandu_fsio::sync_new_file(&file, path).map_err(|e| file_err(path, e))
    }

    /// Reads a private key file written by [`UnitKey::save`]. On Unix, a
    /// file readable by others is refused.
    pub fn load(path: &Path) -> Result<UnitKey, KeyError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path).map_err(|e| file_err(path, e))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(file_err(
                    path,
                    "is readable by others; run `chmod 600` on it",
                ));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(file_err(path, "is not a Jiandu unit key file"));
        }
        let bytes = lines
            .next()
            .and_then(|l| hex::decode(l.trim()).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| file_err(path, "holds no valid key"))?;
        Ok(UnitKey {
            key: SigningKey::from_bytes(&bytes),
        })
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// Signs `message`; the signature is 128 hex characters.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.key.sign(message).to_bytes())
    }
}

/// A unit's public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses 64 hex characters.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let t = text.trim();
        let bytes = hex::decode(t)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| KeyError::BadPublicKey(t.chars().take(80).collect()))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| KeyError::BadPublicKey(t.to_string()))
    }

    /// 64 hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// `xxxx:xxxx:…` (16 bytes of sha256 of the key).
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.to_bytes());
        hex::encode(&digest[..16])
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("hex is ascii"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Whether `signature` is this key's signature of `message`.
    ///
    /// Only one text stands for a signature: exactly 128 lowercase hex
    /// characters, nothing around them (what [`UnitKey::sign`] writes), and
    /// the signature itself must pass Ed25519's strict checks (canonical
    /// `S`, no small-order `R` or key). So whatever carries a signature —
    /// a bundle, an index, a ledger seal — has one form, and its digest
    /// names one signed thing.
    pub fn verify(&self, message: &[u8], signature: &str) -> Result<bool, KeyError> {
        if signature.len() != 128
            || !signature
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return Err(KeyError::BadSignature);
        }
        let bytes = hex::decode(signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or(KeyError::BadSignature)?;
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        Ok(self.0.verify_strict(message, &sig).is_ok())
    }

    /// Whether every one of `signatures` (lowercase hex, as
    /// [`PublicKey::verify`] takes them) is this key's signature of the
    /// message beside it, checked together: several times faster per
    /// signature than one by one, for the many signatures of a long
    /// ledger. `false` says only that some signature failed (or is not
    /// hex); check them one by one with [`PublicKey::verify`] to find it.
    /// Batch checking is not strict (it accepts what
    /// [`PublicKey::verify`] refuses for non-canonical encodings), so a
    /// `true` shows who signed, not that the bytes are the only encoding.
    pub fn verify_batch(&self, messages: &[&[u8]], signatures: &[&str]) -> bool {
        if messages.len() != signatures.len() {
            return false;
        }
        let mut sigs = Vec::with_capacity(signatures.len());
        for s in signatures {
            if s.len() != 128 || !s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
                return false;
            }
            let Some(bytes) = hex::decode(s)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
            else {
                return false;
            };
            sigs.push(ed25519_dalek::Signature::from_bytes(&bytes));
        }
        let keys = vec![self.0; sigs.len()];
        ed25519_dalek::verify_batch(messages, &sigs, &keys).is_ok()
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_key_loads_and_signs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unit.key");
        let key = UnitKey::generate().unwrap();
        key.save(&path).unwrap();
        assert!(key.save(&path).is_err(), "never overwrites");
        let loaded = UnitKey::load(&path).unwrap();
        assert_eq!(loaded.public(), key.public());
        let sig = loaded.sign(b"hello");
        assert!(key.public().verify(b"hello", &sig).unwrap());
        assert!(!key.public().verify(b"hellO", &sig).unwrap());
        let other = UnitKey::generate().unwrap();
        assert!(!other.public().verify(b"hello", &sig).unwrap());
    }

    #[test]
    fn a_signature_in_any_other_text_form_is_refused() {
        let key = UnitKey::generate().unwrap();
        let sig = key.sign(b"hello");
        assert!(key.public().verify(b"hello", &sig).unwrap());
        for other in [
            sig.to_uppercase(),
            format!("{sig}\n"),
            format!(" {sig}"),
            sig[..126].to_string(),
            format!("{sig}00"),
        ] {
            assert!(key.public().verify(b"hello", &other).is_err(), "{other:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_owner_only_and_loose_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unit.key");
        UnitKey::generate().unwrap().save(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(UnitKey::load(&path).is_err());
    }

    #[test]
    fn public_keys_round_trip_and_bad_ones_are_named() {
        let key = UnitKey::generate().unwrap().public();
        assert_eq!(PublicKey::parse(&key.to_hex()).unwrap(), key);
        assert_eq!(key.fingerprint().len(), 39);
        assert!(PublicKey::parse("xyz").is_err());
    }
}
