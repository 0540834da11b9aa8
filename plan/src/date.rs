//! Calendar dates without a clock or a time zone library: a day number,
//! with the conventions of the domain rules (DOMAIN.md, "Dates").
//!
//! Dates are local calendar days (UTC+8 by convention of the data); a plan
//! reads no clock, so a day count is all it needs. A timestamp that names
//! its UTC offset is converted to that zone before its date or hour is
//! taken ([`hour_of`]). The conversion
//! between day numbers and the proleptic Gregorian calendar is the
//! well-known days-from-civil algorithm.

use std::fmt;

/// A calendar date, stored as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

/// Years a date may have: four digits, as the data writes them.
const MIN_YEAR: i32 = 1;
const MAX_YEAR: i32 = 9999;

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

impl Date {
    /// The date `y`-`m`-`d`, if it exists and its year has four digits.
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&y) || !(1..=12).contains(&m) {
            return None;
        }
        if d == 0 || d > days_in_month(y, m) {
            return None;
        }
        // Days from civil: years start in March so that the leap day is last.
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy as i32;
        Some(Date(era * 146_097 + doe - 719_468))
    }

    /// Year, month and day.
    pub fn ymd(self) -> (i32, u32, u32) {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i32::from(m <= 2);
        (y, m, d)
    }

    /// Days since 1970-01-01 (negative before).
    pub fn day_number(self) -> i32 {
        self.0
    }

    /// Parses `YYYY-MM-DD`; a timestamp `YYYY-MM-DD HH:MM[:SS]` (or with
    /// `T`) gives its date, in China Standard Time when the timestamp
    /// carries a UTC offset (see [`hour_of`]).
    pub fn parse(s: &str) -> Option<Date> {
        if s.len() > 10 {
            return strict_timestamp(s).map(|(d, _)| d);
        }
        day_of(s.as_bytes())
    }

    /// The date `n` days later (earlier when negative), if it has a
    /// four-digit year.
    pub fn add_days(self, n: i64) -> Option<Date> {
        let day = i64::from(self.0).checked_add(n)?;
        let day = i32::try_from(day).ok()?;
        let date = Date(day);
        (MIN_YEAR..=MAX_YEAR)
            .contains(&date.ymd().0)
            .then_some(date)
    }

    /// Days from `self` to `to` (negative when `to` is earlier).
    pub fn days_until(self, to: Date) -> i64 {
        i64::from(to.0) - i64::from(self.0)
    }

    /// The same calendar day `n` years earlier; 29 February becomes
    /// 28 February in a year without it (DOMAIN.md: "within N years before").
    pub fn years_before(self, n: i64) -> Option<Date> {
        let (y, m, d) = self.ymd();
        let y = i64::from(y).checked_sub(n)?;
        let y = i32::try_from(y).ok()?;
        if !(MIN_YEAR..=MAX_YEAR).contains(&y) {
            return None;
        }
        Date::from_ymd(y, m, d.min(days_in_month(y, m)))
    }

    /// The same day `n` months later (earlier when negative), moved back
    /// to the month's last day when the month is shorter (31 Jan + 1 month
    /// is 28 or 29 Feb).
    pub fn add_months(self, n: i64) -> Option<Date> {
        let (y, m, d) = self.ymd();
        let months = i64::from(y) * 12 + i64::from(m - 1) + n;
        let y = i32::try_from(months.div_euclid(12)).ok()?;
        let m = months.rem_euclid(12) as u32 + 1;
        if !(MIN_YEAR..=MAX_YEAR).contains(&y) {
            return None;
        }
        Date::from_ymd(y, m, d.min(days_in_month(y, m)))
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// `YYYY-MM-DD` exactly.
fn day_of(b: &[u8]) -> Option<Date> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&b[0..4])?;
    let m = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    Date::from_ymd(y as i32, m, d)
}

/// The zone local times are in, in minutes east of UTC: China Standard
/// Time (UTC+08:00), as the data's days and the ledger's times are.
const LOCAL_OFFSET_MINUTES: i64 = 8 * 60;

/// Splits the clock of a timestamp (`HH:MM[:SS][.fff]`) from the UTC
/// offset written after it (`Z`, `+08:00`, `+0800`, `+08`, `-05:00`): the
/// clock, and the offset in minutes east of UTC when one is written.
/// `None` when an offset is written but is not one (over 14 hours, or not
/// digits).
fn split_offset(time: &str) -> Option<(&str, Option<i64>)> {
    let time = time.trim();
    if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        return Some((clock.trim_end(), Some(0)));
    }
    let Some(at) = time.rfind(['+', '-']) else {
        return Some((time, None));
    };
    let sign = if time.as_bytes()[at] == b'-' { -1 } else { 1 };
    let o = &time.as_bytes()[at + 1..];
    let (h, m) = match o.len() {
        2 => (digits(o)?, 0),
        4 => (digits(&o[..2])?, digits(&o[2..])?),
        5 if o[2] == b':' => (digits(&o[..2])?, digits(&o[3..])?),
        _ => return None,
    };
    (h <= 14 && m < 60).then_some((time[..at].trim_end(), Some(sign * i64::from(h * 60 + m))))
}

/// The date and hour in China Standard Time of `date` at `hour:minute`
/// in the zone `offset` minutes east of UTC.
fn to_local(date: Date, hour: u32, minute: u32, offset: i64) -> Option<(Date, u32)> {
    let minutes = i64::from(hour * 60 + minute) - offset + LOCAL_OFFSET_MINUTES;
    let date = date.add_days(minutes.div_euclid(24 * 60))?;
    Some((date, (minutes.rem_euclid(24 * 60) / 60) as u32))
}

/// `YYYY-MM-DD HH:MM[:SS]` (or with `T`), with an optional UTC offset:
/// the date and hour in China Standard Time.
fn strict_timestamp(s: &str) -> Option<(Date, u32)> {
    let b = s.as_bytes();
    if b.len() < 16 || (b[10] != b' ' && b[10] != b'T') {
        return None;
    }
    let date = day_of(&b[..10])?;
    let (clock, offset) = split_offset(s.get(11..)?)?;
    let c = clock.as_bytes();
    if c.len() < 5 || c[2] != b':' {
        return None;
    }
    let h = digits(&c[0..2])?;
    let min = digits(&c[3..5])?;
    let rest_ok = match c.len() {
        5 => true,
        8 => c[5] == b':' && digits(&c[6..8]).is_some_and(|s| s < 60),
        _ => false,
    };
    if !(h < 24 && min < 60 && rest_ok) {
        return None;
    }
    match offset {
        None => Some((date, h)),
        Some(offset) => to_local(date, h, min, offset),
    }
}

/// The hour of a timestamp `YYYY-MM-DD HH:MM[:SS]` (or with `T`), 0–23.
///
/// A timestamp without an offset is local time already: China Standard
/// Time, the zone of the data's days and of every time Jiandu writes. One
/// with an offset (`Z`, `+00:00`, `-05:00`…) names an instant, which is
/// converted to China Standard Time first, so `2024-07-01T20:05:00Z` is
/// 04:00 on 2 July.
pub fn hour_of(s: &str) -> Option<u32> {
    strict_timestamp(s).map(|(_, h)| h)
}

/// A local date and time as departments write it: `YYYY-MM-DD HH:MM[:SS]`,
/// with `/` allowed in the date, `T` before the time, and a month, day or
/// hour of one digit. The date and the hour (0–23); `None` when the text is
/// not such a timestamp (a date alone is not one). A UTC offset after the
/// time is converted to China Standard Time as [`hour_of`] does; the
/// minutes are then needed (`HH:MM`).
pub fn parse_timestamp(text: &str) -> Option<(Date, u32)> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut parts = date.trim().split(['-', '/']);
    let y = parts.next()?;
    let m = parts.next()?;
    let d = parts.next()?;
    if parts.next().is_some()
        || y.len() != 4
        || !(1..=2).contains(&m.len())
        || !(1..=2).contains(&d.len())
    {
        return None;
    }
    let date = Date::from_ymd(
        digits(y.as_bytes())? as i32,
        digits(m.as_bytes())?,
        digits(d.as_bytes())?,
    )?;
    let (clock, offset) = split_offset(time)?;
    let mut clock = clock.trim().split(':');
    let h = clock.next()?;
    if h.is_empty() || h.len() > 2 {
        return None;
    }
    let h = digits(h.as_bytes())?;
    if h >= 24 {
        return None;
    }
    let Some(offset) = offset else {
        return Some((date, h));
    };
    let min = clock.next()?.as_bytes();
    if min.len() != 2 {
        return None;
    }
    let min = digits(min).filter(|m| *m < 60)?;
    to_local(date, h, min, offset)
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn day_numbers_round_trip_through_the_calendar() {
        assert_eq!(d("1970-01-01").day_number(), 0);
        assert_eq!(d("2000-03-01").day_number(), 11_017);
        for n in [-719_162, -1, 0, 59, 11_016, 19_782, 2_932_896] {
            let (y, m, dd) = Date(n).ymd();
            assert_eq!(Date::from_ymd(y, m, dd), Some(Date(n)), "{n}");
        }
    }

    #[test]
    fn invalid_dates_are_refused() {
        for s in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "24-01-01",
            "2024/01/01",
            "2024-01-01x",
        ] {
            assert_eq!(Date::parse(s), None, "{s}");
        }
        assert_eq!(d("2024-02-29").to_string(), "2024-02-29");
    }

    #[test]
    fn leap_day_years_before_falls_back_to_february_28() {
        assert_eq!(d("2024-02-29").years_before(5), Some(d("2019-02-28")));
        assert_eq!(d("2024-02-29").years_before(4), Some(d("2020-02-29")));
        assert_eq!(d("2024-12-31").years_before(1), Some(d("2023-12-31")));
    }

    #[test]
    fn days_between_counts_from_the_first_to_the_second() {
        assert_eq!(d("2024-06-30").days_until(d("2024-12-31")), 184);
        assert_eq!(d("2023-12-31").days_until(d("2024-12-31")), 366);
        assert_eq!(d("2024-07-15").days_until(d("2024-06-30")), -15);
    }

    #[test]
    fn adding_months_stays_in_the_shorter_month() {
        assert_eq!(d("2024-01-31").add_months(1), Some(d("2024-02-29")));
        assert_eq!(d("2023-01-31").add_months(13), Some(d("2024-02-29")));
        assert_eq!(d("2024-03-31").add_months(-1), Some(d("2024-02-29")));
        assert_eq!(d("9999-12-31").add_months(1), None);
    }

    #[test]
    fn department_timestamps_parse_like_the_rust_models() {
        assert_eq!(
            parse_timestamp("2024-12-31 22:15:00"),
            Some((d("2024-12-31"), 22))
        );
        assert_eq!(
            parse_timestamp("2024/12/31 08:05"),
            Some((d("2024-12-31"), 8))
        );
        assert_eq!(
            parse_timestamp("2024-12-31T23:59"),
            Some((d("2024-12-31"), 23))
        );
        assert_eq!(parse_timestamp("2024-1-5 7:00"), Some((d("2024-01-05"), 7)));
        assert_eq!(parse_timestamp("2024-12-31"), None);
        assert_eq!(parse_timestamp("2024-12-31 24:00"), None);
        assert_eq!(parse_timestamp("2023-02-29 10:00"), None);
    }

    #[test]
    fn a_utc_offset_is_converted_to_china_standard_time() {
        // 20:05 UTC is 04:05 the next morning in Beijing.
        for ts in [
            "2024-07-01T20:05:00+00:00",
            "2024-07-01T20:05:00Z",
            "2024-07-01 20:05z",
            "2024-07-01T20:05:00+0000",
            "2024-07-01T20:05+00",
            "2024-07-01T15:05:00-05:00",
            "2024-07-02T04:05:00+08:00",
        ] {
            assert_eq!(hour_of(ts), Some(4), "{ts}");
            assert_eq!(Date::parse(ts), Some(d("2024-07-02")), "{ts}");
            assert_eq!(parse_timestamp(ts), Some((d("2024-07-02"), 4)), "{ts}");
        }
        // Half-hour zones move the hour by the minutes too.
        assert_eq!(
            parse_timestamp("2024-07-01 23:45+05:30"),
            Some((d("2024-07-02"), 2))
        );
        // Backwards over a year's end.
        assert_eq!(
            parse_timestamp("2025-01-01 02:00+14:00"),
            Some((d("2024-12-31"), 20))
        );
        // Without an offset a time is local already.
        assert_eq!(
            parse_timestamp("2024-07-01T20:05:00"),
            Some((d("2024-07-01"), 20))
        );
        // An offset that is not one, or a converted hour without minutes,
        // is not read rather than read wrong.
        for ts in [
            "2024-07-01T20:05:00+25:00",
            "2024-07-01T20:05:00+8",
            "2024-07-01T20Z",
            "2024-07-01T20:05:00+0８:00",
        ] {
            assert_eq!(parse_timestamp(ts), None, "{ts}");
            assert_eq!(hour_of(ts), None, "{ts}");
            assert_eq!(Date::parse(ts), None, "{ts}");
        }
        assert_eq!(parse_timestamp("9999-12-31 23:00-01:00"), None);
    }

    #[test]
    fn timestamps_give_their_hour_and_date() {
        assert_eq!(hour_of("2024-05-01 23:59"), Some(23));
        assert_eq!(hour_of("2024-05-01T07:05:09"), Some(7));
        assert_eq!(hour_of("2024-05-01 24:00"), None);
        assert_eq!(Date::parse("2024-05-01 08:00:00"), Some(d("2024-05-01")));
    }
}
