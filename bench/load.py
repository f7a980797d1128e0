#!/usr/bin/env python3
"""Many live connections through Envoy, every reply verified, and what each
connection costs in memory.

Starts a redis-server (requirepass) and one Envoy (--concurrency 2) with the
filter (client password, an ACL-style user, upstream credentials) or, with
--mode tcp_proxy, a plain tcp_proxy (the clients then log in with the
server's password). Opens N connections, which authenticate with a mix of
`AUTH pw`, `AUTH user pw`, `HELLO 3 AUTH user pw`, `HELLO 3 AUTH default pw`
and `HELLO 2 AUTH user pw` (so RESP2 and RESP3 both run; some first send a
command unauthenticated and must get NOAUTH), then drives pipelined mixed
traffic for --seconds: SET/GET/INCR/APPEND/MGET of per-connection keys,
MULTI...EXEC, PING, LPUSH+BLPOP and BLPOP timing out, wrong AUTH (must be
WRONGPASS and leave the identity alone), re-AUTH, and pub/sub: a share of the
connections SUBSCRIBE to their own channel, each channel has one publisher,
and every message must arrive, byte for byte, in order.

Each connection keeps a model of its keys, so the exact bytes of every reply
are known before it arrives (RESP2 or RESP3 encoding included); a reply that
differs, a reply nobody asked for, a stall, or a connection that closes when
it should not is an error. At the end the connections close (a third with
QUIT, a third by closing, a third by a reset with a pipeline in flight) and
the filter's counters are checked against what was sent.

While it runs, Envoy's admin stats are sampled: the filter's gauges
(`wasmcustom.redis_auth.active_connections`, `held_bytes`,
`vm_memory_bytes`), `server.memory_allocated` and Envoy's RSS, before the
connections open, with them all open and idle, during the traffic, and after
they close. The report divides them by the live connections.

Usage:
  python3 bench/load.py [--connections 1000] [--seconds 30]
                        [--mode filter|tcp_proxy|both|direct] [--interval 0.5]
                        [--pipeline 8] [--subscribers 0.1] [--json FILE]
  python3 bench/load.py --stream 64     (64 MiB values SET and GET back instead)
Exit status 0 only if every reply was verified and nothing went wrong.
(Run ./dev setup and ./dev build first.)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from harness import Run, resp  # noqa: E402

CLIENT_PASSWORD = "load-client-pw"
CLIENT_USER = "alice"
CLIENT_USER_PASSWORD = "load-alice-pw"
WRONG_PASSWORD = "not-the-password"

FILTER_CONFIG = {
    "downstream": {
        "password": CLIENT_PASSWORD,
        "users": [f"user {CLIENT_USER} on >{CLIENT_USER_PASSWORD} ~* &* +@all"],
        # Wrong AUTHs are part of the mix: no cut-off.
        "max_auth_failures": 0,
    },
    "upstream": {"password": {"env": "REDIS_PASSWORD"}},
}

MODES = ("filter", "tcp_proxy", "direct")


@dataclass
class Creds:
    """What the clients log in with."""

    password: str  # AUTH <password>, HELLO ... AUTH default <password>
    user: str  # AUTH <user> <user_password>
    user_password: str


def filter_creds() -> Creds:
    return Creds(CLIENT_PASSWORD, CLIENT_USER, CLIENT_USER_PASSWORD)


def server_creds(redis) -> Creds:
    return Creds(redis.password, "default", redis.password)


# ---------------------------------------------------------------- RESP bytes

OK = b"+OK\r\n"
QUEUED = b"+QUEUED\r\n"
PONG = b"+PONG\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
NOAUTH = b"-NOAUTH Authentication required.\r\n"


def bulk(b: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(b), b)


def integer(n: int) -> bytes:
    return b":%d\r\n" % n


def null(proto: int) -> bytes:
    return b"$-1\r\n" if proto == 2 else b"_\r\n"


def null_array(proto: int) -> bytes:
    return b"*-1\r\n" if proto == 2 else b"_\r\n"


def push_head(proto: int, n: int) -> bytes:
    """The header of a pub/sub frame: an array in RESP2, a push in RESP3."""
    return (b"*%d\r\n" if proto == 2 else b">%d\r\n") % n


def message_frame(proto: int, channel: bytes, payload: bytes) -> bytes:
    return push_head(proto, 3) + bulk(b"message") + bulk(channel) + bulk(payload)


def message_prefix(proto: int) -> bytes:
    return push_head(proto, 3) + bulk(b"message")


def subscribe_frame(proto: int, channel: bytes) -> bytes:
    return push_head(proto, 3) + bulk(b"subscribe") + bulk(channel) + integer(1)


def subscribed_pong(msg: bytes = b"") -> bytes:
    """PING on a RESP2 connection in subscribed mode."""
    return b"*2\r\n" + bulk(b"pong") + bulk(msg)


_SIMPLE = frozenset(b"+-:_,#(")
_BULK = frozenset(b"$!=")
_AGG = frozenset(b"*~>%|")


class ProtocolError(Exception):
    pass


def frame_end(buf, pos: int, n: int) -> int:
    """Where the RESP frame starting at `pos` ends, or -1 if incomplete."""
    if pos >= n:
        return -1
    t = buf[pos]
    e = buf.find(b"\r\n", pos)
    if e < 0:
        return -1
    if t in _SIMPLE:
        return e + 2
    if t in _BULK:
        length = int(buf[pos + 1 : e])
        if length < 0:
            return e + 2
        end = e + 4 + length
        return end if end <= n else -1
    if t in _AGG:
        count = int(buf[pos + 1 : e])
        if t in b"%|":
            count *= 2
        p = e + 2
        for _ in range(count):
            p = frame_end(buf, p, n)
            if p < 0:
                return -1
        return p
    raise ProtocolError(f"bad RESP type byte {bytes([t])!r}")


def hello_check(proto: int) -> Callable[[bytes], str | None]:
    """HELLO's reply names the server and the protocol; the rest varies."""

    def check(raw: bytes) -> str | None:
        try:
            value, end = resp.parse_one(raw)
        except Exception as e:  # noqa: BLE001
            return f"unparsable HELLO reply ({e})"
        if end != len(raw):
            return "trailing bytes after the HELLO reply"
        if proto == 3:
            if not raw.startswith(b"%") or not isinstance(value, dict):
                return "HELLO 3 reply is not a map"
            fields = value
        else:
            if not raw.startswith(b"*") or not isinstance(value, list) or len(value) % 2:
                return "HELLO 2 reply is not a flat array of pairs"
            fields = dict(zip(value[0::2], value[1::2]))
        if fields.get(b"server") != b"redis" or fields.get(b"proto") != proto:
            return f"HELLO reply says server={fields.get(b'server')!r} proto={fields.get(b'proto')!r}"
        return None

    return check


# ---------------------------------------------------------------- the load


@dataclass
class LoadOptions:
    connections: int = 1000
    seconds: float = 30.0
    interval: float = 0.5  # mean pause between a connection's pipelines
    pipeline: int = 8  # operations per pipeline: 1..pipeline
    subscribers: float = 0.1  # share of the connections that SUBSCRIBE
    connect_parallel: int = 64
    stall: float = 30.0  # a pipeline without all its replies after this long is an error
    idle: float = 2.0  # seconds with every connection open and idle (sampled)
    sample_every: float = 0.5
    seed: int = 1
    warmup: int = 16  # connections opened and closed before the baseline
    quiet: bool = False


AUTH_FORMS = ("AUTH pw", "AUTH user pw", "HELLO 3 AUTH user pw", "HELLO 3 AUTH default pw", "HELLO 2 AUTH user pw")
FORM_PROTO = (2, 2, 3, 3, 2)

OP_WEIGHTS = {
    "set": 3, "get": 3, "incr": 2, "append": 1, "mget": 1, "multi": 1, "ping": 1,
    "blpop": 0.5, "wrong_auth": 0.2, "reauth": 0.1,
}  # fmt: skip
PUBLISH_WEIGHT = 2


@dataclass
class Totals:
    replies: int = 0  # verified replies, all phases
    traffic_replies: int = 0  # verified during the traffic phase
    messages: int = 0  # verified pub/sub messages
    traffic_messages: int = 0
    commands_sent: int = 0
    ops: collections.Counter = field(default_factory=collections.Counter)
    auth_ok: int = 0  # successful AUTH/HELLO AUTH sent
    auth_wrong: int = 0  # wrong AUTH sent
    noauth: int = 0  # commands sent before authenticating
    aborted: int = 0  # connections reset with a pipeline in flight
    errors: int = 0
    mismatches: int = 0
    dropped: int = 0
    stalls: int = 0
    connect_failures: int = 0
    missing_messages: int = 0
    counter_mismatches: int = 0
    error_samples: list = field(default_factory=list)


class Load:
    """Shared state of one run: totals, phases, the events the connections wait on."""

    def __init__(self, host: str, port: int, creds: Creds, opts: LoadOptions, tag: str):
        self.host, self.port, self.creds, self.opts, self.tag = host, port, creds, opts, tag
        self.totals = Totals()
        self.phase = "before"
        self.warmup_connected = 0
        rng = random.Random(opts.seed)
        self.blob = rng.randbytes(64 * 1024)

    def error(self, kind: str, conn: "Conn | None", detail: str) -> None:
        t = self.totals
        t.errors += 1
        setattr(t, kind, getattr(t, kind) + 1)
        if len(t.error_samples) < 30:
            who = f"conn {conn.idx} ({AUTH_FORMS[conn.form]}, {conn.role})" if conn else "run"
            t.error_samples.append(f"{kind}: {who}: {detail}")

    def payload(self, pub: int, seq: int) -> bytes:
        """The message publisher `pub` sends as its `seq`th: known to its subscriber."""
        h = (pub * 1_000_003 + seq * 7919) & 0xFFFFFFFF
        length = 8 + h % 120
        off = (h >> 8) % (len(self.blob) - length)
        return b"m:%d:%d:" % (pub, seq) + self.blob[off : off + length]


class Conn(asyncio.Protocol):
    def __init__(self, load: Load, idx: int, form: int, role: str):
        self.load, self.idx, self.form, self.role = load, idx, form, role
        self.proto = 2  # until HELLO 3 succeeds
        self.rng = random.Random(load.opts.seed * 1_000_003 + idx)
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: collections.deque = collections.deque()
        self.waiter: asyncio.Future | None = None
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closing = False
        self.broken = False
        # model of this connection's keys
        p = f"ld:{load.tag}:{idx}:"
        self.k_str, self.k_ctr, self.k_tx, self.k_list, self.k_none = (
            (p + s).encode() for s in ("s", "c", "t", "l", "x")
        )
        self.strval: bytes | None = None
        self.ctr = 0
        self.seq = 0
        # pub/sub
        self.channel = f"ld:{load.tag}:ch:{idx}".encode()
        self.publishes_to: "Conn | None" = None
        self.published = 0
        self.publisher: "Conn | None" = None
        self.received = 0
        self.subscribed = False
        self.msg_prefix = b""
        self.ops: list[str] = []
        self.weights: list[float] = []

    # ------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        n, pos = len(buf), 0
        try:
            while pos < n:
                end = frame_end(buf, pos, n)
                if end < 0:
                    break
                self.frame(bytes(buf[pos:end]))
                pos = end
        except (ProtocolError, ValueError) as e:
            self.load.error("mismatches", self, f"unparsable bytes {bytes(buf[pos:pos + 80])!r}: {e}")
            self.abort()
            return
        if pos:
            del buf[:pos]

    def connection_lost(self, exc) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        if not self.closing and not self.broken:
            self.load.error("dropped", self, f"connection closed by the other side ({exc or 'EOF'})")
            self.broken = True
        self.wake()

    # ------------------------------------------------ replies
    def frame(self, raw: bytes) -> None:
        load = self.load
        if self.subscribed and raw.startswith(self.msg_prefix):
            pub = self.publisher
            expected = message_frame(self.proto, self.channel, load.payload(pub.idx if pub else -1, self.received))
            if raw != expected:
                load.error("mismatches", self, f"message #{self.received}: got {raw[:120]!r}, expected {expected[:120]!r}")
            else:
                load.totals.messages += 1
                if load.phase == "traffic":
                    load.totals.traffic_messages += 1
            self.received += 1
            return
        if not self.pending:
            load.error("mismatches", self, f"a reply nobody asked for: {raw[:120]!r}")
            return
        what, expected = self.pending.popleft()
        if type(expected) is bytes:
            problem = None if raw == expected else f"expected {expected[:160]!r}"
        else:
            problem = expected(raw)
        if problem:
            load.error("mismatches", self, f"{what}: got {raw[:160]!r}, {problem}")
        else:
            load.totals.replies += 1
            if load.phase == "traffic":
                load.totals.traffic_replies += 1
        if not self.pending:
            self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def send(self, cmds: list[tuple[str, list, object]]) -> None:
        """cmds: (label, args, expected bytes or checker)."""
        out = []
        for what, args, expected in cmds:
            out.append(resp.command(*args))
            self.pending.append((what, expected))
        self.load.totals.commands_sent += len(cmds)
        self.transport.write(b"".join(out))

    async def exchange(self, cmds) -> bool:
        """Send a pipeline and wait for all its replies; False if the connection broke."""
        if self.broken:
            return False
        self.waiter = asyncio.get_running_loop().create_future()
        self.send(cmds)
        try:
            await asyncio.wait_for(self.waiter, self.load.opts.stall)
        except asyncio.TimeoutError:
            self.load.error("stalls", self, f"{len(self.pending)} replies missing after {self.load.opts.stall:.0f}s "
                            f"(first: {self.pending[0][0] if self.pending else '-'})")  # fmt: skip
            self.abort()
            return False
        return not self.broken

    def abort(self) -> None:
        self.broken = True
        if self.transport is not None:
            self.transport.abort()
        self.wake()

    # ------------------------------------------------ operations
    def value(self) -> bytes:
        self.seq += 1
        rng = self.rng
        length = rng.randint(1, 16 * 1024) if rng.random() < 0.02 else rng.randint(4, 200)
        off = rng.randrange(len(self.load.blob) - length)
        return b"v:%d:%d:" % (self.idx, self.seq) + self.load.blob[off : off + length]

    def auth_cmd(self) -> tuple[str, list, object]:
        c = self.load.creds
        form = AUTH_FORMS[self.form]
        if form == "AUTH pw":
            return form, ["AUTH", c.password], OK
        if form == "AUTH user pw":
            return form, ["AUTH", c.user, c.user_password], OK
        if form == "HELLO 3 AUTH user pw":
            return form, ["HELLO", "3", "AUTH", c.user, c.user_password], hello_check(3)
        if form == "HELLO 3 AUTH default pw":
            return form, ["HELLO", "3", "AUTH", "default", c.password], hello_check(3)
        return form, ["HELLO", "2", "AUTH", c.user, c.user_password], hello_check(2)

    def op(self, name: str) -> list[tuple[str, list, object]]:
        p = self.proto
        t = self.load.totals
        t.ops[name] += 1
        if name == "set":
            v = self.value()
            self.strval = v
            return [("SET", ["SET", self.k_str, v], OK)]
        if name == "get":
            return [("GET", ["GET", self.k_str], null(p) if self.strval is None else bulk(self.strval))]
        if name == "incr":
            self.ctr += 1
            return [("INCR", ["INCR", self.k_ctr], integer(self.ctr))]
        if name == "append":
            if self.strval is not None and len(self.strval) > 32 * 1024:
                return self.op("set")
            suffix = self.value()
            self.strval = (self.strval or b"") + suffix
            return [("APPEND", ["APPEND", self.k_str, suffix], integer(len(self.strval)))]
        if name == "mget":
            expected = b"*3\r\n" + (null(p) if self.strval is None else bulk(self.strval))
            expected += (bulk(b"%d" % self.ctr) if self.ctr else null(p)) + null(p)
            return [("MGET", ["MGET", self.k_str, self.k_ctr, self.k_none], expected)]
        if name == "multi":
            v = self.value()
            self.ctr += 1
            return [
                ("MULTI", ["MULTI"], OK),
                ("SET (queued)", ["SET", self.k_tx, v], QUEUED),
                ("INCR (queued)", ["INCR", self.k_ctr], QUEUED),
                ("GET (queued)", ["GET", self.k_tx], QUEUED),
                ("EXEC", ["EXEC"], b"*3\r\n" + OK + integer(self.ctr) + bulk(v)),
            ]
        if name == "ping":
            if self.rng.random() < 0.5:
                return [("PING", ["PING"], subscribed_pong() if self.subscribed and p == 2 else PONG)]
            msg = b"hi:%d:%d" % (self.idx, self.seq)
            return [("PING msg", ["PING", msg], subscribed_pong(msg) if self.subscribed and p == 2 else bulk(msg))]
        if name == "blpop":
            if self.rng.random() < 0.5:
                return [("BLPOP (times out)", ["BLPOP", self.k_list, "0.01"], null_array(p))]
            v = self.value()
            return [
                ("LPUSH", ["LPUSH", self.k_list, v], integer(1)),
                ("BLPOP", ["BLPOP", self.k_list, "0.01"], b"*2\r\n" + bulk(self.k_list) + bulk(v)),
            ]
        if name == "wrong_auth":
            t.auth_wrong += 1
            c = self.load.creds
            if self.rng.random() < 0.5:
                return [("AUTH wrong", ["AUTH", WRONG_PASSWORD], WRONGPASS)]
            return [("AUTH user wrong", ["AUTH", c.user, WRONG_PASSWORD], WRONGPASS)]
        if name == "reauth":
            t.auth_ok += 1
            c = self.load.creds
            if self.form == 0:
                return [("re-AUTH pw", ["AUTH", c.password], OK)]
            return [("re-AUTH user pw", ["AUTH", c.user, c.user_password], OK)]
        if name == "publish":
            target = self.publishes_to
            payload = self.load.payload(self.idx, self.published)
            self.published += 1
            return [("PUBLISH", ["PUBLISH", target.channel, payload], integer(1))]
        raise ValueError(name)

    def pick_ops(self) -> None:
        if self.role == "subscriber" and self.proto == 2:
            # RESP2 in subscribed mode: only (P|S)(UN)SUBSCRIBE, PING, QUIT, RESET.
            self.ops, self.weights = ["ping"], [1]
            return
        ops = dict(OP_WEIGHTS)
        if self.role == "subscriber":
            ops.pop("blpop")  # blocking while messages wait is pointless
        if self.publishes_to is not None:
            ops["publish"] = PUBLISH_WEIGHT
        self.ops, self.weights = list(ops), list(ops.values())

    # ------------------------------------------------ life
    async def open(self, sem: asyncio.Semaphore) -> bool:
        load = self.load
        async with sem:
            try:
                await asyncio.wait_for(
                    asyncio.get_running_loop().create_connection(lambda: self, load.host, load.port), 10
                )
            except (OSError, asyncio.TimeoutError) as e:
                self.broken = True
                load.error("connect_failures", self, f"connect: {e!r}")
                return False
            cmds = []
            if self.idx % 7 == 3:
                load.totals.noauth += 1
                cmds.append(("GET before AUTH", ["GET", self.k_str], NOAUTH))
            cmds.append(self.auth_cmd())
            load.totals.auth_ok += 1
            if not await self.exchange(cmds):
                return False
            self.proto = FORM_PROTO[self.form]
            if self.role == "subscriber":
                self.subscribed = True
                self.msg_prefix = message_prefix(self.proto)
                if not await self.exchange([("SUBSCRIBE", ["SUBSCRIBE", self.channel], subscribe_frame(self.proto, self.channel))]):
                    return False
        self.pick_ops()
        return True

    async def traffic(self, go: asyncio.Event, deadline_box: list) -> None:
        await go.wait()
        opts = self.load.opts
        rng = self.rng
        await asyncio.sleep(rng.uniform(0, opts.interval))
        while not self.broken and time.monotonic() < deadline_box[0]:
            names = rng.choices(self.ops, self.weights, k=rng.randint(1, opts.pipeline))
            cmds = []
            for name in names:
                cmds += self.op(name)
            if not await self.exchange(cmds):
                return
            await asyncio.sleep(rng.uniform(0.5, 1.5) * opts.interval)

    async def drain(self, timeout: float) -> None:
        """A subscriber waits for every message its publisher sent."""
        pub = self.publisher
        if pub is None:
            return
        deadline = time.monotonic() + timeout
        while self.received < pub.published and not self.broken and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self.received != pub.published:
            self.load.error("missing_messages", self, f"received {self.received} of {pub.published} messages")

    async def close(self) -> None:
        """A third of the connections QUIT, a third close, a third reset the
        connection with a pipeline in flight (the filter must let go of it)."""
        if self.broken or self.transport is None:
            return
        self.closing = True
        how = self.idx % 3
        if how == 0:
            self.waiter = asyncio.get_running_loop().create_future()
            self.send([("QUIT", ["QUIT"], OK)])
            try:
                await asyncio.wait_for(self.waiter, 10)
            except asyncio.TimeoutError:
                self.load.error("stalls", self, "no reply to QUIT")
                self.transport.abort()
        elif how == 1:
            self.transport.close()
        else:
            self.load.totals.aborted += 1
            cmds = [x for name in ("set", "get", "mget", "multi") for x in self.op(name)]
            self.transport.write(b"".join(resp.command(*args) for _, args, _ in cmds))
            self.load.totals.commands_sent += len(cmds)
            self.transport.abort()
        try:
            await asyncio.wait_for(asyncio.shield(self.lost), 10)
        except asyncio.TimeoutError:
            self.load.error("stalls", self, "the connection did not close after QUIT/close")
            self.transport.abort()


# ---------------------------------------------------------------- sampling

STAT_FILTER = (
    r"^(wasmcustom\.redis_auth\.|server\.memory_|cluster\.redis\.upstream_cx_active$"
    r"|listener\.127\.0\.0\.1_\d+\.downstream_cx_active$)"
)
ACTIVE = "wasmcustom.redis_auth.active_connections"
HELD = "wasmcustom.redis_auth.held_bytes"
VM = "wasmcustom.redis_auth.vm_memory_bytes"
ALLOC = "server.memory_allocated"


def rss_bytes(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Sampler:
    """Polls Envoy's admin stats (and its RSS) from a thread; each sample is
    tagged with the phase the load was in."""

    def __init__(self, envoy, load: Load | None, every: float):
        self.envoy, self.load, self.every = envoy, load, every
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.monotonic()
        self.phase = "before"

    def sample(self) -> dict | None:
        if self.envoy is None:
            return None
        try:
            s = dict(self.envoy.stats(filter=STAT_FILTER))
        except Exception:  # noqa: BLE001 - a missed sample is not fatal
            return None
        s["downstream_cx_active"] = sum(v for k, v in s.items() if k.endswith(".downstream_cx_active"))
        try:
            # The same figure as server.memory_allocated, read now rather than
            # at the last stats flush (every 5 s).
            status, body = self.envoy.admin_get("/memory")
            if status == 200:
                s[ALLOC] = int(json.loads(body)["allocated"])
        except Exception:  # noqa: BLE001
            pass
        s["rss"] = rss_bytes(self.envoy.proc.pid if self.envoy.proc else None)
        s["t"] = time.monotonic() - self.t0
        s["phase"] = self.load.phase if self.load else self.phase
        self.samples.append(s)
        return s

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def values(self, name: str, phases: tuple[str, ...] | None = None) -> list[int]:
        return [s[name] for s in self.samples if name in s and s[name] is not None
                and (phases is None or s["phase"] in phases)]  # fmt: skip


def median(xs: list[int]) -> float | None:
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------- one run


@dataclass
class Report:
    mode: str
    opts: LoadOptions
    totals: Totals
    connected: int = 0
    connect_seconds: float = 0.0
    traffic_seconds: float = 0.0
    memory: dict = field(default_factory=dict)
    counters: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.totals.errors == 0 and self.connected == self.opts.connections

    @property
    def replies_per_second(self) -> float:
        return self.totals.traffic_replies / self.traffic_seconds if self.traffic_seconds else 0.0

    def as_dict(self) -> dict:
        t = self.totals
        return {
            "mode": self.mode,
            "connections": self.opts.connections,
            "connected": self.connected,
            "connect_seconds": round(self.connect_seconds, 2),
            "traffic_seconds": round(self.traffic_seconds, 2),
            "commands_sent": t.commands_sent,
            "replies_verified": t.replies,
            "traffic_replies_verified": t.traffic_replies,
            "messages_verified": t.messages,
            "replies_per_second": round(self.replies_per_second),
            "messages_per_second": round(t.traffic_messages / self.traffic_seconds) if self.traffic_seconds else 0,
            "ops": dict(t.ops),
            "auth_ok_sent": t.auth_ok,
            "auth_wrong_sent": t.auth_wrong,
            "noauth_sent": t.noauth,
            "aborted_with_pipeline_in_flight": t.aborted,
            "errors": t.errors,
            "mismatches": t.mismatches,
            "dropped": t.dropped,
            "stalls": t.stalls,
            "connect_failures": t.connect_failures,
            "missing_messages": t.missing_messages,
            "counter_mismatches": t.counter_mismatches,
            "error_samples": t.error_samples,
            "memory": self.memory,
            "counters": self.counters,
        }


def _memory_summary(sampler: Sampler, n: int, has_filter: bool) -> dict:
    m: dict = {}
    traffic = ("traffic",)
    live = ("connected", "traffic", "drain")
    if has_filter:
        for key, name in (("held_bytes", HELD), ("vm_memory_bytes", VM)):
            before = median(sampler.values(name, ("before",)))
            steady = median(sampler.values(name, traffic))
            peak = max(sampler.values(name, live), default=None)
            m[key] = {
                "before": before,
                "idle": median(sampler.values(name, ("connected",))),
                "steady": steady,
                "peak": peak,
                "after": median(sampler.values(name, ("after",))),
                "peak_any_phase": max(sampler.values(name), default=None),
                "steady_per_connection": steady / n if steady is not None and n else None,
                "peak_per_connection": peak / n if peak is not None and n else None,
                "growth_per_connection": (peak - before) / n if None not in (peak, before) and n else None,
            }
        m["active_connections_peak"] = max(sampler.values(ACTIVE), default=None)
    for key, name in (("envoy_allocated", ALLOC), ("envoy_rss", "rss")):
        before = median(sampler.values(name, ("before",)))
        idle = median(sampler.values(name, ("connected",)))
        during = median(sampler.values(name, traffic))
        peak = max(sampler.values(name, live), default=None)
        after = median(sampler.values(name, ("after",)))
        m[key] = {
            "before": before, "idle": idle, "steady": during, "peak": peak, "after": after,
            "idle_per_connection": (idle - before) / n if None not in (idle, before) and n else None,
            "steady_per_connection": (during - before) / n if None not in (during, before) and n else None,
            "peak_per_connection": (peak - before) / n if None not in (peak, before) and n else None,
        }  # fmt: skip
    m["downstream_cx_active_peak"] = max(sampler.values("downstream_cx_active"), default=None)
    return m


def raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def log(opts: LoadOptions, msg: str) -> None:
    if not opts.quiet:
        print(f"[load] {msg}", file=sys.stderr, flush=True)


async def _drive(load: Load, sampler: Sampler | None, settle: Callable[[], None]) -> tuple[int, float, float]:
    opts = load.opts
    n = opts.connections
    rng = random.Random(opts.seed)
    order = list(range(n))
    rng.shuffle(order)
    subs = set(order[: round(n * opts.subscribers)]) if n >= 2 else set()
    conns = [Conn(load, i, i % len(AUTH_FORMS), "subscriber" if i in subs else "client") for i in range(n)]
    others = [c for c in conns if c.role != "subscriber"]
    sub_list = [c for c in conns if c.role == "subscriber"]
    for j, s in enumerate(sub_list):
        pub = others[j * len(others) // len(sub_list)]
        pub.publishes_to, s.publisher = s, pub
        if pub.role == "client":
            pub.role = "publisher"

    def sample_now():
        if sampler is not None:
            sampler.sample()

    # Warm-up: a few connections open, run one pipeline and close, so that
    # every worker's VM has served a connection before the baseline is taken
    # (the VM gauge counts a VM from its first connection on).
    load.phase = "warmup"
    warm = [Conn(load, n + i, i % len(AUTH_FORMS), "client") for i in range(opts.warmup)]
    wsem = asyncio.Semaphore(opts.connect_parallel)
    for c, ok in zip(warm, await asyncio.gather(*(c.open(wsem) for c in warm))):
        if ok:
            await c.exchange([x for name in ("set", "get", "incr", "ping") for x in c.op(name)])
            await c.close()
    load.warmup_connected = sum(1 for c in warm if not c.broken)
    await asyncio.get_running_loop().run_in_executor(None, settle)

    # Before: Envoy with no connection of ours.
    load.phase = "before"
    for _ in range(3):
        sample_now()
        await asyncio.sleep(opts.sample_every)

    load.phase = "connecting"
    t0 = time.monotonic()
    sem = asyncio.Semaphore(opts.connect_parallel)
    opened = await asyncio.gather(*(c.open(sem) for c in conns))
    connected = sum(opened)
    connect_seconds = time.monotonic() - t0
    log(opts, f"{connected}/{n} connections authenticated in {connect_seconds:.1f}s")

    load.phase = "connected"
    idle_end = time.monotonic() + opts.idle
    while time.monotonic() < idle_end:
        sample_now()
        await asyncio.sleep(opts.sample_every)

    go = asyncio.Event()
    deadline = [0.0]
    tasks = [asyncio.ensure_future(c.traffic(go, deadline)) for c in conns if not c.broken]
    load.phase = "traffic"
    t1 = time.monotonic()
    deadline[0] = t1 + opts.seconds
    go.set()
    await asyncio.gather(*tasks)
    traffic_seconds = time.monotonic() - t1

    load.phase = "drain"
    await asyncio.gather(*(s.drain(10.0) for s in sub_list))
    sample_now()
    log(opts, f"traffic done after {traffic_seconds:.1f}s; closing")

    load.phase = "closing"
    await asyncio.gather(*(c.close() for c in conns))
    await asyncio.get_running_loop().run_in_executor(None, settle)
    load.phase = "after"
    for _ in range(3):
        sample_now()
        await asyncio.sleep(opts.sample_every)
    return connected, connect_seconds, traffic_seconds


def run_load(endpoint, creds: Creds, opts: LoadOptions, *, envoy=None, mode: str = "filter") -> Report:
    """Drive the load against `endpoint` ((host, port) or anything with
    .host/.port); sample `envoy` (a harness Envoy) if given. Blocks."""
    host, port = endpoint if isinstance(endpoint, tuple) else (endpoint.host, endpoint.port)
    raise_nofile(2 * opts.connections + 1024)
    load = Load(host, port, creds, opts, tag=f"{os.getpid()}.{random.Random().randrange(1 << 30)}")
    has_filter = bool(envoy is not None and envoy.has_wasm)
    sampler = Sampler(envoy, load, opts.sample_every) if envoy is not None else None
    baseline = envoy.wasm_stats() if has_filter else {}

    def settle() -> None:
        """Wait until Envoy has closed every connection of ours."""
        if envoy is None:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            s = envoy.stats(filter=STAT_FILTER)
            active = sum(v for k, v in s.items() if k.endswith(".downstream_cx_active"))
            if active == 0 and (not has_filter or s.get(ACTIVE, 0) == 0):
                return
            time.sleep(0.1)

    if sampler:
        sampler.start()
    try:
        connected, connect_s, traffic_s = asyncio.run(_drive(load, sampler, settle))
    finally:
        if sampler:
            sampler.stop()
    report = Report(mode, opts, load.totals, connected, connect_s, traffic_s)
    if sampler:
        report.memory = _memory_summary(sampler, opts.connections, has_filter)
        report.samples = sampler.samples
    if has_filter:
        _check_counters(envoy, baseline, load, report)
    return report


def _check_counters(envoy, baseline: dict, load: Load, report: Report) -> None:
    """The filter's counters must tell the same story as the clients."""
    now = envoy.wasm_stats()
    t = load.totals

    def delta(name: str) -> int:
        key = f"wasmcustom.redis_auth.{name}"
        return now.get(key, 0) - baseline.get(key, 0)

    want = {
        "connections": report.connected + load.warmup_connected,
        "auth_success": t.auth_ok,
        "auth_failure": t.auth_wrong,
        "noauth_rejected": t.noauth,
        "auth_failure_limit_closed": 0,
        "client_protocol_error": 0,
        "upstream_auth_failure": 0,
        "server_protocol_error": 0,
    }
    gauges = {"active_connections": 0, "held_bytes": 0}
    for name, expected in want.items():
        got = delta(name)
        report.counters[name] = got
        if got != expected:
            load.error("counter_mismatches", None, f"counter {name}: {got}, expected {expected}")
    for name, expected in gauges.items():
        got = now.get(f"wasmcustom.redis_auth.{name}", 0)
        report.counters[name + " (after)"] = got
        if got != expected:
            load.error("counter_mismatches", None, f"gauge {name} after the run: {got}, expected {expected}")


# ---------------------------------------------------------------- streaming

MIB = 1024 * 1024
STREAM_CHUNK = 256 * 1024


def _stream_chunks(seed: int, size: int):
    """`size` pseudo-random bytes in STREAM_CHUNK pieces, the same for a seed."""
    rng = random.Random(seed)
    left = size
    while left:
        n = min(STREAM_CHUNK, left)
        yield rng.randbytes(n)
        left -= n


def _recv_exact(sock, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


def _recv_line(sock, limit: int = 4096) -> bytes:
    out = bytearray()
    while not out.endswith(b"\r\n"):
        b = sock.recv(1)
        if not b:
            raise ConnectionError(f"connection closed in a reply line: {bytes(out)!r}")
        out += b
        if len(out) > limit:
            raise ValueError(f"reply line too long: {bytes(out[:80])!r}")
    return bytes(out)


@dataclass
class StreamResult:
    key: str
    size: int
    sent_sha256: str = ""
    got_sha256: str = ""
    set_seconds: float = 0.0
    get_seconds: float = 0.0
    slow: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.sent_sha256 == self.got_sha256 != ""


class StreamClient:
    """One connection that SETs a big value and GETs it back, streaming both
    ways (the value is never in memory whole) and hashing what it sends and
    receives."""

    def __init__(self, endpoint, creds: Creds, key: str, size: int, seed: int, slow: float = 0.0):
        import socket

        host, port = endpoint if isinstance(endpoint, tuple) else (endpoint.host, endpoint.port)
        self.sock = socket.create_connection((host, port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.creds, self.key, self.size, self.seed = creds, key, size, seed
        self.slow = slow  # seconds to sleep after each chunk read: a slow reader
        self.result = StreamResult(key, size, slow=slow)

    def login(self) -> None:
        self.sock.sendall(resp.command("AUTH", self.creds.password))
        line = _recv_line(self.sock)
        if line != OK:
            raise ValueError(f"AUTH: {line!r}")

    def set(self) -> None:
        import hashlib

        h = hashlib.sha256()
        t = time.monotonic()
        key = self.key.encode()
        self.sock.sendall(b"*3\r\n$3\r\nSET\r\n" + bulk(key) + b"$%d\r\n" % self.size)
        for chunk in _stream_chunks(self.seed, self.size):
            h.update(chunk)
            self.sock.sendall(chunk)
        self.sock.sendall(b"\r\n")
        line = _recv_line(self.sock)
        if line != OK:
            raise ValueError(f"SET: {line!r}")
        self.result.sent_sha256 = h.hexdigest()
        self.result.set_seconds = time.monotonic() - t

    def get(self) -> None:
        import hashlib

        h = hashlib.sha256()
        t = time.monotonic()
        self.sock.sendall(resp.command("GET", self.key))
        head = _recv_line(self.sock)
        if head != b"$%d\r\n" % self.size:
            raise ValueError(f"GET: reply header {head!r}")
        left = self.size
        buf = bytearray(STREAM_CHUNK)
        view = memoryview(buf)
        while left:
            n = self.sock.recv_into(view[: min(left, STREAM_CHUNK)])
            if not n:
                raise ConnectionError(f"connection closed with {left} bytes of the value to go")
            h.update(view[:n])
            left -= n
            if self.slow:
                time.sleep(self.slow)
        if _recv_exact(self.sock, 2) != b"\r\n":
            raise ValueError("GET: value not followed by CRLF")
        self.result.got_sha256 = h.hexdigest()
        self.result.get_seconds = time.monotonic() - t

    def run(self) -> StreamResult:
        try:
            self.login()
            self.set()
            self.get()
            self.sock.sendall(resp.command("PING"))
            if _recv_line(self.sock) != PONG:
                raise ValueError("PING after the value: not +PONG")
        except Exception as e:  # noqa: BLE001
            self.result.error = f"{type(e).__name__}: {e}"
        finally:
            self.sock.close()
        return self.result


@dataclass
class StreamReport:
    size: int
    results: list  # per round: list of StreamResult
    samples: list  # sampler samples during the transfers
    before: dict  # filter gauges before the first transfer
    after: dict

    def stat(self, name: str, fn=max):
        vals = [s[name] for s in self.samples if s.get("phase") == "transfer" and s.get(name) is not None]
        return fn(vals) if vals else None

    def held_per_connection_max(self) -> float | None:
        vals = [s[HELD] / s[ACTIVE] for s in self.samples
                if s.get("phase") == "transfer" and s.get(ACTIVE)]  # fmt: skip
        return max(vals) if vals else None

    @property
    def transfer_samples(self) -> int:
        return sum(1 for s in self.samples if s.get("phase") == "transfer")

    @property
    def ok(self) -> bool:
        return all(r.ok for rnd in self.results for r in rnd)


def stream_values(endpoint, creds: Creds, *, envoy=None, size: int = 64 * MIB,
                  rounds: tuple[int, ...] = (1, 3), every: float = 0.02, slow: float = 0.002,
                  redis=None) -> StreamReport:  # fmt: skip
    """For each entry of `rounds`, that many connections at once SET a
    `size`-byte value and GET it back; Envoy's filter gauges are sampled
    every `every` seconds while the bytes flow. In a round of more than one,
    the last connection reads its value slowly (`slow` seconds after each
    256 KiB), so Envoy has to hold the server back. With `redis`, each
    stored value is also read straight from the server and hashed."""
    sampler = Sampler(envoy, None, every) if envoy is not None else None
    # Warm-up: let every worker's VM serve a connection, so the VM gauge's
    # "before" is the VMs' size with nothing big having gone through.
    for i in range(16):
        c = StreamClient(endpoint, creds, f"warm:{i}", 0, 0)
        c.login()
        c.sock.close()
    if envoy is not None:
        envoy.wait_stat(ACTIVE, 0)
    before = envoy.wasm_stats() if envoy is not None else {}
    results = []
    if sampler:
        sampler.phase = "idle"
        sampler.start()
    try:
        for r, count in enumerate(rounds):
            clients = [StreamClient(endpoint, creds, f"stream:{r}:{i}", size, seed=1000 * r + i,
                                    slow=slow if count > 1 and i == count - 1 else 0.0)
                       for i in range(count)]  # fmt: skip
            if sampler:
                sampler.phase = "transfer"
            threads = [threading.Thread(target=c.run) for c in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if sampler:
                sampler.phase = "idle"
            if redis is not None:
                import hashlib

                direct = redis.client(decode_responses=False)
                for c in clients:
                    value = direct.get(c.key)
                    stored = hashlib.sha256(value or b"").hexdigest()
                    if c.result.error is None and stored != c.result.sent_sha256:
                        c.result.error = "the server holds other bytes than were sent"
                    del value
                    direct.delete(c.key)
                direct.close()
            results.append([c.result for c in clients])
    finally:
        if sampler:
            sampler.stop()
    after = envoy.wasm_stats() if envoy is not None else {}
    return StreamReport(size, results, sampler.samples if sampler else [], before, after)


def format_stream_report(r: StreamReport) -> str:
    lines = [f"== streaming {r.size // MIB} MiB values through the filter"]
    for rnd in r.results:
        for x in rnd:
            lines.append(
                f"   {len(rnd)} at once, {x.key}: SET {x.set_seconds:.2f}s, GET {x.get_seconds:.2f}s"
                f"{' (slow reader)' if x.slow else ''}, "
                f"sha256 {'match' if x.ok else 'MISMATCH'} ({x.got_sha256[:16]}), {x.error or 'ok'}"
            )
    vm_before = r.before.get(VM)
    lines.append(
        f"   during the transfers ({r.transfer_samples} samples): held_bytes max {_kib(r.stat(HELD))} "
        f"(max {_kib(r.held_per_connection_max())} per connection), vm_memory_bytes before {_kib(vm_before)}, "
        f"max {_kib(r.stat(VM))}, after {_kib(r.after.get(VM))}; "
        f"Envoy allocated max {_mib(r.stat(ALLOC))}"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- output


def _kib(v) -> str:
    return "-" if v is None else f"{v / 1024:,.1f} KiB"


def _mib(v) -> str:
    return "-" if v is None else f"{v / (1024 * 1024):,.1f} MiB"


def format_report(r: Report) -> str:
    d = r.as_dict()
    lines = [
        f"== {r.mode}: {d['connected']}/{d['connections']} connections "
        f"(authenticated in {d['connect_seconds']}s), traffic for {d['traffic_seconds']}s",
        f"   commands sent {d['commands_sent']:,}; replies verified {d['replies_verified']:,} "
        f"({d['traffic_replies_verified']:,} during the traffic, {d['replies_per_second']:,}/s); "
        f"pub/sub messages verified {d['messages_verified']:,} ({d['messages_per_second']:,}/s)",
        f"   auth: {d['auth_ok_sent']:,} good, {d['auth_wrong_sent']:,} wrong (WRONGPASS), "
        f"{d['noauth_sent']:,} commands before AUTH (NOAUTH); "
        f"{d['aborted_with_pipeline_in_flight']:,} connections reset with a pipeline in flight",
        "   ops: " + ", ".join(f"{k} {v:,}" for k, v in sorted(d["ops"].items())),
        f"   errors {d['errors']} (mismatches {d['mismatches']}, dropped {d['dropped']}, stalls {d['stalls']}, "
        f"connect failures {d['connect_failures']}, missing messages {d['missing_messages']}, "
        f"counter mismatches {d['counter_mismatches']})",
    ]
    for e in d["error_samples"][:15]:
        lines.append(f"   ! {e}")
    m = d["memory"]
    if m:
        for key in ("held_bytes", "vm_memory_bytes"):
            if key in m:
                x = m[key]
                lines.append(
                    f"   {key}: before {_kib(x['before'])}, idle {_kib(x['idle'])}, "
                    f"traffic {_kib(x['steady'])} ({x['steady_per_connection'] or 0:,.0f} B/connection), "
                    f"peak {_kib(x['peak'])} ({x['peak_per_connection'] or 0:,.0f} B/connection; "
                    f"{x['growth_per_connection'] or 0:,.0f} B/connection over before), after {_kib(x['after'])}"
                )
        for key in ("envoy_allocated", "envoy_rss"):
            x = m[key]
            per = x["steady_per_connection"]
            lines.append(
                f"   {key}: before {_mib(x['before'])}, idle {_mib(x['idle'])}, traffic {_mib(x['steady'])} "
                f"(peak {_mib(x['peak'])}), after {_mib(x['after'])}; "
                f"per connection: idle {_kib(x['idle_per_connection'])}, traffic {_kib(per)}, peak {_kib(x['peak_per_connection'])}"
            )
    if d["counters"]:
        lines.append("   filter counters: " + ", ".join(f"{k} {v:,}" for k, v in d["counters"].items()))
    return "\n".join(lines)


def _one(run: Run, mode: str, opts: LoadOptions) -> Report:
    with run.scope(f"load-{mode}") as scope:
        redis = scope.redis("password", extra_conf=["maxclients 20000"])
        if mode == "direct":
            log(opts, f"direct to redis {redis.port}")
            return run_load(redis, server_creds(redis), opts, mode=mode)
        if mode == "filter":
            envoy = scope.envoy(redis, name="envoy-filter", plugin_config=FILTER_CONFIG,
                                host_env={"REDIS_PASSWORD": redis.password}, component_log_level=None)  # fmt: skip
            creds = filter_creds()
        else:
            envoy = scope.envoy(redis, name="envoy-tcp-proxy", component_log_level=None)
            creds = server_creds(redis)
        log(opts, f"{mode}: Envoy {envoy.port} (--concurrency {envoy.opts.concurrency}) -> redis {redis.port}")
        report = run_load(envoy, creds, opts, envoy=envoy, mode=mode)
        panics = [l for l in envoy.log_text().splitlines() if "panicked at" in l or "Uncaught RuntimeError" in l]
        for line in panics[:5]:
            report.totals.error_samples.append(f"VM failure: {line.strip()}")
        if panics:
            report.totals.errors += len(panics)
        if not envoy.alive:
            report.totals.errors += 1
            report.totals.error_samples.append("Envoy exited")
        return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--mode", choices=(*MODES, "both"), default="filter",
                    help="filter (default), tcp_proxy (no filter, server password), "
                         "both (filter, then tcp_proxy), direct (no Envoy: checks the tool itself)")  # fmt: skip
    ap.add_argument("--interval", type=float, default=0.5, help="mean pause between a connection's pipelines (s)")
    ap.add_argument("--pipeline", type=int, default=8, help="operations per pipeline: 1 to this many")
    ap.add_argument("--subscribers", type=float, default=0.1, help="share of connections that SUBSCRIBE")
    ap.add_argument("--idle", type=float, default=2.0, help="seconds all connections stay open and idle")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stream", type=int, metavar="MIB",
                    help="instead of the load: SET and GET back a MIB-MiB value through the filter, "
                         "on one connection and then on three at once, sampling the filter's memory")  # fmt: skip
    ap.add_argument("--json", type=Path, help="write the reports (with every sample) here")
    args = ap.parse_args()
    if not 0 <= args.subscribers <= 0.5:
        ap.error("--subscribers must be between 0 and 0.5 (each channel needs its own publisher)")
    opts = LoadOptions(
        connections=args.connections, seconds=args.seconds, interval=args.interval,
        pipeline=args.pipeline, subscribers=args.subscribers, idle=args.idle, seed=args.seed,
    )  # fmt: skip
    # Before any child starts: Envoy and Redis inherit the limit.
    limit = raise_nofile(2 * opts.connections + 1024)
    if limit < opts.connections + 100:
        print(f"open-files limit is {limit}: too low for {opts.connections} connections", file=sys.stderr)
        return 2
    if args.stream:
        with Run.create() as run, run.scope("stream") as scope:
            redis = scope.redis("password")
            envoy = scope.envoy(redis, name="envoy-filter", plugin_config=FILTER_CONFIG,
                                host_env={"REDIS_PASSWORD": redis.password}, component_log_level=None)  # fmt: skip
            report = stream_values(envoy, filter_creds(), envoy=envoy, size=args.stream * MIB, redis=redis)
            print(format_stream_report(report), flush=True)
            panics = [l for l in envoy.log_text().splitlines() if "panicked at" in l or "Uncaught RuntimeError" in l]
            for line in panics[:5]:
                print(f"   ! VM failure: {line.strip()}")
            return 0 if report.ok and not panics and envoy.alive else 1
    modes = ("filter", "tcp_proxy") if args.mode == "both" else (args.mode,)
    reports = []
    with Run.create() as run:
        for mode in modes:
            reports.append(_one(run, mode, opts))
            print(format_report(reports[-1]), flush=True)
    if len(reports) == 2:
        f, t = reports
        fa, ta = f.memory["envoy_allocated"], t.memory["envoy_allocated"]
        if fa["steady_per_connection"] is not None and ta["steady_per_connection"] is not None:
            print(
                f"== Envoy memory_allocated per connection: filter {_kib(fa['steady_per_connection'])}, "
                f"tcp_proxy {_kib(ta['steady_per_connection'])}, the filter adds "
                f"{_kib(fa['steady_per_connection'] - ta['steady_per_connection'])}"
            )
    if args.json:
        args.json.write_text(json.dumps([{**r.as_dict(), "samples": r.samples} for r in reports], indent=1))
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
