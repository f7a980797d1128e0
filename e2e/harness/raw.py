"""A raw TCP client: send exact bytes with a chosen chunking, collect what
comes back, and know whether the peer closed the connection.

    r = raw_exchange(envoy, b"PING\\r\\n", chunking="byte", until_replies=1)
    assert r.data == b"+PONG\\r\\n" and not r.closed

Reading runs in a thread while sending, so large pipelines cannot deadlock.
It stops at the first of: the peer closes; `until_replies` complete RESP
replies arrived; `until` bytes appear; nothing arrived for `idle_timeout`
after the last send (at least 2 s when until_replies/until is given, so a
slow machine does not cut a reply short); `timeout` overall. Then our side
closes. Prefer until_replies: it returns as soon as the answer is complete.
"""

from __future__ import annotations

import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Sequence

from . import resp

Chunking = str | int | Sequence[int]


@dataclass
class RawResult:
    data: bytes  # everything received
    closed: bool  # the peer closed (EOF or reset) before we stopped reading
    reset: bool = False  # closed by RST (ECONNRESET) rather than FIN
    send_error: str | None = None  # sending failed (peer went away mid-send)
    elapsed: float = 0.0
    stopped_by: str = ""  # "closed" | "replies" | "until" | "idle" | "timeout"

    @property
    def replies(self) -> list:
        """The complete RESP replies in `data`, decoded (see resp.py)."""
        return resp.split_replies(self.data)[0]

    def __repr__(self) -> str:
        return (
            f"RawResult(data={self.data[:200]!r}{'...' if len(self.data) > 200 else ''}, "
            f"closed={self.closed}, reset={self.reset}, stopped_by={self.stopped_by!r})"
        )


def chunk(payload: bytes, chunking: Chunking = "whole", seed: int = 0, max_chunk: int = 16) -> list[bytes]:
    """Split payload into pieces.

    "whole": one piece. "byte": one byte per piece. int n: pieces of n bytes.
    "random": random sizes in 1..max_chunk from random.Random(seed).
    A sequence of ints: those sizes, cycled.
    """
    if not payload:
        return []
    if chunking == "whole":
        return [payload]
    if chunking == "byte":
        chunking = 1
    if isinstance(chunking, int):
        if chunking < 1:
            raise ValueError("chunk size must be >= 1")
        return [payload[i : i + chunking] for i in range(0, len(payload), chunking)]
    if chunking == "random":
        rng = random.Random(seed)
        out, i = [], 0
        while i < len(payload):
            n = rng.randint(1, max_chunk)
            out.append(payload[i : i + n])
            i += n
        return out
    if isinstance(chunking, (list, tuple)):
        sizes = [int(s) for s in chunking]
        if not sizes or min(sizes) < 1:
            raise ValueError("chunk sizes must be >= 1")
        out, i, k = [], 0, 0
        while i < len(payload):
            n = sizes[k % len(sizes)]
            out.append(payload[i : i + n])
            i += n
            k += 1
        return out
    raise ValueError(f"unknown chunking {chunking!r}")


def _hostport(ep) -> tuple[str, int]:
    if isinstance(ep, tuple):
        return ep[0], int(ep[1])
    return ep.host, int(ep.port)


def raw_exchange(
    endpoint,
    payload: bytes | Sequence[bytes],
    chunking: Chunking = "whole",
    *,
    seed: int = 0,
    max_chunk: int = 16,
    pause: float | None = None,
    until_replies: int | None = None,
    until: bytes | None = None,
    idle_timeout: float = 0.5,
    timeout: float = 10.0,
    half_close: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> RawResult:
    """Connect to endpoint (.host/.port or (host, port)), send, read.

    payload: bytes, or a list of byte pieces. With chunking="whole" a list is
    sent piece by piece as given; any other chunking re-splits the
    concatenation. pause: seconds between pieces (default 1 ms when there is
    more than one piece, so pieces really arrive as separate segments; 0 to
    blast). half_close: shutdown(SHUT_WR) after sending.
    """
    if isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(payload)
        pieces = chunk(data, chunking, seed, max_chunk)
    else:
        given = [bytes(p) for p in payload]
        pieces = given if chunking == "whole" else chunk(b"".join(given), chunking, seed, max_chunk)
    if pause is None:
        pause = 0.001 if len(pieces) > 1 else 0.0

    host, port = _hostport(endpoint)
    t0 = time.monotonic()
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ssl_context is not None:
        sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
    sock.settimeout(0.05)

    received = bytearray()
    state = {"closed": False, "reset": False, "last_rx": time.monotonic()}
    lock = threading.Lock()
    stop = threading.Event()
    got = threading.Condition(lock)

    def reader():
        while not stop.is_set():
            try:
                d = sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except ConnectionResetError:
                with got:
                    state["closed"] = state["reset"] = True
                    got.notify_all()
                return
            except OSError:
                with got:
                    state["closed"] = True
                    got.notify_all()
                return
            with got:
                if not d:
                    state["closed"] = True
                    got.notify_all()
                    return
                received.extend(d)
                state["last_rx"] = time.monotonic()
                got.notify_all()

    rt = threading.Thread(target=reader, daemon=True)
    if ssl_context is None:
        rt.start()  # read while sending: big pipelines cannot deadlock

    send_error = None
    try:
        for i, piece in enumerate(pieces):
            if i and pause:
                time.sleep(pause)
            if ssl_context is None:
                sock.sendall(piece)
            else:
                _ssl_sendall(sock, piece)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
    except OSError as e:
        send_error = f"{type(e).__name__}: {e}"
    sent_at = time.monotonic()
    if ssl_context is not None:
        rt.start()  # SSL sockets must not be read and written concurrently

    goal = until_replies is not None or until is not None
    # With a goal, a silent peer is still given up on, but later.
    idle_limit = max(idle_timeout, 2.0) if goal else idle_timeout

    def done() -> str | None:
        if state["closed"]:
            return "closed"
        if until_replies is not None:
            try:
                if resp.count_replies(bytes(received)) >= until_replies:
                    return "replies"
            except ValueError:
                pass
        if until is not None and until in received:
            return "until"
        now = time.monotonic()
        if now - max(state["last_rx"], sent_at) >= idle_limit:
            return "idle"
        if now - t0 >= timeout:
            return "timeout"
        return None

    with got:
        why = done()
        while why is None:
            got.wait(0.02)
            why = done()
        result = RawResult(
            data=bytes(received),
            closed=state["closed"],
            reset=state["reset"],
            send_error=send_error,
            stopped_by=why,
        )
    stop.set()
    rt.join(1.0)
    try:
        sock.close()
    except OSError:
        pass
    result.elapsed = time.monotonic() - t0
    return result


def _ssl_sendall(sock, piece: bytes) -> None:
    view = memoryview(piece)
    while view:
        try:
            n = sock.send(view)
        except (socket.timeout, ssl.SSLWantWriteError):
            continue
        view = view[n:]


def differential(a, b, payload, chunking: Chunking = "whole", **kw) -> tuple[RawResult, RawResult]:
    """The same raw exchange against two endpoints (e.g. Envoy and a real
    redis-server); returns (result_a, result_b). Compare .data and .closed."""
    return raw_exchange(a, payload, chunking, **kw), raw_exchange(b, payload, chunking, **kw)
