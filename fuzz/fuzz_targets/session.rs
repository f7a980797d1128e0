//! `session::Session`: an arbitrary exchange (client commands and raw bytes,
//! the host's chunks of either direction, pushes, a server that goes away)
//! played against a model Redis, with the session's invariants checked after
//! every step. The decoding and the checks live in the core crate's
//! `testkit::exchange` (see its module docs), so the unit tests run them too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = envoy_redis_auth::testkit::check_exchange(data) {
        panic!("session invariant broken: {violation}");
    }
});
