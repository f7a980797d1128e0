//! The server connection's identity: which credentials it is logged in
//! with, and the switch when the client becomes a user with its own
//! `upstream` (README, "Per-user server identities").
//!
//! A switch sends the new `AUTH` behind what the client sent so far, with a
//! marker behind it (`Action::Reauthenticated`), and holds everything the
//! client sends after its own `AUTH`, unparsed, until that marker is
//! answered (`Replication::Switching`): a command must never run under the
//! identity the client just left. The swallowed reply to the `AUTH` is
//! what says whether the server took the new identity, so a switch is
//! refused while `CLIENT REPLY OFF`/`SKIP` would suppress it.
//!
//! This module decides nothing about the client's own user (that is
//! `auth`'s) and writes no reply of its own.

use std::rc::Rc;

use crate::config::Config;
use crate::resp::output::Output;
use crate::resp::request::Args;
use crate::users::UserId;

use super::State;
use super::pending::{Action, Reply};

/// What the session knows of the server connection's identity.
#[derive(Debug, Default)]
pub(super) struct UpstreamIdentity {
    /// Whose own server identity the connection is logged in with: `None`
    /// for the top-level `upstream`; `Some(user)` for that user's
    /// (`Some(None)` is the default user's).
    user: Option<Option<UserId>>,
    /// Set by an `AUTH` that switched: the client side stops parsing.
    pub(super) switching: bool,
    /// `CLIENT REPLY OFF` went on, and no `ON` since.
    reply_off: bool,
    /// A `CLIENT REPLY SKIP` went on: it silences the next command.
    reply_skip: bool,
    /// The command being read is the one a `SKIP` silences.
    skip_now: bool,
}

impl UpstreamIdentity {
    /// The connection is (again) logged in with `user`'s credentials: its
    /// own, or the top-level ones.
    pub(super) fn logged_in_as(&mut self, config: &Config, user: Option<UserId>) {
        self.user = config.own_upstream(user).map(|_| user);
    }

    /// A new command starts: a pending `SKIP` applies to it.
    pub(super) fn command_starts(&mut self) {
        self.skip_now = std::mem::take(&mut self.reply_skip);
    }

    /// `CLIENT REPLY ON|OFF|SKIP` goes on.
    pub(super) fn note_client_reply(&mut self, args: &Args) {
        let arg = |i: usize| crate::command::c_str(args.get(i).unwrap_or_default());
        if !arg(1).eq_ignore_ascii_case(b"reply") {
            return;
        }
        let mode = arg(2);
        if mode.eq_ignore_ascii_case(b"on") {
            self.reply_off = false;
        } else if mode.eq_ignore_ascii_case(b"off") {
            self.reply_off = true;
        } else if mode.eq_ignore_ascii_case(b"skip") && !self.reply_off {
            self.reply_skip = true;
        }
    }

    /// Whether the server would not reply to a command sent now.
    pub(super) fn replies_suppressed(&self) -> bool {
        self.reply_off || self.skip_now
    }
}

impl State {
    /// Whether the client's user has another server identity than the one
    /// the server connection has.
    pub(super) fn needs_switch(&self) -> bool {
        let user = self.client.identity.user;
        self.config.own_upstream(user).map(|_| user) != self.client.upstream.user
    }

    /// After the client authenticated as a user: if that user's server
    /// identity is not the one the server connection has, re-authenticates
    /// the server connection (its reply swallowed; the marker behind it
    /// delivers `reply`) and returns true; otherwise does nothing.
    pub(super) fn switch_server_identity(
        &mut self,
        input: &[u8],
        out: &mut Output,
        reply: Reply,
    ) -> bool {
        if !self.needs_switch() {
            return false;
        }
        let config = Rc::clone(&self.config);
        let user = self.client.identity.user;
        let Some(upstream) = config.upstream_for(user) else {
            return false;
        };
        upstream.append_auth_command(out.owned(input));
        self.server.stash_pending += 1;
        self.client.upstream.logged_in_as(&config, user);
        self.client.upstream.switching = true;
        let name = config.users().user_name(user.unwrap_or(UserId::DEFAULT));
        let identity = match config.own_upstream(user) {
            Some(_) => format!("the server identity of user '{name}'"),
            None => "the top-level upstream credentials".to_owned(),
        };
        self.send_marker(
            input,
            out,
            Action::Reauthenticated {
                reply,
                identity: identity.into(),
            },
        );
        true
    }
}
