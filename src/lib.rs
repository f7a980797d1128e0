//! envoy-redis-auth: a Redis authentication and access-control filter for
//! Envoy, built as a proxy-wasm network filter.
//!
//! Everything outside [`filter`] is a sans-IO core: plain Rust that takes
//! bytes and configuration in and returns decisions, with no `proxy_wasm`
//! import, so it builds and is tested natively. [`filter`] is the thin
//! adapter that carries those decisions out through Envoy's host calls; it
//! is compiled only for the wasm target.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod acl;
pub mod command;
pub mod config;
pub mod resp;
pub mod secret;
pub mod session;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod users;

#[cfg(target_arch = "wasm32")]
mod filter;
