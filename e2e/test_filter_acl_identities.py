"""Per-user server identities, the proxy's ACL LOG, the denial counters and
large values past the ACL check: through real Envoy (two workers) with the
filter, in front of a real redis-server 7.0, and compared with a real
redis-server holding the same ACL lines where Redis defines the answer.

Per-user server identities (a `downstream.users` entry
`{"acl": …, "upstream": {…}}`). The server's users differ per identity
(`user default off`, `proxy`, `bob-srv`, and `carol-srv`, which may only
touch `carol:*`), so what the server thinks of a filtered connection shows
in its `CLIENT INFO` / `CLIENT LIST` (`user=`); `ACL WHOAMI` is the filter's
own answer (the client's user). Checked: AUTH and HELLO … AUTH as a user
with and without its own identity, re-AUTH, a failed re-AUTH (the identity
stays), RESET (back to the top-level identity, or to the default user's own
one), CLIENT REPLY OFF around the switch, the switch taking effect for the
very next pipelined command (a narrower server identity refuses it), an
identity the server rejects (the proxy's error on every later reply, the
log line naming the user), and, from a recording relay, the exact `AUTH`s
the server gets and that no client password ever reaches it.

ACL LOG: the same denials and failed AUTHs (command, key, channel, auth;
toplevel and multi; grouping within and beyond Redis's ten-entry window;
the 128-entry bound; `ACL LOG <count>`, `RESET` and bad arguments, RESP2 and
RESP3) on the filter and on a reference redis-server: the replies are the
same bytes once `age-seconds` and `client-info` (which differ by nature) are
blanked. Denials from connections on both Envoy workers (the worker of each
connection is learnt from the listener's per-worker stats) land in one log,
every one counted, and both workers read and reset the same log.

Counters: `wasmcustom.redis_auth.denied_{command,key,channel}` and
`…user.<name>.denied_*` in `/stats` and `/stats/prometheus` count every
denial; the log lines (first ten per connection, then every hundredth) name
user, command, reason and client address, never the key.

Large values: `SET w:big <8 MiB>` streams through and reads back whole;
`SET other <8 MiB>` is refused with Redis's NOPERM, never reaches the
server, and the connection goes on.

Three tests pin down bugs these tests found and the filter fixed: a
refused per-user identity runs nothing the client sent after its AUTH (and
the connection closes); `CLIENT REPLY SKIP` before an AUTH that would switch
identity leaves the user as it was (the proxy needs the server's reply);
per-user counter names never fold two users together. About 16 s.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from types import SimpleNamespace

import pytest

from harness import raw_exchange, resp, wait_until
from harness.resp import command as C

NOPERM_KEY = b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
NOPERM_CHANNEL = b"-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
NOAUTH = b"-NOAUTH Authentication required.\r\n"


def noperm_command(name: str) -> bytes:
    return b"-NOPERM this user has no permissions to run the '%s' command\r\n" % name.encode()


def rejected(server_error: bytes) -> bytes:
    return b"-ERR envoy-redis-auth: the Redis server rejected the proxy's credentials: " + server_error + b"\r\n"


class Conn:
    """A client connection that stays open: send commands, read exactly the
    replies asked for (raw bytes kept)."""

    def __init__(self, endpoint, timeout: float = 10.0):
        self.sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    @property
    def addr(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def send(self, *cmds) -> None:
        self.sock.sendall(b"".join(C(*c) for c in cmds))

    def read(self, n: int) -> tuple[list, bytes]:
        """The next n replies, decoded, and their bytes."""
        while True:
            values, pos = [], 0
            try:
                for _ in range(n):
                    v, pos = resp.parse_one(self.buf, pos)
                    values.append(v)
            except resp.Incomplete:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise EOFError(f"closed after {self.buf[:300]!r}") from None
                self.buf += data
                continue
            raw, self.buf = self.buf[:pos], self.buf[pos:]
            return values, raw

    def call(self, *cmds, replies: int | None = None) -> tuple[list, bytes]:
        self.send(*cmds)
        return self.read(len(cmds) if replies is None else replies)

    def wait_closed(self, timeout: float = 10.0) -> None:
        """Nothing more arrives, and the peer closes."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(1 << 16)
        assert data == b"" and self.buf == b"", f"more after the close: {self.buf + data!r}"

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def connect(scope):
    """connect(endpoint) -> Conn, closed at the end of the test."""

    def make(endpoint) -> Conn:
        c = Conn(endpoint)
        scope.closers.append(c.close)
        return c

    return make


def info_user(info) -> str:
    """The `user=` field of a CLIENT INFO / CLIENT LIST line."""
    text = info.decode() if isinstance(info, bytes) else str(info)
    m = re.search(r"(?:^|\s)user=(\S+)", text)
    assert m, f"no user= in {text!r}"
    return m.group(1)


def server_commands(conn) -> list[list[bytes]]:
    """The commands a relay connection carried to the server, the filter's
    markers (`era:…`) left out."""
    cmds = resp.parse_all(conn.to_server)
    return [c for c in cmds if not c[0].startswith(b"era:")]


def auths(conn) -> list[bytes]:
    """The user names of the AUTHs the server got on a relay connection."""
    return [c[1] for c in server_commands(conn) if c[0].upper() == b"AUTH"]


# ====================================================================
# Per-user server identities

SERVER_USERS = [
    "user default off",
    "user proxy on >proxypw ~* &* +@all",
    "user bob-srv on >bobsrvpw ~* &* +@all",
    "user carol-srv on >carolsrvpw ~carol:* &* +@all",
]
CLIENT_PASSWORDS = [b"alicepw", b"bobpw", b"carolpw", b"evepw"]
IDENTITY_CONFIG = {
    "downstream": {
        "users": [
            "user alice on >alicepw ~* &* +@all",
            {"acl": "user bob on >bobpw ~* &* +@all", "upstream": {"username": "bob-srv", "password": "bobsrvpw"}},
            {
                "acl": "user carol on >carolpw ~* &* +@all",
                "upstream": {"username": "carol-srv", "password": {"env": "CAROL_SRV_PASSWORD"}},
            },
            # The server refuses eve's identity: wrong password.
            {"acl": "user eve on >evepw ~* &* +@all", "upstream": {"username": "bob-srv", "password": "not-bobs"}},
        ],
        "max_auth_failures": 0,
    },
    "upstream": {"username": "proxy", "password": "proxypw"},
}
# The client-side users, for a reference redis-server.
REFERENCE_USERS = ["user default off", "user alice on >alicepw ~* &* +@all", "user bob on >bobpw ~* &* +@all"]


@pytest.fixture
def identities(redis_factory, relay_factory, envoy_factory):
    server = redis_factory("acl", acl_users=SERVER_USERS, name="identities")
    relay = relay_factory(server)
    envoy = envoy_factory(relay, plugin_config=IDENTITY_CONFIG, host_env={"CAROL_SRV_PASSWORD": "carolsrvpw"})
    # Straight to the server, as `proxy`.
    admin = server.client()
    assert admin.acl_whoami() == "proxy"
    return SimpleNamespace(server=server, relay=relay, envoy=envoy, admin=admin)


def no_client_password_reached(relay) -> None:
    seen = relay.to_server()
    for pw in CLIENT_PASSWORDS:
        assert pw not in seen, f"the client password {pw!r} reached the server"


@pytest.mark.parametrize("chunking", ["whole", "byte"])
def test_server_identity_follows_the_client_user(identities, chunking):
    ids = identities
    steps = [
        (("AUTH", "alice", "alicepw"), b"+OK\r\n"),
        (("CLIENT", "INFO"), "proxy"),
        (("ACL", "WHOAMI"), b"$5\r\nalice\r\n"),
        (("AUTH", "bob", "bobpw"), b"+OK\r\n"),
        (("CLIENT", "INFO"), "bob-srv"),
        (("ACL", "WHOAMI"), b"$3\r\nbob\r\n"),
        # A failed re-AUTH keeps bob, and bob's server identity.
        (("AUTH", "alice", "wrong"), WRONGPASS),
        (("CLIENT", "INFO"), "bob-srv"),
        (("AUTH", "alice", "alicepw"), b"+OK\r\n"),
        (("CLIENT", "INFO"), "proxy"),
        (("AUTH", "bob", "bobpw"), b"+OK\r\n"),
        (("AUTH", "bob", "bobpw"), b"+OK\r\n"),
        (("CLIENT", "INFO"), "bob-srv"),
        (("HELLO", "2", "AUTH", "alice", "alicepw"), None),
        (("CLIENT", "INFO"), "proxy"),
        (("HELLO", "3", "AUTH", "bob", "bobpw"), None),
        (("CLIENT", "INFO"), "bob-srv"),
        (("ACL", "WHOAMI"), b"$3\r\nbob\r\n"),
    ]
    payload = b"".join(C(*cmd) for cmd, _ in steps)
    r = raw_exchange(ids.envoy, payload, chunking, until_replies=len(steps), timeout=20)
    assert not r.closed
    values, rest = resp.split_replies(r.data)
    assert rest == b"" and len(values) == len(steps), r
    pos = 0
    for (cmd, want), value in zip(steps, values):
        _, end = resp.parse_one(r.data, pos)
        got = r.data[pos:end]
        pos = end
        if isinstance(want, bytes):
            assert got == want, (cmd, got)
        elif isinstance(want, str):
            assert info_user(value) == want, (cmd, value)
        else:  # HELLO: the server's own reply, in the protocol asked for
            assert got.startswith(b"*14\r\n" if cmd[1] == "2" else b"%7\r\n"), got[:40]
    # What the server was sent: the proxy's AUTH on connect, then one AUTH
    # per change of identity (none for a failed re-AUTH or an AUTH as the
    # identity it already has), and HELLO without its AUTH option.
    (conn,) = ids.relay.connections
    assert auths(conn) == [b"proxy", b"bob-srv", b"proxy", b"bob-srv", b"proxy", b"bob-srv"]
    hellos = [c for c in server_commands(conn) if c[0].upper() == b"HELLO"]
    assert hellos == [[b"HELLO", b"2"], [b"HELLO", b"3"]]
    assert C("AUTH", "bob-srv", "bobsrvpw") in conn.to_server
    no_client_password_reached(ids.relay)


def test_reset_goes_back_to_the_top_level_identity(identities, connect):
    ids = identities
    c = connect(ids.envoy)

    def seen_by_server(client_id: int) -> str:
        return info_user(ids.admin.execute_command("CLIENT", "LIST", "ID", client_id))

    assert c.call(("AUTH", "bob", "bobpw"))[1] == b"+OK\r\n"
    (cid,), _ = c.call(("CLIENT", "ID"))
    assert seen_by_server(cid) == "bob-srv"
    # RESET logs the client out; the local NOAUTH rides behind the proxy's
    # AUTH, so once it is here the server connection is the proxy's again.
    assert c.call(("RESET",), ("CLIENT", "INFO"))[1] == b"+RESET\r\n" + NOAUTH
    assert seen_by_server(cid) == "proxy"
    # HELLO 3 AUTH bob, then RESET: back to proxy, and to RESP2.
    hello, _ = c.call(("HELLO", "3", "AUTH", "bob", "bobpw"))
    assert hello[0][b"proto"] == 3
    assert seen_by_server(cid) == "bob-srv"
    assert c.call(("RESET",), ("ACL", "WHOAMI"))[1] == b"+RESET\r\n" + NOAUTH
    line = ids.admin.execute_command("CLIENT", "LIST", "ID", cid)
    assert info_user(line) == "proxy" and " resp=2" in line
    # Pipelined: bob, RESET, alice.
    values, _ = c.call(("AUTH", "bob", "bobpw"), ("RESET",), ("AUTH", "alice", "alicepw"), ("CLIENT", "INFO"))
    assert values[:3] == ["OK", "RESET", "OK"]
    assert info_user(values[3]) == "proxy"
    (conn,) = ids.relay.connections
    assert auths(conn) == [b"proxy", b"bob-srv", b"proxy", b"bob-srv", b"proxy", b"bob-srv", b"proxy"]
    no_client_password_reached(ids.relay)


def test_default_user_with_its_own_identity(identities, envoy_factory):
    # A nopass default user with its own upstream: the connection starts as
    # that identity and RESET comes back to it.
    ids = identities
    ids.admin.execute_command("ACL", "SETUSER", "dflt-srv", "on", ">dfltpw", "~*", "&*", "+@all")
    config = {
        "downstream": {
            "users": [
                "user alice on >alicepw ~* &* +@all",
                {"acl": "user bob on >bobpw ~* &* +@all", "upstream": {"username": "bob-srv", "password": "bobsrvpw"}},
                {
                    "acl": "user default on nopass ~* &* +@all",
                    "upstream": {"username": "dflt-srv", "password": "dfltpw"},
                },
            ]
        },
        "upstream": {"username": "proxy", "password": "proxypw"},
    }
    envoy = envoy_factory(ids.relay, plugin_config=config, name="envoy-default-identity")
    cmds = [
        ("CLIENT", "INFO"),
        ("AUTH", "alice", "alicepw"),
        ("CLIENT", "INFO"),
        ("RESET",),
        ("CLIENT", "INFO"),
        ("AUTH", "bob", "bobpw"),
        ("CLIENT", "INFO"),
        ("AUTH", "default", "anything"),
        ("CLIENT", "INFO"),
    ]
    r = raw_exchange(envoy, resp.commands(*cmds), until_replies=len(cmds))
    v = r.replies
    assert [v[1], v[3], v[5], v[7]] == ["OK", "RESET", "OK", "OK"]
    assert [info_user(v[i]) for i in (0, 2, 4, 6, 8)] == ["dflt-srv", "proxy", "dflt-srv", "bob-srv", "dflt-srv"]


@pytest.mark.parametrize("chunking", ["whole", "byte"])
def test_the_next_command_runs_as_the_new_identity(identities, chunking):
    # carol's server identity may only touch carol:*: the command right
    # behind the AUTH, in the same write, must already meet it.
    ids = identities
    payload = resp.commands(
        ("AUTH", "carol", "carolpw"),
        ("SET", "outside:1", "v"),
        ("SET", "carol:1", "v"),
        ("AUTH", "alice", "alicepw"),
        ("SET", "outside:2", "v"),
        ("AUTH", "carol", "carolpw"),
        ("GET", "outside:2"),
    )
    r = raw_exchange(ids.envoy, payload, chunking, until_replies=7)
    assert r.data == b"+OK\r\n" + NOPERM_KEY + b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n" + NOPERM_KEY
    assert ids.admin.exists("outside:1") == 0
    assert ids.admin.exists("outside:2") == 1 and ids.admin.exists("carol:1") == 1
    # The server's own ACL LOG blames carol-srv, twice.
    log = ids.admin.acl_log()
    assert [(e["reason"], e["object"], e["username"], e["count"]) for e in log] == [
        ("key", "outside:2", "carol-srv", 1),
        ("key", "outside:1", "carol-srv", 1),
    ]
    no_client_password_reached(ids.relay)


def test_client_reply_off_around_the_switch(identities, redis_factory):
    # Redis sends no reply to AUTH while CLIENT REPLY OFF. The proxy needs
    # the server's reply to its own AUTH to switch identity, so under OFF
    # it refuses an AUTH that would switch (silently: replies are off) and
    # the connection keeps its user, where Redis would switch: a documented
    # difference (README, "Per-user server identities").
    ids = identities
    reference = redis_factory("acl", acl_users=REFERENCE_USERS, name="reference")
    payload = resp.commands(
        ("AUTH", "alice", "alicepw"),
        ("CLIENT", "REPLY", "OFF"),
        ("AUTH", "bob", "bobpw"),
        ("CLIENT", "REPLY", "ON"),
        ("ACL", "WHOAMI"),
        ("AUTH", "alice", "alicepw"),
        ("ECHO", "x"),
    )
    want = raw_exchange(reference, payload, until_replies=5)
    assert want.data == b"+OK\r\n+OK\r\n$3\r\nbob\r\n+OK\r\n$1\r\nx\r\n"
    got = raw_exchange(ids.envoy, payload + C("AUTH", "bob", "bobpw") + C("CLIENT", "INFO"), until_replies=7)
    assert got.data.startswith(b"+OK\r\n+OK\r\n$5\r\nalice\r\n+OK\r\n$1\r\nx\r\n")
    assert got.replies[5] == "OK" and info_user(got.replies[6]) == "bob-srv"
    (conn,) = ids.relay.connections
    assert auths(conn) == [b"proxy", b"bob-srv"]


def test_client_reply_skip_before_a_switch(identities, redis_factory):
    ids = identities
    reference = redis_factory("acl", acl_users=REFERENCE_USERS, name="reference")
    payload = resp.commands(
        ("AUTH", "alice", "alicepw"),
        ("CLIENT", "REPLY", "SKIP"),
        ("AUTH", "bob", "bobpw"),
        ("ECHO", "after"),
        ("AUTH", "alice", "alicepw"),
        ("ECHO", "x"),
    )
    want = raw_exchange(reference, payload, until_replies=4)
    assert want.data == b"+OK\r\n$5\r\nafter\r\n+OK\r\n$1\r\nx\r\n"
    got = raw_exchange(ids.envoy, payload, until_replies=4)
    assert got.data == want.data


def test_rejected_identity_fails_that_client_clearly(identities, connect):
    ids = identities
    err = rejected(WRONGPASS[1:-2])
    c = connect(ids.envoy)
    assert c.call(("AUTH", "eve", "evepw"))[1] == err
    # Then the connection is closed: nothing more runs on it.
    c.wait_closed()
    ids.envoy.wait_log(
        re.escape(
            "envoy-redis-auth: the Redis server rejected the proxy's AUTH (WRONGPASS invalid "
            "username-password pair or user is disabled.; credentials: the server identity of user 'eve')"
        )
    )
    ids.envoy.wait_stat("wasmcustom.redis_auth.upstream_auth_failure", 1)
    # The server saw the proxy's AUTH as bob-srv fail (its own ACL LOG),
    # and nothing of the client's credentials.
    log = ids.admin.acl_log()
    assert [(e["reason"], e["object"], e["username"]) for e in log] == [("auth", "AUTH", "bob-srv")]
    no_client_password_reached(ids.relay)
    # Other clients are not affected.
    other = connect(ids.envoy)
    values, _ = other.call(("AUTH", "bob", "bobpw"), ("CLIENT", "INFO"))
    assert values[0] == "OK" and info_user(values[1]) == "bob-srv"


def test_rejected_identity_runs_nothing_on_the_server(identities, connect):
    ids = identities
    err = rejected(WRONGPASS[1:-2])
    c = connect(ids.envoy)
    # Pipelined right behind the AUTH: answered by the error alone, never run.
    assert c.call(("AUTH", "eve", "evepw"), ("SET", "eve:pipelined", "1"), replies=1)[1] == err
    c.wait_closed()
    time.sleep(0.2)
    assert ids.admin.exists("eve:pipelined") == 0


# ====================================================================
# ACL LOG, against a real redis-server with the same users

ACL_USERS = [
    "user admin on >adminpw ~* &* +@all",
    "user lim on >limpw ~app:* &news:* +get +set +publish +subscribe +multi +exec +ping",
    "user ro.app on >ropw ~app:* +get",
    # The brief's `~w:* +set +get`, plus +ping: without it Redis itself
    # answers PING with NOPERM.
    "user w on >wpw ~w:* +set +get +ping",
]
ACL_CONFIG = {"downstream": {"users": ACL_USERS}, "upstream": {"password": {"env": "REDIS_PASSWORD"}}}


@pytest.fixture
def acl_pair(redis_factory, envoy_factory):
    """(Envoy with the filter in front of a server without ACLs, a reference
    redis-server with the same users)."""
    server = redis_factory("password", name="acl-upstream")
    envoy = envoy_factory(server, plugin_config=ACL_CONFIG, host_env={"REDIS_PASSWORD": server.password})
    reference = redis_factory("acl", acl_users=["user default off", *ACL_USERS], name="acl-reference")
    return SimpleNamespace(server=server, envoy=envoy, reference=reference)



# Denials and failed AUTHs, in an order that exercises Redis's grouping.
DENIALS = [
    ("AUTH", "lim", "limpw"),
    ("GET", "secret"),  # key
    ("CONFIG", "GET", "maxmemory"),  # command, with its subcommand
    ("PUBLISH", "other", "m"),  # channel
    ("SUBSCRIBE", "news:1", "other2", "other3"),  # the first channel denied
    ("GET", "secret"),  # grouped: count 2, moved to the front
    ("MULTI",),
    ("GET", "secret"),  # context multi: an entry of its own
    ("FLUSHALL",),
    ("EXEC",),
    ("AUTH", "lim", "bad"),  # auth: the command as sent, the user tried
    ("auth", "nosuch", "x"),
    ("HELLO", "3", "AUTH", "lim", "bad"),
    ("AUTH", "not-the-default-password"),
    ("ACL", "LOG"),  # lim may not read the log
    # Redis compares a new entry with the ten newest only.
    ("GET", "near"),
    *[("GET", f"between:{i}") for i in range(9)],
    ("GET", "near"),  # nine newer entries in between: grouped
    ("GET", "far"),
    *[("GET", f"beyond:{i}") for i in range(10)],
    ("GET", "far"),  # ten newer entries in between: a new entry
]
DENIAL_REPLIES = (
    b"+OK\r\n"
    + NOPERM_KEY
    + noperm_command("config|get")
    + NOPERM_CHANNEL * 2
    + NOPERM_KEY
    + b"+OK\r\n"
    + NOPERM_KEY
    + noperm_command("flushall")
    + b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    + WRONGPASS * 4
    + noperm_command("acl|log")
    + NOPERM_KEY * 23
)
# (count, reason, context, object, username), newest first.
EXPECTED_LOG = [
    (1, "key", "toplevel", "far", "lim"),
    *[(1, "key", "toplevel", f"beyond:{i}", "lim") for i in reversed(range(10))],
    (1, "key", "toplevel", "far", "lim"),
    (2, "key", "toplevel", "near", "lim"),
    *[(1, "key", "toplevel", f"between:{i}", "lim") for i in reversed(range(9))],
    (1, "command", "toplevel", "acl|log", "lim"),
    (1, "auth", "toplevel", "AUTH", "default"),
    (1, "auth", "toplevel", "HELLO", "lim"),
    (1, "auth", "toplevel", "auth", "nosuch"),
    (1, "auth", "toplevel", "AUTH", "lim"),
    (1, "command", "multi", "flushall", "lim"),
    (1, "key", "multi", "secret", "lim"),
    (2, "key", "toplevel", "secret", "lim"),
    (1, "channel", "toplevel", "other2", "lim"),
    (1, "channel", "toplevel", "other", "lim"),
    (1, "command", "toplevel", "config|get", "lim"),
]
FIELDS = ["count", "reason", "context", "object", "username", "age-seconds", "client-info"]
READS = [
    ("ACL", "LOG"),
    ("ACL", "LOG", "200"),
    ("ACL", "LOG", "3"),
    ("acl", "log", "1"),
    ("ACL", "LOG", "0"),
    ("ACL", "LOG", "-1"),
    ("ACL", "LOG", "x"),
    ("ACL", "LOG", "1", "2"),
]

_AGE = re.compile(rb"(\$11\r\nage-seconds\r\n)(\$\d+\r\n|,)([^\r\n]*)\r\n")
_CLIENT_INFO = re.compile(rb"(\$11\r\nclient-info\r\n)\$\d+\r\n([^\r\n]*)\r\n")


def blank(data: bytes) -> bytes:
    """ACL LOG bytes with age-seconds and client-info blanked (their type
    kept: a bulk string in RESP2, a double in RESP3)."""
    data = _AGE.sub(lambda m: m.group(1) + (b"," if m.group(2) == b"," else b"$?\r\n") + b"<age>\r\n", data)
    return _CLIENT_INFO.sub(rb"\1$?\r\n<client-info>\r\n", data)


def ages(data: bytes) -> list[float]:
    return [float(m.group(3)) for m in _AGE.finditer(data)]


def client_infos(data: bytes) -> list[bytes]:
    return [m.group(2) for m in _CLIENT_INFO.finditer(data)]


def entries(log) -> list[dict]:
    """ACL LOG entries (RESP2 arrays or RESP3 maps) as dicts, keys in order."""
    out = []
    for e in log:
        pairs = list(e.items()) if isinstance(e, dict) else list(zip(e[::2], e[1::2]))
        out.append({k.decode(): (v.decode() if isinstance(v, bytes) else v) for k, v in pairs})
    return out


def summary(log) -> list[tuple]:
    return [(e["count"], e["reason"], e["context"], e["object"], e["username"]) for e in entries(log)]


def login(protocol: int, user: str = "admin", password: str = "adminpw") -> bytes:
    return C("HELLO", "3", "AUTH", user, password) if protocol == 3 else C("AUTH", user, password)


def after_first_reply(data: bytes) -> bytes:
    return data[resp.parse_one(data)[1] :]


@pytest.mark.parametrize("protocol", [2, 3])
def test_acl_log_is_redis_acl_log(acl_pair, protocol):
    envoy, reference = acl_pair.envoy, acl_pair.reference
    denials = resp.commands(*DENIALS)
    want = raw_exchange(reference, denials, until_replies=len(DENIALS))
    assert want.data == DENIAL_REPLIES
    got = raw_exchange(envoy, denials, until_replies=len(DENIALS))
    assert got.data == DENIAL_REPLIES

    reads = login(protocol) + resp.commands(*READS)
    t0 = time.monotonic()
    want = raw_exchange(reference, reads, until_replies=1 + len(READS))
    got = raw_exchange(envoy, reads, until_replies=1 + len(READS))
    elapsed = time.monotonic() - t0 + 5
    w_reads, g_reads = after_first_reply(want.data), after_first_reply(got.data)
    # Byte for byte, age-seconds and client-info blanked.
    assert blank(g_reads) == blank(w_reads)
    # What that is, in case Redis and the filter both change.
    g = got.replies[1:]
    assert [list(e) for e in entries(g[1])] == [FIELDS] * len(EXPECTED_LOG)
    assert summary(g[1]) == EXPECTED_LOG
    assert summary(g[0]) == EXPECTED_LOG[:10]
    assert summary(g[2]) == EXPECTED_LOG[:3] and summary(g[3]) == EXPECTED_LOG[:1]
    assert g[4] == [] and g[5] == []
    assert g[6] == "ERR value is not an integer or out of range"
    assert g[7] == "ERR unknown subcommand or wrong number of arguments for 'LOG'. Try ACL HELP."
    if protocol == 3:
        assert b"$11\r\nage-seconds\r\n," in g_reads and b"%7\r\n$5\r\ncount\r\n:" in g_reads
    else:
        assert b"*14\r\n$5\r\ncount\r\n:" in g_reads
    # Where the two differ by nature, the filter's values still make sense:
    # an age, and the denying client's address.
    assert all(0 <= a <= elapsed for a in ages(g_reads))
    for info in client_infos(g_reads):
        assert re.fullmatch(rb"id=\d+ addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:%d user=lim" % envoy.port, info), info


def test_acl_log_reset_and_its_bound(acl_pair, connect):
    envoy, reference = acl_pair.envoy, acl_pair.reference
    # 140 different denials: the oldest 12 fall off, as with acllog-max-len 128.
    denials = login(2, "lim", "limpw") + resp.commands(*[("GET", f"k:{i}") for i in range(140)])
    for ep in (reference, envoy):
        assert raw_exchange(ep, denials, until_replies=141).data == b"+OK\r\n" + NOPERM_KEY * 140
    reads = login(2) + resp.commands(("ACL", "LOG", "1000"))
    want = raw_exchange(reference, reads, until_replies=2)
    got = raw_exchange(envoy, reads, until_replies=2)
    assert blank(got.data) == blank(want.data)
    assert summary(got.replies[1]) == [(1, "key", "toplevel", f"k:{i}", "lim") for i in reversed(range(12, 140))]
    # The denying connection's address.
    c = connect(envoy)
    c.call(("AUTH", "lim", "limpw"))
    assert c.call(("GET", "mine"))[1] == NOPERM_KEY
    log = connect(envoy).call(("AUTH", "admin", "adminpw"), ("ACL", "LOG", "1"))[0][1]
    (entry,) = entries(log)
    assert entry["object"] == "mine"
    assert entry["client-info"].split(" ")[1:] == [f"addr={c.addr}", f"laddr=127.0.0.1:{envoy.port}", "user=lim"]
    # RESET, as in Redis: +OK, then an empty log.
    reset = login(2) + resp.commands(("ACL", "LOG", "RESET"), ("ACL", "LOG"), ("acl", "log", "reset"))
    for ep in (reference, envoy):
        assert raw_exchange(ep, reset, until_replies=4).data == b"+OK\r\n+OK\r\n*0\r\n+OK\r\n"


def worker_totals(envoy) -> dict[str, int]:
    """downstream_cx_total of the listener, per worker."""
    stats = envoy.stats(filter=r"^listener\..*\.worker_\d+\.downstream_cx_total$")
    return {name.split(".")[-2]: v for name, v in stats.items()}


def connect_on_workers(envoy, connect, n: int, limit: int = 60) -> dict[str, list[Conn]]:
    """Opens connections one by one, learning each one's worker from the
    per-worker stats, until n are open and every worker has at least one."""
    by_worker: dict[str, list[Conn]] = {w: [] for w in worker_totals(envoy)}
    assert len(by_worker) == 2, f"Envoy should run two workers: {by_worker}"
    for _ in range(limit):
        before = worker_totals(envoy)
        c = connect(envoy)

        def accepted():
            now = worker_totals(envoy)
            return now if sum(now.values()) > sum(before.values()) else None

        after = wait_until(accepted, 5, "the connection to be accepted")
        (worker,) = [w for w in after if after[w] > before[w]]
        by_worker[worker].append(c)
        if sum(map(len, by_worker.values())) >= n and all(by_worker.values()):
            return by_worker
    raise AssertionError(f"{limit} connections did not reach both workers: {by_worker}")


def test_acl_log_counts_denials_from_every_worker(acl_pair, connect):
    envoy = acl_pair.envoy
    by_worker = connect_on_workers(envoy, connect, 12)
    conns = [c for cs in by_worker.values() for c in cs]
    for c in conns:
        assert c.call(("AUTH", "lim", "limpw"))[1] == b"+OK\r\n"
    repeat = 5
    start = threading.Barrier(len(conns))
    errors: list[BaseException] = []

    def deny(i: int, c: Conn) -> None:
        try:
            start.wait(10)
            # One denial of its own, then the same one as everybody else,
            # all at once on both workers.
            assert c.call(("GET", f"conn:{i}"))[1] == NOPERM_KEY
            start.wait(10)
            assert c.call(*[("GET", "shared")] * repeat)[1] == NOPERM_KEY * repeat
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=deny, args=(i, c)) for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    total = len(conns) * (1 + repeat)
    envoy.wait_stat("wasmcustom.redis_auth.denied_key", total)
    # Read on a connection of each worker: one log, every denial counted.
    for worker, cs in by_worker.items():
        log = cs[0].call(("AUTH", "admin", "adminpw"), ("ACL", "LOG", "200"))[0][1]
        got = summary(log)
        assert got[0] == (len(conns) * repeat, "key", "toplevel", "shared", "lim"), worker
        assert sorted(got[1:]) == sorted((1, "key", "toplevel", f"conn:{i}", "lim") for i in range(len(conns))), worker
        assert sum(e[0] for e in got) == total
    # A RESET on one worker empties the log for the other.
    (w0, c0), (w1, c1) = [(w, cs[0]) for w, cs in by_worker.items()]
    assert c0.call(("ACL", "LOG", "RESET"))[1] == b"+OK\r\n"
    assert c1.call(("ACL", "LOG"))[1] == b"*0\r\n"
    # And the next denial, on that other worker, is the only entry.
    victim = by_worker[w1][-1]
    assert victim.call(("AUTH", "lim", "limpw"), ("GET", "after-reset"))[1] == b"+OK\r\n" + NOPERM_KEY
    (log,), _ = c0.call(("ACL", "LOG"))
    assert summary(log) == [(1, "key", "toplevel", "after-reset", "lim")]


# ====================================================================
# Counters


def prometheus(envoy) -> dict[str, int]:
    status, body = envoy.admin_get("/stats/prometheus")
    assert status == 200
    out = {}
    for line in body.splitlines():
        m = re.fullmatch(r"(redis_auth_\w+)\{\} (\d+)", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def denial_lines(envoy, conn: Conn) -> list[str]:
    tail = f" from {conn.addr}"
    return [
        line.split("envoy-redis-auth: ", 2)[-1]
        for line in envoy.log_text().splitlines()
        if "envoy-redis-auth: denied (" in line and line.endswith(tail)
    ]


def test_denial_counters(acl_pair, connect):
    envoy = acl_pair.envoy
    a = connect(envoy)
    assert a.call(("AUTH", "lim", "limpw"))[1] == b"+OK\r\n"
    assert a.call(*[("FLUSHALL",)] * 3)[1] == noperm_command("flushall") * 3
    assert a.call(*[("PUBLISH", "secret-channel", "m")] * 2)[1] == NOPERM_CHANNEL * 2
    assert a.call(*[("GET", "secret-key")] * 150)[1] == NOPERM_KEY * 150
    assert a.call(("MULTI",), ("GET", "secret-key"), ("EXEC",))[1] == (
        b"+OK\r\n" + NOPERM_KEY + b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    )
    b = connect(envoy)
    assert b.call(("AUTH", "lim", "limpw"), *[("CONFIG", "GET", "x")] * 12)[1] == b"+OK\r\n" + noperm_command(
        "config|get"
    ) * 12
    c = connect(envoy)
    assert c.call(("AUTH", "ro.app", "ropw"), ("SET", "app:x", "v"), ("GET", "app:x"))[1] == (
        b"+OK\r\n" + noperm_command("set") + b"$-1\r\n"
    )
    d = connect(envoy)
    assert d.call(("AUTH", "admin", "adminpw"), ("GET", "secret-key"))[1] == b"+OK\r\n$-1\r\n"

    want = {
        "redis_auth.denied_command": 16,
        "redis_auth.denied_key": 151,
        "redis_auth.denied_channel": 2,
        "redis_auth.user.lim.denied_command": 15,
        "redis_auth.user.lim.denied_key": 151,
        "redis_auth.user.lim.denied_channel": 2,
        "redis_auth.user.ro_2eapp.denied_command": 1,
        "redis_auth.user.ro_2eapp.denied_key": 0,
        "redis_auth.user.ro_2eapp.denied_channel": 0,
    }
    envoy.wait_stat("wasmcustom.redis_auth.denied_command", 16)
    stats = envoy.wasm_stats()
    assert {k: stats.get("wasmcustom." + k) for k in want} == want
    # admin was never denied.
    assert not [k for k, v in stats.items() if ".user.admin." in k and v]
    prom = prometheus(envoy)
    names = {k: k.replace(".", "_").replace("-", "_") for k in want}
    assert {names[k]: prom.get(names[k]) for k in want} == {names[k]: v for k, v in want.items()}

    # The log: the first ten denials of each connection, then every 100th;
    # user, command, reason and client address, never the key or channel.
    addr = a.addr
    want_a = (
        [f"denied (command) user 'lim' command 'flushall' from {addr}"] * 3
        + [f"denied (channel) user 'lim' command 'publish' from {addr}"] * 2
        + [f"denied (key) user 'lim' command 'get' from {addr}"] * 6  # 6th..10th and 100th
    )
    wait_until(lambda: len(denial_lines(envoy, a)) >= 11 and len(denial_lines(envoy, b)) >= 10, 10, "denial log lines")
    time.sleep(0.2)
    assert denial_lines(envoy, a) == want_a
    assert denial_lines(envoy, b) == [f"denied (command) user 'lim' command 'config|get' from {b.addr}"] * 10
    wait_until(lambda: denial_lines(envoy, c), 10, "ro.app's denial log line")
    assert denial_lines(envoy, c) == [f"denied (command) user 'ro.app' command 'set' from {c.addr}"]
    denials = [line for line in envoy.log_text().splitlines() if "denied (" in line]
    assert not [line for line in denials if "secret-key" in line or "secret-channel" in line or "pw" in line]


def test_per_user_counters_keep_users_apart(redis_factory, envoy_factory):
    users = ["user x.y on >p ~app:* +get", "user x_y on >p ~app:* +get", "user x-y on >p ~app:* +get"]
    server = redis_factory("password", name="counters-upstream")
    envoy = envoy_factory(
        server, plugin_config={"downstream": {"users": users}, "upstream": {"password": server.password}}
    )
    for user, n in (("x.y", 1), ("x_y", 2), ("x-y", 4)):
        r = raw_exchange(envoy, C("AUTH", user, "p") + C("GET", "k") * n, until_replies=n + 1)
        assert r.data == b"+OK\r\n" + NOPERM_KEY * n
    envoy.wait_stat("wasmcustom.redis_auth.denied_key", 7)
    prefix = "wasmcustom.redis_auth.user."
    per_user = {k: v for k, v in envoy.wasm_stats().items() if k.startswith(prefix) and k.endswith(".denied_key")}
    assert sorted(per_user.values()) == [1, 2, 4], per_user
    status, body = envoy.admin_get("/stats/prometheus")
    families = [line for line in body.splitlines() if line.startswith("# TYPE redis_auth_user_")]
    assert len(families) == len(set(families)), "duplicate metric families in /stats/prometheus"


# ====================================================================
# Large values go past the ACL check without being held

BIG = 8 << 20


def test_large_values_stream_through_the_check(redis_factory, relay_factory, envoy_factory):
    server = redis_factory("password", name="stream-upstream")
    relay = relay_factory(server)
    envoy = envoy_factory(relay, plugin_config=ACL_CONFIG, host_env={"REDIS_PASSWORD": server.password})
    # Both workers' VMs have served a connection before we measure.
    for _ in range(8):
        assert raw_exchange(envoy, C("AUTH", "w", "wpw") + C("PING"), until_replies=2).data == b"+OK\r\n+PONG\r\n"
    memory_before = envoy.counter("wasmcustom.redis_auth.vm_memory_bytes")
    value = os.urandom(BIG)
    payload = resp.commands(
        ("AUTH", "w", "wpw"),
        ("SET", "w:big", value),
        ("GET", "w:big"),
        ("SET", "other", value),
        ("PING",),
        ("GET", "w:big"),
    )
    r = raw_exchange(envoy, payload, 64 * 1024, pause=0, until_replies=6, timeout=60)
    assert not r.closed
    bulk = b"$%d\r\n%s\r\n" % (BIG, value)
    assert r.data == b"+OK\r\n+OK\r\n" + bulk + NOPERM_KEY + b"+PONG\r\n" + bulk
    # The refused value never reached the server; the allowed one did, once.
    assert server.client(decode_responses=False).exists("other") == 0
    (conn,) = relay.connections[-1:]
    assert BIG < len(conn.to_server) < BIG + 4096
    # Neither value was held whole in the filter.
    assert envoy.counter("wasmcustom.redis_auth.vm_memory_bytes") - memory_before < BIG
    assert envoy.counter("wasmcustom.redis_auth.held_bytes") == 0
    assert envoy.counter("wasmcustom.redis_auth.user.w.denied_key") == 1
