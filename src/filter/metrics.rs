//! Counters and gauges, visible as `wasmcustom.redis_auth.*` in Envoy's
//! `/stats` and `redis_auth_*` in `/stats/prometheus`. Names are shared by
//! every listener and VM using this filter, so the gauges add up across
//! workers.

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use std::cell::RefCell;

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
    active: Option<u32>,
    held_bytes: Option<u32>,
    vm_memory: Option<u32>,
    denied: Denied,
    identity_mapped: Option<u32>,
    /// Per-user denial counters, defined on a user's first denial. Bounded:
    /// the names come from the configuration (at most `MAX_USERS` + 1).
    /// Sorted by name, for a binary search: no hash table (and no SipHash)
    /// in the wasm, and no name copied but on a user's first denial.
    denied_by_user: RefCell<Vec<(String, Denied)>>,
}

/// The three denial counters of one scope (all users, or one).
#[derive(Clone, Copy)]
struct Denied {
    command: Option<u32>,
    key: Option<u32>,
    channel: Option<u32>,
}

impl Denied {
    fn define(prefix: &str) -> Self {
        Self {
            command: counter(&format!("{prefix}denied_command")),
            key: counter(&format!("{prefix}denied_key")),
            channel: counter(&format!("{prefix}denied_channel")),
        }
    }

    fn record(&self, reason: &str) {
        increment(match reason {
            "command" => self.command,
            "key" => self.key,
            _ => self.channel,
        });
    }
}

/// A user name as a stats-name segment, one-to-one: ASCII letters and
/// digits are kept, every other byte becomes `_` and two hex digits (`.`
/// would split the segment, and Prometheus would turn `-` and `.` into `_`,
/// merging `x.y`, `x-y` and `x_y`).
fn stat_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("_{byte:02x}"));
        }
    }
    out
}

thread_local! {
    /// This VM's linear memory as last reported to `vm_memory_bytes`. Per
    /// VM, not per root context: a configuration update makes a new root
    /// context in the same VM. (A VM that fails and is replaced is not
    /// subtracted.)
    static VM_MEMORY_REPORTED: Cell<usize> = const { Cell::new(0) };
}

fn counter(name: &str) -> Option<u32> {
    // A metric that cannot be defined is not worth failing the filter for.
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

/// Bytes in a page of wasm linear memory.
const WASM_PAGE: usize = 64 * 1024;

fn delta(before: usize, now: usize) -> i64 {
    i64::try_from(now).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX)
}

fn gauge(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Gauge, name).ok()
}

fn add(id: Option<u32>, offset: i64) {
    if let (Some(id), false) = (id, offset == 0) {
        let _ = hostcalls::increment_metric(id, offset);
    }
}

fn increment(id: Option<u32>) {
    add(id, 1);
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
            active: gauge("redis_auth.active_connections"),
            held_bytes: gauge("redis_auth.held_bytes"),
            vm_memory: gauge("redis_auth.vm_memory_bytes"),
            denied: Denied::define("redis_auth."),
            identity_mapped: counter("redis_auth.identity_mapped"),
            denied_by_user: RefCell::new(Vec::new()),
        }
    }

    /// Reports growth of this VM's linear memory (it never shrinks).
    pub fn vm_memory(&self) {
        let now = std::arch::wasm32::memory_size::<0>() * WASM_PAGE;
        let before = VM_MEMORY_REPORTED.with(|reported| reported.replace(now));
        if now != before {
            add(self.vm_memory, delta(before, now));
        }
    }

    /// A connection started as the user its mTLS identity maps to.
    pub fn identity_mapped(&self) {
        increment(self.identity_mapped);
    }

    /// A connection opened.
    pub fn connection(&self) {
        increment(self.connections);
        increment(self.active);
    }

    /// A connection closed, having last reported `held` bytes.
    pub fn connection_done(&self, held: usize) {
        add(self.active, -1);
        self.held_changed(held, 0);
    }

    /// A session now holds `now` bytes instead of `before`.
    pub fn held_changed(&self, before: usize, now: usize) {
        let delta =
            i64::try_from(now).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX);
        add(self.held_bytes, delta);
    }

    pub fn record(&self, event: &SessionEvent) {
        increment(match event {
            SessionEvent::AuthSucceeded => self.auth_success,
            SessionEvent::AuthFailed { .. } => self.auth_failure,
            SessionEvent::Unauthenticated => self.noauth,
            SessionEvent::TooManyAuthFailures(_) => self.auth_failure_limit,
            SessionEvent::ProtocolError(_)
            | SessionEvent::CrossProtocolAttack
            | SessionEvent::UnauthenticatedOutputLimit => self.client_protocol_error,
            SessionEvent::UpstreamAuthRejected(_) => self.upstream_auth_failure,
            SessionEvent::ServerProtocolError(_) | SessionEvent::TooManyPending => {
                self.server_protocol_error
            }
            SessionEvent::Denied { user, reason, .. } => {
                self.denied.record(reason);
                let mut by_user = self.denied_by_user.borrow_mut();
                let counters = match by_user.binary_search_by(|(name, _)| name.cmp(user)) {
                    Ok(at) => by_user.get(at).map(|(_, counters)| *counters),
                    Err(at) => {
                        let counters =
                            Denied::define(&format!("redis_auth.user.{}.", stat_segment(user)));
                        by_user.insert(at, (user.clone(), counters));
                        Some(counters)
                    }
                };
                if let Some(counters) = counters {
                    counters.record(reason);
                }
                return;
            }
        });
    }
}
