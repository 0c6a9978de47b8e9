//! A small, validating JSON reader for one flat event object.
//!
//! [`scan`] reads a whole payload as one JSON object, picks out the handful of
//! top-level fields an event needs (borrowing strings that have no escapes),
//! and checks that everything else is well-formed JSON while skipping it. It
//! does what `serde_json` with a derived struct did here, at about half the
//! cost: the event unit tests compare the two on generated payloads.
//!
//! Rules kept from that struct: a wanted string field must be a string or
//! null; a duplicate wanted field (`client_id` counts as `clientid`) is an
//! error; timestamps may be numbers or numeric strings, and anything else that
//! is not an object or array is read as "no time"; nesting is limited to 128.

use std::borrow::Cow;

/// `reason_code` as found: a name, a number that fits a byte, or neither.
#[derive(Debug, Clone, PartialEq)]
pub enum Code<'a> {
    Name(Cow<'a, str>),
    Code(u8),
    Invalid,
}

/// The fields an event is built from; absent or null fields are `None`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fields<'a> {
    pub clientid: Option<Cow<'a, str>>,
    pub event: Option<Cow<'a, str>>,
    pub reason: Option<Cow<'a, str>>,
    pub reason_code: Option<Code<'a>>,
    pub peername: Option<Cow<'a, str>>,
    pub ipaddress: Option<Cow<'a, str>>,
    /// NanoMQ's `client_status` events: `online` or `offline`.
    pub status: Option<Cow<'a, str>>,
    /// The broker node (EMQX, TDMQ): a string, else ignored.
    pub node: Option<Cow<'a, str>>,
    pub disconnected_at: Option<i64>,
    pub connected_at: Option<i64>,
    pub timestamp: Option<i64>,
    pub ts: Option<i64>,
}

/// Not valid JSON, not an object, or a wanted field of the wrong type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

type Result<T> = std::result::Result<T, Invalid>;

const MAX_DEPTH: u32 = 128;

/// A timestamp in ms: seconds when below 10^11; nothing when not positive,
/// not finite or past year 9999.
pub fn millis(v: f64) -> Option<i64> {
    if !v.is_finite() || v <= 0.0 {
        return None;
    }
    let ms = if v < 1e11 { v * 1000.0 } else { v };
    (ms <= 253_402_300_799_000.0).then_some(ms as i64)
}

#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Uint(u64),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(v) => v as f64,
            Num::Uint(v) => v as f64,
            Num::Float(v) => v,
        }
    }
}

/// The fields read from an event object; every other key is skipped.
#[derive(Clone, Copy)]
enum Key {
    ClientId,
    Event,
    Reason,
    ReasonCode,
    Peername,
    IpAddress,
    Status,
    Node,
    DisconnectedAt,
    ConnectedAt,
    Timestamp,
    Ts,
}

impl Key {
    fn from_name(name: &str) -> Option<Key> {
        Some(match name {
            // AWS IoT Core lifecycle events spell theirs in camelCase
            "clientid" | "client_id" | "clientId" => Key::ClientId,
            "event" | "eventType" => Key::Event,
            "reason" | "disconnectReason" | "connectFailureReason" => Key::Reason,
            "reason_code" => Key::ReasonCode,
            "peername" => Key::Peername,
            // NanoMQ spells the address IPv4 or IPv6
            "ipaddress" | "ipAddress" | "IPv4" | "IPv6" => Key::IpAddress,
            "status" => Key::Status,
            "node" => Key::Node,
            "disconnected_at" => Key::DisconnectedAt,
            "connected_at" => Key::ConnectedAt,
            "timestamp" => Key::Timestamp,
            "ts" => Key::Ts,
            _ => return None,
        })
    }
}

/// Reads `text` as one JSON object.
pub fn scan(text: &str) -> Result<Fields<'_>> {
    let mut r = Reader {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    let mut f = Fields::default();
    let mut seen = 0u16;
    r.ws();
    r.eat(b'{')?;
    r.ws();
    if r.peek() == Some(b'}') {
        r.i += 1;
    } else {
        loop {
            r.ws();
            if r.peek() != Some(b'"') {
                return Err(Invalid);
            }
            let key = r.string()?;
            r.ws();
            r.eat(b':')?;
            r.ws();
            match Key::from_name(&key) {
                None => r.skip_value(1)?,
                Some(field) => {
                    // a field given twice is ambiguous: refused, as serde_json did
                    let bit = 1u16 << field as u16;
                    if seen & bit != 0 {
                        return Err(Invalid);
                    }
                    seen |= bit;
                    match field {
                        Key::ClientId => f.clientid = r.str_or_null()?,
                        Key::Event => f.event = r.str_or_null()?,
                        Key::Reason => f.reason = r.str_or_null()?,
                        Key::ReasonCode => f.reason_code = r.code()?,
                        Key::Peername => f.peername = r.str_or_null()?,
                        Key::IpAddress => f.ipaddress = r.str_or_null()?,
                        Key::Status => f.status = r.str_or_skip()?,
                        Key::Node => f.node = r.str_or_skip()?,
                        Key::DisconnectedAt => f.disconnected_at = r.time()?,
                        Key::ConnectedAt => f.connected_at = r.time()?,
                        Key::Timestamp => f.timestamp = r.time()?,
                        Key::Ts => f.ts = r.time()?,
                    }
                }
            }
            r.ws();
            match r.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(Invalid),
            }
        }
    }
    r.ws();
    if r.i != r.b.len() {
        return Err(Invalid);
    }
    Ok(f)
}

struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Result<()> {
        if self.next() == Some(c) {
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    fn ws(&mut self) {
        let rest = &self.b[self.i..];
        self.i += rest
            .iter()
            .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(rest.len());
    }

    /// Moves to the next `"`, `\\` or control character; false at the end.
    /// Eight bytes at a time (SWAR): strings are most of an event's bytes.
    fn skip_plain(&mut self) -> bool {
        const LO: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        let mut chunks = self.b[self.i..].chunks_exact(8);
        for chunk in chunks.by_ref() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            let quote = w ^ (LO * u64::from(b'"'));
            let slash = w ^ (LO * u64::from(b'\\'));
            // a byte is zero (or below 0x20) where the borrow reaches its top
            // bit; only bytes after the first hit can be false positives
            let hits = (quote.wrapping_sub(LO) & !quote)
                | (slash.wrapping_sub(LO) & !slash)
                | (w.wrapping_sub(LO * 0x20) & !w);
            let hits = hits & HI;
            if hits != 0 {
                self.i += (hits.trailing_zeros() / 8) as usize;
                return true;
            }
            self.i += 8;
        }
        let rest = chunks.remainder();
        match rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        {
            Some(n) => {
                self.i += n;
                true
            }
            None => {
                self.i = self.b.len();
                false
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// A string at `"`; borrowed unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.i;
        if !self.skip_plain() {
            return Err(Invalid);
        }
        match self.next() {
            Some(b'"') => Ok(Cow::Borrowed(&self.s[start..self.i - 1])),
            Some(b'\\') => {
                let mut out = String::with_capacity(self.i - start + 16);
                out.push_str(&self.s[start..self.i - 1]);
                self.escape(&mut out)?;
                self.owned_rest(out).map(Cow::Owned)
            }
            _ => Err(Invalid),
        }
    }

    fn owned_rest(&mut self, mut out: String) -> Result<String> {
        loop {
            let start = self.i;
            if !self.skip_plain() {
                return Err(Invalid);
            }
            out.push_str(&self.s[start..self.i]);
            match self.next() {
                Some(b'"') => return Ok(out),
                Some(b'\\') => self.escape(&mut out)?,
                _ => return Err(Invalid),
            }
        }
    }

    /// One escape, after its backslash.
    fn escape(&mut self, out: &mut String) -> Result<()> {
        let c = match self.next().ok_or(Invalid)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                let code = match hi {
                    0xD800..=0xDBFF => {
                        self.literal(b"\\u")?;
                        let lo = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(Invalid);
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(Invalid),
                    _ => hi,
                };
                char::from_u32(code).ok_or(Invalid)?
            }
            _ => return Err(Invalid),
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.b.get(self.i..self.i + 4).ok_or(Invalid)?;
        let mut v = 0;
        for d in digits {
            v = v * 16 + (*d as char).to_digit(16).ok_or(Invalid)?;
        }
        self.i += 4;
        Ok(v)
    }

    fn skip_string(&mut self) -> Result<()> {
        self.eat(b'"')?;
        loop {
            if !self.skip_plain() {
                return Err(Invalid);
            }
            match self.next() {
                Some(b'"') => return Ok(()),
                Some(b'\\') => match self.next().ok_or(Invalid)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    // four hex digits; a skipped string's surrogates are not
                    // paired up (as serde_json skips them)
                    b'u' => {
                        self.hex4()?;
                    }
                    _ => return Err(Invalid),
                },
                _ => return Err(Invalid),
            }
        }
    }

    fn number(&mut self) -> Result<Num> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Invalid),
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            float = true;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(Invalid);
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            float = true;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(Invalid);
            }
            self.digits();
        }
        let text = &self.s[start..self.i];
        if text == "-0" {
            return Ok(Num::Float(-0.0)); // as serde_json reads it
        }
        if !float {
            if let Ok(v) = text.parse::<u64>() {
                return Ok(Num::Uint(v));
            }
            if let Ok(v) = text.parse::<i64>() {
                return Ok(Num::Int(v));
            }
        }
        // Too large for an integer, or a float: JSON's grammar is a subset
        // of what Rust parses; overflow gives infinity, which is no time.
        text.parse::<f64>().map(Num::Float).map_err(|_| Invalid)
    }

    fn digits(&mut self) {
        let rest = &self.b[self.i..];
        self.i += rest
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(rest.len());
    }

    fn skip_value(&mut self, depth: u32) -> Result<()> {
        match self.peek().ok_or(Invalid)? {
            b'"' => self.skip_string(),
            b'{' => self.skip_container(depth, b'}', true),
            b'[' => self.skip_container(depth, b']', false),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }

    fn skip_container(&mut self, depth: u32, close: u8, object: bool) -> Result<()> {
        if depth >= MAX_DEPTH {
            return Err(Invalid);
        }
        self.i += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if object {
                if self.peek() != Some(b'"') {
                    return Err(Invalid);
                }
                self.skip_string()?;
                self.ws();
                self.eat(b':')?;
                self.ws();
            }
            self.skip_value(depth + 1)?;
            self.ws();
            match self.next() {
                Some(b',') => continue,
                Some(c) if c == close => return Ok(()),
                _ => return Err(Invalid),
            }
        }
    }

    fn str_or_null(&mut self) -> Result<Option<Cow<'a, str>>> {
        match self.peek() {
            Some(b'"') => self.string().map(Some),
            Some(b'n') => self.literal(b"null").map(|_| None),
            _ => Err(Invalid),
        }
    }

    /// A string, or any other value skipped as absent: `status` is a common
    /// word, and only NanoMQ's string form means anything here.
    fn str_or_skip(&mut self) -> Result<Option<Cow<'a, str>>> {
        if self.peek() == Some(b'"') {
            return self.string().map(Some);
        }
        self.skip_value(1)?;
        Ok(None)
    }

    fn time(&mut self) -> Result<Option<i64>> {
        match self.peek().ok_or(Invalid)? {
            b'"' => Ok(self.string()?.trim().parse::<f64>().ok().and_then(millis)),
            b'n' => self.literal(b"null").map(|_| None),
            b't' => self.literal(b"true").map(|_| None),
            b'f' => self.literal(b"false").map(|_| None),
            b'{' | b'[' => Err(Invalid),
            _ => Ok(millis(self.number()?.as_f64())),
        }
    }

    fn code(&mut self) -> Result<Option<Code<'a>>> {
        match self.peek().ok_or(Invalid)? {
            b'"' => Ok(Some(code_from_name(self.string()?))),
            b'n' => self.literal(b"null").map(|_| None),
            b't' => self.literal(b"true").map(|_| Some(Code::Invalid)),
            b'f' => self.literal(b"false").map(|_| Some(Code::Invalid)),
            b'{' | b'[' => Err(Invalid),
            _ => Ok(Some(match self.number()? {
                Num::Uint(v) => u8::try_from(v).map_or(Code::Invalid, Code::Code),
                Num::Int(v) => u8::try_from(v).map_or(Code::Invalid, Code::Code),
                Num::Float(_) => Code::Invalid,
            })),
        }
    }
}

/// A `reason_code` string: `"8b"` / `"0x8B"` are codes, anything else a name.
pub fn code_from_name(name: Cow<'_, str>) -> Code<'_> {
    let trimmed = name.trim();
    let hex = trimmed.strip_prefix("0x").unwrap_or(trimmed);
    if !hex.is_empty() && hex.len() <= 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Ok(code) = u8::from_str_radix(hex, 16) {
            return Code::Code(code);
        }
    }
    Code::Name(name)
}
