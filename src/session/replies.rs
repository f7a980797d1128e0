//! The replies the filter writes itself, byte for byte as Redis writes
//! them (see `acl.c` `authCommand`, `networking.c` `helloCommand` and
//! `server.c` `processCommand`), where they are the same in every server
//! the proxy knows; the texts that differ are in `command::errors`.

use crate::command::{ServerTexts, ServerVersion};

/// The texts that are the same in every supported server live with the
/// command table (`command::errors`, one table per server); these names
/// are Redis 7.0's.
const TEXTS: &ServerTexts = ServerVersion::Redis70.texts();

pub const OK: &[u8] = b"+OK\r\n";
pub const RESET: &[u8] = b"+RESET\r\n";
pub const WRONGPASS: &[u8] = TEXTS.wrongpass;
pub const AUTH_WITHOUT_PASSWORD: &[u8] = TEXTS.auth_without_password;
pub const SYNTAX_ERROR: &[u8] = TEXTS.syntax_error;
pub const NOT_IN_TRANSACTION: &[u8] = TEXTS.not_in_transaction;
pub const HELLO_BAD_VERSION: &[u8] = TEXTS.hello_bad_version;
pub const NOPROTO: &[u8] = TEXTS.noproto;
pub const BAD_CLIENT_NAME: &[u8] = TEXTS.bad_client_name;
/// The proxy's own: `downstream.require_identity` and no mapped identity.
pub const IDENTITY_REQUIRED: &[u8] = b"-ERR envoy-redis-auth: AUTH is not accepted on this \
    connection: only clients with a mapped mTLS identity get in (downstream.require_identity)\r\n";
/// The proxy's own: see the README's "Per-user server identities".
pub const SWITCH_WITHOUT_REPLIES: &[u8] = b"-ERR envoy-redis-auth: cannot switch to this user's \
    server identity while CLIENT REPLY is OFF or SKIP (the proxy needs the server's reply to its \
    AUTH); the connection keeps its user\r\n";

/// Redis's reply to a command other than (P|S)(UN)SUBSCRIBE, PING, QUIT or
/// RESET on a RESP2 connection in subscribed mode.
pub fn pubsub_context_error(command: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"-ERR Can't execute '");
    out.extend_from_slice(command.as_bytes());
    out.extend_from_slice(
        b"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
}

/// `Syntax error in HELLO option '%s'`: the option is printed as a C string
/// (up to a NUL) and CR/LF become spaces.
pub fn hello_syntax_error(option: &[u8], out: &mut Vec<u8>) {
    let end = option.iter().position(|&b| b == 0).unwrap_or(option.len());
    let mut text = b"ERR Syntax error in HELLO option '".to_vec();
    text.extend_from_slice(option.get(..end).unwrap_or_default());
    text.push(b'\'');
    crate::resp::write_error(out, &text);
}

/// The reply every client request gets once the server has refused the
/// proxy's own credentials. `server_error` is the server's error line
/// without its leading `-` and CRLF.
pub fn upstream_auth_failed(server_error: &[u8], out: &mut Vec<u8>) {
    let mut text =
        b"ERR envoy-redis-auth: the Redis server rejected the proxy's credentials: ".to_vec();
    text.extend_from_slice(server_error);
    crate::resp::write_error(out, &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_redis() {
        let mut out = Vec::new();
        pubsub_context_error("auth", &mut out);
        assert_eq!(
            out,
            b"-ERR Can't execute 'auth': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
        );
        out.clear();
        hello_syntax_error(b"FOO\r\nx\0hidden", &mut out);
        assert_eq!(out, b"-ERR Syntax error in HELLO option 'FOO  x'\r\n");
    }
}
