//! What one tick of the pipeline publishes: every list, in one value. The
//! feed puts it in the [`Status`](crate::core::status::Status) each second,
//! and the landing page, `/api/v1/*` and the metrics read that one value,
//! so no list is threaded through the layers on its own. A new list is a
//! field here.

use crate::core::flapping::FlappingClient;
use crate::core::top::TopReport;

/// The lists as of one tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The clients flapping now, most events first (at most the `listed`
    /// the tick was asked for).
    pub flapping: Vec<FlappingClient>,
    /// Per reason: the devices and the source networks that stand out.
    pub top: TopReport,
}
