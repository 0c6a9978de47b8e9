//! `--rules.selector`: PromQL label matchers, parsed once into a typed value
//! and rendered back in one canonical, escaped form.
//!
//! What cannot work is refused here, before any rule is written: a trailing
//! or doubled comma, the reserved `__name__` (the rules choose the metric
//! names), escapes PromQL does not know, and a label listed twice with `=`.
//! Values are kept unescaped, so a `"` or `\` inside one is escaped again
//! wherever it is written: in PromQL, in a Go template's string literal and
//! in the promtool test series.

use std::fmt;
use std::str::FromStr;

/// A matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    Nre,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::Nre => "!~",
        }
    }
}

/// One `name op "value"` matcher; `value` is unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    pub value: String,
}

/// Label matchers selecting the exporter's series, without braces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

/// A PromQL double-quoted string literal's body.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

fn valid_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl FromStr for Selector {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let mut matchers: Vec<Matcher> = Vec::new();
        let mut rest = raw.trim();
        while !rest.is_empty() {
            let op_at = rest
                .find(['=', '!'])
                .ok_or("expected matchers such as job=\"mqtt-disconnect-exporter\"")?;
            let name = rest[..op_at].trim();
            if !valid_name(name) {
                return Err(format!("{name:?} is not a label name"));
            }
            if name == "__name__" {
                return Err("__name__ cannot be matched: the rules choose the metric names".into());
            }
            let after = &rest[op_at..];
            let (op, len) = [
                ("=~", Op::Re),
                ("!~", Op::Nre),
                ("!=", Op::Ne),
                ("=", Op::Eq),
            ]
            .iter()
            .find(|(text, _)| after.starts_with(*text))
            .map(|(text, op)| (*op, text.len()))
            .ok_or("expected =, !=, =~ or !~ after a label name")?;
            let Some(body) = after[len..].trim_start().strip_prefix('"') else {
                return Err("label values must be in double quotes".into());
            };
            let mut value = String::new();
            let mut end = None;
            let mut chars = body.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, e)| e) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some(e) => {
                            return Err(format!(
                                "\\{e} is not an escape these rules support \
                                 (use \\\\, \\\", \\n or \\t)"
                            ))
                        }
                        None => break,
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or("unterminated label value")?;
            if op == Op::Eq && matchers.iter().any(|m| m.name == name && m.op == Op::Eq) {
                return Err(format!("{name} is matched with = twice"));
            }
            matchers.push(Matcher {
                name: name.to_string(),
                op,
                value,
            });
            rest = body[end + 1..].trim_start();
            if let Some(next) = rest.strip_prefix(',') {
                rest = next.trim_start();
                if rest.is_empty() || rest.starts_with(',') {
                    return Err("a comma must be followed by another matcher".into());
                }
            } else if !rest.is_empty() {
                return Err("matchers must be separated by commas".into());
            }
        }
        Ok(Selector { matchers })
    }
}

impl fmt::Display for Selector {
    /// The matchers as PromQL, canonically spaced and escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}{}\"{}\"", m.name, m.op.as_str(), escape(&m.value))?;
        }
        Ok(())
    }
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// The `name="value"` matchers (unescaped values): the labels a series
    /// must carry to be selected.
    pub fn equality_labels(&self) -> Vec<(String, String)> {
        self.matchers
            .iter()
            .filter(|m| m.op == Op::Eq)
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Selector, String> {
        s.parse()
    }

    #[test]
    fn matchers_are_read_and_written_back_canonically() {
        let s = parse(r#" job="a", env = "p\"x\\y", team=~"t.*",zone!="z",k!~"v" "#)
            .unwrap_or_default();
        assert_eq!(
            s.to_string(),
            r#"job="a",env="p\"x\\y",team=~"t.*",zone!="z",k!~"v""#
        );
        assert_eq!(
            s.equality_labels(),
            [
                ("job".to_string(), "a".to_string()),
                ("env".to_string(), r#"p"x\y"#.to_string()),
            ]
        );
        assert!(parse("").is_ok_and(|s| s.is_empty()));
    }

    #[test]
    fn what_cannot_work_is_refused() {
        for (bad, why) in [
            ("job=\"a\",", "a comma must be followed"),
            ("job=\"a\",,env=\"b\"", "a comma must be followed"),
            ("__name__=\"up\"", "__name__ cannot be matched"),
            ("job=\"a\" env=\"b\"", "separated by commas"),
            ("job=a", "double quotes"),
            ("job=\"a", "unterminated"),
            ("1job=\"a\"", "not a label name"),
            ("job=\"a\\q\"", "not an escape"),
            ("job=\"a\",job=\"b\"", "matched with = twice"),
            ("job", "expected matchers"),
        ] {
            let got = parse(bad);
            assert!(
                got.as_ref().is_err_and(|e| e.contains(why)),
                "{bad}: {got:?}, wanted an error with {why:?}"
            );
        }
    }
}
