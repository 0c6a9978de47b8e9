//! The integration tests, in one binary so the link step happens once: a
//! module per concern, and one set of helpers in [`common`] (start a real
//! Mosquitto, start the exporter as a process or `run` in this process,
//! build a payload, read an exposition, kill a child on drop). Everything
//! runs on 127.0.0.1 or ::1: in process where no tool is needed, else
//! against the real Mosquitto, Prometheus, Alertmanager, promtool, amtool,
//! openssl, podman, systemd-analyze and chromium that `scripts/test.sh`
//! installs (a test needing one is ignored by plain `cargo test`, and names
//! it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod adversarial;
mod alerting_e2e;
mod alerts;
mod analyze;
mod architecture;
mod attacks;
mod cli;
mod dashboards;
mod demo_simulate;
mod deploy;
mod faults;
mod file_source;
mod fixtures_pipeline;
mod flapping_props;
mod http_abuse;
mod image;
mod ingest;
mod listen;
mod mosquitto;
mod mosquitto_log;
mod mqtt311;
mod plugged_source;
mod security;
mod storm;
mod top;
mod web_tls;
