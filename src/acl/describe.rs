//! Selectors described as rules, the way `ACL GETUSER` and `ACL LIST`
//! show them: `ACLDescribeSelectorCommandRules` and `ACLDescribeSelector`
//! (`acl.c`), in the configured server's way.
//!
//! From Redis 7.2 on (and in Valkey), the command rules are `+@all` or
//! `-@all` (by the future-commands bit), then the rules as the user wrote
//! them, normalised as the server keeps them (see
//! [`Selector::command_rules_as_written`]).
//!
//! In Redis 7.0 the command rules are found the way it finds them: start from
//! `+@all` or `-@all` (by the future-commands bit), apply the category that
//! fits best while one fits, then single commands (and first arguments)
//! until a fake selector has exactly the user's bits. Redis walks its
//! command dictionary in hash order for the single commands; this walks the
//! table in name order, so when several single-command rules are needed
//! their order may differ from a given Redis process's (the set is the
//! same).

use crate::command::{self, ACL_CATEGORY_NAMES, AclCategories, CommandSpec, ServerVersion};

use super::rules::SelectorRule;
use super::selector::Selector;

/// `ACLCountCategoryBitsForCommands`: commands (and subcommands) of the
/// category whose bit is set, and whose bit is clear.
fn count_category(selector: &Selector, category: AclCategories) -> (usize, usize) {
    let (mut on, mut off) = (0, 0);
    let mut count = |spec: &CommandSpec| {
        if spec.acl_categories.intersects(category) {
            if selector.allows_command_bit(spec) {
                on += 1;
            } else {
                off += 1;
            }
        }
    };
    for spec in command::commands_for(selector.version()) {
        count(spec);
    }
    (on, off)
}

/// `ACLDescribeSelectorCommandRules`: `+@all` / `-@all`, then (7.0)
/// categories, then single commands, or (7.2 on) the rules as written,
/// separated by spaces.
pub fn command_rules(selector: &Selector) -> String {
    if selector.version().texts().acl_rules_as_written {
        let mut out = String::from(if selector.allows_future_commands() {
            "+@all"
        } else {
            "-@all"
        });
        for rule in selector.command_rules_as_written() {
            out.push(' ');
            out.push_str(rule);
        }
        return out;
    }
    let additive = !selector.allows_future_commands();
    let mut rules: Vec<String> = Vec::new();
    let mut fake = Selector::new(selector.version());
    if additive {
        rules.push("-@all".to_owned());
        let _ = fake.apply(&SelectorRule::NoCommands);
    } else {
        rules.push("+@all".to_owned());
        let _ = fake.apply(&SelectorRule::AllCommands);
    }
    // The user's bits, which the chosen categories are taken out of.
    let mut temp = selector.bits_only();
    let mut applied = [false; ACL_CATEGORY_NAMES.len()];
    loop {
        let mut best: Option<usize> = None;
        let (mut min_diff, mut max_same) = (usize::MAX, 0);
        for (index, &(_, category)) in ACL_CATEGORY_NAMES.iter().enumerate() {
            if applied.get(index).copied().unwrap_or(true) {
                continue;
            }
            let (on, off) = count_category(&temp, category);
            let (diff, same) = if additive { (off, on) } else { (on, off) };
            if same > diff && (diff < min_diff || (diff == min_diff && same > max_same)) {
                best = Some(index);
                min_diff = diff;
                max_same = same;
            }
        }
        let Some(index) = best else { break };
        let Some(&(name, category)) = ACL_CATEGORY_NAMES.get(index) else {
            break;
        };
        let _ = fake.apply(&SelectorRule::Category {
            allow: additive,
            category,
        });
        let _ = temp.apply(&SelectorRule::Category {
            allow: !additive,
            category,
        });
        rules.push(format!("{}@{name}", if additive { '+' } else { '-' }));
        if let Some(done) = applied.get_mut(index) {
            *done = true;
        }
    }
    for spec in command::top_level_commands_for(selector.version()) {
        single_command(selector, &mut fake, spec, &mut rules);
    }
    rules.join(" ")
}

/// One command of `ACLDescribeSelectorCommandRulesSingleCommands`: its own
/// difference, its subcommands', then its first arguments.
fn single_command(
    selector: &Selector,
    fake: &mut Selector,
    spec: &'static CommandSpec,
    rules: &mut Vec<String>,
) {
    let user_bit = selector.allows_command_bit(spec);
    if user_bit != fake.allows_command_bit(spec) {
        rules.push(format!("{}{}", if user_bit { '+' } else { '-' }, spec.name));
        let _ = fake.apply(&SelectorRule::Command {
            allow: user_bit,
            spec,
        });
    }
    for sub in spec.subcommands_for(selector.version()) {
        single_command(selector, fake, sub, rules);
    }
    if !user_bit {
        for arg in selector.first_args(spec) {
            rules.push(format!("+{}|{arg}", spec.name));
        }
    }
}

/// The `keys` field of `ACL GETUSER`: `~*`, or the patterns.
pub fn keys(selector: &Selector) -> String {
    if selector.all_keys() {
        return "~*".to_owned();
    }
    let patterns: Vec<String> = selector
        .key_patterns()
        .iter()
        .map(ToString::to_string)
        .collect();
    patterns.join(" ")
}

/// The `channels` field of `ACL GETUSER`: `&*`, or the patterns.
pub fn channels(selector: &Selector) -> String {
    if selector.all_channels() {
        return "&*".to_owned();
    }
    let patterns: Vec<String> = selector
        .channel_patterns()
        .iter()
        .map(|p| format!("&{p}"))
        .collect();
    patterns.join(" ")
}

/// `ACLDescribeSelector`: keys, channels (`resetchannels` first unless
/// `&*`), then the command rules.
pub fn selector(selector: &Selector) -> String {
    let mut out = String::new();
    if selector.all_keys() {
        out.push_str("~* ");
    } else {
        for pattern in selector.key_patterns() {
            out.push_str(&pattern.to_string());
            out.push(' ');
        }
    }
    if selector.all_channels() {
        out.push_str("&* ");
    } else {
        out.push_str("resetchannels ");
        for pattern in selector.channel_patterns() {
            out.push('&');
            out.push_str(pattern);
            out.push(' ');
        }
    }
    out.push_str(&command_rules(selector));
    out
}

/// `ACL CAT <category>`: every command and subcommand of `version` in it,
/// by full name.
pub fn category_commands(category: AclCategories, version: ServerVersion) -> Vec<&'static str> {
    command::commands_for(version)
        .filter(|spec| spec.acl_categories.intersects(category))
        .map(|spec| spec.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::parse_acl_line;

    fn root(rules: &str) -> Selector {
        let parsed = parse_acl_line(&format!("user u {rules}")).unwrap();
        parsed.user.permissions().root().clone()
    }

    #[test]
    fn command_rules_like_redis() {
        assert_eq!(command_rules(&root("+@all")), "+@all");
        assert_eq!(command_rules(&root("")), "-@all");
        assert_eq!(command_rules(&root("+get +set")), "-@all +get +set");
        assert_eq!(
            command_rules(&root("+@all -@dangerous")),
            "+@all -@dangerous"
        );
        assert_eq!(command_rules(&root("+@read")), "-@all +@read");
        assert_eq!(command_rules(&root("-@all +select|0")), "-@all +select|0");
        assert_eq!(command_rules(&root("+config|get")), "-@all +config|get");
    }

    fn root72(rules: &str) -> Selector {
        let parsed =
            crate::users::parse_acl_line_for(&format!("user u {rules}"), ServerVersion::Redis72)
                .unwrap();
        parsed.user.permissions().root().clone()
    }

    /// Redis 7.2.6's answers (`ACL SETUSER u <rules>`, `ACL GETUSER u`).
    #[test]
    fn command_rules_as_written_from_72() {
        assert_eq!(command_rules(&root72("")), "-@all");
        assert_eq!(command_rules(&root72("+get +set")), "-@all +get +set");
        assert_eq!(command_rules(&root72("+set +get")), "-@all +set +get");
        assert_eq!(command_rules(&root72("-get")), "-@all -get");
        assert_eq!(command_rules(&root72("+get +set +@all")), "+@all");
        assert_eq!(
            command_rules(&root72("+@all +get -@all +set")),
            "-@all +set"
        );
        assert_eq!(
            command_rules(&root72("+get allcommands -set")),
            "+@all -set"
        );
        assert_eq!(command_rules(&root72("+get nocommands")), "-@all");
        assert_eq!(command_rules(&root72("+get reset +set")), "-@all +set");
        assert_eq!(
            command_rules(&root72("+SELECT|DB +select|db")),
            "-@all +select|db"
        );
        assert_eq!(
            command_rules(&root72("+config|get +config|set -config")),
            "-@all -config"
        );
        assert_eq!(
            command_rules(&root72("+@READ -@read +@Read")),
            "-@all +@read"
        );
        // A rule for `get` is not one for `getex`, nor the reverse.
        assert_eq!(
            command_rules(&root72("+getex +get -getex")),
            "-@all +get -getex"
        );
    }

    #[test]
    fn selectors_like_redis() {
        assert_eq!(
            selector(&root("~app:* &n +get")),
            "~app:* resetchannels &n -@all +get"
        );
        assert_eq!(selector(&root("~* &* +@all")), "~* &* +@all");
        assert_eq!(keys(&root("%R~a %W~b ~c")), "%R~a %W~b ~c");
        assert_eq!(channels(&root("")), "");
    }
}
