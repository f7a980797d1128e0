//! The proxy-wasm adapter: the only code that talks to Envoy.
//!
//! It reads the plugin configuration once per VM, creates a
//! [`Session`](crate::session::Session) per connection, hands it Envoy's
//! buffers and writes back what it decides. Everything else lives in the
//! sans-IO core.
//!
//! Host calls go through `proxy_wasm::hostcalls` with every status handled:
//! the SDK's convenience wrappers `unwrap`, and a panic would kill the VM for
//! every connection on this worker. When a host call fails, the connection is
//! closed: nothing is forwarded that the session did not decide.

mod metrics;

use std::hash::{BuildHasher, RandomState};
use std::rc::Rc;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

use crate::config::{self, Config};
use crate::resp::output::Verdict;
use crate::session::{Session, SessionEvent};
use metrics::Metrics;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { config: None, metrics: Rc::new(Metrics::define()) })
    });
}}

struct Root {
    config: Option<Rc<Config>>,
    metrics: Rc<Metrics>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("envoy-redis-auth: cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        // Environment variables come from vm_config.environment_variables
        // (Istio: vmConfig.env), which Envoy exposes through WASI.
        match config::parse(&bytes, &|name| std::env::var(name).ok()) {
            Ok(parsed) => {
                for warning in &parsed.warnings {
                    warn!("envoy-redis-auth: {warning}");
                }
                info!(
                    "envoy-redis-auth: configured (client authentication: {}, server authentication: {})",
                    if parsed.config.downstream.is_some() {
                        "on"
                    } else {
                        "off"
                    },
                    if parsed.config.upstream.is_some() {
                        "on"
                    } else {
                        "off"
                    },
                );
                self.config = Some(Rc::new(parsed.config));
                true
            }
            Err(err) => {
                error!("envoy-redis-auth: invalid configuration: {err}");
                false
            }
        }
    }

    fn create_stream_context(&self, context_id: u32) -> Option<Box<dyn StreamContext>> {
        // Returning None would make the SDK panic, so a connection without a
        // configuration gets a context that refuses it.
        let session = self
            .config
            .clone()
            .map(|config| Session::new(config, connection_seed(context_id)));
        self.metrics.connection();
        Some(Box::new(Connection {
            session,
            metrics: self.metrics.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

/// An unpredictable seed for the connection's markers. `RandomState` draws
/// its keys from WASI `random_get` once per VM and varies them per call.
fn connection_seed(context_id: u32) -> u64 {
    RandomState::new().hash_one(context_id)
}

struct Connection {
    session: Option<Session>,
    metrics: Rc<Metrics>,
}

impl Context for Connection {}

impl StreamContext for Connection {
    fn on_downstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        self.carry(BufferType::DownstreamData, size);
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        self.carry(BufferType::UpstreamData, size);
        Action::Continue
    }
}

impl Connection {
    /// Hands one chunk to the session and applies its decision.
    fn carry(&mut self, buffer: BufferType, size: usize) {
        let Some(session) = self.session.as_mut() else {
            error!("envoy-redis-auth: no valid configuration; closing the connection");
            close_all();
            return;
        };
        let input = match hostcalls::get_buffer(buffer, 0, size) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("envoy-redis-auth: cannot read {buffer:?}: {status:?}; closing");
                close_all();
                return;
            }
        };
        let step = match buffer {
            BufferType::DownstreamData => session.on_client_data(&input),
            _ => session.on_server_data(&input),
        };
        let mut close = step.close;
        if let Verdict::Replace(bytes) = step.verdict {
            if let Err(status) = hostcalls::set_buffer(buffer, 0, size, bytes) {
                error!("envoy-redis-auth: cannot write {buffer:?}: {status:?}; closing");
                close = true;
            }
        }
        for event in session.drain_events() {
            report(&event, &self.metrics);
        }
        if close {
            close_all();
        }
    }
}

fn close_all() {
    // Both can fail only if the connection is already gone.
    let _ = hostcalls::close_downstream();
    let _ = hostcalls::close_upstream();
}

/// Logs and counts a session event. Events never carry credentials.
fn report(event: &SessionEvent, metrics: &Metrics) {
    metrics.record(event);
    match event {
        SessionEvent::AuthSucceeded | SessionEvent::AuthFailed | SessionEvent::Unauthenticated => {}
        SessionEvent::TooManyAuthFailures(count) => {
            warn!(
                "envoy-redis-auth: closing a client connection after {count} failed AUTH attempts"
            );
        }
        SessionEvent::ProtocolError(error) => {
            info!(
                "envoy-redis-auth: client protocol error ({}); closing",
                error.as_str()
            );
        }
        SessionEvent::CrossProtocolAttack => {
            warn!("envoy-redis-auth: client sent POST or Host: (cross-protocol attack); closing");
        }
        SessionEvent::UpstreamAuthRejected(reason) => {
            error!(
                "envoy-redis-auth: the Redis server rejected the proxy's AUTH ({reason}); check upstream.username/upstream.password"
            );
        }
        SessionEvent::ServerProtocolError(error) => {
            error!("envoy-redis-auth: the server sent invalid RESP ({error}); closing");
        }
        SessionEvent::TooManyPending => {
            warn!("envoy-redis-auth: too many local replies awaiting the server; closing");
        }
    }
}
