"""A recording TCP relay: point Envoy's cluster at it, and it forwards to the
real server while recording every byte in each direction, per connection.

    relay = RecordingRelay(redis.host, redis.port).start()
    envoy = Envoy(run_dir, relay, ...)
    ...
    assert b"client-password" not in relay.to_server()

Half-closes are forwarded (EOF from one side -> shutdown(SHUT_WR) on the
other). Everything is in memory; fine for test-sized traffic.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

from .procs import HarnessError, wait_until


def close_sockets(socks) -> None:
    """Shuts down and closes each socket (the listener first: that wakes a
    blocked accept()), ignoring the ones already gone."""
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass


@dataclass
class RelayConn:
    """One proxied connection (client side = whoever connected to the relay,
    normally Envoy; server side = the real upstream)."""

    id: int
    to_server_buf: bytearray = field(default_factory=bytearray)
    to_client_buf: bytearray = field(default_factory=bytearray)
    # (monotonic time, "c2s" | "s2c", bytes) for every recv, in order
    events: list[tuple[float, str, bytes]] = field(default_factory=list)
    upstream_error: str | None = None  # could not connect upstream
    first_eof: str | None = None  # "client" or "server": who half-closed first
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def to_server(self) -> bytes:
        """Bytes that reached the server on this connection."""
        return bytes(self.to_server_buf)

    @property
    def to_client(self) -> bytes:
        """Bytes the server sent back on this connection."""
        return bytes(self.to_client_buf)

    @property
    def closed(self) -> bool:
        return self.done.is_set()


class TcpHop:
    """A loopback listener that connects each client it accepts to
    `upstream` and pumps bytes both ways, each connection in its own
    threads. Subclasses say what a connection records (`_new_conn`) and how
    bytes are pumped (`_pump`); a connection object needs `.id` and `.done`.
    """

    def __init__(self, upstream_host: str, upstream_port: int, name: str):
        self.upstream = (upstream_host, int(upstream_port))
        self.name = name
        self.host = "127.0.0.1"
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((self.host, 0))
        self._lsock.listen(128)
        self.port = self._lsock.getsockname()[1]
        self._lock = threading.Lock()
        self._conns: list = []
        self._socks: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name=f"{name}-accept", daemon=True)

    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)

    def start(self):
        self._thread.start()
        return self

    @property
    def connections(self) -> list:
        with self._lock:
            return list(self._conns)

    def _new_conn(self, id: int):
        raise NotImplementedError

    def _pump(self, conn, src: socket.socket, dst: socket.socket, direction: str) -> None:
        """Relays src to dst until one side ends; direction is "c2s" or "s2c"."""
        raise NotImplementedError

    def _upstream_failed(self, conn, error: OSError) -> None:
        pass

    def _accept_loop(self) -> None:
        next_id = 0
        while True:
            try:
                client, _ = self._lsock.accept()
            except OSError:
                return
            if self._closed:
                client.close()
                return
            conn = self._new_conn(next_id)
            next_id += 1
            with self._lock:
                self._conns.append(conn)
                self._socks.append(client)
            threading.Thread(target=self._serve, args=(conn, client), daemon=True, name=f"{self.name}-{conn.id}").start()

    def _serve(self, conn, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError as e:
            self._upstream_failed(conn, e)
            client.close()
            conn.done.set()
            return
        server.settimeout(None)
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._socks.append(server)
        t = threading.Thread(target=self._pump, args=(conn, server, client, "s2c"), daemon=True)
        t.start()
        self._pump(conn, client, server, "c2s")
        t.join()
        for s in (client, server):
            try:
                s.close()
            except OSError:
                pass
        conn.done.set()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            socks = list(self._socks)
        close_sockets([self._lsock, *socks])

    stop = close


class RecordingRelay(TcpHop):
    def __init__(self, upstream_host: str, upstream_port: int, name: str = "relay"):
        super().__init__(upstream_host, upstream_port, name)

    @classmethod
    def to(cls, server, name: str = "relay") -> "RecordingRelay":
        """A started relay in front of anything with .host/.port."""
        return cls(server.host, server.port, name).start()

    # ------------------------------------------------------------ recording
    def to_server(self) -> bytes:
        """Everything sent to the server, all connections, in accept order."""
        with self._lock:
            return b"".join(bytes(c.to_server_buf) for c in self._conns)

    def to_client(self) -> bytes:
        """Everything the server sent, all connections, in accept order."""
        with self._lock:
            return b"".join(bytes(c.to_client_buf) for c in self._conns)

    def reset(self) -> None:
        """Forget recorded connections (live ones keep relaying)."""
        with self._lock:
            self._conns.clear()

    def wait_connections(self, n: int, timeout: float = 10.0) -> list[RelayConn]:
        wait_until(lambda: len(self.connections) >= n, timeout, f"{n} connection(s) at {self.name}")
        return self.connections

    def wait_closed(self, timeout: float = 10.0) -> None:
        """Wait until every recorded connection has finished."""
        wait_until(lambda: all(c.closed for c in self.connections), timeout, f"{self.name} connections to close")

    def wait_to_server(self, predicate, timeout: float = 10.0) -> bytes:
        """Wait until predicate(to_server()) is true; return the bytes."""
        wait_until(lambda: predicate(self.to_server()), timeout, f"bytes upstream at {self.name}")
        return self.to_server()

    # ------------------------------------------------------------ plumbing
    def _new_conn(self, id: int) -> RelayConn:
        return RelayConn(id=id)

    def _upstream_failed(self, conn: RelayConn, error: OSError) -> None:
        conn.upstream_error = str(error)

    def _pump(self, conn: RelayConn, src: socket.socket, dst: socket.socket, direction: str) -> None:
        buf = conn.to_server_buf if direction == "c2s" else conn.to_client_buf
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._lock:
                    if conn.first_eof is None:
                        conn.first_eof = "client" if direction == "c2s" else "server"
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self._lock:
                buf.extend(data)
                conn.events.append((time.monotonic(), direction, data))
            try:
                dst.sendall(data)
            except OSError:
                try:
                    src.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
                return

    def __repr__(self) -> str:
        return f"<RecordingRelay :{self.port} -> {self.upstream[0]}:{self.upstream[1]}>"


__all__ = ["RecordingRelay", "RelayConn", "HarnessError"]
