//! `ACL` and `CONFIG SET` for a client of a proxy that owns the users.
//!
//! With `downstream` configured, the users a client sees are the proxy's,
//! not the server's: `ACL WHOAMI`, `USERS`, `LIST`, `GETUSER`, `CAT`,
//! `DRYRUN` and `LOG` are answered from the proxy's directory, in the
//! configured server's reply formats (`aclCommand` in `acl.c`; what changes
//! in 7.2 is in [`ServerTexts`](crate::command::ServerTexts)). What would change users or the
//! server's credentials (`ACL SETUSER`, `DELUSER`, `SAVE`, `LOAD`,
//! `CONFIG SET requirepass|aclfile`) is refused and never reaches the
//! server, where it would run with the proxy's own credentials. The rest
//! (`ACL HELP`, `ACL GENPASS`, other `CONFIG` subcommands) goes on.
//!
//! Whether the user may run these commands at all was decided before, by
//! the ACL gate, exactly as for any command.

use crate::acl::log::LogStore;
use crate::acl::{self, describe};
use crate::command::{self, AclCategories, ServerVersion, c_str};
use crate::resp::request::Args;
use crate::resp::{write_array_header, write_bulk, write_command, write_decimal};
use crate::users::{UserDirectory, UserId};

/// What becomes of a collected `ACL` or `CONFIG` command.
pub(super) enum Answer {
    /// Answer with this reply.
    Reply(Vec<u8>),
    /// Send this command to the server.
    Forward(Vec<u8>),
}

/// How replies are encoded: RESP3 has maps, sets and its own null.
#[derive(Clone, Copy)]
pub(super) struct Protocol {
    pub(super) resp3: bool,
}

impl Protocol {
    fn map(self, out: &mut Vec<u8>, pairs: usize) {
        if self.resp3 {
            out.push(b'%');
            write_decimal(out, pairs as u64);
            out.extend_from_slice(b"\r\n");
        } else {
            write_array_header(out, pairs * 2);
        }
    }

    fn set(self, out: &mut Vec<u8>, len: usize) {
        if self.resp3 {
            out.push(b'~');
            write_decimal(out, len as u64);
            out.extend_from_slice(b"\r\n");
        } else {
            write_array_header(out, len);
        }
    }

    /// `addReplyDouble` of a double already formatted (`%.17g`), as a bulk
    /// string in RESP2.
    fn double_text(self, out: &mut Vec<u8>, text: &str) {
        if self.resp3 {
            out.push(b',');
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        } else {
            write_bulk(out, text.as_bytes());
        }
    }

    fn integer(self, out: &mut Vec<u8>, value: u64) {
        out.push(b':');
        write_decimal(out, value);
        out.extend_from_slice(b"\r\n");
    }

    fn null(self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }
}

/// Decides what becomes of a collected `ACL` or `CONFIG` command from
/// `current`, a client of `users`.
pub(super) fn answer(
    users: &UserDirectory,
    current: UserId,
    args: &Args,
    protocol: Protocol,
    scratch: &mut acl::Scratch,
    log: &dyn LogStore,
) -> Answer {
    let mut out = Vec::new();
    if (0..args.argc()).any(|i| !args.is_whole(i)) {
        out.extend_from_slice(b"-ERR an argument is too long for the proxy to handle\r\n");
        return Answer::Reply(out);
    }
    let argv: Vec<&[u8]> = (0..args.argc())
        .map(|i| args.get(i).unwrap_or_default())
        .collect();
    let version = users.permissions_of(Some(current)).version();
    let spec = match command::resolve_for(&argv, version) {
        Ok(spec) => spec,
        Err(error) => {
            command::write_error_reply_for(error, &argv, version, &mut out);
            return Answer::Reply(out);
        }
    };
    let arg = |i: usize| argv.get(i).copied().unwrap_or_default();
    match spec.name {
        "acl|whoami" => write_bulk(&mut out, users.user_name(current).as_bytes()),
        "acl|users" => {
            let names = sorted_users(users);
            write_array_header(&mut out, names.len());
            for user in names {
                write_bulk(&mut out, user.name().as_bytes());
            }
        }
        "acl|list" => {
            let names = sorted_users(users);
            write_array_header(&mut out, names.len());
            for user in names {
                let line = format!("user {} {}", user.name(), user.describe());
                write_bulk(&mut out, line.as_bytes());
            }
        }
        "acl|getuser" => match users.find(arg(2)).and_then(|id| users.user(id)) {
            Some(user) => getuser(user, protocol, &mut out),
            None => protocol.null(&mut out),
        },
        "acl|cat" => cat(&argv, version, &mut out),
        "acl|dryrun" => dryrun(users, &argv, scratch, &mut out),
        // The server's log would show the proxy's own identity.
        "acl|log" => acl_log(&argv, log, protocol, version, &mut out),
        "acl|setuser" | "acl|deluser" | "acl|save" | "acl|load" => {
            out.extend_from_slice(b"-ERR ACL ");
            out.extend(spec.short_name().bytes().map(|b| b.to_ascii_uppercase()));
            out.extend_from_slice(
                b" is not available through the proxy: users are defined in the proxy's \
                  configuration (downstream.users)\r\n",
            );
        }
        "config|set" if sets_credentials(&argv) => {
            out.extend_from_slice(
                b"-ERR CONFIG SET requirepass and aclfile are not available through the \
                  proxy: it holds the server's credentials\r\n",
            );
        }
        _ => {
            write_command(&mut out, &argv);
            return Answer::Forward(out);
        }
    }
    Answer::Reply(out)
}

/// Users in `rax` order: by name, bytewise.
fn sorted_users(users: &UserDirectory) -> Vec<&crate::users::User> {
    let mut sorted: Vec<_> = users.users().iter().collect();
    sorted.sort_by(|a, b| a.name().as_bytes().cmp(b.name().as_bytes()));
    sorted
}

/// `CONFIG SET` naming `requirepass` or `aclfile` among its parameters.
fn sets_credentials(argv: &[&[u8]]) -> bool {
    argv.iter().skip(2).step_by(2).any(|param| {
        let param = c_str(param);
        param.eq_ignore_ascii_case(b"requirepass") || param.eq_ignore_ascii_case(b"aclfile")
    })
}

fn getuser(user: &crate::users::User, protocol: Protocol, out: &mut Vec<u8>) {
    protocol.map(out, 6);
    write_bulk(out, b"flags");
    let flags = user.flags();
    protocol.set(out, flags.len());
    for flag in flags {
        write_bulk(out, flag.as_bytes());
    }
    write_bulk(out, b"passwords");
    write_array_header(out, user.password_hashes().len());
    for hash in user.password_hashes() {
        write_bulk(out, hash.to_hex().as_bytes());
    }
    let permissions = user.permissions();
    selector_fields(permissions.root(), out);
    write_bulk(out, b"selectors");
    write_array_header(out, permissions.extra().len());
    for selector in permissions.extra() {
        protocol.map(out, 3);
        selector_fields(selector, out);
    }
}

/// `aclAddReplySelectorDescription`: commands, keys, channels.
fn selector_fields(selector: &acl::Selector, out: &mut Vec<u8>) {
    write_bulk(out, b"commands");
    write_bulk(out, describe::command_rules(selector).as_bytes());
    write_bulk(out, b"keys");
    write_bulk(out, describe::keys(selector).as_bytes());
    write_bulk(out, b"channels");
    write_bulk(out, describe::channels(selector).as_bytes());
}

fn cat(argv: &[&[u8]], version: ServerVersion, out: &mut Vec<u8>) {
    match argv {
        [_, _] => {
            write_array_header(out, command::ACL_CATEGORY_NAMES.len());
            for (name, _) in command::ACL_CATEGORY_NAMES {
                write_bulk(out, name.as_bytes());
            }
        }
        [_, _, category] => match AclCategories::from_name(c_str(category)) {
            Some(category) => {
                let names = describe::category_commands(category, version);
                write_array_header(out, names.len());
                for name in names {
                    write_bulk(out, name.as_bytes());
                }
            }
            None => {
                out.extend_from_slice(b"-ERR Unknown category '");
                let name = c_str(category);
                out.extend_from_slice(name.get(..128).unwrap_or(name));
                out.extend_from_slice(b"'\r\n");
            }
        },
        _ => subcommand_syntax_error(argv, out),
    }
}

/// `addReplySubcommandSyntaxError`.
fn subcommand_syntax_error(argv: &[&[u8]], out: &mut Vec<u8>) {
    let arg = |i: usize| c_str(argv.get(i).copied().unwrap_or_default());
    out.extend_from_slice(b"-ERR unknown subcommand or wrong number of arguments for '");
    let sub = arg(1);
    out.extend_from_slice(sub.get(..128).unwrap_or(sub));
    out.extend_from_slice(b"'. Try ");
    out.extend(arg(0).iter().map(u8::to_ascii_uppercase));
    out.extend_from_slice(b" HELP.\r\n");
}

/// `ACL DRYRUN <user> <command> [args…]`.
fn dryrun(users: &UserDirectory, argv: &[&[u8]], scratch: &mut acl::Scratch, out: &mut Vec<u8>) {
    let arg = |i: usize| argv.get(i).copied().unwrap_or_default();
    let Some(user) = users.find(arg(2)).and_then(|id| users.user(id)) else {
        out.extend_from_slice(b"-ERR User '");
        out.extend_from_slice(c_str(arg(2)));
        out.extend_from_slice(b"' not found\r\n");
        return;
    };
    let inner = argv.get(3..).unwrap_or_default();
    let version = user.permissions().version();
    // `lookupCommand`: the subcommand if the command has them and one is
    // given, else the command itself.
    let spec = command::lookup_command_for(arg(3), version).and_then(|base| match inner.get(1) {
        Some(sub) if base.is_container() => base.lookup_subcommand_for(sub, version),
        _ => Some(base),
    });
    let Some(spec) = spec else {
        out.extend_from_slice(b"-ERR Command '");
        out.extend_from_slice(c_str(arg(3)));
        out.extend_from_slice(b"' not found\r\n");
        return;
    };
    if !spec.arity_accepts(inner.len()) {
        out.extend_from_slice(b"-ERR wrong number of arguments for '");
        out.extend_from_slice(spec.name.as_bytes());
        out.extend_from_slice(b"' command\r\n");
        return;
    }
    let argv = acl::Argv {
        args: inner,
        whole: |_| true,
    };
    match user.permissions().check(spec, &argv, scratch) {
        Ok(()) => out.extend_from_slice(b"+OK\r\n"),
        Err(denial) => {
            let mut text = Vec::new();
            let name = user.name().as_bytes();
            command::write_dryrun_denial(version, name, spec, denial.noperm(inner), &mut text);
            write_bulk(out, &text);
        }
    }
}

/// `ACL LOG [count | RESET]`: 7 fields an entry in Redis 7.0, 10 from 7.2
/// on (`entry-id`, `timestamp-created`, `timestamp-last-updated` after the
/// others, integers, the times in milliseconds).
fn acl_log(
    argv: &[&[u8]],
    log: &dyn LogStore,
    protocol: Protocol,
    version: ServerVersion,
    out: &mut Vec<u8>,
) {
    let ids = version.texts().acl_log_entry_ids;
    let mut count: usize = 10;
    match argv {
        [_, _] => {}
        [_, _, arg] if c_str(arg).eq_ignore_ascii_case(b"reset") => {
            log.reset();
            out.extend_from_slice(b"+OK\r\n");
            return;
        }
        [_, _, arg] => match crate::resp::parse_redis_int(arg) {
            Some(n) => count = usize::try_from(n).unwrap_or(0),
            None => {
                out.extend_from_slice(b"-ERR value is not an integer or out of range\r\n");
                return;
            }
        },
        _ => return subcommand_syntax_error(argv, out),
    }
    let now = log.now_ms();
    let snapshot = log.read();
    let entries = snapshot.entries();
    let shown = entries.get(..count.min(entries.len())).unwrap_or_default();
    write_array_header(out, shown.len());
    for entry in shown {
        protocol.map(out, if ids { 10 } else { 7 });
        write_bulk(out, b"count");
        protocol.integer(out, entry.count);
        write_bulk(out, b"reason");
        write_bulk(out, entry.reason.name().as_bytes());
        write_bulk(out, b"context");
        write_bulk(
            out,
            if entry.in_multi {
                b"multi"
            } else {
                b"toplevel"
            },
        );
        write_bulk(out, b"object");
        write_bulk(out, &entry.object);
        write_bulk(out, b"username");
        write_bulk(out, &entry.username);
        write_bulk(out, b"age-seconds");
        let age = crate::acl::log::age_seconds_g17(now.saturating_sub(entry.time_ms));
        protocol.double_text(out, &age);
        write_bulk(out, b"client-info");
        write_bulk(out, &entry.client_info);
        if ids {
            write_bulk(out, b"entry-id");
            protocol.integer(out, entry.entry_id);
            write_bulk(out, b"timestamp-created");
            protocol.integer(out, entry.created_ms);
            write_bulk(out, b"timestamp-last-updated");
            protocol.integer(out, entry.time_ms);
        }
    }
}

/// `src/acl/testdata/acl_replies.json`: what each release answered
/// (`tools/verify_acl_replies.py`), against the same users built here.
#[cfg(test)]
mod recorded {
    use super::*;
    use crate::acl::log::{Entry, MemoryLog, Reason};
    use crate::resp::output::Output;
    use crate::resp::request::{Disposition, Event, RequestParser};
    use crate::session::auth::{self, Identity, Outcome};
    use crate::users::{User, UserDirectory, UserId, parse_acl_line_for};
    use serde_json::Value;

    fn latin1(v: &Value) -> Vec<u8> {
        v.as_str().unwrap().chars().map(|c| c as u8).collect()
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    }

    /// Runs `f` on the collected `Args` of `argv`.
    fn with_args<R>(argv: &[String], f: impl FnOnce(&Args) -> R) -> R {
        let mut input = Vec::new();
        let bytes: Vec<Vec<u8>> = argv
            .iter()
            .map(|a| a.chars().map(|c| c as u8).collect())
            .collect();
        write_command(&mut input, &bytes);
        let mut parser = RequestParser::new();
        let mut out = Output::default();
        out.begin();
        parser.begin_chunk();
        let mut pos = 0;
        assert!(matches!(
            parser.next(&input, &mut pos, &mut out, true),
            Event::Decide(_)
        ));
        parser.decide(&input, &mut out, Disposition::Collect);
        match parser.next(&input, &mut pos, &mut out, true) {
            Event::Command(args) => f(args),
            other => panic!("expected a command, got {other:?}"),
        }
    }

    fn directory(fixture: &Value, version: ServerVersion) -> UserDirectory {
        let secret = fixture["secret"].as_str().unwrap();
        let others = fixture["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|rules| {
                let line = format!("user {}", strings(rules).join(" "));
                parse_acl_line_for(&line, version).unwrap().user
            })
            .collect();
        UserDirectory::new(
            User::default_with_password_for(secret.as_bytes(), version),
            others,
        )
        .unwrap()
    }

    /// Redis 7.0 lists single-command rules in its command dict's order,
    /// which changes with the hash seed: each run of them is sorted (in
    /// every line, so in every bulk string; lengths stay the same).
    fn hash_order_normalised(reply: &[u8]) -> Vec<u8> {
        let text: String = reply.iter().map(|&b| b as char).collect();
        let lines: Vec<String> = text
            .split("\r\n")
            .map(|line| {
                let mut tokens: Vec<String> = line.split(' ').map(str::to_owned).collect();
                let single = |t: &str| {
                    (t.starts_with('+') || t.starts_with('-'))
                        && !t[1..].starts_with('@')
                        && t.len() > 1
                };
                let mut i = 0;
                while i < tokens.len() {
                    if !single(&tokens[i]) {
                        i += 1;
                        continue;
                    }
                    let start = i;
                    while i < tokens.len() && single(&tokens[i]) && !tokens[i].contains('(') {
                        let closes = tokens[i].ends_with(')');
                        i += 1;
                        if closes {
                            break;
                        }
                    }
                    let run = &mut tokens[start..i];
                    let closes = run.last().is_some_and(|t| t.ends_with(')'));
                    if closes {
                        run.last_mut().unwrap().pop();
                    }
                    run.sort();
                    if closes {
                        run.last_mut().unwrap().push(')');
                    }
                }
                tokens.join(" ")
            })
            .collect();
        lines.join("\r\n").chars().map(|c| c as u8).collect()
    }

    /// The elements of a flat array reply, sorted (for `ACL CAT <category>`).
    fn sorted_elements(reply: &[u8]) -> Vec<u8> {
        let text: String = reply.iter().map(|&b| b as char).collect();
        let mut parts: Vec<&str> = text.split("\r\n").collect();
        let head = parts.remove(0);
        let mut elements: Vec<String> = parts
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| format!("{}\r\n{}\r\n", c[0], c[1]))
            .collect();
        elements.sort();
        let mut out = format!("{head}\r\n");
        for e in elements {
            out.push_str(&e);
        }
        out.chars().map(|c| c as u8).collect()
    }

    fn show(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn run_acl(users: &UserDirectory, argv: &[String], resp3: bool, log: &MemoryLog) -> Vec<u8> {
        let mut scratch = acl::Scratch::default();
        with_args(argv, |args| {
            match answer(
                users,
                UserId::DEFAULT,
                args,
                Protocol { resp3 },
                &mut scratch,
                log,
            ) {
                Answer::Reply(bytes) => bytes,
                Answer::Forward(_) => panic!("{argv:?} was forwarded"),
            }
        })
    }

    /// The bulk string arguments of a RESP command.
    fn command_args(command: &[u8]) -> Vec<Vec<u8>> {
        let text: String = command.iter().map(|&b| b as char).collect();
        text.split("\r\n")
            .skip(1)
            .skip(1)
            .step_by(2)
            .map(|s| s.chars().map(|c| c as u8).collect())
            .collect()
    }

    #[test]
    fn matches_recorded_acl_replies() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../acl/testdata/acl_replies.json")).unwrap();
        // Every case of 7.0, and for a newer release those that differ.
        let key = |case: &Value| format!("{} {}", case["kind"], case["argv"]);
        let results = fixture["results"].as_array().unwrap();
        let mut cases = Vec::new();
        for version in ServerVersion::DATA {
            let of = |v: ServerVersion| {
                results
                    .iter()
                    .filter(move |c| c["server"].as_str() == Some(&v.to_string()))
            };
            let own: std::collections::HashMap<String, &Value> =
                of(version).map(|c| (key(c), c)).collect();
            let base: Vec<&Value> = of(ServerVersion::Redis70).collect();
            assert!(own.keys().all(|k| base.iter().any(|b| key(b) == *k)));
            for case in base {
                cases.push((version, *own.get(&key(case)).unwrap_or(&case)));
            }
        }
        let mut checked = [0usize; 5];
        for (version, case) in cases {
            let users = directory(&fixture, version);
            let argv = strings(&case["argv"]);
            let expected = latin1(&case["reply"]);
            let log = MemoryLog::default();
            let texts = version.texts();
            let (mut got, mut want) = match case["kind"].as_str().unwrap() {
                kind @ ("acl" | "acl3") => {
                    let mut got = run_acl(&users, &argv, kind == "acl3", &log);
                    if case["sorted"].as_bool() == Some(true) {
                        got = sorted_elements(&got);
                    }
                    (got, expected)
                }
                "log" => {
                    for event in fixture["log_events"].as_array().unwrap() {
                        let reason = match event[2].as_str().unwrap() {
                            "command" => Reason::Command,
                            "key" => Reason::Key,
                            "channel" => Reason::Channel,
                            _ => Reason::Auth,
                        };
                        let object = latin1(&event[3]);
                        let user = latin1(&event[0]);
                        let multi = event[4].as_bool().unwrap();
                        log.add(Entry::new(reason, multi, &object, &user, 0, b"ci"));
                    }
                    let resp3 = argv.last().map(String::as_str) == Some("resp3");
                    let got = run_acl(&users, &argv[..argv.len() - 1], resp3, &log);
                    (got, expected)
                }
                "hello" => {
                    let mut identity = Identity {
                        authenticated: false,
                        user: None,
                    };
                    let outcome = with_args(&argv, |args| {
                        auth::hello(&users, args, &mut identity, texts)
                    });
                    let whoami = latin1(&case["whoami"]);
                    let getname = latin1(&case["getname"]);
                    let mut name = None;
                    let got = match outcome {
                        Outcome::Reply(bytes) => bytes.to_vec(),
                        Outcome::ReplyOwned(bytes) => bytes,
                        Outcome::WrongPass => texts.wrongpass.to_vec(),
                        Outcome::Forward { command, .. } => {
                            let args = command_args(&command);
                            name = args
                                .iter()
                                .rposition(|a| a == b"SETNAME")
                                .and_then(|i| args.get(i + 1).cloned());
                            b"<hello map>".to_vec()
                        }
                    };
                    // Who the client is afterwards.
                    if whoami.starts_with(b"-NOAUTH") {
                        assert!(!identity.authenticated, "{version} {argv:?}");
                    } else {
                        assert!(identity.authenticated, "{version} {argv:?}");
                        let user = users.user_name(identity.user.unwrap());
                        if whoami.starts_with(b"$") {
                            assert_eq!(show(&whoami), format!("${}\r\n{user}\r\n", user.len()));
                        } else if texts.acl_log_entry_ids {
                            assert!(show(&whoami).contains(&format!("User {user} ")));
                        }
                    }
                    // The name it has: what the forwarded HELLO sets.
                    if getname == b"_\r\n" || getname == b"$-1\r\n" {
                        assert_eq!(name, None, "{version} {argv:?}");
                    } else if getname.starts_with(b"$") {
                        let n = name.clone().unwrap_or_default();
                        assert_eq!(
                            show(&getname),
                            format!("${}\r\n{}\r\n", n.len(), show(&n)),
                            "{version} {argv:?}"
                        );
                    }
                    (got, expected)
                }
                other => panic!("unknown kind {other}"),
            };
            if version == ServerVersion::Redis70 {
                got = hash_order_normalised(&got);
                want = hash_order_normalised(&want);
            }
            assert_eq!(show(&got), show(&want), "{version} {argv:?}");
            checked[version as usize] += 1;
        }
        let n = checked[0];
        assert!(n > 60);
        assert_eq!(checked, [n; 5]);
    }

    /// Drives a whole session (with the model server) on `input`, sent
    /// at once; returns what the client received.
    fn session_exchange(version: &str, input: &[u8]) -> String {
        use crate::resp::output::Verdict;
        use crate::session::{Pause, Session};
        let json = format!(
            r#"{{"server_version": "{version}", "downstream": {{"users": [
                "user alice on >alicepw ~k* +get +@connection +acl|log +acl|getuser -@all +GET +Acl|Log +acl|getuser +hello +auth"]}},
                "upstream": {{"password": "server-secret"}}}}"#
        );
        let parsed = crate::config::parse(json.as_bytes(), &|_| None).unwrap();
        let mut session = Session::new(std::rc::Rc::new(parsed.config), [0x5a; 32]);
        let mut server = crate::testkit::ModelRedis::new(b"server-secret");
        let apply = |verdict: Verdict<'_>, input: &[u8], sink: &mut Vec<u8>| match verdict {
            Verdict::Unchanged => sink.extend_from_slice(input),
            Verdict::Replace(bytes) => sink.extend_from_slice(bytes),
        };
        let mut to_client = Vec::new();
        let mut upstream = Vec::new();
        let step = session.on_client_data(input);
        if step.pause != Pause::Keep {
            apply(step.verdict, input, &mut upstream);
        }
        while !upstream.is_empty() {
            let replies = server.feed(&upstream);
            upstream.clear();
            let step = session.on_server_data(&replies);
            if let Some(released) = step.release {
                upstream.extend_from_slice(released);
            }
            apply(step.verdict, &replies, &mut to_client);
        }
        String::from_utf8_lossy(&to_client).into_owned()
    }

    /// Through a whole session: `HELLO`'s order, `ACL LOG`'s fields and
    /// `ACL GETUSER`'s rules follow the configured server.
    #[test]
    fn a_session_answers_in_the_configured_server_s_formats() {
        let input: &[u8] = b"HELLO 3 AUTH alice wrong BADOPT\r\nHELLO 2 AUTH alice alicepw\r\n\
                             GET other\r\nACL LOG\r\nACL GETUSER alice\r\n";
        let r70 = session_exchange("redis-7.0", input);
        assert!(
            r70.starts_with("-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
            "{r70}"
        );
        assert!(r70.contains("$11\r\nclient-info\r\n"), "{r70}");
        assert!(!r70.contains("entry-id"), "{r70}");
        assert!(
            r70.contains("*2\r\n*14\r\n$5\r\ncount\r\n:1\r\n$6\r\nreason\r\n$3\r\nkey\r\n"),
            "{r70}"
        );
        assert!(r70.contains("$5\r\nflags\r\n*1\r\n$2\r\non\r\n"), "{r70}");
        for version in ["redis-7.2", "redis-7.4", "valkey-7.2", "valkey-8.0"] {
            let got = session_exchange(version, input);
            assert!(
                got.starts_with("-ERR Syntax error in HELLO option 'BADOPT'\r\n"),
                "{version}: {got}"
            );
            // Nothing was tried: the log has the key denial only.
            assert!(
                got.contains("*1\r\n*20\r\n$5\r\ncount\r\n:1\r\n$6\r\nreason\r\n$3\r\nkey\r\n"),
                "{version}: {got}"
            );
            assert!(
                got.contains("$8\r\nentry-id\r\n:0\r\n$17\r\ntimestamp-created\r\n:"),
                "{version}: {got}"
            );
            assert!(
                got.contains("$5\r\nflags\r\n*2\r\n$2\r\non\r\n$16\r\nsanitize-payload\r\n"),
                "{version}: {got}"
            );
            assert!(
                got.contains("-@all +get +acl|log +acl|getuser +hello +auth\r\n"),
                "{version}: {got}"
            );
        }
    }
}
