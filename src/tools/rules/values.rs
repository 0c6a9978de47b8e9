//! The values the `rules` flags take, each parsed where it is used: clap
//! calls these, so a bad value is refused with one line naming the flag.

/// `--rules.spike-factor`: above 1, at most 100.
pub fn spike_factor(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 1.0 && f <= 100.0 => Ok(f),
        _ => Err("must be a number above 1 and at most 100".into()),
    }
}

/// A rate floor: events a minute, above 0.
pub fn per_minute(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err("must be a number of events a minute above 0".into()),
    }
}

/// An absolute http(s) URL.
pub fn absolute_url(raw: &str) -> Result<String, String> {
    match url::Url::parse(raw) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.has_host() => {
            Ok(raw.to_string())
        }
        _ => Err("must be an absolute http:// or https:// URL".into()),
    }
}

/// Text for a label value in a rule file: not empty, one line.
pub fn label_text(raw: &str) -> Result<String, String> {
    if raw.is_empty() || raw.chars().any(char::is_control) {
        return Err("must be a non-empty single line".into());
    }
    Ok(raw.to_string())
}
