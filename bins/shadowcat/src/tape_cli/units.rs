//! Parsing and printing times, durations and sizes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `1536` → `1.5 KiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Nanoseconds as a short duration: `850µs`, `12.3ms`, `4.56s`.
pub(crate) fn duration_ns(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{:.0}µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else {
        format!("{:.2}s", ns as f64 / 1e9)
    }
}

/// Parses `500ms`, `30s`, `15m`, `2h`, `7d`, `2w`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 30s, 15m, 2h, 7d)"))?;
    let seconds = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (ms, s, m, h, d, w)"
            ));
        }
    };
    Duration::try_from_secs_f64(number * seconds).map_err(|_| format!("{text:?} is out of range"))
}

/// Parses `1024`, `10K`, `500M`, `1G`, `2T` (powers of 1024; `KiB`, `KB`, `k` also work).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (like 500M, 1G)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let power = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        _ => return Err(format!("{text:?}: unknown unit (K, M, G, T)")),
    };
    Ok((number * 1024f64.powi(power)) as u64)
}

/// Parses a point in time as nanoseconds since the epoch: RFC 3339
/// (`2025-06-18T09:30:00Z`, `2025-06-18`), Unix seconds, or a duration ago (`2h`).
pub(crate) fn parse_time(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.len() >= 10 && text.as_bytes().get(4) == Some(&b'-') {
        return parse_rfc3339(text).ok_or_else(|| format!("{text:?} is not an RFC 3339 time"));
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs.saturating_mul(1_000_000_000));
    }
    let ago = parse_duration(text).map_err(|_| {
        format!("{text:?} is not a time (RFC 3339, Unix seconds, or 2h for two hours ago)")
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(u64::try_from(now.saturating_sub(ago).as_nanos()).unwrap_or(u64::MAX))
}

fn parse_rfc3339(text: &str) -> Option<u64> {
    let num = |s: &str| s.parse::<u64>().ok();
    let year = num(text.get(0..4)?)?;
    let month = num(text.get(5..7)?)?;
    let day = num(text.get(8..10)?)?;
    let (mut h, mut m, mut s, mut frac_ns) = (0, 0, 0, 0u64);
    let mut rest = text.get(10..)?;
    if let Some(time) = rest.strip_prefix(['T', 't', ' ']) {
        h = num(time.get(0..2)?)?;
        m = num(time.get(3..5)?)?;
        s = num(time.get(6..8)?)?;
        rest = time.get(8..)?;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(frac.len());
            let padded = format!("{:0<9}", &frac[..digits.min(9)]);
            frac_ns = num(&padded)?;
            rest = &frac[digits..];
        }
    }
    let offset_s: i64 = match rest {
        "" | "Z" | "z" => 0,
        tz => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let hh = num(tz.get(1..3)?)? as i64;
            let mm = num(tz.get(4..6)?)? as i64;
            sign * (hh * 3600 + mm * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    let secs = i64::try_from(days * 86_400 + h * 3600 + m * 60 + s).ok()? - offset_s;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, for dates from 1970 on).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("7y").is_err());
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("10KiB").unwrap(), 10 << 10);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2025-06-18T09:30:00.000000001Z"),
            Some(1_750_239_000_000_000_001)
        );
        assert_eq!(
            parse_rfc3339("2025-06-18T11:30:00+02:00"),
            Some(1_750_239_000_000_000_000)
        );
        assert_eq!(parse_time("2025-06-18").unwrap(), 1_750_204_800_000_000_000);
    }
}
