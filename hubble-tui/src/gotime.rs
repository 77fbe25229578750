//! Go's time conventions as upstream's CLI shows and accepts them: duration
//! strings (`5s`, `1h43m`, `1.5ms`, `5m1.515181665s`), the named time
//! layouts of `--time-format` (printed in UTC, as `timestamppb.AsTime`
//! yields UTC), and the `--since`/`--until` parser (a relative duration or
//! one of the listed absolute layouts).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use proto::wkt::Timestamp;

/// The `--time-format` names, in upstream's order.
pub const FORMAT_NAMES: [&str; 9] = [
    "YearMonthDay",
    "YearMonthDayHour",
    "YearMonthDayHourMinute",
    "StampMilli",
    "RFC3339",
    "RFC3339Milli",
    "RFC3339Micro",
    "RFC3339Nano",
    "RFC1123Z",
];

/// A time layout of `--time-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// `Jan _2 15:04:05.000` (the default).
    #[default]
    StampMilli,
    /// `2006-01-02`.
    YearMonthDay,
    /// `2006-01-02T15Z07:00`.
    YearMonthDayHour,
    /// `2006-01-02T15:04Z07:00`.
    YearMonthDayHourMinute,
    /// `2006-01-02T15:04:05Z07:00`.
    Rfc3339,
    /// `2006-01-02T15:04:05.999Z07:00`.
    Rfc3339Milli,
    /// `2006-01-02T15:04:05.999999Z07:00`.
    Rfc3339Micro,
    /// `2006-01-02T15:04:05.999999999Z07:00`.
    Rfc3339Nano,
    /// `Mon, 02 Jan 2006 15:04:05 -0700`.
    Rfc1123Z,
}

impl TimeFormat {
    /// The layout for a name, case-insensitively; unknown names fall back to
    /// StampMilli, as upstream's `FormatNameToLayout` does.
    pub fn from_name(name: &str) -> TimeFormat {
        match name.to_ascii_lowercase().as_str() {
            "yearmonthday" => TimeFormat::YearMonthDay,
            "yearmonthdayhour" => TimeFormat::YearMonthDayHour,
            "yearmonthdayhourminute" => TimeFormat::YearMonthDayHourMinute,
            "rfc3339" => TimeFormat::Rfc3339,
            "rfc3339milli" => TimeFormat::Rfc3339Milli,
            "rfc3339micro" => TimeFormat::Rfc3339Micro,
            "rfc3339nano" => TimeFormat::Rfc3339Nano,
            "rfc1123z" => TimeFormat::Rfc1123Z,
            _ => TimeFormat::StampMilli,
        }
    }

    /// Formats a UTC instant.
    pub fn format(self, t: &DateTime<Utc>) -> String {
        match self {
            TimeFormat::StampMilli => t.format("%b %e %H:%M:%S%.3f").to_string(),
            TimeFormat::YearMonthDay => t.format("%Y-%m-%d").to_string(),
            TimeFormat::YearMonthDayHour => t.format("%Y-%m-%dT%HZ").to_string(),
            TimeFormat::YearMonthDayHourMinute => t.format("%Y-%m-%dT%H:%MZ").to_string(),
            TimeFormat::Rfc3339 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            TimeFormat::Rfc3339Milli => trimmed_fraction(t, 3),
            TimeFormat::Rfc3339Micro => trimmed_fraction(t, 6),
            TimeFormat::Rfc3339Nano => trimmed_fraction(t, 9),
            TimeFormat::Rfc1123Z => t.format("%a, %d %b %Y %H:%M:%S +0000").to_string(),
        }
    }
}

/// RFC 3339 with Go's `.999…` fraction: at most `digits` digits, trailing
/// zeros and a lone dot removed.
fn trimmed_fraction(t: &DateTime<Utc>, digits: usize) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = format!("{:09}", t.timestamp_subsec_nanos());
    let frac = nanos[..digits].trim_end_matches('0');
    if !frac.is_empty() {
        s.push('.');
        s.push_str(frac);
    }
    s.push('Z');
    s
}

/// Go's `timestamppb.IsValid`: within years 1–9999, nanos in `[0, 1e9)`.
fn valid(ts: &Timestamp) -> Option<DateTime<Utc>> {
    const MIN: i64 = -62_135_596_800;
    const MAX: i64 = 253_402_300_799;
    if ts.seconds < MIN || ts.seconds > MAX || !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    ts.to_datetime()
}

/// A timestamp as upstream prints it: `N/A` when absent or invalid.
pub fn fmt_timestamp(format: TimeFormat, ts: Option<&Timestamp>) -> String {
    match ts.and_then(valid) {
        Some(t) => format.format(&t),
        None => "N/A".to_owned(),
    }
}

const NANOS_PER: [(&str, f64); 8] = [
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("μs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
];

/// Parses a Go duration (`300ms`, `-1.5h`, `2h45m`); nanoseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let orig = s;
    let err = || format!("time: invalid duration {orig:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {orig:?}"))?;
        let num = &rest[..num_end];
        if num.is_empty() || num == "." {
            return Err(err());
        }
        let value: f64 = num.parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        let per = NANOS_PER
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, n)| *n)
            .ok_or_else(|| format!("time: unknown unit {unit:?} in duration {orig:?}"))?;
        total += value * per;
        rest = &rest[unit_end..];
    }
    if total > i64::MAX as f64 {
        return Err(err());
    }
    let n = total.round() as i64;
    Ok(if neg { -n } else { n })
}

/// Formats nanoseconds as Go's `time.Duration.String()`.
pub fn format_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, div, digits) = if u < 1_000 {
            return format!("{sign}{u}ns");
        } else if u < 1_000_000 {
            ("µs", 1_000u64, 3)
        } else {
            ("ms", 1_000_000u64, 6)
        };
        return format!("{sign}{}{unit}", with_fraction(u / div, u % div, digits));
    }
    let secs = u / 1_000_000_000;
    let frac = u % 1_000_000_000;
    let s = with_fraction(secs % 60, frac, 9);
    let m = (secs / 60) % 60;
    let h = secs / 3600;
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

fn with_fraction(whole: u64, frac: u64, digits: usize) -> String {
    if frac == 0 {
        return whole.to_string();
    }
    let f = format!("{frac:0digits$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Parses `--since`/`--until`: a relative duration in the past (`3s`,
/// `1h43m`) or one of YearMonthDay, YearMonthDayHour,
/// YearMonthDayHourMinute, RFC 3339 (with any fraction) or RFC1123Z.
pub fn parse_time(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = parse_duration(input) {
        return Ok(now - chrono::Duration::nanoseconds(d));
    }
    let fail = || format!("failed to convert {input} to time");
    if let Ok(d) = NaiveDate::parse_from_str(input, "%Y-%m-%d")
        && input.len() == 10
    {
        return Ok(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).ok_or_else(fail)?));
    }
    // The zone suffix of the Z07:00 layouts: `Z` or `±hh:mm`.
    let with_zone = |body: &str, zone: &str, fmt: &str| -> Option<DateTime<Utc>> {
        let offset_secs = if zone == "Z" {
            0
        } else {
            let (sign, hm) = match zone.as_bytes().first()? {
                b'+' => (1, &zone[1..]),
                b'-' => (-1, &zone[1..]),
                _ => return None,
            };
            let (h, m) = hm.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            sign * (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60)
        };
        let naive = NaiveDateTime::parse_from_str(body, fmt).ok()?;
        let off = chrono::FixedOffset::east_opt(offset_secs)?;
        Some(
            off.from_local_datetime(&naive)
                .single()?
                .with_timezone(&Utc),
        )
    };
    let split_zone = |s: &str| -> Option<(String, String)> {
        if let Some(b) = s.strip_suffix('Z') {
            return Some((b.to_owned(), "Z".to_owned()));
        }
        if s.len() > 6 {
            let (b, z) = s.split_at(s.len() - 6);
            if z.starts_with(['+', '-']) {
                return Some((b.to_owned(), z.to_owned()));
            }
        }
        None
    };
    if let Some((body, zone)) = split_zone(input) {
        // YearMonthDayHour, YearMonthDayHourMinute (minutes appended so
        // chrono can parse a date-time).
        if body.len() == 13
            && let Some(t) = with_zone(&format!("{body}:00"), &zone, "%Y-%m-%dT%H:%M")
        {
            return Ok(t);
        }
        if body.len() == 16
            && let Some(t) = with_zone(&body, &zone, "%Y-%m-%dT%H:%M")
        {
            return Ok(t);
        }
        if body.len() >= 19
            && body.as_bytes()[10] == b'T'
            && let Some(t) = with_zone(&body, &zone, "%Y-%m-%dT%H:%M:%S%.f")
        {
            return Ok(t);
        }
    }
    if let Ok(t) = DateTime::parse_from_str(input, "%a, %d %b %Y %H:%M:%S %z") {
        return Ok(t.with_timezone(&Utc));
    }
    Err(fail())
}

/// A chrono instant as a protobuf timestamp.
pub fn to_timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn ts(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    // Expected strings from upstream's printer tests (Test_fmtTimestamp) and
    // Go's layouts applied to the same instants.
    #[rstest]
    #[case(TimeFormat::StampMilli, ts(0, 0), "Jan  1 00:00:00.000")]
    #[case(
        TimeFormat::StampMilli,
        ts(1_530_984_600, 123_000_000),
        "Jul  7 17:30:00.123"
    )]
    #[case(TimeFormat::StampMilli, ts(1234, 567_800_000), "Jan  1 00:20:34.567")]
    #[case(TimeFormat::YearMonthDay, ts(1234, 0), "1970-01-01")]
    #[case(TimeFormat::YearMonthDayHour, ts(1234, 0), "1970-01-01T00Z")]
    #[case(TimeFormat::YearMonthDayHourMinute, ts(1234, 0), "1970-01-01T00:20Z")]
    #[case(TimeFormat::Rfc3339, ts(1234, 567_800_000), "1970-01-01T00:20:34Z")]
    #[case(
        TimeFormat::Rfc3339Milli,
        ts(1234, 567_800_000),
        "1970-01-01T00:20:34.567Z"
    )]
    #[case(TimeFormat::Rfc3339Milli, ts(1234, 0), "1970-01-01T00:20:34Z")]
    #[case(
        TimeFormat::Rfc3339Micro,
        ts(1234, 567_800_000),
        "1970-01-01T00:20:34.5678Z"
    )]
    #[case(
        TimeFormat::Rfc3339Nano,
        ts(1234, 567_800_001),
        "1970-01-01T00:20:34.567800001Z"
    )]
    #[case(TimeFormat::Rfc1123Z, ts(1234, 0), "Thu, 01 Jan 1970 00:20:34 +0000")]
    fn formats(#[case] f: TimeFormat, #[case] t: Timestamp, #[case] want: &str) {
        assert_eq!(fmt_timestamp(f, Some(&t)), want);
    }

    #[test]
    fn invalid_and_missing_timestamps_are_na() {
        assert_eq!(fmt_timestamp(TimeFormat::StampMilli, None), "N/A");
        assert_eq!(
            fmt_timestamp(TimeFormat::StampMilli, Some(&ts(-1, -1))),
            "N/A"
        );
    }

    #[rstest]
    #[case("0", 0)]
    #[case("5s", 5_000_000_000)]
    #[case("1h43m", 6_180_000_000_000)]
    #[case("1.5ms", 1_500_000)]
    #[case("-2m", -120_000_000_000)]
    #[case("300us", 300_000)]
    fn durations(#[case] s: &str, #[case] n: i64) {
        assert_eq!(parse_duration(s), Ok(n));
    }

    #[rstest]
    #[case("1h43")]
    #[case("abc")]
    #[case("")]
    #[case("5x")]
    fn bad_durations(#[case] s: &str) {
        assert!(parse_duration(s).is_err(), "{s}");
    }

    #[rstest]
    #[case(0, "0s")]
    #[case(301_515_181_665, "5m1.515181665s")]
    #[case(1_000_000_000_000, "16m40s")]
    #[case(3_723_000_000_000, "1h2m3s")]
    #[case(3_600_000_000_000, "1h0m0s")]
    #[case(1_500_000, "1.5ms")]
    #[case(999, "999ns")]
    #[case(12_000_000_000, "12s")]
    fn go_duration_strings(#[case] n: i64, #[case] want: &str) {
        assert_eq!(format_duration(n), want);
    }

    #[rstest]
    #[case("2021-03-23T00:00:00Z", 1_616_457_600)]
    #[case("2021-03-23T01:00:00.5+01:00", 1_616_457_600)]
    #[case("2021-03-23", 1_616_457_600)]
    #[case("2021-03-23T00Z", 1_616_457_600)]
    #[case("2021-03-23T02:00+02:00", 1_616_457_600)]
    #[case("Tue, 23 Mar 2021 00:00:00 +0000", 1_616_457_600)]
    fn absolute_times(#[case] s: &str, #[case] secs: i64) {
        let t = parse_time(s, Utc::now()).unwrap();
        assert_eq!(t.timestamp(), secs, "{s}");
    }

    #[test]
    fn relative_times_are_in_the_past() {
        let now = Utc.timestamp_opt(1_000, 0).unwrap();
        assert_eq!(parse_time("10s", now).unwrap().timestamp(), 990);
        assert_eq!(
            parse_time("yesterday", now).unwrap_err(),
            "failed to convert yesterday to time"
        );
    }
}
