"""Mesh identities as Redis users (issue 8): the filter on the server's side.

Envoy's listener terminates mutual TLS the way an Istio sidecar's inbound
chain does (`DownstreamTls.mutual(pki)`: a DownstreamTlsContext with
`require_client_certificate: true` and the test CA as
`validation_context.trusted_ca`), then runs the filter and `tcp_proxy` to a
redis-server 7.0 with `requirepass` (`upstream: {password}`). Clients present
workload certificates issued by the test CA with openssl (`Pki.workload`):

  cart   spiffe://cluster.local/ns/shop/sa/cart    mapped exactly       -> cart
  admin  spiffe://cluster.local/ns/ops/sa/admin    by `.../ns/ops/*`    -> ops
  other  spiffe://cluster.local/ns/shop/sa/other   unmapped
  cart2  spiffe://cluster.local/ns/shop/sa/cart2   unmapped (a near miss of the exact key)
  opsns  spiffe://cluster.local/ns/ops             unmapped (a near miss of the prefix)
  nosan  no subjectAltName at all                  unmapped

The oracle is a real redis-server whose ACL file holds the same users, each
with a password where the proxy's has `nopass` (`REFERENCE_USERS`; same
rules otherwise). A mapped connection's replies must be the bytes the
reference sends to a connection that authenticated as the mapped user with
`AUTH` first, and again after every `RESET` (the proxy returns to the mapped
user where Redis returns to `default`); those hidden `AUTH`s' `+OK`s are
dropped from the reference's answer. An unmapped connection is compared with
a reference connection that never authenticated. Replies that differ between
two Redis processes (HELLO's id...) are normalised on both sides
(harness/acl.py). Every case also spot-checks the reference against the
texts the issue names (NOPERM, NOAUTH, WRONGPASS, `$4\\r\\ncart\\r\\n`), so
the oracle itself is checked.

Tests:
  test_tls_listener_*          the rig: client certificates are required and
                               validated (none, or one from an untrusted CA,
                               gets no reply); a workload certificate gets
                               through to the filter; with a configuration
                               without identities a certificate changes
                               nothing (NOAUTH, then AUTH works). These pass
                               with or without the feature.
  test_identity_cases          CASES: mapped users' verdicts (keys, commands,
                               arity), ACL WHOAMI, AUTH switching and failing,
                               RESET (RESP3, subscribed), unmapped and no-SAN
                               certificates, the wildcard and its near misses;
                               whole and in random chunks, byte for byte
  test_redis_cli_*/test_redis_py_*
                               real clients with their certificates and no AUTH
                               (`redis-cli --tls --cert --key --cacert`,
                               redis-py `ssl_certfile/ssl_keyfile/ssl_ca_certs`),
                               compared with the same client against the
                               reference with `--user/--pass` (`username/password`)
  test_require_identity        `"require_identity": true`: mapped connections
                               as before; unmapped ones get NOAUTH and their
                               AUTH / HELLO AUTH is refused with an `-ERR`
  test_no_other_pattern_syntax `?`, `[...]` are literal; a trailing `*` after
                               `cart` also maps `cart2`
  test_bad_identities_refused  unknown user, empty identity, `*` not at the end
                               (middle, start, `**`): one line
                               "envoy-redis-auth: invalid configuration: downstream.identities..."
  test_reference_answers       the oracle alone (no Envoy): one reply per
                               command, the issue's texts, deterministic
  test_log_lines_and_counters_name_the_peer
                               denial lines end with `(peer <URI SAN>)`;
                               `identity_mapped` counts mapped connections only

The feature reads the peer certificate after the TLS handshake: a filter that
asks for `connection.uri_san_peer_certificate` in `on_new_connection` gets
nothing behind a TLS listener (the handshake has not run yet), and every
mapped case here fails with `-NOAUTH`.

Run this file alone (from the repository root, after the wasm build):

    E2E_REQUIRE_WASM=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python3 -m pytest -p pytest_timeout e2e/test_filter_identities.py -q
"""

from __future__ import annotations

import json
import re
import ssl
import zlib
from dataclasses import dataclass, field

import pytest
import redis

from harness import raw_exchange, redis_cli, redis_py
from harness.acl import exchange, first_difference, normalise, reply_spans, reset
from harness.certs import WORKLOADS
from harness.envoy import DownstreamTls
from harness.resp import command as C

# ------------------------------------------------------------------ users

SERVER_PASSWORD = "IdentityServerPass"

# (proxy line, reference line, password the reference's user logs in with)
USERS = {
    "default": ("user default on >defaultpw ~* &* +@all", "user default on >defaultpw ~* &* +@all", "defaultpw"),
    # +acl|whoami: the mapped user may ask who it is (alice may not: NOPERM).
    "cart": ("user cart on nopass ~cart:* +get +set +acl|whoami",
             "user cart on >cartpw ~cart:* +get +set +acl|whoami", "cartpw"),
    "ops": ("user ops on nopass ~* &* +@all", "user ops on >opspw ~* &* +@all", "opspw"),
    "alice": ("user alice on >alicepw ~a:* +get", "user alice on >alicepw ~a:* +get", "alicepw"),
}  # fmt: skip
PROXY_USERS = [u[0] for u in USERS.values()]
REFERENCE_USERS = [u[1] for u in USERS.values()]
PASSWORD = {name: u[2] for name, u in USERS.items()}

CART_ID = WORKLOADS["cart"]
OPS_PREFIX = "spiffe://cluster.local/ns/ops/*"
IDENTITIES = {CART_ID: "cart", OPS_PREFIX: "ops"}

# What each workload's connection starts as under IDENTITIES (None: unauthenticated).
MAPPED = {"cart": "cart", "admin": "ops", "other": None, "cart2": None, "opsns": None, "nosan": None}


def plugin_config(identities=IDENTITIES, require_identity: bool | None = False, users=PROXY_USERS) -> dict:
    down: dict = {"users": list(users), "max_auth_failures": 0}
    if identities is not None:
        down["identities"] = identities
    if require_identity is not None:
        down["require_identity"] = require_identity
    return {"downstream": down, "upstream": {"password": SERVER_PASSWORD}}


# Texts of Redis 7.0 the issue names (spot checks of the reference).
NOPERM_KEY = b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


def noperm_cmd(name: str) -> bytes:
    return f"-NOPERM this user has no permissions to run the '{name}' command\r\n".encode()


def bulk(s: str) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(s), s.encode())


# ------------------------------------------------------------------ cases


@dataclass
class Case:
    """One TLS connection with `workload`'s certificate, running `commands`
    with no AUTH first. `setup` runs on both servers first. `expect`:
    {index: reply bytes} the reference must give (checks the oracle)."""

    name: str
    workload: str
    commands: list
    setup: list = field(default_factory=list)
    expect: dict = field(default_factory=dict)

    @property
    def payload(self) -> bytes:
        return b"".join(C(*c) for c in self.commands)


def reference_commands(case: Case, mapped: str | None) -> tuple[list, list[bool]]:
    """What the reference connection sends for `case` when the proxy's
    connection starts as `mapped`: an AUTH as that user first and after each
    RESET. Returns the commands and, for each, whether its reply is the case's."""
    out, keep = [], []

    def login():
        out.append(("AUTH", mapped, PASSWORD[mapped]))
        keep.append(False)

    if mapped:
        login()
    for c in case.commands:
        out.append(c)
        keep.append(True)
        if mapped and str(c[0]).upper() == "RESET":
            login()
    return out, keep


CART_VERDICTS = [
    ("GET", "cart:1"), ("SET", "cart:1", "v"), ("GET", "cart:1"), ("GET", "a:1"), ("SET", "other:1", "v"),
    ("DEL", "cart:1"), ("PING",), ("MGET", "cart:1"), ("ACL", "WHOAMI"), ("CONFIG", "GET", "maxmemory"),
    ("NOSUCH", "x"), ("GET",), ("SET", "cart:1", "v", "GET"),
]  # fmt: skip
OPS_VERDICTS = [
    ("SET", "x:1", "v"), ("GET", "x:1"), ("DEL", "x:1"), ("PING",), ("ACL", "WHOAMI"), ("CONFIG", "GET", "maxmemory"),
    ("ACL", "DRYRUN", "cart", "GET", "a:1"), ("ACL", "DRYRUN", "cart", "GET", "cart:1"), ("ACL", "USERS"),
    ("PUBLISH", "c:1", "m"),
]  # fmt: skip
UNMAPPED = [
    ("GET", "cart:1"), ("PING",), ("ACL", "WHOAMI"), ("AUTH", "alice", "wrong"), ("GET", "a:1"),
    ("AUTH", "alice", "alicepw"), ("GET", "a:1"), ("GET", "cart:1"), ("ACL", "WHOAMI"), ("RESET",), ("GET", "a:1"),
    ("AUTH", "defaultpw"), ("ACL", "WHOAMI"),
]  # fmt: skip
UNMAPPED_EXPECT = {0: NOAUTH, 1: NOAUTH, 2: NOAUTH, 3: WRONGPASS, 4: NOAUTH, 5: b"+OK\r\n", 6: b"$1\r\na\r\n",
                   7: NOPERM_KEY, 8: noperm_cmd("acl|whoami"), 9: b"+RESET\r\n", 10: NOAUTH, 11: b"+OK\r\n",
                   12: bulk("default")}  # fmt: skip
SEED = [("SET", "cart:1", "seed"), ("SET", "a:1", "a")]

CASES = [
    Case("cart verdicts", "cart", CART_VERDICTS, SEED, {
        0: bulk("seed"), 1: b"+OK\r\n", 2: bulk("v"), 3: NOPERM_KEY, 4: NOPERM_KEY, 5: noperm_cmd("del"),
        6: noperm_cmd("ping"), 7: noperm_cmd("mget"), 8: bulk("cart"), 9: noperm_cmd("config|get")}),
    Case("ops verdicts (wildcard)", "admin", OPS_VERDICTS, SEED, {4: bulk("ops"), 2: b":1\r\n"}),
    Case("whoami first", "cart", [("ACL", "WHOAMI"), ("ACL", "WHOAMI")], [], {0: b"$4\r\ncart\r\n"}),
    Case("auth switches user", "cart", [
        ("ACL", "WHOAMI"), ("AUTH", "alice", "alicepw"), ("GET", "a:1"), ("GET", "cart:1"), ("ACL", "WHOAMI"),
        ("AUTH", "alice", "wrong"), ("GET", "a:1"), ("AUTH", "ops", "opspw"), ("ACL", "WHOAMI"), ("DEL", "a:1"),
        ("RESET",), ("ACL", "WHOAMI"), ("GET", "a:1"), ("GET", "cart:1")], SEED, {
        0: bulk("cart"), 1: b"+OK\r\n", 2: bulk("a"), 3: NOPERM_KEY, 4: noperm_cmd("acl|whoami"), 5: WRONGPASS,
        6: bulk("a"), 8: bulk("ops"), 10: b"+RESET\r\n", 11: bulk("cart"), 12: NOPERM_KEY}),
    Case("failed auth keeps the mapped user", "cart", [
        ("AUTH", "alice", "wrong"), ("GET", "cart:1"), ("GET", "a:1"), ("AUTH", "nobody", "x"), ("ACL", "WHOAMI"),
        ("AUTH", "wrong-default-pw"), ("ACL", "WHOAMI"), ("HELLO", "3", "AUTH", "alice", "wrong"), ("GET", "cart:1")],
        SEED, {0: WRONGPASS, 1: bulk("seed"), 2: NOPERM_KEY, 3: WRONGPASS, 4: bulk("cart"), 5: WRONGPASS,
               6: bulk("cart")}),
    Case("reset returns to the mapped user", "cart", [
        ("SET", "cart:1", "v"), ("RESET",), ("GET", "cart:1"), ("ACL", "WHOAMI"), ("GET", "a:1"), ("RESET",),
        ("RESET",), ("ACL", "WHOAMI")], [], {1: b"+RESET\r\n", 2: bulk("v"), 3: bulk("cart"), 4: NOPERM_KEY,
                                             7: bulk("cart")}),
    Case("reset leaves resp3", "cart", [
        ("HELLO", "3"), ("GET", "cart:1"), ("GET", "a:1"), ("RESET",), ("GET", "cart:1"), ("ACL", "WHOAMI")], SEED,
        {3: b"+RESET\r\n", 5: bulk("cart")}),
    Case("reset leaves subscribed mode", "admin", [
        ("SUBSCRIBE", "c:1"), ("PING",), ("GET", "x"), ("RESET",), ("ACL", "WHOAMI"), ("GET", "cart:1")], SEED,
        {3: b"+RESET\r\n", 4: bulk("ops"), 5: bulk("seed")}),
    Case("reset after auth as another user", "admin", [
        ("AUTH", "alice", "alicepw"), ("SET", "x:1", "v"), ("RESET",), ("SET", "x:1", "v"), ("ACL", "WHOAMI")], [],
        {1: noperm_cmd("set"), 2: b"+RESET\r\n", 3: b"+OK\r\n", 4: bulk("ops")}),
    Case("hello 3 auth as another user", "cart", [
        ("HELLO", "3", "AUTH", "alice", "alicepw"), ("GET", "a:1"), ("ACL", "WHOAMI"), ("RESET",), ("ACL", "WHOAMI")],
        SEED, {1: bulk("a"), 2: noperm_cmd("acl|whoami"), 3: b"+RESET\r\n", 4: bulk("cart")}),
] + [
    Case(f"unmapped ({w})", w, UNMAPPED, SEED, UNMAPPED_EXPECT) for w in ("other", "cart2", "opsns", "nosan")
]  # fmt: skip


# ------------------------------------------------------------------ rig


def workload_tls(pki, workload: str) -> ssl.SSLContext:
    w = pki.workload(workload)
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(w.cert), str(w.key))
    return ctx


def cli_tls(pki, workload: str) -> dict:
    w = pki.workload(workload)
    return {"ca": str(pki.ca_cert), "cert": str(w.cert), "key": str(w.key), "servername": pki.server_name}


@pytest.fixture(scope="module")
def upstream(session_redis_factory):
    return session_redis_factory("password", password=SERVER_PASSWORD, name="identities-upstream")


@pytest.fixture(scope="module")
def reference(session_redis_factory):
    return session_redis_factory("acl", acl_users=REFERENCE_USERS, username="default", password="defaultpw",
                                 name="identities-reference")  # fmt: skip


class Envoys:
    """Envoys with the mTLS listener, one per filter configuration, started
    on first use and kept for the module."""

    def __init__(self, factory, upstream, pki):
        self.factory, self.upstream, self.pki = factory, upstream, pki
        self.started: dict[str, object] = {}

    def get(self, name: str, config: dict, **kw):
        if name not in self.started:
            envoy = self.factory(self.upstream, plugin_config=config, downstream_tls=DownstreamTls.mutual(self.pki),
                                 name=f"identities-{name}", start=False, **kw)  # fmt: skip
            started = envoy.try_start()
            if not started.accepted:
                lines = "\n".join(started.error_lines()[-10:]) or started.log[-3000:]
                pytest.fail(f"Envoy refused the filter configuration {name!r} ({started.reason}):\n{lines}",
                            pytrace=False)  # fmt: skip
            self.started[name] = envoy
        return self.started[name]


@pytest.fixture(scope="module")
def envoys(session_envoy_factory, upstream, pki) -> Envoys:
    return Envoys(session_envoy_factory, upstream, pki)


def admin(server):
    return server.client(decode_responses=False)


def tls_send(envoy, pki, workload: str, payload: bytes, n: int, chunking="whole", seed=0, **kw):
    return raw_exchange(envoy, payload, chunking, seed=seed, until_replies=n, idle_timeout=2.0,
                        ssl_context=workload_tls(pki, workload), server_hostname=pki.server_name, **kw)  # fmt: skip


def reference_answer(reference, case: Case, mapped: str | None) -> bytes:
    """The reference's replies to `case`'s commands (hidden AUTHs dropped),
    spot-checked against `case.expect`."""
    cmds, keep = reference_commands(case, mapped)
    reset(admin(reference), case.setup)
    payload = b"".join(C(*c) for c in cmds)
    r = exchange(reference, payload, until_replies=len(cmds), idle_timeout=2.0)
    spans = reply_spans(r.data)
    assert len(spans) == len(cmds), f"{case.name}: the reference sent {len(spans)} replies to {len(cmds)}: {r!r}"
    for c, k, s in zip(cmds, keep, spans):
        if not k:
            assert s == b"+OK\r\n", f"{case.name}: the reference refused the hidden {c[:2]}: {s!r}"
    mine = [s for k, s in zip(keep, spans) if k]
    for i, want in case.expect.items():
        assert mine[i] == want, f"{case.name}: the reference answered {case.commands[i]} with {mine[i]!r}, not {want!r}"
    return b"".join(mine)


def compare(envoy, reference, pki, case: Case, chunking: str, mapped: str | None, label: str = "") -> None:
    expected = reference_answer(reference, case, mapped)
    with upstream_admin(envoy) as up:
        reset(up, case.setup)
    seed = zlib.crc32(case.name.encode())
    got = tls_send(envoy, pki, case.workload, case.payload, len(case.commands), chunking, seed)
    want, have = normalise(expected, case.commands), normalise(got.data, case.commands)
    where = f"{case.name} ({chunking}{label}), certificate {case.workload} ({WORKLOADS[case.workload]})"
    assert have == want, f"{where}: {first_difference(want, have, case.commands)}"
    assert not got.closed, f"{where}: connection closed"


class upstream_admin:
    """An admin connection straight to the Redis behind `envoy`."""

    def __init__(self, envoy):
        host, port = envoy.opts.upstream
        self.c = redis.Redis(host=host, port=port, password=SERVER_PASSWORD, decode_responses=False)

    def __enter__(self):
        return self.c

    def __exit__(self, *exc):
        self.c.close()


# ------------------------------------------------------------------ the rig itself


def test_tls_listener_requires_a_trusted_client_certificate(envoy_factory, upstream, pki):
    """Through plain tcp_proxy (no filter): no certificate, or one from an
    untrusted CA, gets no reply; a workload certificate does, and Envoy sees
    its URI SAN (tcp_proxy's access log, `%DOWNSTREAM_PEER_URI_SAN%`: what the
    filter reads as `connection.uri_san_peer_certificate`)."""
    access = pki.dir.parent / f"uri-san-{id(envoy_factory)}.log"
    log_cfg = {"access_log": [{
        "name": "envoy.access_loggers.file",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                         "path": str(access), "log_format": {"text_format_source": {"inline_string": "[%DOWNSTREAM_PEER_URI_SAN%]\n"}}}}]}
    envoy = envoy_factory(upstream, downstream_tls=DownstreamTls.mutual(pki), tcp_proxy=log_cfg)
    ping = C("AUTH", SERVER_PASSWORD) + C("PING")
    for w in ("cart", "admin", "other", "nosan"):
        r = tls_send(envoy, pki, w, ping, 2)
        assert r.data == b"+OK\r\n+PONG\r\n", (w, r)
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    for what, c in [("no certificate", ctx), ("untrusted CA", None)]:
        if c is None:
            c = ssl.create_default_context(cafile=str(pki.ca_cert))
            c.load_cert_chain(str(pki.rogue_client_cert), str(pki.rogue_client_key))
        try:
            r = raw_exchange(envoy, ping, until_replies=2, idle_timeout=2.0, ssl_context=c,
                             server_hostname=pki.server_name)  # fmt: skip
        except (ssl.SSLError, OSError):
            continue  # the handshake failed (TLS 1.2, or 1.3 seen early)
        assert r.data == b"" and (r.closed or r.send_error), f"{what}: {r!r}"
    plain = raw_exchange(envoy, ping, until_replies=2, idle_timeout=2.0)
    assert b"+PONG" not in plain.data
    envoy.stop()  # flushes the access log (else every 10 s)
    lines = access.read_text().splitlines()
    assert sorted(l for l in lines if "spiffe" in l) == sorted(f"[{WORKLOADS[w]}]" for w in ("cart", "admin", "other"))
    assert "[-]" in lines, lines  # nosan


def test_tls_listener_runs_the_filter_without_identities(envoys, reference, pki):
    """The filter behind the mTLS listener, with no `identities`: every
    certificate is an unauthenticated client, as today (works before and
    after the feature)."""
    envoy = envoys.get("no-identities", plugin_config(identities=None, require_identity=None))
    for workload in ("cart", "admin", "nosan"):
        case = Case(f"no identities ({workload})", workload, UNMAPPED, SEED, UNMAPPED_EXPECT)
        compare(envoy, reference, pki, case, "whole", None)
    c = redis_py(envoy, tls=cli_tls(pki, "cart"), username="alice", password="alicepw")
    assert c.get("a:1") in ("a", None)
    with pytest.raises(redis.exceptions.NoPermissionError):
        c.get("cart:1")


def test_reference_users_match_the_proxys():
    """The reference's users are the proxy's with a password for nopass."""
    for name, (proxy, ref, pw) in USERS.items():
        assert ref == proxy.replace("nopass", f">{pw}"), name


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reference_answers(reference, case):
    """The oracle alone (no Envoy, no wasm): every case's reference answer
    has one reply per command and the replies the issue names."""
    data = reference_answer(reference, case, MAPPED[case.workload])
    assert len(reply_spans(data)) == len(case.commands)
    again = reference_answer(reference, case, MAPPED[case.workload])
    assert normalise(data, case.commands) == normalise(again, case.commands), "the reference is not deterministic"


# ------------------------------------------------------------------ identities


@pytest.mark.parametrize("chunking", ["whole", "random"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_identity_cases(envoys, reference, pki, case, chunking):
    envoy = envoys.get("identities", plugin_config())
    compare(envoy, reference, pki, case, chunking, MAPPED[case.workload])


CLI_LINES = ["GET cart:1", "SET cart:1 v", "GET cart:1", "GET a:1", "DEL cart:1", "ACL WHOAMI", "PING"]


@pytest.mark.parametrize("workload", ["cart", "admin", "other", "nosan"])
def test_redis_cli_with_a_certificate(envoys, reference, pki, workload):
    """`redis-cli --tls --cert --key --cacert`, no AUTH, commands on stdin;
    the reference: the same commands with `--user <mapped> --pass <pw>`."""
    envoy = envoys.get("identities", plugin_config())
    mapped = MAPPED[workload]
    stdin = "\n".join(CLI_LINES) + "\n"
    with upstream_admin(envoy) as up:
        reset(up, SEED)
    got = redis_cli(envoy, tls=cli_tls(pki, workload), stdin=stdin)
    reset(admin(reference), SEED)
    creds = {"user": mapped, "pass_": PASSWORD[mapped]} if mapped else {}
    want = redis_cli(reference, stdin=stdin, **creds)
    assert want.returncode == 0 and got.returncode == 0, (want, got)
    assert got.stdout == want.stdout, f"{workload}: redis-cli printed\n{got.stdout}\nRedis:\n{want.stdout}"
    if mapped:
        assert mapped in want.lines, want.stdout
    if mapped is None:
        assert want.lines[0].startswith("NOAUTH"), want.stdout


def _outcome(f):
    try:
        return ("ok", f())
    except Exception as e:  # the same error class and text as Redis's
        return ("error", type(e).__name__, str(e))


@pytest.mark.parametrize("workload", ["cart", "admin", "other", "nosan"])
def test_redis_py_with_a_certificate(envoys, reference, pki, workload):
    """redis-py with `ssl_certfile/ssl_keyfile/ssl_ca_certs` and no password
    against redis-py logged in as the mapped user on the reference (unmapped:
    not logged in, until the AUTH as alice). redis-py drops a connection after
    an authentication error and opens another: with the same certificate,
    through the proxy; with the same credentials, on the reference."""
    envoy = envoys.get("identities", plugin_config())
    mapped = MAPPED[workload]
    steps = [
        lambda c: c.get("cart:1"), lambda c: c.set("cart:1", "v"), lambda c: c.get("cart:1"),
        lambda c: c.get("a:1"), lambda c: c.delete("cart:1"), lambda c: c.acl_whoami(), lambda c: c.ping(),
        lambda c: c.execute_command("AUTH", "alice", "wrong"), lambda c: c.acl_whoami(),
        lambda c: c.execute_command("AUTH", "alice", "alicepw"), lambda c: c.get("a:1"), lambda c: c.get("cart:1"),
    ]  # fmt: skip
    with upstream_admin(envoy) as up:
        reset(up, SEED)
    c = redis_py(envoy, tls=cli_tls(pki, workload))
    got = [_outcome(lambda: s(c)) for s in steps]
    reset(admin(reference), SEED)
    r = redis_py(reference, username=mapped, password=PASSWORD[mapped] if mapped else None)
    want = [_outcome(lambda: s(r)) for s in steps]
    assert got == want
    if mapped:
        assert want[5] == ("ok", mapped)
    else:
        assert want[0] == ("error", "AuthenticationError", "Authentication required.") and want[10] == ("ok", "a"), want


# ------------------------------------------------------------------ require_identity


def test_require_identity(envoys, reference, pki):
    envoy = envoys.get("require-identity", plugin_config(require_identity=True))
    for case in CASES:
        if MAPPED[case.workload]:
            compare(envoy, reference, pki, case, "whole", MAPPED[case.workload], ", require_identity")
    cmds = [("GET", "a:1"), ("AUTH", "alice", "alicepw"), ("GET", "a:1"), ("AUTH", "defaultpw"),
            ("HELLO", "3", "AUTH", "alice", "alicepw"), ("ACL", "WHOAMI"), ("PING",)]  # fmt: skip
    for workload in ("other", "nosan", "opsns"):
        r = tls_send(envoy, pki, workload, b"".join(C(*c) for c in cmds), len(cmds))
        spans = reply_spans(r.data)
        assert len(spans) == len(cmds), f"{workload}: {r!r}"
        for i in (0, 2, 5, 6):
            assert spans[i] == NOAUTH, f"{workload}: {cmds[i]} -> {spans[i]!r}"
        for i in (1, 3, 4):
            assert spans[i].startswith(b"-ERR"), f"{workload}: {cmds[i]} must be refused, got {spans[i]!r}"
        assert not r.closed


# ------------------------------------------------------------------ patterns


def test_no_other_pattern_syntax(envoys, reference, pki):
    """Only a trailing `*` is a wildcard: `?` and `[...]` are literal (they
    never map `.../sa/other`), and `.../sa/cart*` maps `cart2` too."""
    identities = {
        "spiffe://cluster.local/ns/shop/sa/oth?r": "ops",
        "spiffe://cluster.local/ns/shop/sa/[o]ther": "ops",
        "spiffe://cluster.local/ns/shop/sa/othe.": "ops",
        "spiffe://cluster.local/ns/shop/sa/cart*": "cart",
        "spiffe://cluster.local/ns/ops/sa/admin": "alice",
    }
    envoy = envoys.get("patterns", plugin_config(identities=identities))
    mapped = {"other": None, "cart": "cart", "cart2": "cart", "admin": "alice", "opsns": None, "nosan": None}
    for workload, user in mapped.items():
        if user is None:
            case = Case(f"patterns: unmapped ({workload})", workload, UNMAPPED, SEED, UNMAPPED_EXPECT)
        else:
            case = Case(f"patterns: {workload} as {user}", workload, [
                ("ACL", "WHOAMI"), ("GET", "cart:1"), ("GET", "a:1"), ("RESET",), ("GET", "a:1")], SEED)  # fmt: skip
        compare(envoy, reference, pki, case, "whole", user, ", pattern identities")


# ------------------------------------------------------------------ bad configuration

BAD_IDENTITIES = [
    ("unknown user", {CART_ID: "nobody"}),
    ("empty user", {CART_ID: ""}),
    ("empty identity", {"": "cart"}),
    ("wildcard in the middle", {"spiffe://cluster.local/ns/*/sa/x": "cart"}),
    ("wildcard at the start", {"*/sa/cart": "cart"}),
    ("two wildcards at the end", {"spiffe://cluster.local/ns/ops/**": "ops"}),
    ("a good and a bad one", {CART_ID: "cart", "spiffe://cluster.local/ns/*": "nobody"}),
]


@pytest.mark.parametrize("name,identities", BAD_IDENTITIES, ids=[b[0] for b in BAD_IDENTITIES])
def test_bad_identities_refused(upstream, envoy_rejects, name, identities):
    log = envoy_rejects(upstream, plugin_config=json.dumps(plugin_config(identities=identities)))
    lines = [l for l in log.splitlines() if "envoy-redis-auth: invalid configuration" in l]
    assert len(lines) == 1, log[-3000:]
    assert re.search(r"envoy-redis-auth: invalid configuration: downstream\.identities", lines[0]), lines[0]
    assert SERVER_PASSWORD not in log and "alicepw" not in log


# ------------------------------------------------------------------ logs and counters


def test_log_lines_and_counters_name_the_peer(envoy_factory, upstream, pki):
    """Denials on a mapped connection name the user and the peer identity;
    `identity_mapped` counts the connections that started as a mapped user
    (README, "Counters"), not the unmapped ones."""
    envoy = envoy_factory(upstream, plugin_config=plugin_config(), downstream_tls=DownstreamTls.mutual(pki))
    cmds = [("GET", "a:1"), ("DEL", "cart:1")]
    r = tls_send(envoy, pki, "cart", b"".join(C(*c) for c in cmds), 2)
    assert reply_spans(r.data) == [NOPERM_KEY, noperm_cmd("del")], r
    r = tls_send(envoy, pki, "other", C("AUTH", "alice", "wrong"), 1)
    assert r.data == WRONGPASS, r
    envoy.wait_stat("wasmcustom.redis_auth.connections", 2)
    envoy.wait_stat("wasmcustom.redis_auth.denied_key", 1)
    assert envoy.counter("wasmcustom.redis_auth.identity_mapped") == 1, envoy.wasm_stats()
    peer = re.escape(f"(peer {CART_ID})")
    envoy.wait_log(r"denied \(key\) user 'cart' command 'get' from \S+ " + peer)
    envoy.wait_log(r"denied \(command\) user 'cart' command 'del' from \S+ " + peer)
    envoy.wait_log(r"denied \(auth\) user 'alice' from \S+ " + re.escape(f"(peer {WORKLOADS['other']})"))
    r = tls_send(envoy, pki, "admin", C("ACL", "WHOAMI"), 1)
    assert r.data == bulk("ops"), r
    envoy.wait_stat("wasmcustom.redis_auth.identity_mapped", 2)
