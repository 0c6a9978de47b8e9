//! A simulated fleet: [`fleet`] generates its lifecycle events (pure,
//! seeded), [`publish`] sends them to a broker (`simulate`), and [`demo`]
//! runs an embedded broker, the fleet and the exporter together.

pub mod demo;
pub mod fleet;
pub mod pace;
pub mod post;
pub mod publish;
