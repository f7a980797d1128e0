//! Counters, visible as `wasmcustom.redis_auth.*` in Envoy's `/stats` and
//! `redis_auth_*` in `/stats/prometheus`. Names are shared by every listener
//! and VM using this filter.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::session::SessionEvent;

pub struct Metrics {
    connections: Option<u32>,
    auth_success: Option<u32>,
    auth_failure: Option<u32>,
    noauth: Option<u32>,
    auth_failure_limit: Option<u32>,
    client_protocol_error: Option<u32>,
    upstream_auth_failure: Option<u32>,
    server_protocol_error: Option<u32>,
}

fn counter(name: &str) -> Option<u32> {
    // A metric that cannot be defined is not worth failing the filter for.
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

fn increment(id: Option<u32>) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

impl Metrics {
    pub fn define() -> Self {
        Self {
            connections: counter("redis_auth.connections"),
            auth_success: counter("redis_auth.auth_success"),
            auth_failure: counter("redis_auth.auth_failure"),
            noauth: counter("redis_auth.noauth_rejected"),
            auth_failure_limit: counter("redis_auth.auth_failure_limit_closed"),
            client_protocol_error: counter("redis_auth.client_protocol_error"),
            upstream_auth_failure: counter("redis_auth.upstream_auth_failure"),
            server_protocol_error: counter("redis_auth.server_protocol_error"),
        }
    }

    pub fn connection(&self) {
        increment(self.connections);
    }

    pub fn record(&self, event: &SessionEvent) {
        increment(match event {
            SessionEvent::AuthSucceeded => self.auth_success,
            SessionEvent::AuthFailed => self.auth_failure,
            SessionEvent::Unauthenticated => self.noauth,
            SessionEvent::TooManyAuthFailures(_) => self.auth_failure_limit,
            SessionEvent::ProtocolError(_) | SessionEvent::CrossProtocolAttack => {
                self.client_protocol_error
            }
            SessionEvent::UpstreamAuthRejected(_) => self.upstream_auth_failure,
            SessionEvent::ServerProtocolError(_) | SessionEvent::TooManyPending => {
                self.server_protocol_error
            }
        });
    }
}
