//! The ACL gate: what becomes of a command from a client whose user is
//! not allowed everything.
//!
//! Redis judges a command in this order (`processCommand`): `QUIT`,
//! existence, arity, protected commands, authentication, `MULTI`'s
//! no-multi rule, then the ACL. The gate keeps that order, deciding as
//! early as the command's bytes allow: once its name (and subcommand) are
//! known for the first checks, and once the arguments the ACL check reads
//! have arrived ([`command::args_needed`]) for the last. Until then the
//! command is held (bounded by [`HOLD_MAX`]); a command the check allows
//! is forwarded, held bytes first, and the rest streams.
//!
//! A refused command never reaches the server: its reply is written by a
//! marker, which Redis rejects as an unknown command. Inside `MULTI` that
//! rejection also marks the server's transaction as failed, so the
//! client's `EXEC` is answered `-EXECABORT` by the server, as Redis would
//! answer it.

use crate::acl::{self, Denial, Permissions};
use crate::command::{self, CommandError, CommandFlags, CommandSpec, ServerVersion, c_str};
use crate::resp::request::{Args, HOLD_MAX, Head};

/// The `SORT` options only a user with unrestricted read access may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SortOption {
    By,
    Get,
}

/// [`check`]'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gate {
    /// Let it through.
    Pass,
    /// Hold it until this many arguments are complete.
    Wait(usize),
    /// Refuse it; the reply is written once the command has been read
    /// ([`write_refusal`]).
    Refuse(Refusal),
}

/// Why a command is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Unknown command or subcommand, or wrong arity: Redis's own error.
    Command,
    /// The ACL says no to `spec`.
    Denied {
        spec: &'static CommandSpec,
        denial: Denial,
    },
    /// `SORT … BY`/`GET` for a user without unrestricted read access.
    SortOption(SortOption),
    /// The arguments the check needs come after more than [`HOLD_MAX`]
    /// bytes of others.
    TooLarge(&'static CommandSpec),
}

/// Decides what becomes of the command `head` offers, which the session
/// looked up as `base` (`None`: no such command), for a client whose user
/// has `permissions` (not full) and who is `in_multi`.
pub(super) fn check(
    permissions: &Permissions,
    head: &Head<'_>,
    base: Option<&'static CommandSpec>,
    in_multi: bool,
    scratch: &mut acl::Scratch,
) -> Gate {
    let args = head.args;
    let have = head.complete_args;
    let Some(name) = head.name else {
        // No command is named like that.
        return Gate::Refuse(Refusal::Command);
    };
    // QUIT is answered before anything else is looked at (`strcasecmp`).
    if c_str(name).eq_ignore_ascii_case(b"quit") {
        return Gate::Pass;
    }
    let c_name = c_str(name);
    if c_name.eq_ignore_ascii_case(b"host:") || c_name.eq_ignore_ascii_case(b"post") {
        // The server closes the connection; let it.
        return Gate::Pass;
    }
    let version = permissions.version();
    let Some(base) = base else {
        return Gate::Refuse(Refusal::Command);
    };
    let spec = if base.is_container() && head.argc >= 2 {
        if have < 2 {
            return wait_or_refuse(2, head, base);
        }
        match args
            .whole(1)
            .and_then(|sub| base.lookup_subcommand_for(sub, version))
        {
            Some(spec) => spec,
            None => return Gate::Refuse(Refusal::Command),
        }
    } else {
        base
    };
    if !spec.arity_accepts(head.argc) {
        return Gate::Refuse(Refusal::Command);
    }
    if in_multi && spec.flags.contains(CommandFlags::NO_MULTI) {
        // The server refuses it ("Command not allowed inside a
        // transaction") before looking at users.
        return Gate::Pass;
    }
    // The command bit (and first argument) first: a command the user may
    // not run at all is refused without waiting for its keys.
    let needed = if matches!(spec.name, "sort" | "sort_ro") {
        // Its BY/GET options are checked too (see sort_options).
        head.argc
    } else {
        command::args_needed(spec, head.argc).max(head.argc.min(2))
    };
    let known = have.min(needed);
    // Most commands need a few arguments: those are borrowed on the stack,
    // not collected into an allocation per command.
    let mut few: [&[u8]; 8] = [&[]; 8];
    let many: Vec<&[u8]>;
    let argv: &[&[u8]] = match few.get_mut(..known) {
        Some(slots) => {
            for (i, slot) in slots.iter_mut().enumerate() {
                *slot = args.get(i).unwrap_or_default();
            }
            slots
        }
        None => {
            many = (0..known)
                .map(|i| args.get(i).unwrap_or_default())
                .collect();
            &many
        }
    };
    let whole = |i: usize| args.is_whole(i);
    // (Unless a first argument could still allow it: `+select|0`.)
    let first_arg_pending = known < 2 && head.argc >= 2 && permissions.has_first_args(spec);
    let verdict = permissions.check_command(spec, &acl::Argv { args: argv, whole });
    if let (Err(denial), false) = (verdict, first_arg_pending) {
        return refuse(spec, denial);
    }
    if have < needed {
        return wait_or_refuse(needed, head, spec);
    }
    let argv = acl::Argv { args: argv, whole };
    match permissions.check(spec, &argv, scratch) {
        Ok(()) => sort_options(permissions, spec, &argv, scratch),
        Err(denial) => refuse(spec, denial),
    }
}

/// `SORT`'s own check (`sortCommandGeneric`): its `BY <pattern with *>`
/// and `GET` options read keys the key specs cannot name, so Redis allows
/// them only to a user with unrestricted read access for the command. The
/// options are walked as Redis walks them: an earlier option error is the
/// server's to report.
fn sort_options<F: Fn(usize) -> bool>(
    permissions: &Permissions,
    spec: &'static CommandSpec,
    argv: &acl::Argv<'_, F>,
    scratch: &mut acl::Scratch,
) -> Gate {
    let readonly = match spec.name {
        "sort" => false,
        "sort_ro" => true,
        _ => return Gate::Pass,
    };
    let args = argv.args;
    let is = |i: usize, word: &[u8]| {
        args.get(i)
            .is_some_and(|a| c_str(a).eq_ignore_ascii_case(word))
    };
    let long = |i: usize| {
        args.get(i)
            .and_then(|a| crate::resp::parse_redis_int(a))
            .is_some()
    };
    let mut unrestricted = None;
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let option = if is(j, b"asc") || is(j, b"desc") || is(j, b"alpha") {
            None
        } else if is(j, b"limit") && left >= 2 {
            if !long(j + 1) || !long(j + 2) {
                return Gate::Pass;
            }
            j += 2;
            None
        } else if !readonly && is(j, b"store") && left >= 1 {
            j += 1;
            None
        } else if is(j, b"by") && left >= 1 {
            j += 1;
            let pattern = args.get(j).map(|a| c_str(a)).unwrap_or_default();
            pattern.contains(&b'*').then_some(SortOption::By)
        } else if is(j, b"get") && left >= 1 {
            j += 1;
            Some(SortOption::Get)
        } else {
            return Gate::Pass; // a syntax error: the server's
        };
        if let Some(option) = option {
            let allowed = *unrestricted
                .get_or_insert_with(|| permissions.has_unrestricted_read(spec, argv, scratch));
            if !allowed {
                return Gate::Refuse(Refusal::SortOption(option));
            }
        }
        j += 1;
    }
    Gate::Pass
}

/// A denied `DEBUG` / `MODULE LOAD` gets the ACL's answer too: that is
/// what Redis answers when the server allows them to the connection
/// (`enable-debug-command local` and the proxy on the same host, or `yes`);
/// with the default `no` Redis would name that option instead. Either way
/// the command does not run.
fn refuse(spec: &'static CommandSpec, denial: Denial) -> Gate {
    Gate::Refuse(Refusal::Denied { spec, denial })
}

fn wait_or_refuse(needed: usize, head: &Head<'_>, spec: &'static CommandSpec) -> Gate {
    if head.over_hold {
        Gate::Refuse(Refusal::TooLarge(spec))
    } else {
        Gate::Wait(needed)
    }
}

/// Appends the reply `version` gives to a command it refuses, read whole
/// into `args`, from `user` (a refused `EXEC` ends the transaction, and its
/// error says so).
pub(super) fn write_refusal(
    refusal: Refusal,
    args: &Args,
    version: ServerVersion,
    user: &[u8],
    out: &mut Vec<u8>,
) {
    let argv: Vec<&[u8]> = (0..args.argc())
        .map(|i| args.get(i).unwrap_or_default())
        .collect();
    match refusal {
        Refusal::Command => match command::resolve_for(&argv, version) {
            Err(error) => command::write_error_reply_for(error, &argv, version, out),
            // Not reached: the gate refused it for a reason resolve agrees
            // with. Say something true anyway.
            Ok(spec) => {
                command::write_error_reply_for(CommandError::WrongArity(spec), &argv, version, out);
            }
        },
        Refusal::Denied { spec, denial } => {
            command::write_noperm_reply(version, user, spec, denial.noperm(&argv), out);
        }
        Refusal::SortOption(option) => {
            out.extend_from_slice(match option {
                SortOption::By => b"-ERR BY",
                SortOption::Get => b"-ERR GET",
            });
            out.extend_from_slice(
                b" option of SORT denied due to insufficient ACL permissions.\r\n",
            );
        }
        Refusal::TooLarge(spec) => {
            out.extend_from_slice(b"-ERR the proxy cannot check the '");
            out.extend_from_slice(spec.name.as_bytes());
            out.extend_from_slice(
                b"' command: the arguments its ACL check needs come after more than ",
            );
            crate::resp::write_decimal(out, (HOLD_MAX / 1024) as u64);
            out.extend_from_slice(b" KiB of other arguments\r\n");
        }
    }
}

/// Whether `refusal` answers an `EXEC`: Redis then ends the transaction.
pub(super) fn ends_transaction(refusal: Refusal, args: &Args) -> bool {
    match refusal {
        Refusal::Denied { spec, .. } => is_exec(spec),
        Refusal::Command => args
            .get(0)
            .is_some_and(|name| name.eq_ignore_ascii_case(b"exec")),
        _ => false,
    }
}

fn is_exec(spec: &CommandSpec) -> bool {
    spec.name == "exec"
}
