//! Durations as flags write them (`500ms`, `30s`, `5m`, `1h`, `1d`,
//! `1h30m`), the way Prometheus writes them.

use std::time::Duration;

/// Parses durations such as `500ms`, `30s`, `5m`, `1h`, `1d`, `1h30m`.
pub fn parse(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err("must not be negative".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("expected a number followed by a unit (ms, s, m, h, d), e.g. 5m".into());
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| "number too large".to_string())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err("missing unit (ms, s, m, h, d)".into()),
            other => return Err(format!("unknown unit {other:?} (use ms, s, m, h, d)")),
        };
        let ms = n
            .checked_mul(ms_per)
            .ok_or_else(|| "duration too large".to_string())?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(|| "duration too large".to_string())?;
    }
    Ok(total)
}

/// A duration above zero.
pub fn positive(raw: &str) -> Result<Duration, String> {
    let d = parse(raw)?;
    if d.is_zero() {
        return Err("must be above zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let duration = parse;
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(duration("5").is_err());
        assert!(duration("m").is_err());
        assert!(duration("5y").is_err());
        assert!(duration("-5s").is_err());
        assert!(duration("99999999999999999999s").is_err());
    }
}
