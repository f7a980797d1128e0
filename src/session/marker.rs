//! Markers: how a reply the filter makes itself reaches the client in order.
//!
//! A network filter can only write to the client while server bytes pass
//! through it. So for every command the filter answers itself, it sends the
//! server a harmless command carrying a per-connection nonce, and when the
//! server's reply to that command comes back, swaps it for the local reply.
//! Because the server answers in order, the local reply lands exactly where
//! the client expects it in a pipeline.
//!
//! - Normally the marker is `PING <nonce>`; the reply is the bulk `<nonce>`,
//!   or `*2 pong <nonce>` while a RESP2 connection is subscribed.
//! - Inside `MULTI`, a `PING` would be queued, so the marker is an unknown
//!   command named `<nonce>`. Redis rejects it at once with an error that
//!   quotes the name, and flags the transaction so `EXEC` aborts, which is
//!   what Redis does for any command rejected while queueing.
//!
//! Replies are recognised by content, not by counting, so pub/sub messages,
//! RESP3 pushes, `MONITOR` output or `CLIENT REPLY OFF` cannot shift them.
//! The nonce is random per connection and never shown to the client.

use crate::resp::reply::FrameReader;
use crate::resp::{write_array_header, write_bulk, write_decimal};

const TAG: &[u8] = b"era:";
/// `era:` + 16 hex digits + `:`.
pub const PREFIX_LEN: usize = 21;

/// The per-connection nonce prefix; a marker's nonce is this plus its id.
#[derive(Clone, Copy)]
pub struct Nonce {
    prefix: [u8; PREFIX_LEN],
}

impl Nonce {
    pub fn new(seed: u64) -> Self {
        let mut prefix = [0u8; PREFIX_LEN];
        let hex = b"0123456789abcdef";
        for (slot, byte) in prefix.iter_mut().zip(TAG) {
            *slot = *byte;
        }
        for (i, slot) in prefix.iter_mut().skip(TAG.len()).take(16).enumerate() {
            let nibble = (seed >> (60 - 4 * i)) & 0xf;
            *slot = hex.get(nibble as usize).copied().unwrap_or(b'0');
        }
        if let Some(last) = prefix.last_mut() {
            *last = b':';
        }
        Self { prefix }
    }

    fn write_nonce(&self, out: &mut Vec<u8>, id: u64) {
        let mut nonce = Vec::with_capacity(PREFIX_LEN + 20);
        nonce.extend_from_slice(&self.prefix);
        write_decimal(&mut nonce, id);
        write_bulk(out, &nonce);
    }

    /// Appends the marker command for `id`.
    pub fn write_command(&self, out: &mut Vec<u8>, id: u64, in_multi: bool) {
        if in_multi {
            write_array_header(out, 1);
        } else {
            write_array_header(out, 2);
            write_bulk(out, b"PING");
        }
        self.write_nonce(out, id);
    }

    /// If `frame` (a complete top-level reply) is the server's answer to one
    /// of this connection's markers, returns the marker's id.
    pub fn match_reply(&self, frame: &[u8]) -> Option<u64> {
        let mut reader = FrameReader::new(frame);
        match frame.first()? {
            b'$' => {
                let nonce = reader.bulk()??;
                reader.is_done().then_some(())?;
                self.parse(nonce)
            }
            b'*' => {
                (reader.aggregate(b"*")? == 2).then_some(())?;
                (reader.bulk()?? == b"pong").then_some(())?;
                let nonce = reader.bulk()??;
                reader.is_done().then_some(())?;
                self.parse(nonce)
            }
            b'-' => {
                let (_, line) = reader.line()?;
                let rest = line.strip_prefix(b"ERR unknown command '")?;
                let end = rest.iter().position(|&b| b == b'\'')?;
                self.parse(rest.get(..end)?)
            }
            _ => None,
        }
    }

    fn parse(&self, nonce: &[u8]) -> Option<u64> {
        let digits = nonce.strip_prefix(&self.prefix[..])?;
        let id = crate::resp::parse_redis_int(digits)?;
        u64::try_from(id).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_ping_and_unknown_command_markers() {
        let nonce = Nonce::new(0x0123_4567_89ab_cdef);
        let mut out = Vec::new();
        nonce.write_command(&mut out, 7, false);
        assert_eq!(
            out,
            b"*2\r\n$4\r\nPING\r\n$22\r\nera:0123456789abcdef:7\r\n"
        );
        out.clear();
        nonce.write_command(&mut out, 12, true);
        assert_eq!(out, b"*1\r\n$23\r\nera:0123456789abcdef:12\r\n");
    }

    #[test]
    fn recognises_every_form_of_the_reply() {
        let nonce = Nonce::new(0x0123_4567_89ab_cdef);
        let id = nonce.match_reply(b"$22\r\nera:0123456789abcdef:7\r\n");
        assert_eq!(id, Some(7));
        let pong = b"*2\r\n$4\r\npong\r\n$23\r\nera:0123456789abcdef:42\r\n";
        assert_eq!(nonce.match_reply(pong), Some(42));
        let unknown =
            b"-ERR unknown command 'era:0123456789abcdef:9', with args beginning with: \r\n";
        assert_eq!(nonce.match_reply(unknown), Some(9));
    }

    #[test]
    fn ignores_lookalikes() {
        let nonce = Nonce::new(0x0123_4567_89ab_cdef);
        let other = Nonce::new(1);
        let mut out = Vec::new();
        other.write_command(&mut out, 1, false);
        for frame in [
            &b"$22\r\nera:0000000000000001:7\r\n"[..],
            b"$3\r\nfoo\r\n",
            b"$-1\r\n",
            b"+OK\r\n",
            b"*2\r\n$4\r\nPONG\r\n$22\r\nera:0123456789abcdef:7\r\n",
            b"*3\r\n$4\r\npong\r\n$22\r\nera:0123456789abcdef:7\r\n:1\r\n",
            b"$23\r\nera:0123456789abcdef:-1\r\n",
            b"$21\r\nera:0123456789abcdef:\r\n",
            b"-ERR unknown command 'foo', with args beginning with: \r\n",
            b":1\r\n",
        ] {
            assert_eq!(nonce.match_reply(frame), None, "{frame:?}");
        }
    }
}
