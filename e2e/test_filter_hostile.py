"""Hostile input, through real Envoy, compared with real Redis.

Every input of the corpus (hostile_corpus.py: truncated frames, absurd
lengths, nesting, RESP3 types from a client, NUL bytes, lone CR/LF, a TLS
ClientHello, HTTP, 64 KiB and 1 MiB lines, seeded random bytes, malformed
AUTH/HELLO, mixed pipelines) is sent on fresh connections

- before authentication, and after the client password's `AUTH`;
- whole, and byte by byte (inputs over 2 KB: random chunks of up to 4 KiB,
  1 ms apart);

to (a) Envoy (`concurrency=1`: one worker, one VM) with the filter, in front
of a recording relay and a Redis with another password, and (b) a
redis-server configured with the client-side credentials (`requirepass` =
the client password, ACL user alice, `enable-debug-command no`). The bytes
the client receives and whether the connection is closed must be identical.

Around that:
- before authentication, the relay proves the server saw only the proxy's
  own commands (its `AUTH`, markers `era:<id>:<mac>`, `QUIT`) and not a byte
  of the input; no client password ever reaches the server;
- after every test Envoy is alive and `/ready`, the VM was not restarted, no
  VM panic was logged, the connection is gone from the filter's gauge, and a
  bystander connection on the same worker, open for the whole module,
  still answers;
- Redis's cross-protocol guard (`POST`, `Host:`) drops the replies of the
  read it arrives in: same write (no reply at all) and later write (earlier
  replies, then the close);
- half-closes, dribbled commands (slowloris), limits at a read boundary, and
  Redis's output limit for unauthenticated clients.

Redis's answer depends on how its reads cut the input in a few places (the
cross-protocol guard, the output limit, lines over 64 KiB): those inputs are
shaped so that the cut is the same for Redis and the filter (one write,
or pauses at the point that matters).
"""

from __future__ import annotations

import concurrent.futures
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import pytest

from harness import resp
from harness.raw import RawResult, chunk
from harness.resp import command as C
from hostile_corpus import ALICE, ALICE_PASSWORD, CLIENT_PASSWORD, CORPUS, PING, Case

FILTER_CONFIG = {
    "downstream": {"password": CLIENT_PASSWORD, "users": [ALICE], "max_auth_failures": 0},
    "upstream": {"password": {"env": "REDIS_PASSWORD"}},
}
AUTH = C("AUTH", CLIENT_PASSWORD)
VARIANTS = ("before-auth", "after-auth")
CHUNKINGS = ("whole", "byte")
# Inputs longer than this go in random chunks instead of bytes.
BIG = 2000
# Before a POST/Host: that follows other commands, byte by byte: long enough
# for Redis to have written the earlier replies.
ATTACK_PAUSE = 0.1
# How long the reference must stay silent before its answer is complete.
REFERENCE_IDLE = 0.3
# After the filter has sent as many replies as Redis: how long to watch for
# more bytes or a close.
GRACE = 0.1

# A plan: (seconds to wait before, bytes to send), in order.
Plan = list[tuple[float, bytes]]


# ------------------------------------------------------------------ sending


def plan_for(payload: bytes, chunking: str, *, pause_at: int | None = None) -> Plan:
    if chunking == "whole":
        return [(0.0, payload)]
    if len(payload) > BIG:
        # Paced, so that Envoy's reads end where Redis's do: both measure a
        # line without an end at least every 4 KiB.
        pieces = chunk(payload, "random", seed=7, max_chunk=4096)
        return [(0.001 if i else 0.0, piece) for i, piece in enumerate(pieces)]
    steps = [(0.001 if i else 0.0, payload[i : i + 1]) for i in range(len(payload))]
    if pause_at:
        steps[pause_at] = (ATTACK_PAUSE, steps[pause_at][1])
    return steps


def talk(endpoint, plan: Plan, *, half_close: bool = False, expect: RawResult | None = None,
         idle: float = REFERENCE_IDLE, timeout: float = 30.0) -> RawResult:  # fmt: skip
    """Connect, send `plan`, read. (Not harness.raw_exchange: each piece has
    its own pause, so that the reads Redis and Envoy make end at the same
    places, and after the expected replies it waits GRACE for a stray byte
    or a close.) Without `expect` (the reference): until
    the peer closes or stays silent for `idle`. With `expect`: until
    the peer closes, or, if `expect` was left open, until as many complete
    replies as `expect` has arrived and GRACE passed without a close
    (REFERENCE_IDLE if no reply is expected); 2 s of silence ends it anyway."""
    sock = socket.create_connection((endpoint.host, endpoint.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(0.05)
    t0 = time.monotonic()
    received = bytearray()
    state = {"closed": False, "reset": False, "last_rx": t0, "replies": 0, "parsed": 0, "garbage": False}
    got = threading.Condition()
    stop = threading.Event()

    def count_new() -> None:
        data = bytes(received)
        while not state["garbage"]:
            try:
                _, pos = resp.parse_one(data, state["parsed"])
            except resp.Incomplete:
                return
            except (ValueError, IndexError):
                state["garbage"] = True
                return
            state["parsed"] = pos
            state["replies"] += 1

    def reader() -> None:
        while not stop.is_set():
            try:
                data = sock.recv(262144)
            except socket.timeout:
                continue
            except ConnectionResetError:
                data, state["reset"] = b"", True
            except OSError:
                data = b""
            with got:
                if not data:
                    state["closed"] = True
                    got.notify_all()
                    return
                received.extend(data)
                state["last_rx"] = time.monotonic()
                if expect is not None:
                    count_new()
                got.notify_all()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    send_error = None
    try:
        for delay, piece in plan:
            if delay:
                time.sleep(delay)
            sock.sendall(piece)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
    except OSError as e:
        send_error = f"{type(e).__name__}: {e}"
    sent_at = time.monotonic()

    target = None if expect is None else len(expect.replies)
    want_close = expect is not None and expect.closed
    reached_at: list[float] = []

    def done() -> str | None:
        now = time.monotonic()
        if state["closed"]:
            return "closed"
        silent = now - max(state["last_rx"], sent_at)
        if expect is None:
            return "idle" if silent >= idle else None
        if not want_close and state["replies"] >= target:
            if not reached_at:
                reached_at.append(now)
            if now - max(reached_at[0], sent_at) >= (GRACE if target else REFERENCE_IDLE):
                return "replies"
        if silent >= 2.0:
            return "idle"
        if now - t0 >= timeout:
            return "timeout"
        return None

    with got:
        why = done()
        while why is None:
            got.wait(0.01)
            why = done()
        result = RawResult(bytes(received), state["closed"], state["reset"], send_error, stopped_by=why)
    stop.set()
    thread.join(1.0)
    sock.close()
    result.elapsed = time.monotonic() - t0
    return result


# HELLO's map carries the connection id, which differs between servers.
_ID = re.compile(rb"(\$2\r\nid\r\n):\d+\r\n")


def normalise(data: bytes) -> bytes:
    return _ID.sub(rb"\1:<id>\r\n", data)


def show(data: bytes, limit: int = 400) -> str:
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


def differences(expected: RawResult, got: RawResult) -> list[str]:
    problems = []
    a, b = normalise(expected.data), normalise(got.data)
    if a != b:
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        problems.append(
            f"Redis sent {show(expected.data)}\n  the filter sent {show(got.data)}\n"
            f"  (first difference at byte {at}: Redis {a[at:at + 80]!r}, filter {b[at:at + 80]!r})"
        )
    if got.closed != expected.closed:
        said = {True: "closed the connection", False: "left the connection open"}
        problems.append(f"Redis {said[expected.closed]}, the filter {said[got.closed]} ({got.stopped_by})")
    return problems


# ------------------------------------------------------------------ the jobs


@dataclass(frozen=True)
class Job:
    plan: tuple
    half_close: bool = False


def corpus_job(case: Case, variant: str, chunking: str) -> Job:
    prefix = AUTH if variant == "after-auth" else b""
    attack_at = None if case.attack_at is None else len(prefix) + case.attack_at
    return Job(tuple(plan_for(prefix + case.payload, chunking, pause_at=attack_at)))


# Half-closes: the client sends, then shuts down its write side. Redis
# answers what it read, then closes.
HALF_CLOSE = [
    ("nothing", b""),
    ("a command", C("PING")),
    ("a pipeline", C("PING") + C("ECHO", "x") + b"GET k\r\n" + C("HELLO", "3")),
    ("a partial frame", b"*2\r\n$4\r\nECHO\r\n$5\r\nab"),
    ("a partial inline line", b"PING"),
    ("a protocol error", C("PING") + b"*1\r\n$x\r\n"),
    ("QUIT", C("QUIT")),
    ("a wrong AUTH", C("AUTH", "wrong") + C("PING")),
    ("a login", AUTH + C("ECHO", "in")),
    ("a NUL-stuck line", b"PI\x00NG\r\n"),
    ("POST", b"POST / HTTP/1.1\r\n"),
]

JOBS: dict[tuple, Job] = {}
for _case in CORPUS:
    for _variant in VARIANTS:
        for _chunking in CHUNKINGS:
            JOBS[("corpus", _case.name, _variant, _chunking)] = corpus_job(_case, _variant, _chunking)
for _name, _payload in HALF_CLOSE:
    for _variant in VARIANTS:
        for _chunking in CHUNKINGS:
            _p = (AUTH if _variant == "after-auth" else b"") + _payload
            _plan = tuple(plan_for(_p, _chunking)) if _p else ((0.0, b""),)
            JOBS[("half-close", _name, _variant, _chunking)] = Job(_plan, half_close=True)


# ------------------------------------------------------------------ the rig


class Bystander:
    """An authenticated connection, open for the whole module, on the same
    worker (and so the same VM) as every hostile one."""

    def __init__(self, endpoint):
        self.sock = socket.create_connection(endpoint.addr, timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.n = 0
        assert self.call(AUTH) == b"+OK\r\n"

    def call(self, payload: bytes, timeout: float = 5.0) -> bytes:
        self.sock.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while resp.count_replies(data) < 1:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                more = self.sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"the bystander got no reply in {timeout} s (so far {data!r})") from None
            if not more:
                raise AssertionError(f"the bystander's connection was closed (after {data!r})")
            data += more
        return data

    def check(self) -> None:
        self.n += 1
        token = f"bystander-{self.n}".encode()
        reply = self.call(C("ECHO", token))
        assert reply == b"$%d\r\n%s\r\n" % (len(token), token), f"the bystander got {reply!r}"

    def close(self) -> None:
        self.sock.close()


VM_STATS = r"^wasm\."
_VM_FAILURE = ("panicked at", "Uncaught RuntimeError")


@dataclass
class Rig:
    envoy: object
    relay: object
    server: object
    reference: object
    bystander: Bystander
    pool: concurrent.futures.ThreadPoolExecutor
    futures: dict = field(default_factory=dict)
    vm_baseline: dict = field(default_factory=dict)
    relay_seen: int = 0
    log_seen: int = 0

    def expected(self, key) -> RawResult:
        return self.futures[key].result()

    def vm_counts(self) -> dict[str, int]:
        stats = self.envoy.stats(filter=VM_STATS)
        return {k: v for k, v in stats.items() if k.startswith("wasm.") and ("runtime" in k or "vm_" in k)}

    def take_relay_connections(self, expected: int | None = 1) -> list:
        """The relay connections since the last call, once closed."""
        self.wait_connections_gone()
        deadline = time.monotonic() + 5
        while True:
            conns = self.relay.connections[self.relay_seen :]
            if all(c.closed for c in conns) and (expected is None or len(conns) >= expected):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"relay connections not closed in time: {conns}")
            time.sleep(0.01)
        self.relay_seen += len(conns)
        return conns

    def wait_connections_gone(self) -> None:
        """Only the bystander left in the filter's gauge."""
        self.envoy.wait_stat("wasmcustom.redis_auth.active_connections", 1, timeout=10)

    def vm_failures(self) -> list[str]:
        text = self.envoy.log_text()
        new, self.log_seen = text[self.log_seen :], len(text)
        return [line for line in new.splitlines() if any(m in line for m in _VM_FAILURE)]

    def health_problems(self) -> list[str]:
        problems = []
        if not self.envoy.alive:
            return ["Envoy is not running"]
        status, body = self.envoy.admin_get("/ready")
        if status != 200 or body.strip() != "LIVE":
            problems.append(f"Envoy's /ready says {status} {body.strip()!r}")
        failures = self.vm_failures()
        if failures:
            problems.append("VM failure in Envoy's log:\n" + "\n".join(failures[:10]))
        counts = self.vm_counts()
        if counts != self.vm_baseline:
            problems.append(f"the VMs changed: {self.vm_baseline} -> {counts}")
        try:
            self.wait_connections_gone()
        except Exception as e:  # noqa: BLE001
            problems.append(f"connections left in the filter: {e}")
        try:
            self.bystander.check()
        except AssertionError as e:
            problems.append(str(e))
        return problems


@pytest.fixture(scope="module")
def rig(session_scope, session_redis_factory, session_envoy_factory):
    server = session_redis_factory("password", name="hostile-upstream")
    relay = session_scope.relay(server, name="hostile-relay")
    envoy = session_envoy_factory(
        relay,
        plugin_config=FILTER_CONFIG,
        host_env={"REDIS_PASSWORD": server.password},
        concurrency=1,
        name="hostile-envoy",
    )
    reference = session_redis_factory(
        "password",
        password=CLIENT_PASSWORD,
        extra_conf=[ALICE, "enable-debug-command no"],
        name="hostile-reference",
    )
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=6, thread_name_prefix="reference")
    bystander = Bystander(envoy)
    r = Rig(envoy, relay, server, reference, bystander, pool)
    bystander.check()
    r.vm_baseline = r.vm_counts()
    assert r.vm_baseline, "no wasm VM stats"
    r.relay_seen = len(relay.wait_connections(1))  # the bystander's, open for good
    for key, job in JOBS.items():
        r.futures[key] = pool.submit(talk, reference, list(job.plan), half_close=job.half_close)
    yield r
    pool.shutdown(wait=False, cancel_futures=True)
    bystander.close()


@pytest.fixture(autouse=True)
def healthy(rig):
    """After every test: Envoy up, no VM restart or panic, the bystander
    answers."""
    yield
    problems = rig.health_problems()
    assert not problems, "after this input:\n" + "\n".join(problems)


# ------------------------------------------------------------------ what the server saw

SECRETS = (CLIENT_PASSWORD.encode(), ALICE_PASSWORD.encode())
_MARKER = re.compile(rb"era:[0-9]+:[0-9a-f]{24}")


def proxy_own(command, server_password: bytes) -> bool:
    """The proxy's AUTH, a marker or QUIT."""
    if not isinstance(command, list) or not command or not all(isinstance(a, bytes) for a in command):
        return False
    name = command[0].upper()
    if name == b"AUTH":
        return command[1:] == [server_password]
    if name == b"QUIT":
        return len(command) == 1
    return len(command) == 1 and _MARKER.fullmatch(command[0]) is not None


def distinctive(payload: bytes, server_password: bytes, size: int = 8, most: int = 64) -> set[bytes]:
    """Substrings of the input that the proxy's own commands cannot contain:
    each has a byte that none of them has."""
    own = set(C("AUTH", server_password) + C("QUIT") + b"era:0123456789abcdef")
    step = max(1, (len(payload) - size) // most)
    windows = {payload[i : i + size] for i in range(0, max(0, len(payload) - size + 1), step)}
    return {w for w in windows if not set(w) <= own}


def upstream_problems(rig: Rig, conns, payload: bytes, *, before_auth: bool, secrets=SECRETS) -> list[str]:
    """No client password reaches the server; before authentication, only
    the proxy's own commands and not a byte of the input."""
    problems = []
    server_password = rig.server.password.encode()
    for conn in conns:
        sent = conn.to_server
        for secret in secrets:
            if secret in sent:
                problems.append(f"the client password {secret!r} reached the server, which got {show(sent)}")
        if not before_auth:
            continue
        try:
            commands = resp.parse_all(sent)
        except (resp.Incomplete, ValueError, IndexError):
            problems.append(f"before AUTH, the server got bytes that are not the proxy's commands: {show(sent)}")
            continue
        foreign = [c for c in commands if not proxy_own(c, server_password)]
        if foreign:
            problems.append(f"before AUTH, the server got {foreign[:5]!r}")
        leaked = sorted(w for w in distinctive(payload, server_password) if w in sent)
        if leaked:
            problems.append(f"before AUTH, input bytes reached the server: {leaked[:5]!r} in {show(sent)}")
    return problems


# ------------------------------------------------------------------ the corpus


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_hostile_input(rig, case, variant, chunking):
    key = ("corpus", case.name, variant, chunking)
    job = JOBS[key]
    expected = rig.expected(key)
    got = talk(rig.envoy, list(job.plan), expect=expected)
    conns = rig.take_relay_connections()
    problems = differences(expected, got)
    before_auth = variant == "before-auth" and not case.logs_in
    secrets = () if case.password_as_data and variant == "after-auth" else SECRETS
    problems += upstream_problems(rig, conns, case.payload, before_auth=before_auth, secrets=secrets)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name,payload", HALF_CLOSE, ids=[n for n, _ in HALF_CLOSE])
def test_half_close(rig, name, payload, variant, chunking):
    key = ("half-close", name, variant, chunking)
    expected = rig.expected(key)
    assert expected.closed, "Redis closes once the client has half-closed and been answered"
    got = talk(rig.envoy, list(JOBS[key].plan), half_close=True, expect=expected)
    conns = rig.take_relay_connections()
    problems = differences(expected, got)
    logs_in = payload.startswith(AUTH)
    problems += upstream_problems(rig, conns, payload, before_auth=variant == "before-auth" and not logs_in)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ Redis's cross-protocol guard

# POST and Host: close the connection at once: Redis frees the client
# asynchronously, so the replies to the commands that came in the same read
# are never written. Those of earlier reads are.
ATTACKS = [("POST", b"POST / HTTP/1.1\r\n"), ("Host", b"Host: redis.test\r\n")]
EARLIER = C("PING") + C("ECHO", "earlier") + b"PING x\r\n"


def run_scheduled(rig: Rig, plan: Plan, payload: bytes, variant: str, *, logs_in: bool = False):
    expected = talk(rig.reference, plan)
    got = talk(rig.envoy, plan, expect=expected)
    conns = rig.take_relay_connections()
    problems = differences(expected, got)
    problems += upstream_problems(rig, conns, payload, before_auth=variant == "before-auth" and not logs_in)
    return expected, got, problems


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name,attack_bytes", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_cross_protocol_in_the_same_write_drops_every_reply(rig, name, attack_bytes, variant):
    prefix = AUTH if variant == "after-auth" else b""
    payload = prefix + EARLIER + attack_bytes + C("PING")
    expected, got, problems = run_scheduled(rig, [(0.0, payload)], EARLIER + attack_bytes, variant)
    assert expected.data == b"" and expected.closed, f"Redis did not behave as expected: {expected}"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name,attack_bytes", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_cross_protocol_in_a_later_write_keeps_earlier_replies(rig, name, attack_bytes, variant):
    prefix = AUTH if variant == "after-auth" else b""
    plan = [(0.0, prefix + EARLIER), (0.3, attack_bytes + C("PING"))]
    expected, got, problems = run_scheduled(rig, plan, EARLIER + attack_bytes, variant)
    assert expected.closed and len(expected.replies) == (4 if prefix else 3), f"Redis: {expected}"
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ limits at a read boundary

# Redis measures a line that has no end yet after each read: a line of more
# than 64 KiB is refused only if a read ends before its terminator. Here the
# terminator comes in a later write, so Redis and the filter see the same cut.
X = 65536
BOUNDARIES = [
    ("inline line of 64 KiB + 1 unterminated", [(0.0, b"x" * X + b"\r"), (0.3, b"\n" + C("PING"))]),
    ("inline line of 64 KiB unterminated", [(0.0, b"x" * (X - 1) + b"\r"), (0.3, b"\n" + C("PING"))]),
    ("count line of 64 KiB + 1 unterminated", [(0.0, b"*" + b"1" * X), (0.3, b"\r\n")]),
    ("count line of 64 KiB unterminated", [(0.0, b"*" + b"1" * (X - 1)), (0.3, b"\r\n")]),
    ("bulk length line of 64 KiB + 1 unterminated", [(0.0, b"*1\r\n$" + b"1" * X), (0.3, b"\r\n")]),
    ("bulk length line of 64 KiB unterminated", [(0.0, b"*1\r\n$" + b"1" * (X - 1)), (0.3, b"\r\n")]),
    ("NUL-stuck line growing past 64 KiB", [(0.0, b"PING\x00" + b"x" * 65000), (0.3, b"y" * 600)]),
    ("count line's CR at the end of a write", [(0.0, b"*1\r"), (0.3, b"\n$4\r\nPING\r\n")]),
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name,plan", BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_limit_at_a_read_boundary(rig, name, plan, variant):
    plan = [(0.0, AUTH)] + plan if variant == "after-auth" else list(plan)
    payload = b"".join(p for _, p in plan)
    _, _, problems = run_scheduled(rig, plan, payload, variant)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ Redis's output limit before AUTH

# Redis 7.0 closes an unauthenticated client, without writing anything more,
# as soon as the replies to what it read no longer fit its 16 KiB reply
# buffer (the unauthenticated client's output limit): 481 NOAUTH replies
# (16,354 bytes) to one read are sent, 482 (16,388) close the connection.
# Spread over many reads, all are answered.
FLOOD = [
    ("481 commands in one write", [(0.0, b"PING\r\n" * 481)]),
    ("482 commands in one write", [(0.0, b"PING\r\n" * 482)]),
    ("600 commands, 20 per write", [(0.0 if i == 0 else 0.02, b"PING\r\n" * 20) for i in range(30)]),
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name,plan", FLOOD, ids=[f[0] for f in FLOOD])
def test_reply_flood(rig, name, plan, variant):
    plan = [(0.0, AUTH)] + plan if variant == "after-auth" else list(plan)
    payload = b"".join(p for _, p in plan)
    _, _, problems = run_scheduled(rig, plan, payload, variant, logs_in=variant == "after-auth")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ slowloris

DRIBBLES = [
    ("inline PING, a byte a second", "before-auth", [(1.0 if i else 0.0, bytes([b])) for i, b in enumerate(b"PING\r\n")]),
    ("multibulk PING in five pieces", "before-auth", [(1.0 if i else 0.0, p) for i, p in enumerate([b"*1", b"\r\n$4", b"\r\nPI", b"NG\r", b"\n"])]),
    ("inline AUTH and PING in six pieces", "logs-in", [(1.0 if i else 0.0, p) for i, p in enumerate([b"AUTH te", b"stredis", b"123!", b"\r\nPI", b"NG", b"\r\n"])]),
    ("after AUTH, PING a byte a second", "after-auth", [(0.0, AUTH)] + [(1.0, bytes([b])) for b in b"PING\r\n"]),
]


def test_slowloris(rig):
    """Commands dribbled a piece a second, all at once, while the bystander
    keeps being answered; each compared with Redis."""
    results: dict[tuple[str, str], RawResult] = {}

    def run(which: str, endpoint, name: str, plan):
        results[(which, name)] = talk(endpoint, plan, idle=1.0)

    threads = []
    for name, _, plan in DRIBBLES:  # staggered: the relay sees them in this order
        for which, endpoint in (("filter", rig.envoy), ("redis", rig.reference)):
            t = threading.Thread(target=run, args=(which, endpoint, name, plan), daemon=True)
            t.start()
            threads.append(t)
        time.sleep(0.05)
    answered = 0
    while any(t.is_alive() for t in threads):
        rig.bystander.check()
        answered += 1
        time.sleep(0.25)
    for t in threads:
        t.join()
    assert answered >= 10, "the dribbles ended too early to mean anything"
    conns = rig.take_relay_connections(expected=len(DRIBBLES))
    problems = []
    for (name, kind, plan), conn in zip(DRIBBLES, conns):
        expected, got = results[("redis", name)], results[("filter", name)]
        assert expected.data, f"Redis said nothing to {name!r}"
        payload = b"".join(p for _, p in plan)
        found = differences(expected, got) + upstream_problems(rig, [conn], payload, before_auth=kind == "before-auth")
        problems += [f"{name}: {p}" for p in found]
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ documented differences


def test_documented_difference_hello_setname_over_64_kib(rig):
    # README, "Differences from Redis": arguments of AUTH/HELLO longer than
    # 64 KiB are not kept, and a longer SETNAME is refused. Redis takes the
    # name; the filter refuses it as Redis refuses a bad name, and the
    # client stays logged in.
    name = "n" * 70000
    payload = AUTH + C("HELLO", "2", "AUTH", "alice", ALICE_PASSWORD, "SETNAME", name) + C("CLIENT", "GETNAME")
    expected = talk(rig.reference, [(0.0, payload)])
    assert resp.parse_all(expected.data)[-1] == name.encode()
    got = talk(rig.envoy, [(0.0, payload)], expect=expected)
    rig.take_relay_connections()
    assert got.data == (
        b"+OK\r\n-ERR Client names cannot contain spaces, newlines or special characters.\r\n$-1\r\n"
    )
    assert not got.closed


LONG_HELLOS = {
    # (payload after the client's AUTH, the filter's reply to the HELLO)
    "1200 arguments before AUTH": (
        C("HELLO", "2", *["SETNAME", "n"] * 600, "AUTH", "alice", ALICE_PASSWORD),
        b"-ERR Syntax error in HELLO option ''\r\n",
    ),
    "the password is argument 1025": (
        C("HELLO", "2", *["SETNAME", "n"] * 510, "AUTH", "alice", ALICE_PASSWORD),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    ),
    "1.2 MB of arguments before AUTH": (
        C("HELLO", "2", *["SETNAME", "n" * 60000] * 20, "AUTH", "alice", ALICE_PASSWORD),
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    ),
}


@pytest.mark.parametrize("name", LONG_HELLOS)
def test_documented_difference_hello_past_what_is_kept(rig, name):
    # README, "Differences from Redis": arguments past the 1,024th, or past
    # 1 MiB in all, of a HELLO ... AUTH are not kept. Redis sends HELLO's
    # reply; the filter refuses the HELLO, and the client stays logged in.
    hello, refusal = LONG_HELLOS[name]
    payload = AUTH + hello + PING
    expected = talk(rig.reference, [(0.0, payload)])
    assert resp.parse_all(expected.data)[-1] == resp.Simple("PONG")
    got = talk(rig.envoy, [(0.0, payload)], expect=expected)
    conns = rig.take_relay_connections()
    assert got.data == b"+OK\r\n" + refusal + b"+PONG\r\n"
    assert not got.closed
    assert upstream_problems(rig, conns, payload, before_auth=False) == []


# ------------------------------------------------------------------ the checks themselves


@dataclass
class _Recorded:
    to_server: bytes


def test_the_upstream_checks_catch_leaks(rig):
    """The leak checks above are not vacuous."""
    own = C("AUTH", rig.server.password) + C("era:0:" + "ab" * 12) + C("era:17:" + "0f" * 12) + C("QUIT")

    def check(sent: bytes, payload: bytes, before_auth: bool = True) -> list[str]:
        return upstream_problems(rig, [_Recorded(sent)], payload, before_auth=before_auth)

    assert check(own, b"GET secret-key\r\n") == []
    assert check(own + b"GET secret-key\r\n", b"GET secret-key\r\n")  # not RESP
    assert check(C("AUTH", "other") + own, b"")  # not the proxy's AUTH
    assert check(C("era:1:" + "zz" * 12), b"")  # not a marker
    assert check(C("era:1:" + "ab" * 12, "x"), b"")  # a marker has no argument
    # A client command: foreign, and its bytes are in the stream.
    found = check(own + C("GET", "secret-key"), C("GET", "secret-key"))
    assert len(found) == 2 and "input bytes reached the server" in found[1], found
    # The proxy's own framing is not taken for the client's.
    assert distinctive(C("QUIT") + b"\r\n$4\r\nAUTH", rig.server.password.encode()) == set()
    assert check(own + C("ECHO", ALICE_PASSWORD), b"", before_auth=False)  # a client password
