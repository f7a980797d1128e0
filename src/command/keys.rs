//! Which arguments of a command are keys, and which are channels, exactly as
//! Redis 7.0.15 (and each [`ServerVersion`]) finds them for its ACL check.
//!
//! - [`keys_for`] is `getKeysFromCommandWithSpecs(cmd, argv, argc,
//!   GET_KEYSPEC_DEFAULT, result)` (`db.c`): the key specs first, and the
//!   command's getkeys procedure when a spec is `incomplete` or has
//!   `variable_flags`, when a spec cannot be used or does not fit the
//!   arguments, or when there are no specs;
//! - [`has_keys`] is `doesCommandHaveKeys`;
//! - [`channels`] and [`has_channels`] are `getChannelsFromCommand` and
//!   `doesCommandHaveChannelsWithFlags` over `commands_with_channels`;
//! - [`args_needed`] says how many leading arguments those answers depend
//!   on, so that a caller can decide before a large value has arrived.
//!
//! This module knows commands, not users: deciding whether a key or channel
//! is allowed is the ACL code's job. Nothing here allocates except by pushing
//! into the caller's vector, which is cleared first and can be reused.
//!
//! `argv` is the whole command, name included (`argv[0]`, and `argv[1]` for
//! a subcommand), and `spec` must be what [`super::resolve`] found for it.
//! Redis only runs this on commands that passed the arity check; for
//! arguments that would not, the answer is still defined and never refers
//! to a missing argument (where Redis would read past `argv`, the spec is
//! taken as not fitting).
//!
//! Arguments are compared as Redis compares them: keywords with `strcasecmp`
//! (up to the first NUL byte, ASCII case-insensitive), key counts with
//! `string2ll` (whole argument) in the specs and `atoi` in the procedures.
//!
//! The releases differ in one place (`tools/import_commands.py` checks the
//! C functions this mirrors, release by release): Redis 7.4 computes the key
//! range of a `keynum` spec in `long` where the others use `int`, so a key
//! count of 2^32 + 1 is 1 key to them and out of range (the getkeys
//! procedure decides) to 7.4.

use super::{
    BeginSearch, ChannelFlags, CommandSpec, FindKeys, GetKeys, KeyFlags, ServerVersion, c_str,
};

/// A key argument: its index in `argv` and what the command does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef {
    /// Index in `argv` (the command name is 0).
    pub pos: usize,
    /// The flags of the key spec that found it, or what the getkeys
    /// procedure says. Several procedures report none, exactly as in Redis,
    /// where `ACLSelectorCheckKey` then asks neither read nor write
    /// permission of a `%R~` / `%W~` pattern.
    pub flags: KeyFlags,
}

/// A channel argument: its index in `argv` and how the command uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelRef {
    /// Index in `argv`.
    pub pos: usize,
    /// Publish, subscribe or unsubscribe, and whether it is a pattern.
    pub flags: ChannelFlags,
}

/// Whether the command may have key arguments at all (`doesCommandHaveKeys`):
/// it has a getkeys procedure, or a key spec that is not `not_key`.
pub fn has_keys(spec: &CommandSpec) -> bool {
    spec.getkeys.is_some() || has_keyspec(spec)
}

fn has_keyspec(spec: &CommandSpec) -> bool {
    spec.key_specs
        .iter()
        .any(|k| !k.flags.contains(KeyFlags::NOT_KEY))
}

/// Whether Redis tries the key specs first: "We prefer key-specs if there
/// are any, and their flags are reliable" (no `variable_flags`).
fn specs_first(spec: &CommandSpec) -> bool {
    has_keyspec(spec)
        && !spec
            .key_specs
            .iter()
            .any(|k| k.flags.contains(KeyFlags::VARIABLE_FLAGS))
}

/// [`keys_for`] in Redis 7.0.
pub fn keys<A: AsRef<[u8]>>(spec: &CommandSpec, argv: &[A], out: &mut Vec<KeyRef>) {
    keys_for(spec, argv, ServerVersion::Redis70, out);
}

/// Replaces the contents of `out` with the key arguments of `argv`, in the
/// order `version` reports them (the order its ACL check tests them in).
pub fn keys_for<A: AsRef<[u8]>>(
    spec: &CommandSpec,
    argv: &[A],
    version: ServerVersion,
    out: &mut Vec<KeyRef>,
) {
    out.clear();
    if specs_first(spec) {
        let long = matches!(version, ServerVersion::Redis74);
        if keys_from_specs(spec, argv, long, out) {
            return;
        }
        out.clear();
    }
    if let Some(proc) = spec.getkeys {
        keys_from_proc(proc, argv, out);
    }
}

/// `getKeysUsingKeySpecs` with `GET_KEYSPEC_DEFAULT`: false where Redis
/// returns -1 (a spec that is unknown, incomplete or does not fit). `long`:
/// the key count is not cut to an `int` (Redis 7.4).
fn keys_from_specs<A: AsRef<[u8]>>(
    spec: &CommandSpec,
    argv: &[A],
    long: bool,
    out: &mut Vec<KeyRef>,
) -> bool {
    // Redis computes in `int`; i64 holds every value it can reach without
    // the overflows its `int` would have (see the keynum case).
    let Ok(argc) = i64::try_from(argv.len()) else {
        return false;
    };
    for ks in spec.key_specs {
        if ks.flags.contains(KeyFlags::NOT_KEY) {
            continue;
        }
        let first = match ks.begin_search {
            BeginSearch::Index { pos } => i64::from(pos),
            BeginSearch::Keyword { keyword, startfrom } => {
                match find_keyword(argv, argc, keyword.as_bytes(), i64::from(startfrom)) {
                    Some(first) => first,
                    // Keyword not found: this spec has no keys, no error.
                    None => continue,
                }
            }
            BeginSearch::Unknown => return false,
        };
        let (first, last, step) = match ks.find_keys {
            FindKeys::Range {
                lastkey,
                step,
                limit,
            } => {
                let (lastkey, limit) = (i64::from(lastkey), i64::from(limit));
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    // Redis asserts lastkey == -1 here.
                    match (argc - first).checked_div(limit) {
                        Some(q) => first + q + lastkey,
                        None => return false,
                    }
                };
                (first, last, i64::from(step))
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                let keynumidx = i64::from(keynumidx);
                // Redis checks `keynumidx >= argc` and then reads
                // argv[first + keynumidx]; an index past argv (never for
                // arguments that pass the arity check) is taken as invalid.
                let Some(count_arg) = arg_at(argv, first + keynumidx) else {
                    return false;
                };
                if keynumidx >= argc {
                    return false;
                }
                let numkeys = match string2ll(count_arg) {
                    Some(n) if n >= 0 => n,
                    _ => return false,
                };
                let first = first + i64::from(firstkey);
                let last = if long {
                    // 7.4: `last = first + (long)numkeys - 1`. Where that
                    // overflows, the wrapped value is out of [first, argc)
                    // as well.
                    match first.checked_add(numkeys - 1) {
                        Some(last) => last,
                        None => return false,
                    }
                } else {
                    // `last = first + (int)numkeys - 1`: the cast keeps the
                    // low 32 bits. Where Redis's int sum would overflow, both
                    // it and this sum fall outside [first, argc) below.
                    first + i64::from(numkeys as i32) - 1
                };
                (first, last, i64::from(step))
            }
            FindKeys::Unknown => return false,
        };
        // "First or last is out of bounds, which indicates a syntax error".
        // A step below 1 (no Redis table has one) would loop forever there.
        if last >= argc || last < first || first >= argc || first < 0 || step < 1 {
            return false;
        }
        let mut i = first;
        while i <= last {
            if let Ok(pos) = usize::try_from(i) {
                out.push(KeyRef {
                    pos,
                    flags: ks.flags,
                });
            }
            i += step;
        }
        // Incomplete specs fail after adding their keys (which only matters
        // with GET_KEYSPEC_RETURN_PARTIAL, not used by the ACL check).
        if ks.flags.contains(KeyFlags::INCOMPLETE) {
            return false;
        }
    }
    true
}

/// The keyword search of `getKeysUsingKeySpecs`: the index just after the
/// keyword, or `None`. Note the end index is exclusive: a keyword that is
/// the last argument (or, searching backwards, `argv[1]`) is never found.
fn find_keyword<A: AsRef<[u8]>>(
    argv: &[A],
    argc: i64,
    keyword: &[u8],
    startfrom: i64,
) -> Option<i64> {
    let (start, end) = if startfrom > 0 {
        (startfrom, argc - 1)
    } else {
        (argc + startfrom, 1)
    };
    let upwards = start <= end;
    let mut i = start;
    while i != end {
        if i >= argc || i < 1 {
            break;
        }
        if arg_at(argv, i).is_some_and(|a| c_str_eq(a, keyword)) {
            return Some(i + 1);
        }
        i = if upwards { i + 1 } else { i - 1 };
    }
    None
}

fn arg_at<A: AsRef<[u8]>>(argv: &[A], i: i64) -> Option<&[u8]> {
    usize::try_from(i)
        .ok()
        .and_then(|i| argv.get(i))
        .map(AsRef::as_ref)
}

/// `!strcasecmp(arg, word)`: equal up to `arg`'s first NUL, ASCII
/// case-insensitive.
fn c_str_eq(arg: &[u8], word: &[u8]) -> bool {
    c_str(arg).eq_ignore_ascii_case(word)
}

/// Redis's `string2ll` on the whole argument: an optional `-`, then digits
/// without a leading zero (or exactly `0`), at most 20 bytes, in range.
fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        // Down to i64::MIN, whose magnitude i64 cannot hold.
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

/// glibc's `atoi`: `(int) strtol(s, NULL, 10)` on the C string: leading
/// white space, an optional sign, digits; out of `long` range it saturates,
/// and the cast to `int` keeps the low 32 bits.
fn atoi(s: &[u8]) -> i32 {
    let s = c_str(s);
    let mut rest = s;
    while let [b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r', tail @ ..] = rest {
        rest = tail;
    }
    let negative = match rest {
        [b'-', tail @ ..] => {
            rest = tail;
            true
        }
        [b'+', tail @ ..] => {
            rest = tail;
            false
        }
        _ => false,
    };
    // The magnitude, capped just above what a long can hold.
    const CAP: u64 = 1 << 63;
    let mut mag: u64 = 0;
    for &d in rest.iter().take_while(|d| d.is_ascii_digit()) {
        mag = mag
            .saturating_mul(10)
            .saturating_add(u64::from(d - b'0'))
            .min(CAP + 1);
    }
    let long: i64 = if negative {
        // -2^63 is in range; anything beyond saturates to LONG_MIN.
        0i64.checked_sub_unsigned(mag).unwrap_or(i64::MIN)
    } else {
        i64::try_from(mag).unwrap_or(i64::MAX)
    };
    long as i32
}

fn push(out: &mut Vec<KeyRef>, argc: usize, pos: usize, flags: KeyFlags) {
    // Redis's procedures rely on the arity check for these positions; past
    // argv (never after that check) there is no key to report.
    if pos < argc {
        out.push(KeyRef { pos, flags });
    }
}

/// The native getkeys procedures of Redis 7.0.15 (`db.c`).
fn keys_from_proc<A: AsRef<[u8]>>(proc: GetKeys, argv: &[A], out: &mut Vec<KeyRef>) {
    match proc {
        GetKeys::Sintercard | GetKeys::ZunionInterDiff | GetKeys::Lmpop | GetKeys::Zmpop => {
            generic(0, 1, 2, argv, out)
        }
        GetKeys::ZunionInterDiffStore => generic(1, 2, 3, argv, out),
        GetKeys::Eval | GetKeys::Function | GetKeys::Blmpop => generic(0, 2, 3, argv, out),
        GetKeys::SortRo => push(out, argv.len(), 1, KeyFlags::RO.union(KeyFlags::ACCESS)),
        GetKeys::Sort => sort(argv, out),
        GetKeys::Migrate => migrate(argv, out),
        GetKeys::Georadius => georadius(argv, out),
        GetKeys::Xread => xread(argv, out),
        GetKeys::Set => set(argv, out),
        GetKeys::Bitfield => bitfield(argv, out),
    }
}

/// `genericGetKeys(storeKeyOfs, keyCountOfs, firstKeyOfs, 1, ...)`:
/// `COMMAND [destkey] <num-keys> <key> ... <options>`. Flags are none.
fn generic<A: AsRef<[u8]>>(
    store: usize,
    count: usize,
    first: usize,
    argv: &[A],
    out: &mut Vec<KeyRef>,
) {
    let argc = argv.len();
    let Some(count_arg) = argv.get(count) else {
        return;
    };
    let num = atoi(count_arg.as_ref());
    // "Don't return any key if the command is going to reply with syntax
    // error": num < 1 || num > (argc - firstKeyOfs) / keyStep.
    let Ok(num) = usize::try_from(num) else {
        return;
    };
    if num < 1 || first > argc || num > argc - first {
        return;
    }
    for i in 0..num {
        push(out, argc, first + i, KeyFlags::NONE);
    }
    if store != 0 {
        push(out, argc, store, KeyFlags::NONE);
    }
}

/// `sortGetKeys`: the sorted key, and the key after the last `STORE`
/// (skipping the arguments of `LIMIT`, `GET` and `BY`, like SORT's parser).
fn sort<A: AsRef<[u8]>>(argv: &[A], out: &mut Vec<KeyRef>) {
    let argc = argv.len();
    push(out, argc, 1, KeyFlags::RO.union(KeyFlags::ACCESS));
    let mut store = None;
    let mut i = 2;
    while let Some(arg) = argv.get(i) {
        let arg = arg.as_ref();
        if c_str_eq(arg, b"limit") {
            i += 2;
        } else if c_str_eq(arg, b"store") && i + 1 < argc {
            // The loop goes on at the store key itself, as Redis's does.
            store = Some(i + 1);
        } else if c_str_eq(arg, b"get") || c_str_eq(arg, b"by") {
            i += 1;
        }
        i += 1;
    }
    if let Some(pos) = store {
        push(out, argc, pos, KeyFlags::OW.union(KeyFlags::UPDATE));
    }
}

/// `migrateGetKeys`: `MIGRATE host port key db timeout [COPY] [REPLACE]
/// [AUTH pw] [AUTH2 user pw] [KEYS k ...]`: the key at 3, or, when the key
/// is empty, the keys after `KEYS` (none when both are given).
fn migrate<A: AsRef<[u8]>>(argv: &[A], out: &mut Vec<KeyRef>) {
    let argc = argv.len();
    let (mut first, mut num) = (3, 1);
    if argc > 6 {
        let mut i = 6;
        while let Some(arg) = argv.get(i) {
            let arg = arg.as_ref();
            if c_str_eq(arg, b"keys") {
                // sdslen(argv[3]) > 0: the whole argument, NULs included.
                if argv.get(3).is_some_and(|k| !k.as_ref().is_empty()) {
                    num = 0;
                } else {
                    first = i + 1;
                    num = argc - first;
                }
                break;
            }
            if c_str_eq(arg, b"auth") {
                i += 1;
            } else if c_str_eq(arg, b"auth2") {
                i += 2;
            }
            i += 1;
        }
    }
    let flags = KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::DELETE);
    for pos in first..first + num {
        push(out, argc, pos, flags);
    }
}

/// `georadiusGetKeys`: the key, and the key after the last `STORE` or
/// `STOREDIST` from argument 5 on. Flags are none.
fn georadius<A: AsRef<[u8]>>(argv: &[A], out: &mut Vec<KeyRef>) {
    let argc = argv.len();
    let mut stored = None;
    let mut i = 5;
    while let Some(arg) = argv.get(i) {
        let arg = arg.as_ref();
        if (c_str_eq(arg, b"store") || c_str_eq(arg, b"storedist")) && i + 1 < argc {
            stored = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    push(out, argc, 1, KeyFlags::NONE);
    if let Some(pos) = stored {
        push(out, argc, pos, KeyFlags::NONE);
    }
}

/// `xreadGetKeys`: `XREAD|XREADGROUP [BLOCK ms] [COUNT n] [GROUP g c]
/// [NOACK] STREAMS k1 ... kN id1 ... idN`: the first half after `STREAMS`,
/// none on a syntax error. Flags are none.
fn xread<A: AsRef<[u8]>>(argv: &[A], out: &mut Vec<KeyRef>) {
    let argc = argv.len();
    let mut streams = None;
    let mut i = 1;
    while let Some(arg) = argv.get(i) {
        let arg = arg.as_ref();
        if c_str_eq(arg, b"block") || c_str_eq(arg, b"count") {
            i += 1;
        } else if c_str_eq(arg, b"group") {
            i += 2;
        } else if c_str_eq(arg, b"noack") {
        } else if c_str_eq(arg, b"streams") {
            streams = Some(i);
            break;
        } else {
            break;
        }
        i += 1;
    }
    let Some(streams) = streams else {
        return;
    };
    let num = argc - streams - 1;
    if num == 0 || num % 2 != 0 {
        return;
    }
    for pos in streams + 1..streams + 1 + num / 2 {
        push(out, argc, pos, KeyFlags::NONE);
    }
}

/// `setGetKeys`: the key, read-write if a `GET` option follows the value,
/// overwritten otherwise.
fn set<A: AsRef<[u8]>>(argv: &[A], out: &mut Vec<KeyRef>) {
    let get = argv.iter().skip(3).any(|a| c_str_eq(a.as_ref(), b"get"));
    let flags = if get {
        KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::UPDATE)
    } else {
        KeyFlags::OW.union(KeyFlags::UPDATE)
    };
    push(out, argv.len(), 1, flags);
}

/// `bitfieldGetKeys`: the key, read-only when every operation is a `GET`
/// (or `OVERFLOW`), read-write on a `SET`, an `INCRBY` or a syntax error.
fn bitfield<A: AsRef<[u8]>>(argv: &[A], out: &mut Vec<KeyRef>) {
    let argc = argv.len();
    let mut readonly = true;
    let mut i = 2;
    while let Some(arg) = argv.get(i) {
        let arg = arg.as_ref();
        let remaining = argc - i - 1;
        if c_str_eq(arg, b"get") && remaining >= 2 {
            i += 2;
        } else if (c_str_eq(arg, b"set") || c_str_eq(arg, b"incrby")) && remaining >= 3 {
            readonly = false;
            break;
        } else if c_str_eq(arg, b"overflow") && remaining >= 1 {
            i += 1;
        } else {
            // "Syntax error. safer to assume non-RO."
            readonly = false;
            break;
        }
        i += 1;
    }
    let flags = if readonly {
        KeyFlags::RO.union(KeyFlags::ACCESS)
    } else {
        KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::UPDATE)
    };
    push(out, argc, 1, flags);
}

/// Whether the command has channel arguments used in any of the ways in
/// `flags` (`doesCommandHaveChannelsWithFlags`). The ACL check asks for
/// `PUBLISH | SUBSCRIBE`: unsubscribing is never refused.
pub fn has_channels(spec: &CommandSpec, flags: ChannelFlags) -> bool {
    spec.channels.is_some_and(|c| c.flags.intersects(flags))
}

/// Replaces the contents of `out` with the channel arguments of a command
/// with `argc` arguments (`getChannelsFromCommand`): they depend only on the
/// count.
pub fn channels(spec: &CommandSpec, argc: usize, out: &mut Vec<ChannelRef>) {
    out.clear();
    let Some(c) = spec.channels else {
        return;
    };
    let start = usize::from(c.start);
    let stop = c
        .count
        .map_or(argc, |n| start.saturating_add(usize::from(n)))
        .min(argc);
    out.extend((start..stop).map(|pos| ChannelRef {
        pos,
        flags: c.flags,
    }));
}

/// How many leading arguments (command name included) [`keys`] and
/// [`channels`] need to see to answer for a command of `argc` arguments:
/// running them on `argv[..n]` gives what they give on the whole `argv`, and
/// every key and channel is inside `argv[..n]`.
///
/// So `SET k <8 MiB>` can be checked once `k` is in (`2`), `MSET k1 v1 k2
/// v2` once `k2` is (`4`), `PUBLISH ch <msg>` once `ch` is (`2`). Where the
/// answer depends on what the arguments say (a keyword search, a key count,
/// most getkeys procedures, or specs that do not fit), or on arguments
/// counted from the end, it is `argc`. Never below the command's own name
/// (1, or 2 for a subcommand), never above `argc`. What the caller needs for
/// itself (a subcommand's name, a first-argument ACL rule) is its business.
pub fn args_needed(spec: &CommandSpec, argc: usize) -> usize {
    let name = if spec.is_subcommand() { 2 } else { 1 };
    let keys = keys_args_needed(spec, argc).unwrap_or(argc);
    let channels = spec.channels.map_or(0, |c| {
        c.count.map_or(argc, |n| {
            usize::from(c.start).saturating_add(usize::from(n))
        })
    });
    name.max(keys).max(channels).min(argc)
}

/// [`args_needed`] for the keys alone; `None` when it depends on contents.
fn keys_args_needed(spec: &CommandSpec, argc: usize) -> Option<usize> {
    // Where Redis is sure to end up in the procedure: a shorter argv fails
    // the specs in the same way (what does not fit argc does not fit less).
    let fallback = || spec.getkeys.map_or(Some(0), |p| proc_args_needed(p, argc));
    if !specs_first(spec) {
        return fallback();
    }
    let argc_i = i64::try_from(argc).ok()?;
    let mut need: i64 = 0;
    for ks in spec.key_specs {
        if ks.flags.contains(KeyFlags::NOT_KEY) {
            continue;
        }
        let (first, lastkey, step, limit) = match (ks.begin_search, ks.find_keys) {
            (BeginSearch::Unknown, _) | (_, FindKeys::Unknown) => return fallback(),
            (
                BeginSearch::Index { pos },
                FindKeys::Range {
                    lastkey,
                    step,
                    limit,
                },
            ) => (i64::from(pos), i64::from(lastkey), i64::from(step), limit),
            // A keyword or a key count is read from the arguments.
            _ => return None,
        };
        let last = if lastkey >= 0 {
            first + lastkey
        } else if lastkey == -1 && limit == 0 {
            argc_i - 1
        } else {
            // Counted from the end: a shorter argv would move it.
            return Some(argc);
        };
        if last >= argc_i || last < first || first < 0 || step < 1 {
            return fallback();
        }
        // The range is read up to `last` for lastkey >= 0 (its bounds check
        // needs argc > last), and up to the last key it reaches for -1 (a
        // shorter argv ends the range at that key all the same).
        let needed = if lastkey >= 0 {
            last + 1
        } else {
            first + (last - first) / step * step + 1
        };
        need = need.max(needed);
        if ks.flags.contains(KeyFlags::INCOMPLETE) {
            return fallback();
        }
    }
    usize::try_from(need).ok()
}

/// [`args_needed`] for a getkeys procedure: only those that read nothing
/// past the key for this `argc` are bounded.
fn proc_args_needed(proc: GetKeys, argc: usize) -> Option<usize> {
    match proc {
        GetKeys::SortRo => Some(2),
        // SET reads from 3 for GET, SORT from 2, BITFIELD from 2.
        GetKeys::Set if argc <= 3 => Some(2),
        GetKeys::Sort | GetKeys::Bitfield if argc <= 2 => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{atoi, string2ll};

    #[test]
    fn string2ll_is_redis_strict() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"12"), Some(12));
        assert_eq!(string2ll(b"-3"), Some(-3));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1\0",
            b"1x",
        ] {
            assert_eq!(string2ll(bad), None, "{bad:?}");
        }
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string2ll(b"9223372036854775808"), None);
        assert_eq!(string2ll(b"-9223372036854775809"), None);
        assert_eq!(string2ll(b"18446744073709551616"), None);
        // 21 bytes is too long, whatever they say.
        assert_eq!(string2ll(b"-0000000000000000001"), None);
    }

    #[test]
    fn atoi_is_glibc() {
        assert_eq!(atoi(b" \t+12x"), 12);
        assert_eq!(atoi(b"\x0b\x0c\r\n7"), 7);
        assert_eq!(atoi(b"-5"), -5);
        assert_eq!(atoi(b"1\x002"), 1);
        assert_eq!(atoi(b""), 0);
        assert_eq!(atoi(b"x1"), 0);
        assert_eq!(atoi(b"- 1"), 0);
        assert_eq!(atoi(b"01"), 1);
        // The low 32 bits of the long.
        assert_eq!(atoi(b"4294967297"), 1);
        assert_eq!(atoi(b"-4294967295"), 1);
        assert_eq!(atoi(b"2147483648"), i32::MIN);
        // Saturated to LONG_MAX / LONG_MIN, then cut.
        assert_eq!(atoi(b"9223372036854775807"), -1);
        assert_eq!(atoi(b"9223372036854775808"), -1);
        assert_eq!(atoi(b"99999999999999999999999"), -1);
        assert_eq!(atoi(b"-9223372036854775808"), 0);
        assert_eq!(atoi(b"-9223372036854775809"), 0);
    }
}
