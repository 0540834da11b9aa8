//! SHA-256 of a stream of bytes, computed on a thread of its own.
//!
//! Writing a snapshot of 250,000 leads hashes about 180 MB, and reading the
//! snapshot it replaces as much again: a fifth of a run's planning when done
//! beside the encoding. [`HashBehind`] takes the bytes in chunks, in order,
//! and hashes them on another thread while the caller goes on; chunks come
//! back to be filled again, so memory stays at a few chunks whatever the
//! size of the stream. Where no thread can be started, it hashes in the
//! caller's thread: the same digest, only slower.

use sha2::{Digest, Sha256};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes handed over at once: a few of them in flight per stream keep a
/// run's memory within a few MiB more than it was.
pub const CHUNK: usize = 256 << 10;

/// Chunks queued for the hashing thread before the caller waits for it.
const QUEUED: usize = 2;

/// A SHA-256 being computed behind the caller (see the module doc).
pub struct HashBehind {
    behind: Option<Behind>,
    /// Hashed in the caller's thread when no thread could be started.
    inline: Sha256,
}

struct Behind {
    chunks: SyncSender<Vec<u8>>,
    /// Chunks hashed, emptied, to be used again.
    spare: Receiver<Vec<u8>>,
    thread: JoinHandle<Sha256>,
}

impl HashBehind {
    /// Starts the hashing thread.
    pub fn start() -> HashBehind {
        let (chunks, queued) = mpsc::sync_channel::<Vec<u8>>(QUEUED);
        let (give_back, spare) = mpsc::channel::<Vec<u8>>();
        let thread = std::thread::Builder::new()
            .name("jiandu-hash".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for mut chunk in queued {
                    hasher.update(&chunk);
                    chunk.clear();
                    // The caller may be gone already: the chunk is dropped.
                    let _ = give_back.send(chunk);
                }
                hasher
            });
        HashBehind {
            behind: thread.ok().map(|thread| Behind {
                chunks,
                spare,
                thread,
            }),
            inline: Sha256::new(),
        }
    }

    /// An empty buffer to fill: a chunk given back, or a new one.
    pub fn buffer(&self) -> Vec<u8> {
        self.behind
            .as_ref()
            .and_then(|b| b.spare.try_recv().ok())
            .unwrap_or_else(|| Vec::with_capacity(CHUNK))
    }

    /// Hashes `chunk` after the chunks handed over before it.
    pub fn update(&mut self, chunk: Vec<u8>) {
        if chunk.is_empty() {
            return;
        }
        match &self.behind {
            Some(b) => {
                if let Err(mpsc::SendError(chunk)) = b.chunks.send(chunk) {
                    // The thread is gone (it cannot panic while hashing):
                    // nothing sent from now on would be hashed.
                    unreachable!("the hashing thread ended early ({} bytes)", chunk.len());
                }
            }
            None => self.inline.update(&chunk),
        }
    }

    /// Hashes a copy of `bytes`.
    pub fn update_from(&mut self, bytes: &[u8]) {
        for piece in bytes.chunks(CHUNK) {
            let mut chunk = self.buffer();
            chunk.extend_from_slice(piece);
            self.update(chunk);
        }
    }

    /// The SHA-256 of every byte handed over, once the thread is through.
    pub fn finish(self) -> [u8; 32] {
        match self.behind {
            Some(Behind { chunks, thread, .. }) => {
                drop(chunks);
                thread
                    .join()
                    .expect("the hashing thread does not panic")
                    .finalize()
                    .into()
            }
            None => self.inline.finalize().into(),
        }
    }

    /// [`HashBehind::finish`] as lowercase hex.
    pub fn finish_hex(self) -> String {
        hex::encode(self.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha256_of_the_chunks_in_order() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = HashBehind::start();
        // Uneven pieces, some larger than a chunk, some empty.
        let mut at = 0;
        for (i, n) in [0usize, 1, 17, CHUNK + 3, 0, 999_999, 3 * CHUNK]
            .into_iter()
            .cycle()
            .enumerate()
        {
            if at >= data.len() {
                break;
            }
            let end = (at + n).min(data.len());
            if i % 2 == 0 {
                h.update_from(&data[at..end]);
            } else {
                let mut chunk = h.buffer();
                chunk.extend_from_slice(&data[at..end]);
                h.update(chunk);
            }
            at = end;
        }
        assert_eq!(h.finish_hex(), hex::encode(Sha256::digest(&data)));
    }

    #[test]
    fn nothing_hashed_is_the_digest_of_nothing() {
        assert_eq!(
            HashBehind::start().finish_hex(),
            hex::encode(Sha256::digest(b""))
        );
    }
}
