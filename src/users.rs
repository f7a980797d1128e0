//! Users the proxy authenticates clients against, built from Redis ACL
//! lines (`user <name> <rules...>`, the syntax of a Redis ACL file).
//!
//! The semantics follow Redis 7.0 (`src/acl.c`): a line is parsed the way
//! `ACLLoadFromFile` parses it, each rule is applied in order the way
//! `ACLSetUser` / `ACLSetSelector` apply it, and
//! [`UserDirectory::authenticate`] follows `ACLCheckUserCredentials`.
//!
//! Per-user restrictions (key, channel and command rules) are not enforced
//! yet. The permission state is tracked faithfully ([`Permissions`]), and a
//! user whose final state is anything less than full access (`~* &* +@all`)
//! is rejected, so a configuration never silently grants more than it says.
//! Command and category rules other than `+@all` / `-@all` are rejected as
//! soon as they appear: judging them needs the command table.
//!
//! Deliberate differences from Redis:
//! - `>` with an empty password is an error (Redis adds the empty password);
//! - `#<hash>` and `!<hash>` accept upper-case hex digits (Redis wants lower
//!   case);
//! - user names may not contain any ASCII control character (Redis only
//!   refuses whitespace and NUL);
//! - an unknown rule is not echoed in the error, in case it is a password
//!   that lost its `>`.

use crate::secret::{InvalidHash, MAX_SECRET_LEN, PasswordHash};
use std::collections::BTreeSet;
use std::fmt;
use subtle::{Choice, ConstantTimeEq};

/// The most users a configuration may define (entries of `users`).
pub const MAX_USERS: usize = 1000;
/// The longest user name, in bytes.
pub const MAX_USERNAME_LEN: usize = MAX_SECRET_LEN;
/// The longest password, in bytes (for `>password` and `<password`).
pub const MAX_PASSWORD_LEN: usize = MAX_SECRET_LEN;
/// The most passwords (or hashes) one user may hold at a time. Rotation
/// needs two or three; the cap bounds the work of one `AUTH`.
pub const MAX_PASSWORDS_PER_USER: usize = 100;
/// The longest ACL line, in bytes: room for the maximum number of
/// maximum-length passwords plus rules.
pub const MAX_ACL_LINE_LEN: usize = 512 * 1024;
/// The name of Redis's default user, the one `AUTH <password>` uses.
pub const DEFAULT_USER: &str = "default";

/// The longest excerpt of a rule quoted in an error message.
const MAX_QUOTED: usize = 80;

/// Redis 7.0's command categories (`ACLCommandCategories` in `acl.c`),
/// without `all`, which is handled as its own rule.
const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

const FULL_ACCESS: &str = "only full access (~* &* +@all) is supported";

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

/// One parsed ACL rule. Passwords are hashed as soon as they are parsed;
/// the cleartext is never kept.
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
    /// resetchannels off clearselectors -@all`).
    Reset,
    /// `allkeys` or `~*`.
    AllKeys,
    /// `resetkeys`.
    ResetKeys,
    /// `~pattern`, `%R~pattern`, `%W~pattern`, `%RW~pattern`.
    KeyPattern(KeyPattern),
    /// `allchannels` or `&*`.
    AllChannels,
    /// `resetchannels`.
    ResetChannels,
    /// `&pattern` (any pattern but `*`).
    ChannelPattern(String),
    /// `allcommands` or `+@all`.
    AllCommands,
    /// `nocommands` or `-@all`.
    NoCommands,
    /// `+name` / `-name`; `name` may be `command|subcommand` or, with `+`,
    /// `command|first-arg`. Not validated here: that needs the command
    /// table.
    Command { allow: bool, name: String },
    /// `+@category` / `-@category` for a known category other than `all`
    /// (stored in lower case).
    Category { allow: bool, name: String },
    /// `(...)`: a selector. Not supported yet.
    Selector,
    /// `clearselectors`.
    ClearSelectors,
    /// `sanitize-payload`.
    SanitizePayload,
    /// `skip-sanitize-payload`.
    SkipSanitizePayload,
}

/// Why a rule could not be parsed or applied. Never contains a password or
/// a hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// Not an ACL rule. Not echoed: it may be a password missing its `>`.
    Unknown,
    /// `>` with nothing after it.
    EmptyPassword,
    /// A `>` or `<` password longer than [`MAX_PASSWORD_LEN`].
    PasswordTooLong,
    /// `#` or `!` not followed by 64 hex digits; holds the sigil.
    InvalidHash(char),
    /// `<password` for a password the user does not have.
    PasswordNotSet,
    /// `!hash` for a hash the user does not have.
    HashNotSet,
    /// More than [`MAX_PASSWORDS_PER_USER`] passwords.
    TooManyPasswords,
    /// `%` not followed by `R`, `W` or `RW` and `~`; holds the rule.
    InvalidKeyPermission(String),
    /// A key pattern containing whitespace or NUL; holds the rule.
    InvalidKeyPattern(String),
    /// A channel pattern containing whitespace or NUL; holds the rule.
    InvalidChannelPattern(String),
    /// A key pattern after `~*` / `allkeys`; holds the rule.
    KeyPatternAfterAllKeys(String),
    /// A channel pattern after `&*` / `allchannels`; holds the rule.
    ChannelPatternAfterAllChannels(String),
    /// `+@x` / `-@x` for a category Redis does not have; holds the rule.
    UnknownCategory(String),
    /// `+` or `-` with no command name.
    MissingCommandName,
    /// A valid rule granting less than full access; holds the rule.
    NotEnforcedYet(String),
    /// A selector `(...)`.
    SelectorNotSupported,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::Unknown => f.write_str(
                "unknown ACL rule (not shown, in case it is a password missing its '>' prefix)",
            ),
            RuleError::EmptyPassword => {
                f.write_str("empty password: '>' must be followed by the password")
            }
            RuleError::PasswordTooLong => {
                write!(f, "password is longer than {MAX_PASSWORD_LEN} bytes")
            }
            RuleError::InvalidHash(sigil) => write!(
                f,
                "'{sigil}' must be followed by a password hash of exactly 64 hexadecimal \
                 characters (a SHA-256 digest)"
            ),
            RuleError::PasswordNotSet => f.write_str(
                "'<' removes a password the user does not have (at this point of the line)",
            ),
            RuleError::HashNotSet => f.write_str(
                "'!' removes a password hash the user does not have (at this point of the line)",
            ),
            RuleError::TooManyPasswords => {
                write!(f, "more than {MAX_PASSWORDS_PER_USER} passwords")
            }
            RuleError::InvalidKeyPermission(rule) => write!(
                f,
                "invalid key rule {}: '%' must be followed by R, W or RW, then '~' and a pattern",
                quote(rule)
            ),
            RuleError::InvalidKeyPattern(rule) => write!(
                f,
                "invalid key pattern {}: patterns may not contain whitespace or NUL",
                quote(rule)
            ),
            RuleError::InvalidChannelPattern(rule) => write!(
                f,
                "invalid channel pattern {}: patterns may not contain whitespace or NUL",
                quote(rule)
            ),
            RuleError::KeyPatternAfterAllKeys(rule) => write!(
                f,
                "key pattern {} after '~*' (or 'allkeys') has no effect; use 'resetkeys' first",
                quote(rule)
            ),
            RuleError::ChannelPatternAfterAllChannels(rule) => write!(
                f,
                "channel pattern {} after '&*' (or 'allchannels') has no effect; \
                 use 'resetchannels' first",
                quote(rule)
            ),
            RuleError::UnknownCategory(rule) => {
                write!(f, "unknown ACL category in {}", quote(rule))
            }
            RuleError::MissingCommandName => {
                f.write_str("'+' or '-' must be followed by a command name or '@category'")
            }
            RuleError::NotEnforcedYet(rule) => write!(
                f,
                "narrower permissions ({}) are not enforced yet; {FULL_ACCESS}",
                excerpt(rule)
            ),
            RuleError::SelectorNotSupported => {
                write!(f, "selectors '(...)' are not supported yet; {FULL_ACCESS}")
            }
        }
    }
}

/// `'text'`, shortened and with control characters escaped.
fn quote(text: &str) -> String {
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

impl AclRule {
    /// Parses one rule, already trimmed of `\t`, `\r` and `\n` and not
    /// empty (as `ACLLoadFromFile` hands it to `ACLSetUser`). Keywords are
    /// matched case-insensitively; passwords and patterns are taken as is.
    pub fn parse(rule: &str) -> Result<AclRule, RuleError> {
        const KEYWORDS: &[(&str, AclRule)] = &[
            ("on", AclRule::On),
            ("off", AclRule::Off),
            ("nopass", AclRule::NoPass),
            ("resetpass", AclRule::ResetPass),
            ("reset", AclRule::Reset),
            ("allkeys", AclRule::AllKeys),
            ("~*", AclRule::AllKeys),
            ("resetkeys", AclRule::ResetKeys),
            ("allchannels", AclRule::AllChannels),
            ("&*", AclRule::AllChannels),
            ("resetchannels", AclRule::ResetChannels),
            ("allcommands", AclRule::AllCommands),
            ("+@all", AclRule::AllCommands),
            ("nocommands", AclRule::NoCommands),
            ("-@all", AclRule::NoCommands),
            ("clearselectors", AclRule::ClearSelectors),
            ("sanitize-payload", AclRule::SanitizePayload),
            ("skip-sanitize-payload", AclRule::SkipSanitizePayload),
        ];
        if let Some((_, keyword)) = KEYWORDS
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(rule))
        {
            return Ok(keyword.clone());
        }
        let mut chars = rule.chars();
        let Some(sigil) = chars.next() else {
            return Err(RuleError::Unknown);
        };
        let rest = chars.as_str();
        match sigil {
            '>' => {
                if rest.is_empty() {
                    Err(RuleError::EmptyPassword)
                } else if rest.len() > MAX_PASSWORD_LEN {
                    Err(RuleError::PasswordTooLong)
                } else {
                    Ok(AclRule::AddPassword(PasswordHash::of(rest.as_bytes())))
                }
            }
            '<' => {
                if rest.len() > MAX_PASSWORD_LEN {
                    Err(RuleError::PasswordTooLong)
                } else {
                    Ok(AclRule::RemovePassword(PasswordHash::of(rest.as_bytes())))
                }
            }
            '#' => PasswordHash::from_hex(rest)
                .map(AclRule::AddHash)
                .map_err(|InvalidHash| RuleError::InvalidHash('#')),
            '!' => PasswordHash::from_hex(rest)
                .map(AclRule::RemoveHash)
                .map_err(|InvalidHash| RuleError::InvalidHash('!')),
            '~' => {
                if has_space_or_nul(rest) {
                    Err(RuleError::InvalidKeyPattern(rule.to_owned()))
                } else {
                    Ok(AclRule::KeyPattern(KeyPattern {
                        pattern: rest.to_owned(),
                        read: true,
                        write: true,
                    }))
                }
            }
            '%' => parse_key_permission(rule, rest),
            '&' => {
                if has_space_or_nul(rest) {
                    Err(RuleError::InvalidChannelPattern(rule.to_owned()))
                } else {
                    Ok(AclRule::ChannelPattern(rest.to_owned()))
                }
            }
            '+' | '-' => {
                let allow = sigil == '+';
                if let Some(category) = rest.strip_prefix('@') {
                    // "+@all" and "-@all" matched the keywords above.
                    match CATEGORIES
                        .iter()
                        .find(|known| known.eq_ignore_ascii_case(category))
                    {
                        Some(known) => Ok(AclRule::Category {
                            allow,
                            name: (*known).to_owned(),
                        }),
                        None => Err(RuleError::UnknownCategory(rule.to_owned())),
                    }
                } else if rest.is_empty() {
                    Err(RuleError::MissingCommandName)
                } else {
                    Ok(AclRule::Command {
                        allow,
                        name: rest.to_owned(),
                    })
                }
            }
            // `ACLLoadFromFile` would merge "(a" "b)" into one selector;
            // every form is refused for now, so the first piece is enough.
            '(' => Ok(AclRule::Selector),
            _ => Err(RuleError::Unknown),
        }
    }

    /// The rule as Redis would print it, for rules that hold no secret;
    /// `None` for password rules and selectors.
    pub fn describe(&self) -> Option<String> {
        let text = match self {
            AclRule::AddPassword(_)
            | AclRule::AddHash(_)
            | AclRule::RemovePassword(_)
            | AclRule::RemoveHash(_)
            | AclRule::Selector => return None,
            AclRule::On => "on".to_owned(),
            AclRule::Off => "off".to_owned(),
            AclRule::NoPass => "nopass".to_owned(),
            AclRule::ResetPass => "resetpass".to_owned(),
            AclRule::Reset => "reset".to_owned(),
            AclRule::AllKeys => "~*".to_owned(),
            AclRule::ResetKeys => "resetkeys".to_owned(),
            AclRule::KeyPattern(pattern) => pattern.to_string(),
            AclRule::AllChannels => "&*".to_owned(),
            AclRule::ResetChannels => "resetchannels".to_owned(),
            AclRule::ChannelPattern(pattern) => format!("&{pattern}"),
            AclRule::AllCommands => "+@all".to_owned(),
            AclRule::NoCommands => "-@all".to_owned(),
            AclRule::Command { allow, name } => format!("{}{name}", sign(*allow)),
            AclRule::Category { allow, name } => format!("{}@{name}", sign(*allow)),
            AclRule::ClearSelectors => "clearselectors".to_owned(),
            AclRule::SanitizePayload => "sanitize-payload".to_owned(),
            AclRule::SkipSanitizePayload => "skip-sanitize-payload".to_owned(),
        };
        Some(text)
    }
}

fn sign(allow: bool) -> char {
    if allow { '+' } else { '-' }
}

/// `%R~p`, `%W~p`, `%RW~p` (letters in any case and order, each at most
/// once), as patched in Debian's 7.0.15 (CVE-2024-51741): at least one of R
/// and W is required. A `%R` with no `~` is accepted with an empty pattern,
/// as Redis does.
fn parse_key_permission(rule: &str, rest: &str) -> Result<AclRule, RuleError> {
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
            _ => return Err(RuleError::InvalidKeyPermission(rule.to_owned())),
        }
    }
    if !read && !write {
        return Err(RuleError::InvalidKeyPermission(rule.to_owned()));
    }
    if has_space_or_nul(pattern) {
        return Err(RuleError::InvalidKeyPattern(rule.to_owned()));
    }
    Ok(AclRule::KeyPattern(KeyPattern {
        pattern: pattern.to_owned(),
        read,
        write,
    }))
}

/// Redis's `ACLStringHasSpaces`: C `isspace` or NUL.
fn has_space_or_nul(text: &str) -> bool {
    text.bytes()
        .any(|b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0))
}

// ---------------------------------------------------------------------------
// Permissions
// ---------------------------------------------------------------------------

/// A key pattern and the access it grants.
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.read, self.write) {
            (true, true) => write!(f, "~{}", self.pattern),
            (true, false) => write!(f, "%R~{}", self.pattern),
            (false, true) => write!(f, "%W~{}", self.pattern),
            (false, false) => write!(f, "%~{}", self.pattern),
        }
    }
}

/// Which keys a user may access: Redis's `SELECTOR_FLAG_ALLKEYS` and
/// pattern list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPermissions {
    all: bool,
    patterns: Vec<KeyPattern>,
}

impl KeyPermissions {
    /// Set by `~*` / `allkeys`.
    pub fn all(&self) -> bool {
        self.all
    }

    /// The patterns, in the order given (merged by pattern, as Redis does).
    pub fn patterns(&self) -> &[KeyPattern] {
        &self.patterns
    }

    /// Every key readable and writable: `~*`, or a `*` pattern with both
    /// permissions (`%RW~*`, `%R~* %W~*`).
    pub fn is_full(&self) -> bool {
        self.all
            || self
                .patterns
                .iter()
                .any(|p| p.pattern == "*" && p.read && p.write)
    }
}

/// Which Pub/Sub channels a user may use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelPermissions {
    all: bool,
    patterns: Vec<String>,
}

impl ChannelPermissions {
    /// Set by `&*` / `allchannels`.
    pub fn all(&self) -> bool {
        self.all
    }

    /// The patterns, in the order given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Every channel allowed.
    pub fn is_full(&self) -> bool {
        self.all
    }
}

/// Which commands a user may run. Only "all" or "none" for now; the
/// per-command and per-category state will live here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandPermissions {
    all: bool,
}

impl CommandPermissions {
    /// Every command allowed (`+@all`).
    pub fn is_full(&self) -> bool {
        self.all
    }
}

/// A user's permissions (Redis's root selector).
///
/// `Default` is a new Redis user's state: no keys, no channels (Redis 7's
/// `acl-pubsub-default` is `resetchannels`), no commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    keys: KeyPermissions,
    channels: ChannelPermissions,
    commands: CommandPermissions,
}

impl Permissions {
    /// `~* &* +@all`.
    pub fn full() -> Self {
        Permissions {
            keys: KeyPermissions {
                all: true,
                patterns: Vec::new(),
            },
            channels: ChannelPermissions {
                all: true,
                patterns: Vec::new(),
            },
            commands: CommandPermissions { all: true },
        }
    }

    /// Key permissions.
    pub fn keys(&self) -> &KeyPermissions {
        &self.keys
    }

    /// Channel permissions.
    pub fn channels(&self) -> &ChannelPermissions {
        &self.channels
    }

    /// Command permissions.
    pub fn commands(&self) -> &CommandPermissions {
        &self.commands
    }

    /// Everything allowed.
    pub fn is_full(&self) -> bool {
        self.keys.is_full() && self.channels.is_full() && self.commands.is_full()
    }

    /// Why these permissions cannot be used yet, or `None` for full access.
    fn unsupported(&self) -> Option<Unsupported> {
        let mut narrower = Vec::new();
        let mut missing = Vec::new();
        if !self.keys.is_full() {
            if self.keys.patterns.is_empty() {
                missing.push(("key", "~*"));
            } else {
                narrower.extend(self.keys.patterns.iter().map(ToString::to_string));
            }
        }
        if !self.channels.is_full() {
            if self.channels.patterns.is_empty() {
                missing.push(("channel", "&*"));
            } else {
                narrower.extend(self.channels.patterns.iter().map(|p| format!("&{p}")));
            }
        }
        if !self.commands.is_full() {
            missing.push(("command", "+@all"));
        }
        if !narrower.is_empty() {
            Some(Unsupported::Narrower(narrower.join(" ")))
        } else if !missing.is_empty() {
            Some(Unsupported::Missing(missing))
        } else {
            None
        }
    }
}

/// Why a user's final permissions are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// Patterns narrower than everything, as rules (`~app:* &news`).
    Narrower(String),
    /// Kinds of permission the user has none of, with the rule that grants
    /// all of it.
    Missing(Vec<(&'static str, &'static str)>),
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::Narrower(rules) => write!(
                f,
                "narrower permissions ({}) are not enforced yet; {FULL_ACCESS}",
                excerpt(rules)
            ),
            Unsupported::Missing(missing) => {
                let kinds: Vec<&str> = missing.iter().map(|(kind, _)| *kind).collect();
                let fixes: Vec<&str> = missing.iter().map(|(_, fix)| *fix).collect();
                let kinds = match kinds.split_last() {
                    Some((last, [])) => (*last).to_owned(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                };
                write!(
                    f,
                    "no {kinds} permissions (a user starts with none, and 'reset' removes them); \
                     {FULL_ACCESS}: add '{}'",
                    fixes.join(" ")
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

/// One user: Redis's `struct user`, minus what the proxy has no use for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    name: String,
    enabled: bool,
    nopass: bool,
    passwords: Vec<PasswordHash>,
    permissions: Permissions,
    skip_sanitize_payload: bool,
}

impl User {
    /// A new user as `ACLCreateUser` makes it: off, no password, no
    /// permissions.
    pub fn new(name: &str) -> Self {
        User {
            name: name.to_owned(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            permissions: Permissions::default(),
            skip_sanitize_payload: false,
        }
    }

    /// Redis's initial default user (`ACLCreateDefaultUser`):
    /// `on nopass ~* &* +@all`. What a Redis without a password has.
    pub fn default_nopass() -> Self {
        User {
            enabled: true,
            nopass: true,
            permissions: Permissions::full(),
            ..User::new(DEFAULT_USER)
        }
    }

    /// The default user with `requirepass <password>`:
    /// `on >password ~* &* +@all`.
    pub fn default_with_password(password: &[u8]) -> Self {
        User {
            enabled: true,
            passwords: vec![PasswordHash::of(password)],
            permissions: Permissions::full(),
            ..User::new(DEFAULT_USER)
        }
    }

    /// A default user nobody can authenticate as: `off resetpass ~* &*
    /// +@all`.
    pub fn default_disabled() -> Self {
        User {
            permissions: Permissions::full(),
            ..User::new(DEFAULT_USER)
        }
    }

    /// Applies one rule, as `ACLSetUser` does.
    pub fn apply(&mut self, rule: &AclRule) -> Result<(), RuleError> {
        match rule {
            AclRule::On => self.enabled = true,
            AclRule::Off => self.enabled = false,
            AclRule::AddPassword(hash) | AclRule::AddHash(hash) => {
                if !self.passwords.contains(hash) {
                    if self.passwords.len() >= MAX_PASSWORDS_PER_USER {
                        return Err(RuleError::TooManyPasswords);
                    }
                    self.passwords.push(hash.clone());
                }
                self.nopass = false;
            }
            AclRule::RemovePassword(hash) | AclRule::RemoveHash(hash) => {
                let before = self.passwords.len();
                self.passwords.retain(|stored| stored != hash);
                if self.passwords.len() == before {
                    return Err(if matches!(rule, AclRule::RemoveHash(_)) {
                        RuleError::HashNotSet
                    } else {
                        RuleError::PasswordNotSet
                    });
                }
            }
            AclRule::NoPass => {
                self.nopass = true;
                self.passwords.clear();
            }
            AclRule::ResetPass => {
                self.nopass = false;
                self.passwords.clear();
            }
            AclRule::Reset => {
                self.nopass = false;
                self.passwords.clear();
                self.permissions = Permissions::default();
                self.enabled = false;
                self.skip_sanitize_payload = false;
            }
            AclRule::AllKeys => {
                self.permissions.keys.all = true;
                self.permissions.keys.patterns.clear();
            }
            AclRule::ResetKeys => {
                self.permissions.keys.all = false;
                self.permissions.keys.patterns.clear();
            }
            AclRule::KeyPattern(new) => {
                let keys = &mut self.permissions.keys;
                if keys.all {
                    return Err(RuleError::KeyPatternAfterAllKeys(new.to_string()));
                }
                match keys.patterns.iter_mut().find(|p| p.pattern == new.pattern) {
                    Some(existing) => {
                        existing.read |= new.read;
                        existing.write |= new.write;
                    }
                    None => keys.patterns.push(new.clone()),
                }
            }
            AclRule::AllChannels => {
                self.permissions.channels.all = true;
                self.permissions.channels.patterns.clear();
            }
            AclRule::ResetChannels => {
                self.permissions.channels.all = false;
                self.permissions.channels.patterns.clear();
            }
            AclRule::ChannelPattern(pattern) => {
                let channels = &mut self.permissions.channels;
                if channels.all {
                    return Err(RuleError::ChannelPatternAfterAllChannels(format!(
                        "&{pattern}"
                    )));
                }
                if !channels.patterns.contains(pattern) {
                    channels.patterns.push(pattern.clone());
                }
            }
            AclRule::AllCommands => self.permissions.commands.all = true,
            AclRule::NoCommands => self.permissions.commands.all = false,
            AclRule::Command { .. } | AclRule::Category { .. } => {
                return Err(RuleError::NotEnforcedYet(
                    rule.describe().unwrap_or_default(),
                ));
            }
            AclRule::Selector => return Err(RuleError::SelectorNotSupported),
            // No selectors can exist, so there is nothing to clear.
            AclRule::ClearSelectors => {}
            AclRule::SanitizePayload => self.skip_sanitize_payload = false,
            AclRule::SkipSanitizePayload => self.skip_sanitize_payload = true,
        }
        Ok(())
    }

    /// The user name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the user is `on`.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the user is `nopass`.
    pub fn is_nopass(&self) -> bool {
        self.nopass
    }

    /// How many passwords the user has.
    pub fn password_count(&self) -> usize {
        self.passwords.len()
    }

    /// The user's permissions.
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// `ACLCheckUserCredentials` for this user, with the candidate already
    /// hashed. Compares with every stored hash, with no early exit.
    fn check(&self, candidate: &PasswordHash) -> Result<(), AuthFailure> {
        if !self.enabled {
            return Err(AuthFailure::UserDisabled);
        }
        if self.nopass {
            return Ok(());
        }
        let mut matched = Choice::from(0);
        for stored in &self.passwords {
            matched |= stored.ct_eq(candidate);
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(AuthFailure::WrongPassword)
        }
    }

    fn warnings(&self) -> Vec<UserWarning> {
        let mut warnings = Vec::new();
        if !self.enabled {
            warnings.push(UserWarning::Disabled(self.name.clone()));
        } else if !self.nopass && self.passwords.is_empty() {
            warnings.push(UserWarning::NoPassword(self.name.clone()));
        }
        if self.skip_sanitize_payload {
            warnings.push(UserWarning::SkipSanitizePayload(self.name.clone()));
        }
        warnings
    }
}

// ---------------------------------------------------------------------------
// ACL lines
// ---------------------------------------------------------------------------

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
    /// The 1-based position of the offending rule among the line's rules.
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
    /// A rule that cannot be parsed or applied.
    Rule(RuleError),
    /// The user's final permissions are less than full access.
    Unsupported(Unsupported),
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
            AclErrorKind::Rule(error) => error.fmt(f),
            AclErrorKind::Unsupported(reason) => reason.fmt(f),
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
/// which do nothing); each rule is trimmed of tabs, CR and LF. Then the
/// rules are applied in order to a new user, and the result must have full
/// access.
pub fn parse_acl_line(line: &str) -> Result<ParsedUser, AclError> {
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
    let mut user = User::new(name);
    let rules = words
        .map(|word| word.trim_matches(['\t', '\r', '\n']))
        .filter(|word| !word.is_empty());
    for (index, word) in rules.enumerate() {
        let number = Some(index.saturating_add(1));
        AclRule::parse(word)
            .and_then(|rule| user.apply(&rule))
            .map_err(|e| error(Some(name), number, AclErrorKind::Rule(e)))?;
    }
    if let Some(reason) = user.permissions.unsupported() {
        return Err(error(Some(name), None, AclErrorKind::Unsupported(reason)));
    }
    let warnings = user.warnings();
    Ok(ParsedUser { user, warnings })
}

// ---------------------------------------------------------------------------
// The directory
// ---------------------------------------------------------------------------

/// A user of a [`UserDirectory`]: a small index, valid for the directory
/// that returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(u32);

impl UserId {
    /// The default user, present in every directory.
    pub const DEFAULT: UserId = UserId(0);
}

/// Why `AUTH` failed. Redis answers every case with the same `WRONGPASS`
/// error, and so must the proxy: telling them apart to a client reveals
/// which user names exist. The distinction is for logs and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No user has that name.
    UnknownUser,
    /// The user is `off`.
    UserDisabled,
    /// No password of the user matches.
    WrongPassword,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthFailure::UnknownUser => "unknown user",
            AuthFailure::UserDisabled => "user is disabled",
            AuthFailure::WrongPassword => "wrong password",
        })
    }
}

/// Why [`UserDirectory::new`] refused its users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectoryError {
    /// The default user is not named `default`.
    DefaultUserMisnamed,
    /// A user other than the first is named `default`.
    DefaultUserRedefined,
    /// Two users have this name.
    DuplicateUser(String),
    /// More than [`MAX_USERS`] users besides the default one.
    TooManyUsers,
}

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectoryError::DefaultUserMisnamed => {
                write!(f, "the default user must be named '{DEFAULT_USER}'")
            }
            DirectoryError::DefaultUserRedefined => {
                write!(f, "user '{DEFAULT_USER}' is defined twice")
            }
            DirectoryError::DuplicateUser(name) => {
                write!(f, "user {} is defined twice", quote(name))
            }
            DirectoryError::TooManyUsers => write!(f, "more than {MAX_USERS} users"),
        }
    }
}

/// The users clients can authenticate as. Always holds the default user
/// (as [`UserId::DEFAULT`]); names are unique.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDirectory {
    users: Vec<User>,
}

impl UserDirectory {
    /// A Redis without a password: only the default user, `on nopass ~* &*
    /// +@all`. Every connection is authenticated from the start.
    pub fn no_auth() -> Self {
        UserDirectory {
            users: vec![User::default_nopass()],
        }
    }

    /// A directory of `default` and `others`.
    pub fn new(default: User, others: Vec<User>) -> Result<Self, DirectoryError> {
        if default.name != DEFAULT_USER {
            return Err(DirectoryError::DefaultUserMisnamed);
        }
        if others.len() > MAX_USERS {
            return Err(DirectoryError::TooManyUsers);
        }
        let mut seen = BTreeSet::new();
        for user in &others {
            if user.name == DEFAULT_USER {
                return Err(DirectoryError::DefaultUserRedefined);
            }
            if !seen.insert(user.name.as_str()) {
                return Err(DirectoryError::DuplicateUser(user.name.clone()));
            }
        }
        let mut users = Vec::with_capacity(others.len().saturating_add(1));
        users.push(default);
        users.extend(others);
        Ok(UserDirectory { users })
    }

    /// `ACLCheckUserCredentials`: the user must exist and be `on`; then
    /// `nopass` accepts any password, otherwise one of the user's passwords
    /// must match. The candidate is hashed before the user is looked up,
    /// and compared with every stored hash without stopping at a match, so
    /// the time taken says little about which case failed.
    pub fn authenticate(&self, username: &[u8], password: &[u8]) -> Result<UserId, AuthFailure> {
        let candidate = PasswordHash::of(password);
        let id = self.find(username).ok_or(AuthFailure::UnknownUser)?;
        let user = self.user(id).ok_or(AuthFailure::UnknownUser)?;
        user.check(&candidate)?;
        Ok(id)
    }

    /// The user with this name.
    pub fn find(&self, username: &[u8]) -> Option<UserId> {
        let index = self
            .users
            .iter()
            .position(|user| user.name.as_bytes() == username)?;
        u32::try_from(index).ok().map(UserId)
    }

    /// The user behind `id`, if `id` came from this directory.
    pub fn user(&self, id: UserId) -> Option<&User> {
        usize::try_from(id.0).ok().and_then(|i| self.users.get(i))
    }

    /// The name of `id`; empty if `id` did not come from this directory.
    pub fn user_name(&self, id: UserId) -> &str {
        self.user(id).map_or("", User::name)
    }

    /// The default user.
    pub fn default_user(&self) -> Option<&User> {
        self.user(UserId::DEFAULT)
    }

    /// Whether the default user is `nopass`, on or off: Redis then refuses
    /// the one-argument `AUTH <password>` with `-ERR AUTH <password> called
    /// without any password configured for the default user. Are you sure
    /// your configuration is correct?` rather than trying it.
    pub fn default_user_is_nopass(&self) -> bool {
        self.default_user().is_some_and(User::is_nopass)
    }

    /// Whether a new connection starts authenticated as the default user:
    /// the default user is `on` and `nopass` (the opposite of Redis's
    /// `authRequired`).
    pub fn authenticated_on_connect(&self) -> bool {
        self.default_user()
            .is_some_and(|user| user.is_enabled() && user.is_nopass())
    }

    /// All users, the default one first.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// How many users, the default one included.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Always false: the default user is always there.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let expected =
            "an ACL line must start with 'user' (in lower case) followed by the user name";
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
            "user 'app': rule 3: '<' removes a password the user does not have \
             (at this point of the line)"
        );
        // Redis: "The password you are trying to remove from the user does
        // not exist", for `<` with nothing after it too.
        assert!(error(&format!("user app on >a < {FULL}")).contains("rule 3: '<' removes"));
        // Order matters: removing before adding fails.
        assert!(error(&format!("user app on <a >a {FULL}")).contains("rule 2: '<'"));
    }

    #[test]
    fn duplicate_passwords_are_stored_once_like_redis() {
        let line = format!("user app on >p >p <p {FULL}");
        assert_eq!(parse(&line).password_count(), 0);
        assert!(!accepts(&line, "p"));
        assert_eq!(
            warnings(&line),
            [
                "user 'app' has no password and is not 'nopass', so clients cannot authenticate as it"
            ]
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
            "user 'app': rule 3: '!' removes a password hash the user does not have \
             (at this point of the line)"
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
                "user 'app': rule 2: '#' must be followed by a password hash of exactly 64 \
                 hexadecimal characters (a SHA-256 digest)"
            );
        }
        let message = error(&format!("user app on !not-a-hash-secret {FULL}"));
        assert!(message.starts_with("user 'app': rule 2: '!' must be followed"));
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
        assert!(error(&format!("user app on >a nopass <a {FULL}")).contains("rule 4: '<'"));
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
        assert_eq!(
            error(&format!("user app on >a {FULL} reset")),
            "user 'app': no key, channel or command permissions (a user starts with none, \
             and 'reset' removes them); only full access (~* &* +@all) is supported: \
             add '~* &* +@all'"
        );
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
            "%RW~* &* +@all",
            "%rw~* &* +@all",
            "%WR~* &* +@all",
            "%R~* %W~* &* +@all",
            "~app:* ~* &* +@all",
            "~app:* allkeys &news allchannels +@all",
            "nocommands +@all ~* &*",
            "-@all allcommands ~* &*",
            "~* resetkeys ~* resetchannels &* -@all +@all",
            "~* &* +@all clearselectors sanitize-payload",
            "%RW~* ~app:* &* +@all",
        ] {
            let user = parse(&format!("user app on >pw {rules}"));
            assert!(user.permissions().is_full(), "{rules}");
        }
    }

    #[test]
    fn narrower_key_and_channel_patterns_are_refused() {
        assert_eq!(
            error("user bob on >pw ~app:* &* +@all"),
            "user 'bob': narrower permissions (~app:*) are not enforced yet; \
             only full access (~* &* +@all) is supported"
        );
        for (rules, shown) in [
            ("%R~* &* +@all", "%R~*"),
            ("%W~* &* +@all", "%W~*"),
            ("%R~* %W~app &* +@all", "%R~* %W~app"),
            ("~a ~b %R~a &* +@all", "~a ~b"),
            ("~* &news +@all", "&news"),
            ("~* &a &b &a +@all", "&a &b"),
            ("%R &* +@all", "%R~"),
            ("~ &* +@all", "~"),
            ("~x & +@all", "~x &"),
            ("~** &* +@all", "~**"),
        ] {
            assert_eq!(
                error(&format!("user bob on >pw {rules}")),
                format!(
                    "user 'bob': narrower permissions ({shown}) are not enforced yet; \
                     only full access (~* &* +@all) is supported"
                ),
                "{rules}"
            );
        }
    }

    #[test]
    fn missing_permissions_are_refused() {
        let tail = "only full access (~* &* +@all) is supported";
        let start = "(a user starts with none, and 'reset' removes them)";
        assert_eq!(
            error("user bob on >pw"),
            format!(
                "user 'bob': no key, channel or command permissions {start}; {tail}: add '~* &* +@all'"
            )
        );
        assert_eq!(
            error("user bob"),
            format!(
                "user 'bob': no key, channel or command permissions {start}; {tail}: add '~* &* +@all'"
            )
        );
        assert_eq!(
            error("user bob on >pw ~* +@all"),
            format!("user 'bob': no channel permissions {start}; {tail}: add '&*'")
        );
        assert_eq!(
            error("user bob on >pw ~* &*"),
            format!("user 'bob': no command permissions {start}; {tail}: add '+@all'")
        );
        assert_eq!(
            error("user bob on >pw &* ~* +@all -@all"),
            format!("user 'bob': no command permissions {start}; {tail}: add '+@all'")
        );
        assert_eq!(
            error("user bob on >pw +@all"),
            format!("user 'bob': no key or channel permissions {start}; {tail}: add '~* &*'")
        );
        assert_eq!(
            error("user bob on >pw ~* &* +@all resetkeys"),
            format!("user 'bob': no key permissions {start}; {tail}: add '~*'")
        );
        assert_eq!(
            error("user bob on >pw ~* &* +@all resetchannels"),
            format!("user 'bob': no channel permissions {start}; {tail}: add '&*'")
        );
        assert_eq!(
            error("user bob on >pw ~* &* nocommands"),
            format!("user 'bob': no command permissions {start}; {tail}: add '+@all'")
        );
        // Narrower wins over missing in the message.
        assert!(error("user bob on >pw ~app:*").contains("narrower permissions (~app:*)"));
    }

    #[test]
    fn command_rules_are_refused_as_they_appear() {
        for (rule, shown) in [
            ("+get", "+get"),
            ("-get", "-get"),
            ("-GET", "-GET"),
            ("+@read", "+@read"),
            ("-@dangerous", "-@dangerous"),
            ("+@READ", "+@read"),
            ("+config|get", "+config|get"),
            ("-config|set", "-config|set"),
            ("+select|0", "+select|0"),
        ] {
            // Even when a later +@all would restore full access.
            assert_eq!(
                error(&format!("user bob on >pw ~* &* {rule} +@all")),
                format!(
                    "user 'bob': rule 5: narrower permissions ({shown}) are not enforced yet; \
                     only full access (~* &* +@all) is supported"
                ),
                "{rule}"
            );
        }
        assert_eq!(
            error("user bob on >pw ~* &* +@all +@nosuch"),
            "user 'bob': rule 6: unknown ACL category in '+@nosuch'"
        );
        assert_eq!(
            error("user bob on >pw ~* &* +@"),
            "user 'bob': rule 5: unknown ACL category in '+@'"
        );
        assert_eq!(
            error("user bob on >pw ~* &* + +@all"),
            "user 'bob': rule 5: '+' or '-' must be followed by a command name or '@category'"
        );
        assert!(error("user bob on >pw ~* &* - +@all").contains("rule 5: '+' or '-'"));
    }

    #[test]
    fn selectors_are_refused() {
        for rules in ["(~x +get)", "(~* &* +@all)", "(~x", "()"] {
            assert_eq!(
                error(&format!("user bob on >pw ~* &* +@all {rules}")),
                "user 'bob': rule 6: selectors '(...)' are not supported yet; \
                 only full access (~* &* +@all) is supported",
                "{rules}"
            );
        }
        assert!(
            parse("user bob on >pw ~* &* +@all clearselectors")
                .permissions()
                .is_full()
        );
    }

    #[test]
    fn patterns_after_star_are_errors_like_redis() {
        assert_eq!(
            error("user bob on >pw ~* ~foo &* +@all"),
            "user 'bob': rule 4: key pattern '~foo' after '~*' (or 'allkeys') has no effect; \
             use 'resetkeys' first"
        );
        assert_eq!(
            error("user bob on >pw allkeys %R~foo &* +@all"),
            "user 'bob': rule 4: key pattern '%R~foo' after '~*' (or 'allkeys') has no effect; \
             use 'resetkeys' first"
        );
        assert!(error("user bob on >pw ~* %RW~* &* +@all").contains("key pattern '~*' after"));
        assert_eq!(
            error("user bob on >pw ~* &* &foo +@all"),
            "user 'bob': rule 5: channel pattern '&foo' after '&*' (or 'allchannels') has no \
             effect; use 'resetchannels' first"
        );
        assert!(error("user bob on >pw ~* allchannels &* &x +@all").contains("rule 6: channel"));
    }

    #[test]
    fn malformed_key_rules() {
        for rule in ["%~*", "%", "%RR~*", "%RWR~*", "%X~*", "%R-*", "%~"] {
            assert_eq!(
                error(&format!("user bob on >pw {rule} &* +@all")),
                format!(
                    "user 'bob': rule 3: invalid key rule '{rule}': '%' must be followed by R, \
                     W or RW, then '~' and a pattern"
                )
            );
        }
        assert_eq!(
            error("user bob on >pw ~a\tb &* +@all"),
            "user 'bob': rule 3: invalid key pattern '~a\\tb': patterns may not contain \
             whitespace or NUL"
        );
        assert_eq!(
            error("user bob on >pw ~* &a\u{b}b +@all"),
            "user 'bob': rule 4: invalid channel pattern '&a\\u{b}b': patterns may not contain \
             whitespace or NUL"
        );
        assert!(error("user bob on >pw %R~a\u{c} &* +@all").contains("invalid key pattern"));
    }

    #[test]
    fn unknown_rules_are_not_echoed() {
        let message = error("user bob on hunter2-secret ~* &* +@all");
        assert_eq!(
            message,
            "user 'bob': rule 2: unknown ACL rule (not shown, in case it is a password \
             missing its '>' prefix)"
        );
        assert!(error("user bob on ~* &* +@all foo").contains("rule 5: unknown ACL rule"));
        assert!(error("user bob on ~* &* +@all allkey").contains("unknown ACL rule"));
        assert!(error("user bob on &* +@all ~*)").contains("narrower permissions (~*))"));
    }

    #[test]
    fn empty_and_oversize_passwords() {
        assert_eq!(
            error(&format!("user bob on > {FULL}")),
            "user 'bob': rule 2: empty password: '>' must be followed by the password"
        );
        // A '>' whose password is only trimmed characters is empty too.
        assert!(error(&format!("user bob on >\t {FULL}")).contains("empty password"));
        let long = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert_eq!(
            error(&format!("user bob on >{long} {FULL}")),
            "user 'bob': rule 2: password is longer than 4096 bytes"
        );
        assert!(error(&format!("user bob on <{long} {FULL}")).contains("longer than 4096"));
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
                "user 'bob': rule {}: more than 100 passwords",
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
        assert!(error("user app on\tnopass ~* &* +@all").contains("rule 1: unknown ACL rule"));
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
        let message = error(&format!("user a on ~{pattern} &* +@all"));
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
            [
                "user 'bob' has no password and is not 'nopass', so clients cannot authenticate as it"
            ]
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
            warnings("user bob on nopass skip-sanitize-payload reset on nopass ~* &* +@all")
                .is_empty()
        );
    }

    #[test]
    fn rule_parse_and_describe() {
        assert_eq!(AclRule::parse("ON"), Ok(AclRule::On));
        assert_eq!(AclRule::parse("~*"), Ok(AclRule::AllKeys));
        assert_eq!(AclRule::parse(""), Err(RuleError::Unknown));
        assert_eq!(
            AclRule::parse("%w~k*"),
            Ok(AclRule::KeyPattern(KeyPattern {
                pattern: "k*".to_owned(),
                read: false,
                write: true
            }))
        );
        assert_eq!(AclRule::parse(">pw").unwrap().describe(), None);
        assert_eq!(AclRule::parse("(x)").unwrap().describe(), None);
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
        assert_eq!(
            KeyPattern {
                pattern: "x".into(),
                read: false,
                write: false
            }
            .to_string(),
            "%~x"
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
            format!("user bob on >{secret} ~app:* &* +@all"),
            format!("user bob on >{secret} <x ~* &* +@all"),
            format!("user bob on {secret} ~* &* +@all"),
            format!("user bob on #{secret} ~* &* +@all"),
            format!("user bob on !{secret} ~* &* +@all"),
            format!("user bob on <{secret} ~* &* +@all"),
            format!("user bob on >{secret} +get ~* &* +@all"),
            format!("user bob on >{secret} (~x) ~* &* +@all"),
            format!("user bob on >{secret}"),
            format!("user bob on >{secret} >{secret}\n"),
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
            if let Ok(parsed) = parse_acl_line(&line) {
                prop_assert!(parsed.user.permissions().is_full());
            }
        }
    }
}
