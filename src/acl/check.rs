//! The verdict: Redis 7.0's `ACLCheckAllUserCommandPerm` and
//! `ACLSelectorCheckCmd` / `ACLSelectorCheckKey` /
//! `ACLCheckChannelAgainstList` (`acl.c`), as a plain function of
//! (permissions, command, arguments).
//!
//! The caller has already resolved the command (existence and arity come
//! first in Redis, see [`crate::command::resolve`]) and authenticated the
//! client; this module only answers "may this user run this".

use crate::command::{self as keys, ChannelFlags, ChannelRef, KeyFlags, KeyRef};
use crate::command::{CommandFlags, CommandSpec, NoPerm, c_str};

use super::Permissions;
use super::glob;
use super::selector::Selector;

/// Why a command was refused, in Redis's order of precedence (a later
/// variant wins over an earlier one when selectors disagree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// `ACL_DENIED_CMD`: the command (or subcommand, or its first
    /// argument) is not allowed.
    Command(&'static CommandSpec),
    /// `ACL_DENIED_KEY`: the key at argument `pos`.
    Key {
        /// Argument index of the key.
        pos: usize,
    },
    /// `ACL_DENIED_CHANNEL`: the channel at argument `pos`.
    Channel {
        /// Argument index of the channel.
        pos: usize,
    },
}

impl Denial {
    /// Redis's `ACL_DENIED_*` value: the precedence between selectors.
    fn rank(self) -> u8 {
        match self {
            Denial::Command(_) => 1,
            Denial::Key { .. } => 2,
            Denial::Channel { .. } => 4,
        }
    }

    fn pos(self) -> usize {
        match self {
            Denial::Command(_) => 0,
            Denial::Key { pos } | Denial::Channel { pos } => pos,
        }
    }

    /// What was refused, in the terms of Redis's error texts
    /// ([`crate::command::write_noperm_reply`]); `argv` gives the
    /// arguments a key or channel denial names.
    pub fn noperm<'a>(self, argv: &[&'a [u8]]) -> NoPerm<'a> {
        let arg = |pos: usize| argv.get(pos).copied().unwrap_or_default();
        match self {
            Denial::Command(_) => NoPerm::Command,
            Denial::Key { pos } => NoPerm::Key(arg(pos)),
            Denial::Channel { pos } => NoPerm::Channel(arg(pos)),
        }
    }

    /// What was refused, for logs and counters.
    pub fn reason(self) -> &'static str {
        match self {
            Denial::Command(_) => "command",
            Denial::Key { .. } => "key",
            Denial::Channel { .. } => "channel",
        }
    }
}

/// Buffers a check reuses, so that checking does not allocate once warm.
#[derive(Debug, Default)]
pub struct Scratch {
    keys: Vec<KeyRef>,
    keys_ready: bool,
    channels: Vec<ChannelRef>,
}

/// An argument list with some arguments possibly known only in part.
pub struct Argv<'a, F: Fn(usize) -> bool> {
    /// The arguments (the retained bytes of each).
    pub args: &'a [&'a [u8]],
    /// Whether argument `i` is known in full. A key or channel that is not
    /// is refused: the filter cannot say it matches.
    pub whole: F,
}

impl<F: Fn(usize) -> bool> Argv<'_, F> {
    fn full(&self, index: usize) -> Option<&[u8]> {
        if (self.whole)(index) {
            self.args.get(index).copied()
        } else {
            None
        }
    }
}

impl Permissions {
    /// The command part of the check alone: `Ok` if some selector allows
    /// the command itself (its bit, or its first argument in `argv[1]`).
    /// When none does, [`check`](Self::check) is sure to answer this
    /// [`Denial::Command`], whatever the keys and channels.
    pub fn check_command<F: Fn(usize) -> bool>(
        &self,
        spec: &'static CommandSpec,
        argv: &Argv<'_, F>,
    ) -> Result<(), Denial> {
        if self
            .selectors()
            .any(|selector| command_allowed(selector, spec, argv))
        {
            Ok(())
        } else {
            Err(Denial::Command(spec))
        }
    }

    /// Whether some selector has first arguments listed for `spec`
    /// (`+select|0`).
    pub fn has_first_args(&self, spec: &CommandSpec) -> bool {
        self.selectors().any(|s| !s.first_args(spec).is_empty())
    }

    /// `ACLUserCheckCmdWithUnrestrictedKeyAccess(…, CMD_KEY_ACCESS)`: some
    /// selector allows the command and can read every key (`~*`, or a
    /// readable `*` pattern).
    pub fn has_unrestricted_read<F: Fn(usize) -> bool>(
        &self,
        spec: &'static CommandSpec,
        argv: &Argv<'_, F>,
        scratch: &mut Scratch,
    ) -> bool {
        scratch.keys_ready = false;
        self.selectors().any(|selector| {
            check_selector(selector, spec, argv, scratch).is_ok()
                && (selector.all_keys()
                    || selector
                        .key_patterns()
                        .iter()
                        .any(|p| p.read && p.pattern == "*"))
        })
    }

    /// `ACLCheckAllUserCommandPerm`: allowed if the root selector or any
    /// other selector allows; otherwise the most relevant denial (the
    /// highest [`Denial`] kind, then the last argument position).
    pub fn check<F: Fn(usize) -> bool>(
        &self,
        spec: &'static CommandSpec,
        argv: &Argv<'_, F>,
        scratch: &mut Scratch,
    ) -> Result<(), Denial> {
        scratch.keys_ready = false;
        let mut relevant = Denial::Command(spec);
        for selector in self.selectors() {
            match check_selector(selector, spec, argv, scratch) {
                Ok(()) => return Ok(()),
                Err(denial) => {
                    if denial.rank() > relevant.rank()
                        || (denial.rank() == relevant.rank() && denial.pos() > relevant.pos())
                    {
                        relevant = denial;
                    }
                }
            }
        }
        Err(relevant)
    }
}

/// `ACLSelectorCheckCmd`.
fn check_selector<F: Fn(usize) -> bool>(
    selector: &Selector,
    spec: &'static CommandSpec,
    argv: &Argv<'_, F>,
    scratch: &mut Scratch,
) -> Result<(), Denial> {
    if !command_allowed(selector, spec, argv) {
        return Err(Denial::Command(spec));
    }
    if !selector.all_keys() && keys::has_keys(spec) {
        if !scratch.keys_ready {
            keys::keys_for(spec, argv.args, selector.version(), &mut scratch.keys);
            scratch.keys_ready = true;
        }
        for key in &scratch.keys {
            if !key_allowed(selector, argv.full(key.pos), key.flags) {
                return Err(Denial::Key { pos: key.pos });
            }
        }
    }
    let checked = ChannelFlags::PUBLISH.union(ChannelFlags::SUBSCRIBE);
    if !selector.all_channels() && keys::has_channels(spec, checked) {
        scratch.channels.clear();
        keys::channels(spec, argv.args.len(), &mut scratch.channels);
        for channel in &scratch.channels {
            if !channel.flags.intersects(checked) {
                continue;
            }
            let pattern = channel.flags.contains(ChannelFlags::PATTERN);
            if !channel_allowed(selector, argv.full(channel.pos), pattern) {
                return Err(Denial::Channel { pos: channel.pos });
            }
        }
    }
    Ok(())
}

/// The first part of `ACLSelectorCheckCmd`: "all commands", a `no_auth`
/// command, the command's bit, or one of its allowed first arguments
/// (`strcasecmp`: C strings, case-insensitive).
fn command_allowed<F: Fn(usize) -> bool>(
    selector: &Selector,
    spec: &CommandSpec,
    argv: &Argv<'_, F>,
) -> bool {
    if selector.allows_all_commands()
        || spec.flags.contains(CommandFlags::NO_AUTH)
        || selector.allows_command_bit(spec)
    {
        return true;
    }
    let Some(first) = argv.args.get(1).map(|arg| c_str(arg)) else {
        return false;
    };
    selector
        .first_args(spec)
        .iter()
        .any(|known| c_str(known.as_bytes()).eq_ignore_ascii_case(first))
}

/// `ACLSelectorCheckKey`: a pattern must grant every access the key spec
/// asks for (read for `access`; write for `insert`, `delete`, `update`)
/// and match the key.
fn key_allowed(selector: &Selector, key: Option<&[u8]>, flags: KeyFlags) -> bool {
    let Some(key) = key else {
        return false;
    };
    let read = flags.intersects(KeyFlags::ACCESS);
    let write = flags.intersects(
        KeyFlags::INSERT
            .union(KeyFlags::DELETE)
            .union(KeyFlags::UPDATE),
    );
    selector.key_patterns().iter().any(|p| {
        (p.read || !read) && (p.write || !write) && glob::matches(p.pattern.as_bytes(), key)
    })
}

/// `ACLCheckChannelAgainstList`: a pattern subscription must name a
/// listed pattern literally (`strcmp`); a channel must match one.
fn channel_allowed(selector: &Selector, channel: Option<&[u8]>, is_pattern: bool) -> bool {
    let Some(channel) = channel else {
        return false;
    };
    selector.channel_patterns().iter().any(|p| {
        if is_pattern {
            c_str(p.as_bytes()) == c_str(channel)
        } else {
            glob::matches(p.as_bytes(), channel)
        }
    })
}
