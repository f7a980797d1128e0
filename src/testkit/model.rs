//! A small model of a Redis server.
//!
//! [`ModelRedis`] parses what the session sends upstream like Redis does
//! and answers the way Redis 7.0 answers, for the commands the session
//! cares about: `AUTH` (against one server password), `HELLO`, `PING`,
//! `ECHO`, `GET`/`SET`, `QUIT`, `RESET`, `SUBSCRIBE`/`UNSUBSCRIBE`,
//! `MULTI`/`EXEC`/`DISCARD`, `CLIENT REPLY ON|OFF|SKIP`, `SYNC`, and
//! unknown commands (which is what markers are). Every command it receives
//! is recorded, so tests can check what reached the server.
//!
//! With [`ModelRedis::tagged`], replies to the client's own commands carry a
//! sequence tag ([`TAG`] and a number) where Redis would echo a value, so a
//! test can check that each reply reached the client exactly once and in
//! order.

use crate::resp::output::Output;
use crate::resp::request::{Event, RequestParser};
use crate::resp::{write_array_header, write_bulk, write_decimal};

/// What a tagged reply starts with: no client input can guess it.
pub const TAG: &[u8] = b"\x00tag-3f9c2e71\xff:";

/// Replies Redis 7.0 sends that the model needs.
const OK: &[u8] = b"+OK\r\n";
const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";
const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";

/// How the model answers the client's commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ReplyMode {
    #[default]
    On,
    Off,
    /// Set by `CLIENT REPLY SKIP`: the next command's reply is skipped.
    SkipNext,
    /// This command's reply is skipped.
    Skip,
}

/// One command as the model received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub argv: Vec<Vec<u8>>,
    /// Sent by the proxy itself: its `AUTH` with the server password, a
    /// marker (an unknown command named `era:...`), or `QUIT`.
    pub from_proxy: bool,
}

/// A Redis stand-in: bytes in, reply bytes out.
#[derive(Default)]
pub struct ModelRedis {
    parser: RequestParser,
    password: Vec<u8>,
    /// The connection is logged in.
    pub authenticated: bool,
    resp3: bool,
    channels: Vec<Vec<u8>>,
    in_multi: bool,
    queued: Vec<Vec<Vec<u8>>>,
    multi_failed: bool,
    reply: ReplyMode,
    values: Vec<(Vec<u8>, Vec<u8>)>,
    /// An error every known command gets after the existence check, like
    /// `-LOADING ...`, `-BUSY ...` or `-MASTERDOWN ...`.
    pub refusal: Option<Vec<u8>>,
    /// The connection is closed (after `QUIT`).
    pub closed: bool,
    /// `SYNC`/`PSYNC` was received: the model stops parsing.
    pub replicating: bool,
    /// Every command received, in order.
    pub received: Vec<Received>,
    tag_replies: bool,
    next_tag: u64,
    /// The tags sent, in order (with [`ModelRedis::tagged`]).
    pub tags_sent: Vec<u64>,
}

impl ModelRedis {
    /// A server with `requirepass <password>` (empty: no password).
    pub fn new(password: &[u8]) -> Self {
        Self {
            password: password.to_vec(),
            authenticated: password.is_empty(),
            ..Self::default()
        }
    }

    /// Like [`ModelRedis::new`], with tagged replies.
    pub fn tagged(password: &[u8]) -> Self {
        Self {
            tag_replies: true,
            ..Self::new(password)
        }
    }

    /// Stores a value, as `SET` would.
    pub fn set_value(&mut self, key: &[u8], value: &[u8]) {
        self.values.retain(|(k, _)| k != key);
        self.values.push((key.to_vec(), value.to_vec()));
    }

    /// A message published to the first channel subscribed to, if any, as
    /// this connection receives it (a RESP3 push, or a RESP2 array).
    pub fn publish(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let channel = self.channels.first()?;
        let mut out = vec![if self.resp3 { b'>' } else { b'*' }];
        out.extend_from_slice(b"3\r\n");
        write_bulk(&mut out, b"message");
        write_bulk(&mut out, channel);
        write_bulk(&mut out, payload);
        Some(out)
    }

    /// Feeds bytes the session sent upstream; returns the server's replies.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut replies = Vec::new();
        if self.closed || self.replicating {
            return replies;
        }
        let mut out = Output::default();
        out.begin();
        self.parser.begin_chunk();
        let mut pos = 0;
        while !self.closed && !self.replicating {
            match self.parser.next(bytes, &mut pos, &mut out, true) {
                Event::NeedMore => break,
                Event::Decide(_) => {
                    self.parser
                        .decide(bytes, &mut out, crate::resp::request::Disposition::Collect)
                }
                Event::Command(args) => {
                    let argv: Vec<Vec<u8>> = (0..args.argc())
                        .map(|i| args.get(i).unwrap_or_default().to_vec())
                        .collect();
                    self.run(argv, &mut replies);
                }
                Event::Empty | Event::Forwarded => {}
                Event::Error(error) => {
                    // Redis replies and closes.
                    error.reply(&mut replies);
                    self.closed = true;
                }
            }
        }
        self.parser.end_chunk(bytes);
        replies
    }

    fn is_proxy_command(&self, argv: &[Vec<u8>]) -> bool {
        let name = argv.first().map(Vec::as_slice).unwrap_or_default();
        (name.eq_ignore_ascii_case(b"auth") && argv.last() == Some(&self.password))
            || name.starts_with(b"era:")
            || (name.eq_ignore_ascii_case(b"quit") && argv.len() == 1)
    }

    fn run(&mut self, argv: Vec<Vec<u8>>, out: &mut Vec<u8>) {
        let from_proxy = self.is_proxy_command(&argv);
        self.received.push(Received {
            argv: argv.clone(),
            from_proxy,
        });
        // As Redis's call(): a SKIP set by the previous command applies to
        // this one; CLIENT REPLY ON clears OFF before it replies.
        let suppressed = self.reply != ReplyMode::On;
        if self.reply == ReplyMode::Skip {
            self.reply = ReplyMode::On;
        }
        let mut reply = Vec::new();
        let tags_before = self.tags_sent.len();
        self.execute(&argv, &mut reply);
        let turned_on =
            self.reply == ReplyMode::On && client_reply_mode(&argv) == Some(ReplyMode::On);
        if suppressed && !turned_on {
            self.tags_sent.truncate(tags_before);
        } else {
            out.extend_from_slice(&reply);
        }
        if self.reply == ReplyMode::SkipNext {
            self.reply = ReplyMode::Skip;
        }
    }

    fn execute(&mut self, argv: &[Vec<u8>], out: &mut Vec<u8>) {
        let name = String::from_utf8_lossy(argv.first().map(Vec::as_slice).unwrap_or_default())
            .to_ascii_lowercase();
        let arg = |i: usize| argv.get(i).map(Vec::as_slice).unwrap_or_default();
        // processCommand's order: existence, authentication, subscribed
        // mode, MULTI queueing.
        let known = matches!(
            name.as_str(),
            "auth"
                | "hello"
                | "ping"
                | "echo"
                | "get"
                | "set"
                | "quit"
                | "reset"
                | "subscribe"
                | "unsubscribe"
                | "multi"
                | "exec"
                | "discard"
                | "client"
                | "sync"
                | "psync"
        );
        if !known {
            unknown_command(argv, out);
            self.multi_failed |= self.in_multi;
            return;
        }
        if let Some(refusal) = &self.refusal {
            if !matches!(name.as_str(), "auth" | "quit") {
                out.extend_from_slice(refusal);
                return;
            }
        }
        if !self.authenticated && !matches!(name.as_str(), "auth" | "hello" | "quit" | "reset") {
            out.extend_from_slice(NOAUTH);
            self.multi_failed |= self.in_multi;
            return;
        }
        if !self.resp3
            && !self.channels.is_empty()
            && !matches!(
                name.as_str(),
                "subscribe" | "unsubscribe" | "ping" | "quit" | "reset"
            )
        {
            out.extend_from_slice(b"-ERR Can't execute '");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
            return;
        }
        if self.in_multi && matches!(name.as_str(), "sync" | "psync") {
            // Commands flagged no-multi.
            out.extend_from_slice(b"-ERR Command not allowed inside a transaction\r\n");
            self.multi_failed = true;
            return;
        }
        if self.in_multi
            && !matches!(
                name.as_str(),
                "exec" | "discard" | "multi" | "quit" | "reset"
            )
        {
            self.queued.push(argv.to_vec());
            out.extend_from_slice(b"+QUEUED\r\n");
            return;
        }
        match name.as_str() {
            "auth" => {
                if argv.len() == 2 && self.password.is_empty() {
                    out.extend_from_slice(b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n");
                } else if argv.last().map(Vec::as_slice) == Some(&self.password[..]) {
                    self.authenticated = true;
                    out.extend_from_slice(OK);
                } else {
                    out.extend_from_slice(WRONGPASS);
                }
            }
            "hello" => {
                if let Some(at) = argv.iter().position(|a| a.eq_ignore_ascii_case(b"auth")) {
                    if arg(at + 2) != self.password.as_slice() {
                        out.extend_from_slice(WRONGPASS);
                        return;
                    }
                    self.authenticated = true;
                }
                match arg(1) {
                    b"3" => self.resp3 = true,
                    b"2" => self.resp3 = false,
                    _ => {}
                }
                out.extend_from_slice(if self.resp3 { b"%2\r\n" } else { b"*4\r\n" });
                write_bulk(out, b"server");
                write_bulk(out, b"redis");
                write_bulk(out, b"proto");
                out.extend_from_slice(if self.resp3 { b":3\r\n" } else { b":2\r\n" });
            }
            "ping" => {
                let payload = if argv.len() > 1 {
                    arg(1).to_vec()
                } else {
                    Vec::new()
                };
                if !self.resp3 && !self.channels.is_empty() {
                    write_array_header(out, 2);
                    write_bulk(out, b"pong");
                    write_bulk(out, &payload);
                } else if argv.len() > 1 {
                    self.write_value(&payload, out);
                } else {
                    out.extend_from_slice(b"+PONG\r\n");
                }
            }
            "echo" => self.write_value(arg(1), out),
            "get" => match self.values.iter().find(|(k, _)| k.as_slice() == arg(1)) {
                Some((_, value)) => {
                    let value = value.clone();
                    self.write_value(&value, out);
                }
                None => out.extend_from_slice(b"$-1\r\n"),
            },
            "set" => {
                self.set_value(arg(1), arg(2));
                out.extend_from_slice(OK);
            }
            "quit" => {
                out.extend_from_slice(OK);
                self.closed = true;
            }
            "reset" => {
                *self = Self {
                    parser: std::mem::take(&mut self.parser),
                    password: std::mem::take(&mut self.password),
                    received: std::mem::take(&mut self.received),
                    values: std::mem::take(&mut self.values),
                    refusal: self.refusal.take(),
                    tag_replies: self.tag_replies,
                    next_tag: self.next_tag,
                    tags_sent: std::mem::take(&mut self.tags_sent),
                    ..Self::default()
                };
                self.authenticated = self.password.is_empty();
                out.extend_from_slice(b"+RESET\r\n");
            }
            "subscribe" | "unsubscribe" => self.subscription(&name, argv, out),
            "multi" => {
                self.in_multi = true;
                self.queued.clear();
                self.multi_failed = false;
                out.extend_from_slice(OK);
            }
            "exec" | "discard" if !self.in_multi => {
                out.extend_from_slice(b"-ERR ");
                out.extend_from_slice(name.to_ascii_uppercase().as_bytes());
                out.extend_from_slice(b" without MULTI\r\n");
            }
            "exec" => {
                self.in_multi = false;
                if self.multi_failed {
                    out.extend_from_slice(
                        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
                    );
                    return;
                }
                let queued = std::mem::take(&mut self.queued);
                write_array_header(out, queued.len());
                for command in queued {
                    if client_reply_mode(&command).is_some() {
                        // Redis would switch replies mid-EXEC and cut its
                        // reply short, which no client can parse; the model
                        // keeps its output well-formed.
                        out.extend_from_slice(OK);
                        continue;
                    }
                    self.execute(&command, out);
                }
            }
            "discard" => {
                self.in_multi = false;
                self.queued.clear();
                out.extend_from_slice(OK);
            }
            "client" => match client_reply_mode(argv) {
                Some(ReplyMode::On) => {
                    self.reply = ReplyMode::On;
                    out.extend_from_slice(OK);
                }
                Some(ReplyMode::Off) => self.reply = ReplyMode::Off,
                Some(_) if self.reply != ReplyMode::Off => self.reply = ReplyMode::SkipNext,
                Some(_) => {}
                None => self.write_value(b"client", out),
            },
            _ => {
                // SYNC/PSYNC: a bulk "RDB" and then a raw stream.
                self.replicating = true;
                out.extend_from_slice(b"+FULLRESYNC 0 0\r\n$3\r\nrdb");
            }
        }
    }

    /// A value reply: the value itself, or a tag in tagged mode.
    fn write_value(&mut self, value: &[u8], out: &mut Vec<u8>) {
        if self.tag_replies {
            let tag = self.next_tag;
            self.next_tag += 1;
            self.tags_sent.push(tag);
            let mut text = TAG.to_vec();
            write_decimal(&mut text, tag);
            write_bulk(out, &text);
        } else {
            write_bulk(out, value);
        }
    }

    fn subscription(&mut self, name: &str, argv: &[Vec<u8>], out: &mut Vec<u8>) {
        let subscribe = name == "subscribe";
        let mut targets: Vec<Vec<u8>> = argv.iter().skip(1).cloned().collect();
        if !subscribe && targets.is_empty() {
            targets = self.channels.clone();
            if targets.is_empty() {
                // One confirmation with a null channel.
                self.confirm(name, None, out);
                return;
            }
        }
        for channel in targets {
            if subscribe {
                if !self.channels.contains(&channel) {
                    self.channels.push(channel.clone());
                }
            } else {
                self.channels.retain(|c| *c != channel);
            }
            self.confirm(name, Some(&channel), out);
        }
    }

    fn confirm(&self, kind: &str, channel: Option<&[u8]>, out: &mut Vec<u8>) {
        out.push(if self.resp3 { b'>' } else { b'*' });
        write_decimal(out, 3);
        out.extend_from_slice(b"\r\n");
        write_bulk(out, kind.as_bytes());
        match channel {
            Some(channel) => write_bulk(out, channel),
            None => out.extend_from_slice(b"$-1\r\n"),
        }
        out.push(b':');
        write_decimal(out, self.channels.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
}

fn client_reply_mode(argv: &[Vec<u8>]) -> Option<ReplyMode> {
    let [name, sub, mode] = argv else {
        return None;
    };
    if !name.eq_ignore_ascii_case(b"client") || !sub.eq_ignore_ascii_case(b"reply") {
        return None;
    }
    if mode.eq_ignore_ascii_case(b"on") {
        Some(ReplyMode::On)
    } else if mode.eq_ignore_ascii_case(b"off") {
        Some(ReplyMode::Off)
    } else if mode.eq_ignore_ascii_case(b"skip") {
        Some(ReplyMode::SkipNext)
    } else {
        None
    }
}

/// Redis 7.0's unknown-command error (without its 128-byte cuts, which the
/// session's markers never reach).
fn unknown_command(argv: &[Vec<u8>], out: &mut Vec<u8>) {
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(argv.first().map(Vec::as_slice).unwrap_or_default());
    text.extend_from_slice(b"', with args beginning with: ");
    for arg in argv.iter().skip(1) {
        text.push(b'\'');
        text.extend_from_slice(arg);
        text.extend_from_slice(b"' ");
    }
    crate::resp::write_error(out, &text);
}
