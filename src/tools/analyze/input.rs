//! How `analyze` reads its input: lines, each in one of the formats
//! [`crate::core::event::lines`] detects.
//!
//! Lines are read with a bound on their length, so a multi-gigabyte file or
//! a line without an end is never loaded whole.

use std::io::{self, BufRead};

/// Reads one line into `buf`, keeping at most `cap` bytes; returns the bytes
/// consumed and whether the line was longer than `cap`.
pub fn read_line_bounded<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut truncated = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((consumed, truncated));
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = cap.saturating_sub(buf.len());
        if take > room {
            truncated = true;
        }
        buf.extend_from_slice(&chunk[..take.min(room)]);
        r.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, truncated));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines() {
        let data = b"short\nthis line is too long\nok\nend";
        let mut r = io::BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        loop {
            buf.clear();
            let (n, cut) = read_line_bounded(&mut r, &mut buf, 8).unwrap();
            if n == 0 {
                break;
            }
            lines.push((String::from_utf8(buf.clone()).unwrap(), cut));
        }
        assert_eq!(
            lines,
            vec![
                ("short\n".into(), false),
                ("this lin".into(), true),
                ("ok\n".into(), false),
                ("end".into(), false)
            ]
        );
    }
}
