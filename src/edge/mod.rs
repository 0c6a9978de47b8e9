//! The edges: thin shells around the core that do the I/O. [`mqtt`] reads the
//! broker and feeds the pipeline, [`http`] serves what the pipeline counted,
//! [`shutdown`] turns signals into one cancellation passed down to both, and
//! [`process`] holds what `main` and the subcommands share (runtime, logs,
//! exit codes).

pub mod feed;
pub mod files;
pub mod http;
pub mod ingest;
pub mod listen;
pub mod mqtt;
pub mod process;
pub mod shutdown;
