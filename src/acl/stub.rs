//! TEMPORARY stand-ins for the command table's ids and key extraction
//! (being generated on another branch); removed at the merge.
#![allow(missing_docs, dead_code)]

use crate::command::{COMMANDS, CommandSpec};
use std::collections::HashMap;
use std::sync::LazyLock;

static IDS: LazyLock<HashMap<&'static str, usize>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for spec in COMMANDS {
        let n = map.len();
        map.insert(spec.name, n);
        for sub in spec.subcommands {
            let n = map.len();
            map.insert(sub.name, n);
        }
    }
    map
});

pub fn id(spec: &CommandSpec) -> usize {
    IDS.get(spec.name).copied().unwrap_or(0)
}

pub fn count() -> usize {
    IDS.len()
}

macro_rules! flags {
    ($name:ident { $($flag:ident = $bit:expr),* }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
        pub struct $name(pub u32);
        impl $name {
            $(pub const $flag: Self = Self(1 << $bit);)*
            pub const fn contains(self, o: Self) -> bool { self.0 & o.0 == o.0 }
            pub const fn intersects(self, o: Self) -> bool { self.0 & o.0 != 0 }
            #[must_use]
            pub const fn union(self, o: Self) -> Self { Self(self.0 | o.0) }
        }
    };
}
flags!(KeyFlags { ACCESS = 0, UPDATE = 1, INSERT = 2, DELETE = 3 });
flags!(ChannelFlags { SUBSCRIBE = 0, UNSUBSCRIBE = 1, PUBLISH = 2, PATTERN = 3 });

#[derive(Clone, Copy, Debug)]
pub struct KeyRef {
    pub pos: usize,
    pub flags: KeyFlags,
}
#[derive(Clone, Copy, Debug)]
pub struct ChannelRef {
    pub pos: usize,
    pub flags: ChannelFlags,
}

pub fn has_keys(spec: &CommandSpec) -> bool {
    spec.first_key > 0
}

pub fn keys<A: AsRef<[u8]>>(spec: &CommandSpec, argv: &[A], out: &mut Vec<KeyRef>) {
    let argc = argv.len() as i64;
    let first = i64::from(spec.first_key);
    if first <= 0 {
        return;
    }
    let mut last = i64::from(spec.last_key);
    if last < 0 {
        last += argc;
    }
    let step = i64::from(spec.key_step).max(1);
    let mut i = first;
    let flags = if spec.flags.contains(crate::command::CommandFlags::WRITE) {
        KeyFlags::ACCESS.union(KeyFlags::UPDATE)
    } else {
        KeyFlags::ACCESS
    };
    while i <= last && i < argc {
        out.push(KeyRef {
            pos: i as usize,
            flags,
        });
        i += step;
    }
}

fn channel_spec(spec: &CommandSpec) -> Option<(ChannelFlags, usize, Option<usize>)> {
    Some(match spec.name {
        "subscribe" | "ssubscribe" => (ChannelFlags::SUBSCRIBE, 1, None),
        "unsubscribe" | "sunsubscribe" => (ChannelFlags::UNSUBSCRIBE, 1, None),
        "psubscribe" => (
            ChannelFlags::PATTERN.union(ChannelFlags::SUBSCRIBE),
            1,
            None,
        ),
        "punsubscribe" => (
            ChannelFlags::PATTERN.union(ChannelFlags::UNSUBSCRIBE),
            1,
            None,
        ),
        "publish" | "spublish" => (ChannelFlags::PUBLISH, 1, Some(1)),
        _ => return None,
    })
}

pub fn has_channels(spec: &CommandSpec, flags: ChannelFlags) -> bool {
    channel_spec(spec).is_some_and(|(f, _, _)| f.intersects(flags))
}

pub fn channels(spec: &CommandSpec, argc: usize, out: &mut Vec<ChannelRef>) {
    if let Some((flags, start, count)) = channel_spec(spec) {
        let stop = count.map_or(argc, |c| (start + c).min(argc));
        for pos in start..stop {
            out.push(ChannelRef { pos, flags });
        }
    }
}

pub fn args_needed(spec: &CommandSpec, argc: usize) -> usize {
    if spec.first_key > 0 && spec.last_key > 0 && channel_spec(spec).is_none() {
        return (spec.last_key as usize + 1).min(argc);
    }
    if matches!(spec.name, "publish" | "spublish") {
        return 2.min(argc);
    }
    argc
}
