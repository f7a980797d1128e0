//! Users the proxy authenticates clients against, built from Redis ACL
//! lines (`user <name> <rules...>`, the syntax of a Redis ACL file).
//!
//! The semantics follow Redis 7.0 (`src/acl.c`): a line is parsed the way
//! `ACLLoadFromFile` parses it ([`parse_acl_line`], in `line.rs`), each
//! rule is applied in order the way `ACLSetUser` applies it
//! ([`User::apply`]), and [`UserDirectory::authenticate`] follows
//! `ACLCheckUserCredentials`. What a user may run is its
//! [`Permissions`](crate::acl::Permissions), judged by [`crate::acl`].
//!
//! Deliberate differences from Redis:
//! - `>` with an empty password is an error (Redis adds the empty password);
//! - `#<hash>` and `!<hash>` accept upper-case hex digits (Redis wants lower
//!   case);
//! - user names may not contain any ASCII control character (Redis only
//!   refuses whitespace and NUL);
//! - an unknown rule is not echoed in the error, in case it is a password
//!   that lost its `>`.

use crate::acl::{Permissions, RuleError, Selector};
use crate::command::ServerVersion;
use crate::secret::{MAX_SECRET_LEN, PasswordHash};
use std::fmt;
use subtle::{Choice, ConstantTimeEq};

mod line;
#[cfg(test)]
mod tests;

use line::quote;
pub use line::{
    AclError, AclErrorKind, AclRule, ParsedUser, UserWarning, parse_acl_line, parse_acl_line_for,
    validate_username,
};

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

/// One user: Redis's `struct user`, minus what the proxy has no use for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    name: String,
    enabled: bool,
    nopass: bool,
    passwords: Vec<PasswordHash>,
    permissions: Permissions,
    sanitize: SanitizePayload,
}

/// The `sanitize-payload` flags: a new user has neither in Redis 7.0, and
/// `sanitize-payload` from 7.2 on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SanitizePayload {
    Unset,
    On,
    Skip,
}

impl User {
    /// A new user as `ACLCreateUser` makes it: off, no password, no
    /// permissions.
    pub fn new(name: &str) -> Self {
        Self::new_for(name, ServerVersion::default())
    }

    /// [`new`](Self::new), its rules naming `version`'s commands. From
    /// Redis 7.2 on a new user has the `sanitize-payload` flag
    /// (`ACLCreateUser`).
    pub fn new_for(name: &str, version: ServerVersion) -> Self {
        User {
            name: name.to_owned(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            permissions: Permissions::new(version),
            sanitize: if version.texts().sanitize_payload_by_default {
                SanitizePayload::On
            } else {
                SanitizePayload::Unset
            },
        }
    }

    /// A new user of `version` with `~* &* +@all`.
    fn full_for(name: &str, version: ServerVersion) -> Self {
        let mut user = User::new_for(name, version);
        *user.permissions.root_mut() = Selector::full_for(version);
        user
    }

    /// Redis's initial default user (`ACLCreateDefaultUser`):
    /// `on nopass ~* &* +@all`. What a Redis without a password has.
    pub fn default_nopass() -> Self {
        Self::default_nopass_for(ServerVersion::default())
    }

    /// [`default_nopass`](Self::default_nopass) of `version`.
    pub fn default_nopass_for(version: ServerVersion) -> Self {
        User {
            enabled: true,
            nopass: true,
            ..User::full_for(DEFAULT_USER, version)
        }
    }

    /// The default user with `requirepass <password>`:
    /// `on >password ~* &* +@all`.
    pub fn default_with_password(password: &[u8]) -> Self {
        Self::default_with_password_for(password, ServerVersion::default())
    }

    /// [`default_with_password`](Self::default_with_password) of `version`
    /// (from 7.2 on, with `sanitize-payload`).
    pub fn default_with_password_for(password: &[u8], version: ServerVersion) -> Self {
        User {
            enabled: true,
            passwords: vec![PasswordHash::of(password)],
            ..User::full_for(DEFAULT_USER, version)
        }
    }

    /// A default user nobody can authenticate as: `off resetpass ~* &*
    /// +@all`.
    pub fn default_disabled() -> Self {
        Self::default_disabled_for(ServerVersion::default())
    }

    /// [`default_disabled`](Self::default_disabled) of `version`.
    pub fn default_disabled_for(version: ServerVersion) -> Self {
        User::full_for(DEFAULT_USER, version)
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
                    return Err(RuleError::PasswordNotSet);
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
                // resetpass resetkeys resetchannels off sanitize-payload
                // clearselectors -@all
                self.nopass = false;
                self.passwords.clear();
                self.permissions = Permissions::new(self.permissions.version());
                self.enabled = false;
                self.sanitize = SanitizePayload::On;
            }
            AclRule::ClearSelectors => self.permissions.clear_selectors(),
            AclRule::Selector(rules) => {
                let mut selector = Selector::new(self.permissions.version());
                for rule in rules {
                    selector.apply(rule)?;
                }
                self.permissions.add_selector(selector);
            }
            AclRule::Root(rule) => self.permissions.root_mut().apply(rule)?,
            AclRule::SanitizePayload => self.sanitize = SanitizePayload::On,
            AclRule::SkipSanitizePayload => self.sanitize = SanitizePayload::Skip,
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

    /// The password hashes, in the order added (as `ACL GETUSER` lists
    /// them).
    pub fn password_hashes(&self) -> &[PasswordHash] {
        &self.passwords
    }

    /// The user's flags as `ACL GETUSER` lists them (`ACLUserFlags` order).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        match self.sanitize {
            SanitizePayload::Unset => {}
            SanitizePayload::Skip => flags.push("skip-sanitize-payload"),
            SanitizePayload::On => flags.push("sanitize-payload"),
        }
        flags
    }

    /// `ACLDescribeUser`: the user as `ACL LIST` shows it, after `user
    /// <name> `: flags, `#<hash>` per password, the root selector, then
    /// each other selector in parentheses. Passwords appear only as their
    /// SHA-256, as in Redis.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for flag in self.flags() {
            out.push_str(flag);
            out.push(' ');
        }
        for hash in &self.passwords {
            out.push('#');
            out.push_str(&hash.to_hex());
            out.push(' ');
        }
        out.push_str(&crate::acl::describe::selector(self.permissions.root()));
        for selector in self.permissions.extra() {
            out.push_str(" (");
            out.push_str(&crate::acl::describe::selector(selector));
            out.push(')');
        }
        out
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
        if self.sanitize == SanitizePayload::Skip {
            warnings.push(UserWarning::SkipSanitizePayload(self.name.clone()));
        }
        warnings
    }
}

/// A user of a [`UserDirectory`]: a small index, valid for the directory
/// that returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(u32);

impl UserId {
    /// The default user, present in every directory.
    pub const DEFAULT: UserId = UserId(0);

    /// The user's position in its directory (the default user is 0, the
    /// others follow in configuration order).
    pub fn index(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
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
        // Sorted, for a binary search (no B-tree in the wasm).
        let mut seen: Vec<&str> = Vec::with_capacity(others.len());
        for user in &others {
            if user.name == DEFAULT_USER {
                return Err(DirectoryError::DefaultUserRedefined);
            }
            match seen.binary_search(&user.name.as_str()) {
                Ok(_) => return Err(DirectoryError::DuplicateUser(user.name.clone())),
                Err(at) => seen.insert(at, user.name.as_str()),
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

    /// The permissions of `id` (the default user's for `None`); none at
    /// all if `id` did not come from this directory.
    pub fn permissions_of(&self, id: Option<UserId>) -> &Permissions {
        static NONE: std::sync::LazyLock<Permissions> =
            std::sync::LazyLock::new(Permissions::default);
        match self.user(id.unwrap_or(UserId::DEFAULT)) {
            Some(user) => &user.permissions,
            None => &NONE,
        }
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
