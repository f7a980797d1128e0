//! Tests of key and channel extraction: exact expectations for each shape,
//! the recorded answers of a real redis-server 7.0.15
//! (`testdata/keys.json`, from `tools/verify_command_keys.py`), and
//! properties over random arguments.

use crate::command::*;
use proptest::prelude::*;

fn spec(argv: &[&[u8]]) -> &'static CommandSpec {
    resolve(argv).unwrap_or_else(|e| panic!("{argv:?}: {e:?}"))
}

/// `(pos, flags)` of the keys of `argv`, as a command line would give it.
fn keys_of(line: &str) -> Vec<(usize, KeyFlags)> {
    let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    let mut out = Vec::new();
    keys(spec(&argv), &argv, &mut out);
    out.iter().map(|k| (k.pos, k.flags)).collect()
}

const RO_ACCESS: KeyFlags = KeyFlags::RO.union(KeyFlags::ACCESS);
const OW_UPDATE: KeyFlags = KeyFlags::OW.union(KeyFlags::UPDATE);
const RW_ACCESS_UPDATE: KeyFlags = KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::UPDATE);
const RW_ACCESS_DELETE: KeyFlags = KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::DELETE);
const NONE: KeyFlags = KeyFlags::NONE;

// ------------------------------------------------------------ key shapes

#[test]
fn index_and_range_specs() {
    assert_eq!(keys_of("get k"), [(1, RO_ACCESS)]);
    assert_eq!(
        keys_of("del a b c"),
        [
            (1, KeyFlags::RM.union(KeyFlags::DELETE)),
            (2, KeyFlags::RM.union(KeyFlags::DELETE)),
            (3, KeyFlags::RM.union(KeyFlags::DELETE)),
        ]
    );
    // Step 2, and an odd count still ends at the last key.
    assert_eq!(
        keys_of("mset a 1 b 2 c"),
        [(1, OW_UPDATE), (3, OW_UPDATE), (5, OW_UPDATE)]
    );
    // lastkey -2: the timeout is not a key.
    assert_eq!(
        keys_of("blpop a b 0"),
        [(1, RW_ACCESS_DELETE), (2, RW_ACCESS_DELETE)]
    );
    // Two specs, two flag sets, in spec order.
    assert_eq!(
        keys_of("lmove src dst LEFT RIGHT"),
        [
            (1, RW_ACCESS_DELETE),
            (2, KeyFlags::RW.union(KeyFlags::INSERT))
        ]
    );
    assert_eq!(keys_of("copy a b"), [(1, RO_ACCESS), (2, OW_UPDATE)]);
    // Subcommands count the container name.
    assert_eq!(keys_of("object encoding k"), [(2, KeyFlags::RO)]);
    assert_eq!(keys_of("MEMORY USAGE k SAMPLES 5"), [(2, KeyFlags::RO)]);
}

#[test]
fn keynum_specs_and_their_fallback() {
    let rw = RW_ACCESS_UPDATE;
    assert_eq!(keys_of("eval s 2 a b x"), [(3, rw), (4, rw)]);
    // numkeys 0 fails the spec (last < first); evalGetKeys finds none.
    assert_eq!(keys_of("eval s 0 x"), []);
    assert_eq!(keys_of("fcall_ro f 1 a"), [(3, RO_ACCESS)]);
    // string2ll refuses "1x"; atoi reads 1: the procedure's key, no flags.
    assert_eq!(keys_of("eval s 1x a"), [(3, NONE)]);
    // (int)4294967297 == 1 in the spec.
    assert_eq!(keys_of("eval s 4294967297 a"), [(3, rw)]);
    // (int)strtol("-4294967295") == 1 in the procedure.
    assert_eq!(keys_of("eval s -4294967295 a"), [(3, NONE)]);
    // The destination comes first from the specs, last from the procedure.
    assert_eq!(
        keys_of("zunionstore d 2 a b WEIGHTS 1 2"),
        [(1, OW_UPDATE), (3, RO_ACCESS), (4, RO_ACCESS)]
    );
    assert_eq!(
        keys_of("zunionstore d 2x a b"),
        [(3, NONE), (4, NONE), (1, NONE)]
    );
    assert_eq!(keys_of("zunionstore d 3 a b"), []);
    assert_eq!(
        keys_of("blmpop 0 2 a b LEFT"),
        [(3, RW_ACCESS_DELETE), (4, RW_ACCESS_DELETE)]
    );
    assert_eq!(keys_of("sintercard 1 a LIMIT 5"), [(2, RO_ACCESS)]);
}

#[test]
fn keynum_counts_are_long_in_7_4() {
    // 2^32 + 1 keys: 7.0 cuts the count to an int (1 key, the spec's
    // flags); 7.4 computes in long, the spec does not fit, and evalGetKeys
    // (atoi, also cut: 1) reports the key without flags.
    let keys_in = |line: &str, v: ServerVersion| {
        let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let mut out = Vec::new();
        keys_for(resolve_for(&argv, v).unwrap(), &argv, v, &mut out);
        out.iter().map(|k| (k.pos, k.flags)).collect::<Vec<_>>()
    };
    let rw = KeyFlags::RW.union(KeyFlags::ACCESS).union(KeyFlags::UPDATE);
    for v in ServerVersion::DATA {
        let want = if v == ServerVersion::Redis74 {
            KeyFlags::NONE
        } else {
            rw
        };
        assert_eq!(keys_in("eval s 4294967297 k", v), [(3, want)], "{v}");
        // Counts that fit an int are read alike.
        assert_eq!(keys_in("eval s 1 k", v), [(3, rw)], "{v}");
    }
    // Past i64 on adding the first key's index: no keys from the spec.
    assert_eq!(
        keys_in("eval s 9223372036854775807 k", ServerVersion::Redis74),
        []
    );
    assert_eq!(
        keys_of("eval s 4294967297 k"),
        keys_in("eval s 4294967297 k", ServerVersion::Redis70)
    );
}

#[test]
fn keyword_specs() {
    // STREAMS, then the first half of the rest.
    assert_eq!(
        keys_of("xread COUNT 1 STREAMS a b 0 0"),
        [(4, RO_ACCESS), (5, RO_ACCESS)]
    );
    // The spec finds the first "streams", even as COUNT's value.
    assert_eq!(keys_of("xread COUNT streams STREAMS a 0"), [(3, RO_ACCESS)]);
    // The keyword is never looked for in the last argument.
    assert_eq!(keys_of("xread BLOCK 0 STREAMS"), []);
    assert_eq!(
        keys_of("xreadgroup GROUP g c STREAMS a 0"),
        [(5, RO_ACCESS)]
    );
    assert_eq!(
        keys_of("georadius g 0 0 1 km STORE a STOREDIST b"),
        [(1, RO_ACCESS), (7, OW_UPDATE), (9, OW_UPDATE)]
    );
    assert_eq!(keys_of("georadius g 0 0 1 km STORE"), [(1, RO_ACCESS)]);
}

#[test]
fn procedures() {
    // SORT: unknown specs, so always sortGetKeys; the last STORE wins.
    assert_eq!(
        keys_of("sort k BY w_* GET # STORE a STORE b"),
        [(1, RO_ACCESS), (9, OW_UPDATE)]
    );
    assert_eq!(keys_of("sort k LIMIT 0 store x"), [(1, RO_ACCESS)]);
    assert_eq!(keys_of("sort_ro k STORE z"), [(1, RO_ACCESS)]);
    // MIGRATE: the key, or (when it is empty) the keys after KEYS.
    assert_eq!(keys_of("migrate h 1 k 0 5000"), [(3, RW_ACCESS_DELETE)]);
    let argv: [&[u8]; 10] = [
        b"migrate", b"h", b"1", b"", b"0", b"5000", b"AUTH", b"keys", b"KEYS", b"a",
    ];
    let mut out = Vec::new();
    keys(spec(&argv), &argv, &mut out);
    assert_eq!(
        out,
        [KeyRef {
            pos: 9,
            flags: RW_ACCESS_DELETE
        }]
    );
    assert_eq!(keys_of("migrate h 1 k 0 5000 KEYS a"), []);
    // SET reads GET anywhere after the value, as a C string.
    assert_eq!(keys_of("set k v"), [(1, OW_UPDATE)]);
    assert_eq!(keys_of("set k v EX 10 get"), [(1, RW_ACCESS_UPDATE)]);
    assert_eq!(keys_of("set k get"), [(1, OW_UPDATE)]);
    let argv: [&[u8]; 4] = [b"set", b"k", b"v", b"GeT\0x"];
    keys(spec(&argv), &argv, &mut out);
    assert_eq!(out[0].flags, RW_ACCESS_UPDATE);
    // BITFIELD: read-only only while every operation is a complete GET.
    assert_eq!(keys_of("bitfield k GET u8 0"), [(1, RO_ACCESS)]);
    assert_eq!(keys_of("bitfield k"), [(1, RO_ACCESS)]);
    assert_eq!(keys_of("bitfield k GET u8"), [(1, RW_ACCESS_UPDATE)]);
    assert_eq!(keys_of("bitfield k INCRBY u8 0 1"), [(1, RW_ACCESS_UPDATE)]);
}

#[test]
fn keyless_and_not_key() {
    for line in [
        "ping",
        "client list",
        "publish ch m",
        "spublish ch m",
        "ssubscribe a b",
    ] {
        let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let s = spec(&argv);
        assert!(!has_keys(s), "{line}");
        assert_eq!(keys_of(line), [], "{line}");
    }
    assert!(has_keys(lookup_command(b"eval").unwrap()));
    assert!(has_keys(lookup_command(b"get").unwrap()));
}

#[test]
fn out_is_cleared_and_reused() {
    let mut out = vec![KeyRef {
        pos: 9,
        flags: NONE,
    }];
    keys(lookup_command(b"ping").unwrap(), &[b"ping"], &mut out);
    assert!(out.is_empty());
    let mut ch = vec![ChannelRef {
        pos: 9,
        flags: ChannelFlags::NONE,
    }];
    channels(lookup_command(b"get").unwrap(), 2, &mut ch);
    assert!(ch.is_empty());
}

// -------------------------------------------------------------- channels

#[test]
fn channel_arguments() {
    let get = |name: &[u8], argc| {
        let mut out = Vec::new();
        channels(lookup_command(name).unwrap(), argc, &mut out);
        out.iter().map(|c| (c.pos, c.flags)).collect::<Vec<_>>()
    };
    let sub = ChannelFlags::SUBSCRIBE;
    let psub = ChannelFlags::PATTERN.union(ChannelFlags::SUBSCRIBE);
    assert_eq!(get(b"publish", 3), [(1, ChannelFlags::PUBLISH)]);
    assert_eq!(get(b"spublish", 3), [(1, ChannelFlags::PUBLISH)]);
    assert_eq!(get(b"subscribe", 3), [(1, sub), (2, sub)]);
    assert_eq!(get(b"ssubscribe", 2), [(1, sub)]);
    assert_eq!(get(b"psubscribe", 2), [(1, psub)]);
    assert_eq!(get(b"unsubscribe", 1), []);
    assert_eq!(
        get(b"punsubscribe", 2),
        [(1, ChannelFlags::PATTERN.union(ChannelFlags::UNSUBSCRIBE))]
    );
    assert_eq!(get(b"publish", 1), []);
    assert_eq!(get(b"get", 2), []);

    let acl = ChannelFlags::PUBLISH.union(ChannelFlags::SUBSCRIBE);
    let mut checked: Vec<&str> = all_specs()
        .filter(|s| has_channels(s, acl))
        .map(|s| s.name)
        .collect();
    checked.sort_unstable();
    assert_eq!(
        checked,
        [
            "psubscribe",
            "publish",
            "spublish",
            "ssubscribe",
            "subscribe"
        ]
    );
    let mut all: Vec<&str> = all_specs()
        .filter(|s| s.channels.is_some())
        .map(|s| s.name)
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        [
            "psubscribe",
            "publish",
            "punsubscribe",
            "spublish",
            "ssubscribe",
            "subscribe",
            "sunsubscribe",
            "unsubscribe"
        ]
    );
}

// ----------------------------------------------------------- args_needed

#[test]
fn args_needed_examples() {
    let n = |line: &str| {
        let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        args_needed(spec(&argv), argv.len())
    };
    assert_eq!(n("set k v"), 2);
    assert_eq!(n("set k v EX 10"), 5);
    assert_eq!(n("get k"), 2);
    assert_eq!(n("append k v"), 2);
    assert_eq!(n("hset h f v f2 v2"), 2);
    assert_eq!(n("mset a 1 b 2 c 3"), 6);
    assert_eq!(n("mset a 1 b 2 c"), 6);
    assert_eq!(n("del a b c d"), 5);
    assert_eq!(n("lmove a b LEFT RIGHT"), 3);
    assert_eq!(n("copy a b DB 1"), 3);
    assert_eq!(n("lcs a b LEN"), 3);
    assert_eq!(n("blpop a b 0"), 4);
    assert_eq!(n("publish ch msg"), 2);
    assert_eq!(n("subscribe a b"), 3);
    assert_eq!(n("object encoding k"), 3);
    assert_eq!(n("client list"), 2);
    assert_eq!(n("ping a"), 1);
    assert_eq!(n("sort_ro k BY x"), 2);
    assert_eq!(n("eval s 1 k"), 4);
    assert_eq!(n("xread STREAMS a 0"), 4);
    assert_eq!(n("georadius g 0 0 1 km"), 6);
    assert_eq!(n("bitfield k"), 2);
    assert_eq!(n("bitfield k GET u8 0"), 5);
    // Never beyond argc, even for an arity-violating count.
    assert_eq!(args_needed(lookup_command(b"get").unwrap(), 1), 1);
    assert_eq!(args_needed(lookup_command(b"get").unwrap(), 0), 0);
}

fn truncation_agrees(s: &CommandSpec, argv: &[Vec<u8>]) -> Result<(), TestCaseError> {
    truncation_agrees_for(s, argv, ServerVersion::Redis70)
}

fn truncation_agrees_for(
    s: &CommandSpec,
    argv: &[Vec<u8>],
    v: ServerVersion,
) -> Result<(), TestCaseError> {
    let n = args_needed(s, argv.len());
    prop_assert!(n <= argv.len());
    let (mut full, mut cut) = (Vec::new(), Vec::new());
    keys_for(s, argv, v, &mut full);
    keys_for(s, &argv[..n], v, &mut cut);
    prop_assert_eq!(&full, &cut, "{} argc {} needed {}", s.name, argv.len(), n);
    prop_assert!(full.iter().all(|k| k.pos < n));
    let (mut full, mut cut) = (Vec::new(), Vec::new());
    channels(s, argv.len(), &mut full);
    channels(s, n, &mut cut);
    prop_assert_eq!(&full, &cut, "{} channels", s.name);
    prop_assert!(full.iter().all(|c| c.pos < n));
    Ok(())
}

// ---------------------------------------------------- the recorded server

fn latin1(v: &serde_json::Value) -> Vec<u8> {
    v.as_str().unwrap().chars().map(|c| c as u8).collect()
}

fn key_flags(names: &serde_json::Value) -> KeyFlags {
    names
        .as_array()
        .unwrap()
        .iter()
        .fold(KeyFlags::NONE, |acc, n| {
            let n = n.as_str().unwrap();
            let (_, f) = KEY_FLAG_NAMES
                .iter()
                .find(|(name, _)| *name == n)
                .unwrap_or_else(|| panic!("unknown key flag {n}"));
            acc.union(*f)
        })
}

/// `testdata/keys.json` is what redis-server 7.0.15 answered, and
/// `keys_newer.json` what the newer releases (built from their tags)
/// answered otherwise (`tools/verify_command_keys.py`).
#[test]
fn matches_recorded_redis_keys() {
    for v in ServerVersion::DATA {
        matches_recorded_keys_of(v);
    }
}

fn matches_recorded_keys_of(v: ServerVersion) {
    let cases = super::tests::recorded_cases(
        include_str!("../testdata/keys.json"),
        include_str!("../testdata/keys_newer.json"),
        v,
    );
    assert!(cases.len() >= 700, "{} cases", cases.len());
    let resolve = |argv: &[Vec<u8>]| resolve_for(argv, v);
    let keys = |s: &CommandSpec, argv: &[Vec<u8>], out: &mut Vec<KeyRef>| keys_for(s, argv, v, out);
    let truncation_agrees = |s: &CommandSpec, argv: &[Vec<u8>]| truncation_agrees_for(s, argv, v);
    let mut with_keys = 0;
    let mut out = Vec::new();
    for case in &cases {
        let argv: Vec<Vec<u8>> = case["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(latin1)
            .collect();
        let shown = format!("{v}: {}", String::from_utf8_lossy(&argv.join(&b' ')));
        if let Some(error) = case["error"].as_str() {
            match error {
                "wrong number of arguments for 'command|getkeysandflags' command" => {
                    // Its arity is -4 in 7.0, -3 from 7.2 on.
                    let min = if v == ServerVersion::Redis70 { 2 } else { 1 };
                    assert!(argv.len() < min, "{shown}");
                }
                "Invalid command specified" => assert!(
                    matches!(
                        resolve(&argv),
                        Err(CommandError::UnknownCommand | CommandError::UnknownSubcommand)
                    ),
                    "{shown}"
                ),
                // Redis asks doesCommandHaveKeys before checking the arity.
                "The command has no key arguments" => {
                    let s = match resolve(&argv) {
                        Ok(s) | Err(CommandError::WrongArity(s)) => s,
                        Err(e) => panic!("{shown}: {e:?}"),
                    };
                    assert!(!has_keys(s), "{shown}");
                    keys(s, &argv, &mut out);
                    assert_eq!(out, [], "{shown}");
                }
                "Invalid number of arguments specified for command" => match resolve(&argv) {
                    Err(CommandError::WrongArity(s)) => assert!(has_keys(s), "{shown}"),
                    other => panic!("{shown}: {other:?}"),
                },
                "Invalid arguments specified for command" => {
                    let s = resolve(&argv).unwrap();
                    assert!(has_keys(s), "{shown}");
                    assert!(
                        !s.flags.contains(CommandFlags::NO_MANDATORY_KEYS),
                        "{shown}"
                    );
                    keys(s, &argv, &mut out);
                    assert_eq!(out, [], "{shown}");
                    truncation_agrees(s, &argv).unwrap();
                }
                other => panic!("{shown}: unexpected error {other}"),
            }
            continue;
        }
        let s = resolve(&argv).unwrap_or_else(|e| panic!("{shown}: {e:?}"));
        assert!(has_keys(s), "{shown}");
        keys(s, &argv, &mut out);
        let expected = case["keys"].as_array().unwrap();
        if expected.is_empty() {
            assert!(s.flags.contains(CommandFlags::NO_MANDATORY_KEYS), "{shown}");
        } else {
            with_keys += 1;
        }
        assert_eq!(out.len(), expected.len(), "{shown}: {out:?}");
        for (got, want) in out.iter().zip(expected) {
            assert_eq!(argv[got.pos], latin1(&want["name"]), "{shown}: {out:?}");
            if let Some(pos) = want["pos"].as_u64() {
                assert_eq!(got.pos as u64, pos, "{shown}");
            }
            assert_eq!(got.flags, key_flags(&want["flags"]), "{shown}: {out:?}");
        }
        truncation_agrees(s, &argv).unwrap();
    }
    assert!(with_keys >= 400, "{with_keys}");
}

// ------------------------------------------------------------ properties

/// Arguments that steer the searches and procedures, and some noise.
fn arg_strategy() -> impl Strategy<Value = Vec<u8>> {
    let words: Vec<&'static [u8]> = vec![
        b"k",
        b"STREAMS",
        b"streams",
        b"KEYS",
        b"keys",
        b"get",
        b"GET\0x",
        b"set",
        b"STORE",
        b"store",
        b"STOREDIST",
        b"limit",
        b"by",
        b"BLOCK",
        b"count",
        b"group",
        b"noack",
        b"incrby",
        b"overflow",
        b"auth",
        b"auth2",
        b"copy",
        b"0",
        b"1",
        b"2",
        b"3",
        b"-1",
        b" 2",
        b"1x",
        b"4294967297",
        b"-4294967295",
        b"",
        b"\0",
    ];
    prop_oneof![
        4 => proptest::sample::select(words).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..6),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn truncated_to_args_needed_agrees(
        id in 0..COMMAND_COUNT,
        rest in proptest::collection::vec(arg_strategy(), 0..12),
    ) {
        let s = spec_by_id(u16::try_from(id).unwrap()).unwrap();
        let mut argv: Vec<Vec<u8>> = s.name.split('|').map(|w| w.as_bytes().to_vec()).collect();
        argv.extend(rest);
        truncation_agrees(s, &argv)?;
    }

    #[test]
    fn never_panics_and_stays_in_argv(
        id in 0..COMMAND_COUNT,
        argv in proptest::collection::vec(arg_strategy(), 0..10),
    ) {
        // Any argv, even one that does not name this command or fit its arity.
        let s = spec_by_id(u16::try_from(id).unwrap()).unwrap();
        let mut out = Vec::new();
        keys(s, &argv, &mut out);
        prop_assert!(out.iter().all(|k| k.pos < argv.len()));
        let mut ch = Vec::new();
        channels(s, argv.len(), &mut ch);
        prop_assert!(ch.iter().all(|c| c.pos < argv.len()));
        prop_assert!(args_needed(s, argv.len()) <= argv.len());
    }
}
