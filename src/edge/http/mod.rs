//! The HTTP edge: the exporter's web side, one concern a file, as
//! Prometheus's exporter-toolkit keeps them:
//! - [`admission`]: who is let in (connection caps in all and per peer,
//!   eviction of the connection idle longest, the first-request
//!   timeout);
//! - `server`: accepting, TLS, basic auth, headers and the drain at
//!   shutdown;
//! - `pages`: what each path answers;
//! - [`web_config`]: the `--web.config.file` (TLS, users, headers) and its
//!   reloads;
//! - [`metrics`]: the HTTP edge's self-metrics.
//!
//! The HTTP ingest source's routes are mounted here, under
//! `/api/v1/ingest/`, behind their own tokens.

pub mod admission;
pub mod metrics;
mod pages;
mod server;
pub mod web_config;

pub use admission::{FIRST_REQUEST_TIMEOUT, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER};
pub use pages::telemetry_path;
pub use server::{run, Settings};
