"""Redis is the oracle: the filter must answer exactly like a real Redis.

Every input goes, on fresh connections, to (a) Envoy with our filter in
front of a Redis whose password the client never learns, and (b) a plain
redis-server configured with the *client-side* credentials (the default
user's password and ACL user alice). The bytes the client gets back and
whether the connection was closed must be identical, whole, byte by byte and
in random chunks.
"""

from __future__ import annotations

import re
import uuid

import pytest

from harness import raw_exchange, resp
from harness.resp import command as C

CLIENT_PASSWORD = "testredis123!"
ALICE = "user alice on >alicepw ~* &* +@all"

FILTER_CONFIG = {
    "downstream": {"password": CLIENT_PASSWORD, "users": [ALICE], "max_auth_failures": 0},
    "upstream": {"password": {"env": "REDIS_PASSWORD"}},
}

AUTH = C("AUTH", CLIENT_PASSWORD)
KEY = f"diff:{uuid.uuid4().hex}"

# (name, payload). Post-auth commands are ones whose reply does not depend on
# the data already in the server (both servers start empty).
CASES = [
    # Before authentication: Redis's checks in processCommand order.
    ("noauth", C("GET", "k") + C("PING") + C("MULTI") + C("EXEC")),
    ("noauth inline", b"SET k v\r\nping\r\n"),
    ("unknown command", C("NOSUCH", "a", "b")),
    ("unknown command, long", C("X" * 200, "y" * 200, "z")),
    ("wrong arity", C("GET") + C("SET", "a")),
    ("unknown subcommand", C("CLIENT", "NOSUCH")),
    ("subcommand arity", C("CONFIG", "GET")),
    ("protected command", C("DEBUG", "SLEEP", "0")),
    ("empty commands", b"\r\n*0\r\n   \r\n" + C("PING")),
    # AUTH.
    ("auth arity", C("AUTH")),
    ("auth syntax", C("AUTH", "a", "b", "c")),
    ("auth wrong", C("AUTH", "wrong") + C("AUTH", "")),
    ("auth wrong user password", C("AUTH", "alice", "wrong")),
    ("auth unknown user", C("AUTH", "nobody", "x")),
    ("usernames are case-sensitive", C("AUTH", "ALICE", "alicepw")),
    ("auth default password", AUTH + C("PING") + C("ECHO", "hi")),
    ("auth default user by name", C("AUTH", "default", CLIENT_PASSWORD) + C("PING")),
    ("auth alice", C("AUTH", "alice", "alicepw") + C("PING")),
    ("auth lowercase inline", b"auth testredis123!\r\nping\r\n"),
    ("failed re-auth keeps identity", C("AUTH", "alice", "alicepw") + C("AUTH", "alice", "bad") + C("PING")),
    ("re-auth as another user", C("AUTH", "alice", "alicepw") + AUTH + C("PING")),
    ("auth after auth failure", C("AUTH", "nope") + AUTH + C("ECHO", "in")),
    # HELLO.
    ("hello unauthenticated", C("HELLO") + C("HELLO", "3") + C("HELLO", "2")),
    ("hello noproto", C("HELLO", "4") + C("HELLO", "1") + C("HELLO", "-3")),
    ("hello bad version", C("HELLO", "three") + C("HELLO", "03") + C("HELLO", "")),
    ("hello auth arity", C("HELLO", "3", "AUTH", "alice")),
    ("hello bad option", C("HELLO", "3", "FOO") + C("HELLO", "3", "SETNAME")),
    ("hello wrong password", C("HELLO", "3", "AUTH", "alice", "wrong")),
    ("hello auth resp2", C("HELLO", "2", "AUTH", "alice", "alicepw") + C("PING")),
    ("hello auth resp3", C("HELLO", "3", "AUTH", "default", CLIENT_PASSWORD) + C("PING")),
    (
        "hello auth setname",
        C("HELLO", "3", "AUTH", "alice", "alicepw", "SETNAME", "app") + C("CLIENT", "GETNAME"),
    ),
    ("hello bad client name after auth", C("HELLO", "3", "AUTH", "alice", "alicepw", "SETNAME", "a b") + C("PING")),
    ("hello auth then bad option", C("HELLO", "2", "AUTH", "alice", "alicepw", "BOGUS") + C("PING")),
    ("hello after auth", AUTH + C("HELLO", "3") + C("PING") + C("HELLO", "2") + C("PING")),
    ("hello after auth with wrong auth", AUTH + C("HELLO", "3", "AUTH", "alice", "bad") + C("PING")),
    # QUIT and RESET.
    ("quit before auth", C("QUIT") + C("PING")),
    ("quit after auth", AUTH + C("QUIT") + C("PING")),
    ("reset before auth", C("RESET") + C("PING")),
    (
        "reset logs out and auth works again",
        AUTH + C("RESET") + C("PING") + C("AUTH", "alice", "alicepw") + C("PING"),
    ),
    (
        "reset leaves resp3, subscriptions and multi",
        C("HELLO", "3", "AUTH", "alice", "alicepw")
        + C("SUBSCRIBE", "diff-ch")
        + C("RESET")
        + AUTH
        + C("MULTI")
        + C("RESET")
        + C("ECHO", "after"),
    ),
    # After authentication the stream is Redis's own.
    ("pipelined mixture", C("GET", "a") + C("AUTH", "bad") + AUTH + C("ECHO", "ok") + C("RESET") + C("GET", "a")),
    (
        "data commands",
        AUTH + C("SET", KEY, "v") + C("GET", KEY) + C("APPEND", KEY, "w") + C("DEL", KEY) + C("GET", KEY),
    ),
    ("multi exec", AUTH + C("MULTI") + C("ECHO", "a") + C("ECHO", "b") + C("EXEC")),
    ("multi discard", AUTH + C("MULTI") + C("PING") + C("DISCARD") + C("PING")),
    # (UNSUBSCRIBE names its channels: without them the order of the replies
    # follows the server's hash table, which differs between servers.)
    (
        "resp2 subscribe",
        AUTH + C("SUBSCRIBE", "diff-a", "diff-b") + C("PING") + C("PING", "x") + C("UNSUBSCRIBE", "diff-b", "diff-a"),
    ),
    ("resp3 subscribe", C("HELLO", "3", "AUTH", "alice", "alicepw") + C("SUBSCRIBE", "diff-c") + C("PING")),
    ("binary payload", AUTH + C("ECHO", b"\r\n+OK\r\n$-1\r\n\x00\xff")),
    ("authenticated bulk limits", AUTH + C("ECHO", "x" * 20000)),
    ("inline quoting", AUTH + b'ECHO "a\\x41\\n\\q"\r\nECHO \'it\\\'s\'\r\n'),
    # Protocol errors: the error, then the connection is closed.
    ("invalid multibulk length", b"*x\r\n" + C("PING")),
    ("invalid bulk length", b"*1\r\n$x\r\n"),
    ("negative bulk length", b"*1\r\n$-1\r\n"),
    ("expected dollar", b"*1\r\nx\r\n"),
    ("unbalanced quotes", b'SET "a b\r\n'),
    ("closing quote not followed by a space", b'SET "a"b\r\n'),
    ("unauthenticated multibulk length", b"*11\r\n"),
    ("unauthenticated bulk length", b"*1\r\n$16385\r\n"),
    ("too big inline request", b"x" * 70000),
    ("errors after replies", C("PING") + C("AUTH", "bad") + b"*1\r\n$x\r\n" + C("PING")),
    ("protocol error after auth", AUTH + C("PING") + b"*1\r\nx\r\n" + C("PING")),
    # Redis closes without a word. (It also drops replies still buffered for
    # earlier commands, which depends on timing, so nothing precedes these.)
    ("cross-protocol attack", b"POST / HTTP/1.1\r\nHost: redis\r\n\r\n"),
    ("cross-protocol attack, host", b"Host: example.com\r\n" + C("PING")),
]

CHUNKINGS = ["whole", "byte", "random"]

# HELLO's map carries the connection id, which differs between servers.
_ID = re.compile(rb"(\$2\r\nid\r\n):\d+\r\n")


def normalise(data: bytes) -> bytes:
    return _ID.sub(rb"\1:<id>\r\n", data)


@pytest.fixture(scope="module")
def endpoints(session_redis_factory, session_envoy_factory):
    server = session_redis_factory("password", name="diff-upstream")
    proxied = session_envoy_factory(
        server,
        plugin_config=FILTER_CONFIG,
        host_env={"REDIS_PASSWORD": server.password},
        name="diff-envoy",
    )
    reference = session_redis_factory(
        "password",
        password=CLIENT_PASSWORD,
        # The reference behaves like a default redis-server: DEBUG refused.
        extra_conf=[ALICE, "enable-debug-command no"],
        name="diff-reference",
    )
    return proxied, reference


def exchange(endpoint, payload: bytes, chunking: str, **kw):
    if chunking == "byte" and len(payload) > 2000:
        chunking, kw["max_chunk"] = "random", 4096
    return raw_exchange(endpoint, payload, chunking, seed=7, pause=0 if len(payload) > 2000 else None, **kw)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("name,payload", CASES, ids=[c[0] for c in CASES])
def test_same_bytes_as_redis(endpoints, name, payload, chunking):
    proxied, reference = endpoints
    expected = exchange(reference, payload, chunking, idle_timeout=0.3)
    assert expected.data or expected.closed, f"the reference did nothing with {name!r}"
    if expected.closed:
        got = exchange(proxied, payload, chunking, idle_timeout=2.0)
    else:
        got = exchange(proxied, payload, chunking, until_replies=len(expected.replies), idle_timeout=2.0)
    assert normalise(got.data) == normalise(expected.data)
    assert got.closed == expected.closed, "closed" if expected.closed else "left open"


# Without `downstream` the proxy owns no identities: the client's AUTH and
# HELLO ... AUTH go to the server, which judges them against its own users;
# the proxy logs the connection in with its credentials first, and again
# after RESET.
SERVER_USER = "user carol on >carolpw ~* &* +@all"
NO_DOWNSTREAM_CASES = [
    ("commands need no auth", C("ECHO", "hi") + C("HELLO", "2") + C("PING")),
    ("auth with a wrong password", C("AUTH", "x") + C("PING")),
    ("auth as a server user", C("AUTH", "carol", "carolpw") + C("ACL", "WHOAMI")),
    ("auth as an unknown user", C("AUTH", "alice", "x") + C("ACL", "WHOAMI")),
    ("hello auth as a server user", C("HELLO", "3", "AUTH", "carol", "carolpw") + C("ACL", "WHOAMI")),
    ("hello auth wrong", C("HELLO", "3", "AUTH", "default", "x") + C("PING")),
]


@pytest.fixture(scope="module")
def server_auth_endpoints(session_redis_factory, session_envoy_factory):
    server = session_redis_factory("password", extra_conf=[SERVER_USER], name="no-downstream-upstream")
    proxied = session_envoy_factory(
        server,
        plugin_config={"upstream": {"password": {"env": "REDIS_PASSWORD"}}},
        host_env={"REDIS_PASSWORD": server.password},
        name="no-downstream-envoy",
    )
    return proxied, server


@pytest.mark.parametrize("chunking", ["whole", "byte"])
@pytest.mark.parametrize("name,payload", NO_DOWNSTREAM_CASES, ids=[c[0] for c in NO_DOWNSTREAM_CASES])
def test_without_downstream_the_server_judges_auth(server_auth_endpoints, name, payload, chunking):
    proxied, server = server_auth_endpoints
    # The reference: the same server, logged in as the proxy would be.
    login = C("AUTH", server.password)
    expected = exchange(server, login + payload, chunking, idle_timeout=0.3)
    assert expected.replies[0] == resp.Simple("OK")
    got = exchange(proxied, payload, chunking, until_replies=len(expected.replies) - 1, idle_timeout=2.0)
    assert normalise(got.data) == normalise(expected.data[len(b"+OK\r\n") :])
    assert got.closed == expected.closed


@pytest.mark.parametrize("chunking", ["whole", "byte"])
def test_without_downstream_reset_logs_back_in_as_the_proxy(server_auth_endpoints, chunking):
    # Redis would leave the connection logged out (NOAUTH); the proxy logs
    # it back in with its own credentials, as when it connected.
    proxied, _ = server_auth_endpoints
    payload = C("AUTH", "carol", "carolpw") + C("ACL", "WHOAMI") + C("RESET") + C("ACL", "WHOAMI") + C("PING")
    got = exchange(proxied, payload, chunking, until_replies=5, idle_timeout=2.0)
    assert got.data == b"+OK\r\n$5\r\ncarol\r\n+RESET\r\n$7\r\ndefault\r\n+PONG\r\n"


def test_auth_on_a_subscribed_resp2_connection(endpoints):
    # Once the server has confirmed the subscription, AUTH and HELLO get
    # Redis's context error. (Pipelined right behind SUBSCRIBE, the filter
    # answers before it has seen the confirmation; see the README.)
    proxied, reference = endpoints
    pieces = [
        AUTH + C("SUBSCRIBE", "ctx"),
        C("AUTH", CLIENT_PASSWORD) + C("HELLO", "3", "AUTH", "alice", "alicepw") + C("AUTH") + C("PING"),
    ]
    expected = raw_exchange(reference, pieces, "whole", pause=0.3, idle_timeout=0.3)
    got = raw_exchange(proxied, pieces, "whole", pause=0.3, until_replies=len(expected.replies))
    assert b"Can't execute 'auth'" in expected.data
    assert got.data == expected.data
