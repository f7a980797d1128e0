//! The ACL gate: what becomes of a command from a client whose user is
//! not allowed everything.
//!
//! Redis judges a command in this order (`processCommand`): `QUIT`,
//! existence, arity, protected commands, authentication, `MULTI`'s
//! no-multi rule, then the ACL. The gate keeps that order, deciding as
//! early as the command's bytes allow: once its name (and subcommand) are
//! known for the first checks, and once the arguments the ACL check reads
//! have arrived ([`keys::args_needed`]) for the last. Until then the
//! command is held (bounded by [`HOLD_MAX`]); a command the check allows
//! is forwarded, held bytes first, and the rest streams.
//!
//! A refused command never reaches the server: its reply is written by a
//! marker, which Redis rejects as an unknown command. Inside `MULTI` that
//! rejection also marks the server's transaction as failed, so the
//! client's `EXEC` is answered `-EXECABORT` by the server, as Redis would
//! answer it.

use crate::acl::{self, Denial, Permissions};
use crate::command::{self, CommandError, CommandFlags, CommandSpec, c_str};
use crate::resp::request::{Args, HOLD_MAX, Head};

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
    /// `DEBUG` / `MODULE LOAD`, which Redis refuses by default before it
    /// looks at users.
    Protected(&'static CommandSpec),
    /// The ACL says no.
    Denied(Denial),
    /// The arguments the check needs come after more than [`HOLD_MAX`]
    /// bytes of others.
    TooLarge(&'static CommandSpec),
}

/// Decides what becomes of the command `head` offers, for a client whose
/// user has `permissions` (not full) and who is `in_multi`.
pub(super) fn check(
    permissions: &Permissions,
    head: &Head<'_>,
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
    let Some(base) = command::lookup_command(name) else {
        return Gate::Refuse(Refusal::Command);
    };
    let spec = if base.is_container() && head.argc >= 2 {
        if have < 2 {
            return wait_or_refuse(2, head, base);
        }
        match args.whole(1).and_then(|sub| base.lookup_subcommand(sub)) {
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
    let needed = acl::args_needed(spec, head.argc).max(head.argc.min(2));
    let known = have.min(needed);
    let argv: Vec<&[u8]> = (0..known)
        .map(|i| args.get(i).unwrap_or_default())
        .collect();
    let whole = |i: usize| args.is_whole(i);
    let verdict = permissions.check_command(spec, &acl::Argv { args: &argv, whole });
    if let Err(denial) = verdict {
        return refuse(spec, denial);
    }
    if have < needed {
        return wait_or_refuse(needed, head, spec);
    }
    match permissions.check(spec, &acl::Argv { args: &argv, whole }, scratch) {
        Ok(()) => Gate::Pass,
        Err(denial) => refuse(spec, denial),
    }
}

fn refuse(spec: &'static CommandSpec, denial: Denial) -> Gate {
    if spec.flags.contains(CommandFlags::PROTECTED) {
        return Gate::Refuse(Refusal::Protected(spec));
    }
    Gate::Refuse(Refusal::Denied(denial))
}

fn wait_or_refuse(needed: usize, head: &Head<'_>, spec: &'static CommandSpec) -> Gate {
    if head.over_hold {
        Gate::Refuse(Refusal::TooLarge(spec))
    } else {
        Gate::Wait(needed)
    }
}

/// Appends the reply to a refused command, read whole into `args`.
/// `in_multi`: a refused `EXEC` ends the transaction, so its error says so.
pub(super) fn write_refusal(refusal: Refusal, args: &Args, out: &mut Vec<u8>) {
    match refusal {
        Refusal::Command => {
            let argv: Vec<&[u8]> = (0..args.argc())
                .map(|i| args.get(i).unwrap_or_default())
                .collect();
            match command::resolve(&argv) {
                Err(error) => command::write_error_reply(error, &argv, out),
                // Not reached: the gate refused it for a reason resolve
                // agrees with. Say something true anyway.
                Ok(spec) => command::write_error_reply(CommandError::WrongArity(spec), &argv, out),
            }
        }
        Refusal::Protected(spec) => command::write_protected_reply(spec, out),
        Refusal::Denied(denial) => {
            let exec = matches!(denial, Denial::Command(spec) if spec.name == "exec");
            out.extend_from_slice(if exec {
                b"-EXECABORT Transaction discarded because of: "
            } else {
                b"-"
            });
            denial.write_reply_text(out);
            out.extend_from_slice(b"\r\n");
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
    let is_exec = |spec: &CommandSpec| spec.name == "exec";
    match refusal {
        Refusal::Denied(Denial::Command(spec)) => is_exec(spec),
        Refusal::Command => args
            .get(0)
            .is_some_and(|name| name.eq_ignore_ascii_case(b"exec")),
        _ => false,
    }
}
