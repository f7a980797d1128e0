//! ACL lines: `user <name> <rules...>` parsed the way Redis 7.0's
//! `ACLLoadFromFile` parses them, into a [`User`], with errors in the
//! words of `ACL SETUSER` that never show a password.

use core::fmt;

use crate::acl::{RuleError, SelectorRule};
use crate::command::{ACL_CATEGORY_NAMES, ServerVersion};
use crate::secret::{InvalidHash, PasswordHash};

use super::{MAX_ACL_LINE_LEN, MAX_PASSWORD_LEN, MAX_USERNAME_LEN, User};

/// The longest excerpt of a rule quoted in an error message.
const MAX_QUOTED: usize = 80;

/// One parsed rule of `ACLSetUser`. Passwords are hashed as soon as they
/// are parsed; the cleartext is never kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclRule {
    /// `on`: the user can authenticate.
    On,
    /// `off`: the user cannot authenticate.
    Off,
    /// `>password`: add a password (clears `nopass`).
    AddPassword(PasswordHash),
    /// `#<sha256 hex>`: add a password by its hash (clears `nopass`).
    AddHash(PasswordHash),
    /// `<password`: remove a password; an error if the user lacks it.
    RemovePassword(PasswordHash),
    /// `!<sha256 hex>`: remove a password by its hash; an error if absent.
    RemoveHash(PasswordHash),
    /// `nopass`: any password works; removes all passwords.
    NoPass,
    /// `resetpass`: removes all passwords and `nopass`.
    ResetPass,
    /// `reset`: back to a new user's state (`resetpass resetkeys
    /// resetchannels off sanitize-payload clearselectors -@all`).
    Reset,
    /// `clearselectors`.
    ClearSelectors,
    /// `(...)`: a new selector with these rules.
    Selector(Vec<SelectorRule>),
    /// A rule of the root selector.
    Root(SelectorRule),
    /// `sanitize-payload`.
    SanitizePayload,
    /// `skip-sanitize-payload`.
    SkipSanitizePayload,
}

impl AclRule {
    /// Parses one rule as `ACLSetUser` reads it: keywords are
    /// case-insensitive; passwords and patterns are taken as they are; a
    /// `(...)` group is split like `sdssplitargs` and each piece must be a
    /// selector rule.
    pub fn parse(op: &str) -> Result<AclRule, RuleError> {
        Self::parse_for(op, ServerVersion::default())
    }

    /// [`parse`](Self::parse), commands looked up in `version`'s table.
    pub fn parse_for(op: &str, version: ServerVersion) -> Result<AclRule, RuleError> {
        const KEYWORDS: &[(&str, AclRule)] = &[
            ("on", AclRule::On),
            ("off", AclRule::Off),
            ("skip-sanitize-payload", AclRule::SkipSanitizePayload),
            ("sanitize-payload", AclRule::SanitizePayload),
            ("nopass", AclRule::NoPass),
            ("resetpass", AclRule::ResetPass),
            ("clearselectors", AclRule::ClearSelectors),
            ("reset", AclRule::Reset),
        ];
        if let Some((_, keyword)) = KEYWORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(op)) {
            return Ok(keyword.clone());
        }
        let mut chars = op.chars();
        let rest = {
            chars.next();
            chars.as_str()
        };
        match op.as_bytes().first() {
            Some(b'>') => {
                if rest.is_empty() {
                    Err(RuleError::EmptyPassword)
                } else if rest.len() > MAX_PASSWORD_LEN {
                    Err(RuleError::PasswordTooLong)
                } else {
                    Ok(AclRule::AddPassword(PasswordHash::of(rest.as_bytes())))
                }
            }
            Some(b'<') => {
                if rest.len() > MAX_PASSWORD_LEN {
                    Err(RuleError::PasswordTooLong)
                } else {
                    Ok(AclRule::RemovePassword(PasswordHash::of(rest.as_bytes())))
                }
            }
            Some(b'#') => PasswordHash::from_hex(rest)
                .map(AclRule::AddHash)
                .map_err(|InvalidHash| RuleError::InvalidHash),
            Some(b'!') => PasswordHash::from_hex(rest)
                .map(AclRule::RemoveHash)
                .map_err(|InvalidHash| RuleError::InvalidHash),
            Some(b'(') if op.len() >= 2 && op.ends_with(')') => {
                let inner = op.get(1..op.len() - 1).unwrap_or("");
                parse_selector(inner, version).map(AclRule::Selector)
            }
            _ => match SelectorRule::parse_for(op, version) {
                Some(rule) => rule.map(AclRule::Root),
                None => Err(RuleError::Syntax),
            },
        }
    }

    /// Whether the rule's text holds a secret (a password or its hash).
    pub fn is_secret(op: &str) -> bool {
        matches!(op.as_bytes().first(), Some(b'>' | b'<' | b'#' | b'!'))
    }

    /// The rule as Redis would print it, for rules that hold no secret;
    /// `None` for password rules.
    pub fn describe(&self) -> Option<String> {
        let text = match self {
            AclRule::AddPassword(_)
            | AclRule::AddHash(_)
            | AclRule::RemovePassword(_)
            | AclRule::RemoveHash(_) => return None,
            AclRule::On => "on".to_owned(),
            AclRule::Off => "off".to_owned(),
            AclRule::NoPass => "nopass".to_owned(),
            AclRule::ResetPass => "resetpass".to_owned(),
            AclRule::Reset => "reset".to_owned(),
            AclRule::ClearSelectors => "clearselectors".to_owned(),
            AclRule::SanitizePayload => "sanitize-payload".to_owned(),
            AclRule::SkipSanitizePayload => "skip-sanitize-payload".to_owned(),
            AclRule::Root(rule) => describe_selector_rule(rule),
            AclRule::Selector(rules) => {
                let inner: Vec<String> = rules
                    .iter()
                    .map(|rule| quote_in_selector(&describe_selector_rule(rule)))
                    .collect();
                format!("({})", inner.join(" "))
            }
        };
        Some(text)
    }
}

/// The inside of `(...)`, split as `aclCreateSelectorFromOpSet` splits it
/// (`sdssplitargs`; unbalanced quotes give an empty selector, as in Redis).
fn parse_selector(inner: &str, version: ServerVersion) -> Result<Vec<SelectorRule>, RuleError> {
    let Ok(words) = crate::resp::request::split_args(inner.as_bytes()) else {
        return Ok(Vec::new());
    };
    words
        .iter()
        .map(|word| {
            let word = core::str::from_utf8(word).map_err(|_| RuleError::Syntax)?;
            SelectorRule::parse_for(word, version).unwrap_or(Err(RuleError::Syntax))
        })
        .collect()
}

fn describe_selector_rule(rule: &SelectorRule) -> String {
    let sign = |allow: bool| if allow { '+' } else { '-' };
    match rule {
        SelectorRule::AllKeys => "~*".to_owned(),
        SelectorRule::ResetKeys => "resetkeys".to_owned(),
        SelectorRule::KeyPattern(pattern) => pattern.to_string(),
        SelectorRule::AllChannels => "&*".to_owned(),
        SelectorRule::ResetChannels => "resetchannels".to_owned(),
        SelectorRule::ChannelPattern(pattern) => format!("&{pattern}"),
        SelectorRule::AllCommands => "+@all".to_owned(),
        SelectorRule::NoCommands => "-@all".to_owned(),
        SelectorRule::Command { allow, spec } => format!("{}{}", sign(*allow), spec.name),
        SelectorRule::FirstArg { spec, arg } => format!("+{}|{arg}", spec.name),
        SelectorRule::Category { allow, category } => {
            let name = ACL_CATEGORY_NAMES
                .iter()
                .find(|(_, c)| c == category)
                .map_or("", |(name, _)| name);
            format!("{}@{name}", sign(*allow))
        }
    }
}

/// A rule inside `(...)` as `sdssplitargs` reads it back: quoted, with
/// `\\` and `\"` escaped, if it holds a quote or a backslash (which
/// `sdssplitargs` would otherwise take as quoting).
fn quote_in_selector(rule: &str) -> String {
    if !rule.contains(['"', '\'', '\\']) {
        return rule.to_owned();
    }
    let mut out = String::from("\"");
    for c in rule.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `'text'`, shortened and with control characters escaped.
pub(super) fn quote(text: &str) -> String {
    format!("'{}'", excerpt(text))
}

/// `text` shortened to [`MAX_QUOTED`] characters, control characters
/// escaped, for error messages.
fn excerpt(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX_QUOTED {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A user parsed from an ACL line, with what deserves a warning.
#[derive(Clone, Debug)]
pub struct ParsedUser {
    /// The user.
    pub user: User,
    /// Accepted but suspicious.
    pub warnings: Vec<UserWarning>,
}

/// Something accepted in an ACL line that is probably not what was meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserWarning {
    /// The user is `off` (Redis logs the same notice).
    Disabled(String),
    /// The user is `on` but has neither a password nor `nopass`.
    NoPassword(String),
    /// `skip-sanitize-payload` means nothing at the proxy.
    SkipSanitizePayload(String),
}

impl fmt::Display for UserWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserWarning::Disabled(name) => write!(
                f,
                "user {} is off, so clients cannot authenticate as it (add 'on' to enable it)",
                quote(name)
            ),
            UserWarning::NoPassword(name) => write!(
                f,
                "user {} has no password and is not 'nopass', so clients cannot \
                 authenticate as it",
                quote(name)
            ),
            UserWarning::SkipSanitizePayload(name) => write!(
                f,
                "user {}: 'skip-sanitize-payload' has no effect at the proxy (RESTORE \
                 payloads are sanitized as the upstream server and user decide)",
                quote(name)
            ),
        }
    }
}

/// Why an ACL line was refused. Never contains a password or a hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclError {
    /// The user the line defines, once known.
    pub user: Option<String>,
    /// The 1-based position of the offending rule among the line's rules
    /// (a `(...)` group counts as one).
    pub rule: Option<usize>,
    /// What is wrong.
    pub kind: AclErrorKind,
}

/// What is wrong with an ACL line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclErrorKind {
    /// Longer than [`MAX_ACL_LINE_LEN`].
    LineTooLong,
    /// A line break inside the line.
    LineBreak,
    /// Does not start with `user <name>`.
    NotAUserLine,
    /// `user` followed by two spaces.
    EmptyUsername,
    /// Longer than [`MAX_USERNAME_LEN`].
    UsernameTooLong,
    /// A user name with a control character (the name, escaped).
    InvalidUsername(String),
    /// A rule that cannot be parsed or applied: the error, and the rule's
    /// text when it may be shown (never for password rules, nor for a rule
    /// the proxy cannot recognize, which may be a password missing `>`).
    Rule {
        /// What is wrong.
        error: RuleError,
        /// The rule, if it may be shown.
        shown: Option<String>,
    },
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "user {}: ", quote(user))?;
        }
        if let Some(rule) = self.rule {
            write!(f, "rule {rule}: ")?;
        }
        match &self.kind {
            AclErrorKind::LineTooLong => {
                write!(f, "ACL line is longer than {MAX_ACL_LINE_LEN} bytes")
            }
            AclErrorKind::LineBreak => {
                f.write_str("ACL line contains a line break; give each user its own entry")
            }
            AclErrorKind::NotAUserLine => f.write_str(
                "an ACL line must start with 'user' (in lower case) followed by the user name",
            ),
            AclErrorKind::EmptyUsername => {
                f.write_str("empty user name (more than one space after 'user'?)")
            }
            AclErrorKind::UsernameTooLong => {
                write!(f, "user name is longer than {MAX_USERNAME_LEN} bytes")
            }
            AclErrorKind::InvalidUsername(name) => {
                write!(f, "user name {} contains a control character", quote(name))
            }
            AclErrorKind::Rule { error, shown } => match shown {
                Some(rule) => write!(f, "Error in ACL SETUSER modifier {}: {error}", quote(rule)),
                None => write!(
                    f,
                    "Error in ACL SETUSER modifier (not shown: it may hold a password): {error}"
                ),
            },
        }
    }
}

/// Checks a user name as Redis would, and more strictly: not empty, no
/// whitespace, NUL or other ASCII control character, at most
/// [`MAX_USERNAME_LEN`] bytes.
pub fn validate_username(name: &str) -> Result<(), AclErrorKind> {
    if name.is_empty() {
        Err(AclErrorKind::EmptyUsername)
    } else if name.len() > MAX_USERNAME_LEN {
        Err(AclErrorKind::UsernameTooLong)
    } else if name.bytes().any(|b| b == b' ' || b.is_ascii_control()) {
        Err(AclErrorKind::InvalidUsername(name.to_owned()))
    } else {
        Ok(())
    }
}

/// Parses one line of a Redis ACL file, `user <name> <rules...>`, the way
/// `ACLLoadFromFile` does: the line is trimmed of spaces, tabs, CR and LF;
/// words are separated by single spaces (extra spaces make empty rules,
/// which do nothing); words from one starting with `(` to one ending with
/// `)` are joined into one selector (`ACLMergeSelectorArguments`); each
/// rule is trimmed of tabs, CR and LF and applied in order to a new user.
pub fn parse_acl_line(line: &str) -> Result<ParsedUser, AclError> {
    parse_acl_line_for(line, ServerVersion::default())
}

/// [`parse_acl_line`] for a server of `version`: its commands are the ones
/// rules may name, and its categories reach.
pub fn parse_acl_line_for(line: &str, version: ServerVersion) -> Result<ParsedUser, AclError> {
    let error = |user: Option<&str>, rule, kind| AclError {
        user: user.map(str::to_owned),
        rule,
        kind,
    };
    if line.len() > MAX_ACL_LINE_LEN {
        return Err(error(None, None, AclErrorKind::LineTooLong));
    }
    let line = line.trim_matches([' ', '\t', '\r', '\n']);
    if line.contains('\n') {
        return Err(error(None, None, AclErrorKind::LineBreak));
    }
    let mut words = line.split(' ');
    if words.next() != Some("user") {
        return Err(error(None, None, AclErrorKind::NotAUserLine));
    }
    let Some(name) = words.next() else {
        return Err(error(None, None, AclErrorKind::NotAUserLine));
    };
    if let Err(kind) = validate_username(name) {
        return Err(error(None, None, kind));
    }
    let rules = merge_selectors(words).map_err(|index| {
        error(
            Some(name),
            Some(index),
            AclErrorKind::Rule {
                error: RuleError::UnmatchedParenthesis,
                shown: None,
            },
        )
    })?;
    let mut user = User::new_for(name, version);
    let rules = rules
        .iter()
        .map(|word| word.trim_matches(['\t', '\r', '\n']))
        .filter(|word| !word.is_empty());
    for (index, word) in rules.enumerate() {
        let number = Some(index.saturating_add(1));
        AclRule::parse_for(word, version)
            .and_then(|rule| user.apply(&rule))
            .map_err(|e| {
                let shown = may_show(word, e).then(|| word.to_owned());
                error(Some(name), number, AclErrorKind::Rule { error: e, shown })
            })?;
    }
    let warnings = user.warnings();
    Ok(ParsedUser { user, warnings })
}

/// Whether the text of a refused rule may appear in the error: never a
/// password rule; a syntax error only when the rule has a shape the proxy
/// knows (a pattern or a command rule), so it cannot be a password that
/// lost its `>`; a selector only if every rule in it may be shown.
fn may_show(word: &str, error: RuleError) -> bool {
    if AclRule::is_secret(word) {
        return false;
    }
    if let Some(inner) = word.strip_prefix('(') {
        let inner = inner.strip_suffix(')').unwrap_or(inner);
        return error != RuleError::Syntax
            && error != RuleError::UnmatchedParenthesis
            && inner
                .split([' ', '\t'])
                .filter(|w| !w.is_empty())
                .all(|w| SelectorRule::parse(w).is_some());
    }
    error != RuleError::Syntax
        || matches!(
            word.as_bytes().first(),
            Some(b'~' | b'%' | b'&' | b'+' | b'-')
        )
}

/// `ACLMergeSelectorArguments`: the words, with each `(` … `)` run joined
/// by spaces. An unclosed `(` is an error at its (1-based) rule position.
fn merge_selectors<'a>(words: impl Iterator<Item = &'a str>) -> Result<Vec<String>, usize> {
    let mut merged: Vec<String> = Vec::new();
    let mut open: Option<(usize, String)> = None;
    let mut position = 0usize;
    for word in words {
        if !word.is_empty() && open.is_none() {
            position = position.saturating_add(1);
        }
        if let Some((_, selector)) = &mut open {
            selector.push(' ');
            selector.push_str(word);
            if word.ends_with(')') {
                if let Some((_, selector)) = open.take() {
                    merged.push(selector);
                }
            }
            continue;
        }
        if word.starts_with('(') && !word.ends_with(')') {
            open = Some((position, word.to_owned()));
            continue;
        }
        merged.push(word.to_owned());
    }
    match open {
        Some((position, _)) => Err(position),
        None => Ok(merged),
    }
}
