//! Names: of models and datasets, and of the people who run commands.

/// Checks a model or dataset name: lowercase letters, digits, `-` and `_`,
/// starting with a letter or digit, at most 64 characters.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name (lowercase letters, digits, - and _, at most 64)"
        ))
    }
}

/// Who is running things: `JIANDU_OPERATOR`, else the login name.
pub fn default_operator() -> String {
    std::env::var("JIANDU_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|n| !n.trim().is_empty())
        // SAFETY: geteuid cannot fail.
        .or_else(|| user_name(unsafe { libc::geteuid() }))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The login name of `uid`, from the system's user database as the C
/// library is configured to read it (`getpwuid_r`: local files, a
/// directory service, …), or `None` when it has no entry.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: all-zero bytes are a valid `passwd` (null pointers and
        // zero ids); `getpwuid_r` fills it in.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `entry`, `buf` (with its length) and `found` are valid
        // for writes and outlive the call.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut entry, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || found.is_null() || entry.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success `pw_name` points to a NUL-terminated string
        // inside `buf`, which is still alive.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}
