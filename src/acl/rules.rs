//! The selector rules of Redis 7.0's ACL language, parsed and resolved
//! against the command table: the parsing half of `ACLSetSelector`
//! (`acl.c`). Applying them is [`super::Selector::apply`]'s job; user-level
//! rules (`on`, passwords, `(...)`) are [`crate::users`]'s.
//!
//! Errors carry Redis's own words ([`RuleError::redis_text`], the
//! `ACLSetUserStringError` table), so an operator sees what `ACL SETUSER`
//! would have said.

use core::fmt;

use crate::command::{self, AclCategories, CommandSpec, ServerVersion};

/// A key pattern and the access it grants (`~p`, `%R~p`, `%W~p`, `%RW~p`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    /// Glob pattern, as in `KEYS`.
    pub pattern: String,
    /// Keys matching may be read.
    pub read: bool,
    /// Keys matching may be written.
    pub write: bool,
}

impl fmt::Display for KeyPattern {
    /// As `ACL GETUSER` / `ACL LIST` print it (`sdsCatPatternString`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.read, self.write) {
            (true, true) | (false, false) => write!(f, "~{}", self.pattern),
            (true, false) => write!(f, "%R~{}", self.pattern),
            (false, true) => write!(f, "%W~{}", self.pattern),
        }
    }
}

/// One rule of a selector (the root one, or one in `(...)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectorRule {
    /// `allkeys` / `~*`.
    AllKeys,
    /// `resetkeys`.
    ResetKeys,
    /// `~p`, `%R~p`, `%W~p`, `%RW~p`.
    KeyPattern(KeyPattern),
    /// `allchannels` / `&*`.
    AllChannels,
    /// `resetchannels`.
    ResetChannels,
    /// `&p`.
    ChannelPattern(String),
    /// `allcommands` / `+@all`.
    AllCommands,
    /// `nocommands` / `-@all`.
    NoCommands,
    /// `+cmd`, `-cmd`, `+cmd|sub`, `-cmd|sub`: a command (with all its
    /// subcommands) or one subcommand.
    Command {
        /// `+` or `-`.
        allow: bool,
        /// The command or subcommand.
        spec: &'static CommandSpec,
    },
    /// `+cmd|arg` for a command without subcommands: allowed with that
    /// first argument only (`+select|0`), compared case-insensitively.
    FirstArg {
        /// The command.
        spec: &'static CommandSpec,
        /// The first argument, as written.
        arg: String,
    },
    /// `+@category` / `-@category`.
    Category {
        /// `+` or `-`.
        allow: bool,
        /// The category.
        category: AclCategories,
    },
}

/// Why a rule was refused: Redis's `errno` cases, plus the proxy's own
/// limits. Never holds a password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// `EINVAL`: not a rule, or a pattern with whitespace or NUL.
    Syntax,
    /// `ENOENT`: `+`/`-` names no command, subcommand or category.
    UnknownCommandOrCategory,
    /// `EEXIST`: a key pattern after `~*` / `allkeys`.
    KeyPatternAfterAllKeys,
    /// `EISDIR`: a channel pattern after `&*` / `allchannels`.
    ChannelPatternAfterAllChannels,
    /// `ENODEV`: `<pw` or `!hash` for a password the user lacks.
    PasswordNotSet,
    /// `EBADMSG`: `#` / `!` not followed by 64 hex digits.
    InvalidHash,
    /// `ECHILD`: `+cmd|sub|arg`.
    FirstArgOfSubcommand,
    /// A `(` with no matching `)`.
    UnmatchedParenthesis,
    /// The proxy's: `>` with nothing after it (Redis adds the empty
    /// password, which is almost certainly a mistake).
    EmptyPassword,
    /// The proxy's: a password longer than [`crate::users::MAX_PASSWORD_LEN`].
    PasswordTooLong,
    /// The proxy's: more than [`crate::users::MAX_PASSWORDS_PER_USER`].
    TooManyPasswords,
}

impl RuleError {
    /// The message, in Redis's words where Redis has one.
    pub fn redis_text(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::UnknownCommandOrCategory => "Unknown command or category name in ACL",
            RuleError::KeyPatternAfterAllKeys => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and \
                 does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::ChannelPatternAfterAllChannels => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid \
                 and does not have any effect. Try 'resetchannels' to start with an empty list \
                 of channels"
            }
            RuleError::PasswordNotSet => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::InvalidHash => {
                "The password hash must be exactly 64 characters and contain only hexadecimal \
                 characters"
            }
            RuleError::FirstArgOfSubcommand => {
                "Allowing first-arg of a subcommand is not supported"
            }
            RuleError::UnmatchedParenthesis => "Unmatched parenthesis in acl selector",
            RuleError::EmptyPassword => {
                "Empty password: '>' must be followed by the password (the proxy refuses the \
                 empty password Redis would add)"
            }
            RuleError::PasswordTooLong => "Password too long for the proxy",
            RuleError::TooManyPasswords => "Too many passwords for one user",
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.redis_text())
    }
}

/// Redis's `ACLStringHasSpaces`: C `isspace` or NUL.
pub(crate) fn has_space_or_nul(text: &str) -> bool {
    text.bytes()
        .any(|b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0))
}

impl SelectorRule {
    /// [`parse_for`](Self::parse_for) Redis 7.0.
    pub fn parse(op: &str) -> Option<Result<SelectorRule, RuleError>> {
        Self::parse_for(op, ServerVersion::default())
    }

    /// Parses `op` as `ACLSetSelector` of `version` would, commands looked
    /// up in that server's table; `None` if it is not a selector rule at
    /// all (the caller reports [`RuleError::Syntax`] or tries user rules).
    /// Keywords are case-insensitive.
    pub fn parse_for(op: &str, version: ServerVersion) -> Option<Result<SelectorRule, RuleError>> {
        let is = |word: &str| op.eq_ignore_ascii_case(word);
        let rule = if is("allkeys") || is("~*") {
            SelectorRule::AllKeys
        } else if is("resetkeys") {
            SelectorRule::ResetKeys
        } else if is("allchannels") || is("&*") {
            SelectorRule::AllChannels
        } else if is("resetchannels") {
            SelectorRule::ResetChannels
        } else if is("allcommands") || is("+@all") {
            SelectorRule::AllCommands
        } else if is("nocommands") || is("-@all") {
            SelectorRule::NoCommands
        } else {
            let mut chars = op.chars();
            let sigil = chars.next()?;
            let rest = chars.as_str();
            return match sigil {
                '~' => Some(key_pattern(rest, true, true)),
                '%' => Some(key_permission(rest)),
                '&' => Some(if has_space_or_nul(rest) {
                    Err(RuleError::Syntax)
                } else {
                    Ok(SelectorRule::ChannelPattern(rest.to_owned()))
                }),
                '+' | '-' => Some(command_rule(sigil == '+', rest, version)),
                _ => None,
            };
        };
        Some(Ok(rule))
    }
}

fn key_pattern(pattern: &str, read: bool, write: bool) -> Result<SelectorRule, RuleError> {
    if has_space_or_nul(pattern) {
        return Err(RuleError::Syntax);
    }
    Ok(SelectorRule::KeyPattern(KeyPattern {
        pattern: pattern.to_owned(),
        read,
        write,
    }))
}

/// `%R~p`, `%W~p`, `%RW~p` (letters in any case and order, each at most
/// once; at least one, as patched for CVE-2024-51741). A `%R` with no `~`
/// is the empty pattern, as in Redis.
fn key_permission(rest: &str) -> Result<SelectorRule, RuleError> {
    let (mut read, mut write) = (false, false);
    let mut pattern = "";
    for (index, c) in rest.char_indices() {
        match c.to_ascii_uppercase() {
            'R' if !read => read = true,
            'W' if !write => write = true,
            '~' => {
                pattern = rest.get(index + 1..).unwrap_or("");
                break;
            }
            _ => return Err(RuleError::Syntax),
        }
    }
    if !read && !write {
        return Err(RuleError::Syntax);
    }
    key_pattern(pattern, read, write)
}

/// `+…` / `-…` other than `±@all`.
fn command_rule(
    allow: bool,
    rest: &str,
    version: ServerVersion,
) -> Result<SelectorRule, RuleError> {
    let lookup = |name: &str| lookup_for(name, version);
    if let Some(category) = rest.strip_prefix('@') {
        return AclCategories::from_name(category.as_bytes())
            .map(|category| SelectorRule::Category { allow, category })
            .ok_or(RuleError::UnknownCommandOrCategory);
    }
    if !allow || !rest.contains('|') {
        // `-x|y` must name a subcommand; `+x` / `-x` a command.
        return lookup(rest)
            .map(|spec| SelectorRule::Command { allow, spec })
            .ok_or(RuleError::UnknownCommandOrCategory);
    }
    // `+x|y`: a subcommand of a container, or the first argument of a
    // command without subcommands. Redis splits at the last `|`.
    let (name, sub) = rest.rsplit_once('|').unwrap_or((rest, ""));
    let Some(spec) = lookup(name) else {
        return Err(RuleError::UnknownCommandOrCategory);
    };
    if spec.is_subcommand() {
        return Err(RuleError::FirstArgOfSubcommand);
    }
    if sub.is_empty() {
        return Err(RuleError::Syntax);
    }
    if spec.is_container() {
        return lookup(rest)
            .map(|spec| SelectorRule::Command { allow, spec })
            .ok_or(RuleError::UnknownCommandOrCategory);
    }
    Ok(SelectorRule::FirstArg {
        spec,
        arg: sub.to_owned(),
    })
}

/// Redis's `ACLLookupCommand` (`lookupCommandBySdsLogic`, strict): `cmd`
/// or `container|sub`, case-insensitive; anything else is unknown. In
/// Redis 7.0's table.
pub fn lookup(name: &str) -> Option<&'static CommandSpec> {
    lookup_for(name, ServerVersion::default())
}

/// [`lookup`] in `version`'s table.
pub fn lookup_for(name: &str, version: ServerVersion) -> Option<&'static CommandSpec> {
    let mut parts = name.split('|');
    let first = parts.next()?;
    let second = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let base = command::lookup_command_for(first.as_bytes(), version)?;
    match second {
        None => Some(base),
        Some(sub) if base.is_container() => base.lookup_subcommand_for(sub.as_bytes(), version),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(op: &str) -> Result<SelectorRule, RuleError> {
        SelectorRule::parse(op).expect("a selector rule")
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(parse("AllKeys"), Ok(SelectorRule::AllKeys));
        assert_eq!(parse("~*"), Ok(SelectorRule::AllKeys));
        assert_eq!(parse("+@ALL"), Ok(SelectorRule::AllCommands));
        assert_eq!(parse("NOCOMMANDS"), Ok(SelectorRule::NoCommands));
        assert_eq!(parse("&*"), Ok(SelectorRule::AllChannels));
        assert!(SelectorRule::parse("on").is_none());
        assert!(SelectorRule::parse(">pw").is_none());
    }

    #[test]
    fn key_rules() {
        let pattern = |p: &str, read, write| {
            Ok(SelectorRule::KeyPattern(KeyPattern {
                pattern: p.into(),
                read,
                write,
            }))
        };
        assert_eq!(parse("~app:*"), pattern("app:*", true, true));
        assert_eq!(parse("%R~r:*"), pattern("r:*", true, false));
        assert_eq!(parse("%wr~x"), pattern("x", true, true));
        assert_eq!(parse("%R"), pattern("", true, false));
        assert_eq!(parse("%~x"), Err(RuleError::Syntax));
        assert_eq!(parse("%RR~x"), Err(RuleError::Syntax));
        assert_eq!(parse("%X~x"), Err(RuleError::Syntax));
        assert_eq!(parse("~a\tb"), Err(RuleError::Syntax));
        assert_eq!(parse("&a\0b"), Err(RuleError::Syntax));
    }

    #[test]
    fn command_rules() {
        let get = command::lookup_command(b"get").unwrap();
        assert_eq!(
            parse("+GET"),
            Ok(SelectorRule::Command {
                allow: true,
                spec: get
            })
        );
        assert_eq!(
            parse("-get"),
            Ok(SelectorRule::Command {
                allow: false,
                spec: get
            })
        );
        let config_get = lookup("config|get").unwrap();
        assert_eq!(config_get.name, "config|get");
        assert_eq!(
            parse("+config|GET"),
            Ok(SelectorRule::Command {
                allow: true,
                spec: config_get
            })
        );
        assert_eq!(
            parse("-config|get"),
            Ok(SelectorRule::Command {
                allow: false,
                spec: config_get
            })
        );
        let select = command::lookup_command(b"select").unwrap();
        assert_eq!(
            parse("+select|0"),
            Ok(SelectorRule::FirstArg {
                spec: select,
                arg: "0".into()
            })
        );
        assert_eq!(parse("-select|0"), Err(RuleError::UnknownCommandOrCategory));
        assert_eq!(parse("+nosuch"), Err(RuleError::UnknownCommandOrCategory));
        assert_eq!(
            parse("+config|nosuch"),
            Err(RuleError::UnknownCommandOrCategory)
        );
        assert_eq!(parse("+config|get|x"), Err(RuleError::FirstArgOfSubcommand));
        assert_eq!(parse("+select|"), Err(RuleError::Syntax));
        assert_eq!(parse("+"), Err(RuleError::UnknownCommandOrCategory));
        assert_eq!(parse("+@nosuch"), Err(RuleError::UnknownCommandOrCategory));
        assert_eq!(
            parse("-@Dangerous"),
            Ok(SelectorRule::Category {
                allow: false,
                category: AclCategories::DANGEROUS
            })
        );
    }
}
