//! Wall-clock time as plain data: milliseconds since the Unix epoch.
//!
//! The rest of the core never reads a clock; it is handed times in
//! milliseconds. This is the one function the edges and tools call to get
//! them, so tests and `analyze` can drive the core with any numbers.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
