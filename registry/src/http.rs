//! A registry folder served read-only over plain HTTP (through `axum`), and
//! the client that reads it (through `ureq`, plain HTTP only): for a unit
//! network where a shared folder is not at hand.
//!
//! Only `GET` (and `HEAD`) of three kinds of path is answered:
//!
//! | path | body |
//! |---|---|
//! | `/index/` | JSON array of model names |
//! | `/index/<name>.json` | the model's index |
//! | `/bundles/<name>-<version>.jiandu` | a bundle |
//!
//! Nothing else, and nothing outside those folders, is reachable; there is
//! no way to write. Transport security is not this layer's job: a bundle is
//! verified by its signature wherever it came from, exactly as from a
//! folder, so a tampered response is refused on import like a tampered
//! file.

use crate::bundle::{check_name, MAX_BUNDLE};
use crate::dir::{bundle_file_name, DirRegistry};
use crate::error::{Error, Result};
use crate::index::{SignedIndex, MAX_INDEX};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// How long the client waits for a connection, or for the next bytes of a
/// reply.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests the server answers at once; more wait their turn.
const MAX_CONCURRENT: usize = 32;

/// Reads a registry served over HTTP.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of `url` (`http://host[:port][/prefix]`).
    pub fn new(url: &str) -> Result<Client> {
        let bad = |message: &str| Error::Http {
            url: url.to_string(),
            message: message.to_string(),
        };
        if url.starts_with("https://") {
            return Err(bad(
                "https is not supported; serve the registry with `jiandu registry serve` (http) or use its folder; bundles are verified by signature either way",
            ));
        }
        if !url.starts_with("http://") {
            return Err(bad("a registry URL starts with http://"));
        }
        let uri: ureq::http::Uri = url.parse().map_err(|e| bad(&format!("not a URL: {e}")))?;
        let authority = uri.authority().map_or("", |a| a.as_str());
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("the URL names no host"));
        }
        // `Uri` takes any text after the host's `:`; a port is a number.
        let after_host = authority
            .rsplit_once(']')
            .map_or(authority, |(_, rest)| rest);
        if let Some((_, port)) = after_host.rsplit_once(':') {
            port.parse::<u16>()
                .map_err(|_| bad("the port is not a number"))?;
        }
        if uri.query().is_some() {
            return Err(bad("a registry URL has no query"));
        }
        let agent = ureq::Agent::config_builder()
            // Statuses are answered below: 404 is "not there", the rest errors.
            .http_status_as_error(false)
            // A registry answers in place; a redirect is an error, not a hop.
            .max_redirects(0)
            // Straight to the registry, as a folder is read: no proxy from the
            // environment.
            .proxy(None)
            .user_agent("jiandu")
            .timeout_connect(Some(IO_TIMEOUT))
            .timeout_per_read(Some(IO_TIMEOUT))
            .timeout_per_write(Some(IO_TIMEOUT))
            .build()
            .into();
        Ok(Client {
            base: url.trim_end_matches('/').to_string(),
            agent,
        })
    }

    /// The URL it reads.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`: `Ok(None)` on 404, the body on 200, an error otherwise.
    fn get(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let url = format!("{}{path}", self.base);
        let err = |message: String| Error::Http {
            url: url.clone(),
            message,
        };
        let too_large = |size: u64| Error::TooLarge {
            what: url.clone(),
            size,
            limit,
        };
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| err(e.to_string()))?;
        let status = response.status();
        if status == ureq::http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status != ureq::http::StatusCode::OK {
            return Err(err(format!("the server answered {status}")));
        }
        let length = response.body().content_length();
        if let Some(n) = length.filter(|n| *n > limit) {
            return Err(too_large(n));
        }
        let body = match response.body_mut().with_config().limit(limit).read_to_vec() {
            Ok(body) => body,
            Err(ureq::Error::BodyExceedsLimit(_)) => return Err(too_large(limit + 1)),
            Err(e) => return Err(err(e.to_string())),
        };
        if length.is_some_and(|n| n != body.len() as u64) {
            return Err(err(format!(
                "the response was cut short ({} of {} bytes)",
                body.len(),
                length.unwrap_or_default()
            )));
        }
        Ok(Some(body))
    }

    /// Names of the models served.
    pub fn names(&self) -> Result<Vec<String>> {
        let body = self.get("/index/", MAX_INDEX)?.ok_or_else(|| Error::Http {
            url: format!("{}/index/", self.base),
            message: "not found; is this a Jiandu registry?".into(),
        })?;
        serde_json::from_slice(&body).map_err(|e| Error::Http {
            url: format!("{}/index/", self.base),
            message: format!("not a list of model names: {e}"),
        })
    }

    /// The signed index of `name`, if served.
    pub fn index(&self, name: &str) -> Result<Option<SignedIndex>> {
        check_name(name).map_err(|message| Error::Http {
            url: self.base.clone(),
            message,
        })?;
        let path = format!("/index/{name}.json");
        match self.get(&path, MAX_INDEX)? {
            None => Ok(None),
            Some(body) => {
                SignedIndex::parse(&body, name, &format!("{}{path}", self.base)).map(Some)
            }
        }
    }

    /// The bytes of the bundle of `name@version`.
    pub fn bundle(&self, name: &str, version: &str) -> Result<Vec<u8>> {
        let path = format!("/bundles/{}", bundle_file_name(name, version));
        self.get(&path, MAX_BUNDLE)?.ok_or_else(|| Error::Http {
            url: format!("{}{path}", self.base),
            message: "not found (the index lists it, but the bundle is missing)".into(),
        })
    }
}

/// Serves a registry folder read-only.
pub struct Server {
    listener: TcpListener,
    registry: Arc<DirRegistry>,
}

impl Server {
    /// Binds `addr` (e.g. `127.0.0.1:7878`; port 0 picks a free one).
    pub fn bind(registry: DirRegistry, addr: &str) -> Result<Server> {
        if !registry.root().is_dir() {
            return Err(crate::error::io_err(
                registry.root(),
                "is not a registry folder (it does not exist)",
            ));
        }
        let listener = TcpListener::bind(addr).map_err(|e| Error::Http {
            url: format!("http://{addr}"),
            message: format!("cannot listen: {e}"),
        })?;
        Ok(Server {
            listener,
            registry: Arc::new(registry),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until the process ends: every request goes to [`answer`],
    /// at most [`MAX_CONCURRENT`] at a time.
    pub fn serve(&self) -> Result<()> {
        let failed = |e: std::io::Error| Error::Http {
            url: format!("http://{}", self.local_addr()),
            message: format!("cannot serve: {e}"),
        };
        let listener = self.listener.try_clone().map_err(failed)?;
        listener.set_nonblocking(true).map_err(failed)?;
        let registry = Arc::clone(&self.registry);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_io()
            .thread_name("jiandu-registry-http")
            .build()
            .map_err(failed)?;
        runtime
            .block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let app = axum::Router::new()
                    .fallback(answer)
                    .with_state(registry)
                    .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_CONCURRENT));
                axum::serve(listener, app).await
            })
            .map_err(failed)
    }
}

/// One request: `GET` or `HEAD` of a served path; 405 for any other
/// method, 404 for any other path.
async fn answer(
    axum::extract::State(registry): axum::extract::State<Arc<DirRegistry>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::http::{header, Method, StatusCode};
    use axum::response::IntoResponse;
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::CONTENT_TYPE, "text/plain")],
            "read-only registry: GET only\n",
        )
            .into_response();
    }
    let path = uri.path().to_string();
    // Files are read off the async threads.
    let found = tokio::task::spawn_blocking(move || route(&registry, &path))
        .await
        .ok()
        .flatten();
    match found {
        Some((content_type, body)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            "not found\n",
        )
            .into_response(),
    }
}

/// The body for `path`, or `None` for anything not served.
fn route(registry: &DirRegistry, path: &str) -> Option<(&'static str, Vec<u8>)> {
    if path == "/index/" || path == "/index" || path == "/" {
        let names = registry.names().ok()?;
        return Some(("application/json", serde_json::to_vec(&names).ok()?));
    }
    if let Some(file) = path.strip_prefix("/index/") {
        let name = file.strip_suffix(".json")?;
        check_name(name).ok()?;
        let bytes =
            crate::bundle::read_registry_file(&registry.index_path(name), MAX_INDEX).ok()?;
        return Some(("application/json", bytes));
    }
    if let Some(file) = path.strip_prefix("/bundles/") {
        let ok = file.ends_with(".jiandu")
            && !file.starts_with('.')
            && !file.contains("..")
            && file.chars().all(|c| {
                c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || "-_.+".contains(c)
                    || c.is_ascii_uppercase()
            });
        if !ok {
            return None;
        }
        let bytes = crate::bundle::read_registry_file(
            &registry.root().join("bundles").join(file),
            MAX_BUNDLE,
        )
        .ok()?;
        return Some(("application/octet-stream", bytes));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn urls_parse_and_https_is_refused_with_a_reason() {
        let c = Client::new("http://127.0.0.1:7878/reg/").unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:7878/reg");
        assert_eq!(
            Client::new("http://example").unwrap().base(),
            "http://example"
        );
        assert!(Client::new("http://[::1]:7878").is_ok());
        let err = Client::new("https://x").unwrap_err().to_string();
        assert!(err.contains("https is not supported"), "{err}");
        for bad in [
            "http://h:port",
            "http://",
            "ftp://h",
            "http://h/?q=1",
            "http://h /x",
        ] {
            assert!(Client::new(bad).is_err(), "{bad}");
        }
    }

    /// A one-shot server answering `response` to the first request.
    fn answering(response: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = s.write_all(response);
        });
        url
    }

    #[test]
    fn the_client_reads_200_and_404_and_refuses_the_rest() {
        let ok = |r| Client::new(&answering(r)).unwrap().get("/index/", 16);
        assert_eq!(
            ok(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n[]").unwrap(),
            Some(b"[]".to_vec())
        );
        assert_eq!(
            ok(b"HTTP/1.0 200 OK\r\n\r\n[\"a\"]").unwrap(),
            Some(b"[\"a\"]".to_vec())
        );
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n")
                .unwrap(),
            Some(b"[]".to_vec())
        );
        assert_eq!(
            ok(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n").unwrap(),
            None
        );
        let err = ok(b"HTTP/1.0 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("the server answered 302"), "{err}");
        let err = ok(b"HTTP/1.0 500 Oops\r\nContent-Length: 0\r\n\r\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("the server answered 500"), "{err}");
        assert!(matches!(
            ok(b"HTTP/1.0 200 OK\r\nContent-Length: 17\r\n\r\n01234567890123456"),
            Err(Error::TooLarge {
                size: 17,
                limit: 16,
                ..
            })
        ));
        assert!(matches!(
            ok(b"HTTP/1.0 200 OK\r\n\r\n01234567890123456789"),
            Err(Error::TooLarge { limit: 16, .. })
        ));
        assert!(ok(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\n[]").is_err());
        assert!(ok(b"not http at all\r\n\r\n").is_err());
    }

    #[test]
    fn a_closed_port_is_an_error_naming_the_url() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = Client::new(&url).unwrap().names().unwrap_err().to_string();
        assert!(err.contains(&url), "{err}");
    }

    #[test]
    fn only_the_three_kinds_of_path_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let reg = DirRegistry::new(dir.path());
        std::fs::create_dir_all(dir.path().join("bundles")).unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        std::fs::write(dir.path().join("bundles/m-1.0.0.jiandu"), b"bundle").unwrap();
        assert_eq!(route(&reg, "/bundles/m-1.0.0.jiandu").unwrap().1, b"bundle");
        for p in [
            "/secret",
            "/bundles/../secret",
            "/index/../secret.json",
            "/bundles/.lock",
            "/index/UP.json",
        ] {
            assert!(route(&reg, p).is_none(), "{p}");
        }
        assert_eq!(route(&reg, "/index/").unwrap().1, b"[]");
    }
}
