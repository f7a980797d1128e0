//! The session's invariants, checked over an arbitrary exchange.
//!
//! [`check_exchange`] decodes its input (with `arbitrary`) into a setup and
//! a script of operations: client commands (well-formed, inline, raw bytes,
//! logins), the host handing the session a chunk of what the client or the
//! server sent (of a script-chosen size), pub/sub messages, a server that
//! goes away. It plays them through a [`Session`] wired to a tagged
//! [`ModelRedis`], the way Envoy would (including pausing the client's
//! stream and releasing held bytes), and after every step checks:
//!
//! 1. before the client has authenticated, nothing reaches the server but
//!    the proxy's own commands (its `AUTH`, markers, `QUIT`);
//! 2. no client credential reaches the server: every `AUTH` the server gets
//!    is the proxy's, no `HELLO` it gets carries a client password;
//! 3. every reply the server sends to a client command reaches the client
//!    exactly once and in order (tags), and no marker's reply ever does;
//!    once everything is delivered, all of them have, unless the
//!    connection ended (closed, or raw replication);
//! 4. the bytes the session holds stay within [`HELD_BOUND`] plus a few
//!    times the largest chunk it was given.
//!
//! The client passwords are long random strings the fuzzer cannot find
//! (the session only ever compares their SHA-256 digests); only the script's
//! `Login` operations know them, and only in the setups that allow logins.

use std::rc::Rc;

use arbitrary::{Arbitrary, Unstructured};

use super::model::{ModelRedis, TAG};
use crate::config::Config;
use crate::resp::output::Verdict;
use crate::resp::reply::ReplyFramer;
use crate::resp::write_command;
use crate::session::marker::{self, MarkerKey};
use crate::session::{Close, KEY_LEN, Pause, Session, SessionEvent};

const CLIENT_PASSWORD: &[u8] = b"J6v#rT9!qLw2-client-secret-x81Zp";
const ALICE_PASSWORD: &[u8] = b"aL1ce-7Hq$Zm0-secret-4Ttw9Kx2vB";
const SERVER_PASSWORD: &[u8] = b"server-secret";
const KEY: [u8; KEY_LEN] = [0x3c; KEY_LEN];
/// What a session may hold beyond a few chunks' worth (see the README's
/// "What a connection costs").
pub const HELD_BOUND: usize = 4 * 1024 * 1024;
/// Operations played from one input, at most.
const MAX_OPS: usize = 512;

/// Who the clients are.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    /// Client-side users whose passwords the script never sends.
    Strangers,
    /// Client-side users; `Login` sends their passwords.
    Users,
    /// No `downstream`: `AUTH` goes to the server.
    NoDownstream,
    /// A `nopass` default user: in from the start.
    NopassDefault,
    /// Like `Users`, but alice's ACL leaves out some keys, channels and
    /// commands, and the default user is read-only: the ACL gate holds,
    /// refuses and lets through.
    Restricted,
}

impl Setup {
    fn config(self) -> Result<Rc<Config>, Violation> {
        let users = format!(
            r#""password": "{}", "users": ["user alice on >{} ~* &* +@all"]"#,
            String::from_utf8_lossy(CLIENT_PASSWORD),
            String::from_utf8_lossy(ALICE_PASSWORD)
        );
        let upstream = r#""upstream": {"password": "server-secret"}"#;
        let json = match self {
            Self::Strangers | Self::Users => {
                format!(r#"{{"downstream": {{{users}, "max_auth_failures": 0}}, {upstream}}}"#)
            }
            Self::NoDownstream => format!("{{{upstream}}}"),
            Self::NopassDefault => format!(
                r#"{{"downstream": {{"users": ["user default on nopass ~* &* +@all"]}}, {upstream}}}"#
            ),
            Self::Restricted => format!(
                r#"{{"downstream": {{"users": [
                    "user default on >{} ~* &* -@all +@read +@connection",
                    "user alice on >{} ~k* ~f* &n* -@all +@read +@write +@transaction +@pubsub +@connection -setrange (~s* +set)"],
                    "max_auth_failures": 0}}, {upstream}}}"#,
                String::from_utf8_lossy(CLIENT_PASSWORD),
                String::from_utf8_lossy(ALICE_PASSWORD)
            ),
        };
        match crate::config::parse(json.as_bytes(), &|_| None) {
            Ok(parsed) => Ok(Rc::new(parsed.config)),
            Err(err) => violation(format!("the {self:?} setup does not parse: {err}")),
        }
    }

    fn owns_identities(self) -> bool {
        self != Self::NoDownstream
    }
}

/// Commands worth sending often.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Known {
    Ping,
    PingArg,
    Echo,
    Get,
    Set,
    Multi,
    Exec,
    Discard,
    Reset,
    Quit,
    Subscribe,
    Unsubscribe,
    ReplyOff,
    ReplyOn,
    ReplySkip,
    Hello2,
    Hello3,
    Sync,
    AuthWrong,
    HelloAuthWrong,
    Post,
    Unknown,
}

impl Known {
    fn bytes(self) -> Vec<u8> {
        let argv: &[&[u8]] = match self {
            Self::Ping => &[b"PING"],
            Self::PingArg => &[b"PING", b"x"],
            Self::Echo => &[b"ECHO", b"v"],
            Self::Get => &[b"GET", b"k"],
            Self::Set => &[b"SET", b"k", b"v"],
            Self::Multi => &[b"MULTI"],
            Self::Exec => &[b"EXEC"],
            Self::Discard => &[b"DISCARD"],
            Self::Reset => &[b"RESET"],
            Self::Quit => &[b"QUIT"],
            Self::Subscribe => &[b"SUBSCRIBE", b"ch"],
            Self::Unsubscribe => &[b"UNSUBSCRIBE"],
            Self::ReplyOff => &[b"CLIENT", b"REPLY", b"OFF"],
            Self::ReplyOn => &[b"CLIENT", b"REPLY", b"ON"],
            Self::ReplySkip => &[b"CLIENT", b"REPLY", b"SKIP"],
            Self::Hello2 => &[b"HELLO", b"2"],
            Self::Hello3 => &[b"HELLO", b"3"],
            Self::Sync => &[b"SYNC"],
            Self::AuthWrong => &[b"AUTH", b"wrong"],
            Self::HelloAuthWrong => &[b"HELLO", b"3", b"AUTH", b"alice", b"wrong"],
            Self::Post => return b"POST / HTTP/1.1\r\n".to_vec(),
            Self::Unknown => &[b"NOSUCH", b"a"],
        };
        let mut out = Vec::new();
        write_command(&mut out, argv);
        out
    }
}

/// A successful login, in one of its forms.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Login {
    Password,
    DefaultUser,
    Alice,
    HelloAlice,
    HelloDefault,
}

impl Login {
    fn bytes(self, real: bool) -> Vec<u8> {
        let (client, alice): (&[u8], &[u8]) = if real {
            (CLIENT_PASSWORD, ALICE_PASSWORD)
        } else {
            (b"not-the-password", b"not-alices-password")
        };
        let argv: Vec<&[u8]> = match self {
            Self::Password => vec![b"AUTH", client],
            Self::DefaultUser => vec![b"AUTH", b"default", client],
            Self::Alice => vec![b"AUTH", b"alice", alice],
            Self::HelloAlice => vec![b"HELLO", b"3", b"AUTH", b"alice", alice],
            Self::HelloDefault => vec![b"HELLO", b"2", b"AUTH", b"default", client],
        };
        let mut out = Vec::new();
        write_command(&mut out, &argv);
        out
    }
}

/// One step of a script.
#[derive(Arbitrary, Clone, Debug)]
enum Op {
    Known(Known),
    Command(Vec<Vec<u8>>),
    Inline(Vec<u8>),
    Raw(Vec<u8>),
    Login(Login),
    /// The host hands the session up to this many bytes the client sent.
    ClientChunk(u16),
    /// The host hands the session up to this many bytes the server sent.
    ServerChunk(u16),
    Publish,
    /// The server goes away (after what it already sent).
    ServerGone,
}

#[derive(Arbitrary, Debug)]
struct Script {
    setup: Setup,
    ops: Vec<Op>,
}

/// An invariant that did not hold.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation(pub String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Plays the exchange `data` decodes to and checks the invariants.
pub fn check_exchange(data: &[u8]) -> Result<(), Violation> {
    let Ok(script) = Script::arbitrary_take_rest(Unstructured::new(data)) else {
        return Ok(());
    };
    let mut rig = Rig::new(script.setup)?;
    for op in script.ops.iter().take(MAX_OPS) {
        if rig.ended {
            break;
        }
        rig.play(op)?;
    }
    rig.settle()
}

/// A session between a scripted client and the model, wired as Envoy wires
/// a network filter.
struct Rig {
    setup: Setup,
    session: Session,
    server: ModelRedis,
    /// Written by the client, not yet read by the host.
    from_client: Vec<u8>,
    /// The session has held the client's stream (the host paused it).
    paused: bool,
    /// Written by the server, not yet read by the host.
    from_server: Vec<u8>,
    server_gone: bool,
    to_client: Vec<u8>,
    ever_authenticated: bool,
    /// The session closed the connection (or it went raw).
    ended: bool,
    max_chunk: usize,
}

impl Rig {
    fn new(setup: Setup) -> Result<Self, Violation> {
        let config = setup.config()?;
        let ever_authenticated = config.users().authenticated_on_connect();
        Ok(Self {
            setup,
            session: Session::new(config, KEY),
            server: ModelRedis::tagged(SERVER_PASSWORD),
            from_client: Vec::new(),
            paused: false,
            from_server: Vec::new(),
            server_gone: false,
            to_client: Vec::new(),
            ever_authenticated,
            ended: false,
            max_chunk: 1,
        })
    }

    fn play(&mut self, op: &Op) -> Result<(), Violation> {
        match op {
            Op::Known(known) => self.from_client.extend(known.bytes()),
            Op::Command(args) => {
                let args: Vec<&[u8]> = args.iter().take(12).map(|a| cut(a, 64)).collect();
                write_command(&mut self.from_client, &args);
            }
            Op::Inline(line) => {
                self.from_client.extend_from_slice(cut(line, 256));
                self.from_client.extend_from_slice(b"\r\n");
            }
            Op::Raw(bytes) => self.from_client.extend_from_slice(cut(bytes, 512)),
            Op::Login(login) => {
                let real = matches!(self.setup, Setup::Users | Setup::Restricted);
                self.from_client.extend(login.bytes(real));
            }
            Op::ClientChunk(size) => self.client_chunk(usize::from(*size).max(1))?,
            Op::ServerChunk(size) => self.server_chunk(usize::from(*size).max(1))?,
            Op::Publish => {
                if let Some(message) = self.server.publish(b"news") {
                    if !self.server_gone {
                        self.from_server.extend(message);
                    }
                }
            }
            Op::ServerGone => self.server_gone = true,
        }
        Ok(())
    }

    fn client_chunk(&mut self, size: usize) -> Result<(), Violation> {
        if self.from_client.is_empty() {
            return Ok(());
        }
        let chunk: Vec<u8> = self
            .from_client
            .drain(..size.min(self.from_client.len()))
            .collect();
        self.max_chunk = self.max_chunk.max(chunk.len());
        let step = self.session.on_client_data(&chunk);
        let upstream = verdict_bytes(step.verdict, &chunk);
        match step.pause {
            Pause::No => {}
            Pause::Start => self.paused = true,
            // The session took the chunk: nothing may pass.
            Pause::Keep if !self.paused || !upstream.is_empty() => {
                return violation("a held client stream let bytes through");
            }
            Pause::Keep => {}
        }
        if matches!(step.close, Close::AfterWrite | Close::Now) {
            self.ended = true;
        }
        if self
            .session
            .drain_events()
            .any(|e| e == SessionEvent::AuthSucceeded)
        {
            self.ever_authenticated = true;
        }
        self.upstream(&upstream)?;
        self.session.trim();
        self.check_held()
    }

    fn server_chunk(&mut self, size: usize) -> Result<(), Violation> {
        if self.from_server.is_empty() {
            return Ok(());
        }
        let chunk: Vec<u8> = self
            .from_server
            .drain(..size.min(self.from_server.len()))
            .collect();
        self.max_chunk = self.max_chunk.max(chunk.len());
        let step = self.session.on_server_data(&chunk);
        let to_client = verdict_bytes(step.verdict, &chunk);
        let released = step.release.map(<[u8]>::to_vec);
        if matches!(step.close, Close::AfterWrite | Close::Now) {
            self.ended = true;
        }
        self.to_client.extend(to_client);
        if let Some(released) = released {
            if !self.paused {
                return violation("bytes released while nothing was held");
            }
            self.upstream(&released)?;
        }
        self.session.trim();
        if self.server_gone && self.from_server.is_empty() {
            // The host's end of the server's stream.
            if self.session.on_server_closed() != Close::No {
                self.ended = true;
            }
        }
        self.check_held()
    }

    /// Hands the session's upstream bytes to the model and checks what it
    /// has received so far.
    fn upstream(&mut self, bytes: &[u8]) -> Result<(), Violation> {
        if self.server_gone {
            return Ok(());
        }
        let replies = self.server.feed(bytes);
        self.from_server.extend(replies);
        if self.server.replicating {
            self.ended = true;
        }
        for received in &self.server.received {
            if !self.ever_authenticated && !received.from_proxy {
                return violation(format!(
                    "before authentication the server got {:?}",
                    shown(&received.argv)
                ));
            }
            if self.setup.owns_identities() {
                check_credentials(&received.argv)?;
            }
        }
        Ok(())
    }

    fn check_held(&self) -> Result<(), Violation> {
        let held = self.session.held_bytes();
        if held > HELD_BOUND + 4 * self.max_chunk {
            return violation(format!("the session holds {held} bytes"));
        }
        Ok(())
    }

    /// Delivers everything still in flight, then checks the replies.
    fn settle(mut self) -> Result<(), Violation> {
        for _ in 0..10_000 {
            if self.ended {
                break;
            }
            if !self.from_server.is_empty() {
                self.server_chunk(usize::MAX)?;
            } else if !self.from_client.is_empty() && !self.server.closed {
                self.client_chunk(usize::MAX)?;
            } else {
                break;
            }
        }
        self.check_replies()
    }

    fn check_replies(&self) -> Result<(), Violation> {
        let key = MarkerKey::new(KEY);
        let mut framer = ReplyFramer::new();
        let mut pos = 0;
        let mut start = 0;
        while pos < self.to_client.len() {
            match framer.advance(&self.to_client, &mut pos) {
                Ok(true) => {
                    let frame = self.to_client.get(start..pos).unwrap_or_default();
                    if let Some((id, mac)) = marker::parse_reply(frame) {
                        if marker::same_mac(&key.mac(id), &mac) {
                            return violation(format!("marker {id}'s reply reached the client"));
                        }
                    }
                    start = pos;
                }
                Ok(false) => {}
                // Past a replication switch the stream is not RESP.
                Err(_) if self.server.replicating => break,
                Err(error) => return violation(format!("the client got invalid RESP: {error}")),
            }
        }
        let received = tags(&self.to_client);
        let sent = &self.server.tags_sent;
        if sent.get(..received.len()) != Some(&received[..]) {
            return violation(format!(
                "replies out of order, lost or repeated: sent {sent:?}, the client got {received:?}"
            ));
        }
        let complete = !self.ended && !self.server.closed && !self.server_gone;
        if complete && received.len() != sent.len() {
            return violation(format!(
                "replies lost: sent {sent:?}, the client got {received:?}"
            ));
        }
        Ok(())
    }
}

/// No client credential in what the server got.
fn check_credentials(argv: &[Vec<u8>]) -> Result<(), Violation> {
    let name = argv.first().map(Vec::as_slice).unwrap_or_default();
    if name.eq_ignore_ascii_case(b"auth") && argv != [b"AUTH".to_vec(), SERVER_PASSWORD.to_vec()] {
        return violation(format!("the server got the client's {:?}", shown(argv)));
    }
    let secret = |a: &Vec<u8>| a.as_slice() == CLIENT_PASSWORD || a.as_slice() == ALICE_PASSWORD;
    if name.eq_ignore_ascii_case(b"hello") && argv.iter().any(secret) {
        return violation("the server got a HELLO with a client password");
    }
    Ok(())
}

/// The tags of the tagged replies in `stream`, in order.
fn tags(stream: &[u8]) -> Vec<u64> {
    let mut found = Vec::new();
    let mut rest = stream;
    while let Some(at) = find(rest, TAG) {
        rest = rest.get(at + TAG.len()..).unwrap_or_default();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let number = rest.get(..digits).unwrap_or_default();
        if let Some(tag) = crate::resp::parse_redis_int(number) {
            found.push(u64::try_from(tag).unwrap_or(u64::MAX));
        }
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn verdict_bytes(verdict: Verdict<'_>, input: &[u8]) -> Vec<u8> {
    match verdict {
        Verdict::Unchanged => input.to_vec(),
        Verdict::Replace(bytes) => bytes.to_vec(),
    }
}

fn cut(bytes: &[u8], max: usize) -> &[u8] {
    bytes.get(..max).unwrap_or(bytes)
}

fn shown(argv: &[Vec<u8>]) -> Vec<String> {
    argv.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

fn violation<T>(what: impl Into<String>) -> Result<T, Violation> {
    Err(Violation(what.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_session_holds_every_invariant() {
        let mut rig = Rig::new(Setup::Users).unwrap();
        let script = [
            Op::Known(Known::Get),
            Op::Login(Login::Alice),
            Op::Known(Known::Echo),
            Op::Known(Known::Subscribe),
            Op::ClientChunk(7),
            Op::ServerChunk(3),
            Op::ClientChunk(1000),
            Op::Publish,
            Op::Known(Known::Reset),
            Op::Known(Known::Ping),
        ];
        for op in &script {
            rig.play(op).unwrap();
        }
        rig.settle().unwrap();
    }

    #[test]
    fn a_leak_is_caught() {
        assert!(check_credentials(&[b"AUTH".to_vec(), CLIENT_PASSWORD.to_vec()]).is_err());
        assert!(check_credentials(&[b"AUTH".to_vec(), SERVER_PASSWORD.to_vec()]).is_ok());
        let stream = [TAG, b"1", b"..", TAG, b"0"].concat();
        assert_eq!(tags(&stream), [1, 0]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        #[test]
        fn arbitrary_exchanges_hold_the_invariants(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
        ) {
            if let Err(v) = check_exchange(&data) {
                proptest::prop_assert!(false, "{}", v);
            }
        }
    }
}
