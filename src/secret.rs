//! Secret values and password hashes.
//!
//! [`Secret`] owns the bytes of a credential (a password, or the upstream
//! user name), never prints them, and overwrites them when dropped.
//! [`PasswordHash`] is the SHA-256 of a password, the form in which Redis
//! keeps passwords (`ACLHashPassword`), compared in constant time.
//!
//! Wiping is best effort: it covers the buffers these types own, not copies
//! that a parser or the allocator may have made before the bytes got here.

use sha2::{Digest, Sha256};
use std::fmt;
use subtle::{Choice, ConstantTimeEq};

/// The longest secret (password or user name) accepted, in bytes.
pub const MAX_SECRET_LEN: usize = 4096;

/// Text printed in place of a secret by `Debug` and `Display`.
pub const REDACTED: &str = "<redacted>";

/// Overwrites the whole allocation of `bytes` (spare capacity included)
/// with zeros, then leaves it empty.
///
/// `black_box` keeps the compiler from treating the writes as dead stores
/// before the buffer is freed; this is the "volatile-ish" wipe possible
/// without `unsafe`.
pub fn wipe(bytes: &mut Vec<u8>) {
    zero_fill(bytes);
    bytes.clear();
}

/// Sets every byte of the allocation to zero, leaving `len == capacity`.
fn zero_fill(bytes: &mut Vec<u8>) {
    let capacity = bytes.capacity();
    bytes.clear();
    // Within capacity, so this writes in place and never reallocates.
    bytes.resize(capacity, 0);
    std::hint::black_box(bytes.as_slice());
}

/// Like [`wipe`], for a `String` whose contents may be secret.
pub fn wipe_string(text: &mut String) {
    let mut bytes = std::mem::take(text).into_bytes();
    wipe(&mut bytes);
}

/// A secret byte string. Its `Debug` and `Display` print `<redacted>`; the
/// bytes are reachable only through [`Secret::expose`], and are overwritten
/// when the value is dropped.
///
/// There is deliberately no `PartialEq`: compare credentials through
/// [`PasswordHash::matches`] or `subtle`.
#[derive(Clone, Default)]
pub struct Secret {
    bytes: Vec<u8>,
}

impl Secret {
    /// Takes ownership of `bytes` without copying them.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret { bytes }
    }

    /// Takes ownership of the bytes of `text` without copying them.
    pub fn from_string(text: String) -> Self {
        Secret {
            bytes: text.into_bytes(),
        }
    }

    /// The secret bytes. Callers must not log or print them.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Length in bytes (not secret: Redis puts it on the wire anyway).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The line ending the secret ends with, if any: `"\r\n"` or `"\n"`.
    ///
    /// A trailing newline is almost always a mistake (`echo` instead of
    /// `echo -n` when creating a Kubernetes Secret), so the configuration
    /// warns about it; the newline stays part of the secret.
    pub fn trailing_newline(&self) -> Option<&'static str> {
        if self.bytes.ends_with(b"\r\n") {
            Some("\\r\\n")
        } else if self.bytes.ends_with(b"\n") {
            Some("\\n")
        } else {
            None
        }
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.bytes);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The SHA-256 digest of a password, as Redis stores it for `>password`
/// and `#<hex>` rules.
///
/// Equality (`==`, [`ConstantTimeEq`]) runs in constant time.
#[derive(Clone)]
pub struct PasswordHash([u8; 32]);

/// Why [`PasswordHash::from_hex`] refused its input. The input is not
/// kept: a malformed hash may well be a password typed in the wrong place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidHash;

impl fmt::Display for InvalidHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a password hash must be exactly 64 hexadecimal characters (a SHA-256 digest)")
    }
}

impl PasswordHash {
    /// The hash of `password`.
    pub fn of(password: &[u8]) -> Self {
        PasswordHash(Sha256::digest(password).into())
    }

    /// Parses 64 hexadecimal digits.
    ///
    /// Upper-case and mixed-case digits are accepted. Redis 7.0 itself
    /// accepts only lower case in `#<hash>` rules; accepting both costs
    /// nothing and the digest is the same.
    pub fn from_hex(hex: &str) -> Result<Self, InvalidHash> {
        let digits = hex.as_bytes();
        if digits.len() != 64 {
            return Err(InvalidHash);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let (high, low) = match pair {
                [high, low] => (hex_value(*high)?, hex_value(*low)?),
                _ => return Err(InvalidHash),
            };
            *byte = (high << 4) | low;
        }
        Ok(PasswordHash(out))
    }

    /// Whether `candidate` is the password this is the hash of. Hashes the
    /// candidate and compares the digests in constant time.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.ct_eq(&PasswordHash::of(candidate)).into()
    }

    /// The digest in lower-case hex, as `ACL GETUSER` shows it (Redis shows
    /// it to anyone allowed `ACL GETUSER`/`ACL LIST`, which are `@admin`).
    pub fn to_hex(&self) -> String {
        self.digest().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The raw digest. Not the password, but enough for an offline guessing
    /// attack: treat it as sensitive.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }
}

fn hex_value(digit: u8) -> Result<u8, InvalidHash> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(InvalidHash),
    }
}

impl ConstantTimeEq for PasswordHash {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for PasswordHash {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for PasswordHash {}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordHash({REDACTED})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ACL SETUSER t >a` then `ACL LIST` in redis-server 7.0.15 shows this
    // hash; it is also `printf a | sha256sum`.
    const SHA256_A: &str = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";

    #[test]
    fn secret_is_redacted() {
        let secret = Secret::new(b"hunter2-distinctive".to_vec());
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(<redacted>)");
        assert_eq!(secret.expose(), b"hunter2-distinctive");
        assert_eq!(secret.len(), 19);
        assert!(!secret.is_empty());
        assert!(Secret::default().is_empty());
    }

    #[test]
    fn secret_from_string_keeps_bytes() {
        let secret = Secret::from_string("pässword".to_owned());
        assert_eq!(secret.expose(), "pässword".as_bytes());
    }

    #[test]
    fn trailing_newline_detection() {
        assert_eq!(
            Secret::new(b"pw\n".to_vec()).trailing_newline(),
            Some("\\n")
        );
        assert_eq!(
            Secret::new(b"pw\r\n".to_vec()).trailing_newline(),
            Some("\\r\\n")
        );
        assert_eq!(Secret::new(b"pw\r".to_vec()).trailing_newline(), None);
        assert_eq!(Secret::new(b"p\nw".to_vec()).trailing_newline(), None);
        assert_eq!(Secret::new(Vec::new()).trailing_newline(), None);
    }

    #[test]
    fn zero_fill_covers_the_whole_allocation() {
        let mut bytes = Vec::with_capacity(16);
        bytes.extend_from_slice(b"secret");
        let capacity = bytes.capacity();
        let address = bytes.as_ptr();
        zero_fill(&mut bytes);
        assert_eq!(bytes.len(), capacity);
        assert!(bytes.iter().all(|&b| b == 0));
        assert_eq!(bytes.as_ptr(), address, "must not reallocate");
        wipe(&mut bytes);
        assert!(bytes.is_empty());
        assert_eq!(bytes.capacity(), capacity);
    }

    #[test]
    fn wipe_string_empties() {
        let mut text = String::from("secret");
        wipe_string(&mut text);
        assert!(text.is_empty());
    }

    #[test]
    fn hash_of_matches_known_digest() {
        let hash = PasswordHash::of(b"a");
        assert_eq!(hash, PasswordHash::from_hex(SHA256_A).unwrap());
        assert!(hash.matches(b"a"));
        assert!(!hash.matches(b"b"));
        assert!(!hash.matches(b"a\n"));
        assert!(!hash.matches(b""));
    }

    #[test]
    fn from_hex_accepts_any_case() {
        let upper = SHA256_A.to_ascii_uppercase();
        assert_eq!(
            PasswordHash::from_hex(&upper).unwrap(),
            PasswordHash::of(b"a")
        );
        let mixed: String = SHA256_A
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        assert!(PasswordHash::from_hex(&mixed).unwrap().matches(b"a"));
    }

    #[test]
    fn from_hex_rejects_malformed() {
        assert_eq!(PasswordHash::from_hex(""), Err(InvalidHash));
        assert_eq!(PasswordHash::from_hex(&SHA256_A[1..]), Err(InvalidHash));
        assert_eq!(
            PasswordHash::from_hex(&format!("{SHA256_A}0")),
            Err(InvalidHash)
        );
        let mut bad = SHA256_A.to_owned();
        bad.replace_range(10..11, "g");
        assert_eq!(PasswordHash::from_hex(&bad), Err(InvalidHash));
        // 64 bytes but 63 characters: a multi-byte character must not be
        // mistaken for two digits.
        let multibyte = format!("é{}", &SHA256_A[2..]);
        assert_eq!(multibyte.len(), 64);
        assert_eq!(PasswordHash::from_hex(&multibyte), Err(InvalidHash));
    }

    #[test]
    fn hash_debug_is_redacted() {
        let hash = PasswordHash::of(b"a");
        let debug = format!("{hash:?}");
        assert_eq!(debug, "PasswordHash(<redacted>)");
        assert!(!debug.contains("ca97"));
        assert_eq!(hash.digest().len(), 32);
    }

    #[test]
    fn invalid_hash_message() {
        assert_eq!(
            InvalidHash.to_string(),
            "a password hash must be exactly 64 hexadecimal characters (a SHA-256 digest)"
        );
    }
}
