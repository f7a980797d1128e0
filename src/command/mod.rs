//! The Redis command table and command lookup, exact to Redis 7.0.15.
//!
//! Redis checks that a command exists and has a valid number of arguments
//! *before* it checks authentication (`processCommand` in `server.c`), so an
//! unauthenticated client sending `FOO` gets `-ERR unknown command ...`, not
//! `-NOAUTH`. The filter answers such commands locally before the client is
//! authenticated, so it must reproduce that order and those bytes:
//!
//! - [`resolve`] is Redis's `lookupCommand` + `commandCheckExistence` +
//!   `commandCheckArity` (plus the cross-protocol-scripting guard that
//!   precedes them);
//! - [`write_error_reply`] appends the exact error bytes Redis sends;
//! - [`noauth_reply`] is what Redis sends when authentication is
//!   still required, and [`write_protected_reply`] what it sends for
//!   `DEBUG` / `MODULE LOAD` (refused by default, before the auth check).
//!
//! The table itself ([`COMMANDS`]) is generated from a real `redis-server`
//! by `tools/gen_command_table.py`; it is static data, sorted by name, and
//! every lookup is an allocation-free binary search. Each [`CommandSpec`]
//! also carries what the ACL check needs to know about a command:
//!
//! - a dense [`CommandSpec::id`] (below [`COMMAND_COUNT`]; [`all_specs`],
//!   [`spec_by_id`]), for per-command bitsets;
//! - its ACL categories and subcommands;
//! - its Redis 7 key specifications, getkeys procedure and channel
//!   arguments (`keyspec.rs`), which [`keys`], [`has_keys`], [`channels`],
//!   [`has_channels`] and [`args_needed`] read exactly as Redis 7.0.15 does
//!   (`keys.rs`).
//!
//! This module knows commands only: nothing here knows users, rules or
//! patterns (that is the ACL code's), and nothing writes to the network.

use core::cmp::Ordering;
use core::fmt;

#[rustfmt::skip]
mod table;

#[cfg(test)]
mod keys_tests;
#[cfg(test)]
mod tests;

pub use table::{COMMAND_COUNT, COMMANDS, REDIS_VERSION};

/// Set operations shared by the bitset newtypes below.
macro_rules! bitset_ops {
    ($name:ident) => {
        impl $name {
            /// Whether every member of `other` is in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether any member of `other` is in `self`.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            /// The union of both sets.
            #[must_use]
            pub const fn union(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }

            /// Whether the set is empty.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }
        }
    };
}

/// Command flags, as `COMMAND INFO` names them (plus the two it hides).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommandFlags(pub u32);

impl CommandFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// `write`: may modify the dataset.
    pub const WRITE: Self = Self(1 << 0);
    /// `readonly`: only reads keys.
    pub const READONLY: Self = Self(1 << 1);
    /// `denyoom`: may grow memory; refused when over `maxmemory`.
    pub const DENYOOM: Self = Self(1 << 2);
    /// `module`: implemented by a module.
    pub const MODULE: Self = Self(1 << 3);
    /// `admin`: administrative command.
    pub const ADMIN: Self = Self(1 << 4);
    /// `pubsub`: pub/sub related.
    pub const PUBSUB: Self = Self(1 << 5);
    /// `noscript`: not allowed from scripts.
    pub const NOSCRIPT: Self = Self(1 << 6);
    /// `blocking`: may block the client.
    pub const BLOCKING: Self = Self(1 << 7);
    /// `loading`: allowed while the dataset is loading.
    pub const LOADING: Self = Self(1 << 8);
    /// `stale`: allowed on a replica with stale data.
    pub const STALE: Self = Self(1 << 9);
    /// `skip_monitor`: not shown to MONITOR.
    pub const SKIP_MONITOR: Self = Self(1 << 10);
    /// `skip_slowlog`: not logged in the slowlog.
    pub const SKIP_SLOWLOG: Self = Self(1 << 11);
    /// `asking`: allowed on importing slots after ASKING (cluster).
    pub const ASKING: Self = Self(1 << 12);
    /// `fast`: O(1) or O(log N).
    pub const FAST: Self = Self(1 << 13);
    /// `no_auth`: allowed before authentication.
    pub const NO_AUTH: Self = Self(1 << 14);
    /// `no_mandatory_keys`: key arguments are optional.
    pub const NO_MANDATORY_KEYS: Self = Self(1 << 15);
    /// `no_async_loading`: denied during async loading.
    pub const NO_ASYNC_LOADING: Self = Self(1 << 16);
    /// `no_multi`: not allowed inside MULTI.
    pub const NO_MULTI: Self = Self(1 << 17);
    /// `movablekeys`: key positions depend on the arguments.
    pub const MOVABLEKEYS: Self = Self(1 << 18);
    /// `allow_busy`: allowed while a script or function is busy.
    pub const ALLOW_BUSY: Self = Self(1 << 19);
    /// `may_replicate` (hidden by `COMMAND INFO`): may propagate writes.
    pub const MAY_REPLICATE: Self = Self(1 << 20);
    /// `protected` (hidden by `COMMAND INFO`): gated by
    /// `enable-debug-command` / `enable-module-command`.
    pub const PROTECTED: Self = Self(1 << 21);
}

bitset_ops!(CommandFlags);

// After the macro, which it uses.
mod keys;
mod keyspec;

pub use keys::{ChannelRef, KeyRef, args_needed, channels, has_channels, has_keys, keys};
pub use keyspec::{
    BeginSearch, CHANNEL_FLAG_NAMES, ChannelFlags, ChannelSpec, FindKeys, GetKeys, KEY_FLAG_NAMES,
    KeyFlags, KeySpec,
};

/// Every flag with its `COMMAND INFO` name, in bit order.
pub const COMMAND_FLAG_NAMES: &[(&str, CommandFlags)] = &[
    ("write", CommandFlags::WRITE),
    ("readonly", CommandFlags::READONLY),
    ("denyoom", CommandFlags::DENYOOM),
    ("module", CommandFlags::MODULE),
    ("admin", CommandFlags::ADMIN),
    ("pubsub", CommandFlags::PUBSUB),
    ("noscript", CommandFlags::NOSCRIPT),
    ("blocking", CommandFlags::BLOCKING),
    ("loading", CommandFlags::LOADING),
    ("stale", CommandFlags::STALE),
    ("skip_monitor", CommandFlags::SKIP_MONITOR),
    ("skip_slowlog", CommandFlags::SKIP_SLOWLOG),
    ("asking", CommandFlags::ASKING),
    ("fast", CommandFlags::FAST),
    ("no_auth", CommandFlags::NO_AUTH),
    ("no_mandatory_keys", CommandFlags::NO_MANDATORY_KEYS),
    ("no_async_loading", CommandFlags::NO_ASYNC_LOADING),
    ("no_multi", CommandFlags::NO_MULTI),
    ("movablekeys", CommandFlags::MOVABLEKEYS),
    ("allow_busy", CommandFlags::ALLOW_BUSY),
    ("may_replicate", CommandFlags::MAY_REPLICATE),
    ("protected", CommandFlags::PROTECTED),
];

impl fmt::Debug for CommandFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bit_names(f, "CommandFlags", self.0, COMMAND_FLAG_NAMES, |v| v.0)
    }
}

/// Redis 7.0 ACL categories (`@read`, `@write`, ...), one bit each, in the
/// order of Redis's `ACLCommandCategories` (and of `ACL CAT`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AclCategories(pub u32);

impl AclCategories {
    /// No category.
    pub const NONE: Self = Self(0);
    /// `@keyspace`
    pub const KEYSPACE: Self = Self(1 << 0);
    /// `@read`
    pub const READ: Self = Self(1 << 1);
    /// `@write`
    pub const WRITE: Self = Self(1 << 2);
    /// `@set`
    pub const SET: Self = Self(1 << 3);
    /// `@sortedset`
    pub const SORTEDSET: Self = Self(1 << 4);
    /// `@list`
    pub const LIST: Self = Self(1 << 5);
    /// `@hash`
    pub const HASH: Self = Self(1 << 6);
    /// `@string`
    pub const STRING: Self = Self(1 << 7);
    /// `@bitmap`
    pub const BITMAP: Self = Self(1 << 8);
    /// `@hyperloglog`
    pub const HYPERLOGLOG: Self = Self(1 << 9);
    /// `@geo`
    pub const GEO: Self = Self(1 << 10);
    /// `@stream`
    pub const STREAM: Self = Self(1 << 11);
    /// `@pubsub`
    pub const PUBSUB: Self = Self(1 << 12);
    /// `@admin`
    pub const ADMIN: Self = Self(1 << 13);
    /// `@fast`
    pub const FAST: Self = Self(1 << 14);
    /// `@slow`
    pub const SLOW: Self = Self(1 << 15);
    /// `@blocking`
    pub const BLOCKING: Self = Self(1 << 16);
    /// `@dangerous`
    pub const DANGEROUS: Self = Self(1 << 17);
    /// `@connection`
    pub const CONNECTION: Self = Self(1 << 18);
    /// `@transaction`
    pub const TRANSACTION: Self = Self(1 << 19);
    /// `@scripting`
    pub const SCRIPTING: Self = Self(1 << 20);
    /// Every category (what `@all` grants).
    pub const ALL: Self = Self((1 << 21) - 1);

    /// The category named `name` (without the `@`), ASCII case-insensitive
    /// as in Redis (`ACLGetCommandCategoryFlagByName` uses `strcasecmp`).
    /// `all` is not a category here; callers handle `@all` themselves.
    pub fn from_name(name: &[u8]) -> Option<Self> {
        ACL_CATEGORY_NAMES
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, c)| c)
    }
}

bitset_ops!(AclCategories);

/// Every ACL category with its name (without `@`), in Redis's `ACL CAT`
/// order, which is also bit order.
pub const ACL_CATEGORY_NAMES: &[(&str, AclCategories)] = &[
    ("keyspace", AclCategories::KEYSPACE),
    ("read", AclCategories::READ),
    ("write", AclCategories::WRITE),
    ("set", AclCategories::SET),
    ("sortedset", AclCategories::SORTEDSET),
    ("list", AclCategories::LIST),
    ("hash", AclCategories::HASH),
    ("string", AclCategories::STRING),
    ("bitmap", AclCategories::BITMAP),
    ("hyperloglog", AclCategories::HYPERLOGLOG),
    ("geo", AclCategories::GEO),
    ("stream", AclCategories::STREAM),
    ("pubsub", AclCategories::PUBSUB),
    ("admin", AclCategories::ADMIN),
    ("fast", AclCategories::FAST),
    ("slow", AclCategories::SLOW),
    ("blocking", AclCategories::BLOCKING),
    ("dangerous", AclCategories::DANGEROUS),
    ("connection", AclCategories::CONNECTION),
    ("transaction", AclCategories::TRANSACTION),
    ("scripting", AclCategories::SCRIPTING),
];

impl fmt::Debug for AclCategories {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bit_names(f, "AclCategories", self.0, ACL_CATEGORY_NAMES, |v| v.0)
    }
}

fn write_bit_names<T: Copy>(
    f: &mut fmt::Formatter<'_>,
    type_name: &str,
    bits: u32,
    names: &[(&str, T)],
    bits_of: impl Fn(T) -> u32,
) -> fmt::Result {
    write!(f, "{type_name}(")?;
    let mut rest = bits;
    let mut first = true;
    for &(name, value) in names {
        let b = bits_of(value);
        if bits & b == b && b != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
            first = false;
            rest &= !b;
        }
    }
    if rest != 0 {
        if !first {
            f.write_str(" | ")?;
        }
        write!(f, "{rest:#x}")?;
    }
    f.write_str(")")
}

/// One Redis command or subcommand, as `COMMAND INFO` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Dense index over every command and subcommand of the table, below
    /// [`COMMAND_COUNT`]: each top-level command in name order, followed by
    /// its subcommands. Stable only for one generated table.
    pub id: u16,
    /// Lowercase full name: `get`, or `client|kill` for a subcommand.
    pub name: &'static str,
    /// Positive: exactly this many arguments (command name included);
    /// negative: at least `-arity`.
    pub arity: i16,
    /// Command flags.
    pub flags: CommandFlags,
    /// ACL categories, including the implicit ones Redis derives from flags.
    pub acl_categories: AclCategories,
    /// Legacy key positions: first key, last key (negative counts from the
    /// end), step. All zero when the command has no fixed key positions.
    pub first_key: i16,
    /// See [`CommandSpec::first_key`].
    pub last_key: i16,
    /// See [`CommandSpec::first_key`].
    pub key_step: i16,
    /// Redis 7 key specifications, in `COMMAND INFO` order (which is the
    /// order Redis reports keys in).
    pub key_specs: &'static [KeySpec],
    /// The getkeys procedure Redis falls back to, if the command has one.
    pub getkeys: Option<GetKeys>,
    /// The channel arguments, for the pub/sub commands that have them.
    pub channels: Option<ChannelSpec>,
    /// Subcommands, sorted by name; empty unless this is a container.
    pub subcommands: &'static [CommandSpec],
}

/// Builds a table entry; used by the generated table, whose rows add key
/// specs, getkeys and channels with the methods below.
const fn cmd(
    id: u16,
    name: &'static str,
    arity: i16,
    flags: &[CommandFlags],
    acl_categories: &[AclCategories],
    keys: (i16, i16, i16),
    subcommands: &'static [CommandSpec],
) -> CommandSpec {
    let mut flag_bits = 0;
    let mut rest = flags;
    while let [first, tail @ ..] = rest {
        flag_bits |= first.0;
        rest = tail;
    }
    let mut cat_bits = 0;
    let mut rest = acl_categories;
    while let [first, tail @ ..] = rest {
        cat_bits |= first.0;
        rest = tail;
    }
    CommandSpec {
        id,
        name,
        arity,
        flags: CommandFlags(flag_bits),
        acl_categories: AclCategories(cat_bits),
        first_key: keys.0,
        last_key: keys.1,
        key_step: keys.2,
        key_specs: &[],
        getkeys: None,
        channels: None,
        subcommands,
    }
}

// Table builders (see `cmd`).
impl CommandSpec {
    const fn key_specs(self, key_specs: &'static [KeySpec]) -> Self {
        Self { key_specs, ..self }
    }

    const fn getkeys(self, getkeys: GetKeys) -> Self {
        Self {
            getkeys: Some(getkeys),
            ..self
        }
    }

    const fn channels(self, flags: &[ChannelFlags], start: usize, count: Option<usize>) -> Self {
        let mut bits = 0;
        let mut rest = flags;
        while let [first, tail @ ..] = rest {
            bits |= first.0;
            rest = tail;
        }
        Self {
            channels: Some(ChannelSpec {
                flags: ChannelFlags(bits),
                start,
                count,
            }),
            ..self
        }
    }
}

impl CommandSpec {
    /// Whether the command may run before authentication (`no_auth`).
    pub const fn is_no_auth(&self) -> bool {
        self.flags.contains(CommandFlags::NO_AUTH)
    }

    /// Whether this command has subcommands (`CLIENT`, `CONFIG`, ...).
    pub const fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }

    /// Whether this is a subcommand (its name contains `|`).
    pub fn is_subcommand(&self) -> bool {
        self.name.contains('|')
    }

    /// The part of the name after `|` (`kill` for `client|kill`); the whole
    /// name for a top-level command.
    pub fn short_name(&self) -> &'static str {
        match self.name.split_once('|') {
            Some((_, sub)) => sub,
            None => self.name,
        }
    }

    /// Whether `argc` arguments (command name included) satisfy the arity,
    /// as in Redis's `commandCheckArity`.
    pub fn arity_accepts(&self, argc: usize) -> bool {
        let arity = i64::from(self.arity);
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        if arity > 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// The subcommand of this container named `name` (ASCII
    /// case-insensitive, exact length).
    pub fn lookup_subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        search(self.subcommands, name, |spec| spec.short_name())
    }
}

/// Compares a lowercase table name with `key` as if `key` were lowercased.
fn cmp_lowercased(table_name: &str, key: &[u8]) -> Ordering {
    table_name
        .bytes()
        .cmp(key.iter().map(u8::to_ascii_lowercase))
}

fn search(
    specs: &'static [CommandSpec],
    key: &[u8],
    name_of: impl Fn(&CommandSpec) -> &'static str,
) -> Option<&'static CommandSpec> {
    specs
        .binary_search_by(|spec| cmp_lowercased(name_of(spec), key))
        .ok()
        .and_then(|i| specs.get(i))
}

/// The top-level command named `name` (ASCII case-insensitive).
///
/// The match is on the whole byte string: `get\0x` is not `GET`. (Redis
/// 7.0 hashes the full length but compares with `strcasecmp`, so such a name
/// finds `GET` only on a rare, per-process-random hash collision.)
pub fn lookup_command(name: &[u8]) -> Option<&'static CommandSpec> {
    search(COMMANDS, name, |spec| spec.name)
}

/// Every command and subcommand of the table, in [`CommandSpec::id`]
/// order: each top-level command, then its subcommands.
pub fn all_specs() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS
        .iter()
        .flat_map(|c| core::iter::once(c).chain(c.subcommands.iter()))
}

/// The command or subcommand whose [`CommandSpec::id`] is `id`.
pub fn spec_by_id(id: u16) -> Option<&'static CommandSpec> {
    // Ids grow along COMMANDS (each container's subcommands take the ids
    // right after it), so the owner is the last top-level id <= `id`.
    let owner = COMMANDS
        .partition_point(|c| c.id <= id)
        .checked_sub(1)
        .and_then(|i| COMMANDS.get(i))?;
    match id.checked_sub(owner.id)?.checked_sub(1) {
        None => Some(owner),
        Some(sub) => owner.subcommands.get(usize::from(sub)),
    }
}

/// Whether `name` is a container command (one with subcommands).
pub fn is_container(name: &[u8]) -> bool {
    lookup_command(name).is_some_and(CommandSpec::is_container)
}

/// Why [`resolve`] did not yield a runnable command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// `argv` is empty. Redis ignores an empty command and sends nothing.
    Empty,
    /// The command name is `POST` or `Host:` (cross-protocol scripting).
    /// Redis sends nothing and closes the connection.
    SecurityAttack,
    /// No such command.
    UnknownCommand,
    /// The command is a container and `argv[1]` is not one of its
    /// subcommands.
    UnknownSubcommand,
    /// The command exists but the argument count does not fit its arity.
    WrongArity(&'static CommandSpec),
}

impl CommandError {
    /// Whether Redis closes the connection instead of replying.
    pub const fn closes_connection(self) -> bool {
        matches!(self, Self::SecurityAttack)
    }
}

/// The part of `s` a C string function sees: everything before the first
/// NUL. Redis compares some arguments this way (`strcasecmp`), so the
/// filter must too: `AUTH\0x` is `AUTH` to `HELLO`.
pub fn c_str(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(nul) => s.get(..nul).unwrap_or(s),
        None => s,
    }
}

/// What `printf("%.*s", max, s)` prints.
fn c_str_max(s: &[u8], max: usize) -> &[u8] {
    let s = c_str(s);
    s.get(..max).unwrap_or(s)
}

/// Finds the command `argv` asks for, as Redis 7.0's `processCommand` does
/// before its authentication check:
///
/// 1. `POST` / `Host:` (C-string, case-insensitive) → [`CommandError::SecurityAttack`];
/// 2. `lookupCommand`: with one argument, or when `argv[0]` is not a
///    container, the top-level command; otherwise the subcommand `argv[1]`;
/// 3. `commandCheckExistence` → [`CommandError::UnknownCommand`] or
///    [`CommandError::UnknownSubcommand`];
/// 4. `commandCheckArity` → [`CommandError::WrongArity`].
///
/// So `CLIENT` alone resolves to the container `client` and then fails its
/// arity (-2); `COMMAND` alone is fine (arity -1); `CONFIG GET` fails the
/// arity of `config|get`.
pub fn resolve<A: AsRef<[u8]>>(argv: &[A]) -> Result<&'static CommandSpec, CommandError> {
    let Some(first) = argv.first() else {
        return Err(CommandError::Empty);
    };
    let name = first.as_ref();
    let c_name = c_str(name);
    if c_name.eq_ignore_ascii_case(b"host:") || c_name.eq_ignore_ascii_case(b"post") {
        return Err(CommandError::SecurityAttack);
    }
    let base = lookup_command(name).ok_or(CommandError::UnknownCommand)?;
    let spec = match argv.get(1) {
        Some(sub) if base.is_container() => base
            .lookup_subcommand(sub.as_ref())
            .ok_or(CommandError::UnknownSubcommand)?,
        _ => base,
    };
    if spec.arity_accepts(argv.len()) {
        Ok(spec)
    } else {
        Err(CommandError::WrongArity(spec))
    }
}

/// Appends the exact bytes Redis 7.0.15 sends for `err`, where `argv` is the
/// command that [`resolve`] rejected. Appends nothing for
/// [`CommandError::Empty`] and [`CommandError::SecurityAttack`], to which
/// Redis does not reply.
///
/// Arguments are printed the way Redis's C format strings print them: each
/// stops at its first NUL byte, names are cut at 128 bytes (`%.128s`), the
/// argument list of an unknown command stops once it reaches 128 bytes, and
/// CR and LF become spaces.
pub fn write_error_reply<A: AsRef<[u8]>>(err: CommandError, argv: &[A], out: &mut Vec<u8>) {
    let arg = |i: usize| argv.get(i).map_or(&[][..], |a| a.as_ref());
    match err {
        CommandError::Empty | CommandError::SecurityAttack => {}
        CommandError::UnknownCommand => {
            // "unknown command '%.128s', with args beginning with: %s", where
            // args is built by appending "'%.*s' " while it is < 128 bytes.
            let start = out.len();
            out.extend_from_slice(b"-ERR unknown command '");
            out.extend_from_slice(c_str_max(arg(0), 128));
            out.extend_from_slice(b"', with args beginning with: ");
            let args_start = out.len();
            for a in argv.iter().skip(1) {
                let used = out.len().saturating_sub(args_start);
                if used >= 128 {
                    break;
                }
                out.push(b'\'');
                out.extend_from_slice(c_str_max(a.as_ref(), 128usize.saturating_sub(used)));
                out.extend_from_slice(b"' ");
            }
            sanitize(out, start);
            out.extend_from_slice(b"\r\n");
        }
        CommandError::UnknownSubcommand => {
            // "unknown subcommand '%.128s'. Try %s HELP." with the container
            // name as sent, upper-cased.
            let start = out.len();
            out.extend_from_slice(b"-ERR unknown subcommand '");
            out.extend_from_slice(c_str_max(arg(1), 128));
            out.extend_from_slice(b"'. Try ");
            out.extend(c_str(arg(0)).iter().map(u8::to_ascii_uppercase));
            out.extend_from_slice(b" HELP.");
            sanitize(out, start);
            out.extend_from_slice(b"\r\n");
        }
        CommandError::WrongArity(spec) => {
            // rejectCommand on EXEC aborts the transaction (execCommandAbort).
            if is_exec(spec) {
                out.extend_from_slice(b"-EXECABORT Transaction discarded because of: ");
            } else {
                out.extend_from_slice(b"-ERR ");
            }
            out.extend_from_slice(b"wrong number of arguments for '");
            out.extend_from_slice(spec.name.as_bytes());
            out.extend_from_slice(b"' command\r\n");
        }
    }
}

/// What Redis 7.0.15 sends when `spec` is refused because the client is not
/// authenticated (`rejectCommand(c, shared.noautherr)`):
/// `-NOAUTH Authentication required.`, except that a refused `EXEC` becomes
/// `-EXECABORT Transaction discarded because of: NOAUTH Authentication required.`
pub fn noauth_reply(spec: &CommandSpec) -> &'static [u8] {
    if is_exec(spec) {
        b"-EXECABORT Transaction discarded because of: NOAUTH Authentication required.\r\n"
    } else {
        b"-NOAUTH Authentication required.\r\n"
    }
}

/// Appends what Redis 7.0.15 sends when a [`CommandFlags::PROTECTED`]
/// command (`DEBUG`, `MODULE LOAD|LOADEX|UNLOAD`) is refused because
/// `enable-debug-command` / `enable-module-command` is `no` (the default),
/// or `local` and the connection is not local. Redis makes this check after
/// the arity check and *before* the authentication check. Appends nothing
/// for a command that is not protected.
pub fn write_protected_reply(spec: &CommandSpec, out: &mut Vec<u8>) {
    if !spec.flags.contains(CommandFlags::PROTECTED) {
        return;
    }
    let (command, option): (&[u8], &[u8]) = if spec.name == "debug" {
        (b"DEBUG", b"enable-debug-command")
    } else {
        (b"MODULE", b"enable-module-command")
    };
    out.extend_from_slice(b"-ERR ");
    out.extend_from_slice(command);
    out.extend_from_slice(b" command not allowed. If the ");
    out.extend_from_slice(option);
    out.extend_from_slice(
        b" option is set to \"local\", you can run it from a local connection, \
          otherwise you need to set this option in the configuration file, \
          and then restart the server.\r\n",
    );
}

fn is_exec(spec: &CommandSpec) -> bool {
    spec.name == "exec"
}

/// `sdsmapchars(err, "\r\n", "  ", 2)` over `out[start..]`.
fn sanitize(out: &mut [u8], start: usize) {
    if let Some(tail) = out.get_mut(start..) {
        for b in tail {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
    }
}
