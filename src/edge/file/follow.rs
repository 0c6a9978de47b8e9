//! Following one file by name, as `tail -F` does, with no line read twice
//! and none lost across a rotation.
//!
//! [`Follower::poll`] reads what was appended since the last poll and hands
//! each whole line on; the caller polls again after a short sleep (or at
//! once when [`Polled::more`] says the read stopped at its bound). What it
//! checks on each poll:
//! - **rename and create** (logrotate's default): the path names another
//!   file. The old file stays open and is read on, because the writer keeps
//!   writing to it until it reopens its log (Mosquitto does on SIGHUP, which
//!   logrotate's `postrotate` sends). Once the new file holds data, the
//!   writer has moved: the old file is read to its end one last time and
//!   closed, and the new one is read from its start.
//! - **copytruncate**: the file is shorter than what was read, or its first
//!   bytes changed (it was truncated and written past the old length
//!   between two polls): it is read again from its start. Lines the writer
//!   added between logrotate's copy and its truncation are lost by
//!   copytruncate itself (logrotate's manual says so).
//! - **a file that does not exist yet** (or was removed): polled until it
//!   appears, then read from its start, since everything in it is new.
//!
//! At start the file is read from its end (or, with `from_start`, from its
//! beginning). Memory is bounded by one read buffer and one partial line
//! per open file, each at most `max_line` bytes: a longer line is skipped
//! to its end and reported once as [`Line::TooLong`].

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Bytes read per read call.
const CHUNK: usize = 64 * 1024;
/// Bytes read in one poll at most, so a large backlog is read in several
/// polls and a caller can check for shutdown in between.
const POLL_BYTES: u64 = 4 * 1024 * 1024;
/// Bytes at the start of a file remembered to notice a truncation that the
/// file's length alone does not show.
const HEAD: usize = 64;

/// One line as read, without its newline.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Whole(&'a [u8]),
    /// A line longer than the limit, skipped; `bytes` of it were seen.
    TooLong {
        bytes: usize,
    },
}

/// What one poll found, besides its lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Polled {
    /// The read stopped at its bound (4 MiB a poll): poll again at once.
    pub more: bool,
    /// Rotations seen in this poll.
    pub renamed: u32,
    pub truncated: u32,
    /// The state in words, when it changed: for readiness and the log.
    pub changed: Option<State>,
}

/// Whether the file is being read, as readiness tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Open, read up to `offset`.
    Following { offset: u64 },
    /// No file by that name (yet).
    Missing,
    /// It exists but cannot be read.
    Unreadable(String),
}

/// One open file and how far it was read.
struct Open {
    file: File,
    dev: u64,
    ino: u64,
    offset: u64,
    /// Its first bytes as read (up to [`HEAD`]).
    head: Vec<u8>,
    /// The last line, while its newline has not been written yet.
    partial: Vec<u8>,
    /// The current line is longer than the limit: skipped to its newline.
    skipping: Option<usize>,
}

/// Follows one path across rotations.
pub struct Follower {
    path: PathBuf,
    max_line: usize,
    /// Read from the end at the first open only.
    at_end: bool,
    current: Option<Open>,
    /// The file renamed away, read on until the writer moves to the new one.
    rotated: Option<Open>,
    state: Option<State>,
    buf: Vec<u8>,
}

impl Follower {
    /// Follows `path`, from its end unless `from_start`; lines longer than
    /// `max_line` bytes are skipped.
    pub fn new(path: PathBuf, max_line: usize, from_start: bool) -> Follower {
        Follower {
            path,
            max_line: max_line.max(1),
            at_end: !from_start,
            current: None,
            rotated: None,
            state: None,
            buf: vec![0; CHUNK],
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what is new, handing each line to `line`.
    pub fn poll(&mut self, mut line: impl FnMut(Line<'_>)) -> Polled {
        let mut polled = Polled::default();
        let named = std::fs::metadata(&self.path);
        match (&named, self.current.as_ref()) {
            (Ok(meta), Some(open)) if !same_file(meta, open) => {
                // renamed away and created again: keep the old one open
                // until the writer moves
                if let Some(mut old) = self.rotated.take() {
                    self.read(&mut old, u64::MAX, &mut line);
                    flush(&mut old, &mut line);
                }
                self.rotated = self.current.take();
                polled.renamed += 1;
                if let Err(e) = self.open(meta, 0) {
                    self.set_state(State::Unreadable(e.to_string()), &mut polled);
                }
            }
            (Ok(meta), None) => {
                let from = if self.at_end { meta.len() } else { 0 };
                if let Err(e) = self.open(meta, from) {
                    self.set_state(State::Unreadable(e.to_string()), &mut polled);
                }
            }
            _ => {}
        }
        // a missing file is waited for; once it appears, all of it is new
        self.at_end = false;
        if let Some(mut old) = self.rotated.take() {
            let moved = self
                .current
                .as_ref()
                .and_then(|c| c.file.metadata().ok())
                .is_some_and(|m| m.len() > 0);
            self.read(&mut old, u64::MAX, &mut line);
            if moved {
                flush(&mut old, &mut line);
            } else {
                self.rotated = Some(old);
            }
        }
        if let Some(mut open) = self.current.take() {
            if truncated(&open) {
                polled.truncated += 1;
                flush(&mut open, &mut line);
                open.offset = 0;
                open.head.clear();
            }
            polled.more = self.read(&mut open, POLL_BYTES, &mut line);
            let offset = open.offset;
            self.current = Some(open);
            self.set_state(State::Following { offset: 0 }, &mut polled);
            if let Some(State::Following { offset: shown }) = &mut polled.changed {
                *shown = offset;
            }
        } else if self.rotated.is_none() {
            if let Err(e) = &named {
                let state = match e.kind() {
                    io::ErrorKind::NotFound => State::Missing,
                    _ => State::Unreadable(e.to_string()),
                };
                self.set_state(state, &mut polled);
            }
        }
        polled
    }

    /// Opens the file `meta` describes, to be read from `from`.
    fn open(&mut self, meta: &Metadata, from: u64) -> io::Result<()> {
        let file = File::open(&self.path)?;
        // the path may have been rotated between stat and open: trust what
        // was opened
        let (dev, ino) = match file.metadata() {
            Ok(m) => (m.dev(), m.ino()),
            Err(_) => (meta.dev(), meta.ino()),
        };
        let mut head = vec![0; HEAD];
        let n = file.read_at(&mut head, 0).unwrap_or(0);
        head.truncate(n.min(usize::try_from(from).unwrap_or(usize::MAX)));
        self.current = Some(Open {
            file,
            dev,
            ino,
            offset: from,
            head,
            partial: Vec::new(),
            skipping: None,
        });
        Ok(())
    }

    fn set_state(&mut self, state: State, polled: &mut Polled) {
        let same = match (&self.state, &state) {
            (Some(State::Following { .. }), State::Following { .. }) => true,
            (Some(a), b) => a == b,
            (None, _) => false,
        };
        if !same {
            polled.changed = Some(state.clone());
            self.state = Some(state);
        }
    }

    /// Reads `open` from its offset, up to `limit` bytes; true if it stopped
    /// at the limit with more to read.
    fn read(&mut self, open: &mut Open, limit: u64, line: &mut impl FnMut(Line<'_>)) -> bool {
        let mut read = 0u64;
        loop {
            if read >= limit {
                return true;
            }
            let n = match open.file.read_at(&mut self.buf, open.offset) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            if open.head.len() < HEAD && (open.offset as usize) < HEAD {
                let start = open.offset as usize;
                if start == open.head.len() {
                    let take = (HEAD - start).min(n);
                    open.head.extend_from_slice(&self.buf[..take]);
                }
            }
            open.offset += n as u64;
            read += n as u64;
            split_lines(&self.buf[..n], open, self.max_line, line);
        }
    }
}

/// Whether `meta` is the file `open` has open.
fn same_file(meta: &Metadata, open: &Open) -> bool {
    meta.dev() == open.dev && meta.ino() == open.ino
}

/// Whether the open file was truncated since it was read: shorter than what
/// was read, or with other first bytes.
fn truncated(open: &Open) -> bool {
    let Ok(meta) = open.file.metadata() else {
        return false;
    };
    if meta.len() < open.offset {
        return true;
    }
    if open.head.is_empty() {
        return false;
    }
    let mut now = vec![0; open.head.len()];
    match open.file.read_at(&mut now, 0) {
        Ok(n) => now[..n] != open.head[..],
        Err(_) => false,
    }
}

/// Hands on the whole lines of `chunk`, keeping the rest as the partial
/// line (bounded by `max_line`).
fn split_lines(chunk: &[u8], open: &mut Open, max_line: usize, line: &mut impl FnMut(Line<'_>)) {
    let mut rest = chunk;
    while let Some(at) = rest.iter().position(|b| *b == b'\n') {
        let (text, after) = (&rest[..at], &rest[at + 1..]);
        rest = after;
        if let Some(seen) = open.skipping.take() {
            line(Line::TooLong { bytes: seen + at });
            continue;
        }
        if open.partial.is_empty() {
            whole(text, max_line, line);
        } else if open.partial.len() + text.len() > max_line {
            line(Line::TooLong {
                bytes: open.partial.len() + text.len(),
            });
            open.partial.clear();
        } else {
            open.partial.extend_from_slice(text);
            let joined = std::mem::take(&mut open.partial);
            whole(&joined, max_line, line);
            // keep the allocation for the next partial line
            open.partial = joined;
            open.partial.clear();
        }
    }
    if rest.is_empty() {
        return;
    }
    match open.skipping.as_mut() {
        Some(seen) => *seen += rest.len(),
        None if open.partial.len() + rest.len() > max_line => {
            open.skipping = Some(open.partial.len() + rest.len());
            open.partial.clear();
        }
        None => open.partial.extend_from_slice(rest),
    }
}

/// One line, without a trailing `\r`; empty lines are skipped.
fn whole(text: &[u8], max_line: usize, line: &mut impl FnMut(Line<'_>)) {
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if text.len() > max_line {
        line(Line::TooLong { bytes: text.len() });
    } else if !text.is_empty() {
        line(Line::Whole(text));
    }
}

/// The file is left for good: its last line, if the writer left it without
/// a newline, is still a line.
fn flush(open: &mut Open, line: &mut impl FnMut(Line<'_>)) {
    if let Some(bytes) = open.skipping.take() {
        line(Line::TooLong { bytes });
    } else if !open.partial.is_empty() {
        let text = std::mem::take(&mut open.partial);
        line(Line::Whole(&text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("mde-follow-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }
    fn lines(f: &mut Follower) -> (Vec<String>, Polled) {
        let mut out = Vec::new();
        let polled = f.poll(|l| {
            out.push(match l {
                Line::Whole(t) => String::from_utf8_lossy(t).into_owned(),
                Line::TooLong { bytes } => format!("<too long: {bytes}>"),
            })
        });
        (out, polled)
    }

    #[test]
    fn starts_at_the_end_and_reads_what_follows() {
        let d = dir("end");
        let path = d.0.join("log");
        append(&path, "old 1\nold 2\n");
        let mut f = Follower::new(path.clone(), 100, false);
        let (got, polled) = lines(&mut f);
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(polled.changed, Some(State::Following { offset: 12 }));
        append(&path, "new 1\nnew ");
        assert_eq!(lines(&mut f).0, ["new 1"]);
        append(&path, "2\r\n\n");
        assert_eq!(lines(&mut f).0, ["new 2"]);
        assert_eq!(lines(&mut f).0, Vec::<String>::new());
    }

    #[test]
    fn from_start_reads_everything() {
        let d = dir("start");
        let path = d.0.join("log");
        append(&path, "a\nb\n");
        let mut f = Follower::new(path, 100, true);
        assert_eq!(lines(&mut f).0, ["a", "b"]);
    }

    #[test]
    fn a_missing_file_is_waited_for_and_read_whole() {
        let d = dir("missing");
        let path = d.0.join("log");
        let mut f = Follower::new(path.clone(), 100, false);
        let (got, polled) = lines(&mut f);
        assert!(got.is_empty());
        assert_eq!(polled.changed, Some(State::Missing));
        assert_eq!(lines(&mut f).1.changed, None);
        append(&path, "first\n");
        let (got, polled) = lines(&mut f);
        assert_eq!(got, ["first"]);
        assert_eq!(polled.changed, Some(State::Following { offset: 6 }));
    }

    #[test]
    fn rename_and_create_loses_nothing_and_repeats_nothing() {
        let d = dir("rename");
        let path = d.0.join("log");
        append(&path, "");
        let mut f = Follower::new(path.clone(), 100, false);
        lines(&mut f);
        append(&path, "1\n2\n");
        assert_eq!(lines(&mut f).0, ["1", "2"]);
        // logrotate renames and creates; the writer writes on to the old
        // file until its SIGHUP
        let old = d.0.join("log.1");
        std::fs::rename(&path, &old).unwrap();
        append(&path, "");
        append(&old, "3\n4");
        let (got, polled) = lines(&mut f);
        assert_eq!(got, ["3"]);
        assert_eq!(polled.renamed, 1);
        append(&old, "\n5\n");
        assert_eq!(lines(&mut f).0, ["4", "5"]);
        // the writer reopens: its last old line, then the new file
        append(&old, "6\n");
        append(&path, "7\n");
        assert_eq!(lines(&mut f).0, ["6", "7"]);
        append(&old, "never read: the writer has moved\n");
        append(&path, "8\n");
        assert_eq!(lines(&mut f).0, ["8"]);
    }

    #[test]
    fn copytruncate_is_read_again_from_the_start() {
        let d = dir("truncate");
        let path = d.0.join("log");
        append(&path, "");
        let mut f = Follower::new(path.clone(), 100, false);
        lines(&mut f);
        append(&path, "one\ntwo\n");
        assert_eq!(lines(&mut f).0, ["one", "two"]);
        std::fs::copy(&path, d.0.join("log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, "three\n");
        let (got, polled) = lines(&mut f);
        assert_eq!(got, ["three"]);
        assert_eq!(polled.truncated, 1);
        // truncated and written past the old length between two polls:
        // seen by the first bytes
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&path, "four, longer than what was there\n");
        let (got, polled) = lines(&mut f);
        assert_eq!(got, ["four, longer than what was there"]);
        assert_eq!(polled.truncated, 1);
    }

    #[test]
    fn long_lines_are_skipped_and_reported_once_each() {
        let d = dir("long");
        let path = d.0.join("log");
        append(&path, "");
        let mut f = Follower::new(path.clone(), 10, false);
        lines(&mut f);
        let long = "x".repeat(CHUNK * 2 + 5);
        append(&path, &format!("short\n{long}\nok\n0123456789a\n"));
        assert_eq!(
            lines(&mut f).0,
            [
                "short".to_string(),
                format!("<too long: {}>", long.len()),
                "ok".to_string(),
                "<too long: 11>".to_string()
            ]
        );
        // a long partial line, ended in a later poll
        append(&path, "abcdefgh");
        assert!(lines(&mut f).0.is_empty());
        append(&path, "ijk\nend\n");
        assert_eq!(lines(&mut f).0, ["<too long: 11>", "end"]);
    }

    #[test]
    fn a_large_backlog_is_read_in_bounded_polls() {
        let d = dir("backlog");
        let path = d.0.join("log");
        let line = format!("{}\n", "y".repeat(99));
        let count = (POLL_BYTES as usize / line.len()) * 3;
        append(&path, &line.repeat(count));
        let mut f = Follower::new(path, 200, true);
        let mut total = 0;
        let mut polls = 0;
        loop {
            polls += 1;
            let mut n = 0;
            let polled = f.poll(|l| {
                assert_eq!(l, Line::Whole("y".repeat(99).as_bytes()));
                n += 1;
            });
            total += n;
            if !polled.more {
                break;
            }
        }
        assert_eq!(total, count);
        assert!((3..=5).contains(&polls), "{polls} polls");
    }
}
