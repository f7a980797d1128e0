//! Where a command's keys and channels are, as data: Redis 7 key
//! specifications, the getkeys procedures Redis falls back to, and the
//! channel arguments of the pub/sub commands.
//!
//! These types mirror Redis's `keySpec` (`server.h`) and the `key_specs`
//! of `src/commands/*.json`, which Redis 7.0, 7.2, 7.4 and Valkey share, so
//! a table generated from any of them fits. They are only data: how Redis
//! reads them is [`super::keys`].

use core::fmt;

use super::write_bit_names;

/// Key-spec flags (`CMD_KEY_*` in `server.h`), one bit each, in Redis's
/// bit order.
///
/// The first four say what the command does with the key's value (exactly
/// one of them per spec), the next four what it does to the data; only those
/// four (`ACCESS`, `UPDATE`, `INSERT`, `DELETE`) decide which `%R~` / `%W~`
/// patterns a key must match (`ACLSelectorCheckKey`). The last three steer
/// the key search itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyFlags(pub u16);

impl KeyFlags {
    /// No flags (what most getkeys procedures report).
    pub const NONE: Self = Self(0);
    /// `RO`: read-only access to the value.
    pub const RO: Self = Self(1 << 0);
    /// `RW`: read-write access to the value.
    pub const RW: Self = Self(1 << 1);
    /// `OW`: overwrites the value without reading it.
    pub const OW: Self = Self(1 << 2);
    /// `RM`: deletes the key.
    pub const RM: Self = Self(1 << 3);
    /// `access`: returns, copies or uses user data from the value.
    pub const ACCESS: Self = Self(1 << 4);
    /// `update`: updates data in the value.
    pub const UPDATE: Self = Self(1 << 5);
    /// `insert`: adds data to the value.
    pub const INSERT: Self = Self(1 << 6);
    /// `delete`: removes data from the value.
    pub const DELETE: Self = Self(1 << 7);
    /// `not_key`: the argument is not a key (a shard channel), though it
    /// hashes to a slot like one. Skipped by the default key search.
    pub const NOT_KEY: Self = Self(1 << 8);
    /// `incomplete`: the spec may miss keys; Redis then uses the getkeys
    /// procedure instead.
    pub const INCOMPLETE: Self = Self(1 << 9);
    /// `variable_flags`: the flags depend on the arguments; Redis then uses
    /// the getkeys procedure instead.
    pub const VARIABLE_FLAGS: Self = Self(1 << 10);
}

bitset_ops!(KeyFlags);

/// Every key-spec flag with the name `COMMAND INFO` gives it, in bit order.
pub const KEY_FLAG_NAMES: &[(&str, KeyFlags)] = &[
    ("RO", KeyFlags::RO),
    ("RW", KeyFlags::RW),
    ("OW", KeyFlags::OW),
    ("RM", KeyFlags::RM),
    ("access", KeyFlags::ACCESS),
    ("update", KeyFlags::UPDATE),
    ("insert", KeyFlags::INSERT),
    ("delete", KeyFlags::DELETE),
    ("not_key", KeyFlags::NOT_KEY),
    ("incomplete", KeyFlags::INCOMPLETE),
    ("variable_flags", KeyFlags::VARIABLE_FLAGS),
];

impl fmt::Debug for KeyFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bit_names(f, "KeyFlags", u32::from(self.0), KEY_FLAG_NAMES, |v| {
            u32::from(v.0)
        })
    }
}

/// Where the search for a spec's keys begins (`begin_search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeginSearch {
    /// At argument `pos` (the command name is 0).
    Index {
        /// The argument index.
        pos: i32,
    },
    /// Just after the first argument equal to `keyword` (ASCII
    /// case-insensitive), looking from `startfrom` towards the end, or, when
    /// `startfrom` is negative, from `argc + startfrom` towards the start.
    Keyword {
        /// The keyword, as the table spells it (upper case).
        keyword: &'static str,
        /// Where to start looking; negative counts from the end.
        startfrom: i32,
    },
    /// Not described: the spec cannot be used, and Redis falls back to the
    /// getkeys procedure.
    Unknown,
}

/// Which arguments, from where the search began, are keys (`find_keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindKeys {
    /// A range: every `step`-th argument up to `lastkey` (relative to the
    /// beginning; negative counts from the end of the arguments). With
    /// `limit` > 0 and `lastkey` -1, only the first `1/limit` of the rest
    /// (`XREAD … STREAMS k1 k2 id1 id2`).
    Range {
        /// Last key, relative to the beginning; negative: from the end.
        lastkey: i32,
        /// Distance between keys.
        step: i32,
        /// 0, or the divisor of the remaining arguments (see above).
        limit: i32,
    },
    /// A count argument, then the keys: the count is at
    /// `begin + keynumidx`, the first key at `begin + firstkey`.
    Keynum {
        /// Offset of the count from the beginning.
        keynumidx: i32,
        /// Offset of the first key from the beginning.
        firstkey: i32,
        /// Distance between keys.
        step: i32,
    },
    /// Not described: the spec cannot be used.
    Unknown,
}

/// One key specification: how to find some of a command's keys, and what
/// the command does to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// What the command does to these keys, and how to search them.
    pub flags: KeyFlags,
    /// Where the search begins.
    pub begin_search: BeginSearch,
    /// Which arguments from there are keys.
    pub find_keys: FindKeys,
}

/// The native getkeys procedure (`getkeys_proc` in `commands.c`) a command
/// has, named after its C function in `db.c`. Redis uses it when the key
/// specs cannot give an exact answer: a spec is `incomplete`, has
/// `variable_flags` or an unknown search, or does not fit the arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GetKeys {
    /// `bitfieldGetKeys`: the key, read-only unless a `SET`/`INCRBY` (or a
    /// syntax error) makes it read-write.
    Bitfield,
    /// `blmpopGetKeys` (`BLMPOP`, and `BZMPOP` too): `numkeys` at 2, keys
    /// from 3.
    Blmpop,
    /// `evalGetKeys`: `numkeys` at 2, keys from 3.
    Eval,
    /// `functionGetKeys`: `numkeys` at 2, keys from 3.
    Function,
    /// `georadiusGetKeys`: the key, and the last `STORE`/`STOREDIST` key.
    Georadius,
    /// `lmpopGetKeys`: `numkeys` at 1, keys from 2.
    Lmpop,
    /// `migrateGetKeys`: the key at 3, or the keys after `KEYS`.
    Migrate,
    /// `setGetKeys`: the key, read-write if a `GET` option follows.
    Set,
    /// `sintercardGetKeys`: `numkeys` at 1, keys from 2.
    Sintercard,
    /// `sortGetKeys`: the key, and the last `STORE` key.
    Sort,
    /// `sortROGetKeys`: the key.
    SortRo,
    /// `xreadGetKeys`: the first half of the arguments after `STREAMS`.
    Xread,
    /// `zmpopGetKeys`: `numkeys` at 1, keys from 2.
    Zmpop,
    /// `zunionInterDiffGetKeys`: `numkeys` at 1, keys from 2.
    ZunionInterDiff,
    /// `zunionInterDiffStoreGetKeys`: `numkeys` at 2, keys from 3, then the
    /// destination at 1.
    ZunionInterDiffStore,
}

/// How a command uses a channel argument (`CMD_CHANNEL_*`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChannelFlags(pub u8);

impl ChannelFlags {
    /// No flags.
    pub const NONE: Self = Self(0);
    /// The argument is a pattern (`PSUBSCRIBE`, `PUNSUBSCRIBE`).
    pub const PATTERN: Self = Self(1 << 0);
    /// Publishes to the channel.
    pub const PUBLISH: Self = Self(1 << 1);
    /// Subscribes to the channel or pattern.
    pub const SUBSCRIBE: Self = Self(1 << 2);
    /// Unsubscribes from it (never checked by ACLs).
    pub const UNSUBSCRIBE: Self = Self(1 << 3);
}

bitset_ops!(ChannelFlags);

/// Every channel flag with a name, in bit order.
pub const CHANNEL_FLAG_NAMES: &[(&str, ChannelFlags)] = &[
    ("pattern", ChannelFlags::PATTERN),
    ("publish", ChannelFlags::PUBLISH),
    ("subscribe", ChannelFlags::SUBSCRIBE),
    ("unsubscribe", ChannelFlags::UNSUBSCRIBE),
];

impl fmt::Debug for ChannelFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_bit_names(
            f,
            "ChannelFlags",
            u32::from(self.0),
            CHANNEL_FLAG_NAMES,
            |v| u32::from(v.0),
        )
    }
}

/// A command's channel arguments (an entry of `commands_with_channels` in
/// `db.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelSpec {
    /// How the command uses them.
    pub flags: ChannelFlags,
    /// Index of the first channel argument. (Bytes, as every command has
    /// them at 1: every table entry carries this.)
    pub start: u8,
    /// How many there are; `None`: every argument from `start` on.
    pub count: Option<u8>,
}

// Builders for the generated table, short so that its rows stay readable.

pub(super) const fn ks(
    flags: &[KeyFlags],
    begin_search: BeginSearch,
    find_keys: FindKeys,
) -> KeySpec {
    let mut bits = 0;
    let mut rest = flags;
    while let [first, tail @ ..] = rest {
        bits |= first.0;
        rest = tail;
    }
    KeySpec {
        flags: KeyFlags(bits),
        begin_search,
        find_keys,
    }
}

pub(super) const fn index(pos: i32) -> BeginSearch {
    BeginSearch::Index { pos }
}

pub(super) const fn keyword(keyword: &'static str, startfrom: i32) -> BeginSearch {
    BeginSearch::Keyword { keyword, startfrom }
}

pub(super) const fn range(lastkey: i32, step: i32, limit: i32) -> FindKeys {
    FindKeys::Range {
        lastkey,
        step,
        limit,
    }
}

pub(super) const fn keynum(keynumidx: i32, firstkey: i32, step: i32) -> FindKeys {
    FindKeys::Keynum {
        keynumidx,
        firstkey,
        step,
    }
}
