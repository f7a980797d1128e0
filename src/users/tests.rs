use super::*;

const NOT_SHOWN: &str = "Error in ACL SETUSER modifier (not shown: it may hold a password): ";
use crate::acl::{KeyPattern, RuleError, Selector, SelectorRule};
use proptest::prelude::*;

const HASH_A: &str = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
const FULL: &str = "~* &* +@all";

fn parse(line: &str) -> User {
    match parse_acl_line(line) {
        Ok(parsed) => parsed.user,
        Err(e) => panic!("{line:?} refused: {e}"),
    }
}

fn error(line: &str) -> String {
    match parse_acl_line(line) {
        Ok(parsed) => panic!("{line:?} accepted: {:?}", parsed.user),
        Err(e) => e.to_string(),
    }
}

fn warnings(line: &str) -> Vec<String> {
    parse_acl_line(line)
        .unwrap()
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A directory holding the user of `line` besides a disabled default.
fn directory(line: &str) -> UserDirectory {
    let user = parse(line);
    if user.name() == DEFAULT_USER {
        UserDirectory::new(user, Vec::new()).unwrap()
    } else {
        UserDirectory::new(User::default_disabled(), vec![user]).unwrap()
    }
}

fn accepts(line: &str, password: &str) -> bool {
    let dir = directory(line);
    let name = dir.users().last().unwrap().name().to_owned();
    dir.authenticate(name.as_bytes(), password.as_bytes())
        .is_ok()
}

#[test]
fn basic_line() {
    let user = parse("user alice on >alicepw ~* &* +@all");
    assert_eq!(user.name(), "alice");
    assert!(user.is_enabled());
    assert!(!user.is_nopass());
    assert_eq!(user.password_count(), 1);
    assert!(user.permissions().is_full());
    assert!(accepts("user alice on >alicepw ~* &* +@all", "alicepw"));
    assert!(!accepts("user alice on >alicepw ~* &* +@all", "alicepW"));
    assert!(!accepts("user alice on >alicepw ~* &* +@all", ""));
    assert!(warnings("user alice on >alicepw ~* &* +@all").is_empty());
}

#[test]
fn keywords_are_case_insensitive_passwords_are_not() {
    let line = "user alice ON >PassWord ALLKEYS AllChannels +@ALL";
    assert!(parse(line).permissions().is_full());
    assert!(accepts(line, "PassWord"));
    assert!(!accepts(line, "password"));
    assert!(parse("user a On NoPass AllCommands ALLKEYS &*").is_nopass());
    assert!(
        parse("user a on nopass -@ALL +@aLL ~* RESETCHANNELS &*")
            .permissions()
            .is_full()
    );
}

#[test]
fn user_keyword_is_case_sensitive_like_redis() {
    let expected = "an ACL line must start with 'user' (in lower case) followed by the user name";
    assert_eq!(error("User alice on >pw ~* &* +@all"), expected);
    assert_eq!(error("alice on >pw ~* &* +@all"), expected);
    assert_eq!(error("user"), expected);
    assert_eq!(error(""), expected);
    assert_eq!(error("   \t\r\n"), expected);
}

#[test]
fn rotation_two_passwords_both_work_and_remove_one() {
    let line = format!("user app on >old >new {FULL}");
    assert!(accepts(&line, "old"));
    assert!(accepts(&line, "new"));
    assert!(!accepts(&line, "other"));
    let line = format!("user app on >old >new <old {FULL}");
    assert!(!accepts(&line, "old"));
    assert!(accepts(&line, "new"));
    assert_eq!(parse(&line).password_count(), 1);
}

#[test]
fn removing_an_absent_password_is_an_error_like_redis() {
    assert_eq!(
        error(&format!("user app on >a <b {FULL}")),
        format!(
            "user 'app': rule 3: {NOT_SHOWN}The password you are trying to remove from the \
                 user does not exist"
        )
    );
    // Redis: "The password you are trying to remove from the user does
    // not exist", for `<` with nothing after it too.
    assert!(error(&format!("user app on >a < {FULL}")).contains("rule 3: Error"));
    // Order matters: removing before adding fails.
    assert!(error(&format!("user app on <a >a {FULL}")).contains("rule 2: Error"));
}

#[test]
fn duplicate_passwords_are_stored_once_like_redis() {
    let line = format!("user app on >p >p <p {FULL}");
    assert_eq!(parse(&line).password_count(), 0);
    assert!(!accepts(&line, "p"));
    assert_eq!(
        warnings(&line),
        ["user 'app' has no password and is not 'nopass', so clients cannot authenticate as it"]
    );
    // A hash of the same password is the same entry.
    let line = format!("user app on >a #{HASH_A} {FULL}");
    assert_eq!(parse(&line).password_count(), 1);
}

#[test]
fn hash_rules() {
    assert!(accepts(&format!("user app on #{HASH_A} {FULL}"), "a"));
    assert!(!accepts(&format!("user app on #{HASH_A} {FULL}"), HASH_A));
    let upper = HASH_A.to_ascii_uppercase();
    assert!(accepts(&format!("user app on #{upper} {FULL}"), "a"));
    let mixed = format!("{}{}", &HASH_A[..32], &upper[32..]);
    assert!(accepts(&format!("user app on #{mixed} {FULL}"), "a"));
    // `!` removes by hash, whichever way the password was added.
    let line = format!("user app on >a >b !{upper} {FULL}");
    assert!(!accepts(&line, "a"));
    assert!(accepts(&line, "b"));
    assert_eq!(
        error(&format!("user app on >b !{HASH_A} {FULL}")),
        format!(
            "user 'app': rule 3: {NOT_SHOWN}The password you are trying to remove from the \
                 user does not exist"
        )
    );
}

#[test]
fn malformed_hashes_are_refused_without_echo() {
    for rule in [
        "#".to_owned(),
        "#abc".to_owned(),
        format!("#{HASH_A}0"),
        format!("#{}", &HASH_A[1..]),
        format!("#{}z", &HASH_A[1..]),
        "#my-secret-password-hash-attempt".to_owned(),
    ] {
        let message = error(&format!("user app on {rule} {FULL}"));
        assert_eq!(
            message,
            format!(
                "user 'app': rule 2: {NOT_SHOWN}The password hash must be exactly 64 \
                     characters and contain only hexadecimal characters"
            )
        );
    }
    let message = error(&format!("user app on !not-a-hash-secret {FULL}"));
    assert!(message.starts_with(&format!("user 'app': rule 2: {NOT_SHOWN}The password hash")));
    assert!(!message.contains("not-a-hash-secret"));
}

#[test]
fn nopass_then_password_clears_nopass() {
    // Redis: ">pw" clears nopass; "nopass" clears the passwords.
    let line = format!("user app on nopass >pw {FULL}");
    let user = parse(&line);
    assert!(!user.is_nopass());
    assert!(accepts(&line, "pw"));
    assert!(!accepts(&line, "anything"));
    let line = format!("user app on #{HASH_A} nopass {FULL}");
    assert!(parse(&line).is_nopass());
    assert_eq!(parse(&line).password_count(), 0);
    assert!(accepts(&line, "anything"));
    assert!(accepts(&line, ""));
    // Re-adding after nopass: only the new one.
    let line = format!("user app on >a nopass >b {FULL}");
    assert!(!accepts(&line, "a"));
    assert!(accepts(&line, "b"));
    // `<` after nopass: the list is empty.
    assert!(error(&format!("user app on >a nopass <a {FULL}")).contains("rule 4: Error"));
}

#[test]
fn resetpass_clears_passwords_and_nopass() {
    let line = format!("user app on >a >b resetpass {FULL}");
    assert_eq!(parse(&line).password_count(), 0);
    assert!(!accepts(&line, "a"));
    assert!(!accepts(&line, "b"));
    let line = format!("user app on nopass resetpass {FULL}");
    assert!(!parse(&line).is_nopass());
    assert!(!accepts(&line, ""));
    assert!(!accepts(&line, "x"));
    let line = format!("user app on >a resetpass >c {FULL}");
    assert!(accepts(&line, "c"));
    assert!(!accepts(&line, "a"));
}

#[test]
fn reset_returns_to_a_new_user() {
    // After reset: off, no password, no permissions.
    let user = parse(&format!("user app on >a {FULL} (~x +get) reset"));
    assert_eq!(user.permissions(), &crate::acl::Permissions::default());
    let line = format!("user app on >a nopass {FULL} reset {FULL}");
    let user = parse(&line);
    assert!(!user.is_enabled());
    assert!(!user.is_nopass());
    assert_eq!(user.password_count(), 0);
    let line = format!("user app on >a {FULL} reset on >b {FULL}");
    assert!(accepts(&line, "b"));
    assert!(!accepts(&line, "a"));
    // reset also clears key patterns, so '~x' after it is allowed
    // (then overridden by ~*).
    assert!(
        parse("user app ~* reset ~x ~* &* +@all")
            .permissions()
            .is_full()
    );
}

#[test]
fn full_access_spellings() {
    for rules in [
        "~* &* +@all",
        "allkeys allchannels allcommands",
        "~app:* ~* &* +@all",
        "~app:* allkeys &news allchannels +@all",
        "nocommands +@all ~* &*",
        "-@all allcommands ~* &*",
        "~* resetkeys ~* resetchannels &* -@all +@all",
        "~* &* +@all clearselectors sanitize-payload",
    ] {
        let user = parse(&format!("user app on >pw {rules}"));
        assert!(user.permissions().is_full(), "{rules}");
    }
    // A `*` pattern is a pattern, not `allkeys`: Redis's glob does not
    // match the empty key with it, so the check cannot be skipped.
    for rules in ["%RW~* &* +@all", "%R~* %W~* &* +@all", "~* -get &* +get"] {
        let user = parse(&format!("user app on >pw {rules}"));
        assert!(!user.permissions().is_full(), "{rules}");
    }
}

fn root(line: &str) -> Selector {
    parse(line).permissions().root().clone()
}

#[test]
fn narrower_permissions_are_kept_in_order() {
    let user = parse("user bob on >pw ~app:* %R~r:* %W~w:* %R~app:* &news:* +get");
    let root = user.permissions().root();
    assert!(!user.permissions().is_full());
    let keys: Vec<String> = root
        .key_patterns()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(keys, ["~app:*", "%R~r:*", "%W~w:*"]);
    assert_eq!(root.channel_patterns(), ["news:*"]);
    let get = crate::command::lookup_command(b"get").unwrap();
    let set = crate::command::lookup_command(b"set").unwrap();
    assert!(root.allows_command_bit(get));
    assert!(!root.allows_command_bit(set));
    // A new user has nothing: Redis 7's acl-pubsub-default is resetchannels.
    let none = root_of_new();
    assert!(!none.all_keys() && !none.all_channels() && !none.allows_all_commands());
}

fn root_of_new() -> Selector {
    root("user bob")
}

#[test]
fn command_rules_follow_acl_set_selector() {
    let config = crate::command::lookup_command(b"config").unwrap();
    let config_get = config.lookup_subcommand(b"get").unwrap();
    let config_set = config.lookup_subcommand(b"set").unwrap();
    let r = root("user bob +config -config|set");
    assert!(r.allows_command_bit(config) && r.allows_command_bit(config_get));
    assert!(!r.allows_command_bit(config_set));
    let r = root("user bob +@all -config");
    assert!(!r.allows_all_commands() && !r.allows_command_bit(config_get));
    assert!(r.allows_future_commands());
    let r = root("user bob +@all -@all");
    assert!(!r.allows_future_commands());
    // +@read then -@write; categories reach subcommands.
    let r = root("user bob +@read");
    let get = crate::command::lookup_command(b"get").unwrap();
    assert!(r.allows_command_bit(get) && !r.allows_command_bit(config_get));
    // First arguments: reset by a later rule for the command.
    let select = crate::command::lookup_command(b"select").unwrap();
    let r = root("user bob +select|0 +SELECT|0 +select|1");
    assert_eq!(r.first_args(select), ["0", "1"]);
    assert!(
        root("user bob +select|0 -select")
            .first_args(select)
            .is_empty()
    );
    assert!(
        root("user bob +select|0 +@all")
            .first_args(select)
            .is_empty()
    );
}

#[test]
fn selectors() {
    let user = parse("user bob on >pw ~a (~s:* +get) (%R~r:* +@read &x)");
    let extra = user.permissions().extra();
    assert_eq!(extra.len(), 2);
    assert_eq!(extra[0].key_patterns()[0].pattern, "s:*");
    assert_eq!(extra[1].channel_patterns(), ["x"]);
    assert!(
        parse("user bob (~a +get) clearselectors")
            .permissions()
            .extra()
            .is_empty()
    );
    assert!(
        parse("user bob (~a +get) reset")
            .permissions()
            .extra()
            .is_empty()
    );
    // An empty selector, and one with unbalanced quotes (Redis makes it
    // empty too).
    assert_eq!(parse("user bob ()").permissions().extra().len(), 1);
    assert_eq!(
        error("user bob on >pw ~* (~x +get"),
        "user 'bob': rule 4: Error in ACL SETUSER modifier (not shown: it may hold a \
             password): Unmatched parenthesis in acl selector"
    );
    assert_eq!(
        error("user bob on (~x +nosuch)"),
        "user 'bob': rule 2: Error in ACL SETUSER modifier '(~x +nosuch)': Unknown command \
             or category name in ACL"
    );
    // Only selector rules inside a selector.
    assert!(error("user bob (on)").contains("Syntax error"));
    assert!(error("user bob (>pw)").contains("not shown"));
}

#[test]
fn rule_errors_are_redis_texts() {
    assert_eq!(
        error("user bob on >pw ~* &* +@all +@nosuch"),
        "user 'bob': rule 6: Error in ACL SETUSER modifier '+@nosuch': Unknown command or \
             category name in ACL"
    );
    assert!(error("user bob +nosuch").contains("'+nosuch': Unknown command"));
    assert!(error("user bob +config|get|x").contains("first-arg of a subcommand"));
    assert!(error("user bob +get|").contains("'+get|': Syntax error"));
}

#[test]
fn patterns_after_star_are_errors_like_redis() {
    let keys = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and \
                    does not have any effect. Try 'resetkeys' to start with an empty list of \
                    patterns";
    assert_eq!(
        error("user bob on >pw ~* ~foo &* +@all"),
        format!("user 'bob': rule 4: Error in ACL SETUSER modifier '~foo': {keys}")
    );
    assert!(error("user bob on >pw allkeys %R~foo").contains("'%R~foo': Adding a pattern"));
    assert!(error("user bob on >pw ~* &* &foo +@all").contains("'allchannels' flag"));
}

#[test]
fn malformed_key_rules() {
    for rule in ["%~*", "%", "%RR~*", "%RWR~*", "%X~*", "%R-*", "%~"] {
        assert_eq!(
            error(&format!("user bob on >pw {rule} &* +@all")),
            format!("user 'bob': rule 3: Error in ACL SETUSER modifier '{rule}': Syntax error")
        );
    }
    assert!(error("user bob on >pw ~a\tb &* +@all").contains("'~a\\tb': Syntax error"));
    assert!(error("user bob on >pw ~* &a\u{b}b +@all").contains("Syntax error"));
}

#[test]
fn unknown_rules_are_not_echoed() {
    let message = error("user bob on hunter2-secret ~* &* +@all");
    assert_eq!(
        message,
        "user 'bob': rule 2: Error in ACL SETUSER modifier (not shown: it may hold a \
             password): Syntax error"
    );
    assert!(error("user bob on ~* &* +@all foo").contains("rule 5: Error"));
    assert!(!error("user bob on ~* &* +@all allkey").contains("allkey"));
}

#[test]
fn empty_and_oversize_passwords() {
    assert_eq!(
        error(&format!("user bob on > {FULL}")),
        "user 'bob': rule 2: Error in ACL SETUSER modifier (not shown: it may hold a \
             password): Empty password: '>' must be followed by the password (the proxy \
             refuses the empty password Redis would add)"
    );
    // A '>' whose password is only trimmed characters is empty too.
    assert!(error(&format!("user bob on >\t {FULL}")).contains("Empty password"));
    let long = "x".repeat(MAX_PASSWORD_LEN + 1);
    assert_eq!(
        error(&format!("user bob on >{long} {FULL}")),
        "user 'bob': rule 2: Error in ACL SETUSER modifier (not shown: it may hold a \
             password): Password too long for the proxy"
    );
    assert!(error(&format!("user bob on <{long} {FULL}")).contains("Password too long"));
    let max = "x".repeat(MAX_PASSWORD_LEN);
    assert!(accepts(&format!("user bob on >{max} {FULL}"), &max));
}

#[test]
fn too_many_passwords() {
    let mut line = String::from("user bob on");
    for i in 0..MAX_PASSWORDS_PER_USER {
        line.push_str(&format!(" >p{i}"));
    }
    line.push_str(" >p0 ~* &* +@all");
    assert_eq!(parse(&line).password_count(), MAX_PASSWORDS_PER_USER);
    line.push_str(" >one-more");
    assert_eq!(
        error(&line),
        format!(
            "user 'bob': rule {}: Error in ACL SETUSER modifier (not shown: it may hold a \
                 password): Too many passwords for one user",
            MAX_PASSWORDS_PER_USER + 6
        )
    );
}

#[test]
fn splitting_and_trimming_follow_acl_load_from_file() {
    // The line is trimmed of " \t\r\n"; words are split on single
    // spaces; each rule is trimmed of "\t\r\n".
    let line = "  user app on  >p\t   ~* &* +@all \r\n";
    assert!(accepts(line, "p"));
    assert!(!accepts(line, "p\t"));
    assert!(accepts("user app on >p\r ~* &* +@all", "p"));
    // Inside a password, tabs and CRs are kept.
    assert!(accepts("user app on >p\tq ~* &* +@all", "p\tq"));
    assert!(accepts("user app on >p\rq ~* &* +@all", "p\rq"));
    // A tab is not a separator: "on\tnopass" is one unknown rule.
    assert!(
        error("user app on\tnopass ~* &* +@all")
            .contains("rule 1: Error in ACL SETUSER modifier (not shown")
    );
    assert_eq!(
        error("user app on >a\n ~* &* +@all"),
        "ACL line contains a line break; give each user its own entry"
    );
}

#[test]
fn usernames() {
    assert_eq!(
        error("user  alice on"),
        "empty user name (more than one space after 'user'?)"
    );
    assert_eq!(
        error("user a\u{1}b on ~* &* +@all"),
        "user name 'a\\u{1}b' contains a control character"
    );
    assert_eq!(
        error("user a\tb on ~* &* +@all"),
        "user name 'a\\tb' contains a control character"
    );
    assert!(error("user a\u{7f} on ~* &* +@all").contains("control character"));
    let long = "u".repeat(MAX_USERNAME_LEN + 1);
    assert_eq!(
        error(&format!("user {long} on ~* &* +@all")),
        "user name is longer than 4096 bytes"
    );
    // Anything else goes, as in Redis: ">pw" is a valid name.
    assert_eq!(parse("user >pw on nopass ~* &* +@all").name(), ">pw");
    assert_eq!(parse("user émile on nopass ~* &* +@all").name(), "émile");
    assert_eq!(validate_username("ok"), Ok(()));
    assert_eq!(validate_username(""), Err(AclErrorKind::EmptyUsername));
}

#[test]
fn long_line_and_long_quotes() {
    let line = format!("user a on {}", "~* ".repeat(MAX_ACL_LINE_LEN / 3 + 1));
    assert_eq!(error(&line), "ACL line is longer than 524288 bytes");
    let pattern = "k".repeat(500);
    let message = error(&format!("user a on ~{pattern} ~* ~{pattern}"));
    assert!(message.len() < 300, "{message}");
    assert!(message.contains('…'));
}

#[test]
fn warnings_for_suspicious_users() {
    assert_eq!(
        warnings("user bob >pw ~* &* +@all"),
        ["user 'bob' is off, so clients cannot authenticate as it (add 'on' to enable it)"]
    );
    assert_eq!(
        warnings("user bob on ~* &* +@all"),
        ["user 'bob' has no password and is not 'nopass', so clients cannot authenticate as it"]
    );
    assert_eq!(
        warnings("user bob on nopass skip-sanitize-payload ~* &* +@all"),
        [
            "user 'bob': 'skip-sanitize-payload' has no effect at the proxy (RESTORE payloads \
              are sanitized as the upstream server and user decide)"
        ]
    );
    assert!(
        warnings("user bob on nopass skip-sanitize-payload sanitize-payload ~* &* +@all")
            .is_empty()
    );
    assert!(
        warnings("user bob on nopass skip-sanitize-payload reset on nopass ~* &* +@all").is_empty()
    );
}

#[test]
fn selector_descriptions_parse_back_even_with_quotes() {
    // A pattern with a quote (it came in quoted) is described quoted, as
    // sdssplitargs reads it back (a fuzz finding).
    let rule = AclRule::parse(r#"(~"a)\"b" +get)"#).unwrap();
    let described = rule.describe().unwrap();
    assert_eq!(described, r#"("~a)\"b" +get)"#);
    assert_eq!(AclRule::parse(&described).unwrap(), rule);
}

#[test]
fn rule_parse_and_describe() {
    assert_eq!(AclRule::parse("ON"), Ok(AclRule::On));
    assert_eq!(
        AclRule::parse("~*"),
        Ok(AclRule::Root(SelectorRule::AllKeys))
    );
    assert_eq!(AclRule::parse(""), Err(RuleError::Syntax));
    assert_eq!(
        AclRule::parse("%w~k*"),
        Ok(AclRule::Root(SelectorRule::KeyPattern(KeyPattern {
            pattern: "k*".to_owned(),
            read: false,
            write: true
        })))
    );
    assert_eq!(AclRule::parse(">pw").unwrap().describe(), None);
    assert_eq!(
        AclRule::parse("(~x +GET)").unwrap().describe().as_deref(),
        Some("(~x +get)")
    );
    for rule in [
        "on",
        "off",
        "nopass",
        "resetpass",
        "reset",
        "~*",
        "resetkeys",
        "~k",
        "%R~k",
        "%W~k",
        "&*",
        "resetchannels",
        "&c",
        "+@all",
        "-@all",
        "+get",
        "-@read",
        "+config|get",
        "-config|set",
        "+select|0",
        "clearselectors",
        "sanitize-payload",
        "skip-sanitize-payload",
    ] {
        assert_eq!(
            AclRule::parse(rule).unwrap().describe().as_deref(),
            Some(rule)
        );
    }
    assert_eq!(
        AclRule::parse("allkeys").unwrap().describe().as_deref(),
        Some("~*")
    );
}

#[test]
fn directory_authenticate() {
    let alice = parse("user alice on >a1 >a2 ~* &* +@all");
    let bob = parse("user bob off >b ~* &* +@all");
    let carol = parse("user carol on nopass ~* &* +@all");
    let dir = UserDirectory::new(
        User::default_with_password(b"defpw"),
        vec![alice, bob, carol],
    )
    .unwrap();
    assert_eq!(dir.len(), 4);
    assert!(!dir.is_empty());
    let id = dir.authenticate(b"alice", b"a2").unwrap();
    assert_eq!(dir.user_name(id), "alice");
    assert_eq!(dir.authenticate(b"alice", b"a1"), Ok(id));
    assert_eq!(
        dir.authenticate(b"alice", b"a3"),
        Err(AuthFailure::WrongPassword)
    );
    assert_eq!(
        dir.authenticate(b"Alice", b"a1"),
        Err(AuthFailure::UnknownUser)
    );
    assert_eq!(
        dir.authenticate(b"bob", b"b"),
        Err(AuthFailure::UserDisabled)
    );
    assert_eq!(
        dir.authenticate(b"nobody", b""),
        Err(AuthFailure::UnknownUser)
    );
    let carol = dir.authenticate(b"carol", b"whatever").unwrap();
    assert_eq!(dir.user_name(carol), "carol");
    assert_eq!(dir.authenticate(b"default", b"defpw"), Ok(UserId::DEFAULT));
    assert_eq!(
        dir.authenticate(b"default", b"x"),
        Err(AuthFailure::WrongPassword)
    );
    assert_eq!(dir.user_name(UserId::DEFAULT), "default");
    assert_eq!(dir.find(b"bob").map(|id| dir.user_name(id)), Some("bob"));
    assert!(!dir.default_user_is_nopass());
    assert!(!dir.authenticated_on_connect());
    // An id from a bigger directory.
    let small = UserDirectory::no_auth();
    assert_eq!(small.user_name(carol), "");
    assert!(small.user(carol).is_none());
    assert_eq!(AuthFailure::UnknownUser.to_string(), "unknown user");
    assert_eq!(AuthFailure::UserDisabled.to_string(), "user is disabled");
    assert_eq!(AuthFailure::WrongPassword.to_string(), "wrong password");
}

#[test]
fn default_user_states() {
    let open = UserDirectory::no_auth();
    assert!(open.default_user_is_nopass());
    assert!(open.authenticated_on_connect());
    assert_eq!(
        open.authenticate(b"default", b"anything"),
        Ok(UserId::DEFAULT)
    );
    assert_eq!(open.len(), 1);

    let disabled = UserDirectory::new(User::default_disabled(), Vec::new()).unwrap();
    assert!(!disabled.default_user_is_nopass());
    assert!(!disabled.authenticated_on_connect());
    assert_eq!(
        disabled.authenticate(b"default", b""),
        Err(AuthFailure::UserDisabled)
    );

    // Redis refuses `AUTH <password>` for a nopass default user even
    // when it is off; such a user does not authenticate on connect.
    let off_nopass = directory("user default off nopass ~* &* +@all");
    assert!(off_nopass.default_user_is_nopass());
    assert!(!off_nopass.authenticated_on_connect());

    let with_password = directory("user default on >pw ~* &* +@all");
    assert!(!with_password.default_user_is_nopass());
    assert!(!with_password.authenticated_on_connect());
    assert_eq!(
        with_password.authenticate(b"default", b"pw"),
        Ok(UserId::DEFAULT)
    );
}

#[test]
fn directory_invariants() {
    let user = |name: &str| parse(&format!("user {name} on nopass ~* &* +@all"));
    assert_eq!(
        UserDirectory::new(user("alice"), Vec::new()),
        Err(DirectoryError::DefaultUserMisnamed)
    );
    assert_eq!(
        UserDirectory::new(User::default_disabled(), vec![user("default")]),
        Err(DirectoryError::DefaultUserRedefined)
    );
    assert_eq!(
        UserDirectory::new(
            User::default_disabled(),
            vec![user("a"), user("b"), user("a")]
        ),
        Err(DirectoryError::DuplicateUser("a".to_owned()))
    );
    let many: Vec<User> = (0..=MAX_USERS).map(|i| user(&format!("u{i}"))).collect();
    assert_eq!(
        UserDirectory::new(User::default_disabled(), many),
        Err(DirectoryError::TooManyUsers)
    );
    let many: Vec<User> = (0..MAX_USERS).map(|i| user(&format!("u{i}"))).collect();
    let dir = UserDirectory::new(User::default_disabled(), many).unwrap();
    let last = dir.authenticate(b"u999", b"").unwrap();
    assert_eq!(dir.user_name(last), "u999");
    assert_eq!(
        DirectoryError::TooManyUsers.to_string(),
        "more than 1000 users"
    );
    assert_eq!(
        DirectoryError::DuplicateUser("a".into()).to_string(),
        "user 'a' is defined twice"
    );
}

#[test]
fn debug_output_holds_no_password() {
    let line = "user alice on >Sup3r-Distinctive-Pw ~* &* +@all";
    let dir = directory(line);
    let debug = format!("{dir:?} {:?}", parse_acl_line(line));
    assert!(!debug.contains("Sup3r-Distinctive-Pw"));
    let digest = PasswordHash::of(b"Sup3r-Distinctive-Pw");
    let hex: String = digest.digest().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!debug.contains(&hex));
    assert!(debug.contains("<redacted>"));
    let rule = AclRule::parse(">Sup3r-Distinctive-Pw").unwrap();
    assert!(!format!("{rule:?}").contains("Sup3r"));
}

#[test]
fn errors_never_contain_passwords() {
    let secret = "Sup3r-Distinctive-Pw";
    let lines = [
        format!("user bob on >{secret} ~app:* &* +@nosuch"),
        format!("user bob on (>{secret}) ~* &* +@all"),
        format!("user bob on (~x >{secret}) ~* &* +@all"),
        format!("user bob on (~x {secret}) ~* &* +@all"),
        format!("user bob on (~x {secret} +nosuch) ~* &* +@all"),
        format!("user bob on ({secret} ~* &* +@all"),
        format!("user bob on >{secret} <x ~* &* +@all"),
        format!("user bob on {secret} ~* &* +@all"),
        format!("user bob on #{secret} ~* &* +@all"),
        format!("user bob on !{secret} ~* &* +@all"),
        format!("user bob on <{secret} ~* &* +@all"),
        format!("user bob on >{secret} +nosuch ~* &* +@all"),
        format!("user bob on >{secret} (~x) ~* ~y &* +@all"),
        format!("User bob on >{secret}"),
        format!("{secret} on"),
        format!(
            "user bob on >{secret}{} ~* &* +@all",
            "x".repeat(MAX_PASSWORD_LEN)
        ),
    ];
    for line in &lines {
        let error = parse_acl_line(line).unwrap_err();
        assert!(!error.to_string().contains(secret), "{error}");
        assert!(!format!("{error:?}").contains(secret), "{error:?}");
    }
}

/// Password operations, checked against a model of Redis's semantics.
#[derive(Clone, Debug)]
enum Op {
    Add(u8),
    AddHash(u8),
    Remove(u8),
    RemoveHash(u8),
    NoPass,
    ResetPass,
    On,
    Off,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3).prop_map(Op::Add),
        (0u8..3).prop_map(Op::AddHash),
        (0u8..3).prop_map(Op::Remove),
        (0u8..3).prop_map(Op::RemoveHash),
        Just(Op::NoPass),
        Just(Op::ResetPass),
        Just(Op::On),
        Just(Op::Off),
    ]
}

fn password(i: u8) -> String {
    format!("pw{i}")
}

fn hex(i: u8) -> String {
    let hash = PasswordHash::of(password(i).as_bytes());
    hash.digest().iter().map(|b| format!("{b:02X}")).collect()
}

proptest! {
    #[test]
    fn password_rules_match_the_model(ops in proptest::collection::vec(op(), 0..12)) {
        let mut line = String::from("user u ~* &* +@all");
        let (mut set, mut nopass, mut on, mut fails) = (Vec::new(), false, false, false);
        for op in &ops {
            let rule = match op {
                Op::Add(i) => format!(">{}", password(*i)),
                Op::AddHash(i) => format!("#{}", hex(*i)),
                Op::Remove(i) => format!("<{}", password(*i)),
                Op::RemoveHash(i) => format!("!{}", hex(*i)),
                Op::NoPass => "nopass".to_owned(),
                Op::ResetPass => "resetpass".to_owned(),
                Op::On => "on".to_owned(),
                Op::Off => "off".to_owned(),
            };
            line.push(' ');
            line.push_str(&rule);
            match op {
                Op::Add(i) | Op::AddHash(i) => {
                    if !set.contains(i) { set.push(*i); }
                    nopass = false;
                }
                Op::Remove(i) | Op::RemoveHash(i) => {
                    if set.contains(i) { set.retain(|x| x != i); } else { fails = true; }
                }
                Op::NoPass => { nopass = true; set.clear(); }
                Op::ResetPass => { nopass = false; set.clear(); }
                Op::On => on = true,
                Op::Off => on = false,
            }
            if fails { break; }
        }
        match parse_acl_line(&line) {
            Err(e) => prop_assert!(fails, "{line}: {e}"),
            Ok(parsed) => {
                prop_assert!(!fails, "{line} accepted");
                let dir = UserDirectory::new(User::default_disabled(), vec![parsed.user]).unwrap();
                for candidate in 0u8..4 {
                    let expected = on && (nopass || set.contains(&candidate));
                    let got = dir.authenticate(b"u", password(candidate).as_bytes()).is_ok();
                    prop_assert_eq!(got, expected, "{} with {}", line, candidate);
                }
            }
        }
    }

    #[test]
    fn arbitrary_lines_never_panic(line in ".{0,200}") {
        let _ = parse_acl_line(&line).map_err(|e| e.to_string());
        let _ = parse_acl_line(&format!("user u {line}")).map_err(|e| e.to_string());
    }

    #[test]
    fn arbitrary_rule_soup_never_panics(
        words in proptest::collection::vec(
            prop_oneof![
                Just("on".to_owned()), Just("off".to_owned()), Just("~*".to_owned()),
                Just("&*".to_owned()), Just("+@all".to_owned()), Just("-@all".to_owned()),
                Just("reset".to_owned()), Just("nopass".to_owned()),
                Just("resetkeys".to_owned()), Just("resetchannels".to_owned()),
                "[%~&+\\-<>#!(@]?[a-zA-Z*|~@ ]{0,6}",
            ],
            0..10,
        )
    ) {
        let line = format!("user u {}", words.join(" "));
        let _ = parse_acl_line(&line);
    }
}

fn command_rule() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "+get",
        "-get",
        "+getex",
        "-getex",
        "+set",
        "+config",
        "-config",
        "+config|get",
        "-config|set",
        "+CONFIG|Get",
        "+select|0",
        "+SELECT|1",
        "+select|0",
        "+@read",
        "-@write",
        "+@all",
        "-@all",
        "+@dangerous",
        "-@string",
        "+@String",
        "+client|kill",
        "-client",
        "+client",
        "allcommands",
        "nocommands",
        "+debug|object",
        "+acl|whoami",
        "-acl",
        "~k*",
        "%R~r",
        "&ch",
        "reset",
        "(+get ~s)",
        "(-@all +@hash +set)",
    ])
}

proptest! {
    /// What `ACL LIST` shows of a user is a line that makes the same user
    /// again, in every release's format: the same command bits and first
    /// arguments, and the same description.
    #[test]
    fn descriptions_make_the_same_user(
        rules in proptest::collection::vec(command_rule(), 0..12),
        version in proptest::sample::select(ServerVersion::DATA.to_vec()),
    ) {
        let line = format!("user u {}", rules.join(" "));
        let first = parse_acl_line_for(&line, version).unwrap().user;
        let described = first.describe();
        let again = parse_acl_line_for(&format!("user u {described}"), version)
            .unwrap_or_else(|e| panic!("{line} -> {described}: {e}"))
            .user;
        prop_assert_eq!(again.describe(), described.clone(), "{}", line);
        let selectors = |u: &User| u.permissions().selectors().cloned().collect::<Vec<_>>();
        let (a, b) = (selectors(&first), selectors(&again));
        prop_assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            for spec in crate::command::commands_for(version) {
                prop_assert_eq!(
                    x.allows_command_bit(spec), y.allows_command_bit(spec),
                    "{} -> {}: {}", line, described, spec.name
                );
                // First arguments count only while the command's bit is clear.
                if !x.allows_command_bit(spec) {
                    prop_assert_eq!(x.first_args(spec).len(), y.first_args(spec).len());
                }
            }
            prop_assert_eq!(x.allows_future_commands(), y.allows_future_commands());
        }
    }
}
