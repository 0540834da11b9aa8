//! What every page shares: who is asking ([`Ctx`]), the permission check,
//! forms and their CSRF token, the JSON twin, replies and errors, the
//! security headers, and the embedded assets.

use crate::Console;
use askama::Template;
use axum::body::Bytes;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jiandu_runs::users::{self, Action, User};
use jiandu_store::{Error, Store};
use serde::Serialize;
use std::sync::Arc;

/// The person behind a request, with their session's CSRF token.
pub struct Ctx {
    pub app: Arc<Console>,
    pub user: User,
    pub csrf: String,
    /// The JSON twin was asked for (`.json`, `?format=json`, or
    /// `Accept: application/json`).
    pub json: bool,
}

impl Ctx {
    pub fn store(&self) -> &Store {
        &self.app.store
    }

    /// The page chrome: who is logged in and the menu their role allows.
    pub fn chrome(&self, title: &str, current: &'static str) -> Chrome {
        let mut nav = Vec::new();
        let mut item = |href: &'static str, label: &'static str, allowed: bool| {
            if allowed {
                nav.push(NavItem {
                    href,
                    label,
                    current: href == current,
                });
            }
        };
        item("/leads", "线索研判", self.user.may(Action::ReviewLeads));
        let admin = self.user.may(Action::ManageRuns);
        let audit = self.user.may(Action::SeeAudit);
        item("/runs", "运行记录", admin || audit);
        item("/models", "模型", admin || audit);
        item("/datasets", "数据集", admin || audit);
        item("/audit", "审计", audit);
        Chrome {
            title: title.to_string(),
            user: self.user.name.clone(),
            role: role_label(self.user.role),
            csrf: self.csrf.clone(),
            nav,
        }
    }
}

pub fn role_label(role: users::Role) -> &'static str {
    match role {
        users::Role::Reviewer => "研判人员",
        users::Role::Admin => "管理员",
        users::Role::Auditor => "审计人员",
    }
}

/// A menu entry.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What the base template shows around every page.
pub struct Chrome {
    pub title: String,
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub nav: Vec<NavItem>,
}

/// What a page handler returns.
pub enum Reply {
    Html(String),
    Json(serde_json::Value),
    /// 303 See Other: after a form, the page to show.
    Redirect(String),
    File {
        name: String,
        mime: &'static str,
        bytes: Vec<u8>,
    },
}

impl Reply {
    /// The page, or its JSON twin: the same data either way.
    pub fn page<T: Serialize>(
        ctx: &Ctx,
        data: &T,
        html: impl FnOnce() -> askama::Result<String>,
    ) -> Result<Reply, Failure> {
        if ctx.json {
            return Ok(Reply::Json(serde_json::to_value(data).map_err(|e| {
                Failure::internal(format!("the page's data does not serialize: {e}"))
            })?));
        }
        html()
            .map(Reply::Html)
            .map_err(|e| Failure::internal(format!("the page does not render: {e}")))
    }
}

/// The page `page` makes of `d` inside `chrome`, or its JSON twin.
pub fn show<'a, T: Serialize, P: Template>(
    ctx: &Ctx,
    chrome: &'a Chrome,
    d: &'a T,
    page: impl FnOnce(&'a Chrome, &'a T) -> P,
) -> Result<Reply, Failure> {
    Reply::page(ctx, d, || page(chrome, d).render())
}

/// Why a request got no page.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub fn bad(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden() -> Failure {
        Failure::new(StatusCode::FORBIDDEN, "您的角色无权访问此页面或执行此操作")
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Refused(m) => Failure::new(StatusCode::CONFLICT, m),
            Error::BadParams { message, .. } => Failure::bad(message),
            e => Failure::internal(e.to_string()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
    logged_in: bool,
}

/// Headers on every response: no framing, no sniffing, no referrer to
/// other sites, no script or style but the console's own, nothing cached.
///
/// The referrer policy is `same-origin`, not `no-referrer`: under
/// `no-referrer` a browser sends `Origin: null` with every form, and the
/// origin check ([`same_origin`]) could not tell the console's own forms
/// from another site's.
pub fn secure_headers(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}

fn with_headers(mut r: Response) -> Response {
    secure_headers(r.headers_mut());
    r
}

pub fn respond(result: Result<Reply, Failure>, json: bool, logged_in: bool) -> Response {
    let r = match result {
        Ok(Reply::Html(body)) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
        }
        Ok(Reply::Json(v)) => json_response(StatusCode::OK, &v),
        Ok(Reply::Redirect(to)) => redirect(&to),
        Ok(Reply::File { name, mime, bytes }) => {
            let disposition = format!(
                "attachment; filename=\"export.xlsx\"; filename*=UTF-8''{}",
                percent(&name)
            );
            let mut r = (StatusCode::OK, bytes).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(f) => failure_response(&f, json, logged_in),
    };
    with_headers(r)
}

pub fn failure_response(f: &Failure, json: bool, logged_in: bool) -> Response {
    if f.status.is_server_error() {
        tracing::error!("console: {}", f.message);
    }
    if json {
        return json_response(f.status, &serde_json::json!({ "error": f.message }));
    }
    let page = ErrorPage {
        status: f.status.as_u16(),
        message: &f.message,
        logged_in,
    }
    .render()
    .unwrap_or_else(|_| f.message.clone());
    with_headers(
        (
            f.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response(),
    )
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        serde_json::to_string_pretty(v).unwrap_or_default(),
    )
        .into_response()
}

pub fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    with_headers(r)
}

/// A time as pages show it: `2026年12月06日 04:54:52` in the time zone it
/// was recorded in (China Standard Time); text that is not a time is
/// shown as it is.
pub fn cn_time(text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => t.format("%Y年%m月%d日 %H:%M:%S").to_string(),
        Err(_) => text.to_string(),
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string or form body as (name, value) pairs, names repeated as
/// sent.
pub fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

/// The first value of `name`.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether the JSON twin was asked for.
pub fn wants_json(uri: &Uri, headers: &HeaderMap) -> bool {
    uri.path().ends_with(".json")
        || uri.query().is_some_and(|q| {
            pairs(q.as_bytes())
                .iter()
                .any(|(k, v)| k == "format" && v == "json")
        })
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a form post comes from the console's own pages: a browser
/// names the page's origin in `Origin` (or `Referer`); a post naming
/// another origin is refused whatever its token.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match from {
        // Scripts and tools send neither; the token still has to match.
        None => true,
        Some(from) => {
            let rest = from
                .strip_prefix("http://")
                .or_else(|| from.strip_prefix("https://"));
            rest.is_some_and(|r| r.split('/').next() == Some(host))
        }
    }
}

/// Runs `f` off the async threads (the store is synchronous).
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Serves a page to a logged-in person allowed to do `need` (any of them):
/// others are sent to the login page (or get 401 as JSON), or refused
/// with 403.
pub async fn page(
    app: Arc<Console>,
    headers: HeaderMap,
    uri: Uri,
    need: &'static [Action],
    f: impl FnOnce(&Ctx) -> Result<Reply, Failure> + Send + 'static,
) -> Response {
    let json = wants_json(&uri, &headers);
    let sid = cookie(&headers, users::SESSION_COOKIE).map(str::to_string);
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    blocking(move || {
        let session = match sid {
            None => None,
            Some(id) => match users::session(&app.store, &id, jiandu_store::time::now()) {
                Ok(s) => s,
                Err(e) => return failure_response(&Failure::from(e), json, false),
            },
        };
        let Some(session) = session else {
            if json {
                return failure_response(
                    &Failure::new(StatusCode::UNAUTHORIZED, "请先登录"),
                    true,
                    false,
                );
            }
            return redirect(&format!("/login?next={}", percent(&target)));
        };
        let ctx = Ctx {
            app,
            user: session.user,
            csrf: session.csrf,
            json,
        };
        if !need.iter().any(|a| ctx.user.may(*a)) {
            return failure_response(&Failure::forbidden(), json, true);
        }
        respond(f(&ctx), json, true)
    })
    .await
}

/// Serves a form post: a page request whose body must carry the
/// session's CSRF token (`csrf`) and come from the console's origin.
pub async fn form(
    app: Arc<Console>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
    need: &'static [Action],
    f: impl FnOnce(&Ctx, &[(String, String)]) -> Result<Reply, Failure> + Send + 'static,
) -> Response {
    let fields = pairs(&body);
    let origin_ok = same_origin(&headers);
    page(app, headers, uri, need, move |ctx| {
        let token = field(&fields, "csrf").unwrap_or("");
        if !origin_ok || !users::csrf_matches(&ctx.csrf, token) {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "表单已失效或来源不明（CSRF 校验失败），请刷新页面后重试",
            ));
        }
        f(ctx, &fields)
    })
    .await
}

/// An embedded asset: name, content type, bytes.
struct Asset {
    name: &'static str,
    mime: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "console.css",
        mime: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/console.css"),
    },
    Asset {
        name: "htmx-2.0.4.min.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/htmx-2.0.4.min.js"),
    },
    Asset {
        name: "console.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/console.js"),
    },
];

/// `/assets/<name>`: only the files embedded in the binary, by exact name;
/// any other path (`..`, an encoded slash) is not found.
pub fn asset(name: &str) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return failure_response(&Failure::not_found("没有这个文件"), false, false);
    };
    let mut r = (StatusCode::OK, a.bytes).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    with_headers(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; jiandu_session_x=2; jiandu_session=3"),
        );
        assert_eq!(cookie(&h, "jiandu_session"), Some("3"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn a_post_from_another_origin_is_not_same_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h), "tools send no Origin");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080.evil.example"),
        );
        assert!(!same_origin(&h));
    }

    #[test]
    fn only_embedded_assets_are_served() {
        assert_eq!(asset("console.css").status(), StatusCode::OK);
        for bad in [
            "../Cargo.toml",
            "..%2fCargo.toml",
            "",
            "console.css/",
            "/etc/passwd",
        ] {
            assert_eq!(asset(bad).status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }

    #[test]
    fn times_are_shown_the_chinese_way_and_other_text_as_it_is() {
        assert_eq!(
            cn_time("2026-12-06T04:54:52.684+08:00"),
            "2026年12月06日 04:54:52"
        );
        assert_eq!(cn_time("—"), "—");
    }

    #[test]
    fn percent_encoding_leaves_only_unreserved_characters() {
        assert_eq!(
            percent("/leads?a=b c&d=线"),
            "%2Fleads%3Fa%3Db%20c%26d%3D%E7%BA%BF"
        );
    }
}
