//! A small HTTP/1.1 client for the console tests: one request per
//! connection, and a [`Client`] that keeps cookies the way a browser
//! does, so a test sees exactly the bytes the console sends.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a request may take before the test fails: bounds a hang, it
/// times nothing.
const TIMEOUT: Duration = Duration::from_secs(120);

/// A response, its body decoded from chunks when it came in chunks.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header called `name` (any case).
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text()))
    }

    /// Where a redirect points.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }
}

/// Percent-encodes a form value or a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `fields` as an `application/x-www-form-urlencoded` body.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends one request to `addr` and reads the whole response (the
/// connection is closed after it).
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let raw = read_response(&mut stream)
        .unwrap_or_else(|e| panic!("{method} {target}: reading the response: {e}"));
    parse(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {target}: not an HTTP response: {}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Reads one response: to the end of its body as its headers give it
/// (`Content-Length`, chunks), or to the end of the connection. Some
/// servers keep a connection open whatever the request asks.
fn read_response(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        if let Some(total) = complete(&raw) {
            raw.truncate(total);
            return Ok(raw);
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// The length of the response at the start of `raw`, once all of it is
/// there and its length is known.
fn complete(raw: &[u8]) -> Option<usize> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let value = |name: &str| {
        head.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_string())
    };
    if value("transfer-encoding").is_some_and(|v| v == "chunked") {
        return dechunk(&raw[end..]).map(|(_, used)| end + used);
    }
    let length: usize = value("content-length")?.parse().ok()?;
    (raw.len() >= end + length).then_some(end + length)
}

fn parse(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?.0
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

/// A chunked body decoded, and how many bytes it took; `None` until the
/// last chunk is there.
fn dechunk(raw: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + raw[at..].windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[at..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // No trailers: the empty line that ends the body.
            return raw
                .get(at..at + 2)
                .filter(|e| *e == b"\r\n")
                .map(|_| (out, at + 2));
        }
        out.extend_from_slice(raw.get(at..at + size)?);
        at += size + 2;
    }
}

/// A browser-like client of one console: it keeps the cookies the console
/// sets (and drops those it clears) and sends them back.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub cookies: BTreeMap<String, String>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            cookies: BTreeMap::new(),
        }
    }

    /// The `Cookie` header this client sends.
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends a request with this client's cookies and `headers`, and
    /// keeps the cookies the response sets.
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let cookie = self.cookie_header();
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !cookie.is_empty() {
            all.push(("Cookie", &cookie));
        }
        let r = request(self.addr, method, target, &all, body);
        for set in r.headers("set-cookie") {
            let pair = set.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let cleared = set
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if cleared || value.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_string(), value.trim().to_string());
            }
        }
        r
    }

    pub fn get(&mut self, target: &str) -> Response {
        self.send("GET", target, &[], b"")
    }

    /// Posts `fields` as a form, as a browser on the console's own page
    /// does (no `Origin`: tools send none either).
    pub fn post(&mut self, target: &str, fields: &[(&str, &str)]) -> Response {
        self.post_with(target, fields, &[])
    }

    /// Posts `fields` as a form with extra `headers`.
    pub fn post_with(
        &mut self,
        target: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response {
        let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.send("POST", target, &all, form(fields).as_bytes())
    }

    /// Loads the login form and submits it: the response to the submit.
    pub fn try_login(&mut self, name: &str, password: &str) -> Response {
        let page = self.get("/login");
        assert_eq!(page.status, 200, "{}", page.text());
        let token = input_value(&page.text(), "token").expect("the login form's token");
        self.post(
            "/login",
            &[
                ("token", &token),
                ("next", "/"),
                ("name", name),
                ("password", password),
            ],
        )
    }

    /// Logs in, failing the test unless the console accepts.
    pub fn login(&mut self, name: &str, password: &str) {
        let r = self.try_login(name, password);
        assert_eq!(r.status, 303, "login of {name}: {}", r.text());
        assert!(
            self.cookies.contains_key("jiandu_session"),
            "no session cookie: {:?}",
            r.headers
        );
    }

    /// The CSRF token of this client's session, read from a page.
    pub fn csrf(&mut self) -> String {
        let page = self.get("/");
        let page = match page.location() {
            Some(to) if page.status == 303 => self.get(to),
            _ => page,
        };
        input_value(&page.text(), "csrf")
            .unwrap_or_else(|| panic!("no CSRF token on the page: {}", page.text()))
    }
}

/// The value of the first `<input name="{name}" value="…">` of `html`,
/// unescaped.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let at = html.find(&needle)? + needle.len();
    let end = html[at..].find('"')?;
    Some(unescape(&html[at..at + end]))
}

/// Text of an HTML page with its character references decoded
/// (`&#60;`, `&#x3c;`, `&lt;`, `&amp;`, `&quot;`, `&apos;`, `&gt;`).
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let decoded = tail.find(';').and_then(|end| {
            let name = &tail[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok().and_then(char::from_u32),
                    None => name
                        .strip_prefix('#')
                        .and_then(|d| d.parse().ok())
                        .and_then(char::from_u32),
                },
            };
            c.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
