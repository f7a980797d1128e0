//! One client connection through the filter, as a state machine.
//!
//! [`Session`] takes the bytes of each direction and says what to hand on
//! instead. It never does I/O: the adapter in `filter/` feeds it Envoy's
//! buffers and carries out the [`Step`]s.
//!
//! Client → server ([`client`]):
//! - The first bytes are preceded by the proxy's own `AUTH` (if configured);
//!   its reply is swallowed.
//! - With client-side users (`downstream`), until the client has
//!   authenticated every command is collected and answered here, exactly as
//!   a Redis with those users would answer it; nothing the client sends
//!   reaches the server. Once in, commands are forwarded as they stream in,
//!   except `AUTH` and any `HELLO ... AUTH` (answered here; a good `HELLO` is
//!   sent on without its credentials).
//! - A client whose user is not allowed everything has each command judged
//!   by the ACL gate ([`gate`]) before it leaves: held until the arguments
//!   the check reads are in, then forwarded, or refused with Redis's reply.
//! - With `downstream`, `ACL` and `CONFIG SET requirepass|aclfile` are
//!   answered or refused for the proxy's users ([`acl_commands`]), and an
//!   `AUTH` as a user with its own `upstream` switches the server
//!   connection's identity ([`upstream`]).
//! - Without `downstream` the proxy owns no identities: `AUTH` and
//!   `HELLO ... AUTH` go to the server like any command.
//! - `RESET` is sent on, followed by the proxy's `AUTH` again, since it logs
//!   the server connection out too.
//! - `SYNC`/`PSYNC` turn the connection into a raw replication stream (see
//!   [`Replication`]).
//!
//! Server → client ([`server`]): replies pass through, except the replies to
//! the proxy's `AUTH` (swallowed) and to markers (swapped for local
//! replies; see [`marker`]).
//!
//! Closing after a reply (protocol errors, `QUIT` before authentication,
//! too many failed attempts, `POST`/`Host:`) sends the marker, a second
//! marker and `QUIT`; once the local reply is handed to the client, the
//! step asks for the connection to be closed ([`Close::AfterWrite`]), and
//! [`Close::Deadline`] bounds the wait if the server never answers.
//!
//! Call order: [`Session::on_client_data`] and [`Session::on_server_data`] in
//! any interleaving, each with one chunk as the host delivered it; carry
//! out every [`Step`], then call [`Session::trim`], before the next chunk;
//! [`Session::on_server_closed`] when the server's side ends;
//! [`Session::drain_events`] whenever convenient.

mod acl_commands;
mod auth;
mod client;
mod gate;
pub mod marker;
mod pending;
pub mod replies;
mod server;
mod upstream;

use std::rc::Rc;

use crate::acl::log::{LogStore, MemoryLog};
use crate::config::Config;
use crate::resp::output::{Output, Verdict};
use crate::resp::reply::{ReplyError, ReplyFramer};
use crate::resp::request::{ProtocolError, RequestParser};
use marker::MarkerKey;
use pending::Pending;

pub use marker::KEY_LEN;
pub use pending::{MAX_PENDING_MARKERS, MAX_PENDING_REPLY_BYTES};

/// Replies to the server's answers kept whole to look at; larger replies
/// stream through. Marker replies, `AUTH` replies and subscription
/// confirmations are far smaller.
pub const KEEP_MAX: usize = 1024;

const QUIT: &[u8] = b"*1\r\n$4\r\nQUIT\r\n";
const DISCARD: &[u8] = b"*1\r\n$7\r\nDISCARD\r\n";

/// What the adapter must do after handing a chunk to the session.
#[derive(Debug, PartialEq, Eq)]
pub struct Step<'a> {
    /// What becomes of the chunk.
    pub verdict: Verdict<'a>,
    pub close: Close,
    /// Client chunks only: whether to stop the client's stream.
    pub pause: Pause,
    /// Server chunks only: bytes to send to the server now, through the
    /// paused client stream (the session took everything the client sent
    /// while it held the stream, so nothing else waits there).
    pub release: Option<&'a [u8]>,
}

impl<'a> Step<'a> {
    fn new(verdict: Verdict<'a>) -> Self {
        Self {
            verdict,
            close: Close::No,
            pause: Pause::No,
            release: None,
        }
    }
}

/// Whether the connection is to be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    No,
    /// After this step's bytes are written to the client: the last reply
    /// is delivered. (Closing within the same callback would drop it.)
    AfterWrite,
    /// Now: the two directions can no longer be kept in step, or there is
    /// nothing left to deliver.
    Now,
    /// The connection is closing after a reply: a later step closes it
    /// once the reply is written (`AfterWrite`). Close it anyway after
    /// [`CLOSING_DEADLINE`] if none does (the server never answered).
    Deadline,
}

/// How long a connection may wait for the reply it is to close after.
pub const CLOSING_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Holding the client's stream while a `SYNC`/`PSYNC` waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    No,
    /// Send this step's bytes now, then stop the client's stream: the
    /// session holds the rest until a server step releases it.
    Start,
    /// Still held: the session took this chunk (the verdict is empty);
    /// keep the stream stopped.
    Keep,
}

/// Something worth a log line or a metric. Never carries a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    AuthSucceeded,
    /// A failed `AUTH`/`HELLO … AUTH`: the user tried, if it is one of the
    /// configured users (a name that is not may be a misplaced password).
    AuthFailed {
        user: Option<String>,
    },
    /// A command was refused with NOAUTH.
    Unauthenticated,
    /// `max_auth_failures` reached: the connection is being closed.
    TooManyAuthFailures(u32),
    ProtocolError(ProtocolError),
    /// `POST` or `Host:` as a command: Redis closes without a reply.
    CrossProtocolAttack,
    /// A client that has not authenticated sent commands whose replies
    /// outgrew Redis's limit for one read: closed without them.
    UnauthenticatedOutputLimit,
    /// The server refused the proxy's credentials; the server's error line.
    UpstreamAuthRejected(String),
    /// The server sent something that is not RESP.
    ServerProtocolError(ReplyError),
    /// Too many local replies waiting for the server.
    TooManyPending,
    /// The ACL refused a command: the user, the command's full name
    /// (`config|set`; empty if unknown) and what was refused (`command`,
    /// `key`, `channel`). Never an argument.
    Denied {
        user: String,
        command: String,
        reason: &'static str,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Flow {
    #[default]
    Open,
    /// Dropping everything: the connection is going away.
    Closing,
    /// After `SYNC`/`PSYNC`: a replication stream, passed through unparsed.
    Raw,
}

/// A `SYNC`/`PSYNC` turning the connection into a raw replication stream.
///
/// Redis refuses it while replies are pending (the proxy's `AUTH` in front of
/// it, markers), and may refuse it outright; until the server has said yes,
/// nothing the client sent after it may pass unparsed. So the command is
/// held behind a marker, with everything after it; once the marker's reply
/// is back, the command alone is sent; its reply decides: replication
/// (raw both ways, the rest released) or a refusal (delivered, then the
/// connection is closed).
#[derive(Debug, Default)]
enum Replication {
    #[default]
    No,
    /// Waiting for the marker's reply: the command's bytes, then what
    /// followed.
    Held { command: Vec<u8>, after: Vec<u8> },
    /// The command went; waiting for its reply.
    Sent { after: Vec<u8> },
    /// The server is replicating: raw both ways.
    Started,
    /// Not replication: the server connection is switching to another
    /// server identity (see `switch_server_identity`). What the client sent
    /// after the `AUTH` that switched it is held, unparsed, until the server
    /// has accepted the new identity (then it is parsed and sent on) or
    /// refused it (then it is dropped and the connection closed): a command
    /// must never run under the identity the client just left.
    Switching { after: Vec<u8> },
}

impl Replication {
    /// Client bytes kept while the server has not answered, at most.
    const MAX_HELD: usize = 1024 * 1024;

    fn held_bytes(&self) -> usize {
        match self {
            Self::Held { command, after } => command.capacity() + after.capacity(),
            Self::Sent { after } | Self::Switching { after } => after.capacity(),
            Self::No | Self::Started => 0,
        }
    }

    /// Keeps what the client sends while waiting; false past the bound.
    fn keep(&mut self, bytes: &[u8]) -> bool {
        let after = match self {
            Self::Held { after, .. } | Self::Sent { after } | Self::Switching { after } => after,
            Self::No | Self::Started => return true,
        };
        after.extend_from_slice(bytes);
        after.len() <= Self::MAX_HELD
    }

    fn is_waiting(&self) -> bool {
        matches!(
            self,
            Self::Held { .. } | Self::Sent { .. } | Self::Switching { .. }
        )
    }
}

/// One client connection.
pub struct Session {
    parser: RequestParser,
    framer: ReplyFramer,
    client_out: Output,
    server_out: Output,
    state: State,
}

/// Everything but the parsers and output buffers, so that the parsers'
/// borrowed events can be handled by methods of this.
struct State {
    config: Rc<Config>,
    pending: Pending,
    replication: Replication,
    events: Vec<SessionEvent>,
    client: client::ClientSide,
    server: server::ServerSide,
    /// Where denials and failed `AUTH`s are logged for `ACL LOG`.
    log: Rc<dyn LogStore>,
    /// This client as the ACL log names it.
    client_info: Vec<u8>,
}

impl Session {
    /// A session whose ACL log is its own (tests, tools). `key` must be
    /// unpredictable; it makes this connection's markers.
    pub fn new(config: Rc<Config>, key: [u8; KEY_LEN]) -> Self {
        Self::with_log(config, key, Rc::new(MemoryLog::default()), Vec::new())
    }

    /// A session that adds to and answers `ACL LOG` from `log` (shared by
    /// the connections of a proxy), naming its client `client_info` there.
    pub fn with_log(
        config: Rc<Config>,
        key: [u8; KEY_LEN],
        log: Rc<dyn LogStore>,
        client_info: Vec<u8>,
    ) -> Self {
        Self {
            parser: RequestParser::new(),
            framer: ReplyFramer::new(),
            client_out: Output::default(),
            server_out: Output::default(),
            state: State {
                pending: Pending::new(MarkerKey::new(key)),
                replication: Replication::No,
                events: Vec::new(),
                client: client::ClientSide::new(&config),
                server: server::ServerSide::default(),
                config,
                log,
                client_info,
            },
        }
    }

    /// The client's mTLS identity (the peer certificate's URI SAN), before
    /// its first byte: if `downstream.identities` maps it to an enabled
    /// user, the client starts as that user, with no `AUTH`. Returns that
    /// user's name.
    pub fn set_peer_identity(&mut self, peer: &[u8]) -> Option<String> {
        if self.state.client.is_started() {
            return None;
        }
        let config = Rc::clone(&self.state.config);
        let users = config.users();
        let user = config
            .mapped_user(peer)
            .filter(|&id| users.user(id).is_some_and(crate::users::User::is_enabled))?;
        self.state.client.mapped = Some(user);
        self.state.client.identity = client::connect_identity(&config, Some(user));
        Some(users.user_name(user).to_owned())
    }

    /// Names this client in the ACL log (`id=… addr=…`), once the adapter
    /// knows its address.
    pub fn set_client_info(&mut self, info: Vec<u8>) {
        self.state.client_info = info;
    }

    /// Whether the client has authenticated (or needs not).
    pub fn is_authenticated(&self) -> bool {
        self.state.client.identity.authenticated
    }

    /// Takes the events since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, SessionEvent> {
        self.state.events.drain(..)
    }

    /// Bytes this session holds beyond its fixed size: partial commands,
    /// collected arguments (and those the fast path had judged), kept
    /// replies, pending local replies, a held `SYNC` and the reusable output
    /// buffers.
    pub fn held_bytes(&self) -> usize {
        self.parser.held_bytes()
            + self.framer.held_bytes()
            + self.client_out.capacity()
            + self.server_out.capacity()
            + self.state.pending.held_bytes()
            + self.state.replication.held_bytes()
            + self.state.server.held_bytes()
            + self.state.client.held_bytes()
    }

    /// Handles bytes from the client; the step says what goes to the server.
    pub fn on_client_data<'a>(&'a mut self, input: &'a [u8]) -> Step<'a> {
        client::on_data(self, input)
    }

    /// Handles bytes from the server; the step says what goes to the client.
    pub fn on_server_data<'a>(&'a mut self, input: &'a [u8]) -> Step<'a> {
        server::on_data(self, input)
    }

    /// Gives back buffers a burst made large. Call once the step of each
    /// chunk has been carried out (its verdict borrows them until then).
    pub fn trim(&mut self) {
        self.client_out.trim();
        self.server_out.trim();
        self.parser.trim();
        self.state.server.trim();
        self.state.client.trim();
    }

    /// The server closed its side (after the bytes of the last
    /// [`on_server_data`](Self::on_server_data)). Redis never half-closes:
    /// the connection is over, so the client is closed once those bytes are
    /// written, rather than left half-open. Local replies still waiting for
    /// a marker's reply are lost with it, as the server's own would be.
    pub fn on_server_closed(&mut self) -> Close {
        self.state.server.flow = Flow::Closing;
        self.state.client.flow = Flow::Closing;
        Close::AfterWrite
    }
}

/// The step for a direction that is no longer parsed: a raw stream passes
/// untouched, a closing one is dropped.
fn settled<'a>(flow: Flow, out: &'a mut Output, input: &'a [u8]) -> Step<'a> {
    match flow {
        Flow::Raw => Step::new(Verdict::Unchanged),
        Flow::Open | Flow::Closing => Step::new(out.finish(input)),
    }
}

/// The step for either direction once the connection's last reply has
/// gone to the client in an earlier chunk: what comes now (the client's
/// next bytes, the server's answer to QUIT) is dropped and the connection
/// closed at once.
fn finished<'a>(out: &'a mut Output, input: &'a [u8]) -> Step<'a> {
    let mut step = settled(Flow::Closing, out, input);
    step.close = Close::Now;
    step
}

#[cfg(test)]
mod tests;
