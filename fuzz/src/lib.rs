//! Helpers shared by the fuzz targets in `fuzz_targets/`.

use std::sync::LazyLock;

/// FNV-1a over `bytes`, from the standard offset basis.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_with(0xcbf2_9ce4_8422_2325, bytes)
}

/// FNV-1a over `bytes`, continuing from `hash`.
pub fn fnv1a_with(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The secrecy checks of the `config` and `acl_line` targets.
///
/// The targets plant [`MARKER`] as a password (and [`marker_hash`] as a
/// `#<hash>` rule), strip the [`TAINT`] characters from every text that is
/// allowed to be echoed (user names, key and channel patterns, command
/// rules, field names), and then require that no error message, warning or
/// `Debug` output holds a tainted text. Any taint that shows up came from a
/// password.
pub mod taint {
    use super::LazyLock;

    /// The planted password. Its non-ASCII characters are the taint.
    pub const MARKER: &str = "§Zq7¤Fuzz-S3cret¶";

    /// Characters that appear only in planted secrets.
    pub const TAINT: [char; 3] = ['§', '¤', '¶'];

    /// The taint characters as `char::escape_default`/`escape_unicode` and
    /// JSON would write them, lower-cased.
    const ESCAPED: [&str; 6] = [
        "\\u{a7}", "\\u{a4}", "\\u{b6}", "\\u00a7", "\\u00a4", "\\u00b6",
    ];

    static HASH: LazyLock<String> = LazyLock::new(|| {
        let hash = envoy_redis_auth::secret::PasswordHash::of(MARKER.as_bytes());
        hash.digest().iter().map(|b| format!("{b:02x}")).collect()
    });

    /// SHA-256 of [`MARKER`], 64 lower-case hex digits: the planted
    /// `#<hash>` rule.
    pub fn marker_hash() -> &'static str {
        &HASH
    }

    /// Whether `text` holds a taint character, an escaped one, or the
    /// marker's hash (in any case).
    pub fn is_tainted(text: &str) -> bool {
        if text.contains(TAINT) {
            return true;
        }
        let lower = text.to_ascii_lowercase();
        ESCAPED.iter().any(|e| lower.contains(e)) || lower.contains(marker_hash())
    }

    /// `text` without the taint characters.
    pub fn strip(text: &str) -> String {
        text.chars().filter(|c| !TAINT.contains(c)).collect()
    }

    /// Fails the fuzz run if `shown` holds any trace of a planted secret.
    #[track_caller]
    pub fn assert_not_shown(what: &str, shown: &str) {
        assert!(
            !is_tainted(shown),
            "a planted secret ({MARKER:?} or its hash) leaked into {what}: {shown:?}"
        );
    }

    /// Where `parse_acl_line` would find the user name and the rules of
    /// `line` (the splitting of `ACLLoadFromFile`): `None` when it is not a
    /// `user <name> ...` line, so that nothing of it is echoed.
    pub fn acl_words(line: &str) -> Option<(&str, Vec<&str>)> {
        let line = line.trim_matches([' ', '\t', '\r', '\n']);
        if line.contains('\n') {
            return None;
        }
        let mut words = line.split(' ');
        if words.next() != Some("user") {
            return None;
        }
        let name = words.next()?;
        let rules = words
            .map(|word| word.trim_matches(['\t', '\r', '\n']))
            .filter(|word| !word.is_empty())
            .collect();
        Some((name, rules))
    }

    /// Whether an ACL rule holds a password or a password hash: the texts
    /// that may carry the taint.
    pub fn is_secret_rule(rule: &str) -> bool {
        rule.starts_with(['>', '<', '#', '!'])
    }

    /// Whether every part of `line` that an error or warning may quote
    /// (the user name, the rules that are not passwords) is free of taint,
    /// so that any taint in the output is a leak.
    pub fn acl_line_is_clean(line: &str) -> bool {
        match acl_words(line) {
            None => true,
            Some((name, rules)) => {
                // Inside `(...)` rules are split like `sdssplitargs`, whose
                // escapes can spell a taint escape (`\'u00b6` decodes to
                // `\u00b6`) that the raw word does not show: such a line's
                // patterns cannot be told clean. A group spans the words
                // from one starting with `(` to one ending with `)`, as
                // `ACLMergeSelectorArguments` merges them.
                let mut in_group = false;
                let decodes = |rule: &str, in_group: &mut bool| {
                    if rule.starts_with('(') {
                        *in_group = true;
                    }
                    let inside = *in_group;
                    if rule.ends_with(')') {
                        *in_group = false;
                    }
                    inside && rule.contains(['\\', '"', '\''])
                };
                !is_tainted(name)
                    && rules.iter().all(|rule| {
                        let decoded = decodes(rule, &mut in_group);
                        is_secret_rule(rule) || (!is_tainted(rule) && !decoded)
                    })
            }
        }
    }

    /// Plants secrets in an ACL line: in `>`/`<` rules, `$M` becomes
    /// [`MARKER`]; in `#`/`!` rules, `$H` becomes [`marker_hash`] (`$HU`:
    /// in upper case). The taint is stripped from the user name and every
    /// other rule. Lines that are no `user` line are returned as they are.
    pub fn plant_acl_line(line: &str) -> String {
        let trimmed = line.trim_matches([' ', '\t', '\r', '\n']);
        if acl_words(trimmed).is_none() {
            return line.to_owned();
        }
        let start = line.len() - line.trim_start_matches([' ', '\t', '\r', '\n']).len();
        let (head, rest) = line.split_at(start);
        let (body, tail) = rest.split_at(trimmed.len());
        let pieces: Vec<String> = body
            .split(' ')
            .enumerate()
            .map(|(index, piece)| match index {
                0 => piece.to_owned(),
                1 => strip(piece),
                _ => {
                    let word = piece.trim_matches(['\t', '\r', '\n']);
                    if word.starts_with(['>', '<']) {
                        piece.replace("$M", MARKER)
                    } else if word.starts_with(['#', '!']) {
                        piece
                            .replace("$HU", &marker_hash().to_ascii_uppercase())
                            .replace("$H", marker_hash())
                    } else {
                        strip(piece)
                    }
                }
            })
            .collect();
        format!("{head}{}{tail}", pieces.join(" "))
    }
}
