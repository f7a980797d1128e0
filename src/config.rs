//! The plugin configuration: JSON bytes in, [`Config`] (or one
//! [`ConfigError`]) out.
//!
//! ```json
//! {
//!   "downstream": {
//!     "password": "testredis123!",
//!     "users": ["user alice on >alicepw ~* &* +@all"],
//!     "max_auth_failures": 5
//!   },
//!   "upstream": { "username": "appuser", "password": { "env": "REDIS_PASSWORD" } }
//! }
//! ```
//!
//! - `downstream` (optional): how clients authenticate to the proxy.
//!   `password` is the default user's password (like `requirepass`);
//!   `users` are Redis ACL file lines (see [`crate::users`]);
//!   `max_auth_failures` (default [`DEFAULT_MAX_AUTH_FAILURES`], 0 = no
//!   limit). `password` and a `user default` line are mutually exclusive;
//!   with neither, the default user is disabled. At least one of `password`
//!   and `users` must be given.
//! - No `downstream`: the proxy owns no identities. Clients are in from the
//!   start ([`Config::users`] is a lone `default on nopass ~* &* +@all`), and
//!   their `AUTH` goes to the server, which judges it.
//! - `upstream` (optional): `password` (required) and `username`, sent to
//!   the server as `AUTH [username] password`.
//! - A secret (`password`s, `upstream.username`, and each `users` line,
//!   which may hold passwords) is a JSON string, `{"inline": "…"}`,
//!   `{"env": "NAME"}` (read through the lookup given to [`parse`]), or
//!   `{"base64": "…"}` (standard alphabet, padded: Kubernetes Secret data).
//! - Empty configuration bytes (or only whitespace) are refused: Envoy passes
//!   an empty configuration when none is set, and a forgotten configuration
//!   must not silently become an open Redis. `{}` asks for that explicitly.
//!
//! Unknown fields, duplicate fields and wrong types are errors at every
//! level. Error and warning texts name the field and the reason and never
//! contain a secret.

use crate::command::ServerVersion;
use crate::secret::{MAX_SECRET_LEN, Secret, wipe_string};
use crate::users::{self, DEFAULT_USER, MAX_ACL_LINE_LEN, MAX_USERS, User, UserDirectory, UserId};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::sync::LazyLock;

/// `downstream.max_auth_failures` when not given.
pub const DEFAULT_MAX_AUTH_FAILURES: u32 = 10;
/// The longest password, in bytes.
pub const MAX_PASSWORD_LEN: usize = MAX_SECRET_LEN;
/// The longest upstream user name, in bytes.
pub const MAX_USERNAME_LEN: usize = users::MAX_USERNAME_LEN;
/// The longest environment variable name accepted in `{"env": …}`.
pub const MAX_ENV_NAME_LEN: usize = 256;

/// The path of the configuration's top level in messages.
const ROOT: &str = "config";
/// The longest field name quoted in an error message.
const MAX_QUOTED_KEY: usize = 64;
const SECRET_FORMS: &str = "'inline', 'env' or 'base64'";

/// The result of [`parse`]: the configuration, and what was accepted but
/// looks wrong (log each at warning level).
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The configuration.
    pub config: Config,
    /// Warnings, each `<field>: <what>`; never containing a secret.
    pub warnings: Vec<String>,
}

/// The plugin configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// How clients authenticate to the proxy; `None`: they need not.
    pub downstream: Option<Downstream>,
    /// How the proxy authenticates to the server; `None`: it does not.
    pub upstream: Option<Upstream>,
    /// The server behind the proxy (`server_version`): its commands,
    /// categories and key specs judge restricted users, and its texts are
    /// the replies the proxy writes.
    pub server_version: ServerVersion,
}

/// Client-side authentication.
#[derive(Clone, Debug)]
pub struct Downstream {
    /// The users clients can authenticate as.
    pub users: UserDirectory,
    /// Failed `AUTH` attempts after which a connection is closed; 0 for
    /// no limit.
    pub max_auth_failures: u32,
    /// Per-user server identities, by [`UserId`]: `Some` for a user whose
    /// entry names its own `upstream`.
    pub user_upstreams: Vec<Option<Upstream>>,
    /// Peer identities (the mTLS peer certificate's URI SAN) mapped to
    /// users: a connection from one starts authenticated as its user.
    pub identities: Identities,
    /// Only mapped identities get in: a connection without one cannot
    /// `AUTH` (and the default user's `nopass` does not let it in).
    pub require_identity: bool,
}

/// `downstream.identities`: exact identities, and prefixes (an identity
/// written with a trailing `*`).
#[derive(Clone, Debug, Default)]
pub struct Identities {
    /// Sorted by identity, one entry each (a later duplicate replaces the
    /// earlier): looked up by binary search. A sorted `Vec` rather than a
    /// `BTreeMap`: the same lookups, ~9 KB less wasm without any B-tree.
    exact: Vec<(String, UserId)>,
    /// Longest first, so the most specific prefix wins.
    prefixes: Vec<(String, UserId)>,
}

/// The most entries `downstream.identities` may have.
pub const MAX_IDENTITIES: usize = 1000;
/// The longest identity, in bytes.
pub const MAX_IDENTITY_LEN: usize = 2048;

impl Identities {
    /// The user `peer` is mapped to: an exact entry, else the longest
    /// matching prefix.
    pub fn lookup(&self, peer: &[u8]) -> Option<UserId> {
        let peer = std::str::from_utf8(peer).ok()?;
        if let Ok(at) = self.exact.binary_search_by(|(id, _)| id.as_str().cmp(peer)) {
            return self.exact.get(at).map(|(_, user)| *user);
        }
        self.prefixes
            .iter()
            .find(|(prefix, _)| peer.starts_with(prefix.as_str()))
            .map(|(_, user)| *user)
    }

    /// Whether no identity is mapped.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }
}

/// The credentials the proxy sends upstream.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// `AUTH <username> <password>` when set, else `AUTH <password>`.
    pub username: Option<Secret>,
    /// The server password.
    pub password: Secret,
}

static NO_AUTH: LazyLock<UserDirectory> = LazyLock::new(UserDirectory::no_auth);

impl Config {
    /// The users clients authenticate against: the configured ones, or,
    /// without `downstream`, a directory in which every connection starts
    /// authenticated (default user `on nopass`, full access, no other user;
    /// the session then sends `AUTH` on to the server).
    pub fn users(&self) -> &UserDirectory {
        match &self.downstream {
            Some(downstream) => &downstream.users,
            None => &NO_AUTH,
        }
    }

    /// The credentials the server connection uses while the client is
    /// `user` (`None`: not authenticated, or the default user): the user's
    /// own `upstream`, else the top-level one.
    pub fn upstream_for(&self, user: Option<UserId>) -> Option<&Upstream> {
        self.own_upstream(user).or(self.upstream.as_ref())
    }

    /// The user a connection from `peer` (the mTLS peer's URI SAN) is
    /// mapped to, if any.
    pub fn mapped_user(&self, peer: &[u8]) -> Option<UserId> {
        self.downstream.as_ref()?.identities.lookup(peer)
    }

    /// Whether only mapped identities get in.
    pub fn require_identity(&self) -> bool {
        self.downstream.as_ref().is_some_and(|d| d.require_identity)
    }

    /// Whether any user has a server identity of its own.
    pub fn has_user_upstreams(&self) -> bool {
        self.downstream
            .as_ref()
            .is_some_and(|d| d.user_upstreams.iter().any(Option::is_some))
    }

    /// Whether `user` has a server identity of its own.
    pub fn own_upstream(&self, user: Option<UserId>) -> Option<&Upstream> {
        let downstream = self.downstream.as_ref()?;
        let index = user.unwrap_or(UserId::DEFAULT).index();
        downstream.user_upstreams.get(index)?.as_ref()
    }

    /// The failed-`AUTH` limit (0 = none); the default without
    /// `downstream`.
    pub fn max_auth_failures(&self) -> u32 {
        self.downstream
            .as_ref()
            .map_or(DEFAULT_MAX_AUTH_FAILURES, |d| d.max_auth_failures)
    }
}

impl Upstream {
    /// Appends the RESP command `AUTH [username] password` to `out`:
    /// `*3\r\n$4\r\nAUTH\r\n$<n>\r\n<username>\r\n$<n>\r\n<password>\r\n`, or
    /// the two-argument form without a user name.
    ///
    /// Reserves the room first, so `out` is reallocated at most once and
    /// before any secret is written: no stale copy is left behind.
    pub fn append_auth_command(&self, out: &mut Vec<u8>) {
        out.reserve(self.auth_command_len());
        match &self.username {
            Some(username) => {
                out.extend_from_slice(b"*3\r\n$4\r\nAUTH\r\n");
                append_bulk(out, username.expose());
            }
            None => out.extend_from_slice(b"*2\r\n$4\r\nAUTH\r\n"),
        }
        append_bulk(out, self.password.expose());
    }

    /// The length of what [`Upstream::append_auth_command`] appends.
    pub fn auth_command_len(&self) -> usize {
        let header = b"*3\r\n$4\r\nAUTH\r\n".len();
        let username = self.username.as_ref().map_or(0, |u| bulk_len(u.len()));
        header
            .saturating_add(username)
            .saturating_add(bulk_len(self.password.len()))
    }
}

fn append_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// `$<len>\r\n<bytes>\r\n`.
fn bulk_len(len: usize) -> usize {
    len.to_string().len().saturating_add(len).saturating_add(5)
}

/// Whether `user` is restricted and may run a script: the proxy sees
/// the script's call, not the commands inside it.
fn runs_scripts_beyond_its_rules(user: &User) -> bool {
    let permissions = user.permissions();
    if permissions.is_full() {
        return false;
    }
    [
        "eval",
        "evalsha",
        "eval_ro",
        "evalsha_ro",
        "fcall",
        "fcall_ro",
    ]
    .iter()
    .filter_map(|name| crate::command::lookup_command(name.as_bytes()))
    .any(|spec| {
        let argv = crate::acl::Argv {
            args: &[],
            whole: |_| true,
        };
        permissions.check_command(spec, &argv).is_ok()
    })
}

/// Why the configuration was refused: the field (`downstream.users[1]`)
/// and the reason. Never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    path: String,
    reason: String,
}

impl ConfigError {
    fn new(path: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    /// The offending field, e.g. `upstream.password`; `config` for the top
    /// level.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Parses the plugin configuration. `env` looks environment variables up
/// (for `{"env": "NAME"}`); it is the only way this reads the environment.
pub fn parse(json: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, ConfigError> {
    // A missing configuration is more likely a mistake than a wish for an
    // open Redis: make the operator say `{}`.
    if json.trim_ascii().is_empty() {
        return Err(ConfigError {
            path: "config".to_string(),
            reason: "the configuration is empty; write {} to run without client or server \
                     authentication"
                .to_string(),
        });
    }
    let root = serde_json::from_slice::<Json>(json).map_err(json_error)?;
    let mut parser = Parser {
        env,
        warnings: Vec::new(),
        version: ServerVersion::default(),
    };
    let config = parser.config(&root)?;
    Ok(Parsed {
        config,
        warnings: parser.warnings,
    })
}

/// A `serde_json` error, reduced to what cannot hold configuration text.
fn json_error(error: serde_json::Error) -> ConfigError {
    use serde_json::error::Category;
    let reason = match error.classify() {
        // Syntax and end-of-input messages are fixed texts plus a position.
        Category::Syntax | Category::Eof => format!("invalid JSON: {error}"),
        Category::Data | Category::Io => format!(
            "invalid JSON at line {} column {}",
            error.line(),
            error.column()
        ),
    };
    ConfigError::new(ROOT, reason)
}

// ---------------------------------------------------------------------------
// A JSON tree that keeps duplicate keys (serde_json::Value keeps the last
// one silently) and wipes its strings when dropped.
// ---------------------------------------------------------------------------

enum Json {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Only what `max_auth_failures` needs to tell apart.
#[derive(Clone, Copy)]
enum Number {
    Unsigned(u64),
    Negative,
    Float,
}

impl Drop for Json {
    fn drop(&mut self) {
        if let Json::String(text) = self {
            wipe_string(text);
        }
    }
}

impl Json {
    /// "found …" in type errors.
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Number(Number::Unsigned(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Number(match u64::try_from(value) {
            Ok(unsigned) => Number::Unsigned(unsigned),
            Err(_) => Number::Negative,
        }))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Number(Number::Float))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Json>()? {
            entries.push(entry);
        }
        Ok(Json::Object(entries))
    }
}

/// The fields of a JSON object, checked against the names allowed there.
struct Fields<'j> {
    entries: Vec<(&'j str, &'j Json)>,
}

impl<'j> Fields<'j> {
    fn get(&self, name: &str) -> Option<&'j Json> {
        self.entries
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| *value)
    }
}

/// `node` as an object with no unknown and no repeated field.
fn object<'j>(node: &'j Json, path: &str, allowed: &[&str]) -> Result<Fields<'j>, ConfigError> {
    let Json::Object(entries) = node else {
        return Err(type_error(path, "an object", node));
    };
    let mut fields = Fields {
        entries: Vec::with_capacity(entries.len()),
    };
    for (key, value) in entries {
        if !allowed.contains(&key.as_str()) {
            return Err(ConfigError::new(
                path,
                format!("unknown field {}", quote_key(key)),
            ));
        }
        if fields.get(key).is_some() {
            return Err(ConfigError::new(
                path,
                format!("duplicate field {}", quote_key(key)),
            ));
        }
        fields.entries.push((key, value));
    }
    Ok(fields)
}

fn type_error(path: &str, expected: &str, found: &Json) -> ConfigError {
    ConfigError::new(path, format!("expected {expected}, found {}", found.kind()))
}

/// A field name for a message, quoted, if it looks like a field name
/// (1 to 64 ASCII letters, digits, `_`, `-`, `.`). Anything else is not
/// shown: an unknown "field" may be a password put in the wrong place.
fn quote_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= MAX_QUOTED_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        format!("'{key}'")
    } else {
        "(name not shown: not a plain identifier)".to_owned()
    }
}

/// A user name for a message: quoted, shortened, control characters
/// escaped. User names are not secrets.
fn quote_name(name: &str) -> String {
    let mut out = String::from("'");
    for (count, c) in name.chars().enumerate() {
        if count == MAX_QUOTED_KEY {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

fn join(path: &str, field: &str) -> String {
    if path == ROOT {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

// ---------------------------------------------------------------------------
// The configuration proper
// ---------------------------------------------------------------------------

struct Parser<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    warnings: Vec<String>,
    version: ServerVersion,
}

impl Parser<'_> {
    fn config(&mut self, root: &Json) -> Result<Config, ConfigError> {
        let fields = object(root, ROOT, &["downstream", "upstream", "server_version"])?;
        if let Some(node) = fields.get("server_version") {
            self.version = server_version(node, "server_version")?;
        }
        let downstream = match fields.get("downstream") {
            Some(node) => Some(self.downstream(node, "downstream")?),
            None => None,
        };
        let upstream = match fields.get("upstream") {
            Some(node) => Some(self.upstream(node, "upstream")?),
            None => None,
        };
        if let Some(downstream) = &downstream {
            let overridden = downstream.user_upstreams.iter().any(Option::is_some);
            if overridden && upstream.is_none() {
                // Switching back from a user's own server identity needs
                // one to switch to: without it, the next user would run as
                // the previous one on the server.
                return Err(ConfigError::new(
                    "downstream.users",
                    "a user with its own 'upstream' needs the top-level 'upstream' as well \
                     (the server identity of users without one)",
                ));
            }
        }
        Ok(Config {
            downstream,
            upstream,
            server_version: self.version,
        })
    }

    fn downstream(&mut self, node: &Json, path: &str) -> Result<Downstream, ConfigError> {
        let fields = object(
            node,
            path,
            &[
                "password",
                "users",
                "max_auth_failures",
                "identities",
                "require_identity",
            ],
        )?;
        let password_path = join(path, "password");
        let password = match fields.get("password") {
            Some(node) => Some(self.password(node, &password_path)?),
            None => None,
        };
        let users_path = join(path, "users");
        let lines = match fields.get("users") {
            Some(node) => self.users(node, &users_path)?,
            None => Vec::new(),
        };
        let max_auth_failures = match fields.get("max_auth_failures") {
            Some(node) => max_auth_failures(node, &join(path, "max_auth_failures"))?,
            None => DEFAULT_MAX_AUTH_FAILURES,
        };
        if password.is_none() && lines.is_empty() {
            return Err(ConfigError::new(
                path,
                "needs 'password', at least one entry in 'users', or both",
            ));
        }

        let mut default = None;
        let mut default_upstream = None;
        let mut others = Vec::with_capacity(lines.len());
        let mut other_upstreams = Vec::with_capacity(lines.len());
        // Sorted by name, for a binary search.
        let mut seen: Vec<(String, usize)> = Vec::with_capacity(lines.len());
        for (index, (user, own_upstream)) in lines.into_iter().enumerate() {
            let user_path = format!("{users_path}[{index}]");
            let first = match seen.binary_search_by(|(name, _)| name.as_str().cmp(user.name())) {
                Ok(at) => seen.get(at).map(|(_, first)| *first),
                Err(at) => {
                    seen.insert(at, (user.name().to_owned(), index));
                    None
                }
            };
            if let Some(first) = first {
                return Err(ConfigError::new(
                    &user_path,
                    format!(
                        "user {} is already defined by {users_path}[{first}]",
                        quote_name(user.name())
                    ),
                ));
            }
            if user.name() == DEFAULT_USER {
                if password.is_some() {
                    return Err(ConfigError::new(
                        &user_path,
                        format!(
                            "user '{DEFAULT_USER}' is defined here and by {password_path}; \
                             use one or the other"
                        ),
                    ));
                }
                default = Some(user);
                default_upstream = own_upstream;
            } else {
                others.push(user);
                other_upstreams.push(own_upstream);
            }
        }
        let default = match (&password, default) {
            (Some(password), _) => User::default_with_password_for(password.expose(), self.version),
            (None, Some(user)) => user,
            (None, None) => User::default_disabled_for(self.version),
        };
        let users = UserDirectory::new(default, others)
            .map_err(|e| ConfigError::new(&users_path, e.to_string()))?;
        let mut user_upstreams = vec![default_upstream];
        user_upstreams.extend(other_upstreams);
        for (user, own) in users.users().iter().zip(&user_upstreams) {
            if own.is_none() && runs_scripts_beyond_its_rules(user) {
                self.warnings.push(format!(
                    "{users_path}: user {} may run scripts (EVAL, EVALSHA, FCALL…), and the \
                     commands inside a script run on the server under the proxy's server \
                     identity, beyond this user's rules; give the user its own 'upstream' with \
                     the same rules on the server, or take away @scripting",
                    quote_name(user.name())
                ));
            }
        }
        let identities = match fields.get("identities") {
            Some(node) => identities(node, &join(path, "identities"), &users)?,
            None => Identities::default(),
        };
        let require_identity = match fields.get("require_identity") {
            Some(Json::Bool(value)) => *value,
            Some(other) => {
                return Err(type_error(
                    &join(path, "require_identity"),
                    "true or false",
                    other,
                ));
            }
            None => false,
        };
        if require_identity && identities.is_empty() {
            return Err(ConfigError::new(
                &join(path, "require_identity"),
                "needs at least one entry in 'identities' (no client could get in)",
            ));
        }
        Ok(Downstream {
            users,
            max_auth_failures,
            user_upstreams,
            identities,
            require_identity,
        })
    }

    /// `users`: an array of ACL lines, each a secret (it may hold
    /// passwords), or `{"acl": <line>, "upstream": {…}}` for a user with
    /// its own server identity.
    fn users(
        &mut self,
        node: &Json,
        path: &str,
    ) -> Result<Vec<(User, Option<Upstream>)>, ConfigError> {
        let Json::Array(items) = node else {
            return Err(type_error(path, "an array of ACL lines", node));
        };
        if items.len() > MAX_USERS {
            return Err(ConfigError::new(
                path,
                format!(
                    "at most {MAX_USERS} users are supported, found {}",
                    items.len()
                ),
            ));
        }
        let mut users = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            let (line_node, line_path, own_upstream) = match item {
                Json::Object(entries) if entries.iter().any(|(key, _)| key == "acl") => {
                    let fields = object(item, &item_path, &["acl", "upstream"])?;
                    let own = match fields.get("upstream") {
                        Some(node) => Some(self.upstream(node, &join(&item_path, "upstream"))?),
                        None => None,
                    };
                    let acl = fields.get("acl").unwrap_or(item);
                    (acl, join(&item_path, "acl"), own)
                }
                _ => (item, item_path.clone(), None),
            };
            let line = self.secret(line_node, &line_path, MAX_ACL_LINE_LEN)?;
            let text = std::str::from_utf8(line.expose())
                .map_err(|_| ConfigError::new(&item_path, "must be valid UTF-8 text"))?;
            let parsed = users::parse_acl_line_for(text, self.version)
                .map_err(|e| ConfigError::new(&item_path, e.to_string()))?;
            self.warnings.extend(
                parsed
                    .warnings
                    .iter()
                    .map(|warning| format!("{item_path}: {warning}")),
            );
            users.push((parsed.user, own_upstream));
        }
        Ok(users)
    }

    fn upstream(&mut self, node: &Json, path: &str) -> Result<Upstream, ConfigError> {
        let fields = object(node, path, &["username", "password"])?;
        let username = match fields.get("username") {
            Some(node) => Some(self.upstream_username(node, &join(path, "username"))?),
            None => None,
        };
        let Some(password) = fields.get("password") else {
            return Err(ConfigError::new(path, "missing field 'password'"));
        };
        let password = self.password(password, &join(path, "password"))?;
        Ok(Upstream { username, password })
    }

    /// A password: a secret, not empty, at most [`MAX_PASSWORD_LEN`]
    /// bytes, any bytes (Redis passwords are binary-safe). A trailing
    /// newline is kept, with a warning.
    fn password(&mut self, node: &Json, path: &str) -> Result<Secret, ConfigError> {
        let password = self.secret(node, path, MAX_PASSWORD_LEN)?;
        if password.is_empty() {
            return Err(ConfigError::new(path, "must not be empty"));
        }
        if let Some(newline) = password.trailing_newline() {
            self.warnings.push(format!(
                "{path}: the value ends with a newline ({newline}), which is kept as part of \
                 it; if it comes from a Kubernetes Secret, the value was probably encoded \
                 with 'echo' instead of 'echo -n'"
            ));
        }
        Ok(password)
    }

    /// The upstream user name: a secret holding a valid Redis user name
    /// (text with no whitespace or control character: Redis refuses to
    /// create any other, so a trailing newline is an error here).
    fn upstream_username(&mut self, node: &Json, path: &str) -> Result<Secret, ConfigError> {
        let username = self.secret(node, path, MAX_USERNAME_LEN)?;
        let text = std::str::from_utf8(username.expose())
            .map_err(|_| ConfigError::new(path, "must be valid UTF-8 text"))?;
        match users::validate_username(text) {
            Ok(()) => Ok(username),
            Err(users::AclErrorKind::EmptyUsername) => {
                Err(ConfigError::new(path, "must not be empty"))
            }
            Err(_) => {
                let hint = if username.trailing_newline().is_some() {
                    " (it ends with a newline: if it comes from a Kubernetes Secret, the value \
                     was probably encoded with 'echo' instead of 'echo -n')"
                } else {
                    ""
                };
                Err(ConfigError::new(
                    path,
                    format!("must not contain spaces or control characters{hint}"),
                ))
            }
        }
    }

    /// A secret in any of its forms, at most `max_len` bytes once decoded.
    fn secret(&mut self, node: &Json, path: &str, max_len: usize) -> Result<Secret, ConfigError> {
        let too_long = || ConfigError::new(path, format!("is longer than {max_len} bytes"));
        let secret = match node {
            Json::String(text) => {
                if text.len() > max_len {
                    return Err(too_long());
                }
                Secret::new(text.as_bytes().to_vec())
            }
            Json::Object(entries) => {
                for (key, _) in entries {
                    if !["inline", "env", "base64"].contains(&key.as_str()) {
                        return Err(ConfigError::new(
                            path,
                            format!(
                                "unknown field {} (expected one of {SECRET_FORMS})",
                                quote_key(key)
                            ),
                        ));
                    }
                }
                let [(form, value)] = entries.as_slice() else {
                    return Err(ConfigError::new(
                        path,
                        format!(
                            "expected exactly one of {SECRET_FORMS}, found {}",
                            entries.len()
                        ),
                    ));
                };
                let Json::String(value) = value else {
                    return Err(ConfigError::new(
                        path,
                        format!("'{form}' must be a string, found {}", value.kind()),
                    ));
                };
                match form.as_str() {
                    "inline" => {
                        if value.len() > max_len {
                            return Err(too_long());
                        }
                        Secret::new(value.as_bytes().to_vec())
                    }
                    "env" => self.env_secret(value, path)?,
                    _ => base64_secret(value, path, max_len)?,
                }
            }
            other => {
                return Err(type_error(
                    path,
                    &format!("a string or an object with one of {SECRET_FORMS}"),
                    other,
                ));
            }
        };
        if secret.len() > max_len {
            return Err(too_long());
        }
        Ok(secret)
    }

    fn env_secret(&self, name: &str, path: &str) -> Result<Secret, ConfigError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_ENV_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !valid {
            // Not echoed: it may be the secret itself, put in the wrong place.
            return Err(ConfigError::new(
                path,
                format!(
                    "'env' must name an environment variable: 1 to {MAX_ENV_NAME_LEN} ASCII \
                     letters, digits, '_', '.' or '-' (the value given is not shown)"
                ),
            ));
        }
        match (self.env)(name) {
            Some(value) => Ok(Secret::from_string(value)),
            None => Err(ConfigError::new(
                path,
                format!("environment variable {name} is not set"),
            )),
        }
    }
}

fn base64_secret(encoded: &str, path: &str, max_len: usize) -> Result<Secret, ConfigError> {
    let max_encoded = max_len.div_ceil(3).saturating_mul(4);
    if encoded.len() > max_encoded {
        return Err(ConfigError::new(
            path,
            format!("is longer than {max_len} bytes"),
        ));
    }
    match decode_base64(encoded.as_bytes()) {
        Some(bytes) => Ok(Secret::new(bytes)),
        // Which character was wrong is not shown: it is part of a secret.
        None => Err(ConfigError::new(
            path,
            "'base64' is not valid base64 (standard alphabet, with '=' padding, no whitespace)",
        )),
    }
}

/// Base64 as `base64::engine::general_purpose::STANDARD` decodes it (the
/// tests check that it agrees): the standard alphabet, `=` padding to a
/// multiple of 4, no whitespace, and the unused bits of the last group
/// zero. Hand-written: the `base64` crate's decoder was ~3 KB of the wasm.
fn decode_base64(encoded: &[u8]) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        Some(u32::from(value))
    }
    if encoded.len() % 4 != 0 {
        return None;
    }
    let groups = encoded.len() / 4;
    let mut out = Vec::with_capacity(groups * 3);
    for (index, group) in encoded.chunks_exact(4).enumerate() {
        let pad = if index + 1 == groups {
            group.iter().rev().take_while(|&&c| c == b'=').count()
        } else {
            0
        };
        if pad > 2 {
            return None;
        }
        let mut bits = 0u32;
        for &c in group.get(..4 - pad)? {
            bits = bits << 6 | sextet(c)?;
        }
        bits <<= 6 * pad;
        // Canonical: the bits past the last whole byte are zero.
        if bits & ((1 << (8 * pad)) - 1) != 0 {
            return None;
        }
        let [_, bytes @ ..] = bits.to_be_bytes();
        out.extend_from_slice(bytes.get(..3 - pad)?);
    }
    Some(out)
}

/// `downstream.identities`: `{"<identity>": "<user>"}`. An identity is
/// text without whitespace or control characters; a `*` may only end it
/// (a prefix), after at least one other character; the user must be one
/// of `users`.
fn identities(node: &Json, path: &str, users: &UserDirectory) -> Result<Identities, ConfigError> {
    let Json::Object(entries) = node else {
        return Err(type_error(
            path,
            "an object mapping identities to user names",
            node,
        ));
    };
    if entries.len() > MAX_IDENTITIES {
        return Err(ConfigError::new(
            path,
            format!(
                "at most {MAX_IDENTITIES} identities are supported, found {}",
                entries.len()
            ),
        ));
    }
    let mut identities = Identities::default();
    for (identity, user) in entries {
        let entry = join(path, identity);
        let shown = quote_name(identity);
        if identity.is_empty() {
            return Err(ConfigError::new(path, "an identity must not be empty"));
        }
        if identity.len() > MAX_IDENTITY_LEN {
            return Err(ConfigError::new(
                &entry,
                format!("identity is longer than {MAX_IDENTITY_LEN} bytes"),
            ));
        }
        if identity
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError::new(
                &entry,
                format!("identity {shown} contains whitespace or a control character"),
            ));
        }
        let (body, prefix) = match identity.strip_suffix('*') {
            Some(body) => (body, true),
            None => (identity.as_str(), false),
        };
        if body.contains('*') {
            return Err(ConfigError::new(
                &entry,
                format!(
                    "identity {shown}: '*' may only end an identity (a prefix, such as \
                     'spiffe://cluster.local/ns/shop/*'); nothing else is a pattern"
                ),
            ));
        }
        if prefix && body.is_empty() {
            return Err(ConfigError::new(
                &entry,
                "'*' alone would map every identity; name a prefix",
            ));
        }
        let Json::String(name) = user else {
            return Err(type_error(
                &entry,
                "a user name from downstream.users",
                user,
            ));
        };
        let Some(id) = users.find(name.as_bytes()) else {
            return Err(ConfigError::new(
                &entry,
                format!(
                    "identity {shown} is mapped to user {}, which downstream.users does not define",
                    quote_name(name)
                ),
            ));
        };
        if prefix {
            // Kept sorted as they come, longest first, then by bytes (equal
            // ones in config order, as a stable sort would leave them): a
            // binary search and an insert, ~5 KB less wasm than a sort.
            let prefixes = &mut identities.prefixes;
            let at = prefixes.partition_point(|(other, _)| {
                other.len() > body.len() || (other.len() == body.len() && other.as_str() <= body)
            });
            prefixes.insert(at, (body.to_owned(), id));
        } else {
            let exact = &mut identities.exact;
            match exact.binary_search_by(|(other, _)| other.cmp(identity)) {
                Ok(at) => {
                    if let Some(entry) = exact.get_mut(at) {
                        entry.1 = id;
                    }
                }
                Err(at) => exact.insert(at, (identity.clone(), id)),
            }
        }
    }
    Ok(identities)
}

/// `server_version`: `redis-7.0`, `redis-7.2`, `redis-7.4`, `valkey-7.2`,
/// `valkey-8.0` (a patch number, `valkey-8.0.1`, is accepted and ignored).
fn server_version(node: &Json, path: &str) -> Result<ServerVersion, ConfigError> {
    let mut expected = "one of ".to_owned();
    for (i, version) in ServerVersion::ALL.iter().enumerate() {
        if i > 0 {
            expected.push_str(", ");
        }
        expected.push_str(version.name());
    }
    match node {
        Json::String(text) => ServerVersion::parse(text).ok_or_else(|| {
            ConfigError::new(
                path,
                format!("unknown server {}; expected {expected}", quote_name(text)),
            )
        }),
        other => Err(type_error(path, &expected, other)),
    }
}

fn max_auth_failures(node: &Json, path: &str) -> Result<u32, ConfigError> {
    let expected = "a non-negative integer (0 for no limit)";
    match node {
        Json::Number(Number::Unsigned(value)) => u32::try_from(*value)
            .map_err(|_| ConfigError::new(path, format!("must be at most {}", u32::MAX))),
        Json::Number(Number::Negative) => Err(ConfigError::new(
            path,
            format!("must be {expected}, found a negative number"),
        )),
        Json::Number(Number::Float) => Err(ConfigError::new(
            path,
            format!("must be {expected}, found a number with a fraction or exponent"),
        )),
        other => Err(type_error(path, expected, other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{AuthFailure, UserId};
    use base64::Engine as _;
    use proptest::prelude::*;

    /// A distinctive password. It holds a '!', like most real passwords:
    /// a value that is a valid environment variable name is echoed when
    /// given as one (`{"env": "hunter2"}`), since names are not secrets.
    const SECRET: &str = "Zq7-Distinctive-S3cret!";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "REDIS_PASSWORD" => Some("real-server-pw".to_owned()),
            "NEWLINE" => Some("pw\n".to_owned()),
            "EMPTY" => Some(String::new()),
            "ALICE_ACL" => Some("user alice on >fromenv ~* &* +@all".to_owned()),
            "BOB_LINE" => Some("user bob on >bobpw ~bob:* +get".to_owned()),
            "SECRET" => Some(SECRET.to_owned()),
            _ => None,
        }
    }

    fn ok(json: &str) -> Parsed {
        match parse(json.as_bytes(), &env) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{json} refused: {e}"),
        }
    }

    fn err(json: &str) -> String {
        match parse(json.as_bytes(), &env) {
            Ok(parsed) => panic!("{json} accepted: {parsed:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn auth_command(upstream: &Upstream) -> Vec<u8> {
        let mut out = b"prefix".to_vec();
        upstream.append_auth_command(&mut out);
        assert_eq!(out.len(), 6 + upstream.auth_command_len());
        out.split_off(6)
    }

    #[test]
    fn example_configuration() {
        let parsed = ok(r#"{
          "downstream": {
            "password": "testredis123!",
            "users": ["user alice on >alicepw ~* &* +@all"],
            "max_auth_failures": 5
          },
          "upstream": { "username": "appuser", "password": { "env": "REDIS_PASSWORD" } }
        }"#);
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        let config = &parsed.config;
        let users = config.users();
        assert_eq!(users.len(), 2);
        assert_eq!(
            users.authenticate(b"default", b"testredis123!"),
            Ok(UserId::DEFAULT)
        );
        assert_eq!(
            users.authenticate(b"default", b"alicepw"),
            Err(AuthFailure::WrongPassword)
        );
        let alice = users.authenticate(b"alice", b"alicepw").unwrap();
        assert_eq!(users.user_name(alice), "alice");
        assert!(!users.default_user_is_nopass());
        assert!(!users.authenticated_on_connect());
        assert_eq!(config.max_auth_failures(), 5);
        assert_eq!(config.downstream.as_ref().unwrap().max_auth_failures, 5);
        let upstream = config.upstream.as_ref().unwrap();
        assert_eq!(upstream.username.as_ref().unwrap().expose(), b"appuser");
        assert_eq!(upstream.password.expose(), b"real-server-pw");
        assert_eq!(
            auth_command(upstream),
            b"*3\r\n$4\r\nAUTH\r\n$7\r\nappuser\r\n$14\r\nreal-server-pw\r\n"
        );
    }

    #[test]
    fn an_empty_configuration_is_refused() {
        for json in ["", "  \n\t"] {
            let error = parse(json.as_bytes(), &no_env).unwrap_err();
            assert_eq!(error.path(), "config");
            assert!(error.reason().contains("write {}"), "{error}");
        }
    }

    #[test]
    fn an_empty_object_is_an_open_redis() {
        for json in ["{}", " {} "] {
            let parsed = parse(json.as_bytes(), &no_env).unwrap();
            assert!(parsed.warnings.is_empty());
            let config = parsed.config;
            assert!(config.downstream.is_none());
            assert!(config.upstream.is_none());
            let users = config.users();
            assert_eq!(users.len(), 1);
            assert!(users.default_user_is_nopass());
            assert!(users.authenticated_on_connect());
            assert_eq!(users.authenticate(b"default", b"x"), Ok(UserId::DEFAULT));
            assert_eq!(
                users.authenticate(b"alice", b"x"),
                Err(AuthFailure::UnknownUser)
            );
            assert!(users.default_user().unwrap().permissions().is_full());
            assert_eq!(config.max_auth_failures(), DEFAULT_MAX_AUTH_FAILURES);
        }
    }

    #[test]
    fn upstream_only() {
        let parsed = ok(r#"{"upstream": {"password": "pw"}}"#);
        assert!(parsed.config.users().authenticated_on_connect());
        let upstream = parsed.config.upstream.unwrap();
        assert!(upstream.username.is_none());
        assert_eq!(auth_command(&upstream), b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
    }

    #[test]
    fn auth_command_is_binary_safe() {
        // "\x00\r\n\xff" in base64.
        let parsed = ok(r#"{"upstream": {"password": {"base64": "AA0K/w=="}}}"#);
        let upstream = parsed.config.upstream.unwrap();
        assert_eq!(
            auth_command(&upstream),
            b"*2\r\n$4\r\nAUTH\r\n$4\r\n\x00\r\n\xff\r\n"
        );
        let long = "p".repeat(MAX_PASSWORD_LEN);
        let parsed = ok(&format!(
            r#"{{"upstream": {{"username": "u", "password": "{long}"}}}}"#
        ));
        let command = auth_command(parsed.config.upstream.as_ref().unwrap());
        assert!(command.starts_with(b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$4096\r\npppp"));
    }

    #[test]
    fn downstream_password_only() {
        let parsed = ok(r#"{"downstream": {"password": "pw"}}"#);
        let downstream = parsed.config.downstream.as_ref().unwrap();
        assert_eq!(downstream.max_auth_failures, DEFAULT_MAX_AUTH_FAILURES);
        let users = parsed.config.users();
        assert_eq!(users.len(), 1);
        assert_eq!(users.authenticate(b"default", b"pw"), Ok(UserId::DEFAULT));
        assert!(users.default_user().unwrap().permissions().is_full());
        assert!(users.default_user().unwrap().is_enabled());
    }

    #[test]
    fn users_only_disables_the_default_user() {
        let parsed = ok(r#"{"downstream": {"users": ["user alice on >a ~* &* +@all"]}}"#);
        let users = parsed.config.users();
        assert_eq!(
            users.authenticate(b"default", b""),
            Err(AuthFailure::UserDisabled)
        );
        assert_eq!(
            users.authenticate(b"default", b"a"),
            Err(AuthFailure::UserDisabled)
        );
        assert!(!users.default_user_is_nopass());
        assert!(!users.authenticated_on_connect());
        assert!(users.authenticate(b"alice", b"a").is_ok());
    }

    #[test]
    fn a_user_default_line_defines_the_default_user() {
        let parsed = ok(r#"{"downstream": {"users": [
            "user alice on >a ~* &* +@all",
            "user default on >d1 >d2 ~* &* +@all"
        ]}}"#);
        let users = parsed.config.users();
        assert_eq!(users.len(), 2);
        assert_eq!(users.authenticate(b"default", b"d1"), Ok(UserId::DEFAULT));
        assert_eq!(users.authenticate(b"default", b"d2"), Ok(UserId::DEFAULT));
        assert_eq!(users.user_name(UserId::DEFAULT), "default");

        let parsed = ok(r#"{"downstream": {"users": ["user default on nopass ~* &* +@all"]}}"#);
        assert!(parsed.config.users().authenticated_on_connect());
        assert!(parsed.config.users().default_user_is_nopass());
    }

    #[test]
    fn password_and_user_default_together_are_refused() {
        assert_eq!(
            err(r#"{"downstream": {"password": "pw", "users": [
                "user alice on >a ~* &* +@all", "user default on >d ~* &* +@all"]}}"#),
            "downstream.users[1]: user 'default' is defined here and by downstream.password; \
             use one or the other"
        );
    }

    #[test]
    fn downstream_needs_password_or_users() {
        let expected = "downstream: needs 'password', at least one entry in 'users', or both";
        assert_eq!(err(r#"{"downstream": {}}"#), expected);
        assert_eq!(err(r#"{"downstream": {"users": []}}"#), expected);
        assert_eq!(err(r#"{"downstream": {"max_auth_failures": 3}}"#), expected);
        // With a password, an empty users list is fine.
        ok(r#"{"downstream": {"password": "pw", "users": []}}"#);
    }

    #[test]
    fn duplicate_users() {
        assert_eq!(
            err(r#"{"downstream": {"users": [
                "user alice on >a ~* &* +@all",
                "user bob on >b ~* &* +@all",
                "user alice on >c ~* &* +@all"]}}"#),
            "downstream.users[2]: user 'alice' is already defined by downstream.users[0]"
        );
        assert_eq!(
            err(r#"{"downstream": {"users": [
                "user default on >a ~* &* +@all", "user default on >b ~* &* +@all"]}}"#),
            "downstream.users[1]: user 'default' is already defined by downstream.users[0]"
        );
    }

    #[test]
    fn restricted_users_that_may_run_scripts_are_warned_about() {
        let parsed = ok(r#"{"downstream": {"users": [
                "user s on >a ~app:* +get +eval",
                "user full on >a ~* &* +@all",
                "user plain on >a ~app:* +get",
                {"acl": "user own on >a ~app:* +@scripting", "upstream": {"password": "x"}}]},
            "upstream": {"password": "top"}}"#);
        let scripts: Vec<&String> = parsed
            .warnings
            .iter()
            .filter(|w| w.contains("may run scripts"))
            .collect();
        assert_eq!(scripts.len(), 1, "{:?}", parsed.warnings);
        assert!(scripts[0].starts_with("downstream.users: user 's' may run scripts"));
    }

    #[test]
    fn exact_identities_the_last_of_a_name_wins() {
        let parsed = ok(
            r#"{"downstream": {"users": ["user u0 on nopass", "user u1 on nopass"],
            "identities": {"b": "u0", "a": "u1", "c": "u0", "a": "u0", "b": "u1"}}}"#,
        );
        let config = &parsed.config;
        let user = |peer: &str| {
            config
                .mapped_user(peer.as_bytes())
                .map(|id| config.users().user_name(id).to_owned())
        };
        assert_eq!(user("a").as_deref(), Some("u0"));
        assert_eq!(user("b").as_deref(), Some("u1"));
        assert_eq!(user("c").as_deref(), Some("u0"));
        assert_eq!(user("d"), None);
        assert_eq!(user(""), None);
    }

    #[test]
    fn identity_prefixes_longest_first_then_by_bytes() {
        let names = ["b/*", "aa/*", "a/*", "ccc/*", "ab/*", "c/*", "ba/*", "a/*"];
        let identities: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!(r#""{n}": "{}""#, if i % 2 == 0 { "u0" } else { "u1" }))
            .collect();
        let parsed = ok(&format!(
            r#"{{"downstream": {{"users": ["user u0 on nopass", "user u1 on nopass"],
                "identities": {{{}}}}}}}"#,
            identities.join(", ")
        ));
        let config = &parsed.config;
        let Some(downstream) = &config.downstream else {
            panic!("no downstream");
        };
        let got: Vec<(&str, &str)> = downstream
            .identities
            .prefixes
            .iter()
            .map(|(p, id)| (p.as_str(), config.users().user_name(*id)))
            .collect();
        // What a stable sort of them in config order gives.
        let mut want: Vec<(&str, &str)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.trim_end_matches('*'),
                    if i % 2 == 0 { "u0" } else { "u1" },
                )
            })
            .collect();
        want.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(b.0)));
        assert_eq!(got, want);
        assert_eq!(got.len(), names.len());
        assert_eq!(got[0].0, "ccc/");
    }

    #[test]
    fn identities() {
        let parsed = ok(
            r#"{"downstream": {"users": ["user cart on resetpass ~c:* +get",
                "user ops on resetpass ~* +@all"],
            "identities": {"spiffe://cluster.local/ns/shop/sa/cart": "cart",
                           "spiffe://cluster.local/ns/ops/*": "ops",
                           "spiffe://cluster.local/ns/ops/sa/special*": "cart"}}}"#,
        );
        let config = &parsed.config;
        let user = |peer: &str| {
            config
                .mapped_user(peer.as_bytes())
                .map(|id| config.users().user_name(id).to_owned())
        };
        assert_eq!(
            user("spiffe://cluster.local/ns/shop/sa/cart").as_deref(),
            Some("cart")
        );
        assert_eq!(user("spiffe://cluster.local/ns/shop/sa/cart2"), None);
        assert_eq!(
            user("spiffe://cluster.local/ns/ops/sa/a").as_deref(),
            Some("ops")
        );
        // The longest prefix wins.
        assert_eq!(
            user("spiffe://cluster.local/ns/ops/sa/special-1").as_deref(),
            Some("cart")
        );
        assert!(!config.require_identity());
        let users = r#""users": ["user cart on resetpass ~c:* +get"]"#;
        let bad = |identities: &str| {
            err(&format!(
                r#"{{"downstream": {{{users}, "identities": {identities}}}}}"#
            ))
        };
        assert_eq!(
            bad(r#"{"spiffe://x/a": "nobody"}"#),
            "downstream.identities.spiffe://x/a: identity 'spiffe://x/a' is mapped to user \
             'nobody', which downstream.users does not define"
        );
        assert_eq!(
            bad(r#"{"": "cart"}"#),
            "downstream.identities: an identity must not be empty"
        );
        assert!(bad(r#"{"spiffe://x/*/sa/a": "cart"}"#).contains("'*' may only end an identity"));
        assert!(bad(r#"{"*": "cart"}"#).contains("'*' alone would map every identity"));
        assert!(bad(r#"{"spiffe://x/a b": "cart"}"#).contains("whitespace"));
        assert!(bad(r#"["cart"]"#).starts_with("downstream.identities: "));
        assert!(bad(r#"{"spiffe://x/a": 1}"#).contains("a user name"));
        assert_eq!(
            err(&format!(
                r#"{{"downstream": {{{users}, "require_identity": true}}}}"#
            )),
            "downstream.require_identity: needs at least one entry in 'identities' (no client \
             could get in)"
        );
        assert!(
            err(&format!(
                r#"{{"downstream": {{{users}, "require_identity": "yes"}}}}"#
            ))
            .starts_with("downstream.require_identity: ")
        );
    }

    #[test]
    fn server_version() {
        assert_eq!(ok("{}").config.server_version, ServerVersion::Redis70);
        let parsed = ok(
            r#"{"server_version": "Valkey-8.0.1", "downstream": {"users": [
            "user a on >p ~* -@all +client|capa"]}}"#,
        );
        assert_eq!(parsed.config.server_version, ServerVersion::Valkey80);
        // client|capa is Valkey 8's: not a 7.0 rule.
        assert!(
            err(r#"{"downstream": {"users": ["user a on >p ~* -@all +client|capa"]}}"#)
                .contains("'+client|capa': Unknown command or category name in ACL")
        );
        assert_eq!(
            err(r#"{"server_version": "redis-6.2"}"#),
            "server_version: unknown server 'redis-6.2'; expected one of redis-7.0, redis-7.2, \
             redis-7.4, valkey-7.2, valkey-8.0, sentinel-7.0"
        );
        // In front of a Sentinel: its commands, and nothing else.
        let sentinel = ok(
            r#"{"server_version": "sentinel-7.0", "downstream": {"users": [
            "user a on >p -@all +sentinel|get-master-addr-by-name +auth +hello +ping"]}}"#,
        );
        assert_eq!(sentinel.config.server_version, ServerVersion::Sentinel70);
        assert!(
            err(r#"{"downstream": {"users": ["user a on >p +sentinel|masters"]}}"#)
                .contains("'+sentinel|masters': Unknown command or category name in ACL")
        );
        assert!(
            err(
                r#"{"server_version": "sentinel-7.0", "downstream": {"users": [
            "user a on >p +get"]}}"#
            )
            .contains("'+get': Unknown command or category name in ACL")
        );
        assert!(err(r#"{"server_version": 7}"#).starts_with("server_version: "));
    }

    #[test]
    fn users_with_their_own_server_identity() {
        let parsed = ok(r#"{"downstream": {"users": [
                "user alice on >a ~* &* +@all",
                {"acl": {"env": "BOB_LINE"}, "upstream": {"username": "bob-srv", "password": "p"}}]},
            "upstream": {"password": "top"}}"#);
        let config = &parsed.config;
        let users = config.users();
        let bob = users.find(b"bob").unwrap();
        let alice = users.find(b"alice").unwrap();
        assert!(config.own_upstream(Some(bob)).is_some());
        assert!(config.own_upstream(Some(alice)).is_none());
        let mut auth = Vec::new();
        config
            .upstream_for(Some(bob))
            .unwrap()
            .append_auth_command(&mut auth);
        assert!(auth.ends_with(b"$7\r\nbob-srv\r\n$1\r\np\r\n"));
        auth.clear();
        config
            .upstream_for(Some(alice))
            .unwrap()
            .append_auth_command(&mut auth);
        assert!(auth.ends_with(b"$3\r\ntop\r\n"));
        assert_eq!(
            err(
                r#"{"downstream": {"users": [{"acl": "user b on >x ~* &* +@all",
                "upstream": {"password": "p"}}]}}"#
            ),
            "downstream.users: a user with its own 'upstream' needs the top-level 'upstream' as \
             well (the server identity of users without one)"
        );
        assert_eq!(
            err(
                r#"{"downstream": {"users": [{"acl": "user b on >x", "upstrem": {}}]},
                "upstream": {"password": "p"}}"#
            ),
            "downstream.users[0]: unknown field 'upstrem'"
        );
        let message = err(r#"{"downstream": {"users": [{"acl": "user b +nosuch"}]}}"#);
        assert!(
            message.starts_with("downstream.users[0]: user 'b': rule 1:"),
            "{message}"
        );
    }

    #[test]
    fn acl_line_errors_name_the_entry() {
        assert_eq!(
            err(
                r#"{"downstream": {"users": ["user alice on >a ~* &* +@all", "user bob on foo"]}}"#
            ),
            "downstream.users[1]: user 'bob': rule 2: Error in ACL SETUSER modifier (not shown: \
             it may hold a password): Syntax error"
        );
        assert_eq!(
            err(r#"{"downstream": {"users": ["user bob on > ~* &* +@all"]}}"#),
            "downstream.users[0]: user 'bob': rule 2: Error in ACL SETUSER modifier (not shown: \
             it may hold a password): Empty password: '>' must be followed by the password (the \
             proxy refuses the empty password Redis would add)"
        );
        assert_eq!(
            err(r#"{"downstream": {"users": ["alice on >a"]}}"#),
            "downstream.users[0]: an ACL line must start with 'user' (in lower case) followed \
             by the user name"
        );
        assert_eq!(
            err(r#"{"downstream": {"users": ["user bob on >b ~* &* +@all +nosuch"]}}"#),
            "downstream.users[0]: user 'bob': rule 6: Error in ACL SETUSER modifier '+nosuch': \
             Unknown command or category name in ACL"
        );
    }

    #[test]
    fn acl_line_warnings_name_the_entry() {
        let parsed = ok(r#"{"downstream": {"password": "pw", "users": [
            "user alice on >a ~* &* +@all", "user bob >b ~* &* +@all"]}}"#);
        assert_eq!(
            parsed.warnings,
            [
                "downstream.users[1]: user 'bob' is off, so clients cannot authenticate as it \
              (add 'on' to enable it)"
            ]
        );
    }

    #[test]
    fn users_lines_may_come_from_secrets() {
        let parsed = ok(r#"{"downstream": {"users": [
            {"env": "ALICE_ACL"},
            {"inline": "user bob on >b ~* &* +@all"},
            {"base64": "dXNlciBjYXJvbCBvbiA+YyB+KiAmKiArQGFsbA=="}]}}"#);
        let users = parsed.config.users();
        assert!(users.authenticate(b"alice", b"fromenv").is_ok());
        assert!(users.authenticate(b"bob", b"b").is_ok());
        assert!(users.authenticate(b"carol", b"c").is_ok());
        // "user \xff" is not text.
        assert_eq!(
            err(r#"{"downstream": {"users": [{"base64": "dXNlciD/"}]}}"#),
            "downstream.users[0]: must be valid UTF-8 text"
        );
        assert_eq!(
            err(r#"{"downstream": {"users": [{"env": "ALICE"}]}}"#),
            "downstream.users[0]: environment variable ALICE is not set"
        );
        assert_eq!(
            err(r#"{"downstream": {"users": [42]}}"#),
            "downstream.users[0]: expected a string or an object with one of 'inline', 'env' \
             or 'base64', found a number"
        );
    }

    #[test]
    fn too_many_users() {
        let lines: Vec<String> = (0..=MAX_USERS)
            .map(|i| format!("\"user u{i} on nopass ~* &* +@all\""))
            .collect();
        assert_eq!(
            err(&format!(
                r#"{{"downstream": {{"users": [{}]}}}}"#,
                lines.join(",")
            )),
            "downstream.users: at most 1000 users are supported, found 1001"
        );
        let parsed = ok(&format!(
            r#"{{"downstream": {{"users": [{}]}}}}"#,
            lines[..MAX_USERS].join(",")
        ));
        assert_eq!(parsed.config.users().len(), MAX_USERS + 1);
    }

    #[test]
    fn max_auth_failures_values() {
        let value = |v: &str| {
            parse(
                format!(r#"{{"downstream": {{"password": "p", "max_auth_failures": {v}}}}}"#)
                    .as_bytes(),
                &no_env,
            )
            .map(|p| p.config.max_auth_failures())
            .map_err(|e| e.to_string())
        };
        assert_eq!(value("0"), Ok(0));
        assert_eq!(value("1"), Ok(1));
        assert_eq!(value("4294967295"), Ok(u32::MAX));
        let path = "downstream.max_auth_failures";
        assert_eq!(
            value("4294967296"),
            Err(format!("{path}: must be at most 4294967295"))
        );
        assert_eq!(
            value("18446744073709551616"),
            Err(format!(
                "{path}: must be a non-negative integer (0 for no limit), found a number with \
                 a fraction or exponent"
            ))
        );
        assert_eq!(
            value("-1"),
            Err(format!(
                "{path}: must be a non-negative integer (0 for no limit), found a negative number"
            ))
        );
        for v in ["1.5", "5.0", "1e3"] {
            assert_eq!(
                value(v),
                Err(format!(
                    "{path}: must be a non-negative integer (0 for no limit), found a number \
                     with a fraction or exponent"
                )),
                "{v}"
            );
        }
        for (v, found) in [
            ("\"5\"", "a string"),
            ("null", "null"),
            ("true", "a boolean"),
            ("[]", "an array"),
            ("{}", "an object"),
        ] {
            assert_eq!(
                value(v),
                Err(format!(
                    "{path}: expected a non-negative integer (0 for no limit), found {found}"
                ))
            );
        }
    }

    #[test]
    fn unknown_fields_at_every_level() {
        assert_eq!(
            err(r#"{"downstrem": {}}"#),
            "config: unknown field 'downstrem'"
        );
        assert_eq!(
            err(r#"{"downstream": {"pasword": "x"}}"#),
            "downstream: unknown field 'pasword'"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": "x", "user": "u"}}"#),
            "upstream: unknown field 'user'"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": {"file": "/etc/pw"}}}"#),
            "upstream.password: unknown field 'file' (expected one of 'inline', 'env' or \
             'base64')"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": {"env": "A", "extra": 1}}}"#),
            "upstream.password: unknown field 'extra' (expected one of 'inline', 'env' or \
             'base64')"
        );
        // Keys that do not look like field names are not shown.
        let hidden = "(name not shown: not a plain identifier)";
        assert_eq!(
            err(&format!(r#"{{"{}": 1}}"#, "k".repeat(65))),
            format!("config: unknown field {hidden}")
        );
        assert_eq!(
            err(&format!(r#"{{"{}": 1}}"#, "k".repeat(64))),
            format!("config: unknown field '{}'", "k".repeat(64))
        );
        assert_eq!(
            err(r#"{"a\u0001": 1}"#),
            format!("config: unknown field {hidden}")
        );
        assert_eq!(err(r#"{"": 1}"#), format!("config: unknown field {hidden}"));
        assert_eq!(
            err(r#"{"upstream": {"password": {"pass word!": "x"}}}"#),
            format!(
                "upstream.password: unknown field {hidden} (expected one of 'inline', 'env' or \
                 'base64')"
            )
        );
        assert_eq!(
            err(r#"{"max-auth.failures_2": 1}"#),
            "config: unknown field 'max-auth.failures_2'"
        );
    }

    #[test]
    fn duplicate_fields_are_refused() {
        assert_eq!(
            err(r#"{"downstream": {"password": "a", "password": "b"}}"#),
            "downstream: duplicate field 'password'"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": "a"}, "upstream": {"password": "b"}}"#),
            "config: duplicate field 'upstream'"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": {"env": "A", "env": "B"}}}"#),
            "upstream.password: expected exactly one of 'inline', 'env' or 'base64', found 2"
        );
    }

    #[test]
    fn wrong_types() {
        assert_eq!(err("[]"), "config: expected an object, found an array");
        assert_eq!(err("null"), "config: expected an object, found null");
        assert_eq!(err("\"x\""), "config: expected an object, found a string");
        assert_eq!(
            err(r#"{"downstream": null}"#),
            "downstream: expected an object, found null"
        );
        assert_eq!(
            err(r#"{"upstream": "pw"}"#),
            "upstream: expected an object, found a string"
        );
        assert_eq!(
            err(r#"{"downstream": {"users": "user a on"}}"#),
            "downstream.users: expected an array of ACL lines, found a string"
        );
        assert_eq!(
            err(r#"{"downstream": {"password": 123}}"#),
            "downstream.password: expected a string or an object with one of 'inline', 'env' \
             or 'base64', found a number"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": {"env": 5}}}"#),
            "upstream.password: 'env' must be a string, found a number"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": {"inline": null}}}"#),
            "upstream.password: 'inline' must be a string, found null"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": {}}}"#),
            "upstream.password: expected exactly one of 'inline', 'env' or 'base64', found 0"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": "pw", "username": ["u"]}}"#),
            "upstream.username: expected a string or an object with one of 'inline', 'env' \
             or 'base64', found an array"
        );
    }

    #[test]
    fn upstream_needs_a_password() {
        assert_eq!(
            err(r#"{"upstream": {}}"#),
            "upstream: missing field 'password'"
        );
        assert_eq!(
            err(r#"{"upstream": {"username": "u"}}"#),
            "upstream: missing field 'password'"
        );
    }

    #[test]
    fn empty_secrets() {
        assert_eq!(
            err(r#"{"downstream": {"password": ""}}"#),
            "downstream.password: must not be empty"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": {"inline": ""}}}"#),
            "upstream.password: must not be empty"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": {"env": "EMPTY"}}}"#),
            "upstream.password: must not be empty"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": {"base64": ""}}}"#),
            "upstream.password: must not be empty"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": "p", "username": ""}}"#),
            "upstream.username: must not be empty"
        );
    }

    #[test]
    fn secret_forms() {
        let password = |json: &str| {
            let parsed = ok(&format!(r#"{{"upstream": {{"password": {json}}}}}"#));
            parsed.config.upstream.unwrap().password.expose().to_vec()
        };
        assert_eq!(password(r#""plain""#), b"plain");
        assert_eq!(password(r#"{"inline": "inl"}"#), b"inl");
        assert_eq!(password(r#"{"env": "REDIS_PASSWORD"}"#), b"real-server-pw");
        assert_eq!(password(r#"{"base64": "dGVzdHJlZGlz"}"#), b"testredis");
        assert_eq!(password(r#""caf\u00e9""#), "café".as_bytes());
        let username = |json: &str| {
            let parsed = ok(&format!(
                r#"{{"upstream": {{"password": "p", "username": {json}}}}}"#
            ));
            parsed
                .config
                .upstream
                .unwrap()
                .username
                .unwrap()
                .expose()
                .to_vec()
        };
        assert_eq!(username(r#""u""#), b"u");
        assert_eq!(username(r#"{"env": "REDIS_PASSWORD"}"#), b"real-server-pw");
        assert_eq!(username(r#"{"base64": "YXBwdXNlcg=="}"#), b"appuser");
    }

    #[test]
    fn missing_environment_variable() {
        assert_eq!(
            err(r#"{"upstream": {"password": {"env": "REDIS_PASSWORD2"}}}"#),
            "upstream.password: environment variable REDIS_PASSWORD2 is not set"
        );
        assert_eq!(
            parse(
                br#"{"upstream": {"password": {"env": "REDIS_PASSWORD"}}}"#,
                &no_env
            )
            .unwrap_err()
            .to_string(),
            "upstream.password: environment variable REDIS_PASSWORD is not set"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": "p", "username": {"env": "USER_X"}}}"#),
            "upstream.username: environment variable USER_X is not set"
        );
    }

    #[test]
    fn odd_environment_variable_names_are_not_echoed() {
        let expected = "upstream.password: 'env' must name an environment variable: 1 to 256 \
                        ASCII letters, digits, '_', '.' or '-' (the value given is not shown)";
        for name in ["", "has space", "a=b", "pässword", "pw!", &"A".repeat(257)] {
            assert_eq!(
                err(&format!(
                    r#"{{"upstream": {{"password": {{"env": "{name}"}}}}}}"#
                )),
                expected
            );
        }
        // The lookup is never asked about such names.
        let asked = std::cell::RefCell::new(Vec::new());
        let spy = |name: &str| {
            asked.borrow_mut().push(name.to_owned());
            None
        };
        let _ = parse(br#"{"upstream": {"password": {"env": "a b"}}}"#, &spy);
        assert!(asked.borrow().is_empty());
        let _ = parse(
            br#"{"upstream": {"password": {"env": "K8S.var-1_X"}}}"#,
            &spy,
        );
        assert_eq!(*asked.borrow(), ["K8S.var-1_X"]);
    }

    #[test]
    fn base64_decodes_as_the_base64_crate() {
        let theirs = |input: &[u8]| base64::engine::general_purpose::STANDARD.decode(input).ok();
        // Every string of up to 4 (and some of 8) characters over an alphabet
        // with each class of character, padding, and ones outside it.
        let alphabet = b"AQgw/+z9=-_ \n\x80";
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = inputs
                .iter()
                .filter(|s| s.len() == inputs.last().map_or(0, Vec::len))
                .flat_map(|s| {
                    alphabet.iter().map(move |&c| {
                        let mut t = s.clone();
                        t.push(c);
                        t
                    })
                })
                .collect();
            inputs.extend(longer);
        }
        let mut checked = 0;
        for input in &inputs {
            assert_eq!(decode_base64(input), theirs(input), "{input:?}");
            let mut doubled = b"dGVz".to_vec();
            doubled.extend_from_slice(input);
            assert_eq!(decode_base64(&doubled), theirs(&doubled), "{doubled:?}");
            let mut first = input.clone();
            first.extend_from_slice(b"dGVz");
            assert_eq!(decode_base64(&first), theirs(&first), "{first:?}");
            checked += 3;
        }
        assert!(checked > 50_000);
        // Round trips of every length up to 300, every byte value.
        let data: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        for n in 0..=data.len() {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&data[..n]);
            assert_eq!(
                decode_base64(encoded.as_bytes()).as_deref(),
                Some(&data[..n])
            );
        }
    }

    #[test]
    fn bad_base64() {
        let expected = "upstream.password: 'base64' is not valid base64 (standard alphabet, \
                        with '=' padding, no whitespace)";
        for value in [
            "dGVzdHJlZGlz!",
            "dGVzdHJlZGlzCg",
            "dGVzdHJl ZGlz",
            "dGVzdHJlZGlzCg==\n",
            "-_-_",
            "dGVzdHJlZGlzCh==",
        ] {
            assert_eq!(
                err(&format!(
                    r#"{{"upstream": {{"password": {{"base64": "{}"}}}}}}"#,
                    value.replace('\n', "\\n")
                )),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn trailing_newline_warns_and_is_kept() {
        // `echo testredis | base64` -- the classic Kubernetes mistake.
        let parsed = ok(r#"{"downstream": {"password": {"base64": "dGVzdHJlZGlzCg=="}}}"#);
        assert_eq!(
            parsed.warnings,
            [
                "downstream.password: the value ends with a newline (\\n), which is kept as part \
              of it; if it comes from a Kubernetes Secret, the value was probably encoded with \
              'echo' instead of 'echo -n'"
            ]
        );
        let users = parsed.config.users();
        assert!(users.authenticate(b"default", b"testredis\n").is_ok());
        assert!(users.authenticate(b"default", b"testredis").is_err());

        let parsed = ok(r#"{"upstream": {"password": {"env": "NEWLINE"}}}"#);
        assert_eq!(parsed.warnings.len(), 1);
        assert!(
            parsed.warnings[0]
                .starts_with("upstream.password: the value ends with a newline (\\n)")
        );
        assert_eq!(parsed.config.upstream.unwrap().password.expose(), b"pw\n");

        let parsed = ok(r#"{"upstream": {"password": "pw\r\n"}}"#);
        assert!(
            parsed.warnings[0]
                .starts_with("upstream.password: the value ends with a newline (\\r\\n)")
        );
        // A newline inside is not warned about.
        assert!(
            ok(r#"{"upstream": {"password": "p\nw"}}"#)
                .warnings
                .is_empty()
        );
    }

    #[test]
    fn upstream_username_must_be_a_valid_user_name() {
        // "appuser\n"
        assert_eq!(
            err(r#"{"upstream": {"password": "p", "username": {"base64": "YXBwdXNlcgo="}}}"#),
            "upstream.username: must not contain spaces or control characters (it ends with a \
             newline: if it comes from a Kubernetes Secret, the value was probably encoded with \
             'echo' instead of 'echo -n')"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": "p", "username": "app user"}}"#),
            "upstream.username: must not contain spaces or control characters"
        );
        assert_eq!(
            err(r#"{"upstream": {"password": "p", "username": {"base64": "/w=="}}}"#),
            "upstream.username: must be valid UTF-8 text"
        );
    }

    #[test]
    fn oversize_secrets() {
        let long = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert_eq!(
            err(&format!(r#"{{"downstream": {{"password": "{long}"}}}}"#)),
            "downstream.password: is longer than 4096 bytes"
        );
        assert_eq!(
            err(&format!(
                r#"{{"upstream": {{"password": {{"inline": "{long}"}}}}}}"#
            )),
            "upstream.password: is longer than 4096 bytes"
        );
        assert_eq!(
            err(&format!(
                r#"{{"upstream": {{"password": "p", "username": "{long}"}}}}"#
            )),
            "upstream.username: is longer than 4096 bytes"
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(long.as_bytes());
        assert_eq!(
            err(&format!(
                r#"{{"upstream": {{"password": {{"base64": "{encoded}"}}}}}}"#
            )),
            "upstream.password: is longer than 4096 bytes"
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(&long.as_bytes()[1..]);
        ok(&format!(
            r#"{{"upstream": {{"password": {{"base64": "{encoded}"}}}}}}"#
        ));
        let big_env = |_: &str| Some("y".repeat(MAX_PASSWORD_LEN + 1));
        assert_eq!(
            parse(br#"{"upstream": {"password": {"env": "BIG"}}}"#, &big_env)
                .unwrap_err()
                .to_string(),
            "upstream.password: is longer than 4096 bytes"
        );
    }

    #[test]
    fn invalid_json() {
        assert_eq!(
            err("{"),
            "config: invalid JSON: EOF while parsing an object at line 1 column 1"
        );
        assert_eq!(
            err(r#"{"downstream": {"password": "x",}}"#),
            "config: invalid JSON: trailing comma at line 1 column 33"
        );
        assert_eq!(
            err("{} {}"),
            "config: invalid JSON: trailing characters at line 1 column 4"
        );
        let error = parse(b"{\"upstream\": {\"password\": \"\xff\"}}", &no_env).unwrap_err();
        assert_eq!(error.path(), "config");
        assert!(
            error
                .reason()
                .starts_with("invalid JSON: invalid unicode code point"),
            "{error}"
        );
        let error = parse(br#"{"upstream": {"password": "\ud800"}}"#, &no_env).unwrap_err();
        assert!(error.reason().starts_with("invalid JSON"), "{error}");
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert!(err(&deep).starts_with("config: invalid JSON: recursion limit exceeded"));
    }

    /// Configurations holding SECRET that fail for some other reason.
    fn failing_configs() -> Vec<String> {
        let s = SECRET;
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        vec![
            format!(r#"{{"downstream": {{"password": "{s}", "pasword": "{s}"}}}}"#),
            format!(r#"{{"downstream": {{"password": "{s}", "max_auth_failures": -1}}}}"#),
            format!(
                r#"{{"downstream": {{"password": "{s}", "users": ["user default on >{s} ~* &* +@all"]}}}}"#
            ),
            format!(r#"{{"downstream": {{"users": ["user bob on >{s} ~app:* &* +@nosuch"]}}}}"#),
            format!(r#"{{"downstream": {{"users": ["user bob on {s} ~* &* +@all"]}}}}"#),
            format!(r#"{{"downstream": {{"users": ["user bob on #{s} ~* &* +@all"]}}}}"#),
            format!(r#"{{"downstream": {{"users": ["user bob on <{s} ~* &* +@all"]}}}}"#),
            format!(r#"{{"downstream": {{"users": ["User bob on >{s}"]}}}}"#),
            format!(r#"{{"downstream": {{"users": ["{s} on"]}}}}"#),
            format!(r#"{{"downstream": {{"users": ["user bob on >{s}\n"," user x +nosuch"]}}}}"#),
            format!(r#"{{"downstream": {{"users": ["user bob on >{s} +nosuch ~* &* +@all"]}}}}"#),
            format!(
                r#"{{"downstream": {{"users": ["user bob on >{s} ~* &* +@all", "user bob on >{s} ~* &* +@all"]}}}}"#
            ),
            format!(r#"{{"downstream": {{"users": [{{"inline": "user bob on >{s} +nosuch"}}]}}}}"#),
            format!(r#"{{"downstream": {{"users": [{{"base64": "{b64}"}}]}}}}"#),
            format!(r#"{{"upstream": {{"password": {{"env": "{s}"}}}}}}"#),
            format!(r#"{{"upstream": {{"password": {{"base64": "{s}"}}}}}}"#),
            format!(r#"{{"upstream": {{"password": {{"base64": "{b64}!"}}}}}}"#),
            format!(r#"{{"upstream": {{"password": {{"inline": "{s}", "env": "X"}}}}}}"#),
            format!(r#"{{"upstream": {{"password": {{"inline": "{s}", "{s}": "X"}}}}}}"#),
            format!(r#"{{"upstream": {{"username": "{s} x", "password": "{s}"}}}}"#),
            format!(
                r#"{{"upstream": {{"username": {{"env": "SECRET"}}, "password": "{s}", "x": 1}}}}"#
            ),
            format!(r#"{{"upstream": {{"username": "{s}"}}}}"#),
            format!(r#"{{"upstream": {{"password": "{s}"}}, "x": "{s}"}}"#),
            format!(r#"{{"upstream": {{"password": "{s}"#),
            format!(r#"{{"upstream": {{"password": "{s}"}}}} {s}"#),
            format!(r#"{{"upstream": {{"password": "{s}" "#),
            format!(r#"{{"upstream": {{"password": {s}}}}}"#),
            format!(r#"{{"upstream": {{"password": ["{s}"]}}}}"#),
        ]
    }

    #[test]
    fn errors_never_contain_secrets() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
        for json in failing_configs() {
            let error = match parse(json.as_bytes(), &env) {
                Ok(parsed) => panic!("{json} accepted: {parsed:?}"),
                Err(error) => error,
            };
            for text in [error.to_string(), format!("{error:?}")] {
                assert!(!text.contains(SECRET), "{json}\n=> {text}");
                assert!(!text.contains(&b64), "{json}\n=> {text}");
                assert!(!text.contains("Zq7"), "{json}\n=> {text}");
            }
        }
    }

    #[test]
    fn warnings_and_debug_never_contain_secrets() {
        let s = SECRET;
        for json in [
            format!(
                r#"{{"downstream": {{"password": "{s}\n", "users": ["user bob >{s} ~* &* +@all", "user carol on nopass skip-sanitize-payload ~* &* +@all"]}}, "upstream": {{"username": {{"env": "SECRET"}}, "password": "{s}\r\n"}}}}"#
            ),
            r#"{"upstream": {"password": {"env": "SECRET"}}}"#.to_owned(),
            format!(r#"{{"downstream": {{"users": ["user zed on >{s} ~* &* +@all"]}}}}"#),
        ] {
            let parsed = ok(&json);
            let debug = format!("{parsed:?} {:?} {:?}", parsed.config, parsed.config.users());
            assert!(!debug.contains(SECRET), "{debug}");
            assert!(debug.contains("<redacted>"));
            for warning in &parsed.warnings {
                assert!(!warning.contains(SECRET), "{warning}");
            }
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![
                Just("user a on >p ~* &* +@all".to_owned()),
                Just("user default on nopass ~* &* +@all".to_owned()),
                Just("REDIS_PASSWORD".to_owned()),
                Just("dGVzdHJlZGlzCg==".to_owned()),
                ".{0,12}",
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            let key = prop_oneof![
                Just("downstream".to_owned()),
                Just("upstream".to_owned()),
                Just("password".to_owned()),
                Just("username".to_owned()),
                Just("users".to_owned()),
                Just("max_auth_failures".to_owned()),
                Just("inline".to_owned()),
                Just("env".to_owned()),
                Just("base64".to_owned()),
                "[a-z]{0,4}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map(key, inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&bytes, &env).map_err(|e| e.to_string());
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            if let Ok(parsed) = parse(&bytes, &env) {
                let users = parsed.config.users();
                let _ = users.authenticate(b"default", b"p");
                if let Some(upstream) = &parsed.config.upstream {
                    let mut out = Vec::new();
                    upstream.append_auth_command(&mut out);
                    prop_assert_eq!(out.len(), upstream.auth_command_len());
                }
            }
        }

        #[test]
        fn mangled_configs_never_panic(cut in 0usize..400, byte in any::<u8>()) {
            let json = br#"{"downstream": {"password": "pw", "users": ["user alice on >a ~* &* +@all"], "max_auth_failures": 5}, "upstream": {"username": "u", "password": {"base64": "dGVzdHJlZGlzCg=="}}}"#;
            let mut bytes = json.to_vec();
            let at = cut % bytes.len();
            bytes[at] = byte;
            let _ = parse(&bytes, &env).map_err(|e| e.to_string());
            let _ = parse(&json[..at], &env).map_err(|e| e.to_string());
        }
    }
}

#[cfg(test)]
mod example_tests {
    /// Every example under `filter-config/` must be a valid configuration.
    #[test]
    fn shipped_examples_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/filter-config");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let json = std::fs::read(&path).unwrap();
            let env = |name: &str| {
                matches!(name, "REDIS_PASSWORD" | "BATCH_SERVER_PASSWORD").then(|| "pw".to_string())
            };
            let parsed =
                super::parse(&json, &env).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                parsed.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                parsed.warnings
            );
            seen += 1;
        }
        assert!(seen >= 4);
    }
}
