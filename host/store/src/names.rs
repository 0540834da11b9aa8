//! Names of models and datasets.

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
        .unwrap_or_else(|_| "unknown".to_string())
}
