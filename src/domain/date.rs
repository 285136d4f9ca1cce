//! Calendar dates and UTC timestamps. Small enough not to need a crate: days from the civil
//! calendar and back (proleptic Gregorian), as in Howard Hinnant's `chrono`-compatible algorithms.
//! Pure: "today" is what the caller says it is (`crate::clock` reads the clock).

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

const FORM: &str = "use YYYY-MM-DD (e.g. 2026-12-01), 'today', or +N for N days from today";

impl Date {
    /// The (UTC) date of a moment, in seconds since the Unix epoch.
    pub fn of_unix(secs: i64) -> Date {
        Date::from_days(secs.div_euclid(86_400))
    }

    pub fn plus_days(self, n: i64) -> Date {
        Date::from_days(self.days() + n)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    pub fn from_days(z: i64) -> Date {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// A date as people give it: a calendar date, or a number of days from today (`today`,
/// `+14`), settled once the caller says what today is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateSpec {
    On(Date),
    FromToday(i64),
}

impl DateSpec {
    pub fn on(self, today: Date) -> Date {
        match self {
            DateSpec::On(d) => d,
            DateSpec::FromToday(n) => today.plus_days(n),
        }
    }
}

impl FromStr for DateSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<DateSpec, String> {
        let bad = || format!("invalid date '{s}': {FORM}");
        if s == "today" {
            return Ok(DateSpec::FromToday(0));
        }
        if let Some(n) = s.strip_prefix('+') {
            let n: i64 = n.trim_end_matches('d').parse().map_err(|_| bad())?;
            if n > 36_500 {
                return Err(format!("invalid date '{s}': at most +36500 days (100 years) ahead"));
            }
            return Ok(DateSpec::FromToday(n));
        }
        s.parse().map(DateSpec::On).map_err(|_| bad())
    }
}

/// A calendar date: `YYYY-MM-DD`.
impl FromStr for Date {
    type Err = String;
    fn from_str(s: &str) -> Result<Date, String> {
        let bad = || format!("invalid date '{s}': {FORM}");
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() != 3 || parts[0].len() != 4 || parts[1].len() != 2 || parts[2].len() != 2 {
            return Err(bad());
        }
        let num = |p: &str| p.parse::<u32>().map_err(|_| bad());
        let (year, month, day) = (num(parts[0])? as i32, num(parts[1])?, num(parts[2])?);
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(bad());
        }
        Ok(Date { year, month, day })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A meeting time as people write it: `YYYY-MM-DD HH:MM` (or with a `T`), or a date alone;
/// the date may be relative to `today` (`today 14:30`, `+1 10:00`).
pub fn parse_datetime(s: &str, today: Date) -> Result<String, String> {
    let bad =
        || format!("invalid date and time '{s}': use YYYY-MM-DD HH:MM (e.g. 2026-12-01 14:30)");
    let (d, t) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let date = d.parse::<DateSpec>().map_err(|_| bad())?.on(today);
    match t {
        None => Ok(date.to_string()),
        Some(t) => {
            let t = t.trim_end_matches('Z');
            let hm: Vec<&str> = t.split(':').collect();
            let ok = (2..=3).contains(&hm.len())
                && hm.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()));
            let h: u32 = hm[0].parse().map_err(|_| bad())?;
            let m: u32 = hm.get(1).and_then(|m| m.parse().ok()).unwrap_or(99);
            if !ok || h > 23 || m > 59 {
                return Err(bad());
            }
            Ok(format!("{date} {h:02}:{m:02}"))
        }
    }
}

/// An RFC 3339 UTC timestamp (`2026-11-30T10:00:00Z`, fractions ignored) as seconds since
/// the Unix epoch; `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let date: Date = s.get(..10)?.parse().ok()?;
    let num = |a: usize| s.get(a..a + 2)?.parse::<i64>().ok();
    let (h, m, sec) = (num(11)?, num(14)?, num(17)?);
    (h < 24 && m < 60 && sec < 61).then(|| date.days() * 86_400 + h * 3600 + m * 60 + sec)
}

/// A moment as people read it, in their own time zone (`offset` seconds east of UTC) as of
/// `now`: `just now`, `3 min ago`, `today 14:30`, `yesterday 14:30`, `Mon 09:15` within the
/// week, else `2026-11-30 14:30`.
pub fn human(at: i64, now: i64, offset: i64) -> String {
    let ago = now - at;
    if (0..60).contains(&ago) {
        return "just now".to_string();
    }
    if (60..3600).contains(&ago) {
        return format!("{} min ago", ago / 60);
    }
    let local = at + offset;
    let (day, today) = ((local).div_euclid(86_400), (now + offset).div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    let clock = format!("{:02}:{:02}", s / 3600, s / 60 % 60);
    match today - day {
        0 => format!("today {clock}"),
        1 => format!("yesterday {clock}"),
        -1 => format!("tomorrow {clock}"),
        2..=6 => {
            // 1970-01-01 was a Thursday.
            const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
            format!("{} {clock}", DAYS[day.rem_euclid(7) as usize])
        }
        _ => format!("{} {clock}", Date::from_days(day)),
    }
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2026-11-30T10:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    let date = Date::from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{date}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_days() {
        for z in [-800_000, -1, 0, 1, 11_016, 20_787, 2_932_896] {
            assert_eq!(Date::from_days(z).days(), z);
        }
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!("2026-11-30".parse::<Date>().unwrap().days(), 20_787);
    }

    #[test]
    fn validates_calendar() {
        assert!("2024-02-29".parse::<Date>().is_ok());
        for bad in
            ["2023-02-29", "2026-13-01", "2026-1-1", "26-01-01", "2026-00-10", "tomorrow", ""]
        {
            let e = bad.parse::<Date>().unwrap_err();
            assert!(e.contains("YYYY-MM-DD"), "{e}");
        }
    }

    #[test]
    fn days_from_today_are_settled_by_the_caller() {
        let today: Date = "2026-12-30".parse().unwrap();
        let on = |s: &str| s.parse::<DateSpec>().map(|d| d.on(today));
        assert_eq!(on("today").unwrap(), today);
        assert_eq!(on("+0").unwrap(), today);
        assert_eq!(on("+14d").unwrap().to_string(), "2027-01-13");
        assert_eq!(on("2026-01-02").unwrap().to_string(), "2026-01-02");
        assert!(on("+99999999999999").is_err());
        assert!(on("+36501").unwrap_err().contains("at most +36500 days"));
        assert!(on("tomorrow").unwrap_err().contains("YYYY-MM-DD"));
        assert!("today".parse::<Date>().is_err(), "a stored date is a calendar date");
    }

    #[test]
    fn datetimes() {
        let today: Date = "2026-12-06".parse().unwrap();
        let at = |s: &str| parse_datetime(s, today);
        assert_eq!(at("2026-12-01 14:30").unwrap(), "2026-12-01 14:30");
        assert_eq!(at("2026-12-01T09:05:00Z").unwrap(), "2026-12-01 09:05");
        assert_eq!(at("2026-12-01").unwrap(), "2026-12-01");
        assert_eq!(at("today 14:30").unwrap(), "2026-12-06 14:30");
        assert_eq!(at("+1 10:00").unwrap(), "2026-12-07 10:00");
        assert!(at("2026-12-01 25:00").is_err());
        assert!(at("2026-12-01 9:5").is_err());
    }

    #[test]
    fn moments_read_as_people_read_them() {
        let now = parse_rfc3339("2026-12-06T16:00:00Z").unwrap();
        let at = |s: &str, offset| human(parse_rfc3339(s).unwrap(), now, offset);
        assert_eq!(at("2026-12-06T15:59:30Z", 0), "just now");
        assert_eq!(at("2026-12-06T15:57:00Z", 0), "3 min ago");
        assert_eq!(at("2026-12-06T09:05:00Z", 0), "today 09:05");
        assert_eq!(at("2026-12-05T14:30:00Z", 0), "yesterday 14:30");
        assert_eq!(at("2026-12-07T10:00:00Z", 0), "tomorrow 10:00");
        assert_eq!(at("2026-11-30T09:15:00Z", 0), "Mon 09:15");
        assert_eq!(at("2026-11-20T08:00:00Z", 0), "2026-11-20 08:00");
        // In Shanghai (UTC+8) 16:00 UTC is already the 7th: the 5th's 20:30 UTC was the 6th's
        // 04:30 there, yesterday; 17:00 UTC is today's 01:00.
        assert_eq!(at("2026-12-05T20:30:00Z", 8 * 3600), "yesterday 04:30");
        assert_eq!(at("2026-12-06T17:00:00Z", 8 * 3600), "today 01:00");
        assert_eq!(parse_rfc3339("2026-12-06 16:00"), None);
        assert_eq!(
            parse_rfc3339("2026-12-06T16:00:00.123Z"),
            parse_rfc3339("2026-12-06T16:00:00Z")
        );
    }

    #[test]
    fn moments_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_520_177), "2026-12-06T01:22:57Z");
        assert_eq!(Date::of_unix(1_796_520_177).to_string(), "2026-12-06");
    }
}
