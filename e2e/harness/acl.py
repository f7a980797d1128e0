"""Helpers for ACL differential tests (see e2e/test_filter_acl.py).

Replies are compared byte for byte. A few replies of Redis 7.0 differ
between two processes of the same `redis-server` given the same users, and
are normalised on both sides before comparing, reply by reply, keyed on the
command that produced the reply (`normalise(data, commands)`; it needs one
reply per command):

- `CLIENT ID`, and the `id` field of `HELLO`'s map: connection numbers;
- `ACL LIST` and `ACL GETUSER`: Redis describes a user's commands as
  categories first, then single commands in the order of its command
  table's hash (seeded per process), e.g. `-@all +get +mget +set` in one
  process and `-@all +get +set +mget` in another; the runs of single
  `+cmd`/`-cmd` rules are sorted (categories keep their order);
- `ACL CAT <category>`: the commands of a category, in hash order: the
  elements are sorted.

Every normalisation keeps the reply's length, so lengths still match byte
for byte.

Server state between exchanges (on an admin connection straight to the
server, never through the proxy): `reset(admin, setup)` empties every
database and the script cache, waits until the server has no pub/sub
subscriber left from an earlier connection (so `PUBLISH` counts are
deterministic), then runs the setup commands. `commandstats(admin)` reads
`INFO commandstats` (`cmdstat_<name>` -> fields; a command counts when it was
called or rejected).

`exchange` is `raw_exchange` (same chunking, same stop conditions but for
the idle floor, same `RawResult`) without the reader thread, which takes up
to 50 ms to wind down (its receive timeout) after every call: the ACL file
makes over a thousand exchanges. It reads while it pauses between pieces,
and its payloads' replies are small, so sending cannot deadlock.
"""

from __future__ import annotations

import hashlib
import re
import select
import socket
import time
from typing import Callable, Sequence

from . import resp
from .procs import wait_until
from .raw import Chunking, RawResult, chunk

Command = tuple | bytes  # a command's arguments, or raw bytes holding one command


def sha256_hex(password: str) -> str:
    """What an ACL `#<hash>` rule holds for `password`."""
    return hashlib.sha256(password.encode()).hexdigest()


# ------------------------------------------------------------------ replies


def reply_spans(data: bytes) -> list[bytes]:
    """The bytes of each top-level reply in `data` (an incomplete tail is
    the last item)."""
    out, pos = [], 0
    while pos < len(data):
        try:
            _, nxt = resp.parse_one(data, pos)
        except resp.Incomplete:
            out.append(data[pos:])
            break
        out.append(data[pos:nxt])
        pos = nxt
    return out


_INTEGER = re.compile(rb"\A:\d+\r\n\Z")
_HELLO_ID = re.compile(rb"(\$2\r\nid\r\n):\d+\r\n")
_SINGLE_RULE = re.compile(rb"\A[+-][^@]")


def mask_integer(reply: bytes) -> bytes:
    return _INTEGER.sub(b":<n>\r\n", reply)


def mask_hello_id(reply: bytes) -> bytes:
    return _HELLO_ID.sub(rb"\1:<id>\r\n", reply)


def _sort_rule_runs(line: bytes) -> bytes:
    # A selector is its own group of rules: split at the parentheses.
    parts = re.split(rb"([()])", line)
    out = []
    for part in parts:
        tokens = part.split(b" ")
        fixed, i = [], 0
        while i < len(tokens):
            j = i
            while j < len(tokens) and _SINGLE_RULE.match(tokens[j]):
                j += 1
            if j > i:
                fixed += sorted(tokens[i:j])
                i = j
            else:
                fixed.append(tokens[i])
                i += 1
        out.append(b" ".join(fixed))
    return b"".join(out)


def sort_command_rules(reply: bytes) -> bytes:
    """Sorts each run of single-command rules in every line of `reply`."""
    return b"\r\n".join(_sort_rule_runs(line) for line in reply.split(b"\r\n"))


def sort_elements(reply: bytes) -> bytes:
    """Sorts the elements of an array reply (as bytes); other replies as they are."""
    if not reply.startswith((b"*", b"~")):
        return reply
    head_end = reply.index(b"\r\n") + 2
    n = int(reply[1 : head_end - 2])
    items, pos = [], head_end
    for _ in range(max(n, 0)):
        _, nxt = resp.parse_one(reply, pos)
        items.append(reply[pos:nxt])
        pos = nxt
    return reply[:head_end] + b"".join(sorted(items)) + reply[pos:]


def _words(cmd: Command) -> list[str]:
    if isinstance(cmd, bytes):
        return [w.upper() for w in cmd.decode("latin-1").split()[:2]]
    return [str(a).upper() if isinstance(a, (str, int)) else a.decode("latin-1").upper() for a in cmd[:2]]


def normaliser_for(cmd: Command) -> Callable[[bytes], bytes] | None:
    """How the reply to `cmd` is normalised (None: compared as it is)."""
    w = _words(cmd)
    if w[:2] == ["CLIENT", "ID"]:
        return mask_integer
    if w[:1] == ["HELLO"]:
        return mask_hello_id
    if w[:2] in (["ACL", "LIST"], ["ACL", "GETUSER"]):
        return sort_command_rules
    if w[:2] == ["ACL", "CAT"] and not isinstance(cmd, bytes) and len(cmd) == 3:
        return sort_elements
    return None


def normalise(data: bytes, commands: Sequence[Command]) -> bytes:
    """`data` with the reply to each of `commands` normalised (see the module
    docstring); replies beyond the commands are left as they are."""
    spans = reply_spans(data)
    for i, span in enumerate(spans[: len(commands)]):
        f = normaliser_for(commands[i])
        if f is not None:
            spans[i] = f(span)
    return b"".join(spans)


def first_difference(expected: bytes, got: bytes, commands: Sequence[Command]) -> str:
    """Says which reply differs first, and to which command (for failure
    messages); both sides already normalised."""
    want, have = reply_spans(expected), reply_spans(got)
    for i in range(max(len(want), len(have))):
        w = want[i] if i < len(want) else b"(nothing)"
        h = have[i] if i < len(have) else b"(nothing)"
        if w != h:
            cmd = commands[i] if i < len(commands) else "(no command)"
            if isinstance(cmd, tuple):
                cmd = tuple(a if len(str(a)) <= 40 else f"<{len(a)} bytes>" for a in cmd)
            return f"reply {i} (to {cmd!r}): Redis sent {w[:300]!r}, got {h[:300]!r}"
    return "no reply differs"


# ------------------------------------------------------------------ exchanges


def exchange(
    endpoint,
    payload: bytes,
    chunking: Chunking = "whole",
    *,
    seed: int = 0,
    max_chunk: int = 16,
    pause: float | None = None,
    until_replies: int | None = None,
    until: bytes | None = None,
    idle_timeout: float = 1.0,
    timeout: float = 10.0,
) -> RawResult:
    """Connects, sends `payload` in pieces (see `harness.raw.chunk`; `pause`
    between them, default 1 ms when there are several), reads until the
    peer closes, `until_replies` replies are complete, `until` appears,
    nothing came for `idle_timeout` since the last send or the last byte,
    or `timeout`; then closes. (No 2 s floor for `idle_timeout` as
    `raw_exchange` has: a run where many replies are missing stays short.)"""
    pieces = chunk(payload, chunking, seed, max_chunk)
    if pause is None:
        pause = 0.001 if len(pieces) > 1 else 0.0
    t0 = time.monotonic()
    addr = endpoint if isinstance(endpoint, tuple) else (endpoint.host, int(endpoint.port))
    sock = socket.create_connection(addr, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    received = bytearray()
    state = {"closed": False, "reset": False, "last_rx": time.monotonic()}

    def pump(wait: float) -> None:
        """Reads whatever arrives within `wait` seconds (0: what is there)."""
        deadline = time.monotonic() + wait
        while not state["closed"]:
            if not select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                state["closed"] = state["reset"] = True
                return
            except OSError:
                data = b""
            if not data:
                state["closed"] = True
                return
            received.extend(data)
            state["last_rx"] = time.monotonic()

    send_error = None
    try:
        for i, piece in enumerate(pieces):
            if i and pause:
                pump(pause)
            sock.sendall(piece)
            pump(0)
    except OSError as e:
        send_error = f"{type(e).__name__}: {e}"
    sent_at = time.monotonic()

    def done() -> str | None:
        if state["closed"]:
            return "closed"
        if until_replies is not None and resp.count_replies(bytes(received)) >= until_replies:
            return "replies"
        if until is not None and until in received:
            return "until"
        now = time.monotonic()
        if now - max(state["last_rx"], sent_at) >= idle_timeout:
            return "idle"
        if now - t0 >= timeout:
            return "timeout"
        return None

    why = done()
    while why is None:
        pump(0.02)
        why = done()
    sock.close()
    return RawResult(
        data=bytes(received),
        closed=state["closed"],
        reset=state["reset"],
        send_error=send_error,
        elapsed=time.monotonic() - t0,
        stopped_by=why,
    )


# ------------------------------------------------------------------ server state


def reset(admin, setup: Sequence[tuple] = (), timeout: float = 5.0) -> None:
    """Empties the server behind `admin` (a redis-py client straight to it),
    waits for its pub/sub subscribers to be gone, runs `setup`."""
    admin.execute_command("FLUSHALL")
    admin.execute_command("SCRIPT", "FLUSH")

    def idle() -> bool:
        return (
            admin.execute_command("PUBSUB", "NUMPAT") == 0
            and not admin.execute_command("PUBSUB", "CHANNELS")
            and not admin.execute_command("PUBSUB", "SHARDCHANNELS")
        )

    wait_until(idle, timeout, "no pub/sub subscribers left on the server")
    for cmd in setup:
        admin.execute_command(*cmd)


def commandstats(admin) -> dict[str, dict]:
    """`INFO commandstats` of the server behind `admin`:
    {"acl|setuser": {"calls": 1, "rejected_calls": 0, ...}, ...}."""
    stats = admin.execute_command("INFO", "commandstats")
    out = {}
    for name, fields in stats.items():
        name = name.decode() if isinstance(name, bytes) else name
        if name.startswith("cmdstat_"):
            out[name[len("cmdstat_") :]] = fields
    return out


__all__ = [
    "commandstats", "exchange", "first_difference", "mask_hello_id", "mask_integer", "normalise", "normaliser_for",
    "reply_spans", "reset", "sha256_hex", "sort_command_rules", "sort_elements",
]  # fmt: skip
