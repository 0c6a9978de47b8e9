//! The ingest tokens (`--ingest.token-file`): one a line, blank lines and
//! `#` comments skipped. The file is re-read when its size or time changes,
//! looked at (one `stat`) at most once a second; a file that turns unreadable or
//! empty keeps the tokens read last, and says so once. A token is compared
//! in constant time, and never logged or echoed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::edge::files::{self, FileError};

const FLAG: &str = "--ingest.token-file";

/// The tokens in force, and the file they come from.
pub struct Tokens {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    tokens: Vec<Vec<u8>>,
    /// The file's (length, modification time) when last read.
    seen: Option<(u64, SystemTime)>,
    /// A bad re-read was logged; cleared by a good one.
    said: bool,
    /// When the file was last looked at.
    checked: Option<std::time::Instant>,
}

impl Tokens {
    /// Reads the file now: it must hold at least one token.
    pub fn load(path: &Path) -> Result<Tokens, FileError> {
        let tokens = read(path)?;
        Ok(Tokens {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                tokens,
                seen: stamp(path),
                said: false,
                checked: Some(std::time::Instant::now()),
            }),
        })
    }

    /// Whether `given` is one of the tokens, re-reading the file first if
    /// it changed.
    pub fn accepts(&self, given: &[u8]) -> bool {
        let mut state = self.state.lock();
        // the file is looked at most once a second: a sender posting one
        // event a request must not cost a system call each
        let due = state
            .checked
            .is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(1));
        let now = if due {
            state.checked = Some(std::time::Instant::now());
            stamp(&self.path)
        } else {
            state.seen
        };
        if now != state.seen {
            state.seen = now;
            match read(&self.path) {
                Ok(tokens) => {
                    state.tokens = tokens;
                    state.said = false;
                    tracing::info!(file = %self.path.display(), "ingest token file re-read");
                }
                Err(e) => {
                    if !std::mem::replace(&mut state.said, true) {
                        tracing::error!(error = %e, "cannot re-read the ingest token file; the tokens read last stay in force");
                    }
                }
            }
        }
        // every token is compared, whatever matched, in constant time
        state
            .tokens
            .iter()
            .fold(false, |found, token| found | constant_time_eq(token, given))
    }
}

/// The tokens in the file: at least one.
fn read(path: &Path) -> Result<Vec<Vec<u8>>, FileError> {
    let bytes = files::read(FLAG, path)?;
    let text = String::from_utf8(bytes).map_err(|_| files::content(FLAG, path, "not UTF-8"))?;
    let tokens: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if tokens.is_empty() {
        return Err(files::content(FLAG, path, "no token in it (one a line)"));
    }
    if let Some(short) = tokens.iter().find(|t| t.len() < 16) {
        return Err(files::content(
            FLAG,
            path,
            format!(
                "a token of {} characters is too short to resist guessing (16 or more)",
                short.len()
            ),
        ));
    }
    Ok(tokens)
}

fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Equal bytes, in a time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_compared_and_re_read_when_the_file_changes() {
        let dir = std::env::temp_dir().join(format!("mde-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("tokens");
        std::fs::write(&file, "# senders\nfirst-token-0123456789\n\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let tokens = Tokens::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(tokens.accepts(b"first-token-0123456789"));
        assert!(!tokens.accepts(b"first-token-012345678"));
        assert!(!tokens.accepts(b""));
        // rotated: a longer file (the size changes, so the re-read is seen
        // at the first look a second later)
        std::fs::write(&file, "second-token-0123456789\nthird-token-0123456789\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(tokens.accepts(b"third-token-0123456789"));
        assert!(!tokens.accepts(b"first-token-0123456789"));
        // emptied: the last tokens stay
        std::fs::write(&file, "").unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(tokens.accepts(b"second-token-0123456789"));
        std::fs::write(&file, "short\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(Tokens::load(&file).is_err());
        std::fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
