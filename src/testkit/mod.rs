//! Test equipment for the session: a Redis model and an invariant checker
//! that drives a session through an arbitrary exchange. Used by the unit
//! tests and by the fuzz targets (`fuzz/`); never part of the filter (built
//! only for tests and with the `testkit` feature).
//!
//! - [`model`]: [`ModelRedis`], a server that answers like Redis 7.0 for the
//!   commands the session cares about.
//! - [`exchange`]: [`check_exchange`], which plays a sequence of client
//!   chunks, server chunks and closes through a session wired to the model,
//!   as Envoy would, and checks the session's invariants after every step.

pub mod exchange;
pub mod model;

pub use exchange::{Violation, check_exchange};
pub use model::ModelRedis;
