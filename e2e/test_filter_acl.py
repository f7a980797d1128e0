"""Redis 7 ACLs enforced at the proxy (issue 7): Redis is the oracle.

The same ACL file lines (`ALL_USERS`: the seed users, read-only, write-only,
channel patterns, `allchannels`, `%R~`/`%W~`, a `#hash`, two passwords,
`-@dangerous`, a selector, `+cmd|sub`, `+select|0`, `-select`,
`nocommands`, a disabled user, and the default user as the filter has it)
are loaded into a real redis-server 7.0 (`--aclfile`: the reference) and
into the filter (`downstream.users`). The filter runs in real Envoy in front
of two kinds of server, whose own users the clients never see:

  acl-server          one all-powerful ACL user (`user default off`,
                      `user proxy on >… ~* &* +@all`); `upstream: {username, password}`
  requirepass-server  only `requirepass`; `upstream: {password}`: a server
                      without ACLs

Each case is one fresh connection that authenticates as its user first (or
says how it authenticates). The bytes that come back through Envoy must be
the bytes the reference sent, whole and in random chunks (sequences also
byte by byte), and the connection must stay open. Before every exchange the
server the commands land on is emptied (FLUSHALL, SCRIPT FLUSH, no pub/sub
subscriber left over) and given the case's data, on an admin connection
straight to it (a case's user may not be allowed FLUSHALL), so no reply
depends on what ran before, or on time. The few replies that differ between
two Redis processes (`CLIENT ID`, `HELLO`'s id, the order of single-command
rules in `ACL LIST`/`ACL GETUSER`, the order of `ACL CAT <category>`) are
normalised on both sides (harness/acl.py; lengths still match byte for byte).

Tests, each against both servers (1154 in all):
  test_matrix       MATRIX: 19 users x 12 command groups (keyed; multi-key,
                    where the reply shows which error wins; keyless; admin;
                    EVAL/EVAL_RO/EVALSHA with declared keys; streams with
                    STREAMS; SORT BY/GET/STORE; MIGRATE KEYS to a closed port;
                    pub/sub, PSUBSCRIBE patterns, shard channels, subscribed
                    mode; unknown commands and arity; subcommands; SELECT):
                    228 cases, ~1,960 commands, whole and random
  test_sequences    23 cases: MULTI/EXEC with denials (-EXECABORT), RESP2
                    and RESP3 subscribed mode, HELLO 3, RESET, re-AUTH,
                    failed re-AUTH, passwords, nocommands, the check order,
                    inline commands, 256 KiB values; whole, byte, random
  test_acl_commands 16 cases: ACL WHOAMI/CAT/DRYRUN (46 verdicts)/USERS/
                    GETUSER/LIST answered for the proxy's users (the reference
                    holds exactly ALL_USERS), arity, and ACL subcommands as
                    7 restricted users; whole and random
  test_user_directory_is_the_proxys
                    ACL SETUSER/DELUSER/SAVE/LOAD and CONFIG SET requirepass
                    as 4 users: Redis's NOPERM, byte for byte, for users who
                    may not run them; for users who may, an `-ERR` from the
                    proxy and the connection goes on; in both cases the
                    server never sees the command (its INFO commandstats,
                    reset before the exchange, has no line for it)

Run this file alone (from the repository root, after `./dev build`):

    E2E_REQUIRE_WASM=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python3 -m pytest -p pytest_timeout e2e/test_filter_acl.py -q

Self-check, without Envoy or the wasm: E2E_ACL_SELF_CHECK=1 puts a second
copy of the reference redis-server (same ACL file) where each Envoy would
be. Every comparison must then pass, which shows that the expectations are
deterministic (across processes and chunkings) and the comparison sound. In
that mode test_user_directory_is_the_proxys checks the converse: a
throwaway copy runs the commands and its INFO commandstats does show them,
so the check would see a command that reached a server.

    E2E_ACL_SELF_CHECK=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python3 -m pytest -p pytest_timeout e2e/test_filter_acl.py -q

Either way the file takes about a minute.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field

import pytest

from harness.acl import commandstats, exchange, first_difference, normalise, reply_spans, reset, sha256_hex
from harness.resp import command as C

SELF_CHECK = os.environ.get("E2E_ACL_SELF_CHECK") == "1"


# ------------------------------------------------------------------ users


@dataclass(frozen=True)
class User:
    """An ACL file line, the password that logs in, and names the command
    templates use: {r} a key the user may read, {w} one it may write, {x}
    one outside its key patterns (if it has any), {ch}/{xch} a channel it
    may / may not use, {chpat}/{xchpat} a pattern it may / may not PSUBSCRIBE
    to (Redis 7.0 compares patterns literally)."""

    name: str
    line: str
    password: str
    r: str = "k:1"
    w: str = ""
    x: str = "zz:1"
    ch: str = "c:1"
    xch: str = "zz:c"
    chpat: str = "*"
    xchpat: str = "zz:*"

    def fields(self) -> dict[str, str]:
        return {"r": self.r, "w": self.w or self.r, "x": self.x, "ch": self.ch,
                "xch": self.xch, "chpat": self.chpat, "xchpat": self.xchpat}  # fmt: skip


ALL_USERS = [
    # The default user, as the filter has it (no downstream.password). The
    # reference's admin connection logs in as it.
    User("default", "user default on >defaultpw ~* &* +@all", "defaultpw"),
    # The seeds (002, 003).
    User("alice", "user alice on >alicepw ~app:* +get +set", "alicepw", r="app:1"),
    # No & rule: under Redis 7's acl-pubsub-default resetchannels, no channel.
    User("appuser", "user appuser on >SuperSecretPass ~* +@all", "SuperSecretPass"),
    User("readonlyuser", "user readonlyuser on >ReadOnlyPass ~* +get +exists +ttl +info -@write -select",
         "ReadOnlyPass"),
    User("writeuser", "user writeuser on >WritePass ~* +set +del +incr +@write -@read -select", "WritePass"),
    # Read-only and write-only by category.
    User("reader", "user reader on >readerpw ~* -@all +@read +@connection", "readerpw"),
    User("writer", "user writer on >writerpw ~* -@all +@write +@connection", "writerpw"),
    # Channels: a pattern (resetchannels first), and allchannels.
    User("news", "user news on >newspw resetchannels &news:* -@all +@pubsub +@connection", "newspw",
         ch="news:1", chpat="news:*", xchpat="news:1*"),
    User("anychan", "user anychan on >anychanpw allchannels -@all +@pubsub +@connection", "anychanpw"),
    # Read keys and write keys apart.
    User("split", "user split on >splitpw %R~r:* %W~w:* +@all", "splitpw", r="r:1", w="w:1"),
    # A hashed password; keys and channels under h:.
    User("hashed", f"user hashed on #{sha256_hex('hashedpw')} ~h:* &h:* +@all", "hashedpw",
         r="h:1", ch="h:c", chpat="h:*", xchpat="h:c*"),
    User("twopw", "user twopw on >first-pw >second-pw ~* +@all", "second-pw"),
    User("safe", "user safe on >safepw ~* &* +@all -@dangerous", "safepw"),
    # A selector: root reads a:*, the selector also writes s:*.
    User("sel", "user sel on >selpw ~a:* +get +mget (~s:* +get +mget +set)", "selpw", r="a:1", w="s:1"),
    # Subcommands, and the first-argument form 7.0 still accepts.
    User("sub", "user sub on >subpw ~* -@all +client|id +config|get +object|encoding +ping", "subpw"),
    User("db0", "user db0 on >db0pw ~* -@all +select|0 +get +ping", "db0pw"),
    User("noselect", "user noselect on >noselectpw ~* &* +@all -select", "noselectpw"),
    User("nocmd", "user nocmd on >nocmdpw ~* &* nocommands", "nocmdpw"),
    User("disabled", "user disabled off >disabledpw ~* &* +@all", "disabledpw"),
    # Scripts with declared keys.
    User("script", "user script on >scriptpw ~sc:* -@all +@scripting +get +ping", "scriptpw", r="sc:1"),
]  # fmt: skip
USERS = {u.name: u for u in ALL_USERS}
ACL_LINES = [u.line for u in ALL_USERS]
ADMIN = USERS["default"]

# The servers behind the proxy.
PROXY_USER, PROXY_PASSWORD = "proxy", "ProxyServerPass"
ACL_SERVER_USERS = ["user default off", f"user {PROXY_USER} on >{PROXY_PASSWORD} ~* &* +@all"]
SERVER_KINDS = ["acl-server", "requirepass-server"]


def auth(user: str) -> tuple:
    return ("AUTH", user, USERS[user].password)


# ------------------------------------------------------------------ cases


@dataclass
class Case:
    """One connection: `commands` (each a tuple of arguments, or raw bytes
    holding one inline command), after an AUTH as `user` unless `user` is
    None; `setup` runs on the servers first. Every command gets exactly one
    reply (subscriptions name one channel each), which the normalisation
    relies on."""

    name: str
    user: str | None
    commands: list
    setup: list = field(default_factory=list)

    @property
    def sent(self) -> list:
        return ([auth(self.user)] if self.user else []) + list(self.commands)

    @property
    def payload(self) -> bytes:
        return b"".join(c if isinstance(c, bytes) else C(*c) for c in self.sent)


def fill(templates, user: User) -> list:
    f = user.fields()
    return [tuple(a.format(**f) if isinstance(a, str) else a for a in t) for t in templates]


GET_SCRIPT = "return redis.call('get',KEYS[1])"
RETURN_1 = "return 1"
RETURN_1_SHA = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"  # SHA1 of RETURN_1
DEAD_PORT = "1"  # nothing listens on 127.0.0.1:1: MIGRATE fails after the ACL check

# (group, setup, commands): templates filled with each user's names.
GROUPS = [
    ("keyed", [("SET", "{r}", "seed")], [
        ("SET", "{w}", "v1"), ("GET", "{r}"), ("GET", "{w}"), ("SET", "{x}", "v2"), ("GET", "{x}"),
        ("SET", "{r}", "v3"), ("SET", "{w}", "v4", "GET"), ("APPEND", "{w}", "+"),
        ("COPY", "{r}", "{w}:copy"), ("EXISTS", "{r}", "{x}"),
    ]),
    ("multi-key", [("SET", "{r}", "seed")], [
        ("MSET", "{w}", "m1", "{x}", "m2"), ("MSET", "{w}", "m1", "{w}:2", "m2"), ("MGET", "{r}", "{x}"),
        ("MGET", "{r}", "{w}"), ("DEL", "{x}", "{w}"), ("DEL", "{w}:2"), ("UNLINK", "{w}", "{x}"),
    ]),
    ("keyless", [], [
        ("PING",), ("PING", "hello"), ("ECHO", "hi"), ("DBSIZE",), ("COMMAND", "COUNT"),
    ]),
    ("admin", [("SET", "{r}", "seed")], [
        ("CONFIG", "GET", "maxmemory"), ("CONFIG", "SET", "slowlog-log-slower-than", "10000"),
        ("DEBUG", "SLEEP", "0"), ("KEYS", "nomatch:*"), ("FLUSHALL",), ("DBSIZE",),
    ]),
    ("scripting", [("SET", "{r}", "seed")], [
        ("EVAL", RETURN_1, "0"), ("EVAL", GET_SCRIPT, "1", "{r}"), ("EVAL", RETURN_1, "1", "{x}"),
        ("EVAL_RO", GET_SCRIPT, "1", "{r}"), ("EVAL", RETURN_1, "2", "{r}"),
        ("EVALSHA", RETURN_1_SHA, "1", "{x}"), ("EVALSHA", RETURN_1_SHA, "0"),
    ]),
    ("streams", [("XADD", "{r}", "1-1", "f", "seed")], [
        ("XADD", "{w}", "2-1", "f", "v"), ("XREAD", "COUNT", "5", "STREAMS", "{r}", "0"),
        ("XREAD", "COUNT", "5", "STREAMS", "{r}", "{x}", "0", "0"), ("XLEN", "{r}"),
        ("XRANGE", "{r}", "-", "+"), ("XADD", "{x}", "1-1", "f", "v"),
    ]),
    ("sort", [("RPUSH", "{r}", "3", "1", "2")], [
        ("SORT", "{r}"), ("SORT", "{r}", "BY", "nosort"), ("SORT", "{r}", "BY", "{r}_*"),
        ("SORT", "{r}", "GET", "#"), ("SORT", "{r}", "STORE", "{w}:dst"), ("SORT", "{r}", "STORE", "{x}"),
        ("SORT_RO", "{r}", "ALPHA"), ("SORT_RO", "{r}", "BY", "{r}_*"),
    ]),
    ("migrate", [("SET", "{r}", "seed")], [
        ("MIGRATE", "127.0.0.1", DEAD_PORT, "", "0", "100", "KEYS", "{r}"),
        ("MIGRATE", "127.0.0.1", DEAD_PORT, "", "0", "100", "KEYS", "{r}", "{x}"),
        ("MIGRATE", "127.0.0.1", DEAD_PORT, "{r}", "0", "100"),
        ("MIGRATE", "127.0.0.1", DEAD_PORT, "", "0", "100", "KEYS", "{w}:absent"),
    ]),
    # Publishing first; then subscriptions, which put a RESP2 connection in
    # subscribed mode once one is allowed.
    ("pubsub", [], [
        ("PUBLISH", "{ch}", "m"), ("PUBLISH", "{xch}", "m"), ("SPUBLISH", "{ch}", "m"), ("SPUBLISH", "{xch}", "m"),
        ("SSUBSCRIBE", "{xch}"), ("PSUBSCRIBE", "{xchpat}"), ("SUBSCRIBE", "{xch}"), ("PING",),
        ("SUBSCRIBE", "{ch}"), ("SSUBSCRIBE", "{ch}"), ("PSUBSCRIBE", "{chpat}"), ("PING",),
        ("GET", "{r}"), ("UNSUBSCRIBE", "{ch}"),
    ]),
    # Redis checks the command, then its arity, before the ACL.
    ("unknown and arity", [], [
        ("NOSUCH", "a", "b"), ("GET",), ("SET", "{w}"), ("DEL",), ("CONFIG",), ("CONFIG", "SET", "x"),
        ("CLIENT", "NOSUCH"), ("GET", "{r}", "extra"), ("OBJECT", "NOSUCH", "{r}"),
    ]),
    ("subcommands", [("SET", "{r}", "12345")], [
        ("CLIENT", "ID"), ("CLIENT", "GETNAME"), ("CLIENT", "KILL", "ID", "999999"),
        ("CONFIG", "GET", "maxmemory"), ("CONFIG", "SET", "slowlog-log-slower-than", "10000"),
        ("OBJECT", "ENCODING", "{r}"), ("OBJECT", "FREQ", "{r}"),
    ]),
    ("select", [("SET", "{r}", "db1"), ("MOVE", "{r}", "1"), ("SET", "{r}", "db0")], [
        ("SELECT", "0"), ("GET", "{r}"), ("SELECT", "1"), ("GET", "{r}"), ("SET", "{w}", "in-db1"),
        ("SELECT", "00"), ("SELECT", "0"), ("GET", "{w}"),
    ]),
]  # fmt: skip

# Every user but the disabled one (whose commands all get NOAUTH: see SEQUENCES).
MATRIX = [
    Case(f"{u.name}-{group}", u.name, fill(commands, u), fill(setup, u))
    for u in ALL_USERS
    if u.name != "disabled"
    for group, setup, commands in GROUPS
]

BIG = "x" * (256 * 1024)

SEQUENCES = [
    # MULTI: a denial while queueing makes EXEC abort; nothing runs.
    Case("multi, a denied key, exec", "hashed", [
        ("MULTI",), ("SET", "h:1", "v"), ("GET", "zz:1"), ("DEL", "h:1", "zz:1"), ("EXEC",), ("GET", "h:1")]),
    Case("multi, a denied command, exec", "safe", [
        ("MULTI",), ("SET", "k:1", "v"), ("FLUSHALL",), ("EXEC",), ("GET", "k:1")]),
    Case("multi, a denied channel, exec", "hashed", [
        ("MULTI",), ("PUBLISH", "h:c", "m"), ("PUBLISH", "zz:c", "m"), ("EXEC",)]),
    Case("multi, read and write keys apart, exec", "split", [
        ("MULTI",), ("SET", "w:1", "v"), ("GET", "w:1"), ("EXEC",), ("MULTI",), ("SET", "w:1", "v"), ("EXEC",)]),
    Case("multi, allowed commands run", "hashed", [
        ("MULTI",), ("SET", "h:1", "v"), ("GET", "h:1"), ("EXEC",)]),
    Case("multi, a denial, discard", "hashed", [
        ("MULTI",), ("GET", "zz:1"), ("DISCARD",), ("GET", "h:1"), ("EXEC",)]),
    # alice may not run MULTI nor EXEC: EXEC's denial is an EXECABORT.
    Case("multi and exec denied", "alice", [
        ("MULTI",), ("SET", "app:1", "v"), ("EXEC",), ("GET", "app:1")]),
    # RESP2 subscribed mode: the ACL check comes before the context check.
    Case("resp2 subscribed, denied channels and commands", "news", [
        ("SUBSCRIBE", "news:1"), ("SUBSCRIBE", "zz:1"), ("PSUBSCRIBE", "news:1*"), ("PSUBSCRIBE", "news:*"),
        ("GET", "k:1"), ("PUBLISH", "news:1", "m"), ("PING",), ("UNSUBSCRIBE", "news:1"),
        ("PUNSUBSCRIBE", "news:*"), ("PING",), ("PUBLISH", "news:1", "m")]),
    Case("resp2 subscribed by ssubscribe", "news", [
        ("SSUBSCRIBE", "news:2"), ("SSUBSCRIBE", "zz:2"), ("SUBSCRIBE", "zz:1"), ("SPUBLISH", "news:2", "m"),
        ("SUNSUBSCRIBE", "news:2"), ("PING",)]),
    Case("resp2 subscribed, an allowed command out of context", "hashed", [
        ("SUBSCRIBE", "h:c"), ("GET", "h:1"), ("SUBSCRIBE", "zz:c"), ("PING",), ("ECHO", "x"), ("SUBSCRIBE", "h:d")]),
    # RESP3.
    Case("hello 3, then denials", "alice", [
        ("HELLO", "3"), ("GET", "zz:1"), ("DEL", "app:1"), ("SUBSCRIBE", "c:1"), ("SET", "app:1", "v"),
        ("GET", "app:1"), ("HELLO", "2"), ("GET", "zz:1")]),
    Case("hello 3 auth, then denials", None, [
        ("HELLO", "3", "AUTH", "sel", "selpw"), ("SET", "a:1", "v"), ("SET", "s:1", "v"), ("MGET", "a:1", "s:1"),
        ("GET", "s:1"), ("CLIENT", "ID")]),
    Case("resp3 subscribed, denials", None, [
        ("HELLO", "3", "AUTH", "news", "newspw"), ("SUBSCRIBE", "news:1"), ("SUBSCRIBE", "zz:1"), ("GET", "k:1"),
        ("PING",), ("PSUBSCRIBE", "news:1*"), ("UNSUBSCRIBE", "news:1")]),
    # RESET logs out (the default user has a password).
    Case("reset, then commands", "alice", [
        ("GET", "app:1"), ("RESET",), ("GET", "app:1"), auth("alice"), ("GET", "zz:1"), ("RESET",),
        ("AUTH", "defaultpw"), ("GET", "zz:1")]),
    Case("reset leaves subscribed mode and resp3", None, [
        ("HELLO", "3", "AUTH", "news", "newspw"), ("SUBSCRIBE", "news:1"), ("RESET",), auth("news"),
        ("PUBLISH", "news:1", "m"), ("GET", "k:1"), ("RESET",), ("PING",)]),
    # Re-AUTH switches rules; a failed one keeps the earlier user's.
    Case("re-auth as another user", "alice", [
        ("SET", "app:1", "a"), ("SET", "h:1", "h"), auth("hashed"), ("SET", "app:1", "b"), ("SET", "h:1", "c"),
        auth("sub"), ("GET", "h:1"), ("CLIENT", "KILL", "ID", "999999"), auth("default"), ("GET", "h:1")]),
    Case("failed re-auth keeps the rules", "alice", [
        ("AUTH", "hashed", "wrong"), ("GET", "app:1"), ("GET", "h:1"), ("AUTH", "disabled", "disabledpw"),
        ("SET", "app:1", "v"), ("AUTH", "nobody", "x"), ("GET", "app:1"), ("AUTH", "wrong-default-pw"),
        ("DEL", "app:1"), ("HELLO", "3", "AUTH", "hashed", "wrong"), ("GET", "h:1")]),
    Case("passwords", None, [
        ("AUTH", "twopw", "first-pw"), ("AUTH", "twopw", "second-pw"), ("AUTH", "twopw", "third-pw"),
        ("AUTH", "hashed", "hashedpw"), ("AUTH", "hashed", sha256_hex("hashedpw")), ("AUTH", "defaultpw"),
        ("AUTH", "default", "defaultpw"), ("AUTH", "Default", "defaultpw"), ("AUTH", "alice", "ALICEPW")]),
    Case("disabled user", None, [
        ("AUTH", "disabled", "disabledpw"), ("GET", "k:1"), ("HELLO", "3", "AUTH", "disabled", "disabledpw"),
        ("PING",)]),
    Case("nocommands: only what needs no auth", "nocmd", [
        ("PING",), ("ECHO", "x"), ("HELLO", "2"), ("CLIENT", "SETNAME", "x"), auth("nocmd"), ("GET", "k:1"),
        ("RESET",), ("AUTH", "nocmd", "nocmdpw"), ("QUIT",)]),
    Case("order: unknown, arity, then the ACL", "alice", [
        ("DEL",), ("DEL", "app:1"), ("NOSUCH",), ("CONFIG", "SET", "x"), ("CONFIG", "SET", "x", "y"),
        ("GET", "zz:1", "b"), ("GET", "zz:1")]),
    Case("inline commands", "hashed", [
        b"GET zz:1\r\n", b"get h:1\r\n", b"DEL h:1 zz:1\r\n", b'SET "h:1" "v"\r\n', b"PUBLISH zz:c m\r\n"]),
    # Keys in front of large values: the check needs the key only.
    Case("big values", "hashed", [
        ("SET", "zz:big", BIG), ("SET", "h:big", BIG), ("STRLEN", "h:big"), ("APPEND", "zz:big", BIG),
        ("GET", "h:1")]),
]  # fmt: skip

# ACL subcommands. DRYRUN names the users of USERS.
DRYRUN = [
    ("alice", "GET", "app:1"), ("alice", "SET", "app:1", "v"), ("alice", "GET", "zz:1"), ("alice", "DEL", "app:1"),
    ("alice", "MGET", "app:1"), ("alice", "CONFIG", "SET", "a", "b"),
    ("news", "PUBLISH", "news:1", "m"), ("news", "PUBLISH", "zz:1", "m"), ("news", "PSUBSCRIBE", "news:*"),
    ("news", "PSUBSCRIBE", "news:1*"), ("news", "SUBSCRIBE", "news:1", "zz:1"), ("news", "GET", "k"),
    ("appuser", "PUBLISH", "c", "m"), ("anychan", "SSUBSCRIBE", "zz:1"),
    ("split", "GET", "r:1"), ("split", "GET", "w:1"), ("split", "SET", "w:1", "v"), ("split", "SET", "w:1", "v", "GET"),
    ("split", "COPY", "r:1", "w:1"), ("split", "EVAL", RETURN_1, "1", "r:1"),
    ("sel", "SET", "a:1", "v"), ("sel", "SET", "s:1", "v"), ("sel", "MGET", "a:1", "s:1"), ("sel", "GET", "s:1"),
    ("sub", "CLIENT", "ID"), ("sub", "CLIENT", "KILL", "ID", "1"), ("sub", "CONFIG", "GET", "maxmemory"),
    ("sub", "CONFIG", "SET", "maxmemory", "0"), ("sub", "OBJECT", "FREQ", "k"),
    ("db0", "SELECT", "0"), ("db0", "SELECT", "1"), ("noselect", "SELECT", "0"),
    ("hashed", "SORT", "h:l", "BY", "h:*"),
    ("hashed", "MIGRATE", "127.0.0.1", "1", "", "0", "100", "KEYS", "h:1", "zz:1"),
    ("hashed", "XREAD", "STREAMS", "h:s", "zz:s", "0", "0"), ("hashed", "EVAL", RETURN_1, "1", "zz:1"),
    ("safe", "FLUSHALL"), ("safe", "ACL", "LIST"), ("safe", "ACL", "WHOAMI"), ("nocmd", "PING"),
    ("nocmd", "AUTH", "x"), ("disabled", "GET", "k"), ("readonlyuser", "INFO"), ("writeuser", "GET", "k"),
    ("script", "EVAL", RETURN_1, "1", "zz:1"), ("default", "DEBUG", "SLEEP", "0"),
]  # fmt: skip

RESTRICTED_ACL_PROBES = [
    ("ACL", "WHOAMI"), ("ACL", "CAT"), ("ACL", "CAT", "read"), ("ACL", "USERS"), ("ACL", "GETUSER", "alice"),
    ("ACL", "LIST"), ("ACL", "DRYRUN", "alice", "GET", "app:1"), ("ACL", "HELP"),
]  # fmt: skip

ACL_CASES = [
    Case("whoami as each user", None, [
        c for u in ALL_USERS if u.name != "disabled" for c in (auth(u.name), ("ACL", "WHOAMI"))]),
    Case("cat", "default", [
        ("ACL", "CAT"), ("ACL", "CAT", "read"), ("ACL", "CAT", "dangerous"), ("ACL", "CAT", "connection"),
        ("ACL", "CAT", "pubsub"), ("ACL", "CAT", "READ"), ("ACL", "CAT", "nosuch"), ("ACL", "CAT", "a", "b")]),
    Case("dryrun", "default", [("ACL", "DRYRUN", *d) for d in DRYRUN]),
    Case("dryrun errors", "default", [
        ("ACL", "DRYRUN", "nobody", "GET", "k"), ("ACL", "DRYRUN", "alice", "NOSUCH"),
        ("ACL", "DRYRUN", "alice", "GET"), ("ACL", "DRYRUN", "alice", "CONFIG", "NOSUCH"), ("ACL", "DRYRUN", "alice")]),
    Case("users", "default", [("ACL", "USERS")]),
    Case("getuser", "default", [("ACL", "GETUSER", u.name) for u in ALL_USERS] + [
        ("ACL", "GETUSER", "nobody"), ("ACL", "GETUSER", "ALICE")]),
    Case("getuser resp3", None, [("HELLO", "3", "AUTH", "default", "defaultpw")] + [
        ("ACL", "GETUSER", u) for u in ("sel", "split", "twopw", "hashed", "news", "db0")]),
    Case("list", "default", [("ACL", "LIST")]),
    Case("arity and unknown subcommands", "default", [
        ("ACL",), ("ACL", "NOSUCH"), ("ACL", "WHOAMI", "extra"), ("ACL", "GETUSER"), ("ACL", "USERS", "x")]),
] + [
    # Every ACL subcommand is subject to the user's rules (ACL WHOAMI is @slow,
    # ACL LIST @admin @dangerous).
    Case(f"acl commands as {u}", u, list(RESTRICTED_ACL_PROBES))
    for u in ("alice", "reader", "safe", "appuser", "news", "nocmd", "sub")
]  # fmt: skip

# Commands that would change the server's users: the proxy owns them.
# (name, command, its INFO commandstats name)
DIRECTORY_WRITES = [
    ("acl setuser", ("ACL", "SETUSER", "intruder", "on", ">intruderpw", "~*", "&*", "+@all"), "acl|setuser"),
    ("acl deluser", ("ACL", "DELUSER", "intruder"), "acl|deluser"),
    ("acl save", ("ACL", "SAVE"), "acl|save"),
    ("acl load", ("ACL", "LOAD"), "acl|load"),
    ("config set requirepass", ("CONFIG", "SET", "requirepass", "hijacked"), "config|set"),
]
# default and appuser may run them (+@all); safe (-@dangerous) and alice may not.
DIRECTORY_WRITERS = ["default", "appuser", "safe", "alice"]


# ------------------------------------------------------------------ rig


@dataclass
class Target:
    """Where the client connects (`endpoint`), and an admin connection
    straight to the server its commands land on."""

    name: str
    endpoint: object
    server: object
    admin: object


def admin_client(server):
    return server.client(decode_responses=False)


def start_reference(factory, name: str):
    return factory("acl", acl_users=ACL_LINES, username=ADMIN.name, password=ADMIN.password, name=name)


def filter_config(kind: str, server) -> dict:
    upstream = {"password": server.password}
    if kind == "acl-server":
        upstream["username"] = server.username
    return {"downstream": {"users": ACL_LINES, "max_auth_failures": 0}, "upstream": upstream}


class Reference:
    """The reference redis-server, and its answer to each case (computed
    once, sent whole, with a trailing unknown command whose error marks the
    end of the answer)."""

    END = C("E2E-END")
    END_REPLY = b"-ERR unknown command 'E2E-END', with args beginning with: \r\n"

    def __init__(self, server):
        self.server = server
        self.admin = admin_client(server)
        self.answers: dict[str, bytes] = {}

    def answer(self, case: Case) -> bytes:
        if case.name not in self.answers:
            reset(self.admin, case.setup)
            r = exchange(self.server, case.payload + self.END, until=self.END_REPLY, idle_timeout=2.0)
            if r.closed and not r.data.endswith(self.END_REPLY):
                data = r.data  # the case itself closed the connection (QUIT)
            else:
                assert r.data.endswith(self.END_REPLY), f"the reference did not finish {case.name!r}: {r!r}"
                data = r.data[: -len(self.END_REPLY)]
            n = len(reply_spans(data))
            assert n == len(case.sent), f"{case.name!r}: {n} replies to {len(case.sent)} commands: {data[:2000]!r}"
            self.answers[case.name] = data
        return self.answers[case.name]


@pytest.fixture(scope="module")
def reference(session_redis_factory) -> Reference:
    return Reference(start_reference(session_redis_factory, "acl-reference"))


@pytest.fixture(scope="module", params=SERVER_KINDS)
def target(request, session_redis_factory, session_envoy_factory) -> Target:
    kind = request.param
    if SELF_CHECK:
        copy = start_reference(session_redis_factory, f"acl-reference-copy-{kind}")
        return Target(kind, copy, copy, admin_client(copy))
    if kind == "acl-server":
        server = session_redis_factory("acl", acl_users=ACL_SERVER_USERS, name="acl-upstream-acl")
    else:
        server = session_redis_factory("password", name="acl-upstream-requirepass")
    config = filter_config(kind, server)
    envoy = session_envoy_factory(server, plugin_config=config, name=f"acl-envoy-{kind}", start=False)
    started = envoy.try_start()
    if not started.accepted:
        lines = "\n".join(started.error_lines()[-10:]) or started.log[-3000:]
        pytest.fail(f"Envoy refused the filter configuration for {kind} ({started.reason}):\n{lines}", pytrace=False)
    return Target(kind, envoy, server, admin_client(server))


def send(endpoint, payload: bytes, chunking: str, seed: int, **kw):
    # As the model (test_filter_differential.py): big payloads in random
    # pieces of up to 4 KiB, without pauses.
    if chunking == "byte" and len(payload) > 2000:
        chunking, kw["max_chunk"] = "random", 4096
    pause = 0 if len(payload) > 2000 else None
    return exchange(endpoint, payload, chunking, seed=seed, pause=pause, **kw)


def check(reference: Reference, target: Target, case: Case, chunking: str) -> None:
    expected = reference.answer(case)
    reset(target.admin, case.setup)
    seed = zlib.crc32(case.name.encode())
    got = send(target.endpoint, case.payload, chunking, seed, until_replies=len(case.sent))
    want, have = normalise(expected, case.sent), normalise(got.data, case.sent)
    assert have == want, f"{case.name} ({chunking}) through {target.name}: {first_difference(want, have, case.sent)}"
    if not any(c[:1] == ("QUIT",) for c in case.sent if isinstance(c, tuple)):
        assert not got.closed, f"{case.name} ({chunking}) through {target.name}: connection closed"


def ids(cases):
    return [c.name for c in cases]


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("chunking", ["whole", "random"])
@pytest.mark.parametrize("case", MATRIX, ids=ids(MATRIX))
def test_matrix(reference, target, case, chunking):
    check(reference, target, case, chunking)


@pytest.mark.parametrize("chunking", ["whole", "byte", "random"])
@pytest.mark.parametrize("case", SEQUENCES, ids=ids(SEQUENCES))
def test_sequences(reference, target, case, chunking):
    check(reference, target, case, chunking)


@pytest.mark.parametrize("chunking", ["whole", "random"])
@pytest.mark.parametrize("case", ACL_CASES, ids=ids(ACL_CASES))
def test_acl_commands(reference, target, case, chunking):
    check(reference, target, case, chunking)


def _seen(stats: dict, name: str) -> bool:
    s = stats.get(name, {})
    return bool(s.get("calls") or s.get("rejected_calls") or s.get("failed_calls"))


@pytest.mark.parametrize("user", DIRECTORY_WRITERS)
@pytest.mark.parametrize("name,command,stat", DIRECTORY_WRITES, ids=[w[0] for w in DIRECTORY_WRITES])
def test_user_directory_is_the_proxys(reference, target, redis_factory, name, command, stat, user):
    case = Case(f"{name} as {user}", user, [command, ("ECHO", "after")])
    # Whether Redis would let the user run it, asked without running it.
    allowed = reference.admin.execute_command("ACL", "DRYRUN", user, *command) == b"OK"
    if SELF_CHECK:
        # A throwaway copy of the reference really runs it: the check below
        # must see it there.
        copy = start_reference(redis_factory, "acl-reference-throwaway")
        target = Target(target.name, copy, copy, admin_client(copy))
    reset(target.admin)
    requirepass = target.admin.execute_command("CONFIG", "GET", "requirepass")[1]
    target.admin.execute_command("CONFIG", "RESETSTAT")
    try:
        got = send(target.endpoint, case.payload, "whole", 0, until_replies=3)
        stats = commandstats(target.admin)
    finally:
        # Undo what a command that got through did, for the next tests.
        target.admin.execute_command("ACL", "DELUSER", "intruder")
        if target.admin.execute_command("CONFIG", "GET", "requirepass")[1] != requirepass:
            target.admin.execute_command("CONFIG", "SET", "requirepass", requirepass)
    if SELF_CHECK:
        assert _seen(stats, stat), f"INFO commandstats shows no {stat} on a server that ran it: {stats}"
        return
    if allowed:
        # Redis would run it; the proxy refuses with an error of its own
        # and the connection goes on.
        replies = reply_spans(got.data)
        assert len(replies) == 3, got
        assert replies[0] == b"+OK\r\n"
        assert replies[1].startswith(b"-ERR"), f"{name} as {user}: {replies[1]!r}"
        assert replies[2] == b"$5\r\nafter\r\n"
    else:
        # Redis's own denial, byte for byte (a denied command does not run,
        # so the reference can be asked).
        assert got.data == reference.answer(case)
    assert not _seen(stats, stat), f"the server saw {stat} from the client: {stats[stat]}"
    assert not got.closed
