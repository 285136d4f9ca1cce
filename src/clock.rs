//! The clock: the one place xone reads the time. The domain is given it.
//!
//! `XONE_NOW` (RFC 3339, e.g. `2026-12-13T10:00:00Z`) sets xone's own clock: what it records
//! and the pauses it counts (a gray release's week) follow it, so that a script or a test can
//! move time on. Systems that keep their own time (Prometheus's samples) are asked in the
//! machine's time, `wall_unix`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::date::{self, Date};

/// Seconds since the Unix epoch, on xone's clock (`XONE_NOW` when it is set).
pub fn unix_now() -> i64 {
    match std::env::var("XONE_NOW").ok().and_then(|v| date::parse_rfc3339(v.trim())) {
        Some(secs) => secs,
        None => wall_unix(),
    }
}

/// Seconds since the Unix epoch, on the machine's clock whatever `XONE_NOW` says.
pub fn wall_unix() -> i64 {
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

/// The local time zone's offset east of UTC at `secs`, in seconds (daylight saving
/// included), as the C library reads TZ and /etc/localtime; 0 when it cannot tell.
pub fn local_offset(secs: i64) -> i64 {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which lives on this stack.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

/// A stored RFC 3339 moment as people read it, relative and local (`3 min ago`,
/// `yesterday 14:30`); anything else as it is.
pub fn human(at: &str) -> String {
    match date::parse_rfc3339(at) {
        Some(secs) => {
            let now = unix_now();
            date::human(secs, now, local_offset(secs))
        }
        None => at.to_string(),
    }
}
