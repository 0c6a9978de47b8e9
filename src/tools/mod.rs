//! The other subcommands, on the same core: [`analyze`] replays a captured
//! event log offline, [`sim`] simulates a fleet (publishing it to a broker,
//! or running the whole demo with an embedded one), [`rules`] prints the
//! alerting rules and their runbook, [`dashboards`] the Grafana dashboards.

pub mod analyze;
pub mod dashboards;
pub mod rules;
pub mod sim;
