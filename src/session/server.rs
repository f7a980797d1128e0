//! Server → client: what the server sends, and what the client gets instead.
//!
//! [`ReplyFramer`](crate::resp::reply::ReplyFramer) splits the stream into top-level replies. Small replies
//! (up to [`KEEP_MAX`]) are kept whole until they end, to be recognised: the
//! reply to the proxy's `AUTH` (swallowed), a marker's reply (swapped for its
//! local reply), a subscription confirmation (tracked). Anything larger
//! streams through as it arrives.

use crate::resp::output::Output;
use crate::resp::reply::{FrameReader, whole_simple_reply};

use super::pending::{Action, Answered, Reply};
use super::{
    Close, Flow, KEEP_MAX, Replication, Session, SessionEvent, State, Step, finished, replies,
    settled,
};

/// What the session knows of the server's side of the connection.
#[derive(Default)]
pub(super) struct ServerSide {
    pub(super) flow: Flow,
    pub(super) expect_auth_reply: bool,
    /// Commands the filter sent on its own (the re-`AUTH` after a `RESET`,
    /// a `DISCARD`) whose reply is still to come: the marker behind each
    /// says what becomes of it.
    pub(super) stash_pending: u32,
    /// The last kept reply while a re-`AUTH` reply is awaited.
    stash: Option<Vec<u8>>,
    /// Set once the server refuses the proxy's credentials: every reply is
    /// replaced by this error.
    upstream_failure: Option<Vec<u8>>,
    frame: Frame,
    pub(super) subscriptions: Subscriptions,
    /// The reply that ends the connection has been handed to the client.
    pub(super) finished: bool,
    /// Held client bytes to send to the server with this step.
    release: Option<Vec<u8>>,
    /// Held client bytes to parse now and send with this step.
    reparse: Option<Vec<u8>>,
}

impl ServerSide {
    /// Releases a kept-frame buffer grown past what a kept frame needs.
    pub(super) fn trim(&mut self) {
        let kept = &mut self.frame.kept;
        if kept.capacity() > 2 * KEEP_MAX {
            kept.shrink_to(kept.len().max(2 * KEEP_MAX));
        }
    }

    pub(super) fn held_bytes(&self) -> usize {
        let capacity = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::capacity);
        self.frame.kept.capacity()
            + capacity(&self.stash)
            + capacity(&self.upstream_failure)
            + capacity(&self.release)
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
pub(super) struct Subscriptions {
    /// Channels plus patterns, from the last (un)subscribe confirmation.
    channels: i64,
    /// Shard channels, from the last s(un)subscribe confirmation.
    shard_channels: i64,
    /// The connection speaks RESP2 (confirmations arrive as arrays rather
    /// than pushes), as the last confirmation or `HELLO` showed.
    pub(super) resp2: bool,
}

impl Subscriptions {
    /// Redis restricts the commands of a subscribed RESP2 connection.
    pub(super) fn restricts_commands(&self) -> bool {
        self.resp2 && (self.channels > 0 || self.shard_channels > 0)
    }
}

/// [`Session::on_server_data`].
pub(super) fn on_data<'a>(session: &'a mut Session, input: &'a [u8]) -> Step<'a> {
    let Session {
        parser,
        framer,
        client_out,
        server_out: out,
        state,
    } = session;
    out.begin();
    state.server.release = None;
    if state.server.finished {
        return finished(out, input);
    }
    if state.server.flow != Flow::Open {
        return settled(state.server.flow, out, input);
    }
    if !framer.at_frame_start() && state.server.frame.keeping {
        state.server.frame.from = Some(0);
    }
    let mut close = Close::No;
    let mut pos = 0;
    while pos < input.len() {
        if framer.at_frame_start() {
            if let Replication::Sent { .. } = state.replication {
                // SYNC answers with the RDB payload (`$<len>`, no CRLF after
                // it) or newlines while it prepares one: not RESP.
                if matches!(input.get(pos), Some(b'$' | b'\n')) {
                    state.replication_started();
                }
            }
            if state.server.flow == Flow::Raw {
                out.pass(input, pos..input.len());
                break;
            }
            if state.replies_pass_plainly() {
                // The fast path: replies that go on untouched, as many as
                // follow one another whole, in one step.
                let from = pos;
                while let Some(end) = whole_simple_reply(input, pos) {
                    pos = end;
                }
                if pos > from {
                    out.pass(input, from..pos);
                    continue;
                }
            }
            state.begin_frame(input, pos);
        }
        let start = pos;
        match framer.advance(input, &mut pos) {
            Err(error) => {
                state.events.push(SessionEvent::ServerProtocolError(error));
                state.server.flow = Flow::Closing;
                state.client.flow = Flow::Closing;
                close = Close::Now;
                break;
            }
            Ok(done) => {
                state.frame_bytes(input, start..pos, out);
                if done {
                    state.end_frame(input, pos, out);
                }
            }
        }
        if state.server.flow == Flow::Closing {
            if state.server.finished {
                close = Close::AfterWrite;
            }
            break;
        }
        if state.server.flow == Flow::Raw {
            // PSYNC's +FULLRESYNC / +CONTINUE line was the last RESP.
            out.pass(input, pos..input.len());
            break;
        }
    }
    state.end_server_chunk(input);
    if let Some(held) = state.server.reparse.take() {
        // The new server identity is in: what the client sent after the
        // AUTH goes on now, judged as it would have been.
        let step = super::client::process(parser, client_out, state, &held);
        let bytes = match step.verdict {
            crate::resp::output::Verdict::Unchanged => held.clone(),
            crate::resp::output::Verdict::Replace(bytes) => bytes.to_vec(),
        };
        match step.close {
            Close::Now => close = Close::Now,
            Close::Deadline if close == Close::No => close = Close::Deadline,
            _ => {}
        }
        state.server.release = Some(bytes);
    }
    let mut step = Step::new(out.finish(input));
    step.close = close;
    step.release = state.server.release.as_deref();
    step
}

impl State {
    /// The fast path: whether a reply that is no aggregate, lying whole in
    /// the chunk, passes untouched with nothing to note, as
    /// [`route_frame`](Self::route_frame) would pass it: no reply is
    /// awaited for the filter itself (its `AUTH`, a marker, a re-`AUTH`),
    /// none is held back, the server's credentials were accepted, and no
    /// `SYNC` is under way. (Only aggregates can confirm subscriptions.)
    fn replies_pass_plainly(&self) -> bool {
        self.pending.is_empty()
            && !self.server.expect_auth_reply
            && self.server.stash_pending == 0
            && self.server.stash.is_none()
            && self.server.upstream_failure.is_none()
            && matches!(self.replication, Replication::No)
            && self.server.flow == Flow::Open
    }

    fn begin_frame(&mut self, input: &[u8], at: usize) {
        let frame = &mut self.server.frame;
        frame.kind = input.get(at).copied().unwrap_or(0);
        frame.len = 0;
        frame.keeping = true;
        frame.kept.clear();
        frame.from = Some(at);
    }

    /// Whether the current reply must not reach the client as it is.
    fn withholding(&self) -> bool {
        self.server.expect_auth_reply || self.server.upstream_failure.is_some()
    }

    fn frame_bytes(&mut self, input: &[u8], range: std::ops::Range<usize>, out: &mut Output) {
        self.server.frame.len += range.len();
        if !self.server.frame.keeping {
            if !self.withholding() {
                out.pass(input, range);
            }
            return;
        }
        if self.server.frame.len <= KEEP_MAX {
            return; // still kept, in place or in `kept`
        }
        // Too large to be anything the filter looks at: stream it.
        self.server.frame.keeping = false;
        self.release_stash(input, out);
        if !self.withholding() {
            out.push(input, &self.server.frame.kept);
            if let Some(from) = self.server.frame.from {
                out.pass(input, from..range.end);
            }
        }
        self.server.frame.kept.clear();
        self.server.frame.from = None;
    }

    fn end_frame(&mut self, input: &[u8], end: usize, out: &mut Output) {
        if !self.server.frame.keeping {
            if let Replication::Sent { .. } = self.replication {
                // A long refusal of the SYNC, streamed: the end (see
                // route_frame).
                self.replication = Replication::No;
                self.server.flow = Flow::Closing;
                self.server.finished = true;
                return;
            }
            if self.server.expect_auth_reply {
                self.upstream_rejected(b"unexpected reply to AUTH");
            } else if let Some(failure) = &self.server.upstream_failure {
                out.push(input, failure);
            }
            return;
        }
        let from = self.server.frame.from.take().unwrap_or(end);
        let in_chunk = from..end;
        let mut kept = std::mem::take(&mut self.server.frame.kept);
        if kept.is_empty() {
            let frame = input.get(in_chunk.clone()).unwrap_or_default();
            self.route_frame(frame, Some(in_chunk), input, out);
        } else {
            // Started in an earlier chunk.
            kept.extend_from_slice(input.get(in_chunk).unwrap_or_default());
            self.route_frame(&kept, None, input, out);
            kept.clear();
        }
        self.server.frame.kept = kept;
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
        if self.server.expect_auth_reply {
            if frame == replies::OK {
                self.server.expect_auth_reply = false;
            } else {
                self.upstream_rejected(frame);
            }
            return;
        }
        if let Some(answered) = self.pending.answer(frame) {
            self.on_marker_reply(answered, input, out);
            return;
        }
        if let Replication::Sent { .. } = self.replication {
            if frame.starts_with(b"+FULLRESYNC ") || frame.starts_with(b"+CONTINUE") {
                // PSYNC's yes: this line, then the replication stream.
                match &in_input {
                    Some(range) => out.pass(input, range.clone()),
                    None => out.push(input, frame),
                }
                self.replication_started();
                return;
            }
            // Anything else refuses it (an error; +QUEUED from a server
            // that would queue it): what the client sent after it was never
            // parsed, so it must not go on. Deliver the answer, close.
            self.replication = Replication::No;
            self.deliver(&Reply::Owned(frame.into()), input, out);
            self.server.flow = Flow::Closing;
            self.server.finished = true;
            return;
        }
        self.track_subscriptions(frame);
        let pass = |out: &mut Output| match &in_input {
            Some(range) => out.pass(input, range.clone()),
            None => out.push(input, frame),
        };
        if self.server.frame.kind == b'>' {
            // RESP3 pushes are not replies to anything: never held back. A
            // kept reply before one cannot be the re-AUTH reply either, as
            // nothing is pushed once RESET has run.
            self.release_stash(input, out);
            pass(out);
            return;
        }
        if self.server.stash_pending > 0 {
            // This may be the reply to the proxy's AUTH after a RESET; the
            // next marker tells.
            self.release_stash(input, out);
            self.server.stash = Some(frame.to_vec());
            return;
        }
        match &self.server.upstream_failure {
            Some(failure) => out.push(input, failure),
            None => pass(out),
        }
    }

    /// The server took the SYNC/PSYNC: raw both ways from here, and what
    /// the client sent after it goes on.
    fn replication_started(&mut self) {
        if let Replication::Sent { after } =
            std::mem::replace(&mut self.replication, Replication::Started)
        {
            self.server.release = Some(after);
        }
        self.server.flow = Flow::Raw;
    }

    fn release_stash(&mut self, input: &[u8], out: &mut Output) {
        if let Some(stash) = self.server.stash.take() {
            match &self.server.upstream_failure {
                Some(failure) => out.push(input, failure),
                None => out.push(input, &stash),
            }
        }
    }

    /// Applies a marker's action. Markers before it got no reply (the
    /// client had turned replies off), so their local replies are dropped
    /// too, as Redis would have dropped them.
    fn on_marker_reply(&mut self, answered: Answered, input: &[u8], out: &mut Output) {
        for skipped in answered.skipped {
            if let Action::ResetDone { reauth: true }
            | Action::OwnReplyDone(_)
            | Action::Reauthenticated { .. } = skipped
            {
                self.server.stash_pending = self.server.stash_pending.saturating_sub(1);
            }
        }
        match answered.action {
            Action::Reply(reply) => self.deliver(&reply, input, out),
            Action::ReplyThenClose(reply) => {
                self.deliver(&reply, input, out);
                self.server.flow = Flow::Closing;
                self.server.finished = true;
            }
            Action::Close => {
                self.server.flow = Flow::Closing;
                self.server.finished = true;
            }
            Action::ResetDone { reauth } => {
                self.server.subscriptions = Subscriptions::default();
                if reauth {
                    self.server.stash_pending = self.server.stash_pending.saturating_sub(1);
                    match self.server.stash.take() {
                        Some(reply) if reply == replies::OK => {}
                        Some(reply) => self.upstream_rejected(&reply),
                        None => self.upstream_rejected(b"no reply to AUTH after RESET"),
                    }
                }
            }
            Action::Reauthenticated { reply, identity } => {
                self.server.stash_pending = self.server.stash_pending.saturating_sub(1);
                let held = match std::mem::take(&mut self.replication) {
                    Replication::Switching { after } => Some(after),
                    other => {
                        self.replication = other;
                        None
                    }
                };
                match self.server.stash.take() {
                    Some(answer) if answer == replies::OK => {
                        self.deliver(&reply, input, out);
                        self.server.reparse = held;
                    }
                    answer => {
                        // Nothing the client sent after the AUTH may run:
                        // drop it, say why, and close.
                        let answer = answer.unwrap_or_else(|| b"no reply to AUTH".to_vec());
                        self.upstream_rejected_as(&answer, Some(&identity));
                        if let Some(failure) = &self.server.upstream_failure {
                            out.push(input, failure);
                        }
                        self.server.flow = Flow::Closing;
                        self.server.finished = true;
                    }
                }
            }
            Action::OwnReplyDone(reply) => {
                // The kept reply answers the filter's own command: drop it.
                self.server.stash_pending = self.server.stash_pending.saturating_sub(1);
                self.server.stash = None;
                self.deliver(&reply, input, out);
            }
            Action::Barrier => {
                // Everything before the held SYNC is answered: send it, and
                // wait for its reply (see on_data).
                if let Replication::Held { command, after } = std::mem::take(&mut self.replication)
                {
                    self.server.release = Some(command);
                    self.replication = Replication::Sent { after };
                }
            }
        }
    }

    fn deliver(&mut self, reply: &Reply, input: &[u8], out: &mut Output) {
        self.release_stash(input, out);
        match &self.server.upstream_failure {
            Some(failure) if !reply.bytes().is_empty() => out.push(input, failure),
            _ => out.push(input, reply.bytes()),
        }
    }

    fn upstream_rejected(&mut self, reply: &[u8]) {
        self.upstream_rejected_as(reply, None);
    }

    /// The server refused credentials the proxy sent: `identity` says
    /// which, when not the top-level `upstream`.
    fn upstream_rejected_as(&mut self, reply: &[u8], identity: Option<&str>) {
        self.server.expect_auth_reply = false;
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
        self.server.upstream_failure = Some(failure);
        let mut reason = String::from_utf8_lossy(line).into_owned();
        if let Some(identity) = identity {
            reason = format!("{reason}; credentials: {identity}");
        }
        self.events.push(SessionEvent::UpstreamAuthRejected(reason));
    }

    /// Follows (un)subscribe confirmations, `[kind, channel, count]`, and
    /// `HELLO`'s reply (a map in RESP3, an array in RESP2, starting with
    /// `server`), which tells the protocol.
    fn track_subscriptions(&mut self, frame: &[u8]) {
        let mut reader = FrameReader::new(frame);
        let Some(len) = reader.aggregate(b"*>%") else {
            return;
        };
        let Some(Some(kind)) = reader.bulk() else {
            return;
        };
        if kind == b"server" && self.server.frame.kind != b'>' {
            self.server.subscriptions.resp2 = self.server.frame.kind == b'*';
            return;
        }
        if len != 3 || self.server.frame.kind == b'%' {
            return;
        }
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
        let subscriptions = &mut self.server.subscriptions;
        if shard {
            subscriptions.shard_channels = count;
        } else {
            subscriptions.channels = count;
        }
        subscriptions.resp2 = self.server.frame.kind == b'*';
    }

    fn end_server_chunk(&mut self, input: &[u8]) {
        // A kept reply continues in the next chunk: copy its part of this one.
        let frame = &mut self.server.frame;
        if let Some(from) = frame.from.take() {
            if frame.keeping {
                frame
                    .kept
                    .extend_from_slice(input.get(from..).unwrap_or_default());
            }
        }
    }
}
