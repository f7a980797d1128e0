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
from .relay import TcpHop


@dataclass
class HopConn:
    id: int
    cut_planned: bool
    to_server: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)  # what was relayed
    cut: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class CuttingHop(TcpHop):
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
        super().__init__(upstream_host, upstream_port, name)
        self.after = int(after_server_bytes)
        self.cut_connections = cut_connections
        self.reset = reset

    def wait_cut(self, n: int = 1, timeout: float = 10.0) -> None:
        """Wait until `n` connections have been cut."""
        wait_until(
            lambda: sum(c.cut.is_set() for c in self.connections) >= n, timeout, f"{n} cut(s) at {self.name}"
        )

    # ------------------------------------------------------------ plumbing
    def _new_conn(self, id: int) -> HopConn:
        return HopConn(id=id, cut_planned=id < self.cut_connections)

    def _pump(self, conn: HopConn, src: socket.socket, dst: socket.socket, direction: str) -> None:
        if direction == "c2s":
            self._pump_c2s(conn, src, dst)
        else:
            self._pump_s2c(conn, src, dst)

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

    def __repr__(self) -> str:
        return f"<CuttingHop :{self.port} -> {self.upstream[0]}:{self.upstream[1]} after {self.after} server bytes>"


__all__ = ["CuttingHop", "HopConn"]
