//! The local API: how the other `jiandu` commands reach a running server.
//!
//! A Unix socket in the store (`serve.sock`, mode 0600), not HTTP on
//! loopback: only the store's owner can connect (file permissions, no
//! network exposure, nothing to bind or firewall), and the socket's life is
//! tied to the store it serves. One request per connection: a JSON line with
//! the command's arguments and working directory; the reply is a JSON line
//! with its exit code, stdout and stderr, so a command prints the same with
//! or without a server.

use super::Server;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest request accepted.
const MAX_REQUEST_BYTES: u64 = 1 << 20;

/// A command to run in the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiRequest {
    /// Arguments after the program name, as typed.
    pub args: Vec<String>,
    /// The client's working directory, for relative paths.
    pub cwd: PathBuf,
    /// Who runs the command (the client's operator, not the server's).
    pub operator: String,
}

/// What the command did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiResponse {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs one request inside the server.
pub type Handler = Arc<dyn Fn(&Arc<Server>, ApiRequest) -> ApiResponse + Send + Sync>;

/// Whether a server answers on `socket`.
pub fn is_running(socket: &Path) -> bool {
    UnixStream::connect(socket).is_ok()
}

/// Binds the socket (refusing if another server answers on it) and serves
/// requests until the server stops.
pub fn listen(server: Arc<Server>, handler: Handler) -> Result<std::thread::JoinHandle<()>> {
    let socket = super::socket_path(server.store.root());
    if socket.exists() {
        if is_running(&socket) {
            return Err(Error::Other(format!(
                "a jiandu server is already running on {}",
                server.store.root().display()
            )));
        }
        // Left by a server that was killed.
        std::fs::remove_file(&socket).map_err(|e| Error::file(&socket, e))?;
    }
    let listener = UnixListener::bind(&socket).map_err(|e| Error::file(&socket, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::file(&socket, e))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::file(&socket, e))?;
    std::thread::Builder::new()
        .name("jiandu-api".into())
        .spawn(move || {
            while !server.is_stopping() {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let server = server.clone();
                        let handler = handler.clone();
                        let _ = std::thread::Builder::new()
                            .name("jiandu-api-request".into())
                            .spawn(move || serve_one(&server, &handler, stream));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => {
                        tracing::warn!("api: accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
            let _ = std::fs::remove_file(&socket);
        })
        .map_err(|e| Error::Other(format!("cannot start the api thread: {e}")))
}

fn serve_one(server: &Arc<Server>, handler: &Handler, stream: UnixStream) {
    let _ = stream.set_nonblocking(false);
    let mut line = String::new();
    let read = BufReader::new((&stream).take_limited()).read_line(&mut line);
    let response = match read {
        Ok(_) => match serde_json::from_str::<ApiRequest>(&line) {
            Ok(req) if server.is_stopping() => ApiResponse {
                code: 1,
                stdout: String::new(),
                stderr: format!(
                    "error: the server is stopping; `{}` was not run\n",
                    req.args.join(" ")
                ),
            },
            Ok(req) => handler(server, req),
            Err(e) => ApiResponse {
                code: 2,
                stdout: String::new(),
                stderr: format!("error: bad request to the server: {e}\n"),
            },
        },
        Err(e) => ApiResponse {
            code: 2,
            stdout: String::new(),
            stderr: format!("error: cannot read the request: {e}\n"),
        },
    };
    let mut stream = stream;
    if let Ok(mut bytes) = serde_json::to_vec(&response) {
        bytes.push(b'\n');
        let _ = stream.write_all(&bytes);
    }
}

trait TakeLimited: std::io::Read + Sized {
    fn take_limited(self) -> std::io::Take<Self> {
        self.take(MAX_REQUEST_BYTES)
    }
}

impl<R: std::io::Read> TakeLimited for R {}

/// Sends a command to the server of the store at `store_root`; `None` when
/// no server answers there.
pub fn call(store_root: &Path, request: &ApiRequest) -> Option<std::io::Result<ApiResponse>> {
    let socket = super::socket_path(store_root);
    let mut stream = UnixStream::connect(socket).ok()?;
    Some((|| {
        let mut bytes = serde_json::to_vec(request)?;
        bytes.push(b'\n');
        stream.write_all(&bytes)?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        serde_json::from_str(&line).map_err(std::io::Error::other)
    })())
}
