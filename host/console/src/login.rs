//! Logging in and out.
//!
//! The login form carries a token that must match a cookie the form page
//! set (so another site cannot log a browser in under its own account),
//! every attempt is a ledger entry (`login-succeeded`, `login-refused`
//! with the reason and the address), and a successful login always gets a
//! new session id: an id planted in the browser before (session
//! fixation) is never taken over. The person trying is told the same
//! thing whatever the reason for a refusal ([`users::Refusal::MESSAGE`]).

use crate::web::{self, blocking, cookie, field, pairs, Failure};
use crate::App;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jiandu_record::ledger::{self, Draft, Login};
use jiandu_runs::users::{self, LoginOutcome, Refusal};
use std::net::SocketAddr;

/// The cookie that pairs the login form with the browser that loaded it.
const LOGIN_COOKIE: &str = "jiandu_login";

/// The largest login form accepted, in bytes.
const MAX_FORM: usize = 16 << 10;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    token: &'a str,
    next: &'a str,
    name: &'a str,
    message: Option<&'a str>,
}

/// Where to go after logging in: a path of this console, nothing else.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

fn token() -> Result<String, Failure> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Failure::internal(format!("no randomness for the login form: {e}")))?;
    Ok(hex::encode(bytes))
}

fn login_page(
    status: StatusCode,
    next: &str,
    name: &str,
    message: Option<&str>,
    secure: bool,
) -> Response {
    let token = match token() {
        Ok(t) => t,
        Err(f) => return web::failure_response(&f, false, false),
    };
    let body = LoginPage {
        token: &token,
        next,
        name,
        message,
    }
    .render()
    .unwrap_or_default();
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    let cookie = format!(
        "{LOGIN_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    web::secure_headers(r.headers_mut());
    r
}

/// `GET /login`.
pub async fn form_page(State(app): State<App>, uri: Uri) -> Response {
    let q = pairs(uri.query().unwrap_or("").as_bytes());
    let next = safe_next(field(&q, "next"));
    login_page(StatusCode::OK, &next, "", None, app.secure)
}

/// `POST /login`.
pub async fn submit(State(app): State<App>, req: Request) -> Response {
    let from = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".into());
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), MAX_FORM).await {
        Ok(b) => b,
        Err(_) => {
            return web::failure_response(&Failure::bad("登录表单过大"), false, false);
        }
    };
    let fields = pairs(&body);
    let next = safe_next(field(&fields, "next"));
    let name = field(&fields, "name").unwrap_or("").trim().to_string();
    let password = field(&fields, "password").unwrap_or("").to_string();
    let sent = field(&fields, "token").unwrap_or("");
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if !web::same_origin(&headers) || !users::csrf_matches(expected, sent) {
        return login_page(
            StatusCode::FORBIDDEN,
            &next,
            &name,
            Some("登录表单已失效，请重新输入"),
            app.secure,
        );
    }
    let secure = app.secure;
    let store = app.store.clone();
    let Ok(_turn) = app.logins.acquire().await else {
        return web::failure_response(&Failure::internal("the console is stopping"), false, false);
    };
    let attempt = blocking(move || -> Result<(LoginOutcome, String), Failure> {
        let outcome = users::verify_login(&store, &name, &password, jiandu_store::time::now())?;
        let login = match &outcome {
            LoginOutcome::Accepted { .. } => Login {
                name: name.clone(),
                refusal: None,
                failures: None,
                locked_until: None,
                from,
            },
            LoginOutcome::Refused { refusal, .. } => {
                let (reason, failures, until) = match refusal {
                    Refusal::UnknownUser => ("unknown-user", None, None),
                    Refusal::Disabled => ("disabled", None, None),
                    Refusal::Locked { until } => ("locked", None, Some(until.clone())),
                    Refusal::WrongPassword {
                        failures,
                        locked_until,
                    } => ("wrong-password", Some(*failures), locked_until.clone()),
                };
                Login {
                    name: name.clone(),
                    refusal: Some(reason.to_string()),
                    failures,
                    locked_until: until,
                    from,
                }
            }
        };
        let unit = jiandu_runs::policy::store_unit_label(&store)?;
        if let Err(e) = ledger::append(&store, &Draft::login(unit, login)) {
            // A login the record cannot hold does not happen.
            if let LoginOutcome::Accepted { session, .. } = &outcome {
                let _ = users::end_session(&store, &session.id);
            }
            return Err(e.into());
        }
        Ok((outcome, name))
    })
    .await;
    match attempt {
        Err(f) => web::failure_response(&f, false, false),
        Ok((LoginOutcome::Refused { .. }, name)) => login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            &name,
            Some(Refusal::MESSAGE_ZH),
            secure,
        ),
        Ok((LoginOutcome::Accepted { session, .. }, _)) => {
            let mut r = web::redirect(&next);
            let set = [
                users::session_cookie(&session.id, secure),
                format!("{LOGIN_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0"),
            ];
            for c in set {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            r
        }
    }
}

/// `POST /logout`: ends the session (the form carries its CSRF token).
pub async fn logout(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let sid = cookie(&headers, users::SESSION_COOKIE).map(str::to_string);
    let mut r = web::form(
        app.clone(),
        headers,
        uri,
        body,
        &users::Action::ALL,
        move |ctx, _| {
            if let Some(id) = &sid {
                users::end_session(ctx.store(), id)?;
            }
            Ok(web::Reply::Redirect("/login".into()))
        },
    )
    .await;
    if r.status() == StatusCode::SEE_OTHER {
        if let Ok(v) = HeaderValue::from_str(&users::cleared_session_cookie()) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_console_are_followed_after_login() {
        assert_eq!(safe_next(Some("/leads?status=new")), "/leads?status=new");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "leads",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
