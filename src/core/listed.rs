//! How many of each list is shown where, in one place: the flapping list
//! the HTTP edge serves, the top devices per reason on the API, the landing
//! page and the pages.

/// Flapping clients kept for `/` and `/api/v1/flapping` at each tick.
pub const FLAPPING: usize = 1000;
/// Devices per reason on `/api/v1/top` (at least; `--top.clients` if more).
pub const TOP_API: usize = 20;
/// Devices per reason on the landing page.
pub const TOP_LANDING: usize = 5;
/// Devices a page (the keepalive and too_many_connection alerts) names.
pub const TOP_PAGE: usize = 5;
