//! People of this store: who may sign in to the console, in which role,
//! and their sessions.
//!
//! Owns user accounts (name, [`Role`], an Argon2id password hash, disabled
//! flag, failed-login count and lockout), what each role may do
//! ([`Role::may`] over [`Action`], so that every page checks one
//! function), logging in ([`verify_login`]), sessions ([`create_session`],
//! [`session`], [`end_session`]) and the CSRF check ([`csrf_matches`]). It
//! owns no web server: the console's server calls these functions and
//! keeps the session id in a cookie ([`session_cookie`]).
//!
//! **Where they live.** In the store's `meta` tree, as JSON: a person
//! under `user/<name>`, a session under `session/<sha256 of its id, hex>`.
//! A session is kept by the hash of its id, so a copy of the store (a
//! backup) holds no id a browser could present.
//!
//! **Passwords** are at least [`MIN_PASSWORD_CHARS`] characters and are
//! never stored, logged or returned: only their Argon2id hash in PHC form
//! (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`, a random 16-byte salt each;
//! the parameters are OWASP's first recommendation and are read back from
//! each hash, so they can be raised later without invalidating old ones).
//! [`User`] has no hash field: whatever lists people cannot show one.
//!
//! **Logging in.** [`LOCKOUT_AFTER`] wrong passwords in a row lock the
//! account for [`LOCKOUT_FOR`]; while it is locked, even the right
//! password is refused and not checked, and refused attempts do not extend
//! the lock. [`reset_password`] clears it at once. A name nobody has costs
//! the same Argon2 computation as a wrong password, and so does a disabled
//! or locked account, so the time an answer takes does not tell who
//! exists. Every login that succeeds gets a new session id; no id a browser
//! brought is ever taken over (no session fixation).
//!
//! **Sessions** end after [`SESSION_IDLE`] without a request, when ended
//! ([`end_session`]), and when their person is disabled or gets a new
//! password. [`session`] reads the person afresh on every request, so a
//! role or a disabling takes effect at once.
//!
//! **On the record.** This module writes no ledger entry: the ledger's
//! entry types belong to `jiandu-record`, where login entries are still to
//! be added. [`verify_login`] returns a [`LoginOutcome`] naming who tried,
//! whether it succeeded, why not, and whether this attempt locked the
//! account, which is what the caller writes to the ledger.

use crate::{Error, Result, Store};
use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, FixedOffset, SecondsFormat, TimeDelta};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Shortest password accepted, in characters. Length is what makes a
/// password hard to guess; no rule about kinds of characters is added
/// (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted, in bytes: a bound on the work one login
/// asks of the host.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Wrong passwords in a row that lock an account.
pub const LOCKOUT_AFTER: u32 = 5;
/// How long a locked account stays locked (unless reset sooner).
pub const LOCKOUT_FOR: Duration = Duration::from_secs(15 * 60);
/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(8 * 60 * 60);
/// A session's last-seen time is written at most this often, so that a
/// page's many requests do not each write to the store.
const SESSION_TOUCH_EVERY: Duration = Duration::from_secs(60);
/// The name of the cookie that carries the session id.
pub const SESSION_COOKIE: &str = "jiandu_session";

/// Argon2id memory in KiB, passes and lanes (OWASP: m=19 MiB, t=2, p=1).
const ARGON2_M_KIB: u32 = 19 * 1024;
const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;

const USER_PREFIX: &str = "user/";
const SESSION_PREFIX: &str = "session/";

/// What a person does in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees leads and acts on them (marks, resolves).
    Reviewer,
    /// Everything a reviewer does, and manages models, datasets and runs;
    /// sees personal values in clear.
    Admin,
    /// Sees the audit views (the ledger, disclosures, verification), and
    /// nothing else.
    Auditor,
}

/// Something a page or a request does, checked with [`User::may`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// See leads and act on them.
    ReviewLeads,
    /// See personal values in clear (a disclosure, on the record).
    RevealClear,
    /// Build, import and remove models.
    ManageModels,
    /// Ingest, roll back and prune datasets.
    ManageDatasets,
    /// Start runs and replays.
    ManageRuns,
    /// See the audit views.
    SeeAudit,
}

impl Action {
    /// Every action, for tables and tests.
    pub const ALL: [Action; 6] = [
        Action::ReviewLeads,
        Action::RevealClear,
        Action::ManageModels,
        Action::ManageDatasets,
        Action::ManageRuns,
        Action::SeeAudit,
    ];
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Reviewer, Role::Admin, Role::Auditor];

    /// Whether the role allows `action`, before any personal grant (see
    /// [`User::may`]).
    ///
    /// Admins do not see the audit views: those who run models are not
    /// those who check them. A person who does both has two accounts.
    pub fn may(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Reviewer => matches!(action, ReviewLeads),
            Role::Admin => matches!(
                action,
                ReviewLeads | RevealClear | ManageModels | ManageDatasets | ManageRuns
            ),
            Role::Auditor => matches!(action, SeeAudit),
        }
    }

    /// `reviewer`, `admin` or `auditor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person of this store, as shown and checked: never their password or
/// its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// A reviewer granted [`Action::RevealClear`] ([`set_reveal`]).
    #[serde(default)]
    pub may_reveal: bool,
    pub disabled: bool,
    pub created_at: String,
    /// Wrong passwords in a row since the last good one (or the last
    /// lock, once it ran out).
    pub failed_logins: u32,
    /// Until when the account is locked (RFC 3339), after
    /// [`LOCKOUT_AFTER`] wrong passwords; a time in the past means
    /// unlocked.
    pub locked_until: Option<String>,
    #[serde(default)]
    pub last_login_at: Option<String>,
}

impl User {
    /// Whether this person may do `action`: what their role allows, and
    /// seeing personal values in clear when granted to a reviewer. A
    /// disabled person may do nothing.
    pub fn may(&self, action: Action) -> bool {
        if self.disabled {
            return false;
        }
        self.role.may(action)
            || (action == Action::RevealClear
                && self.may_reveal
                && self.role.may(Action::ReviewLeads))
    }

    /// The end of the lock in force at `now`, if any.
    pub fn locked_at(&self, now: DateTime<FixedOffset>) -> Option<DateTime<FixedOffset>> {
        let until = DateTime::parse_from_rfc3339(self.locked_until.as_deref()?).ok()?;
        (until > now).then_some(until)
    }
}

/// A person as stored: the [`User`] and the password hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    user: User,
    /// Argon2id, PHC string.
    password_hash: String,
}

/// A session as stored, under the hash of its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionRecord {
    user: String,
    csrf: String,
    created_at: String,
    last_seen: String,
}

/// A session just created: the id goes into the cookie
/// ([`session_cookie`]), the CSRF token into every form of its pages.
/// Neither is printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    /// 256 random bits, hex.
    pub id: String,
    /// 256 random bits, hex.
    pub csrf: String,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSession { id: <secret>, csrf: <secret> }")
    }
}

/// A live session, as [`session`] finds it on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The person, as stored now.
    pub user: User,
    /// The token this session's forms must send back ([`csrf_matches`]).
    pub csrf: String,
}

/// Why a login was refused. The reason is for the record; the person
/// trying is shown [`Refusal::MESSAGE`] whatever it is, so the page does
/// not tell who exists or whose account is locked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Refusal {
    /// No person has this name.
    UnknownUser,
    /// The account is disabled.
    Disabled,
    /// The account is locked until `until`; the password was not checked.
    Locked { until: String },
    /// The password is wrong: `failures` in a row now, and when this
    /// attempt locked the account, until when.
    WrongPassword {
        failures: u32,
        locked_until: Option<String>,
    },
}

impl Refusal {
    /// What the person trying to log in is told, whatever the reason.
    pub const MESSAGE: &'static str =
        "the name or the password is wrong, or the account cannot log in now; ask an admin if this goes on";

    /// [`Refusal::MESSAGE`] as the console says it.
    pub const MESSAGE_ZH: &'static str =
        "用户名或密码错误，或该账号暂时无法登录；如持续出现，请联系管理员";
}

/// What a login attempt came to: what the caller writes to the ledger
/// (this module writes none) and acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in, with a new session.
    Accepted { user: User, session: NewSession },
    /// Refused: `name` as given (it may name nobody).
    Refused { name: String, refusal: Refusal },
}

impl LoginOutcome {
    /// The name that was tried.
    pub fn name(&self) -> &str {
        match self {
            LoginOutcome::Accepted { user, .. } => &user.name,
            LoginOutcome::Refused { name, .. } => name,
        }
    }

    /// Whether this attempt locked the account (worth its own line on
    /// the record).
    pub fn locked_now(&self) -> bool {
        matches!(
            self,
            LoginOutcome::Refused {
                refusal: Refusal::WrongPassword {
                    locked_until: Some(_),
                    ..
                },
                ..
            }
        )
    }
}

/// Checks a person's name: 1 to [`MAX_NAME_CHARS`] characters, no control
/// or bidirectional-override characters, no space at either end.
pub fn check_name(name: &str) -> Result<()> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some("is longer than 64 characters")
    } else if name.contains(crate::text::is_unsafe) {
        Some("holds a control or text-direction character")
    } else if name.trim() != name {
        Some("starts or ends with a space")
    } else {
        None
    };
    match problem {
        Some(p) => Err(Error::Other(format!(
            "user name `{}` {p}: a name is 1 to {MAX_NAME_CHARS} characters, Chinese included, with no control characters and no space at either end",
            crate::text::printable(name)
        ))),
        None => Ok(()),
    }
}

/// Checks a new password for `name`.
pub fn check_password(name: &str, password: &str) -> Result<()> {
    let chars = password.chars().count();
    let problem = if chars < MIN_PASSWORD_CHARS {
        format!("is {chars} characters long; it must be at least {MIN_PASSWORD_CHARS}")
    } else if password.len() > MAX_PASSWORD_BYTES {
        format!("is longer than {MAX_PASSWORD_BYTES} bytes")
    } else if password == name {
        "is the user's name".to_string()
    } else {
        return Ok(());
    };
    Err(Error::Other(format!(
        "user `{name}`: the password {problem}; nothing was changed"
    )))
}

fn user_key(name: &str) -> String {
    format!("{USER_PREFIX}{name}")
}

fn session_key(id: &str) -> String {
    format!(
        "{SESSION_PREFIX}{}",
        hex::encode(Sha256::digest(id.as_bytes()))
    )
}

fn text_time(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).expect("the module's durations fit a TimeDelta")
}

fn unreadable(store: &Store, key: &str, e: impl std::fmt::Display) -> Error {
    Error::Store {
        path: store.root().to_path_buf(),
        message: format!("meta `{key}` is unreadable: {e}"),
    }
}

fn no_user(name: &str) -> Error {
    Error::Other(format!(
        "there is no user `{}`; `jiandu user list` shows who there is",
        crate::text::printable(name)
    ))
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .expect("the Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Error::Other(format!("the system's random number source failed: {e}")))?;
    Ok(bytes)
}

/// The Argon2id PHC string of `password` under a new random salt.
fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| Error::Other(format!("password salt: {e}")))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Other(format!("hashing a password: {e}")))
}

/// Whether `password` matches the stored `phc` hash (in constant time, by
/// the `password-hash` crate). A hash that cannot be read is an error.
fn password_matches(store: &Store, name: &str, phc: &str, password: &str) -> Result<bool> {
    let parsed = PasswordHash::new(phc)
        .map_err(|e| unreadable(store, &user_key(name), format!("password hash: {e}")))?;
    match hasher().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(e) => Err(unreadable(
            store,
            &user_key(name),
            format!("password hash: {e}"),
        )),
    }
}

/// The same Argon2 work as checking a password, for an answer that must
/// not be quicker than one: an unknown name, a disabled or locked account.
fn spend_a_hash(password: &str) {
    let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").expect("a valid fixed salt");
    let _ = std::hint::black_box(hasher().hash_password(password.as_bytes(), &salt));
}

fn read(store: &Store, name: &str) -> Result<Option<(sled::IVec, Record)>> {
    let key = user_key(name);
    match store.meta.get(&key)? {
        None => Ok(None),
        Some(raw) => {
            let record = serde_json::from_slice(&raw).map_err(|e| unreadable(store, &key, e))?;
            Ok(Some((raw, record)))
        }
    }
}

/// Changes the record of `name` with `change`, compare-and-swap, trying
/// again when another change came first. `change` must be cheap: it may
/// run more than once.
fn update<T>(
    store: &Store,
    name: &str,
    mut change: impl FnMut(&mut Record) -> Result<T>,
) -> Result<T> {
    let key = user_key(name);
    loop {
        let Some((raw, mut record)) = read(store, name)? else {
            return Err(no_user(name));
        };
        let out = change(&mut record)?;
        let bytes = serde_json::to_vec(&record).expect("a user record serializes");
        if store
            .meta
            .compare_and_swap(&key, Some(&raw), Some(bytes))?
            .is_ok()
        {
            store.flush()?;
            return Ok(out);
        }
    }
}

/// Checks that `name` is a valid name no one has, also when it differs
/// only in case from one that is taken.
pub fn check_available(store: &Store, name: &str) -> Result<()> {
    check_name(name)?;
    match list(store)?
        .into_iter()
        .find(|u| u.name.to_lowercase() == name.to_lowercase())
    {
        None => Ok(()),
        Some(other) => Err(Error::Other(format!(
            "user `{}` already exists{}; `jiandu user reset {}` gives them a new password",
            other.name,
            if other.name == name {
                String::new()
            } else {
                format!(" (a name differing from `{name}` only in case)")
            },
            other.name
        ))),
    }
}

/// Adds a person with a password. Refuses a name that is taken
/// ([`check_available`]) and a password too short ([`check_password`]).
pub fn add(
    store: &Store,
    name: &str,
    role: Role,
    password: &str,
    now: DateTime<FixedOffset>,
) -> Result<User> {
    check_available(store, name)?;
    check_password(name, password)?;
    let record = Record {
        user: User {
            name: name.to_string(),
            role,
            may_reveal: false,
            disabled: false,
            created_at: text_time(now),
            failed_logins: 0,
            locked_until: None,
            last_login_at: None,
        },
        password_hash: hash_password(password)?,
    };
    let bytes = serde_json::to_vec(&record).expect("a user record serializes");
    if store
        .meta
        .compare_and_swap(user_key(name), None::<&[u8]>, Some(bytes))?
        .is_err()
    {
        return Err(Error::Other(format!("user `{name}` already exists")));
    }
    store.flush()?;
    Ok(record.user)
}

/// Everyone, by name.
pub fn list(store: &Store) -> Result<Vec<User>> {
    let mut users = Vec::new();
    for item in store.meta.scan_prefix(USER_PREFIX) {
        let (key, raw) = item?;
        let record: Record = serde_json::from_slice(&raw)
            .map_err(|e| unreadable(store, &String::from_utf8_lossy(&key), e))?;
        users.push(record.user);
    }
    Ok(users)
}

/// One person, if there is one by that name.
pub fn get(store: &Store, name: &str) -> Result<Option<User>> {
    Ok(read(store, name)?.map(|(_, r)| r.user))
}

/// Disables a person: they cannot log in, and their sessions end.
/// Returns the person, and whether anything changed.
pub fn disable(store: &Store, name: &str) -> Result<(User, bool)> {
    let out = set_disabled(store, name, true)?;
    end_sessions_of(store, name)?;
    Ok(out)
}

/// Lets a disabled person log in again. Returns the person, and whether
/// anything changed.
pub fn enable(store: &Store, name: &str) -> Result<(User, bool)> {
    set_disabled(store, name, false)
}

fn set_disabled(store: &Store, name: &str, disabled: bool) -> Result<(User, bool)> {
    update(store, name, |r| {
        let changed = r.user.disabled != disabled;
        r.user.disabled = disabled;
        Ok((r.user.clone(), changed))
    })
}

/// Grants a reviewer [`Action::RevealClear`], or takes it back. Admins
/// have it by their role, auditors cannot be given it.
pub fn set_reveal(store: &Store, name: &str, allowed: bool) -> Result<User> {
    update(store, name, |r| {
        if allowed && r.user.role != Role::Reviewer {
            return Err(Error::Other(format!(
                "user `{name}` is an {}: only a reviewer is granted seeing personal values in clear ({})",
                r.user.role,
                if r.user.role == Role::Admin {
                    "an admin sees them by role"
                } else {
                    "an auditor works from the record"
                }
            )));
        }
        r.user.may_reveal = allowed;
        Ok(r.user.clone())
    })
}

/// Gives a person a new password, clears their lockout and failed
/// logins, and ends their sessions.
pub fn reset_password(store: &Store, name: &str, password: &str) -> Result<User> {
    check_password(name, password)?;
    if read(store, name)?.is_none() {
        return Err(no_user(name));
    }
    let hash = hash_password(password)?;
    let user = update(store, name, |r| {
        r.password_hash = hash.clone();
        r.user.failed_logins = 0;
        r.user.locked_until = None;
        Ok(r.user.clone())
    })?;
    end_sessions_of(store, name)?;
    Ok(user)
}

/// Checks a login at `now` and, when it succeeds, creates a new session.
///
/// Refusals are not errors: they come back as [`LoginOutcome::Refused`]
/// for the caller to record; an error is the store failing or a stored
/// hash that cannot be read. See the module doc for lockout and timing.
pub fn verify_login(
    store: &Store,
    name: &str,
    password: &str,
    now: DateTime<FixedOffset>,
) -> Result<LoginOutcome> {
    let refused = |refusal| {
        Ok(LoginOutcome::Refused {
            name: name.to_string(),
            refusal,
        })
    };
    // Another login of the same person may change the record between the
    // check and the write: check again against what is stored then.
    for _ in 0..8 {
        let Some((raw, record)) = read(store, name)? else {
            spend_a_hash(password);
            return refused(Refusal::UnknownUser);
        };
        if record.user.disabled {
            spend_a_hash(password);
            return refused(Refusal::Disabled);
        }
        if let Some(until) = record.user.locked_at(now) {
            spend_a_hash(password);
            return refused(Refusal::Locked {
                until: text_time(until),
            });
        }
        let good = password_matches(store, name, &record.password_hash, password)?;
        let mut next = record.clone();
        if next.user.locked_until.is_some() {
            // A lock that has run out: a new count starts.
            next.user.locked_until = None;
            next.user.failed_logins = 0;
        }
        if good {
            next.user.failed_logins = 0;
            next.user.last_login_at = Some(text_time(now));
        } else {
            next.user.failed_logins += 1;
            if next.user.failed_logins >= LOCKOUT_AFTER {
                next.user.locked_until = Some(text_time(now + delta(LOCKOUT_FOR)));
            }
        }
        let bytes = serde_json::to_vec(&next).expect("a user record serializes");
        if store
            .meta
            .compare_and_swap(user_key(name), Some(&raw), Some(bytes))?
            .is_err()
        {
            continue;
        }
        store.flush()?;
        return if good {
            let session = create_session(store, &next.user, now)?;
            Ok(LoginOutcome::Accepted {
                user: next.user,
                session,
            })
        } else {
            refused(Refusal::WrongPassword {
                failures: next.user.failed_logins,
                locked_until: next.user.locked_until,
            })
        };
    }
    Err(Error::Other(format!(
        "user `{name}` kept changing while logging in; try again"
    )))
}

/// Creates a session for `user` at `now`: a new random id and CSRF token.
/// Also removes sessions that have run out.
pub fn create_session(
    store: &Store,
    user: &User,
    now: DateTime<FixedOffset>,
) -> Result<NewSession> {
    remove_sessions(store, |s| idle_out(s, now))?;
    let session = NewSession {
        id: hex::encode(random_bytes::<32>()?),
        csrf: hex::encode(random_bytes::<32>()?),
    };
    let record = SessionRecord {
        user: user.name.clone(),
        csrf: session.csrf.clone(),
        created_at: text_time(now),
        last_seen: text_time(now),
    };
    store.meta.insert(
        session_key(&session.id),
        serde_json::to_vec(&record).expect("a session serializes"),
    )?;
    store.flush()?;
    Ok(session)
}

/// Whether a stored session has been idle for [`SESSION_IDLE`] at `now`
/// (an unreadable time counts as run out).
fn idle_out(s: &SessionRecord, now: DateTime<FixedOffset>) -> bool {
    DateTime::parse_from_rfc3339(&s.last_seen).map_or(true, |t| now - t >= delta(SESSION_IDLE))
}

/// The live session of `id` at `now`, with its person as stored now; `None`
/// when there is none, it has run out (it is then removed), or its person
/// is gone or disabled. Marks the session as used.
pub fn session(store: &Store, id: &str, now: DateTime<FixedOffset>) -> Result<Option<Session>> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let key = session_key(id);
    let Some(raw) = store.meta.get(&key)? else {
        return Ok(None);
    };
    let record: SessionRecord =
        serde_json::from_slice(&raw).map_err(|e| unreadable(store, &key, e))?;
    if idle_out(&record, now) {
        let _ = store
            .meta
            .compare_and_swap(&key, Some(&raw), None::<&[u8]>)?;
        return Ok(None);
    }
    let Some(user) = get(store, &record.user)?.filter(|u| !u.disabled) else {
        let _ = store
            .meta
            .compare_and_swap(&key, Some(&raw), None::<&[u8]>)?;
        return Ok(None);
    };
    let seen =
        DateTime::parse_from_rfc3339(&record.last_seen).map_err(|e| unreadable(store, &key, e))?;
    if now - seen >= delta(SESSION_TOUCH_EVERY) {
        let touched = SessionRecord {
            last_seen: text_time(now),
            ..record.clone()
        };
        let bytes = serde_json::to_vec(&touched).expect("a session serializes");
        // Compared and swapped, so a session ended meanwhile stays ended.
        if store
            .meta
            .compare_and_swap(&key, Some(&raw), Some(bytes))?
            .is_err()
            && store.meta.get(&key)?.is_none()
        {
            return Ok(None);
        }
    }
    Ok(Some(Session {
        user,
        csrf: record.csrf,
    }))
}

/// Ends the session of `id` (logging out). Returns whether there was one.
pub fn end_session(store: &Store, id: &str) -> Result<bool> {
    let gone = store.meta.remove(session_key(id))?.is_some();
    store.flush()?;
    Ok(gone)
}

/// Ends every session of `name`. Returns how many there were.
pub fn end_sessions_of(store: &Store, name: &str) -> Result<usize> {
    remove_sessions(store, |s| s.user == name)
}

fn remove_sessions(store: &Store, which: impl Fn(&SessionRecord) -> bool) -> Result<usize> {
    let mut removed = 0;
    for item in store.meta.scan_prefix(SESSION_PREFIX) {
        let (key, raw) = item?;
        // A session that cannot be read cannot be used: remove it too.
        let remove = serde_json::from_slice::<SessionRecord>(&raw).map_or(true, |s| which(&s));
        if remove
            && store
                .meta
                .compare_and_swap(&key, Some(&raw), None::<&[u8]>)?
                .is_ok()
        {
            removed += 1;
        }
    }
    if removed > 0 {
        store.flush()?;
    }
    Ok(removed)
}

/// Whether the CSRF token a form sent is the session's, compared in
/// constant time.
pub fn csrf_matches(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The `Set-Cookie` value that hands a browser its session id: not
/// readable by scripts (`HttpOnly`), never sent by another site's page
/// (`SameSite=Strict`), kept until the browser closes. `secure` adds
/// `Secure` (send only over HTTPS): give it whenever the console is
/// served over HTTPS.
pub fn session_cookie(id: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie (on logout).
pub fn cleared_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s")).unwrap();
        (dir, store)
    }

    fn t0() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-12-01T09:00:00.000+08:00").unwrap()
    }

    fn later(d: Duration) -> DateTime<FixedOffset> {
        t0() + delta(d)
    }

    const PW: &str = "correct horse battery";

    fn refusal(outcome: LoginOutcome) -> Refusal {
        match outcome {
            LoginOutcome::Refused { refusal, .. } => refusal,
            LoginOutcome::Accepted { user, .. } => panic!("{} was let in", user.name),
        }
    }

    fn accepted(outcome: LoginOutcome) -> (User, NewSession) {
        match outcome {
            LoginOutcome::Accepted { user, session } => (user, session),
            LoginOutcome::Refused { name, refusal } => panic!("{name} refused: {refusal:?}"),
        }
    }

    #[test]
    fn roles_allow_what_the_console_issue_says() {
        use Action::*;
        let table = [
            (Role::Reviewer, vec![ReviewLeads]),
            (
                Role::Admin,
                vec![
                    ReviewLeads,
                    RevealClear,
                    ManageModels,
                    ManageDatasets,
                    ManageRuns,
                ],
            ),
            (Role::Auditor, vec![SeeAudit]),
        ];
        for (role, allowed) in table {
            for action in Action::ALL {
                assert_eq!(
                    role.may(action),
                    allowed.contains(&action),
                    "{role} may {action:?}"
                );
            }
        }
    }

    #[test]
    fn a_reviewer_granted_reveal_may_reveal_and_others_cannot_be_granted_it() {
        let (_d, s) = store();
        add(&s, "li", Role::Reviewer, PW, t0()).unwrap();
        add(&s, "audit", Role::Auditor, PW, t0()).unwrap();
        assert!(!get(&s, "li").unwrap().unwrap().may(Action::RevealClear));
        let li = set_reveal(&s, "li", true).unwrap();
        assert!(li.may(Action::RevealClear));
        assert!(!li.may(Action::ManageRuns));
        let err = set_reveal(&s, "audit", true).unwrap_err().to_string();
        assert!(err.contains("only a reviewer"), "{err}");
        assert!(!set_reveal(&s, "li", false)
            .unwrap()
            .may(Action::RevealClear));
    }

    #[test]
    fn passwords_are_stored_as_argon2id_hashes_with_their_own_salt() {
        let (_d, s) = store();
        add(&s, "a", Role::Reviewer, PW, t0()).unwrap();
        add(&s, "b", Role::Reviewer, PW, t0()).unwrap();
        let hash = |n| read(&s, n).unwrap().unwrap().1.password_hash;
        let (a, b) = (hash("a"), hash("b"));
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "same password, different salts");
        assert!(!a.contains(PW));
        let raw = s.meta.get(user_key("a")).unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains(PW));
        assert!(password_matches(&s, "a", &a, PW).unwrap());
        assert!(!password_matches(&s, "a", &a, "correct horse battery!").unwrap());
        let shown = serde_json::to_string(&list(&s).unwrap()).unwrap();
        assert!(
            !shown.contains("argon2") && !shown.contains("password"),
            "{shown}"
        );
    }

    #[test]
    fn names_are_checked() {
        let longest = "名".repeat(64);
        for good in ["li", "张三", "a.b-c_d@x", longest.as_str()] {
            check_name(good).unwrap();
        }
        let too_long = "a".repeat(65);
        for (bad, why) in [
            ("", "is empty"),
            (too_long.as_str(), "longer than 64"),
            ("a\u{1b}[2Jb", "control"),
            ("a\nb", "control"),
            ("a\u{202e}b", "control"),
            (" li", "space"),
            ("li ", "space"),
        ] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(!err.contains('\u{1b}'), "the error shows the name inert");
        }
        let (_d, s) = store();
        assert!(add(&s, "a\u{7}", Role::Admin, PW, t0()).is_err());
        assert!(list(&s).unwrap().is_empty());
    }

    #[test]
    fn short_passwords_and_taken_names_are_refused() {
        let (_d, s) = store();
        let err = add(&s, "li", Role::Admin, "elevenchars", t0())
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 12"), "{err}");
        add(&s, "li", Role::Admin, "twelve chars", t0()).unwrap();
        let err = add(&s, "LI", Role::Admin, PW, t0())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already exists") && err.contains("only in case"),
            "{err}"
        );
        let err = reset_password(&s, "li", "short").unwrap_err().to_string();
        assert!(err.contains("nothing was changed"), "{err}");
        let err = check_password("passwordpassword", "passwordpassword").unwrap_err();
        assert!(err.to_string().contains("the user's name"));
    }

    #[test]
    fn the_right_password_logs_in_with_a_new_session_each_time() {
        let (_d, s) = store();
        add(&s, "li", Role::Reviewer, PW, t0()).unwrap();
        let (user, first) = accepted(verify_login(&s, "li", PW, t0()).unwrap());
        assert_eq!(
            user.last_login_at.as_deref(),
            Some("2026-12-01T09:00:00.000+08:00")
        );
        let (_, second) = accepted(verify_login(&s, "li", PW, t0()).unwrap());
        assert_ne!(first.id, second.id);
        assert_ne!(first.csrf, second.csrf);
        assert_eq!(first.id.len(), 64);
        assert!(first.id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!format!("{first:?}").contains(&first.id));
        // Stored by its hash only.
        assert!(s
            .meta
            .get(format!("session/{}", first.id))
            .unwrap()
            .is_none());
        let live = session(&s, &first.id, t0()).unwrap().unwrap();
        assert_eq!(live.user.name, "li");
        assert_eq!(live.csrf, first.csrf);
    }

    #[test]
    fn unknown_names_are_refused_like_wrong_passwords_in_what_is_shown() {
        let (_d, s) = store();
        add(&s, "li", Role::Reviewer, PW, t0()).unwrap();
        assert_eq!(
            refusal(verify_login(&s, "wang", PW, t0()).unwrap()),
            Refusal::UnknownUser
        );
        assert!(list(&s).unwrap().iter().all(|u| u.name != "wang"));
        assert!(matches!(
            refusal(verify_login(&s, "li", "wrong password!", t0()).unwrap()),
            Refusal::WrongPassword {
                failures: 1,
                locked_until: None
            }
        ));
    }

    #[test]
    fn five_wrong_passwords_lock_for_fifteen_minutes() {
        let (_d, s) = store();
        add(&s, "li", Role::Reviewer, PW, t0()).unwrap();
        for n in 1..LOCKOUT_AFTER {
            let out = verify_login(
                &s,
                "li",
                "wrong password!",
                later(Duration::from_secs(n as u64)),
            )
            .unwrap();
            assert!(!out.locked_now());
            assert_eq!(
                refusal(out),
                Refusal::WrongPassword {
                    failures: n,
                    locked_until: None
                }
            );
        }
        let at = later(Duration::from_secs(10));
        let out = verify_login(&s, "li", "wrong password!", at).unwrap();
        assert!(out.locked_now());
        let until = text_time(at + delta(LOCKOUT_FOR));
        assert_eq!(
            refusal(out),
            Refusal::WrongPassword {
                failures: 5,
                locked_until: Some(until.clone())
            }
        );
        // Locked: the right password is refused, and trying does not extend it.
        let just_before = at + delta(LOCKOUT_FOR) - TimeDelta::seconds(1);
        for when in [at, just_before] {
            assert_eq!(
                refusal(verify_login(&s, "li", PW, when).unwrap()),
                Refusal::Locked {
                    until: until.clone()
                }
            );
        }
        let user = get(&s, "li").unwrap().unwrap();
        assert_eq!(user.locked_until.as_deref(), Some(until.as_str()));
        assert!(user.locked_at(just_before).is_some());
        // Once it runs out, a wrong password starts a new count…
        let after = at + delta(LOCKOUT_FOR);
        assert_eq!(
            refusal(verify_login(&s, "li", "wrong password!", after).unwrap()),
            Refusal::WrongPassword {
                failures: 1,
                locked_until: None
            }
        );
        // …and the right one logs in and clears it.
        accepted(verify_login(&s, "li", PW, after).unwrap());
        assert_eq!(get(&s, "li").unwrap().unwrap().failed_logins, 0);
    }

    #[test]
    fn a_good_password_clears_the_count_of_wrong_ones() {
        let (_d, s) = store();
        add(&s, "li", Role::Reviewer, PW, t0()).unwrap();
        for _ in 0..LOCKOUT_AFTER - 1 {
            verify_login(&s, "li", "wrong password!", t0()).unwrap();
        }
        accepted(verify_login(&s, "li", PW, t0()).unwrap());
        assert!(!verify_login(&s, "li", "wrong password!", t0())
            .unwrap()
            .locked_now());
    }

    #[test]
    fn reset_clears_the_lockout_and_ends_sessions() {
        let (_d, s) = store();
        add(&s, "li", Role::Reviewer, PW, t0()).unwrap();
        let (_, old) = accepted(verify_login(&s, "li", PW, t0()).unwrap());
        for _ in 0..LOCKOUT_AFTER {
            verify_login(&s, "li", "wrong password!", t0()).unwrap();
        }
        assert!(matches!(
            refusal(verify_login(&s, "li", PW, t0()).unwrap()),
            Refusal::Locked { .. }
        ));
        let user = reset_password(&s, "li", "a new passphrase").unwrap();
        assert_eq!((user.failed_logins, user.locked_until), (0, None));
        assert!(session(&s, &old.id, t0()).unwrap().is_none());
        assert!(matches!(
            refusal(verify_login(&s, "li", PW, t0()).unwrap()),
            Refusal::WrongPassword { failures: 1, .. }
        ));
        accepted(verify_login(&s, "li", "a new passphrase", t0()).unwrap());
        let err = reset_password(&s, "nobody", PW).unwrap_err().to_string();
        assert!(err.contains("no user `nobody`"), "{err}");
    }

    #[test]
    fn a_disabled_user_cannot_log_in_and_loses_their_sessions() {
        let (_d, s) = store();
        add(&s, "li", Role::Admin, PW, t0()).unwrap();
        let (_, live) = accepted(verify_login(&s, "li", PW, t0()).unwrap());
        let (user, changed) = disable(&s, "li").unwrap();
        assert!(changed && user.disabled);
        assert!(!user.may(Action::ReviewLeads));
        assert!(
            !disable(&s, "li").unwrap().1,
            "disabling again changes nothing"
        );
        assert_eq!(
            refusal(verify_login(&s, "li", PW, t0()).unwrap()),
            Refusal::Disabled
        );
        assert!(session(&s, &live.id, t0()).unwrap().is_none());
        assert_eq!(get(&s, "li").unwrap().unwrap().failed_logins, 0);
        enable(&s, "li").unwrap();
        accepted(verify_login(&s, "li", PW, t0()).unwrap());
    }

    #[test]
    fn a_session_ends_after_eight_idle_hours_and_each_request_keeps_it_alive() {
        let (_d, s) = store();
        add(&s, "li", Role::Reviewer, PW, t0()).unwrap();
        let (_, new) = accepted(verify_login(&s, "li", PW, t0()).unwrap());
        let hour = Duration::from_secs(3600);
        // Used after 7 hours: it lives 8 more from then.
        assert!(session(&s, &new.id, later(hour * 7)).unwrap().is_some());
        assert!(
            session(&s, &new.id, later(hour * 15 - Duration::from_secs(1)))
                .unwrap()
                .is_some()
        );
        let idle_from = hour * 15 - Duration::from_secs(1);
        assert!(session(&s, &new.id, later(idle_from + SESSION_IDLE))
            .unwrap()
            .is_none());
        // Gone for good, even asked about at an earlier time.
        assert!(session(&s, &new.id, later(idle_from)).unwrap().is_none());
    }

    #[test]
    fn ended_and_made_up_sessions_are_not_sessions() {
        let (_d, s) = store();
        add(&s, "li", Role::Reviewer, PW, t0()).unwrap();
        let (_, new) = accepted(verify_login(&s, "li", PW, t0()).unwrap());
        assert!(end_session(&s, &new.id).unwrap());
        assert!(!end_session(&s, &new.id).unwrap());
        assert!(session(&s, &new.id, t0()).unwrap().is_none());
        for made_up in ["", "00", &"0".repeat(64), &"z".repeat(64), &new.csrf] {
            assert!(session(&s, made_up, t0()).unwrap().is_none(), "{made_up}");
        }
    }

    #[test]
    fn a_new_session_sweeps_out_sessions_that_ran_out() {
        let (_d, s) = store();
        let li = add(&s, "li", Role::Reviewer, PW, t0()).unwrap();
        create_session(&s, &li, t0()).unwrap();
        create_session(&s, &li, t0()).unwrap();
        let count = || s.meta.scan_prefix(SESSION_PREFIX).count();
        assert_eq!(count(), 2);
        create_session(&s, &li, later(SESSION_IDLE)).unwrap();
        assert_eq!(count(), 1);
    }

    #[test]
    fn csrf_tokens_compare_whole_and_exact() {
        let token = "ab".repeat(32);
        assert!(csrf_matches(&token, &token));
        assert!(!csrf_matches(&token, &"ab".repeat(31)));
        assert!(!csrf_matches(&token, &format!("{token}00")));
        assert!(!csrf_matches(&token, &token.to_uppercase()));
        assert!(!csrf_matches(&token, ""));
        assert!(!csrf_matches("", ""), "an empty token never matches");
    }

    #[test]
    fn the_session_cookie_is_http_only_and_same_site_strict() {
        let c = session_cookie("00ff", false);
        assert_eq!(c, "jiandu_session=00ff; Path=/; HttpOnly; SameSite=Strict");
        assert!(session_cookie("00ff", true).ends_with("; Secure"));
        assert!(cleared_session_cookie().contains("Max-Age=0"));
    }
}
