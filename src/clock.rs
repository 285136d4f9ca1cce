//! The clock: the one place xone reads the time. The domain is given it.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::date::{self, Date};

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Now, as an RFC 3339 UTC timestamp: `2026-11-30T01:26:17Z`.
pub fn now() -> String {
    date::rfc3339(unix_now())
}

/// Today's date (UTC).
pub fn today() -> Date {
    Date::of_unix(unix_now())
}
