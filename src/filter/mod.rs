//! The proxy-wasm adapter: the only code that talks to Envoy.
//!
//! It reads the plugin configuration once per VM, creates a
//! [`Session`](crate::session::Session) per connection, hands it Envoy's
//! buffers and carries out each [`Step`]:
//! - the verdict replaces the buffer (`set_buffer` with `start == 0`);
//! - `Close::AfterWrite` closes the client once this step's bytes are out:
//!   closing inside the callback would drop them (Envoy runs the close before
//!   it moves the buffer to the socket), so the connection is queued and
//!   closed from the root context's next tick; `Close::Deadline` queues it
//!   for later;
//! - `Pause::Start` lets this step's bytes go now (`resume_downstream`, which
//!   Envoy runs after the callback) and then pauses the client's stream, so
//!   that Envoy keeps its downstream buffer for the filter; `Pause::Keep`
//!   keeps it paused (the session took the chunk); a server step's
//!   `release` is written into that buffer (`set_buffer` with start and size
//!   0: in front of what is there, which is nothing) and the stream resumed,
//!   which sends it to the server.
//!
//! Host calls go through `proxy_wasm::hostcalls` with every status handled:
//! the SDK's convenience wrappers `unwrap`, and a panic would kill the VM for
//! every connection on this worker. When a host call fails, the connection is
//! closed: nothing is forwarded that the session did not decide.

mod acl_log;
mod metrics;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

use crate::config::{self, Config};
use crate::resp::output::Verdict;
use crate::session::{CLOSING_DEADLINE, Close, KEY_LEN, Pause, Session, SessionEvent, Step};
use metrics::Metrics;

/// How soon a queued close runs.
const CLOSE_TICK: Duration = Duration::from_millis(10);

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root {
            config: None,
            metrics: Rc::new(Metrics::define()),
            closing: Rc::new(Closing::default()),
        })
    });
}}

/// Connections to close from the root context's tick: once their last
/// bytes are out (due at once), or when a deadline passes.
#[derive(Default)]
struct Closing {
    due: RefCell<Vec<(u32, SystemTime)>>,
}

impl Closing {
    fn schedule(&self, context_id: u32, after: Duration) {
        let now = hostcalls::get_current_time().unwrap_or(SystemTime::UNIX_EPOCH);
        let mut due = self.due.borrow_mut();
        if due.is_empty() {
            if let Err(status) = hostcalls::set_tick_period(CLOSE_TICK) {
                error!("envoy-redis-auth: cannot set the tick period: {status:?}");
            }
        }
        due.push((context_id, now + after));
    }

    fn run(&self) {
        let now = hostcalls::get_current_time().unwrap_or(SystemTime::UNIX_EPOCH);
        let mut ready = Vec::new();
        self.due.borrow_mut().retain(|&(id, at)| {
            let is_due = at <= now;
            if is_due {
                ready.push(id);
            }
            !is_due
        });
        for id in ready {
            // NotFound: the connection is already gone.
            if hostcalls::set_effective_context(id).is_ok() {
                let _ = hostcalls::close_downstream();
            }
        }
        if self.due.borrow().is_empty() {
            let _ = hostcalls::set_tick_period(Duration::ZERO);
        }
    }
}

struct Root {
    config: Option<Rc<Config>>,
    metrics: Rc<Metrics>,
    closing: Rc<Closing>,
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
                acl_log::SharedLog::init();
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
        // configuration (or without a marker key) gets a context that
        // refuses it.
        let session = match (&self.config, marker_key()) {
            (Some(config), Some(key)) => Some(Session::with_log(
                config.clone(),
                key,
                Rc::new(acl_log::SharedLog),
                Vec::new(),
            )),
            _ => None,
        };
        self.metrics.connection();
        Some(Box::new(Connection {
            id: context_id,
            session,
            held: 0,
            denials_logged: 0,
            peer: None,
            peer_checked: false,
            metrics: self.metrics.clone(),
            closing: self.closing.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }

    fn on_tick(&mut self) {
        self.closing.run();
    }
}

/// A fresh, unpredictable key for a connection's markers, from the VM's
/// random source (WASI `random_get`).
fn marker_key() -> Option<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    match getrandom::fill(&mut key) {
        Ok(()) => Some(key),
        Err(err) => {
            error!("envoy-redis-auth: no random bytes for the connection ({err}); closing it");
            None
        }
    }
}

struct Connection {
    id: u32,
    session: Option<Session>,
    /// The session's held bytes as last reported to the gauge.
    held: usize,
    /// Denials seen on this connection, for the log's rate limit.
    denials_logged: u64,
    /// The mTLS peer's URI SAN, for log lines.
    peer: Option<String>,
    /// The peer's identity has been looked for (with the first bytes).
    peer_checked: bool,
    metrics: Rc<Metrics>,
    closing: Rc<Closing>,
}

impl Context for Connection {
    fn on_done(&mut self) -> bool {
        self.metrics.connection_done(self.held);
        self.held = 0;
        true
    }
}

impl StreamContext for Connection {
    fn on_new_connection(&mut self) -> Action {
        if let Some(session) = self.session.as_mut() {
            let property = |path: Vec<&str>| match hostcalls::get_property(path) {
                Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => "?".to_owned(),
            };
            let info = format!(
                "id={} addr={} laddr={}",
                self.id,
                property(vec!["source", "address"]),
                property(vec!["destination", "address"]),
            );
            session.set_client_info(info.into_bytes());
        }
        Action::Continue
    }

    fn on_downstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        if !self.peer_checked {
            self.peer_checked = true;
            self.learn_peer();
        }
        self.carry(BufferType::DownstreamData, size, false)
    }

    fn on_upstream_data(&mut self, size: usize, end_of_stream: bool) -> Action {
        self.carry(BufferType::UpstreamData, size, end_of_stream)
    }
}

impl Connection {
    /// The mTLS peer's identity (Istio: its SPIFFE URI SAN), read with the
    /// client's first bytes: in `on_new_connection` a TLS listener has not
    /// finished the handshake, so there is no peer certificate yet. No
    /// certificate, or none with a URI SAN, is no identity.
    fn learn_peer(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if let Ok(Some(peer)) =
            hostcalls::get_property(vec!["connection", "uri_san_peer_certificate"])
        {
            if let Some(user) = session.set_peer_identity(&peer) {
                self.metrics.identity_mapped();
                debug!(
                    "envoy-redis-auth: peer {} is user '{user}'",
                    String::from_utf8_lossy(&peer)
                );
            }
            self.peer = Some(String::from_utf8_lossy(&peer).into_owned());
        }
    }

    /// Hands one chunk to the session and carries out its decision.
    /// `server_ended`: the server closed after this chunk.
    fn carry(&mut self, buffer: BufferType, size: usize, server_ended: bool) -> Action {
        // After a server chunk that ends the stream, Envoy calls the VM
        // again (proxy_on_upstream_connection_close). Closing inside this
        // callback would delete the context first, and the SDK panics on a
        // callback for a context it no longer knows: close from the tick.
        let defer_close = server_ended;
        let Some(session) = self.session.as_mut() else {
            error!("envoy-redis-auth: no valid configuration; closing the connection");
            self.close(defer_close);
            return Action::Continue;
        };
        let input = match hostcalls::get_buffer(buffer, 0, size) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                error!("envoy-redis-auth: cannot read {buffer:?}: {status:?}; closing");
                self.close(defer_close);
                return Action::Continue;
            }
        };
        let step = match buffer {
            BufferType::DownstreamData => session.on_client_data(&input),
            _ => session.on_server_data(&input),
        };
        let (action, mut close) = apply(buffer, size, step, self.id, &self.closing);
        if server_ended && session.on_server_closed() == Close::AfterWrite {
            self.closing.schedule(self.id, Duration::ZERO);
            close = false;
        }
        for event in session.drain_events() {
            if let SessionEvent::Denied { .. } | SessionEvent::AuthFailed { .. } = event {
                self.denials_logged = self.denials_logged.saturating_add(1);
                if !log_denial(self.denials_logged) {
                    self.metrics.record(&event);
                    continue;
                }
            }
            report(&event, &self.metrics, self.peer.as_deref());
        }
        session.trim();
        self.metrics.vm_memory();
        let held = session.held_bytes();
        if held != self.held {
            self.metrics.held_changed(self.held, held);
            self.held = held;
        }
        if close {
            self.close(defer_close);
        }
        action
    }

    fn close(&self, defer: bool) {
        if defer {
            self.closing.schedule(self.id, Duration::ZERO);
        } else {
            close_all();
        }
    }
}

/// Carries out a step; returns the action for the host and whether to close
/// the connection now.
fn apply(
    buffer: BufferType,
    size: usize,
    step: Step<'_>,
    id: u32,
    closing: &Closing,
) -> (Action, bool) {
    if let Verdict::Replace(bytes) = step.verdict {
        if let Err(status) = hostcalls::set_buffer(buffer, 0, size, bytes) {
            error!("envoy-redis-auth: cannot write {buffer:?}: {status:?}; closing");
            return (Action::Continue, true);
        }
    }
    if let Some(bytes) = step.release {
        // Goes in front of what the client sent while paused.
        let released = hostcalls::set_buffer(BufferType::DownstreamData, 0, 0, bytes)
            .and_then(|()| hostcalls::resume_downstream());
        if let Err(status) = released {
            error!("envoy-redis-auth: cannot release the held client bytes: {status:?}; closing");
            return (Action::Continue, true);
        }
    }
    let action = match step.pause {
        Pause::No => Action::Continue,
        Pause::Keep => Action::Pause,
        Pause::Start => {
            if let Err(status) = hostcalls::resume_downstream() {
                error!(
                    "envoy-redis-auth: cannot pass the bytes before a pause: {status:?}; closing"
                );
                return (Action::Continue, true);
            }
            Action::Pause
        }
    };
    match step.close {
        Close::No => (action, false),
        Close::AfterWrite => {
            closing.schedule(id, Duration::ZERO);
            (action, false)
        }
        Close::Deadline => {
            closing.schedule(id, CLOSING_DEADLINE);
            (action, false)
        }
        Close::Now => (action, true),
    }
}

fn close_all() {
    // Both can fail only if the connection is already gone.
    let _ = hostcalls::close_downstream();
    let _ = hostcalls::close_upstream();
}

/// Whether the `n`th denial of a connection is logged: the first ten,
/// then every hundredth, so a client looping on a forbidden command cannot
/// flood the log (the counters see every one).
fn log_denial(n: u64) -> bool {
    n <= 10 || n % 100 == 0
}

/// The client's address, from Envoy's `source.address` property.
fn client_address() -> String {
    match hostcalls::get_property(vec!["source", "address"]) {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => "unknown".to_owned(),
    }
}

/// Logs and counts a session event. Events never carry credentials.
fn report(event: &SessionEvent, metrics: &Metrics, peer: Option<&str>) {
    let from = match peer {
        Some(peer) => format!("{} (peer {peer})", client_address()),
        None => client_address(),
    };
    metrics.record(event);
    match event {
        SessionEvent::AuthSucceeded | SessionEvent::Unauthenticated => {}
        SessionEvent::AuthFailed { user } => {
            let user = user.as_deref().unwrap_or("(not a configured user)");
            info!("envoy-redis-auth: denied (auth) user '{user}' from {from}");
        }
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
        SessionEvent::UnauthenticatedOutputLimit => {
            info!(
                "envoy-redis-auth: replies to an unauthenticated client outgrew Redis's limit; closing"
            );
        }
        SessionEvent::UpstreamAuthRejected(reason) => {
            error!(
                "envoy-redis-auth: the Redis server rejected the proxy's AUTH ({reason}); check upstream.username/upstream.password (or the user's own upstream in downstream.users)"
            );
        }
        SessionEvent::Denied {
            user,
            command,
            reason,
        } => {
            info!(
                "envoy-redis-auth: denied ({reason}) user '{user}' command '{command}' from {from}"
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
