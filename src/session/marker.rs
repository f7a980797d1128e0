//! Markers: how a reply the filter makes itself reaches the client in order.
//!
//! A network filter can only write to the client while server bytes pass
//! through it. So for every command the filter answers itself, it sends the
//! server a marker command instead, and when the server's reply to the
//! marker comes back, swaps it for the local reply. The server answers in
//! order, so the local reply lands exactly where the client expects it in a
//! pipeline.
//!
//! **The marker is an unknown command**, `*1 $n era:<id>:<mac>`. Redis looks
//! a command up before any other check (`processCommand`: existence comes
//! before authentication, ACLs, `-LOADING`, `-BUSY`, `-MASTERDOWN`, `-OOM`,
//! cluster redirections, the subscribed-mode restriction and `MULTI`
//! queueing), so in every state a server can be in, the reply is
//! `-ERR unknown command 'era:<id>:<mac>', with args beginning with: `
//! (backquotes before Redis 7.0). It needs no permission on the server and
//! depends on no command that could be renamed. Inside `MULTI` it also
//! flags the transaction, so `EXEC` aborts, which is what Redis does after
//! any command refused while queueing; every local reply inside `MULTI` is
//! such a refusal. `CLIENT REPLY OFF|SKIP` suppresses the marker's reply like
//! any other; the session drops the local reply then, as Redis would.
//!
//! **What a marker reveals.** Redis does not show rejected commands to
//! `MONITOR`, `SLOWLOG`, `CLIENT LIST` (`cmd=NULL`) or `INFO commandstats`;
//! a marker shows up only as a count in `INFO errorstats`
//! (`errorstat_ERR`, `total_error_replies`, `rejected_calls`). Even where a
//! marker is seen (a newer server's `MONITOR`, a packet capture of a
//! plaintext upstream), it is useless for forging: `<mac>` is a keyed hash
//! of `<id>` under a random per-connection key, each marker is accepted
//! once and only while pending, and knowing one marker tells nothing about
//! the next. So no value stored by another client can pass for a marker's
//! reply, and the connection's own client cannot guess one either.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::resp::reply::FrameReader;
use crate::resp::{write_array_header, write_bulk, write_decimal};

const TAG: &[u8] = b"era:";
/// Bytes of keyed hash carried by a marker (96 bits).
pub const MAC_LEN: usize = 12;
/// Bytes of random key per connection.
pub const KEY_LEN: usize = 32;
/// Domain separation, so the key is used for nothing else by accident.
const CONTEXT: &[u8] = b"envoy-redis-auth marker v1\0";

/// A marker's keyed hash.
pub type Mac = [u8; MAC_LEN];

/// The per-connection marker key, absorbed into a hash state once.
#[derive(Clone)]
pub struct MarkerKey {
    keyed: Sha256,
}

// The key is a secret of the connection: never print it.
impl std::fmt::Debug for MarkerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkerKey(<redacted>)")
    }
}

impl MarkerKey {
    /// `key` must be unpredictable (the adapter draws it from the VM's
    /// random source for every connection).
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        let mut keyed = Sha256::new();
        keyed.update(CONTEXT);
        keyed.update(key);
        Self { keyed }
    }

    /// The keyed hash of marker `id`.
    pub fn mac(&self, id: u64) -> Mac {
        let digest = self.keyed.clone().chain_update(id.to_le_bytes()).finalize();
        let mut mac = [0u8; MAC_LEN];
        for (slot, byte) in mac.iter_mut().zip(digest.iter()) {
            *slot = *byte;
        }
        mac
    }
}

/// Appends the marker command for `id` with its `mac`.
pub fn write_command(out: &mut Vec<u8>, id: u64, mac: &Mac) {
    let mut name = Vec::with_capacity(TAG.len() + 21 + 2 * MAC_LEN);
    name.extend_from_slice(TAG);
    write_decimal(&mut name, id);
    name.push(b':');
    for byte in mac {
        name.push(hex_digit(byte >> 4));
        name.push(hex_digit(byte & 0xf));
    }
    write_array_header(out, 1);
    write_bulk(out, &name);
}

/// If `frame` (a complete top-level reply) has the form of a server's
/// answer to a marker, returns the marker's id and mac. The caller checks
/// that such a marker is pending and that the mac is its own.
pub fn parse_reply(frame: &[u8]) -> Option<(u64, Mac)> {
    if frame.first() != Some(&b'-') {
        return None;
    }
    let (_, line) = FrameReader::new(frame).line()?;
    let rest = line.strip_prefix(b"ERR unknown command ")?;
    // Redis 7 quotes the name with '...', Redis 6 and older with `...`.
    let (&quote, rest) = rest.split_first()?;
    if quote != b'\'' && quote != b'`' {
        return None;
    }
    let end = rest.iter().position(|&b| b == quote)?;
    parse_name(rest.get(..end)?)
}

/// Whether `a` and `b` are the same mac, in constant time.
pub fn same_mac(a: &Mac, b: &Mac) -> bool {
    a.ct_eq(b).into()
}

fn parse_name(name: &[u8]) -> Option<(u64, Mac)> {
    let rest = name.strip_prefix(TAG)?;
    let colon = rest.iter().position(|&b| b == b':')?;
    let id = crate::resp::parse_redis_int(rest.get(..colon)?)?;
    let hex = rest.get(colon + 1..)?;
    if hex.len() != 2 * MAC_LEN {
        return None;
    }
    let mut mac = [0u8; MAC_LEN];
    for (slot, pair) in mac.iter_mut().zip(hex.chunks(2)) {
        let [high, low] = pair else {
            return None;
        };
        *slot = (hex_value(*high)? << 4) | hex_value(*low)?;
    }
    Some((u64::try_from(id).ok()?, mac))
}

fn hex_digit(nibble: u8) -> u8 {
    b"0123456789abcdef"
        .get(usize::from(nibble & 0xf))
        .copied()
        .unwrap_or(b'0')
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MarkerKey {
        MarkerKey::new([7; KEY_LEN])
    }

    fn unknown_command_reply(command: &[u8], quote: u8) -> Vec<u8> {
        // What the server sends: the bulk's payload is the command name.
        let mut reader = FrameReader::new(command);
        reader.aggregate(b"*").unwrap();
        let name = reader.bulk().unwrap().unwrap();
        let mut reply = b"-ERR unknown command ".to_vec();
        reply.push(quote);
        reply.extend_from_slice(name);
        reply.push(quote);
        reply.extend_from_slice(b", with args beginning with: \r\n");
        reply
    }

    #[test]
    fn the_marker_is_an_unknown_command_named_by_id_and_mac() {
        let key = key();
        let mac = key.mac(7);
        let mut out = Vec::new();
        write_command(&mut out, 7, &mac);
        let name = format!(
            "era:7:{}",
            mac.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        assert_eq!(
            out,
            format!("*1\r\n${}\r\n{name}\r\n", name.len()).as_bytes()
        );
        assert_ne!(key.mac(7), key.mac(8));
        assert_ne!(MarkerKey::new([8; KEY_LEN]).mac(7), mac);
    }

    #[test]
    fn recognises_the_reply_in_both_quote_styles() {
        let key = key();
        let mac = key.mac(42);
        let mut command = Vec::new();
        write_command(&mut command, 42, &mac);
        for quote in [b'\'', b'`'] {
            let reply = unknown_command_reply(&command, quote);
            assert_eq!(parse_reply(&reply), Some((42, mac)));
        }
        // Redis before 6.0 printed no argument list.
        let reply = unknown_command_reply(&command, b'\'');
        let short = [
            &reply[..reply.iter().position(|&b| b == b',').unwrap()],
            b"\r\n",
        ]
        .concat();
        assert_eq!(parse_reply(&short), Some((42, mac)));
    }

    #[test]
    fn ignores_lookalikes() {
        let mac_hex = "00".repeat(MAC_LEN);
        for frame in [
            format!("$9\r\nera:1:{mac_hex}\r\n"),
            format!("+ERR unknown command 'era:1:{mac_hex}'\r\n"),
            format!("-ERR unknown command 'era:1:{mac_hex}\r\n"),
            format!("-ERR unknown command \"era:1:{mac_hex}\"\r\n"),
            format!("-ERR unknown command 'era:-1:{mac_hex}'\r\n"),
            format!("-ERR unknown command 'era:01:{mac_hex}'\r\n"),
            format!("-ERR unknown command 'era:1:{mac_hex}0'\r\n"),
            format!(
                "-ERR unknown command 'era:1:{}'\r\n",
                "0".repeat(2 * MAC_LEN - 1)
            ),
            format!(
                "-ERR unknown command 'era:1:{}'\r\n",
                "G".repeat(2 * MAC_LEN)
            ),
            format!("-ERR unknown command 'era:1:{}'\r\n", "AB".repeat(MAC_LEN)),
            format!("-ERR unknown command 'x', with args beginning with: 'era:1:{mac_hex}'\r\n"),
            "-ERR unknown command 'foo', with args beginning with: \r\n".to_string(),
            ":1\r\n".to_string(),
        ] {
            assert_eq!(parse_reply(frame.as_bytes()), None, "{frame:?}");
        }
        assert_eq!(
            parse_reply(format!("-ERR unknown command 'era:1:{mac_hex}'\r\n").as_bytes()),
            Some((1, [0; MAC_LEN]))
        );
    }

    #[test]
    fn macs_compare_in_full() {
        let mac = key().mac(1);
        let mut other = mac;
        other[MAC_LEN - 1] ^= 1;
        assert!(same_mac(&mac, &mac));
        assert!(!same_mac(&mac, &other));
    }

    #[test]
    fn the_key_is_not_printed() {
        assert_eq!(format!("{:?}", key()), "MarkerKey(<redacted>)");
    }
}
