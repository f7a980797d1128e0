//! `ACL` and `CONFIG SET` for a client of a proxy that owns the users.
//!
//! With `downstream` configured, the users a client sees are the proxy's,
//! not the server's: `ACL WHOAMI`, `USERS`, `LIST`, `GETUSER`, `CAT` and
//! `DRYRUN` are answered from the proxy's directory, in Redis 7.0's reply
//! formats (`aclCommand` in `acl.c`). What would change users or the
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

    /// `addReplyDouble`: `%.17g`, as a bulk string in RESP2.
    fn double(self, out: &mut Vec<u8>, value: f64) {
        let text = format_g17(value);
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
        "acl|log" => acl_log(&argv, log, protocol, &mut out),
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

/// `ACL LOG [count | RESET]`.
fn acl_log(argv: &[&[u8]], log: &dyn LogStore, protocol: Protocol, out: &mut Vec<u8>) {
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
        protocol.map(out, 7);
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
        protocol.double(out, now.saturating_sub(entry.time_ms) as f64 / 1000.0);
        write_bulk(out, b"client-info");
        write_bulk(out, &entry.client_info);
    }
}

/// C's `printf("%.17g", value)` for finite values.
fn format_g17(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let scientific = format!("{value:.16e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |digits: &str| -> String {
        if digits.contains('.') {
            digits
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        } else {
            digits.to_owned()
        }
    };
    if !(-4..17).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exponent.abs());
    }
    let decimals = usize::try_from(16 - exponent).unwrap_or(0);
    trim(&format!("{value:.decimals$}"))
}

#[cfg(test)]
mod tests {
    use super::format_g17;

    #[test]
    fn doubles_like_printf() {
        assert_eq!(format_g17(0.0), "0");
        assert_eq!(format_g17(1.5), "1.5");
        assert_eq!(format_g17(12.345), "12.345000000000001");
        assert_eq!(format_g17(0.001), "0.001");
        assert_eq!(format_g17(100.0), "100");
        assert_eq!(format_g17(1e20), "1e+20");
    }
}
