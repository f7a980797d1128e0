//! RESP framing for both directions of a Redis connection.
//!
//! - [`request`] frames what a client sends (multibulk and inline commands),
//!   byte-compatible with Redis 7.0's own parser, including its protocol
//!   errors and pre-authentication limits.
//! - [`reply`] frames what a server sends (RESP2 and RESP3) into top-level
//!   replies without holding large payloads.
//! - [`output`] builds the bytes a filter callback hands back to the host,
//!   without copying a chunk that passes through unchanged.
//!
//! This module does no I/O and never panics on any input.

pub mod output;
pub mod reply;
pub mod request;

/// Parses a decimal integer exactly as Redis's `string2ll` does: an optional
/// `-`, no `+`, no leading zeros (except the single digit `0`), no spaces,
/// at most 20 bytes, and within `i64`.
///
/// Redis uses this for every length on the wire and for `HELLO`'s version,
/// so matching it byte for byte is what keeps our framing and the server's in
/// lockstep.
pub fn parse_redis_int(digits: &[u8]) -> Option<i64> {
    // LONG_STR_SIZE is 21 in Redis: anything that long is rejected.
    if digits.is_empty() || digits.len() >= 21 {
        return None;
    }
    if digits.len() <= 18 && matches!(digits.first(), Some(b'1'..=b'9')) {
        // Every length on the wire comes here: a positive number of at most
        // 18 digits cannot overflow, so it needs no checked arithmetic.
        let mut value: i64 = 0;
        for &byte in digits {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                return None;
            }
            value = value * 10 + i64::from(digit);
        }
        return Some(value);
    }
    if digits == b"0" {
        return Some(0);
    }
    let (negative, rest) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    match rest.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &byte in rest {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    if negative {
        // -(i64::MIN) does not fit in i64 but does in u64.
        if value > i64::MIN.unsigned_abs() {
            return None;
        }
        Some(0i64.wrapping_sub_unsigned(value))
    } else {
        i64::try_from(value).ok()
    }
}

/// Appends a RESP bulk string (`$<len>\r\n<bytes>\r\n`).
pub fn write_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    write_decimal(out, bytes.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends a RESP array header (`*<len>\r\n`).
pub fn write_array_header(out: &mut Vec<u8>, len: usize) {
    out.push(b'*');
    write_decimal(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends a command as a RESP array of bulk strings.
pub fn write_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    write_array_header(out, args.len());
    for arg in args {
        write_bulk(out, arg.as_ref());
    }
}

/// Appends the decimal digits of `value`.
pub fn write_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(slot) = digits.get_mut(start) {
            *slot = b'0' + (value % 10) as u8;
        }
        value /= 10;
        if value == 0 || start == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(start..).unwrap_or_default());
}

/// Appends a RESP error line, replacing CR and LF with spaces the way Redis
/// sanitizes error replies so that user-controlled text cannot break framing.
/// `text` must include the error code (`ERR ...`, `WRONGPASS ...`).
pub fn write_error(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'-');
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_string2ll() {
        assert_eq!(parse_redis_int(b"0"), Some(0));
        assert_eq!(parse_redis_int(b"42"), Some(42));
        assert_eq!(parse_redis_int(b"-1"), Some(-1));
        assert_eq!(parse_redis_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_redis_int(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"000000000000000000001",
            b"18446744073709551616",
        ] {
            assert_eq!(parse_redis_int(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn writes_canonical_resp() {
        let mut out = Vec::new();
        write_command(&mut out, &[&b"PING"[..], b"x"]);
        assert_eq!(out, b"*2\r\n$4\r\nPING\r\n$1\r\nx\r\n");
        out.clear();
        write_decimal(&mut out, 0);
        write_decimal(&mut out, u64::MAX);
        assert_eq!(out, b"018446744073709551615");
        out.clear();
        write_error(&mut out, b"ERR a\r\nb");
        assert_eq!(out, b"-ERR a  b\r\n");
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_std_on_canonical_numbers(n: i64) {
            proptest::prop_assert_eq!(parse_redis_int(n.to_string().as_bytes()), Some(n));
        }

        #[test]
        fn never_panics(bytes: Vec<u8>) {
            let _ = parse_redis_int(&bytes);
        }
    }
}
