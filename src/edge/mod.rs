//! The edges: thin shells around the core that do the I/O. The sources
//! ([`mqtt`], [`ingest`], [`file`](mod@file)) turn what brokers and senders give
//! into deliveries for the one pipeline the [`feed`] holds; [`source`] is
//! what they have in common and the list `run` starts. [`http`] serves
//! what the pipeline counted, [`listen`] binds its sockets, [`shutdown`]
//! turns signals into one cancellation passed down to all, [`files`] reads
//! the files flags name, and [`process`] holds what `main` and the
//! subcommands share (runtime, logs, exit codes).

pub mod feed;
pub mod file;
pub mod files;
pub mod http;
pub mod ingest;
pub mod listen;
pub mod mqtt;
pub mod process;
pub mod shutdown;
pub mod source;
