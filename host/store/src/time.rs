//! Wall-clock time for records kept by the host (never given to models).
//! Times are written in China Standard Time (UTC+8), as the domain rules say.

use chrono::{DateTime, FixedOffset, Utc};

/// The current time in UTC+8.
pub fn now() -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset"))
}

/// The current time as RFC 3339 text with milliseconds.
pub fn now_text() -> String {
    now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}
