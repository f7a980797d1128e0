use super::*;
use proptest::prelude::*;

fn all_specs() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS
        .iter()
        .flat_map(|c| core::iter::once(c).chain(c.subcommands.iter()))
}

// ------------------------------------------------------------------ table

#[test]
fn table_is_from_7_0_15() {
    assert_eq!(REDIS_VERSION, "7.0.15");
    // COMMAND COUNT on redis-server 7.0.15.
    assert_eq!(COMMANDS.len(), 240);
}

#[test]
fn table_is_sorted_unique_lowercase() {
    for w in COMMANDS.windows(2) {
        assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
    }
    for c in COMMANDS {
        assert!(!c.name.is_empty());
        assert!(!c.is_subcommand(), "{}", c.name);
        for w in c.subcommands.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
        for s in c.subcommands {
            assert_eq!(s.name, format!("{}|{}", c.name, s.short_name()));
            assert!(s.subcommands.is_empty(), "{} is nested", s.name);
            assert!(s.is_subcommand());
        }
    }
    for s in all_specs() {
        assert!(
            s.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_|-".contains(&b)),
            "{}",
            s.name
        );
    }
}

#[test]
fn no_auth_commands_are_exactly_auth_hello_quit_reset() {
    let mut names: Vec<&str> = all_specs()
        .filter(|s| s.is_no_auth())
        .map(|s| s.name)
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["auth", "hello", "quit", "reset"]);
}

#[test]
fn hidden_flags() {
    let with = |flag: CommandFlags| {
        let mut v: Vec<&str> = all_specs()
            .filter(|s| s.flags.contains(flag))
            .map(|s| s.name)
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(
        with(CommandFlags::MAY_REPLICATE),
        ["eval", "evalsha", "fcall", "pfcount", "publish", "spublish"]
    );
    assert_eq!(
        with(CommandFlags::PROTECTED),
        ["debug", "module|load", "module|loadex", "module|unload"]
    );
}

#[test]
fn containers() {
    let mut names: Vec<&str> = COMMANDS
        .iter()
        .filter(|c| c.is_container())
        .map(|c| c.name)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "acl", "client", "cluster", "command", "config", "function", "latency", "memory",
            "module", "object", "pubsub", "script", "slowlog", "xgroup", "xinfo"
        ]
    );
    assert!(is_container(b"CLIENT"));
    assert!(is_container(b"xInfo"));
    assert!(!is_container(b"get"));
    assert!(!is_container(b"nope"));
    assert!(!is_container(b"client|kill"));
}

#[test]
fn known_entries() {
    let get = lookup_command(b"get").unwrap();
    assert_eq!(
        *get,
        CommandSpec {
            name: "get",
            arity: 2,
            flags: CommandFlags::READONLY.union(CommandFlags::FAST),
            acl_categories: AclCategories::READ
                .union(AclCategories::STRING)
                .union(AclCategories::FAST),
            first_key: 1,
            last_key: 1,
            key_step: 1,
            subcommands: &[],
        }
    );

    let mset = lookup_command(b"mset").unwrap();
    assert_eq!(
        (mset.arity, mset.first_key, mset.last_key, mset.key_step),
        (-3, 1, -1, 2)
    );
    assert!(
        mset.flags
            .contains(CommandFlags::WRITE.union(CommandFlags::DENYOOM))
    );

    let client = lookup_command(b"client").unwrap();
    assert_eq!(client.arity, -2);
    assert_eq!(client.flags, CommandFlags::NONE);
    assert_eq!(client.acl_categories, AclCategories::SLOW);
    let kill = client.lookup_subcommand(b"KILL").unwrap();
    assert_eq!(kill.name, "client|kill");
    assert_eq!(kill.short_name(), "kill");
    assert_eq!(kill.arity, -3);
    assert!(kill.flags.contains(CommandFlags::ADMIN));
    assert!(
        kill.acl_categories.contains(
            AclCategories::ADMIN
                .union(AclCategories::DANGEROUS)
                .union(AclCategories::CONNECTION)
        )
    );

    let auth = lookup_command(b"AUTH").unwrap();
    assert!(auth.is_no_auth());
    assert!(
        auth.flags
            .contains(CommandFlags::NO_AUTH.union(CommandFlags::ALLOW_BUSY))
    );

    let blpop = lookup_command(b"blpop").unwrap();
    assert!(blpop.flags.contains(CommandFlags::BLOCKING));
    assert!(blpop.acl_categories.contains(AclCategories::BLOCKING));
    assert_eq!(
        (blpop.first_key, blpop.last_key, blpop.key_step),
        (1, -2, 1)
    );

    let eval = lookup_command(b"eval").unwrap();
    assert!(eval.flags.contains(CommandFlags::MOVABLEKEYS));
    assert!(eval.acl_categories.contains(AclCategories::SCRIPTING));

    let subscribe = lookup_command(b"subscribe").unwrap();
    assert!(subscribe.flags.contains(CommandFlags::PUBSUB));
    assert!(
        lookup_command(b"multi")
            .unwrap()
            .acl_categories
            .contains(AclCategories::TRANSACTION)
    );
    assert!(
        lookup_command(b"del")
            .unwrap()
            .acl_categories
            .contains(AclCategories::KEYSPACE)
    );

    assert_eq!(lookup_command(b"command").unwrap().arity, -1);
    assert_eq!(
        lookup_command(b"config")
            .unwrap()
            .lookup_subcommand(b"get")
            .unwrap()
            .arity,
        -3
    );
}

#[test]
fn flag_and_category_names_are_in_bit_order() {
    for (i, (_, f)) in COMMAND_FLAG_NAMES.iter().enumerate() {
        assert_eq!(f.0, 1 << i);
    }
    for (i, (_, c)) in ACL_CATEGORY_NAMES.iter().enumerate() {
        assert_eq!(c.0, 1 << i);
    }
    assert_eq!(ACL_CATEGORY_NAMES.len(), 21);
    let all = ACL_CATEGORY_NAMES
        .iter()
        .fold(AclCategories::NONE, |a, &(_, c)| a.union(c));
    assert_eq!(all, AclCategories::ALL);
    // Every command carries at least one category bit and only known bits.
    for s in all_specs() {
        assert!(!s.acl_categories.is_empty(), "{}", s.name);
        assert!(AclCategories::ALL.contains(s.acl_categories));
    }
    assert_eq!(
        AclCategories::from_name(b"SortedSet"),
        Some(AclCategories::SORTEDSET)
    );
    assert_eq!(AclCategories::from_name(b"all"), None);
    assert_eq!(AclCategories::from_name(b"@read"), None);
}

#[test]
fn debug_formatting() {
    assert_eq!(
        format!("{:?}", CommandFlags::WRITE.union(CommandFlags::NO_AUTH)),
        "CommandFlags(write | no_auth)"
    );
    assert_eq!(format!("{:?}", CommandFlags::NONE), "CommandFlags()");
    assert_eq!(
        format!("{:?}", CommandFlags(1 << 31)),
        "CommandFlags(0x80000000)"
    );
    assert_eq!(
        format!("{:?}", AclCategories::READ.union(AclCategories(1 << 30))),
        "AclCategories(read | 0x40000000)"
    );
}

// ----------------------------------------------------------------- lookup

#[test]
fn lookup_is_ascii_case_insensitive_and_exact_length() {
    for name in [&b"get"[..], b"GET", b"gEt"] {
        assert_eq!(lookup_command(name).unwrap().name, "get");
    }
    assert_eq!(
        lookup_command(b"RESTORE-ASKING").unwrap().name,
        "restore-asking"
    );
    assert_eq!(lookup_command(b"Bitfield_RO").unwrap().name, "bitfield_ro");
    for name in [
        &b""[..],
        b"ge",
        b"gett",
        b"get\0",
        b"get ",
        b" get",
        b"client|kill",
        b"\xc7et",
        b"\xff",
    ] {
        assert_eq!(lookup_command(name), None, "{name:?}");
    }
    // Every table entry finds itself, in any case.
    for c in COMMANDS {
        assert!(core::ptr::eq(lookup_command(c.name.as_bytes()).unwrap(), c));
        let upper = c.name.to_ascii_uppercase();
        assert!(core::ptr::eq(lookup_command(upper.as_bytes()).unwrap(), c));
        for s in c.subcommands {
            let short = s.short_name().to_ascii_uppercase();
            assert!(core::ptr::eq(
                c.lookup_subcommand(short.as_bytes()).unwrap(),
                s
            ));
        }
    }
}

#[test]
fn arity() {
    let get = lookup_command(b"get").unwrap();
    assert!(!get.arity_accepts(0));
    assert!(!get.arity_accepts(1));
    assert!(get.arity_accepts(2));
    assert!(!get.arity_accepts(3));
    assert!(!get.arity_accepts(usize::MAX));
    let mset = lookup_command(b"mset").unwrap();
    assert!(!mset.arity_accepts(2));
    assert!(mset.arity_accepts(3));
    assert!(mset.arity_accepts(4));
    assert!(mset.arity_accepts(usize::MAX));
}

// ------------------------------------------------------------- properties

fn arg_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(
            prop_oneof![
                Just(b'a'),
                Just(b'A'),
                Just(b'\r'),
                Just(b'\n'),
                Just(0u8),
                Just(b'|')
            ],
            0..200
        ),
        prop_oneof![
            Just(b"client".to_vec()),
            Just(b"CONFIG".to_vec()),
            Just(b"get".to_vec()),
            Just(b"kill".to_vec()),
            Just(b"exec".to_vec()),
            Just(b"post".to_vec()),
        ],
    ]
}

proptest! {
    #[test]
    fn lookup_agrees_with_a_linear_scan(name in arg_strategy()) {
        let linear = COMMANDS.iter().find(|c| c.name.as_bytes().eq_ignore_ascii_case(&name));
        prop_assert_eq!(lookup_command(&name), linear);
    }
}
