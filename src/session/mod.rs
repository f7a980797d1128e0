//! One client connection through the filter, as a state machine.
//!
//! [`Session`] takes the bytes of each direction and says what to hand on
//! instead. It never does I/O: the adapter in `filter/` feeds it Envoy's
//! buffers and writes back the [`Step`]s.
//!
//! Client → server:
//! - The first bytes are preceded by the proxy's own `AUTH` (if configured);
//!   its reply is swallowed.
//! - Until the client has authenticated, every command is collected and
//!   answered here, exactly as a Redis with the client-side users would
//!   answer it; nothing the client sends reaches the server.
//! - Once authenticated, commands are forwarded as they stream in, except
//!   `AUTH` and any `HELLO ... AUTH` (answered here; a good `HELLO` is sent on
//!   without its credentials) and `RESET` (sent on, followed by the proxy's
//!   `AUTH` again, since `RESET` logs the server connection out too).
//!
//! Server → client: replies pass through, except the replies to the proxy's
//! `AUTH` (swallowed) and to markers (swapped for local replies; see
//! [`marker`]).
//!
//! Closing after a reply (protocol errors, `QUIT` before authentication,
//! too many failed attempts) sends the marker and then `QUIT`: the server
//! closes, and Envoy closes the client after flushing the local reply.

mod auth;
pub mod marker;
pub mod replies;

use std::collections::VecDeque;
use std::rc::Rc;

use crate::command::{self, CommandError};
use crate::config::Config;
use crate::resp::output::{Output, Verdict};
use crate::resp::reply::{FrameReader, ReplyError, ReplyFramer};
use crate::resp::request::{Args, Disposition, Event, Head, ProtocolError, RequestParser};
use auth::{Identity, Outcome};
use marker::Nonce;

/// Replies to the server's answers kept whole to look at; larger replies
/// stream through. Marker replies, `AUTH` replies and subscription
/// confirmations are far smaller.
pub const KEEP_MAX: usize = 1024;

/// Local replies waiting for their marker's answer. A client that turns
/// replies off (`CLIENT REPLY OFF`) and keeps failing `AUTH` could otherwise
/// grow this forever.
pub const MAX_PENDING_MARKERS: usize = 100_000;

const QUIT: &[u8] = b"*1\r\n$4\r\nQUIT\r\n";

/// What the adapter must do after handing a chunk to the session.
#[derive(Debug, PartialEq, Eq)]
pub struct Step<'a> {
    pub verdict: Verdict<'a>,
    /// Close the client connection now (the session can no longer keep the
    /// two directions in step).
    pub close: bool,
}

/// Something worth a log line or a metric. Never carries a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    AuthSucceeded,
    AuthFailed,
    /// A command was refused with NOAUTH.
    Unauthenticated,
    /// `max_auth_failures` reached: the connection is being closed.
    TooManyAuthFailures(u32),
    ProtocolError(ProtocolError),
    /// `POST` or `Host:` as a command: Redis closes without a reply.
    CrossProtocolAttack,
    /// The server refused the proxy's credentials; the server's error line.
    UpstreamAuthRejected(String),
    /// The server sent something that is not RESP.
    ServerProtocolError(ReplyError),
    /// Too many local replies waiting for the server.
    TooManyPending,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Open,
    /// Dropping everything: the connection is going away.
    Closing,
    /// After `SYNC`/`PSYNC`: a replication stream, passed through unparsed.
    Raw,
}

/// What to do when a forwarded command has been handed on completely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterForward {
    Nothing,
    EnterMulti,
    LeaveMulti,
    Reset,
    Replication,
}

/// A local reply (or check) waiting for its marker's answer.
#[derive(Debug)]
struct Marker {
    id: u64,
    action: Action,
}

#[derive(Debug)]
enum Action {
    Reply(Reply),
    ReplyThenClose(Reply),
    /// Sent after a forwarded `RESET` (and the proxy's `AUTH`, if `reauth`):
    /// the server has reset the connection, and the reply kept just before
    /// this one answers that `AUTH`.
    ResetDone {
        reauth: bool,
    },
}

#[derive(Debug)]
enum Reply {
    Static(&'static [u8]),
    Owned(Box<[u8]>),
}

impl Reply {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Static(bytes) => bytes,
            Self::Owned(bytes) => bytes,
        }
    }
}

/// The top-level server reply being read.
#[derive(Debug, Default)]
struct Frame {
    kind: u8,
    /// Bytes seen so far.
    len: usize,
    /// Still small enough to keep whole.
    keeping: bool,
    /// Kept bytes from earlier chunks.
    kept: Vec<u8>,
    /// Where the kept frame starts in the current chunk.
    from: Option<usize>,
}

/// What the server has told us about this connection's subscriptions.
#[derive(Debug, Default)]
struct Subscriptions {
    /// Channels plus patterns, from the last (un)subscribe confirmation.
    channels: i64,
    /// Shard channels, from the last s(un)subscribe confirmation.
    shard_channels: i64,
    /// Confirmations arrive as arrays (RESP2) rather than pushes (RESP3).
    resp2: bool,
}

impl Subscriptions {
    /// Redis restricts the commands of a subscribed RESP2 connection.
    fn restricts_commands(&self) -> bool {
        self.resp2 && (self.channels > 0 || self.shard_channels > 0)
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

/// Everything but the two parsers, so the parsers' borrowed events can be
/// handled by methods of this.
struct State {
    config: Rc<Config>,
    nonce: Nonce,
    next_marker: u64,
    markers: VecDeque<Marker>,
    events: Vec<SessionEvent>,
    // Client side.
    client_flow: Flow,
    started: bool,
    identity: Identity,
    auth_failures: u32,
    in_multi: bool,
    after_forward: AfterForward,
    // Server side.
    server_flow: Flow,
    /// The client went raw; the server side follows once its markers are in.
    raw_pending: bool,
    expect_auth_reply: bool,
    /// Forwarded `RESET`s whose re-`AUTH` reply is still to come.
    reauth_pending: u32,
    /// The last kept reply while a re-`AUTH` reply is awaited.
    stash: Option<Vec<u8>>,
    /// Set once the server refuses the proxy's credentials: every reply is
    /// replaced by this error.
    upstream_failure: Option<Vec<u8>>,
    frame: Frame,
    subscriptions: Subscriptions,
}

impl Session {
    /// `seed` should be unpredictable; it makes this connection's markers.
    pub fn new(config: Rc<Config>, seed: u64) -> Self {
        let on_connect = config.users().authenticated_on_connect();
        Self {
            parser: RequestParser::new(),
            framer: ReplyFramer::new(),
            client_out: Output::default(),
            server_out: Output::default(),
            state: State {
                nonce: Nonce::new(seed),
                next_marker: 0,
                markers: VecDeque::new(),
                events: Vec::new(),
                client_flow: Flow::Open,
                started: false,
                identity: Identity {
                    authenticated: on_connect,
                    user: None,
                },
                auth_failures: 0,
                in_multi: false,
                after_forward: AfterForward::Nothing,
                server_flow: Flow::Open,
                raw_pending: false,
                expect_auth_reply: false,
                reauth_pending: 0,
                stash: None,
                upstream_failure: None,
                frame: Frame::default(),
                subscriptions: Subscriptions::default(),
                config,
            },
        }
    }

    /// Whether the client has authenticated (or needs not).
    pub fn is_authenticated(&self) -> bool {
        self.state.identity.authenticated
    }

    /// Takes the events since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, SessionEvent> {
        self.state.events.drain(..)
    }

    /// Handles bytes from the client; the step says what goes to the server.
    pub fn on_client_data<'a>(&'a mut self, input: &'a [u8]) -> Step<'a> {
        let out = &mut self.client_out;
        let state = &mut self.state;
        out.begin();
        if state.client_flow != Flow::Open {
            return settled(state.client_flow, out, input);
        }
        if !state.started {
            state.started = true;
            if let Some(upstream) = &state.config.upstream {
                upstream.append_auth_command(out.owned(input));
                state.expect_auth_reply = true;
            }
        }
        let parser = &mut self.parser;
        parser.begin_chunk();
        let mut pos = 0;
        loop {
            let authenticated = state.identity.authenticated;
            match parser.next(input, &mut pos, out, authenticated) {
                Event::NeedMore => break,
                Event::Empty => {}
                Event::Decide(head) => {
                    let disposition = state.decide(&head);
                    parser.decide(input, out, disposition);
                }
                Event::Command(args) => state.on_command(args, input, out),
                Event::Forwarded => state.after_forwarded(input, out),
                Event::Error(error) => {
                    state.events.push(SessionEvent::ProtocolError(error));
                    let mut reply = Vec::new();
                    error.reply(&mut reply);
                    state.reply_locally(input, out, Reply::Owned(reply.into()), true);
                }
            }
            match state.client_flow {
                Flow::Open => {}
                Flow::Closing => break,
                Flow::Raw => {
                    out.pass(input, pos..input.len());
                    break;
                }
            }
        }
        parser.end_chunk(input);
        let close = state.markers.len() > MAX_PENDING_MARKERS;
        if close {
            state.events.push(SessionEvent::TooManyPending);
            state.client_flow = Flow::Closing;
        }
        Step {
            verdict: out.finish(input),
            close,
        }
    }

    /// Handles bytes from the server; the step says what goes to the client.
    pub fn on_server_data<'a>(&'a mut self, input: &'a [u8]) -> Step<'a> {
        let out = &mut self.server_out;
        let state = &mut self.state;
        out.begin();
        if state.server_flow != Flow::Open {
            return settled(state.server_flow, out, input);
        }
        if !self.framer.at_frame_start() && state.frame.keeping {
            state.frame.from = Some(0);
        }
        let mut close = false;
        let mut pos = 0;
        while pos < input.len() {
            if self.framer.at_frame_start() {
                if state.raw_pending && state.markers.is_empty() {
                    state.server_flow = Flow::Raw;
                    out.pass(input, pos..input.len());
                    break;
                }
                state.begin_frame(input, pos);
            }
            let start = pos;
            match self.framer.advance(input, &mut pos) {
                Err(error) => {
                    state.events.push(SessionEvent::ServerProtocolError(error));
                    state.server_flow = Flow::Closing;
                    state.client_flow = Flow::Closing;
                    close = true;
                    break;
                }
                Ok(done) => {
                    state.frame_bytes(input, start..pos, out);
                    if done {
                        state.end_frame(input, pos, out);
                    }
                }
            }
            if state.server_flow == Flow::Closing {
                break;
            }
        }
        state.end_server_chunk(input);
        Step {
            verdict: out.finish(input),
            close,
        }
    }
}

/// The step for a direction that is no longer parsed: a raw stream passes
/// untouched, a closing one is dropped.
fn settled<'a>(flow: Flow, out: &'a mut Output, input: &'a [u8]) -> Step<'a> {
    let verdict = match flow {
        Flow::Raw => Verdict::Unchanged,
        Flow::Open | Flow::Closing => out.finish(input),
    };
    Step {
        verdict,
        close: false,
    }
}

/// Command names the session treats specially once the client is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    Auth,
    Hello,
    Reset,
    Multi,
    Exec,
    Discard,
    Replication,
    Other,
}

fn classify(name: Option<&[u8]>) -> Special {
    let Some(name) = name else {
        return Special::Other;
    };
    let is = |word: &[u8]| name.eq_ignore_ascii_case(word);
    if is(b"auth") {
        Special::Auth
    } else if is(b"hello") {
        Special::Hello
    } else if is(b"reset") {
        Special::Reset
    } else if is(b"multi") {
        Special::Multi
    } else if is(b"exec") {
        Special::Exec
    } else if is(b"discard") {
        Special::Discard
    } else if is(b"sync") || is(b"psync") {
        Special::Replication
    } else {
        Special::Other
    }
}

impl State {
    // ----- client → server -----

    fn decide(&mut self, head: &Head) -> Disposition {
        self.after_forward = AfterForward::Nothing;
        if !self.identity.authenticated {
            return Disposition::Collect;
        }
        let exact = |n: usize| head.argc == n;
        self.after_forward = match classify(head.name) {
            Special::Auth | Special::Hello => return Disposition::Collect,
            Special::Reset if exact(1) => AfterForward::Reset,
            Special::Multi if exact(1) => AfterForward::EnterMulti,
            Special::Exec => AfterForward::LeaveMulti,
            Special::Discard if exact(1) => AfterForward::LeaveMulti,
            Special::Replication => AfterForward::Replication,
            _ => AfterForward::Nothing,
        };
        Disposition::Forward
    }

    fn after_forwarded(&mut self, input: &[u8], out: &mut Output) {
        match std::mem::replace(&mut self.after_forward, AfterForward::Nothing) {
            AfterForward::Nothing => {}
            AfterForward::EnterMulti => self.in_multi = true,
            AfterForward::LeaveMulti => self.in_multi = false,
            AfterForward::Reset => {
                // RESET logs the server connection out as well: log it back
                // in, and learn when the reset is done from a marker.
                self.in_multi = false;
                self.reset_identity();
                let reauth = match &self.config.upstream {
                    Some(upstream) => {
                        upstream.append_auth_command(out.owned(input));
                        self.reauth_pending += 1;
                        true
                    }
                    None => false,
                };
                self.send_marker(input, out, Action::ResetDone { reauth });
            }
            AfterForward::Replication => {
                self.client_flow = Flow::Raw;
                self.raw_pending = true;
            }
        }
    }

    /// `RESET` makes the client the default user, authenticated only if
    /// that user needs no password.
    fn reset_identity(&mut self) {
        self.identity = Identity {
            authenticated: self.config.users().authenticated_on_connect(),
            user: None,
        };
    }

    fn on_command(&mut self, args: &Args, input: &[u8], out: &mut Output) {
        if self.identity.authenticated {
            self.on_authenticated_command(args, input, out);
        } else {
            self.on_unauthenticated_command(args, input, out);
        }
    }

    /// Collected commands from a client that is in: only `AUTH` and `HELLO`.
    fn on_authenticated_command(&mut self, args: &Args, input: &[u8], out: &mut Output) {
        let name = args.get(0).unwrap_or_default();
        let is_auth = name.eq_ignore_ascii_case(b"auth");
        if !is_auth && !auth::hello_needs_filter(args) {
            // A plain HELLO: the server answers it (and switches protocol).
            let mut command = Vec::new();
            let parts: Vec<&[u8]> = (0..args.argc()).filter_map(|i| args.get(i)).collect();
            crate::resp::write_command(&mut command, &parts);
            out.push(input, &command);
            return;
        }
        let spec_name = if is_auth { "auth" } else { "hello" };
        if is_auth && args.argc() < 2 {
            if let Some(spec) = command::lookup_command(b"auth") {
                self.reply_command_error(CommandError::WrongArity(spec), &[name], input, out);
            }
            return;
        }
        // Checks Redis makes in processCommand before running the command.
        // Redis queues AUTH and HELLO inside MULTI; the filter refuses them
        // there instead, as if they were no-multi commands, since it cannot
        // run them at EXEC time.
        if self.in_multi {
            self.reply_static(input, out, replies::NOT_IN_TRANSACTION);
            return;
        }
        if self.subscriptions.restricts_commands() {
            let mut reply = Vec::new();
            replies::pubsub_context_error(spec_name, &mut reply);
            self.reply_locally(input, out, Reply::Owned(reply.into()), false);
            return;
        }
        self.run_auth_or_hello(is_auth, args, input, out);
    }

    /// Commands from a client that has not authenticated: answered here, in
    /// the order of Redis's checks.
    fn on_unauthenticated_command(&mut self, args: &Args, input: &[u8], out: &mut Output) {
        let argv: Vec<&[u8]> = (0..args.argc())
            .map(|i| args.get(i).unwrap_or_default())
            .collect();
        let spec = match command::resolve(&argv) {
            Ok(spec) => spec,
            Err(CommandError::SecurityAttack) => {
                self.events.push(SessionEvent::CrossProtocolAttack);
                self.reply_locally(input, out, Reply::Static(b""), true);
                return;
            }
            Err(error) => {
                self.reply_command_error(error, &argv, input, out);
                return;
            }
        };
        match spec.name {
            "auth" => self.run_auth_or_hello(true, args, input, out),
            "hello" => self.run_auth_or_hello(false, args, input, out),
            "quit" => self.reply_locally(input, out, Reply::Static(replies::OK), true),
            "reset" => {
                self.in_multi = false;
                self.reset_identity();
                self.reply_static(input, out, replies::RESET);
            }
            _ if spec.flags.contains(command::CommandFlags::PROTECTED) => {
                let mut reply = Vec::new();
                command::write_protected_reply(spec, &mut reply);
                self.reply_locally(input, out, Reply::Owned(reply.into()), false);
            }
            _ => {
                self.events.push(SessionEvent::Unauthenticated);
                let mut reply = Vec::new();
                command::write_noauth_reply(spec, &mut reply);
                self.reply_locally(input, out, Reply::Owned(reply.into()), false);
            }
        }
    }

    fn reply_command_error(
        &mut self,
        error: CommandError,
        argv: &[&[u8]],
        input: &[u8],
        out: &mut Output,
    ) {
        let mut reply = Vec::new();
        command::write_error_reply(error, argv, &mut reply);
        self.reply_locally(input, out, Reply::Owned(reply.into()), false);
    }

    fn run_auth_or_hello(&mut self, is_auth: bool, args: &Args, input: &[u8], out: &mut Output) {
        let users = self.config.users();
        let outcome = if is_auth {
            auth::auth(users, args, &mut self.identity)
        } else {
            auth::hello(users, args, &mut self.identity)
        };
        match outcome {
            Outcome::Reply(reply) => {
                if reply == replies::OK {
                    self.events.push(SessionEvent::AuthSucceeded);
                }
                self.reply_static(input, out, reply);
            }
            Outcome::ReplyOwned(reply) => {
                self.reply_locally(input, out, Reply::Owned(reply.into()), false);
            }
            Outcome::Forward {
                command,
                authenticated,
            } => {
                if authenticated {
                    self.events.push(SessionEvent::AuthSucceeded);
                }
                out.push(input, &command);
            }
            Outcome::WrongPass => {
                self.events.push(SessionEvent::AuthFailed);
                self.auth_failures = self.auth_failures.saturating_add(1);
                let limit = self.config.max_auth_failures();
                let close = limit > 0 && self.auth_failures >= limit;
                if close {
                    self.events
                        .push(SessionEvent::TooManyAuthFailures(self.auth_failures));
                }
                self.reply_locally(input, out, Reply::Static(replies::WRONGPASS), close);
            }
        }
    }

    fn reply_static(&mut self, input: &[u8], out: &mut Output, reply: &'static [u8]) {
        self.reply_locally(input, out, Reply::Static(reply), false);
    }

    /// Sends a marker whose answer becomes `reply`; with `close`, follows it
    /// with `QUIT` and stops reading the client.
    fn reply_locally(&mut self, input: &[u8], out: &mut Output, reply: Reply, close: bool) {
        if close {
            self.send_marker(input, out, Action::ReplyThenClose(reply));
            out.push(input, QUIT);
            self.client_flow = Flow::Closing;
        } else {
            self.send_marker(input, out, Action::Reply(reply));
        }
    }

    fn send_marker(&mut self, input: &[u8], out: &mut Output, action: Action) {
        let id = self.next_marker;
        self.next_marker += 1;
        self.nonce
            .write_command(out.owned(input), id, self.in_multi);
        self.markers.push_back(Marker { id, action });
    }

    // ----- server → client -----

    fn begin_frame(&mut self, input: &[u8], at: usize) {
        self.frame.kind = input.get(at).copied().unwrap_or(0);
        self.frame.len = 0;
        self.frame.keeping = true;
        self.frame.kept.clear();
        self.frame.from = Some(at);
    }

    /// Whether the current reply must not reach the client as it is.
    fn withholding(&self) -> bool {
        self.expect_auth_reply || self.upstream_failure.is_some()
    }

    fn frame_bytes(&mut self, input: &[u8], range: std::ops::Range<usize>, out: &mut Output) {
        self.frame.len += range.len();
        if !self.frame.keeping {
            if !self.withholding() {
                out.pass(input, range);
            }
            return;
        }
        if self.frame.len <= KEEP_MAX {
            return; // still kept, in place or in `kept`
        }
        // Too large to be anything the filter looks at: stream it.
        self.frame.keeping = false;
        self.release_stash(input, out);
        if !self.withholding() {
            out.push(input, &self.frame.kept);
            if let Some(from) = self.frame.from {
                out.pass(input, from..range.end);
            }
        }
        self.frame.kept.clear();
        self.frame.from = None;
    }

    fn end_frame(&mut self, input: &[u8], end: usize, out: &mut Output) {
        if !self.frame.keeping {
            if self.expect_auth_reply {
                self.upstream_rejected(b"unexpected reply to AUTH");
            } else if let Some(failure) = &self.upstream_failure {
                out.push(input, failure);
            }
            return;
        }
        let from = self.frame.from.take().unwrap_or(end);
        let in_chunk = from..end;
        let mut kept = std::mem::take(&mut self.frame.kept);
        if kept.is_empty() {
            let frame = input.get(in_chunk.clone()).unwrap_or_default();
            self.route_frame(frame, Some(in_chunk), input, out);
        } else {
            // Started in an earlier chunk.
            kept.extend_from_slice(input.get(in_chunk).unwrap_or_default());
            self.route_frame(&kept, None, input, out);
            kept.clear();
        }
        self.frame.kept = kept;
    }

    /// Decides what a complete, kept reply becomes. `in_input` is where it
    /// lies in the current chunk, if entirely there (so it can be passed
    /// without copying).
    fn route_frame(
        &mut self,
        frame: &[u8],
        in_input: Option<std::ops::Range<usize>>,
        input: &[u8],
        out: &mut Output,
    ) {
        if self.expect_auth_reply {
            if frame == replies::OK {
                self.expect_auth_reply = false;
            } else {
                self.upstream_rejected(frame);
            }
            return;
        }
        if let Some(id) = self.nonce.match_reply(frame) {
            if self.resolve_marker(id, input, out) {
                return;
            }
        }
        self.track_subscriptions(frame);
        let pass = |out: &mut Output| match &in_input {
            Some(range) => out.pass(input, range.clone()),
            None => out.push(input, frame),
        };
        if self.frame.kind == b'>' {
            // RESP3 pushes are not replies to anything: never held back. A
            // kept reply before one cannot be the re-AUTH reply either, as
            // nothing is pushed once RESET has run.
            self.release_stash(input, out);
            pass(out);
            return;
        }
        if self.reauth_pending > 0 {
            // This may be the reply to the proxy's AUTH after a RESET; the
            // next marker tells.
            self.release_stash(input, out);
            self.stash = Some(frame.to_vec());
            return;
        }
        match &self.upstream_failure {
            Some(failure) => out.push(input, failure),
            None => pass(out),
        }
    }

    fn release_stash(&mut self, input: &[u8], out: &mut Output) {
        if let Some(stash) = self.stash.take() {
            match &self.upstream_failure {
                Some(failure) => out.push(input, failure),
                None => out.push(input, &stash),
            }
        }
    }

    /// Applies marker `id`. Markers before it got no reply (the client had
    /// turned replies off), so their local replies are dropped too, as Redis
    /// would have dropped them.
    fn resolve_marker(&mut self, id: u64, input: &[u8], out: &mut Output) -> bool {
        if !self.markers.iter().any(|m| m.id == id) {
            return false;
        }
        while let Some(marker) = self.markers.pop_front() {
            if marker.id != id {
                if let Action::ResetDone { reauth: true } = marker.action {
                    self.reauth_pending = self.reauth_pending.saturating_sub(1);
                }
                continue;
            }
            match marker.action {
                Action::Reply(reply) => self.deliver(&reply, input, out),
                Action::ReplyThenClose(reply) => {
                    self.deliver(&reply, input, out);
                    self.server_flow = Flow::Closing;
                }
                Action::ResetDone { reauth } => {
                    self.subscriptions = Subscriptions::default();
                    if reauth {
                        self.reauth_pending = self.reauth_pending.saturating_sub(1);
                        match self.stash.take() {
                            Some(reply) if reply == replies::OK => {}
                            Some(reply) => self.upstream_rejected(&reply),
                            None => self.upstream_rejected(b"no reply to AUTH after RESET"),
                        }
                    }
                }
            }
            return true;
        }
        false
    }

    fn deliver(&mut self, reply: &Reply, input: &[u8], out: &mut Output) {
        self.release_stash(input, out);
        match &self.upstream_failure {
            Some(failure) if !reply.bytes().is_empty() => out.push(input, failure),
            _ => out.push(input, reply.bytes()),
        }
    }

    fn upstream_rejected(&mut self, reply: &[u8]) {
        self.expect_auth_reply = false;
        // The server's error line, without '-' and CRLF; it holds no secret.
        let line = reply
            .strip_prefix(b"-")
            .unwrap_or(reply)
            .split(|&b| b == b'\r')
            .next()
            .unwrap_or_default();
        let line = line.get(..line.len().min(200)).unwrap_or_default();
        let mut failure = Vec::new();
        replies::upstream_auth_failed(line, &mut failure);
        self.upstream_failure = Some(failure);
        self.events.push(SessionEvent::UpstreamAuthRejected(
            String::from_utf8_lossy(line).into_owned(),
        ));
    }

    /// Follows (un)subscribe confirmations: `[kind, channel, count]`.
    fn track_subscriptions(&mut self, frame: &[u8]) {
        let mut reader = FrameReader::new(frame);
        if reader.aggregate(b"*>") != Some(3) {
            return;
        }
        let Some(Some(kind)) = reader.bulk() else {
            return;
        };
        let shard = match kind {
            b"subscribe" | b"psubscribe" | b"unsubscribe" | b"punsubscribe" => false,
            b"ssubscribe" | b"sunsubscribe" => true,
            _ => return,
        };
        if reader.bulk().is_none() {
            return;
        }
        let Some(count) = reader.integer() else {
            return;
        };
        if shard {
            self.subscriptions.shard_channels = count;
        } else {
            self.subscriptions.channels = count;
        }
        self.subscriptions.resp2 = self.frame.kind == b'*';
    }

    fn end_server_chunk(&mut self, input: &[u8]) {
        // A kept reply continues in the next chunk: copy its part of this one.
        if let Some(from) = self.frame.from.take() {
            if self.frame.keeping {
                self.frame
                    .kept
                    .extend_from_slice(input.get(from..).unwrap_or_default());
            }
        }
    }
}

#[cfg(test)]
mod tests;
