//! The other subcommands, on the same core: [`analyze`] replays a captured
//! event log offline, [`sim`] simulates a fleet (publishing it to a broker,
//! or running the whole demo with an embedded one).

pub mod analyze;
pub mod sim;
