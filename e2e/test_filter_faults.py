"""Faults, through real Envoy with the filter in front of a real redis-server.

Every scenario bounds how long a client may wait: a client must learn of a
failure (an error reply, or its connection closed) within `LEARN` seconds
of the fault, and the next connection must work afterwards (after a
restart where one is needed). Scenarios: the server killed (SIGKILL) in
the middle of a pipeline, a large bulk reply, a large request, a MULTI and
a subscription (RESP2, RESP3); a stalled server (`DEBUG SLEEP`,
`CLIENT PAUSE ALL|WRITE`); a server that hangs up right after the proxy's
`AUTH` (`harness.cutter.CuttingHop`, and `CLIENT KILL USER`); wrong or
disabled server credentials; TLS handshake failures; a client that closes
with replies in flight or never reads; and a filter that cannot start (a
corrupt or missing module, a configuration it refuses), at start-up and as
a live (ECDS) update. A VM panic cannot be caused on purpose: not tested.

What a client sees when the filter cannot start (Envoy 1.40, observed by
`test_static_filter_that_cannot_start` and
`test_ecds_filter_that_cannot_start`):

| the filter cannot start because | static listener, at start-up | ECDS, first config | ECDS, live update (a good config is serving) |
| --- | --- | --- | --- |
| the module is corrupt (truncated) | Envoy exits (status 1, `Unable to create Wasm plugin envoy_redis_auth`): nothing listens, connections are refused | Envoy starts; the update is rejected (`update_rejected`); every connection is accepted and closed at once (FIN or RST), no byte sent | the update is rejected; open connections and new ones keep the old configuration |
| the module file is missing | Envoy exits (status 1, `Invalid path: …`) | same as above | same as above |
| `on_configure` refuses the configuration (`{"env": "MISSING"}`) | Envoy exits (status 1; our log line `invalid configuration: upstream.password: environment variable MISSING is not set`) | same as above | same as above |

`FAIL_CLOSED` and `FAIL_RELOAD` behave the same in every cell: Envoy treats
a module that fails to load or configure as "fail closed" whatever the
policy ("Plugin configured to fail closed failed to load"). The policies
differ only when a running VM fails (a panic). A good configuration
published after a rejected one is applied normally.

Other behaviour, asserted below:
- SIGKILL: a client with replies in flight gets its connection reset or
  closed within milliseconds; bytes already on the way (part of a bulk)
  arrive first; a client still sending gets a send error. When the server's
  side ends with FIN, the filter closes the client's connection once the
  last bytes are out (without the filter, `tcp_proxy` would only half-close
  it and keep it until the client closes). While the server is down, new connections are closed at once;
  after a restart on the same port, new connections work.
- Stalls: local replies ride on markers, so during a stall they wait with
  the server's replies and all arrive, in order, when the server resumes;
  a `QUIT` before `AUTH` is answered and closed then. A 32 MiB value sent
  to a stalled server waits in Envoy and the client's socket, not in the
  filter.
- The server hangs up right after the proxy's `AUTH` (before, in the middle
  of or after its reply): the client's connection is closed at once,
  without a byte (the `AUTH` reply is the proxy's).
- The server's credentials rejected: the connection stays open and every
  reply is `-ERR envoy-redis-auth: the Redis server rejected the proxy's
  credentials: WRONGPASS …`. A pipeline whose replies pile up is cut by
  Redis itself (it closes unauthenticated connections whose unsent replies
  pass its limit, "closed for overcoming of output buffer limits").
- The upstream ACL user disabled while connected (`ACL SETUSER … off`):
  Redis 7.0 keeps the connections already logged in, so a connected client
  keeps working; a new connection gets the rejected-credentials error on
  every reply. `ACL DELUSER`: Redis closes the connections of the deleted
  user, so a connected client sees its connection closed at once; a new
  connection gets the rejected-credentials error.
- A TLS handshake failure to the server (untrusted CA, wrong SAN): the
  client's connection is closed (reset) at once, with no byte sent.
- Memory: while 64 MiB of replies wait for a client that never reads, the
  sessions hold at most `HELD_LIMIT` bytes and the VMs at most
  `VM_MEMORY_LIMIT`; the replies wait in Redis. A connection back to idle
  after a burst must not keep burst-sized buffers, and
  `vm_memory_bytes` must count each VM once across live updates.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from harness import ACL_PASSWORD, ACL_USER, UpstreamTls, redis_py, resp, wait_until
from harness.cutter import CuttingHop
from harness.ecds import EcdsEnvoy
from harness.resp import Push, command as C

CLIENT_PASSWORD = "faults-client-pw"
ADMIN_USER, ADMIN_PASSWORD = "admin", "AdminPass"
USERS = (
    "user default off",
    f"user {ACL_USER} on >{ACL_PASSWORD} ~* &* +@all",
    f"user {ADMIN_USER} on >{ADMIN_PASSWORD} ~* &* +@all",
)
CONFIG = {
    "downstream": {"password": CLIENT_PASSWORD},
    "upstream": {"username": ACL_USER, "password": {"env": "REDIS_PASSWORD"}},
}
REJECTED = "ERR envoy-redis-auth: the Redis server rejected the proxy's credentials: "
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."

# How long a client may wait to learn of a failure, in seconds.
LEARN = 3.0
# How long the stalls last, in seconds.
STALL = 2.0

MiB = 1 << 20
ACTIVE = "wasmcustom.redis_auth.active_connections"
HELD = "wasmcustom.redis_auth.held_bytes"
VM_MEMORY = "wasmcustom.redis_auth.vm_memory_bytes"


# ------------------------------------------------------------------ helpers


class Conn:
    """A raw client connection where every wait has a deadline."""

    def __init__(self, endpoint, *, rcvbuf: int | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(LEARN)
        self.sock.connect((endpoint.host, endpoint.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.values: list = []

    def send(self, *cmds) -> None:
        self.send_raw(b"".join(C(*c) for c in cmds))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self, deadline: float, what: str) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {what} in time; so far {self.values!r} + {bytes(self.buf[:200])!r}")
        self.sock.settimeout(left)
        try:
            return self.sock.recv(MiB)
        except socket.timeout:
            raise AssertionError(f"no {what} in time; so far {self.values!r} + {bytes(self.buf[:200])!r}") from None

    def replies(self, n: int, within: float = LEARN) -> list:
        """The next `n` replies, which must all arrive within `within` s."""
        deadline = time.monotonic() + within
        while len(self.values) < n:
            data = self._recv(deadline, f"{n} replies")
            if not data:
                raise AssertionError(f"closed after {self.values!r} + {bytes(self.buf[:200])!r}; wanted {n} replies")
            self.buf += data
            values, rest = resp.split_replies(bytes(self.buf))
            self.values += values
            self.buf = bytearray(rest)
        out, self.values = self.values[:n], self.values[n:]
        return out

    def closed(self, within: float = LEARN) -> tuple[bytes, str]:
        """Reads until the peer closes, which must happen within `within`
        s; returns what arrived meanwhile and "eof" or "reset"."""
        deadline = time.monotonic() + within
        data = bytearray(self.buf)
        self.buf.clear()
        while True:
            try:
                chunk = self._recv(deadline, "close")
            except ConnectionResetError:
                return bytes(data), "reset"
            if not chunk:
                return bytes(data), "eof"
            data += chunk

    def send_in_background(self, data: bytes, timeout: float = 3 * LEARN) -> threading.Thread:
        """Sends `data` from a thread, on a duplicate of the socket with its
        own timeout; an error (the peer went away mid-send) ends it."""
        dup = self.sock.dup()
        dup.settimeout(timeout)

        def run() -> None:
            try:
                dup.sendall(data)
            except OSError:
                pass
            finally:
                dup.close()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def reset(self) -> None:
        """Closes with RST (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()


def admin(server, **kw):
    return redis_py(server, username=ADMIN_USER, password=ADMIN_PASSWORD, decode_responses=False, **kw)


def works(envoy, key: str = "after") -> None:
    """A new connection logs in and stores and reads a key, in time."""
    c = redis_py(envoy, password=CLIENT_PASSWORD, timeout=LEARN)
    try:
        assert c.set(key, "1") and c.get(key) == "1"
    finally:
        c.close()


def gauges(envoy) -> tuple[int, int, int]:
    st = envoy.wasm_stats()
    return st.get(ACTIVE, 0), st.get(HELD, 0), st.get(VM_MEMORY, 0)


def connected_clients(server) -> int:
    return int(admin(server).info("clients")["connected_clients"])


@pytest.fixture
def server(redis_factory):
    """An ACL server: the proxy logs in as appuser; admin is for the test."""
    return redis_factory("acl", acl_users=USERS)


@pytest.fixture
def proxy(server, envoy_factory):
    return envoy_factory(server, plugin_config=CONFIG, host_env={"REDIS_PASSWORD": server.password})


# ------------------------------------------------------------------ the server killed

KILLED = ["pipeline", "bulk", "request", "multi", "subscribed-resp2", "subscribed-resp3"]


@pytest.mark.parametrize("where", KILLED)
def test_server_killed_mid_stream(where, server, proxy):
    pipelined = 100_000
    c = Conn(proxy, rcvbuf=64 * 1024 if where == "bulk" else None)
    if where == "pipeline":
        c.send_in_background(C("AUTH", CLIENT_PASSWORD) + resp.commands(*[("INCR", "n")] * pipelined))
        assert c.replies(2) == ["OK", 1]  # replies are flowing
    elif where == "bulk":
        admin(server).set("big", b"x" * (32 * MiB))
        c.send(("AUTH", CLIENT_PASSWORD), ("GET", "big"))
        got = 0
        while got < 2 * MiB:  # a slow reader, well into the 32 MiB
            chunk = c.sock.recv(16 * 1024)
            assert chunk
            got += len(chunk)
            time.sleep(0.001)
    elif where == "request":
        # The client is still sending a 32 MiB value.
        c.send(("AUTH", CLIENT_PASSWORD))
        assert c.replies(1) == ["OK"]
        sent = proxy.counter("cluster.redis.upstream_cx_tx_bytes_total")
        sender = c.send_in_background(C("SET", "big", b"b" * (32 * MiB)))
        wait_until(lambda: proxy.counter("cluster.redis.upstream_cx_tx_bytes_total") > sent + 4 * MiB,
                   LEARN, "the value on its way")  # fmt: skip
    elif where == "multi":
        c.send(("AUTH", CLIENT_PASSWORD), ("MULTI",), ("SET", "k", "v"), ("INCR", "n"))
        assert c.replies(4) == ["OK", "OK", "QUEUED", "QUEUED"]
    elif where == "subscribed-resp2":
        c.send(("AUTH", CLIENT_PASSWORD), ("SUBSCRIBE", "ch"))
        assert c.replies(2) == ["OK", [b"subscribe", b"ch", 1]]
    else:
        c.send(("HELLO", "3", "AUTH", "default", CLIENT_PASSWORD), ("SUBSCRIBE", "ch"))
        hello, confirmation = c.replies(2)
        assert hello[b"proto"] == 3
        assert confirmation == Push([b"subscribe", b"ch", 1])

    server.kill()
    data, _how = c.closed(within=LEARN)
    if where == "pipeline":
        assert data.count(b"\r\n") < pipelined - 1, "every reply arrived: nothing was in flight"
    elif where == "bulk":
        assert got + len(data) < 32 * MiB, "the whole bulk arrived: nothing was in flight"
    elif where == "request":
        assert data == b""
        sender.join(LEARN)
        assert not sender.is_alive(), "the client is still sending"
    else:
        assert data == b""

    # While the server is down, new connections are closed at once.
    down = Conn(proxy)
    down.send(("AUTH", CLIENT_PASSWORD), ("PING",))
    assert down.closed()[0] == b""
    c.close()
    down.close()
    proxy.wait_stat(ACTIVE, 0, timeout=LEARN)
    proxy.wait_stat(HELD, 0, timeout=LEARN)

    server.start()
    works(proxy)
    if where == "multi":
        # The transaction died with the server; nothing of it ran.
        fresh = Conn(proxy)
        fresh.send(("AUTH", CLIENT_PASSWORD), ("EXEC",), ("GET", "k"))
        assert fresh.replies(3) == ["OK", "ERR EXEC without MULTI", None]
    assert proxy.counter("wasmcustom.redis_auth.server_protocol_error") == 0


# ------------------------------------------------------------------ a stalled server


def _stall(how: str, server) -> threading.Thread | None:
    """Makes the server stop answering for STALL seconds, from now."""
    if how.startswith("client-pause"):
        mode = how.rsplit("-", 1)[1].upper()
        assert admin(server).execute_command("CLIENT", "PAUSE", int(STALL * 1000), mode) == b"OK"
        return None
    sleeper = admin(server, timeout=STALL + LEARN)
    sleeper.ping()
    t = threading.Thread(target=sleeper.execute_command, args=("DEBUG", "SLEEP", STALL), daemon=True)
    t.start()
    time.sleep(0.1)  # the server has read it and sleeps
    return t


@pytest.mark.parametrize("how", ["debug-sleep", "client-pause-all", "client-pause-write"])
def test_stalled_server_answers_in_order_when_it_resumes(how, server, proxy):
    logged_in = Conn(proxy)
    logged_in.send(("AUTH", CLIENT_PASSWORD))
    assert logged_in.replies(1) == ["OK"]

    t0 = time.monotonic()
    sleeper = _stall(how, server)
    # Local replies (AUTH, NOAUTH) ride on markers: they wait with the rest.
    logged_in.send(("INCR", "a"), ("AUTH", "wrong"), ("GET", "a"), ("AUTH", CLIENT_PASSWORD), ("PING",))
    fresh = Conn(proxy)
    fresh.send(("GET", "b"), ("AUTH", "wrong"), ("AUTH", CLIENT_PASSWORD), ("SET", "b", "v"), ("GET", "b"))
    # Closing after a reply: QUIT before AUTH.
    quitter = Conn(proxy)
    quitter.send(("GET", "c"), ("QUIT",))
    # A client that gives up during the stall, with replies due.
    impatient = Conn(proxy)
    impatient.send(("GET", "d"), ("AUTH", CLIENT_PASSWORD), ("INCR", "d"))
    impatient.reset()

    bound = STALL + LEARN
    first = logged_in.replies(1, within=bound)
    waited = time.monotonic() - t0
    assert waited >= STALL * 0.5, f"the first reply came after {waited:.2f}s: the server did not stall"
    assert first + logged_in.replies(4, within=bound) == [1, WRONGPASS, b"1", "OK", "PONG"]
    assert fresh.replies(5, within=bound) == ["NOAUTH Authentication required.", WRONGPASS, "OK", "OK", b"v"]
    assert quitter.replies(2, within=bound) == ["NOAUTH Authentication required.", "OK"]
    assert quitter.closed()[0] == b""
    assert time.monotonic() - t0 < bound
    if sleeper is not None:
        sleeper.join(LEARN)
    for c in (logged_in, fresh, quitter):
        c.close()
    proxy.wait_stat(ACTIVE, 0, timeout=LEARN)
    proxy.wait_stat(HELD, 0, timeout=LEARN)
    works(proxy)


def test_large_value_to_a_stalled_server(server, proxy):
    # The server reads nothing for STALL seconds while a client sends it a
    # 32 MiB value: Envoy stops reading the client, and the filter, which
    # streams arguments, holds nothing of it.
    big = 32 * MiB
    c = Conn(proxy)
    c.send(("AUTH", CLIENT_PASSWORD))
    assert c.replies(1) == ["OK"]
    t0 = time.monotonic()
    sleeper = _stall("debug-sleep", server)
    sender = c.send_in_background(C("SET", "big", b"b" * big))
    samples = []
    while sender.is_alive() and time.monotonic() - t0 < STALL - 0.3:
        samples.append(gauges(proxy))
        time.sleep(0.1)
    assert sender.is_alive(), "the whole value was taken while the server slept"
    assert max(s[1] for s in samples) <= HELD_LIMIT, samples
    assert max(s[2] for s in samples) <= VM_MEMORY_LIMIT, samples
    assert c.replies(1, within=STALL + LEARN) == ["OK"]
    sender.join(LEARN)
    sleeper.join(LEARN)
    assert admin(server).strlen("big") == big
    works(proxy)


# ------------------------------------------------------------------ a server that hangs up


@pytest.mark.parametrize(
    "after, reset",
    [(5, False), (5, True), (2, False), (0, False)],
    ids=["after-auth-reply", "after-auth-reply-rst", "mid-auth-reply", "before-any-reply"],
)
def test_server_closes_right_after_the_proxys_auth(after, reset, scope, server, envoy_factory):
    # A hop between Envoy and Redis relays the first `after` bytes of the
    # server's answer (`+OK\r\n` is the reply to the proxy's AUTH), then
    # closes both sides; later connections pass untouched.
    hop = CuttingHop(server.host, server.port, after_server_bytes=after, reset=reset).start()
    scope.closers.append(hop.close)
    envoy = envoy_factory(hop, plugin_config=CONFIG, host_env={"REDIS_PASSWORD": server.password})
    c = Conn(envoy)
    c.send(("AUTH", CLIENT_PASSWORD), ("SET", "k", "v"), ("GET", "k"))
    data, _how = c.closed()
    assert data == b"", "the reply to the proxy's AUTH is the proxy's own"
    hop.wait_cut(1)
    cut = hop.connections[0]
    assert bytes(cut.to_client) == b"+OK\r\n"[:after]
    assert bytes(cut.to_server).startswith(C("AUTH", ACL_USER, ACL_PASSWORD))
    c.close()
    works(envoy)
    envoy.wait_stat(ACTIVE, 0, timeout=LEARN)


def test_server_kills_the_proxys_connection_right_after_login(server, proxy):
    c = Conn(proxy)
    c.send(("AUTH", CLIENT_PASSWORD))
    assert c.replies(1) == ["OK"]
    # The proxy's AUTH went ahead of the client's first command.
    a = admin(server)
    wait_until(lambda: f"user={ACL_USER}".encode() in a.execute_command("CLIENT", "LIST"), LEARN, "the proxy's login")
    assert a.execute_command("CLIENT", "KILL", "USER", ACL_USER) == 1
    # The client learns without sending anything.
    assert c.closed()[0] == b""
    works(proxy)


# ------------------------------------------------------------------ credentials and TLS


def test_wrong_server_credentials(server, envoy_factory):
    envoy = envoy_factory(server, plugin_config=CONFIG, host_env={"REDIS_PASSWORD": "not-the-password"})
    c = Conn(envoy)
    cmds = [("GET", "k"), ("AUTH", "wrong"), ("AUTH", CLIENT_PASSWORD), ("SET", "k", "v"), ("GET", "k"),
            ("MULTI",), ("EXEC",), ("SUBSCRIBE", "ch"), ("PING",)]  # fmt: skip
    c.send(*cmds)
    assert c.replies(len(cmds)) == [REJECTED + WRONGPASS] * len(cmds)
    c.send(("PING",))  # the connection stays open
    assert c.replies(1) == [REJECTED + WRONGPASS]
    # Redis itself cuts an unauthenticated connection whose unsent replies
    # pile up: the client learns, nothing hangs.
    flood = Conn(envoy)
    flood.send_raw(resp.commands(*[("GET", "k")] * 2000))
    data, _how = flood.closed()
    assert all(r == REJECTED + WRONGPASS for r in resp.split_replies(data)[0])
    assert "overcoming of output buffer limits" in server.log_text()
    envoy.wait_stat("wasmcustom.redis_auth.upstream_auth_failure", lambda n: n >= 1)
    assert "not-the-password" not in envoy.log_text()
    # Fixed on the server: the next connection works.
    admin(server).execute_command("ACL", "SETUSER", ACL_USER, ">not-the-password")
    works(envoy)


@pytest.mark.parametrize("change", ["off", "deluser"])
def test_upstream_user_disabled_while_connected(change, server, proxy):
    connected = Conn(proxy)
    connected.send(("AUTH", CLIENT_PASSWORD), ("SET", "k", "v"))
    assert connected.replies(2) == ["OK", "OK"]
    a = admin(server)
    if change == "off":
        assert a.execute_command("ACL", "SETUSER", ACL_USER, "off") == b"OK"
        # Redis 7.0 leaves connections that are logged in alone.
        connected.send(("GET", "k"))
        assert connected.replies(1) == [b"v"]
    else:
        assert a.execute_command("ACL", "DELUSER", ACL_USER) == 1
        # Redis closes the connections of a deleted user: the client
        # learns without sending anything.
        assert connected.closed()[0] == b""
    fresh = Conn(proxy)
    fresh.send(("AUTH", CLIENT_PASSWORD), ("GET", "k"))
    assert fresh.replies(2) == [REJECTED + WRONGPASS] * 2
    a.execute_command("ACL", "SETUSER", ACL_USER, "reset", "on", f">{ACL_PASSWORD}", "~*", "&*", "+@all")
    works(proxy)


@pytest.mark.parametrize("broken", ["untrusted-ca", "wrong-san"])
def test_tls_handshake_failure_to_the_server(broken, pki, redis_factory, envoy_factory):
    tls_server = redis_factory("tls", password="TlsServerPass")
    if broken == "untrusted-ca":
        tls, stat = UpstreamTls(ca_file=pki.rogue_ca_cert, verify_san=[pki.server_name]), "fail_verify_error"
    else:
        tls, stat = UpstreamTls(ca_file=pki.ca_cert, verify_san=["not-redis.test"]), "fail_verify_san"
    config = {"downstream": {"password": CLIENT_PASSWORD}, "upstream": {"password": {"env": "REDIS_PASSWORD"}}}
    envoy = envoy_factory(tls_server, plugin_config=config, host_env={"REDIS_PASSWORD": "TlsServerPass"},
                          upstream_tls=tls)  # fmt: skip
    c = Conn(envoy)
    c.send(("AUTH", CLIENT_PASSWORD), ("PING",))
    assert c.closed()[0] == b""
    assert envoy.counter(f"cluster.redis.ssl.{stat}") >= 1
    assert envoy.counter("cluster.redis.ssl.handshake") == 0
    c.close()
    envoy.wait_stat(ACTIVE, 0, timeout=LEARN)
    # With the right TLS settings (a restart), the next connection works.
    envoy.restart(upstream_tls=UpstreamTls.simple(pki))
    works(envoy)


# ------------------------------------------------------------------ clients that go away or never read


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_client_closes_with_replies_in_flight(how, server, proxy):
    a = admin(server)
    a.set("v100k", b"y" * 100_000)
    bystander = redis_py(proxy, password=CLIENT_PASSWORD, timeout=LEARN)
    assert bystander.ping()
    active, held, _ = gauges(proxy)
    clients = connected_clients(server)

    c = Conn(proxy)
    c.send_raw(C("AUTH", CLIENT_PASSWORD) + resp.commands(*[("GET", "v100k")] * 500)
               + resp.commands(*[("INCR", "n")] * 20_000))  # fmt: skip
    c.reset() if how == "rst" else c.close()

    proxy.wait_stat(ACTIVE, active, timeout=LEARN)
    proxy.wait_stat(HELD, held, timeout=LEARN)
    # The proxy's connection to the server is gone too.
    wait_until(lambda: connected_clients(server) == clients, LEARN, "the server connection to close")
    assert proxy.alive and a.ping()
    assert bystander.set("still", "here") and bystander.get("still") == "here"
    works(proxy)


# The session keeps replies of at most 1 KiB whole and streams the rest;
# Envoy's buffers (1 MiB per connection) push back on the server.
HELD_LIMIT = 16 * 1024
VM_MEMORY_LIMIT = 16 * MiB


def test_client_that_never_reads(server, proxy):
    a = admin(server)
    a.set("v1m", b"z" * MiB)
    bystander = redis_py(proxy, password=CLIENT_PASSWORD, timeout=LEARN)
    assert bystander.ping()
    active, held, _ = gauges(proxy)

    # 64 MiB of replies, none of them read.
    c = Conn(proxy, rcvbuf=64 * 1024)
    c.send_raw(C("AUTH", CLIENT_PASSWORD) + resp.commands(*[("GET", "v1m")] * 64))
    samples = []
    deadline = time.monotonic() + 3.0
    i = 0
    while time.monotonic() < deadline:
        samples.append(gauges(proxy))
        assert bystander.set("i", i) and bystander.get("i") == str(i)
        i += 1
        time.sleep(0.1)
    assert max(s[1] for s in samples) <= HELD_LIMIT, samples
    assert max(s[2] for s in samples) <= VM_MEMORY_LIMIT, samples
    # The replies wait in the server, not in Envoy or the filter.
    pending = sum(int(cl["omem"]) for cl in a.client_list() if cl["user"] == ACL_USER)
    assert pending >= 16 * MiB
    assert proxy.counter("tcp.redis.downstream_cx_tx_bytes_buffered") <= 8 * MiB

    c.close()
    proxy.wait_stat(ACTIVE, active, timeout=LEARN)
    proxy.wait_stat(HELD, held, timeout=LEARN)
    works(proxy)


def test_idle_connection_keeps_no_burst_sized_buffers(server, proxy):
    # Local replies in the middle of a burst of server bytes: each chunk
    # Envoy hands over holds marker replies among 10 KB bulks, so the filter
    # rewrites whole chunks (up to Envoy's 1 MiB buffer). Once the burst is
    # read and the connection idles, the session should hold about what it
    # held before: kept replies of at most 1 KiB, nothing chunk-sized.
    admin(server).set("v10k", b"q" * 10_000)
    idle = []
    for _ in range(4):
        c = Conn(proxy)
        c.send(("AUTH", CLIENT_PASSWORD))
        assert c.replies(1) == ["OK"]
        idle.append(c)
    _, held_before, _ = gauges(proxy)
    for c in idle:
        c.send_raw(resp.commands(*[("GET", "v10k"), ("AUTH", CLIENT_PASSWORD)] * 300))
    time.sleep(0.3)  # let the replies pile up in Envoy: big chunks
    for c in idle:
        replies = c.replies(600, within=LEARN)
        assert replies == [b"q" * 10_000, "OK"] * 300
    _, held_idle, vm = gauges(proxy)
    grown, n = held_idle - held_before, len(idle)
    assert grown <= n * HELD_LIMIT, (
        f"{n} idle connections hold {grown} bytes more than before their burst (VMs' memory now {vm} bytes)"
    )


# ------------------------------------------------------------------ a filter that cannot start

POLICIES = ["FAIL_CLOSED", "FAIL_RELOAD"]  # never FAIL_OPEN
BROKEN = ["corrupt-module", "missing-module", "refused-config"]


def _config(client_password: str, server_password_env: str = "REDIS_PASSWORD") -> dict:
    return {"downstream": {"password": client_password}, "upstream": {"username": ACL_USER, "password": {"env": server_password_env}}}


def _broken(broken: str, dir: Path, wasm_path: Path, client_password: str) -> tuple[Path, dict, str]:
    """(module, configuration, what Envoy logs) of a filter that cannot start."""
    if broken == "corrupt-module":
        corrupt = dir / "corrupt.wasm"
        data = wasm_path.read_bytes()
        corrupt.write_bytes(data[: len(data) // 2])  # a valid header, cut in the middle
        return corrupt, _config(client_password), "Unable to create Wasm plugin envoy_redis_auth"
    if broken == "missing-module":
        missing = dir / "missing.wasm"
        return missing, _config(client_password), f"Invalid path: {missing}"
    return (
        wasm_path,
        _config(client_password, "MISSING"),
        "envoy-redis-auth: invalid configuration: upstream.password: environment variable MISSING is not set",
    )


@pytest.mark.parametrize("broken", BROKEN)
@pytest.mark.parametrize("policy", POLICIES)
def test_static_filter_that_cannot_start(policy, broken, scope, server, envoy_try_start, wasm_path):
    module, config, message = _broken(broken, scope.dir, wasm_path, CLIENT_PASSWORD)
    envoy, result = envoy_try_start(
        server, plugin_config=config, wasm_path=module, failure_policy=policy,
        host_env={"REDIS_PASSWORD": server.password}, host_env_keys=["MISSING"],
    )  # fmt: skip
    # Envoy refuses the whole configuration and exits: nothing listens.
    assert result.rejected and result.returncode == 1, result.log[-2000:]
    assert message in result.log
    if broken != "missing-module":
        # Whatever the policy: a module that does not load fails closed.
        assert "Plugin configured to fail closed failed to load" in result.log
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(envoy.addr, timeout=LEARN).close()


@pytest.mark.parametrize("broken", BROKEN)
@pytest.mark.parametrize("policy", POLICIES)
def test_ecds_filter_that_cannot_start(policy, broken, scope, server, wasm_path):
    envoy = EcdsEnvoy(
        scope.dir, server, name="sidecar", ecds_path=scope.dir / "ecds.yaml",
        host_env={"REDIS_PASSWORD": server.password}, host_env_keys=["MISSING"],
    )  # fmt: skip
    scope.envoys.append(envoy)

    # Start-up: the first configuration cannot start.
    module, config, message = _broken(broken, scope.dir, wasm_path, "second-pw")
    envoy.publish(1, config, module, failure_policy=policy)
    envoy.start()
    envoy.wait_updates(rejected=1)
    assert message in envoy.log_text()
    if broken != "missing-module":
        assert "Plugin configured to fail closed failed to load" in envoy.log_text()
    # The listener is up, but every connection is closed at once.
    for _ in range(3):
        c = Conn(envoy)
        c.send(("AUTH", "second-pw"), ("PING",))
        assert c.closed()[0] == b""
        c.close()

    # A good configuration is applied.
    envoy.publish(2, _config("first-pw"), wasm_path, failure_policy=policy)
    envoy.wait_updates(success=1)
    old = Conn(envoy)
    old.send(("AUTH", "first-pw"), ("SET", "k", "v"))
    assert old.replies(2) == ["OK", "OK"]

    # A live update that cannot start is rejected: the old configuration
    # keeps serving the open connection and new ones.
    envoy.publish(3, config, module, failure_policy=policy)
    envoy.wait_updates(success=1, rejected=2)
    old.send(("GET", "k"))
    assert old.replies(1) == [b"v"]
    new = Conn(envoy)
    new.send(("AUTH", "second-pw"), ("AUTH", "first-pw"), ("GET", "k"))
    assert new.replies(3) == [WRONGPASS, "OK", b"v"]

    # The next good configuration is applied to new connections.
    envoy.publish(4, _config("third-pw"), wasm_path, failure_policy=policy)
    envoy.wait_updates(success=2, rejected=2)
    newer = Conn(envoy)
    newer.send(("AUTH", "first-pw"), ("AUTH", "third-pw"), ("GET", "k"))
    assert newer.replies(3) == [WRONGPASS, "OK", b"v"]
    old.send(("PING",))
    assert old.replies(1) == ["PONG"]


def test_vm_memory_gauge_counts_each_vm_once(scope, server, wasm_path):
    # Every live update (an Istio WasmPlugin change) gives each worker's VM
    # a new root context; the VMs themselves stay (wasm.wasm_vm_count). The
    # gauge is "the VMs' linear memory", so the same traffic after three
    # updates should read about what it read after the first configuration.
    envoy = EcdsEnvoy(scope.dir, server, name="sidecar", ecds_path=scope.dir / "ecds.yaml",
                      host_env={"REDIS_PASSWORD": server.password})  # fmt: skip
    scope.envoys.append(envoy)
    envoy.publish(1, _config("pw-1"), wasm_path)
    envoy.start()
    envoy.wait_updates(success=1)

    def traffic(password: str) -> None:
        for _ in range(6):  # reaches both workers
            c = redis_py(envoy, password=password, timeout=LEARN)
            assert c.ping()
            c.close()

    traffic("pw-1")
    vms = envoy.counter("wasm.wasm_vm_count")
    first = gauges(envoy)[2]
    for version in (2, 3, 4):
        envoy.publish(version, _config(f"pw-{version}"), wasm_path)
        envoy.wait_updates(success=version)
        traffic(f"pw-{version}")
    envoy.wait_stat(ACTIVE, 0, timeout=LEARN)
    assert gauges(envoy)[1] == 0
    after = gauges(envoy)[2]
    assert envoy.counter("wasm.wasm_vm_count") == vms
    assert after <= first + MiB, (
        f"wasm_vm_count {vms}: {first} bytes after the first configuration, {after} after three updates"
    )
