//! Which server the filter stands in front of.
//!
//! Redis 7.2, 7.4 and Valkey 7.2, 8.0 have commands, subcommands, arities,
//! flags, categories and key specs that Redis 7.0 does not (and a few
//! replies worded differently, see `errors.rs`). The command table holds
//! all of them: each [`CommandSpec`](super::CommandSpec) says in
//! [`servers`](super::CommandSpec::servers) which of these releases have it
//! exactly so, and the `*_for` lookups take the configured version.
//! Redis Sentinel is one more "version": the same code as Redis 7.0, but
//! only the commands a Sentinel has (no keys, no QUIT, no RESET; SENTINEL
//! and its subcommands besides), for a filter in front of a Sentinel's port.
//!
//! Each version stands for one release series and is generated from the
//! release named by [`ServerVersion::release`] (the latest patch release in
//! the sources it was generated from; patch releases do not change command
//! tables as a rule, but an operator who needs exactness should run that
//! release).

use core::fmt;

use super::table::SERVER_RELEASES;

/// A server release series the command table knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum ServerVersion {
    /// Redis 7.0 (generated from 7.0.15, checked against the installed
    /// server). The default, and what the version-less functions assume.
    #[default]
    Redis70,
    /// Redis 7.2.
    Redis72,
    /// Redis 7.4.
    Redis74,
    /// Valkey 7.2.
    Valkey72,
    /// Valkey 8.0.
    Valkey80,
    /// Redis Sentinel of Redis 7.0 (`redis-server --sentinel`, generated
    /// from 7.0.15 and checked against the installed server in sentinel
    /// mode): only the commands Sentinel has (`SENTINEL`, `PING`, `INFO`,
    /// `AUTH`, `HELLO`, `ACL`, `CLIENT`, pub/sub, ...), with Redis 7.0's
    /// replies. For a filter in front of a Sentinel's port.
    Sentinel70,
}

impl ServerVersion {
    /// Every version, in bit order of [`ServerSet`].
    pub const ALL: [Self; 6] = [
        Self::Redis70,
        Self::Redis72,
        Self::Redis74,
        Self::Valkey72,
        Self::Valkey80,
        Self::Sentinel70,
    ];

    /// The data servers: every version but Sentinel's.
    pub const DATA: [Self; 5] = [
        Self::Redis70,
        Self::Redis72,
        Self::Redis74,
        Self::Valkey72,
        Self::Valkey80,
    ];

    /// The set holding only this version.
    pub const fn set(self) -> ServerSet {
        ServerSet(1 << self as u8)
    }

    /// The name configuration uses: `redis-7.0`, `redis-7.2`, `redis-7.4`,
    /// `valkey-7.2`, `valkey-8.0`, `sentinel-7.0`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Redis70 => "redis-7.0",
            Self::Redis72 => "redis-7.2",
            Self::Redis74 => "redis-7.4",
            Self::Valkey72 => "valkey-7.2",
            Self::Valkey80 => "valkey-8.0",
            Self::Sentinel70 => "sentinel-7.0",
        }
    }

    /// The server (`redis`, `valkey` or `sentinel`) and the release the
    /// table was generated from for this version (`7.0.15`, ...).
    pub const fn release(self) -> (&'static str, &'static str) {
        let [redis70, redis72, redis74, valkey72, valkey80, sentinel70] = SERVER_RELEASES;
        match self {
            Self::Redis70 => redis70,
            Self::Redis72 => redis72,
            Self::Redis74 => redis74,
            Self::Valkey72 => valkey72,
            Self::Valkey80 => valkey80,
            Self::Sentinel70 => sentinel70,
        }
    }

    /// Whether the server is a Redis Sentinel.
    pub const fn is_sentinel(self) -> bool {
        matches!(self, Self::Sentinel70)
    }

    /// Whether the server is Valkey.
    pub const fn is_valkey(self) -> bool {
        matches!(self, Self::Valkey72 | Self::Valkey80)
    }

    /// The version named `name`, ASCII case-insensitive: one of the
    /// [`name`](Self::name)s, optionally with a patch number
    /// (`valkey-8.0.1`, `redis-7.2.4`), which is ignored.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| {
            let own = v.name();
            let Some(head) = name.get(..own.len()) else {
                return false;
            };
            if !head.eq_ignore_ascii_case(own) {
                return false;
            }
            match name.get(own.len()..) {
                Some("") => true,
                Some(rest) => rest
                    .strip_prefix('.')
                    .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
                None => false,
            }
        })
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`ServerVersion`]s, one bit each in [`ServerVersion::ALL`]
/// order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServerSet(pub u8);

impl ServerSet {
    /// No version.
    pub const NONE: Self = Self(0);
    /// Redis 7.0.
    pub const REDIS70: Self = ServerVersion::Redis70.set();
    /// Redis 7.2.
    pub const REDIS72: Self = ServerVersion::Redis72.set();
    /// Redis 7.4.
    pub const REDIS74: Self = ServerVersion::Redis74.set();
    /// Valkey 7.2.
    pub const VALKEY72: Self = ServerVersion::Valkey72.set();
    /// Valkey 8.0.
    pub const VALKEY80: Self = ServerVersion::Valkey80.set();
    /// Redis Sentinel 7.0.
    pub const SENTINEL70: Self = ServerVersion::Sentinel70.set();
    /// Every version.
    pub const ALL: Self = Self((1 << ServerVersion::ALL.len()) - 1);
    /// Every data server (every version but Sentinel's).
    pub const DATA: Self = Self(Self::ALL.0 & !Self::SENTINEL70.0);

    /// Whether `version` is in the set.
    pub const fn has(self, version: ServerVersion) -> bool {
        self.contains(version.set())
    }
}

bitset_ops!(ServerSet);

impl fmt::Debug for ServerSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: [(&str, ServerSet); 6] = [
            ("redis-7.0", Self::REDIS70),
            ("redis-7.2", Self::REDIS72),
            ("redis-7.4", Self::REDIS74),
            ("valkey-7.2", Self::VALKEY72),
            ("valkey-8.0", Self::VALKEY80),
            ("sentinel-7.0", Self::SENTINEL70),
        ];
        super::write_bit_names(f, "ServerSet", u32::from(self.0), &names, |v| {
            u32::from(v.0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in ServerVersion::ALL {
            assert_eq!(ServerVersion::parse(v.name()), Some(v));
            assert_eq!(ServerVersion::parse(&v.name().to_uppercase()), Some(v));
            let (server, release) = v.release();
            assert_eq!(v.is_valkey(), server == "valkey");
            assert!(v.name().starts_with(server));
            let full = format!("{server}-{release}");
            assert_eq!(ServerVersion::parse(&full), Some(v), "{full}");
            assert!(full.starts_with(v.name()), "{full}");
        }
        assert_eq!(
            ServerVersion::parse("valkey-8.0.1"),
            Some(ServerVersion::Valkey80)
        );
        for bad in [
            "",
            "redis",
            "redis-7",
            "redis-7.",
            "redis-7.0.",
            "redis-7.0x",
            "redis-7.01",
            "redis-7.0.1a",
            "valkey-8",
            "redis-6.2",
            "redis-8.0",
            "valkey-7.4",
            "7.0",
            "redis 7.0",
            "redis-7.0.1.2",
            "rédis-7.0",
        ] {
            assert_eq!(ServerVersion::parse(bad), None, "{bad:?}");
        }
        assert_eq!(ServerVersion::default(), ServerVersion::Redis70);
    }

    #[test]
    fn sets() {
        assert_eq!(ServerSet::ALL.0, 0b11_1111);
        assert_eq!(ServerSet::DATA.0, 0b1_1111);
        for v in ServerVersion::DATA {
            assert!(ServerSet::DATA.has(v) && !v.is_sentinel());
        }
        assert!(!ServerSet::DATA.has(ServerVersion::Sentinel70));
        assert!(ServerVersion::Sentinel70.is_sentinel());
        assert_eq!(
            ServerVersion::parse("sentinel-7.0.15"),
            Some(ServerVersion::Sentinel70)
        );
        for v in ServerVersion::ALL {
            assert!(ServerSet::ALL.has(v));
            assert!(!ServerSet::NONE.has(v));
            assert!(v.set().has(v));
            for w in ServerVersion::ALL {
                assert_eq!(v.set().has(w), v == w);
            }
        }
        assert_eq!(
            format!("{:?}", ServerSet::REDIS72.union(ServerSet::VALKEY80)),
            "ServerSet(redis-7.2 | valkey-8.0)"
        );
    }
}
