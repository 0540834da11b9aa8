//! The local API: how the other `jiandu` commands reach a running server.
//!
//! A Unix socket in the store (`serve.sock`, mode 0600), not HTTP on
//! loopback: only the store's owner can connect (file permissions, no
//! network exposure, nothing to bind or firewall), and the socket's life is
//! tied to the store it serves. The server also checks who is connecting
//! (the peer's uid, from the kernel) against the owner of the store folder,
//! so a process that can reach the socket some other way (a superuser, a
//! loosened mode) is still refused. One request per connection: a JSON line
//! with the command's arguments and working directory, which must arrive
//! within [`REQUEST_TIMEOUT`]. The reply is a stream of JSON lines
//! ([`Frame`]): what the command prints, as it prints it (a model build's
//! compiler messages reach the client while cargo runs), then its exit
//! code, so a command prints the same with or without a server.

use super::Server;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest request accepted.
const MAX_REQUEST_BYTES: u64 = 1 << 20;

/// How long a client has to send its whole request, and to take the reply:
/// a connection that sends nothing (or never finishes) is closed, so idle
/// connections cannot pile up threads in the server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A command to run in the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiRequest {
    /// Arguments after the program name, as typed.
    pub args: Vec<String>,
    /// The client's working directory, for relative paths.
    pub cwd: PathBuf,
    /// Who runs the command (the client's operator, not the server's).
    pub operator: String,
    /// The policy file the client named (`--config` or `$JIANDU_CONFIG`):
    /// the server does not read the client's environment.
    #[serde(default)]
    pub config: Option<PathBuf>,
}

/// What the command did: its exit code, and what it printed that was not
/// already sent as [`Frame::Output`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiResponse {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Which of the client's streams output goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of a reply: output as the command prints it, then, last, the
/// command's end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frame {
    Output { stream: Stream, text: String },
    Done(ApiResponse),
}

/// Where a command run for a client sends its output as it prints it.
pub type Live = Box<dyn FnMut(Stream, &str)>;

/// Runs one request inside the server, sending output through the
/// [`Live`] it is given.
pub type Handler = Arc<dyn Fn(&Arc<Server>, ApiRequest, Live) -> ApiResponse + Send + Sync>;

/// Whether a server answers on `socket`.
pub fn is_running(socket: &Path) -> bool {
    UnixStream::connect(socket).is_ok()
}

/// Binds the socket (refusing if another server answers on it) and serves
/// requests until the server stops; a client has `request_timeout`
/// ([`REQUEST_TIMEOUT`] unless told otherwise) to send its request.
pub fn listen(
    server: Arc<Server>,
    handler: Handler,
    request_timeout: Duration,
) -> Result<std::thread::JoinHandle<()>> {
    let socket = super::socket_path(server.store.root());
    let owner = {
        use std::os::unix::fs::MetadataExt;
        let root = server.store.root();
        std::fs::metadata(root)
            .map_err(|e| Error::file(root, e))?
            .uid()
    };
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
                            .spawn(move || {
                                serve_one(&server, &handler, stream, owner, request_timeout)
                            });
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

fn serve_one(
    server: &Arc<Server>,
    handler: &Handler,
    stream: UnixStream,
    owner: u32,
    timeout: Duration,
) {
    let _ = stream.set_nonblocking(false);
    // A reply the client does not take in time is dropped with it.
    let _ = stream.set_write_timeout(Some(timeout));
    let refused = |message: String| ApiResponse {
        code: 1,
        stdout: String::new(),
        stderr: format!("error: {message}\n"),
    };
    // The request is read (bounded in size and time) before anything is
    // decided, so that even a refused client gets its answer rather than a
    // broken pipe.
    let mut line = String::new();
    let read = BufReader::new(Deadline::new(&stream, timeout).take_limited()).read_line(&mut line);
    match peer_uid(&stream) {
        Ok(uid) if uid == owner => {}
        Ok(uid) => {
            tracing::warn!(
                "api: refused a connection from uid {uid}: the store belongs to uid {owner}"
            );
            reply(
                stream,
                &refused(format!(
                    "the jiandu server on {} answers the owner of the store (uid {owner}) only, not uid {uid}",
                    server.store.root().display()
                )),
            );
            return;
        }
        Err(e) => {
            tracing::warn!("api: refused a connection whose peer is unknown: {e}");
            return;
        }
    }
    let response = match read {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut) => {
            tracing::info!("api: closed a connection that sent no request in {timeout:?}");
            refused(format!(
                "no request arrived within {} s; the connection was closed",
                timeout.as_secs_f64()
            ))
        }
        Ok(_) => match serde_json::from_str::<ApiRequest>(&line) {
            Ok(req) if server.is_stopping() => ApiResponse {
                code: 1,
                stdout: String::new(),
                stderr: format!(
                    "error: the server is stopping; `{}` was not run\n",
                    req.args.join(" ")
                ),
            },
            Ok(req) => handler(server, req, live(&stream)),
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
    reply(stream, &response);
}

fn reply(stream: UnixStream, response: &ApiResponse) {
    send(&stream, &Frame::Done(response.clone()));
}

fn send(mut stream: &UnixStream, frame: &Frame) -> bool {
    match serde_json::to_vec(frame) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            stream.write_all(&bytes).is_ok()
        }
        Err(_) => false,
    }
}

/// Output frames to the client on `stream`; once the client is gone (or
/// does not take a frame within the write timeout) the rest of the output
/// is dropped and the command goes on.
fn live(stream: &UnixStream) -> Live {
    let mut stream = stream.try_clone().ok();
    Box::new(move |which, text| {
        if let Some(s) = &stream {
            let frame = Frame::Output {
                stream: which,
                text: text.to_string(),
            };
            if !send(s, &frame) {
                stream = None;
            }
        }
    })
}

/// The uid of the process at the other end of `stream`, as the kernel
/// recorded it when it connected (`SO_PEERCRED`).
fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given, and
    // the descriptor belongs to `stream`, which outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Reads from a stream until a deadline: each read waits at most for what
/// is left, so a client that trickles bytes is cut off as one that sends
/// none.
struct Deadline<'a> {
    stream: &'a UnixStream,
    until: std::time::Instant,
}

impl<'a> Deadline<'a> {
    fn new(stream: &'a UnixStream, timeout: Duration) -> Deadline<'a> {
        Deadline {
            stream,
            until: std::time::Instant::now() + timeout,
        }
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self
            .until
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        match (&mut &*self.stream).read(buf) {
            // A timed-out read says WouldBlock on Unix.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                Err(std::io::ErrorKind::TimedOut.into())
            }
            other => other,
        }
    }
}

trait TakeLimited: Read + Sized {
    fn take_limited(self) -> std::io::Take<Self> {
        self.take(MAX_REQUEST_BYTES)
    }
}

impl<R: Read> TakeLimited for R {}

/// Sends a command to the server of the store at `store_root`, handing
/// `output` what it prints as it prints it; `None` when no server answers
/// there.
pub fn call(
    store_root: &Path,
    request: &ApiRequest,
    output: &mut dyn FnMut(Stream, &str),
) -> Option<std::io::Result<ApiResponse>> {
    let socket = super::socket_path(store_root);
    let mut stream = UnixStream::connect(socket).ok()?;
    Some((|| {
        let mut bytes = serde_json::to_vec(request)?;
        bytes.push(b'\n');
        stream.write_all(&bytes)?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut lines = BufReader::new(&stream);
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before the command ended",
                ));
            }
            match serde_json::from_str(&line).map_err(std::io::Error::other)? {
                Frame::Output { stream, text } => output(stream, &text),
                Frame::Done(response) => return Ok(response),
            }
        }
    })())
}
