"""A TCP hop that cuts connections: it relays both ways like a plain proxy,
and on the connections it is told to cut it closes both sides right after
relaying a given number of server bytes. Put it between Envoy and a real
redis-server to make "the server" hang up at an exact point of the stream,
e.g. right after the reply to the proxy's `AUTH`:

    hop = CuttingHop(redis.host, redis.port, after_server_bytes=len(b"+OK\\r\\n")).start()
    envoy = Envoy(run_dir, hop, ...)
    ...
    hop.wait_cut(1)

`cut_connections` says how many connections (in accept order) are cut; the
ones after them are relayed untouched, so a test can check that the next
connection works. `reset=True` ends a cut connection with RST instead of FIN.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

from .procs import wait_until
from .relay import close_sockets


@dataclass
class HopConn:
    id: int
    cut_planned: bool
    to_server: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)  # what was relayed
    cut: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class CuttingHop:
    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        after_server_bytes: int,
        cut_connections: int = 1,
        reset: bool = False,
        name: str = "hop",
    ):
        self.upstream = (upstream_host, int(upstream_port))
        self.after = int(after_server_bytes)
        self.cut_connections = cut_connections
        self.reset = reset
        self.name = name
        self.host = "127.0.0.1"
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((self.host, 0))
        self._lsock.listen(64)
        self.port = self._lsock.getsockname()[1]
        self._lock = threading.Lock()
        self._conns: list[HopConn] = []
        self._socks: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name=f"{name}-accept", daemon=True)

    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def connections(self) -> list[HopConn]:
        with self._lock:
            return list(self._conns)

    def start(self) -> "CuttingHop":
        self._thread.start()
        return self

    def wait_cut(self, n: int = 1, timeout: float = 10.0) -> None:
        """Wait until `n` connections have been cut."""
        wait_until(
            lambda: sum(c.cut.is_set() for c in self.connections) >= n, timeout, f"{n} cut(s) at {self.name}"
        )

    # ------------------------------------------------------------ plumbing
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
            conn = HopConn(id=next_id, cut_planned=next_id < self.cut_connections)
            next_id += 1
            with self._lock:
                self._conns.append(conn)
                self._socks.append(client)
            threading.Thread(target=self._serve, args=(conn, client), daemon=True, name=f"{self.name}-{conn.id}").start()

    def _serve(self, conn: HopConn, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            conn.done.set()
            return
        server.settimeout(None)
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._socks.append(server)
        t = threading.Thread(target=self._pump_s2c, args=(conn, server, client), daemon=True)
        t.start()
        self._pump_c2s(conn, client, server)
        t.join()
        for s in (client, server):
            try:
                s.close()
            except OSError:
                pass
        conn.done.set()

    def _pump_c2s(self, conn: HopConn, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data or conn.cut.is_set():
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            conn.to_server.extend(data)
            try:
                dst.sendall(data)
            except OSError:
                return

    def _pump_s2c(self, conn: HopConn, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if conn.cut_planned:
                data = data[: self.after - len(conn.to_client)]
            conn.to_client.extend(data)
            try:
                dst.sendall(data)
            except OSError:
                return
            if conn.cut_planned and len(conn.to_client) >= self.after:
                self._cut(conn, dst, src)
                return

    def _cut(self, conn: HopConn, client: socket.socket, server: socket.socket) -> None:
        conn.cut.set()
        try:
            server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            if self.reset:
                # No FIN: the close in _serve, with SO_LINGER 0, sends RST.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.shutdown(socket.SHUT_RD)
            else:
                client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self._closed = True
        with self._lock:
            socks = list(self._socks)
        close_sockets([self._lsock, *socks])

    stop = close

    def __repr__(self) -> str:
        return f"<CuttingHop :{self.port} -> {self.upstream[0]}:{self.upstream[1]} after {self.after} server bytes>"


__all__ = ["CuttingHop", "HopConn"]
