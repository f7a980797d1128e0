//! `AUTH` and `HELLO`, answered by the filter against the client-side users.
//!
//! These follow `authCommand` and `helloCommand` step by step, so the
//! replies and the order of the checks are the configured server's
//! (`HELLO` orders them differently from Redis 7.2 on). The one
//! difference is that a successful `HELLO` is not answered here: it is
//! rebuilt without its `AUTH` option and sent to the server, which switches
//! the protocol and writes the reply.
//!
//! Nothing here writes a credential anywhere: arguments are read, hashed by
//! the user directory, and dropped.

use super::replies;
use crate::command::ServerTexts;
use crate::command::c_str;
use crate::resp::request::Args;
use crate::resp::{parse_redis_int, write_command};
use crate::users::{UserDirectory, UserId};

/// Who the client is, as far as the filter knows.
#[derive(Clone, Copy, Debug)]
pub struct Identity {
    pub authenticated: bool,
    pub user: Option<UserId>,
}

/// What to do with an `AUTH` or `HELLO`.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answer with these bytes.
    Reply(&'static [u8]),
    /// Answer with these bytes (formatted).
    ReplyOwned(Vec<u8>),
    /// The credentials were wrong: answer `WRONGPASS` and count a failure.
    WrongPass,
    /// Send this command to the server instead; `authenticated` if it
    /// carried good credentials.
    Forward {
        command: Vec<u8>,
        authenticated: bool,
    },
}

/// `AUTH [username] password`. The caller has checked the arity (at least
/// two arguments).
pub fn auth(users: &UserDirectory, args: &Args, identity: &mut Identity) -> Outcome {
    let argc = args.argc();
    if argc > 3 {
        return Outcome::Reply(replies::SYNTAX_ERROR);
    }
    let (username, password) = if argc == 2 {
        if users.default_user_is_nopass() {
            return Outcome::Reply(replies::AUTH_WITHOUT_PASSWORD);
        }
        (Some(&b"default"[..]), args.whole(1))
    } else {
        (args.whole(1), args.whole(2))
    };
    if authenticate(users, username, password, identity) {
        Outcome::Reply(replies::OK)
    } else {
        Outcome::WrongPass
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`, in
/// the configured server's order (`texts.hello_auth_after_options`):
///
/// - Redis 7.0: each option in turn, `AUTH` authenticating on the spot (a
///   later syntax error or bad name leaves the client authenticated);
/// - Redis 7.2 and later: every option parsed first (a syntax error or a
///   bad client name wins over bad credentials, and nothing is
///   authenticated then), then the last `AUTH` pair tried, and the last
///   name set only once authenticated.
pub fn hello(
    users: &UserDirectory,
    args: &Args,
    identity: &mut Identity,
    texts: &ServerTexts,
) -> Outcome {
    let argc = args.argc();
    let mut version = None;
    let mut next = 1;
    if argc >= 2 {
        let Some(v) = args.whole(1).and_then(parse_redis_int) else {
            return Outcome::Reply(replies::HELLO_BAD_VERSION);
        };
        if !(2..=3).contains(&v) {
            return Outcome::Reply(replies::NOPROTO);
        }
        version = args.whole(1);
        next = 2;
    }
    let late = texts.hello_auth_after_options;
    let mut names = Vec::new();
    let mut authenticated = false;
    // 7.2: where the last `AUTH` option is, tried after every option is
    // parsed.
    let mut last_auth: Option<usize> = None;
    let mut j = next;
    while j < argc {
        let more = argc - 1 - j;
        let option = args.get(j).unwrap_or_default();
        if is_option(option, b"AUTH") && more >= 2 {
            if late {
                last_auth = Some(j);
            } else {
                // Redis 7.0 authenticates right here, before looking at
                // the remaining options.
                if !authenticate(users, args.whole(j + 1), args.whole(j + 2), identity) {
                    return Outcome::WrongPass;
                }
                authenticated = true;
            }
            j += 3;
        } else if is_option(option, b"SETNAME") && more >= 1 {
            match args.whole(j + 1) {
                Some(name) if is_valid_client_name(name) => names.push(name),
                _ => return Outcome::Reply(replies::BAD_CLIENT_NAME),
            }
            j += 2;
        } else {
            let mut reply = Vec::new();
            replies::hello_syntax_error(option, &mut reply);
            return Outcome::ReplyOwned(reply);
        }
    }
    if let Some(at) = last_auth {
        if !authenticate(users, args.whole(at + 1), args.whole(at + 2), identity) {
            return Outcome::WrongPass;
        }
        authenticated = true;
    }
    if !identity.authenticated {
        return Outcome::Reply(texts.hello_noauth);
    }
    if late {
        // Only the last name is set (`clientname` is overwritten).
        let last = names.pop();
        names.clear();
        names.extend(last);
    }
    let mut parts: Vec<&[u8]> = vec![b"HELLO"];
    parts.extend(version);
    for name in names {
        parts.push(b"SETNAME");
        parts.push(name);
    }
    let mut command = Vec::new();
    write_command(&mut command, &parts);
    Outcome::Forward {
        command,
        authenticated,
    }
}

/// The user name a failed `AUTH` or `HELLO … AUTH` tried, for the ACL log:
/// `default` for `AUTH <password>`. For `HELLO`, the pair that failed: the
/// first failing one in Redis 7.0 (which tries each `AUTH` option as it
/// reads it), the last one from 7.2 on (which tries only the last).
pub fn tried_username(
    is_auth: bool,
    args: &Args,
    users: &UserDirectory,
    texts: &ServerTexts,
) -> Vec<u8> {
    if is_auth {
        let name = if args.argc() == 2 {
            Some(&b"default"[..])
        } else {
            args.get(1)
        };
        return name.unwrap_or_default().to_vec();
    }
    // The AUTH options, walked as `hello` walks them.
    let mut pairs = Vec::new();
    let mut j = 2;
    while j < args.argc() {
        let more = args.argc() - 1 - j;
        let option = args.get(j).unwrap_or_default();
        if is_option(option, b"AUTH") && more >= 2 {
            pairs.push(j + 1);
            j += 3;
        } else if is_option(option, b"SETNAME") && more >= 1 {
            j += 2;
        } else {
            break;
        }
    }
    let failed = if texts.hello_auth_after_options {
        pairs.last().copied()
    } else {
        pairs
            .iter()
            .copied()
            .find(|&at| {
                let (Some(name), Some(password)) = (args.whole(at), args.whole(at + 1)) else {
                    return true;
                };
                users.authenticate(name, password).is_err()
            })
            .or(pairs.last().copied())
    };
    failed
        .and_then(|at| args.get(at))
        .unwrap_or_default()
        .to_vec()
}

/// True when a `HELLO` must be answered here rather than sent on: it names
/// `AUTH` somewhere (so it may carry a client credential, which must never
/// reach the server), or an argument was too long to keep.
pub fn hello_needs_filter(args: &Args) -> bool {
    (1..args.argc())
        .any(|i| !args.is_whole(i) || args.get(i).is_some_and(|a| is_option(a, b"AUTH")))
}

/// Whether `arg` names the `HELLO` option `name`: Redis compares options
/// with `strcasecmp`, so up to a NUL byte (`AUTH\0x` is `AUTH`).
fn is_option(arg: &[u8], name: &[u8]) -> bool {
    c_str(arg).eq_ignore_ascii_case(name)
}

/// Redis's `clientSetName` charset: printable ASCII without spaces; the
/// empty name clears the name.
fn is_valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn authenticate(
    users: &UserDirectory,
    username: Option<&[u8]>,
    password: Option<&[u8]>,
    identity: &mut Identity,
) -> bool {
    // An argument too long to keep is longer than any configured name or
    // password, so it cannot match.
    let (Some(username), Some(password)) = (username, password) else {
        return false;
    };
    match users.authenticate(username, password) {
        Ok(user) => {
            identity.authenticated = true;
            identity.user = Some(user);
            true
        }
        Err(_) => false,
    }
}
