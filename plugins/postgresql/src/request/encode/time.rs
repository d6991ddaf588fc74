//! RFC 3339 text to epoch microseconds and epoch milliseconds back to text, on the proleptic
//! Gregorian calendar (no time zone database: offsets are written in the text).

use super::shorten;

/// Parses RFC 3339 (`2024-05-01T12:00:00.5Z`, `2024-05-01 12:00:00+02:00`, a date alone) to epoch
/// microseconds. A time without an offset is UTC.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let invalid = || format!("\"{}\" is not an RFC 3339 timestamp", shorten(text));
    let s = text.trim().as_bytes();
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(range).ok_or_else(invalid)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        Ok(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return Err(invalid());
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(invalid());
    }
    let mut micros = days_from_civil(year, month, day) * 86_400_000_000;
    if s.len() == 10 {
        return Ok(micros);
    }
    if !matches!(s[10], b'T' | b't' | b' ') || s.len() < 19 || s[13] != b':' || s[16] != b':' {
        return Err(invalid());
    }
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if hour > 23 || minute > 59 || second > 60 {
        return Err(invalid());
    }
    micros += ((hour * 60 + minute) * 60 + second) * 1_000_000;
    let mut i = 19;
    if s.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(invalid());
        }
        let fraction: String = std::str::from_utf8(&s[start..i]).map_err(|_| invalid())?.chars().take(6).collect();
        micros += format!("{fraction:0<6}").parse::<i64>().map_err(|_| invalid())?;
    }
    match &s[i..] {
        [] | [b'Z' | b'z'] => Ok(micros),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let offset = number(i + 1..i + 3)? * 60 + number(i + 4..i + 6)?;
            let offset_micros = offset * 60_000_000;
            Ok(if *sign == b'+' { micros - offset_micros } else { micros + offset_micros })
        }
        _ => Err(invalid()),
    }
}

/// Epoch milliseconds as RFC 3339 UTC with milliseconds: `2024-05-01T12:00:00.000Z`.
pub fn format_rfc3339(ms: i64) -> Result<String, String> {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err("timestamp out of range for text (years 0 to 9999)".to_string());
    }
    let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    Ok(format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{:02}.{:03}Z", rest / 1000, rest % 1000))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}
