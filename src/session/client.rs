//! Client → server: what the client sends, and what the server gets instead.
//!
//! Commands are framed by [`RequestParser`]; once a command's name is known
//! it is either forwarded as it streams in or collected and answered here
//! (see the module docs of [`super`]). Local replies leave as markers
//! ([`Pending::send`]); this side never writes to the client itself.

use std::rc::Rc;

use crate::acl;
use crate::acl::log::{Entry, Reason};
use crate::command::{self, CommandError, CommandSpec};
use crate::config::Config;
use crate::resp::output::Output;
use crate::resp::request::{
    self, Args, Disposition, Event, HOLD_MAX, Head, REDIS_READ_LEN, RequestParser,
};
use crate::users::UserId;

use super::acl_commands;
use super::auth::{self, Identity, Outcome};
use super::gate::{self, Gate, Refusal};
use super::pending::{Action, Reply};
use super::upstream::UpstreamIdentity;
use super::{
    Close, DISCARD, Flow, Pause, QUIT, Replication, Session, SessionEvent, State, Step, finished,
    replies, settled,
};

/// What the session knows of the client's side of the connection.
pub(super) struct ClientSide {
    pub(super) flow: Flow,
    /// The first chunk has been seen (the proxy's `AUTH` went before it).
    started: bool,
    pub(super) identity: Identity,
    auth_failures: u32,
    in_multi: bool,
    after_forward: AfterForward,
    /// The first marker sent for the chunk being read. A cross-protocol
    /// attack drops the local replies from there on, as Redis drops the
    /// replies to a read it has not written yet when it closes.
    chunk_first_marker: u64,
    /// During a chunk: where in its output a held `SYNC`/`PSYNC` begins
    /// and ends.
    hold: Option<(usize, usize)>,
    /// Set by the chunk that starts closing after a reply (for the step's
    /// deadline).
    closing_started: bool,
    /// Local replies made before authentication in the current "read"
    /// (a [`REDIS_READ_LEN`] window of the chunk), in bytes.
    read_reply_bytes: usize,
    read_window: usize,
    /// Why the command being read is collected (decided with its name).
    collected: Option<Collected>,
    scratch: acl::Scratch,
    /// The connection speaks RESP3 (a `HELLO 3` went on), for the replies
    /// the filter formats itself.
    resp3: bool,
    /// The server connection's identity (see [`super::upstream`]).
    pub(super) upstream: UpstreamIdentity,
    /// The user the client's mTLS identity maps to (`downstream.identities`):
    /// the user it starts as, and returns to on `RESET`.
    pub(super) mapped: Option<UserId>,
    /// Some user has a server identity of its own
    /// ([`Config::has_user_upstreams`], which the configuration fixes).
    user_upstreams: bool,
    /// The arguments of a whole command the fast path has the gate judge.
    whole_args: Args,
}

/// Who a client is when it connects (and after `RESET`): its mapped user;
/// else the default user if that needs no password (unless only mapped
/// identities may get in); else nobody yet.
pub(super) fn connect_identity(config: &Config, mapped: Option<UserId>) -> Identity {
    match mapped {
        Some(user) => Identity {
            authenticated: true,
            user: Some(user),
        },
        None => Identity {
            authenticated: config.users().authenticated_on_connect() && !config.require_identity(),
            user: None,
        },
    }
}

/// Redis's limit on the replies it buffers for a client that has not
/// authenticated: once a read's replies outgrow the client's static reply
/// buffer (`PROTO_REPLY_CHUNK_BYTES`), it closes the connection without
/// writing them (Debian's fix for CVE-2025-21605 in 7.0.15).
const UNAUTHENTICATED_REPLY_MAX: usize = 16 * 1024;

/// What to do when a forwarded command has been handed on completely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterForward {
    Nothing,
    EnterMulti,
    LeaveMulti,
    Reset,
    Replication,
}

impl ClientSide {
    pub(super) fn new(config: &Config) -> Self {
        Self {
            flow: Flow::Open,
            started: false,
            identity: connect_identity(config, None),
            mapped: None,
            auth_failures: 0,
            in_multi: false,
            after_forward: AfterForward::Nothing,
            chunk_first_marker: 0,
            hold: None,
            closing_started: false,
            read_reply_bytes: 0,
            read_window: 0,
            collected: None,
            scratch: acl::Scratch::default(),
            resp3: false,
            upstream: UpstreamIdentity::default(),
            user_upstreams: config.has_user_upstreams(),
            whole_args: Args::default(),
        }
    }

    /// Bytes held for the arguments the fast path last had judged.
    pub(super) fn held_bytes(&self) -> usize {
        self.whole_args.held_bytes()
    }

    /// Forgets the arguments the fast path had judged (they are needed only
    /// while it judges), giving back what a large command made large.
    pub(super) fn trim(&mut self) {
        self.whole_args.reset();
    }

    /// Whether the first chunk has been seen.
    pub(super) fn is_started(&self) -> bool {
        self.started
    }

    /// The user a connection is as soon as it opens (and after `RESET`):
    /// the default user if it needs no password, else nobody.
    fn connect_user(&self) -> Option<UserId> {
        if self.identity.authenticated {
            self.identity.user
        } else {
            None
        }
    }

    /// The chunk's bytes up to `pos` have been read: a new Redis-sized read
    /// starts every [`REDIS_READ_LEN`] bytes.
    fn in_read_window(&mut self, pos: usize) {
        let window = pos / REDIS_READ_LEN;
        if window != self.read_window {
            self.read_window = window;
            self.read_reply_bytes = 0;
        }
    }
}

/// [`Session::on_client_data`].
pub(super) fn on_data<'a>(session: &'a mut Session, input: &'a [u8]) -> Step<'a> {
    let Session {
        parser,
        client_out: out,
        state,
        ..
    } = session;
    process(parser, out, state, input)
}

/// One chunk of client bytes: from the host, or held while the server
/// connection switched identity (see [`Replication::Switching`]).
pub(super) fn process<'a>(
    parser: &mut RequestParser,
    out: &'a mut Output,
    state: &mut State,
    input: &'a [u8],
) -> Step<'a> {
    out.begin();
    if state.replication.is_waiting() {
        // Nothing passes until the server has taken the SYNC.
        let mut step = Step::new(out.finish(input));
        step.pause = Pause::Keep;
        if !state.replication.keep(input) {
            step.close = Close::Now;
        }
        return step;
    }
    if state.server.finished {
        return finished(out, input);
    }
    if state.client.flow != Flow::Open {
        return settled(state.client.flow, out, input);
    }
    if !state.client.started {
        state.client.started = true;
        let config = Rc::clone(&state.config);
        let user = state.client.connect_user();
        if let Some(upstream) = config.upstream_for(user) {
            upstream.append_auth_command(out.owned(input));
            state.server.expect_auth_reply = true;
        }
        state.client.upstream.logged_in_as(&config, user);
    }
    state.client.chunk_first_marker = state.pending.next_id();
    state.client.read_reply_bytes = 0;
    state.client.read_window = 0;
    parser.begin_chunk();
    let mut pos = 0;
    loop {
        state.client.in_read_window(pos);
        if state.forwards_plainly(parser) {
            // The fast path: the commands that go on untouched, as many as
            // follow one another whole, in one step.
            let from = pos;
            while let Some(end) = state.forwards_whole(input, pos) {
                pos = end;
            }
            if pos > from {
                out.pass(input, from..pos);
                if pos == input.len() {
                    break; // what the idle parser would say: NeedMore
                }
                continue;
            }
        }
        let authenticated = state.client.identity.authenticated;
        match parser.next(input, &mut pos, out, authenticated) {
            Event::NeedMore => break,
            Event::Empty => {}
            Event::Decide(head) => {
                let disposition = state.decide(&head, input, out);
                parser.decide(input, out, disposition);
            }
            Event::Command(args) => {
                state.on_command(args, input, out);
                if state.client.upstream.switching {
                    // The rest waits for the server to accept the new
                    // server identity.
                    break;
                }
            }
            Event::Forwarded => state.after_forwarded(input, out),
            Event::Error(error) => {
                state.events.push(SessionEvent::ProtocolError(error));
                let mut reply = Vec::new();
                error.reply(&mut reply);
                state.reply_locally(input, out, Reply::Owned(reply.into()), true);
            }
        }
        if state.pending.overflowing() {
            state.events.push(SessionEvent::TooManyPending);
            state.client.flow = Flow::Closing;
            parser.end_chunk(input);
            let mut step = Step::new(out.finish(input));
            step.close = Close::Now;
            return step;
        }
        match state.client.flow {
            Flow::Open => {}
            Flow::Closing => break,
            Flow::Raw => {
                out.pass(input, pos..input.len());
                break;
            }
        }
    }
    parser.end_chunk(input);
    if std::mem::take(&mut state.client.upstream.switching) {
        let after = input.get(pos..).unwrap_or_default().to_vec();
        state.replication = Replication::Switching { after };
        let mut step = Step::new(out.finish(input));
        step.pause = Pause::Start;
        if std::mem::take(&mut state.client.closing_started) {
            step.close = Close::Deadline;
        }
        return step;
    }
    let held = state.client.hold.take().map(|(from, to)| {
        let mut command = out.split_off(input, from);
        let after = command.split_off(to.saturating_sub(from));
        (command, after)
    });
    let mut step = Step::new(out.finish(input));
    if let Some((command, after)) = held {
        state.replication = Replication::Held { command, after };
        step.pause = Pause::Start;
    }
    if std::mem::take(&mut state.client.closing_started) {
        step.close = Close::Deadline;
    }
    step
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
    /// `ACL` / `CONFIG`: screened when the proxy owns the users.
    Screened,
    /// `CLIENT`: its `REPLY` mode is followed (see [`UpstreamIdentity`]).
    Client,
    Other,
}

/// What the session does with `spec`, the command looked up once when its
/// name arrived.
fn classify(spec: Option<&CommandSpec>) -> Special {
    match spec.map(|spec| spec.name) {
        Some("auth") => Special::Auth,
        Some("hello") => Special::Hello,
        Some("reset") => Special::Reset,
        Some("multi") => Special::Multi,
        Some("exec") => Special::Exec,
        Some("discard") => Special::Discard,
        Some("sync" | "psync") => Special::Replication,
        Some("acl" | "config") => Special::Screened,
        Some("client") => Special::Client,
        _ => Special::Other,
    }
}

/// Why an authenticated client's command is being collected: what
/// [`State::on_authenticated_command`] does with it once it is read.
#[derive(Clone, Copy, Debug)]
enum Collected {
    Auth,
    Hello,
    /// `ACL` / `CONFIG` (see [`acl_commands`]).
    Screened,
    /// The ACL gate refused it.
    Refused(Refusal),
}

impl State {
    /// Whether the fast path may be tried, for the commands almost every
    /// chunk holds: no command is partly read, the client is in, and no
    /// user has a server identity of its own (whose `CLIENT REPLY` and
    /// `AUTH` the session must follow). None of that changes while the fast
    /// path runs: it takes only commands that change nothing.
    fn forwards_plainly(&self, parser: &RequestParser) -> bool {
        parser.is_idle() && self.client.identity.authenticated && !self.client.user_upstreams
    }

    /// With [`forwards_plainly`](Self::forwards_plainly): where the command
    /// that lies whole in the input at `pos` ends, if it is none the
    /// session treats specially and the client's user may run it as it is,
    /// so that [`decide`](Self::decide) would say `Forward` with nothing to
    /// do after it. It is then handed on without the parser's events.
    ///
    /// A user not allowed everything has the command judged by the same
    /// gate, given the arguments the gate asks for, all at once; a command
    /// the gate would refuse, or hold past [`HOLD_MAX`], is left to the
    /// general path, which refuses it.
    fn forwards_whole(&mut self, input: &[u8], pos: usize) -> Option<usize> {
        let command = request::whole_command(input, pos)?;
        let config = &*self.config;
        let base = command::lookup_command_for(command.name, config.server_version);
        if classify(base) != Special::Other {
            return None;
        }
        let permissions = config.users().permissions_of(self.client.identity.user);
        if !permissions.is_full() {
            if command.end - pos > HOLD_MAX {
                return None;
            }
            let client = &mut self.client;
            // The name and the first argument (a subcommand, or the first
            // key) first; then as many as the gate asks for.
            let mut have = command.argc.min(2);
            loop {
                client.whole_args.retain_whole(input, pos, &command, have);
                let head = Head {
                    argc: command.argc,
                    name: Some(command.name),
                    inline: false,
                    args: &client.whole_args,
                    complete_args: have,
                    over_hold: false,
                };
                match gate::check(
                    permissions,
                    &head,
                    base,
                    client.in_multi,
                    &mut client.scratch,
                ) {
                    Gate::Pass => break,
                    Gate::Wait(n) if n > have && n <= command.argc => have = n,
                    Gate::Wait(_) | Gate::Refuse(_) => return None,
                }
            }
        }
        Some(command.end)
    }

    fn decide(&mut self, head: &Head, input: &[u8], out: &mut Output) -> Disposition {
        self.client.after_forward = AfterForward::Nothing;
        self.client.collected = None;
        if !self.client.identity.authenticated {
            return Disposition::Collect;
        }
        let config = Rc::clone(&self.config);
        // The command's identity, decided once for everything below.
        let base = head
            .name
            .and_then(|name| command::lookup_command_for(name, config.server_version));
        let first_offer = head.inline || head.complete_args <= 1;
        if first_offer && self.client.user_upstreams {
            self.client.upstream.command_starts();
        }
        let permissions = config.users().permissions_of(self.client.identity.user);
        if !permissions.is_full() {
            let in_multi = self.client.in_multi;
            match gate::check(permissions, head, base, in_multi, &mut self.client.scratch) {
                Gate::Pass => {}
                Gate::Wait(args) => return Disposition::Inspect(args),
                Gate::Refuse(refusal) => {
                    self.client.collected = Some(Collected::Refused(refusal));
                    return Disposition::Collect;
                }
            }
        }
        let exact = |n: usize| head.argc == n;
        let owns_identities = self.config.downstream.is_some();
        let special = classify(base);
        self.client.after_forward = match special {
            Special::Auth | Special::Hello | Special::Screened if owns_identities => {
                self.client.collected = Some(match special {
                    Special::Auth => Collected::Auth,
                    Special::Hello => Collected::Hello,
                    _ => Collected::Screened,
                });
                return Disposition::Collect;
            }
            Special::Reset if exact(1) => AfterForward::Reset,
            // Redis refuses MULTI on a subscribed RESP2 connection.
            Special::Multi if exact(1) && !self.server.subscriptions.restricts_commands() => {
                AfterForward::EnterMulti
            }
            Special::Client if head.argc == 3 && self.client.user_upstreams => {
                if head.complete_args < 3 && !head.over_hold {
                    return Disposition::Inspect(3);
                }
                self.client.upstream.note_client_reply(head.args);
                AfterForward::Nothing
            }
            Special::Exec => AfterForward::LeaveMulti,
            Special::Discard if exact(1) => AfterForward::LeaveMulti,
            Special::Replication => {
                // Held behind a marker (see Replication).
                self.send_marker(input, out, Action::Barrier);
                self.client.hold = Some((out.len(), out.len()));
                AfterForward::Replication
            }
            _ => AfterForward::Nothing,
        };
        Disposition::Forward
    }

    fn after_forwarded(&mut self, input: &[u8], out: &mut Output) {
        match std::mem::replace(&mut self.client.after_forward, AfterForward::Nothing) {
            AfterForward::Nothing => {}
            AfterForward::EnterMulti => self.client.in_multi = true,
            AfterForward::LeaveMulti => self.client.in_multi = false,
            AfterForward::Reset => {
                // RESET logs the server connection out as well: log it back
                // in, and learn when the reset is done from a marker.
                self.client.in_multi = false;
                self.reset_identity();
                let config = Rc::clone(&self.config);
                let user = self.client.connect_user();
                self.client.upstream.logged_in_as(&config, user);
                let reauth = match config.upstream_for(user) {
                    Some(upstream) => {
                        upstream.append_auth_command(out.owned(input));
                        self.server.stash_pending += 1;
                        true
                    }
                    None => false,
                };
                self.send_marker(input, out, Action::ResetDone { reauth });
            }
            AfterForward::Replication => {
                // What follows is not parsed: it is held (the rest of this
                // chunk, raw, after the command) until the server answers.
                self.client.flow = Flow::Raw;
                if let Some((_, end)) = &mut self.client.hold {
                    *end = out.len();
                }
            }
        }
    }

    /// A `HELLO <protover>` goes on: the replies the filter formats follow
    /// that protocol from now on.
    fn note_protocol(&mut self, args: &Args) {
        match args.whole(1).and_then(crate::resp::parse_redis_int) {
            Some(2) => self.client.resp3 = false,
            Some(3) => self.client.resp3 = true,
            _ => {}
        }
    }

    /// `RESET` makes the client the default user, authenticated only if
    /// that user needs no password.
    fn reset_identity(&mut self) {
        self.client.resp3 = false;
        self.client.identity = connect_identity(&self.config, self.client.mapped);
    }

    fn on_command(&mut self, args: &Args, input: &[u8], out: &mut Output) {
        if self.client.identity.authenticated {
            self.on_authenticated_command(args, input, out);
        } else {
            self.on_unauthenticated_command(args, input, out);
        }
    }

    /// Collected commands from a client that is in: `AUTH`, `HELLO`, and
    /// commands the ACL gate refused.
    fn on_authenticated_command(&mut self, args: &Args, input: &[u8], out: &mut Output) {
        let is_auth = match self.client.collected.take() {
            Some(Collected::Refused(refusal)) => return self.refuse(refusal, args, input, out),
            Some(Collected::Screened) => return self.answer_screened(args, input, out),
            Some(Collected::Auth) => true,
            Some(Collected::Hello) => false,
            // Nothing else is collected from a client that is in; should it
            // happen, fail closed rather than lose a reply.
            None => {
                let reply = Reply::Static(b"-ERR envoy-redis-auth: internal error\r\n");
                return self.reply_locally(input, out, reply, true);
            }
        };
        let name = args.get(0).unwrap_or_default();
        if !is_auth && !auth::hello_needs_filter(args) {
            // A plain HELLO: the server answers it (and switches protocol).
            self.note_protocol(args);
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
        if self.client.in_multi {
            self.reply_static(input, out, replies::NOT_IN_TRANSACTION);
            return;
        }
        if self.server.subscriptions.restricts_commands() {
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
        let version = self.config.server_version;
        let spec = match command::resolve_for(&argv, version) {
            Ok(spec) => spec,
            Err(CommandError::SecurityAttack) => {
                self.events.push(SessionEvent::CrossProtocolAttack);
                self.close_dropping_this_read(input, out);
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
                self.client.in_multi = false;
                self.reset_identity();
                self.reply_static(input, out, replies::RESET);
            }
            _ if spec.flags.contains(command::CommandFlags::PROTECTED) => {
                let mut reply = Vec::new();
                command::write_protected_reply_for(spec, version, &mut reply);
                self.reply_locally(input, out, Reply::Owned(reply.into()), false);
            }
            _ => {
                self.events.push(SessionEvent::Unauthenticated);
                self.reply_static(input, out, command::noauth_reply_for(spec, version));
            }
        }
    }

    /// `ACL` / `CONFIG` with the proxy owning the users.
    fn answer_screened(&mut self, args: &Args, input: &[u8], out: &mut Output) {
        let protocol = acl_commands::Protocol {
            resp3: self.client.resp3,
        };
        let current = self.client.identity.user.unwrap_or(UserId::DEFAULT);
        let config = Rc::clone(&self.config);
        let log = Rc::clone(&self.log);
        let answer = acl_commands::answer(
            config.users(),
            current,
            args,
            protocol,
            &mut self.client.scratch,
            log.as_ref(),
        );
        match answer {
            acl_commands::Answer::Reply(reply) => {
                self.reply_locally(input, out, Reply::Owned(reply.into()), false);
            }
            acl_commands::Answer::Forward(command) => out.push(input, &command),
        }
    }

    /// Answers a command the ACL gate refused. A refused `EXEC` ends the
    /// transaction, in Redis; the server's is ended with a `DISCARD` whose
    /// reply is swallowed.
    fn refuse(&mut self, refusal: Refusal, args: &Args, input: &[u8], out: &mut Output) {
        let mut reply = Vec::new();
        let user = self
            .config
            .users()
            .user_name(self.client.identity.user.unwrap_or(UserId::DEFAULT));
        gate::write_refusal(
            refusal,
            args,
            self.config.server_version,
            user.as_bytes(),
            &mut reply,
        );
        if let Refusal::Denied { spec, denial } = refusal {
            let config = Rc::clone(&self.config);
            let user = config
                .users()
                .user_name(self.client.identity.user.unwrap_or(UserId::DEFAULT));
            // The table's full name (`config|set`), never an argument.
            let command = spec.name.to_owned();
            let (reason, object) = match denial {
                acl::Denial::Command(_) => (Reason::Command, command.as_bytes()),
                acl::Denial::Key { pos } => (Reason::Key, args.get(pos).unwrap_or_default()),
                acl::Denial::Channel { pos } => {
                    (Reason::Channel, args.get(pos).unwrap_or_default())
                }
            };
            self.log_acl(reason, object, user.as_bytes());
            self.events.push(SessionEvent::Denied {
                user: user.to_owned(),
                command,
                reason: denial.reason(),
            });
        }
        if gate::ends_transaction(refusal, args) && self.client.in_multi {
            self.client.in_multi = false;
            out.push(input, DISCARD);
            self.server.stash_pending += 1;
            self.send_marker(input, out, Action::OwnReplyDone(Reply::Owned(reply.into())));
            return;
        }
        self.reply_locally(input, out, Reply::Owned(reply.into()), false);
    }

    /// `addACLLogEntry`.
    fn log_acl(&mut self, reason: Reason, object: &[u8], username: &[u8]) {
        let mut info = self.client_info.clone();
        let user = self.client.identity.user.unwrap_or(UserId::DEFAULT);
        info.extend_from_slice(b" user=");
        info.extend_from_slice(self.config.users().user_name(user).as_bytes());
        let now = self.log.now_ms();
        let entry = Entry::new(reason, self.client.in_multi, object, username, now, &info);
        self.log.add(entry);
    }

    fn reply_command_error(
        &mut self,
        error: CommandError,
        argv: &[&[u8]],
        input: &[u8],
        out: &mut Output,
    ) {
        let mut reply = Vec::new();
        command::write_error_reply_for(error, argv, self.config.server_version, &mut reply);
        self.reply_locally(input, out, Reply::Owned(reply.into()), false);
    }

    fn run_auth_or_hello(&mut self, is_auth: bool, args: &Args, input: &[u8], out: &mut Output) {
        if self.client.mapped.is_none() && self.config.require_identity() {
            // Identities only: a password opens nothing here.
            let says_auth = is_auth || auth::hello_needs_filter(args);
            if says_auth {
                self.events.push(SessionEvent::AuthFailed { user: None });
                self.reply_static(input, out, replies::IDENTITY_REQUIRED);
                return;
            }
        }
        let before = self.client.identity;
        let users = self.config.users();
        let identity = &mut self.client.identity;
        let outcome = if is_auth {
            auth::auth(users, args, identity)
        } else {
            auth::hello(users, args, identity, self.config.server_version.texts())
        };
        let authenticated = matches!(
            outcome,
            Outcome::Reply(replies::OK)
                | Outcome::Forward {
                    authenticated: true,
                    ..
                }
        );
        if authenticated && self.needs_switch() && self.client.upstream.replies_suppressed() {
            // The switch needs the server's reply to its AUTH, which
            // CLIENT REPLY OFF|SKIP would swallow: refuse, keep the user.
            self.client.identity = before;
            self.reply_static(input, out, replies::SWITCH_WITHOUT_REPLIES);
            return;
        }
        match outcome {
            Outcome::Reply(reply) => {
                if reply == replies::OK {
                    self.events.push(SessionEvent::AuthSucceeded);
                    if self.switch_server_identity(input, out, Reply::Static(reply)) {
                        return;
                    }
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
                if !is_auth {
                    self.note_protocol(args);
                }
                if authenticated {
                    self.switch_server_identity(input, out, Reply::Static(b""));
                }
                out.push(input, &command);
            }
            Outcome::WrongPass => {
                let texts = self.config.server_version.texts();
                let tried = auth::tried_username(is_auth, args, self.config.users(), texts);
                self.log_acl(Reason::Auth, args.get(0).unwrap_or_default(), &tried);
                let users = self.config.users();
                let user = users.find(&tried).map(|id| users.user_name(id).to_owned());
                self.events.push(SessionEvent::AuthFailed { user });
                self.client.auth_failures = self.client.auth_failures.saturating_add(1);
                let limit = self.config.max_auth_failures();
                let close = limit > 0 && self.client.auth_failures >= limit;
                if close {
                    self.events
                        .push(SessionEvent::TooManyAuthFailures(self.client.auth_failures));
                }
                self.reply_locally(input, out, Reply::Static(replies::WRONGPASS), close);
            }
        }
    }

    /// Closes as Redis does when it frees a client at once: the replies it
    /// has not written yet, those to this read's earlier commands, are
    /// dropped.
    fn close_dropping_this_read(&mut self, input: &[u8], out: &mut Output) {
        self.pending.silence_from(self.client.chunk_first_marker);
        self.reply_locally(input, out, Reply::Static(b""), true);
    }

    fn reply_static(&mut self, input: &[u8], out: &mut Output, reply: &'static [u8]) {
        self.reply_locally(input, out, Reply::Static(reply), false);
    }

    /// Sends a marker whose answer becomes `reply`; with `close`, stops
    /// reading the client and follows it with a second marker and `QUIT`.
    /// The filter closes the connection once the reply is delivered, or
    /// once the second marker is answered if `CLIENT REPLY SKIP` took the
    /// first one's reply; `QUIT` makes the server go away even if replies
    /// are off, and the adapter's deadline closes the connection if nothing
    /// at all comes back.
    fn reply_locally(&mut self, input: &[u8], out: &mut Output, reply: Reply, close: bool) {
        if !self.client.identity.authenticated && !close {
            let client = &mut self.client;
            client.read_reply_bytes = client.read_reply_bytes.saturating_add(reply.bytes().len());
            if client.read_reply_bytes > UNAUTHENTICATED_REPLY_MAX {
                self.events.push(SessionEvent::UnauthenticatedOutputLimit);
                self.close_dropping_this_read(input, out);
                return;
            }
        }
        if close {
            self.send_marker(input, out, Action::ReplyThenClose(reply));
            self.send_marker(input, out, Action::Close);
            out.push(input, QUIT);
            self.client.flow = Flow::Closing;
            self.client.closing_started = true;
        } else {
            self.send_marker(input, out, Action::Reply(reply));
        }
    }

    pub(super) fn send_marker(&mut self, input: &[u8], out: &mut Output, action: Action) {
        self.pending.send(out.owned(input), action);
    }
}
