use super::*;

mod keys;
use proptest::prelude::*;

fn reply<A: AsRef<[u8]>>(argv: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    match resolve(argv) {
        Err(e) => write_error_reply(e, argv, &mut out),
        Ok(spec) => panic!("{:?} resolved to {}", bytes_list(argv), spec.name),
    }
    out
}

fn bytes_list<A: AsRef<[u8]>>(argv: &[A]) -> Vec<String> {
    argv.iter()
        .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
        .collect()
}

/// The top-level entries `version` has.
fn top_level(version: ServerVersion) -> impl Iterator<Item = &'static CommandSpec> {
    top_level_commands_for(version)
}

/// The 7.0 entries, top-level and subcommands.
fn specs70() -> impl Iterator<Item = &'static CommandSpec> {
    commands_for(ServerVersion::Redis70)
}

// ------------------------------------------------------------------ table

#[test]
fn table_is_from_7_0_15() {
    assert_eq!(REDIS_VERSION, "7.0.15");
    assert_eq!(ServerVersion::Redis70.release(), ("redis", "7.0.15"));
    // COMMAND COUNT on redis-server 7.0.15.
    assert_eq!(top_level(ServerVersion::Redis70).count(), 240);
}

#[test]
fn every_name_is_lowercase_and_fits_the_lookup_buffer() {
    for spec in all_specs() {
        assert!(spec.name.len() <= super::NAME_LEN_MAX, "{}", spec.name);
        assert_eq!(spec.name, spec.name.to_ascii_lowercase());
    }
    assert!(lookup_command(&[b'g'; super::NAME_LEN_MAX + 1]).is_none());
    assert_eq!(lookup_command(b"gEt").map(|c| c.name), Some("get"));
}

#[test]
fn the_name_index_finds_what_the_table_holds() {
    for version in ServerVersion::ALL {
        for spec in COMMANDS.iter().chain(super::table::NEWER_COMMANDS) {
            let upper = spec.name.to_ascii_uppercase();
            let in_table =
                super::search(COMMANDS, upper.as_bytes(), version, |s| s.name).or_else(|| {
                    super::search(
                        super::table::NEWER_COMMANDS,
                        upper.as_bytes(),
                        version,
                        |s| s.name,
                    )
                });
            let found = lookup_command_for(upper.as_bytes(), version);
            assert_eq!(found.map(|s| s.id), in_table.map(|s| s.id), "{}", spec.name);
            assert_eq!(
                found.is_some(),
                spec.exists_in(version) || in_table.is_some()
            );
        }
        assert!(lookup_command_for(b"nosuchcommand", version).is_none());
        assert!(lookup_command_for(b"get\0", version).is_none());
    }
}

#[test]
fn table_is_sorted_unique_lowercase() {
    // Sorted by name; entries of one name are for disjoint releases, in
    // the order of their first release.
    let check_run = |w: &[CommandSpec]| {
        assert!(w[0].name <= w[1].name, "{} !<= {}", w[0].name, w[1].name);
        if w[0].name == w[1].name {
            assert!(!w[0].servers.intersects(w[1].servers), "{}", w[0].name);
            assert!(w[0].servers.0.trailing_zeros() < w[1].servers.0.trailing_zeros());
        }
    };
    COMMANDS.windows(2).for_each(check_run);
    NEWER_COMMANDS.windows(2).for_each(check_run);
    // COMMANDS is Redis 7.0's table: one entry a name, every one in 7.0,
    // and so are their subcommands; the newer parts have none of 7.0's.
    for w in COMMANDS.windows(2) {
        assert!(w[0].name < w[1].name);
    }
    for c in COMMANDS {
        assert!(c.exists_in(ServerVersion::Redis70), "{}", c.name);
        for s in c.subcommands {
            assert!(s.exists_in(ServerVersion::Redis70), "{}", s.name);
        }
    }
    let newer = NEWER_COMMANDS
        .iter()
        .chain(NEWER_SUBCOMMANDS.iter().flat_map(|&(_, subs)| subs));
    for s in newer {
        assert!(!s.exists_in(ServerVersion::Redis70), "{}", s.name);
    }
    for w in NEWER_SUBCOMMANDS.windows(2) {
        assert!(w[0].0 < w[1].0);
    }
    for &(id, subs) in NEWER_SUBCOMMANDS {
        let container = spec_by_id(id).unwrap();
        assert!(container.is_container() && !subs.is_empty());
        subs.windows(2).for_each(check_run);
        for s in subs {
            assert!(container.servers.contains(s.servers), "{}", s.name);
            assert_eq!(s.name, format!("{}|{}", container.name, s.short_name()));
        }
    }
    // Every release sees each name once, sorted.
    for v in ServerVersion::ALL {
        let names: Vec<&str> = top_level(v).map(|c| c.name).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{v}");
        for c in top_level(v) {
            let subs: Vec<&str> = c.subcommands_for(v).map(|s| s.name).collect();
            assert!(subs.windows(2).all(|w| w[0] < w[1]), "{v} {}", c.name);
        }
    }
    for c in COMMANDS.iter().chain(NEWER_COMMANDS) {
        assert!(!c.name.is_empty());
        assert!(!c.servers.is_empty(), "{}", c.name);
        assert!(ServerSet::ALL.contains(c.servers), "{}", c.name);
        assert!(!c.is_subcommand(), "{}", c.name);
        c.subcommands.windows(2).for_each(check_run);
        for s in c.subcommands {
            assert!(c.servers.contains(s.servers), "{}", s.name);
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
    names.dedup();
    assert_eq!(names, ["auth", "hello", "quit", "reset"]);
    // And each of them is one entry, the same in every data server;
    // Sentinel 7.0 has no QUIT and no RESET (unknown commands there).
    for name in names {
        let servers = if matches!(name, "auth" | "hello") {
            ServerSet::ALL
        } else {
            ServerSet::DATA
        };
        assert_eq!(lookup_command(name.as_bytes()).unwrap().servers, servers);
    }
}

#[test]
fn hidden_flags() {
    let with = |flag: CommandFlags| {
        let mut v: Vec<&str> = specs70()
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
    for v in ServerVersion::DATA {
        let with = |flag: CommandFlags| {
            let mut names: Vec<&str> = commands_for(v)
                .filter(|s| s.flags.contains(flag))
                .map(|s| s.name)
                .collect();
            names.sort_unstable();
            names
        };
        assert_eq!(
            with(CommandFlags::PROTECTED),
            ["debug", "module|load", "module|loadex", "module|unload"]
        );
        let mut replicate = vec!["eval", "evalsha", "fcall", "pfcount", "publish", "spublish"];
        if v == ServerVersion::Valkey80 {
            replicate.insert(0, "cluster|setslot");
        }
        assert_eq!(with(CommandFlags::MAY_REPLICATE), replicate, "{v}");
    }
    let sentinel = commands_for(ServerVersion::Sentinel70);
    let replicate: Vec<&str> = sentinel
        .filter(|s| {
            s.flags
                .intersects(CommandFlags::MAY_REPLICATE.union(CommandFlags::PROTECTED))
        })
        .map(|s| s.name)
        .collect();
    assert_eq!(replicate, ["publish"]);
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
    // A container is one entry, in every release; each release has some of
    // its subcommands.
    for c in COMMANDS.iter().filter(|c| c.is_container()) {
        let sentinel = matches!(c.name, "acl" | "client" | "command");
        let servers = if sentinel {
            ServerSet::ALL
        } else {
            ServerSet::DATA
        };
        assert_eq!(c.servers, servers, "{}", c.name);
        for v in ServerVersion::ALL {
            assert_eq!(is_container_for(c.name.as_bytes(), v), c.servers.has(v));
            assert_eq!(
                c.subcommands_for(v).next().is_some(),
                c.servers.has(v),
                "{} {v}",
                c.name
            );
        }
    }
    // The one newer container: Sentinel's own.
    let newer: Vec<&str> = NEWER_COMMANDS
        .iter()
        .filter(|c| c.is_container())
        .map(|c| c.name)
        .collect();
    assert_eq!(newer, ["sentinel"]);
    assert!(is_container_for(b"SENTINEL", ServerVersion::Sentinel70));
    assert!(!is_container_for(b"sentinel", ServerVersion::Redis70));
}

#[test]
fn known_entries() {
    let get = lookup_command(b"get").unwrap();
    static GET_KEYS: [KeySpec; 1] = [KeySpec {
        flags: KeyFlags::RO.union(KeyFlags::ACCESS),
        begin_search: BeginSearch::Index { pos: 1 },
        find_keys: FindKeys::Range {
            lastkey: 0,
            step: 1,
            limit: 0,
        },
    }];
    assert_eq!(
        *get,
        CommandSpec {
            id: get.id,
            servers: ServerSet::DATA,
            name: "get",
            arity: 2,
            flags: CommandFlags::READONLY.union(CommandFlags::FAST),
            acl_categories: AclCategories::READ
                .union(AclCategories::STRING)
                .union(AclCategories::FAST),
            first_key: 1,
            last_key: 1,
            key_step: 1,
            key_specs: &GET_KEYS,
            getkeys: None,
            channels: None,
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
    // Every entry carries at least one category bit and only known bits.
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

#[test]
fn ids_are_dense_in_table_order() {
    let specs: Vec<&CommandSpec> = all_specs().collect();
    assert_eq!(specs.len(), COMMAND_COUNT);
    // 240 commands and 126 subcommands in 7.0.15, and 61 entries that
    // other releases have or define differently.
    assert_eq!(specs70().count(), 366);
    // And Sentinel's own: SENTINEL and its 21 subcommands.
    assert_eq!(COMMAND_COUNT, 427);
    for (i, s) in specs.iter().enumerate() {
        assert_eq!(usize::from(s.id), i, "{}", s.name);
        let by_id = spec_by_id(s.id).unwrap();
        assert!(core::ptr::eq(by_id, *s), "{}", s.name);
    }
    assert!(spec_by_id(u16::try_from(COMMAND_COUNT).unwrap()).is_none());
    assert!(spec_by_id(u16::MAX).is_none());
    assert_eq!(spec_by_id(0).unwrap().name, "acl");
    assert_eq!(spec_by_id(1).unwrap().name, "acl|cat");
    let kill = lookup_command(b"client")
        .unwrap()
        .lookup_subcommand(b"kill")
        .unwrap();
    assert!(core::ptr::eq(spec_by_id(kill.id).unwrap(), kill));
}

#[test]
fn getkeys_procedures() {
    for v in ServerVersion::DATA {
        getkeys_procedures_of(v);
    }
    // Sentinel has no command with keys at all.
    assert!(
        commands_for(ServerVersion::Sentinel70)
            .all(|s| s.getkeys.is_none() && s.key_specs.is_empty() && s.first_key == 0)
    );
}

fn getkeys_procedures_of(version: ServerVersion) {
    let mut with: Vec<(&str, GetKeys)> = commands_for(version)
        .filter_map(|s| s.getkeys.map(|g| (s.name, g)))
        .collect();
    with.sort_unstable_by_key(|&(n, _)| n);
    use GetKeys as G;
    assert_eq!(
        with,
        [
            ("bitfield", G::Bitfield),
            ("blmpop", G::Blmpop),
            ("bzmpop", G::Blmpop),
            ("eval", G::Eval),
            ("eval_ro", G::Eval),
            ("evalsha", G::Eval),
            ("evalsha_ro", G::Eval),
            ("fcall", G::Function),
            ("fcall_ro", G::Function),
            ("georadius", G::Georadius),
            ("georadiusbymember", G::Georadius),
            ("lmpop", G::Lmpop),
            ("migrate", G::Migrate),
            ("set", G::Set),
            ("sintercard", G::Sintercard),
            ("sort", G::Sort),
            ("sort_ro", G::SortRo),
            ("xread", G::Xread),
            ("xreadgroup", G::Xread),
            ("zdiff", G::ZunionInterDiff),
            ("zdiffstore", G::ZunionInterDiffStore),
            ("zinter", G::ZunionInterDiff),
            ("zintercard", G::ZunionInterDiff),
            ("zinterstore", G::ZunionInterDiffStore),
            ("zmpop", G::Zmpop),
            ("zunion", G::ZunionInterDiff),
            ("zunionstore", G::ZunionInterDiffStore),
        ],
        "{version}"
    );
}

/// `populateCommandLegacyRangeSpec` (`server.c`): the (first, last, step)
/// triple and the `movablekeys` flag Redis derives from the key specs.
fn legacy_from_key_specs(s: &CommandSpec) -> ((i16, i16, i16), bool) {
    let specs = s.key_specs;
    let simple = |k: &KeySpec| match (k.begin_search, k.find_keys) {
        (BeginSearch::Index { pos }, FindKeys::Range { lastkey, step, .. }) => {
            Some((pos, lastkey, step))
        }
        _ => None,
    };
    // addReplyCommandInfo reports lastkey absolute when it is not negative.
    let report = |first: i32, last: i32, step: i32| {
        let last = if last >= 0 { last + first } else { last };
        let cut = |v: i32| i16::try_from(v).unwrap();
        (cut(first), cut(last), cut(step))
    };
    if specs.is_empty() {
        return ((0, 0, 0), false);
    }
    if let [only] = specs {
        if let Some((pos, lastkey, step)) = simple(only) {
            let incomplete = only.flags.contains(KeyFlags::INCOMPLETE);
            return (report(pos, lastkey, step), incomplete);
        }
    }
    let mut movable = false;
    let (mut firstkey, mut lastkey, mut prev_lastkey) = (i32::MAX, 0i32, 0i32);
    for k in specs {
        let Some((pos, last, step)) = simple(k) else {
            movable = true;
            continue;
        };
        if step != 1 || (prev_lastkey != 0 && prev_lastkey != pos - 1) {
            movable = true;
            continue;
        }
        if k.flags.contains(KeyFlags::INCOMPLETE) {
            movable = true;
        }
        firstkey = firstkey.min(pos);
        let abs = if last >= 0 { last + pos } else { last };
        // "we use unsigned comparison to handle negative values correctly"
        lastkey = (lastkey as u32).max(abs as u32) as i32;
        prev_lastkey = lastkey;
    }
    if firstkey == i32::MAX {
        return ((0, 0, 0), true);
    }
    let rel = if lastkey < 0 {
        lastkey
    } else {
        lastkey - firstkey
    };
    (report(firstkey, rel, 1), movable)
}

#[test]
fn key_specs_agree_with_legacy_triple_and_movablekeys() {
    // COMMAND INFO's (first, last, step) and movablekeys come from the key
    // specs; deriving them again checks the specs were read whole.
    for s in all_specs() {
        let (triple, movable) = legacy_from_key_specs(s);
        assert_eq!(triple, (s.first_key, s.last_key, s.key_step), "{}", s.name);
        assert_eq!(
            movable,
            s.flags.contains(CommandFlags::MOVABLEKEYS),
            "{}",
            s.name
        );
    }
    // Only the shard-channel commands have specs but no keys (not_key).
    let mut not_keys: Vec<&str> = specs70()
        .filter(|s| !s.key_specs.is_empty() && !has_keys(s))
        .map(|s| s.name)
        .collect();
    not_keys.sort_unstable();
    assert_eq!(not_keys, ["spublish", "ssubscribe", "sunsubscribe"]);
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
    // Every table entry finds itself in its releases, in any case, and
    // nothing of its name in the others.
    for v in ServerVersion::ALL {
        for c in COMMANDS.iter().chain(NEWER_COMMANDS) {
            let found = lookup_command_for(c.name.as_bytes(), v);
            let upper = c.name.to_ascii_uppercase();
            let found_upper = lookup_command_for(upper.as_bytes(), v);
            assert_eq!(found.map(|f| f.id), found_upper.map(|f| f.id));
            if c.exists_in(v) {
                assert!(core::ptr::eq(found.unwrap(), c));
            } else if let Some(other) = found {
                assert_ne!(other.id, c.id);
            }
            let newer = NEWER_SUBCOMMANDS
                .iter()
                .filter(|&&(id, _)| id == c.id)
                .flat_map(|&(_, subs)| subs);
            for s in c.subcommands.iter().chain(newer) {
                let short = s.short_name().to_ascii_uppercase();
                let found = c.lookup_subcommand_for(short.as_bytes(), v);
                if s.exists_in(v) {
                    assert!(core::ptr::eq(found.unwrap(), s));
                } else if let Some(other) = found {
                    assert!(other.exists_in(v) && other.id != s.id);
                }
            }
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

// ---------------------------------------------------------------- resolve

#[test]
fn resolve_top_level_and_subcommands() {
    assert_eq!(resolve(&["get", "k"]).unwrap().name, "get");
    assert_eq!(resolve(&["PING"]).unwrap().name, "ping");
    // A container alone resolves to itself, then its arity decides.
    assert_eq!(resolve(&["COMMAND"]).unwrap().name, "command");
    assert_eq!(resolve(&["command", "info"]).unwrap().name, "command|info");
    assert_eq!(
        resolve(&["cLiEnT", "LiSt", "extra"]).unwrap().name,
        "client|list"
    );
    assert_eq!(resolve(&["config", "get", "x"]).unwrap().name, "config|get");
    // A non-container ignores argv[1] for lookup.
    assert_eq!(resolve(&["set", "client", "kill"]).unwrap().name, "set");
    // No-auth commands resolve like any other.
    assert!(resolve(&["auth", "pw"]).unwrap().is_no_auth());
    assert!(resolve(&["HELLO"]).unwrap().is_no_auth());
    // Vec<Vec<u8>> works as well as &[&str].
    let argv: Vec<Vec<u8>> = vec![b"get".to_vec(), b"k".to_vec()];
    assert_eq!(resolve(&argv).unwrap().name, "get");
}

#[test]
fn resolve_errors() {
    let none: [&[u8]; 0] = [];
    assert_eq!(resolve(&none), Err(CommandError::Empty));
    assert_eq!(resolve(&["foo"]), Err(CommandError::UnknownCommand));
    assert_eq!(
        resolve(&["client|kill", "1"]),
        Err(CommandError::UnknownCommand)
    );
    assert_eq!(
        resolve(&["client", "nope"]),
        Err(CommandError::UnknownSubcommand)
    );
    assert_eq!(
        resolve(&["client", "list\0"]),
        Err(CommandError::UnknownSubcommand)
    );
    let client = lookup_command(b"client").unwrap();
    assert_eq!(resolve(&["CLIENT"]), Err(CommandError::WrongArity(client)));
    let kill = client.lookup_subcommand(b"kill").unwrap();
    assert_eq!(
        resolve(&["client", "KILL"]),
        Err(CommandError::WrongArity(kill))
    );
    for attack in [&b"POST"[..], b"post", b"Host:", b"host:\0junk", b"post\0"] {
        let err = resolve(&[attack, b"x"]).unwrap_err();
        assert_eq!(err, CommandError::SecurityAttack, "{attack:?}");
        assert!(err.closes_connection());
    }
    for not_attack in ["posts", "host", "post:", " post"] {
        assert_eq!(resolve(&[not_attack]), Err(CommandError::UnknownCommand));
    }
}

// ------------------------------------------------------ exact error bytes

#[test]
fn unknown_command_bytes() {
    assert_eq!(
        reply(&["foo"]),
        b"-ERR unknown command 'foo', with args beginning with: \r\n"
    );
    assert_eq!(
        reply(&["FoO", "a", "b"]),
        b"-ERR unknown command 'FoO', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        reply(&["", ""]),
        b"-ERR unknown command '', with args beginning with: '' \r\n"
    );
    // CR and LF become spaces, anywhere in the message.
    assert_eq!(
        reply(&["fo\r\no", "a\r\nb", "c\rd", "e\nf"]),
        &b"-ERR unknown command 'fo  o', with args beginning with: 'a  b' 'c d' 'e f' \r\n"[..]
    );
    // C strings stop at NUL.
    assert_eq!(
        reply(&[&b"foo\0bar"[..], b"x\0y", b"\0z", b"tail"]),
        &b"-ERR unknown command 'foo', with args beginning with: 'x' '' 'tail' \r\n"[..]
    );
    // Bytes are copied as they are.
    assert_eq!(
        reply(&[&b"\xc3\xa9t\xe9"[..], b"\xff\xfe\x80", b"%s'"]),
        &b"-ERR unknown command '\xc3\xa9t\xe9', with args beginning with: '\xff\xfe\x80' '%s'' \r\n"[..]
    );
}

#[test]
fn unknown_command_truncation() {
    // The name is cut at 128 bytes.
    let name = "n".repeat(300);
    let mut want = b"-ERR unknown command '".to_vec();
    want.extend(std::iter::repeat_n(b'n', 128));
    want.extend_from_slice(b"', with args beginning with: 'a' \r\n");
    assert_eq!(reply(&[name.as_str(), "a"]), want);

    // One argument longer than the budget: 128 bytes of it.
    let long = "x".repeat(200);
    let want = format!(
        "-ERR unknown command 'foo', with args beginning with: '{}' \r\n",
        "x".repeat(128)
    );
    assert_eq!(reply(&["foo", long.as_str()]), want.as_bytes());

    // 'a*124' is 127 bytes of args, so one byte of the next one fits.
    let a124 = "a".repeat(124);
    let want = format!("-ERR unknown command 'foo', with args beginning with: '{a124}' 'b' \r\n");
    assert_eq!(reply(&["foo", a124.as_str(), "bcdef"]), want.as_bytes());
    let a123 = "a".repeat(123);
    let want = format!("-ERR unknown command 'foo', with args beginning with: '{a123}' 'bc' \r\n");
    assert_eq!(reply(&["foo", a123.as_str(), "bcdef"]), want.as_bytes());
    // 'a*125' is exactly 128 bytes: nothing more is added.
    let a125 = "a".repeat(125);
    let want = format!("-ERR unknown command 'foo', with args beginning with: '{a125}' \r\n");
    assert_eq!(reply(&["foo", a125.as_str(), "b"]), want.as_bytes());

    // Many arguments: the list stops once it reaches 128 bytes.
    let mut argv = vec!["foo"];
    argv.extend(std::iter::repeat_n("abc", 50));
    let want = format!(
        "-ERR unknown command 'foo', with args beginning with: {}'ab' \r\n",
        "'abc' ".repeat(21)
    );
    assert_eq!(reply(&argv), want.as_bytes());

    // A NUL inside the budget shortens the argument, not the budget.
    let arg = format!("ab\0{}", "c".repeat(200));
    assert_eq!(
        reply(&["foo", arg.as_str(), "d"]),
        b"-ERR unknown command 'foo', with args beginning with: 'ab' 'd' \r\n"
    );
}

#[test]
fn unknown_subcommand_bytes() {
    assert_eq!(
        reply(&["client", "foo"]),
        b"-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n"
    );
    // The container name is upper-cased; the subcommand keeps its case.
    assert_eq!(
        reply(&["cLiEnT", "FoO", "bar"]),
        b"-ERR unknown subcommand 'FoO'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(
        reply(&["client", "a\r\nb"]),
        b"-ERR unknown subcommand 'a  b'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(
        reply(&[&b"client"[..], b"x\0y"]),
        &b"-ERR unknown subcommand 'x'. Try CLIENT HELP.\r\n"[..]
    );
    assert_eq!(
        reply(&["object", ""]),
        b"-ERR unknown subcommand ''. Try OBJECT HELP.\r\n"
    );
    assert_eq!(
        reply(&[&b"Command"[..], b"\xe9"]),
        &b"-ERR unknown subcommand '\xe9'. Try COMMAND HELP.\r\n"[..]
    );
    let long = "x".repeat(200);
    let want = format!(
        "-ERR unknown subcommand '{}'. Try CONFIG HELP.\r\n",
        "x".repeat(128)
    );
    assert_eq!(reply(&["config", long.as_str()]), want.as_bytes());
}

#[test]
fn wrong_arity_bytes() {
    assert_eq!(
        reply(&["get"]),
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        reply(&["GET", "a", "b"]),
        b"-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        reply(&["CLIENT"]),
        b"-ERR wrong number of arguments for 'client' command\r\n"
    );
    // Subcommands use the lowercase full name with '|'.
    assert_eq!(
        reply(&["CLIENT", "KILL"]),
        b"-ERR wrong number of arguments for 'client|kill' command\r\n"
    );
    assert_eq!(
        reply(&["config", "GET"]),
        b"-ERR wrong number of arguments for 'config|get' command\r\n"
    );
    assert_eq!(
        reply(&["command", "count", "x"]),
        b"-ERR wrong number of arguments for 'command|count' command\r\n"
    );
    // No-auth commands still fail arity first.
    assert_eq!(
        reply(&["auth"]),
        b"-ERR wrong number of arguments for 'auth' command\r\n"
    );
    // A rejected EXEC aborts the transaction, even outside MULTI.
    assert_eq!(
        reply(&["exec", "x"]),
        &b"-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n"[..]
    );
}

#[test]
fn silent_errors_write_nothing() {
    let mut out = b"keep".to_vec();
    write_error_reply(CommandError::Empty, &[] as &[&[u8]], &mut out);
    write_error_reply(CommandError::SecurityAttack, &["POST"], &mut out);
    assert_eq!(out, b"keep");
}

#[test]
fn error_reply_appends() {
    let mut out = b"+OK\r\n".to_vec();
    let argv = ["foo\r\n"];
    write_error_reply(resolve(&argv).unwrap_err(), &argv, &mut out);
    assert_eq!(
        out,
        b"+OK\r\n-ERR unknown command 'foo  ', with args beginning with: \r\n"
    );
}

#[test]
fn noauth_and_protected_bytes() {
    let mut out = Vec::new();
    out.extend_from_slice(noauth_reply(lookup_command(b"get").unwrap()));
    assert_eq!(out, b"-NOAUTH Authentication required.\r\n");
    out.clear();
    out.extend_from_slice(noauth_reply(lookup_command(b"exec").unwrap()));
    assert_eq!(
        out,
        b"-EXECABORT Transaction discarded because of: NOAUTH Authentication required.\r\n"
    );
    out.clear();
    write_protected_reply(lookup_command(b"debug").unwrap(), &mut out);
    assert_eq!(
        out,
        &b"-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", \
you can run it from a local connection, otherwise you need to set this option in the \
configuration file, and then restart the server.\r\n"[..]
    );
    out.clear();
    write_protected_reply(resolve(&["module", "load", "x"]).unwrap(), &mut out);
    assert!(out.starts_with(b"-ERR MODULE command not allowed. If the enable-module-command"));
    out.clear();
    write_protected_reply(resolve(&["module", "list"]).unwrap(), &mut out);
    assert!(out.is_empty());
}

// --------------------------------------------- recorded real-server replies

fn latin1(v: &serde_json::Value) -> Vec<u8> {
    v.as_str()
        .unwrap()
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect()
}

/// The recorded cases of `version`: 7.0's fixture with the newer fixture's
/// cases of `version` laid over it (by argv), then those 7.0's lacks.
pub(super) fn recorded_cases(
    base: &str,
    newer: &str,
    version: ServerVersion,
) -> Vec<serde_json::Value> {
    let base: serde_json::Value = serde_json::from_str(base).unwrap();
    let newer: serde_json::Value = serde_json::from_str(newer).unwrap();
    let mut cases: Vec<serde_json::Value> = base.as_array().unwrap().clone();
    for case in newer.as_array().unwrap() {
        if case["server"].as_str().unwrap() != version.name() {
            continue;
        }
        match cases.iter_mut().find(|c| c["argv"] == case["argv"]) {
            Some(c) => *c = case.clone(),
            None => cases.push(case.clone()),
        }
    }
    cases
}

/// `testdata/unauthenticated_replies.json` holds what a real redis-server
/// 7.0.15 (`--requirepass`) replied to each argv sent by an unauthenticated
/// client, and `unauthenticated_replies_newer.json` what the newer releases
/// (built from their tags) answered otherwise; `tools/verify_command_errors.py`
/// records and re-checks both.
#[test]
fn matches_recorded_redis_replies() {
    for v in ServerVersion::DATA {
        matches_recorded_replies_of(v);
    }
}

fn matches_recorded_replies_of(v: ServerVersion) {
    let cases = recorded_cases(
        include_str!("../testdata/unauthenticated_replies.json"),
        include_str!("../testdata/unauthenticated_replies_newer.json"),
        v,
    );
    assert!(cases.len() > 140);
    let texts = v.texts();
    let mut seen = [false; 8];
    let mut texts_checked = 0;
    for case in &cases {
        let argv: Vec<Vec<u8>> = case["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(latin1)
            .collect();
        let want = latin1(&case["reply"]);
        let closed = case["closed"].as_bool().unwrap();
        let requirepass = case["requirepass"].as_bool().unwrap();
        let shown = format!("{v}: {:?}", bytes_list(&argv));
        let mut got = Vec::new();
        match resolve_for(&argv, v) {
            Err(e) => {
                seen[match e {
                    CommandError::Empty => 0,
                    CommandError::SecurityAttack => 1,
                    CommandError::UnknownCommand => 2,
                    CommandError::UnknownSubcommand => 3,
                    CommandError::WrongArity(_) => 4,
                }] = true;
                write_error_reply_for(e, &argv, v, &mut got);
                assert_eq!(got, want, "{shown}");
                assert_eq!(e.closes_connection(), closed, "{shown}");
            }
            Ok(spec) if spec.is_no_auth() => {
                // The server ran it; its reply is the command's business,
                // but the fixed texts of ServerTexts are checked here.
                seen[5] = true;
                assert!(!want.starts_with(b"-ERR unknown"), "{shown}");
                assert!(!want.starts_with(b"-ERR wrong number"), "{shown}");
                assert!(!want.starts_with(b"-NOAUTH Authentication required."));
                let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
                let expected: Option<&[u8]> = match args.as_slice() {
                    [b"hello"] | [b"hello", b"3"] => Some(texts.hello_noauth),
                    [b"hello", b"4"] | [b"hello", b"1"] => Some(texts.noproto),
                    [b"hello", b"x"] => Some(texts.hello_bad_version),
                    [b"hello", b"3", b"setname", b"a b", ..] => Some(texts.bad_client_name),
                    [b"hello", b"3", b"auth", b"default", b"bad", b"setname", _] => {
                        Some(if texts.hello_auth_after_options {
                            texts.bad_client_name
                        } else {
                            texts.wrongpass
                        })
                    }
                    [b"hello", b"3", b"auth", b"default", b"bad", b"foo"] => {
                        Some(if texts.hello_auth_after_options {
                            b"-ERR Syntax error in HELLO option 'foo'\r\n"
                        } else {
                            texts.wrongpass
                        })
                    }
                    [b"hello", b"2", b"auth", b"default", b"bad"]
                    | [b"auth", b"wrong"]
                    | [b"auth", b"default", b"bad"] => Some(texts.wrongpass),
                    [b"auth", b"a", b"b", b"c"] => Some(texts.syntax_error),
                    [b"auth", b"x"] if !requirepass => Some(texts.auth_without_password),
                    _ => None,
                };
                if let Some(expected) = expected {
                    texts_checked += 1;
                    assert_eq!(
                        String::from_utf8_lossy(&want),
                        String::from_utf8_lossy(expected),
                        "{shown}"
                    );
                }
            }
            Ok(spec) if spec.flags.contains(CommandFlags::PROTECTED) => {
                seen[6] = true;
                write_protected_reply_for(spec, v, &mut got);
                assert_eq!(got, want, "{shown}");
                assert!(!closed);
            }
            Ok(spec) => {
                seen[7] = true;
                assert!(requirepass, "{shown} would have run");
                got.extend_from_slice(noauth_reply_for(spec, v));
                assert_eq!(got, want, "{shown}");
                assert!(!closed);
            }
        }
    }
    assert_eq!(seen, [true; 8], "every outcome is covered");
    assert_eq!(texts_checked, 14, "{v}");
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
    fn never_panics_and_replies_are_one_clean_line(
        argv in proptest::collection::vec(arg_strategy(), 0..40)
    ) {
        let mut out = Vec::new();
        match resolve(&argv) {
            Ok(spec) => {
                prop_assert!(spec.arity_accepts(argv.len()));
                out.extend_from_slice(noauth_reply(spec));
                write_protected_reply(spec, &mut out);
            }
            Err(e) => {
                write_error_reply(e, &argv, &mut out);
                if matches!(e, CommandError::Empty | CommandError::SecurityAttack) {
                    prop_assert!(out.is_empty());
                    return Ok(());
                }
                // One error line: '-' ... CRLF, no other CR or LF, bounded size.
                prop_assert!(out.len() < 128 + 128 + 3 + 100);
            }
        }
        for line in out.split_inclusive(|&b| b == b'\n') {
            prop_assert_eq!(line.first(), Some(&b'-'));
            prop_assert!(line.ends_with(b"\r\n"));
            let body = &line[..line.len() - 2];
            prop_assert!(!body.contains(&b'\r') && !body.contains(&b'\n'));
        }
    }

    #[test]
    fn lookup_agrees_with_a_linear_scan(name in arg_strategy()) {
        for v in ServerVersion::ALL {
            let linear = top_level(v).find(|c| c.name.as_bytes().eq_ignore_ascii_case(&name));
            prop_assert_eq!(lookup_command_for(&name, v), linear);
        }
        let linear = top_level(ServerVersion::Redis70)
            .find(|c| c.name.as_bytes().eq_ignore_ascii_case(&name));
        prop_assert_eq!(lookup_command(&name), linear);
    }
}

// --------------------------------------------------------------- releases

/// The names `version` has that Redis 7.0 has not, and those it defines
/// otherwise (by entry).
fn differences_from_7_0(version: ServerVersion) -> (Vec<&'static str>, Vec<&'static str>) {
    let r70 = ServerVersion::Redis70;
    let (mut new, mut changed) = (Vec::new(), Vec::new());
    for s in commands_for(version) {
        let old = match s.name.split_once('|') {
            None => lookup_command_for(s.name.as_bytes(), r70),
            Some((c, sub)) => lookup_command_for(c.as_bytes(), r70)
                .and_then(|c| c.lookup_subcommand_for(sub.as_bytes(), r70)),
        };
        match old {
            None => new.push(s.name),
            Some(old) if old.id != s.id => changed.push(s.name),
            Some(_) => {}
        }
    }
    new.sort_unstable();
    changed.sort_unstable();
    (new, changed)
}

#[test]
fn releases_differ_from_7_0_as_their_digests_say() {
    use ServerVersion as V;
    // COMMAND COUNT and the number of entries with subcommands, as the
    // servers built from the tags report them.
    let counts: Vec<(usize, usize)> = ServerVersion::ALL
        .iter()
        .map(|&v| (top_level(v).count(), commands_for(v).count()))
        .collect();
    assert_eq!(
        counts,
        [
            (240, 366),
            (241, 370),
            (250, 379),
            (241, 370),
            (241, 373),
            (15, 72)
        ]
    );
    // Sentinel: what `redis-server --sentinel` 7.0.15 has (checked against
    // it by tools/gen_command_table.py), each entry Redis 7.0's own but
    // SENTINEL and its subcommands.
    let sentinel: Vec<&str> = top_level(V::Sentinel70).map(|c| c.name).collect();
    assert_eq!(
        sentinel,
        [
            "acl",
            "auth",
            "client",
            "command",
            "hello",
            "info",
            "ping",
            "psubscribe",
            "publish",
            "punsubscribe",
            "role",
            "sentinel",
            "shutdown",
            "subscribe",
            "unsubscribe"
        ]
    );
    let (new, changed) = differences_from_7_0(V::Sentinel70);
    assert!(changed.is_empty(), "{changed:?}");
    assert_eq!(new.len(), 22);
    assert!(new.iter().all(|n| n.starts_with("sentinel")));

    let since_72 = [
        "client|no-touch",
        "client|setinfo",
        "cluster|myshardid",
        "waitaof",
    ];
    let changed_72 = [
        "blmove",
        "blpop",
        "brpop",
        "brpoplpush",
        "bzpopmax",
        "bzpopmin",
        "cluster|shards",
        "cluster|slots",
        "command|getkeys",
        "command|getkeysandflags",
        "wait",
        "zrank",
        "zrevrank",
    ];
    assert_eq!(differences_from_7_0(V::Redis70), (vec![], vec![]));
    assert_eq!(
        differences_from_7_0(V::Redis72),
        (since_72.to_vec(), changed_72.to_vec())
    );
    assert_eq!(
        differences_from_7_0(V::Valkey72),
        differences_from_7_0(V::Redis72)
    );
    let (new, changed) = differences_from_7_0(V::Redis74);
    let mut hash_ttl = vec![
        "hexpire",
        "hexpireat",
        "hexpiretime",
        "hpersist",
        "hpexpire",
        "hpexpireat",
        "hpexpiretime",
        "hpttl",
        "httl",
    ];
    hash_ttl.extend(since_72);
    hash_ttl.sort_unstable();
    assert_eq!(new, hash_ttl);
    let mut changed_74 = changed_72.to_vec();
    changed_74.push("sinterstore");
    changed_74.sort_unstable();
    assert_eq!(changed, changed_74);
    let (new, changed) = differences_from_7_0(V::Valkey80);
    let mut new_80 = since_72.to_vec();
    new_80.extend(["client|capa", "cluster|slot-stats", "script|show"]);
    new_80.sort_unstable();
    assert_eq!(new, new_80);
    let mut changed_80 = changed_74;
    changed_80.extend([
        "cluster|info",
        "cluster|myid",
        "cluster|nodes",
        "cluster|setslot",
        "multi",
        "watch",
    ]);
    changed_80.sort_unstable();
    assert_eq!(changed, changed_80);
}

#[test]
fn release_differences_that_reach_acl_verdicts() {
    use ServerVersion as V;
    let cmd = |name: &str, v| lookup_command_for(name.as_bytes(), v).unwrap();
    let in_category = |cat: AclCategories, v| -> Vec<&str> {
        let mut names: Vec<&str> = commands_for(v)
            .filter(|s| s.acl_categories.intersects(cat))
            .map(|s| s.name)
            .collect();
        names.sort_unstable();
        names
    };
    // WAIT (and WAITAOF) are @blocking from 7.4 and Valkey 8 on.
    for v in ServerVersion::DATA {
        let blocking = in_category(AclCategories::BLOCKING, v);
        let late = matches!(v, V::Redis74 | V::Valkey80);
        assert_eq!(blocking.contains(&"wait"), late, "{v}");
        assert_eq!(blocking.contains(&"waitaof"), late, "{v}");
        assert_eq!(
            cmd("wait", v)
                .acl_categories
                .contains(AclCategories::BLOCKING),
            late
        );
    }
    // The new commands are in the categories of their kind, and only where
    // they exist: `+@hash` reaches HEXPIRE on 7.4 alone.
    assert!(in_category(AclCategories::HASH, V::Redis74).contains(&"hexpire"));
    for v in [V::Redis70, V::Redis72, V::Valkey72, V::Valkey80] {
        assert!(
            !in_category(AclCategories::HASH, v).contains(&"hexpire"),
            "{v}"
        );
        assert!(lookup_command_for(b"hexpire", v).is_none());
    }
    assert!(in_category(AclCategories::CONNECTION, V::Valkey80).contains(&"client|capa"));
    assert!(in_category(AclCategories::SCRIPTING, V::Valkey80).contains(&"script|show"));
    // Every release has exactly the 7.0 category names and bits.
    for v in ServerVersion::DATA {
        let all = commands_for(v).fold(AclCategories::NONE, |a, s| a.union(s.acl_categories));
        assert_eq!(all, AclCategories::ALL, "{v}");
    }
    // SINTERSTORE's destination is OW from 7.4 / Valkey 8 on (was RW): the
    // same read/write permission test (only access/update/insert/delete
    // count), so the same verdicts.
    for v in ServerVersion::DATA {
        let dst = cmd("sinterstore", v).key_specs[0].flags;
        let ow = matches!(v, V::Redis74 | V::Valkey80);
        assert_eq!(dst.contains(KeyFlags::OW), ow, "{v}");
        assert_eq!(dst.contains(KeyFlags::RW), !ow, "{v}");
        assert!(dst.contains(KeyFlags::UPDATE) && !dst.contains(KeyFlags::ACCESS));
    }
    // Valkey 8 refuses MULTI and WATCH inside MULTI with "Command not
    // allowed inside a transaction" (no_multi) before the ACL check.
    for v in ServerVersion::DATA {
        let no_multi = v == V::Valkey80;
        assert_eq!(
            cmd("multi", v).flags.contains(CommandFlags::NO_MULTI),
            no_multi
        );
        assert_eq!(
            cmd("watch", v).flags.contains(CommandFlags::NO_MULTI),
            no_multi
        );
    }
}

#[test]
fn resolve_for_each_release() {
    use ServerVersion as V;
    let outcome = |argv: &[&str], v| match resolve_for(argv, v) {
        Ok(s) => s.name.to_owned(),
        Err(CommandError::WrongArity(s)) => format!("arity {}", s.name),
        Err(e) => format!("{e:?}"),
    };
    for v in ServerVersion::DATA {
        let r70 = v == V::Redis70;
        assert_eq!(
            outcome(&["ZRANK", "z", "m", "WITHSCORE"], v),
            if r70 { "arity zrank" } else { "zrank" }
        );
        assert_eq!(
            outcome(&["client", "no-touch", "on"], v),
            if r70 {
                "UnknownSubcommand"
            } else {
                "client|no-touch"
            }
        );
        assert_eq!(
            outcome(&["waitaof", "0", "0", "0"], v),
            if r70 { "UnknownCommand" } else { "waitaof" }
        );
        assert_eq!(
            outcome(&["hexpire", "h", "1", "FIELDS", "1", "f"], v),
            if v == V::Redis74 {
                "hexpire"
            } else {
                "UnknownCommand"
            }
        );
        assert_eq!(
            outcome(&["client", "capa", "redirect"], v),
            if v == V::Valkey80 {
                "client|capa"
            } else {
                "UnknownSubcommand"
            }
        );
        assert_eq!(
            outcome(&["command", "getkeys", "get"], v),
            if r70 {
                "arity command|getkeys"
            } else {
                "command|getkeys"
            }
        );
        assert_eq!(outcome(&["get", "k"], v), "get");
        // The entry found is the one of the release asked for.
        let blpop = resolve_for(&["blpop", "l", "0"], v).unwrap();
        assert!(blpop.exists_in(v));
        assert_eq!(blpop.flags.contains(CommandFlags::NOSCRIPT), r70);
    }
    // The 7.0 forms are the Redis70 ones.
    assert_eq!(
        resolve(&["zrank", "z", "m", "withscore"]),
        resolve_for(&["zrank", "z", "m", "withscore"], V::Redis70)
    );
    assert!(core::ptr::eq(
        lookup_command(b"blpop").unwrap(),
        lookup_command_for(b"blpop", V::Redis70).unwrap()
    ));
}
