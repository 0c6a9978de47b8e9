//! The pure core: parsing, classification, flapping detection, metrics and
//! the state the edges share. Nothing here imports tokio, rumqttc or hyper,
//! does I/O, or reads a clock except [`clock::now_ms`], which the edges call;
//! everything takes time as data, so tests drive it with plain numbers (a
//! test in `tests/it/architecture.rs` keeps it that way).

pub mod clock;
pub mod duration;
pub mod event;
pub mod flapping;
pub mod label;
pub mod label_set;
pub mod lifetime;
pub mod listed;
pub mod metrics;
pub mod network;
pub mod pipeline;
pub mod reasons;
pub mod recent;
pub mod snapshot;
pub mod status;
pub mod top;
