//! `config::parse`: never panics, and never shows a secret.
//!
//! Each input is parsed twice:
//! 1. as it is, with an environment derived from the input (variables set
//!    or not, empty, holding the planted password [`taint::MARKER`] or an
//!    ACL line with it, ending in a newline, or text from the input);
//! 2. if it is JSON: with secrets planted where the input's strings ask for
//!    them, and the taint stripped from every other string. Placeholders
//!    (whole JSON string values):
//!    - `"$M"`, `"$MNL"`: the marker (with a trailing newline) as a string;
//!    - `"$I"`, `"$B"`, `"$BNL"`: as `{"inline": …}`, `{"base64": …}`;
//!    - `"$E"`, `"$ENL"`, `"$EACL"`: as `{"env": …}` of a variable holding
//!      it, it with a newline, or an ACL line with it;
//!    - `"$U"`: the ACL line `user fuzzuser on >MARKER ~* &* +@all`;
//!    - `"$I:…"`, `"$B:…"`, `"$E:…"`: the rest of the string, planted as
//!      below, as an inline, base64 or environment secret;
//!    - any other string that is a `user <name> …` line: `$M` inside `>`
//!      and `<` rules and `$H`/`$HU` inside `#` and `!` rules are replaced
//!      by the marker and its SHA-256 (see `taint::plant_acl_line`).
//!
//! When no text that may be echoed (user names, non-password rules, field
//! names) holds the taint, neither the `ConfigError` (Display, Debug, path,
//! reason), nor the `Debug` of the parsed configuration, nor any warning may
//! hold it.
#![no_main]

use base64::Engine as _;
use envoy_redis_auth::config;
use envoy_redis_auth_fuzz::fnv1a;
use envoy_redis_auth_fuzz::taint::{self, MARKER};
use libfuzzer_sys::fuzz_target;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::fmt;

fuzz_target!(|data: &[u8]| {
    let seed = fnv1a(data);
    let env = Env {
        seed,
        data,
        planted: Vec::new(),
    };
    let tree = serde_json::from_slice::<Json>(data).ok();
    // 1. The input as it is. Any taint in it, or hidden in base64, may end
    //    up where names are echoed: check secrecy only without.
    let clean = match &tree {
        Some(tree) => tree.is_clean(),
        None => !taint::is_tainted(&String::from_utf8_lossy(data)),
    };
    check(data, &env, clean);

    // 2. Secrets planted at the placeholders, taint stripped elsewhere.
    if let Some(tree) = tree {
        let mut planter = Planter::default();
        let planted = planter.plant(tree);
        let clean = planted.is_clean_after_planting();
        let bytes = serde_json::to_vec(&planted).expect("a tree serializes");
        let env = Env {
            planted: planter.env,
            ..env
        };
        check(&bytes, &env, clean);
    }
});

fn check(json: &[u8], env: &Env, clean: bool) {
    let lookup = |name: &str| env.get(name);
    match config::parse(json, &lookup) {
        Err(error) => {
            let shown = error.to_string();
            assert_eq!(shown, format!("{}: {}", error.path(), error.reason()));
            assert!(!error.path().is_empty(), "an error with no path: {shown}");
            if clean {
                taint::assert_not_shown("a ConfigError", &shown);
                taint::assert_not_shown("a ConfigError's Debug", &format!("{error:?}"));
            }
        }
        Ok(parsed) => {
            if clean {
                taint::assert_not_shown("a parsed config's Debug", &format!("{parsed:?}"));
                for warning in &parsed.warnings {
                    taint::assert_not_shown("a warning", warning);
                }
            }
            let config = &parsed.config;
            let users = config.users();
            let _ = (users.len(), config.max_auth_failures());
            let _ = (
                users.default_user_is_nopass(),
                users.authenticated_on_connect(),
            );
            for name in ["default", "fuzzuser", "alice"] {
                for password in [MARKER.as_bytes(), b"", b"alicepw"] {
                    if let Err(failure) = users.authenticate(name.as_bytes(), password) {
                        taint::assert_not_shown("an AuthFailure", &failure.to_string());
                    }
                }
            }
            if let Some(upstream) = &config.upstream {
                let mut out = b"x".to_vec();
                upstream.append_auth_command(&mut out);
                assert_eq!(out.len(), 1 + upstream.auth_command_len());
            }
        }
    }
}

/// The environment `parse` reads through its lookup function.
struct Env<'a> {
    seed: u64,
    data: &'a [u8],
    /// Values of `FUZZ_PLANTED_<index>`.
    planted: Vec<String>,
}

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "FUZZ_MARKER" => return Some(MARKER.to_owned()),
            "FUZZ_MARKER_NL" => return Some(format!("{MARKER}\n")),
            "FUZZ_MARKER_ACL" => return Some(marker_acl_line()),
            _ => {}
        }
        if let Some(index) = name.strip_prefix("FUZZ_PLANTED_") {
            return index
                .parse::<usize>()
                .ok()
                .and_then(|i| self.planted.get(i).cloned());
        }
        let hash = envoy_redis_auth_fuzz::fnv1a_with(self.seed, name.as_bytes());
        match hash % 8 {
            0 | 1 => None,
            2 => Some(String::new()),
            3 => Some(MARKER.to_owned()),
            4 => Some(format!("user {name} on >{MARKER} ~* &* +@all")),
            5 => Some("pw\r\n".to_owned()),
            6 => {
                // Text from the input, without taint: it may be a users line
                // whose name is echoed.
                let from = (hash >> 8) as usize % (self.data.len() + 1);
                let len = (hash >> 40) as usize % 64;
                let end = (from + len).min(self.data.len());
                let text = taint::strip(&String::from_utf8_lossy(&self.data[from..end]));
                if taint::is_tainted(&text) {
                    Some("user x on nopass ~* &* +@all".to_owned())
                } else {
                    Some(text)
                }
            }
            _ => Some(format!("{MARKER}\n")),
        }
    }
}

fn marker_acl_line() -> String {
    format!("user fuzzuser on >{MARKER} ~* &* +@all")
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A JSON tree that keeps duplicate keys and their order (the filter's own
/// parser refuses duplicates, so they must survive the round trip).
#[derive(Clone)]
enum Json {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    /// `planted`: holds a planted secret, exempt from the taint rule.
    String {
        text: String,
        planted: bool,
    },
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn string(text: impl Into<String>) -> Json {
        Json::String {
            text: text.into(),
            planted: false,
        }
    }

    fn secret(text: impl Into<String>) -> Json {
        Json::String {
            text: text.into(),
            planted: true,
        }
    }

    fn object(key: &str, value: Json) -> Json {
        Json::Object(vec![(key.to_owned(), value)])
    }

    /// No string, key, or base64 decoding of a string holds taint.
    fn is_clean(&self) -> bool {
        self.all_strings(&mut |text, _| text_is_clean(text))
    }

    /// Like [`is_clean`](Self::is_clean), but planted strings may hold taint
    /// as long as they hold it only in secret places.
    fn is_clean_after_planting(&self) -> bool {
        self.all_strings(&mut |text, planted| planted || text_is_clean(text))
    }

    fn all_strings(&self, f: &mut dyn FnMut(&str, bool) -> bool) -> bool {
        match self {
            Json::String { text, planted } => f(text, *planted),
            Json::Array(items) => items.iter().all(|item| item.all_strings(f)),
            Json::Object(entries) => entries
                .iter()
                .all(|(key, value)| f(key, false) && value.all_strings(f)),
            _ => true,
        }
    }
}

/// Whether a string that was not planted holds no taint, as text or as
/// the base64 of a text.
fn text_is_clean(text: &str) -> bool {
    if taint::is_tainted(text) {
        return false;
    }
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(bytes) => !taint::is_tainted(&String::from_utf8_lossy(&bytes)),
        Err(_) => true,
    }
}

/// Replaces placeholders by planted secrets.
#[derive(Default)]
struct Planter {
    /// Values for `FUZZ_PLANTED_<index>`.
    env: Vec<String>,
}

impl Planter {
    fn plant(&mut self, node: Json) -> Json {
        match node {
            Json::String { text, .. } => self.plant_string(&text),
            Json::Array(items) => Json::Array(items.into_iter().map(|i| self.plant(i)).collect()),
            Json::Object(entries) => Json::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (taint::strip(&key), self.plant(value)))
                    .collect(),
            ),
            other => other,
        }
    }

    fn plant_string(&mut self, text: &str) -> Json {
        let with_newline = format!("{MARKER}\n");
        match text {
            "$M" => return Json::secret(MARKER),
            "$MNL" => return Json::secret(with_newline),
            "$I" => return Json::object("inline", Json::secret(MARKER)),
            "$B" => return Json::object("base64", Json::secret(base64(MARKER.as_bytes()))),
            "$BNL" => {
                return Json::object("base64", Json::secret(base64(with_newline.as_bytes())));
            }
            "$E" => return Json::object("env", Json::string("FUZZ_MARKER")),
            "$ENL" => return Json::object("env", Json::string("FUZZ_MARKER_NL")),
            "$EACL" => return Json::object("env", Json::string("FUZZ_MARKER_ACL")),
            "$U" => return Json::secret(marker_acl_line()),
            _ => {}
        }
        if let Some(rest) = text.strip_prefix("$I:") {
            return Json::object("inline", self.plant_text(rest));
        }
        if let Some(rest) = text.strip_prefix("$B:") {
            let planted = plant_text_value(rest);
            return Json::object("base64", Json::secret(base64(planted.as_bytes())));
        }
        if let Some(rest) = text.strip_prefix("$E:") {
            let name = format!("FUZZ_PLANTED_{}", self.env.len());
            self.env.push(plant_text_value(rest));
            return Json::object("env", Json::string(name));
        }
        self.plant_text(text)
    }

    /// A string that may be an ACL line: planted there, stripped elsewhere.
    fn plant_text(&mut self, text: &str) -> Json {
        if taint::acl_words(text).is_some() {
            let line = taint::plant_acl_line(text);
            if taint::acl_line_is_clean(&line) {
                return Json::secret(line);
            }
            return Json::string(line);
        }
        Json::string(taint::strip(text))
    }
}

/// [`Planter::plant_text`] for values that end up base64-encoded or in the
/// environment, where the tree cannot mark them: the text is made clean.
fn plant_text_value(text: &str) -> String {
    if taint::acl_words(text).is_some() {
        let line = taint::plant_acl_line(text);
        if taint::acl_line_is_clean(&line) {
            return line;
        }
        return "user x on nopass ~* &* +@all".to_owned();
    }
    let stripped = taint::strip(text);
    if taint::is_tainted(&stripped) {
        return String::new();
    }
    stripped
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(value) => serializer.serialize_bool(*value),
            Json::Unsigned(value) => serializer.serialize_u64(*value),
            Json::Signed(value) => serializer.serialize_i64(*value),
            Json::Float(value) => serializer.serialize_f64(*value),
            Json::String { text, .. } => serializer.serialize_str(text),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
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
        Ok(Json::Unsigned(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Json, E> {
        Ok(Json::Signed(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Json, E> {
        Ok(Json::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Json, E> {
        Ok(Json::string(value))
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
