//! Redis's glob matcher, `stringmatchlen` (`util.c`, Redis 7.0.15), with
//! `nocase` off: the matcher ACL key and channel patterns use.
//!
//! The port keeps every quirk, because a verdict must be Redis's verdict:
//! bytes compare as C's signed `char` in ranges (`[a-\xff]` does not
//! contain `é`'s bytes), a range's `-` may swallow the closing `]`
//! (`[a-]`), an unclosed `[` matches against the rest of the pattern, the
//! end of the pattern reads as the NUL terminator C would find there, and
//! recursion deeper than 1000 `*`s is no match.

/// Whether `string` matches the glob `pattern`, exactly as Redis's
/// `stringmatchlen(pattern, plen, string, slen, 0)` decides.
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    // The shapes almost every key pattern has, decided without the
    // matcher: a literal (`user:1`), and a literal followed by stars only
    // (`cache:*`), which matches a string that starts with the literal and
    // is not empty (the matcher skips the stars once the string is used up,
    // and a star never matches an empty string).
    let literal = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    match pattern.split_at_checked(literal) {
        Some((literal, [])) => return string == literal,
        Some((literal, stars)) if stars.iter().all(|&b| b == b'*') => {
            return !string.is_empty() && string.starts_with(literal);
        }
        _ => {}
    }
    general(pattern, string)
}

/// `stringmatchlen` itself, for every pattern.
fn general(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    Matcher { pattern }.run(0, string, &mut skip_longer, 0)
}

struct Matcher<'p> {
    pattern: &'p [u8],
}

impl Matcher<'_> {
    /// The pattern byte at `i`, or NUL past the end (C's terminator).
    fn at(&self, i: usize) -> u8 {
        self.pattern.get(i).copied().unwrap_or(0)
    }

    /// `stringmatchlen_impl` from pattern offset `p` on. `skip_longer` is
    /// the shared `skipLongerMatches` flag.
    fn run(&self, mut p: usize, mut string: &[u8], skip_longer: &mut bool, nesting: u32) -> bool {
        if nesting > 1000 {
            return false;
        }
        // What is left of the pattern; C's `patternLen`.
        let mut plen = self.pattern.len().saturating_sub(p);
        while plen > 0 && !string.is_empty() {
            let Some(&s0) = string.first() else { break };
            match self.at(p) {
                b'*' => {
                    while plen > 0 && self.at(p + 1) == b'*' {
                        p += 1;
                        plen -= 1;
                    }
                    if plen == 1 {
                        return true;
                    }
                    while !string.is_empty() {
                        // C passes `patternLen - 1`: always the rest of the
                        // pattern, since `p + plen` is the pattern's length.
                        if self.run(p + 1, string, skip_longer, nesting + 1) {
                            return true;
                        }
                        if *skip_longer {
                            return false;
                        }
                        string = string.get(1..).unwrap_or_default();
                    }
                    // Nothing matched the rest from anywhere in the string:
                    // longer matches for earlier stars cannot help either.
                    *skip_longer = true;
                    return false;
                }
                b'?' => string = string.get(1..).unwrap_or_default(),
                b'[' => {
                    p += 1;
                    plen -= 1;
                    let not = self.at(p) == b'^';
                    if not {
                        p += 1;
                        plen = plen.saturating_sub(1);
                    }
                    let mut matched = false;
                    loop {
                        if self.at(p) == b'\\' && plen >= 2 {
                            p += 1;
                            plen -= 1;
                            if self.at(p) == s0 {
                                matched = true;
                            }
                        } else if self.at(p) == b']' {
                            break;
                        } else if plen == 0 {
                            // Unclosed: step back onto the last byte, which
                            // the loop's tail then consumes.
                            p = p.saturating_sub(1);
                            plen += 1;
                            break;
                        } else if plen >= 3 && self.at(p + 1) == b'-' {
                            // C compares `char`s, which are signed.
                            let mut start = i32::from(self.at(p) as i8);
                            let mut end = i32::from(self.at(p + 2) as i8);
                            let c = i32::from(s0 as i8);
                            if start > end {
                                core::mem::swap(&mut start, &mut end);
                            }
                            p += 2;
                            plen -= 2;
                            if c >= start && c <= end {
                                matched = true;
                            }
                        } else if self.at(p) == s0 {
                            matched = true;
                        }
                        p += 1;
                        plen = plen.saturating_sub(1);
                    }
                    if not {
                        matched = !matched;
                    }
                    if !matched {
                        return false;
                    }
                    string = string.get(1..).unwrap_or_default();
                }
                c => {
                    let mut c = c;
                    if c == b'\\' && plen >= 2 {
                        p += 1;
                        plen -= 1;
                        c = self.at(p);
                    }
                    if c != s0 {
                        return false;
                    }
                    string = string.get(1..).unwrap_or_default();
                }
            }
            p += 1;
            plen = plen.saturating_sub(1);
            if string.is_empty() {
                while self.at(p) == b'*' {
                    p += 1;
                    plen = plen.saturating_sub(1);
                }
                break;
            }
        }
        plen == 0 && string.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::{general, matches};

    proptest::proptest! {
        #[test]
        fn the_shortcuts_are_the_matcher(
            pattern in proptest::collection::vec(proptest::sample::select(b"ab:*?[]\\-^\0".to_vec()), 0..8),
            string in proptest::collection::vec(proptest::sample::select(b"ab:*\0".to_vec()), 0..8),
        ) {
            proptest::prop_assert_eq!(matches(&pattern, &string), general(&pattern, &string));
        }
    }

    #[test]
    fn basics() {
        let yes = [
            ("*", "abc"),
            ("a*", "abc"),
            ("*c", "abc"),
            ("a?c", "abc"),
            ("a[bx]c", "abc"),
            ("a[^x]c", "abc"),
            ("a[a-c]c", "abc"),
            ("a[c-a]c", "abc"),
            ("a\\*c", "a*c"),
            ("a[\\]]c", "a]c"),
            ("app:*", "app:1"),
            ("", ""),
            ("a**", "a"),
            ("a*", "a"),
        ];
        for (p, s) in yes {
            assert!(
                matches(p.as_bytes(), s.as_bytes()),
                "{p:?} should match {s:?}"
            );
        }
        let no = [
            // The loop never runs on an empty string, and "*" is not used up.
            ("*", ""),
            ("", "a"),
            ("a", ""),
            ("a?", "a"),
            ("a[^b]c", "abc"),
            ("app:*", "ap"),
            ("a\\*c", "abc"),
            ("?", ""),
        ];
        for (p, s) in no {
            assert!(
                !matches(p.as_bytes(), s.as_bytes()),
                "{p:?} should not match {s:?}"
            );
        }
    }

    #[test]
    fn quirks() {
        // Unclosed class: the last byte is consumed as a member.
        assert!(matches(b"a[b", b"ab"));
        assert!(!matches(b"a[b", b"ac"));
        // `[a-]`: the range swallows `]` (93..=97).
        assert!(matches(b"[a-]", b"_"));
        // Signed chars: 0xe9 is negative, outside a-z and outside \x01-\x7f.
        assert!(!matches(b"[\x01-\x7f]", b"\xe9"));
        assert!(matches(b"[\x80-\x01]", b"\xe9"));
        // A key may hold NUL; the pattern's end reads as NUL.
        assert!(matches(b"a?", b"a\0"));
        // Nesting limit.
        let deep = "*a".repeat(1100);
        assert!(!matches(deep.as_bytes(), "a".repeat(1100).as_bytes()));
    }
}
