//! `users::parse_acl_line` and `users::AclRule::parse` on any text: no
//! panic, and no error or warning ever shows a password or a hash.
//!
//! The input, as (lossy) UTF-8, is checked as it is and with secrets
//! planted: in `>`/`<` rules `$M` becomes the marker password, in `#`/`!`
//! rules `$H` (`$HU`) becomes its SHA-256 in lower (upper) case, and the
//! taint is stripped from the user name and the other rules (see
//! `envoy_redis_auth_fuzz::taint`). When nothing that may be quoted holds
//! taint, nothing shown may hold it. Every word of the line, and the whole
//! input, also goes through `AclRule::parse`: a password or hash rule's
//! error must hold no text of it and its rule must not be shown or
//! described; other rules must describe themselves in a form that parses
//! back to the same description.
#![no_main]

use envoy_redis_auth::acl::RuleError;
use envoy_redis_auth::users::{self, AclErrorKind, AclRule};
use envoy_redis_auth_fuzz::taint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_line(&text);
    let planted = taint::plant_acl_line(&text);
    if planted != text {
        check_line(&planted);
    }
});

fn check_line(line: &str) {
    let clean = taint::acl_line_is_clean(line);
    match users::parse_acl_line(line) {
        Err(error) => {
            let shown = error.to_string();
            if clean {
                taint::assert_not_shown("an AclError", &shown);
                taint::assert_not_shown("an AclError's Debug", &format!("{error:?}"));
            }
            if let AclErrorKind::Rule {
                error: rule_error,
                shown,
            } = &error.kind
            {
                assert!(error.rule.is_some(), "a rule error without its position");
                // Positions count `(...)` groups as one rule: compare them
                // with the words only when there is no group.
                let grouped = line.contains('(');
                if let Some((_, rules)) = taint::acl_words(line).filter(|_| !grouped) {
                    let index = error.rule.unwrap_or(0);
                    assert!(
                        (1..=rules.len()).contains(&index),
                        "rule {index} of {}",
                        rules.len()
                    );
                    if taint::is_secret_rule(rules[index - 1]) {
                        assert!(shown.is_none(), "password rule shown: {shown:?}");
                        assert_textless(rule_error, rules[index - 1]);
                    }
                }
            }
        }
        Ok(parsed) => {
            let (name, rules) = taint::acl_words(line).expect("an accepted line is a user line");
            assert_eq!(parsed.user.name(), name);
            let _ = rules;
            assert!(parsed.user.password_count() <= users::MAX_PASSWORDS_PER_USER);
            if clean {
                taint::assert_not_shown("a ParsedUser's Debug", &format!("{parsed:?}"));
                for warning in &parsed.warnings {
                    taint::assert_not_shown("an ACL warning", &warning.to_string());
                }
            }
        }
    }
    if let Some((_, rules)) = taint::acl_words(line) {
        for rule in rules {
            check_rule(rule);
        }
    }
    check_rule(line);
}

fn check_rule(rule: &str) {
    let secret = taint::is_secret_rule(rule);
    match AclRule::parse(rule) {
        Err(error) => {
            if secret {
                assert_textless(&error, rule);
            }
        }
        Ok(parsed) => match parsed.describe() {
            None => assert!(secret, "{parsed:?} has no description"),
            Some(described) => {
                assert!(!secret, "a password rule was described: {described:?}");
                let again = AclRule::parse(&described)
                    .unwrap_or_else(|e| panic!("description {described:?} does not parse: {e}"));
                assert_eq!(
                    again.describe().as_deref(),
                    Some(described.as_str()),
                    "the description of {described:?} is not stable"
                );
            }
        },
    }
}

/// Errors for `>`, `<`, `#` and `!` rules carry no text of the rule (rule
/// errors are fixed texts; this pins that down).
#[track_caller]
fn assert_textless(error: &RuleError, rule: &str) {
    let _ = rule;
    taint::assert_not_shown("a password rule's error", &error.to_string());
}
